//! Native tests of the syscall decoders: each renders what SystemTap's
//! tapsets print for the same value.

use wasmtap_abi::sysarg::ArgKind;
use wasmtap_guest::syscalls::{
    errno, open_takes_mode, push_arg, push_argv, push_buf, push_retstr, push_sockaddr,
    push_timespec, push_user_str,
};

fn arg(value: i64, kind: ArgKind) -> String {
    let mut out = Vec::new();
    push_arg(&mut out, value, kind);
    String::from_utf8(out).unwrap()
}

fn ret(value: i64, hex: bool) -> String {
    let mut out = Vec::new();
    push_retstr(&mut out, value, hex);
    String::from_utf8(out).unwrap()
}

/// A `UserStr` slot: status then the bytes.
fn str_slot(status: i32, bytes: &[u8]) -> Vec<u8> {
    let mut slot = status.to_le_bytes().to_vec();
    slot.extend_from_slice(bytes);
    slot.resize(4 + 64, 0);
    slot
}

#[test]
fn numbers() {
    assert_eq!(arg(3, ArgKind::Int), "3");
    assert_eq!(arg(0xffff_ffff, ArgKind::Int), "-1", "fds are C ints");
    assert_eq!(arg(-1, ArgKind::UDec), "18446744073709551615");
    assert_eq!(arg(4096, ArgKind::UDec), "4096");
    assert_eq!(arg(0, ArgKind::Hex), "0x0", "NULL");
    assert_eq!(arg(0x7ffd_1234_abcd, ArgKind::Hex), "0x7ffd1234abcd");
    assert_eq!(arg(0o644, ArgKind::Oct), "0644");
    assert_eq!(arg(0, ArgKind::Oct), "0");
    assert_eq!(arg(0, ArgKind::HexOrZero), "0");
}

#[test]
fn files() {
    assert_eq!(arg(-100, ArgKind::DirFd), "AT_FDCWD");
    assert_eq!(arg(0xffff_ff9c, ArgKind::DirFd), "AT_FDCWD");
    assert_eq!(arg(5, ArgKind::DirFd), "5");
    assert_eq!(arg(0o2000000, ArgKind::OpenFlags), "O_RDONLY|O_CLOEXEC");
    assert_eq!(arg(0o1101, ArgKind::OpenFlags), "O_WRONLY|O_CREAT|O_TRUNC");
    assert_eq!(arg(0o2, ArgKind::OpenFlags), "O_RDWR");
    assert_eq!(
        arg(0o2200000 | 0o4000, ArgKind::OpenFlags),
        "O_RDONLY|O_NONBLOCK|O_DIRECTORY|O_CLOEXEC"
    );
    assert_eq!(arg(0o4010001, ArgKind::OpenFlags), "O_WRONLY|O_SYNC");
    assert_eq!(arg(0o20200002, ArgKind::OpenFlags), "O_RDWR|O_TMPFILE");
    assert_eq!(
        arg(0o2000000 | 0x4000_0000, ArgKind::OpenFlags),
        "O_RDONLY|O_CLOEXEC|0x40000000",
        "unknown bits in hex"
    );
    assert!(open_takes_mode(0o100));
    assert!(!open_takes_mode(0o2000000));
    assert_eq!(arg(0, ArgKind::AccessMode), "F_OK");
    assert_eq!(arg(6, ArgKind::AccessMode), "R_OK|W_OK");
    assert_eq!(arg(0, ArgKind::AtFlags), "0");
    assert_eq!(
        arg(0x1100, ArgKind::AtFlags),
        "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH"
    );
    assert_eq!(arg(0x200, ArgKind::AtFlags), "AT_REMOVEDIR");
    assert_eq!(arg(2, ArgKind::Whence), "SEEK_END");
    assert_eq!(arg(3, ArgKind::FcntlCmd), "F_GETFL");
    assert_eq!(arg(1030, ArgKind::FcntlCmd), "F_DUPFD_CLOEXEC");
    assert_eq!(arg(999, ArgKind::FcntlCmd), "999");
    assert_eq!(arg(0o2000000, ArgKind::CloexecFlags), "O_CLOEXEC");
    assert_eq!(arg(6, ArgKind::FlockOp), "LOCK_EX|LOCK_NB");
    assert_eq!(arg(1, ArgKind::RenameFlags), "RENAME_NOREPLACE");
}

#[test]
fn memory() {
    assert_eq!(arg(0, ArgKind::Prot), "PROT_NONE");
    assert_eq!(arg(3, ArgKind::Prot), "PROT_READ|PROT_WRITE");
    assert_eq!(arg(5, ArgKind::Prot), "PROT_READ|PROT_EXEC");
    assert_eq!(arg(0x22, ArgKind::MmapFlags), "MAP_PRIVATE|MAP_ANONYMOUS");
    assert_eq!(
        arg(0x812, ArgKind::MmapFlags),
        "MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE"
    );
    assert_eq!(arg(1, ArgKind::MmapFlags), "MAP_SHARED");
    assert_eq!(arg(1, ArgKind::MremapFlags), "MREMAP_MAYMOVE");
    assert_eq!(arg(4, ArgKind::Madvise), "MADV_DONTNEED");
    assert_eq!(arg(4, ArgKind::MsyncFlags), "MS_SYNC");
}

