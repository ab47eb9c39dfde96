//! How a syscall argument or return value is rendered in stap's `argstr`
//! and `retstr`.
//!
//! The compiler's per-syscall table (`compiler/data/syscall_argstr.tsv`)
//! names a [`ArgKind`] for every argument; the generated code hands the raw
//! value and the kind's byte to the guest runtime (`fmt_sysarg`,
//! `sys_retstr`), whose decoders (`guest-sdk/src/syscalls`) print it the way
//! SystemTap's tapsets do. Shared here so both sides agree on the bytes.

macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident = $byte:literal, $name:literal;)*) => {
        /// The rendering of one syscall argument or return value.
        #[repr(u8)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ArgKind {
            $($(#[$doc])* $variant = $byte,)*
        }

        impl ArgKind {
            /// Every kind, in byte order.
            pub const ALL: &'static [ArgKind] = &[$(ArgKind::$variant,)*];

            /// Decodes a byte; unknown bytes are `None`.
            pub fn from_u8(byte: u8) -> Option<Self> {
                match byte {
                    $($byte => Some(ArgKind::$variant),)*
                    _ => None,
                }
            }

            /// The kind's name in the compiler's syscall table.
            pub fn name(self) -> &'static str {
                match self {
                    $(ArgKind::$variant => $name,)*
                }
            }

            /// The kind named `name` in the compiler's syscall table.
            pub fn from_name(name: &str) -> Option<Self> {
                match name {
                    $($name => Some(ArgKind::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

kinds! {
    /// Signed decimal of the full 64 bits (`%d`).
    Dec = 0, "d";
    /// Signed decimal of the low 32 bits (fds, pids, C `int`).
    Int = 1, "int";
    /// Unsigned decimal (`%u`: sizes, counts).
    UDec = 2, "u";
    /// A pointer or an opaque value in hex (`%p`; NULL is `0x0`).
    Hex = 3, "hex";
    /// Octal with a leading 0 (`%#o`: modes, umask).
    Oct = 4, "oct";
    /// A directory fd: `AT_FDCWD` for -100, else the number.
    DirFd = 5, "dirfd";
    /// open(2) flags: `O_RDONLY|O_CLOEXEC`.
    OpenFlags = 6, "open_flags";
    /// access(2) mode: `F_OK`, `R_OK|W_OK`.
    AccessMode = 7, "access_mode";
    /// mmap/mprotect protection: `PROT_READ|PROT_WRITE`, `PROT_NONE`.
    Prot = 8, "prot";
    /// mmap flags: `MAP_PRIVATE|MAP_ANONYMOUS`.
    MmapFlags = 9, "mmap_flags";
    /// A signal number: `SIGTERM`.
    Signal = 10, "signal";
    /// sigprocmask's `how`: `SIG_BLOCK`.
    SigHow = 11, "sighow";
    /// A socket address family: `AF_INET`.
    SockFamily = 12, "sock_family";
    /// A socket type with its flags: `SOCK_STREAM|SOCK_CLOEXEC`.
    SockType = 13, "sock_type";
    /// send/recv flags: `MSG_PEEK`, `0` for none.
    MsgFlags = 14, "msg_flags";
    /// clone flags with the exit signal: `CLONE_VM|...|SIGCHLD`.
    CloneFlags = 15, "clone_flags";
    /// A futex operation: `FUTEX_WAIT_PRIVATE`.
    FutexOp = 16, "futex_op";
    /// lseek's whence: `SEEK_SET`.
    Whence = 17, "whence";
    /// An fcntl command: `F_GETFL`.
    FcntlCmd = 18, "fcntl_cmd";
    /// epoll_ctl's op: `EPOLL_CTL_ADD`.
    EpollCtlOp = 19, "epoll_op";
    /// wait4/waitid options: `WNOHANG|WEXITED`, `0` for none.
    WaitOptions = 20, "wait_options";
    /// waitid's id type: `P_PID`.
    IdType = 21, "idtype";
    /// `AT_*` flags: `AT_SYMLINK_NOFOLLOW`, `0` for none.
    AtFlags = 22, "at_flags";
    /// A clock id: `CLOCK_MONOTONIC`.
    ClockId = 23, "clock_id";
    /// An rlimit resource: `RLIMIT_NOFILE`.
    Rlimit = 24, "rlimit";
    /// mremap flags: `MREMAP_MAYMOVE`.
    MremapFlags = 25, "mremap_flags";
    /// madvise advice: `MADV_DONTNEED`.
    Madvise = 26, "madvise";
    /// shutdown's how: `SHUT_RDWR`.
    ShutdownHow = 27, "shutdown_how";
    /// Flags made of `O_CLOEXEC`/`O_NONBLOCK`/`O_DIRECT` (pipe2, dup3):
    /// `O_CLOEXEC`, `0` for none.
    CloexecFlags = 28, "cloexec_flags";
    /// epoll_create1 flags: `EPOLL_CLOEXEC`.
    EpollFlags = 29, "epoll_flags";
    /// eventfd2 flags: `EFD_CLOEXEC|EFD_NONBLOCK`.
    EventfdFlags = 30, "eventfd_flags";
    /// arch_prctl codes: `ARCH_SET_FS`.
    ArchPrctl = 31, "arch_prctl";
    /// msync flags: `MS_SYNC`.
    MsyncFlags = 32, "msync_flags";
    /// flock operations: `LOCK_EX|LOCK_NB`.
    FlockOp = 33, "flock_op";
    /// getrandom flags: `GRND_NONBLOCK`.
    GrndFlags = 34, "grnd_flags";
    /// renameat2 flags: `RENAME_NOREPLACE`.
    RenameFlags = 35, "rename_flags";
    /// A socket option level: `SOL_SOCKET`.
    SockLevel = 36, "sock_level";
    /// Hex of the value if it is non-zero, else `0` (prctl's extra args).
    HexOrZero = 37, "hexz";
    /// accept4 flags: `SOCK_NONBLOCK|SOCK_CLOEXEC`, `0` for none.
    SockFlags = 38, "sock_flags";
    /// A return value: the number, or `-2 (ENOENT)` for errors (stap's
    /// `retstr`).
    RetErrno = 64, "ret";
    /// A return value that is an address on success (mmap, brk, mremap):
    /// hex, or the errno form for errors.
    RetHex = 65, "ret_hex";
    /// Compiler only: a NUL-terminated user string, quoted (stap's
    /// `user_string_quoted`): `NULL` for 0, the pointer in hex if unreadable.
    Str = 128, "string";
    /// Compiler only: a user `char **` array as a list, `["ls", "-l"]`.
    Argv = 129, "argv";
    /// Compiler only: a user buffer of `count` bytes, quoted and cut short
    /// with `...` (write's data).
    Buf = 130, "buf";
    /// Compiler only: a mode printed in octal only when the `flags`
    /// argument has `O_CREAT` or `O_TMPFILE` (open, openat).
    CreatMode = 131, "creat_mode";
    /// Compiler only: a user `struct sockaddr *` of `addrlen` bytes, read
    /// in the kernel ([`SOCKADDR_HEAD`] + [`SOCKADDR_TAIL`] bytes):
    /// `{AF_INET, 127.0.0.1, 80}`, `{AF_INET6, [::1], 80}`,
    /// `{AF_UNIX, "/run/x.sock"}`.
    Sockaddr = 132, "sockaddr";
    /// Compiler only: a user `struct timespec *`, read in the kernel:
    /// `[1.500000000]`, `NULL` for 0.
    Timespec = 133, "timespec";
}

/// Bytes of a sockaddr read in a first `UserRead`: all of a
/// `sockaddr_in6` (so any inet address is complete even when the rest of
/// the largest sockaddr is not readable).
pub const SOCKADDR_HEAD: u16 = 28;
/// Bytes read after [`SOCKADDR_HEAD`] in a second `UserRead`, up to the
/// size of a `sockaddr_un` (110).
pub const SOCKADDR_TAIL: u16 = 82;
/// Bytes of a `struct timespec`.
pub const TIMESPEC_LEN: u16 = 16;

/// `struct pt_regs` byte offsets of the registers carrying syscall
/// arguments 0..=5 on x86_64 (di, si, dx, r10, r8, r9): where user memory
/// reads behind syscall pointer arguments take their base.
pub const SYSCALL_ARG_REGS: [u16; 6] = [112, 104, 96, 56, 72, 64];

/// `O_CREAT | __O_TMPFILE`: open(2) flags with which the call takes a mode,
/// so `argstr` prints it ([`ArgKind::CreatMode`]).
pub const OPEN_TAKES_MODE: u64 = 0o100 | 0o20000000;

#[cfg(test)]
mod tests {
    use super::ArgKind;

    #[test]
    fn kinds_round_trip() {
        for &kind in ArgKind::ALL {
            assert_eq!(ArgKind::from_u8(kind as u8), Some(kind));
            assert_eq!(ArgKind::from_name(kind.name()), Some(kind));
        }
    }
}
