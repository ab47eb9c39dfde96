//! Syscall decoding: stap's `argstr`, `retstr` and `*_str` tapset
//! variables.
//!
//! The compiler knows, per syscall, which [`ArgKind`] each argument has
//! (`compiler/data/syscall_argstr.tsv`) and emits one runtime call per
//! argument; this module renders a raw value of a kind the way SystemTap's
//! tapsets print it: `AT_FDCWD`, `O_RDONLY|O_CLOEXEC`, `0644`,
//! `PROT_READ|PROT_WRITE`, `SIGTERM`, `-2 (ENOENT)`, quoted strings and
//! argv lists. Everything appends to a byte buffer, so it is tested
//! natively (`guest-sdk/tests/syscalls.rs`).

pub mod errno;
pub mod tables;

use alloc::vec::Vec;
use wasmtap_abi::{
    STR_STATUS_LEN, USER_READ_HEADER_LEN,
    sysarg::{ArgKind, SOCKADDR_HEAD, TIMESPEC_LEN},
};

use crate::fmt::push_i64;
use crate::strings::{cstr_len, text_str};
use tables::Table;

/// `AT_FDCWD`, the dirfd that means "the current directory".
const AT_FDCWD: i64 = -100;

/// Appends `value` rendered as `kind`. Kinds that need captured bytes
/// (strings, argv, buffers) fall back to the raw value in hex: the compiler
/// renders them with [`push_user_str`], [`push_argv`] and [`push_buf`].
pub fn push_arg(out: &mut Vec<u8>, value: i64, kind: ArgKind) {
    let bits = value as u64;
    match kind {
        ArgKind::Dec => push_i64(out, value),
        ArgKind::Int => push_i64(out, value as i32 as i64),
        ArgKind::UDec => push_u64(out, bits),
        ArgKind::Hex
        | ArgKind::Str
        | ArgKind::Argv
        | ArgKind::Buf
        | ArgKind::Sockaddr
        | ArgKind::Timespec => push_hex(out, bits),
        ArgKind::HexOrZero if bits == 0 => out.push(b'0'),
        ArgKind::HexOrZero => push_hex(out, bits),
        ArgKind::Oct | ArgKind::CreatMode => push_octal(out, bits as u32 as u64),
        ArgKind::DirFd => {
            if value as i32 as i64 == AT_FDCWD {
                out.extend_from_slice(b"AT_FDCWD");
            } else {
                push_i64(out, value as i32 as i64);
            }
        }
        ArgKind::OpenFlags => push_open_flags(out, bits as u32 as u64),
        ArgKind::AccessMode => push_flags(out, bits as u32 as u64, tables::ACCESS_MODE, "F_OK"),
        ArgKind::Prot => push_flags(out, bits, tables::PROT, "PROT_NONE"),
        ArgKind::MmapFlags => {
            push_enum(out, bits & 0xf, tables::MAP_TYPE);
            push_more_flags(out, bits & !0xf, tables::MAP_FLAGS);
        }
        ArgKind::MremapFlags => push_flags(out, bits, tables::MREMAP_FLAGS, "0"),
        ArgKind::MsyncFlags => push_flags(out, bits as u32 as u64, tables::MSYNC_FLAGS, "0"),
        ArgKind::Madvise => push_enum(out, value as i32 as i64 as u64, tables::MADVISE),
        ArgKind::Signal => push_signal(out, value as i32 as i64),
        ArgKind::SigHow => push_enum(out, bits as u32 as u64, tables::SIG_HOW),
        ArgKind::SockFamily => push_enum(out, bits as u32 as u64, tables::SOCK_FAMILY),
        ArgKind::SockType => {
            let ty = bits as u32 as u64;
            push_enum(out, ty & 0xf, tables::SOCK_TYPE);
            push_more_flags(out, ty & !0xf, tables::SOCK_FLAGS);
        }
        ArgKind::SockFlags => push_flags(out, bits as u32 as u64, tables::SOCK_FLAGS, "0"),
        ArgKind::SockLevel => push_enum(out, bits as u32 as u64, tables::SOCK_LEVEL),
        ArgKind::MsgFlags => push_flags(out, bits as u32 as u64, tables::MSG_FLAGS, "0"),
        ArgKind::ShutdownHow => push_enum(out, bits as u32 as u64, tables::SHUTDOWN_HOW),
        ArgKind::CloneFlags => push_clone_flags(out, bits),
        ArgKind::FutexOp => push_futex_op(out, bits as u32 as u64),
        ArgKind::Whence => push_enum(out, bits as u32 as u64, tables::WHENCE),
        ArgKind::FcntlCmd => push_enum(out, bits as u32 as u64, tables::FCNTL_CMD),
        ArgKind::EpollCtlOp => push_enum(out, bits as u32 as u64, tables::EPOLL_CTL),
        ArgKind::EpollFlags => push_flags(out, bits as u32 as u64, tables::EPOLL_FLAGS, "0"),
        ArgKind::EventfdFlags => push_flags(out, bits as u32 as u64, tables::EVENTFD_FLAGS, "0"),
        ArgKind::CloexecFlags => push_flags(out, bits as u32 as u64, tables::CLOEXEC_FLAGS, "0"),
        ArgKind::WaitOptions => push_flags(out, bits as u32 as u64, tables::WAIT_OPTIONS, "0"),
        ArgKind::IdType => push_enum(out, bits as u32 as u64, tables::ID_TYPE),
        ArgKind::AtFlags => push_flags(out, bits as u32 as u64, tables::AT_FLAGS, "0"),
        ArgKind::ClockId => push_enum(out, value as i32 as i64 as u64, tables::CLOCK_ID),
        ArgKind::Rlimit => push_enum(out, bits as u32 as u64, tables::RLIMIT),
        ArgKind::ArchPrctl => push_enum(out, bits as u32 as u64, tables::ARCH_PRCTL),
        ArgKind::FlockOp => push_flags(out, bits as u32 as u64, tables::FLOCK_OP, "0"),
        ArgKind::GrndFlags => push_flags(out, bits as u32 as u64, tables::GRND_FLAGS, "0"),
        ArgKind::RenameFlags => push_flags(out, bits as u32 as u64, tables::RENAME_FLAGS, "0"),
        ArgKind::RetErrno => push_retstr(out, value, false),
        ArgKind::RetHex => push_retstr(out, value, true),
    }
}

