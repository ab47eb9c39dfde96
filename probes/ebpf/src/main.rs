//! The generic eBPF programs of wasmtap.
//!
//! The kernel side of wasmtap never changes with the script: these programs
//! are compiled once and driven by data. When an event fires they look up
//! which probes want it, check each probe's in-kernel filters, run the
//! probe's capture [`Plan`] (a short list of copy operations the compiler
//! wrote) to assemble a record, and push that record into one ring buffer.
//! Everything else (formatting, aggregation, policy) happens in the Wasm
//! handlers on the host.
//!
//! # Programs
//! - `sys_enter`: raw tracepoint `raw_syscalls:sys_enter`, arguments
//!   `(struct pt_regs *regs, long id)`; routed by syscall number.
//! - `sys_exit`: raw tracepoint `raw_syscalls:sys_exit`, arguments
//!   `(struct pt_regs *regs, long ret)`; the syscall number is read from
//!   `regs->orig_ax`.
//! - `trace_event`: classic tracepoint, attached to every event a probe
//!   names (`kernel.trace("sys:event")`, `signal.send`, process lifecycle);
//!   routed by the event id, which the host passes as the link's cookie.
//!   `CtxField` and `CtxDataLoc` read the trace entry, whose first 8 bytes
//!   (the `common_*` fields) the kernel overwrites with a `pt_regs` pointer
//!   for BPF programs; `Arg`, `UserStr` and `Reg` read the task's saved user
//!   registers.
//! - `uprobe_entry` / `uprobe_return`: uprobe and uretprobe; the probe id is
//!   the attach cookie. `uprobe_entry_multi` / `uprobe_return_multi` are the
//!   same programs for uprobe_multi links (kernel 6.6+: one link for many
//!   offsets of one binary, a cookie per offset, detached in one RCU grace
//!   period instead of one per uprobe); the host uses them where the kernel
//!   has them and the plain ones, one link per probe, elsewhere. `Reg` and
//!   `CtxField` read the context `pt_regs` (function arguments in di, si,
//!   dx, cx, r8, r9);
//!   `RetVal` is `ax` at return. `UserRead` and `UserStrAt` read user
//!   memory at a register (or an earlier slot's pointer) plus a
//!   displacement: struct members, stack-passed arguments, USDT memory
//!   operands.
//! - `perf_sample`: perf event program attached on every online CPU for
//!   each sampling period in use; routed by the sample period (perf links
//!   carry no cookie). `Reg` and `CtxField` read the sampled registers,
//!   which are kernel registers when the sample hit kernel mode.
//!
//! Raw tracepoints need no tracefs and detach in about a millisecond, so a
//! `syscall.*` probe costs two attaches, not hundreds; syscalls are selected
//! by number inside the program through the route maps.
//!
//! # Maps (names in [`wasmtap_abi::names`])
//! - `PLANS`: `Array<Plan>` indexed by probe id.
//! - `SYS_ENTER_ROUTES` / `SYS_EXIT_ROUTES`: `Array<ProbeRoute>` indexed by
//!   syscall number; each lists up to [`PROBES_PER_ROUTE`] probe ids.
//! - `TP_ROUTES`: `HashMap<u32, ProbeRoute>` keyed by tracepoint event id.
//! - `PERF_ROUTES`: `HashMap<u64, ProbeRoute>` keyed by sample period.
//! - `CONFIG`: one [`Config`]: the host's tgid (never traced, so draining
//!   does not feed itself), the wakeup threshold, and the kernel struct
//!   offsets the task ops need (from BTF, written by the host at load).
//! - `EVENTS`: the ring buffer every record goes through.
//! - `DROPS`: per-CPU `u64` per probe id, records lost to a full ring buffer.
//! - `SCRATCH`: per-CPU record buffers, one per program: a perf sample (an
//!   NMI) can interrupt a syscall program on the same CPU, and a preempted
//!   `sys_enter` run must not share its buffer with a `sys_exit` run; each
//!   program's own recursion guard protects its own slot.
//!
//! # Verifier strategy
//! The probes of a route run under one `bpf_loop` and the plan interpreter
//! under another, with one callback that executes op `i`: the verifier
//! checks the interpreter once per program instead of once per route slot,
//! and never unrolls up to [`MAX_OPS`] iterations (with the route loop
//! unrolled, each program took ~100k verifier steps and the six together
//! over a second to load). Ops that loop themselves (`UserStrArray`,
//! `TaskChain`) run a nested `bpf_loop`. Every record offset is an absolute
//! offset masked with `MAX_RECORD - 1` and every length is masked with
//! `MAX_RECORD - 1` too, and the scratch buffer is [`SCRATCH_LEN`] bytes, so
//! any masked offset plus any masked length stays inside the buffer without
//! further checks. Pointers the kernel types as context or BTF pointers are
//! turned into plain numbers ([`scalar`]) before variable offsets are added
//! to them; `bpf_probe_read_*` then reads them safely.
//!
//! # Wakeups
//! Records are submitted with `BPF_RB_NO_WAKEUP` while the ring buffer holds
//! less than `Config::wakeup_bytes`; the host drains on a timer. A wakeup per
//! record was measured to slow the traced program 5.7x.
#![no_std]
#![no_main]
// BPF inline assembly (see `opaque_mask`); allowed on stable through the
// RUSTC_BOOTSTRAP=1 the build already sets for build-std.
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

use core::ffi::c_void;

