//! Pass 2a: turns the probe points of each `probe` declaration into
//! concrete probes against a [`Catalog`].
//!
//! A declaration with several points, or with a wildcard, yields one
//! [`ResolvedProbe`] per concrete event (per syscall for `syscall.*`): each
//! gets its own capture plan and its own copy of the handler, because
//! variables such as `$filename` sit in different arguments per syscall.

use serde::Serialize;

use crate::{
    catalog::{Catalog, Syscall, Tracepoint},
    diagnostics::Diagnostic,
    passes::tracepoints::{self, TapsetAlias},
    span::Span,
    syntax::ast::{Component, Item, Literal, ProbePoint, Script},
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
    /// `timer.profile`: a cpu-clock sample on every CPU. The rate is the
    /// host's `--profile-hz` (stap fires at every scheduler tick, whose
    /// rate depends on the kernel's CONFIG_HZ; a fixed, documented rate
    /// makes profiles comparable across machines).
    Profile,
    /// `perf.sw.cpu_clock.sample(N)` / `perf.hw.cpu_cycles.sample(N)`: a
    /// perf event on every CPU that fires once every `period` events
    /// (nanoseconds for cpu_clock, cycles for cpu_cycles).
    PerfSample { counter: PerfCounter, period: u64 },
    /// Entry or return of one function of a user binary: a uprobe (or
    /// uretprobe) at `file_offset` of `path`, in process `pid` only when
    /// set (`-x`).
    UserFunction {
        path: String,
        function: String,
        /// Index in the catalog's `UserBinary::functions` of `path`.
        index: usize,
        file_offset: u64,
        ret: bool,
        pid: Option<u32>,
    },
    /// A USDT probe (`.note.stapsdt`) of a user binary: a uprobe at its
    /// `nop`.
    UserMark {
        path: String,
        provider: String,
        name: String,
        /// Index in the catalog's `UserBinary::marks` of `path`.
        index: usize,
        file_offset: u64,
        pid: Option<u32>,
    },
    /// A kernel tracepoint (`kernel.trace`), or a tapset alias that wasmtap
    /// runs on one. The format travels with the probe so later passes read
    /// field offsets without asking the catalog again.
    Tracepoint {
        tracepoint: Tracepoint,
        alias: Option<TapsetAlias>,
    },
    /// A kernel probe the host resolved and attaches by itself (a plugin's
    /// tracepoints and perf sampling); the compiler never produces it.
    External,
}

/// The perf counters a sampling probe can count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PerfCounter {
    /// `PERF_COUNT_SW_CPU_CLOCK`: the software timer, present everywhere.
    CpuClock,
    /// `PERF_COUNT_HW_CPU_CYCLES`: needs a hardware PMU (often missing in
    /// VMs).
    CpuCycles,
}

/// stap's default sample period of `perf.*` probes without `.sample(N)`.
pub const DEFAULT_PERF_PERIOD: u64 = 1_000_000;

impl ProbeKind {
    /// Whether the kernel produces records for this probe (as opposed to
    /// the host running it by itself).
    pub fn is_kernel(&self) -> bool {
        matches!(
            self,
            Self::Syscall { .. }
                | Self::Tracepoint { .. }
                | Self::Profile
                | Self::PerfSample { .. }
                | Self::UserFunction { .. }
                | Self::UserMark { .. }
                | Self::External
        )
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
        // Alias definitions and point conditions were rewritten by
        // `passes::aliases`; a definition itself is no probe.
        if decl.alias.is_some() {
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

fn no_match(point: &ProbePoint) -> Diagnostic {
    let hint = if point.components[0].name == "kernel" {
        "check the name (tracepoints as in /sys/kernel/tracing/events/SYSTEM/EVENT), or mark the point optional with '?'"
    } else {
        "check the name (syscalls of x86_64, as in syscalls(2)), or mark the point optional with '?'"
    };
    Diagnostic::error(
        format!("probe point '{}' matches nothing", point_text(point)),
        point.span,
        "no such event on this system",
    )
    .with_hint(hint)
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
        ["timer", "profile"] if components[1].arg.is_none() => {
            Ok(vec![("timer.profile".to_string(), ProbeKind::Profile)])
        }
        ["perf", "sw" | "hw", counter, rest @ ..] => perf_sample(point, counter, rest),
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
        ["kernel", "trace"] => match &components[1].arg {
            Some(Literal::Str(pattern)) => tracepoints::kernel_trace(catalog, pattern, point.span),
            _ => Err(bad_arg(&components[1], "a string: \"system:event\"")),
        },
        ["kernel", "function", rest @ ..] => match &components[1].arg {
            Some(Literal::Str(name)) => {
                tracepoints::kernel_function(catalog, name, !rest.is_empty(), point.span)
            }
            _ => Err(bad_arg(&components[1], "a string: the function name")),
        },
        ["process", "function", ..] | ["process", "mark"] | ["process", "provider", "mark"] => {
            super::uprobe::resolve(point, catalog)
        }
        _ => tracepoints::alias(catalog, &names, point.span)
            .unwrap_or_else(|| Err(unknown_point(point))),
    }
}

/// `perf.sw.cpu_clock[.sample(N)]` and `perf.hw.cpu_cycles[.sample(N)]`.
fn perf_sample(point: &ProbePoint, counter: &str, rest: &[&str]) -> Result<Resolved, Diagnostic> {
    let components = &point.components;
    let counter = match (components[1].name.as_str(), counter) {
        ("sw", "cpu_clock") => PerfCounter::CpuClock,
        ("hw", "cpu_cycles") => PerfCounter::CpuCycles,
        _ => {
            return Err(Diagnostic::error(
                format!("unknown perf event '{}'", point_text(point)),
                point.span,
                "not a perf counter wasmtap samples",
            )
            .with_hint(
                "use perf.sw.cpu_clock.sample(N), perf.hw.cpu_cycles.sample(N) or timer.profile",
            ));
        }
    };
    let period = match rest {
        [] => DEFAULT_PERF_PERIOD,
        ["sample"] => match &components[3].arg {
            Some(Literal::Int(n)) if *n > 0 => *n as u64,
            _ => {
                return Err(bad_arg(
                    &components[3],
                    "a positive number (the sample period)",
                ));
            }
        },
        _ => return Err(unknown_point(point)),
    };
    Ok(vec![(
        point_text(point),
        ProbeKind::PerfSample { counter, period },
    )])
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
        "supported: begin, end, error, timer.s/ms/us/hz(N), timer.profile, perf.sw.cpu_clock.sample(N), syscall.NAME[.return] (NAME may use * ? [...]), kernel.trace(\"system:event\"), signal.send, kprocess.exec/exit, process.begin/end, process(\"PATH\").function(\"NAME\")[.return], process(\"PATH\").mark(\"NAME\")",
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
