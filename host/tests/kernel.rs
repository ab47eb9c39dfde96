//! The kernel layer against the running kernel: load the generic programs,
//! capture openat(2) from real processes, and check that the host never
//! traces itself and leaves nothing loaded behind.
//!
//! Needs root (CAP_BPF + CAP_PERFMON); it fails, not skips, without them.

use std::{
    collections::HashSet,
    io::Write as _,
    process::{Command, Stdio},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use wasmtap::kernel::{Attach, KernelOptions, KernelProbe, KernelSession, check_privileges};
use wasmtap_abi::{
    COMM_LEN, Filter, FilterCmp, FilterField, HEADER_LEN, OpCode, Plan, PlanOp, RecordHeader,
    STR_STATUS_LEN,
};

const SYS_OPENAT: u32 = 257;
const PATH_LEN: u16 = 256;
const PID_AT: usize = HEADER_LEN;
const COMM_AT: usize = PID_AT + 8;
const PATH_AT: usize = COMM_AT + COMM_LEN;
const RECORD_LEN: usize = PATH_AT + STR_STATUS_LEN + PATH_LEN as usize;

/// `openat` entry capturing pid/tgid, comm and the path (argument 1), only
/// for process `pid` when given.
fn openat_probe(id: u32, pid: Option<u32>) -> KernelProbe {
    let mut path = PlanOp::new(OpCode::UserStr, PATH_AT as u16);
    path.arg = 1;
    path.len = PATH_LEN;
    let ops = [
        PlanOp::new(OpCode::PidTgid, PID_AT as u16),
        PlanOp::new(OpCode::Comm, COMM_AT as u16),
        path,
    ];
    let mut plan = Plan {
        record_len: RECORD_LEN as u16,
        n_ops: ops.len() as u16,
        ..Plan::default()
    };
    plan.ops[..ops.len()].copy_from_slice(&ops);
    if let Some(pid) = pid {
        plan.n_filters = 1;
        plan.filters[0] = Filter::new(FilterField::Pid, FilterCmp::Eq, pid.into());
    }
    KernelProbe {
        id,
        attach: Attach::SyscallEnter(vec![SYS_OPENAT]),
        plan,
    }
}

/// One decoded openat record.
#[derive(Debug)]
struct Open {
    probe: u32,
    tgid: u32,
    comm: String,
    path: String,
}

fn decode(record: &[u8]) -> Open {
    assert_eq!(record.len(), RECORD_LEN, "record length");
    let u32_at = |at: usize| u32::from_ne_bytes(record[at..at + 4].try_into().unwrap());
    let header = RecordHeader {
        probe: u32_at(0),
        len: u32_at(4),
    };
    assert_eq!(header.len as usize, RECORD_LEN, "header length");
    let pid_tgid = u64::from_ne_bytes(record[PID_AT..PID_AT + 8].try_into().unwrap());
    let comm = &record[COMM_AT..COMM_AT + COMM_LEN];
    let comm_end = comm.iter().position(|&b| b == 0).unwrap_or(COMM_LEN);
    let status = u32_at(PATH_AT) as i32;
    let start = PATH_AT + STR_STATUS_LEN;
    let path = if status >= 0 {
        String::from_utf8_lossy(&record[start..start + status as usize]).into_owned()
    } else {
        format!("<error {status}>")
    };
    let tail = start + status.max(0) as usize;
    assert!(
        record[tail..].iter().all(|&b| b == 0),
        "bytes after the string are not cleared: {:?}",
        &record[tail..]
    );
    Open {
        probe: header.probe,
        tgid: (pid_tgid >> 32) as u32,
        comm: String::from_utf8_lossy(&comm[..comm_end]).into_owned(),
        path,
    }
}

fn unique_path(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "/tmp/wasmtap-kernel-test-{tag}-{}-{nanos}",
        std::process::id()
    )
}

