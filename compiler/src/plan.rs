//! Capture plans and record layouts.
//!
//! A record is `RecordHeader`, then the script's context area (the context
//! fields used anywhere in the script, packed in a fixed order, the same
//! offsets in every probe so script functions can read them), then the
//! probe's own fields (arguments, strings) in the order the code generator
//! asked for them. Fields are 8-byte aligned so the guest can load them
//! directly.

use std::collections::BTreeSet;

use wasmtap_abi::{
    Filter, HEADER_LEN, MAX_FILTERS, MAX_OPS, MAX_RECORD, MAX_TASK_CHAIN, OpCode, Plan, PlanOp,
    ReadBase, TASK_ENTRY_LEN,
};

use crate::passes::symbols::ContextField;

/// Bytes of the command line `cmdline_str()` sees (stap's MAXSTRINGLEN is
/// 128; command lines are often longer).
pub const CMDLINE_BYTES: u16 = 256;

/// Where each used context field sits; shared by every probe of a script.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextLayout {
    fields: Vec<(ContextField, u16)>,
    end: u16,
}

impl ContextLayout {
    /// Packs `used` after the header.
    pub fn new(used: &BTreeSet<ContextField>) -> Self {
        let mut offset = HEADER_LEN as u16;
        let mut fields = Vec::new();
        for &field in used {
            fields.push((field, offset));
            offset += match field {
                ContextField::Comm => wasmtap_abi::COMM_LEN as u16,
                ContextField::Cmdline => {
                    OpCode::Cmdline.width(CMDLINE_BYTES).next_multiple_of(8) as u16
                }
                _ => 8,
            };
        }
        Self {
            fields,
            end: offset,
        }
    }

    /// The offset of `field`, if the script uses it.
    pub fn offset(&self, field: ContextField) -> Option<u16> {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, o)| *o)
    }

    /// First byte after the context area.
    pub fn end(&self) -> u16 {
        self.end
    }

    fn ops(&self) -> impl Iterator<Item = PlanOp> + '_ {
        self.fields.iter().map(|&(field, offset)| {
            let code = match field {
                ContextField::PidTgid => OpCode::PidTgid,
                ContextField::UidGid => OpCode::UidGid,
                ContextField::KtimeNs => OpCode::KtimeNs,
                ContextField::Cpu => OpCode::Cpu,
                ContextField::Comm => OpCode::Comm,
                ContextField::ParentTgid => OpCode::ParentTgid,
                ContextField::EuidEgid => OpCode::EuidEgid,
                ContextField::Cmdline => {
                    return PlanOp {
                        len: CMDLINE_BYTES,
                        ..PlanOp::new(OpCode::Cmdline, offset)
                    };
                }
            };
            PlanOp::new(code, offset)
        })
    }
}

/// A value a probe asks the kernel to copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capture {
    /// A syscall argument (u64).
    Arg(u8),
    /// The string behind a user pointer argument, at most `max` bytes.
    UserString { arg: u8, max: u16 },
    /// The syscall's return value.
    RetVal,
    /// The exiting task's exit code (see `OpCode::ExitCode`).
    ExitCode,
    /// User ip, sp, bp and a copy of `len` bytes of the user stack from sp,
    /// for the host's DWARF unwinder.
    UserRegsStack { len: u16 },
    /// The kernel stack's return addresses, at most `len` bytes of them.
    KernelStack { len: u16 },
    /// The u64 at this byte offset of the event's `struct pt_regs` (a
    /// register of the traced task: uprobe parameters, `$return`).
    Reg(u16),
    /// The strings of a user `char **` argument (execve's argv), at most
    /// `max` bytes of them.
    UserStrArray { arg: u8, max: u16 },
    /// `len` bytes at byte `src` of a tracepoint's entry.
    CtxField { src: u16, len: u16 },
    /// The `__data_loc` string whose locator is at byte `src`, at most
    /// `max` bytes.
    CtxDataLoc { src: u16, max: u16 },
    /// The current task and its ancestors (see `OpCode::TaskChain`).
    TaskChain,
    /// `len` bytes of user memory at `base + disp` (see
    /// `OpCode::UserRead`).
    UserRead { base: ReadFrom, disp: i32, len: u16 },
    /// The user string at `base + disp`, at most `max` bytes (see
    /// `OpCode::UserStrAt`).
    UserStrAt { base: ReadFrom, disp: i32, max: u16 },
}

