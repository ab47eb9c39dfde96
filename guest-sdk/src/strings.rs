//! Pure byte-string helpers behind the string runtime functions, with
//! SystemTap's semantics (`strtol` is the kernel's `simple_strtol`,
//! `text_str` is `_stp_text_str`, `tokenize` is `strsep` based).

use alloc::vec::Vec;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Length of the NUL-terminated string in `bytes` (all of it if no NUL),
/// scanning eight bytes at a time.
pub fn cstr_len(bytes: &[u8]) -> usize {
    let mut i = 0;
    while i + 8 <= bytes.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[i..i + 8]);
        let w = u64::from_le_bytes(w);
        let z = w.wrapping_sub(LO) & !w & HI;
        if z != 0 {
            return i + (z.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < bytes.len() {
        if bytes[i] == 0 {
            return i;
        }
        i += 1;
    }
    bytes.len()
}

/// Index of the first occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let Some((&first, rest)) = needle.split_first() else {
        return Some(0);
    };
    if needle.len() > hay.len() {
        return None;
    }
    let last_start = hay.len() - needle.len();
    let mut i = 0;
    while i <= last_start {
        match hay[i..=last_start].iter().position(|&b| b == first) {
            None => return None,
            Some(off) => {
                i += off;
                if &hay[i + 1..i + needle.len()] == rest {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

/// Appends `hay` with every occurrence of `search` replaced by `repl`,
/// stopping at `max` bytes. An empty `search` leaves `hay` unchanged.
pub fn replace(out: &mut Vec<u8>, hay: &[u8], search: &[u8], repl: &[u8], max: usize) {
    let start = out.len();
    if search.is_empty() {
        out.extend_from_slice(hay);
    } else {
        let mut rest = hay;
        while let Some(i) = find(rest, search) {
            out.extend_from_slice(&rest[..i]);
            out.extend_from_slice(repl);
            rest = &rest[i + search.len()..];
            if out.len() - start >= max {
                break;
            }
        }
        out.extend_from_slice(rest);
    }
    out.truncate(start + (out.len() - start).min(max));
}

/// The kernel's `simple_strtol`, which stap's `strtol` calls: an optional
/// `-`, base 0 detecting `0x` (16) and `0` (8), an optional `0x` for base
/// 16, then digits until the first one that is not below the base. No
/// whitespace is skipped; overflow wraps. Bases outside 0 and 2..=36 give 0.
pub fn strtol(s: &[u8], base: i64) -> i64 {
    let mut i = 0;
    let neg = s.first() == Some(&b'-');
    if neg {
        i = 1;
    }
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    let mut base = base;
    if base == 0 {
        base = if at(i) == b'0' {
            if at(i + 1).eq_ignore_ascii_case(&b'x') && at(i + 2).is_ascii_hexdigit() {
                16
            } else {
                8
            }
        } else {
            10
        };
    }
    if !(2..=36).contains(&base) {
        return 0;
    }
    if base == 16 && at(i) == b'0' && at(i + 1).eq_ignore_ascii_case(&b'x') {
        i += 2;
    }
    let mut acc: u64 = 0;
    while i < s.len() {
        let c = s[i];
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'z' => c - b'a' + 10,
            b'A'..=b'Z' => c - b'A' + 10,
            _ => break,
        } as i64;
        if d >= base {
            break;
        }
        acc = acc.wrapping_mul(base as u64).wrapping_add(d as u64);
        i += 1;
    }
    if neg {
        (acc as i64).wrapping_neg()
    } else {
        acc as i64
    }
}

/// stap's `_stp_decode_utf8`: a valid 2-4 byte sequence gives its code
/// point and length; anything else its first byte, verbatim.
fn decode_utf8(buf: &[u8]) -> (usize, u32) {
    let b = buf[0];
    let size = buf.len() - 1;
    let (n, mut c) = if b & 0xe0 == 0xc0 && size >= 1 {
        (2, (b & 0x1f) as u32)
    } else if b & 0xf0 == 0xe0 && size >= 2 {
        (3, (b & 0x0f) as u32)
    } else if b & 0xf8 == 0xf0 && size >= 3 {
        (4, (b & 0x07) as u32)
    } else {
        return (1, b as u32);
    };
    for &b2 in &buf[1..n] {
        if b2 & 0xc0 != 0x80 {
            return (1, b as u32);
        }
        c = (c << 6) | (b2 & 0x3f) as u32;
    }
    if (0xd800..=0xdfff).contains(&c)
        || !(0x80..=0x10ffff).contains(&c)
        || (n == 3 && c < 0x800)
        || (n == 4 && c < 0x10000)
    {
        return (1, b as u32);
    }
    (n, c)
}

fn text_escape(c: u32) -> Option<u8> {
    Some(match c {
        0x07 => b'a',
        0x08 => b'b',
        0x0c => b'f',
        0x0a => b'n',
        0x0d => b'r',
        0x09 => b't',
        0x0b => b'v',
        0x22 => b'"',
        0x5c => b'\\',
        _ => return None,
    })
}

/// stap's `_stp_text_str`: appends `input` (up to its first NUL) with
/// non-printable bytes escaped (`\n`, `\"`, `\\`, octal `\ooo`) and valid
/// multi-byte UTF-8 as `\uXXXX` / `\UXXXXXXXX`, in at most `outlen` bytes
/// (`outlen <= 0` or above `max` means `max`). `quoted` wraps the result in
/// double quotes; a truncated result then ends in `"...` as in stap.
/// `ellipsis` asks for a trailing `...` on truncation without quotes.
pub fn text_str(
    out: &mut Vec<u8>,
    input: &[u8],
    outlen: i64,
    quoted: bool,
    ellipsis: bool,
    max: usize,
) {
    let start = out.len();
    let input = &input[..input.len().min(max)];
    let mut outlen: i64 = if outlen <= 0 || outlen > max as i64 {
        max as i64
    } else {
        outlen
    };
    if quoted {
        outlen = outlen.max(5) - 2;
        out.push(b'"');
    }
    let mut pos = 0;
    let mut c = 0u32;
    // The first escape sequence that truncation could cut in half (stap
    // then drops all of it): its start in `out` and its length.
    let mut esc: Option<(usize, i64)> = None;
    while pos < input.len() {
        let (n, ch) = decode_utf8(&input[pos..]);
        c = ch;
        if c == 0 || outlen <= 0 {
            break;
        }
        // stap consumes the character before checking that it fits.
        pos += n;
        let num: i64 = if n > 1 {
            if c <= 0xffff { 6 } else { 10 }
        } else if (0x20..0x7f).contains(&c) && c != 0x22 && c != 0x5c {
            1
        } else if text_escape(c).is_some() {
            2
        } else {
            4
        };
        if num > 1 && esc.is_none() && outlen - 3 < num {
            esc = Some((out.len(), num));
        }
        if outlen < num {
            break;
        }
        if n > 1 {
            out.push(b'\\');
            out.push(if c <= 0xffff { b'u' } else { b'U' });
            for i in (0..num - 2).rev() {
                out.push(b"0123456789abcdef"[((c >> (i * 4)) & 0xf) as usize]);
            }
        } else if num == 1 {
            out.push(c as u8);
        } else {
            out.push(b'\\');
            match text_escape(c) {
                Some(e) => out.push(e),
                None => super::fmt::push_octal(out, c as u8),
            }
        }
        outlen -= num;
    }
    let truncated = c != 0 && pos < input.len();
    if quoted {
        if truncated {
            let len = out.len() as i64;
            let mut at = (len - 3 + outlen).clamp((start + 1) as i64, len);
            if let Some((e, n)) = esc
                && (e as i64) < at
                && at < e as i64 + n
            {
                at = e as i64;
            }
            out.truncate(at as usize);
            out.extend_from_slice(b"\"...");
        } else {
            out.push(b'"');
        }
    } else if truncated && ellipsis {
        let len = out.len() as i64;
        let at = (len - 3 + outlen).clamp(start as i64, len);
        out.truncate(at as usize);
        out.extend_from_slice(b"...");
    }
}

/// State of stap's `tokenize`: a private copy of the last non-empty input
/// and the position `strsep` continues from.
#[derive(Default)]
pub struct Tokenizer {
    buf: Vec<u8>,
    /// `None` once the input is used up (strsep's NULL).
    pos: Option<usize>,
}

impl Tokenizer {
    /// The next token: a non-empty `input` restarts on it (truncated to
    /// `max`), an empty one continues; empty tokens between adjacent
    /// delimiters are skipped; returns `None` when nothing is left.
    pub fn next(&mut self, input: &[u8], delim: &[u8], max: usize) -> Option<&[u8]> {
        if !input.is_empty() {
            let n = cstr_len(&input[..input.len().min(max)]);
            self.buf.clear();
            self.buf.extend_from_slice(&input[..n]);
            self.pos = Some(0);
        }
        loop {
            let start = self.pos?;
            let rest = &self.buf[start..];
            let (end, next) = match rest.iter().position(|b| delim.contains(b)) {
                Some(i) => (start + i, Some(start + i + 1)),
                None => (self.buf.len(), None),
            };
            self.pos = next;
            if end > start {
                return Some(&self.buf[start..end]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &[u8], outlen: i64, quoted: bool) -> String {
        let mut out = Vec::new();
        text_str(&mut out, s, outlen, quoted, false, 1023);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cstr() {
        assert_eq!(cstr_len(b"abc\0def"), 3);
        assert_eq!(cstr_len(b"abcdefghij\0"), 10);
        assert_eq!(cstr_len(b"abcdefghijklmnop"), 16);
        assert_eq!(cstr_len(b"\0"), 0);
        assert_eq!(cstr_len(b""), 0);
        assert_eq!(cstr_len(b"\x80\x80\x80\x80\x80\x80\x80\x80\x01\0"), 9);
    }

    #[test]
    fn find_and_replace() {
        assert_eq!(find(b"hello world", b"o w"), Some(4));
        assert_eq!(find(b"hello", b""), Some(0));
        assert_eq!(find(b"hello", b"lo"), Some(3));
        assert_eq!(find(b"hello", b"lol"), None);
        assert_eq!(find(b"aaab", b"aab"), Some(1));
        let mut out = Vec::new();
        replace(&mut out, b"a-b-c", b"-", b"--", 100);
        assert_eq!(out, b"a--b--c");
        out.clear();
        replace(&mut out, b"abc", b"", b"x", 100);
        assert_eq!(out, b"abc");
        out.clear();
        replace(&mut out, b"aaaa", b"a", b"bb", 5);
        assert_eq!(out, b"bbbbb");
    }

    #[test]
    fn strtol_like_kernel() {
        assert_eq!(strtol(b"123", 10), 123);
        assert_eq!(strtol(b"-123abc", 10), -123);
        assert_eq!(strtol(b"0x1f", 16), 31);
        assert_eq!(strtol(b"1f", 16), 31);
        assert_eq!(strtol(b"0x1f", 0), 31);
        assert_eq!(strtol(b"017", 0), 15);
        assert_eq!(strtol(b"17", 0), 17);
        assert_eq!(strtol(b"0x", 0), 0);
        assert_eq!(strtol(b"101", 2), 5);
        assert_eq!(strtol(b"zz", 36), 35 * 36 + 35);
        assert_eq!(strtol(b" 12", 10), 0);
        assert_eq!(strtol(b"", 10), 0);
        assert_eq!(strtol(b"12", 1), 0);
    }

    #[test]
    fn text_str_like_stap() {
        assert_eq!(ts(b"plain", 0, false), "plain");
        assert_eq!(ts(b"a\nb\t\"c\\", 0, false), "a\\nb\\t\\\"c\\\\");
        assert_eq!(ts(b"\x01\x7f", 0, false), "\\001\\177");
        assert_eq!(ts("é€😀".as_bytes(), 0, false), "\\u00e9\\u20ac\\U0001f600");
        assert_eq!(ts(b"\xff", 0, false), "\\377");
        assert_eq!(ts(b"ab\0cd", 0, false), "ab");
        assert_eq!(ts(b"abc", 0, true), "\"abc\"");
        assert_eq!(ts(b"abcdefgh", 5, false), "abcde");
        // Quoted truncation fits "..." into the limit, as stap does.
        assert_eq!(ts(b"abcdefgh", 8, true), "\"abc\"...");
        assert_eq!(ts(b"abcd", 5, true), "\"\"...");
        assert_eq!(ts(b"abc", 5, true), "\"abc\"");
        // An escape cut by the ellipsis goes away whole.
        assert_eq!(ts(b"ab\ncdefgh", 8, true), "\"ab\"...");
        let mut out = Vec::new();
        text_str(&mut out, b"abcdefgh", 6, false, true, 1023);
        assert_eq!(out, b"abc...");
    }

    #[test]
    fn tokenize_like_stap() {
        let mut t = Tokenizer::default();
        assert_eq!(t.next(b"", b" ", 1023), None);
        assert_eq!(t.next(b"  a b,,c ", b" ,", 1023), Some(&b"a"[..]));
        assert_eq!(t.next(b"", b" ,", 1023), Some(&b"b"[..]));
        assert_eq!(t.next(b"", b" ,", 1023), Some(&b"c"[..]));
        assert_eq!(t.next(b"", b" ,", 1023), None);
        assert_eq!(t.next(b"", b" ,", 1023), None);
        assert_eq!(t.next(b"x:y", b"", 1023), Some(&b"x:y"[..]));
        assert_eq!(t.next(b"", b"", 1023), None);
        assert_eq!(t.next(b"x:y", b":", 1023), Some(&b"x"[..]));
        assert_eq!(t.next(b"", b"", 1023), Some(&b"y"[..]));
    }
}
