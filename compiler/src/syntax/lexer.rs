//! Script text to tokens, each with its byte span in the original source.
//!
//! Follows SystemTap's `lexer::scan` (parse.cxx) with these choices:
//!
//! - Comments are `#` and `//` to the end of the line and `/* ... */`; an
//!   unclosed `/*` is an error (stap silently ends the file there).
//! - Names are `[A-Za-z_][A-Za-z0-9_$]*`; keywords are stap's reserved words.
//!   `$name` (also `$$parms`, `$var$`, and a bare `$`) is a [`TokenKind::Target`];
//!   `@name` is a [`TokenKind::AtWord`].
//! - `$1`, `@1` and `$#`, `@#` become [`TokenKind::ScriptArg`] and
//!   [`TokenKind::ScriptArgCount`]: stap pastes the argument text into the
//!   stream here, wasmtap keeps the reference so later passes can substitute
//!   it with a type (the parser substitutes only where the AST wants a
//!   literal, such as probe-point arguments).
//! - Numbers are a digit followed by letters and digits, read like C's
//!   `strtoull(s, 0, 0)`: decimal, `0x` hexadecimal or `0` octal, up to
//!   `u64::MAX` (stap accepts that "controlled overflow"; the value wraps to a
//!   negative `i64` in the AST).
//! - Strings are `"..."` on one line with the escapes `\n \t \r \a \b \f \v
//!   \\ \"`, octal `\ooo` and hex `\xHH`, decoded here; any other escaped
//!   character stands for itself, as in stap. The decoded bytes must be UTF-8.
//! - `%{ ... %}` is one [`TokenKind::Embedded`] token, so that the parser can
//!   reject it in one clear error (and skipped `%( %)` branches may hold it).
//!
//! Lexing never fails: a bad spot becomes a [`TokenKind::Error`] token
//! carrying its diagnostic, reported when the parser reaches it (so errors in
//! preprocessor branches that are skipped are ignored, as in stap).

use std::fmt;

use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// Reserved words, which cannot name variables or functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keyword {
    Probe,
    Global,
    Private,
    Function,
    If,
    Else,
    For,
    Foreach,
    In,
    Limit,
    Return,
    Delete,
    While,
    Break,
    Continue,
    Next,
    String,
    Long,
    Try,
    Catch,
}

impl Keyword {
    /// All keywords, for lookups and tests.
    pub const ALL: [Keyword; 20] = [
        Keyword::Probe,
        Keyword::Global,
        Keyword::Private,
        Keyword::Function,
        Keyword::If,
        Keyword::Else,
        Keyword::For,
        Keyword::Foreach,
        Keyword::In,
        Keyword::Limit,
        Keyword::Return,
        Keyword::Delete,
        Keyword::While,
        Keyword::Break,
        Keyword::Continue,
        Keyword::Next,
        Keyword::String,
        Keyword::Long,
        Keyword::Try,
        Keyword::Catch,
    ];

    /// The keyword spelled `word`, if it is one.
    pub fn lookup(word: &str) -> Option<Keyword> {
        Self::ALL.into_iter().find(|k| k.as_str() == word)
    }

    /// How the keyword is written.
    pub fn as_str(self) -> &'static str {
        match self {
            Keyword::Probe => "probe",
            Keyword::Global => "global",
            Keyword::Private => "private",
            Keyword::Function => "function",
            Keyword::If => "if",
            Keyword::Else => "else",
            Keyword::For => "for",
            Keyword::Foreach => "foreach",
            Keyword::In => "in",
            Keyword::Limit => "limit",
            Keyword::Return => "return",
            Keyword::Delete => "delete",
            Keyword::While => "while",
            Keyword::Break => "break",
            Keyword::Continue => "continue",
            Keyword::Next => "next",
            Keyword::String => "string",
            Keyword::Long => "long",
            Keyword::Try => "try",
            Keyword::Catch => "catch",
        }
    }
}

