//! Plugins: hand-written Wasm modules that run like compiled scripts.
//!
//! A plugin declares its probes in a manifest stored in the custom section
//! [`MANIFEST_SECTION`] of its module: for each probe, the probe point in
//! stap syntax and the list of [`Capture`]s its handler needs. The record
//! layout follows from that list alone ([`layout`]): the guest SDK computes
//! the offsets it reads from the same function the host uses to build the
//! capture plan, so the two can never disagree.
//!
//! # Record layout rule
//! A record is the [`RecordHeader`](crate::RecordHeader) (its `probe` is the
//! manifest index of the probe), then one slot per capture in the order the
//! manifest lists them, each slot starting 8-byte aligned and
//! [`Capture::width`] bytes long.
//!
//! # Encoding
//! Little-endian, no padding:
//! `"WTPM"`, version `u8` ([`MANIFEST_VERSION`]), probe count `u16`; per
//! probe: point length `u16`, the point's UTF-8 bytes, capture count `u8`;
//! per capture: tag `u8`, `a: u8`, `b: u16`, and for the two field captures
//! a name length `u8` and the name's bytes (see [`Capture`] for `a`/`b`).
//! Everything here is `const fn` so a plugin's manifest is a constant.

use crate::{COMM_LEN, HEADER_LEN, MAX_OPS, MAX_RECORD, MAX_STACK_FRAMES};

/// Name of the custom section holding the manifest.
pub const MANIFEST_SECTION: &str = "wasmtap.manifest";
/// First bytes of an encoded manifest.
pub const MANIFEST_MAGIC: [u8; 4] = *b"WTPM";
/// Bumped whenever the encoding or the layout rule changes meaning.
pub const MANIFEST_VERSION: u8 = 1;
/// Longest string a capture may ask for (a user string, argv, a field).
pub const MAX_CAPTURE_STR: u16 = 4096;

