//! syslatency: how long `read` takes, as a log2 histogram of nanoseconds
//! per process name, printed at the end (stap's `@hist_log`). Entries and
//! returns pair up by thread id.
#![no_std]

extern crate alloc;

use alloc::string::ToString;
use wasmtap_guest::plugin::{Event, LongMap, Plugin, ProbeId, ProbeSpec, StatsMap};
use wasmtap_guest::{export_plugin, outln, probes};

probes! {
    READ = "syscall.read" [Tid, TimeNs];
    READ_RETURN = "syscall.read.return" [Tid, TimeNs, Comm];
    END = "end" [];
}

struct SysLatency {
    /// Entry time of the reads in flight, by thread.
    started: LongMap<u32>,
    /// Latencies by process name.
    latency: StatsMap<alloc::string::String>,
}

impl Plugin for SysLatency {
    const PROBES: &'static [ProbeSpec<'static>] = PROBES;

    fn new() -> Self {
        Self {
            started: LongMap::new(0),
            latency: StatsMap::new(0),
        }
    }

    fn event(&mut self, e: &Event<'_>) {
        match e.probe() {
            READ => self.started.set(e.tid(), e.time_ns() as i64),
            READ_RETURN => {
                if let Some(start) = self.started.remove(e.tid()) {
                    self.latency.add(e.comm(), e.time_ns() as i64 - start);
                }
            }
            _ => {}
        }
    }

    fn probe(&mut self, probe: ProbeId) {
        if probe != END {
            return;
        }
        for entry in self.latency.top(10) {
            let comm = entry.key[0].to_string();
            outln!(
                "{comm}: {} reads, avg {} ns, max {} ns",
                entry.value,
                self.latency.avg(&comm),
                self.latency.max(&comm)
            );
            self.latency.print_hist_log(&comm);
        }
    }
}

export_plugin!(SysLatency);