impl fmt::Display for Keyword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Operators and punctuation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Punct {
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Semi,
    Colon,
    Question,
    Dot,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Bang,
    Tilde,
    Amp,
    Pipe,
    Caret,
    Lt,
    Gt,
    Assign,
    EqEq,
    NotEq,
    Le,
    Ge,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    PlusEq,
    MinusEq,
    StarEq,
    SlashEq,
    PercentEq,
    AmpEq,
    CaretEq,
    PipeEq,
    DotEq,
    ShlEq,
    ShrEq,
    AndAnd,
    OrOr,
    PlusPlus,
    MinusMinus,
    Arrow,
    Shl,
    Shr,
    /// `<<<`: aggregate a value into a statistic.
    Aggregate,
    /// `>>>`: lexed as in stap, rejected by the parser.
    UShr,
}

/// Operators by spelling, longest first so that matching is greedy.
const PUNCTS: [(&str, Punct); 50] = [
    ("<<<", Punct::Aggregate),
    (">>>", Punct::UShr),
    ("<<=", Punct::ShlEq),
    (">>=", Punct::ShrEq),
    ("==", Punct::EqEq),
    ("!=", Punct::NotEq),
    ("<=", Punct::Le),
    (">=", Punct::Ge),
    ("=~", Punct::Match),
    ("!~", Punct::NotMatch),
    ("+=", Punct::PlusEq),
    ("-=", Punct::MinusEq),
    ("*=", Punct::StarEq),
    ("/=", Punct::SlashEq),
    ("%=", Punct::PercentEq),
    ("&=", Punct::AmpEq),
    ("^=", Punct::CaretEq),
    ("|=", Punct::PipeEq),
    (".=", Punct::DotEq),
    ("&&", Punct::AndAnd),
    ("||", Punct::OrOr),
    ("++", Punct::PlusPlus),
    ("--", Punct::MinusMinus),
    ("->", Punct::Arrow),
    ("<<", Punct::Shl),
    (">>", Punct::Shr),
    ("(", Punct::LParen),
    (")", Punct::RParen),
    ("[", Punct::LBracket),
    ("]", Punct::RBracket),
    ("{", Punct::LBrace),
    ("}", Punct::RBrace),
    (",", Punct::Comma),
    (";", Punct::Semi),
    (":", Punct::Colon),
    ("?", Punct::Question),
    (".", Punct::Dot),
    ("+", Punct::Plus),
    ("-", Punct::Minus),
    ("*", Punct::Star),
    ("/", Punct::Slash),
    ("%", Punct::Percent),
    ("!", Punct::Bang),
    ("~", Punct::Tilde),
    ("&", Punct::Amp),
    ("|", Punct::Pipe),
    ("^", Punct::Caret),
    ("<", Punct::Lt),
    (">", Punct::Gt),
    ("=", Punct::Assign),
];

impl Punct {
    /// How the operator is written.
    pub fn as_str(self) -> &'static str {
        PUNCTS
            .iter()
            .find(|(_, p)| *p == self)
            .map_or("?", |(s, _)| s)
    }
}

impl fmt::Display for Punct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token is. Names keep no text: read it from the source by span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A name that is not a keyword.
    Ident,
    /// A reserved word.
    Keyword(Keyword),
    /// `$name`, `$$parms`, `$name$`, or a bare `$` (pretty-print marker);
    /// the text includes the dollar signs.
    Target,
    /// `@name`, such as `@count` or `@cast`; the text includes the `@`.
    AtWord,
    /// `$N` (`string: false`) or `@N` (`string: true`), N >= 1.
    ScriptArg {
        /// N, counted from 1.
        index: u32,
        /// Written with `@`: the argument as a string.
        string: bool,
    },
    /// `$#` or `@#`.
    ScriptArgCount {
        /// Written `@#`: the count as a string.
        string: bool,
    },
    /// An integer literal, as read (up to `u64::MAX`).
    Int(u64),
    /// A string literal, escapes decoded.
    Str(String),
    /// An operator or punctuation mark.
    Punct(Punct),
    /// `%{ ... %}`: embedded C.
    Embedded,
    /// `%(`: starts a preprocessor conditional.
    PpOpen,
    /// `%?`: ends its condition.
    PpThen,
    /// `%:`: starts its else part.
    PpElse,
    /// `%)`: ends it.
    PpClose,
    /// Text that could not be lexed, with the error to report.
    Error(Box<Diagnostic>),
    /// The end of the input; always the last token.
    Eof,
}

