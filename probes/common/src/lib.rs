//! The contract between the four parts of wasmtap.
//!
//! The compiler writes [`Plan`]s (what the kernel copies when a probe fires)
//! and computes the record layout; the eBPF programs in `probes/ebpf` execute
//! the plans and emit records that start with a [`RecordHeader`]; the host
//! places plans in BPF maps and copies records into the guest; the generated
//! Wasm reads the record fields at the constant offsets the compiler chose.
//! The [`wasm`] module fixes how the generated code and the guest runtime
//! exchange values.
//!
//! Everything here is `no_std`, `#[repr(C)]` and `Copy` with explicit padding,
//! so the same bytes mean the same thing in the kernel, the host and the guest.
#![no_std]

pub mod plugin;
pub mod sysarg;
pub mod wasm;

/// Bumped whenever a layout or an opcode below changes meaning.
pub const ABI_VERSION: u32 = 3;

/// Largest record a plan may describe, header included. A power of two: the
/// eBPF side masks offsets with `MAX_RECORD - 1` to satisfy the verifier.
pub const MAX_RECORD: usize = 8192;
/// Records are padded to this alignment inside a batch.
pub const RECORD_ALIGN: usize = 8;
/// Ops per plan; the interpreter runs them in one `bpf_loop`.
pub const MAX_OPS: usize = 64;
/// In-kernel predicates per plan, all of which must hold.
pub const MAX_FILTERS: usize = 4;
/// Probe ids are below this; it sizes the plan and counter maps.
pub const MAX_PROBES: u32 = 4096;
/// Syscall numbers are below this (x86_64 has ~460).
pub const MAX_SYSCALLS: u32 = 512;
/// Probes that may share one event: a syscall (e.g. `syscall.*` and
/// `syscall.openat`), a tracepoint or a perf sampling period.
pub const PROBES_PER_ROUTE: usize = 8;
/// Tracepoints that may carry probes at once (entries of the tracepoint
/// route map).
pub const MAX_TRACEPOINTS: u32 = 1024;
/// Distinct perf sampling periods that may carry probes at once.
pub const MAX_PERF_PERIODS: u32 = 64;
/// Marks an unused slot in a [`ProbeRoute`].
pub const NO_PROBE: u16 = u16::MAX;
/// Length of `comm` (TASK_COMM_LEN).
pub const COMM_LEN: usize = 16;

/// Names of the maps and programs in the eBPF object, shared so the host
/// finds exactly what the probes define.
pub mod names {
    /// `Array<Plan>` indexed by probe id.
    pub const PLANS: &str = "PLANS";
    /// `Array<ProbeRoute>` indexed by syscall number, for `sys_enter`.
    pub const SYSCALL_ENTER_ROUTES: &str = "SYS_ENTER_ROUTES";
    /// `Array<ProbeRoute>` indexed by syscall number, for `sys_exit`.
    pub const SYSCALL_EXIT_ROUTES: &str = "SYS_EXIT_ROUTES";
    /// `HashMap<u32, ProbeRoute>` keyed by tracepoint event id (tracefs
    /// `events/SYSTEM/EVENT/id`), which the host passes as each tracepoint
    /// link's BPF cookie.
    pub const TRACEPOINT_ROUTES: &str = "TP_ROUTES";
    /// `HashMap<u64, ProbeRoute>` keyed by perf sampling period (aya cannot
    /// give perf links a cookie, so the period tells the probes apart).
    pub const PERF_ROUTES: &str = "PERF_ROUTES";
    /// `Array<Config>` with one entry.
    pub const CONFIG: &str = "CONFIG";
    /// The ring buffer all records go through.
    pub const EVENTS: &str = "EVENTS";
    /// `PerCpuArray<u64>` indexed by probe id: records lost because the ring
    /// buffer was full.
    pub const DROPS: &str = "DROPS";
    /// Raw tracepoint program for `raw_syscalls:sys_enter`.
    pub const PROG_SYS_ENTER: &str = "sys_enter";
    /// Raw tracepoint program for `raw_syscalls:sys_exit`.
    pub const PROG_SYS_EXIT: &str = "sys_exit";
    /// Classic tracepoint program, attached to every traced event and
    /// routed by the event id (the link's cookie).
    pub const PROG_TRACEPOINT: &str = "trace_event";
    /// uprobe program; the probe id is the attach cookie.
    pub const PROG_UPROBE: &str = "uprobe_entry";
    /// uretprobe program; the probe id is the attach cookie.
    pub const PROG_URETPROBE: &str = "uprobe_return";
    /// [`PROG_UPROBE`] for uprobe_multi links (kernel 6.6+), whose program
    /// load needs another expected attach type: one link carries many
    /// probes, a cookie per offset, and detaches in one RCU grace period.
    pub const PROG_UPROBE_MULTI: &str = "uprobe_entry_multi";
    /// [`PROG_URETPROBE`] for uprobe_multi links.
    pub const PROG_URETPROBE_MULTI: &str = "uprobe_return_multi";
    /// perf_event program, attached on every online CPU and routed by the
    /// sample period.
    pub const PROG_PERF: &str = "perf_sample";
}

