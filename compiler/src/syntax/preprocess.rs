//! Preprocessor conditionals `%( COND %? THEN %: ELSE %)` on the token stream.
//!
//! Follows stap's `parser::scan_pp` (parse.cxx): the else part is optional,
//! conditionals nest, and tokens of the branch not taken are dropped
//! without being looked at (lexing errors in them are ignored). Kept tokens
//! keep their spans, so later errors still point into the original text.
//!
//! A condition is `LEFT OP RIGHT` terms joined by `&&` and `||` (`&&` binds
//! tighter; every term is evaluated). OP is `== != < <= > >=`. Terms:
//!
//! - `kernel_v` / `kernel_vr` against a version string such as `"2.6.32"`:
//!   compared like `strverscmp`; with `==`/`!=` the string may hold `*?[`
//!   wildcards. Both compare with [`ParseOptions::kernel_version`] written as
//!   `X.Y.Z` (wasmtap knows no release suffix).
//! - `systemtap_v` against a version string: wasmtap speaks the language of
//!   stap [`SYSTEMTAP_VERSION`].
//! - `arch == "x86_64"` / `!=`, with wildcards, against [`ParseOptions::arch`].
//! - `$#` (the argument count) and `@#` (the same as a string), `$N` (a
//!   number when it reads as one, else a string), `@N` (a string), number
//!   and string literals against each other. A string that reads as a
//!   number compares with a number as one (so `@# > 1` works too).
//!
//! `CONFIG_*`, `runtime`, `guru_mode` and `systemtap_privilege` are not
//! known to wasmtap and are errors. `@define` macros are not supported.
//!
//! After the first error the output ends with an error token and the end of
//! input, so the parser reports it when it gets there.

use std::cmp::Ordering;

use super::ParseOptions;
use super::lexer::{Punct, Token, TokenKind, parse_int};
use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// The stap language version that `systemtap_v` conditions compare with.
pub const SYSTEMTAP_VERSION: &str = "5.0";

/// Which branch of an open conditional is being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Branch {
    KeepThen,
    SkipThen,
    KeepElse,
    SkipElse,
}

struct Frame {
    open: Span,
    branch: Branch,
}

/// Applies the conditionals in `tokens` (as made by [`super::lexer::lex`],
/// ending with the end-of-input token) for `options`.
///
/// The result has no `%(`, `%?`, `%:` or `%)` tokens. On an error it ends
/// with a [`TokenKind::Error`] token followed by [`TokenKind::Eof`].
pub fn preprocess(source: &str, tokens: Vec<Token>, options: &ParseOptions) -> Vec<Token> {
    let mut out = Vec::with_capacity(tokens.len());
    match run(source, &tokens, options, &mut out) {
        Ok(()) => {}
        Err(diagnostic) => {
            let span = diagnostic.primary.span;
            out.push(Token {
                kind: TokenKind::Error(diagnostic),
                span,
            });
            let end = tokens.last().map_or(span, |t| t.span);
            out.push(Token {
                kind: TokenKind::Eof,
                span: end,
            });
        }
    }
    out
}

fn run(
    source: &str,
    tokens: &[Token],
    options: &ParseOptions,
    out: &mut Vec<Token>,
) -> Result<(), Box<Diagnostic>> {
    let mut stack: Vec<Frame> = Vec::new();
    // Depth of conditionals opened inside a skipped branch.
    let mut skipped_nesting = 0u32;
    let mut i = 0;
    while let Some(tok) = tokens.get(i) {
        i += 1;
        let skipping = stack
            .last()
            .is_some_and(|f| matches!(f.branch, Branch::SkipThen | Branch::SkipElse));
        if skipping {
            match &tok.kind {
                TokenKind::Eof => return Err(incomplete(&stack, tok.span)),
                TokenKind::PpOpen => skipped_nesting += 1,
                TokenKind::PpClose if skipped_nesting > 0 => skipped_nesting -= 1,
                TokenKind::PpClose => {
                    stack.pop();
                }
                TokenKind::PpElse if skipped_nesting == 0 => else_marker(&mut stack, tok.span)?,
                TokenKind::PpThen if skipped_nesting == 0 => return Err(stray_then(tok.span)),
                _ => {}
            }
            continue;
        }
        match &tok.kind {
            TokenKind::PpOpen => {
                let (keep, next) = condition(source, tokens, i, tok.span, options)?;
                i = next;
                stack.push(Frame {
                    open: tok.span,
                    branch: if keep {
                        Branch::KeepThen
                    } else {
                        Branch::SkipThen
                    },
                });
            }
            TokenKind::PpThen => return Err(stray_then(tok.span)),
            TokenKind::PpElse => else_marker(&mut stack, tok.span)?,
            TokenKind::PpClose => {
                if stack.pop().is_none() {
                    return Err(Box::new(
                        Diagnostic::error(
                            "'%)' without a matching '%('",
                            tok.span,
                            "no conditional is open here",
                        )
                        .with_hint("a conditional reads %( CONDITION %? THEN %: ELSE %)"),
                    ));
                }
            }
            TokenKind::Eof => {
                if !stack.is_empty() {
                    return Err(incomplete(&stack, tok.span));
                }
                out.push(tok.clone());
                return Ok(());
            }
            TokenKind::AtWord if &source[tok.span.range()] == "@define" => {
                return Err(Box::new(
                    Diagnostic::error(
                        "macros (@define) are not supported by wasmtap",
                        tok.span,
                        "macro definition",
                    )
                    .with_hint("write a script function instead"),
                ));
            }
            _ => out.push(tok.clone()),
        }
    }
    Ok(())
}

