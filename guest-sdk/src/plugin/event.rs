//! Typed access to one record: each accessor finds its capture in the
//! probe's manifest entry and reads the slot at the offset the layout rule
//! gives, the same offset the host's capture plan writes.

use wasmtap_abi::plugin::{Capture, ProbeSpec, offset_of};
use wasmtap_abi::{COMM_LEN, STACK_HEADER_LEN, STR_STATUS_LEN};

use wasmtap_abi::wasm::stack as wasm_stack;

use super::ProbeId;
use super::stack::{Space, Stack};

/// One record of a kernel probe, as [`Plugin::event`](super::Plugin::event)
/// sees it.
///
/// Reading a value the probe did not declare in its manifest is a bug in
/// the plugin: it raises a run-time error naming the missing capture.
#[derive(Clone, Copy, Debug)]
pub struct Event<'a> {
    probe: ProbeId,
    record: &'a [u8],
    spec: &'a ProbeSpec<'static>,
}

impl<'a> Event<'a> {
    /// A view of `record`, captured by `spec`.
    pub fn new(probe: ProbeId, record: &'a [u8], spec: &'a ProbeSpec<'static>) -> Self {
        Self {
            probe,
            record,
            spec,
        }
    }

    /// Which probe fired.
    pub fn probe(&self) -> ProbeId {
        self.probe
    }

    /// The probe point as the manifest spells it.
    pub fn point(&self) -> &'static str {
        self.spec.point
    }

    /// The raw record, header included.
    pub fn record(&self) -> &'a [u8] {
        self.record
    }

    /// The slot of the first capture `want` accepts.
    fn slot(
        &self,
        want: impl Fn(&Capture<'_>) -> bool,
        what: &str,
    ) -> (&'a [u8], Capture<'static>) {
        let caps = self.spec.captures;
        match caps.iter().position(&want) {
            Some(i) => {
                let start = offset_of(caps, i);
                let end = start + caps[i].width();
                match self.record.get(start..end) {
                    Some(bytes) => (bytes, caps[i]),
                    None => crate::plugin::error("record shorter than its manifest"),
                }
            }
            None => missing(what, self.spec.point),
        }
    }

    fn u64_of(&self, want: impl Fn(&Capture<'_>) -> bool, what: &str) -> u64 {
        let (b, _) = self.slot(want, what);
        u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
    }

    /// Process id (capture `Pid`).
    pub fn pid(&self) -> u32 {
        (self.u64_of(|c| *c == Capture::Pid, "Pid") >> 32) as u32
    }

    /// Thread id (capture `Tid`).
    pub fn tid(&self) -> u32 {
        self.u64_of(|c| *c == Capture::Tid, "Tid") as u32
    }

    /// Real user id (capture `Uid`).
    pub fn uid(&self) -> u32 {
        self.u64_of(|c| *c == Capture::Uid, "Uid") as u32
    }

    /// Real group id (capture `Gid`).
    pub fn gid(&self) -> u32 {
        (self.u64_of(|c| *c == Capture::Gid, "Gid") >> 32) as u32
    }

    /// Effective user id (capture `Euid`).
    pub fn euid(&self) -> u32 {
        self.u64_of(|c| *c == Capture::Euid, "Euid") as u32
    }

    /// The parent's process id (capture `ParentPid`).
    pub fn ppid(&self) -> u32 {
        self.u64_of(|c| *c == Capture::ParentPid, "ParentPid") as u32
    }

    /// CLOCK_MONOTONIC nanoseconds at the event (capture `TimeNs`).
    pub fn time_ns(&self) -> u64 {
        self.u64_of(|c| *c == Capture::TimeNs, "TimeNs")
    }

    /// CPU the event ran on (capture `Cpu`).
    pub fn cpu(&self) -> u32 {
        self.u64_of(|c| *c == Capture::Cpu, "Cpu") as u32
    }

    /// Syscall number (capture `SyscallNr`).
    pub fn syscall_nr(&self) -> u32 {
        self.u64_of(|c| *c == Capture::SyscallNr, "SyscallNr") as u32
    }

    /// Argument `n`, counted from 0 (capture `Arg(n)`): a syscall's, a
    /// function's (`process(..).function(..)`, the System V argument
    /// registers) or a USDT mark's (the whole register its note names:
    /// narrow it to the argument's C type).
    pub fn arg(&self, n: u8) -> u64 {
        self.u64_of(|c| *c == Capture::Arg(n), "Arg")
    }

    /// The return value (capture `RetVal`) of a syscall or a function
    /// (`.return` probes).
    pub fn retval(&self) -> i64 {
        self.u64_of(|c| *c == Capture::RetVal, "RetVal") as i64
    }

    /// The task's name (capture `Comm`), up to its first NUL; `"?"` when
    /// it is not UTF-8.
    pub fn comm(&self) -> &'a str {
        let (b, _) = self.slot(|c| *c == Capture::Comm, "Comm");
        utf8(&b[..crate::strings::cstr_len(&b[..COMM_LEN])])
    }

    /// The user string behind syscall argument `arg` (capture
    /// `UserStr { arg, .. }`), or the negative errno of the failed read.
    pub fn user_str(&self, arg: u8) -> Result<&'a str, i32> {
        let (b, cap) = self.slot(
            |c| matches!(c, Capture::UserStr { arg: a, .. } if *a == arg),
            "UserStr",
        );
        string_slot(b, cap.width())
    }

    /// The `char **` strings of syscall argument `arg` (capture
    /// `Argv { arg, .. }`), or the negative errno of the failed read.
    pub fn argv(&self, arg: u8) -> Result<Argv<'a>, i32> {
        let (b, _) = self.slot(
            |c| matches!(c, Capture::Argv { arg: a, .. } if *a == arg),
            "Argv",
        );
        let count = status(b);
        if count < 0 {
            return Err(count);
        }
        Ok(Argv {
            rest: &b[STR_STATUS_LEN..],
            left: count as usize,
        })
    }

    /// The user stack, innermost frame first (capture `UserStack`); empty
    /// when it could not be read.
    pub fn user_stack(&self) -> StackIter<'a> {
        let (b, _) = self.slot(|c| matches!(c, Capture::UserStack { .. }), "UserStack");
        stack(b)
    }

    /// The kernel stack, innermost frame first (capture `KernelStack`).
    pub fn kernel_stack(&self) -> StackIter<'a> {
        let (b, _) = self.slot(|c| matches!(c, Capture::KernelStack { .. }), "KernelStack");
        stack(b)
    }

    /// The user stack as a [`Stack`] the host can name, now and after the
    /// process exits (stap's `ubacktrace()`). With a `UserRegs` capture the
    /// host unwinds it with DWARF CFI, which gives every frame of code
    /// built without frame pointers; else it takes the `UserStack`
    /// capture's frame-pointer addresses. The frames are named from the
    /// binaries of the event's process, so the probe must capture `Pid`
    /// too.
    pub fn ustack(&self) -> Stack {
        let pid = self.pid();
        let caps = self.spec.captures;
        if caps.iter().any(|c| matches!(c, Capture::UserRegs { .. })) {
            let (b, _) = self.slot(|c| matches!(c, Capture::UserRegs { .. }), "UserRegs");
            return Stack::from_host(Space::User, pid, wasm_stack::USER_UNWIND, b);
        }
        let mut value = alloc::string::String::new();
        for (i, pc) in self.user_stack().enumerate() {
            use core::fmt::Write as _;
            let _ = write!(value, "{}{pc:#x}", if i > 0 { " " } else { "" });
        }
        Stack::from_host(Space::User, pid, wasm_stack::USER_PIN, value.as_bytes())
    }

    /// The kernel stack as a [`Stack`] (stap's `backtrace()`), from the
    /// `KernelStack` capture.
    pub fn kstack(&self) -> Stack {
        let (b, _) = self.slot(|c| matches!(c, Capture::KernelStack { .. }), "KernelStack");
        Stack::from_host(Space::Kernel, 0, wasm_stack::KERNEL_STACK, b)
    }

    /// A numeric tracepoint field (capture `Field { name, size }`),
    /// sign-extended from its size.
    pub fn field(&self, name: &str) -> i64 {
        let (b, cap) = self.slot(
            |c| matches!(c, Capture::Field { name: n, .. } if *n == name),
            "Field",
        );
        let Capture::Field { size, .. } = cap else {
            return 0;
        };
        match size {
            1 => b[0] as i8 as i64,
            2 => i16::from_ne_bytes([b[0], b[1]]) as i64,
            4 => i32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => i64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        }
    }

    /// A string tracepoint field (capture `FieldStr { name, .. }`), or the
    /// negative errno of the failed read.
    pub fn field_str(&self, name: &str) -> Result<&'a str, i32> {
        let (b, cap) = self.slot(
            |c| matches!(c, Capture::FieldStr { name: n, .. } if *n == name),
            "FieldStr",
        );
        string_slot(b, cap.width())
    }
}

