//! Issue 5: CPU profiling, stacks and flame graphs, against real processes
//! this test starts. Needs root (CI has it) and gcc (scripts/setup installs
//! it).

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

/// Seed program 5 as written, with `timer.s(2)` instead of 20.
const SEED5: &str = r#"global s;
global quit = 0;
probe timer.profile {
if (pid() == target()) {
if (quit) {
foreach (i in s-) {
print_ustack(i);
printf("\t%d\n", @count(s[i]));
}
exit()
} else {
s[ubacktrace()] <<< 1;
}
}
}
probe timer.s(2) { quit = 1 }
"#;

/// A program that spends its time in read(2) of /dev/zero.
const SYSCALL_HEAVY: &str = r#"
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
static char buf[1 << 20];
int main(int argc, char **argv) {
    int fd = open("/dev/zero", O_RDONLY);
    time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 10);
    while (time(NULL) < end) if (read(fd, buf, sizeof buf) < 0) return 1;
    return 0;
}
"#;

/// A scratch directory for one test, removed when the test ends.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(test: &str) -> Scratch {
    let dir = PathBuf::from(common::unique_path(test));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    Scratch(dir)
}

/// The CPU-bound program built without frame pointers.
fn cpu_bound(dir: &Path) -> PathBuf {
    common::gcc(
        dir,
        "cpu",
        common::CPU_BOUND_C,
        &["-O2", "-fomit-frame-pointer"],
    )
}

/// A printed stack report: each stack's frame lines with its count.
fn stacks_of(report: &str) -> Vec<(Vec<String>, u64)> {
    let mut stacks = Vec::new();
    let mut frames = Vec::new();
    for line in report.lines() {
        if line.starts_with(" 0x") {
            frames.push(line.to_string());
        } else if let Ok(count) = line.trim().parse::<u64>() {
            stacks.push((std::mem::take(&mut frames), count));
        }
    }
    stacks
}

/// The function named by a frame line ` 0x.. : NAME+0x../0x.. [..]`.
fn function(frame: &str) -> Option<&str> {
    let (_, symbol) = frame.split_once(" : ")?;
    Some(&symbol[..symbol.find("+0x")?])
}

/// The most frequent stack of a report (stap's `foreach (i in s-)`
/// prints it first; checked rather than assumed).
fn top_stack(report: &str) -> Vec<String> {
    let stacks = stacks_of(report);
    let top = stacks
        .iter()
        .max_by_key(|(_, count)| *count)
        .unwrap_or_else(|| panic!("no stacks in the report:\n{report}"));
    assert_eq!(top.1, stacks[0].1, "the report is not sorted by count");
    top.0.clone()
}

/// A child that is killed when the test ends, however it ends.
struct Running(Child);

impl Running {
    /// Starts `exe` for `seconds` seconds.
    fn start(exe: &Path, seconds: u32) -> Self {
        Self(
            Command::new(exe)
                .arg(seconds.to_string())
                .stdout(Stdio::null())
                .spawn()
                .expect("start the test program"),
        )
    }