fn stray_then(span: Span) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::error(
            "'%?' without a matching '%('",
            span,
            "no conditional is open here",
        )
        .with_hint("a conditional reads %( CONDITION %? THEN %: ELSE %)"),
    )
}

fn incomplete(stack: &[Frame], eof: Span) -> Box<Diagnostic> {
    let open = stack.last().map_or(eof, |f| f.open);
    Box::new(
        Diagnostic::error("expected '%)', found end of input", eof, "expected '%)'")
            .with_secondary(open, "this conditional is never closed"),
    )
}

fn else_marker(stack: &mut [Frame], span: Span) -> Result<(), Box<Diagnostic>> {
    let Some(frame) = stack.last_mut() else {
        return Err(Box::new(
            Diagnostic::error(
                "'%:' without a matching '%('",
                span,
                "no conditional is open here",
            )
            .with_hint("a conditional reads %( CONDITION %? THEN %: ELSE %)"),
        ));
    };
    frame.branch = match frame.branch {
        Branch::KeepThen => Branch::SkipElse,
        Branch::SkipThen => Branch::KeepElse,
        Branch::KeepElse | Branch::SkipElse => {
            return Err(Box::new(
                Diagnostic::error("duplicate '%:' in conditional", span, "second '%:'")
                    .with_secondary(frame.open, "in this conditional"),
            ));
        }
    };
    Ok(())
}

/// A value in a condition.
#[derive(Debug, PartialEq)]
enum Value {
    Int(i64),
    Str(String),
}

/// Evaluates the condition starting at `tokens[i]` (just after `%(` at
/// `open`); returns its truth and the index after `%?`.
fn condition(
    source: &str,
    tokens: &[Token],
    mut i: usize,
    open: Span,
    options: &ParseOptions,
) -> Result<(bool, usize), Box<Diagnostic>> {
    let last = tokens.len().saturating_sub(1);
    let take = |i: &mut usize| {
        let tok = &tokens[(*i).min(last)];
        if *i < last {
            *i += 1;
        }
        tok
    };
    let mut result = false;
    let mut all = true;
    loop {
        let left = take(&mut i);
        let op = take(&mut i);
        let right = take(&mut i);
        all &= term(source, left, op, right, open, options)?;
        let next = take(&mut i);
        match &next.kind {
            TokenKind::Punct(Punct::AndAnd) => continue,
            TokenKind::Punct(Punct::OrOr) => {
                result |= all;
                all = true;
            }
            TokenKind::PpThen => {
                result |= all;
                return Ok((result, i));
            }
            TokenKind::Error(d) => return Err(d.clone()),
            _ => {
                return Err(Box::new(
                    Diagnostic::error(
                        format!("expected '%?', found {}", describe(source, next)),
                        next.span,
                        "expected '%?'",
                    )
                    .with_secondary(open, "in this conditional")
                    .with_hint("a conditional reads %( CONDITION %? THEN %: ELSE %)"),
                ));
            }
        }
    }
}