/// Starts every record in the ring buffer and in a guest batch.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// Which probe fired; indexes the manifest's probe list.
    pub probe: u32,
    /// Length of the record in bytes, header included, before padding.
    pub len: u32,
}

/// Size of [`RecordHeader`]; the first plan field starts here.
pub const HEADER_LEN: usize = core::mem::size_of::<RecordHeader>();

/// What one plan op copies. Each op writes at `PlanOp::dst` in the record.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpCode {
    /// Does nothing; pads plans.
    Nop = 0,
    /// u64 `tgid << 32 | tid` (bpf_get_current_pid_tgid).
    PidTgid = 1,
    /// u64 `gid << 32 | uid` (bpf_get_current_uid_gid).
    UidGid = 2,
    /// [`COMM_LEN`] bytes of the current task's name, NUL padded.
    Comm = 3,
    /// u64 CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
    KtimeNs = 4,
    /// u64 CPU number.
    Cpu = 5,
    /// u64 syscall number (syscall programs only).
    SyscallNr = 6,
    /// u64 argument number `arg` of the event: syscall arguments 0..=5.
    Arg = 7,
    /// u64 return value (syscall exit).
    RetVal = 8,
    /// String slot read from the user pointer in argument `arg`: an i32
    /// status (bytes copied without the NUL, or a negative errno) followed by
    /// at most `len` bytes. The slot is `4 + len` bytes long.
    UserStr = 9,
    /// The strings of a user `char **` array in syscall argument `arg`
    /// (execve's argv): an i32 count of strings read (a negative errno when
    /// the array itself cannot be read), then at most `len` bytes holding
    /// the strings back to back, each NUL-terminated. At most `src` strings
    /// (capped at [`MAX_ARGV`]); a string that does not fit ends the list.
    UserStrArray = 10,
    /// `len` bytes (at most [`MAX_CTX_FIELD`]) at byte `src` of the event
    /// context: a tracepoint's trace entry (its `format` offsets; the
    /// `common_*` fields in the first 8 bytes are not available to BPF, the
    /// kernel overwrites them), or the `pt_regs` of a uprobe or perf sample.
    /// Zero-filled when unreadable.
    CtxField = 11,
    /// A string slot (i32 status, then at most `len` bytes, like
    /// [`OpCode::UserStr`]) read from the `__data_loc` field at byte `src` of
    /// a tracepoint's trace entry (u32: offset from the entry's start in the
    /// low 16 bits, length in the high 16).
    CtxDataLoc = 12,
    /// The user stack as return addresses (bpf_get_stack with
    /// BPF_F_USER_STACK): an i32 byte count (negative errno), 4 bytes of
    /// padding, then at most `len` bytes of u64 addresses, innermost first.
    UserStack = 13,
    /// The kernel stack, laid out like [`OpCode::UserStack`].
    KernelStack = 14,
    /// What a host-side DWARF unwinder needs: u64 user ip, u64 user sp, u64
    /// user bp, an i32 status (bytes copied from sp, or a negative errno), 4
    /// bytes of padding, then at most `len` bytes of user stack from sp up.
    UserRegsStack = 15,
    /// The current task and its ancestors through `real_parent`: a u32
    /// count, 4 bytes of padding, then `count` [`TaskEntry`]s, current task
    /// first, stopping after pid 1 (or the idle task), at most
    /// `min(len / TASK_ENTRY_LEN, MAX_TASK_CHAIN)` entries. Offsets come
    /// from [`Config::task`].
    TaskChain = 16,
    /// u64 tgid of the current task's `real_parent`.
    ParentTgid = 17,
    /// u64 `egid << 32 | euid` of the current task's credentials.
    EuidEgid = 18,
    /// A string slot (like [`OpCode::UserStr`]) with the current process's
    /// command line (`mm->arg_start..arg_end`, NUL separators kept), cut at
    /// `len` bytes; empty (status 0) for kernel threads.
    Cmdline = 19,
    /// u64 at byte `src` of the event's `pt_regs` (uprobe, uretprobe and
    /// perf programs: the context, which for a perf sample taken in kernel
    /// mode holds kernel registers; syscall and tracepoint programs: the
    /// task's saved user registers).
    Reg = 20,
    /// `len` bytes (at most [`MAX_CTX_FIELD`]) of user memory at
    /// `base + disp` (bpf_probe_read_user), behind a [`USER_READ_HEADER_LEN`]
    /// header: an i32 status (bytes copied, or a negative errno), 4 bytes of
    /// padding, and the u64 address read from. `arg` names the base (see
    /// [`ReadBase`]): with [`ReadBase::Reg`] it is the u64 at byte `src` of
    /// the event's `pt_regs` (a pointer parameter, `sp` for stack-passed
    /// parameters, a syscall argument's register); with [`ReadBase::Slot`]
    /// it is the first data u64 of the earlier `UserRead` slot at record
    /// offset `src`, so `$a->b->c` is one op per dereference. When that
    /// earlier slot holds a fault, this slot copies its status and address
    /// and reads nothing: the last slot of a chain tells whether the chain
    /// read. The data is zero-filled on a fault.
    UserRead = 21,
    /// A NUL-terminated user string at `base + disp` (base as for
    /// [`OpCode::UserRead`]), at most `len` bytes: the same 16-byte header
    /// (i32 status: bytes copied without the NUL or a negative errno,
    /// padding, u64 address), then the bytes. A faulted base slot is
    /// propagated as for `UserRead`.
    UserStrAt = 22,
    /// u64 `exit_code` of the current task (`Config::task`): the status
    /// `do_exit` was given (`status << 8`, or the signal that killed it),
    /// set before `sched_process_exit` fires.
    ExitCode = 23,
}