use aya_ebpf::{
    EbpfContext,
    bindings::{BPF_F_USER_STACK, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::generated::{
        bpf_get_attach_cookie, bpf_get_current_comm, bpf_get_current_pid_tgid,
        bpf_get_current_task, bpf_get_current_task_btf, bpf_get_current_uid_gid,
        bpf_get_smp_processor_id, bpf_get_stack, bpf_ktime_get_ns, bpf_loop, bpf_probe_read_kernel,
        bpf_probe_read_kernel_str, bpf_probe_read_user, bpf_probe_read_user_str,
        bpf_ringbuf_output, bpf_ringbuf_query, bpf_task_pt_regs,
    },
    macros::{map, perf_event, raw_tracepoint, tracepoint, uprobe, uretprobe},
    maps::{Array, HashMap, PerCpuArray, RingBuf},
    programs::{
        PerfEventContext, ProbeContext, RawTracePointContext, RetProbeContext, TracePointContext,
    },
};
use wasmtap_abi::{
    COMM_LEN, Config, FilterField, HEADER_LEN, MAX_ARGV, MAX_CTX_FIELD, MAX_FILTERS, MAX_OPS,
    MAX_PERF_PERIODS, MAX_PROBES, MAX_RECORD, MAX_SYSCALLS, MAX_TASK_CHAIN, MAX_TRACEPOINTS,
    NO_PROBE, OpCode, PROBES_PER_ROUTE, Plan, PlanOp, ProbeRoute, REGS_STACK_HEADER_LEN, ReadBase,
    STACK_HEADER_LEN, STR_STATUS_LEN, TASK_CHAIN_HEADER_LEN, TASK_ENTRY_LEN, TaskOffsets,
    USER_READ_HEADER_LEN,
};

/// GPL-only helpers (bpf_probe_read_*) need a GPL-compatible license; the
/// kernel accepts "Dual MIT/GPL".
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// Default ring buffer size; the host may resize it before loading.
const DEFAULT_RING_BYTES: u32 = 8 << 20;

/// Bytes of one scratch record buffer: a masked offset (< `MAX_RECORD`) plus
/// a masked length (< `MAX_RECORD`) plus a small fixed write (a status word,
/// a task entry) always fits, so the verifier needs no per-op range checks.
const SCRATCH_LEN: usize = 2 * MAX_RECORD + 64;

/// Mask applied to every record offset and variable length.
const RECORD_MASK: usize = MAX_RECORD - 1;
/// Mask that bounds a whole-record length for the verifier: at least
/// `MAX_RECORD`, at most `SCRATCH_LEN`.
const SCRATCH_MASK: u64 = (2 * MAX_RECORD - 1) as u64;
const _: () = assert!(SCRATCH_MASK as usize <= SCRATCH_LEN);
const _: () = assert!(RECORD_MASK + RECORD_MASK + TASK_ENTRY_LEN <= SCRATCH_LEN);

/// Byte offsets in x86_64 `struct pt_regs`.
mod regs {
    pub const BP: u64 = 4 * 8;
    pub const AX: u64 = 10 * 8;
    pub const ORIG_AX: u64 = 15 * 8;
    pub const IP: u64 = 16 * 8;
    pub const SP: u64 = 19 * 8;
}

/// Scratch slots, one per program (see the module docs).
const SCRATCH_ENTER: u32 = 0;
const SCRATCH_EXIT: u32 = 1;
const SCRATCH_TRACEPOINT: u32 = 2;
const SCRATCH_UPROBE: u32 = 3;
const SCRATCH_URETPROBE: u32 = 4;
const SCRATCH_PERF: u32 = 5;
const SCRATCH_SLOTS: u32 = 6;

/// Page size, for the fallback of a user stack copy that runs off the end
/// of the stack mapping.
const PAGE: u64 = 4096;

#[map]
static PLANS: Array<Plan> = Array::with_max_entries(MAX_PROBES, 0);

#[map]
static SYS_ENTER_ROUTES: Array<ProbeRoute> = Array::with_max_entries(MAX_SYSCALLS, 0);

#[map]
static SYS_EXIT_ROUTES: Array<ProbeRoute> = Array::with_max_entries(MAX_SYSCALLS, 0);

#[map]
static TP_ROUTES: HashMap<u32, ProbeRoute> = HashMap::with_max_entries(MAX_TRACEPOINTS, 0);

#[map]
static PERF_ROUTES: HashMap<u64, ProbeRoute> = HashMap::with_max_entries(MAX_PERF_PERIODS, 0);

#[map]
static CONFIG: Array<Config> = Array::with_max_entries(1, 0);

#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);

#[map]
static DROPS: PerCpuArray<u64> = PerCpuArray::with_max_entries(MAX_PROBES, 0);

/// One record buffer per program per CPU.
#[repr(C, align(8))]
struct Scratch {
    bytes: [u8; SCRATCH_LEN],
}

#[map]
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(SCRATCH_SLOTS, 0);

/// Where the ops of one event find their inputs.
#[derive(Clone, Copy)]
struct Event {
    /// The program's context, for helpers that take it (bpf_get_stack).
    ctx: *mut c_void,
    /// Address `CtxField` and `CtxDataLoc` read from: the trace entry of a
    /// tracepoint, else the event's `pt_regs`.
    fields: u64,
    /// Address of the event's `pt_regs` for `Arg`, `UserStr` and `Reg`; 0
    /// means the task's saved user registers (looked up when needed).
    regs: u64,
    /// The syscall number (syscall programs).
    nr: u64,
    /// The return value (syscall exit, uretprobe).
    ret: u64,
}

/// What the op callback needs; lives on the program's stack and is passed
/// to `bpf_loop` by pointer.
#[repr(C)]
struct Run {
    /// The plan being executed (a `PLANS` map value).
    plan: *const Plan,
    /// The record being assembled (a `SCRATCH` map value).
    buf: *mut u8,
    /// Kernel struct offsets (inside the `CONFIG` map value).
    task: *const TaskOffsets,
    ctx: *mut c_void,
    fields: u64,
    regs: u64,
    nr: u64,
    ret: u64,
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let nr: u64 = ctx.arg(1);
    if nr >= MAX_SYSCALLS as u64 {
        return 0;
    }
    let Some(route) = SYS_ENTER_ROUTES.get_ptr(nr as u32) else {
        return 0;
    };
    let event = Event {
        ctx: ctx.as_ptr(),
        fields: regs,
        regs,
        nr,
        ret: 0,
    };
    handle(route, SCRATCH_ENTER, &event);
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let ret: u64 = ctx.arg(1);
    // SAFETY: `regs` is the kernel's `struct pt_regs *` for this syscall;
    // bpf_probe_read_kernel faults safely on a bad address.
    let nr = unsafe { read_kernel_u64(regs + regs::ORIG_AX) };
    if nr >= MAX_SYSCALLS as u64 {
        return 0;
    }
    let Some(route) = SYS_EXIT_ROUTES.get_ptr(nr as u32) else {
        return 0;
    };
    let event = Event {
        ctx: ctx.as_ptr(),
        fields: regs,
        regs,
        nr,
        ret,
    };
    handle(route, SCRATCH_EXIT, &event);
    0
}

#[tracepoint]
pub fn trace_event(ctx: TracePointContext) -> u32 {
    // The host links each event with its event id as the cookie (the trace
    // entry's own `common_type` is overwritten for BPF programs).
    // SAFETY: helper without memory arguments besides the context.
    let id = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) } as u32;
    let Some(route) = TP_ROUTES.get_ptr(&id) else {
        return 0;
    };
    let event = Event {
        ctx: ctx.as_ptr(),
        fields: scalar(ctx.as_ptr()),
        regs: 0,
        nr: 0,
        ret: 0,
    };
    handle(route, SCRATCH_TRACEPOINT, &event);
    0
}

