//! A plugin that misbehaves on purpose, one way per cargo feature, so the
//! tests can check that the host stops it like a misbehaving script: a
//! trap (`trap`), an endless loop (`spin`), an import the host does not
//! provide (`bad-import`).
#![no_std]

extern crate alloc;

use wasmtap_guest::plugin::{Event, Plugin, ProbeId, ProbeSpec};
use wasmtap_guest::{export_plugin, outln, probes};

probes! {
    BEGIN = "begin" [];
    TICK = "timer.ms(20)" [];
    END = "end" [];
}

#[cfg(feature = "bad-import")]
#[link(wasm_import_module = "host")]
unsafe extern "C" {
    fn no_such_function() -> i64;
}

struct Misbehave;

impl Plugin for Misbehave {
    const PROBES: &'static [ProbeSpec<'static>] = PROBES;

    fn new() -> Self {
        Misbehave
    }

    fn event(&mut self, _event: &Event<'_>) {}

    fn probe(&mut self, probe: ProbeId) {
        match probe {
            BEGIN => outln!("begin ran"),
            END => outln!("end ran"),
            _ => misbehave(),
        }
    }
}

#[cfg(feature = "trap")]
fn misbehave() {
    core::arch::wasm32::unreachable()
}

#[cfg(feature = "spin")]
fn misbehave() {
    let mut n: u64 = 0;
    loop {
        // Volatile so the loop is not optimized away.
        // SAFETY: a read and a write of a local.
        unsafe { core::ptr::write_volatile(&mut n, core::ptr::read_volatile(&n) + 1) };
    }
}

#[cfg(feature = "bad-import")]
fn misbehave() {
    // SAFETY: never runs: the host refuses the module first.
    outln!("{}", unsafe { no_such_function() });
}

#[cfg(not(any(feature = "trap", feature = "spin", feature = "bad-import")))]
fn misbehave() {}

export_plugin!(Misbehave);
