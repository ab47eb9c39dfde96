//! execsnoop: every `execve` with the parent, the program and its argv,
//! and whether it succeeded.
#![no_std]

extern crate alloc;

use alloc::string::String;
use wasmtap_guest::plugin::{Event, Plugin, ProbeId, ProbeSpec, StrMap};
use wasmtap_guest::{export_plugin, outln, probes};

probes! {
    BEGIN = "begin" [];
    EXEC = "syscall.execve" [Tid, UserStr { arg: 0, max: 256 }, Argv { arg: 1, max: 1024 }];
    EXEC_RETURN = "syscall.execve.return" [Tid, Pid, ParentPid, RetVal];
}

/// Command lines of the `execve` calls in flight, by thread.
struct ExecSnoop {
    pending: StrMap<u32>,
}

impl Plugin for ExecSnoop {
    const PROBES: &'static [ProbeSpec<'static>] = PROBES;

    fn new() -> Self {
        Self {
            pending: StrMap::new(0),
        }
    }

    fn probe(&mut self, probe: ProbeId) {
        if probe == BEGIN {
            outln!("{:>7} {:>7} {:>4} ARGS", "PID", "PPID", "RET");
        }
    }

    fn event(&mut self, e: &Event<'_>) {
        match e.probe() {
            EXEC => {
                let mut line = String::from(e.user_str(0).unwrap_or("?"));
                if let Ok(argv) = e.argv(1) {
                    // argv[0] is usually the program again; show the rest.
                    for arg in argv.skip(1) {
                        line.push(' ');
                        line.push_str(arg);
                    }
                }
                self.pending.set(e.tid(), &line);
            }
            EXEC_RETURN => {
                if let Some(line) = self.pending.remove(e.tid()) {
                    outln!("{:>7} {:>7} {:>4} {}", e.pid(), e.ppid(), e.retval(), line);
                }
            }
            _ => {}
        }
    }
}

export_plugin!(ExecSnoop);
