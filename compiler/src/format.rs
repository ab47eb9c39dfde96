//! printf format strings, parsed at compile time: the generated code makes
//! one runtime call per piece, with the spec already packed.

use crate::passes::symbols::Ty;

/// A width or precision: absent, written, or taken from an argument (`*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    None,
    Fixed(u32),
    Star,
}

/// A literal run or one conversion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Conversion {
        conv: u8,
        flags: u8,
        width: Count,
        precision: Count,
    },
}

impl Piece {
    /// The types of the arguments this piece consumes, in order.
    pub fn arg_types(&self) -> Vec<Ty> {
        let Piece::Conversion {
            conv,
            width,
            precision,
            ..
        } = self
        else {
            return Vec::new();
        };
        let mut types = Vec::new();
        if *width == Count::Star {
            types.push(Ty::Long);
        }
        if *precision == Count::Star {
            types.push(Ty::Long);
        }
        types.push(if *conv == b's' { Ty::Str } else { Ty::Long });
        types
    }
}

/// Splits a format into pieces.
///
/// # Errors
/// A message naming the bad conversion.
pub fn parse(format: &str) -> Result<Vec<Piece>, String> {
    use wasmtap_abi::wasm::spec::*;
    let bytes = format.as_bytes();
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            literal.push(bytes[i]);
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        if bytes.get(i) == Some(&b'%') {
            literal.push(b'%');
            i += 1;
            continue;
        }
        let mut flags = 0;
        while let Some(&c) = bytes.get(i) {
            flags |= match c {
                b'-' => FLAG_MINUS,
                b'+' => FLAG_PLUS,
                b' ' => FLAG_SPACE,
                b'0' => FLAG_ZERO,
                b'#' => FLAG_HASH,
                _ => break,
            };
            i += 1;
        }
        let count = |i: &mut usize| -> Count {
            if bytes.get(*i) == Some(&b'*') {
                *i += 1;
                return Count::Star;
            }
            let digits = bytes[*i..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if digits == 0 {
                return Count::None;
            }
            let n = format[*i..*i + digits].parse().unwrap_or(u32::MAX);
            *i += digits;
            Count::Fixed(n)
        };
        let width = count(&mut i);
        let precision = if bytes.get(i) == Some(&b'.') {
            i += 1;
            match count(&mut i) {
                Count::None => Count::Fixed(0),
                c => c,
            }
        } else {
            Count::None
        };
        // Length modifiers are accepted and ignored: every number is 64-bit.
        while matches!(bytes.get(i), Some(b'l' | b'h' | b'L' | b'z' | b'j' | b't')) {
            i += 1;
        }
        let Some(&conv) = bytes.get(i) else {
            return Err(format!(
                "'{}' at the end has no conversion",
                &format[start..]
            ));
        };
        if !b"diuxXocpbs".contains(&conv) {
            let shown = format[start..]
                .chars()
                .take(i - start + 1)
                .collect::<String>();
            return Err(format!("unsupported conversion '{shown}'"));
        }
        i += 1;
        if !literal.is_empty() {
            pieces.push(Piece::Literal(
                String::from_utf8_lossy(&literal).into_owned(),
            ));
            literal.clear();
        }
        pieces.push(Piece::Conversion {
            conv,
            flags,
            width,
            precision,
        });
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(
            String::from_utf8_lossy(&literal).into_owned(),
        ));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_literals_and_conversions() {
        let pieces = parse("%s(%d) %-5x%%\n").unwrap();
        assert_eq!(pieces.len(), 6);
        assert_eq!(pieces[0].arg_types(), vec![Ty::Str]);
        assert_eq!(pieces[1], Piece::Literal("(".into()));
        assert!(matches!(
            pieces[4],
            Piece::Conversion {
                conv: b'x',
                width: Count::Fixed(5),
                ..
            }
        ));
        assert_eq!(pieces[5], Piece::Literal("%\n".into()));
    }

    #[test]
    fn star_takes_an_argument() {
        let pieces = parse("%*d").unwrap();
        assert_eq!(pieces[0].arg_types(), vec![Ty::Long, Ty::Long]);
    }

    #[test]
    fn rejects_unknown_conversions() {
        assert!(parse("%q").is_err());
        assert!(parse("abc %").is_err());
    }
}
