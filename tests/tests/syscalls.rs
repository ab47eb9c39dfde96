//! Issue 4, syscall decoding: seed program 2 (system-wide strace) prints
//! `argstr` and `retstr` as stap does, and `-l` / `-L` list probe points in
//! stap's layout. The traced processes are children this test starts.

mod common;

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use common::{Tracer, run, unique_path};

/// A child that waits for a line on stdin, then execs
/// `cat FILE MISSING 2> FILE.err`, so the tracer sees the shell create the
/// error file, its execve and everything cat does.
struct Child {
    child: std::process::Child,
    file: String,
    missing: String,
}

impl Child {
    fn start(tag: &str) -> Child {
        let file = unique_path(tag);
        std::fs::write(&file, "hello wasmtap\n").expect("write the file cat reads");
        let missing = format!("{file}-missing");
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("read go; exec cat {file} {missing} 2> {file}.err"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        Child {
            child,
            file,
            missing,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the child run to its end.
    fn release(mut self) {
        let mut stdin = self.child.stdin.take().expect("stdin");
        stdin.write_all(b"go\n").expect("release the child");
        drop(stdin);
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.file);
        let _ = std::fs::remove_file(format!("{}.err", self.file));
        // Give the drain timer a few rounds.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// What a traced child did, as wasmtap printed it.
struct Traced {
    stdout: String,
    pid: u32,
    file: String,
    missing: String,
}

/// Runs `script` with `-x` set to a fresh child, releases the child once
/// the probes are attached, and returns the output.
fn trace_child(tag: &str, script: &str) -> Traced {
    let child = Child::start(tag);
    let pid = child.pid();
    let (file, missing) = (child.file.clone(), child.missing.clone());
    let tracer = Tracer::start(&["-x", &pid.to_string(), "-e", script]);
    child.release();
    let (stdout, stderr, status) = tracer.stop(libc::SIGINT);
    assert!(status.success(), "exit status {status}; stderr: {stderr}");
    Traced {
        stdout,
        pid,
        file,
        missing,
    }
}

fn assert_line(stdout: &str, what: &str, matches: impl Fn(&str) -> bool) {
    assert!(
        stdout.lines().any(matches),
        "no line with {what} in the output:\n{}",
        stdout.lines().take(200).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn seed_2_prints_argstr_decoded_like_stap() {
    let script = r#"
        probe syscall.* {
            if (pid() == target())
                printf("%s(%d) %s %s\n", execname(), pid(), name, argstr)
        }
    "#;
    let Traced {
        stdout,
        pid,
        file,
        missing,
    } = trace_child("strace", script);
    let execve = format!(r#"sh({pid}) execve "/usr/bin/cat", ["cat", "{file}", "{missing}"], ["#);
    assert_line(&stdout, &execve, |l| l.starts_with(&execve));
    let creat =
        format!(r#"sh({pid}) openat AT_FDCWD, "{file}.err", O_WRONLY|O_CREAT|O_TRUNC, 0666"#);
    assert_line(&stdout, &creat, |l| l == creat);
    let openat = format!(r#"cat({pid}) openat AT_FDCWD, "{file}", O_RDONLY"#);
    assert_line(&stdout, &openat, |l| l == openat);
    let ld_cache = format!(r#"cat({pid}) openat AT_FDCWD, "/etc/ld.so.cache", O_RDONLY|O_CLOEXEC"#);
    assert_line(&stdout, &ld_cache, |l| l == ld_cache);
    let read = format!("cat({pid}) read 3, 0x");
    assert_line(&stdout, &read, |l| l.starts_with(&read));
    let write = format!(r#"cat({pid}) write 1, "hello wasmtap\n", 14"#);
    assert_line(&stdout, &write, |l| l == write);
    let close = format!("cat({pid}) close 3");
    assert_line(&stdout, &close, |l| l == close);
    let mmap = format!("cat({pid}) mmap 0x0, ");
    assert_line(&stdout, "an anonymous mmap", |l| {
        l.starts_with(&mmap)
            && l.ends_with(", PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0")
    });
}

#[test]
fn retstr_names_errno_and_tapset_variables_are_stap_s() {
    let script = r#"
        global path
        probe syscall.openat {
            if (pid() == target()) path[tid()] = filename
        }
        probe syscall.openat.return {
            if (pid() == target()) printf("openat %s = %s\n", path[tid()], retstr)
        }
        probe syscall.mmap {
            if (pid() == target())
                printf("mmap prot=%s flags=%s fd=%d\n", prot_str, flags_str, fd)
        }
        probe syscall.mmap.return {
            if (pid() == target()) printf("mmap = %s\n", retstr)
        }
    "#;
    let traced = trace_child("retstr", script);
    let stdout = traced.stdout;
    let failed = format!(r#"openat "{}" = -2 (ENOENT)"#, traced.missing);
    assert_line(&stdout, &failed, |l| l == failed);
    let opened = format!(r#"openat "{}" = 3"#, traced.file);
    assert_line(&stdout, &opened, |l| l == opened);
    assert_line(&stdout, "an mmap's decoded flags", |l| {
        l == "mmap prot=PROT_READ|PROT_WRITE flags=MAP_PRIVATE|MAP_ANONYMOUS fd=-1"
    });
    assert_line(&stdout, "an mmap returning an address in hex", |l| {
        l.starts_with("mmap = 0x7f")
    });
}

fn listing(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn dash_l_lists_matching_points() {
    assert_eq!(
        listing(&["-l", "syscall.open*"]),
        "syscall.open\n\
         syscall.open_by_handle_at\n\
         syscall.open_tree\n\
         syscall.open_tree_attr\n\
         syscall.openat\n\
         syscall.openat2\n"
    );
    let all = listing(&["-l", "syscall.*"]);
    assert!(all.lines().count() > 300, "{all}");
    assert!(all.lines().all(|l| l.starts_with("syscall.")));
}

#[test]
fn dash_capital_l_lists_variables_with_types() {
    assert_eq!(
        listing(&["-L", "syscall.openat"]),
        "syscall.openat name:string dfd:long dfd_str:string filename:string flags:long \
         flags_str:string mode:long argstr:string $dfd:long $filename:long $flags:long \
         $mode:long\n"
    );
    assert_eq!(
        listing(&["-L", "syscall.exec*"]),
        "syscall.execve name:string filename:string args:string env_str:string argstr:string \
         $filename:long $argv:long $envp:long\n\
         syscall.execveat name:string dirfd:long dirfd_str:string filename:string args:string \
         env_str:string flags:long flags_str:string argstr:string $fd:long $filename:long \
         $argv:long $envp:long $flags:long\n"
    );
    assert_eq!(
        listing(&["-L", "syscall.read.return"]),
        "syscall.read.return name:string retstr:string $return:long\n"
    );
}

#[test]
fn listing_a_pattern_that_matches_nothing_fails_with_a_diagnostic() {
    let out = run(&["-l", "syscall.nonesuch*"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("probe point 'syscall.nonesuch*' matches nothing"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// A program that connects to inet, inet6, unix and abstract unix
/// addresses (nothing listens: the calls fail, the arguments are what
/// matter), sends a datagram, and sleeps 1.5 ms, then 1 s.
const STRUCT_ARGS_C: &str = r#"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons(9) };
    inet_pton(AF_INET, "127.0.0.1", &in4.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    connect(s, (struct sockaddr *)&in4, sizeof in4);
    close(s);
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(8080) };
    inet_pton(AF_INET6, "fe80::1:2", &in6.sin6_addr);
    s = socket(AF_INET6, SOCK_STREAM, 0);
    connect(s, (struct sockaddr *)&in6, sizeof in6);
    close(s);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    strcpy(un.sun_path, "/nonexistent/wasmtap.sock");
    s = socket(AF_UNIX, SOCK_STREAM, 0);
    connect(s, (struct sockaddr *)&un, sizeof un);
    memcpy(un.sun_path, "\0abstract", 9);
    connect(s, (struct sockaddr *)&un, 2 + 9);
    close(s);
    s = socket(AF_INET, SOCK_DGRAM, 0);
    in4.sin_port = htons(9999);
    sendto(s, "hi", 2, 0, (struct sockaddr *)&in4, sizeof in4);
    close(s);
    struct timespec ts = { .tv_sec = 0, .tv_nsec = 1500000 };
    syscall(SYS_nanosleep, &ts, NULL);
    ts.tv_sec = 1;
    ts.tv_nsec = 5;
    clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
    return 0;
}
"#;

/// Struct arguments are read in the kernel and printed as stap's tapsets
/// do: sockaddrs of every common family and timespecs.
#[test]
fn argstr_decodes_sockaddr_and_timespec_arguments() {
    let dir = unique_path("struct-args");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = common::gcc(Path::new(&dir), "prog", STRUCT_ARGS_C, &["-O1"]);
    let exe = exe.to_str().unwrap();
    let script = r#"probe syscall.connect, syscall.sendto, syscall.nanosleep, syscall.clock_nanosleep {
        if (pid() == target()) printf("%s %s\n", name, argstr)
    }"#;
    let stdout = common::run_ok(&["-c", exe, "-e", script]);
    let _ = std::fs::remove_dir_all(&dir);
    // sendto's buffer address varies: it is checked apart.
    let (sendto, others): (Vec<&str>, Vec<&str>) =
        stdout.lines().partition(|l| l.starts_with("sendto "));
    assert_eq!(
        others,
        [
            "connect 3, {AF_INET, 127.0.0.1, 9}, 16",
            "connect 3, {AF_INET6, [fe80::1:2], 8080}, 28",
            r#"connect 3, {AF_UNIX, "/nonexistent/wasmtap.sock"}, 110"#,
            r#"connect 3, {AF_UNIX, "@abstract"}, 11"#,
            "nanosleep [0.001500000], 0x0",
            "clock_nanosleep CLOCK_MONOTONIC, 0, [1.000000005], 0x0",
        ],
        "{stdout}"
    );
    assert!(
        matches!(&sendto[..], [line] if line.starts_with("sendto 3, 0x")
            && line.ends_with(", 2, 0, {AF_INET, 127.0.0.1, 9999}, 16")),
        "{stdout}"
    );
}
