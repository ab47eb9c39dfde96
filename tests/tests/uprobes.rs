//! Issue 6: user-space function probes with parameters from DWARF (seed
//! program 4), `.return` with `$return`, a libc function probed in one
//! process with `-x`, a USDT mark, and `-L` listings. The traced programs
//! are built here with gcc from `tests/tests/uprobes/*.c`.

mod common;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use common::{Tracer, run, unique_path};

/// A test program built into its own directory, removed on drop.
struct Built {
    dir: PathBuf,
    exe: PathBuf,
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::ops::Deref for Built {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.exe
    }
}

/// Builds `tests/tests/uprobes/SOURCE` with gcc and `flags` into a fresh
/// directory.
fn build(source: &str, flags: &[&str]) -> Built {
    let dir = PathBuf::from(unique_path("uprobes"));
    std::fs::create_dir_all(&dir).expect("create the build directory");
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/uprobes")
        .join(source);
    let exe = dir.join(source.trim_end_matches(".c"));
    common::gcc_file(&src, &exe, flags);
    Built { dir, exe }
}

/// Runs `exe` to completion while a tracer started with `args` is
/// attached, and returns the tracer's output.
fn trace_run_args(args: &[&str], exe: &Path) -> String {
    let tracer = Tracer::start(args);
    let status = Command::new(exe)
        .stdout(Stdio::null())
        .status()
        .expect("run the traced program");
    assert!(status.success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    stdout
}

/// [`trace_run_args`] with the script text `script`.
fn trace_run(script: &str, exe: &Path) -> String {
    trace_run_args(&["-e", script], exe)
}

fn lines_starting<'s>(stdout: &'s str, prefix: &str) -> Vec<&'s str> {
    stdout.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// Seed program 4 as written (`examples/seeds/what_is_a_process_doing.stp`,
/// the binary as its argument), on -O0 code (parameters in the frame, read
/// from the argument registers at entry) and -O2 code (location lists).
#[test]
fn seed_4_prints_every_function_with_its_parameters() {
    let seed =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/seeds/what_is_a_process_doing.stp");
    let seed = seed.to_str().expect("utf-8 path");
    for opt in ["-O0", "-O2"] {
        let exe = build("demo.c", &["-g", opt]);
        let stdout = trace_run_args(&[seed, exe.to_str().expect("utf-8 path")], &exe);
        assert_eq!(
            lines_starting(&stdout, "add("),
            ["add(a=0x3 b=0x4)"; 3],
            "{opt}: {stdout}"
        );
        assert_eq!(lines_starting(&stdout, "noop("), ["noop()"; 3], "{opt}");
        let scale = lines_starting(&stdout, "scale(");
        assert_eq!(scale.len(), 3, "{opt}: {stdout}");
        assert!(
            scale[0].starts_with("scale(x=0xfffffffffffffffb f=0x2 s=0x"),
            "{opt}: {}",
            scale[0]
        );
        let handle = lines_starting(&stdout, "handle(r=0x7ff");
        assert_eq!(handle.len(), 3, "{opt}: {stdout}");
        // Functions without DWARF (crt code) still fire, with no parameters.
        assert!(stdout.lines().any(|l| l == "_start()"), "{opt}: {stdout}");
        assert!(stdout.lines().any(|l| l.starts_with("main(")), "{opt}");
    }
}

#[test]
fn return_probes_see_return_and_parameters_by_name() {
    let exe = build("demo.c", &["-g", "-O2"]);
    let script = format!(
        r#"probe process("{0}").function("add@demo.c").return {{ printf("%s -> %d\n", ppfunc(), $return) }}
           probe process("{0}").function("scale").call {{ printf("x=%d f=%d %s\n", $x, $f, probemod()) }}"#,
        exe.display()
    );
    let stdout = trace_run(&script, &exe);
    assert_eq!(
        lines_starting(&stdout, "add -> "),
        ["add -> 7"; 3],
        "{stdout}"
    );
    let expected = format!("x=-5 f=2 {}", exe.display());
    assert_eq!(
        lines_starting(&stdout, "x="),
        [expected.as_str(); 3],
        "{stdout}"
    );
}

