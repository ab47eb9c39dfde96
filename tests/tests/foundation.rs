//! Issue 2, the foundation slice, end to end: real scripts, real probes,
//! real processes.

mod common;

use std::process::Command;

use common::{Tracer, assert_unloaded, bpf_prog_ids_of, run, unique_path};

#[test]
fn hello_world() {
    let out = run(&[
        "-e",
        r#"probe begin { printf("hello %s\n", "world"); exit() }"#,
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello world\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn openat_of_a_child_is_traced_with_pid_comm_and_path() {
    let script = r#"probe syscall.openat { printf("%s(%d) %s\n", execname(), pid(), user_string($filename)) }"#;
    let tracer = Tracer::start(&["-e", script]);
    let path = unique_path("openat");
    let child = Command::new("cat")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn cat");
    let child_pid = child.id();
    let _ = child.wait_with_output();
    // Give the drain timer a few rounds.
    std::thread::sleep(std::time::Duration::from_millis(100));
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    let expected = format!("cat({child_pid}) {path}");
    assert!(
        stdout.lines().any(|line| line == expected),
        "no line '{expected}' in the output; stderr: {stderr}\nstdout (first lines): {}",
        stdout.lines().take(20).collect::<Vec<_>>().join("\n")
    );
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
}

#[test]
fn sigint_runs_end_probes_and_leaves_no_program_loaded() {
    let script = r#"
        global n
        probe syscall.getppid { n++ }
        probe end { printf("end ran\n") }
    "#;
    let tracer = Tracer::start(&["-e", script]);
    let ours = bpf_prog_ids_of(tracer.pid());
    assert!(
        !ours.is_empty(),
        "wasmtap holds no BPF program while attached"
    );
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    assert!(
        stdout.contains("end ran\n"),
        "stdout: {stdout}; stderr: {stderr}"
    );
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    assert_unloaded(&ours);
}

#[test]
fn sigterm_also_ends_cleanly() {
    let script = r#"probe syscall.getppid { next } probe end { println("terminated") }"#;
    let tracer = Tracer::start(&["-e", script]);
    let ours = bpf_prog_ids_of(tracer.pid());
    let (stdout, stderr, status) = tracer.stop(libc::SIGTERM);
    assert_eq!(stdout, "terminated\n", "stderr: {stderr}");
    assert!(status.success());
    assert_unloaded(&ours);
}

#[test]
fn a_handler_that_loops_forever_is_stopped_and_named() {
    let out = run(&[
        "--handler-budget-ms",
        "50",
        "-e",
        "probe begin {\n  while (1) { }\n}\nprobe end { println(\"unreachable\") }",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains("ERROR: handler exceeded its time budget of 50 ms")
            && stderr.contains("in probe 'begin'"),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("at <input>:2:"),
        "no script location: {stderr}"
    );
}

#[test]
fn a_trap_in_a_kernel_probe_detaches_everything() {
    let script = r#"probe syscall.getppid { x = 1 / 0 }"#;
    let tracer = Tracer::start(&["-e", script]);
    let ours = bpf_prog_ids_of(tracer.pid());
    // Trigger the probe from a child; the tracer stops by itself.
    let _ = Command::new("sh")
        .args(["-c", "cat /proc/self/stat > /dev/null"])
        .status();
    let mut child = tracer.child;
    let _ = Command::new("python3")
        .args(["-c", "import os\nfor _ in range(3): os.getppid()"])
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "wasmtap kept running after the error"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    assert_unloaded(&ours);
}

/// Compares stderr with the expected text, ignoring trailing spaces.
fn assert_stderr(args: &[&str], expected: &str) {
    let out = run(args);
    assert_eq!(out.status.code(), Some(1));
    let got: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect();
    let want: Vec<&str> = expected.lines().collect();
    assert_eq!(got, want, "stderr differs");
}

#[test]
fn parse_errors_point_at_the_token() {
    assert_stderr(
        &["-e", r#"probe begin { printf("x" }"#],
        r#"Error: expected ',' or ')', found '}' (<input>:1:26)
   ,-[ <input>:1:26 ]
   |
 1 | probe begin { printf("x" }
   |                     |    |
   |                     |    `-- expected ',' or ')'
   |                     |
   |                     `------- to match this '('
---'
1 error; nothing was attached."#,
    );
}

#[test]
fn unknown_probe_points_are_named() {
    assert_stderr(
        &["-e", "probe syscall.nosuch { }"],
        r#"Error: probe point 'syscall.nosuch' matches nothing (<input>:1:7)
   ,-[ <input>:1:7 ]
   |
 1 | probe syscall.nosuch { }
   |       ^^^^^^^|^^^^^^
   |              `-------- no such event on this system
   |
   | Help: check the name (syscalls of x86_64, as in syscalls(2)), or mark the point optional with '?'
---'
1 error; nothing was attached."#,
    );
    assert_stderr(
        &["-e", "probe nosuch.point { }"],
        r#"Error: unknown probe point 'nosuch.point' (<input>:1:7)
   ,-[ <input>:1:7 ]
   |
 1 | probe nosuch.point { }
   |       ^^^^^^|^^^^^
   |             `------- not a probe point wasmtap knows
   |
   | Help: supported: begin, end, error, timer.s/ms/us/hz(N), timer.profile, perf.sw.cpu_clock.sample(N), syscall.NAME[.return] (NAME may use * ? [...]), kernel.trace("system:event"), signal.send, kprocess.exec/exit, process.begin/end, process("PATH").function("NAME")[.return], process("PATH").mark("NAME")
---'
1 error; nothing was attached."#,
    );
}

#[test]
fn unknown_functions_and_variables_are_errors() {
    let out = run(&["-e", "probe begin { prinf(\"x\") }"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("unknown function 'prinf'"), "{stderr}");
    assert!(stderr.contains("did you mean printf"), "{stderr}");
    let out = run(&["-e", "probe syscall.openat { println($nosuch) }"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown target variable '$nosuch'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("available: $dfd $filename $flags $mode"),
        "{stderr}"
    );
}