/// Where a [`OpCode::UserRead`] or [`OpCode::UserStrAt`] finds its base
/// address, stored in [`PlanOp::arg`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadBase {
    /// The u64 at byte `src` of the event's `pt_regs`.
    Reg = 0,
    /// The pointer in the earlier `UserRead` slot at record offset `src`.
    Slot = 1,
}

/// Bytes in front of the data of a [`OpCode::UserRead`] or
/// [`OpCode::UserStrAt`] slot: i32 status, 4 bytes of padding, u64 address.
pub const USER_READ_HEADER_LEN: usize = 16;

impl OpCode {
    /// Decodes a byte written by [`PlanOp::new`]; unknown bytes are `None`.
    pub fn from_u8(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::Nop,
            1 => Self::PidTgid,
            2 => Self::UidGid,
            3 => Self::Comm,
            4 => Self::KtimeNs,
            5 => Self::Cpu,
            6 => Self::SyscallNr,
            7 => Self::Arg,
            8 => Self::RetVal,
            9 => Self::UserStr,
            10 => Self::UserStrArray,
            11 => Self::CtxField,
            12 => Self::CtxDataLoc,
            13 => Self::UserStack,
            14 => Self::KernelStack,
            15 => Self::UserRegsStack,
            16 => Self::TaskChain,
            17 => Self::ParentTgid,
            18 => Self::EuidEgid,
            19 => Self::Cmdline,
            20 => Self::Reg,
            21 => Self::UserRead,
            22 => Self::UserStrAt,
            23 => Self::ExitCode,
            _ => return None,
        })
    }

    /// Bytes the op writes at `dst`, given its `len` operand.
    pub fn width(self, len: u16) -> usize {
        match self {
            Self::Nop => 0,
            Self::Comm => COMM_LEN,
            Self::UserStr | Self::CtxDataLoc | Self::Cmdline | Self::UserStrArray => {
                STR_STATUS_LEN + len as usize
            }
            Self::CtxField => len as usize,
            Self::UserStack | Self::KernelStack => STACK_HEADER_LEN + len as usize,
            Self::UserRegsStack => REGS_STACK_HEADER_LEN + len as usize,
            Self::TaskChain => TASK_CHAIN_HEADER_LEN + len as usize,
            Self::UserRead | Self::UserStrAt => USER_READ_HEADER_LEN + len as usize,
            _ => 8,
        }
    }
}

