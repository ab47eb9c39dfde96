//! printf conversions with SystemTap's semantics.
//!
//! SystemTap formats script `printf`s with its own `_stp_vsnprintf`, which
//! differs from C in places a script can see: `%p` is `%#x` (so `0x0` for
//! zero), `#` with `%x`/`%o` prefixes zero too, a precision does not cancel
//! the `0` flag, precision 0 still prints a zero, `%c` with `#` escapes
//! non-printables, `%b` writes the value's raw little-endian bytes padded
//! with NULs, and `%0s` appends a NUL. This module reproduces that, driven
//! by the packed specs of [`wasmtap_abi::wasm::spec`].

use alloc::vec::Vec;
use wasmtap_abi::wasm::spec;

/// `-`: left-justify.
pub const LEFT: u8 = spec::FLAG_MINUS;
/// `+`: sign on positive numbers.
pub const PLUS: u8 = spec::FLAG_PLUS;
/// ` `: space in front of positive numbers.
pub const SPACE: u8 = spec::FLAG_SPACE;
/// `0`: pad numbers with zeros.
pub const ZEROPAD: u8 = spec::FLAG_ZERO;
/// `#`: alternate form.
pub const SPECIAL: u8 = spec::FLAG_HASH;
/// Internal: the conversion is signed.
const SIGN: u8 = 32;
/// Internal: upper-case hex digits.
const LARGE: u8 = 64;

const DIGITS_LOWER: &[u8; 16] = b"0123456789abcdef";
const DIGITS_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Two decimal digits per entry, for fast base-10 conversion.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

/// Writes the decimal digits of `n` at the end of `buf` and returns where
/// they start.
#[inline]
fn decimal_digits(mut n: u64, buf: &mut [u8; 24]) -> usize {
    let mut i = buf.len();
    while n >= 100 {
        let r = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        buf[i] = PAIRS[r];
        buf[i + 1] = PAIRS[r + 1];
    }
    if n >= 10 {
        let r = n as usize * 2;
        i -= 2;
        buf[i] = PAIRS[r];
        buf[i + 1] = PAIRS[r + 1];
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    i
}

/// Appends `v` in decimal (what `%d` and `str_from_i64` print).
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 24];
    let start = decimal_digits(v.unsigned_abs(), &mut buf);
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[start..]);
}

/// Number of characters `v` takes in decimal (stap's `needed_space`).
pub fn needed_space(v: i64) -> usize {
    let mut buf = [0u8; 24];
    24 - decimal_digits(v.unsigned_abs(), &mut buf) + usize::from(v < 0)
}

fn pad(out: &mut Vec<u8>, byte: u8, n: i32) {
    if n > 0 {
        out.resize(out.len() + n as usize, byte);
    }
}

/// SystemTap's `number()`: one integer conversion.
fn number(out: &mut Vec<u8>, mut num: u64, base: u32, width: i32, precision: i32, mut flags: u8) {
    let mut size = width;
    let mut precision = precision;
    if flags & LEFT != 0 {
        flags &= !ZEROPAD;
    }
    let fill = if flags & ZEROPAD != 0 { b'0' } else { b' ' };
    let mut sign = 0u8;
    if flags & SIGN != 0 {
        if (num as i64) < 0 {
            sign = b'-';
            num = (num as i64).wrapping_neg() as u64;
            size -= 1;
        } else if flags & PLUS != 0 {
            sign = b'+';
            size -= 1;
        } else if flags & SPACE != 0 {
            sign = b' ';
            size -= 1;
        }
    }
    if flags & SPECIAL != 0 {
        if base == 16 {
            size -= 2;
        } else if base == 8 {
            size -= 1;
        }
    }
    let digits = if flags & LARGE != 0 {
        DIGITS_UPPER
    } else {
        DIGITS_LOWER
    };
    let mut tmp = [0u8; 66];
    let mut i = tmp.len();
    if base == 10 {
        let mut buf = [0u8; 24];
        let start = decimal_digits(num, &mut buf);
        let n = 24 - start;
        i -= n;
        tmp[i..].copy_from_slice(&buf[start..]);
    } else {
        let shift = base.trailing_zeros();
        let mask = (base - 1) as u64;
        loop {
            i -= 1;
            tmp[i] = digits[(num & mask) as usize];
            num >>= shift;
            if num == 0 {
                break;
            }
        }
    }
    let ndigits = (tmp.len() - i) as i32;
    if ndigits > precision {
        precision = ndigits;
    }
    size -= precision;
    if flags & (ZEROPAD | LEFT) == 0 {
        pad(out, b' ', size);
        size = size.min(0);
    }
    if sign != 0 {
        out.push(sign);
    }
    if flags & SPECIAL != 0 {
        if base == 8 {
            out.push(b'0');
        } else if base == 16 {
            out.push(b'0');
            out.push(if flags & LARGE != 0 { b'X' } else { b'x' });
        }
    }
    if flags & LEFT == 0 {
        pad(out, fill, size);
        size = size.min(0);
    }
    pad(out, b'0', precision - ndigits);
    out.extend_from_slice(&tmp[i..]);
    pad(out, b' ', size);
}