#[test]
fn processes_and_signals() {
    assert_eq!(arg(15, ArgKind::Signal), "SIGTERM");
    assert_eq!(arg(9, ArgKind::Signal), "SIGKILL");
    assert_eq!(arg(0, ArgKind::Signal), "0");
    assert_eq!(arg(34, ArgKind::Signal), "SIGRTMIN+2");
    assert_eq!(arg(1, ArgKind::SigHow), "SIG_UNBLOCK");
    assert_eq!(
        arg(0x0120_0011, ArgKind::CloneFlags),
        "CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD"
    );
    assert_eq!(
        arg(0x3d0f00, ArgKind::CloneFlags),
        "CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID"
    );
    assert_eq!(arg(0, ArgKind::CloneFlags), "0");
    assert_eq!(arg(128, ArgKind::FutexOp), "FUTEX_WAIT_PRIVATE");
    assert_eq!(arg(129, ArgKind::FutexOp), "FUTEX_WAKE_PRIVATE");
    assert_eq!(
        arg(9 | 128 | 256, ArgKind::FutexOp),
        "FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME"
    );
    assert_eq!(arg(1, ArgKind::WaitOptions), "WNOHANG");
    assert_eq!(arg(0, ArgKind::WaitOptions), "0");
    assert_eq!(arg(5, ArgKind::WaitOptions), "WNOHANG|WEXITED");
    assert_eq!(arg(1, ArgKind::IdType), "P_PID");
    assert_eq!(arg(1, ArgKind::ClockId), "CLOCK_MONOTONIC");
    assert_eq!(arg(7, ArgKind::Rlimit), "RLIMIT_NOFILE");
    assert_eq!(arg(0x1002, ArgKind::ArchPrctl), "ARCH_SET_FS");
}

#[test]
fn sockets_and_polling() {
    assert_eq!(arg(2, ArgKind::SockFamily), "AF_INET");
    assert_eq!(arg(10, ArgKind::SockFamily), "AF_INET6");
    assert_eq!(arg(1, ArgKind::SockFamily), "AF_UNIX");
    assert_eq!(
        arg(1 | 0o2000000, ArgKind::SockType),
        "SOCK_STREAM|SOCK_CLOEXEC"
    );
    assert_eq!(
        arg(2 | 0o4000, ArgKind::SockType),
        "SOCK_DGRAM|SOCK_NONBLOCK"
    );
    assert_eq!(arg(0o2000000, ArgKind::SockFlags), "SOCK_CLOEXEC");
    assert_eq!(arg(0, ArgKind::SockFlags), "0");
    assert_eq!(arg(2, ArgKind::MsgFlags), "MSG_PEEK");
    assert_eq!(arg(0, ArgKind::MsgFlags), "0");
    assert_eq!(arg(0x4040, ArgKind::MsgFlags), "MSG_DONTWAIT|MSG_NOSIGNAL");
    assert_eq!(arg(2, ArgKind::ShutdownHow), "SHUT_RDWR");
    assert_eq!(arg(1, ArgKind::SockLevel), "SOL_SOCKET");
    assert_eq!(arg(1, ArgKind::EpollCtlOp), "EPOLL_CTL_ADD");
    assert_eq!(arg(0o2000000, ArgKind::EpollFlags), "EPOLL_CLOEXEC");
    assert_eq!(
        arg(0o2004000, ArgKind::EventfdFlags),
        "EFD_NONBLOCK|EFD_CLOEXEC"
    );
    assert_eq!(arg(1, ArgKind::GrndFlags), "GRND_NONBLOCK");
}

#[test]
fn return_values() {
    assert_eq!(ret(-2, false), "-2 (ENOENT)");
    assert_eq!(ret(-13, false), "-13 (EACCES)");
    assert_eq!(ret(-11, false), "-11 (EAGAIN)");
    assert_eq!(ret(-512, false), "-512 (ERESTARTSYS)");
    assert_eq!(ret(-41, false), "-41", "41 is unused");
    assert_eq!(ret(3, false), "3");
    assert_eq!(ret(0, false), "0");
    assert_eq!(ret(0x7f12_3456_7000, true), "0x7f1234567000");
    assert_eq!(ret(-12, true), "-12 (ENOMEM)");
    assert_eq!(ret(-5000, false), "-5000", "not an error value");
    for n in 1..=133 {
        if n != 41 && n != 58 {
            assert!(errno::name(n).is_some(), "errno {n} has a name");
        }
    }
    assert_eq!(errno::name(133), Some("EHWPOISON"));
}

