//! The multi-tenant daemon, as operators and users run it: a root daemon
//! with a policy file, unprivileged users (created by the test) connecting
//! with `wasmtap --connect`, real processes opening real files.

mod common;

use std::{
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::{
    assert_unloaded, bpf_prog_ids_of,
    daemon::{Daemon, uid_gid},
    unique_path,
};

const ALICE: &str = "wtap_alice";
const BOB: &str = "wtap_bob";

/// A user for the test, created once; returns its uid.
fn user(name: &str) -> u32 {
    let id = |name: &str| {
        let out = Command::new("id").args(["-u", name]).output().ok()?;
        String::from_utf8(out.stdout).ok()?.trim().parse().ok()
    };
    if let Some(uid) = id(name) {
        return uid;
    }
    let status = Command::new("useradd")
        .args(["-M", "-s", "/usr/sbin/nologin", name])
        .status()
        .expect("useradd");
    // Another test may have created it at the same moment.
    id(name).unwrap_or_else(|| panic!("useradd {name} failed: {status}"))
}

/// `cat path` as `uid`: one openat of `path` by that user.
fn open_as(uid: u32, path: &str) {
    let _ = Command::new("cat")
        .arg(path)
        .uid(uid)
        .gid(uid_gid(uid))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

const OPENAT: &str = r#"probe syscall.openat { printf("%d %s\n", uid(), user_string($filename)) } probe end { printf("END\n") }"#;

const USER_POLICY: &str = r#"
[default]
level = "user"

[[tenant]]
users = ["wtap_bob"]
deny_probes = ["syscall.unlink*"]
"#;

#[test]
fn each_tenant_sees_only_its_own_processes() {
    let (alice, bob) = (user(ALICE), user(BOB));
    let mut daemon = Daemon::start("daemon-scope", USER_POLICY);
    let alice_tracer = daemon.tracer(alice, OPENAT);
    let bob_tracer = daemon.tracer(bob, OPENAT);
    let marks = ["alice", "bob", "root"].map(|who| unique_path(&format!("mark-{who}")));
    for _ in 0..3 {
        open_as(alice, &marks[0]);
        open_as(bob, &marks[1]);
        open_as(0, &marks[2]);
    }
    std::thread::sleep(Duration::from_millis(200));

    let stats = daemon.run_client(None, &["--stats"], Duration::from_secs(10));
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).expect("stats JSON");
    let tenants = stats.as_array().expect("a list of tenants");
    assert_eq!(tenants.len(), 2, "{stats}");
    assert!(
        tenants
            .iter()
            .all(|t| t["counters"]["events"].as_u64() > Some(0)),
        "{stats}"
    );

    for (tracer, uid, own, foreign) in [
        (alice_tracer, alice, &marks[0], [&marks[1], &marks[2]]),
        (bob_tracer, bob, &marks[1], [&marks[0], &marks[2]]),
    ] {
        let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
        assert!(status.success(), "{status}: {stderr}");
        assert!(stdout.contains(own.as_str()), "own file missing:\n{stdout}");
        for other in foreign {
            assert!(
                !stdout.contains(other.as_str()),
                "foreign file seen:\n{stdout}"
            );
        }
        for line in stdout.lines().filter(|l| *l != "END") {
            assert!(
                line.starts_with(&format!("{uid} ")),
                "a line of another user: {line}"
            );
        }
        assert!(stdout.ends_with("END\n"), "end probe output: {stdout}");
    }
    daemon.stop();
}

#[test]
fn denied_probe_is_refused_before_anything_attaches() {
    let bob = user(BOB);
    let mut daemon = Daemon::start("daemon-deny", USER_POLICY);
    let before = bpf_prog_ids_of(daemon.pid());
    for (script, rule) in [
        (
            "probe syscall.unlinkat { printf(\"x\\n\") }",
            "deny_probes (`syscall.unlink*`)",
        ),
        ("probe timer.s(1) { print_backtrace() }", "level \"user\""),
    ] {
        let out = daemon.run_client(Some(bob), &["-e", script], Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("the policy does not allow"), "{stderr}");
        assert!(stderr.contains(rule), "{stderr}");
        assert!(stderr.contains("nothing was attached"), "{stderr}");
    }
    assert_eq!(bpf_prog_ids_of(daemon.pid()), before);
    daemon.stop();
}

#[test]
fn runaway_and_memory_bomb_are_stopped_while_others_run_on() {
    let (alice, bob) = (user(ALICE), user(BOB));
    let policy = format!("{USER_POLICY}\n[limits]\nhandler_budget_ms = 50\nmemory_mib = 16\n");
    let mut daemon = Daemon::start("daemon-limits", &policy);
    let steady = daemon.tracer(bob, OPENAT);

    for (script, expect) in [
        ("probe timer.ms(10) { while (1) {} }", "exceeded"),
        (
            "global a[10000000] probe timer.ms(10) { i = 0 while (1) { a[i++] = sprintf(\"%500d\", i) } }",
            "memory",
        ),
    ] {
        let out = daemon.run_client(Some(alice), &["-e", script], Duration::from_secs(30));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expect), "{stderr}");
    }
    let mark = unique_path("mark-after-runaway");
    open_as(bob, &mark);
    std::thread::sleep(Duration::from_millis(200));
    let (stdout, stderr, status) = steady.stop(libc::SIGINT);
    assert!(status.success(), "{stderr}");
    assert!(
        stdout.contains(&mark),
        "the other tenant stopped receiving:\n{stdout}"
    );
    daemon.stop();
}

