//! What the host asks the kernel to capture, checked before any map is
//! touched: probe descriptions, plan validation and routing (which probes
//! run for which syscall, tracepoint, uprobe or sampling period).

use std::{collections::BTreeMap, path::PathBuf};

use wasmtap_abi::{
    FilterCmp, FilterField, HEADER_LEN, MAX_CTX_FIELD, MAX_FILTERS, MAX_OPS, MAX_PERF_PERIODS,
    MAX_PROBES, MAX_RECORD, MAX_SYSCALLS, MAX_TRACEPOINTS, OpCode, PROBES_PER_ROUTE, Plan, PlanOp,
    ProbeRoute, ReadBase,
};

use super::KernelError;

/// Size of x86_64 `struct pt_regs`: `Reg` and the `CtxField`s of uprobes
/// and perf samples read inside it.
pub(crate) const PT_REGS_LEN: usize = 21 * 8;

/// Bytes at the start of a trace entry (`common_type`, `common_flags`,
/// `common_preempt_count`, `common_pid`) that the kernel overwrites with a
/// `pt_regs` pointer before running a BPF program.
const TRACE_COMMON_LEN: usize = 8;

/// Where a probe attaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attach {
    /// Entry of the listed syscalls (numbers of the running architecture),
    /// through the raw tracepoint `raw_syscalls:sys_enter`.
    SyscallEnter(Vec<u32>),
    /// Return of the listed syscalls, through `raw_syscalls:sys_exit`.
    SyscallExit(Vec<u32>),
    /// A classic tracepoint (`kernel.trace("system:event")`, `signal.send`,
    /// process lifecycle), as named in tracefs `events/SYSTEM/EVENT`.
    /// `CtxField` and `CtxDataLoc` offsets are those of the event's
    /// `format` file.
    Tracepoint {
        /// The event's system (`sched`, `signal`, ...).
        system: String,
        /// The event's name (`sched_process_exec`, ...).
        event: String,
    },
    /// A uprobe (or uretprobe) on a function or instruction of a binary or
    /// shared library.
    Uprobe {
        /// The binary or library.
        path: PathBuf,
        /// Where in it.
        location: UprobeLocation,
        /// Fire only in this process; every process when `None`.
        pid: Option<i32>,
        /// At return (`uretprobe`) rather than at entry.
        ret: bool,
    },
    /// Periodic sampling of every CPU (`timer.profile`,
    /// `perf.sw.cpu_clock.sample(N)`, `perf.hw.cpu_cycles.sample(N)`).
    PerfSample {
        /// What is counted.
        event: PerfCounter,
        /// Events between samples: nanoseconds for [`PerfCounter::CpuClock`]
        /// (1e9 / hz), cycles for [`PerfCounter::CpuCycles`]. Probes are told
        /// apart by their period, so two counters may not share one.
        period: u64,
    },
}

/// Where a uprobe sits in its file.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum UprobeLocation {
    /// The start of this symbol (looked up in the file's symbol tables).
    Symbol(String),
    /// This byte offset in the file (not a virtual address).
    FileOffset(u64),
}

/// The counter a [`Attach::PerfSample`] probe samples on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PerfCounter {
    /// The software CPU clock (always available).
    CpuClock,
    /// Hardware CPU cycles (needs a PMU, often missing in VMs).
    CpuCycles,
}

impl PerfCounter {
    /// The name `perf` and the scripts use.
    pub fn name(self) -> &'static str {
        match self {
            Self::CpuClock => "cpu-clock",
            Self::CpuCycles => "cpu-cycles",
        }
    }
}

/// One probe as the kernel sees it: where it fires and what it captures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelProbe {
    /// The probe id written in every record's header; indexes the manifest's
    /// probe list. Below [`MAX_PROBES`].
    pub id: u32,
    /// Where the probe fires.
    pub attach: Attach,
    /// What the kernel copies when it fires, as the compiler wrote it.
    pub plan: Plan,
}

/// Probe ids per syscall number, for one direction.
pub(crate) type RouteTable = BTreeMap<u32, ProbeRoute>;

/// A tracepoint by name: (system, event).
pub(crate) type TracepointName = (String, String);