#[uprobe]
pub fn uprobe_entry(ctx: ProbeContext) -> u32 {
    uprobe_entry_body(ctx)
}

/// `uprobe_entry` for uprobe_multi links (a different expected attach
/// type, so a second program load).
#[uprobe(multi)]
pub fn uprobe_entry_multi(ctx: ProbeContext) -> u32 {
    uprobe_entry_body(ctx)
}

#[inline(always)]
fn uprobe_entry_body(ctx: ProbeContext) -> u32 {
    // SAFETY: helper without memory arguments besides the context.
    let probe = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let regs = scalar(ctx.as_ptr());
    let event = Event {
        ctx: ctx.as_ptr(),
        fields: regs,
        regs,
        nr: 0,
        ret: 0,
    };
    handle_one(probe, SCRATCH_UPROBE, &event);
    0
}

#[uretprobe]
pub fn uprobe_return(ctx: RetProbeContext) -> u32 {
    uprobe_return_body(ctx)
}

/// `uprobe_return` for uprobe_multi links.
#[uretprobe(multi)]
pub fn uprobe_return_multi(ctx: RetProbeContext) -> u32 {
    uprobe_return_body(ctx)
}

#[inline(always)]
fn uprobe_return_body(ctx: RetProbeContext) -> u32 {
    // SAFETY: helper without memory arguments besides the context.
    let probe = unsafe { bpf_get_attach_cookie(ctx.as_ptr()) };
    let regs = scalar(ctx.as_ptr());
    // SAFETY: `regs` is the context's `struct pt_regs *`.
    let ret = unsafe { read_kernel_u64(regs + regs::AX) };
    let event = Event {
        ctx: ctx.as_ptr(),
        fields: regs,
        regs,
        nr: 0,
        ret,
    };
    handle_one(probe, SCRATCH_URETPROBE, &event);
    0
}

#[perf_event]
pub fn perf_sample(ctx: PerfEventContext) -> u32 {
    // SAFETY: `sample_period` is a readable field of the perf context.
    let period = unsafe { (*ctx.ctx).sample_period };
    let Some(route) = PERF_ROUTES.get_ptr(&period) else {
        return 0;
    };
    // The context is a `struct bpf_perf_event_data_kern` whose first member
    // points at the sampled registers.
    // SAFETY: bpf_probe_read_kernel faults safely on a bad address.
    let regs = unsafe { read_kernel_u64(scalar(ctx.as_ptr())) };
    let event = Event {
        ctx: ctx.as_ptr(),
        fields: regs,
        regs,
        nr: 0,
        ret: 0,
    };
    handle(route, SCRATCH_PERF, &event);
    0
}

/// Runs the one probe a uprobe link's cookie names.
#[inline(always)]
fn handle_one(probe: u64, scratch: u32, event: &Event) {
    if probe >= MAX_PROBES as u64 {
        return;
    }
    let mut route = ProbeRoute::default();
    route.probes[0] = probe as u16;
    handle(&route, scratch, event);
}

