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
//!   `(struct pt_regs *regs, long id)`.
//! - `sys_exit`: raw tracepoint `raw_syscalls:sys_exit`, arguments
//!   `(struct pt_regs *regs, long ret)`; the syscall number is read from
//!   `regs->orig_ax`.
//!
//! Raw tracepoints need no tracefs and detach in about a millisecond, so a
//! `syscall.*` probe costs two attaches, not hundreds; syscalls are selected
//! by number inside the program through the route maps.
//!
//! # Maps (names in [`wasmtap_abi::names`])
//! - `PLANS`: `Array<Plan>` indexed by probe id.
//! - `SYS_ENTER_ROUTES` / `SYS_EXIT_ROUTES`: `Array<SyscallRoute>` indexed by
//!   syscall number; each lists up to [`PROBES_PER_SYSCALL`] probe ids.
//! - `CONFIG`: one [`Config`]: the host's tgid (never traced, so draining
//!   does not feed itself) and the wakeup threshold.
//! - `EVENTS`: the ring buffer every record goes through.
//! - `DROPS`: per-CPU `u64` per probe id, records lost to a full ring buffer.
//! - `SCRATCH`: per-CPU record buffers, one per program (a preempted
//!   `sys_enter` run must not share its buffer with a `sys_exit` run on the
//!   same CPU; each program's own recursion guard protects its own slot).
//!
//! # Verifier strategy
//! The plan interpreter runs under `bpf_loop` with one callback that executes
//! op `i`: the verifier checks the callback once instead of unrolling up to
//! [`MAX_OPS`] iterations. Every record offset is masked with
//! `MAX_RECORD - 1` and every length bounded by `MAX_RECORD`, and the scratch
//! buffer is [`SCRATCH_LEN`] bytes, so any masked offset plus any bounded
//! length stays inside the buffer without further checks.
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
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::generated::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_loop, bpf_probe_read_kernel,
        bpf_probe_read_user_str, bpf_ringbuf_output, bpf_ringbuf_query,
    },
    macros::{map, raw_tracepoint},
    maps::{Array, PerCpuArray, RingBuf},
    programs::RawTracePointContext,
};
use wasmtap_abi::{
    COMM_LEN, Config, FilterField, HEADER_LEN, MAX_FILTERS, MAX_OPS, MAX_PROBES, MAX_RECORD,
    MAX_SYSCALLS, NO_PROBE, OpCode, PROBES_PER_SYSCALL, Plan, STR_STATUS_LEN, SyscallRoute,
};

/// GPL-only helpers (bpf_probe_read_*) need a GPL-compatible license; the
/// kernel accepts "Dual MIT/GPL".
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";

/// Default ring buffer size; the host may resize it before loading.
const DEFAULT_RING_BYTES: u32 = 8 << 20;

/// Bytes of one scratch record buffer: a masked offset (< `MAX_RECORD`) plus
/// a bounded length (<= `MAX_RECORD`) plus the string status word always
/// fits, so the verifier needs no per-op range checks.
const SCRATCH_LEN: usize = 2 * MAX_RECORD + 64;

/// Mask applied to every record offset and variable length.
const RECORD_MASK: usize = MAX_RECORD - 1;
/// Mask that bounds a whole-record length for the verifier: at least
/// `MAX_RECORD`, at most `SCRATCH_LEN`.
const SCRATCH_MASK: u64 = (2 * MAX_RECORD - 1) as u64;
const _: () = assert!(SCRATCH_MASK as usize <= SCRATCH_LEN);

/// Byte offset of `orig_ax` (the syscall number) in x86_64 `struct pt_regs`.
const ORIG_AX_OFFSET: usize = 15 * 8;

/// Scratch slot used by `sys_enter`.
const SCRATCH_ENTER: u32 = 0;
/// Scratch slot used by `sys_exit`.
const SCRATCH_EXIT: u32 = 1;

#[map]
static PLANS: Array<Plan> = Array::with_max_entries(MAX_PROBES, 0);

#[map]
static SYS_ENTER_ROUTES: Array<SyscallRoute> = Array::with_max_entries(MAX_SYSCALLS, 0);

#[map]
static SYS_EXIT_ROUTES: Array<SyscallRoute> = Array::with_max_entries(MAX_SYSCALLS, 0);

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
static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(2, 0);