/// Where one uprobe probe attaches; probes of one (path, pid, ret) share a
/// uprobe_multi link where the kernel has them, each with its id as cookie.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct UprobeTarget {
    pub(crate) path: PathBuf,
    pub(crate) location: UprobeLocation,
    pub(crate) pid: Option<i32>,
    pub(crate) ret: bool,
}

/// Every route the installed probes need.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Routes {
    pub(crate) enter: RouteTable,
    pub(crate) exit: RouteTable,
    /// Probe ids per tracepoint (resolved to event ids at install).
    pub(crate) tracepoints: BTreeMap<TracepointName, ProbeRoute>,
    /// Where each uprobe probe attaches, by probe id.
    pub(crate) uprobes: BTreeMap<u32, UprobeTarget>,
    /// Probe ids per sampling period, with the counter the period samples.
    pub(crate) perf: BTreeMap<u64, (PerfCounter, ProbeRoute)>,
}

/// Validates every probe and builds the route tables, or says what is wrong
/// with the first bad probe. Nothing is written to the kernel before this
/// succeeds, so a bad probe set leaves the running one untouched.
pub(crate) fn plan_routes(probes: &[KernelProbe]) -> Result<Routes, KernelError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut enter: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut exit: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut tracepoints: BTreeMap<TracepointName, Vec<u32>> = BTreeMap::new();
    let mut perf: BTreeMap<u64, (PerfCounter, Vec<u32>)> = BTreeMap::new();
    let mut uprobes = BTreeMap::new();
    for probe in probes {
        if !seen.insert(probe.id) {
            return Err(invalid(probe.id, "the id is used by two probes"));
        }
        validate_probe(probe)?;
        let id = probe.id;
        match &probe.attach {
            Attach::SyscallEnter(nrs) | Attach::SyscallExit(nrs) => {
                let table = if matches!(probe.attach, Attach::SyscallEnter(_)) {
                    &mut enter
                } else {
                    &mut exit
                };
                for &nr in nrs {
                    if nr >= MAX_SYSCALLS {
                        return Err(invalid(
                            id,
                            format!("syscall number {nr} is not below {MAX_SYSCALLS}"),
                        ));
                    }
                    push_unique(table.entry(nr).or_default(), id);
                }
            }
            Attach::Tracepoint { system, event } => {
                let valid = |s: &str| {
                    !s.is_empty()
                        && s.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                };
                if !valid(system) || !valid(event) {
                    return Err(invalid(
                        id,
                        format!("`{system}:{event}` is not a tracepoint name"),
                    ));
                }
                push_unique(
                    tracepoints
                        .entry((system.clone(), event.clone()))
                        .or_default(),
                    id,
                );
            }
            Attach::Uprobe {
                path,
                location,
                pid,
                ret,
            } => {
                if pid.is_some_and(|pid| pid <= 0) {
                    return Err(invalid(id, format!("uprobe pid {pid:?} is not a process")));
                }
                uprobes.insert(
                    id,
                    UprobeTarget {
                        path: path.clone(),
                        location: location.clone(),
                        pid: *pid,
                        ret: *ret,
                    },
                );
            }
            Attach::PerfSample { event, period } => {
                if *period == 0 {
                    return Err(invalid(id, "a sampling period of 0"));
                }
                let (counter, ids) = perf.entry(*period).or_insert((*event, Vec::new()));
                if counter != event {
                    return Err(invalid(
                        id,
                        format!(
                            "{} and {} probes share the sampling period {period}; probes \
                             are told apart by period, so give them different ones",
                            counter.name(),
                            event.name()
                        ),
                    ));
                }
                push_unique(ids, id);
            }
        }
    }
    if tracepoints.len() > MAX_TRACEPOINTS as usize {
        return Err(KernelError::TooManyTargets {
            what: "tracepoints",
            count: tracepoints.len(),
            max: MAX_TRACEPOINTS as usize,
        });
    }
    if perf.len() > MAX_PERF_PERIODS as usize {
        return Err(KernelError::TooManyTargets {
            what: "sampling periods",
            count: perf.len(),
            max: MAX_PERF_PERIODS as usize,
        });
    }
    Ok(Routes {
        enter: to_routes(enter, |nr| format!("syscall {nr} (entry)"))?,
        exit: to_routes(exit, |nr| format!("syscall {nr} (exit)"))?,
        tracepoints: to_routes(tracepoints, |(system, event)| {
            format!("tracepoint {system}:{event}")
        })?,
        uprobes,
        perf: perf
            .into_iter()
            .map(|(period, (counter, ids))| {
                let route = to_route(ids, || format!("{} period {period}", counter.name()))?;
                Ok((period, (counter, route)))
            })
            .collect::<Result<_, KernelError>>()?,
    })
}