#[test]
fn user_strings() {
    let mut out = Vec::new();
    push_user_str(&mut out, &str_slot(11, b"/etc/passwd\0"), 0x1000, 1023);
    assert_eq!(out, b"\"/etc/passwd\"");
    out.clear();
    push_user_str(&mut out, &str_slot(5, b"a\nb\"c"), 0x1000, 1023);
    assert_eq!(out, b"\"a\\nb\\\"c\"", "escaped like stap's text_str");
    out.clear();
    push_user_str(&mut out, &str_slot(-14, b""), 0x7fff_0000, 1023);
    assert_eq!(out, b"0x7fff0000", "unreadable: the pointer");
    out.clear();
    push_user_str(&mut out, &str_slot(-14, b""), 0, 1023);
    assert_eq!(out, b"NULL");
}

#[test]
fn write_buffers() {
    let mut out = Vec::new();
    push_buf(&mut out, &str_slot(6, b"hello\n"), 0x1000, 6, 1023);
    assert_eq!(out, b"\"hello\\n\"");
    out.clear();
    push_buf(&mut out, &str_slot(11, b"hello world"), 0x1000, 5, 1023);
    assert_eq!(out, b"\"hello\"", "no more than count bytes");
    out.clear();
    push_buf(&mut out, &str_slot(4, b"abcd"), 0x1000, 4096, 1023);
    assert_eq!(out, b"\"abcd\"...", "longer than captured");
}

#[test]
fn argv_lists() {
    let mut slot = 3i32.to_le_bytes().to_vec();
    slot.extend_from_slice(b"ls\0-l\0/tmp dir\0");
    slot.resize(4 + 64, 0);
    let mut out = Vec::new();
    push_argv(&mut out, &slot, 0x1000, 1023);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        r#"["ls", "-l", "/tmp dir"]"#
    );
    out.clear();
    let mut empty = 0i32.to_le_bytes().to_vec();
    empty.resize(8, 0);
    push_argv(&mut out, &empty, 0x1000, 1023);
    assert_eq!(out, b"[]");
    out.clear();
    push_argv(&mut out, &(-14i32).to_le_bytes(), 0x1000, 1023);
    assert_eq!(out, b"0x1000");
    out.clear();
    let mut garbage = 1000i32.to_le_bytes().to_vec();
    garbage.extend_from_slice(b"x\0");
    push_argv(&mut out, &garbage, 0x1000, 1023);
    assert_eq!(out, b"[\"x\"]", "a count beyond the slot stops at its end");
}

/// A `UserRead` slot: status, padding, address, then the bytes read.
fn read_slot(status: i32, bytes: &[u8]) -> Vec<u8> {
    let mut slot = status.to_le_bytes().to_vec();
    slot.extend_from_slice(&[0; 12]);
    slot.extend_from_slice(bytes);
    slot
}

fn sockaddr(head: &[u8], tail: Option<&[u8]>, addrlen: i64) -> String {
    let head = read_slot(head.len() as i32, head);
    let tail = match tail {
        Some(tail) => read_slot(tail.len() as i32, tail),
        None => read_slot(-14, &[0; 82]),
    };
    let mut out = Vec::new();
    push_sockaddr(&mut out, &head, &tail, 0x1000, addrlen, 1024);
    String::from_utf8(out).unwrap()
}

#[test]
fn sockaddrs() {
    let mut in4 = [0u8; 28];
    in4[..8].copy_from_slice(&[2, 0, 0x1f, 0x90, 10, 0, 0, 1]);
    assert_eq!(sockaddr(&in4, None, 16), "{AF_INET, 10.0.0.1, 8080}");
    assert_eq!(sockaddr(&in4, None, 4), "0x1000", "too short for AF_INET");
    let mut un = [0u8; 28];
    un[..6].copy_from_slice(&[1, 0, b'/', b'a', b'"', 0]);
    assert_eq!(sockaddr(&un, None, 28), r#"{AF_UNIX, "/a\""}"#);
    let mut tail = [0u8; 82];
    tail[..3].copy_from_slice(b"xyz");
    let long = [[1u8, 0].as_slice(), &[b'p'; 26]].concat();
    assert_eq!(
        sockaddr(&long, Some(&tail), 110),
        format!(r#"{{AF_UNIX, "{}xyz"}}"#, "p".repeat(26)),
        "a path continues into the second read"
    );
    let netlink = [16u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(sockaddr(&netlink, None, 12), "{AF_NETLINK}");
    let mut out = Vec::new();
    push_sockaddr(&mut out, &read_slot(-14, &[0; 28]), &[], 0x1000, 16, 1024);
    assert_eq!(out, b"0x1000", "unreadable");
    out.clear();
    push_sockaddr(&mut out, &[], &[], 0, 16, 1024);
    assert_eq!(out, b"NULL");
}

#[test]
fn timespecs() {
    let ts = |status: i32, sec: i64, nsec: i64, pointer: i64| {
        let bytes = [sec.to_le_bytes(), nsec.to_le_bytes()].concat();
        let mut out = Vec::new();
        push_timespec(&mut out, &read_slot(status, &bytes), pointer);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(ts(16, 2, 5_000_000, 0x10), "[2.005000000]");
    assert_eq!(ts(16, 0, 0, 0x10), "[0.000000000]");
    assert_eq!(ts(-14, 0, 0, 0x10), "0x10");
    assert_eq!(ts(16, 1, 1, 0), "NULL");
}
