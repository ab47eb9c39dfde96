//! Plugins as their authors and operators use them: the example plugins in
//! `examples/plugins` built for wasm32 here, run with `wasmtap run` against
//! commands the test starts (`-c`), refused when they import what the host
//! does not provide or probe what the policy denies, and stopped when they
//! trap or loop.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::{Mutex, OnceLock},
    time::{Duration, Instant},
};

use common::{Tracer, daemon::Daemon, unique_path};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds `package` of the example workspace for wasm32 (with `features`)
/// and returns a copy of its module named after `name`. The build shares
/// one target directory under the workspace's, so only the first build
/// compiles the guest SDK; builds run one at a time.
fn build(package: &str, features: &str, name: &str) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root().join("target"), PathBuf::from)
        .join("plugins");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--target", "wasm32-unknown-unknown"])
        .arg("--manifest-path")
        .arg(root().join("examples/plugins/Cargo.toml"))
        .args(["-p", package])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    if !features.is_empty() {
        command.args(["--features", features]);
    }
    let status = command.status().expect("run cargo");
    assert!(status.success(), "building plugin {package}: {status}");
    let built = target.join(format!("wasm32-unknown-unknown/release/{package}.wasm"));
    let copy = target.join(format!("{name}.wasm"));
    std::fs::copy(&built, &copy).expect("copy the plugin");
    copy
}

fn example(package: &str) -> &'static Path {
    static BUILT: OnceLock<Mutex<Vec<(String, &'static Path)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    if let Some((_, path)) = built.lock().unwrap().iter().find(|(p, _)| p == package) {
        return path;
    }
    let path: &'static Path = Box::leak(build(package, "", package).into_boxed_path());
    built.lock().unwrap().push((package.to_string(), path));
    path
}

