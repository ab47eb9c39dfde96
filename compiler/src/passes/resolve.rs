//! Pass 2a: turns the probe points of each `probe` declaration into
//! concrete probes against a [`Catalog`].
//!
//! A declaration with several points, or with a wildcard, yields one
//! [`ResolvedProbe`] per concrete event (per syscall for `syscall.*`): each
//! gets its own capture plan and its own copy of the handler, because
//! variables such as `$filename` sit in different arguments per syscall.

use serde::Serialize;

use crate::{
    catalog::{Catalog, Syscall},
    diagnostics::Diagnostic,
    span::Span,
    syntax::ast::{Component, Item, Literal, ProbeDecl, ProbePoint, Script},
};

/// A concrete probe: one event source and the handler that runs for it.
#[derive(Clone, Debug, Serialize)]
pub struct ResolvedProbe {
    /// Index in the manifest; also the record header's probe id.
    pub id: u32,
    /// Index of the `probe` declaration in `Script::items`.
    pub item: usize,
    /// The point as stap's `pp()` prints it, e.g. `syscall.openat`.
    pub name: String,
    pub kind: ProbeKind,
    /// The written probe point.
    pub span: Span,
}

/// What makes a probe fire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ProbeKind {
    /// Runs once before any event, ordered by priority then script order.
    Begin { priority: i64 },
    /// Runs once at the end of the session.
    End { priority: i64 },
    /// Runs after a run-time error, before `end`.
    Error { priority: i64 },
    /// Fires every `period_ns` in the host.
    Timer { period_ns: u64 },
    /// Entry (`ret == false`) or return of one syscall.
    Syscall { nr: u32, name: String, ret: bool },
    /// A kernel probe the host resolved and attaches by itself (a plugin's
    /// tracepoints and perf sampling); the compiler never produces it.
    External,
}

impl ProbeKind {
    /// Whether the kernel produces records for this probe (as opposed to
    /// the host running it by itself).
    pub fn is_kernel(&self) -> bool {
        matches!(self, Self::Syscall { .. } | Self::External)
    }
}

/// Resolves every probe point of `script`.
///
/// # Errors
/// One diagnostic per point that names nothing this system has (unless the
/// point is marked optional with `?`).
pub fn resolve(
    script: &Script,
    catalog: &dyn Catalog,
) -> Result<Vec<ResolvedProbe>, Vec<Diagnostic>> {
    let mut probes = Vec::new();
    let mut errors = Vec::new();
    for (item_index, item) in script.items.iter().enumerate() {
        let Item::Probe(decl) = item else { continue };
        if decl.alias.is_some() {
            errors.push(
                Diagnostic::error(
                    "probe aliases are not supported yet",
                    decl.span,
                    "alias definition",
                )
                .with_hint("write the probe point directly in the probe"),
            );
            continue;
        }
        for point in &decl.points {
            match resolve_point(point, catalog) {
                Ok(kinds) if kinds.is_empty() && !point.optional => {
                    errors.push(no_match(point));
                }
                Ok(kinds) => {
                    for (name, kind) in kinds {
                        probes.push(ResolvedProbe {
                            id: probes.len() as u32,
                            item: item_index,
                            name,
                            kind,
                            span: point.span,
                        });
                    }
                }
                Err(_) if point.optional => {}
                Err(error) => errors.push(error),
            }
        }
        check_condition(decl, &mut errors);
    }
    if probes.len() > wasmtap_abi::MAX_PROBES as usize {
        errors.push(Diagnostic::error(
            format!(
                "the script has {} probes; at most {} are supported",
                probes.len(),
                wasmtap_abi::MAX_PROBES
            ),
            Span::default(),
            "here",
        ));
    }
    if errors.is_empty() {
        Ok(probes)
    } else {
        Err(errors)
    }
}

fn check_condition(decl: &ProbeDecl, errors: &mut Vec<Diagnostic>) {
    for point in &decl.points {
        if let Some(condition) = &point.condition {
            errors.push(
                Diagnostic::error(
                    "conditional probe points are not supported yet",
                    condition.span,
                    "condition",
                )
                .with_hint("move the condition into the handler: `if (!(COND)) next`"),
            );
        }
    }
}

fn no_match(point: &ProbePoint) -> Diagnostic {
    Diagnostic::error(
        format!("probe point '{}' matches nothing", point_text(point)),
        point.span,
        "no such event on this system",
    )
    .with_hint(
        "check the name (syscalls of x86_64, as in syscalls(2)), or mark the point optional with '?'",
    )
}

/// The point as written, for messages: `syscall.open*`, `timer.ms(100)`.
pub fn point_text(point: &ProbePoint) -> String {
    point
        .components
        .iter()
        .map(component_text)
        .collect::<Vec<_>>()
        .join(".")
}

fn component_text(component: &Component) -> String {
    match &component.arg {
        None => component.name.clone(),
        Some(Literal::Int(n)) => format!("{}({n})", component.name),
        Some(Literal::Str(s)) => format!("{}(\"{s}\")", component.name),
    }
}