/// Drains until `done` holds for the records seen so far, or 5 s pass.
fn collect<T>(
    session: &mut KernelSession,
    decode: impl Fn(&[u8]) -> T,
    done: impl Fn(&[T]) -> bool,
) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut records = Vec::new();
    loop {
        session.drain(&mut |record| records.push(decode(record)));
        if done(&records) || Instant::now() > deadline {
            return records;
        }
        session
            .wait(Duration::from_millis(20))
            .expect("wait on the ring buffer");
    }
}

fn load() -> KernelSession {
    check_privileges().expect("these tests need root (CAP_BPF and CAP_PERFMON)");
    KernelSession::load(&KernelOptions {
        ring_bytes: 1 << 20,
        wakeup_bytes: 64 << 10,
    })
    .unwrap_or_else(|err| panic!("loading the session: {err}\n{err:?}"))
}

#[test]
fn captures_a_filtered_child() {
    let path = unique_path("child");
    // The child waits on stdin so the filter on its pid is in place before
    // it opens anything; `exec` keeps the pid while the comm becomes "cat".
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read x; exec cat {path}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let pid = child.id();

    let mut session = load();
    session
        .install(&[openat_probe(7, Some(pid))])
        .expect("install");
    session.attach().expect("attach");

    child
        .stdin
        .take()
        .expect("child stdin")
        .write_all(b"go\n")
        .expect("wake the child");
    child.wait().expect("wait for the child");

    let records = collect(&mut session, decode, |seen| {
        seen.iter().any(|r| r.path == path)
    });
    let hit = records.iter().find(|r| r.path == path);
    let hit = hit.unwrap_or_else(|| panic!("no record of {path} in {records:#?}"));
    assert_eq!(hit.probe, 7);
    assert_eq!(hit.tgid, pid);
    assert_eq!(hit.comm, "cat");
    assert!(
        records.iter().all(|r| r.tgid == pid),
        "the pid filter let other processes through: {records:#?}"
    );
    assert_eq!(session.drops().expect("read drops"), vec![]);
    eprintln!(
        "captured {} openat records from pid {pid}, e.g. {hit:?}",
        records.len()
    );
}

#[test]
fn never_captures_the_host_itself() {
    let own = unique_path("self");
    let theirs = unique_path("other");

    let mut session = load();
    session.install(&[openat_probe(3, None)]).expect("install");
    session.attach().expect("attach");

    // The host opens a path (the open fails: the file does not exist, but
    // the syscall is made and would be traced), then a child opens another.
    assert!(std::fs::File::open(&own).is_err());
    let status = Command::new("cat")
        .arg(&theirs)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run cat");
    assert!(!status.success());

    // Ring buffer records are ordered by reservation, so once the child's
    // open is seen, the host's earlier open would have been seen too.
    let records = collect(&mut session, decode, |seen| {
        seen.iter().any(|r| r.path == theirs)
    });
    assert!(
        records.iter().any(|r| r.path == theirs && r.comm == "cat"),
        "the child's open was not captured"
    );
    let me = std::process::id();
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r.tgid == me || r.path == own)
        .collect();
    assert!(mine.is_empty(), "the host traced itself: {mine:#?}");
    eprintln!(
        "{} system-wide openat records, none from the host (pid {me})",
        records.len()
    );
}

#[test]
fn dropping_the_session_unloads_everything() {
    let mut session = load();
    session.install(&[openat_probe(1, None)]).expect("install");
    session.attach().expect("attach");
    let programs = session.programs().expect("program info");
    for program in &programs {
        eprintln!(
            "{}: id {}, verifier processed {:?} instructions, attached {}",
            program.name, program.id, program.verified_instructions, program.attached
        );
    }
    assert!(programs.iter().any(|p| p.name == "sys_enter" && p.attached));
    let ours: HashSet<u32> = programs.iter().map(|p| p.id).collect();
    let loaded = || -> HashSet<u32> {
        aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .map(|info| info.id())
            .filter(|id| ours.contains(id))
            .collect()
    };
    assert_eq!(loaded(), ours, "our programs are listed while loaded");

    drop(session);
    // Program memory is freed after an RCU grace period; allow for it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !loaded().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        loaded().is_empty(),
        "programs {:?} are still loaded after the session was dropped",
        loaded()
    );
}

