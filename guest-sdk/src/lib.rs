//! The guest runtime of wasmtap scripts.
//!
//! Every compiled script runs as two Wasm modules: this runtime, built once
//! for `wasm32-unknown-unknown` and precompiled by the host, and the script
//! module the compiler generates. The runtime owns the linear memory and
//! everything that would be bulky to generate per script: strings, printf,
//! associative arrays, statistics and histograms, sorted iteration. The
//! script imports these as the functions listed in
//! [`wasmtap_abi::wasm::RUNTIME_FUNCS`]; [`exports`] defines them with exactly
//! those names and signatures.
//!
//! The same crate is the SDK for plugins, tools written in Rust instead of
//! a script: see [`plugin`] and `docs/plugins.md`.
//!
//! The logic lives in [`Runtime`], which works on [`Str`] handles rather than
//! packed `i64` values, so native builds (with `std`) can unit-test it with
//! `cargo test -p wasmtap-guest`; only the thin packing layer in [`exports`]
//! is Wasm-specific. Semantics follow SystemTap's runtime wherever a script
//! can observe them (printf flags, `text_str`, `tokenize`, histogram layout,
//! error messages).
#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

pub mod arena;
pub mod exports;
pub mod fmt;
pub mod host;
pub mod map;
pub mod plugin;
pub mod regex;
pub mod rt;
pub mod stack;
pub mod stat;
pub mod strings;
pub mod syscalls;

pub use rt::{Runtime, Str};

/// The ABI crate, for the macros of [`plugin`].
#[doc(hidden)]
pub use wasmtap_abi as __abi;

/// The allocator of the Wasm build: dlmalloc, the allocator Rust's own
/// `std` uses on wasm32, well tested and fast for the many small, long-lived
/// allocations maps make. Short-lived strings never reach it: they live in
/// the scratch [`arena`].
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// Prefix of the message a runtime panic hands to `host.error`, so the host
/// can tell a runtime bug (the instance must be dropped) from a script's
/// run-time error (the instance stays usable).
pub const PANIC_PREFIX: &str = "wasmtap runtime panic: ";

/// Reports a runtime panic (a bug, or an allocation failure) to the host
/// through `host.error`, which never returns. The message text is kept only
/// when it is a plain string, plus the source location: formatting arbitrary
/// panic arguments would pull `core::fmt` into the runtime.
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut msg = alloc::vec::Vec::with_capacity(128);
    msg.extend_from_slice(PANIC_PREFIX.as_bytes());
    msg.extend_from_slice(info.message().as_str().unwrap_or("panic").as_bytes());
    if let Some(loc) = info.location() {
        msg.extend_from_slice(b" at ");
        msg.extend_from_slice(loc.file().as_bytes());
        msg.push(b':');
        fmt::push_i64(&mut msg, loc.line() as i64);
    }
    host::error(&msg)
}