/// Where a user memory read takes its base address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadFrom {
    /// The register at this byte offset of `pt_regs`.
    Reg(u16),
    /// The pointer in the `UserRead` slot at this record offset.
    Slot(u16),
}

impl ReadFrom {
    /// The op's `arg` and `src` operands.
    fn operands(self) -> (u8, u16) {
        match self {
            Self::Reg(reg) => (ReadBase::Reg as u8, reg),
            Self::Slot(offset) => (ReadBase::Slot as u8, offset),
        }
    }
}

/// Builds one probe's plan while its handler is generated.
#[derive(Clone, Debug)]
pub struct PlanBuilder {
    ops: Vec<PlanOp>,
    captures: Vec<(Capture, u16)>,
    filters: Vec<Filter>,
    next: u16,
}

/// Raised when a probe asks for more than a record can hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanFull;

impl PlanBuilder {
    /// A plan that starts by copying the script's context area.
    pub fn new(context: &ContextLayout) -> Self {
        Self {
            ops: context.ops().collect(),
            captures: Vec::new(),
            filters: Vec::new(),
            next: align8(context.end()),
        }
    }

    /// The record offset of `capture`, adding it to the plan on first use.
    ///
    /// # Errors
    /// [`PlanFull`] when the record or the op list would overflow.
    pub fn capture(&mut self, capture: Capture) -> Result<u16, PlanFull> {
        if let Some((_, offset)) = self.captures.iter().find(|(c, _)| *c == capture) {
            return Ok(*offset);
        }
        let (op, width) = match capture {
            Capture::Arg(arg) => (
                PlanOp {
                    arg,
                    ..PlanOp::new(OpCode::Arg, self.next)
                },
                8,
            ),
            Capture::RetVal => (PlanOp::new(OpCode::RetVal, self.next), 8),
            Capture::ExitCode => (PlanOp::new(OpCode::ExitCode, self.next), 8),
            Capture::Reg(src) => (
                PlanOp {
                    src,
                    ..PlanOp::new(OpCode::Reg, self.next)
                },
                8,
            ),
            Capture::UserString { arg, max } => (
                PlanOp {
                    arg,
                    len: max,
                    ..PlanOp::new(OpCode::UserStr, self.next)
                },
                OpCode::UserStr.width(max),
            ),
            Capture::UserRegsStack { len } => (
                PlanOp {
                    len,
                    ..PlanOp::new(OpCode::UserRegsStack, self.next)
                },
                OpCode::UserRegsStack.width(len),
            ),
            Capture::KernelStack { len } => (
                PlanOp {
                    len,
                    ..PlanOp::new(OpCode::KernelStack, self.next)
                },
                OpCode::KernelStack.width(len),
            ),
            Capture::UserStrArray { arg, max } => (
                PlanOp {
                    arg,
                    len: max,
                    src: wasmtap_abi::MAX_ARGV as u16,
                    ..PlanOp::new(OpCode::UserStrArray, self.next)
                },
                OpCode::UserStrArray.width(max),
            ),
            Capture::CtxField { src, len } => (
                PlanOp {
                    src,
                    len,
                    ..PlanOp::new(OpCode::CtxField, self.next)
                },
                OpCode::CtxField.width(len),
            ),
            Capture::CtxDataLoc { src, max } => (
                PlanOp {
                    src,
                    len: max,
                    ..PlanOp::new(OpCode::CtxDataLoc, self.next)
                },
                OpCode::CtxDataLoc.width(max),
            ),
            Capture::UserRead { base, disp, len } => {
                let (arg, src) = base.operands();
                (
                    PlanOp {
                        arg,
                        src,
                        disp,
                        len,
                        ..PlanOp::new(OpCode::UserRead, self.next)
                    },
                    OpCode::UserRead.width(len),
                )
            }
            Capture::UserStrAt { base, disp, max } => {
                let (arg, src) = base.operands();
                (
                    PlanOp {
                        arg,
                        src,
                        disp,
                        len: max,
                        ..PlanOp::new(OpCode::UserStrAt, self.next)
                    },
                    OpCode::UserStrAt.width(max),
                )
            }
            Capture::TaskChain => {
                let len = (MAX_TASK_CHAIN * TASK_ENTRY_LEN) as u16;
                (
                    PlanOp {
                        len,
                        ..PlanOp::new(OpCode::TaskChain, self.next)
                    },
                    OpCode::TaskChain.width(len),
                )
            }
        };
        let end = self.next as usize + width;
        if end > MAX_RECORD || self.ops.len() >= MAX_OPS {
            return Err(PlanFull);
        }
        let offset = self.next;
        self.ops.push(op);
        self.captures.push((capture, offset));
        self.next = align8(end as u16);
        Ok(offset)
    }