/// Runs every probe of `route`.
///
/// This runs for every event the program is attached to, so the common case
/// (no probe wants this event) returns after one lookup.
#[inline(always)]
fn handle(route: *const ProbeRoute, scratch: u32, event: &Event) {
    // SAFETY: `route` is a live map value or stack value of type ProbeRoute.
    if unsafe { (*route).probes[0] } == NO_PROBE {
        return;
    }
    // SAFETY: helper without memory arguments.
    let pid_tgid = unsafe { bpf_get_current_pid_tgid() };
    let Some(config) = CONFIG.get_ptr(0) else {
        return;
    };
    // SAFETY: a live map value of type Config.
    let config = unsafe { &*config };
    if (pid_tgid >> 32) as u32 == config.host_tgid {
        return;
    }
    let Some(buf) = SCRATCH.get_ptr_mut(scratch) else {
        return;
    };
    let mut fire = Fire {
        route,
        pid_tgid,
        // SAFETY: helper without memory arguments.
        uid_gid: unsafe { bpf_get_current_uid_gid() },
        wakeup_bytes: config.wakeup_bytes as u64,
        run: Run {
            plan: core::ptr::null(),
            buf: buf as *mut u8,
            task: &config.task,
            ctx: event.ctx,
            fields: event.fields,
            regs: event.regs,
            nr: event.nr,
            ret: event.ret,
        },
    };
    // One loop iteration per probe: the verifier checks the plan
    // interpreter once, not once per route slot.
    // SAFETY: `fire_probe` has the callback signature bpf_loop expects and
    // `fire` outlives the call.
    unsafe {
        bpf_loop(
            PROBES_PER_ROUTE as u32,
            fire_probe as *mut c_void,
            &mut fire as *mut Fire as *mut c_void,
            0,
        );
    }
}

/// What the probe loop needs; lives on the program's stack.
#[repr(C)]
struct Fire {
    route: *const ProbeRoute,
    pid_tgid: u64,
    uid_gid: u64,
    wakeup_bytes: u64,
    run: Run,
}

/// `bpf_loop` callback: runs the probe in slot `index` of the route; returns
/// 1 to stop at the first unused slot.
#[inline(never)]
extern "C" fn fire_probe(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `Fire` that handle passed to bpf_loop.
    let fire = unsafe { &mut *(ctx as *mut Fire) };
    // SAFETY: `route` is a live ProbeRoute; the index is masked below its
    // length.
    let probe = unsafe { (*fire.route).probes[index as usize & (PROBES_PER_ROUTE - 1)] };
    if probe == NO_PROBE {
        return 1;
    }
    let Some(plan) = PLANS.get_ptr(probe as u32) else {
        return 0;
    };
    // SAFETY: `plan` is a live map value of type Plan.
    let plan = unsafe { &*plan };
    fire.run.plan = plan;
    run_probe(
        probe as u32,
        plan,
        &mut fire.run,
        fire.pid_tgid,
        fire.uid_gid,
        fire.wakeup_bytes,
    );
    0
}

/// Checks the filters of one probe, runs its plan and emits the record.
#[inline(always)]
fn run_probe(
    probe: u32,
    plan: &Plan,
    run: &mut Run,
    pid_tgid: u64,
    uid_gid: u64,
    wakeup_bytes: u64,
) {
    let len = plan.record_len as usize;
    if !(HEADER_LEN..=MAX_RECORD).contains(&len) {
        return;
    }
    // The compiler folds the range check above into a form the verifier
    // cannot follow; bound `len` again where it cannot be optimized away.
    let len = opaque_mask(len as u64, SCRATCH_MASK) as usize;
    if !admits(plan, pid_tgid, uid_gid) {
        return;
    }
    let buf = run.buf;
    // Clear the record so bytes a plan does not write (padding, the tail
    // of a short string) never carry data from an earlier event. Reading
    // from address 0 always fails, and on failure bpf_probe_read_kernel
    // zero-fills its destination: a bounded memset without a loop.
    // SAFETY: `buf` has SCRATCH_LEN >= MAX_RECORD bytes and len <= MAX_RECORD.
    unsafe {
        bpf_probe_read_kernel(buf as *mut c_void, len as u32, core::ptr::null());
    }
    // SAFETY: `buf` is 8-byte aligned and at least HEADER_LEN long.
    unsafe {
        *(buf as *mut u64) = ((len as u64) << 32) | probe as u64;
    }
    let n_ops = (plan.n_ops as u32).min(MAX_OPS as u32);
    // SAFETY: `step` has the callback signature bpf_loop expects and `run`
    // outlives the call.
    unsafe {
        bpf_loop(
            n_ops,
            step as *mut c_void,
            run as *mut Run as *mut c_void,
            0,
        );
    }
    let ring = &EVENTS as *const RingBuf as *mut c_void;
    // SAFETY: `ring` is the ring buffer map.
    let avail = unsafe { bpf_ringbuf_query(ring, BPF_RB_AVAIL_DATA as u64) };
    let flags = if avail + len as u64 >= wakeup_bytes {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    };
    // SAFETY: `buf` holds at least `len` initialized bytes (cleared above).
    let rc = unsafe { bpf_ringbuf_output(ring, buf as *mut c_void, len as u64, flags as u64) };
    if rc < 0
        && let Some(count) = DROPS.get_ptr_mut(probe)
    {
        // SAFETY: a live per-CPU map value of type u64.
        unsafe { *count += 1 };
    }
}