/// Size of the status word in front of a string slot.
pub const STR_STATUS_LEN: usize = 4;
/// Bytes in front of the addresses of a [`OpCode::UserStack`] slot.
pub const STACK_HEADER_LEN: usize = 8;
/// Bytes in front of the stack copy of a [`OpCode::UserRegsStack`] slot.
pub const REGS_STACK_HEADER_LEN: usize = 32;
/// Bytes in front of the entries of a [`OpCode::TaskChain`] slot.
pub const TASK_CHAIN_HEADER_LEN: usize = 8;
/// Frames a stack slot holds at most (the kernel's default
/// `perf_event_max_stack`).
pub const MAX_STACK_FRAMES: usize = 127;
/// Ancestors a [`OpCode::TaskChain`] copies at most.
pub const MAX_TASK_CHAIN: usize = 32;
/// Strings a [`OpCode::UserStrArray`] reads at most.
pub const MAX_ARGV: usize = 32;
/// Bytes a [`OpCode::CtxField`] copies at most.
pub const MAX_CTX_FIELD: usize = 256;

/// One task of a [`OpCode::TaskChain`].
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskEntry {
    /// Process id (`task->tgid`).
    pub tgid: u32,
    /// Thread id (`task->pid`).
    pub pid: u32,
    /// Real user id (`task->real_cred->uid`).
    pub uid: u32,
    /// Effective user id (`task->real_cred->euid`).
    pub euid: u32,
    /// `task->comm`, NUL padded.
    pub comm: [u8; COMM_LEN],
}

/// Size of [`TaskEntry`].
pub const TASK_ENTRY_LEN: usize = core::mem::size_of::<TaskEntry>();

/// One step of a capture plan.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanOp {
    /// An [`OpCode`] as a byte.
    pub code: u8,
    /// Which argument the op reads, where it reads one.
    pub arg: u8,
    /// Maximum byte count for variable-length ops.
    pub len: u16,
    /// Offset in the record where the op writes.
    pub dst: u16,
    /// Offset in the event context where the op reads (tracepoint fields,
    /// `pt_regs`), or the record offset of a base slot.
    pub src: u16,
    /// Signed displacement added to the base address of user memory reads
    /// (struct member offsets, `sp`-relative stack slots, USDT `-20(%rbp)`).
    pub disp: i32,
    pub _pad: [u8; 4],
}

impl PlanOp {
    /// An op writing `code`'s value at `dst`.
    pub const fn new(code: OpCode, dst: u16) -> Self {
        Self {
            code: code as u8,
            arg: 0,
            len: 0,
            dst,
            src: 0,
            disp: 0,
            _pad: [0; 4],
        }
    }
}

/// What a [`Filter`] compares.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterField {
    /// Process id (tgid).
    Pid = 1,
    /// Thread id.
    Tid = 2,
    /// Real user id.
    Uid = 3,
    /// Real group id.
    Gid = 4,
}

/// How a [`Filter`] compares.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FilterCmp {
    Eq = 1,
    Ne = 2,
    Lt = 3,
    Le = 4,
    Gt = 5,
    Ge = 6,
}

/// A predicate on the task context, evaluated in the kernel before anything
/// is copied, so unwanted events never reach user space.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// A [`FilterField`] as a byte; 0 marks an unused slot.
    pub field: u8,
    /// A [`FilterCmp`] as a byte.
    pub cmp: u8,
    pub _pad: [u8; 6],
    /// The value compared against (as u64; ids are unsigned).
    pub value: u64,
}

