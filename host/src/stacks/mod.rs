//! Stacks in the host: unwinding, symbolization and the stack reports.
//!
//! The guest asks for everything through the one `host.stack` import
//! ([`wasmtap_abi::wasm::HOST_STACK`]); [`Stacks::op`] answers it:
//! - when a handler evaluates `ubacktrace()`, right after the event, the
//!   process is still alive: its mappings are read (once, and again only
//!   when code shows up outside them), its stack copy is unwound with DWARF
//!   CFI ([`unwind`]), and every address is pinned to (binary, file
//!   offset), so the frames can be named later even if the process exited;
//! - frame lines, `usymname()` and friends are then computed from the
//!   binaries on disk ([`symbolize`]), in stap's layout.
//!
//! [`folded`] and [`flamegraph`] turn a printed stack report into folded
//! stacks and an SVG flame graph.

pub mod flamegraph;
pub mod folded;
pub mod kallsyms;
pub mod maps;
pub mod report;
pub mod symbolize;
pub mod unwind;

use std::{
    collections::HashMap,
    fmt::Write as _,
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use wasmtap_abi::{STACK_HEADER_LEN, wasm::stack as ops};

use self::{
    kallsyms::Loader,
    maps::{MappedFiles, ProcessMaps},
    symbolize::{Symbol, Symbols},
    unwind::{Unwinder, UserRegs},
};

/// Addresses pinned to a binary at most; past it, frames are named from
/// the mappings of the process the guest names, if it still runs.
const MAX_PINNED: usize = 1 << 20;
/// A process's mappings are re-read at most this often when its code runs
/// outside every known module (JIT code would otherwise re-read per sample).
const MAPS_REFRESH: Duration = Duration::from_secs(1);

/// Where a user address is: the binary and the offset in it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Location {
    /// The binary's name, for reports.
    path: Arc<Path>,
    /// Where its bytes are read ([`maps::Mapping::file`]).
    file: Arc<Path>,
    file_offset: u64,
}

impl Location {
    fn of(m: &maps::Mapping, addr: u64) -> Self {
        Self {
            path: m.path.clone(),
            file: m.file.clone(),
            file_offset: m.file_offset(addr),
        }
    }
}

/// The last mappings read for a process.
struct Process {
    maps: ProcessMaps,
    read_at: Instant,
}

/// Unwinding and symbolization state of one sandbox, kept for the run.
#[derive(Default)]
pub struct Stacks {
    processes: HashMap<u32, Process>,
    /// The binaries of every process read, held open for the run.
    files: MappedFiles,
    unwinder: Unwinder,
    pinned: HashMap<u64, Location>,
    /// Frame lines of pinned addresses (which name the same frame whatever
    /// the process): a report prints each frame many times.
    lines: HashMap<u64, Box<str>>,
    symbols: Symbols,
    kernel: Loader,
}

