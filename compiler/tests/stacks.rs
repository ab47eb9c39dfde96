//! Issue 5 in the compiler: the profiling probe points, the stack builtins
//! (captured only where used) and the in-kernel filters drawn from a
//! handler's leading `pid() == target()`.

mod common;

use common::errors;

use wasmtap_abi::{Filter, FilterCmp, FilterField, OpCode, Plan};
use wasmtap_compiler::{
    Bundle, CompileOptions,
    passes::resolve::{PerfCounter, ProbeKind},
};

fn build_for(source: &str, target_pid: Option<u32>) -> Bundle {
    common::build_with(
        source,
        &CompileOptions {
            target_pid,
            ..CompileOptions::default()
        },
    )
}

fn ops(plan: &Plan) -> Vec<OpCode> {
    plan.ops[..plan.n_ops as usize]
        .iter()
        .filter_map(|op| OpCode::from_u8(op.code))
        .collect()
}

fn filters(plan: &Plan) -> Vec<Filter> {
    plan.filters[..plan.n_filters as usize].to_vec()
}

const PID_IS_TARGET: Filter = Filter::new(FilterField::Pid, FilterCmp::Eq, 4242);

#[test]
fn profiling_points_resolve() {
    let bundle = build_for(
        "probe timer.profile {} probe perf.sw.cpu_clock.sample(250000) {} \
         probe perf.hw.cpu_cycles {} probe timer.hz(50) {}",
        None,
    );
    let kinds: Vec<&ProbeKind> = bundle.probes.iter().map(|p| &p.resolved.kind).collect();
    assert_eq!(kinds[0], &ProbeKind::Profile);
    assert_eq!(
        kinds[1],
        &ProbeKind::PerfSample {
            counter: PerfCounter::CpuClock,
            period: 250_000
        }
    );
    assert_eq!(
        kinds[2],
        &ProbeKind::PerfSample {
            counter: PerfCounter::CpuCycles,
            period: 1_000_000
        }
    );
    // timer.hz stays a host timer.
    assert!(matches!(kinds[3], ProbeKind::Timer { .. }));
    assert!(bundle.probes[..3].iter().all(|p| p.plan.is_some()));
}

#[test]
fn unknown_perf_events_say_what_exists() {
    let text = errors("probe perf.sw.page_faults.sample(10) {}");
    assert!(text.contains("unknown perf event"), "{text}");
    assert!(text.contains("perf.sw.cpu_clock.sample(N)"), "{text}");
}

#[test]
fn stacks_are_captured_only_by_probes_that_use_them() {
    let bundle = build_for(
        "global s, k
         probe timer.profile { s[ubacktrace()] <<< 1 }
         probe perf.sw.cpu_clock.sample(1000000) { k[backtrace()] <<< 1 }
         probe syscall.getpid { printf(\"%d\\n\", pid()) }
         probe end { foreach (i in s-) { print_ustack(i) } foreach (j in k) print_stack(j) }",
        None,
    );
    let plan = |i: usize| bundle.probes[i].plan.expect("kernel probe");
    assert!(ops(&plan(0)).contains(&OpCode::UserRegsStack));
    assert!(!ops(&plan(0)).contains(&OpCode::KernelStack));
    assert!(ops(&plan(1)).contains(&OpCode::KernelStack));
    assert!(!ops(&plan(1)).contains(&OpCode::UserRegsStack));
    let quiet = ops(&plan(2));
    assert!(!quiet.contains(&OpCode::UserRegsStack) && !quiet.contains(&OpCode::KernelStack));
    // ubacktrace() needs the process whose maps name its frames.
    assert!(ops(&plan(0)).contains(&OpCode::PidTgid));
}

#[test]
fn stack_builtins_type_check() {
    build_for(
        "probe timer.profile {
           s = ubacktrace(); t = sprint_ustack(s); u = sprint_backtrace()
           printf(\"%s%s%s%s\", t, u, usymname(0x1000), usymdata(0x1000))
           printf(\"%s%s%s\", umodname(0x1000), symname(0), symdata(0))
           print_ubacktrace(); print_backtrace(); print_stack(backtrace())
           v = sprint_ubacktrace(); w = sprint_stack(\"\")
           printf(\"%s%s\", v, w)
         }",
        None,
    );
}

#[test]
fn stacks_outside_sampled_probes_are_refused_with_a_hint() {
    let text = errors("probe timer.s(1) { print_ubacktrace() }");
    assert!(text.contains("needs an event the kernel samples"), "{text}");
    assert!(text.contains("timer.profile"), "{text}");
}

#[test]
fn seed_program_5_filters_on_the_target_in_the_kernel() {
    let bundle = build_for(
        "global s; global quit = 0;
         probe timer.profile {
           if (pid() == target()) {
             if (quit) { foreach (i in s-) { print_ustack(i); printf(\"\\t%d\\n\", @count(s[i])) } exit() }
             else { s[ubacktrace()] <<< 1; }
           }
         }
         probe timer.s(2) { quit = 1 }",
        Some(4242),
    );
    assert_eq!(filters(&bundle.probes[0].plan.unwrap()), [PID_IS_TARGET]);
}

#[test]
fn recognised_predicate_forms() {
    let filter_of = |body: &str| {
        let source = format!("global s probe timer.profile {{ {body} }}");
        filters(&build_for(&source, Some(4242)).probes[0].plan.unwrap())
    };
    // `next` on the opposite condition, operands either way round.
    assert_eq!(
        filter_of("if (target() != pid()) next; s[ubacktrace()] <<< 1"),
        [PID_IS_TARGET]
    );
    // Conjunctions and disjunctions give one filter per comparison.
    assert_eq!(
        filter_of("if (pid() == target() && uid() >= 1000) s[ubacktrace()] <<< 1"),
        [
            PID_IS_TARGET,
            Filter::new(FilterField::Uid, FilterCmp::Ge, 1000)
        ]
    );
    assert_eq!(
        filter_of("if (pid() != target() || tid() < 10) next; s[ubacktrace()] <<< 1"),
        [
            PID_IS_TARGET,
            Filter::new(FilterField::Tid, FilterCmp::Ge, 10)
        ]
    );
}

#[test]
fn predicates_with_effects_or_other_statements_stay_in_the_handler() {
    let none = |body: &str| {
        let source = format!(
            "global s, n function f() {{ n++; return 1 }} probe timer.profile {{ {body} }}"
        );
        filters(&build_for(&source, Some(4242)).probes[0].plan.unwrap())
    };
    // A call before the comparison runs for every event.
    assert!(none("if (f() && pid() == target()) s[ubacktrace()] <<< 1").is_empty());
    // Work outside the `if` runs for every event.
    assert!(none("n++; if (pid() == target()) s[ubacktrace()] <<< 1").is_empty());
    // An else branch runs for the other events.
    assert!(none("if (pid() == target()) s[1] <<< 1 else n--").is_empty());
    // A script function named like a builtin is not the builtin.
    let shadowed = build_for(
        "global s function pid() { return 1 } probe timer.profile { if (pid() == target()) s[1] <<< 1 }",
        Some(4242),
    );
    assert!(filters(&shadowed.probes[0].plan.unwrap()).is_empty());
}