/// What the op callback needs; lives on the program's stack and is passed
/// to `bpf_loop` by pointer.
#[repr(C)]
struct Run {
    /// The plan being executed (a `PLANS` map value).
    plan: *const Plan,
    /// The record being assembled (a `SCRATCH` map value).
    buf: *mut u8,
    /// The traced task's `struct pt_regs *`.
    regs: u64,
    /// The syscall number.
    nr: u64,
    /// The syscall return value (0 at entry).
    ret: u64,
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let nr: u64 = ctx.arg(1);
    handle(&SYS_ENTER_ROUTES, SCRATCH_ENTER, regs, nr, 0);
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> i32 {
    let regs: u64 = ctx.arg(0);
    let ret: u64 = ctx.arg(1);
    // SAFETY: `regs` is the kernel's `struct pt_regs *` for this syscall;
    // bpf_probe_read_kernel faults safely on a bad address.
    let nr = unsafe { read_kernel_u64(regs + ORIG_AX_OFFSET as u64) };
    handle(&SYS_EXIT_ROUTES, SCRATCH_EXIT, regs, nr, ret);
    0
}

/// Runs every probe routed to syscall `nr`.
///
/// This runs for every syscall of the system, so the common case (no probe
/// on this syscall) returns after one array lookup.
#[inline(always)]
fn handle(routes: &Array<SyscallRoute>, scratch: u32, regs: u64, nr: u64, ret: u64) {
    if nr >= MAX_SYSCALLS as u64 {
        return;
    }
    let Some(route) = routes.get_ptr(nr as u32) else {
        return;
    };
    // SAFETY: `route` is a live map value of type SyscallRoute.
    if unsafe { (*route).probes[0] } == NO_PROBE {
        return;
    }
    // SAFETY: helper without memory arguments.
    let pid_tgid = unsafe { bpf_get_current_pid_tgid() };
    let Some(config) = CONFIG.get(0) else {
        return;
    };
    if (pid_tgid >> 32) as u32 == config.host_tgid {
        return;
    }
    let wakeup_bytes = config.wakeup_bytes as u64;
    let Some(buf) = SCRATCH.get_ptr_mut(scratch) else {
        return;
    };
    // SAFETY: helper without memory arguments.
    let uid_gid = unsafe { bpf_get_current_uid_gid() };
    let mut run = Run {
        plan: core::ptr::null(),
        buf: buf as *mut u8,
        regs,
        nr,
        ret,
    };
    for slot in 0..PROBES_PER_SYSCALL {
        // SAFETY: `route` is a live map value of type SyscallRoute.
        let probe = unsafe { (*route).probes[slot] };
        if probe == NO_PROBE {
            break;
        }
        let Some(plan) = PLANS.get_ptr(probe as u32) else {
            continue;
        };
        // SAFETY: `plan` is a live map value of type Plan.
        let plan = unsafe { &*plan };
        run.plan = plan;
        run_probe(
            probe as u32,
            plan,
            &mut run,
            pid_tgid,
            uid_gid,
            wakeup_bytes,
        );
    }
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
    let dst = op.dst as usize & RECORD_MASK;
    // SAFETY: dst < MAX_RECORD and every write below is at most
    // MAX_RECORD + STR_STATUS_LEN bytes long, inside SCRATCH_LEN.
    let out = unsafe { run.buf.add(dst) };
    let value: u64 = match OpCode::from_u8(op.code) {
        Some(OpCode::PidTgid) => unsafe { bpf_get_current_pid_tgid() },
        Some(OpCode::UidGid) => unsafe { bpf_get_current_uid_gid() },
        Some(OpCode::KtimeNs) => unsafe { bpf_ktime_get_ns() },
        Some(OpCode::Cpu) => unsafe { bpf_get_smp_processor_id() as u64 },
        Some(OpCode::SyscallNr) => run.nr,
        Some(OpCode::RetVal) => run.ret,
        Some(OpCode::Arg) => syscall_arg(run.regs, op.arg),
        Some(OpCode::Comm) => {
            // SAFETY: COMM_LEN bytes at `out` are inside the scratch buffer.
            unsafe { bpf_get_current_comm(out as *mut c_void, COMM_LEN as u32) };
            return 0;
        }
        Some(OpCode::UserStr) => {
            let ptr = syscall_arg(run.regs, op.arg);
            let len = op.len as usize & RECORD_MASK;
            // SAFETY: `out + STR_STATUS_LEN + len` stays inside the scratch
            // buffer; the helper faults safely on a bad user pointer.
            let rc = unsafe {
                bpf_probe_read_user_str(
                    out.add(STR_STATUS_LEN) as *mut c_void,
                    len as u32,
                    ptr as *const c_void,
                )
            };
            // The helper counts the NUL; the status excludes it.
            let status = (if rc > 0 { rc - 1 } else { rc }) as i32;
            // SAFETY: four bytes at `out` are inside the scratch buffer.
            unsafe { (out as *mut i32).write_unaligned(status) };
            return 0;
        }
        // Ops this program does not implement write nothing.
        _ => return 0,
    };
    // SAFETY: eight bytes at `out` are inside the scratch buffer.
    unsafe { (out as *mut u64).write_unaligned(value) };
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

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any reachable call to this, so it never runs.
    loop {}
}