fn push_unique(ids: &mut Vec<u32>, id: u32) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

fn to_routes<K: Ord>(
    table: BTreeMap<K, Vec<u32>>,
    describe: impl Fn(&K) -> String,
) -> Result<BTreeMap<K, ProbeRoute>, KernelError> {
    table
        .into_iter()
        .map(|(key, ids)| {
            let route = to_route(ids, || describe(&key))?;
            Ok((key, route))
        })
        .collect()
}

/// The route listing `ids`, or [`KernelError::RouteFull`] naming the event.
fn to_route(ids: Vec<u32>, describe: impl Fn() -> String) -> Result<ProbeRoute, KernelError> {
    if ids.len() > PROBES_PER_ROUTE {
        return Err(KernelError::RouteFull {
            event: describe(),
            count: ids.len(),
            max: PROBES_PER_ROUTE,
            probes: ids,
        });
    }
    let mut route = ProbeRoute::default();
    for (slot, id) in route.probes.iter_mut().zip(&ids) {
        // validate_probe checked id < MAX_PROBES <= u16::MAX.
        *slot = *id as u16;
    }
    Ok(route)
}

fn invalid(id: u32, reason: impl Into<String>) -> KernelError {
    KernelError::InvalidProbe {
        id,
        reason: reason.into(),
    }
}

/// Checks that the kernel can run `probe.plan` as the compiler meant it:
/// every op known and inside the record, every filter well formed. The
/// eBPF side masks offsets anyway (it cannot be made to write out of
/// bounds), so these checks catch compiler bugs and ABI mismatches with a
/// message instead of silently wrong records.
fn validate_probe(probe: &KernelProbe) -> Result<(), KernelError> {
    const _: () = assert!(MAX_PROBES <= u16::MAX as u32);
    let id = probe.id;
    let plan = &probe.plan;
    if id >= MAX_PROBES {
        return Err(invalid(id, format!("the id is not below {MAX_PROBES}")));
    }
    let len = plan.record_len as usize;
    if !(HEADER_LEN..=MAX_RECORD).contains(&len) {
        return Err(invalid(
            id,
            format!("record length {len} is not within {HEADER_LEN}..={MAX_RECORD}"),
        ));
    }
    if plan.n_ops as usize > MAX_OPS {
        return Err(invalid(
            id,
            format!("{} ops, at most {MAX_OPS}", plan.n_ops),
        ));
    }
    if plan.n_filters as usize > MAX_FILTERS {
        return Err(invalid(
            id,
            format!("{} filters, at most {MAX_FILTERS}", plan.n_filters),
        ));
    }
    for (i, op) in plan.ops[..plan.n_ops as usize].iter().enumerate() {
        let Some(code) = OpCode::from_u8(op.code) else {
            return Err(invalid(
                id,
                format!("op {i} has unknown opcode {}", op.code),
            ));
        };
        if code == OpCode::Nop {
            continue;
        }
        let start = op.dst as usize;
        let end = start + code.width(op.len);
        if start < HEADER_LEN || end > len {
            return Err(invalid(
                id,
                format!(
                    "op {i} ({code:?}) writes bytes {start}..{end}, outside the record's \
                     {HEADER_LEN}..{len}"
                ),
            ));
        }
        if let Some(reason) = check_source(&probe.attach, code, op.src, op.len) {
            return Err(invalid(id, format!("op {i} ({code:?}) {reason}")));
        }
        if let Some(reason) = check_user_read(plan, i, code, op) {
            return Err(invalid(id, format!("op {i} ({code:?}) {reason}")));
        }
        if matches!(code, OpCode::Arg | OpCode::UserStr | OpCode::UserStrArray) && op.arg > 5 {
            return Err(invalid(
                id,
                format!(
                    "op {i} ({code:?}) reads argument {}, syscalls have 0..=5",
                    op.arg
                ),
            ));
        }
    }
    for (i, filter) in plan.filters[..plan.n_filters as usize].iter().enumerate() {
        let field_ok = [
            FilterField::Pid,
            FilterField::Tid,
            FilterField::Uid,
            FilterField::Gid,
        ]
        .iter()
        .any(|f| *f as u8 == filter.field);
        let cmp_ok = [
            FilterCmp::Eq,
            FilterCmp::Ne,
            FilterCmp::Lt,
            FilterCmp::Le,
            FilterCmp::Gt,
            FilterCmp::Ge,
        ]
        .iter()
        .any(|c| *c as u8 == filter.cmp);
        if !field_ok || !cmp_ok {
            return Err(invalid(
                id,
                format!(
                    "filter {i} has unknown field {} or comparison {}",
                    filter.field, filter.cmp
                ),
            ));
        }
    }
    Ok(())
}