/// A token and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: TokenKind,
    /// Where it is in the original source.
    pub span: Span,
}

/// Splits `source` into tokens, ending with [`TokenKind::Eof`].
///
/// Spans are byte offsets; sources of 4 GiB or more get saturated spans
/// (`syntax::parse` rejects them first).
pub fn lex(source: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        src: source,
        bytes: source.as_bytes(),
        pos: 0,
        tokens: Vec::new(),
    };
    lexer.run();
    lexer.tokens
}

/// A span from `usize` offsets, saturating at `u32::MAX`.
pub(crate) fn span(start: usize, end: usize) -> Span {
    let clamp = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    Span::new(clamp(start), clamp(end))
}

/// Reads an integer literal's text the way C's `strtoull(text, 0, 0)` does,
/// rejecting trailing garbage.
///
/// # Errors
/// A message saying whether the text is malformed or too large.
pub fn parse_int(text: &str) -> Result<u64, IntError> {
    use std::num::IntErrorKind;
    let (digits, radix) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (hex, 16)
        } else if text.len() > 1 && text.starts_with('0') {
            (&text[1..], 8)
        } else {
            (text, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(IntError::Invalid);
    }
    u64::from_str_radix(digits, radix).map_err(|e| match e.kind() {
        IntErrorKind::PosOverflow => IntError::OutOfRange,
        _ => IntError::Invalid,
    })
}

/// Why an integer literal was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntError {
    /// Not a decimal, `0x` hex or `0` octal number.
    Invalid,
    /// Larger than `u64::MAX`.
    OutOfRange,
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    tokens: Vec<Token>,
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

