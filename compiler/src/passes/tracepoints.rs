//! Tracepoint probe points: `kernel.trace("system:event")`, the tapset
//! aliases wasmtap maps onto tracepoints (`signal.send`, `kprocess.*`,
//! `process.begin/end`), `kernel.function` where a tracepoint is its exact
//! equivalent, and the variables each of them offers.
//!
//! This kernel has neither kprobes nor BTF trampolines, so stap's
//! kprobe-based tapsets are rebuilt here on the stable tracepoints; where
//! stap's variable has no counterpart in the trace entry it is left out
//! rather than faked.

use serde::Serialize;

use crate::{
    catalog::{Catalog, FieldKind, Tracepoint},
    diagnostics::Diagnostic,
    passes::{
        resolve::{ProbeKind, ResolvedProbe, glob_match},
        symbols::ProbeVar,
    },
    span::Span,
};

/// A stap probe point that wasmtap runs on a tracepoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum TapsetAlias {
    /// `signal.send` on `signal:signal_generate` (the sender is current).
    SignalSend,
    /// `kprocess.exec` on `sched:sched_process_exec`.
    KprocessExec,
    /// `kprocess.exit` on `sched:sched_process_exit` (every exiting task).
    KprocessExit,
    /// `process.begin` on `task:task_newtask`, new thread groups only. The
    /// event fires in the creating task; in the handler `pid()`, `tid()`
    /// and `execname()` are the new process's, as in stap.
    ProcessBegin,
    /// `process.end` on `sched:sched_process_exit`, last thread only.
    ProcessEnd,
    /// `kernel.function(NAME)` mapped to its equivalent tracepoint.
    KernelFunction(String),
}

/// What a tracepoint-based probe point expands to.
type Resolved = Vec<(String, ProbeKind)>;

/// `CLONE_THREAD`: a new task that joins its creator's thread group.
pub const CLONE_THREAD: i64 = 0x0001_0000;

/// Resolves `kernel.trace(PATTERN)`: `system:event` or a bare `event`, both
/// with shell wildcards.
///
/// # Errors
/// When a matched tracepoint's format cannot be read.
pub fn kernel_trace(
    catalog: &dyn Catalog,
    pattern: &str,
    span: Span,
) -> Result<Resolved, Diagnostic> {
    let (system_pattern, event_pattern) = pattern.split_once(':').unwrap_or(("*", pattern));
    let all = catalog.tracepoints();
    if all.is_empty() {
        return Err(Diagnostic::error(
            "no tracepoints are visible on this system",
            span,
            "cannot be resolved",
        )
        .with_hint("tracepoints are read from tracefs (/sys/kernel/tracing), which needs root to mount and read"));
    }
    let mut resolved = Vec::new();
    for (system, event) in all {
        if !glob_match(system_pattern, &system) || !glob_match(event_pattern, &event) {
            continue;
        }
        let tracepoint = catalog.tracepoint(&system, &event).ok_or_else(|| {
            Diagnostic::error(
                format!("cannot read the format of tracepoint {system}:{event}"),
                span,
                "listed but unreadable",
            )
            .with_hint("tracefs must be mounted and readable (run as root)")
        })?;
        resolved.push((
            format!("kernel.trace(\"{system}:{event}\")"),
            ProbeKind::Tracepoint {
                tracepoint,
                alias: None,
            },
        ));
    }
    Ok(resolved)
}

/// Resolves a tapset alias (`signal.send`, ...), if `names` is one.
///
/// # Errors
/// When this system lacks the tracepoint the alias needs.
pub fn alias(
    catalog: &dyn Catalog,
    names: &[&str],
    span: Span,
) -> Option<Result<Resolved, Diagnostic>> {
    let alias = match names {
        ["signal", "send"] => TapsetAlias::SignalSend,
        ["kprocess", "exec"] => TapsetAlias::KprocessExec,
        ["kprocess", "exit"] => TapsetAlias::KprocessExit,
        ["process", "begin"] => TapsetAlias::ProcessBegin,
        ["process", "end"] => TapsetAlias::ProcessEnd,
        _ => return None,
    };
    Some(on_tracepoint(catalog, alias, span))
}

/// The tracepoint an alias runs on.
fn target(alias: &TapsetAlias) -> (&'static str, &'static str) {
    match alias {
        TapsetAlias::SignalSend => ("signal", "signal_generate"),
        TapsetAlias::KprocessExec => ("sched", "sched_process_exec"),
        TapsetAlias::ProcessBegin => ("task", "task_newtask"),
        TapsetAlias::KprocessExit | TapsetAlias::ProcessEnd | TapsetAlias::KernelFunction(_) => {
            ("sched", "sched_process_exit")
        }
    }
}

