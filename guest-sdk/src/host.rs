//! The host functions the runtime imports (module `host`), and native test
//! doubles for them.
//!
//! On Wasm these are the real imports the sandbox defines. Natively (unit
//! tests) `write` appends to a thread-local buffer that [`take_output`]
//! returns, and `error` panics with a [`ScriptError`] payload so a test can
//! catch it and check the message.

#[cfg(target_arch = "wasm32")]
mod imp {
    use wasmtap_abi::wasm::pack_str;

    #[link(wasm_import_module = "host")]
    unsafe extern "C" {
        #[link_name = "write"]
        fn host_write(ptr: i32, len: i32);
        #[link_name = "error"]
        fn host_error(msg: i64) -> !;
        #[link_name = "now_ns"]
        fn host_now_ns(clock: i32) -> i64;
        #[link_name = "random"]
        fn host_random() -> i64;
        #[link_name = "target"]
        fn host_target() -> i64;
    }

    /// Hands output bytes to the host.
    pub fn write(bytes: &[u8]) {
        // SAFETY: the host only reads `len` bytes at `ptr` from our memory.
        unsafe { host_write(bytes.as_ptr() as i32, bytes.len() as i32) }
    }

    /// Raises a run-time error; the host unwinds the whole call.
    pub fn error(msg: &[u8]) -> ! {
        // SAFETY: as for `write`; the import never returns.
        unsafe { host_error(pack_str(msg.as_ptr() as u32, msg.len() as u32)) }
    }

    /// Nanoseconds of clock 0 (realtime) or 1 (monotonic).
    pub fn now_ns(clock: i32) -> i64 {
        // SAFETY: a plain value call.
        unsafe { host_now_ns(clock) }
    }

    /// 64 random bits.
    pub fn random() -> i64 {
        // SAFETY: a plain value call.
        unsafe { host_random() }
    }

    /// The `-x`/`-c` process, 0 when none.
    pub fn target() -> i64 {
        // SAFETY: a plain value call.
        unsafe { host_target() }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;

    std::thread_local! {
        static OUTPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }

    /// Appends to this thread's captured output.
    pub fn write(bytes: &[u8]) {
        OUTPUT.with(|o| o.borrow_mut().extend_from_slice(bytes));
    }

    /// Panics with a [`super::ScriptError`] carrying the message.
    pub fn error(msg: &[u8]) -> ! {
        std::panic::panic_any(super::ScriptError(
            String::from_utf8_lossy(msg).into_owned(),
        ))
    }

    /// Nanoseconds since the epoch (both clocks, natively).
    pub fn now_ns(_clock: i32) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64)
    }

    /// A fixed sequence is good enough for tests.
    pub fn random() -> i64 {
        0x2545_f491_4f6c_dd1d
    }

    /// No target natively.
    pub fn target() -> i64 {
        0
    }

    /// Returns and clears what this thread wrote through `write`.
    pub fn take_output() -> Vec<u8> {
        OUTPUT.with(|o| std::mem::take(&mut *o.borrow_mut()))
    }
}

pub use imp::*;

/// Native stand-in for a trap raised through `host.error`: the panic payload
/// carries the message.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptError(pub String);