fn missing(what: &str, point: &str) -> ! {
    let mut msg = alloc::vec::Vec::new();
    msg.extend_from_slice(b"probe '");
    msg.extend_from_slice(point.as_bytes());
    msg.extend_from_slice(b"' does not capture ");
    msg.extend_from_slice(what.as_bytes());
    msg.extend_from_slice(b" (add it to its manifest)");
    crate::host::error(&msg)
}

fn status(b: &[u8]) -> i32 {
    i32::from_ne_bytes([b[0], b[1], b[2], b[3]])
}

fn utf8(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("?")
}

fn string_slot(b: &[u8], width: usize) -> Result<&str, i32> {
    let n = status(b);
    if n < 0 {
        return Err(n);
    }
    let data = &b[STR_STATUS_LEN..width];
    let n = (n as usize).min(data.len());
    let s = &data[..crate::strings::cstr_len(&data[..n])];
    Ok(match core::str::from_utf8(s) {
        Ok(s) => s,
        Err(e) => utf8(&s[..e.valid_up_to()]),
    })
}

fn stack(b: &[u8]) -> StackIter<'_> {
    let n = status(b).max(0) as usize;
    let frames = &b[STACK_HEADER_LEN..];
    StackIter {
        rest: &frames[..n.min(frames.len()) / 8 * 8],
    }
}

/// The strings of an [`Event::argv`] capture.
#[derive(Clone, Debug)]
pub struct Argv<'a> {
    rest: &'a [u8],
    left: usize,
}

impl<'a> Iterator for Argv<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.left == 0 || self.rest.is_empty() {
            return None;
        }
        self.left -= 1;
        let n = crate::strings::cstr_len(self.rest);
        let s = &self.rest[..n];
        self.rest = self.rest.get(n + 1..).unwrap_or(&[]);
        Some(utf8(s))
    }
}

/// Return addresses of a stack capture, innermost first.
#[derive(Clone, Debug)]
pub struct StackIter<'a> {
    rest: &'a [u8],
}

impl Iterator for StackIter<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        let (word, rest) = self.rest.split_first_chunk::<8>()?;
        self.rest = rest;
        Some(u64::from_ne_bytes(*word))
    }
}
