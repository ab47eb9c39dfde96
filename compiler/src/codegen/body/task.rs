//! The task context of a handler: `task_*()` over the ancestry chain the
//! kernel copied, and the per-process context builtins (`ppid`, `euid`,
//! `egid`, `cmdline_str`).
//!
//! A task value is a handle into the probe's captured chain: 1 is the
//! current task, `n + 1` its n-th ancestor, 0 no task. `task_parent` only
//! counts up, so walking ancestors (`while (task_pid(t) != 1) t =
//! task_parent(t)`) runs entirely in Wasm; a handle past the chain reads as
//! 0 and "", never a trap. The chain pointer sits in a Wasm global set by
//! each handler's prologue, so script functions read the chain of whichever
//! probe called them; only probes that use task functions (directly or
//! through the functions they call) capture it.

use std::collections::HashSet;

use wasm_encoder::{BlockType, ValType};
use wasmtap_abi::{TASK_CHAIN_HEADER_LEN, TASK_ENTRY_LEN};

use super::{Gen, mem};
use crate::{
    codegen::bodies,
    passes::{
        resolve::ResolvedProbe,
        symbols::{ContextField, Ty},
        types::{self, Typed},
    },
    plan::{CMDLINE_BYTES, Capture},
    span::Span,
    syntax::ast::{Block, Expr, ExprKind, Item, Script},
};

/// Builtins that read the task chain.
const TASK_BUILTINS: &[&str] = &[
    "task_current",
    "task_parent",
    "task_pid",
    "task_tid",
    "task_uid",
    "task_euid",
    "task_execname",
];

/// Names of the functions `block` calls.
fn calls(block: &Block) -> HashSet<String> {
    let mut names = HashSet::new();
    types::visit_block(block, &mut |expr: &Expr| {
        if let ExprKind::Call { name, .. } = &expr.kind {
            names.insert(name.name.clone());
        }
    });
    names
}

/// For each probe, whether its handler needs the task chain: it calls a
/// task builtin, or a script function that (transitively) does.
pub(crate) fn probes_using_tasks(
    script: &Script,
    typed: &Typed,
    probes: &[ResolvedProbe],
) -> Vec<bool> {
    if !bodies(script).any(|body| calls(body).iter().any(|c| TASK_BUILTINS.contains(&&**c))) {
        return vec![false; probes.len()];
    }
    let function_calls: Vec<(String, HashSet<String>)> = typed
        .functions
        .iter()
        .map(|f| match &script.items[f.item] {
            Item::Function(decl) => (f.name.clone(), calls(&decl.body)),
            _ => (f.name.clone(), HashSet::new()),
        })
        .collect();
    let mut using: HashSet<String> = TASK_BUILTINS.iter().map(|s| s.to_string()).collect();
    loop {
        let before = using.len();
        for (name, called) in &function_calls {
            if called.iter().any(|c| using.contains(c)) {
                using.insert(name.clone());
            }
        }
        if using.len() == before {
            break;
        }
    }
    probes
        .iter()
        .map(|probe| match &script.items[probe.item] {
            Item::Probe(decl) => calls(&decl.body).iter().any(|c| using.contains(c)),
            _ => false,
        })
        .collect()
}

/// Offsets of the members of `wasmtap_abi::TaskEntry`.
const ENTRY_TGID: u64 = 0;
const ENTRY_PID: u64 = 4;
const ENTRY_UID: u64 = 8;
const ENTRY_EUID: u64 = 12;
const ENTRY_COMM: i32 = 16;

impl Gen<'_, '_> {
    /// Points the task global at this probe's chain, or at none.
    pub(super) fn task_prologue(&mut self, probe: usize, span: Span) {
        let Some(g_task) = self.l.g_task else { return };
        if self.l.task_probes[probe] && self.plan.is_some() {
            let Some(offset) = self.capture(Capture::TaskChain, span) else {
                return;
            };
            let rec = self.l.g_rec;
            self.ins()
                .global_get(rec)
                .i32_const(i32::from(offset))
                .i32_add()
                .global_set(g_task);
        } else {
            self.ins().i32_const(0).global_set(g_task);
        }
    }

    /// `task_*()`.
    pub(super) fn task_builtin(&mut self, name: &str, args: &[Expr]) -> Option<Ty> {
        if name == "task_current" {
            self.ins().i64_const(1);
            return Some(Ty::Long);
        }
        let handle = self.temp(ValType::I64);
        self.expr(args.first()?);
        self.ins().local_set(handle);
        if name == "task_parent" {
            // 0 stays 0; any other handle moves one ancestor up.
            self.ins()
                .local_get(handle)
                .i64_const(1)
                .i64_add()
                .i64_const(0)
                .local_get(handle)
                .i64_const(0)
                .i64_ne()
                .select();
            return Some(Ty::Long);
        }
        let entry = self.task_entry(handle);
        if name == "task_execname" {
            let comm = wasmtap_abi::COMM_LEN as i32;
            self.ins()
                .local_get(entry)
                .i32_const(ENTRY_COMM)
                .i32_add()
                .i32_const(comm)
                .i32_const(0)
                .local_get(entry)
                .select();
            self.rt("str_from_cstr");
            return Some(Ty::Str);
        }
        let offset = match name {
            "task_pid" => ENTRY_TGID,
            "task_tid" => ENTRY_PID,
            "task_uid" => ENTRY_UID,
            _ => ENTRY_EUID,
        };
        self.ins().local_get(entry).i32_eqz();
        self.open(BlockType::Result(ValType::I64), b'i');
        self.ins().i64_const(0).else_();
        self.ins().local_get(entry).i64_load32_u(mem(offset, 2));
        self.close();
        Some(Ty::Long)
    }

