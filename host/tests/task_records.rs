//! The handlers the compiler generates for tracepoints, aliases and task
//! functions, run in the real sandbox over records laid out as the capture
//! plan says: the kernel's part is covered by the end-to-end seeds tests,
//! this pins what the Wasm side makes of each captured byte.

mod common;

use common::Sink;

use std::time::Duration;

use wasmtap::sandbox::{Sandbox, SandboxConfig};
use wasmtap_abi::{
    COMM_LEN, HEADER_LEN, OpCode, Plan, RecordHeader, STR_STATUS_LEN, TASK_CHAIN_HEADER_LEN,
    TaskEntry,
};
use wasmtap_compiler::{CompileOptions, catalog::StaticCatalog, compile, diagnostics};

/// What the kernel would see when the probe fires.
#[derive(Default)]
struct Event {
    tgid: u32,
    tid: u32,
    uid: u32,
    comm: &'static str,
    /// The trace entry, for `CtxField` and `CtxDataLoc`.
    entry: Vec<u8>,
    /// Current task first.
    chain: Vec<TaskEntry>,
    cmdline: &'static [u8],
}

fn comm(name: &str) -> [u8; COMM_LEN] {
    let mut out = [0; COMM_LEN];
    out[..name.len()].copy_from_slice(name.as_bytes());
    out
}

fn task(tgid: u32, name: &str) -> TaskEntry {
    TaskEntry {
        tgid,
        pid: tgid,
        uid: 1000,
        euid: 0,
        comm: comm(name),
    }
}

/// A record as the plan interpreter writes it for `event`.
fn record(probe: u32, plan: &Plan, event: &Event) -> Vec<u8> {
    let mut rec = vec![0u8; plan.record_len as usize];
    let header = RecordHeader {
        probe,
        len: plan.record_len as u32,
    };
    rec[..4].copy_from_slice(&header.probe.to_le_bytes());
    rec[4..8].copy_from_slice(&header.len.to_le_bytes());
    for op in &plan.ops[..plan.n_ops as usize] {
        let dst = op.dst as usize;
        let (src, len) = (op.src as usize, op.len as usize);
        let put = |rec: &mut Vec<u8>, at: usize, bytes: &[u8]| {
            rec[at..at + bytes.len()].copy_from_slice(bytes);
        };
        match OpCode::from_u8(op.code).expect("known op") {
            OpCode::PidTgid => put(
                &mut rec,
                dst,
                &((u64::from(event.tgid) << 32) | u64::from(event.tid)).to_le_bytes(),
            ),
            OpCode::UidGid => put(&mut rec, dst, &u64::from(event.uid).to_le_bytes()),
            OpCode::Comm => put(&mut rec, dst, &comm(event.comm)),
            OpCode::ParentTgid => {
                let parent = event.chain.get(1).map_or(0, |t| t.tgid);
                put(&mut rec, dst, &u64::from(parent).to_le_bytes());
            }
            OpCode::EuidEgid => put(&mut rec, dst, &((5u64 << 32) | 7).to_le_bytes()),
            OpCode::CtxField => put(&mut rec, dst, &event.entry[src..src + len]),
            OpCode::CtxDataLoc => {
                let loc = u32::from_le_bytes(event.entry[src..src + 4].try_into().unwrap());
                let (at, n) = ((loc & 0xffff) as usize, (loc >> 16) as usize);
                let text = &event.entry[at..at + n];
                let copied = text.len().min(len);
                let status = text[..copied]
                    .iter()
                    .position(|&b| b == 0)
                    .unwrap_or(copied);
                put(&mut rec, dst, &(status as i32).to_le_bytes());
                put(&mut rec, dst + STR_STATUS_LEN, &text[..copied]);
            }
            OpCode::Cmdline => {
                put(&mut rec, dst, &(event.cmdline.len() as i32).to_le_bytes());
                put(&mut rec, dst + STR_STATUS_LEN, event.cmdline);
            }
            OpCode::TaskChain => {
                put(&mut rec, dst, &(event.chain.len() as u32).to_le_bytes());
                for (i, t) in event.chain.iter().enumerate() {
                    let at = dst + TASK_CHAIN_HEADER_LEN + i * 32;
                    put(&mut rec, at, &t.tgid.to_le_bytes());
                    put(&mut rec, at + 4, &t.pid.to_le_bytes());
                    put(&mut rec, at + 8, &t.uid.to_le_bytes());
                    put(&mut rec, at + 12, &t.euid.to_le_bytes());
                    put(&mut rec, at + 16, &t.comm);
                }
            }
            other => panic!("this test does not simulate {other:?}"),
        }
    }
    assert!(rec.len() >= HEADER_LEN);
    rec.resize(rec.len().next_multiple_of(8), 0);
    rec
}

/// Compiles `source`, feeds each `(probe, event)` as one batch and returns
/// the output.
fn run(source: &str, events: &[(u32, Event)]) -> String {
    let catalog = StaticCatalog::x86_64((6, 18, 0));
    let bundle = compile(source, &catalog, &CompileOptions::default())
        .unwrap_or_else(|e| panic!("{}", diagnostics::render(&e, "<input>", source)));
    let sandbox = Sandbox::new(SandboxConfig {
        deadline: Duration::from_millis(200),
        cache_dir: None,
        ..SandboxConfig::default()
    })
    .expect("sandbox");
    let module = sandbox.compile_script(&bundle.wasm).expect("compile");
    let sink = Sink::default();
    let mut instance = sandbox
        .instantiate(&module, bundle.static_data_size, Box::new(sink.clone()))
        .expect("instantiate");
    instance.init().expect("init");
    let mut batch = Vec::new();
    for (probe, event) in events {
        let plan = bundle.probes[*probe as usize].plan.expect("kernel probe");
        batch.extend(record(*probe, &plan, event));
    }
    instance.handle_batch(&batch).expect("handle_batch");
    instance.flush().expect("flush");
    sink.take()
}

