//! profile: a top-N CPU profiler. Samples every CPU at 99 Hz, unwinds
//! each sample's user stack (DWARF CFI, so code built without frame
//! pointers gives every frame) and notes its kernel stack; at the end it
//! prints the `TOP` most frequent stacks, symbolized by the host, in
//! stap's stack report layout: frame lines innermost first (kernel frames,
//! then user frames), then a tab and the sample count.
//!
//! That layout is what `wasmtap run --output folded` folds and
//! `--flamegraph out.svg` draws, as for a script's `print_ustack()`
//! report:
//!
//! ```text
//! wasmtap run profile.wasm -c ./prog --flamegraph prog.svg
//! ```
#![no_std]

extern crate alloc;

use wasmtap_guest::plugin::{Event, KeyPart, LongMap, Plugin, ProbeId, ProbeSpec, Space, Stack};
use wasmtap_guest::{export_plugin, out, outln, probes};

probes! {
    SAMPLE = "perf.sw.cpu_clock.sample(10101010)" [Pid, UserRegs { bytes: 6144 }, KernelStack { frames: 32 }];
    END = "end" [];
}

/// How many stacks `end` prints.
const TOP: usize = 20;

struct Profile {
    /// Samples by (pid, kernel stack, user stack), stacks as their values.
    stacks: LongMap<(u32, &'static str, &'static str)>,
    samples: i64,
}

impl Plugin for Profile {
    const PROBES: &'static [ProbeSpec<'static>] = PROBES;

    fn new() -> Self {
        Self {
            stacks: LongMap::new(0),
            samples: 0,
        }
    }

    fn event(&mut self, e: &Event<'_>) {
        let pid = e.pid();
        // Unwound now, while the process runs: the host pins each frame
        // to its binary so `end` can name it after the process exits.
        let user = e.ustack();
        let kernel = e.kstack();
        self.stacks.add((pid, kernel.as_str(), user.as_str()), 1);
        self.samples += 1;
    }

    fn probe(&mut self, probe: ProbeId) {
        if probe != END {
            return;
        }
        outln!(
            "{} samples, {} distinct stacks; the {} most frequent:",
            self.samples,
            self.stacks.len(),
            TOP
        );
        for entry in self.stacks.top(TOP) {
            let [KeyPart::Int(pid), KeyPart::Str(kernel), KeyPart::Str(user)] = &entry.key[..]
            else {
                continue;
            };
            Stack::from_value(Space::Kernel, 0, kernel).print();
            Stack::from_value(Space::User, *pid as u32, user).print();
            out!("\t{}\n", entry.value);
        }
    }
}

export_plugin!(Profile);