/// Whether the current task passes every filter of `plan`.
#[inline(always)]
fn admits(plan: &Plan, pid_tgid: u64, uid_gid: u64) -> bool {
    let n = plan.n_filters as usize;
    for i in 0..MAX_FILTERS {
        if i >= n {
            break;
        }
        let filter = &plan.filters[i];
        let actual = match filter.field {
            f if f == FilterField::Pid as u8 => pid_tgid >> 32,
            f if f == FilterField::Tid as u8 => pid_tgid & 0xffff_ffff,
            f if f == FilterField::Uid as u8 => uid_gid & 0xffff_ffff,
            f if f == FilterField::Gid as u8 => uid_gid >> 32,
            _ => continue,
        };
        if !filter.admits(actual) {
            return false;
        }
    }
    true
}

/// `bpf_loop` callback: executes op `index` of the current plan.
/// Returns 0 to continue with the next op.
#[inline(never)]
extern "C" fn step(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `Run` that run_probe passed to bpf_loop.
    let run = unsafe { &*(ctx as *const Run) };
    let i = index as usize & (MAX_OPS - 1);
    // SAFETY: `run.plan` is a live map value; `i` < MAX_OPS.
    let op = unsafe { (*run.plan).ops[i] };
    let dst = op.dst as usize;
    let len = op.len as usize;
    let src = op.src as u64;
    let out = at(run.buf, dst);
    let value: u64 = match OpCode::from_u8(op.code) {
        Some(OpCode::PidTgid) => unsafe { bpf_get_current_pid_tgid() },
        Some(OpCode::UidGid) => unsafe { bpf_get_current_uid_gid() },
        Some(OpCode::KtimeNs) => unsafe { bpf_ktime_get_ns() },
        Some(OpCode::Cpu) => unsafe { bpf_get_smp_processor_id() as u64 },
        Some(OpCode::SyscallNr) => run.nr,
        Some(OpCode::RetVal) => run.ret,
        Some(OpCode::Arg) => syscall_arg(event_regs(run), op.arg),
        Some(OpCode::Reg) => unsafe { read_kernel_u64(event_regs(run) + src) },
        Some(OpCode::Comm) => {
            // SAFETY: COMM_LEN bytes at `out` are inside the scratch buffer.
            unsafe { bpf_get_current_comm(out as *mut c_void, COMM_LEN as u32) };
            return 0;
        }
        Some(OpCode::UserStr) => {
            let ptr = syscall_arg(event_regs(run), op.arg);
            // SAFETY: a masked offset and a masked length stay inside the
            // scratch buffer; the helper faults safely on a bad pointer.
            let rc = unsafe {
                bpf_probe_read_user_str(
                    at(run.buf, dst + STR_STATUS_LEN) as *mut c_void,
                    (len & RECORD_MASK) as u32,
                    ptr as *const c_void,
                )
            };
            write_status(out, str_status(rc));
            return 0;
        }
        Some(OpCode::CtxField) => {
            // SAFETY: as above; a failed read zero-fills the destination.
            unsafe {
                bpf_probe_read_kernel(
                    out as *mut c_void,
                    (len & (2 * MAX_CTX_FIELD - 1)) as u32,
                    (run.fields + src) as *const c_void,
                )
            };
            return 0;
        }
        Some(OpCode::CtxDataLoc) => {
            // SAFETY: as above.
            let loc = unsafe { read_kernel_u32(run.fields + src) } as u64;
            let rc = unsafe {
                bpf_probe_read_kernel_str(
                    at(run.buf, dst + STR_STATUS_LEN) as *mut c_void,
                    (len & RECORD_MASK) as u32,
                    (run.fields + (loc & 0xffff)) as *const c_void,
                )
            };
            write_status(out, str_status(rc));
            return 0;
        }
        Some(OpCode::UserStack) => {
            stack(run, dst, len, BPF_F_USER_STACK as u64);
            return 0;
        }
        Some(OpCode::KernelStack) => {
            stack(run, dst, len, 0);
            return 0;
        }
        Some(OpCode::UserRegsStack) => {
            user_regs_stack(run, dst, len);
            return 0;
        }
        Some(OpCode::UserStrArray) => {
            user_str_array(run, op.arg, op.src, dst, len);
            return 0;
        }
        Some(OpCode::TaskChain) => {
            task_chain(run, dst, len);
            return 0;
        }
        Some(OpCode::ParentTgid) => {
            // SAFETY: a live map value of type TaskOffsets.
            let off = unsafe { &*run.task };
            if off.real_parent == 0 {
                0
            } else {
                let task = unsafe { bpf_get_current_task() };
                let parent = unsafe { read_kernel_u64(task + off.real_parent as u64) };
                unsafe { read_kernel_u32(parent + off.tgid as u64) as u64 }
            }
        }
        Some(OpCode::EuidEgid) => {
            // SAFETY: as above.
            let off = unsafe { &*run.task };
            if off.real_cred == 0 {
                0
            } else {
                let task = unsafe { bpf_get_current_task() };
                let cred = unsafe { read_kernel_u64(task + off.real_cred as u64) };
                let euid = unsafe { read_kernel_u32(cred + off.cred_euid as u64) } as u64;
                let egid = unsafe { read_kernel_u32(cred + off.cred_egid as u64) } as u64;
                (egid << 32) | euid
            }
        }
        Some(OpCode::Cmdline) => {
            cmdline(run, dst, len);
            return 0;
        }
        Some(OpCode::ExitCode) => {
            // SAFETY: as above.
            let off = unsafe { &*run.task };
            if off.exit_code == 0 {
                0
            } else {
                let task = unsafe { bpf_get_current_task() };
                unsafe { read_kernel_u32(task + off.exit_code as u64) as u64 }
            }
        }
        Some(OpCode::UserRead) => {
            user_read(run, &op, false);
            return 0;
        }
        Some(OpCode::UserStrAt) => {
            user_read(run, &op, true);
            return 0;
        }
        // Nop and unknown ops write nothing.
        _ => return 0,
    };
    // SAFETY: eight bytes at `out` are inside the scratch buffer.
    unsafe { (out as *mut u64).write_unaligned(value) };
    0
}