impl Stacks {
    /// Answers one `host.stack` call: op `op` ([`ops`]) for process `pid`
    /// (0: none) on address `value` or on `input` (a record slot or a stack
    /// value). Unknown ops and malformed input give empty text: a stack
    /// never fails a script.
    pub fn op(&mut self, op: i32, pid: u32, value: u64, input: &[u8]) -> String {
        match op {
            ops::USER_UNWIND => self.user_unwind(pid, input),
            ops::USER_PIN => {
                let frames: Vec<u64> = parse_stack(input).collect();
                if let Some(&ip) = frames.first() {
                    self.refresh(pid, ip);
                }
                self.pin(pid, &frames);
                format_stack(&frames)
            }
            ops::KERNEL_STACK => {
                // The report will want names: start reading them now.
                self.kernel.start();
                kernel_stack(input)
            }
            ops::USER_FRAMES => {
                let mut out = String::new();
                for addr in parse_stack(input) {
                    out.push(' ');
                    match self.lines.get(&addr) {
                        Some(line) => out.push_str(line),
                        None => {
                            let line = self.user_frame(pid, addr);
                            out.push_str(&line);
                            if self.pinned.contains_key(&addr) {
                                self.lines.insert(addr, line.into());
                            }
                        }
                    }
                    out.push('\n');
                }
                out
            }
            ops::KERNEL_FRAMES => {
                let mut out = String::new();
                for addr in parse_stack(input) {
                    let _ = writeln!(out, " {}", self.kernel_frame(addr));
                }
                out
            }
            ops::USYMNAME => match self.user_symbol(pid, value) {
                Some((_, sym)) => sym.name,
                None => format!("{value:#x}"),
            },
            ops::USYMDATA => match self.user_symbol(pid, value) {
                Some((location, sym)) => symdata(&sym, &location.path.display().to_string()),
                None => format!("{value:#x}"),
            },
            ops::UMODNAME => self
                .locate(pid, value)
                .map_or_else(|| "<unknown>".to_string(), |l| l.path.display().to_string()),
            ops::SYMNAME => self
                .kernel
                .get()
                .lookup(value)
                .map_or_else(|| format!("{value:#x}"), |(s, _)| s.name),
            ops::SYMDATA => self
                .kernel
                .get()
                .lookup(value)
                .map_or_else(|| format!("{value:#x}"), |(s, m)| symdata(&s, m)),
            _ => String::new(),
        }
    }

    /// `ubacktrace()`: unwinds a `UserRegsStack` slot into a stack value
    /// and pins every frame to its binary.
    fn user_unwind(&mut self, pid: u32, slot: &[u8]) -> String {
        let Some(regs) = UserRegs::parse(slot) else {
            return String::new();
        };
        self.refresh(pid, regs.ip);
        let frames = self.unwinder.unwind(pid, &regs);
        self.pin(pid, &frames);
        format_stack(&frames)
    }

    /// Pins `frames` of `pid` to (binary, file offset) with the mappings
    /// last read, so they can be named after the process exits.
    fn pin(&mut self, pid: u32, frames: &[u64]) {
        let Some(process) = self.processes.get(&pid) else {
            return;
        };
        for &addr in frames {
            if self.pinned.len() >= MAX_PINNED {
                break;
            }
            if let Some(m) = process.maps.find(addr) {
                self.pinned
                    .entry(addr)
                    .or_insert_with(|| Location::of(m, addr));
            }
        }
    }

    /// Reads the mappings of `pid` if unknown, or if `ip` is outside them
    /// and they were not read within [`MAPS_REFRESH`].
    fn refresh(&mut self, pid: u32, ip: u64) {
        if pid == 0 || self.unwinder.knows(pid, ip) {
            return;
        }
        if self
            .processes
            .get(&pid)
            .is_some_and(|p| p.read_at.elapsed() < MAPS_REFRESH)
        {
            return;
        }
        match ProcessMaps::read(pid, &mut self.files) {
            Ok(maps) => {
                self.unwinder.load(pid, &maps);
                self.processes.insert(
                    pid,
                    Process {
                        maps,
                        read_at: Instant::now(),
                    },
                );
            }
            Err(_) => {
                // Gone: keep what was read before, if anything.
                if let Some(p) = self.processes.get_mut(&pid) {
                    p.read_at = Instant::now();
                }
            }
        }
    }

    /// Where `addr` is: pinned when it was unwound, else in the mappings of
    /// `pid` (read now if the process still runs).
    fn locate(&mut self, pid: u32, addr: u64) -> Option<Location> {
        if let Some(location) = self.pinned.get(&addr) {
            return Some(location.clone());
        }
        if pid != 0 && !self.processes.contains_key(&pid) {
            self.refresh(pid, addr);
        }
        let m = self.processes.get(&pid)?.maps.find(addr)?;
        Some(Location::of(m, addr))
    }

    fn user_symbol(&mut self, pid: u32, addr: u64) -> Option<(Location, Symbol)> {
        let location = self.locate(pid, addr)?;
        let sym = self.symbols.user(&location.file, location.file_offset)?;
        Some((location, sym))
    }