fn on_tracepoint(
    catalog: &dyn Catalog,
    alias: TapsetAlias,
    span: Span,
) -> Result<Resolved, Diagnostic> {
    let (system, event) = target(&alias);
    let tracepoint = catalog.tracepoint(system, event).ok_or_else(|| {
        Diagnostic::error(
            format!("this system has no tracepoint {system}:{event}"),
            span,
            "needed by this probe point",
        )
        .with_hint("tracefs must be mounted and readable (run as root)")
    })?;
    Ok(vec![(
        format!("kernel.trace(\"{system}:{event}\")"),
        ProbeKind::Tracepoint {
            tracepoint,
            alias: Some(alias),
        },
    )])
}

/// Kernel functions whose every call is exactly one firing of a
/// tracepoint, and that tracepoint.
const FUNCTION_EQUIVALENTS: &[(&str, &str)] = &[
    ("do_exit", "sched:sched_process_exit"),
    ("sys_exit", "sched:sched_process_exit"),
    ("__x64_sys_exit", "sched:sched_process_exit"),
];

/// Tracepoints to suggest for common kernel functions without an exact
/// equivalent.
const FUNCTION_HINTS: &[(&str, &str)] = &[
    (
        "do_execve",
        "kprocess.exec or kernel.trace(\"sched:sched_process_exec\")",
    ),
    (
        "do_fork",
        "process.begin or kernel.trace(\"task:task_newtask\")",
    ),
    (
        "kernel_clone",
        "process.begin or kernel.trace(\"task:task_newtask\")",
    ),
    (
        "send_signal",
        "signal.send or kernel.trace(\"signal:signal_generate\")",
    ),
    (
        "__send_signal",
        "signal.send or kernel.trace(\"signal:signal_generate\")",
    ),
    ("schedule", "kernel.trace(\"sched:sched_switch\")"),
    ("wake_up_process", "kernel.trace(\"sched:sched_wakeup\")"),
];

/// Resolves `kernel.function(NAME)`: the exact tracepoint equivalent of a
/// few well-known functions (reported by [`warnings`]); otherwise an error
/// that says why and what to use.
///
/// # Errors
/// Every function without an exact equivalent.
pub fn kernel_function(
    catalog: &dyn Catalog,
    name: &str,
    suffixed: bool,
    span: Span,
) -> Result<Resolved, Diagnostic> {
    if !suffixed && FUNCTION_EQUIVALENTS.iter().any(|(f, _)| *f == name) {
        return on_tracepoint(catalog, TapsetAlias::KernelFunction(name.to_string()), span);
    }
    let hint = FUNCTION_HINTS
        .iter()
        .chain(FUNCTION_EQUIVALENTS)
        .find(|(f, _)| *f == name)
        .map_or_else(
        || {
            "use a tracepoint instead: `kernel.trace(\"subsys:event\")` (list them in /sys/kernel/tracing/events), or a `syscall.NAME` probe".to_string()
        },
        |(_, tp)| format!("use {tp} instead"),
    );
    let what = if suffixed {
        format!("kernel.function(\"{name}\").return")
    } else {
        format!("kernel.function(\"{name}\")")
    };
    Err(Diagnostic::error(
        format!("{what} needs kprobes or BTF trampolines, and this kernel allows neither"),
        span,
        "cannot be attached here",
    )
    .with_hint(hint))
}

/// The warnings resolution leaves: one per `kernel.function` point that
/// was mapped onto a tracepoint.
pub fn warnings(probes: &[ResolvedProbe]) -> Vec<Diagnostic> {
    probes
        .iter()
        .filter_map(|probe| {
            let ProbeKind::Tracepoint {
                tracepoint,
                alias: Some(TapsetAlias::KernelFunction(name)),
            } = &probe.kind
            else {
                return None;
            };
            Some(
                Diagnostic::warning(
                    format!(
                        "kernel.function(\"{name}\") runs on tracepoint {}:{}: this kernel has neither kprobes nor BTF trampolines",
                        tracepoint.system, tracepoint.event
                    ),
                    probe.span,
                    "mapped to a tracepoint",
                )
                .with_hint(format!(
                    "it fires whenever a task exits, as do_exit() does; write kernel.trace(\"{}:{}\") to say so",
                    tracepoint.system, tracepoint.event
                )),
            )
        })
        .collect()
}