/// The escape SystemTap prints for a byte under `%#c`, if it needs one.
fn char_escape(c: u8) -> Option<u8> {
    Some(match c {
        0x07 => b'a',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x0b => b'v',
        b'\'' => b'\'',
        b'\\' => b'\\',
        _ => return None,
    })
}

/// Pushes the three octal digits of `c`.
pub fn push_octal(out: &mut Vec<u8>, c: u8) {
    out.push(b'0' + ((c >> 6) & 3));
    out.push(b'0' + ((c >> 3) & 7));
    out.push(b'0' + (c & 7));
}

/// `%c`: one byte, escaped under `#`.
fn character(out: &mut Vec<u8>, c: u8, width: i32, flags: u8) {
    let quoteworthy =
        flags & SPECIAL != 0 && (!(0x20..0x7f).contains(&c) || c == b'\'' || c == b'\\');
    let size: i32 = if !quoteworthy {
        1
    } else if char_escape(c).is_some() {
        2
    } else {
        4
    };
    if flags & LEFT == 0 {
        pad(out, b' ', width - size);
    }
    if !quoteworthy {
        out.push(c);
    } else {
        out.push(b'\\');
        match char_escape(c) {
            Some(e) => out.push(e),
            None => push_octal(out, c),
        }
    }
    if flags & LEFT != 0 {
        pad(out, b' ', width - size);
    }
}

/// `%b`: the value's low `precision` bytes (1, 2, 4 or 8), little-endian,
/// NUL-padded to the width.
fn binary(out: &mut Vec<u8>, v: i64, width: i32, precision: i32, flags: u8) {
    let valid = |p: i32| matches!(p, 1 | 2 | 4 | 8);
    let mut precision = if valid(precision) { precision } else { -1 };
    let mut width = width;
    if width == -1 {
        if precision == -1 {
            width = 8;
            precision = 8;
        } else {
            width = precision;
        }
    } else if precision == -1 {
        precision = if valid(width) { width } else { 8 };
    }
    if flags & LEFT == 0 {
        pad(out, 0, width - precision);
    }
    out.extend_from_slice(&v.to_le_bytes()[..precision as usize]);
    if flags & LEFT != 0 {
        pad(out, 0, width - precision);
    }
}

/// Width and precision of a spec as stap's ints (-1 = none).
#[inline]
fn wp(s: i64) -> (u8, u8, i32, i32) {
    let (conv, flags, w, p) = spec::unpack(s);
    (
        conv,
        flags & 0x1f,
        w.map_or(-1, |w| w as i32),
        p.map_or(-1, |p| p as i32),
    )
}

