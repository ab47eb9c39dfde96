//! Turns a plugin's manifest into what the session runs: each probe point
//! resolved (syscalls, timers, `begin`/`end`, `process(..)` functions and
//! USDT marks by the compiler's resolution pass against the catalog;
//! tracepoints and perf sampling here), checked
//! against the policy's restrictions, and each capture list turned into a
//! capture plan laid out by the ABI's rule.

use std::path::PathBuf;

use wasmtap_abi::{
    MAX_ARGV, OpCode, Plan, PlanOp,
    plugin::{Capture, layout, offset_of},
};
use wasmtap_compiler::{
    BundleProbe, CompileOptions,
    catalog::{Catalog, UsdtArg, UsdtLocation},
    diagnostics::Diagnostic,
    passes::{
        resolve::{ProbeKind, ResolvedProbe, point_text},
        restrict::{self, Restrictions},
    },
    syntax::ast::{Item, Literal, ProbePoint, Script},
};

use super::tracefs::{self, Field};
use crate::{
    elf::regs,
    kernel::{Attach, KernelProbe, PerfCounter, UprobeLocation},
};

/// One probe as the manifest declares it.
pub(super) struct ManifestProbe<'a> {
    pub point: &'a str,
    pub captures: Vec<Capture<'a>>,
}

