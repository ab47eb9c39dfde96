//! Syscall tapset variables through every pass: what each compiles to in
//! the capture plan, and the errors for names a syscall does not offer.

mod common;

use common::{build, errors, ops};

use wasmtap_abi::{OpCode, Plan, PlanOp};

fn op(plan: &Plan, code: OpCode) -> Vec<PlanOp> {
    ops(plan)
        .into_iter()
        .filter(|op| op.code == code as u8)
        .collect()
}

#[test]
fn execve_argstr_captures_the_path_and_both_lists() {
    let bundle = build(r#"probe syscall.execve { println(argstr) }"#);
    let plan = bundle.probes[0].plan.expect("kernel probe");
    let strings = op(&plan, OpCode::UserStr);
    assert_eq!(strings.len(), 1, "the filename");
    assert_eq!(strings[0].arg, 0);
    let lists = op(&plan, OpCode::UserStrArray);
    assert_eq!(
        lists.iter().map(|op| op.arg).collect::<Vec<_>>(),
        [1, 2],
        "argv and envp"
    );
    assert!(
        lists
            .iter()
            .all(|op| op.src == wasmtap_abi::MAX_ARGV as u16)
    );
}

#[test]
fn write_argstr_copies_a_short_prefix_of_the_buffer() {
    let bundle = build(r#"probe syscall.write { println(argstr) }"#);
    let plan = bundle.probes[0].plan.expect("kernel probe");
    let strings = op(&plan, OpCode::UserStr);
    assert_eq!(strings.len(), 1);
    assert_eq!((strings[0].arg, strings[0].len), (1, 32));
}

#[test]
fn numeric_argstr_captures_no_string() {
    let bundle = build(r#"probe syscall.mmap, syscall.read { println(argstr) }"#);
    for probe in &bundle.probes {
        let plan = probe.plan.expect("kernel probe");
        assert!(
            op(&plan, OpCode::UserStr).is_empty(),
            "{}",
            probe.resolved.name
        );
        assert!(!op(&plan, OpCode::Arg).is_empty());
    }
}

#[test]
fn retstr_captures_only_the_return_value() {
    let bundle = build(r#"probe syscall.openat.return { println(retstr) }"#);
    let plan = bundle.probes[0].plan.expect("kernel probe");
    let codes: Vec<u8> = ops(&plan).iter().map(|op| op.code).collect();
    assert_eq!(codes, [OpCode::RetVal as u8]);
}

#[test]
fn tapset_variables_have_stap_s_names_and_types() {
    build(
        r#"probe syscall.openat {
            printf("%s %s %d %s %d %s %d\n", filename, dfd_str, dfd, flags_str, flags, argstr, mode)
        }
        probe syscall.kill { printf("%d %s\n", sig, sig_name) }
        probe syscall.write { printf("%d %s %d\n", buf_uaddr, buf_str, count) }
        probe syscall.execve { printf("%s %s\n", args, env_str) }
        probe syscall.mmap { printf("%d %s %s\n", fd, prot_str, flags_str) }
        probe syscall.getpid { printf("%d\n", $__syscall_nr) }
        probe syscall.read.return { printf("%d %d %s\n", $return, $ret, retstr) }"#,
    );
}

#[test]
fn unknown_target_variables_are_errors_naming_the_fields() {
    let text = errors(r#"probe syscall.openat { println($nonesuch) }"#);
    assert!(
        text.contains("unknown target variable '$nonesuch' in probe 'syscall.openat'"),
        "{text}"
    );
    assert!(
        text.contains("$filename"),
        "the hint names the fields: {text}"
    );
}

#[test]
fn syscalls_without_a_layout_still_print_every_field() {
    let bundle = build(r#"probe syscall.io_uring_setup { println(argstr) }"#);
    let plan = bundle.probes[0].plan.expect("kernel probe");
    assert_eq!(op(&plan, OpCode::Arg).len(), 2, "entries and params");
}