    /// A local holding the address of the entry `handle` names, or 0 when
    /// there is no chain or the handle is outside it.
    fn task_entry(&mut self, handle: u32) -> u32 {
        let entry = self.temp(ValType::I32);
        let Some(g_task) = self.l.g_task else {
            self.ins().i32_const(0).local_set(entry);
            return entry;
        };
        let chain = self.temp(ValType::I32);
        self.ins().global_get(g_task).local_tee(chain).i32_eqz();
        self.open(BlockType::Result(ValType::I32), b'i');
        self.ins().i32_const(0).else_();
        // handle - 1 < count, unsigned: handle 0 wraps and fails.
        self.ins()
            .local_get(handle)
            .i64_const(1)
            .i64_sub()
            .local_get(chain)
            .i64_load32_u(mem(0, 2))
            .i64_lt_u();
        self.open(BlockType::Result(ValType::I32), b'i');
        self.ins()
            .local_get(chain)
            .i32_const(TASK_CHAIN_HEADER_LEN as i32)
            .i32_add()
            .local_get(handle)
            .i32_wrap_i64()
            .i32_const(1)
            .i32_sub()
            .i32_const(TASK_ENTRY_LEN as i32)
            .i32_mul()
            .i32_add()
            .else_()
            .i32_const(0);
        self.close();
        self.close();
        self.ins().local_set(entry);
        entry
    }

    /// `ppid()`, `euid()`, `egid()` and `cmdline_str()` from the context
    /// area at `offset`.
    pub(super) fn process_context(&mut self, name: &str, offset: u16) -> Option<Ty> {
        let rec = self.l.g_rec;
        let offset64 = u64::from(offset);
        match name {
            "ppid" => {
                self.ins().global_get(rec).i64_load(mem(offset64, 3));
            }
            // EuidEgid is `egid << 32 | euid`.
            "euid" => {
                self.ins().global_get(rec).i64_load32_u(mem(offset64, 2));
            }
            "egid" => {
                self.ins()
                    .global_get(rec)
                    .i64_load32_u(mem(offset64 + 4, 2));
            }
            "cmdline_str" => {
                self.cmdline(offset);
                return Some(Ty::Str);
            }
            _ => return None,
        }
        Some(Ty::Long)
    }

    /// stap's `cmdline_str()`: the arguments separated by spaces.
    fn cmdline(&mut self, offset: u16) {
        let rec = self.l.g_rec;
        let (start, len) = (self.temp(ValType::I32), self.temp(ValType::I32));
        let max = i32::from(CMDLINE_BYTES);
        self.ins()
            .global_get(rec)
            .i32_const(i32::from(offset) + wasmtap_abi::STR_STATUS_LEN as i32)
            .i32_add()
            .local_set(start);
        // len = clamp(status, 0, max)
        self.ins()
            .global_get(rec)
            .i32_load(mem(u64::from(offset), 2))
            .local_tee(len)
            .i32_const(0)
            .local_get(len)
            .i32_const(0)
            .i32_gt_s()
            .select()
            .local_tee(len)
            .i32_const(max)
            .local_get(len)
            .i32_const(max)
            .i32_lt_s()
            .select()
            .local_set(len);
        // Drop the NULs that end the last argument.
        self.open(BlockType::Empty, b'b');
        self.open(BlockType::Empty, b'l');
        self.ins()
            .local_get(len)
            .i32_eqz()
            .br_if(1)
            .local_get(start)
            .local_get(len)
            .i32_add()
            .i32_const(1)
            .i32_sub()
            .i32_load8_u(mem(0, 0))
            .br_if(1)
            .local_get(len)
            .i32_const(1)
            .i32_sub()
            .local_set(len)
            .br(0);
        self.close();
        self.close();
        self.ins().local_get(start);
        self.str_value(len);
        self.literal(b"\0");
        self.literal(b" ");
        self.rt("str_replace");
    }
}

/// Whether `field` is one [`Gen::process_context`] reads.
pub(super) fn is_process_context(field: ContextField) -> bool {
    matches!(
        field,
        ContextField::ParentTgid | ContextField::EuidEgid | ContextField::Cmdline
    )
}