/// The byte at record offset `offset` (masked) of the scratch buffer.
#[inline(always)]
fn at(buf: *mut u8, offset: usize) -> *mut u8 {
    // SAFETY: a masked offset is below MAX_RECORD, inside SCRATCH_LEN.
    unsafe { buf.add(opaque_mask(offset as u64, RECORD_MASK as u64) as usize) }
}

/// Writes a slot's i32 status word.
#[inline(always)]
fn write_status(out: *mut u8, status: i32) {
    // SAFETY: four bytes at a masked offset are inside the scratch buffer.
    unsafe { (out as *mut i32).write_unaligned(status) };
}

/// A string slot's status from a `bpf_probe_read_*_str` result: the helper
/// counts the NUL, the status does not.
#[inline(always)]
fn str_status(rc: i64) -> i32 {
    (if rc > 0 { rc - 1 } else { rc }) as i32
}

/// The address of the `pt_regs` that `Arg`, `UserStr` and `Reg` read.
#[inline(always)]
fn event_regs(run: &Run) -> u64 {
    if run.regs != 0 { run.regs } else { user_regs() }
}

/// The current task's saved user registers (`task_pt_regs(current)`): in a
/// syscall, a uprobe or an interrupt taken in user mode these are the
/// registers user space will resume with.
#[inline(always)]
fn user_regs() -> u64 {
    // SAFETY: bpf_get_current_task_btf returns the current task, which is
    // what bpf_task_pt_regs takes.
    let regs = unsafe { bpf_task_pt_regs(bpf_get_current_task_btf()) };
    scalar(regs as *const c_void)
}

/// `UserStack` / `KernelStack`: bpf_get_stack into the slot at `dst`.
#[inline(always)]
fn stack(run: &Run, dst: usize, len: usize, flags: u64) {
    // bpf_get_stack wants whole frames.
    let size = len & RECORD_MASK & !7;
    // SAFETY: a masked offset plus a masked size stays inside the scratch
    // buffer; `run.ctx` is the program's context.
    let rc = unsafe {
        bpf_get_stack(
            run.ctx,
            at(run.buf, dst + STACK_HEADER_LEN) as *mut c_void,
            size as u32,
            flags,
        )
    };
    write_status(at(run.buf, dst), rc as i32);
}

/// `UserRegsStack`: user ip, sp, bp and a copy of the user stack from sp.
#[inline(always)]
fn user_regs_stack(run: &Run, dst: usize, len: usize) {
    let regs = user_regs();
    // SAFETY: `regs` is the task's pt_regs; reads fault safely.
    let (ip, sp, bp) = unsafe {
        (
            read_kernel_u64(regs + regs::IP),
            read_kernel_u64(regs + regs::SP),
            read_kernel_u64(regs + regs::BP),
        )
    };
    for (i, value) in [ip, sp, bp].into_iter().enumerate() {
        // SAFETY: eight bytes at a masked offset are inside the buffer.
        unsafe { (at(run.buf, dst + 8 * i) as *mut u64).write_unaligned(value) };
    }
    let copy = at(run.buf, dst + REGS_STACK_HEADER_LEN) as *mut c_void;
    let mut size = (len & RECORD_MASK) as u64;
    // SAFETY: a masked offset plus a masked size stays inside the buffer;
    // the helper faults safely on unmapped user memory.
    let mut rc = unsafe { bpf_probe_read_user(copy, size as u32, sp as *const c_void) };
    if rc < 0 {
        // The copy ran past the top of the stack mapping: the stack's own
        // page is mapped, so take what is left of it.
        size = size.min(PAGE - (sp & (PAGE - 1))) & RECORD_MASK as u64;
        // SAFETY: as above.
        rc = unsafe { bpf_probe_read_user(copy, size as u32, sp as *const c_void) };
    }
    let status = if rc < 0 { rc as i32 } else { size as i32 };
    write_status(at(run.buf, dst + 24), status);
}

/// `UserRead` (or, with `string`, `UserStrAt`): user memory at the op's
/// base plus `disp` into the slot at `dst`, behind the status and address
/// header. A faulted base slot is copied forward instead of read through.
#[inline(always)]
fn user_read(run: &Run, op: &PlanOp, string: bool) {
    let dst = op.dst as usize;
    let src = op.src as usize;
    let out = at(run.buf, dst);
    let base = if op.arg == ReadBase::Slot as u8 {
        // SAFETY: reads at masked offsets stay inside the scratch buffer.
        let status = unsafe { (at(run.buf, src) as *const i32).read_unaligned() };
        if status < 0 {
            // SAFETY: as above.
            unsafe {
                let addr = (at(run.buf, src + 8) as *const u64).read_unaligned();
                (at(run.buf, dst + 8) as *mut u64).write_unaligned(addr);
            }
            write_status(out, status);
            return;
        }
        // SAFETY: as above.
        unsafe { (at(run.buf, src + USER_READ_HEADER_LEN) as *const u64).read_unaligned() }
    } else {
        // SAFETY: the event's pt_regs; the helper faults safely.
        unsafe { read_kernel_u64(event_regs(run) + src as u64) }
    };
    let addr = base.wrapping_add(op.disp as i64 as u64);
    // SAFETY: eight bytes at a masked offset are inside the buffer.
    unsafe { (at(run.buf, dst + 8) as *mut u64).write_unaligned(addr) };
    let data = at(run.buf, dst + USER_READ_HEADER_LEN) as *mut c_void;
    let status = if string {
        // SAFETY: a masked offset plus a masked length stays inside the
        // buffer; the helper faults safely on a bad address.
        let rc = unsafe {
            bpf_probe_read_user_str(
                data,
                (op.len as usize & RECORD_MASK) as u32,
                addr as *const c_void,
            )
        };
        str_status(rc)
    } else {
        let size = op.len as usize & (2 * MAX_CTX_FIELD - 1);
        // SAFETY: as above; a failed read zero-fills the destination.
        let rc = unsafe { bpf_probe_read_user(data, size as u32, addr as *const c_void) };
        if rc < 0 { rc as i32 } else { size as i32 }
    };
    write_status(out, status);
}

