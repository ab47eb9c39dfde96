//! opensnoop: every `openat` with the process, the path and the result
//! (a file descriptor or a negative errno), pairing each entry with its
//! return by thread id.
#![no_std]

extern crate alloc;

use wasmtap_guest::plugin::{Event, Plugin, ProbeId, ProbeSpec, StrMap};
use wasmtap_guest::{export_plugin, outln, probes};

probes! {
    BEGIN = "begin" [];
    OPEN = "syscall.openat" [Tid, UserStr { arg: 1, max: 256 }];
    OPEN_RETURN = "syscall.openat.return" [Tid, Pid, Comm, RetVal];
}

/// Paths of the `openat` calls in flight, by thread.
struct OpenSnoop {
    pending: StrMap<u32>,
}

impl Plugin for OpenSnoop {
    const PROBES: &'static [ProbeSpec<'static>] = PROBES;

    fn new() -> Self {
        Self {
            pending: StrMap::new(0),
        }
    }

    fn probe(&mut self, probe: ProbeId) {
        if probe == BEGIN {
            outln!("{:>7} {:<16} {:>4} PATH", "PID", "COMM", "FD");
        }
    }

    fn event(&mut self, e: &Event<'_>) {
        match e.probe() {
            OPEN => self
                .pending
                .set(e.tid(), e.user_str(1).unwrap_or("<unreadable>")),
            OPEN_RETURN => {
                if let Some(path) = self.pending.remove(e.tid()) {
                    outln!("{:>7} {:<16} {:>4} {}", e.pid(), e.comm(), e.retval(), path);
                }
            }
            _ => {}
        }
    }
}

export_plugin!(OpenSnoop);