/// What is wrong with where op `code` reads, if anything: `CtxField` and
/// `Reg` must stay inside the context they name, and context ops need a
/// program that has one.
fn check_source(attach: &Attach, code: OpCode, src: u16, len: u16) -> Option<String> {
    let regs_ctx = matches!(attach, Attach::Uprobe { .. } | Attach::PerfSample { .. });
    let tracepoint = matches!(attach, Attach::Tracepoint { .. });
    let (src, len) = (src as usize, len as usize);
    match code {
        OpCode::CtxField if len > MAX_CTX_FIELD => {
            Some(format!("copies {len} bytes, at most {MAX_CTX_FIELD}"))
        }
        OpCode::CtxField if regs_ctx && src + len > PT_REGS_LEN => Some(format!(
            "reads bytes {src}..{} of the registers, which have {PT_REGS_LEN}",
            src + len
        )),
        OpCode::CtxField | OpCode::CtxDataLoc if tracepoint && src < TRACE_COMMON_LEN => {
            Some(format!(
                "reads byte {src} of the trace entry, but the kernel hides its first \
                 {TRACE_COMMON_LEN} bytes (the common_* fields) from BPF; use pid() and friends"
            ))
        }
        OpCode::CtxDataLoc if !tracepoint => {
            Some("reads a __data_loc field, which only tracepoints have".into())
        }
        OpCode::Reg if src + 8 > PT_REGS_LEN => Some(format!(
            "reads register bytes {src}..{}, pt_regs has {PT_REGS_LEN}",
            src + 8
        )),
        _ => None,
    }
}

/// What is wrong with the base of a user memory read, if anything: a
/// register must lie inside `pt_regs`, a base slot must be an earlier
/// `UserRead` of at least 8 bytes (the pointer it holds).
fn check_user_read(plan: &Plan, index: usize, code: OpCode, op: &PlanOp) -> Option<String> {
    if !matches!(code, OpCode::UserRead | OpCode::UserStrAt) {
        return None;
    }
    if code == OpCode::UserRead && op.len as usize > MAX_CTX_FIELD {
        return Some(format!("copies {} bytes, at most {MAX_CTX_FIELD}", op.len));
    }
    match op.arg {
        b if b == ReadBase::Reg as u8 && op.src as usize + 8 > PT_REGS_LEN => Some(format!(
            "takes its base from register bytes {}..{}, pt_regs has {PT_REGS_LEN}",
            op.src,
            op.src + 8
        )),
        b if b == ReadBase::Reg as u8 => None,
        b if b == ReadBase::Slot as u8 => {
            let base = plan.ops[..index].iter().any(|earlier| {
                earlier.code == OpCode::UserRead as u8 && earlier.dst == op.src && earlier.len >= 8
            });
            (!base).then(|| {
                format!(
                    "takes its base from record offset {}, which no earlier 8-byte UserRead writes",
                    op.src
                )
            })
        }
        other => Some(format!("has unknown base kind {other}")),
    }
}

#[cfg(test)]
mod tests {
    use wasmtap_abi::{Filter, NO_PROBE, PlanOp};

    use super::*;

    fn plan(ops: &[PlanOp], record_len: u16) -> Plan {
        let mut plan = Plan {
            record_len,
            n_ops: ops.len() as u16,
            ..Plan::default()
        };
        plan.ops[..ops.len()].copy_from_slice(ops);
        plan
    }