/// One value a probe asks the kernel to copy when it fires.
///
/// Slots (see [`Capture::width`]): numbers are a `u64`; `Comm` is
/// [`COMM_LEN`] bytes, NUL padded; string slots are an `i32` status (bytes
/// copied, or a negative errno) then at most `max` bytes; stack slots are an
/// `i32` byte count (or a negative errno), 4 bytes of padding, then `u64`
/// return addresses, innermost first; `UserRegs` is laid out like
/// [`OpCode::UserRegsStack`](crate::OpCode::UserRegsStack). Arguments
/// (`Arg`, `UserStr`, `RetVal`) are a syscall's on syscall probes and a
/// function's (System V registers) or a USDT mark's on `process(..)` probes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capture<'a> {
    /// Process id (tgid). Tag 1.
    Pid,
    /// Thread id. Tag 2.
    Tid,
    /// Real user id. Tag 3.
    Uid,
    /// Real group id. Tag 4.
    Gid,
    /// The task's name. Tag 5.
    Comm,
    /// CLOCK_MONOTONIC nanoseconds. Tag 6.
    TimeNs,
    /// CPU number. Tag 7.
    Cpu,
    /// Syscall number (syscall probes). Tag 8.
    SyscallNr,
    /// Syscall argument `a` (0..=5) as a `u64`. Tag 9.
    Arg(u8),
    /// The string behind the user pointer in syscall argument `arg`, at
    /// most `max` bytes. Tag 10 (`a` = arg, `b` = max).
    UserStr { arg: u8, max: u16 },
    /// The return value (`.return` syscall probes). Tag 11.
    RetVal,
    /// The strings of the user `char **` in syscall argument `arg` (execve's
    /// argv), NUL-separated, at most `max` bytes; the status is the number
    /// of strings read. Tag 12 (`a` = arg, `b` = max).
    Argv { arg: u8, max: u16 },
    /// The user stack, at most `frames` frames. Tag 13 (`b` = frames).
    UserStack { frames: u16 },
    /// The kernel stack, at most `frames` frames. Tag 14 (`b` = frames).
    KernelStack { frames: u16 },
    /// A numeric tracepoint field of `size` bytes (1, 2, 4 or 8), by its
    /// name in the event's `format`; read with the field's own width so the
    /// guest can widen it. Tag 15 (`a` = size).
    Field { name: &'a str, size: u8 },
    /// A string tracepoint field (`__data_loc char[]`), at most `max`
    /// bytes. Tag 16 (`b` = max).
    FieldStr { name: &'a str, max: u16 },
    /// The parent's process id. Tag 17.
    ParentPid,
    /// Effective user id. Tag 18.
    Euid,
    /// What the host needs to unwind the user stack with DWARF CFI (as
    /// scripts' `ubacktrace()` does, so code built without frame pointers
    /// still gives every frame): the user registers and `bytes` of the
    /// stack from the stack pointer up. Tag 19 (`b` = bytes).
    UserRegs { bytes: u16 },
}

impl<'a> Capture<'a> {
    const fn tag(&self) -> u8 {
        match self {
            Self::Pid => 1,
            Self::Tid => 2,
            Self::Uid => 3,
            Self::Gid => 4,
            Self::Comm => 5,
            Self::TimeNs => 6,
            Self::Cpu => 7,
            Self::SyscallNr => 8,
            Self::Arg(_) => 9,
            Self::UserStr { .. } => 10,
            Self::RetVal => 11,
            Self::Argv { .. } => 12,
            Self::UserStack { .. } => 13,
            Self::KernelStack { .. } => 14,
            Self::Field { .. } => 15,
            Self::FieldStr { .. } => 16,
            Self::ParentPid => 17,
            Self::Euid => 18,
            Self::UserRegs { .. } => 19,
        }
    }

    /// The `(a, b)` operands of the encoding.
    const fn operands(&self) -> (u8, u16) {
        match *self {
            Self::Arg(arg) => (arg, 0),
            Self::UserStr { arg, max } | Self::Argv { arg, max } => (arg, max),
            Self::UserStack { frames } | Self::KernelStack { frames } => (0, frames),
            Self::UserRegs { bytes } => (0, bytes),
            Self::Field { size, .. } => (size, 0),
            Self::FieldStr { max, .. } => (0, max),
            _ => (0, 0),
        }
    }

    const fn name(&self) -> Option<&'a str> {
        match *self {
            Self::Field { name, .. } | Self::FieldStr { name, .. } => Some(name),
            _ => None,
        }
    }

    const fn from_parts(tag: u8, a: u8, b: u16, name: &'a str) -> Option<Self> {
        Some(match tag {
            1 => Self::Pid,
            2 => Self::Tid,
            3 => Self::Uid,
            4 => Self::Gid,
            5 => Self::Comm,
            6 => Self::TimeNs,
            7 => Self::Cpu,
            8 => Self::SyscallNr,
            9 => Self::Arg(a),
            10 => Self::UserStr { arg: a, max: b },
            11 => Self::RetVal,
            12 => Self::Argv { arg: a, max: b },
            13 => Self::UserStack { frames: b },
            14 => Self::KernelStack { frames: b },
            15 => Self::Field { name, size: a },
            16 => Self::FieldStr { name, max: b },
            17 => Self::ParentPid,
            18 => Self::Euid,
            19 => Self::UserRegs { bytes: b },
            _ => return None,
        })
    }

    /// Bytes of the capture's slot in the record (before alignment).
    pub const fn width(&self) -> usize {
        match *self {
            Self::Comm => COMM_LEN,
            Self::UserStr { max, .. } | Self::Argv { max, .. } | Self::FieldStr { max, .. } => {
                crate::STR_STATUS_LEN + max as usize
            }
            Self::UserStack { frames } | Self::KernelStack { frames } => {
                crate::STACK_HEADER_LEN + 8 * frames as usize
            }
            Self::UserRegs { bytes } => crate::REGS_STACK_HEADER_LEN + bytes as usize,
            _ => 8,
        }
    }

    /// Why the capture's own operands are out of range, if they are.
    pub const fn check(&self) -> Option<&'static str> {
        match *self {
            Self::Arg(arg) | Self::UserStr { arg, .. } | Self::Argv { arg, .. } if arg > 5 => {
                Some("syscall arguments are numbered 0 to 5")
            }
            Self::UserStr { max, .. } | Self::Argv { max, .. } | Self::FieldStr { max, .. }
                if max == 0 || max > MAX_CAPTURE_STR =>
            {
                Some("string captures take 1 to 4096 bytes")
            }
            Self::UserStack { frames } | Self::KernelStack { frames }
                if frames == 0 || frames as usize > MAX_STACK_FRAMES =>
            {
                Some("stacks hold 1 to 127 frames")
            }
            Self::UserRegs { bytes } if bytes == 0 || bytes % 8 != 0 => {
                Some("a user stack copy takes a positive multiple of 8 bytes")
            }
            Self::Field { size, .. } if !matches!(size, 1 | 2 | 4 | 8) => {
                Some("numeric fields are 1, 2, 4 or 8 bytes")
            }
            _ => None,
        }
    }
}

/// One probe of a plugin: where it fires and what it captures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSpec<'a> {
    /// The probe point in stap syntax (`syscall.openat`, `timer.s(1)`,
    /// `kernel.trace("sched:sched_process_exec")`, `begin`...).
    pub point: &'a str,
    /// What the handler reads, in record order.
    pub captures: &'a [Capture<'a>],
}

