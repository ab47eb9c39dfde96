//! Issue 4, seed programs 1 and 3 and tracepoint fields, end to end: the
//! scripts in examples/seeds run as a stap user writes them, against real
//! processes this test starts.

mod common;

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use common::{Tracer, unique_path};

fn seed(name: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/seeds");
    root.join(name).display().to_string()
}

/// Lets the drain timer deliver what the kernel captured.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn seed_1_who_deleted_my_file_prints_the_ancestry_up_to_init() {
    let tracer = Tracer::start(&[&seed("who_deleted_my_file.stp")]);
    let dir = unique_path("seed1");
    std::fs::create_dir(&dir).expect("temp dir");
    let core = format!("{dir}/core.123");
    std::fs::write(&core, b"x").expect("core file");
    // `; true` keeps each shell alive around its child, so the chain is
    // rm -> sh -> sh -> this test, as a user's nested shells would be.
    let outer = Command::new("sh")
        .arg("-c")
        .arg(format!("sh -c \"rm {core}; true\"; true"))
        .spawn()
        .expect("spawn sh");
    let outer_pid = outer.id();
    let status = outer.wait_with_output().expect("wait sh").status;
    assert!(status.success());
    settle();
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    let _ = std::fs::remove_dir(&dir);
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    assert!(
        stderr
            .contains("kernel.function(\"sys_exit\") runs on tracepoint sched:sched_process_exit"),
        "no mapping warning; stderr: {stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    let start = lines
        .iter()
        .position(|l| *l == format!("unlink(at) {core}"))
        .unwrap_or_else(|| {
            panic!("no unlink line for {core}; stdout:\n{stdout}\nstderr: {stderr}")
        });
    let ancestry: Vec<Vec<&str>> = lines[start + 1..]
        .iter()
        .take_while(|l| !l.starts_with("-----"))
        .map(|l| l.splitn(3, '\t').collect())
        .collect();
    let context = format!("ancestry:\n{}", lines[start..].join("\n"));
    assert!(ancestry.len() >= 4, "{context}");
    // rm, with the argv its exec recorded.
    assert_eq!(ancestry[0][1], "rm", "{context}");
    assert!(ancestry[0][2].contains("rm"), "{context}");
    // The inner and the outer shell, each with its exec's arguments.
    assert_eq!(ancestry[1][1], "sh", "{context}");
    assert_eq!(
        ancestry[2],
        [outer_pid.to_string().as_str(), "sh", ancestry[2][2]],
        "{context}"
    );
    assert!(ancestry[2][2].contains("sh"), "{context}");
    // Then this test process, and on up; pid 1 itself is not printed.
    assert_eq!(ancestry[3][0], std::process::id().to_string(), "{context}");
    assert!(
        ancestry.iter().all(|a| a[0] != "1" && a[0] != "0"),
        "{context}"
    );
    let pids: Vec<u32> = ancestry.iter().map(|a| a[0].parse().unwrap()).collect();
    assert!(pids[0] != pids[1] && pids[1] != pids[2], "{context}");
    assert_eq!(
        lines[start + 1 + ancestry.len()],
        "------------------------"
    );
}

#[test]
fn seed_3_who_killed_my_process_names_signal_target_and_sender() {
    let tracer = Tracer::start(&[&seed("who_started_killed_my_process.stp")]);
    let mut victim = Command::new("sleep")
        .arg("60")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn sleep");
    let victim_pid = victim.id();
    // spawn() returns once the child has left our memory, which can be
    // before exec renames it: wait for the name the signal line shows.
    let comm_path = format!("/proc/{victim_pid}/comm");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&comm_path)
        .unwrap_or_default()
        .trim()
        != "sleep"
    {
        assert!(std::time::Instant::now() < deadline, "sleep never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("sh")
        .arg("-c")
        .arg(format!("kill -TERM {victim_pid}"))
        .status()
        .expect("run kill");
    assert!(kill.success());
    let _ = victim.wait();
    settle();
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    let expected = format!("SIGTERM was sent to sleep (pid:{victim_pid}) by sh uid :0");
    assert!(
        stdout.lines().any(|l| l == expected),
        "no line '{expected}'; stdout:\n{stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("execve ") && l.contains("sleep")),
        "no execve line for sleep; stdout:\n{stdout}"
    );
    // The tracer's own SIGINT is neither SIGKILL nor SIGTERM.
    assert!(!stdout.contains("SIGINT"), "{stdout}");
}

#[test]
fn exec_tracepoint_fields_give_the_new_program_and_pid() {
    let script = r#"probe kernel.trace("sched:sched_process_exec") { printf("exec %s %d %d\n", $filename, $pid, pid()) }"#;
    let tracer = Tracer::start(&["-e", script]);
    let program = ["/usr/bin/true", "/bin/true"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("true(1)");
    let child = Command::new(program).spawn().expect("spawn true");
    let child_pid = child.id();
    let _ = child.wait_with_output();
    settle();
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    let expected = format!("exec {program} {child_pid} {child_pid}");
    assert!(
        stdout.lines().any(|l| l == expected),
        "no line '{expected}'; stdout:\n{stdout}\nstderr: {stderr}"
    );
}

#[test]
fn process_begin_and_end_see_a_child_once() {
    let script = r#"
        probe process.begin { printf("begin %d\n", pid()) }
        probe process.end { printf("end %d %s\n", pid(), execname()) }
    "#;
    let tracer = Tracer::start(&["-e", script]);
    let child = Command::new("sleep")
        .arg("0.1")
        .spawn()
        .expect("spawn sleep");
    let child_pid = child.id();
    let _ = child.wait_with_output();
    settle();
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    let count = |want: &str| stdout.lines().filter(|l| *l == want).count();
    assert_eq!(count(&format!("begin {child_pid}")), 1, "stdout:\n{stdout}");
    assert_eq!(
        count(&format!("end {child_pid} sleep")),
        1,
        "stdout:\n{stdout}"
    );
}

/// `code` is the status do_exit() was given, as in stap: `status << 8` for
/// exit(status), the signal number for a death by signal.
#[test]
fn kprocess_exit_code_is_the_exit_status() {
    let script = r#"
        probe kprocess.exit { if (pid() == target()) printf("kprocess.exit %d\n", code) }
        probe kernel.function("do_exit") { if (pid() == target()) printf("do_exit %d\n", $code) }
    "#;
    let run_with = |command: &str| common::run_ok(&["-c", command, "-e", script]);
    assert_eq!(
        run_with("sh -c 'exit 3'"),
        "kprocess.exit 768\ndo_exit 768\n"
    );
    assert_eq!(
        run_with("sh -c 'kill -TERM $$'"),
        "kprocess.exit 15\ndo_exit 15\n"
    );
}
