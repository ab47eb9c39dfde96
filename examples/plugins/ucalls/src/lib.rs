//! ucalls: user-space probes on the target program (`-c CMD` or `-x PID`):
//! a function's arguments and return value, a string argument, and a USDT
//! mark's arguments, as `process.function(..)` and `process.mark(..)`
//! probes of a compiled script would read them. Written against the demo
//! program of the tests (`tests/tests/uprobes/demo.c`):
//!
//! ```text
//! wasmtap run ucalls.wasm -c ./demo
//! ```
#![no_std]

use wasmtap_guest::plugin::{Event, Plugin, ProbeId, ProbeSpec, target};
use wasmtap_guest::{export_plugin, outln, probes};

probes! {
    BEGIN = "begin" [];
    ADD = "process.function(\"add\")" [Pid, Arg(0), Arg(1)];
    ADD_RETURN = "process.function(\"add\").return" [RetVal];
    SCALE = "process.function(\"scale\")" [Arg(0), Arg(1), UserStr { arg: 2, max: 16 }];
    TICK = "process.mark(\"tick\")" [Arg(0), Arg(1)];
}

struct UCalls;

impl Plugin for UCalls {
    const PROBES: &'static [ProbeSpec<'static>] = PROBES;

    fn new() -> Self {
        UCalls
    }

    fn probe(&mut self, probe: ProbeId) {
        if probe == BEGIN {
            outln!("tracing pid {}", target());
        }
    }

    fn event(&mut self, e: &Event<'_>) {
        // Arguments are whole registers: narrow them to the C types.
        match e.probe() {
            ADD => outln!(
                "add({}, {}) in pid {}",
                e.arg(0) as i32,
                e.arg(1) as i32,
                e.pid()
            ),
            ADD_RETURN => outln!("add returned {}", e.retval() as i32),
            SCALE => outln!(
                "scale({}, {}, \"{}\")",
                e.arg(0) as i64,
                e.arg(1) as u8,
                e.user_str(2).unwrap_or("?")
            ),
            TICK => outln!("tick {} {}", e.arg(0) as i32, e.arg(1) as i64),
            _ => {}
        }
    }
}

export_plugin!(UCalls);