impl<'a> ProbeSpec<'a> {
    /// A probe at `point` capturing `captures`.
    pub const fn new(point: &'a str, captures: &'a [Capture<'a>]) -> Self {
        Self { point, captures }
    }
}

const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// The record offset of capture `index` of `captures`, by the layout rule.
pub const fn offset_of(captures: &[Capture<'_>], index: usize) -> usize {
    let mut offset = HEADER_LEN;
    let mut i = 0;
    while i < index {
        offset = align8(offset + captures[i].width());
        i += 1;
    }
    offset
}

/// The record length of a probe capturing `captures` (header included,
/// aligned), or why it cannot be captured.
///
/// # Errors
/// A capture with bad operands, too many captures, or a record larger than
/// [`MAX_RECORD`].
pub const fn layout(captures: &[Capture<'_>]) -> Result<usize, &'static str> {
    if captures.len() > MAX_OPS {
        return Err("a probe captures at most 64 values");
    }
    let mut i = 0;
    while i < captures.len() {
        if let Some(why) = captures[i].check() {
            return Err(why);
        }
        i += 1;
    }
    let len = offset_of(captures, captures.len());
    if len > MAX_RECORD {
        return Err("the captures do not fit in one record (8192 bytes)");
    }
    Ok(len)
}

/// Bytes [`encode`] writes for `probes`.
pub const fn encoded_len(probes: &[ProbeSpec<'_>]) -> usize {
    let mut len = MANIFEST_MAGIC.len() + 1 + 2;
    let mut p = 0;
    while p < probes.len() {
        len += 2 + probes[p].point.len() + 1;
        let caps = probes[p].captures;
        let mut c = 0;
        while c < caps.len() {
            len += 4;
            if let Some(name) = caps[c].name() {
                len += 1 + name.len();
            }
            c += 1;
        }
        p += 1;
    }
    len
}

/// Encodes `probes`; `N` must be [`encoded_len`]`(probes)` (a mismatch, or
/// a name or list too long for its length field, fails const evaluation).
pub const fn encode<const N: usize>(probes: &[ProbeSpec<'_>]) -> [u8; N] {
    assert!(N == encoded_len(probes), "manifest length mismatch");
    assert!(probes.len() <= u16::MAX as usize, "too many probes");
    let mut out = [0u8; N];
    let mut at = put(&mut out, 0, &MANIFEST_MAGIC);
    out[at] = MANIFEST_VERSION;
    at += 1;
    at = put(&mut out, at, &(probes.len() as u16).to_le_bytes());
    let mut p = 0;
    while p < probes.len() {
        let point = probes[p].point.as_bytes();
        assert!(point.len() <= u16::MAX as usize, "probe point too long");
        at = put(&mut out, at, &(point.len() as u16).to_le_bytes());
        at = put(&mut out, at, point);
        let caps = probes[p].captures;
        assert!(caps.len() <= u8::MAX as usize, "too many captures");
        out[at] = caps.len() as u8;
        at += 1;
        let mut c = 0;
        while c < caps.len() {
            let (a, b) = caps[c].operands();
            out[at] = caps[c].tag();
            out[at + 1] = a;
            at = put(&mut out, at + 2, &b.to_le_bytes());
            if let Some(name) = caps[c].name() {
                assert!(name.len() <= u8::MAX as usize, "field name too long");
                out[at] = name.len() as u8;
                at = put(&mut out, at + 1, name.as_bytes());
            }
            c += 1;
        }
        p += 1;
    }
    out
}

const fn put<const N: usize>(out: &mut [u8; N], at: usize, bytes: &[u8]) -> usize {
    let mut i = 0;
    while i < bytes.len() {
        out[at + i] = bytes[i];
        i += 1;
    }
    at + bytes.len()
}

/// Why a manifest cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestError {
    /// It does not start with [`MANIFEST_MAGIC`].
    BadMagic,
    /// It was written for another [`MANIFEST_VERSION`].
    Version(u8),
    /// It ends in the middle of an entry.
    Truncated,
    /// A probe point or field name is not UTF-8.
    NotUtf8,
    /// An unknown capture tag.
    UnknownCapture(u8),
    /// Bytes follow the last probe.
    TrailingBytes,
}

/// Reads an encoded manifest probe by probe, without allocating.
#[derive(Clone, Debug)]
pub struct ManifestReader<'a> {
    bytes: &'a [u8],
    at: usize,
    left: u16,
}

impl<'a> ManifestReader<'a> {
    /// Checks the header of `bytes`.
    ///
    /// # Errors
    /// A bad magic, another version, or a truncated header.
    pub fn new(bytes: &'a [u8]) -> Result<Self, ManifestError> {
        if bytes.len() < 7 {
            return Err(ManifestError::Truncated);
        }
        if bytes[..4] != MANIFEST_MAGIC {
            return Err(ManifestError::BadMagic);
        }
        if bytes[4] != MANIFEST_VERSION {
            return Err(ManifestError::Version(bytes[4]));
        }
        Ok(Self {
            bytes,
            at: 7,
            left: u16::from_le_bytes([bytes[5], bytes[6]]),
        })
    }

    /// How many probes are left to read.
    pub fn remaining(&self) -> usize {
        self.left as usize
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ManifestError> {
        let end = self.at.checked_add(n).ok_or(ManifestError::Truncated)?;
        let bytes = self
            .bytes
            .get(self.at..end)
            .ok_or(ManifestError::Truncated)?;
        self.at = end;
        Ok(bytes)
    }

    fn str(&mut self, n: usize) -> Result<&'a str, ManifestError> {
        core::str::from_utf8(self.take(n)?).map_err(|_| ManifestError::NotUtf8)
    }

    /// The next probe's point, and its captures passed one by one to
    /// `capture` (in record order); `None` after the last probe.
    ///
    /// # Errors
    /// A malformed entry, or bytes after the last probe.
    pub fn next_probe(
        &mut self,
        mut capture: impl FnMut(Capture<'a>),
    ) -> Result<Option<&'a str>, ManifestError> {
        if self.left == 0 {
            return if self.at == self.bytes.len() {
                Ok(None)
            } else {
                Err(ManifestError::TrailingBytes)
            };
        }
        self.left -= 1;
        let len = self.take(2)?;
        let point = self.str(u16::from_le_bytes([len[0], len[1]]) as usize)?;
        let count = self.take(1)?[0];
        for _ in 0..count {
            let raw = self.take(4)?;
            let (tag, a, b) = (raw[0], raw[1], u16::from_le_bytes([raw[2], raw[3]]));
            let name = if matches!(tag, 15 | 16) {
                let n = self.take(1)?[0] as usize;
                self.str(n)?
            } else {
                ""
            };
            capture(
                Capture::from_parts(tag, a, b, name).ok_or(ManifestError::UnknownCapture(tag))?,
            );
        }
        Ok(Some(point))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: &[Capture<'static>] = &[
        Capture::Pid,
        Capture::Comm,
        Capture::UserStr { arg: 1, max: 250 },
        Capture::Field {
            name: "pid",
            size: 4,
        },
        Capture::RetVal,
    ];
    const PROBES: &[ProbeSpec<'static>] = &[
        ProbeSpec::new("syscall.openat", CAPS),
        ProbeSpec::new("begin", &[]),
    ];
    const BYTES: [u8; encoded_len(PROBES)] = encode(PROBES);

    #[test]
    fn layout_follows_the_rule() {
        assert_eq!(offset_of(CAPS, 0), 8);
        assert_eq!(offset_of(CAPS, 1), 16);
        assert_eq!(offset_of(CAPS, 2), 32);
        assert_eq!(offset_of(CAPS, 3), 32 + 256);
        assert_eq!(offset_of(CAPS, 4), 32 + 256 + 8);
        assert_eq!(layout(CAPS), Ok(32 + 256 + 16));
        assert!(layout(&[Capture::Arg(6)]).is_err());
        assert!(layout(&[Capture::UserStack { frames: 127 }; 9]).is_err());
    }

    #[test]
    fn manifests_round_trip() {
        let mut reader = ManifestReader::new(&BYTES).unwrap();
        assert_eq!(reader.remaining(), 2);
        let mut seen = [Capture::Pid; 5];
        let mut n = 0;
        let point = reader.next_probe(|c| {
            seen[n] = c;
            n += 1;
        });
        assert_eq!(point, Ok(Some("syscall.openat")));
        assert_eq!(&seen[..n], CAPS);
        assert_eq!(reader.next_probe(|_| panic!()), Ok(Some("begin")));
        assert_eq!(reader.next_probe(|_| panic!()), Ok(None));
    }

    #[test]
    fn bad_manifests_are_refused() {
        assert_eq!(
            ManifestReader::new(b"XXXX\x01\0\0").unwrap_err(),
            ManifestError::BadMagic
        );
        assert_eq!(
            ManifestReader::new(b"WTPM\x09\0\0").unwrap_err(),
            ManifestError::Version(9)
        );
        let mut r = ManifestReader::new(&BYTES[..12]).unwrap();
        assert_eq!(r.next_probe(|_| {}), Err(ManifestError::Truncated));
    }
}