/// `Cmdline`: the string slot at `dst` gets `mm->arg_start..arg_end`.
#[inline(always)]
fn cmdline(run: &Run, dst: usize, len: usize) {
    // SAFETY: a live map value of type TaskOffsets.
    let off = unsafe { &*run.task };
    let out = at(run.buf, dst);
    if off.mm == 0 {
        write_status(out, 0);
        return;
    }
    // SAFETY: kernel reads fault safely.
    let task = unsafe { bpf_get_current_task() };
    let mm = unsafe { read_kernel_u64(task + off.mm as u64) };
    if mm == 0 {
        // A kernel thread: no command line.
        write_status(out, 0);
        return;
    }
    let start = unsafe { read_kernel_u64(mm + off.mm_arg_start as u64) };
    let end = unsafe { read_kernel_u64(mm + off.mm_arg_end as u64) };
    let size = (end.saturating_sub(start)).min(len as u64) & RECORD_MASK as u64;
    // SAFETY: a masked offset plus a masked size stays inside the buffer.
    let rc = unsafe {
        bpf_probe_read_user(
            at(run.buf, dst + STR_STATUS_LEN) as *mut c_void,
            size as u32,
            start as *const c_void,
        )
    };
    write_status(out, if rc < 0 { rc as i32 } else { size as i32 });
}

/// State of the nested loop of `UserStrArray`.
#[repr(C)]
struct Argv {
    buf: *mut u8,
    /// The user `char **`.
    array: u64,
    /// Record offset of the next string.
    pos: u64,
    /// Record offset one past the slot.
    end: u64,
    /// Strings read, or a negative errno.
    count: i64,
}

/// `UserStrArray`: the strings of the user array in argument `arg`.
#[inline(always)]
fn user_str_array(run: &Run, arg: u8, max: u16, dst: usize, len: usize) {
    let start = (dst + STR_STATUS_LEN) as u64;
    let mut argv = Argv {
        buf: run.buf,
        array: syscall_arg(event_regs(run), arg),
        pos: start,
        end: start + (len & RECORD_MASK) as u64,
        count: 0,
    };
    let n = (max as u32).min(MAX_ARGV as u32);
    // SAFETY: `argv_step` has the callback signature bpf_loop expects and
    // `argv` outlives the call.
    unsafe {
        bpf_loop(
            n,
            argv_step as *mut c_void,
            &mut argv as *mut Argv as *mut c_void,
            0,
        );
    }
    write_status(at(run.buf, dst), argv.count as i32);
}

/// `bpf_loop` callback of `UserStrArray`: reads string `index`; returns 1
/// to stop.
#[inline(never)]
extern "C" fn argv_step(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `Argv` that user_str_array passed to bpf_loop.
    let argv = unsafe { &mut *(ctx as *mut Argv) };
    let mut ptr: u64 = 0;
    // SAFETY: the destination is a local u64; the helper faults safely.
    let rc = unsafe {
        bpf_probe_read_user(
            &mut ptr as *mut u64 as *mut c_void,
            8,
            (argv.array + index * 8) as *const c_void,
        )
    };
    if rc < 0 {
        if index == 0 {
            argv.count = rc;
        }
        return 1;
    }
    if ptr == 0 || argv.pos >= argv.end {
        return 1;
    }
    let room = (argv.end - argv.pos) & RECORD_MASK as u64;
    let out = at(argv.buf, argv.pos as usize);
    // SAFETY: a masked offset plus a masked size stays inside the buffer.
    let rc =
        unsafe { bpf_probe_read_user_str(out as *mut c_void, room as u32, ptr as *const c_void) };
    if rc <= 0 || rc as u64 >= room {
        // Unreadable, or it did not fit (with its NUL) in what is left:
        // the list ends here, and a truncated string is not left behind.
        // SAFETY: as above; reading address 0 fails and zero-fills.
        unsafe { bpf_probe_read_kernel(out as *mut c_void, room as u32, core::ptr::null()) };
        return 1;
    }
    argv.pos += rc as u64;
    argv.count += 1;
    0
}

/// State of the nested loop of `TaskChain`.
#[repr(C)]
struct Chain {
    buf: *mut u8,
    task: *const TaskOffsets,
    /// The task to record next.
    current: u64,
    /// Record offset of the next entry.
    pos: u64,
    count: u32,
}

