//! exectrace: every successful exec, from the `sched:sched_process_exec`
//! tracepoint, with the fields read by name from the event's format.
#![no_std]

use wasmtap_guest::plugin::{Event, Plugin, ProbeSpec};
use wasmtap_guest::{export_plugin, outln, probes};

probes! {
    EXEC = "kernel.trace(\"sched:sched_process_exec\")" [
        Comm,
        Field { name: "pid", size: 4 },
        Field { name: "old_pid", size: 4 },
        FieldStr { name: "filename", max: 256 },
    ];
}

struct ExecTrace;

impl Plugin for ExecTrace {
    const PROBES: &'static [ProbeSpec<'static>] = PROBES;

    fn new() -> Self {
        ExecTrace
    }

    fn event(&mut self, e: &Event<'_>) {
        outln!(
            "pid={} old_pid={} comm={} filename={}",
            e.field("pid"),
            e.field("old_pid"),
            e.comm(),
            e.field_str("filename").unwrap_or("?")
        );
    }
}

export_plugin!(ExecTrace);