impl Lexer<'_> {
    fn peek_at(&self, offset: usize) -> Option<u8> {
        self.bytes.get(self.pos + offset).copied()
    }

    fn push(&mut self, kind: TokenKind, start: usize) {
        self.tokens.push(Token {
            kind,
            span: span(start, self.pos),
        });
    }

    fn error(&mut self, diagnostic: Diagnostic) {
        let span = diagnostic.primary.span;
        self.tokens.push(Token {
            kind: TokenKind::Error(Box::new(diagnostic)),
            span,
        });
    }

    fn run(&mut self) {
        loop {
            while self
                .peek_at(0)
                .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
            {
                self.pos += 1;
            }
            let start = self.pos;
            let Some(c) = self.peek_at(0) else {
                self.push(TokenKind::Eof, start);
                return;
            };
            let c2 = self.peek_at(1);
            match c {
                b'#' => self.skip_line(),
                b'/' if c2 == Some(b'/') => self.skip_line(),
                b'/' if c2 == Some(b'*') => self.skip_block_comment(),
                b'%' if c2 == Some(b'{') => self.embedded(),
                b'$' | b'@' if c2 == Some(b'#') => {
                    self.pos += 2;
                    self.push(TokenKind::ScriptArgCount { string: c == b'@' }, start);
                }
                b'$' | b'@' if c2.is_some_and(|d| d.is_ascii_digit()) => self.script_arg(c == b'@'),
                b'$' => {
                    self.pos += 1;
                    self.eat_name_chars();
                    self.push(TokenKind::Target, start);
                }
                b'@' => {
                    self.pos += 1;
                    self.eat_name_chars();
                    if self.pos == start + 1 {
                        self.error(
                            Diagnostic::error(
                                "expected a name, a number or '#' after '@'",
                                span(start, start + 1),
                                "a lone '@'",
                            )
                            .with_hint("'@' starts an operator such as @count(x) or a string argument such as @1"),
                        );
                    } else {
                        self.push(TokenKind::AtWord, start);
                    }
                }
                b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                    self.eat_name_chars();
                    let kind = match Keyword::lookup(&self.src[start..self.pos]) {
                        Some(k) => TokenKind::Keyword(k),
                        None => TokenKind::Ident,
                    };
                    self.push(kind, start);
                }
                b'0'..=b'9' => self.number(),
                b'"' => self.string(),
                _ => self.punct(),
            }
        }
    }

    fn eat_name_chars(&mut self) {
        while self.peek_at(0).is_some_and(is_name_char) {
            self.pos += 1;
        }
    }

    fn skip_line(&mut self) {
        while self.peek_at(0).is_some_and(|b| b != b'\n') {
            self.pos += 1;
        }
    }

    fn skip_block_comment(&mut self) {
        let start = self.pos;
        match self.src[start + 2..].find("*/") {
            Some(at) => self.pos = start + 2 + at + 2,
            None => {
                self.pos = self.bytes.len();
                self.error(
                    Diagnostic::error(
                        "unterminated comment",
                        span(start, start + 2),
                        "this comment is never closed",
                    )
                    .with_hint("close it with '*/'"),
                );
            }
        }
    }

    fn embedded(&mut self) {
        let start = self.pos;
        match self.src[start + 2..].find("%}") {
            Some(at) => {
                self.pos = start + 2 + at + 2;
                self.push(TokenKind::Embedded, start);
            }
            None => {
                self.pos = self.bytes.len();
                self.error(
                    Diagnostic::error(
                        "unterminated embedded C block",
                        span(start, start + 2),
                        "this block is never closed with '%}'",
                    )
                    .with_hint("embedded C is not supported by wasmtap in any case"),
                );
            }
        }
    }

    fn script_arg(&mut self, string: bool) {
        let start = self.pos;
        self.pos += 1;
        while self.peek_at(0).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        let digits = &self.src[start + 1..self.pos];
        match digits.parse::<u32>() {
            Ok(0) => self.error(
                Diagnostic::error(
                    "script arguments are numbered from 1",
                    span(start, self.pos),
                    "there is no argument 0",
                )
                .with_hint("the first argument after the script name is $1 (or @1 as a string)"),
            ),
            Ok(index) => self.push(TokenKind::ScriptArg { index, string }, start),
            Err(_) => self.error(Diagnostic::error(
                "script argument number is too large",
                span(start, self.pos),
                "no script has this many arguments",
            )),
        }
    }

    fn number(&mut self) {
        let start = self.pos;
        while self.peek_at(0).is_some_and(|b| b.is_ascii_alphanumeric()) {
            self.pos += 1;
        }
        let text = &self.src[start..self.pos];
        match parse_int(text) {
            Ok(value) => self.push(TokenKind::Int(value), start),
            Err(IntError::Invalid) => self.error(
                Diagnostic::error(
                    format!("invalid number '{text}'"),
                    span(start, self.pos),
                    "not a number",
                )
                .with_hint("numbers are decimal (42), hexadecimal (0x2a) or octal (052)"),
            ),
            Err(IntError::OutOfRange) => self.error(
                Diagnostic::error(
                    format!("number '{text}' does not fit in 64 bits"),
                    span(start, self.pos),
                    "out of range",
                )
                .with_hint("the largest number is 18446744073709551615 (0xffffffffffffffff)"),
            ),
        }
    }

    fn string(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let mut out: Vec<u8> = Vec::new();
        let mut escape_error: Option<Diagnostic> = None;
        loop {
            let Some(b) = self.peek_at(0) else {
                return self.unterminated_string(start);
            };
            match b {
                b'\n' => return self.unterminated_string(start),
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\\' => {
                    let escape_start = self.pos;
                    self.pos += 1;
                    let Some(e) = self.peek_at(0) else {
                        return self.unterminated_string(start);
                    };
                    match e {
                        b'0'..=b'7' => {
                            let mut value: u32 = 0;
                            let mut count = 0;
                            while count < 3
                                && self.peek_at(0).is_some_and(|d| (b'0'..=b'7').contains(&d))
                            {
                                value = value * 8 + u32::from(self.bytes[self.pos] - b'0');
                                self.pos += 1;
                                count += 1;
                            }
                            match u8::try_from(value) {
                                Ok(byte) => out.push(byte),
                                Err(_) => {
                                    escape_error.get_or_insert(Diagnostic::error(
                                        "octal escape is out of range",
                                        span(escape_start, self.pos),
                                        "larger than \\377",
                                    ));
                                }
                            }
                        }
                        b'x' => {
                            self.pos += 1;
                            let mut value: u8 = 0;
                            let mut count = 0;
                            while count < 2
                                && self.peek_at(0).is_some_and(|d| d.is_ascii_hexdigit())
                            {
                                let digit =
                                    (self.bytes[self.pos] as char).to_digit(16).unwrap_or(0);
                                value = value * 16 + digit as u8;
                                self.pos += 1;
                                count += 1;
                            }
                            if count == 0 {
                                escape_error.get_or_insert(
                                    Diagnostic::error(
                                        "'\\x' escape without hex digits",
                                        span(escape_start, self.pos),
                                        "expected one or two hex digits",
                                    )
                                    .with_hint("write a byte as \\x41"),
                                );
                            } else {
                                out.push(value);
                            }
                        }
                        _ => {
                            let ch = self.src[self.pos..].chars().next().unwrap_or('\\');
                            self.pos += ch.len_utf8();
                            match ch {
                                'n' => out.push(b'\n'),
                                't' => out.push(b'\t'),
                                'r' => out.push(b'\r'),
                                'a' => out.push(0x07),
                                'b' => out.push(0x08),
                                'f' => out.push(0x0c),
                                'v' => out.push(0x0b),
                                // `\\`, `\"` and, as in stap, any other
                                // escaped character stand for themselves.
                                other => {
                                    let mut buf = [0; 4];
                                    out.extend_from_slice(other.encode_utf8(&mut buf).as_bytes());
                                }
                            }
                        }
                    }
                }
                _ => {
                    out.push(b);
                    self.pos += 1;
                }
            }
        }
        if let Some(diagnostic) = escape_error {
            return self.error(diagnostic);
        }
        match String::from_utf8(out) {
            Ok(value) => self.push(TokenKind::Str(value), start),
            Err(_) => self.error(
                Diagnostic::error(
                    "string literal is not valid UTF-8",
                    span(start, self.pos),
                    "its escapes make invalid UTF-8",
                )
                .with_hint(
                    "wasmtap strings are UTF-8: byte escapes must spell whole UTF-8 characters",
                ),
            ),
        }
    }

    fn unterminated_string(&mut self, start: usize) {
        self.error(
            Diagnostic::error(
                "unterminated string",
                span(start, self.pos),
                "this string is never closed",
            )
            .with_hint("close it with '\"' on the same line; write a newline as \\n"),
        );
    }

    fn punct(&mut self) {
        let start = self.pos;
        let rest = &self.src[start..];
        for (text, kind) in [
            ("%(", TokenKind::PpOpen),
            ("%?", TokenKind::PpThen),
            ("%:", TokenKind::PpElse),
            ("%)", TokenKind::PpClose),
        ] {
            if rest.starts_with(text) {
                self.pos += 2;
                return self.push(kind, start);
            }
        }
        if let Some((text, punct)) = PUNCTS.iter().find(|(text, _)| rest.starts_with(text)) {
            self.pos += text.len();
            return self.push(TokenKind::Punct(*punct), start);
        }
        let ch = rest.chars().next().unwrap_or('\0');
        self.pos += ch.len_utf8();
        let shown = match ch {
            '\'' => "\"'\"".to_owned(),
            c if c.is_control() || c.is_whitespace() => format!("{c:?}"),
            c => format!("'{c}'"),
        };
        let mut diagnostic = Diagnostic::error(
            format!("unexpected character {shown}"),
            span(start, self.pos),
            "not part of the language",
        );
        if ch == '\'' {
            diagnostic = diagnostic.with_hint("strings are written in double quotes: \"text\"");
        }
        self.error(diagnostic);
    }
}