/// The synthetic script the diagnostics point into: one `probe POINT {}`
/// line per manifest probe.
pub(super) fn source_of(probes: &[ManifestProbe<'_>]) -> String {
    probes
        .iter()
        .map(|p| format!("probe {} {{}}\n", p.point.replace(['\n', '{', '}'], " ")))
        .collect()
}

/// The resolved probes: the bundle's list (by manifest index) and what the
/// kernel attaches.
pub(super) type Resolved = (Vec<BundleProbe>, Vec<KernelProbe>);

/// Where a probe's argument captures (`Arg`, `UserStr`, `RetVal`) read.
enum Args {
    /// None: the probe has no arguments.
    None,
    /// A syscall's (its saved registers, syscall convention).
    Syscall { ret: bool },
    /// A user function's: the System V argument registers; `RetVal` in
    /// `.return` probes.
    Function { ret: bool },
    /// A USDT mark's, as its note describes them.
    Mark(Vec<UsdtArg>),
}

/// Where a point fires, for the points this module resolves itself.
enum HostResolved {
    Tracepoint { system: String, event: String },
    Perf { counter: PerfCounter, period: u64 },
}

/// Resolves `probes` (whose text is [`source_of`]`(probes)` = `source`).
///
/// # Errors
/// Every diagnostic: syntax, unknown points, denied points, captures a
/// probe cannot take, layouts that do not fit.
pub(super) fn resolve(
    probes: &[ManifestProbe<'_>],
    source: &str,
    catalog: &dyn Catalog,
    restrictions: Option<&Restrictions>,
    tracefs_root: &mut dyn FnMut() -> Result<PathBuf, String>,
) -> Result<Resolved, Vec<Diagnostic>> {
    let script = wasmtap_compiler::parse(source, catalog, &CompileOptions::default())?;
    let mut errors = Vec::new();
    let mut points: Vec<&ProbePoint> = Vec::new();
    for item in &script.items {
        let Item::Probe(decl) = item else { continue };
        if decl.points.len() != 1 {
            errors.push(
                Diagnostic::error(
                    "a manifest probe has exactly one probe point",
                    decl.span,
                    "several points",
                )
                .with_hint("declare one probe per point; they may share a handler"),
            );
        }
        points.push(&decl.points[0]);
    }
    if points.len() != probes.len() || !errors.is_empty() {
        errors.push(Diagnostic::error(
            "the manifest's probe points do not parse one by one",
            Default::default(),
            "here",
        ));
        return Err(errors);
    }

    // The compiler resolves what it knows; this module the rest.
    let mut by_host: Vec<Option<HostResolved>> = Vec::new();
    let mut compiler_items = Vec::new();
    let mut compiler_index = Vec::new();
    for (index, point) in points.iter().enumerate() {
        match host_resolved(point) {
            Ok(Some(found)) => by_host.push(Some(found)),
            Ok(None) => {
                by_host.push(None);
                compiler_items.push(script.items[index].clone());
                compiler_index.push(index);
            }
            Err(error) => {
                by_host.push(None);
                errors.push(error);
            }
        }
    }
    let sub = Script {
        items: compiler_items,
    };
    let compiled = match wasmtap_compiler::passes::resolve::resolve(&sub, catalog) {
        Ok(found) => found,
        Err(mut e) => {
            errors.append(&mut e);
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut expansions: Vec<Vec<ResolvedProbe>> = vec![Vec::new(); probes.len()];
    for mut probe in compiled {
        probe.item = compiler_index[probe.item];
        expansions[probe.item].push(probe);
    }
    for (index, found) in by_host.iter().enumerate() {
        if found.is_some() {
            expansions[index].push(ResolvedProbe {
                id: 0,
                item: index,
                name: point_text(points[index]),
                kind: ProbeKind::External,
                span: points[index].span,
            });
        }
    }
    if let Some(restrictions) = restrictions {
        let all: Vec<ResolvedProbe> = expansions.iter().flatten().cloned().collect();
        restrict::check(&script, &all, restrictions)?;
    }

    let mut bundle = Vec::new();
    let mut kernel = Vec::new();
    for (index, probe) in probes.iter().enumerate() {
        let point = points[index];
        let Some(first) = expansions[index].first() else {
            continue; // an optional point (`?`) that matched nothing
        };
        let id = index as u32;
        let attach = match &by_host[index] {
            Some(HostResolved::Tracepoint { system, event }) => Some(Attach::Tracepoint {
                system: system.clone(),
                event: event.clone(),
            }),
            Some(HostResolved::Perf { counter, period }) => Some(Attach::PerfSample {
                event: *counter,
                period: *period,
            }),
            None => match &first.kind {
                ProbeKind::Syscall { ret, .. } => {
                    let nrs = expansions[index]
                        .iter()
                        .filter_map(|p| match p.kind {
                            ProbeKind::Syscall { nr, .. } => Some(nr),
                            _ => None,
                        })
                        .collect();
                    Some(if *ret {
                        Attach::SyscallExit(nrs)
                    } else {
                        Attach::SyscallEnter(nrs)
                    })
                }
                ProbeKind::UserFunction {
                    path,
                    file_offset,
                    ret,
                    ..
                } => Some(uprobe(path, *file_offset, *ret)),
                ProbeKind::UserMark {
                    path, file_offset, ..
                } => Some(uprobe(path, *file_offset, false)),
                _ => None,
            },
        };
        let args = match &first.kind {
            ProbeKind::Syscall { ret, .. } => Args::Syscall { ret: *ret },
            ProbeKind::UserFunction { ret, .. } => Args::Function { ret: *ret },
            ProbeKind::UserMark { path, index, .. } => Args::Mark(
                catalog
                    .user_binary(path)
                    .ok()
                    .and_then(|binary| binary.marks.get(*index).map(|m| m.args.clone()))
                    .unwrap_or_default(),
            ),
            _ => Args::None,
        };
        if expansions[index].len() > 1 && !matches!(args, Args::None | Args::Syscall { .. }) {
            errors.push(
                Diagnostic::error(
                    format!(
                        "'{}' matches {} functions or marks; a plugin probe attaches to one",
                        point_text(point),
                        expansions[index].len()
                    ),
                    point.span,
                    "several matches",
                )
                .with_hint("name the function or mark exactly"),
            );
            continue;
        }
        if let Some(restrictions) = restrictions
            && probe
                .captures
                .iter()
                .any(|c| matches!(c, Capture::KernelStack { .. }))
            && let Some(rule) = restrictions.denies_builtin("backtrace")
        {
            errors.push(
                Diagnostic::error(
                    format!(
                        "the policy does not allow kernel stacks (probe '{}')",
                        point_text(point)
                    ),
                    point.span,
                    format!("denied by {} (`{}`)", rule.origin, rule.pattern),
                )
                .with_hint("drop the KernelStack capture, or ask the operator"),
            );
            continue;
        }
        let plan = match &attach {
            None if probe.captures.is_empty() => None,
            None => {
                errors.push(
                    Diagnostic::error(
                        format!(
                            "probe '{}' runs in the host and captures nothing",
                            point_text(point)
                        ),
                        point.span,
                        "no kernel event",
                    )
                    .with_hint("declare its capture list empty: []"),
                );
                continue;
            }
            Some(attach) => {
                let fields = match attach {
                    Attach::Tracepoint { system, event } => {
                        let root = tracefs_root().map_err(|message| {
                            vec![Diagnostic::error(message, point.span, "tracepoint")]
                        })?;
                        match tracefs::fields(&root, system, event) {
                            Some(fields) => fields,
                            None => {
                                errors.push(
                                    Diagnostic::error(
                                        format!("no tracepoint '{system}:{event}' on this system"),
                                        point.span,
                                        "no such event",
                                    )
                                    .with_hint(format!(
                                        "the events are listed in {}/events",
                                        root.display()
                                    )),
                                );
                                continue;
                            }
                        }
                    }
                    _ => Vec::new(),
                };
                match plan_for(&probe.captures, attach, &args, &fields) {
                    Ok(plan) => {
                        kernel.push(KernelProbe {
                            id,
                            attach: attach.clone(),
                            plan,
                        });
                        Some(plan)
                    }
                    Err(message) => {
                        errors.push(
                            Diagnostic::error(
                                format!("probe '{}': {message}", point_text(point)),
                                point.span,
                                "this probe",
                            )
                            .with_hint("fix the capture list in the plugin's `probes!`"),
                        );
                        continue;
                    }
                }
            }
        };
        bundle.push(BundleProbe {
            resolved: ResolvedProbe {
                id,
                item: index,
                name: point_text(point),
                kind: first.kind.clone(),
                span: point.span,
            },
            plan,
        });
    }
    if errors.is_empty() {
        Ok((bundle, kernel))
    } else {
        Err(errors)
    }
}

/// Points resolved here rather than by the compiler: `kernel.trace("s:e")`,
/// `perf.sw.cpu_clock.sample(N)`, `perf.hw.cpu_cycles.sample(N)`,
/// `timer.profile`.
fn host_resolved(point: &ProbePoint) -> Result<Option<HostResolved>, Diagnostic> {
    let names: Vec<&str> = point.components.iter().map(|c| c.name.as_str()).collect();
    let last_arg = point.components.last().and_then(|c| c.arg.as_ref());
    let bad = |what: &str| {
        Diagnostic::error(
            format!("bad probe point '{}'", point_text(point)),
            point.span,
            what.to_string(),
        )
    };
    Ok(Some(match (names.as_slice(), last_arg) {
        (["kernel", "trace"], Some(Literal::Str(name))) => {
            let Some((system, event)) = name.split_once(':') else {
                return Err(bad("expected \"system:event\"")
                    .with_hint("e.g. kernel.trace(\"sched:sched_process_exec\")"));
            };
            HostResolved::Tracepoint {
                system: system.to_string(),
                event: event.to_string(),
            }
        }
        (["perf", "sw", "cpu_clock", "sample"], Some(Literal::Int(n))) if *n > 0 => {
            HostResolved::Perf {
                counter: PerfCounter::CpuClock,
                period: *n as u64,
            }
        }
        (["perf", "hw", "cpu_cycles", "sample"], Some(Literal::Int(n))) if *n > 0 => {
            HostResolved::Perf {
                counter: PerfCounter::CpuCycles,
                period: *n as u64,
            }
        }
        (["perf", ..], _) => {
            return Err(bad("unknown perf event").with_hint(
                "perf.sw.cpu_clock.sample(NS) and perf.hw.cpu_cycles.sample(N) are supported",
            ));
        }
        (["timer", "profile"], None) => HostResolved::Perf {
            counter: PerfCounter::CpuClock,
            // stap's timer.profile fires every tick; 100 Hz here.
            period: 10_000_000,
        },
        _ => return Ok(None),
    }))
}

/// A uprobe at `file_offset` of `path` (every process: a `-x`/`-c`
/// target is a filter of the plan).
fn uprobe(path: &str, file_offset: u64, ret: bool) -> Attach {
    Attach::Uprobe {
        path: path.into(),
        location: UprobeLocation::FileOffset(file_offset),
        pid: None,
        ret,
    }
}

/// The op reading argument `n` of a probe whose arguments are `args`.
fn arg_op(args: &Args, n: u8, dst: u16) -> Result<PlanOp, String> {
    let reg = |src: u16| {
        let mut op = PlanOp::new(OpCode::Reg, dst);
        op.src = src;
        op
    };
    match args {
        Args::Syscall { .. } => {
            let mut op = PlanOp::new(OpCode::Arg, dst);
            op.arg = n;
            Ok(op)
        }
        Args::Function { .. } => Ok(reg(regs::ARGUMENT_REGISTERS[usize::from(n.min(5))])),
        Args::Mark(marks) => match marks.get(usize::from(n)).map(|a| (a.location, &a.spec)) {
            Some((UsdtLocation::Register(src), _)) => Ok(reg(src)),
            Some((_, spec)) => Err(format!(
                "USDT argument {n} (`{spec}`) is not in a register; plugins read register arguments only"
            )),
            None => Err(format!("the mark has {} argument(s)", marks.len())),
        },
        Args::None => Err("Arg is available on syscall and process probes only".into()),
    }
}

/// The capture plan of one kernel probe: one op per capture, at the offset
/// the ABI's layout rule gives.
fn plan_for(
    captures: &[Capture<'_>],
    attach: &Attach,
    args: &Args,
    fields: &[Field],
) -> Result<Plan, String> {
    let record_len = layout(captures)?;
    let syscall = matches!(args, Args::Syscall { .. });
    let ret = matches!(
        args,
        Args::Syscall { ret: true } | Args::Function { ret: true }
    );
    let tracepoint = matches!(attach, Attach::Tracepoint { .. });
    let mut plan = Plan {
        record_len: record_len as u16,
        n_ops: captures.len() as u16,
        ..Plan::default()
    };
    for (i, capture) in captures.iter().enumerate() {
        let dst = offset_of(captures, i) as u16;
        let op = |code| PlanOp::new(code, dst);
        let only = |ok: bool, what: &str| {
            if ok {
                Ok(())
            } else {
                Err(format!("{capture:?} is available on {what} only"))
            }
        };
        plan.ops[i] = match *capture {
            Capture::Pid | Capture::Tid => op(OpCode::PidTgid),
            Capture::Uid | Capture::Gid => op(OpCode::UidGid),
            Capture::Comm => op(OpCode::Comm),
            Capture::TimeNs => op(OpCode::KtimeNs),
            Capture::Cpu => op(OpCode::Cpu),
            Capture::ParentPid => op(OpCode::ParentTgid),
            Capture::Euid => op(OpCode::EuidEgid),
            Capture::SyscallNr => {
                only(syscall, "syscall probes")?;
                op(OpCode::SyscallNr)
            }
            Capture::Arg(arg) => arg_op(args, arg, dst)?,
            Capture::UserStr { arg, max } => {
                // The kernel reads the pointer from the syscall argument
                // registers, which are a function's too, except the
                // fourth (r10 for syscalls, rcx for functions).
                let function = matches!(args, Args::Function { ret: false }) && arg != 3;
                only(
                    syscall || function,
                    "syscall probes and function entries (not arg 3)",
                )?;
                PlanOp {
                    arg,
                    len: max,
                    ..op(OpCode::UserStr)
                }
            }
            Capture::Argv { arg, max } => {
                only(syscall, "syscall probes")?;
                PlanOp {
                    arg,
                    len: max,
                    src: MAX_ARGV as u16,
                    ..op(OpCode::UserStrArray)
                }
            }
            Capture::RetVal => {
                only(ret, ".return probes")?;
                if syscall {
                    op(OpCode::RetVal)
                } else {
                    PlanOp {
                        src: regs::AX,
                        ..op(OpCode::Reg)
                    }
                }
            }
            Capture::UserRegs { bytes } => PlanOp {
                len: bytes,
                ..op(OpCode::UserRegsStack)
            },
            Capture::UserStack { frames } => PlanOp {
                len: frames * 8,
                ..op(OpCode::UserStack)
            },
            Capture::KernelStack { frames } => PlanOp {
                len: frames * 8,
                ..op(OpCode::KernelStack)
            },
            Capture::Field { name, size } => {
                only(tracepoint, "kernel.trace probes")?;
                let field = field(fields, name)?;
                if field.data_loc || field.size != u16::from(size) {
                    return Err(format!(
                        "field `{name}` is {}; declare it as {}",
                        if field.data_loc {
                            "a string"
                        } else {
                            "a number"
                        },
                        if field.data_loc {
                            format!("FieldStr {{ name: \"{name}\", max: 256 }}")
                        } else {
                            format!("Field {{ name: \"{name}\", size: {} }}", field.size)
                        }
                    ));
                }
                PlanOp {
                    len: u16::from(size),
                    src: field.offset,
                    ..op(OpCode::CtxField)
                }
            }
            Capture::FieldStr { name, max } => {
                only(tracepoint, "kernel.trace probes")?;
                let field = field(fields, name)?;
                if !field.data_loc {
                    return Err(format!(
                        "field `{name}` is not a __data_loc string; only those are read as strings"
                    ));
                }
                PlanOp {
                    len: max,
                    src: field.offset,
                    ..op(OpCode::CtxDataLoc)
                }
            }
        };
    }
    Ok(plan)
}

fn field<'f>(fields: &'f [Field], name: &str) -> Result<&'f Field, String> {
    let found = fields.iter().find(|f| f.name == name);
    match found {
        Some(f) if f.name.starts_with("common_") => Err(format!(
            "field `{name}` is overwritten before BPF programs run; capture Pid or Tid instead"
        )),
        Some(f) => Ok(f),
        None => {
            let names: Vec<&str> = fields
                .iter()
                .filter(|f| !f.name.starts_with("common_"))
                .map(|f| f.name.as_str())
                .collect();
            Err(format!(
                "the event has no field `{name}` (it has: {})",
                names.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use wasmtap_compiler::catalog::StaticCatalog;

    use super::*;

    fn run(probes: &[ManifestProbe<'_>]) -> Result<Resolved, String> {
        let source = source_of(probes);
        let catalog = StaticCatalog::x86_64((6, 18, 0));
        let mut no_tracefs = || Err("no tracefs in unit tests".to_string());
        resolve(probes, &source, &catalog, None, &mut no_tracefs).map_err(|errors| {
            wasmtap_compiler::diagnostics::render(&errors, "test (manifest)", &source)
        })
    }

    #[test]
    fn a_wildcard_is_one_kernel_probe_over_many_syscalls() {
        let probes = [
            ManifestProbe {
                point: "begin",
                captures: vec![],
            },
            ManifestProbe {
                point: "syscall.open*",
                captures: vec![Capture::Pid, Capture::UserStr { arg: 1, max: 64 }],
            },
        ];
        let (bundle, kernel) = run(&probes).unwrap();
        assert_eq!(bundle.len(), 2);
        assert!(bundle[0].plan.is_none());
        assert_eq!(kernel.len(), 1);
        assert_eq!(kernel[0].id, 1);
        let Attach::SyscallEnter(nrs) = &kernel[0].attach else {
            panic!("{:?}", kernel[0].attach);
        };
        assert!(nrs.contains(&2) && nrs.contains(&257), "{nrs:?}");
        let plan = kernel[0].plan;
        assert_eq!(plan.n_ops, 2);
        assert_eq!(plan.ops[1].dst as usize, offset_of(&probes[1].captures, 1));
        assert_eq!(plan.record_len as usize, 16 + 4 + 64 + 4);
    }

    #[test]
    fn captures_a_probe_cannot_take_are_refused() {
        let probes = [ManifestProbe {
            point: "syscall.openat",
            captures: vec![Capture::RetVal],
        }];
        let error = run(&probes).unwrap_err();
        assert!(
            error.contains("RetVal is available on .return probes only"),
            "{error}"
        );
        let probes = [ManifestProbe {
            point: "timer.s(1)",
            captures: vec![Capture::Pid],
        }];
        let error = run(&probes).unwrap_err();
        assert!(
            error.contains("runs in the host and captures nothing"),
            "{error}"
        );
    }

    #[test]
    fn kernel_stacks_are_refused_where_the_policy_denies_backtraces() {
        use wasmtap_compiler::passes::restrict::Rule;
        let probes = [ManifestProbe {
            point: "syscall.openat",
            captures: vec![Capture::KernelStack { frames: 8 }],
        }];
        let source = source_of(&probes);
        let catalog = StaticCatalog::x86_64((6, 18, 0));
        let restrictions = Restrictions {
            deny_builtins: vec![Rule::new("backtrace", "policy.toml: level \"user\"")],
            ..Restrictions::default()
        };
        let mut no_tracefs = || Err("no tracefs in unit tests".to_string());
        let errors = resolve(
            &probes,
            &source,
            &catalog,
            Some(&restrictions),
            &mut no_tracefs,
        )
        .unwrap_err();
        let text = wasmtap_compiler::diagnostics::render(&errors, "test (manifest)", &source);
        assert!(
            text.contains("the policy does not allow kernel stacks")
                && text.contains("level \"user\""),
            "{text}"
        );
    }

    #[test]
    fn perf_points_are_resolved_by_the_host() {
        let probes = [ManifestProbe {
            point: "perf.sw.cpu_clock.sample(1000000)",
            captures: vec![Capture::KernelStack { frames: 16 }],
        }];
        let (_, kernel) = run(&probes).unwrap();
        assert_eq!(
            kernel[0].attach,
            Attach::PerfSample {
                event: PerfCounter::CpuClock,
                period: 1_000_000
            }
        );
        let bad = [ManifestProbe {
            point: "perf.sw.page_faults.sample(10)",
            captures: vec![],
        }];
        assert!(run(&bad).unwrap_err().contains("unknown perf event"));
    }
}
