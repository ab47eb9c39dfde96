//! Preprocessed tokens to the AST, by recursive descent after stap's
//! `parse.cxx`.
//!
//! Precedence, loosest first (as in parse.cxx):
//!
//! 1. assignment, right associative: `= += -= *= /= %= <<= >>= &= ^= |= .= <<<`
//! 2. `?:`, right associative
//! 3. `||`, then `&&`, then `|`, then `^`, then `&`
//! 4. `in` (`k in a`, `[k1, k2] in a`), not chainable
//! 5. comparisons `== != < <= > >=`, or one `=~` / `!~` with a literal
//!    string on the right
//! 6. shifts `<< >>`, then concatenation `.`, then `+ -`, then `* / %`
//! 7. prefix `- + ! ~`, then `++` / `--`, then values.
//!
//! The binary levels are parsed by precedence climbing.
//!
//! Choices, where stap leaves room or wasmtap's AST is narrower:
//!
//! - Adjacent string literals are concatenated wherever a string literal
//!   may appear (`"a" "b"` is `"ab"`), as stap does since 2.0 (PR11208).
//! - Parentheses leave no node; a parenthesized expression keeps the span
//!   of its contents.
//! - `$N`/`@N`/`$#`/`@#` stay [`ExprKind::ScriptArg`] / `ScriptArgCount`
//!   nodes in expressions and in global initializers; where the AST wants a
//!   literal (probe-point arguments, array sizes, `@hist_linear` bounds) they
//!   are substituted from [`ParseOptions::args`] (`$N` must read as a
//!   number, `@N` is a string).
//! - Numbers above `i64::MAX` (up to `u64::MAX`) wrap to negative `i64`, as
//!   stap allows. `-5` in an expression is `Unary(Neg, Int(5))`; in literal
//!   positions (global initializers, probe-point arguments) it is folded.
//! - Probe-point brace alternatives `{a, b}.c` are expanded into separate
//!   [`ProbePoint`]s (at most [`MAX_PROBE_POINTS`]). A trailing `!` sets both
//!   `sufficient` and `optional`, since in stap sufficient implies optional.
//!   A component name glues adjacent names, keywords, `*` and digits
//!   (`sys_*`, `open*`, `*64`).
//! - `@name(...)` operators other than statistics and histograms become
//!   [`ExprKind::AtCall`] with `name` WITHOUT the `@` (`cast`, `var`,
//!   `defined`, `entry`, ...); unknown `@names` are errors. Histograms are
//!   only accepted as the argument of `print`/`println`/`sprint`/`sprintln`,
//!   as in stap.
//! - `printf`/`sprintf` need a literal format string (or `@N`) as their
//!   first argument and `printd`/`sprintd(ln)` a literal delimiter; `print`
//!   and `sprint` need an argument. These are calls named as written.
//! - A function's return type may be written after its name (stap's
//!   `function f:long (x)`) or after the parameters (`function f(x):long`).
//!   `return` outside a function is an error, as in stap.
//! - Stray `;` between top-level declarations are accepted.
//! - Not supported (each a clear error): embedded C `%{ %}`, `@define`
//!   macros, `&` address-of, `->` on plain values (autocast), indexing a
//!   histogram, `*` wildcards in array keys, foreach array slices and
//!   aggregate sorting (`in x @sum-`), wrap-around arrays (`global a%`),
//!   function priorities, combined alias prologue/epilogue, more than one
//!   alias name per definition, pretty-printing `$` after `@cast`/`@var`,
//!   and `>>>`.
//!
//! Parsing stops at the first error. Recursion is bounded: more than
//! [`MAX_DEPTH`] nested expressions, statements or probe-point groups is the
//! error "nesting too deep".

use super::ParseOptions;
use super::ast::*;
use super::lexer::{Keyword, Punct, Token, TokenKind};
use super::preprocess::{missing_arg, script_arg_number};
use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// How deep expressions, statements and probe-point groups may nest.
pub const MAX_DEPTH: u32 = 256;

/// How many probe points one `probe` may expand to through `{a, b}`.
pub const MAX_PROBE_POINTS: usize = 4096;

/// How many components those probe points may hold in total.
const MAX_COMPONENTS: usize = 1 << 16;

/// The precedence of `in` and of comparisons, see [`binary_op`].
const IN_PREC: u8 = 6;
const CMP_PREC: u8 = 7;

type PResult<T> = Result<T, Box<Diagnostic>>;

/// Parses preprocessed tokens (see [`super::preprocess::preprocess`]).
///
/// # Errors
/// The first error, which may be one the lexer or preprocessor left in the
/// token stream.
pub fn parse_tokens(
    source: &str,
    mut tokens: Vec<Token>,
    options: &ParseOptions,
) -> Result<Script, Box<Diagnostic>> {
    if !matches!(tokens.last(), Some(t) if t.kind == TokenKind::Eof) {
        let end = super::lexer::span(source.len(), source.len());
        tokens.push(Token {
            kind: TokenKind::Eof,
            span: end,
        });
    }
    let mut parser = Parser {
        source,
        tokens,
        pos: 0,
        options,
        depth: 0,
        context: Context::Top,
    };
    parser.script()
}

/// Where statements are being parsed, for `return`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Top,
    Probe,
    Function,
}

/// The builtins whose arguments stap parses specially.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PrintKind {
    /// `printf`, `sprintf`: a literal format first.
    Format,
    /// `printd`, `printdln`, `sprintd`, `sprintdln`: a literal delimiter,
    /// then at least two values.
    Delimited,
    /// `print`, `sprint` (at least one argument), `println`, `sprintln`.
    Plain { newline: bool },
}

fn print_kind(name: &str) -> Option<PrintKind> {
    Some(match name {
        "printf" | "sprintf" => PrintKind::Format,
        "printd" | "printdln" | "sprintd" | "sprintdln" => PrintKind::Delimited,
        "print" | "sprint" => PrintKind::Plain { newline: false },
        "println" | "sprintln" => PrintKind::Plain { newline: true },
        _ => return None,
    })
}

/// Binary operators with their precedence (higher binds tighter).
fn binary_op(p: Punct) -> Option<(u8, BinaryOp)> {
    Some(match p {
        Punct::OrOr => (1, BinaryOp::Or),
        Punct::AndAnd => (2, BinaryOp::And),
        Punct::Pipe => (3, BinaryOp::BitOr),
        Punct::Caret => (4, BinaryOp::BitXor),
        Punct::Amp => (5, BinaryOp::BitAnd),
        // 6 is `in`.
        Punct::EqEq => (CMP_PREC, BinaryOp::Eq),
        Punct::NotEq => (CMP_PREC, BinaryOp::Ne),
        Punct::Lt => (CMP_PREC, BinaryOp::Lt),
        Punct::Le => (CMP_PREC, BinaryOp::Le),
        Punct::Gt => (CMP_PREC, BinaryOp::Gt),
        Punct::Ge => (CMP_PREC, BinaryOp::Ge),
        Punct::Match => (CMP_PREC, BinaryOp::Match),
        Punct::NotMatch => (CMP_PREC, BinaryOp::NotMatch),
        Punct::Shl => (8, BinaryOp::Shl),
        Punct::Shr => (8, BinaryOp::Shr),
        Punct::Dot => (9, BinaryOp::Concat),
        Punct::Plus => (10, BinaryOp::Add),
        Punct::Minus => (10, BinaryOp::Sub),
        Punct::Star => (11, BinaryOp::Mul),
        Punct::Slash => (11, BinaryOp::Div),
        Punct::Percent => (11, BinaryOp::Mod),
        _ => return None,
    })
}