    /// Adds an in-kernel predicate; events failing it are never copied.
    /// Returns false (and adds nothing) once [`MAX_FILTERS`] are used: the
    /// handler checks the predicate anyway, so a filter is only a saving.
    pub fn filter(&mut self, filter: Filter) -> bool {
        if self.filters.len() >= MAX_FILTERS {
            return false;
        }
        self.filters.push(filter);
        true
    }

    /// The finished plan.
    pub fn finish(self) -> Plan {
        let mut plan = Plan {
            record_len: self.next,
            n_ops: self.ops.len() as u16,
            n_filters: self.filters.len() as u8,
            ..Plan::default()
        };
        plan.ops[..self.ops.len()].copy_from_slice(&self.ops);
        plan.filters[..self.filters.len()].copy_from_slice(&self.filters);
        plan
    }
}

fn align8(n: u16) -> u16 {
    (n + 7) & !7
}

/// Renders a plan for `-p 3`, one op per line.
pub fn describe(plan: &Plan) -> String {
    let mut out = format!("record {} bytes\n", plan.record_len);
    for filter in &plan.filters[..plan.n_filters as usize] {
        out.push_str(&format!(
            "  filter field={} cmp={} value={}\n",
            filter.field, filter.cmp, filter.value
        ));
    }
    for op in &plan.ops[..plan.n_ops as usize] {
        let name = OpCode::from_u8(op.code).map_or("?".to_string(), |c| format!("{c:?}"));
        out.push_str(&format!("  @{:<5} {name}", op.dst));
        match OpCode::from_u8(op.code) {
            Some(OpCode::Arg) => out.push_str(&format!(" arg{}", op.arg)),
            Some(OpCode::UserStr) => out.push_str(&format!(" arg{} max {}", op.arg, op.len)),
            Some(OpCode::UserRegsStack | OpCode::KernelStack) => {
                out.push_str(&format!(" max {}", op.len))
            }
            Some(OpCode::Reg) => out.push_str(&format!(" pt_regs+{}", op.src)),
            Some(OpCode::UserStrArray) => {
                out.push_str(&format!(" arg{} max {} strings {}", op.arg, op.len, op.src))
            }
            Some(OpCode::CtxField) => out.push_str(&format!(" entry+{} len {}", op.src, op.len)),
            Some(OpCode::CtxDataLoc) => out.push_str(&format!(" entry+{} max {}", op.src, op.len)),
            Some(OpCode::TaskChain | OpCode::Cmdline) => out.push_str(&format!(" max {}", op.len)),
            Some(OpCode::UserRead | OpCode::UserStrAt) => {
                let base = if op.arg == ReadBase::Slot as u8 {
                    format!("*@{}", op.src)
                } else {
                    format!("pt_regs+{}", op.src)
                };
                out.push_str(&format!(" [{base}{:+}] len {}", op.disp, op.len));
            }
            _ => {}
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_aligned_and_shared() {
        let used = BTreeSet::from([ContextField::PidTgid, ContextField::Comm]);
        let layout = ContextLayout::new(&used);
        assert_eq!(layout.offset(ContextField::PidTgid), Some(8));
        assert_eq!(layout.offset(ContextField::Comm), Some(16));
        let mut plan = PlanBuilder::new(&layout);
        let s = plan
            .capture(Capture::UserString { arg: 1, max: 250 })
            .unwrap();
        assert_eq!(s, 32);
        let a = plan.capture(Capture::Arg(0)).unwrap();
        assert_eq!(a, 32 + 256);
        assert_eq!(plan.capture(Capture::Arg(0)).unwrap(), a);
        let plan = plan.finish();
        assert_eq!(plan.n_ops, 4);
        assert_eq!(plan.record_len, 32 + 256 + 8);
    }
}