    /// One frame in stap's layout, without the leading space.
    fn user_frame(&mut self, pid: u32, addr: u64) -> String {
        let Some(location) = self.locate(pid, addr) else {
            return format!("{addr:#x}");
        };
        let path = location.path.display().to_string();
        match self.symbols.user(&location.file, location.file_offset) {
            Some(sym) => format!("{addr:#x} : {}", symdata(&sym, &path)),
            None => format!("{addr:#x} [{path}+{:#x}]", location.file_offset),
        }
    }

    fn kernel_frame(&mut self, addr: u64) -> String {
        match self.kernel.get().lookup(addr) {
            Some((sym, module)) => format!("{addr:#x} : {}", symdata(&sym, module)),
            None => format!("{addr:#x}"),
        }
    }
}

/// `name+0xoff/0xsize [module]`, stap's symdata.
fn symdata(sym: &Symbol, module: &str) -> String {
    format!("{}+{:#x}/{:#x} [{module}]", sym.name, sym.offset, sym.size)
}

/// The stack value of a `KernelStack` slot.
fn kernel_stack(slot: &[u8]) -> String {
    let Some(count) = slot.get(..4) else {
        return String::new();
    };
    let bytes = usize::try_from(i32::from_le_bytes(count.try_into().unwrap())).unwrap_or(0);
    let addresses = slot
        .get(STACK_HEADER_LEN..)
        .unwrap_or(&[])
        .chunks_exact(8)
        .take(bytes / 8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .take_while(|&a| a != 0)
        .collect::<Vec<_>>();
    format_stack(&addresses)
}

/// stap's stack value: hex addresses separated by spaces.
pub fn format_stack(addresses: &[u64]) -> String {
    let mut out = String::with_capacity(addresses.len() * 15);
    for (i, addr) in addresses.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{addr:#x}");
    }
    out
}

/// The addresses of a stack value; words that are not hex are skipped.
pub fn parse_stack(text: &[u8]) -> impl Iterator<Item = u64> + '_ {
    text.split(|b| b.is_ascii_whitespace()).filter_map(|word| {
        let word = std::str::from_utf8(word).ok()?;
        let hex = word
            .strip_prefix("0x")
            .or_else(|| word.strip_prefix("0X"))?;
        u64::from_str_radix(hex, 16).ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_values_round_trip() {
        let text = format_stack(&[0x401136, 0x7f12_3456_789a]);
        assert_eq!(text, "0x401136 0x7f123456789a");
        let back: Vec<u64> = parse_stack(text.as_bytes()).collect();
        assert_eq!(back, [0x401136, 0x7f12_3456_789a]);
    }

    #[test]
    fn kernel_slots() {
        let mut slot = vec![0u8; 8 + 32];
        slot[..4].copy_from_slice(&16i32.to_le_bytes());
        slot[8..16].copy_from_slice(&0xffff_ffff_8100_0000u64.to_le_bytes());
        slot[16..24].copy_from_slice(&0xffff_ffff_8100_0010u64.to_le_bytes());
        assert_eq!(kernel_stack(&slot), "0xffffffff81000000 0xffffffff81000010");
        slot[..4].copy_from_slice(&(-14i32).to_le_bytes());
        assert_eq!(kernel_stack(&slot), "");
    }

    /// Frames of this test process come out in stap's layout, named.
    #[test]
    fn names_own_frames() {
        let mut stacks = Stacks::default();
        let pid = std::process::id();
        let addr = names_own_frames as *const () as u64;
        let line = stacks.op(
            ops::USER_FRAMES,
            pid,
            0,
            format_stack(&[addr + 1]).as_bytes(),
        );
        assert!(
            line.starts_with(&format!(" {:#x} : ", addr + 1))
                && line.contains("names_own_frames+0x1/"),
            "{line}"
        );
        let unknown = stacks.op(ops::USER_FRAMES, 0, 0, b"0x10");
        assert_eq!(unknown, " 0x10\n");
    }
}