fn assign_op(p: Punct) -> Option<AssignOp> {
    Some(match p {
        Punct::Assign => AssignOp::Set,
        Punct::Aggregate => AssignOp::Aggregate,
        Punct::PlusEq => AssignOp::Compound(BinaryOp::Add),
        Punct::MinusEq => AssignOp::Compound(BinaryOp::Sub),
        Punct::StarEq => AssignOp::Compound(BinaryOp::Mul),
        Punct::SlashEq => AssignOp::Compound(BinaryOp::Div),
        Punct::PercentEq => AssignOp::Compound(BinaryOp::Mod),
        Punct::ShlEq => AssignOp::Compound(BinaryOp::Shl),
        Punct::ShrEq => AssignOp::Compound(BinaryOp::Shr),
        Punct::AmpEq => AssignOp::Compound(BinaryOp::BitAnd),
        Punct::CaretEq => AssignOp::Compound(BinaryOp::BitXor),
        Punct::PipeEq => AssignOp::Compound(BinaryOp::BitOr),
        Punct::DotEq => AssignOp::Compound(BinaryOp::Concat),
        _ => return None,
    })
}

fn stat_op(name: &str) -> Option<StatOp> {
    Some(match name {
        "count" => StatOp::Count,
        "sum" => StatOp::Sum,
        "min" => StatOp::Min,
        "max" => StatOp::Max,
        "avg" => StatOp::Avg,
        "variance" => StatOp::Variance,
        _ => return None,
    })
}

/// `@name(...)` operators kept as [`ExprKind::AtCall`].
const AT_CALLS: [&str; 11] = [
    "cast",
    "var",
    "defined",
    "entry",
    "perf",
    "probewrite",
    "const",
    "kregister",
    "uregister",
    "kderef",
    "uderef",
];

fn embedded_error(span: Span) -> Diagnostic {
    Diagnostic::error(
        "embedded C is not supported by wasmtap",
        span,
        "embedded C block",
    )
    .with_hint(
        "wasmtap runs handlers in a WebAssembly sandbox and cannot load C code; \
         write this with script functions and tapset builtins",
    )
}

/// Quotes a token's text for "found ..." messages, shortened if long.
fn quote(text: &str) -> String {
    const MAX: usize = 32;
    if text.chars().count() > MAX {
        let short: String = text.chars().take(MAX - 3).collect();
        format!("'{short}...'")
    } else {
        format!("'{text}'")
    }
}

struct Parser<'a> {
    source: &'a str,
    /// Ends with [`TokenKind::Eof`]; `pos` never moves past it.
    tokens: Vec<Token>,
    pos: usize,
    options: &'a ParseOptions,
    depth: u32,
    context: Context,
}

impl<'a> Parser<'a> {
    // ----- token access -----

    fn tok(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn kind(&self) -> &TokenKind {
        &self.tokens[self.pos].kind
    }

    fn span(&self) -> Span {
        self.tokens[self.pos].span
    }

    fn nth_kind(&self, n: usize) -> &TokenKind {
        &self.tokens[(self.pos + n).min(self.tokens.len() - 1)].kind
    }

    fn text(&self, span: Span) -> &'a str {
        &self.source[span.range()]
    }

    /// Moves past the current token (never past the end) and returns its span.
    fn bump(&mut self) -> Span {
        let span = self.span();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        span
    }

    fn at(&self, p: Punct) -> bool {
        *self.kind() == TokenKind::Punct(p)
    }

    fn at_kw(&self, k: Keyword) -> bool {
        *self.kind() == TokenKind::Keyword(k)
    }

    fn eat(&mut self, p: Punct) -> Option<Span> {
        self.at(p).then(|| self.bump())
    }

    fn eat_kw(&mut self, k: Keyword) -> Option<Span> {
        self.at_kw(k).then(|| self.bump())
    }

    /// Whether the current token is all dollar signs: a pretty-print marker.
    fn at_dollars(&self) -> bool {
        *self.kind() == TokenKind::Target && self.text(self.span()).bytes().all(|b| b == b'$')
    }

    // ----- errors -----

    /// The error already attached to the current token, if it carries one
    /// (a lexing or preprocessing error, or embedded C).
    fn token_error(&self) -> Option<Box<Diagnostic>> {
        match &self.tok().kind {
            TokenKind::Error(d) => Some(d.clone()),
            TokenKind::Embedded => Some(Box::new(embedded_error(self.span()))),
            _ => None,
        }
    }

    /// `expected WHAT, found TOKEN` at the current token.
    fn expected(&self, what: &str) -> Box<Diagnostic> {
        if let Some(d) = self.token_error() {
            return d;
        }
        let found = match self.kind() {
            TokenKind::Eof => "end of input".to_owned(),
            _ => quote(self.text(self.span())),
        };
        Box::new(Diagnostic::error(
            format!("expected {what}, found {found}"),
            self.span(),
            format!("expected {what}"),
        ))
    }

    /// [`Self::expected`] with a hint (unless the token carries its own error).
    fn expected_hint(&self, what: &str, hint: impl Into<String>) -> Box<Diagnostic> {
        let mut d = self.expected(what);
        if self.token_error().is_none() {
            d.hints.push(hint.into());
        }
        d
    }

    /// [`Self::error_here`] with a hint (unless the token carries its own error).
    fn error_here_hint(
        &self,
        message: impl Into<String>,
        label: impl Into<String>,
        hint: impl Into<String>,
    ) -> Box<Diagnostic> {
        let mut d = self.error_here(message, label);
        if self.token_error().is_none() {
            d.hints.push(hint.into());
        }
        d
    }

    /// An error about the current token.
    fn error_here(&self, message: impl Into<String>, label: impl Into<String>) -> Box<Diagnostic> {
        self.token_error()
            .unwrap_or_else(|| Box::new(Diagnostic::error(message, self.span(), label)))
    }

    fn expect(&mut self, p: Punct) -> PResult<Span> {
        self.eat(p).ok_or_else(|| self.expected(&format!("'{p}'")))
    }

    fn expect_hint(&mut self, p: Punct, hint: &str) -> PResult<Span> {
        self.eat(p)
            .ok_or_else(|| self.expected_hint(&format!("'{p}'"), hint))
    }

    /// Expects the delimiter closing `open`; `what` lists what may come
    /// instead (such as `',' or ')'`).
    fn expect_closing(&mut self, close: Punct, open: Span, what: &str) -> PResult<Span> {
        self.eat(close)
            .ok_or_else(|| self.closing_error(open, what))
    }

    /// `expected WHAT` where the delimiter `open` should have been closed.
    fn closing_error(&self, open: Span, what: &str) -> Box<Diagnostic> {
        let mut d = self.expected(what);
        if self.token_error().is_none() {
            let opener = self.text(open);
            d.secondary.push(crate::diagnostics::Label {
                span: open,
                message: format!("to match this '{opener}'"),
            });
        }
        d
    }