/// `TaskChain`: the current task and its ancestors.
#[inline(always)]
fn task_chain(run: &Run, dst: usize, len: usize) {
    // SAFETY: a live map value of type TaskOffsets.
    let off = unsafe { &*run.task };
    let mut chain = Chain {
        buf: run.buf,
        task: run.task,
        // SAFETY: helper without arguments.
        current: unsafe { bpf_get_current_task() },
        pos: (dst + TASK_CHAIN_HEADER_LEN) as u64,
        count: 0,
    };
    if off.real_parent != 0 {
        let n = ((len / TASK_ENTRY_LEN) as u32).min(MAX_TASK_CHAIN as u32);
        // SAFETY: `chain_step` has the callback signature bpf_loop expects
        // and `chain` outlives the call.
        unsafe {
            bpf_loop(
                n,
                chain_step as *mut c_void,
                &mut chain as *mut Chain as *mut c_void,
                0,
            );
        }
    }
    // SAFETY: four bytes at a masked offset are inside the buffer.
    unsafe { (at(run.buf, dst) as *mut u32).write_unaligned(chain.count) };
}

/// `bpf_loop` callback of `TaskChain`: records one task and moves to its
/// `real_parent`; returns 1 to stop.
#[inline(never)]
extern "C" fn chain_step(_index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: `ctx` is the `Chain` that task_chain passed to bpf_loop.
    let chain = unsafe { &mut *(ctx as *mut Chain) };
    // SAFETY: a live map value of type TaskOffsets.
    let off = unsafe { &*chain.task };
    let task = chain.current;
    if task == 0 {
        return 1;
    }
    // SAFETY: kernel reads fault safely (and read zeros then).
    let (tgid, pid, uid, euid) = unsafe {
        let cred = read_kernel_u64(task + off.real_cred as u64);
        (
            read_kernel_u32(task + off.tgid as u64),
            read_kernel_u32(task + off.pid as u64),
            read_kernel_u32(cred + off.cred_uid as u64),
            read_kernel_u32(cred + off.cred_euid as u64),
        )
    };
    let entry = at(chain.buf, chain.pos as usize);
    // SAFETY: a TaskEntry at a masked offset is inside the buffer (checked
    // by the const assertion on SCRATCH_LEN).
    unsafe {
        (entry as *mut u32).write_unaligned(tgid);
        (entry.add(4) as *mut u32).write_unaligned(pid);
        (entry.add(8) as *mut u32).write_unaligned(uid);
        (entry.add(12) as *mut u32).write_unaligned(euid);
        bpf_probe_read_kernel(
            entry.add(16) as *mut c_void,
            COMM_LEN as u32,
            (task + off.comm as u64) as *const c_void,
        );
    }
    chain.count += 1;
    chain.pos += TASK_ENTRY_LEN as u64;
    // pid 1 (init) and pid 0 (the idle task) end the chain.
    if tgid <= 1 {
        return 1;
    }
    // SAFETY: as above.
    chain.current = unsafe { read_kernel_u64(task + off.real_parent as u64) };
    0
}

/// `value & mask`, computed so the compiler cannot drop the AND even when it
/// can prove it redundant: the verifier then always sees the bound.
#[inline(always)]
fn opaque_mask(value: u64, mask: u64) -> u64 {
    #[cfg(target_arch = "bpf")]
    {
        let mut value = value;
        // SAFETY: one ALU instruction on registers; no memory access.
        unsafe {
            core::arch::asm!(
                "{value} &= {mask}",
                value = inout(reg) value,
                mask = in(reg) mask,
                options(pure, nomem, nostack),
            );
        }
        value
    }
    #[cfg(not(target_arch = "bpf"))]
    {
        value & mask
    }
}

/// The address `ptr` holds, as a plain number. The verifier types context
/// and BTF pointers and refuses variable offsets on some of them; copying
/// the pointer through memory with bpf_probe_read_kernel gives an untyped
/// scalar, which the probe-read helpers accept with any offset.
#[inline(always)]
fn scalar(ptr: *const c_void) -> u64 {
    let slot = ptr as u64;
    // SAFETY: both addresses are locals; the helper faults safely.
    unsafe { read_kernel_u64(&slot as *const u64 as u64) }
}

/// Syscall argument `n` (0..=5) of the task whose registers are at `regs`;
/// 0 for other `n`.
#[inline(always)]
fn syscall_arg(regs: u64, n: u8) -> u64 {
    // Byte offsets in x86_64 `struct pt_regs`: di, si, dx, r10, r8, r9.
    let offset: u64 = match n {
        0 => 112,
        1 => 104,
        2 => 96,
        3 => 56,
        4 => 72,
        5 => 64,
        _ => return 0,
    };
    // SAFETY: `regs` is the kernel's `struct pt_regs *`; the helper faults
    // safely on a bad address.
    unsafe { read_kernel_u64(regs + offset) }
}

/// Reads a u64 from kernel memory, 0 on fault.
#[inline(always)]
unsafe fn read_kernel_u64(addr: u64) -> u64 {
    let mut value: u64 = 0;
    // SAFETY: the destination is a local u64; the helper faults safely.
    unsafe {
        bpf_probe_read_kernel(
            &mut value as *mut u64 as *mut c_void,
            8,
            addr as *const c_void,
        );
    }
    value
}

/// Reads a u32 from kernel memory, 0 on fault.
#[inline(always)]
unsafe fn read_kernel_u32(addr: u64) -> u32 {
    let mut value: u32 = 0;
    // SAFETY: the destination is a local u32; the helper faults safely.
    unsafe {
        bpf_probe_read_kernel(
            &mut value as *mut u32 as *mut c_void,
            4,
            addr as *const c_void,
        );
    }
    value
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable call to this, so it never runs.
    loop {}
}