/// How a token is named in "found ..." messages.
fn describe(source: &str, tok: &Token) -> String {
    match tok.kind {
        TokenKind::Eof => "end of input".to_owned(),
        _ => format!("'{}'", &source[tok.span.range()]),
    }
}

fn term(
    source: &str,
    left: &Token,
    op: &Token,
    right: &Token,
    open: Span,
    options: &ParseOptions,
) -> Result<bool, Box<Diagnostic>> {
    for tok in [left, op, right] {
        if let TokenKind::Error(d) = &tok.kind {
            return Err(d.clone());
        }
        if let TokenKind::ScriptArg { index, .. } = tok.kind
            && index as usize > options.args.len()
        {
            return Err(Box::new(missing_arg(source, tok.span, options.args.len())));
        }
    }
    let hint = "a condition compares kernel_v, kernel_vr, arch, systemtap_v, $# or @# with a literal, e.g. %( kernel_v >= \"5.8\" %? ... %)";
    let expected = |what: &str, tok: &Token| {
        Box::new(
            Diagnostic::error(
                format!("expected {what}, found {}", describe(source, tok)),
                tok.span,
                format!("expected {what}"),
            )
            .with_secondary(open, "in this conditional")
            .with_hint(hint),
        )
    };
    if left.kind != TokenKind::Ident && value(left, options).is_none() {
        return Err(expected("a condition", left));
    }
    let TokenKind::Punct(punct) = op.kind else {
        return Err(expected("a comparison operator", op));
    };
    let cmp: fn(Ordering) -> bool = match punct {
        Punct::EqEq => |o| o == Ordering::Equal,
        Punct::NotEq => |o| o != Ordering::Equal,
        Punct::Lt => |o| o == Ordering::Less,
        Punct::Le => |o| o != Ordering::Greater,
        Punct::Gt => |o| o == Ordering::Greater,
        Punct::Ge => |o| o != Ordering::Less,
        _ => return Err(expected("a comparison operator", op)),
    };
    let equality = matches!(punct, Punct::EqEq | Punct::NotEq);
    if left.kind == TokenKind::Ident {
        let name = &source[left.span.range()];
        let target = match name {
            "kernel_v" | "kernel_vr" => {
                let (a, b, c) = options.kernel_version;
                format!("{a}.{b}.{c}")
            }
            "systemtap_v" => SYSTEMTAP_VERSION.to_owned(),
            "arch" => {
                let TokenKind::Str(query) = &right.kind else {
                    return Err(expected("a string literal", right));
                };
                if !equality {
                    return Err(expected("'==' or '!='", op));
                }
                return Ok(glob_match(query, &options.arch) == (punct == Punct::EqEq));
            }
            _ if name.starts_with("CONFIG_") => {
                return Err(Box::new(Diagnostic::error(
                    "kernel configuration options are not known to wasmtap",
                    left.span,
                    "cannot be tested",
                )));
            }
            _ => {
                return Err(Box::new(
                    Diagnostic::error(
                        format!("unknown preprocessor condition '{name}'"),
                        left.span,
                        "not something a conditional can test",
                    )
                    .with_hint(hint),
                ));
            }
        };
        let TokenKind::Str(query) = &right.kind else {
            return Err(expected("a version string", right));
        };
        if query.contains(['*', '?', '[']) {
            if !equality {
                return Err(Box::new(Diagnostic::error(
                    "wildcards need '==' or '!='",
                    op.span,
                    "an order comparison",
                )));
            }
            return Ok(glob_match(query, &target) == (punct == Punct::EqEq));
        }
        return Ok(cmp(version_cmp(&target, query)));
    }
    let lhs = value(left, options).ok_or_else(|| expected("a condition", left))?;
    let rhs = value(right, options).ok_or_else(|| expected("a string or number", right))?;
    match (lhs, rhs) {
        (Value::Int(a), Value::Int(b)) => Ok(cmp(a.cmp(&b))),
        (Value::Str(a), Value::Str(b)) => Ok(cmp(a.cmp(&b))),
        // A string that reads as a number (such as `@#`) compares as one.
        (Value::Int(a), Value::Str(b)) if script_arg_number(&b).is_some() => {
            Ok(cmp(a.cmp(&script_arg_number(&b).unwrap_or_default())))
        }
        (Value::Str(a), Value::Int(b)) if script_arg_number(&a).is_some() => {
            Ok(cmp(script_arg_number(&a).unwrap_or_default().cmp(&b)))
        }
        _ => Err(Box::new(Diagnostic::error(
            "cannot compare a number with a string",
            op.span,
            "a number on one side, a string on the other",
        ))),
    }
}