/// stap's `retstr`: an error as `-2 (ENOENT)`; otherwise the value in
/// decimal, or in hex where the syscall returns an address (`hex`).
pub fn push_retstr(out: &mut Vec<u8>, ret: i64, hex: bool) {
    if errno::is_error(ret) {
        push_i64(out, ret);
        if let Some(name) = errno::name(-ret) {
            out.extend_from_slice(b" (");
            out.extend_from_slice(name.as_bytes());
            out.push(b')');
        }
    } else if hex {
        push_hex(out, ret as u64);
    } else {
        push_i64(out, ret);
    }
}

/// The bytes of a string slot (`UserStr`: i32 status, then the bytes), or
/// `None` where the kernel could not read the string.
fn slot_str(slot: &[u8]) -> Option<&[u8]> {
    let status = slot_status(slot)?;
    let data = &slot[STR_STATUS_LEN..];
    let n = usize::try_from(status).ok()?.min(data.len());
    Some(&data[..cstr_len(&data[..n])])
}

fn slot_status(slot: &[u8]) -> Option<i32> {
    let head: [u8; STR_STATUS_LEN] = slot.get(..STR_STATUS_LEN)?.try_into().ok()?;
    Some(i32::from_le_bytes(head))
}

/// stap's `user_string_quoted`: the string of a `UserStr` slot in double
/// quotes with escapes (`"/etc/passwd"`), `NULL` for a null `pointer`, and
/// the pointer in hex where the kernel could not read it.
pub fn push_user_str(out: &mut Vec<u8>, slot: &[u8], pointer: i64, max: usize) {
    if pointer == 0 {
        out.extend_from_slice(b"NULL");
        return;
    }
    match slot_str(slot) {
        Some(text) => text_str(out, text, 0, true, false, max),
        None => push_hex(out, pointer as u64),
    }
}

/// stap's `user_buffer_quoted`: at most `count` bytes of a `UserStr` slot,
/// quoted, followed by `...` when the buffer was longer than what was
/// captured (the kernel copies a short prefix; a NUL byte also ends it).
pub fn push_buf(out: &mut Vec<u8>, slot: &[u8], pointer: i64, count: i64, max: usize) {
    if pointer == 0 {
        out.extend_from_slice(b"NULL");
        return;
    }
    let Some(text) = slot_str(slot) else {
        push_hex(out, pointer as u64);
        return;
    };
    let count = usize::try_from(count).unwrap_or(0);
    let shown = &text[..text.len().min(count)];
    text_str(out, shown, 0, true, false, max);
    if count > shown.len() {
        out.extend_from_slice(b"...");
    }
}