/// What the `openat` exit probe captures, at these offsets.
const EXIT_NR_AT: usize = HEADER_LEN;
const EXIT_RET_AT: usize = EXIT_NR_AT + 8;
const EXIT_UIDGID_AT: usize = EXIT_RET_AT + 8;
const EXIT_CPU_AT: usize = EXIT_UIDGID_AT + 8;
const EXIT_TIME_AT: usize = EXIT_CPU_AT + 8;
const EXIT_FLAGS_AT: usize = EXIT_TIME_AT + 8;
const EXIT_PATH_AT: usize = EXIT_FLAGS_AT + 8;
const EXIT_PATH_LEN: u16 = 128;
const EXIT_LEN: usize = EXIT_PATH_AT + STR_STATUS_LEN + EXIT_PATH_LEN as usize;

#[derive(Debug)]
struct OpenReturn {
    probe: u32,
    nr: u64,
    ret: i64,
    uid: u32,
    cpu: u64,
    time: u64,
    flags: u64,
    path: String,
}

fn decode_exit(record: &[u8]) -> OpenReturn {
    assert_eq!(record.len(), EXIT_LEN, "record length");
    let u64_at = |at: usize| u64::from_ne_bytes(record[at..at + 8].try_into().unwrap());
    let status = i32::from_ne_bytes(record[EXIT_PATH_AT..EXIT_PATH_AT + 4].try_into().unwrap());
    let start = EXIT_PATH_AT + STR_STATUS_LEN;
    OpenReturn {
        probe: u64_at(0) as u32,
        nr: u64_at(EXIT_NR_AT),
        ret: u64_at(EXIT_RET_AT) as i64,
        uid: u64_at(EXIT_UIDGID_AT) as u32,
        cpu: u64_at(EXIT_CPU_AT),
        time: u64_at(EXIT_TIME_AT),
        flags: u64_at(EXIT_FLAGS_AT),
        path: String::from_utf8_lossy(&record[start..start + status.max(0) as usize]).into_owned(),
    }
}

