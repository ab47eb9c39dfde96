//! The front end: script text to [`ast::Script`].
//!
//! Three stages, each in its own module: [`lexer`] (text to tokens with
//! byte spans), [`preprocess`] (evaluates `%( %? %: %)` conditionals,
//! dropping tokens without moving spans) and [`parser`] (tokens to the AST,
//! following the grammar of stap's `parse.cxx`). Every error is a
//! [`Diagnostic`] pointing into the original source; parsing stops at the
//! first one, as stap reports one parse error at a time.
//!
//! ```
//! use wasmtap_compiler::syntax::{ParseOptions, parse};
//!
//! let script = parse("probe begin { println(\"hi\") }", &ParseOptions::default()).unwrap();
//! assert_eq!(script.items.len(), 1);
//! ```

pub mod ast;
pub mod lexer;
pub mod parser;
pub mod preprocess;

use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// What the `%( %)` conditionals may test, and the values that `$1`/`@1`
/// take where the AST needs a literal (probe-point arguments, array sizes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// The script arguments `$1..$N` / `@1..@N`, in order. Default: none.
    pub args: Vec<String>,
    /// The target kernel's `(major, minor, patch)`, for `kernel_v` and
    /// `kernel_vr`. Default: `(0, 0, 0)`.
    pub kernel_version: (u32, u32, u32),
    /// The target architecture as stap names it (`x86_64`, `arm64`...),
    /// for `arch`. Default: empty.
    pub arch: String,
}

/// Parses a whole script.
///
/// # Errors
/// The first lexing, preprocessing or parse error, as a one-element list
/// (a list so that later versions may report more than one).
pub fn parse(source: &str, options: &ParseOptions) -> Result<ast::Script, Vec<Diagnostic>> {
    if u32::try_from(source.len()).is_err() {
        return Err(vec![Diagnostic::error(
            "script is too large",
            Span::new(0, 0),
            "scripts must be smaller than 4 GiB",
        )]);
    }
    let run = || {
        let tokens = lexer::lex(source);
        let tokens = preprocess::preprocess(source, tokens, options);
        parser::parse_tokens(source, tokens, options).map_err(|d| vec![*d])
    };
    // Nesting up to `parser::MAX_DEPTH` levels takes several megabytes of
    // stack in unoptimized builds, more than a test thread has: parse on a
    // thread of our own (stack is reserved lazily, so this costs little).
    std::thread::scope(|scope| {
        match std::thread::Builder::new()
            .name("wasmtap-parse".into())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, run)
        {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(_) => run(),
        }
    })
}

/// The stack of the thread [`parse`] runs on.
const PARSE_STACK_BYTES: usize = 64 << 20;