/// The `signal:signal_generate` entry for `sig` sent to `pid` (`comm`).
fn signal_entry(sig: i32, pid: i32, target: &str) -> Vec<u8> {
    let mut entry = vec![0u8; 48];
    entry[8..12].copy_from_slice(&sig.to_le_bytes());
    entry[20..36].copy_from_slice(&comm(target));
    entry[36..40].copy_from_slice(&pid.to_le_bytes());
    entry
}

#[test]
fn seed_3_signal_line() {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/seeds/who_started_killed_my_process.stp"
    ))
    .unwrap();
    let signal = |sig| Event {
        tgid: 40,
        tid: 40,
        uid: 1000,
        comm: "killer",
        entry: signal_entry(sig, 77, "victim"),
        ..Event::default()
    };
    let signal_probe = {
        let catalog = StaticCatalog::x86_64((6, 18, 0));
        let bundle = compile(&source, &catalog, &CompileOptions::default()).unwrap();
        bundle
            .probes
            .iter()
            .position(|p| p.resolved.name.contains("signal_generate"))
            .unwrap() as u32
    };
    let out = run(
        &source,
        &[
            (signal_probe, signal(15)),
            (signal_probe, signal(17)),
            (signal_probe, signal(9)),
            (signal_probe, signal(1000)),
        ],
    );
    assert_eq!(
        out,
        "SIGTERM was sent to victim (pid:77) by killer uid :1000\n\
         SIGKILL was sent to victim (pid:77) by killer uid :1000\n"
    );
}

#[test]
fn ancestry_walk_stops_at_init_and_past_the_chain_reads_zero() {
    let source = r#"
        function walk(t) { while (task_pid(t) != 1) { printf("%d %s %d|", task_pid(t), task_execname(t), task_uid(t)); t = task_parent(t) } }
        probe syscall.getppid {
            walk(task_current())
            t = task_parent(task_parent(task_parent(task_parent(task_current()))))
            printf("\n%d [%s] %d %d %d\n", task_pid(t), task_execname(t), task_tid(0), ppid(), euid())
            printf("[%s]\n", cmdline_str())
        }
    "#;
    let event = Event {
        tgid: 300,
        tid: 300,
        comm: "rm",
        chain: vec![task(300, "rm"), task(200, "sh"), task(1, "systemd")],
        cmdline: b"rm\0-f\0core.123\0",
        ..Event::default()
    };
    let out = run(source, &[(0, event)]);
    assert_eq!(
        out,
        "300 rm 1000|200 sh 1000|\n0 [] 0 200 7\n[rm -f core.123]\n"
    );
}

#[test]
fn exec_fields_from_the_trace_entry() {
    let source = r#"
        probe kernel.trace("sched:sched_process_exec") { printf("%s %d %d\n", $filename, $pid, $old_pid) }
        probe kprocess.exec { printf("kprocess %s\n", filename) }
    "#;
    let exec = || {
        let mut entry = vec![0u8; 20];
        let path = b"/usr/bin/true\0";
        entry[8..12].copy_from_slice(&(20u32 | ((path.len() as u32) << 16)).to_le_bytes());
        entry[12..16].copy_from_slice(&(-5i32).to_le_bytes());
        entry[16..20].copy_from_slice(&6i32.to_le_bytes());
        entry.extend_from_slice(path);
        Event {
            entry,
            ..Event::default()
        }
    };
    let out = run(source, &[(0, exec()), (1, exec())]);
    assert_eq!(out, "/usr/bin/true -5 6\nkprocess /usr/bin/true\n");
}

#[test]
fn process_end_skips_threads_that_are_not_the_last() {
    let source = r#"probe process.end { printf("%s %d\n", $comm, $pid) }"#;
    let exit = |group_dead: u8, pid: i32| {
        let mut entry = vec![0u8; 40];
        entry[8..24].copy_from_slice(&comm("worker"));
        entry[24..28].copy_from_slice(&pid.to_le_bytes());
        entry[32] = group_dead;
        Event {
            entry,
            ..Event::default()
        }
    };
    let out = run(source, &[(0, exit(0, 11)), (0, exit(1, 10))]);
    assert_eq!(out, "worker 10\n");
}

#[test]
fn parms_lists_every_field() {
    let source = r#"probe kernel.trace("signal:signal_generate") { println($$parms) }"#;
    let event = Event {
        entry: signal_entry(15, 77, "victim"),
        ..Event::default()
    };
    let out = run(source, &[(0, event)]);
    assert_eq!(
        out,
        "sig=0xf errno=0x0 code=0x0 comm=\"victim\" pid=0x4d group=0x0 result=0x0\n"
    );
}

#[test]
fn process_begin_is_the_new_process_and_skips_threads() {
    let source = r#"probe process.begin { printf("%d %d %s\n", pid(), tid(), execname()) }"#;
    let newtask = |pid: i32, flags: u64| {
        let mut entry = vec![0u8; 48];
        entry[8..12].copy_from_slice(&pid.to_le_bytes());
        entry[12..28].copy_from_slice(&comm("child"));
        entry[32..40].copy_from_slice(&flags.to_le_bytes());
        Event {
            tgid: 5,
            tid: 5,
            comm: "parent",
            entry,
            ..Event::default()
        }
    };
    // SIGCHLD alone: a new process; with CLONE_THREAD: a thread.
    let out = run(
        source,
        &[(0, newtask(60, 17)), (0, newtask(61, 0x10000 | 17))],
    );
    assert_eq!(out, "60 60 child\n");
}
