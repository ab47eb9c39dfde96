//! Tracepoint links that carry a BPF cookie.
//!
//! One generic tracepoint program serves every traced event, so it must
//! learn which event fired. The trace entry cannot tell it: for BPF programs
//! the kernel overwrites the entry's first 8 bytes (`common_type`,
//! `common_flags`, `common_preempt_count`, `common_pid`) with a `pt_regs`
//! pointer. A BPF cookie can, but aya's `TracePoint::attach` (0.16 too)
//! sets none, so this module makes the two system calls itself:
//! `perf_event_open` of the tracepoint and `BPF_LINK_CREATE`
//! (`BPF_PERF_EVENT`, kernel 5.15+) with the cookie. Dropping a [`CookieLink`] closes both descriptors, which
//! detaches the program.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
};

/// `PERF_TYPE_TRACEPOINT`.
const PERF_TYPE_TRACEPOINT: u32 = 2;
/// `PERF_SAMPLE_RAW`.
const PERF_SAMPLE_RAW: u64 = 1 << 10;
/// `PERF_FLAG_FD_CLOEXEC`.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `BPF_LINK_CREATE` command of bpf(2).
const BPF_LINK_CREATE: libc::c_long = 28;
/// `BPF_PERF_EVENT` attach type.
const BPF_PERF_EVENT: u32 = 41;

/// The leading part of `struct perf_event_attr` (PERF_ATTR_SIZE_VER5); the
/// fields after `sample_type` that are not named stay zero.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved: u16,
}

/// The `link_create` member of `union bpf_attr` for `BPF_PERF_EVENT`.
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    bpf_cookie: u64,
    /// The rest of the union's link_create member, zero.
    reserved: [u64; 4],
}

/// A tracepoint perf event with a program linked to it; dropping it
/// detaches the program.
#[derive(Debug)]
pub(crate) struct CookieLink {
    // Field order is drop order: the link goes before its perf event.
    _link: OwnedFd,
    _perf: OwnedFd,
}

/// Links the tracepoint program `prog` to tracepoint `event_id` (tracefs
/// `events/SYSTEM/EVENT/id`) so that `bpf_get_attach_cookie` returns
/// `cookie` in it. The program then runs for the event on every CPU.
pub(crate) fn attach_tracepoint(
    prog: BorrowedFd<'_>,
    event_id: u64,
    cookie: u64,
) -> io::Result<CookieLink> {
    let attr = PerfEventAttr {
        kind: PERF_TYPE_TRACEPOINT,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config: event_id,
        sample_period: 1,
        sample_type: PERF_SAMPLE_RAW,
        wakeup_events: 1,
        ..Default::default()
    };
    // A tracepoint's BPF programs hang off the event itself, so one perf
    // event on CPU 0 for all processes serves every CPU (as aya does).
    // SAFETY: `attr` is a valid perf_event_attr of the size it declares.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            -1 as libc::pid_t,
            0 as libc::c_int,
            -1 as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: perf_event_open returned a new descriptor we now own.
    let perf = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let attr = LinkCreateAttr {
        prog_fd: prog.as_raw_fd() as u32,
        target_fd: perf.as_raw_fd() as u32,
        attach_type: BPF_PERF_EVENT,
        flags: 0,
        bpf_cookie: cookie,
        reserved: [0; 4],
    };
    // SAFETY: `attr` is a valid bpf_attr prefix of the size passed.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_CREATE,
            &attr as *const LinkCreateAttr,
            std::mem::size_of::<LinkCreateAttr>() as u32,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: bpf(BPF_LINK_CREATE) returned a new descriptor we now own.
    let link = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    Ok(CookieLink {
        _link: link,
        _perf: perf,
    })
}