impl Filter {
    /// A filter `field cmp value`.
    pub const fn new(field: FilterField, cmp: FilterCmp, value: u64) -> Self {
        Self {
            field: field as u8,
            cmp: cmp as u8,
            _pad: [0; 6],
            value,
        }
    }

    /// Whether `actual` passes this filter; unused slots pass everything.
    pub fn admits(&self, actual: u64) -> bool {
        match self.cmp {
            1 => actual == self.value,
            2 => actual != self.value,
            3 => actual < self.value,
            4 => actual <= self.value,
            5 => actual > self.value,
            6 => actual >= self.value,
            _ => true,
        }
    }
}

/// What the kernel copies when one probe fires: the filters, then the ops.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Record length, header included; at most [`MAX_RECORD`]. 0 means the
    /// probe is not live.
    pub record_len: u16,
    /// Ops used at the start of `ops`.
    pub n_ops: u16,
    /// Filters used at the start of `filters`.
    pub n_filters: u8,
    pub _pad: [u8; 3],
    pub filters: [Filter; MAX_FILTERS],
    pub ops: [PlanOp; MAX_OPS],
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            record_len: 0,
            n_ops: 0,
            n_filters: 0,
            _pad: [0; 3],
            filters: [Filter::default(); MAX_FILTERS],
            ops: [PlanOp::default(); MAX_OPS],
        }
    }
}

/// The probes to run for one event (a syscall number, a tracepoint, a perf
/// sampling period), in order, [`NO_PROBE`] in unused slots.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeRoute {
    pub probes: [u16; PROBES_PER_ROUTE],
}

impl Default for ProbeRoute {
    fn default() -> Self {
        Self {
            probes: [NO_PROBE; PROBES_PER_ROUTE],
        }
    }
}

/// Run-wide settings the host writes before attaching.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The host's own process id: its threads are never traced, so draining
    /// the ring buffer does not feed itself.
    pub host_tgid: u32,
    /// Wake the reader once this many bytes wait in the ring buffer; below
    /// it records are submitted without a wakeup and the host drains on a
    /// timer.
    pub wakeup_bytes: u32,
    /// Kernel struct offsets for the task ops, read from BTF by the host.
    pub task: TaskOffsets,
}

/// Byte offsets of the kernel struct members the task ops read, taken from
/// the running kernel's BTF when the host loads the programs (so the eBPF
/// object needs no CO-RE relocations). All zero means "unknown": the task
/// ops then write zeros.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskOffsets {
    /// `task_struct.real_parent`.
    pub real_parent: u32,
    /// `task_struct.tgid`.
    pub tgid: u32,
    /// `task_struct.pid`.
    pub pid: u32,
    /// `task_struct.comm`.
    pub comm: u32,
    /// `task_struct.real_cred`.
    pub real_cred: u32,
    /// `task_struct.mm`.
    pub mm: u32,
    /// `cred.uid`.
    pub cred_uid: u32,
    /// `cred.euid`.
    pub cred_euid: u32,
    /// `cred.egid`.
    pub cred_egid: u32,
    /// `mm_struct.arg_start`.
    pub mm_arg_start: u32,
    /// `mm_struct.arg_end`.
    pub mm_arg_end: u32,
    /// `task_struct.exit_code`.
    pub exit_code: u32,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all are repr(C), Copy, with explicit padding and no pointers.
    unsafe impl aya::Pod for super::Plan {}
    unsafe impl aya::Pod for super::ProbeRoute {}
    unsafe impl aya::Pod for super::Config {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_fixed() {
        assert_eq!(core::mem::size_of::<RecordHeader>(), 8);
        assert_eq!(core::mem::size_of::<PlanOp>(), 16);
        assert_eq!(core::mem::size_of::<Filter>(), 16);
        assert_eq!(
            core::mem::size_of::<Plan>(),
            8 + 16 * MAX_FILTERS + 16 * MAX_OPS
        );
        assert_eq!(core::mem::size_of::<ProbeRoute>(), 16);
        assert_eq!(TASK_ENTRY_LEN, 32);
        assert_eq!(core::mem::size_of::<TaskOffsets>(), 48);
    }

    #[test]
    fn opcodes_round_trip() {
        for byte in 0..=255u8 {
            if let Some(code) = OpCode::from_u8(byte) {
                assert_eq!(code as u8, byte);
            }
        }
    }
}