    /// Counts one level of nesting.
    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Box::new(
                Diagnostic::error(
                    "nesting too deep",
                    self.span(),
                    format!("more than {MAX_DEPTH} levels deep"),
                )
                .with_hint("split the expression or statement into smaller parts"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    // ----- literals -----

    /// A name (not a keyword).
    fn ident(&mut self, what: &str) -> PResult<Ident> {
        match *self.kind() {
            TokenKind::Ident => {
                let span = self.bump();
                Ok(Ident {
                    name: self.text(span).to_owned(),
                    span,
                })
            }
            TokenKind::Keyword(k) => Err(self.expected_hint(
                what,
                format!("'{k}' is a reserved word and cannot be used as a name"),
            )),
            _ => Err(self.expected(what)),
        }
    }

    /// One or more adjacent string literals, concatenated.
    fn strings(&mut self) -> (String, Span) {
        let first = self.span();
        let mut end = first;
        let mut value = String::new();
        while let TokenKind::Str(s) = &self.tokens[self.pos].kind {
            value.push_str(s);
            end = self.bump();
        }
        (value, first.to(end))
    }

    /// The text of script argument `index` (1-based) at `span`.
    fn arg(&self, index: u32, span: Span) -> PResult<&'a str> {
        let options: &'a ParseOptions = self.options;
        options
            .args
            .get(index as usize - 1)
            .map(String::as_str)
            .ok_or_else(|| Box::new(missing_arg(self.source, span, options.args.len())))
    }

    /// `[-]NUMBER`, `[-]$N` or `$#`, folded to a value.
    fn literal_number(&mut self, what: &str) -> PResult<(i64, Span)> {
        let start = self.span();
        let negative = self.eat(Punct::Minus).is_some();
        let (value, span): (i64, Span) = match *self.kind() {
            TokenKind::Int(v) => {
                let span = self.bump();
                if negative && v > 1 << 63 {
                    return Err(Box::new(Diagnostic::error(
                        "number out of range",
                        start.to(span),
                        "below the smallest 64-bit number",
                    )));
                }
                (v as i64, span)
            }
            TokenKind::ScriptArg {
                index,
                string: false,
            } => {
                let span = self.bump();
                let arg = self.arg(index, span)?;
                let value = script_arg_number(arg).ok_or_else(|| {
                    Box::new(
                        Diagnostic::error(
                            format!("script argument {} is not a number", self.text(span)),
                            span,
                            format!("its value is {arg:?}"),
                        )
                        .with_hint(format!("use @{index} to take the argument as a string")),
                    )
                })?;
                (value, span)
            }
            TokenKind::ScriptArgCount { string: false } => {
                (self.options.args.len() as i64, self.bump())
            }
            _ => return Err(self.expected(what)),
        };
        let value = if negative {
            value.wrapping_neg()
        } else {
            value
        };
        Ok((value, start.to(span)))
    }

    /// A probe-point argument: a string, a number, or a script argument.
    fn literal(&mut self) -> PResult<(Literal, Span)> {
        match *self.kind() {
            TokenKind::Str(_) => {
                let (s, span) = self.strings();
                Ok((Literal::Str(s), span))
            }
            TokenKind::ScriptArg {
                index,
                string: true,
            } => {
                let span = self.bump();
                Ok((Literal::Str(self.arg(index, span)?.to_owned()), span))
            }
            TokenKind::ScriptArgCount { string: true } => {
                let span = self.bump();
                Ok((Literal::Str(self.options.args.len().to_string()), span))
            }
            _ => {
                let (value, span) = self.literal_number("literal number or string")?;
                Ok((Literal::Int(value), span))
            }
        }
    }

    // ----- declarations -----

    fn script(&mut self) -> PResult<Script> {
        let mut items = Vec::new();
        loop {
            match *self.kind() {
                TokenKind::Eof => return Ok(Script { items }),
                TokenKind::Keyword(Keyword::Probe) => {
                    let probe = self.probe()?;
                    items.push(Item::Probe(probe));
                }
                TokenKind::Keyword(Keyword::Global) => {
                    self.bump();
                    self.globals(false, &mut items)?;
                }
                TokenKind::Keyword(Keyword::Private) => self.private(&mut items)?,
                TokenKind::Keyword(Keyword::Function) => {
                    let start = self.span();
                    let function = self.function(start, false)?;
                    items.push(Item::Function(function));
                }
                TokenKind::Punct(Punct::Semi) => {
                    self.bump();
                }
                TokenKind::Punct(Punct::RBrace) => {
                    return Err(self.expected_hint(
                        "'probe', 'global', 'function' or 'private'",
                        "this '}' closes nothing",
                    ));
                }
                _ => {
                    return Err(self.expected_hint(
                        "'probe', 'global', 'function' or 'private'",
                        "statements belong in a probe handler: probe begin { ... }",
                    ));
                }
            }
        }
    }

    fn missing_point(&self) -> Box<Diagnostic> {
        self.expected_hint(
            "probe point",
            "name the event to probe, as in `probe begin { ... }` or `probe syscall.openat { ... }`",
        )
    }

    fn probe(&mut self) -> PResult<ProbeDecl> {
        let kw = self.bump();
        self.context = Context::Probe;
        let starts_point = matches!(
            self.kind(),
            TokenKind::Ident
                | TokenKind::Keyword(_)
                | TokenKind::Punct(Punct::Star | Punct::LBrace)
        );
        if !starts_point {
            return Err(self.missing_point());
        }
        if self.at(Punct::LBrace) {
            // `{a, b}.c` alternatives, or a handler with the point missing?
            let saved = (self.pos, self.depth);
            let points = self.probe_points();
            let stop = self.pos;
            let follows = matches!(
                self.kind(),
                TokenKind::Punct(Punct::LBrace | Punct::Assign | Punct::PlusEq)
            );
            (self.pos, self.depth) = saved;
            if points.is_err() || !follows {
                let real = matches!(
                    self.tokens[stop].kind,
                    TokenKind::Error(_) | TokenKind::Embedded
                );
                return Err(match points {
                    Err(d) if real => d,
                    _ => self.missing_point(),
                });
            }
        }
        let mut points = self.probe_points()?;
        let mut alias = None;
        if self.at(Punct::Assign) || self.at(Punct::PlusEq) {
            let epilogue = self.at(Punct::PlusEq);
            if points.len() != 1 {
                return Err(Box::new(
                    Diagnostic::error(
                        "an alias definition names exactly one new probe point",
                        self.span(),
                        format!("defines {} names at once", points.len()),
                    )
                    .with_hint("write one alias definition per name"),
                ));
            }
            let name = points.remove(0);
            if name.optional || name.sufficient || name.condition.is_some() {
                return Err(Box::new(Diagnostic::error(
                    "an alias name cannot be optional ('?'), sufficient ('!') or conditional",
                    name.span,
                    "alias name",
                )));
            }
            self.bump();
            if !matches!(
                self.kind(),
                TokenKind::Ident
                    | TokenKind::Keyword(_)
                    | TokenKind::Punct(Punct::Star | Punct::LBrace)
            ) {
                return Err(self.expected_hint(
                    "probe point",
                    "an alias reads `probe NEW.NAME = EXISTING.POINT { ... }`",
                ));
            }
            points = self.probe_points()?;
            if self.at(Punct::Assign) || self.at(Punct::PlusEq) {
                return Err(self.error_here(
                    "an alias definition can define only one alias",
                    "second alias",
                ));
            }
            alias = Some(AliasDef { name, epilogue });
        }
        if !self.at(Punct::LBrace) {
            return Err(self.expected_hint(
                "'{'",
                "a probe point is followed by its handler in braces, as in `probe timer.s(1) { ... }`; \
                 separate several probe points with ','",
            ));
        }
        let body = self.block()?;
        if alias.is_some()
            && self.at(Punct::Comma)
            && *self.nth_kind(1) == TokenKind::Punct(Punct::LBrace)
        {
            return Err(self.error_here(
                "combined prologue and epilogue aliases are not supported by wasmtap",
                "second body follows",
            ));
        }
        self.context = Context::Top;
        Ok(ProbeDecl {
            alias,
            points,
            span: kw.to(body.span),
            body,
        })
    }

    /// Comma-separated probe points, expanded.
    fn probe_points(&mut self) -> PResult<Vec<ProbePoint>> {
        let mut points = Vec::new();
        loop {
            let mut more = self.probe_point()?;
            if points.len() + more.len() > MAX_PROBE_POINTS {
                return Err(too_many_points(more[0].span));
            }
            points.append(&mut more);
            if self.eat(Punct::Comma).is_none() {
                return Ok(points);
            }
        }
    }

    /// One dotted probe point with its `?`/`!` and `if (...)` suffix; brace
    /// alternatives make it several.
    fn probe_point(&mut self) -> PResult<Vec<ProbePoint>> {
        self.enter()?;
        let result = self.probe_point_inner();
        self.leave();
        result
    }

    fn probe_point_inner(&mut self) -> PResult<Vec<ProbePoint>> {
        let mut points: Vec<ProbePoint> = Vec::new();
        loop {
            let suffix = self.component()?;
            if points.is_empty() {
                points = suffix;
            } else {
                if let Some(p) = points
                    .iter()
                    .find(|p| p.optional || p.sufficient || p.condition.is_some())
                {
                    return Err(Box::new(Diagnostic::error(
                        "'?', '!' and 'if' may only follow a whole probe point",
                        p.span,
                        "marked before its last component",
                    )));
                }
                let prefix_components: usize = points.iter().map(|p| p.components.len()).sum();
                let suffix_components: usize = suffix.iter().map(|p| p.components.len()).sum();
                let count = points.len().saturating_mul(suffix.len());
                let components = points
                    .len()
                    .saturating_mul(suffix_components)
                    .saturating_add(suffix.len().saturating_mul(prefix_components));
                if count > MAX_PROBE_POINTS || components > MAX_COMPONENTS {
                    return Err(too_many_points(suffix[0].span));
                }
                let mut product = Vec::with_capacity(count);
                for p in &points {
                    for s in &suffix {
                        product.push(ProbePoint {
                            components: p.components.iter().chain(&s.components).cloned().collect(),
                            optional: s.optional,
                            sufficient: s.sufficient,
                            condition: s.condition.clone(),
                            span: p.span.to(s.span),
                        });
                    }
                }
                points = product;
            }
            if self.eat(Punct::Dot).is_none() {
                break;
            }
        }
        if self.at(Punct::Question) || self.at(Punct::Bang) {
            let sufficient = self.at(Punct::Bang);
            let mark = self.span();
            for p in &mut points {
                if p.optional || p.sufficient {
                    return Err(Box::new(Diagnostic::error(
                        "'?' or '!' given twice",
                        mark,
                        "second marker",
                    )));
                }
                p.optional = true;
                p.sufficient = sufficient;
                p.span = p.span.to(mark);
            }
            self.bump();
            if self.at(Punct::Dot) {
                return Err(Box::new(
                    Diagnostic::error(
                        "'?' and '!' may only follow a whole probe point",
                        mark,
                        "marks part of a probe point",
                    )
                    .with_hint("move it to the end, as in `probe syscall.open.return? { ... }`"),
                ));
            }
        }
        if self.at_kw(Keyword::If) {
            self.bump();
            let open = self.expect_hint(
                Punct::LParen,
                "a probe point condition is written `if (EXPR)`",
            )?;
            let condition = self.expr()?;
            let close = self.expect_closing(Punct::RParen, open, "')'")?;
            for p in &mut points {
                if p.condition.is_some() {
                    return Err(Box::new(Diagnostic::error(
                        "probe point condition given twice",
                        condition.span,
                        "second condition",
                    )));
                }
                p.condition = Some(condition.clone());
                p.span = p.span.to(close);
            }
        }
        Ok(points)
    }

    /// One component, or a `{...}` group of alternatives.
    fn component(&mut self) -> PResult<Vec<ProbePoint>> {
        match *self.kind() {
            TokenKind::Punct(Punct::LBrace) => {
                let open = self.bump();
                let points = self.probe_points()?;
                self.expect_closing(Punct::RBrace, open, "',' or '}'")?;
                Ok(points)
            }
            TokenKind::Ident | TokenKind::Keyword(_) | TokenKind::Punct(Punct::Star) => {
                let first = self.bump();
                let mut name = self.text(first).to_owned();
                let mut end = first.end;
                loop {
                    let tok = self.tok();
                    let glues = tok.span.start == end
                        && matches!(
                            tok.kind,
                            TokenKind::Ident
                                | TokenKind::Keyword(_)
                                | TokenKind::Int(_)
                                | TokenKind::Punct(Punct::Star)
                        );
                    if !glues {
                        break;
                    }
                    let span = self.bump();
                    name.push_str(self.text(span));
                    end = span.end;
                }
                let mut span = Span::new(first.start, end);
                let mut arg = None;
                if let Some(open) = self.eat(Punct::LParen) {
                    arg = Some(self.literal()?.0);
                    span = span.to(self.expect_closing(Punct::RParen, open, "')'")?);
                }
                Ok(vec![ProbePoint {
                    components: vec![Component { name, arg, span }],
                    optional: false,
                    sufficient: false,
                    condition: None,
                    span,
                }])
            }
            _ => Err(self.expected("probe point")),
        }
    }

    /// `global` (already consumed) `NAME [N] = INIT, ...`.
    fn globals(&mut self, private: bool, items: &mut Vec<Item>) -> PResult<()> {
        loop {
            let name = self.ident("variable name")?;
            let mut span = name.span;
            if self.at(Punct::Percent) {
                return Err(self.error_here(
                    "wrap-around arrays ('%') are not supported by wasmtap",
                    "wrap-around marker",
                ));
            }
            let mut max_entries = None;
            if let Some(open) = self.eat(Punct::LBracket) {
                let (size, size_span) = self.literal_number("array size")?;
                let size = u32::try_from(size)
                    .ok()
                    .filter(|&n| (1..=i32::MAX as u32).contains(&n))
                    .ok_or_else(|| {
                        Box::new(Diagnostic::error(
                            "array size out of range",
                            size_span,
                            "must be between 1 and 2147483647",
                        ))
                    })?;
                max_entries = Some(size);
                span = span.to(self.expect_closing(Punct::RBracket, open, "']'")?);
            }
            let mut init = None;
            if self.at(Punct::Assign) {
                if max_entries.is_some() {
                    return Err(self.error_here_hint(
                        "only scalar globals can be initialized",
                        "initializer of an array",
                        "fill the array in `probe begin { ... }`",
                    ));
                }
                self.bump();
                let value = self.global_init()?;
                span = span.to(value.span);
                init = Some(value);
            }
            items.push(Item::Global(GlobalDecl {
                name,
                max_entries,
                init,
                private,
                span,
            }));
            if self.eat(Punct::Semi).is_some() || self.eat(Punct::Comma).is_none() {
                return Ok(());
            }
        }
    }

    /// A global's initial value: a literal (negative numbers folded) or a
    /// script argument node.
    fn global_init(&mut self) -> PResult<Expr> {
        let kind = match *self.kind() {
            TokenKind::Str(_) => {
                let (s, span) = self.strings();
                return Ok(Expr {
                    kind: ExprKind::Str(s),
                    span,
                });
            }
            TokenKind::ScriptArg { index, string } => ExprKind::ScriptArg { index, string },
            TokenKind::ScriptArgCount { .. } => ExprKind::ScriptArgCount,
            TokenKind::Punct(Punct::Minus)
                if matches!(
                    self.nth_kind(1),
                    TokenKind::ScriptArg { .. } | TokenKind::ScriptArgCount { .. }
                ) =>
            {
                let minus = self.bump();
                let operand = self.global_init()?;
                return Ok(Expr {
                    span: minus.to(operand.span),
                    kind: ExprKind::Unary {
                        op: UnaryOp::Neg,
                        operand: Box::new(operand),
                    },
                });
            }
            TokenKind::Int(_) | TokenKind::Punct(Punct::Minus) => {
                let (value, span) = self.literal_number("literal number or string")?;
                return Ok(Expr {
                    kind: ExprKind::Int(value),
                    span,
                });
            }
            _ => {
                return Err(self.expected_hint(
                    "literal number or string",
                    "a global starts with a constant; compute other values in `probe begin { ... }`",
                ));
            }
        };
        let span = self.bump();
        Ok(Expr { kind, span })
    }

    fn private(&mut self, items: &mut Vec<Item>) -> PResult<()> {
        let kw = self.bump();
        match *self.kind() {
            TokenKind::Keyword(Keyword::Function) => {
                let function = self.function(kw, true)?;
                items.push(Item::Function(function));
                Ok(())
            }
            TokenKind::Keyword(Keyword::Global) => {
                self.bump();
                self.globals(true, items)
            }
            TokenKind::Ident => self.globals(true, items),
            _ => Err(self.expected("'function', 'global' or a variable name")),
        }
    }

    fn type_ann(&mut self) -> PResult<TypeAnn> {
        let ty = match *self.kind() {
            TokenKind::Keyword(Keyword::Long) => TypeAnn::Long,
            TokenKind::Keyword(Keyword::String) => TypeAnn::String,
            _ => return Err(self.expected("'long' or 'string'")),
        };
        self.bump();
        Ok(ty)
    }

    /// `function NAME[:TYPE](PARAM[:TYPE], ...)[:TYPE] { ... }`, at `function`.
    fn function(&mut self, start: Span, private: bool) -> PResult<FunctionDecl> {
        self.bump();
        self.context = Context::Function;
        let name = self.ident("function name")?;
        let mut ret = None;
        if self.eat(Punct::Colon).is_some() {
            ret = Some(self.type_ann()?);
        }
        let open = self.expect_hint(
            Punct::LParen,
            "a function reads `function NAME(ARG, ARG:string):long { ... }`",
        )?;
        let mut params: Vec<Param> = Vec::new();
        if !self.at(Punct::RParen) {
            loop {
                let name = self.ident("parameter name")?;
                if let Some(first) = params.iter().find(|p| p.name.name == name.name) {
                    return Err(Box::new(
                        Diagnostic::error(
                            format!("duplicate parameter '{}'", name.name),
                            name.span,
                            "declared again here",
                        )
                        .with_secondary(first.name.span, "first declared here"),
                    ));
                }
                let ty = match self.eat(Punct::Colon) {
                    Some(_) => Some(self.type_ann()?),
                    None => None,
                };
                params.push(Param { name, ty });
                if self.eat(Punct::Comma).is_none() {
                    break;
                }
            }
        }
        self.expect_closing(Punct::RParen, open, "',' or ')'")?;
        if self.eat(Punct::Colon).is_some() {
            match *self.kind() {
                TokenKind::Keyword(Keyword::Long | Keyword::String) if ret.is_some() => {
                    return Err(self.error_here("return type given twice", "second return type"));
                }
                TokenKind::Int(_) | TokenKind::Punct(Punct::Minus) => {
                    return Err(self.error_here_hint(
                        "function priorities are not supported by wasmtap",
                        "priority",
                        "a script has one definition of each function",
                    ));
                }
                _ => ret = Some(self.type_ann()?),
            }
        }
        if !self.at(Punct::LBrace) {
            return Err(self.expected_hint(
                "'{'",
                "a function body is a block: `function NAME(...) { ... }`",
            ));
        }
        let body = self.block()?;
        self.context = Context::Top;
        Ok(FunctionDecl {
            name,
            params,
            ret,
            span: start.to(body.span),
            body,
            private,
        })
    }

    // ----- statements -----

    fn block(&mut self) -> PResult<Block> {
        let open = self.expect(Punct::LBrace)?;
        let mut stmts = Vec::new();
        loop {
            if let Some(close) = self.eat(Punct::RBrace) {
                return Ok(Block {
                    stmts,
                    span: open.to(close),
                });
            }
            let declaration = matches!(
                self.kind(),
                TokenKind::Keyword(
                    Keyword::Probe | Keyword::Function | Keyword::Global | Keyword::Private
                )
            );
            if declaration || *self.kind() == TokenKind::Eof {
                let mut d = self.expected("'}'");
                if self.token_error().is_none() {
                    d.secondary.push(crate::diagnostics::Label {
                        span: open,
                        message: "this '{' is not closed".to_owned(),
                    });
                    if declaration {
                        d.hints.push(
                            "declarations cannot appear inside a block; is a '}' missing?"
                                .to_owned(),
                        );
                    }
                }
                return Err(d);
            }
            stmts.push(self.statement()?);
        }
    }

    fn statement(&mut self) -> PResult<Stmt> {
        self.enter()?;
        let result = self.statement_inner();
        self.leave();
        result
    }

    fn statement_inner(&mut self) -> PResult<Stmt> {
        let start = self.span();
        let (kind, span) = match *self.kind() {
            TokenKind::Punct(Punct::Semi) => {
                return Ok(Stmt {
                    kind: StmtKind::Empty,
                    span: self.bump(),
                });
            }
            TokenKind::Punct(Punct::LBrace) => {
                let block = self.block()?;
                return Ok(Stmt {
                    span: block.span,
                    kind: StmtKind::Block(block),
                });
            }
            TokenKind::Keyword(Keyword::Try) => return self.try_stmt(),
            TokenKind::Keyword(Keyword::If) => return self.if_stmt(),
            TokenKind::Keyword(Keyword::For) => return self.for_stmt(),
            TokenKind::Keyword(Keyword::Foreach) => return self.foreach_stmt(),
            TokenKind::Keyword(Keyword::While) => return self.while_stmt(),
            TokenKind::Keyword(Keyword::Return) => {
                if self.context != Context::Function {
                    return Err(self.error_here_hint(
                        "'return' outside a function",
                        "in a probe handler",
                        "use 'next' to leave a probe handler early",
                    ));
                }
                self.bump();
                if self.at(Punct::Semi) || self.at(Punct::RBrace) {
                    (StmtKind::Return(None), start)
                } else {
                    let value = self.expr()?;
                    let span = start.to(value.span);
                    (StmtKind::Return(Some(value)), span)
                }
            }
            TokenKind::Keyword(Keyword::Delete) => {
                self.bump();
                let value = self.expr()?;
                let span = start.to(value.span);
                (StmtKind::Delete(value), span)
            }
            TokenKind::Keyword(Keyword::Break) => (StmtKind::Break, self.bump()),
            TokenKind::Keyword(Keyword::Continue) => (StmtKind::Continue, self.bump()),
            TokenKind::Keyword(Keyword::Next) => (StmtKind::Next, self.bump()),
            TokenKind::Keyword(Keyword::Else) => {
                return Err(self.expected_hint(
                    "statement",
                    "'else' must directly follow the statement of an 'if'",
                ));
            }
            _ if self.can_start_expr() => {
                let value = self.expr()?;
                let span = value.span;
                (StmtKind::Expr(value), span)
            }
            _ => return Err(self.expected("statement")),
        };
        // As in stap, one `;` may end any statement that is not block-like.
        self.eat(Punct::Semi);
        Ok(Stmt { kind, span })
    }

    fn can_start_expr(&self) -> bool {
        matches!(
            self.kind(),
            TokenKind::Ident
                | TokenKind::Target
                | TokenKind::AtWord
                | TokenKind::ScriptArg { .. }
                | TokenKind::ScriptArgCount { .. }
                | TokenKind::Int(_)
                | TokenKind::Str(_)
                | TokenKind::Punct(
                    Punct::LParen
                        | Punct::LBracket
                        | Punct::Minus
                        | Punct::Plus
                        | Punct::Bang
                        | Punct::Tilde
                        | Punct::Amp
                        | Punct::PlusPlus
                        | Punct::MinusMinus
                )
        )
    }

    /// `(EXPR)` after `if`, `while`.
    fn paren_condition(&mut self, keyword: &str) -> PResult<Expr> {
        let open = self.expect_hint(
            Punct::LParen,
            &format!(
                "the condition of '{keyword}' is written in parentheses: {keyword} (x > 0) ..."
            ),
        )?;
        let cond = self.expr()?;
        self.expect_closing(Punct::RParen, open, "')'")?;
        Ok(cond)
    }

    fn if_stmt(&mut self) -> PResult<Stmt> {
        let kw = self.bump();
        let cond = self.paren_condition("if")?;
        let then = self.statement()?;
        let mut span = kw.to(then.span);
        let otherwise = match self.eat_kw(Keyword::Else) {
            Some(_) => {
                let stmt = self.statement()?;
                span = span.to(stmt.span);
                Some(Box::new(stmt))
            }
            None => None,
        };
        Ok(Stmt {
            kind: StmtKind::If {
                cond,
                then: Box::new(then),
                otherwise,
            },
            span,
        })
    }

    fn while_stmt(&mut self) -> PResult<Stmt> {
        let kw = self.bump();
        let cond = self.paren_condition("while")?;
        let body = self.statement()?;
        Ok(Stmt {
            span: kw.to(body.span),
            kind: StmtKind::While {
                cond,
                body: Box::new(body),
            },
        })
    }

    fn for_stmt(&mut self) -> PResult<Stmt> {
        let kw = self.bump();
        let open =
            self.expect_hint(Punct::LParen, "a for loop reads for (INIT; COND; STEP) ...")?;
        let init = if self.at(Punct::Semi) {
            None
        } else {
            Some(self.expr()?)
        };
        self.expect(Punct::Semi)?;
        let cond = if self.at(Punct::Semi) {
            None
        } else {
            Some(self.expr()?)
        };
        self.expect(Punct::Semi)?;
        let step = if self.at(Punct::RParen) {
            None
        } else {
            Some(self.expr()?)
        };
        self.expect_closing(Punct::RParen, open, "')'")?;
        let body = self.statement()?;
        Ok(Stmt {
            span: kw.to(body.span),
            kind: StmtKind::For {
                init,
                cond,
                step,
                body: Box::new(body),
            },
        })
    }

    /// A `+`/`-` sort marker: `Some((descending, span))`.
    fn sort_marker(&mut self) -> Option<(bool, Span)> {
        if self.at(Punct::Plus) || self.at(Punct::Minus) {
            let descending = self.at(Punct::Minus);
            Some((descending, self.bump()))
        } else {
            None
        }
    }

    /// Records a sort marker on `column`, if one follows.
    fn sort_on(&mut self, sort: &mut Option<Sort>, column: u32) -> PResult<()> {
        if let Some((descending, span)) = self.sort_marker() {
            if sort.is_some() {
                return Err(Box::new(
                    Diagnostic::error("more than one sort marker", span, "second sort marker")
                        .with_hint("a foreach sorts by one column: one key, or the value"),
                ));
            }
            *sort = Some(Sort { column, descending });
        }
        Ok(())
    }

    fn foreach_stmt(&mut self) -> PResult<Stmt> {
        let kw = self.bump();
        let open = self.expect_hint(
            Punct::LParen,
            "a foreach loop reads foreach (KEY in ARRAY) or foreach ([K1, K2] in ARRAY)",
        )?;
        let mut value = None;
        let mut keys = Vec::new();
        let mut sort = None;
        if *self.kind() == TokenKind::Ident {
            let first = self.ident("loop variable")?;
            let marker = self.sort_marker();
            let column = if self.eat(Punct::Assign).is_some() {
                value = Some(first);
                0
            } else {
                keys.push(first);
                1
            };
            if let Some((descending, _)) = marker {
                sort = Some(Sort { column, descending });
            }
        }
        if keys.is_empty() {
            if let Some(bracket) = self.eat(Punct::LBracket) {
                loop {
                    keys.push(self.ident("key variable")?);
                    self.sort_on(&mut sort, keys.len() as u32)?;
                    if self.eat(Punct::Comma).is_none() {
                        break;
                    }
                }
                self.expect_closing(Punct::RBracket, bracket, "',' or ']'")?;
            } else {
                keys.push(self.ident("key variable")?);
                self.sort_on(&mut sort, 1)?;
            }
        }
        if self.eat_kw(Keyword::In).is_none() {
            return Err(self.expected_hint(
                "'in'",
                "a foreach loop reads foreach (KEY in ARRAY) or foreach ([K1, K2] in ARRAY)",
            ));
        }
        if *self.kind() == TokenKind::AtWord {
            return Err(self.error_here(
                "foreach over a histogram is not supported by wasmtap",
                "histogram",
            ));
        }
        let array = self.ident("array name")?;
        if self.at(Punct::LBracket) {
            return Err(self.error_here(
                "array slices in foreach are not supported by wasmtap",
                "slice",
            ));
        }
        if *self.kind() == TokenKind::AtWord {
            return Err(self.error_here(
                "sorting by an aggregate (@count, @sum...) is not supported by wasmtap",
                "aggregate sort",
            ));
        }
        self.sort_on(&mut sort, 0)?;
        let limit = match self.eat_kw(Keyword::Limit) {
            Some(_) => Some(self.expr()?),
            None => None,
        };
        self.expect_closing(Punct::RParen, open, "')'")?;
        let body = self.statement()?;
        Ok(Stmt {
            span: kw.to(body.span),
            kind: StmtKind::Foreach(Box::new(Foreach {
                value,
                keys,
                array,
                sort,
                limit,
                body,
            })),
        })
    }

    fn try_stmt(&mut self) -> PResult<Stmt> {
        let kw = self.bump();
        if !self.at(Punct::LBrace) {
            return Err(self.expected_hint(
                "'{'",
                "a try statement reads try { ... } catch (msg) { ... }",
            ));
        }
        let body = self.block()?;
        if self.eat_kw(Keyword::Catch).is_none() {
            return Err(self.expected_hint("'catch'", "a try block is followed by catch { ... }"));
        }
        let mut catch_var = None;
        if let Some(open) = self.eat(Punct::LParen) {
            catch_var = Some(self.ident("variable name")?);
            self.expect_closing(Punct::RParen, open, "')'")?;
        }
        if !self.at(Punct::LBrace) {
            return Err(self.expected("'{'"));
        }
        let catch_body = self.block()?;
        Ok(Stmt {
            span: kw.to(catch_body.span),
            kind: StmtKind::Try {
                body,
                catch_var,
                catch_body,
            },
        })
    }

    // ----- expressions -----

    fn expr(&mut self) -> PResult<Expr> {
        self.enter()?;
        let result = self.assignment();
        self.leave();
        result
    }

    fn assignment(&mut self) -> PResult<Expr> {
        let target = self.ternary()?;
        let op = match *self.kind() {
            TokenKind::Punct(p) => assign_op(p),
            _ => None,
        };
        let Some(op) = op else {
            return Ok(target);
        };
        self.bump();
        let value = self.expr()?;
        Ok(Expr {
            span: target.span.to(value.span),
            kind: ExprKind::Assign {
                op,
                target: Box::new(target),
                value: Box::new(value),
            },
        })
    }

    fn ternary(&mut self) -> PResult<Expr> {
        let cond = self.binary(1)?;
        let Some(question) = self.eat(Punct::Question) else {
            return Ok(cond);
        };
        self.enter()?;
        let then = self.expr()?;
        if self.eat(Punct::Colon).is_none() {
            let mut d = self.expected("':'");
            if self.token_error().is_none() {
                d.secondary.push(crate::diagnostics::Label {
                    span: question,
                    message: "to complete this '?'".to_owned(),
                });
            }
            return Err(d);
        }
        let otherwise = self.ternary()?;
        self.leave();
        Ok(Expr {
            span: cond.span.to(otherwise.span),
            kind: ExprKind::Ternary {
                cond: Box::new(cond),
                then: Box::new(then),
                otherwise: Box::new(otherwise),
            },
        })
    }

    /// Binary operators binding at least as tight as `min`, by precedence
    /// climbing; `in` and the comparison level follow stap's special rules.
    fn binary(&mut self, min: u8) -> PResult<Expr> {
        // Operators binding tighter than `cap` may not follow (after `in`).
        let mut cap = u8::MAX;
        let mut lhs = if min <= IN_PREC && self.at(Punct::LBracket) {
            cap = IN_PREC - 1;
            self.in_list()?
        } else {
            self.unary()?
        };
        let mut compared = false;
        let mut matched = false;
        // Each operator in a left-associative chain nests the tree one
        // level deeper, so it counts against the depth limit as recursion
        // does (keeping every later walk over the tree shallow too).
        let outer_depth = self.depth;
        loop {
            if self.at_kw(Keyword::In) {
                if min > IN_PREC {
                    break;
                }
                if cap < IN_PREC {
                    return Err(self.error_here(
                        "an 'in' test cannot be the left side of another 'in'",
                        "second 'in'",
                    ));
                }
                self.enter()?;
                self.bump();
                let array = self.in_array()?;
                lhs = Expr {
                    span: lhs.span.to(array.span),
                    kind: ExprKind::In {
                        keys: vec![lhs],
                        array,
                    },
                };
                cap = IN_PREC - 1;
                continue;
            }
            let op = match *self.kind() {
                TokenKind::Punct(Punct::UShr) if min <= 8 => {
                    return Err(self.error_here_hint(
                        "'>>>' is not supported by wasmtap",
                        "unsigned shift",
                        "use '>>' on a non-negative value",
                    ));
                }
                TokenKind::Punct(p) => binary_op(p),
                _ => None,
            };
            let Some((prec, op)) = op else {
                break;
            };
            if prec < min {
                break;
            }
            if prec > cap {
                return Err(self.error_here_hint(
                    format!("'{}' cannot follow an 'in' test", self.text(self.span())),
                    "needs parentheses",
                    "put the 'in' test in parentheses: (k in a) == 0",
                ));
            }
            let regex = matches!(op, BinaryOp::Match | BinaryOp::NotMatch);
            if prec == CMP_PREC {
                if matched || (regex && compared) {
                    return Err(self.error_here_hint(
                        "a regular expression match cannot be chained with a comparison",
                        "chained here",
                        "add parentheses to say which comes first",
                    ));
                }
                matched |= regex;
                compared |= !regex;
            }
            self.enter()?;
            self.bump();
            let rhs = if regex {
                self.regex()?
            } else {
                self.binary(prec + 1)?
            };
            lhs = Expr {
                span: lhs.span.to(rhs.span),
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
            };
        }
        self.depth = outer_depth;
        Ok(lhs)
    }

    /// `[k1, k2] in ARRAY`, at `[`.
    fn in_list(&mut self) -> PResult<Expr> {
        let open = self.bump();
        let mut keys = Vec::new();
        loop {
            if self.at(Punct::Star) {
                return Err(
                    self.error_here("wildcard '*' keys are not supported by wasmtap", "wildcard")
                );
            }
            keys.push(self.binary(CMP_PREC)?);
            if self.eat(Punct::Comma).is_none() {
                break;
            }
        }
        self.expect_closing(Punct::RBracket, open, "',' or ']'")?;
        if self.eat_kw(Keyword::In).is_none() {
            return Err(self.expected_hint(
                "'in'",
                "a bracketed key list tests membership: [a, b] in array",
            ));
        }
        let array = self.in_array()?;
        Ok(Expr {
            span: open.to(array.span),
            kind: ExprKind::In { keys, array },
        })
    }

    /// The array after `in`.
    fn in_array(&mut self) -> PResult<Ident> {
        if *self.kind() == TokenKind::AtWord {
            return Err(self.error_here(
                "membership in a histogram is not supported by wasmtap",
                "histogram",
            ));
        }
        self.ident("array name")
    }

    /// The literal regular expression after `=~` / `!~`.
    fn regex(&mut self) -> PResult<Expr> {
        match *self.kind() {
            TokenKind::Str(_) => {
                let (s, span) = self.strings();
                Ok(Expr {
                    kind: ExprKind::Str(s),
                    span,
                })
            }
            TokenKind::ScriptArg {
                index,
                string: true,
            } => Ok(Expr {
                kind: ExprKind::ScriptArg {
                    index,
                    string: true,
                },
                span: self.bump(),
            }),
            _ => Err(self.expected_hint(
                "string literal",
                "the right side of '=~' and '!~' is a literal regular expression",
            )),
        }
    }

    fn unary(&mut self) -> PResult<Expr> {
        let op = match *self.kind() {
            TokenKind::Punct(Punct::Minus) => UnaryOp::Neg,
            TokenKind::Punct(Punct::Plus) => UnaryOp::Plus,
            TokenKind::Punct(Punct::Bang) => UnaryOp::Not,
            TokenKind::Punct(Punct::Tilde) => UnaryOp::BitNot,
            TokenKind::Punct(Punct::Amp) => {
                return Err(self.error_here_hint(
                    "taking an address ('&') is not supported by wasmtap",
                    "address-of",
                    "read the value itself, or @cast a pointer you already have",
                ));
            }
            _ => return self.crement(),
        };
        let start = self.bump();
        self.enter()?;
        let operand = self.unary()?;
        self.leave();
        Ok(Expr {
            span: start.to(operand.span),
            kind: ExprKind::Unary {
                op,
                operand: Box::new(operand),
            },
        })
    }

    /// `++x`, `x--` and values.
    fn crement(&mut self) -> PResult<Expr> {
        if self.at(Punct::PlusPlus) || self.at(Punct::MinusMinus) {
            let increment = self.at(Punct::PlusPlus);
            let start = self.bump();
            let target = self.postfix()?;
            return Ok(Expr {
                span: start.to(target.span),
                kind: ExprKind::IncDec {
                    increment,
                    prefix: true,
                    target: Box::new(target),
                },
            });
        }
        let target = self.postfix()?;
        if self.at(Punct::PlusPlus) || self.at(Punct::MinusMinus) {
            let increment = self.at(Punct::PlusPlus);
            let end = self.bump();
            return Ok(Expr {
                span: target.span.to(end),
                kind: ExprKind::IncDec {
                    increment,
                    prefix: false,
                    target: Box::new(target),
                },
            });
        }
        Ok(target)
    }

    /// A value, rejecting member and index chains stap would autocast.
    fn postfix(&mut self) -> PResult<Expr> {
        let value = self.primary()?;
        if self.at(Punct::Arrow) {
            return Err(self.error_here_hint(
                "'->' only follows a $target variable, @cast or @var",
                "member access on a plain value",
                "name the type: @cast(EXPR, \"struct_name\")->member",
            ));
        }
        if self.at(Punct::LBracket) {
            return Err(self.error_here_hint(
                "this value cannot be indexed",
                "'[' after a value that is not an array",
                "an array takes all its keys in one bracket: a[k1, k2]",
            ));
        }
        Ok(value)
    }

    fn primary(&mut self) -> PResult<Expr> {
        let kind = match *self.kind() {
            TokenKind::Int(v) => ExprKind::Int(v as i64),
            TokenKind::Str(_) => {
                let (s, span) = self.strings();
                return Ok(Expr {
                    kind: ExprKind::Str(s),
                    span,
                });
            }
            TokenKind::Punct(Punct::LParen) => {
                let open = self.bump();
                let inner = self.expr()?;
                self.expect_closing(Punct::RParen, open, "')'")?;
                return Ok(inner);
            }
            TokenKind::Ident => return self.name_expr(),
            TokenKind::Target => return self.target(),
            TokenKind::AtWord => return self.at_word(),
            TokenKind::ScriptArg { index, string } => ExprKind::ScriptArg { index, string },
            TokenKind::ScriptArgCount { .. } => ExprKind::ScriptArgCount,
            TokenKind::Keyword(k) => {
                return Err(self.expected_hint(
                    "expression",
                    format!("'{k}' is a reserved word and cannot be used as a name"),
                ));
            }
            _ => return Err(self.expected("expression")),
        };
        let span = self.bump();
        Ok(Expr { kind, span })
    }

    /// A variable, `a[k...]`, or a call.
    fn name_expr(&mut self) -> PResult<Expr> {
        let name = self.ident("name")?;
        if let Some(kind) = print_kind(&name.name) {
            return self.print_call(name, kind);
        }
        if let Some(open) = self.eat(Punct::LParen) {
            let mut args = Vec::new();
            if !self.at(Punct::RParen) {
                loop {
                    args.push(self.expr()?);
                    if self.eat(Punct::Comma).is_none() {
                        break;
                    }
                }
            }
            let close = self.expect_closing(Punct::RParen, open, "',' or ')'")?;
            return Ok(Expr {
                span: name.span.to(close),
                kind: ExprKind::Call { name, args },
            });
        }
        if let Some(open) = self.eat(Punct::LBracket) {
            let mut keys = Vec::new();
            loop {
                if self.at(Punct::Star) {
                    return Err(self
                        .error_here("wildcard '*' keys are not supported by wasmtap", "wildcard"));
                }
                keys.push(self.expr()?);
                if self.eat(Punct::Comma).is_none() {
                    break;
                }
            }
            let close = self.expect_closing(Punct::RBracket, open, "',' or ']'")?;
            return Ok(Expr {
                span: name.span.to(close),
                kind: ExprKind::Index { array: name, keys },
            });
        }
        Ok(Expr {
            span: name.span,
            kind: ExprKind::Var(name),
        })
    }

    /// A literal string where stap wants one (format, delimiter), or `@N`.
    fn format_string(&mut self, name: &str) -> PResult<Expr> {
        match *self.kind() {
            TokenKind::Str(_) => {
                let (s, span) = self.strings();
                Ok(Expr {
                    kind: ExprKind::Str(s),
                    span,
                })
            }
            TokenKind::ScriptArg {
                index,
                string: true,
            } => Ok(Expr {
                kind: ExprKind::ScriptArg {
                    index,
                    string: true,
                },
                span: self.bump(),
            }),
            _ => Err(self.expected_hint(
                "string literal",
                format!("the first argument of '{name}' must be a literal string"),
            )),
        }
    }

    fn print_call(&mut self, name: Ident, kind: PrintKind) -> PResult<Expr> {
        let Some(open) = self.eat(Punct::LParen) else {
            return Err(self.expected_hint(
                "'('",
                format!("'{0}' is a builtin function: {0}(...)", name.name),
            ));
        };
        let mut args = Vec::new();
        let hist = *self.kind() == TokenKind::AtWord
            && matches!(self.text(self.span()), "@hist_log" | "@hist_linear");
        if hist && matches!(kind, PrintKind::Plain { .. }) {
            args.push(self.hist()?);
            if self.at(Punct::LBracket) {
                return Err(self.error_here(
                    "indexing a histogram is not supported by wasmtap",
                    "bucket index",
                ));
            }
            let close = self.expect_closing(Punct::RParen, open, "')'")?;
            return Ok(Expr {
                span: name.span.to(close),
                kind: ExprKind::Call { name, args },
            });
        }
        let mut needed: usize = match kind {
            PrintKind::Format => {
                args.push(self.format_string(&name.name)?);
                0
            }
            PrintKind::Delimited => {
                args.push(self.format_string(&name.name)?);
                2
            }
            PrintKind::Plain { newline: false } => 1,
            PrintKind::Plain { newline: true } => 0,
        };
        loop {
            if self.at(Punct::RParen) {
                if needed > 0 {
                    let values = if kind == PrintKind::Delimited {
                        "at least two values after the delimiter"
                    } else {
                        "an argument"
                    };
                    return Err(self.error_here(
                        format!("'{}' needs {values}", name.name),
                        "arguments end here",
                    ));
                }
                break;
            }
            if !args.is_empty() && self.eat(Punct::Comma).is_none() {
                return Err(self.closing_error(open, "',' or ')'"));
            }
            args.push(self.expr()?);
            needed = needed.saturating_sub(1);
        }
        let close = self.bump();
        Ok(Expr {
            span: name.span.to(close),
            kind: ExprKind::Call { name, args },
        })
    }

    /// `$name` with its `->member` / `[index]` chain and pretty marker.
    fn target(&mut self) -> PResult<Expr> {
        let start = self.bump();
        let text = self.text(start);
        let body = &text[1..];
        let name = body.trim_end_matches('$');
        if name.is_empty() {
            return Err(Box::new(
                Diagnostic::error(
                    "expected a target variable name after '$'",
                    start,
                    "no name",
                )
                .with_hint("target variables look like $name, $$parms or $var->field"),
            ));
        }
        let mut pretty = name.len() < body.len();
        let mut path = Vec::new();
        let mut end = start;
        while !pretty {
            if self.eat(Punct::Arrow).is_some() {
                if self.at_dollars() {
                    end = self.bump();
                    pretty = true;
                    break;
                }
                if !matches!(self.kind(), TokenKind::Ident | TokenKind::Keyword(_)) {
                    return Err(self.expected("member name"));
                }
                let span = self.bump();
                let written = self.text(span);
                let member = written.trim_end_matches('$');
                pretty = member.len() < written.len();
                path.push(Access::Member(Ident {
                    name: member.to_owned(),
                    span: Span::new(span.start, span.start + member.len() as u32),
                }));
                end = span;
            } else if let Some(open) = self.eat(Punct::LBracket) {
                let index = self.expr()?;
                end = self.expect_closing(Punct::RBracket, open, "']'")?;
                path.push(Access::Index(index));
            } else {
                break;
            }
        }
        if !pretty && self.at_dollars() {
            end = self.bump();
            pretty = true;
        }
        if pretty && (self.at(Punct::Arrow) || self.at(Punct::LBracket)) {
            return Err(self.error_here(
                "'->' and '[' cannot follow the pretty-printing '$'",
                "after the pretty-print marker",
            ));
        }
        Ok(Expr {
            span: start.to(end),
            kind: ExprKind::Target(TargetExpr {
                name: name.to_owned(),
                path,
                pretty,
            }),
        })
    }

    /// `@count(x)`, `@cast(p, "type")->f`, ...
    fn at_word(&mut self) -> PResult<Expr> {
        let span = self.span();
        let name = &self.text(span)[1..];
        if let Some(op) = stat_op(name) {
            self.bump();
            let open = self.expect_hint(Punct::LParen, &format!("write @{name}(VALUE)"))?;
            let operand = self.expr()?;
            if self.at(Punct::Comma) {
                return Err(self.error_here(
                    format!("'@{name}' takes one argument in wasmtap"),
                    "extra argument",
                ));
            }
            let close = self.expect_closing(Punct::RParen, open, "')'")?;
            return Ok(Expr {
                span: span.to(close),
                kind: ExprKind::StatOp {
                    op,
                    operand: Box::new(operand),
                },
            });
        }
        if matches!(name, "hist_log" | "hist_linear") {
            return Err(self.error_here_hint(
                "a histogram can only be printed",
                "histogram used as a value",
                format!("print it on its own: print(@{name}(...))"),
            ));
        }
        if !AT_CALLS.contains(&name) {
            return Err(self.error_here_hint(
                format!("unknown operator '@{name}'"),
                "not a known @-operator",
                "the @-operators are @count, @sum, @min, @max, @avg, @variance, \
                     @hist_log, @hist_linear, @cast, @var, @defined, @entry and @perf",
            ));
        }
        self.bump();
        let open = self.expect_hint(Punct::LParen, &format!("write @{name}(...)"))?;
        let mut args = Vec::new();
        if !self.at(Punct::RParen) {
            loop {
                args.push(self.expr()?);
                if self.eat(Punct::Comma).is_none() {
                    break;
                }
            }
        }
        let mut end = self.expect_closing(Punct::RParen, open, "',' or ')'")?;
        let mut path = Vec::new();
        loop {
            if self.eat(Punct::Arrow).is_some() {
                if !matches!(self.kind(), TokenKind::Ident | TokenKind::Keyword(_)) {
                    return Err(self.expected("member name"));
                }
                let member = self.bump();
                let written = self.text(member);
                if written.ends_with('$') {
                    return Err(pretty_at_call(member, name));
                }
                path.push(Access::Member(Ident {
                    name: written.to_owned(),
                    span: member,
                }));
                end = member;
            } else if let Some(bracket) = self.eat(Punct::LBracket) {
                let index = self.expr()?;
                end = self.expect_closing(Punct::RBracket, bracket, "']'")?;
                path.push(Access::Index(index));
            } else {
                break;
            }
        }
        if self.at_dollars() {
            return Err(pretty_at_call(self.span(), name));
        }
        Ok(Expr {
            span: span.to(end),
            kind: ExprKind::AtCall {
                name: Ident {
                    name: name.to_owned(),
                    span,
                },
                args,
                path,
            },
        })
    }

    /// `@hist_log(v)` or `@hist_linear(v, lo, hi, step)` inside a print.
    fn hist(&mut self) -> PResult<Expr> {
        let start = self.bump();
        let linear = self.text(start) == "@hist_linear";
        let open = self.expect(Punct::LParen)?;
        let operand = Box::new(self.expr()?);
        let kind = if linear {
            let mut bounds = Vec::with_capacity(3);
            for _ in 0..3 {
                self.expect_hint(Punct::Comma, "write @hist_linear(VALUE, LOW, HIGH, STEP)")?;
                let (value, span) = self.literal_number("number")?;
                bounds.push(Box::new(Expr {
                    kind: ExprKind::Int(value),
                    span,
                }));
            }
            let step = bounds.pop();
            let hi = bounds.pop();
            let lo = bounds.pop();
            match (lo, hi, step) {
                (Some(lo), Some(hi), Some(step)) => HistKind::Linear { lo, hi, step },
                _ => HistKind::Log,
            }
        } else {
            HistKind::Log
        };
        let close = self.expect_closing(Punct::RParen, open, "')'")?;
        Ok(Expr {
            span: start.to(close),
            kind: ExprKind::Hist { kind, operand },
        })
    }
}

fn pretty_at_call(span: Span, name: &str) -> Box<Diagnostic> {
    Box::new(Diagnostic::error(
        format!("pretty-printing ('$') of @{name} is not supported by wasmtap"),
        span,
        "pretty-print marker",
    ))
}

fn too_many_points(span: Span) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::error(
            "too many probe points",
            span,
            format!("expands past {MAX_PROBE_POINTS} probe points"),
        )
        .with_hint("use wildcards such as syscall.* instead of long lists of alternatives"),
    )
}