#[test]
fn usdt_marks_give_their_arguments() {
    let exe = build("demo.c", &["-O2"]);
    let script = format!(
        r#"probe process("{}").mark("tick") {{ printf("%s:%s %d %d %d [%s]\n", $$provider, $$name, $arg1, $arg2, $arg3, $$parms) }}"#,
        exe.display()
    );
    let stdout = trace_run(&script, &exe);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "demo:tick 1 10 -3 [arg1=0x1 arg2=0xa arg3=0xfffffffffffffffd]",
            "demo:tick 2 20 -3 [arg1=0x2 arg2=0x14 arg3=0xfffffffffffffffd]",
            "demo:tick 3 30 -3 [arg1=0x3 arg2=0x1e arg3=0xfffffffffffffffd]",
        ]
    );
}

/// `-x` restricts user probes to the target: the test process's own
/// getpid() calls through the same libc are not seen.
#[test]
fn a_libc_function_is_probed_in_the_target_process_only() {
    let exe = build("getpid.c", &["-O2"]);
    let mut target = Command::new(&*exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start the target");
    let pid = target.id().to_string();
    let script = r#"probe process("/lib/x86_64-linux-gnu/libc.so.6").function("getpid") { printf("%s %d %d\n", probefunc(), pid(), pid() == target()) }"#;
    let tracer = Tracer::start(&["-x", &pid, "-e", script]);
    for _ in 0..3 {
        // SAFETY: getpid has no preconditions; it goes through libc.
        unsafe { libc::getpid() };
    }
    target
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("wake the target");
    assert!(target.wait().expect("wait for the target").success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    assert!(status.success(), "{stderr}");
    let expected = format!("getpid {pid} 1");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [expected.as_str(); 3],
        "stderr: {stderr}"
    );
}

#[test]
fn listing_shows_parameters_and_types() {
    let exe = build("demo.c", &["-g", "-O0"]);
    let path = exe.display();
    let out = run(&["-L", &format!(r#"process("{path}").function("[as]*")"#)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/uprobes/demo.c");
    let src = std::fs::canonicalize(src).expect("source path");
    let src = src.display();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            format!(r#"process("{path}").function("add@{src}:17") $a:int $b:int"#),
            format!(
                r#"process("{path}").function("scale@{src}:18") $x:long int $f:unsigned char $s:char const*"#
            ),
        ]
    );
    let out = run(&["-L", &format!(r#"process("{path}").mark("*")"#)]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "process(\"{path}\").provider(\"demo\").mark(\"tick\") $arg1:int $arg2:unsigned long $arg3:int\n"
        )
    );
}

#[test]
fn unknown_functions_and_binaries_are_diagnosed() {
    let exe = build("demo.c", &["-O0"]);
    let out = run(&[
        "-e",
        &format!(
            r#"probe process("{}").function("nosuch") {{ }}"#,
            exe.display()
        ),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains(r#"function("nosuch")' matches no function of"#),
        "{stderr}"
    );
    assert!(stderr.contains("wasmtap -L"), "{stderr}");
    let out = run(&[
        "-e",
        r#"probe process("no-such-program-xyz").function("*") { }"#,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no executable named 'no-such-program-xyz' in $PATH"),
        "{stderr}"
    );
    let out = run(&["-e", r#"probe process.function("main") { }"#]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pass the target with -x PID"), "{stderr}");
}

/// `-c CMD` with `process.function(...)`: the probe goes on the command's
/// binary (not on the shell that holds it until attach), in that process.
#[test]
fn process_function_with_c_probes_the_command() {
    let exe = build("demo.c", &["-g", "-O0"]);
    let out = common::run(&[
        "-c",
        exe.to_str().expect("utf-8 path"),
        "-e",
        r#"probe process.function("add") { printf("%s(%s)\n", probefunc(), $$parms) }"#,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lines_starting(&stdout, "add("),
        ["add(a=0x3 b=0x4)"; 3],
        "{stdout}"
    );
}

/// Members read through pointers at probe time: `$req->len`, a chain
/// through `->next`, an embedded struct, an array element, char arrays and
/// `char*` members with `user_string`.
#[test]
fn struct_members_are_read_through_pointers() {
    let exe = build("structs.c", &["-g", "-O0"]);
    let script = format!(
        r#"probe process("{}").function("handle") {{
             printf("len=%d name=%s inner.y=%d arr[2]=%d tag=%s\n", $req->len, user_string($req->name), $req->inner->y, $req->arr[2], user_string($req->tag))
             try {{ printf("next: %d %s\n", $req->next->len, user_string($req->next->name)) }} catch (e) {{ printf("caught: %s\n", e) }}
           }}"#,
        exe.display()
    );
    let stdout = trace_run(&script, &exe);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        [
            "len=5 name=first inner.y=2 arr[2]=3 tag=t1",
            "next: 7 second",
            "len=7 name=second inner.y=4 arr[2]=30 tag=t2",
            "caught: read fault at 0x0000000000000000",
        ]
    );
}

/// An uncaught fault is a stap-style run-time error that ends the script.
#[test]
fn an_uncaught_read_fault_is_an_error() {
    let exe = build("structs.c", &["-g", "-O0"]);
    let out = run(&[
        "-c",
        exe.to_str().expect("utf-8 path"),
        "-e",
        &format!(
            r#"probe process("{}").function("handle") {{ printf("%d\n", $req->next->len) }}"#,
            exe.display()
        ),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stdout, "7\n", "{stderr}");
    assert!(
        stderr.contains("ERROR: read fault at 0x0000000000000000 in probe")
            && stderr.contains("near '$req->next->len'"),
        "{stderr}"
    );
}

/// `@cast` on a `void*` with a struct of the probed binary, `$$parms$`
/// with the pointed-to struct, and eight arguments (the last two passed
/// on the stack).
#[test]
fn cast_pretty_parms_and_stack_arguments() {
    let exe = build("structs.c", &["-g", "-O0"]);
    let script = format!(
        r#"probe process("{0}").function("opaque") {{ printf("cast %d %s\n", @cast($p, "struct req")->next->len, user_string(@cast($p, "struct req")->next->name)) }}
           probe process("{0}").function("handle") {{ printf("%s\n", $$parms$) }}
           probe process("{0}").function("many") {{ printf("%s | %d %d\n", $$parms, $g, $h) }}"#,
        exe.display()
    );
    let stdout = trace_run(&script, &exe);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        lines[0].starts_with(r#"req={.len=5, .name="first", .next=0x7ff"#)
            && lines[0].ends_with(r#", .inner={.x=1, .y=2}, .arr=[1, 2, 3, 4], .tag="t1"} n=1"#),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        r#"req={.len=7, .name="second", .next=0x0, .inner={.x=3, .y=4}, .arr=[10, 20, 30, 40], .tag="t2"} n=2"#
    );
    assert_eq!(lines[2], "cast 7 second");
    assert_eq!(
        lines[3],
        "a=0x1 b=0x2 c=0x3 d=0x4 e=0x5 f=0x6 g=0xfffffffffffffff9 h=0x8 | -7 8"
    );
}

/// USDT arguments in memory (`-4@-164(%rbp)` at -O0).
#[test]
fn usdt_memory_operands_are_read() {
    let exe = build("structs.c", &["-g", "-O0"]);
    let script = format!(
        r#"probe process("{}").mark("mem") {{ printf("%d %d [%s]\n", $arg1, $arg2, $$parms) }}"#,
        exe.display()
    );
    let stdout = trace_run(&script, &exe);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["-3 270 [arg1=0xfffffffffffffffd arg2=0x10e]"]
    );
}

/// Functions in the generated program of [`many_functions`].
const MANY: usize = 300;

/// A program with [`MANY`] functions `fn_I`, each called `I % 5 + 1` times.
/// Run as `EXE probed`, it calls none and prints how many of them start
/// with an int3 (0xcc), which is how a uprobe shows in the traced process's
/// own code.
fn many_functions(dir: &Path) -> PathBuf {
    let mut c = String::from("#include <stdio.h>\n#include <string.h>\n");
    for i in 0..MANY {
        c += &format!(
            "__attribute__((noinline)) int fn_{i}(int x) {{ __asm__ volatile(\"\"); return x + {i}; }}\n"
        );
    }
    c += &format!("static int (*const fns[{MANY}])(int) = {{");
    c += &(0..MANY)
        .map(|i| format!("fn_{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    c += &format!(
        "}};
int main(int argc, char **argv) {{
    int n = 0, acc = 0;
    if (argc > 1 && strcmp(argv[1], \"probed\") == 0) {{
        for (int i = 0; i < {MANY}; i++) n += *(const volatile unsigned char *)fns[i] == 0xcc;
        printf(\"%d\\n\", n);
        return 0;
    }}
    for (int i = 0; i < {MANY}; i++)
        for (int k = 0; k <= i % 5; k++) acc += fns[i](acc);
    return acc == 42;
}}
"
    );
    common::gcc(dir, "many", &c, &["-O1"])
}

/// How many functions of the program built by [`many_functions`] carry a
/// uprobe right now.
fn probed_functions(exe: &Path) -> usize {
    let out = Command::new(exe)
        .arg("probed")
        .output()
        .expect("run the program");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().expect("a count")
}

/// The `fn_I` lines of `stdout` (`fn_I ENTRIES RETURNS`), checked against
/// the calls the program makes: each hit reaches the probe of its own
/// function, so the per-offset cookies name the right probes.
fn assert_hits_per_function(stdout: &str, context: &str) {
    let mut got: Vec<&str> = lines_starting(stdout, "fn_");
    got.sort_unstable();
    let mut expected: Vec<String> = (0..MANY)
        .map(|i| format!("fn_{i} {0} {0}", i % 5 + 1))
        .collect();
    expected.sort_unstable();
    assert_eq!(got, expected, "{context}");
}

/// `function("*")` on a binary with hundreds of functions: each one fires
/// its own probe at entry and at return (one uprobe_multi link per kind
/// where the kernel has them, a link per probe elsewhere), also when scoped
/// to the `-c` command, and when the tracer exits no uprobe and no program
/// is left behind.
#[test]
fn every_function_of_a_large_binary_is_probed_and_released() {
    let dir = PathBuf::from(unique_path("many"));
    std::fs::create_dir_all(&dir).expect("create the build directory");
    let built = Built {
        exe: many_functions(&dir),
        dir,
    };
    let exe = &built.exe;
    assert_eq!(probed_functions(exe), 0, "probed before tracing");
    let script = |target: &str| {
        format!(
            r#"global calls, rets
               probe {target}.function("*") {{ calls[ppfunc()]++ }}
               probe {target}.function("fn_*").return {{ rets[ppfunc()]++ }}
               probe end {{ foreach (f in calls) printf("%s %d %d\n", f, calls[f], rets[f]) }}"#
        )
    };

    let tracer = Tracer::start(&["-e", &script(&format!(r#"process("{}")"#, exe.display()))]);
    let programs = common::bpf_prog_ids_of(tracer.pid());
    assert!(!programs.is_empty());
    let status = Command::new(exe).status().expect("run the traced program");
    assert!(status.code().is_some());
    assert_eq!(probed_functions(exe), MANY, "probed while tracing");
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    assert_hits_per_function(&stdout, &stderr);
    // The traced run and the `probed` check.
    assert!(stdout.lines().any(|l| l == "main 2 0"), "{stdout}");

    common::assert_unloaded(&programs);
    assert_eq!(probed_functions(exe), 0, "probed after the tracer exited");
    for tracefs in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if let Ok(events) = std::fs::read_to_string(Path::new(tracefs).join("uprobe_events")) {
            let name = exe.to_str().expect("utf-8 path");
            assert!(!events.contains(name), "{tracefs}/uprobe_events: {events}");
        }
    }

    let out = run(&[
        "-c",
        exe.to_str().expect("utf-8 path"),
        "-e",
        &script("process"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_hits_per_function(&stdout, &stderr);
    assert_eq!(probed_functions(exe), 0, "probed after the -c run");
}