#[test]
fn disconnect_detaches_that_tenant_only() {
    let (alice, bob) = (user(ALICE), user(BOB));
    let mut daemon = Daemon::start("daemon-disconnect", USER_POLICY);
    let baseline = bpf_prog_ids_of(daemon.pid());
    let stays = daemon.tracer(bob, OPENAT);
    let with_bob = bpf_prog_ids_of(daemon.pid());
    let mut leaves = daemon.tracer(alice, OPENAT);
    let alice_programs: Vec<u32> = bpf_prog_ids_of(daemon.pid())
        .into_iter()
        .filter(|id| !with_bob.contains(id))
        .collect();
    assert!(
        !alice_programs.is_empty(),
        "alice's probes are not attached"
    );

    leaves.child.kill().unwrap();
    let _ = leaves.child.wait();
    assert_unloaded(&alice_programs);
    let deadline = Instant::now() + Duration::from_secs(5);
    while bpf_prog_ids_of(daemon.pid()) != with_bob {
        assert!(
            Instant::now() < deadline,
            "the daemon kept alice's programs"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, stderr, status) = stays.stop(libc::SIGINT);
    assert!(status.success(), "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while bpf_prog_ids_of(daemon.pid()) != baseline {
        assert!(Instant::now() < deadline, "the daemon kept bob's programs");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.stop();
}

#[test]
fn restart_delivers_everything_and_leaves_nothing_attached() {
    let alice = user(ALICE);
    let mut daemon = Daemon::start("daemon-restart", USER_POLICY);
    let tracer = daemon.tracer(alice, OPENAT);
    let mark = unique_path("mark-restart");
    open_as(alice, &mark);
    std::thread::sleep(Duration::from_millis(100));
    let programs = bpf_prog_ids_of(daemon.pid());
    assert!(!programs.is_empty());

    // Stop the daemon under the connected tenant: its `end` probe still
    // runs and everything it printed reaches the client.
    daemon.stop();
    let (stdout, stderr, status) = tracer.stop(0);
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains(&mark), "{stdout}");
    assert!(stdout.ends_with("END\n"), "{stdout}");
    assert_unloaded(&programs);
    assert!(!daemon.socket.exists(), "the socket was left behind");

    let mut again = Daemon::spawn(
        daemon.dir.clone(),
        daemon.bin.clone(),
        daemon.socket.clone(),
    );
    let out = again.run_client(
        Some(alice),
        &["-e", "probe begin { printf(\"back\\n\"); exit() }"],
        Duration::from_secs(30),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "back\n");
    again.stop();
}

/// `-c` through the daemon: the command runs as the client's user (never
/// as the daemon's root), held until the probes are attached, and its exit
/// ends the run with the `end` probes' output delivered.
#[test]
fn c_runs_the_command_as_the_client_user_and_ends_with_it() {
    let alice = user(ALICE);
    let daemon = Daemon::start("daemon-c", USER_POLICY);
    let script = r#"probe syscall.openat { if (pid() == target()) printf("%d %s\n", uid(), user_string($filename)) } probe end { printf("END\n") }"#;
    let out = daemon.run_client(
        Some(alice),
        &["-c", "id -u", "-e", script],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{}: {stderr}", out.status);
    let lines: Vec<&str> = stdout.lines().collect();
    // `id -u` printed the client's uid: it ran as alice.
    assert!(lines.contains(&alice.to_string().as_str()), "{stdout}");
    // Its opens were traced from its first one: held until attached.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{alice} ")) && l.contains("ld.so")),
        "{stdout}"
    );
    assert_eq!(lines.last(), Some(&"END"), "{stdout}");
}

/// A `user`-level tenant may target only its own processes, with `-x` as
/// with `-c`.
#[test]
fn x_of_another_users_process_is_refused() {
    let alice = user(ALICE);
    let daemon = Daemon::start("daemon-x", USER_POLICY);
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = sleeper.id().to_string();
    let out = daemon.run_client(
        Some(alice),
        &["-x", &pid, "-e", "probe begin { exit() }"],
        Duration::from_secs(60),
    );
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("process {pid} does not belong to user {alice}"))
            && stderr.contains("nothing was attached"),
        "{stderr}"
    );
}