fn value(tok: &Token, options: &ParseOptions) -> Option<Value> {
    match &tok.kind {
        TokenKind::Int(v) => Some(Value::Int(*v as i64)),
        TokenKind::Str(s) => Some(Value::Str(s.clone())),
        TokenKind::ScriptArgCount { string: false } => Some(Value::Int(options.args.len() as i64)),
        TokenKind::ScriptArgCount { string: true } => {
            Some(Value::Str(options.args.len().to_string()))
        }
        TokenKind::ScriptArg { index, string } => {
            let arg = options.args.get(*index as usize - 1)?;
            if *string {
                return Some(Value::Str(arg.clone()));
            }
            Some(match script_arg_number(arg) {
                Some(n) => Value::Int(n),
                None => Value::Str(arg.clone()),
            })
        }
        _ => None,
    }
}

/// The error for `$N` / `@N` beyond the arguments given.
pub(crate) fn missing_arg(source: &str, span: Span, given: usize) -> Diagnostic {
    let plural = if given == 1 { "" } else { "s" };
    Diagnostic::error(
        format!("script argument {} was not given", &source[span.range()]),
        span,
        format!("the script was given {given} argument{plural}"),
    )
    .with_hint("script arguments follow the script name on the command line, as with stap")
}

/// A script argument's text read as a number: optional `-`, then a literal
/// as the lexer reads one. `None` when it is not one.
pub(crate) fn script_arg_number(arg: &str) -> Option<i64> {
    let text = arg.trim();
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, text),
    };
    let value = parse_int(digits).ok()?;
    if negative {
        if value > 1 << 63 {
            return None;
        }
        Some((value as i64).wrapping_neg())
    } else {
        Some(value as i64)
    }
}

/// Compares version strings like glibc's `strverscmp` for the usual cases:
/// runs of digits compare as numbers, other text byte by byte.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    fn chunks(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[i - 1].is_ascii_digit() {
                out.push(&s[start..i]);
                start = i;
            }
        }
        out
    }
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(cb.iter()) {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let order = if digits(x) && digits(y) {
            let (x, y) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            x.len().cmp(&y.len()).then_with(|| x.cmp(y))
        } else {
            x.cmp(y)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    ca.len().cmp(&cb.len())
}

/// Shell-style wildcard match (`*`, `?`, `[a-z]`, `[!x]`), like `fnmatch`
/// without flags.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ti));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                '[' if class_end(&p, pi).is_some() => {
                    let end = class_end(&p, pi).unwrap_or(pi);
                    if class_matches(&p[pi + 1..end], t[ti]) {
                        pi = end + 1;
                        ti += 1;
                        continue;
                    }
                }
                c if c == t[ti] => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The index of the `]` closing the class that opens at `p[open]`.
fn class_end(p: &[char], open: usize) -> Option<usize> {
    let mut i = open + 1;
    if matches!(p.get(i), Some('!' | '^')) {
        i += 1;
    }
    if p.get(i) == Some(&']') {
        i += 1;
    }
    (i..p.len()).find(|&j| p[j] == ']')
}

/// Whether `c` is in the class body (between `[` and `]`).
fn class_matches(body: &[char], c: char) -> bool {
    let (negate, body) = match body.first() {
        Some('!' | '^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut found = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            found |= body[i] <= c && c <= body[i + 2];
            i += 3;
        } else {
            found |= body[i] == c;
            i += 1;
        }
    }
    found != negate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(version_cmp("2.6.32", "2.6.9"), Ordering::Greater);
        assert_eq!(version_cmp("2.6", "2.6.32"), Ordering::Less);
        assert_eq!(version_cmp("5.10.0", "5.10.0"), Ordering::Equal);
        assert_eq!(version_cmp("4.0", "10.0"), Ordering::Less);
    }

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(glob_match("i?86", "i686"));
        assert!(glob_match("x86*", "x86_64"));
        assert!(glob_match("[xy]86_64", "x86_64"));
        assert!(!glob_match("[!x]86_64", "x86_64"));
        assert!(glob_match("5.*", "5.15.0"));
        assert!(!glob_match("arm*", "x86_64"));
        assert!(glob_match("*", ""));
    }
}