#[test]
fn captures_syscall_returns_alongside_entries() {
    let path = unique_path("exit");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read x; exec cat {path}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let pid = child.id();

    let mut ops = [
        PlanOp::new(OpCode::SyscallNr, EXIT_NR_AT as u16),
        PlanOp::new(OpCode::RetVal, EXIT_RET_AT as u16),
        PlanOp::new(OpCode::UidGid, EXIT_UIDGID_AT as u16),
        PlanOp::new(OpCode::Cpu, EXIT_CPU_AT as u16),
        PlanOp::new(OpCode::KtimeNs, EXIT_TIME_AT as u16),
        PlanOp::new(OpCode::Arg, EXIT_FLAGS_AT as u16),
        PlanOp::new(OpCode::UserStr, EXIT_PATH_AT as u16),
    ];
    ops[5].arg = 2;
    ops[6].arg = 1;
    ops[6].len = EXIT_PATH_LEN;
    let mut plan = Plan {
        record_len: EXIT_LEN as u16,
        n_ops: ops.len() as u16,
        n_filters: 2,
        ..Plan::default()
    };
    plan.ops[..ops.len()].copy_from_slice(&ops);
    plan.filters[0] = Filter::new(FilterField::Pid, FilterCmp::Eq, pid.into());
    let uid = libc_getuid();
    plan.filters[1] = Filter::new(FilterField::Uid, FilterCmp::Eq, uid.into());
    let exit = KernelProbe {
        id: 9,
        attach: Attach::SyscallExit(vec![SYS_OPENAT]),
        plan,
    };

    let mut session = load();
    session
        .install(&[openat_probe(8, Some(pid)), exit])
        .expect("install");
    session.attach().expect("attach");
    let before = now_monotonic_ns();
    child
        .stdin
        .take()
        .expect("child stdin")
        .write_all(b"go\n")
        .expect("wake the child");
    child.wait().expect("wait for the child");

    let records = collect(
        &mut session,
        |record| record.to_vec(),
        |seen| {
            seen.iter()
                .filter(|r| r.len() == EXIT_LEN)
                .any(|r| decode_exit(r).path == path)
        },
    );
    let (exits, entries): (Vec<_>, Vec<_>) = records.iter().partition(|r| r.len() == EXIT_LEN);
    let entries: Vec<_> = entries.iter().map(|r| decode(r)).collect();
    let exits: Vec<_> = exits.iter().map(|r| decode_exit(r)).collect();
    assert!(entries.iter().all(|e| e.probe == 8 && e.tgid == pid));
    assert!(
        exits
            .iter()
            .all(|e| e.probe == 9 && e.nr == u64::from(SYS_OPENAT))
    );
    let entry = entries.iter().filter(|e| e.path == path).count();
    assert_eq!(entry, 1, "one entry record for {path}: {entries:#?}");
    let ret = exits.iter().find(|e| e.path == path);
    let ret = ret.unwrap_or_else(|| panic!("no return record for {path}: {exits:#?}"));
    assert_eq!(ret.ret, -2, "openat of a missing file returns -ENOENT");
    assert_eq!(ret.uid, uid);
    assert_eq!(ret.flags & 0o3, 0, "cat opens read-only");
    assert!(ret.cpu < 4096);
    assert!(
        ret.time >= before,
        "ktime {} before the test's {before}",
        ret.time
    );
    eprintln!("return record: {ret:?}");
}

fn libc_getuid() -> u32 {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() }
}

fn now_monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Opens from a child while the test sleeps in `wait`: returns how long the
/// wait took and how many records were then waiting.
fn time_wakeup(wakeup_bytes: u32, timeout: Duration) -> (Duration, bool, usize) {
    let path = unique_path("wakeup");
    // The sleep puts the opens well inside the wait below.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("read x; sleep 0.3; exec cat {path}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let mut session = KernelSession::load(&KernelOptions {
        ring_bytes: 1 << 20,
        wakeup_bytes,
    })
    .expect("load");
    session
        .install(&[openat_probe(1, Some(child.id()))])
        .expect("install");
    session.attach().expect("attach");
    child
        .stdin
        .take()
        .expect("child stdin")
        .write_all(b"go\n")
        .expect("wake the child");
    let start = Instant::now();
    let ready = session.wait(timeout).expect("wait");
    let elapsed = start.elapsed();
    child.wait().expect("wait for the child");
    // drain_some stops where the callback says so; the rest stays queued.
    let first = session.drain_some(&mut |_| false);
    assert_eq!(first, 1, "drain_some took more than asked");
    let count = first + session.drain(&mut |_| {});
    (elapsed, ready, count)
}

#[test]
fn wakes_the_reader_only_past_the_threshold() {
    check_privileges().expect("these tests need root (CAP_BPF and CAP_PERFMON)");
    let timeout = Duration::from_secs(2);
    // A threshold far above what cat produces: no wakeup, the wait runs to
    // its timeout and then finds the records.
    let (quiet, ready, count) = time_wakeup(512 << 10, timeout);
    assert!(count > 0, "no records captured");
    assert!(ready, "records were waiting at the timeout");
    assert!(
        quiet >= timeout - Duration::from_millis(50),
        "woken after {quiet:?} below the threshold"
    );
    // Threshold 0: the first record wakes the reader.
    let (eager, ready, count) = time_wakeup(0, timeout);
    assert!(ready && count > 0);
    assert!(
        eager < timeout - Duration::from_millis(300),
        "not woken: {eager:?}"
    );
    eprintln!("below threshold woken after {quiet:?}; threshold 0 after {eager:?}");
}