/// Formats `v` under an integer conversion (`d i u x X o c p b`).
pub fn format_i64(out: &mut Vec<u8>, v: i64, s: i64) {
    let (conv, flags, width, precision) = wp(s);
    if flags == 0 && width < 0 && precision < 0 && (conv == b'd' || conv == b'i') {
        push_i64(out, v);
        return;
    }
    match conv {
        b'd' | b'i' => number(out, v as u64, 10, width, precision, flags | SIGN),
        b'u' => number(out, v as u64, 10, width, precision, flags),
        b'x' => number(out, v as u64, 16, width, precision, flags),
        b'X' => number(out, v as u64, 16, width, precision, flags | LARGE),
        b'o' => number(out, v as u64, 8, width, precision, flags),
        b'p' => number(out, v as u64, 16, width, precision, flags | SPECIAL),
        b'c' => character(out, v as u8, width, flags),
        b'b' => binary(out, v, width, precision, flags),
        other => {
            out.push(b'%');
            out.push(other);
        }
    }
}

/// Formats a string under `%s`: at most `precision` bytes, padded to the
/// width.
pub fn format_str(out: &mut Vec<u8>, s: &[u8], sp: i64) {
    let (_, flags, width, precision) = wp(sp);
    let len = if precision >= 0 {
        s.len().min(precision as usize)
    } else {
        s.len()
    };
    let fill = width.saturating_sub(len.min(i32::MAX as usize) as i32);
    if flags & LEFT == 0 {
        pad(out, b' ', fill);
    }
    out.extend_from_slice(&s[..len]);
    if flags & LEFT != 0 {
        pad(out, b' ', fill);
    }
    if flags & ZEROPAD != 0 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtap_abi::wasm::spec::pack;

    /// Parses a C-style conversion like `%-08.3x` into a packed spec.
    fn parse(f: &str) -> (i64, &str) {
        let b = f.as_bytes();
        assert_eq!(b[0], b'%');
        let mut i = 1;
        let mut flags = 0;
        loop {
            flags |= match b[i] {
                b'-' => LEFT,
                b'+' => PLUS,
                b' ' => SPACE,
                b'0' => ZEROPAD,
                b'#' => SPECIAL,
                _ => break,
            };
            i += 1;
        }
        let num = |i: &mut usize| {
            let s = *i;
            while b[*i].is_ascii_digit() {
                *i += 1;
            }
            (*i > s).then(|| f[s..*i].parse::<u32>().unwrap())
        };
        let width = num(&mut i);
        let precision = if b[i] == b'.' {
            i += 1;
            Some(num(&mut i).unwrap_or(0))
        } else {
            None
        };
        (pack(b[i], flags, width, precision), &f[i + 1..])
    }

    /// Formats `v` under the conversion at the start of `f`; the rest of
    /// `f` is appended as a literal (to make padding visible).
    fn fi(f: &str, v: i64) -> String {
        let (sp, tail) = parse(f);
        let mut out = Vec::new();
        format_i64(&mut out, v, sp);
        out.extend_from_slice(tail.as_bytes());
        String::from_utf8(out).unwrap()
    }

    fn fs(f: &str, v: &str) -> Vec<u8> {
        let (sp, tail) = parse(f);
        let mut out = Vec::new();
        format_str(&mut out, v.as_bytes(), sp);
        out.extend_from_slice(tail.as_bytes());
        out
    }

    #[test]
    fn decimal_like_c() {
        assert_eq!(fi("%d", 0), "0");
        assert_eq!(fi("%d", -42), "-42");
        assert_eq!(fi("%d", i64::MIN), "-9223372036854775808");
        assert_eq!(fi("%i", i64::MAX), "9223372036854775807");
        assert_eq!(fi("%5d", 42), "   42");
        assert_eq!(fi("%-5d|", 42), "42   |");
        assert_eq!(fi("%05d", -42), "-0042");
        assert_eq!(fi("%+d", 42), "+42");
        assert_eq!(fi("% d", 42), " 42");
        assert_eq!(fi("%+d", -42), "-42");
        assert_eq!(fi("%.5d", 42), "00042");
        assert_eq!(fi("%8.5d", -42), "  -00042");
        assert_eq!(fi("%-8.5d|", 42), "00042   |");
        assert_eq!(fi("%u", -1), "18446744073709551615");
        assert_eq!(fi("%+u", 5), "5");
    }

    #[test]
    fn hex_octal_pointer_like_stap() {
        assert_eq!(fi("%x", 255), "ff");
        assert_eq!(fi("%X", 255), "FF");
        assert_eq!(fi("%#x", 255), "0xff");
        assert_eq!(fi("%#X", 255), "0XFF");
        assert_eq!(fi("%#x", 0), "0x0"); // C would print "0"
        assert_eq!(fi("%#o", 8), "010");
        assert_eq!(fi("%#o", 0), "00"); // C would print "0"
        assert_eq!(fi("%o", 8), "10");
        assert_eq!(fi("%x", -1), "ffffffffffffffff");
        assert_eq!(fi("%08x", 0xbeef), "0000beef");
        assert_eq!(fi("%#08x", 0xbeef), "0x00beef");
        assert_eq!(fi("%#8x", 0xbeef), "  0xbeef");
        assert_eq!(fi("%-#8x|", 0xbeef), "0xbeef  |");
        assert_eq!(fi("%p", 0x1234), "0x1234");
        assert_eq!(fi("%p", 0), "0x0");
        assert_eq!(fi("%18p", 0x1234), "            0x1234");
        assert_eq!(fi("%018p", 0x1234), "0x0000000000001234");
        assert_eq!(fi("%.4x", 10), "000a");
        // Unlike C, a precision keeps the 0 flag.
        assert_eq!(fi("%08.4x", 10), "0000000a");
        // Unlike C, precision 0 still prints a zero.
        assert_eq!(fi("%.0d", 0), "0");
    }

    #[test]
    fn chars() {
        assert_eq!(fi("%c", 65), "A");
        assert_eq!(fi("%3c", 65), "  A");
        assert_eq!(fi("%-3c|", 65), "A  |");
        assert_eq!(fi("%#c", 10), "\\n");
        assert_eq!(fi("%#c", 1), "\\001");
        assert_eq!(fi("%#c", 0x27), "\\'");
        assert_eq!(fi("%#5c", 1), " \\001");
        assert_eq!(fi("%c", 0x141), "A");
    }

    #[test]
    fn binary_bytes() {
        let mut out = Vec::new();
        format_i64(&mut out, 0x0102, parse("%b").0);
        assert_eq!(out, [2, 1, 0, 0, 0, 0, 0, 0]);
        out.clear();
        format_i64(&mut out, 0x0102, parse("%.2b").0);
        assert_eq!(out, [2, 1]);
        out.clear();
        format_i64(&mut out, 0x0102, parse("%4b").0);
        assert_eq!(out, [2, 1, 0, 0]);
        out.clear();
        format_i64(&mut out, 0x41, parse("%3.1b").0);
        assert_eq!(out, [0, 0, 0x41]);
        out.clear();
        format_i64(&mut out, 0x41, parse("%-3.1b").0);
        assert_eq!(out, [0x41, 0, 0]);
    }

    #[test]
    fn strings() {
        assert_eq!(fs("%s", "abc"), b"abc");
        assert_eq!(fs("%5s", "abc"), b"  abc");
        assert_eq!(fs("%-5s|", "abc"), b"abc  |");
        assert_eq!(fs("%.2s", "abc"), b"ab");
        assert_eq!(fs("%5.2s", "abc"), b"   ab");
        assert_eq!(fs("%.0s", "abc"), b"");
        assert_eq!(fs("%2s", "abcdef"), b"abcdef");
        assert_eq!(fs("%0s", "a"), b"a\0");
    }

    #[test]
    fn decimal_helpers() {
        for v in [0, 9, 10, 99, 100, -1, -10, i64::MIN, i64::MAX, 12345] {
            let mut out = Vec::new();
            push_i64(&mut out, v);
            assert_eq!(out, v.to_string().as_bytes());
            assert_eq!(needed_space(v), v.to_string().len());
        }
    }
}
