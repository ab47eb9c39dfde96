//! profile: samples every CPU at 99 Hz and prints the most frequent stacks
//! in the folded format flame graph tools read (`comm;frame;frame count`),
//! kernel frames after user frames, outermost first.
//!
//! Frames are raw addresses (`0x...`): the host's symbolization import is
//! not part of the plugin ABI yet.
#![no_std]

extern crate alloc;

use alloc::string::String;
use core::fmt::Write as _;
use wasmtap_guest::plugin::{Event, LongMap, Plugin, ProbeId, ProbeSpec};
use wasmtap_guest::{export_plugin, outln, probes};

probes! {
    SAMPLE = "perf.sw.cpu_clock.sample(10101010)" [Comm, UserStack { frames: 32 }, KernelStack { frames: 32 }];
    END = "end" [];
}

/// How many stacks `end` prints.
const TOP: usize = 20;

struct Profile {
    /// Samples by folded stack.
    stacks: LongMap<String>,
}

impl Plugin for Profile {
    const PROBES: &'static [ProbeSpec<'static>] = PROBES;

    fn new() -> Self {
        Self {
            stacks: LongMap::new(0),
        }
    }

    fn event(&mut self, e: &Event<'_>) {
        let mut folded = String::from(e.comm());
        let user: alloc::vec::Vec<u64> = e.user_stack().collect();
        let kernel: alloc::vec::Vec<u64> = e.kernel_stack().collect();
        for pc in user.iter().rev().chain(kernel.iter().rev()) {
            let _ = write!(folded, ";{pc:#x}");
        }
        self.stacks.add(folded.as_str(), 1);
    }

    fn probe(&mut self, probe: ProbeId) {
        if probe == END {
            for entry in self.stacks.top(TOP) {
                outln!("{} {}", entry.key[0], entry.value);
            }
        }
    }
}

export_plugin!(Profile);