/// Looks up `$name` (target = true) or a tapset variable in a tracepoint
/// probe.
pub fn probe_var(
    tracepoint: &Tracepoint,
    alias: Option<&TapsetAlias>,
    name: &str,
    target: bool,
) -> Option<ProbeVar> {
    if target {
        // The parser reads `$$parms` as the target variable `$parms`.
        if name == "$parms" {
            return Some(ProbeVar::TracepointParms);
        }
        // do_exit(long code): its one parameter is the task's exit code.
        if name == "code" && matches!(alias, Some(TapsetAlias::KernelFunction(f)) if f == "do_exit")
        {
            return Some(ProbeVar::ExitCode);
        }
        return field_var(tracepoint, name);
    }
    let field = |n: &str| field_var(tracepoint, n);
    match (alias?, name) {
        (TapsetAlias::SignalSend, "sig") => field("sig"),
        (TapsetAlias::SignalSend, "sig_name") => {
            let ProbeVar::Field { index, .. } = field("sig")? else {
                return None;
            };
            Some(ProbeVar::SignalName { index })
        }
        (TapsetAlias::SignalSend, "sig_pid") => field("pid"),
        (TapsetAlias::SignalSend, "pid_name") => field("comm"),
        (TapsetAlias::SignalSend, "si_code") => field("code"),
        (TapsetAlias::SignalSend, "shared") => field("group"),
        (TapsetAlias::SignalSend, "send2queue") => Some(ProbeVar::Const(0)),
        (TapsetAlias::SignalSend, "name") => Some(ProbeVar::ConstStr("send_signal")),
        (TapsetAlias::KprocessExec, "filename") => field("filename"),
        (TapsetAlias::ProcessBegin, "pid") => field("pid"),
        (TapsetAlias::KprocessExit | TapsetAlias::ProcessEnd, "code") => Some(ProbeVar::ExitCode),
        _ => None,
    }
}

/// `$name` for a field the script can read.
fn field_var(tracepoint: &Tracepoint, name: &str) -> Option<ProbeVar> {
    let index = tracepoint.fields.iter().position(|f| f.name == name)?;
    let string = match tracepoint.fields[index].kind() {
        FieldKind::Int { .. } => false,
        FieldKind::CharArray | FieldKind::DataLocStr => true,
        FieldKind::Unsupported => return None,
    };
    Some(ProbeVar::Field { index, string })
}

/// Every variable of a tracepoint probe, for hints and listings.
pub fn probe_var_names(tracepoint: &Tracepoint, alias: Option<&TapsetAlias>) -> Vec<String> {
    let mut names: Vec<String> = match alias {
        Some(TapsetAlias::SignalSend) => [
            "name",
            "sig",
            "sig_name",
            "sig_pid",
            "pid_name",
            "si_code",
            "send2queue",
            "shared",
        ]
        .map(String::from)
        .to_vec(),
        Some(TapsetAlias::KprocessExec) => vec!["filename".into()],
        Some(TapsetAlias::ProcessBegin) => vec!["pid".into()],
        Some(TapsetAlias::KprocessExit | TapsetAlias::ProcessEnd) => vec!["code".into()],
        _ => Vec::new(),
    };
    names.extend(
        tracepoint
            .fields
            .iter()
            .filter(|f| field_var(tracepoint, &f.name).is_some())
            .map(|f| format!("${}", f.name)),
    );
    names.push("$$parms".into());
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::StaticCatalog;

    fn catalog() -> StaticCatalog {
        StaticCatalog::x86_64((6, 18, 0))
    }

    #[test]
    fn wildcards_match_system_and_event() {
        let resolved = kernel_trace(&catalog(), "sched:sched_process_*", Span::default()).unwrap();
        let names: Vec<_> = resolved.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"kernel.trace(\"sched:sched_process_exec\")"));
        assert!(names.contains(&"kernel.trace(\"sched:sched_process_exit\")"));
        assert!(!names.iter().any(|n| n.contains("sched_switch")));
        let bare = kernel_trace(&catalog(), "signal_generate", Span::default()).unwrap();
        assert_eq!(bare.len(), 1);
    }

    #[test]
    fn signal_send_offers_stap_variables() {
        let resolved = alias(&catalog(), &["signal", "send"], Span::default())
            .unwrap()
            .unwrap();
        let ProbeKind::Tracepoint { tracepoint, alias } = &resolved[0].1 else {
            panic!("not a tracepoint");
        };
        let var = |n| probe_var(tracepoint, alias.as_ref(), n, false);
        assert!(matches!(
            var("pid_name"),
            Some(ProbeVar::Field { string: true, .. })
        ));
        assert!(matches!(var("sig_name"), Some(ProbeVar::SignalName { .. })));
        assert_eq!(var("send2queue"), Some(ProbeVar::Const(0)));
        assert_eq!(var("nope"), None);
    }

    #[test]
    fn kernel_function_maps_exact_equivalents_and_refuses_the_rest() {
        assert!(kernel_function(&catalog(), "sys_exit", false, Span::default()).is_ok());
        let error = kernel_function(&catalog(), "sys_exit", true, Span::default()).unwrap_err();
        assert!(
            error
                .message
                .starts_with("kernel.function(\"sys_exit\").return needs"),
            "{}",
            error.message
        );
        let error = kernel_function(&catalog(), "do_execve", false, Span::default()).unwrap_err();
        assert!(error.message.contains("neither"), "{}", error.message);
        assert!(
            error.hints.concat().contains("sched_process_exec"),
            "{:?}",
            error.hints
        );
    }
}
