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

use aya::sys::UProbeMultiFeature;
use wasmtap::kernel::{
    Attach, KernelOptions, KernelProbe, KernelSession, PerfCounter, UprobeLocation,
    check_privileges,
};
use wasmtap_abi::{
    COMM_LEN, Filter, FilterCmp, FilterField, HEADER_LEN, MAX_ARGV, OpCode, Plan, PlanOp,
    RecordHeader, STR_STATUS_LEN, TASK_CHAIN_HEADER_LEN, TASK_ENTRY_LEN, TaskEntry, names,
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
    let start = Instant::now();
    let mut session = load();
    let loaded = start.elapsed();
    session.install(&[openat_probe(1, None)]).expect("install");
    session.attach().expect("attach");
    eprintln!(
        "object loaded in {loaded:?}, sys_enter verified and attached {:?} later",
        start.elapsed() - loaded
    );
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

// ---------------------------------------------------------------------------
// ABI v2: tracepoints, uprobes, perf sampling and the ops that go with them.
// ---------------------------------------------------------------------------

/// Lays out a record op by op: each `add` places an op after the previous
/// one (8-byte aligned) and returns its offset.
struct Layout {
    ops: Vec<PlanOp>,
    len: usize,
}

impl Layout {
    fn new() -> Self {
        Self {
            ops: Vec::new(),
            len: HEADER_LEN,
        }
    }

    /// Adds op `code` with operands `arg`, `src`, `len`; returns its offset.
    fn add(&mut self, code: OpCode, arg: u8, src: u16, len: u16) -> usize {
        let at = self.len.next_multiple_of(8);
        let mut op = PlanOp::new(code, at as u16);
        op.arg = arg;
        op.src = src;
        op.len = len;
        self.ops.push(op);
        self.len = at + code.width(len);
        at
    }

    fn probe(&self, id: u32, attach: Attach, pid: Option<u32>) -> KernelProbe {
        let mut plan = Plan {
            record_len: self.len as u16,
            n_ops: self.ops.len() as u16,
            ..Plan::default()
        };
        plan.ops[..self.ops.len()].copy_from_slice(&self.ops);
        if let Some(pid) = pid {
            plan.n_filters = 1;
            plan.filters[0] = Filter::new(FilterField::Pid, FilterCmp::Eq, pid.into());
        }
        KernelProbe { id, attach, plan }
    }
}

/// Typed reads from a record.
trait Fields {
    fn u32_at(&self, at: usize) -> u32;
    fn u64_at(&self, at: usize) -> u64;
    /// A string slot: status word, then the bytes.
    fn str_at(&self, at: usize) -> Result<String, i32>;
    /// A NUL-padded fixed-size string.
    fn cstr_at(&self, at: usize, len: usize) -> String;
    /// The addresses of a stack slot (empty on error).
    fn stack_at(&self, at: usize) -> (i32, Vec<u64>);
}

impl Fields for [u8] {
    fn u32_at(&self, at: usize) -> u32 {
        u32::from_ne_bytes(self[at..at + 4].try_into().unwrap())
    }
    fn u64_at(&self, at: usize) -> u64 {
        u64::from_ne_bytes(self[at..at + 8].try_into().unwrap())
    }
    fn str_at(&self, at: usize) -> Result<String, i32> {
        let status = self.u32_at(at) as i32;
        if status < 0 {
            return Err(status);
        }
        let start = at + STR_STATUS_LEN;
        Ok(String::from_utf8_lossy(&self[start..start + status as usize]).into_owned())
    }
    fn cstr_at(&self, at: usize, len: usize) -> String {
        let bytes = &self[at..at + len];
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(len);
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }
    fn stack_at(&self, at: usize) -> (i32, Vec<u64>) {
        let status = self.u32_at(at) as i32;
        let n = status.max(0) as usize / 8;
        let frames = (0..n).map(|i| self.u64_at(at + 8 + 8 * i)).collect();
        (status, frames)
    }
}

/// Byte offset of `field` in the `format` file of tracepoint `system:event`.
fn format_offset(system: &str, event: &str, field: &str) -> u16 {
    let tracefs = wasmtap::kernel::ensure_tracefs().expect("tracefs");
    let path = tracefs.join(format!("events/{system}/{event}/format"));
    let text = std::fs::read_to_string(&path).expect("read the format file");
    let line = text
        .lines()
        .find(|l| {
            // "field:char comm[16];" declares `comm`.
            l.split(';').next().is_some_and(|decl| {
                let decl = decl.trim_end();
                let decl = match decl.strip_suffix(']') {
                    Some(array) => array.rsplit_once('[').map_or(array, |(name, _)| name),
                    None => decl,
                };
                decl.ends_with(&format!(" {field}"))
            })
        })
        .unwrap_or_else(|| panic!("no field {field} in {}", path.display()));
    let offset = line
        .split("offset:")
        .nth(1)
        .expect("offset")
        .split(';')
        .next()
        .unwrap();
    offset.parse().expect("numeric offset")
}

/// `sh -c "read x; SCRIPT"`: waits for [`go`] so probes are in place first.
fn spawn_gated(script: &str) -> std::process::Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("read x; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh")
}