/// stap's `__get_argv`: the strings of a `UserStrArray` slot (i32 count,
/// then NUL-terminated strings back to back) as `["ls", "-l"]`; `NULL` for
/// a null `pointer`, the pointer in hex when the array was unreadable.
pub fn push_argv(out: &mut Vec<u8>, slot: &[u8], pointer: i64, max: usize) {
    if pointer == 0 {
        out.extend_from_slice(b"NULL");
        return;
    }
    let Some(count) = slot_status(slot).and_then(|n| usize::try_from(n).ok()) else {
        push_hex(out, pointer as u64);
        return;
    };
    let mut rest = &slot[STR_STATUS_LEN..];
    out.push(b'[');
    for i in 0..count.min(wasmtap_abi::MAX_ARGV) {
        if rest.is_empty() {
            break;
        }
        let n = cstr_len(rest);
        if i > 0 {
            out.extend_from_slice(b", ");
        }
        text_str(out, &rest[..n], 0, true, false, max);
        rest = rest.get(n + 1..).unwrap_or(&[]);
    }
    out.push(b']');
}

/// The data of a `UserRead` slot (status, padding, address, then the
/// bytes), or `None` where the kernel could not read it.
fn read_slot(slot: &[u8]) -> Option<&[u8]> {
    let status = usize::try_from(slot_status(slot)?).ok()?;
    let data = slot.get(USER_READ_HEADER_LEN..)?;
    Some(&data[..status.min(data.len())])
}

/// stap's `_struct_sockaddr_u`: the sockaddr of `addrlen` bytes that the
/// kernel read into `head` (the first [`SOCKADDR_HEAD`] bytes) and `tail`
/// (the rest, which may be unreadable when the struct is short):
/// `{AF_INET, 127.0.0.1, 80}`, `{AF_INET6, [::1], 80}`, `{AF_UNIX,
/// "/run/x.sock"}` (abstract names start with `@`), `{AF_NETLINK}` for
/// other families; `NULL` for a null `pointer`, the pointer in hex when
/// unreadable or too short for its family.
pub fn push_sockaddr(
    out: &mut Vec<u8>,
    head: &[u8],
    tail: &[u8],
    pointer: i64,
    addrlen: i64,
    max: usize,
) {
    if pointer == 0 {
        out.extend_from_slice(b"NULL");
        return;
    }
    let mut bytes = Vec::new();
    if let Some(head) = read_slot(head) {
        bytes.extend_from_slice(head);
        if head.len() == SOCKADDR_HEAD as usize
            && let Some(tail) = read_slot(tail)
        {
            bytes.extend_from_slice(tail);
        }
    }
    let len = usize::try_from(addrlen).unwrap_or(0).min(bytes.len());
    if !push_sockaddr_bytes(out, &bytes[..len], max) {
        push_hex(out, pointer as u64);
    }
}

/// Appends a sockaddr's bytes as [`push_sockaddr`] does; false when they
/// are too short for their family.
fn push_sockaddr_bytes(out: &mut Vec<u8>, sa: &[u8], max: usize) -> bool {
    use core::fmt::Write as _;
    const AF_UNIX: u16 = 1;
    const AF_INET: u16 = 2;
    const AF_INET6: u16 = 10;
    let Some(family) = sa.get(..2).map(|b| u16::from_le_bytes([b[0], b[1]])) else {
        return false;
    };
    let port = |sa: &[u8]| u16::from_be_bytes([sa[2], sa[3]]);
    let mut text = alloc::string::String::new();
    match family {
        AF_INET if sa.len() >= 8 => {
            let addr = core::net::Ipv4Addr::new(sa[4], sa[5], sa[6], sa[7]);
            let _ = write!(text, "{{AF_INET, {addr}, {}}}", port(sa));
        }
        AF_INET6 if sa.len() >= 24 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&sa[8..24]);
            let addr = core::net::Ipv6Addr::from(octets);
            let _ = write!(text, "{{AF_INET6, [{addr}], {}}}", port(sa));
        }
        AF_UNIX => {
            let path = &sa[2..];
            out.extend_from_slice(b"{AF_UNIX, ");
            match path.split_first() {
                // An abstract name: every byte up to addrlen counts.
                Some((0, name)) if !name.is_empty() => {
                    let mut shown = Vec::with_capacity(name.len() + 1);
                    shown.push(b'@');
                    shown.extend_from_slice(name);
                    text_str(out, &shown, 0, true, false, max);
                }
                _ => text_str(out, &path[..cstr_len(path)], 0, true, false, max),
            }
            out.push(b'}');
            return true;
        }
        AF_INET | AF_INET6 => return false,
        _ => {
            out.push(b'{');
            push_enum(out, u64::from(family), tables::SOCK_FAMILY);
            out.push(b'}');
            return true;
        }
    }
    out.extend_from_slice(text.as_bytes());
    true
}

