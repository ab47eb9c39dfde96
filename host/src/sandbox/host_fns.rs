//! The host side of the guest: functions in module `host`, the per-store
//! state they use, and the memory limiter.

use std::io::Write;

use wasmtap_abi::wasm::{
    HOST_ERROR, HOST_MODULE, HOST_NOW_NS, HOST_RANDOM, HOST_STACK, HOST_TARGET, HOST_WRITE,
    stack::{KERNEL_FRAMES, KERNEL_STACK, SYMDATA, SYMNAME},
    str_len, str_ptr,
};
use wasmtime::{Caller, Linker, Memory, ResourceLimiter};

use super::error::{MemoryLimitHit, OutputFailed, RuntimePanic, ScriptRaised};

/// Prefix of a runtime panic's message (see `wasmtap_guest::PANIC_PREFIX`).
pub(crate) const PANIC_PREFIX: &str = "wasmtap runtime panic: ";
/// Longest error message read from the guest.
const MAX_MESSAGE: usize = 4096;

/// Per-instance state of a store.
pub(crate) struct HostState {
    pub out: Box<dyn Write + Send>,
    /// The runtime's memory, once instantiated.
    pub memory: Option<Memory>,
    pub limiter: MemoryLimiter,
    rng: u64,
    /// Unwinding and symbolization for `host.stack`, created on first use.
    stacks: Option<Box<crate::stacks::Stacks>>,
    /// Time spent in `host.stack` not yet credited to the handler: reading
    /// binaries and symbols is the host's work, not the script's, so it
    /// does not count against the CPU budget (see [`Self::on_deadline`]).
    host_time: std::time::Duration,
    /// What `host.target` answers (see [`super::SandboxConfig::target_pid`]).
    pub target_pid: u32,
    /// See [`super::SandboxConfig::kernel_symbols`].
    pub kernel_symbols: bool,
}

impl HostState {
    pub fn new(out: Box<dyn Write + Send>, memory_limit: usize) -> Self {
        Self {
            out,
            memory: None,
            limiter: MemoryLimiter {
                limit: memory_limit,
                hit: false,
            },
            rng: seed(),
            stacks: None,
            host_time: std::time::Duration::ZERO,
            target_pid: 0,
            kernel_symbols: true,
        }
    }

    /// The epoch deadline passed: extend it by the ticks the host spent in
    /// `host.stack` since the last time (epochs advance every `tick`), or
    /// interrupt the handler if there are none.
    pub fn on_deadline(&mut self, tick: std::time::Duration) -> wasmtime::UpdateDeadline {
        let owed = self.host_time.as_nanos() / tick.as_nanos().max(1);
        self.host_time = std::time::Duration::ZERO;
        match u64::try_from(owed) {
            Ok(ticks) if ticks > 0 => wasmtime::UpdateDeadline::Continue(ticks),
            _ => wasmtime::UpdateDeadline::Interrupt,
        }
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64: fast, and the seed comes from the kernel.
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn seed() -> u64 {
    let mut buf = [0u8; 8];
    // SAFETY: getrandom writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n == 8 {
        u64::from_ne_bytes(buf)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        t ^ u64::from(std::process::id()) << 32
    }
}

/// Caps linear memory. Growing past the limit raises [`MemoryLimitHit`]
/// (a trap-like error) instead of failing the grow, so an out-of-memory
/// guest stops at once and is reported as such rather than as a confusing
/// follow-up failure; `hit` remembers it for errors the guest reports
/// itself.
pub(crate) struct MemoryLimiter {
    pub limit: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Err(wasmtime::Error::new(MemoryLimitHit { limit: self.limit }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

fn guest_bytes(memory: &[u8], ptr: u32, len: u32) -> Option<&[u8]> {
    let start = ptr as usize;
    memory.get(start..start.checked_add(len as usize)?)
}

fn memory_of(caller: &Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    caller
        .data()
        .memory
        .ok_or_else(|| wasmtime::Error::msg("the runtime's memory is not linked yet"))
}

fn now_ns(clock: i32) -> i64 {
    let id = if clock == 1 {
        libc::CLOCK_MONOTONIC
    } else {
        libc::CLOCK_REALTIME
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes `ts`.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec)
}

/// Defines the `host` functions.
pub(crate) fn define(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HOST_WRITE,
        |mut caller: Caller<'_, HostState>, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let memory = memory_of(&caller)?;
            let (data, state) = memory.data_and_store_mut(&mut caller);
            let bytes = guest_bytes(data, ptr as u32, len as u32)
                .ok_or_else(|| wasmtime::Error::msg("host.write outside memory"))?;
            state
                .out
                .write_all(bytes)
                .map_err(|e| wasmtime::Error::new(OutputFailed(e)))
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HOST_ERROR,
        |caller: Caller<'_, HostState>, msg: i64| -> wasmtime::Result<()> {
            let memory = memory_of(&caller)?;
            let len = str_len(msg).min(MAX_MESSAGE as u32);
            let bytes = guest_bytes(memory.data(&caller), str_ptr(msg), len).unwrap_or(b"?");
            let text = String::from_utf8_lossy(bytes).into_owned();
            Err(match text.strip_prefix(PANIC_PREFIX) {
                Some(rest) => wasmtime::Error::new(RuntimePanic(format!("runtime panic: {rest}"))),
                None => wasmtime::Error::new(ScriptRaised(text)),
            })
        },
    )?;
    linker.func_wrap(HOST_MODULE, HOST_NOW_NS, |clock: i32| -> i64 {
        now_ns(clock)
    })?;
    linker.func_wrap(
        HOST_MODULE,
        HOST_RANDOM,
        |mut caller: Caller<'_, HostState>| -> i64 { caller.data_mut().next_random() as i64 },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HOST_TARGET,
        |caller: Caller<'_, HostState>| -> i64 { i64::from(caller.data().target_pid) },
    )?;
    linker.func_wrap(HOST_MODULE, HOST_STACK, stack)?;
    Ok(())
}

/// `host.stack`: see [`wasmtap_abi::wasm::HOST_STACK`].
#[expect(clippy::too_many_arguments, reason = "the import's Wasm signature")]
fn stack(
    mut caller: Caller<'_, HostState>,
    op: i32,
    pid: i64,
    value: i64,
    in_ptr: i32,
    in_len: i32,
    out_ptr: i32,
    out_cap: i32,
) -> wasmtime::Result<i32> {
    let memory = memory_of(&caller)?;
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let input = guest_bytes(data, in_ptr as u32, in_len as u32)
        .ok_or_else(|| wasmtime::Error::msg("host.stack input outside memory"))?;
    let started = std::time::Instant::now();
    let kernel_op = matches!(op, KERNEL_STACK | KERNEL_FRAMES | SYMNAME | SYMDATA);
    let text = if kernel_op && !state.kernel_symbols {
        // Denied by the policy: addresses stay unnamed.
        match op {
            SYMNAME | SYMDATA => format!("{:#x}", value as u64),
            _ => String::new(),
        }
    } else {
        let stacks = state.stacks.get_or_insert_with(Default::default);
        stacks.op(op, pid as u32, value as u64, input)
    };
    state.host_time += started.elapsed();
    let len = i32::try_from(text.len()).unwrap_or(i32::MAX);
    if len <= out_cap {
        let start = out_ptr as u32 as usize;
        let out = data
            .get_mut(start..start + text.len())
            .ok_or_else(|| wasmtime::Error::msg("host.stack output outside memory"))?;
        out.copy_from_slice(text.as_bytes());
    }
    Ok(len)
}