type Resolved = Vec<(String, ProbeKind)>;

fn resolve_point(point: &ProbePoint, catalog: &dyn Catalog) -> Result<Resolved, Diagnostic> {
    let components = &point.components;
    let first = &components[0];
    let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
    match names.as_slice() {
        ["begin" | "end" | "error"] => {
            let priority = match &first.arg {
                None => 0,
                Some(Literal::Int(n)) => *n,
                Some(Literal::Str(_)) => return Err(bad_arg(first, "a number (the priority)")),
            };
            let kind = match first.name.as_str() {
                "begin" => ProbeKind::Begin { priority },
                "end" => ProbeKind::End { priority },
                _ => ProbeKind::Error { priority },
            };
            Ok(vec![(first.name.clone(), kind)])
        }
        ["timer", unit] => {
            let unit_component = &components[1];
            let n = match &unit_component.arg {
                Some(Literal::Int(n)) if *n > 0 => *n as u64,
                _ => return Err(bad_arg(unit_component, "a positive number")),
            };
            let period_ns = match *unit {
                "s" | "sec" => n.saturating_mul(1_000_000_000),
                "ms" | "msec" => n.saturating_mul(1_000_000),
                "us" | "usec" => n.saturating_mul(1_000),
                "ns" | "nsec" => n.max(100_000),
                "hz" => 1_000_000_000 / n,
                "jiffies" => n.saturating_mul(4_000_000),
                _ => return Err(unknown_point(point)),
            };
            Ok(vec![(point_text(point), ProbeKind::Timer { period_ns })])
        }
        ["syscall", pattern] => Ok(syscall_probes(catalog, pattern, false)),
        ["syscall", pattern, "return"] => Ok(syscall_probes(catalog, pattern, true)),
        ["kernel", "function", ..] => Err(Diagnostic::error(
            "kernel.function probes need kprobes or BTF trampolines, and this kernel allows neither",
            point.span,
            "cannot be attached here",
        )
        .with_hint("use a tracepoint instead: `kernel.trace(\"subsys:event\")`, or a `syscall.NAME` probe")),
        _ => Err(unknown_point(point)),
    }
}

fn syscall_probes(catalog: &dyn Catalog, pattern: &str, ret: bool) -> Resolved {
    catalog
        .syscalls()
        .iter()
        .filter(|syscall| glob_match(pattern, &syscall.name))
        .filter(|syscall| syscall.tracepoint.is_some() || pattern == syscall.name)
        .map(|syscall: &Syscall| {
            let name = if ret {
                format!("syscall.{}.return", syscall.name)
            } else {
                format!("syscall.{}", syscall.name)
            };
            (
                name,
                ProbeKind::Syscall {
                    nr: syscall.nr,
                    name: syscall.name.clone(),
                    ret,
                },
            )
        })
        .collect()
}

fn bad_arg(component: &Component, expected: &str) -> Diagnostic {
    Diagnostic::error(
        format!("'{}' takes {expected}", component.name),
        component.span,
        "invalid argument",
    )
}

fn unknown_point(point: &ProbePoint) -> Diagnostic {
    Diagnostic::error(
        format!("unknown probe point '{}'", point_text(point)),
        point.span,
        "not a probe point wasmtap knows",
    )
    .with_hint(
        "supported: begin, end, error, timer.s/ms/us/hz(N), syscall.NAME, syscall.NAME.return (NAME may use * ? [...])",
    )
}

/// Shell-style matching as stap uses for probe point components: `*`, `?`
/// and `[...]` classes.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn class_matches(class: &[u8], c: u8) -> (bool, usize) {
        // `class` starts after '['; returns (matched, bytes consumed incl. ']').
        let (negate, mut i) = match class.first() {
            Some(b'!' | b'^') => (true, 1),
            _ => (false, 0),
        };
        let mut matched = false;
        let start = i;
        while i < class.len() && (class[i] != b']' || i == start) {
            if i + 2 < class.len() && class[i + 1] == b'-' && class[i + 2] != b']' {
                matched |= class[i] <= c && c <= class[i + 2];
                i += 3;
            } else {
                matched |= class[i] == c;
                i += 1;
            }
        }
        (matched != negate, i + 1)
    }
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') => (0..=t.len()).any(|skip| go(&p[1..], &t[skip..])),
            Some(b'?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(b'[') if !t.is_empty() && p.contains(&b']') => {
                let (ok, used) = class_matches(&p[1..], t[0]);
                ok && go(&p[1 + used.min(p.len() - 1)..], &t[1..])
            }
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("*", "openat"));
        assert!(glob_match("open*", "openat"));
        assert!(glob_match("exec*", "execve"));
        assert!(glob_match("unlink*", "unlinkat"));
        assert!(!glob_match("open", "openat"));
        assert!(glob_match("?pen", "open"));
        assert!(glob_match("[ou]pen", "open"));
        assert!(!glob_match("[!o]pen", "open"));
        assert!(glob_match("get[a-z]id", "getpid"));
    }
}