fn go(child: &mut std::process::Child) {
    child
        .stdin
        .take()
        .expect("child stdin")
        .write_all(b"go\n")
        .expect("wake the child");
}

fn records(session: &mut KernelSession, done: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    collect(session, |r| r.to_vec(), done)
}

fn attach(probes: &[KernelProbe]) -> KernelSession {
    let mut session = load();
    session.install(probes).expect("install");
    session.attach().expect("attach");
    session
}

fn tracepoint(system: &str, event: &str) -> Attach {
    Attach::Tracepoint {
        system: system.into(),
        event: event.into(),
    }
}

#[test]
fn tracepoint_exec_filename_from_data_loc() {
    let filename = format_offset("sched", "sched_process_exec", "filename");
    let pid_field = format_offset("sched", "sched_process_exec", "pid");
    let mut layout = Layout::new();
    let pid_at = layout.add(OpCode::PidTgid, 0, 0, 0);
    let field_at = layout.add(OpCode::CtxField, 0, pid_field, 4);
    let name_at = layout.add(OpCode::CtxDataLoc, 0, filename, 128);
    let comm_at = layout.add(OpCode::Comm, 0, 0, 0);

    let mut child = spawn_gated("exec /bin/true");
    let pid = child.id();
    let mut session =
        attach(&[layout.probe(2, tracepoint("sched", "sched_process_exec"), Some(pid))]);
    go(&mut child);
    child.wait().expect("wait for the child");

    let got = records(&mut session, |seen| !seen.is_empty());
    assert_eq!(got.len(), 1, "one exec of pid {pid}: {got:?}");
    let r = &got[0][..];
    assert_eq!(r.u32_at(0), 2, "probe id");
    assert_eq!((r.u64_at(pid_at) >> 32) as u32, pid);
    assert_eq!(r.u32_at(field_at), pid, "the event's pid field");
    assert_eq!(r.str_at(name_at), Ok("/bin/true".into()));
    assert_eq!(r.cstr_at(comm_at, COMM_LEN), "true");
}

#[test]
fn tracepoint_signal_generate_fields() {
    let sig = format_offset("signal", "signal_generate", "sig");
    let target = format_offset("signal", "signal_generate", "pid");
    let comm = format_offset("signal", "signal_generate", "comm");
    let mut layout = Layout::new();
    let sig_at = layout.add(OpCode::CtxField, 0, sig, 4);
    let pid_at = layout.add(OpCode::CtxField, 0, target, 4);
    let comm_at = layout.add(OpCode::CtxField, 0, comm, COMM_LEN as u16);
    let sender_at = layout.add(OpCode::Comm, 0, 0, 0);

    let mut victim = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let pid = victim.id();
    let mut session = attach(&[layout.probe(5, tracepoint("signal", "signal_generate"), None)]);
    // The host never traces itself, so another process sends the signal.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -TERM {pid}"))
        .status()
        .expect("run kill");
    assert!(status.success());
    victim.wait().expect("wait for sleep");

    let is_ours = |r: &[u8]| r.u32_at(pid_at) == pid && r.u32_at(sig_at) == 15;
    let got = records(&mut session, |seen| seen.iter().any(|r| is_ours(r)));
    let hit = got.iter().find(|r| is_ours(r));
    let hit = hit.unwrap_or_else(|| panic!("no SIGTERM to {pid} among {} records", got.len()));
    assert_eq!(hit.cstr_at(comm_at, COMM_LEN), "sleep");
    assert_eq!(hit.cstr_at(sender_at, COMM_LEN), "sh");
}

