//! What the host asks the kernel to capture, checked before any map is
//! touched: probe descriptions, plan validation and syscall routing.

use std::collections::BTreeMap;

use wasmtap_abi::{
    FilterCmp, FilterField, HEADER_LEN, MAX_FILTERS, MAX_OPS, MAX_PROBES, MAX_RECORD, MAX_SYSCALLS,
    OpCode, PROBES_PER_SYSCALL, Plan, SyscallRoute,
};

use super::KernelError;

/// Where a probe attaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attach {
    /// Entry of the listed syscalls (numbers of the running architecture),
    /// through the raw tracepoint `raw_syscalls:sys_enter`.
    SyscallEnter(Vec<u32>),
    /// Return of the listed syscalls, through `raw_syscalls:sys_exit`.
    SyscallExit(Vec<u32>),
}

impl Attach {
    fn syscalls(&self) -> &[u32] {
        match self {
            Self::SyscallEnter(nrs) | Self::SyscallExit(nrs) => nrs,
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
pub(crate) type RouteTable = BTreeMap<u32, SyscallRoute>;

/// The route tables for `sys_enter` and `sys_exit`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Routes {
    pub(crate) enter: RouteTable,
    pub(crate) exit: RouteTable,
}

/// Validates every probe and builds the route tables, or says what is wrong
/// with the first bad probe. Nothing is written to the kernel before this
/// succeeds, so a bad probe set leaves the running one untouched.
pub(crate) fn plan_routes(probes: &[KernelProbe]) -> Result<Routes, KernelError> {
    let mut seen = std::collections::BTreeSet::new();
    let mut enter: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    let mut exit: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for probe in probes {
        if !seen.insert(probe.id) {
            return Err(invalid(probe.id, "the id is used by two probes"));
        }
        validate_probe(probe)?;
        let table = match probe.attach {
            Attach::SyscallEnter(_) => &mut enter,
            Attach::SyscallExit(_) => &mut exit,
        };
        for &nr in probe.attach.syscalls() {
            if nr >= MAX_SYSCALLS {
                return Err(invalid(
                    probe.id,
                    format!("syscall number {nr} is not below {MAX_SYSCALLS}"),
                ));
            }
            let ids = table.entry(nr).or_default();
            if !ids.contains(&probe.id) {
                ids.push(probe.id);
            }
        }
    }
    Ok(Routes {
        enter: to_routes(enter, "entry")?,
        exit: to_routes(exit, "exit")?,
    })
}

fn to_routes(
    table: BTreeMap<u32, Vec<u32>>,
    direction: &'static str,
) -> Result<RouteTable, KernelError> {
    table
        .into_iter()
        .map(|(syscall, ids)| {
            if ids.len() > PROBES_PER_SYSCALL {
                return Err(KernelError::RouteFull {
                    syscall,
                    direction,
                    count: ids.len(),
                    max: PROBES_PER_SYSCALL,
                    probes: ids,
                });
            }
            let mut route = SyscallRoute::default();
            for (slot, id) in route.probes.iter_mut().zip(&ids) {
                // validate_probe checked id < MAX_PROBES <= u16::MAX.
                *slot = *id as u16;
            }
            Ok((syscall, route))
        })
        .collect()
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
        if matches!(code, OpCode::Arg | OpCode::UserStr) && op.arg > 5 {
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
        let probes: Vec<_> = (0..=PROBES_PER_SYSCALL as u32)
            .map(|id| probe(id, Attach::SyscallEnter(vec![0])))
            .collect();
        let err = plan_routes(&probes).unwrap_err();
        assert!(
            matches!(
                err,
                KernelError::RouteFull {
                    syscall: 0,
                    count: 9,
                    ..
                }
            ),
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
}
