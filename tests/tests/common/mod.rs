//! Runs the `wasmtap` binary the way a user does, and looks at the kernel
//! afterwards. Tests that attach probes are real: they need root, as CI has.
#![allow(dead_code, reason = "each test file uses a different part")]

pub mod daemon;

use std::{
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

/// The release binary: `$WASMTAP_BIN` (set by scripts/test) or the
/// workspace's target/release/wasmtap.
pub fn bin() -> PathBuf {
    if let Some(path) = std::env::var_os("WASMTAP_BIN") {
        return path.into();
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("target/release/wasmtap");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release -p wasmtap` or scripts/test",
        path.display()
    );
    path
}

/// Runs wasmtap to completion with a time limit.
pub fn run(args: &[&str]) -> Output {
    let child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasmtap");
    wait_output(child, Duration::from_secs(60))
}

/// Runs wasmtap with `args` to completion, fails the test unless it
/// succeeds, and returns its standard output.
pub fn run_ok(args: &[&str]) -> String {
    let out = run(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wasmtap {args:?} failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Waits for a child with a deadline, killing it if it overruns. Its
/// output is read as it comes, so a chatty child never blocks on a full
/// pipe.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "wasmtap did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&stdout.join().unwrap_or_default()),
                String::from_utf8_lossy(&stderr.join().unwrap_or_default())
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// A wasmtap started with `-v`, once its probes are attached.
pub struct Tracer {
    pub child: Child,
    stderr_lines: mpsc::Receiver<String>,
    pub stderr_seen: Vec<String>,
}

impl Tracer {
    /// Starts wasmtap with `-v` plus `args` and waits until it reports that
    /// it is attached and running.
    pub fn start(args: &[&str]) -> Tracer {
        let mut command = Command::new(bin());
        command.arg("-v").args(args);
        Tracer::start_command(command)
    }

    /// Like [`Tracer::start`] for a prepared command (another user, another
    /// binary path); the command must pass `-v`.
    pub fn start_command(mut command: Command) -> Tracer {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wasmtap");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut tracer = Tracer {
            child,
            stderr_lines: rx,
            stderr_seen: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match tracer.stderr_lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let ready = line.contains("attached; running");
                    tracer.stderr_seen.push(line);
                    if ready {
                        return tracer;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = tracer.child.try_wait() {
                        panic!("wasmtap exited early ({status}): {:?}", tracer.stderr_seen);
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("wasmtap closed stderr early: {:?}", tracer.stderr_seen)
                }
            }
        }
        panic!(
            "wasmtap did not attach within 30 s: {:?}",
            tracer.stderr_seen
        );
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends `signal` and collects stdout, stderr and the exit status.
    pub fn stop(mut self, signal: i32) -> (String, String, std::process::ExitStatus) {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(self.pid(), signal) };
        let mut stdout = String::new();
        let mut out = self.child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            let _ = out.read_to_string(&mut stdout);
            stdout
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("wasmtap ignored signal {signal}: {:?}", self.stderr_seen);
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let stdout = reader.join().expect("stdout reader");
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_millis(200)) {
            self.stderr_seen.push(line);
        }
        (stdout, self.stderr_seen.join("\n"), status)
    }
}

/// Ids of the BPF programs a process holds open, from /proc/PID/fdinfo.
pub fn bpf_prog_ids_of(pid: i32) -> Vec<u32> {
    let mut ids = Vec::new();
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return ids;
    };
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        for line in text.lines() {
            if let Some(id) = line.strip_prefix("prog_id:")
                && let Ok(id) = id.trim().parse()
            {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Ids of every BPF program loaded in the kernel.
pub fn loaded_prog_ids() -> Vec<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .map(|info| info.id())
        .collect()
}

/// A path nobody else opens, for matching a child's openat.
pub fn unique_path(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("/tmp/wasmtap-{tag}-{}-{nanos}", std::process::id())
}

/// Asserts that the programs `ids` are gone from the kernel. The kernel
/// frees a program after an RCU grace period once its last fd closes, so
/// this waits up to five seconds before calling them leaked.
pub fn assert_unloaded(ids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let loaded = loaded_prog_ids();
        let leaked: Vec<_> = ids.iter().filter(|id| loaded.contains(id)).collect();
        if leaked.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "programs still loaded after exit: {leaked:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Compiles the C file `source` into `exe` with gcc and `flags` (scripts/setup
/// installs gcc); a compile error fails the test with gcc's message.
pub fn gcc_file(source: &Path, exe: &Path, flags: &[&str]) {
    let out = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(exe)
        .arg(source)
        .output()
        .expect("run gcc (scripts/setup installs it)");
    assert!(
        out.status.success(),
        "gcc failed on {}: {}",
        source.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes C `source` to `dir/NAME.c` and compiles it into `dir/NAME`.
pub fn gcc(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, source).expect("write the C source");
    let exe = dir.join(name);
    gcc_file(&c, &exe, flags);
    exe
}

/// A CPU-bound program with a known call chain main -> a -> b -> hot;
/// `noipa` keeps each a real call (no inlining, cloning or tail call).
/// Runs for argv[1] seconds.
pub const CPU_BOUND_C: &str = r#"
#include <stdlib.h>
#include <time.h>
volatile unsigned long sink;
__attribute__((noipa)) unsigned long hot(unsigned long n) {
    unsigned long x = 0;
    for (unsigned long i = 0; i < n; i++) x += (i * i) ^ (x >> 3);
    return x;
}
__attribute__((noipa)) unsigned long b(unsigned long n) { unsigned long r = hot(n); sink += r; return r + 1; }
__attribute__((noipa)) unsigned long a(unsigned long n) { unsigned long r = b(n); sink += r; return r + 2; }
int main(int argc, char **argv) {
    time_t end = time(NULL) + (argc > 1 ? atoi(argv[1]) : 10);
    while (time(NULL) < end) sink += a(1000000);
    return 0;
}
"#;
