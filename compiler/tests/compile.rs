//! Scripts through every pass: each must compile to a valid module whose
//! plans capture what its handlers read.

mod common;

use common::{build, errors};

use wasmtap_abi::OpCode;

#[test]
fn hello_world_has_no_kernel_probe() {
    let bundle = build(r#"probe begin { printf("hello %s\n", "world"); exit() }"#);
    assert_eq!(bundle.probes.len(), 1);
    assert!(bundle.probes[0].plan.is_none());
}

#[test]
fn openat_plan_captures_context_and_the_path() {
    let bundle = build(
        r#"probe syscall.openat { printf("%s(%d) %s\n", execname(), pid(), user_string($filename)) }"#,
    );
    let plan = bundle.probes[0].plan.expect("kernel probe");
    let ops: Vec<_> = plan.ops[..plan.n_ops as usize]
        .iter()
        .map(|op| (OpCode::from_u8(op.code).unwrap(), op.arg))
        .collect();
    assert!(ops.contains(&(OpCode::PidTgid, 0)));
    assert!(ops.contains(&(OpCode::Comm, 0)));
    assert!(ops.contains(&(OpCode::UserStr, 1)), "{ops:?}");
}

#[test]
fn wildcards_expand_per_syscall() {
    let bundle = build(r#"probe syscall.open* { printf("%s %s\n", name, argstr) }"#);
    let names: Vec<_> = bundle
        .probes
        .iter()
        .map(|p| p.resolved.name.as_str())
        .collect();
    assert!(names.contains(&"syscall.openat"), "{names:?}");
    assert!(names.contains(&"syscall.open"), "{names:?}");
    let everything = build(r#"probe syscall.* { printf("%s\n", name) }"#);
    assert!(everything.probes.len() > 300);
}

#[test]
fn language_core_compiles() {
    build(
        r#"
        global counts, total, names[100], s
        function fact(n) { if (n <= 1) return 1; return n * fact(n - 1) }
        function greet:string(who:string) { return "hi " . who }
        probe begin {
            for (i = 0; i < 10; i++) { counts[i % 3] += i; total <<< i }
            while (total_seen < 3) { total_seen++; if (total_seen == 2) break }
            foreach ([k] in counts- limit 2) printf("%d=%d\n", k, counts[k])
            foreach (v = [k] in counts) printf("%d:%d ", k, v)
            names["a", 1] = "x"; names["b", 2] = greet("you")
            if (["a", 1] in names) println(names["a", 1])
            printf("%d %d %d %d\n", @count(total), @sum(total), @min(total), @max(total))
            print(@hist_log(total))
            x = fact(5) ; s = sprintf("%5d|%-5s|%x", x, "ab", 255)
            delete counts[0]; delete names
            printf("%s %d %d\n", s, strlen(s), x > 3 ? 1 : 0)
            exit()
        }
        probe end { println("bye") }
        "#,
    );
}

#[test]
fn type_conflicts_name_both_places() {
    let text = errors("global x\nprobe begin { x = 1 }\nprobe end { x = \"s\" }");
    assert!(
        text.contains("type mismatch for 'x': long vs string"),
        "{text}"
    );
}

#[test]
fn unknown_probe_points_are_errors() {
    let text = errors("probe nosuch.point { }");
    assert!(
        text.contains("unknown probe point 'nosuch.point'"),
        "{text}"
    );
}

#[test]
fn kernel_function_explains_why() {
    let text = errors(r#"probe kernel.function("do_sys_open") { }"#);
    assert!(text.contains("neither"), "{text}");
}

#[test]
fn aliases_expand_to_the_points_they_name() {
    let bundle = build(
        "probe opens = syscall.openat, syscall.open { n = 1 }\n\
         probe opens { printf(\"%d\\n\", n) }",
    );
    let names: Vec<_> = bundle
        .probes
        .iter()
        .map(|p| p.resolved.name.as_str())
        .collect();
    assert_eq!(names, ["syscall.openat", "syscall.open"]);
}

#[test]
fn try_catch_and_functions_that_may_raise_validate() {
    build(
        "function f(x) { if (x) error(\"e\"); return x / x }\n\
         global a[2]\n\
         probe begin { for (i = 0; i < 3; i++) { try { a[i] = f(i); printf(\"%d\\n\", i) } \
         catch (m) { println(m); continue } } try { next } catch { } }",
    );
}

#[test]
fn unread_globals_are_listed_for_the_exit_printer() {
    let bundle =
        build("global shown, hidden\nprobe begin { hidden = 1; shown = 2; println(shown) }");
    assert_eq!(bundle.unread_globals, ["hidden"]);
}

#[test]
fn regex_errors_name_the_pattern() {
    let text = errors(r#"probe begin { x = "a" =~ "(" }"#);
    assert!(text.contains("invalid regular expression"), "{text}");
}

#[test]
fn defined_elides_the_branch_a_probe_cannot_have() {
    let bundle = build(
        "probe syscall.openat, syscall.close { if (@defined($filename)) \
         println(user_string($filename)) else println($fd) }",
    );
    assert_eq!(bundle.probes.len(), 2);
}