#[test]
fn tracepoint_task_chain_gives_the_ancestry() {
    let mut layout = Layout::new();
    let n = 8;
    let chain_at = layout.add(OpCode::TaskChain, 0, 0, (n * TASK_ENTRY_LEN) as u16);
    let mut session = attach(&[layout.probe(3, tracepoint("sched", "sched_process_exec"), None)]);
    // `; true` keeps the outer shell from exec'ing the inner one, so the
    // chain is sleep (the inner shell, exec'd) -> sh -> this test -> ...
    let mut outer = Command::new("sh")
        .arg("-c")
        .arg("sh -c 'exec sleep 0.2'; true")
        .spawn()
        .expect("spawn sh");
    let outer_pid = outer.id();
    outer.wait().expect("wait for sh");

    let chain = |r: &[u8]| -> Vec<TaskEntry> {
        let count = r.u32_at(chain_at) as usize;
        (0..count)
            .map(|i| {
                let at = chain_at + TASK_CHAIN_HEADER_LEN + i * TASK_ENTRY_LEN;
                TaskEntry {
                    tgid: r.u32_at(at),
                    pid: r.u32_at(at + 4),
                    uid: r.u32_at(at + 8),
                    euid: r.u32_at(at + 12),
                    comm: r[at + 16..at + 32].try_into().unwrap(),
                }
            })
            .collect()
    };
    let comm = |e: &TaskEntry| e.comm[..].cstr_at(0, COMM_LEN);
    let is_sleep = |r: &Vec<u8>| {
        let c = chain(r);
        c.len() > 1 && c[1].tgid == outer_pid && comm(&c[0]) == "sleep"
    };
    let got = records(&mut session, |seen| seen.iter().any(is_sleep));
    let hit = got.iter().find(|r| is_sleep(r)).expect("the exec of sleep");
    let c = chain(hit);
    let me = std::process::id();
    // The parent is the thread that forked: this test's thread.
    let my_comm = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
    assert_ne!(
        c[0].tgid, outer_pid,
        "the inner shell is a child of the outer"
    );
    assert_eq!(c[0].tgid, c[0].pid);
    assert_eq!(comm(&c[1]), "sh");
    assert_eq!(c[2].tgid, me, "the test is the outer shell's parent: {c:?}");
    assert_eq!(comm(&c[2]), my_comm.trim_end());
    let last = c.last().unwrap();
    assert!(
        last.tgid == 1 || c.len() == n,
        "the chain ends at init or fills the slot: {c:?}"
    );
    let uid = libc_getuid();
    assert!(c.iter().take(3).all(|e| e.uid == uid && e.euid == uid));
}

const SYS_EXECVE: u32 = 59;

#[test]
fn execve_argv_as_a_string_array() {
    let mut layout = Layout::new();
    let path_at = layout.add(OpCode::UserStr, 0, 0, 64);
    let argv_at = layout.add(OpCode::UserStrArray, 1, MAX_ARGV as u16, 256);
    // Room for two strings only: "/bin/echo\0" (10) + "hello\0" (6) = 16,
    // and "world" does not fit in what is left.
    let short_at = layout.add(OpCode::UserStrArray, 1, MAX_ARGV as u16, 20);
    // At most one string.
    let one_at = layout.add(OpCode::UserStrArray, 1, 1, 256);

    let mut child = spawn_gated("exec /bin/echo hello world");
    let pid = child.id();
    let mut session = attach(&[layout.probe(4, Attach::SyscallEnter(vec![SYS_EXECVE]), Some(pid))]);
    go(&mut child);
    child.wait().expect("wait for the child");

    let got = records(&mut session, |seen| !seen.is_empty());
    assert_eq!(got.len(), 1, "one execve from {pid}");
    let r = &got[0][..];
    let strings = |at: usize| -> (i32, Vec<String>) {
        let count = r.u32_at(at) as i32;
        let bytes = &r[at + STR_STATUS_LEN..];
        let list = bytes
            .split(|&b| b == 0)
            .take(count.max(0) as usize)
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        (count, list)
    };
    assert_eq!(r.str_at(path_at), Ok("/bin/echo".into()));
    assert_eq!(
        strings(argv_at),
        (3, vec!["/bin/echo".into(), "hello".into(), "world".into()])
    );
    assert_eq!(
        strings(short_at),
        (2, vec!["/bin/echo".into(), "hello".into()])
    );
    let short_end = short_at + STR_STATUS_LEN + 16;
    assert!(
        r[short_end..short_at + STR_STATUS_LEN + 20]
            .iter()
            .all(|&b| b == 0),
        "a string that does not fit leaves nothing behind"
    );
    assert_eq!(strings(one_at), (1, vec!["/bin/echo".into()]));
}

