//! Errors and warnings of every pass, as data, rendered in one place.
//!
//! Passes return [`Diagnostic`]s that carry spans and text only; [`render`]
//! turns them into the text the user sees (`file:line:col`, the source line,
//! a caret, and hints), with ariadne, without colours so that golden tests
//! compare plain text.

use std::fmt::Write as _;

use ariadne::{CharSet, Config, IndexType, Label as AriadneLabel, Report, ReportKind, Source};

use crate::span::{Span, line_col};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A span with a short explanation of what is there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One error or warning, with where it points and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// The place the problem is; every diagnostic has one.
    pub primary: Label,
    /// Related places, such as an earlier conflicting use.
    pub secondary: Vec<Label>,
    /// What to do about it.
    pub hints: Vec<String>,
}

impl Diagnostic {
    /// An error at `span` labelled `label`.
    pub fn error(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            message: message.into(),
            primary: Label {
                span,
                message: label.into(),
            },
            secondary: Vec::new(),
            hints: Vec::new(),
        }
    }

    /// A warning at `span` labelled `label`.
    pub fn warning(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(message, span, label)
        }
    }

    /// Adds a related place.
    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: label.into(),
        });
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hints.push(hint.into());
        self
    }

    /// Whether this stops compilation.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Renders diagnostics as plain text: a `FILE:LINE:COL` header followed by
/// the annotated source.
pub fn render(diagnostics: &[Diagnostic], file: &str, source: &str) -> String {
    let mut out = String::new();
    for diagnostic in diagnostics {
        out.push_str(&render_one(diagnostic, file, source));
    }
    out
}

fn render_one(diagnostic: &Diagnostic, file: &str, source: &str) -> String {
    let (line, col) = line_col(source, diagnostic.primary.span.start);
    let kind = match diagnostic.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let clamp = |span: Span| {
        let end = (span.end as usize).min(source.len());
        let start = (span.start as usize).min(end);
        // A zero-width span (end of input) still needs a column to point at.
        (
            file,
            start..end.max(start + 1).min(source.len().max(start + 1)),
        )
    };
    let config = Config::default()
        .with_color(false)
        .with_char_set(CharSet::Ascii)
        .with_index_type(IndexType::Byte);
    let mut report = Report::build(kind, clamp(diagnostic.primary.span))
        .with_config(config)
        .with_message(format!("{} ({file}:{line}:{col})", diagnostic.message))
        .with_label(
            AriadneLabel::new(clamp(diagnostic.primary.span))
                .with_message(&diagnostic.primary.message)
                .with_order(0),
        );
    for (order, label) in diagnostic.secondary.iter().enumerate() {
        report = report.with_label(
            AriadneLabel::new(clamp(label.span))
                .with_message(&label.message)
                .with_order(order as i32 + 1),
        );
    }
    for hint in &diagnostic.hints {
        report = report.with_help(hint);
    }
    let mut bytes = Vec::new();
    // Padding the source with a space keeps end-of-input spans renderable.
    let padded = format!("{source} ");
    if report
        .finish()
        .write((file, Source::from(padded.as_str())), &mut bytes)
        .is_err()
    {
        let mut fallback = String::new();
        let _ = writeln!(
            fallback,
            "error: {} ({file}:{line}:{col})",
            diagnostic.message
        );
        return fallback;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