/// stap's `_struct_timespec_u`: `[seconds.nanoseconds]` of the timespec in
/// a `UserRead` slot; `NULL` for a null `pointer`, the pointer in hex when
/// unreadable.
pub fn push_timespec(out: &mut Vec<u8>, slot: &[u8], pointer: i64) {
    if pointer == 0 {
        out.extend_from_slice(b"NULL");
        return;
    }
    let Some(ts) = read_slot(slot).filter(|d| d.len() >= TIMESPEC_LEN as usize) else {
        push_hex(out, pointer as u64);
        return;
    };
    let field = |at: usize| i64::from_le_bytes(ts[at..at + 8].try_into().unwrap_or([0; 8]));
    out.push(b'[');
    push_i64(out, field(0));
    out.push(b'.');
    let nanos = field(8);
    let mut digits = Vec::new();
    push_i64(&mut digits, nanos);
    for _ in digits.len()..9 {
        out.push(b'0');
    }
    out.extend_from_slice(&digits);
    out.push(b']');
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = v;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// `%p` / `%#x`: `0x` then lowercase hex; 0 is `0x0`.
fn push_hex(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(b"0x");
    let digits = (64 - v.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(b"0123456789abcdef"[((v >> (i * 4)) & 0xf) as usize]);
    }
}

/// `%#o`: a leading 0 unless the value is 0.
fn push_octal(out: &mut Vec<u8>, v: u64) {
    if v == 0 {
        out.push(b'0');
        return;
    }
    let digits = (64 - v.leading_zeros()).div_ceil(3);
    out.push(b'0');
    for i in (0..digits).rev() {
        out.push(b'0' + ((v >> (i * 3)) & 7) as u8);
    }
}

/// The name of `value` in `table`, or the value in decimal.
fn push_enum(out: &mut Vec<u8>, value: u64, table: Table) {
    match table.iter().find(|(v, _)| *v == value) {
        Some((_, name)) => out.extend_from_slice(name.as_bytes()),
        None => push_i64(out, value as i64),
    }
}

/// `A|B|0x40` for the bits of `value`, or `zero` when it is 0.
fn push_flags(out: &mut Vec<u8>, value: u64, table: Table, zero: &str) {
    if value == 0 {
        out.extend_from_slice(zero.as_bytes());
        return;
    }
    let start = out.len();
    push_bits(out, value, table, start);
}

/// `|A|B` for the bits of `value` after something already printed.
fn push_more_flags(out: &mut Vec<u8>, value: u64, table: Table) {
    push_bits(out, value, table, usize::MAX);
}

/// Appends the names of the bits of `value`, each preceded by `|` unless it
/// is the first since `start`; bits without a name as one hex number.
fn push_bits(out: &mut Vec<u8>, value: u64, table: Table, start: usize) {
    let mut rest = value;
    for &(bits, name) in table {
        if bits != 0 && rest & bits == bits {
            if out.len() != start {
                out.push(b'|');
            }
            out.extend_from_slice(name.as_bytes());
            rest &= !bits;
        }
    }
    if rest != 0 {
        if out.len() != start {
            out.push(b'|');
        }
        push_hex(out, rest);
    }
}

fn push_open_flags(out: &mut Vec<u8>, flags: u64) {
    push_enum(out, flags & 3, tables::OPEN_ACCMODE);
    push_more_flags(out, flags & !3, tables::OPEN_FLAGS);
}

/// Whether open(2) flags make the call take a mode (`O_CREAT`,
/// `O_TMPFILE`), so `argstr` prints it.
pub fn open_takes_mode(flags: i64) -> bool {
    flags as u64 & wasmtap_abi::sysarg::OPEN_TAKES_MODE != 0
}

/// `SIGTERM`, `SIGRTMIN+3`, or the number.
fn push_signal(out: &mut Vec<u8>, sig: i64) {
    match sig {
        1..=31 => out.extend_from_slice(tables::SIGNALS[(sig - 1) as usize].as_bytes()),
        _ if (tables::SIGRTMIN as i64..=tables::SIGRTMAX as i64).contains(&sig) => {
            out.extend_from_slice(b"SIGRTMIN");
            let n = sig - tables::SIGRTMIN as i64;
            if n > 0 {
                out.push(b'+');
                push_i64(out, n);
            }
        }
        _ => push_i64(out, sig),
    }
}

/// `CLONE_VM|CLONE_FS|...|SIGCHLD`: the flags, then the exit signal.
fn push_clone_flags(out: &mut Vec<u8>, flags: u64) {
    let start = out.len();
    push_bits(out, flags & !0xff, tables::CLONE_FLAGS, start);
    let signal = (flags & 0xff) as i64;
    if signal != 0 {
        if out.len() != start {
            out.push(b'|');
        }
        push_signal(out, signal);
    }
    if out.len() == start {
        out.push(b'0');
    }
}

/// `FUTEX_WAIT_PRIVATE`, `FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME`.
fn push_futex_op(out: &mut Vec<u8>, op: u64) {
    let cmd = op & !(tables::FUTEX_PRIVATE | tables::FUTEX_CLOCK_REALTIME);
    push_enum(out, cmd, tables::FUTEX_CMD);
    if op & tables::FUTEX_PRIVATE != 0 {
        out.extend_from_slice(b"_PRIVATE");
    }
    if op & tables::FUTEX_CLOCK_REALTIME != 0 {
        out.extend_from_slice(b"|FUTEX_CLOCK_REALTIME");
    }
}

/// The runtime entry points behind the `fmt_sys*` and `sys_retstr` exports.
impl crate::Runtime {
    /// Appends `value` rendered as the [`ArgKind`] byte `kind` (an unknown
    /// byte renders in hex).
    pub fn fmt_sysarg(&mut self, value: i64, kind: i32) {
        let kind = ArgKind::from_u8(kind as u8).unwrap_or(ArgKind::Hex);
        self.fmt_with(|out| push_arg(out, value, kind));
    }

    /// Appends a quoted user string slot ([`push_user_str`]).
    pub fn fmt_sys_str(&mut self, slot: &[u8], pointer: i64) {
        let max = self.max_string();
        self.fmt_with(|out| push_user_str(out, slot, pointer, max));
    }

    /// Appends an argv slot as a list ([`push_argv`]).
    pub fn fmt_sys_argv(&mut self, slot: &[u8], pointer: i64) {
        let max = self.max_string();
        self.fmt_with(|out| push_argv(out, slot, pointer, max));
    }

    /// Appends a quoted buffer slot ([`push_buf`]).
    pub fn fmt_sys_buf(&mut self, slot: &[u8], pointer: i64, count: i64) {
        let max = self.max_string();
        self.fmt_with(|out| push_buf(out, slot, pointer, count, max));
    }

    /// Appends a sockaddr read in two slots ([`push_sockaddr`]).
    pub fn fmt_sys_sockaddr(&mut self, head: &[u8], tail: &[u8], pointer: i64, addrlen: i64) {
        let max = self.max_string();
        self.fmt_with(|out| push_sockaddr(out, head, tail, pointer, addrlen, max));
    }

    /// Appends a timespec slot ([`push_timespec`]).
    pub fn fmt_sys_timespec(&mut self, slot: &[u8], pointer: i64) {
        self.fmt_with(|out| push_timespec(out, slot, pointer));
    }

    /// stap's `retstr` as a string value ([`push_retstr`]); `kind` is
    /// [`ArgKind::RetHex`] for calls that return addresses.
    pub fn sys_retstr(&mut self, value: i64, kind: i32) -> crate::Str {
        self.fmt_begin();
        let hex = kind == ArgKind::RetHex as i32;
        self.fmt_with(|out| push_retstr(out, value, hex));
        self.fmt_end()
    }
}