#[test]
fn cmdline_parent_and_credentials() {
    let path = unique_path("cmdline");
    let mut layout = Layout::new();
    let cmdline_at = layout.add(OpCode::Cmdline, 0, 0, 256);
    let short_at = layout.add(OpCode::Cmdline, 0, 0, 5);
    let parent_at = layout.add(OpCode::ParentTgid, 0, 0, 0);
    let creds_at = layout.add(OpCode::EuidEgid, 0, 0, 0);
    let path_at = layout.add(OpCode::UserStr, 1, 0, 128);

    let mut child = spawn_gated(&format!("exec cat {path}"));
    let pid = child.id();
    let mut session = attach(&[layout.probe(6, Attach::SyscallEnter(vec![SYS_OPENAT]), Some(pid))]);
    go(&mut child);
    child.wait().expect("wait for the child");

    let got = records(&mut session, |seen| {
        seen.iter()
            .any(|r| r.str_at(path_at).as_deref() == Ok(path.as_str()))
    });
    let hit = got
        .iter()
        .find(|r| r.str_at(path_at).as_deref() == Ok(path.as_str()))
        .expect("cat's open of the path");
    assert_eq!(hit.str_at(cmdline_at), Ok(format!("cat\0{path}\0")));
    assert_eq!(hit.str_at(short_at), Ok("cat\0/".into()));
    assert_eq!(hit.u64_at(parent_at), u64::from(std::process::id()));
    // SAFETY: geteuid and getegid have no preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!(
        hit.u64_at(creds_at),
        (u64::from(egid) << 32) | u64::from(euid)
    );
}

/// Drops `session` and checks that none of its programs stays loaded (an
/// attached link keeps its program alive, so this also checks detaching).
fn drop_and_check_unloaded(session: KernelSession) {
    let ours: HashSet<u32> = session
        .programs()
        .expect("program info")
        .iter()
        .map(|p| p.id)
        .collect();
    let start = Instant::now();
    drop(session);
    let dropped = start.elapsed();
    let loaded = || -> HashSet<u32> {
        aya::programs::loaded_programs()
            .filter_map(Result::ok)
            .map(|info| info.id())
            .filter(|id| ours.contains(id))
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !loaded().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        loaded().is_empty(),
        "programs {:?} outlived the session",
        loaded()
    );
    eprintln!("the session dropped in {dropped:?}");
}

