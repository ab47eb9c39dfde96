//! Stacks and symbols for plugins: the host's `stack` import (the one
//! compiled scripts use for `ubacktrace()`, `print_ustack()`, `usymdata()`)
//! behind typed values.
//!
//! A [`Stack`] is taken from an event while its process runs: the host
//! unwinds it (DWARF CFI for a `UserRegs` capture) or pins its frames to
//! their binaries (a `UserStack` capture), so it can still be named at
//! `end`, after the process has exited. Its text ([`Stack::as_str`]) is
//! stap's stack value, hex addresses innermost first, and serves as a map
//! key; [`Stack::from_value`] turns a key back into a stack.

use alloc::string::String;
use alloc::vec::Vec;

use wasmtap_abi::wasm::stack as ops;

use crate::stack::stack_text;

/// Whose addresses a [`Stack`] holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// A user process's.
    User,
    /// The kernel's.
    Kernel,
}

/// A captured stack: return addresses, innermost first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stack {
    space: Space,
    pid: u32,
    value: String,
}

impl Stack {
    /// A stack from its value (hex addresses separated by spaces, as
    /// [`Stack::as_str`] gives) seen in process `pid` (0 for the kernel).
    pub fn from_value(space: Space, pid: u32, value: &str) -> Self {
        Self {
            space,
            pid,
            value: String::from(value),
        }
    }

    /// Asks the host for op `op` on `input` and keeps the answer as the
    /// stack value.
    pub(crate) fn from_host(space: Space, pid: u32, op: i32, input: &[u8]) -> Self {
        let text = stack_text(op, i64::from(pid), 0, input);
        Self {
            space,
            pid,
            value: String::from_utf8(text).unwrap_or_default(),
        }
    }

    /// The stack value: hex addresses, innermost first, separated by
    /// spaces; empty when nothing could be read.
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// Whether the stack has no frame.
    pub fn is_empty(&self) -> bool {
        self.value.is_empty()
    }

    /// Whose addresses these are.
    pub fn space(&self) -> Space {
        self.space
    }

    /// The return addresses, innermost first.
    pub fn addresses(&self) -> impl Iterator<Item = u64> + '_ {
        self.value.split(' ').filter_map(parse_hex)
    }

    /// The frames, named by the host in one call.
    pub fn frames(&self) -> Vec<Frame> {
        self.lines()
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                let (addr, rest) = line.split_once(' ').unwrap_or((line, ""));
                let address = parse_hex(addr)?;
                let symbol = rest.trim().strip_prefix(": ").and_then(Symbol::parse);
                Some(Frame { address, symbol })
            })
            .collect()
    }

    /// One line per frame in stap's layout (` 0x4005d4 : main+0x24/0x40
    /// [/usr/bin/prog]`), as `print_ustack()` prints it; the stack report
    /// format `--output folded` and `--flamegraph` read.
    pub fn lines(&self) -> String {
        let op = match self.space {
            Space::User => ops::USER_FRAMES,
            Space::Kernel => ops::KERNEL_FRAMES,
        };
        let text = stack_text(op, i64::from(self.pid), 0, self.value.as_bytes());
        String::from_utf8(text).unwrap_or_default()
    }

    /// Prints [`Stack::lines`] to the run's output.
    pub fn print(&self) {
        crate::plugin::Out.bytes(self.lines().as_bytes());
    }
}

/// One frame of a [`Stack`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// The return address (the instruction pointer for the innermost).
    pub address: u64,
    /// Its symbol, when the binary has one.
    pub symbol: Option<Symbol>,
}

/// A symbol an address falls in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// The function's name.
    pub name: String,
    /// The address's offset in the function.
    pub offset: u64,
    /// The function's size in bytes.
    pub size: u64,
    /// The binary's path, or `kernel` / a kernel module's name.
    pub module: String,
}

impl Symbol {
    /// Parses the host's `name+0xoff/0xsize [module]`.
    fn parse(text: &str) -> Option<Self> {
        let (symbol, module) = text.rsplit_once(" [")?;
        let (name, place) = symbol.rsplit_once("+0x")?;
        let (offset, size) = place.split_once('/')?;
        Some(Self {
            name: String::from(name),
            offset: u64::from_str_radix(offset, 16).ok()?,
            size: parse_hex(size)?,
            module: String::from(module.strip_suffix(']')?),
        })
    }
}

/// The symbol of user address `address` in process `pid` (stap's
/// `usymdata()`), or `None` when no binary of the process names it.
pub fn usym(pid: u32, address: u64) -> Option<Symbol> {
    let text = stack_text(ops::USYMDATA, i64::from(pid), address as i64, &[]);
    Symbol::parse(core::str::from_utf8(&text).ok()?)
}

/// The symbol of kernel address `address` (stap's `symdata()`), or `None`
/// when kallsyms does not name it (or the policy hides kernel symbols).
pub fn ksym(address: u64) -> Option<Symbol> {
    let text = stack_text(ops::SYMDATA, 0, address as i64, &[]);
    Symbol::parse(core::str::from_utf8(&text).ok()?)
}

fn parse_hex(word: &str) -> Option<u64> {
    u64::from_str_radix(word.strip_prefix("0x")?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_parse() {
        let sym = Symbol::parse("hot+0x1a/0x40 [/tmp/cpu]").unwrap();
        assert_eq!(
            (sym.name.as_str(), sym.offset, sym.size, sym.module.as_str()),
            ("hot", 0x1a, 0x40, "/tmp/cpu")
        );
        assert_eq!(Symbol::parse("0x401000"), None);
        let stack = Stack::from_value(Space::User, 1, "0x10 0x20");
        assert_eq!(stack.addresses().collect::<Vec<_>>(), [0x10, 0x20]);
    }
}