/// `wasmtap run ARGS...`, waited for at most a minute.
fn wasmtap_run(args: &[&str]) -> Output {
    let run: Vec<&str> = std::iter::once("run").chain(args.iter().copied()).collect();
    common::run(&run)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn opensnoop_pairs_paths_with_results() {
    let plugin = example("opensnoop");
    let present = unique_path("plugin-open");
    // A whole line: cat shares the tracer's stdout, and a partial line
    // would run into a row of the table.
    std::fs::write(&present, "x\n").unwrap();
    let missing = unique_path("plugin-missing");
    let cmd = format!("cat {present} {missing}");
    let out = wasmtap_run(&[plugin.to_str().unwrap(), "-c", &cmd]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}: {stderr}", out.status);
    // The file's own line, printed by cat into the same stdout, may come
    // anywhere among the plugin's rows.
    let lines: Vec<&str> = stdout.lines().filter(|l| *l != "x").collect();
    assert!(
        lines[0].contains("PID") && lines[0].contains("PATH"),
        "{stdout}"
    );
    let row = |path: &str| {
        lines
            .iter()
            .find(|l| l.ends_with(&format!(" {path}")))
            .unwrap_or_else(|| panic!("no line for {path}:\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    let (opened, failed) = (row(&present), row(&missing));
    assert_eq!(opened[1], "cat", "{stdout}");
    assert!(opened[2].parse::<i64>().unwrap() >= 0, "{stdout}");
    assert_eq!(failed[2], "-2", "ENOENT expected:\n{stdout}");
    assert_eq!(opened[0], failed[0], "one process:\n{stdout}");
    // -c traces only the command: nothing from other processes.
    assert!(lines[1..].iter().all(|l| l.contains(" cat ")), "{stdout}");
    let _ = std::fs::remove_file(&present);
}

#[test]
fn execsnoop_prints_argv() {
    let plugin = example("execsnoop");
    let mark = unique_path("plugin-exec-arg");
    let out = wasmtap_run(&[
        plugin.to_str().unwrap(),
        "-c",
        &format!("/bin/echo first {mark} third"),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}: {stderr}", out.status);
    // echo's own output shares stdout (as with stap -c): find the row.
    let line = stdout
        .lines()
        .find(|l| l.contains("/bin/echo first"))
        .unwrap_or_else(|| panic!("no exec line:\n{stdout}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[2], "0", "execve succeeded:\n{stdout}");
    assert_eq!(
        fields[3..],
        ["/bin/echo", "first", mark.as_str(), "third"],
        "{stdout}"
    );
}

#[test]
fn syslatency_prints_a_log_histogram() {
    let plugin = example("syslatency");
    let out = wasmtap_run(&[
        plugin.to_str().unwrap(),
        "-c",
        "dd if=/dev/zero of=/dev/null bs=1 count=500",
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}: {stderr}", out.status);
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("dd: "))
        .unwrap_or_else(|| panic!("no dd line:\n{stdout}"));
    let reads: i64 = summary.split_whitespace().nth(1).unwrap().parse().unwrap();
    // 500 one-byte reads plus dd's own startup reads.
    assert!((500..600).contains(&reads), "{summary}");
    assert!(
        stdout.contains("value |-------------------------------------------------- count"),
        "{stdout}"
    );
    // dd's histogram: from its summary line to the blank line after it (the
    // `-c` shell's own reads of its start gate get a histogram of their own).
    let counted: i64 = stdout
        .lines()
        .skip_while(|l| !l.starts_with("dd: "))
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (value, rest) = l.split_once('|')?;
            value.trim().parse::<i64>().ok()?;
            rest.split_whitespace().last()?.parse::<i64>().ok()
        })
        .sum();
    assert_eq!(counted, reads, "the histogram counts every read:\n{stdout}");
}

/// Compiles C `source` with gcc and `flags` into a fresh directory;
/// returns the executable.
fn gcc(name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let dir = PathBuf::from(unique_path(name));
    std::fs::create_dir_all(&dir).unwrap();
    common::gcc(&dir, name, source, flags)
}

#[test]
fn profile_prints_the_top_stacks_symbolized_and_a_flame_graph() {
    let plugin = example("profile");
    // No frame pointers: the plugin's UserRegs capture is unwound by the
    // host with DWARF CFI, as a script's ubacktrace() is.
    let exe = gcc(
        "plugin-cpu",
        common::CPU_BOUND_C,
        &["-O2", "-fomit-frame-pointer"],
    );
    let svg = exe.with_file_name("profile.svg");
    let command = format!("{} 2", exe.display());
    let out = wasmtap_run(&[
        plugin.to_str().unwrap(),
        "-c",
        &command,
        "--flamegraph",
        svg.to_str().unwrap(),
    ]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert!(stdout.contains("most frequent:"), "{stdout}");
    // The most frequent stack comes first, innermost frame first, named:
    // hot, then its callers up to main, all in the program.
    let first: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with(" 0x"))
        .take_while(|l| l.starts_with(" 0x"))
        .collect();
    let names: Vec<&str> = first
        .iter()
        .filter_map(|l| {
            let (_, symbol) = l.split_once(" : ")?;
            Some(&symbol[..symbol.find("+0x")?])
        })
        .collect();
    assert_eq!(names[..4], ["hot", "b", "a", "main"], "{stdout}");
    assert!(
        first[0].ends_with(&format!("[{}]", exe.display())),
        "{stdout}"
    );
    let counts: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix('\t')?.parse().ok())
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{stdout}");
    assert!(counts.iter().sum::<u64>() > 50, "2 s at 99 Hz:\n{stdout}");
    let drawn = std::fs::read_to_string(&svg).expect("the flame graph");
    assert!(
        drawn.starts_with("<?xml") && drawn.contains("<svg"),
        "{drawn}"
    );
    for function in ["hot", "main"] {
        assert!(
            drawn.contains(&format!("<title>{function} (")),
            "{function} in the SVG"
        );
    }

    // The same report, folded for other flame graph tools.
    let out = wasmtap_run(&[
        plugin.to_str().unwrap(),
        "-c",
        &command,
        "--output",
        "folded",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.lines().any(|l| l.contains("main;a;b;hot ")),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(exe.parent().unwrap());
}

#[test]
fn ucalls_reads_function_and_usdt_arguments() {
    let plugin = example("ucalls");
    // Built in place: demo.c includes its neighbour sdt.h.
    let src = root().join("tests/tests/uprobes/demo.c");
    let dir = PathBuf::from(unique_path("plugin-demo"));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("demo");
    common::gcc_file(&src, &exe, &["-O1", "-g"]);
    let out = wasmtap_run(&[plugin.to_str().unwrap(), "-c", exe.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}: {stderr}", out.status);
    let pid = stdout
        .lines()
        .find_map(|l| l.strip_prefix("tracing pid "))
        .unwrap_or_else(|| panic!("target() in begin:\n{stdout}"));
    assert_ne!(pid, "0", "target() is the -c command");
    let count = |line: &str| stdout.lines().filter(|l| *l == line).count();
    assert_eq!(count(&format!("add(3, 4) in pid {pid}")), 3, "{stdout}");
    assert_eq!(count("add returned 7"), 3, "{stdout}");
    for i in 1..=3 {
        assert_eq!(count(&format!("tick {i} {}", i * 10)), 1, "{stdout}");
    }
    // A string argument is read from user memory; its page may not be
    // faulted in yet at the first call, never at the last.
    assert!(stdout.contains("scale(-5, 2, \"hi\")"), "{stdout}");
    let _ = std::fs::remove_dir_all(exe.parent().unwrap());
}

#[test]
fn exectrace_reads_tracepoint_fields_by_name() {
    let plugin = example("exectrace");
    let out = wasmtap_run(&[plugin.to_str().unwrap(), "-c", "/bin/true"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}: {stderr}", out.status);
    let line = stdout
        .lines()
        .find(|l| l.ends_with("filename=/bin/true"))
        .unwrap_or_else(|| panic!("no exec of /bin/true:\n{stdout}"));
    let value = |key: &str| {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    };
    let pid: u32 = value("pid=").parse().unwrap();
    assert!(pid > 1, "{line}");
    assert_eq!(value("old_pid="), pid.to_string(), "{line}");
    assert_eq!(value("comm="), "true", "{line}");
}

#[test]
fn a_capture_that_does_not_match_the_event_is_refused() {
    let built = example("exectrace");
    // Declare the 4-byte `pid` field as 8 bytes, inside the manifest.
    let mut wasm = std::fs::read(built).unwrap();
    let find = |needle: &[u8], from: usize| {
        wasm[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let section = find(b"wasmtap.manifest", 0).expect("manifest section");
    let at = find(b"\x0f\x04\x00\x00\x03pid", section).expect("the pid field");
    wasm[at + 1] = 8;
    let broken = built.with_file_name("exectrace-bad-size.wasm");
    std::fs::write(&broken, &wasm).unwrap();

    let out = wasmtap_run(&[broken.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("field `pid` is a number; declare it as Field { name: \"pid\", size: 4 }")
            && stderr.contains("nothing was attached"),
        "{stderr}"
    );
}

#[test]
fn an_import_the_host_lacks_is_refused_before_attaching() {
    let plugin = build("misbehave", "bad-import", "misbehave-bad-import");
    let out = wasmtap_run(&[plugin.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("imports `host.no_such_function`, which the host does not provide")
            && stderr.contains("nothing was attached"),
        "{stderr}"
    );
    assert!(
        !text(&out.stdout).contains("begin ran"),
        "begin must not run"
    );
}

#[test]
fn a_plugin_that_traps_is_stopped() {
    let plugin = build("misbehave", "trap", "misbehave-trap");
    let out = wasmtap_run(&[plugin.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(text(&out.stdout).contains("begin ran"));
    assert!(
        stderr.contains("ERROR: handler trapped")
            && stderr.contains("unreachable")
            && stderr.contains("in probe 'timer.ms(20)'"),
        "{stderr}"
    );
}

#[test]
fn a_plugin_that_loops_is_stopped() {
    let plugin = build("misbehave", "spin", "misbehave-spin");
    let started = Instant::now();
    let out = wasmtap_run(&[plugin.to_str().unwrap(), "--handler-budget-ms", "50"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("exceeded its time budget of 50 ms")
            && stderr.contains("in probe 'timer.ms(20)'"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn an_unknown_probe_point_is_refused_with_the_manifest_line() {
    let built = build("misbehave", "", "misbehave-plain");
    // Rename the timer unit inside the manifest section only (same length,
    // so the module stays valid): `timer.zz(20)` names nothing.
    let mut wasm = std::fs::read(&built).unwrap();
    let find = |hay: &[u8], needle: &[u8], from: usize| {
        hay[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|i| i + from)
    };
    let section = find(&wasm, b"wasmtap.manifest", 0).expect("manifest section");
    let at = find(&wasm, b"timer.ms(20)", section).expect("timer in the manifest");
    wasm[at..at + 12].copy_from_slice(b"timer.zz(20)");
    let broken = built.with_file_name("misbehave-unknown-probe.wasm");
    std::fs::write(&broken, &wasm).unwrap();

    let out = wasmtap_run(&[broken.to_str().unwrap()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("timer.zz(20)"), "{stderr}");
    assert!(
        stderr.contains("(manifest)"),
        "names the manifest:\n{stderr}"
    );
    assert!(stderr.contains("nothing was attached"), "{stderr}");
    assert!(
        !text(&out.stdout).contains("begin ran"),
        "begin must not run"
    );
}

#[test]
fn the_daemon_refuses_a_plugin_probe_its_policy_denies() {
    let plugin = example("opensnoop");
    let daemon = Daemon::start(
        "plugin-daemon",
        "[[tenant]]\nusers = [\"0\"]\nlevel = \"dev\"\ndeny_probes = [\"syscall.openat\"]\n",
    );
    let out = daemon.run_client(
        None,
        &["run", plugin.to_str().unwrap()],
        Duration::from_secs(60),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the policy does not allow probe `syscall.openat`")
            && stderr.contains("nothing was attached"),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("PID"), "begin must not run");
}

#[test]
fn the_daemon_runs_a_plugin_on_the_target_process() {
    let plugin = example("opensnoop");
    let daemon = Daemon::start(
        "plugin-daemon",
        "[[tenant]]\nusers = [\"0\"]\nlevel = \"dev\"\n",
    );
    let (mine, other) = (
        unique_path("plugin-daemon-mine"),
        unique_path("plugin-daemon-other"),
    );
    // The target waits for a line on stdin, then opens its file (exec:
    // the same pid).
    let mut target = Command::new("sh")
        .args(["-c", &format!("read _; exec cat {mine}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = daemon.client(
        None,
        &[
            "run",
            plugin.to_str().unwrap(),
            "-v",
            "-x",
            &target.id().to_string(),
        ],
    );
    let tracer = Tracer::start_command(client);
    let _ = Command::new("cat")
        .arg(&other)
        .stderr(Stdio::null())
        .status();
    {
        use std::io::Write as _;
        writeln!(target.stdin.take().unwrap()).unwrap();
    }
    target.wait().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    assert!(status.success(), "{status}: {stderr}");
    let row = stdout
        .lines()
        .find(|l| l.ends_with(&mine))
        .unwrap_or_else(|| panic!("the target's open is missing:\n{stdout}\n{stderr}"));
    assert!(row.contains(" -2 "), "ENOENT: {row}");
    assert!(
        !stdout.contains(&other),
        "-x scopes to the target:\n{stdout}"
    );
}

#[test]
fn the_daemon_runs_a_plugin_with_c() {
    let plugin = example("opensnoop");
    let daemon = Daemon::start(
        "plugin-daemon-c",
        "[[tenant]]\nusers = [\"0\"]\nlevel = \"dev\"\n",
    );
    let missing = unique_path("plugin-daemon-c");
    // No signal: the command's exit ends the run.
    let out = daemon.run_client(
        None,
        &[
            "run",
            plugin.to_str().unwrap(),
            "-c",
            &format!("cat {missing}"),
        ],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{}: {stderr}", out.status);
    let row = stdout
        .lines()
        .find(|l| l.ends_with(&missing))
        .unwrap_or_else(|| panic!("the command's open is missing:\n{stdout}\n{stderr}"));
    assert!(row.contains(" cat ") && row.contains(" -2 "), "{row}");
    assert!(
        stdout.lines().skip(1).all(|l| l.contains(" cat ")),
        "-c scopes to the command:\n{stdout}"
    );
}