    fn probe(id: u32, attach: Attach) -> KernelProbe {
        KernelProbe {
            id,
            attach,
            plan: plan(&[PlanOp::new(OpCode::PidTgid, 8)], 16),
        }
    }

    #[test]
    fn routes_share_syscalls() {
        let routes = plan_routes(&[
            probe(3, Attach::SyscallEnter(vec![257, 2])),
            probe(4, Attach::SyscallEnter(vec![257])),
            probe(5, Attach::SyscallExit(vec![257, 257])),
        ])
        .unwrap();
        assert_eq!(routes.enter.len(), 2);
        assert_eq!(&routes.enter[&257].probes[..3], &[3, 4, NO_PROBE]);
        assert_eq!(&routes.enter[&2].probes[..2], &[3, NO_PROBE]);
        assert_eq!(&routes.exit[&257].probes[..2], &[5, NO_PROBE]);
    }

    #[test]
    fn too_many_probes_on_one_syscall() {
        let probes: Vec<_> = (0..=PROBES_PER_ROUTE as u32)
            .map(|id| probe(id, Attach::SyscallEnter(vec![0])))
            .collect();
        let err = plan_routes(&probes).unwrap_err();
        assert!(
            matches!(err, KernelError::RouteFull { count: 9, .. }),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_plans() {
        let bad = |plan: Plan| {
            plan_routes(&[KernelProbe {
                id: 1,
                attach: Attach::SyscallEnter(vec![1]),
                plan,
            }])
            .unwrap_err()
            .to_string()
        };
        // Op past the record.
        assert!(bad(plan(&[PlanOp::new(OpCode::Comm, 8)], 16)).contains("outside"));
        // Op over the header.
        assert!(bad(plan(&[PlanOp::new(OpCode::Cpu, 0)], 16)).contains("outside"));
        // Unknown opcode.
        let mut p = plan(&[PlanOp::new(OpCode::Cpu, 8)], 16);
        p.ops[0].code = 200;
        assert!(bad(p).contains("unknown opcode"));
        // Record too long.
        assert!(bad(plan(&[], (MAX_RECORD + 1) as u16)).contains("record length"));
        // Argument out of range.
        let mut p = plan(&[PlanOp::new(OpCode::Arg, 8)], 16);
        p.ops[0].arg = 6;
        assert!(bad(p).contains("argument 6"));
        // Bad filter.
        let mut p = plan(&[], 8);
        p.n_filters = 1;
        p.filters[0] = Filter::new(FilterField::Pid, FilterCmp::Eq, 1);
        p.filters[0].cmp = 9;
        assert!(bad(p).contains("filter 0"));
        // Syscall out of range and id out of range.
        let err = plan_routes(&[probe(1, Attach::SyscallEnter(vec![MAX_SYSCALLS]))]);
        assert!(err.unwrap_err().to_string().contains("syscall number"));
        let err = plan_routes(&[probe(MAX_PROBES, Attach::SyscallEnter(vec![1]))]);
        assert!(err.unwrap_err().to_string().contains("not below"));
        // Duplicate ids.
        let err = plan_routes(&[
            probe(1, Attach::SyscallEnter(vec![1])),
            probe(1, Attach::SyscallExit(vec![1])),
        ]);
        assert!(err.unwrap_err().to_string().contains("two probes"));
    }

    #[test]
    fn accepts_a_string_plan() {
        let mut s = PlanOp::new(OpCode::UserStr, 32);
        s.arg = 1;
        s.len = 256;
        let p = plan(
            &[
                PlanOp::new(OpCode::PidTgid, 8),
                PlanOp::new(OpCode::Comm, 16),
                s,
            ],
            32 + 4 + 256,
        );
        plan_routes(&[KernelProbe {
            id: 0,
            attach: Attach::SyscallEnter(vec![257]),
            plan: p,
        }])
        .unwrap();
    }

    fn tracepoint(system: &str, event: &str) -> Attach {
        Attach::Tracepoint {
            system: system.into(),
            event: event.into(),
        }
    }

    #[test]
    fn routes_tracepoints_uprobes_and_periods() {
        let uprobe = Attach::Uprobe {
            path: "/bin/true".into(),
            location: UprobeLocation::Symbol("main".into()),
            pid: Some(42),
            ret: true,
        };
        let clock = |period| Attach::PerfSample {
            event: PerfCounter::CpuClock,
            period,
        };
        let routes = plan_routes(&[
            probe(1, tracepoint("sched", "sched_process_exec")),
            probe(2, tracepoint("sched", "sched_process_exec")),
            probe(3, tracepoint("signal", "signal_generate")),
            probe(4, uprobe),
            probe(5, clock(1_000_000)),
            probe(6, clock(1_000_000)),
            probe(7, clock(10_000_000)),
        ])
        .unwrap();
        let exec = &routes.tracepoints[&("sched".into(), "sched_process_exec".into())];
        assert_eq!(&exec.probes[..3], &[1, 2, NO_PROBE]);
        assert_eq!(routes.tracepoints.len(), 2);
        assert!(routes.uprobes[&4].ret && routes.uprobes[&4].pid == Some(42));
        assert_eq!(&routes.perf[&1_000_000].1.probes[..3], &[5, 6, NO_PROBE]);
        assert_eq!(routes.perf[&10_000_000].0, PerfCounter::CpuClock);
        assert!(routes.enter.is_empty() && routes.exit.is_empty());
    }

    #[test]
    fn rejects_bad_targets() {
        let err = |attach| plan_routes(&[probe(1, attach)]).unwrap_err().to_string();
        assert!(err(tracepoint("sched", "../../etc")).contains("not a tracepoint name"));
        assert!(err(tracepoint("", "x")).contains("not a tracepoint name"));
        let sample = |event, period| Attach::PerfSample { event, period };
        assert!(err(sample(PerfCounter::CpuClock, 0)).contains("period of 0"));
        let err = plan_routes(&[
            probe(1, sample(PerfCounter::CpuClock, 1000)),
            probe(2, sample(PerfCounter::CpuCycles, 1000)),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("share the sampling period 1000"), "{err}");
        let err = plan_routes(&[probe(
            1,
            Attach::Uprobe {
                path: "/bin/true".into(),
                location: UprobeLocation::FileOffset(0x1000),
                pid: Some(0),
                ret: false,
            },
        )]);
        assert!(err.unwrap_err().to_string().contains("not a process"));
        let full: Vec<_> = (0..=PROBES_PER_ROUTE as u32)
            .map(|id| probe(id, tracepoint("sched", "sched_switch")))
            .collect();
        let err = plan_routes(&full).unwrap_err().to_string();
        assert!(err.contains("tracepoint sched:sched_switch"), "{err}");
    }

    #[test]
    fn checks_context_reads() {
        let op = |code, src, len| {
            let mut op = PlanOp::new(code, 8);
            op.src = src;
            op.len = len;
            op
        };
        let bad = |attach: Attach, op: PlanOp| {
            let len = 8 + OpCode::from_u8(op.code).unwrap().width(op.len);
            plan_routes(&[KernelProbe {
                id: 1,
                attach,
                plan: plan(&[op], len as u16),
            }])
            .err()
            .map(|e| e.to_string())
        };
        let uprobe = || Attach::Uprobe {
            path: "/bin/true".into(),
            location: UprobeLocation::Symbol("main".into()),
            pid: None,
            ret: false,
        };
        let exec = || tracepoint("sched", "sched_process_exec");
        // Registers: inside pt_regs only.
        assert_eq!(bad(uprobe(), op(OpCode::Reg, 160, 0)), None);
        assert!(
            bad(uprobe(), op(OpCode::Reg, 168, 0))
                .unwrap()
                .contains("pt_regs")
        );
        assert!(
            bad(uprobe(), op(OpCode::CtxField, 160, 16))
                .unwrap()
                .contains("registers")
        );
        // Trace entries: not the common_* fields, at most MAX_CTX_FIELD.
        assert_eq!(bad(exec(), op(OpCode::CtxDataLoc, 8, 64)), None);
        assert!(
            bad(exec(), op(OpCode::CtxField, 4, 4))
                .unwrap()
                .contains("common_")
        );
        assert!(
            bad(exec(), op(OpCode::CtxField, 8, 512))
                .unwrap()
                .contains("at most")
        );
        // __data_loc fields exist only in trace entries.
        assert!(
            bad(uprobe(), op(OpCode::CtxDataLoc, 8, 64))
                .unwrap()
                .contains("only tracepoints")
        );
    }
}