/// Compiles C `source` with gcc into a fresh temporary directory and returns
/// the executable's path.
fn compile_c(name: &str, source: &str) -> std::path::PathBuf {
    let dir = std::path::PathBuf::from(unique_path(name));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).expect("write the C source");
    let exe = dir.join(name);
    let out = Command::new("gcc")
        .args(["-O0", "-g", "-fno-omit-frame-pointer", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("run gcc");
    assert!(
        out.status.success(),
        "gcc failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Starts `exe`, which waits for a byte on stdin before doing its work.
fn spawn_exe(exe: &std::path::Path) -> std::process::Child {
    Command::new(exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the test program")
}

/// The address ranges of `pid`'s mappings whose line satisfies `want`.
fn mappings(pid: u32, want: impl Fn(&str) -> bool) -> Vec<std::ops::Range<u64>> {
    std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .expect("read maps")
        .lines()
        .filter(|l| want(l))
        .map(|l| {
            let (start, end) = l
                .split_whitespace()
                .next()
                .unwrap()
                .split_once('-')
                .unwrap();
            u64::from_str_radix(start, 16).unwrap()..u64::from_str_radix(end, 16).unwrap()
        })
        .collect()
}

const ADD_C: &str = r#"
#include <stdio.h>
#include <unistd.h>
int add(int a, int b) { return a + b; }
int main(void) {
    char c;
    if (read(0, &c, 1) != 1) return 1;
    printf("%d\n", add(40, 2));
    return 0;
}
"#;

/// Offsets of the argument and return registers in x86_64 `pt_regs`.
const REG_DI: u16 = 112;
const REG_SI: u16 = 104;
const REG_AX: u16 = 80;

#[test]
fn uprobe_arguments_return_value_and_user_stack() {
    let exe = compile_c("add", ADD_C);
    let mut child = spawn_exe(&exe);
    let pid = child.id();

    let mut entry = Layout::new();
    let a_at = entry.add(OpCode::Reg, 0, REG_DI, 0);
    let b_at = entry.add(OpCode::Reg, 0, REG_SI, 0);
    let regs_at = entry.add(OpCode::UserRegsStack, 0, 0, 64);
    let stack_at = entry.add(OpCode::UserStack, 0, 0, 256);
    let mut exit = Layout::new();
    let ret_at = exit.add(OpCode::RetVal, 0, 0, 0);
    let ax_at = exit.add(OpCode::Reg, 0, REG_AX, 0);
    let uprobe = |ret| Attach::Uprobe {
        path: exe.clone(),
        location: UprobeLocation::Symbol("add".into()),
        pid: Some(pid as i32),
        ret,
    };
    let mut session = attach(&[
        entry.probe(10, uprobe(false), None),
        exit.probe(11, uprobe(true), None),
    ]);
    let code = mappings(pid, |l| {
        l.contains(" r-xp ") && l.ends_with(exe.to_str().unwrap())
    });
    let stack = mappings(pid, |l| l.ends_with("[stack]"));
    assert!(!code.is_empty() && !stack.is_empty());
    child.stdin.take().unwrap().write_all(b"x").unwrap();
    child.wait().expect("wait for the program");

    let got = records(&mut session, |seen| seen.len() >= 2);
    assert_eq!(got.len(), 2, "one entry, one return");
    let (e, x) = (&got[0][..], &got[1][..]);
    assert_eq!(
        (e.u32_at(0), x.u32_at(0)),
        (10, 11),
        "probe ids from the cookies"
    );
    assert_eq!((e.u64_at(a_at) as i32, e.u64_at(b_at) as i32), (40, 2));
    assert_eq!(x.u64_at(ret_at) as i32, 42);
    assert_eq!(x.u64_at(ax_at) as i32, 42);

    let (ip, sp, bp) = (
        e.u64_at(regs_at),
        e.u64_at(regs_at + 8),
        e.u64_at(regs_at + 16),
    );
    let copied = e.u32_at(regs_at + 24) as i32;
    let inside = |ranges: &[std::ops::Range<u64>], at: u64| ranges.iter().any(|r| r.contains(&at));
    assert!(inside(&code, ip), "ip {ip:#x} is in add's code {code:x?}");
    assert!(
        inside(&stack, sp) && inside(&stack, bp),
        "sp {sp:#x} bp {bp:#x} in {stack:x?}"
    );
    assert_eq!(copied, 64, "bytes copied from sp");
    // At the first instruction of add, the stack top is the return address
    // into main.
    let return_address = e.u64_at(regs_at + 32);
    assert!(
        inside(&code, return_address),
        "{return_address:#x} returns into main"
    );
    let (status, frames) = e.stack_at(stack_at);
    assert!(status > 0, "user stack status {status}");
    assert!(
        inside(&code, frames[0]),
        "innermost frame {:#x} is in add",
        frames[0]
    );
    drop_and_check_unloaded(session);
}

/// Many uprobes attach in well under a millisecond each, and those of one
/// binary share one uprobe_multi link where the kernel has them (the first,
/// attached alone, keeps its plain link). Without uprobe_multi each uprobe
/// takes 100-130 ms to detach (RCU grace periods under a global mutex, ~50 s
/// for 500), so this test uses fewer functions than the 500 measured to
/// stay fast there too; set `WASMTAP_TEST_UPROBES=500` to measure that.
#[test]
fn many_uprobes_attach_quickly_and_all_fire() {
    let n: usize = std::env::var("WASMTAP_TEST_UPROBES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut source = String::from("#include <unistd.h>\n");
    for i in 0..n {
        source += &format!("int f{i}(int x) {{ return x + {i}; }}\n");
    }
    source += "int main(void) {\n char c;\n if (read(0, &c, 1) != 1) return 1;\n int s = 0;\n";
    for i in 0..n {
        source += &format!(" s += f{i}({i});\n");
    }
    source += " return s & 1;\n}\n";
    let exe = compile_c("many", &source);
    let mut child = spawn_exe(&exe);
    let pid = child.id();

    let mut layout = Layout::new();
    let arg_at = layout.add(OpCode::Reg, 0, REG_DI, 0);
    let probes: Vec<_> = (0..n)
        .map(|i| {
            let attach = Attach::Uprobe {
                path: exe.clone(),
                location: UprobeLocation::Symbol(format!("f{i}")),
                pid: Some(pid as i32),
                ret: false,
            };
            layout.probe(i as u32, attach, None)
        })
        .collect();
    let mut session = load();
    // Verify the uprobe program first, so the timing below is attaching.
    session.install(&probes[..1]).expect("install one");
    session.attach().expect("attach one");
    session.install(&probes).expect("install");
    let start = Instant::now();
    session.attach().expect("attach");
    let took = start.elapsed() / (n - 1) as u32;
    child.stdin.take().unwrap().write_all(b"x").unwrap();
    child.wait().expect("wait for the program");

    let got = records(&mut session, |seen| seen.len() >= n);
    let mut seen: Vec<(u32, u64)> = got
        .iter()
        .map(|r| (r.u32_at(0), r.u64_at(arg_at)))
        .collect();
    seen.sort_unstable();
    let expected: Vec<(u32, u64)> = (0..n as u32).map(|i| (i, u64::from(i))).collect();
    assert_eq!(seen, expected, "each function fired once with its argument");
    eprintln!("attached {n} uprobes, {took:?} per function");
    let multi = aya::sys::is_uprobe_multi_supported(UProbeMultiFeature::ProcessScopedPidFilter)
        .expect("probe for uprobe_multi");
    let programs = session.programs().expect("program info");
    let attached = |name| programs.iter().any(|p| p.name == name && p.attached);
    assert!(attached(names::PROG_UPROBE), "{programs:?}");
    assert_eq!(attached(names::PROG_UPROBE_MULTI), multi, "{programs:?}");
    drop_and_check_unloaded(session);
}

#[test]
fn perf_cpu_clock_samples_a_busy_child_with_stacks() {
    let mut layout = Layout::new();
    let pid_at = layout.add(OpCode::PidTgid, 0, 0, 0);
    let user_at = layout.add(OpCode::UserStack, 0, 0, 1016);
    let kernel_at = layout.add(OpCode::KernelStack, 0, 0, 1016);
    let regs_at = layout.add(OpCode::UserRegsStack, 0, 0, 64);
    let comm_at = layout.add(OpCode::Comm, 0, 0, 0);
    // Busy in user and kernel mode alike: dd zero-fills in the kernel.
    let mut child = spawn_gated("exec dd if=/dev/zero of=/dev/null bs=64k count=10000000");
    let pid = child.id();
    let period = 1_000_000_000 / 997;
    let mut session = attach(&[layout.probe(
        12,
        Attach::PerfSample {
            event: PerfCounter::CpuClock,
            period,
        },
        Some(pid),
    )]);
    go(&mut child);

    let wanted = 30;
    let is_dd = |r: &Vec<u8>| r.cstr_at(comm_at, COMM_LEN) == "dd";
    let all = records(&mut session, |seen| {
        seen.iter().filter(|r| is_dd(r)).count() >= wanted
    });
    let executable = mappings(pid, |l| l.contains(" r-xp "));
    let stack = mappings(pid, |l| l.ends_with("[stack]"));
    child.kill().expect("stop dd");
    child.wait().expect("reap dd");
    assert!(
        all.iter().all(|r| (r.u64_at(pid_at) >> 32) as u32 == pid),
        "the pid filter let other samples through"
    );
    // Samples from before the exec (the shell) have other mappings; the
    // stack checks use those of dd, taken after the sampled ones.
    let got: Vec<_> = all.iter().filter(|r| is_dd(r)).skip(2).collect();
    assert!(
        got.len() >= wanted - 2,
        "{} samples of the busy child",
        got.len()
    );
    let user: Vec<_> = got.iter().map(|r| r.stack_at(user_at)).collect();
    let kernel: Vec<_> = got.iter().map(|r| r.stack_at(kernel_at)).collect();
    assert!(
        user.iter()
            .all(|(status, frames)| *status > 0 && !frames.is_empty()),
        "every sample has a user stack: {user:x?}"
    );
    let inside = |ranges: &[std::ops::Range<u64>], at: u64| ranges.iter().any(|r| r.contains(&at));
    assert!(
        user.iter()
            .all(|(_, frames)| inside(&executable, frames[0])),
        "innermost user frames {user:x?} are in executable mappings {executable:x?}"
    );
    let in_kernel = kernel.iter().filter(|(status, _)| *status > 0).count();
    assert!(in_kernel > 0, "no sample hit the kernel: {kernel:?}");
    assert!(
        kernel
            .iter()
            .flat_map(|(_, frames)| frames)
            .all(|&addr| addr >= 0xffff_8000_0000_0000),
        "kernel frames are kernel addresses"
    );
    // The saved user registers: ip in code, sp on the stack, and a full
    // copy of the stack from sp.
    for r in &got {
        let (ip, sp) = (r.u64_at(regs_at), r.u64_at(regs_at + 8));
        assert!(inside(&executable, ip), "user ip {ip:#x}");
        assert!(inside(&stack, sp), "user sp {sp:#x} in {stack:x?}");
        assert_eq!(r.u32_at(regs_at + 24), 64, "stack bytes copied");
    }
    eprintln!(
        "{} samples, {in_kernel} in the kernel; e.g. user {:x?} kernel {:x?}",
        got.len(),
        user[0].1,
        kernel.iter().find(|(s, _)| *s > 0).map(|(_, f)| f)
    );
    drop_and_check_unloaded(session);
}

#[test]
fn perf_hardware_cycles_work_or_say_why_not() {
    let mut layout = Layout::new();
    layout.add(OpCode::Cpu, 0, 0, 0);
    let mut session = load();
    session
        .install(&[layout.probe(
            13,
            Attach::PerfSample {
                event: PerfCounter::CpuCycles,
                period: 10_000_000,
            },
            None,
        )])
        .expect("install");
    match session.attach() {
        Ok(()) => {
            // A PMU exists: samples arrive from a busy system.
            let got = records(&mut session, |seen| !seen.is_empty());
            assert!(!got.is_empty(), "cpu-cycles attached but never sampled");
        }
        Err(err) => {
            let text = err.to_string();
            assert!(
                matches!(err, wasmtap::kernel::KernelError::PerfUnsupported { .. }),
                "{text}"
            );
            assert!(text.contains("no cpu-cycles counter"), "{text}");
            eprintln!("as expected on this machine: {text}");
        }
    }
    drop_and_check_unloaded(session);
}

#[test]
fn unknown_tracepoints_are_named_and_reinstalling_detaches() {
    let mut layout = Layout::new();
    layout.add(OpCode::PidTgid, 0, 0, 0);
    let mut session = load();
    let err = session
        .install(&[layout.probe(1, tracepoint("sched", "no_such_event"), None)])
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("no tracepoint sched:no_such_event"), "{text}");

    session
        .install(&[layout.probe(1, tracepoint("sched", "sched_process_exec"), None)])
        .expect("install");
    session.attach().expect("attach");
    let attached = |session: &KernelSession| {
        session
            .programs()
            .expect("program info")
            .iter()
            .any(|p| p.name == "trace_event" && p.attached)
    };
    assert!(attached(&session));
    // Replacing the probes with none detaches the tracepoint.
    session.install(&[]).expect("install nothing");
    session.attach().expect("sync links");
    assert!(!attached(&session));
    drop_and_check_unloaded(session);
}
