//! Tracepoint probe points, tapset aliases and task functions through every
//! pass (issue 4): what each probe captures and what the checker refuses.

mod common;

use common::{build, errors, ops};

use wasmtap_abi::{OpCode, Plan};
use wasmtap_compiler::passes::resolve::ProbeKind;

fn has(plan: &Plan, code: OpCode) -> bool {
    ops(plan).iter().any(|op| op.code == code as u8)
}

fn seed(name: &str) -> String {
    let path = format!("{}/../examples/seeds/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn exec_fields_are_read_at_their_format_offsets() {
    let bundle = build(
        r#"probe kernel.trace("sched:sched_process_exec") { printf("%s %d %d\n", $filename, $pid, $old_pid) }"#,
    );
    assert_eq!(
        bundle.probes[0].resolved.name,
        r#"kernel.trace("sched:sched_process_exec")"#
    );
    let plan = bundle.probes[0].plan.expect("kernel probe");
    let ops = ops(&plan);
    let loc = ops
        .iter()
        .find(|op| op.code == OpCode::CtxDataLoc as u8)
        .expect("filename");
    assert_eq!(loc.src, 8);
    let fields: Vec<(u16, u16)> = ops
        .iter()
        .filter(|op| op.code == OpCode::CtxField as u8)
        .map(|op| (op.src, op.len))
        .collect();
    assert_eq!(fields, [(12, 4), (16, 4)]);
}

#[test]
fn bare_event_names_and_wildcards_resolve() {
    let bundle = build(r#"probe kernel.trace("sched_process_e*") { printf("%s\n", pp()) }"#);
    let names: Vec<_> = bundle
        .probes
        .iter()
        .map(|p| p.resolved.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            r#"kernel.trace("sched:sched_process_exec")"#,
            r#"kernel.trace("sched:sched_process_exit")"#
        ]
    );
}

#[test]
fn unknown_fields_list_the_available_ones() {
    let text = errors(r#"probe kernel.trace("signal:signal_generate") { print($signo) }"#);
    assert!(text.contains("unknown target variable '$signo'"), "{text}");
    assert!(
        text.contains("$sig $errno $code $comm $pid $group $result"),
        "{text}"
    );
}

#[test]
fn unknown_tracepoints_name_the_place_to_look() {
    let text = errors(r#"probe kernel.trace("sched:no_such_event") { next }"#);
    assert!(text.contains("matches nothing"), "{text}");
    assert!(text.contains("/sys/kernel/tracing/events"), "{text}");
}

#[test]
fn seed_1_runs_with_a_warning_and_only_unlink_captures_the_chain() {
    let bundle = build(&seed("who_deleted_my_file.stp"));
    assert_eq!(bundle.warnings.len(), 1, "{:?}", bundle.warnings);
    assert!(
        bundle.warnings[0]
            .message
            .contains("sched:sched_process_exit"),
        "{}",
        bundle.warnings[0].message
    );
    for probe in &bundle.probes {
        let plan = probe.plan.expect("kernel probe");
        let unlink = probe.resolved.name.starts_with("syscall.unlink");
        assert_eq!(
            has(&plan, OpCode::TaskChain),
            unlink,
            "{}",
            probe.resolved.name
        );
    }
    assert!(
        bundle
            .probes
            .iter()
            .any(|p| matches!(p.resolved.kind, ProbeKind::Tracepoint { .. }))
    );
}

#[test]
fn seed_3_signal_send_reads_the_generate_entry() {
    let bundle = build(&seed("who_started_killed_my_process.stp"));
    let signal = bundle
        .probes
        .iter()
        .find(|p| p.resolved.name.contains("signal_generate"))
        .expect("signal.send");
    let plan = signal.plan.expect("kernel probe");
    let fields: Vec<(u16, u16)> = ops(&plan)
        .iter()
        .filter(|op| op.code == OpCode::CtxField as u8)
        .map(|op| (op.src, op.len))
        .collect();
    // sig, comm[16], pid
    assert_eq!(fields, [(8, 4), (20, 16), (36, 4)]);
    assert!(has(&plan, OpCode::UidGid) && has(&plan, OpCode::Comm));
}

#[test]
fn task_functions_in_script_functions_mark_their_callers() {
    let bundle = build(
        r#"
        function ancestry() { t = task_current(); s = ""
            while (task_pid(t) > 1) { s .= task_execname(t) . " "; t = task_parent(t) }
            return s }
        probe syscall.getppid { println(ancestry()) }
        probe syscall.getpid { println(ppid(), " ", euid(), " ", egid(), " ", cmdline_str()) }
    "#,
    );
    let getppid = bundle.probes[0].plan.expect("getppid");
    let getpid = bundle.probes[1].plan.expect("getpid");
    assert!(has(&getppid, OpCode::TaskChain));
    assert!(!has(&getpid, OpCode::TaskChain));
    for plan in [getppid, getpid] {
        assert!(has(&plan, OpCode::ParentTgid) && has(&plan, OpCode::EuidEgid));
        assert!(has(&plan, OpCode::Cmdline));
    }
}

#[test]
fn aliases_offer_stap_variables() {
    build(
        r#"
        probe signal.send { printf("%s %d %s %d %d %d %d %s\n", sig_name, sig, pid_name, sig_pid, si_code, send2queue, shared, name) }
        probe kprocess.exec { println(filename) }
        probe kprocess.exit { println($pid) }
        probe process.begin { println(pid) }
        probe process.end { println(pid()) }
    "#,
    );
}

#[test]
fn kernel_function_without_equivalent_is_refused_with_the_tracepoint() {
    let text = errors(r#"probe kernel.function("do_execve") { next }"#);
    assert!(
        text.contains("needs kprobes or BTF trampolines, and this kernel allows neither"),
        "{text}"
    );
    assert!(text.contains("kprocess.exec"), "{text}");
    let text = errors(r#"probe kernel.function("vfs_read") { next }"#);
    assert!(text.contains("kernel.trace("), "{text}");
}