    fn pid(&self) -> String {
        self.0.id().to_string()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn seed_program_5_with_c_finds_the_hot_function() {
    let dir = scratch("seed5-c");
    let exe = cpu_bound(&dir);
    let script = dir.join("prof.stp");
    std::fs::write(&script, SEED5).unwrap();
    let command = format!("{} 30", exe.display());
    let report = common::run_ok(&["-c", &command, script.to_str().unwrap()]);
    let top = top_stack(&report);
    assert_eq!(function(&top[0]), Some("hot"), "{report}");
    let exe_name = exe.display().to_string();
    assert!(top[0].ends_with(&format!("[{exe_name}]")), "{}", top[0]);
}

#[test]
fn seed_program_5_with_x_pid_finds_the_hot_function() {
    let dir = scratch("seed5-x");
    let exe = cpu_bound(&dir);
    let script = dir.join("prof.stp");
    std::fs::write(&script, SEED5).unwrap();
    let child = Running::start(&exe, 30);
    let pid = child.pid();
    let report = common::run_ok(&["-x", &pid, script.to_str().unwrap()]);
    assert_eq!(function(&top_stack(&report)[0]), Some("hot"), "{report}");
}

/// The issue's test: code built with `-O2 -fomit-frame-pointer` still
/// gives every frame from the hot leaf up to main, in order (unwound with
/// the binary's DWARF CFI; frame pointers alone lose them).
#[test]
fn issue5_stacks_without_frame_pointers_are_complete() {
    let dir = scratch("nofp");
    let exe = cpu_bound(&dir);
    let script = dir.join("prof.stp");
    std::fs::write(&script, SEED5).unwrap();
    let command = format!("{} 30", exe.display());
    let report = common::run_ok(&["-c", &command, script.to_str().unwrap()]);
    let top = top_stack(&report);
    let names: Vec<&str> = top
        .iter()
        .map(|frame| function(frame).unwrap_or("?"))
        .collect();
    let main = names
        .iter()
        .position(|n| *n == "main")
        .unwrap_or_else(|| panic!("main is missing from {names:?}\n{report}"));
    assert_eq!(names[..=main], ["hot", "b", "a", "main"], "{report}");
}

#[test]
fn kernel_stacks_of_a_syscall_heavy_program_name_a_syscall_path() {
    let dir = scratch("kstack");
    let exe = common::gcc(&dir, "sys", SYSCALL_HEAVY, &["-O2"]);
    let command = format!("{} 2", exe.display());
    let report = common::run_ok(&[
        "-c",
        &command,
        "-e",
        "global s
         probe timer.profile { if (pid() == target()) s[backtrace()] <<< 1 }
         probe end { foreach (i in s-) { print_stack(i); printf(\"\\t%d\\n\", @count(s[i])) } }",
    ]);
    let stacks = stacks_of(&report);
    let frames: Vec<&str> = stacks
        .iter()
        .flat_map(|(frames, _)| frames.iter().filter_map(|f| function(f)))
        .collect();
    assert!(
        frames.contains(&"do_syscall_64") && frames.contains(&"ksys_read"),
        "no syscall path in:\n{report}"
    );
    assert!(report.contains(" [kernel]\n"), "{report}");
}

#[test]
fn profile_shortcut_draws_a_well_formed_flame_graph_with_the_hot_function() {
    let dir = scratch("flamegraph");
    let exe = cpu_bound(&dir);
    let svg_path = dir.join("out.svg");
    let command = format!("{} 2", exe.display());
    let report = common::run_ok(&[
        "profile",
        "-c",
        &command,
        "--flamegraph",
        svg_path.to_str().unwrap(),
    ]);
    assert_eq!(function(&top_stack(&report)[0]), Some("hot"), "{report}");
    let svg = std::fs::read_to_string(&svg_path).expect("the flame graph file");
    let mut reader = quick_xml::Reader::from_str(&svg);
    let mut elements = 0;
    let mut titles = Vec::new();
    let mut in_title = false;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(e)) => {
                elements += 1;
                in_title = e.name().as_ref() == b"title";
            }
            Ok(quick_xml::events::Event::Text(t)) if in_title => {
                titles.push(String::from_utf8_lossy(&t).into_owned());
            }
            Ok(_) => {}
            Err(e) => panic!("the SVG is not well-formed XML: {e}\n{svg}"),
        }
    }
    assert!(elements > 10, "{svg}");
    assert!(
        titles.iter().any(|t| t.starts_with("hot (")),
        "no frame titled hot in {titles:?}"
    );
}

#[test]
fn folded_output_has_one_root_first_line_per_stack() {
    let dir = scratch("folded");
    let exe = cpu_bound(&dir);
    let command = format!("{} 2", exe.display());
    let folded = common::run_ok(&["profile", "-c", &command, "--output", "folded"]);
    let mut total = 0;
    for line in folded.lines() {
        let (stack, count) = line.rsplit_once(' ').expect("`stack count`");
        total += count.parse::<u64>().expect("a count");
        assert!(!stack.contains(' '), "{line}");
    }
    assert!(total > 0, "{folded}");
    assert!(
        folded.lines().any(|l| l.contains(";main;a;b;hot ")),
        "{folded}"
    );
}

/// Hardware counters where the machine has a PMU, a clear error where not
/// (this CI VM has none).
#[test]
fn hardware_cycles_sample_or_say_why_not() {
    let out = common::run(&[
        "-e",
        "probe perf.hw.cpu_cycles.sample(1000000) { printf(\"sampled\\n\"); exit() }",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if Path::new("/sys/bus/event_source/devices/cpu").exists() {
        assert!(out.status.success(), "{stderr}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "sampled\n");
    } else {
        assert!(!out.status.success());
        assert!(
            stderr.contains("no cpu-cycles counter") && stderr.contains("timer.profile"),
            "{stderr}"
        );
    }
}

/// `-c CMD` is held until the probes are attached, so even its own exec
/// is seen; the run ends (running `end`) when it exits.
#[test]
fn c_command_is_traced_from_its_exec_and_ends_the_run() {
    let report = common::run_ok(&[
        "-c",
        "/bin/true",
        "-e",
        "probe syscall.execve { if (pid() == target()) printf(\"exec %s\\n\", user_string($filename)) }
         probe end { printf(\"end\\n\") }",
    ]);
    assert_eq!(report, "exec /bin/true\nend\n");
}

#[test]
fn profile_of_a_missing_process_says_so() {
    let out = common::run(&["profile", "-x", "999999999"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no process 999999999 to profile"),
        "{stderr}"
    );
}

#[test]
fn profile_of_a_pid_ends_when_the_process_exits() {
    let dir = scratch("profile-x-exit");
    let exe = cpu_bound(&dir);
    let child = Running::start(&exe, 2);
    let pid = child.pid();
    // No --duration: the run must end by itself when the process does
    // (the test harness would otherwise hang here).
    let report = common::run_ok(&["profile", "-x", &pid]);
    assert_eq!(function(&top_stack(&report)[0]), Some("hot"), "{report}");
}

/// A binary upgraded (or rebuilt) under a running process: the process
/// still runs the old code, so its frames are named from the file it
/// mapped, not from the new file now at the same path.
#[test]
fn frames_of_a_replaced_binary_are_named_from_the_mapped_file() {
    let dir = scratch("replaced-binary");
    let exe = cpu_bound(&dir);
    let child = Running::start(&exe, 3);
    std::fs::remove_file(&exe).unwrap();
    let other = common::gcc(
        &dir,
        "other",
        "int unrelated(int x) { return x * 3; }\nint main(void) { return unrelated(1); }\n",
        &["-O2"],
    );
    std::fs::rename(&other, &exe).unwrap();
    let pid = child.pid();
    let report = common::run_ok(&["profile", "-x", &pid]);
    let top = top_stack(&report);
    assert_eq!(function(&top[0]), Some("hot"), "{report}");
    assert!(
        top[0].ends_with(&format!("[{}]", exe.display())),
        "{}",
        top[0]
    );
}
