//! The SDK for plugins: handlers written in Rust, run by `wasmtap run
//! plugin.wasm` in the same sandbox and under the same policy as scripts.
//!
//! A plugin is one `cdylib` crate built for `wasm32-unknown-unknown` that
//! depends on this crate. It declares its probes and what each captures
//! with [`probes!`](crate::probes), implements [`Plugin`], and exports itself
//! with [`export_plugin!`](crate::export_plugin):
//!
//! ```ignore
//! #![no_std]
//! use wasmtap_guest::plugin::{Event, Plugin, ProbeId};
//! use wasmtap_guest::{export_plugin, outln, probes};
//!
//! probes! {
//!     OPEN = "syscall.openat" [Pid, Comm, UserStr { arg: 1, max: 256 }];
//!     STOP = "timer.s(5)" [];
//! }
//!
//! struct Opens;
//! impl Plugin for Opens {
//!     const PROBES: &'static [wasmtap_guest::plugin::ProbeSpec<'static>] = PROBES;
//!     fn new() -> Self { Opens }
//!     fn event(&mut self, e: &Event<'_>) {
//!         outln!("{}({}) {}", e.comm(), e.pid(), e.user_str(1).unwrap_or("?"));
//!     }
//!     fn probe(&mut self, probe: ProbeId) {
//!         if probe == STOP { wasmtap_guest::plugin::exit() }
//!     }
//! }
//! export_plugin!(Opens);
//! ```
//!
//! The manifest lands in the module's `wasmtap.manifest` custom section; the
//! host reads it, checks it (and the module's imports) against the policy,
//! and turns each probe into a capture plan. Records are laid out by
//! [`wasmtap_abi::plugin::offset_of`], which [`Event`] uses to read them.
//! Stacks are unwound and symbolized by the host ([`stack`]); [`target`]
//! is the `-x`/`-c` process.
//! See `docs/plugins.md` for the whole guide.

mod event;
mod maps;
mod output;
#[doc(hidden)]
pub mod rt;
pub mod stack;

pub use event::{Argv, Event};
pub use maps::{Entry, Key, KeyPart, LongMap, StatsMap, StrMap};
pub use output::Out;
pub use stack::{Frame, Space, Stack, Symbol, ksym, usym};
pub use wasmtap_abi::plugin::{Capture, ProbeSpec};

/// Identifies a probe of the manifest: its index in [`Plugin::PROBES`],
/// which is also the probe id of its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProbeId(pub u32);

/// A plugin: its probes, its state and its handlers.
///
/// One value of the type lives for the whole run: [`Plugin::new`] builds it
/// before `begin`, [`Plugin::event`] runs for every record of a kernel
/// probe, [`Plugin::probe`] for the probes the host fires itself (`begin`,
/// `end`, timers).
pub trait Plugin: 'static {
    /// The probes, in manifest order (use [`probes!`](crate::probes)).
    const PROBES: &'static [ProbeSpec<'static>];

    /// The initial state (create maps here).
    fn new() -> Self;

    /// Handles one record of a kernel probe.
    fn event(&mut self, event: &Event<'_>);

    /// Runs a probe without a record (`begin`, `end`, timers). Default:
    /// nothing.
    fn probe(&mut self, probe: ProbeId) {
        let _ = probe;
    }
}

/// Ends the run after the current handler, like stap's `exit()`: the
/// `end` probes still run.
pub fn exit() {
    rt::request_exit();
}

/// Raises a run-time error, like stap's `error()`: the host prints
/// `ERROR: msg`, runs the `end` probes and exits 1.
pub fn error(msg: &str) -> ! {
    crate::host::error(msg.as_bytes())
}

/// Nanoseconds of the realtime clock (stap's `gettimeofday_ns`).
pub fn now_ns() -> i64 {
    crate::host::now_ns(0)
}

/// The process of interest, like stap's `target()`: the pid given with
/// `-x`, or the pid of the `-c` command; 0 when there is none. Every
/// kernel probe is already filtered to it in the kernel when set.
pub fn target() -> u32 {
    crate::host::target() as u32
}

/// Declares a plugin's probes: a `PROBES` constant (the manifest) and one
/// [`ProbeId`] constant per probe, numbered in order.
///
/// Each line is `NAME = "probe point" [captures];`, the captures being
/// [`Capture`] variants written without their prefix.
#[macro_export]
macro_rules! probes {
    ($($name:ident = $point:literal [$($cap:expr),* $(,)?];)*) => {
        /// The plugin's probes, in manifest order.
        pub const PROBES: &[$crate::plugin::ProbeSpec<'static>] = {
            #[allow(unused_imports)]
            use $crate::plugin::Capture::*;
            &[$($crate::plugin::ProbeSpec::new($point, &[$($cap),*])),*]
        };
        $crate::__probe_ids!(0u32; $($name)*);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __probe_ids {
    ($n:expr;) => {};
    ($n:expr; $first:ident $($rest:ident)*) => {
        #[allow(missing_docs)]
        pub const $first: $crate::plugin::ProbeId = $crate::plugin::ProbeId($n);
        $crate::__probe_ids!($n + 1; $($rest)*);
    };
}

/// Exports a [`Plugin`] type: embeds its manifest in the custom section
/// `wasmtap.manifest` and defines the entry points the host calls (`init`,
/// `handle_batch`, `run_probe`, `exit_requested`).
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[used]
        #[unsafe(link_section = "wasmtap.manifest")]
        static __WASMTAP_MANIFEST: [u8; $crate::__abi::plugin::encoded_len(
            <$plugin as $crate::plugin::Plugin>::PROBES,
        )] = $crate::__abi::plugin::encode(<$plugin as $crate::plugin::Plugin>::PROBES);

        static __WASMTAP_PLUGIN: $crate::plugin::rt::Slot<$plugin> =
            $crate::plugin::rt::Slot::new();

        /// Entry point: builds the plugin's state.
        #[unsafe(no_mangle)]
        pub extern "C" fn init() {
            $crate::plugin::rt::init(&__WASMTAP_PLUGIN)
        }

        /// Entry point: runs the handler of every record in the batch.
        #[unsafe(no_mangle)]
        pub extern "C" fn handle_batch(ptr: i32, len: i32) {
            $crate::plugin::rt::handle_batch(&__WASMTAP_PLUGIN, ptr, len)
        }

        /// Entry point: runs a probe without a record.
        #[unsafe(no_mangle)]
        pub extern "C" fn run_probe(probe: i32) {
            $crate::plugin::rt::run_probe(&__WASMTAP_PLUGIN, probe)
        }

        /// Entry point: non-zero once the plugin called `exit()`.
        #[unsafe(no_mangle)]
        pub extern "C" fn exit_requested() -> i32 {
            $crate::plugin::rt::exit_requested()
        }
    };
}
