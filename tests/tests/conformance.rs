//! Issue 3's conformance suite: every script under `tests/conformance/`
//! runs through the real `wasmtap` binary and its output is compared byte
//! for byte with the expected files next to it.
//!
//! | directory    | run as                 | expected                                   |
//! |--------------|------------------------|--------------------------------------------|
//! | `ok/`        | `wasmtap -p 2 CASE`    | exit 0 (parses, resolves, type-checks)     |
//! | `parse_err/` | `wasmtap -p 2 CASE`    | exit 1, stderr = `CASE.err`                |
//! | `type_err/`  | `wasmtap -p 2 CASE`    | exit 1, stderr = `CASE.err`                |
//! | `run/`       | `wasmtap CASE ARGS...` | stdout = `CASE.out`; stderr = `CASE.err` and exit 1 if that file exists, else exit 0 |
//!
//! `CASE.args` (optional) holds the script arguments, one per line, and
//! `CASE.flags` wasmtap options (before the script), one per line. Cases
//! are begin/end/timer scripts: no kernel probe is needed. Paths are given
//! relative to `tests/conformance`, so messages name `run/x.stp`.
//!
//! `BLESS=1` writes the expected files from the actual output instead of
//! comparing: for a new case, then read the diff before committing it.

mod common;

use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

fn suite_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance")
}

/// The cases of one directory, sorted by name.
fn cases(kind: &str) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(suite_dir().join(kind))
        .unwrap_or_else(|e| panic!("reading conformance/{kind}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "stp"))
        .collect();
    cases.sort();
    cases
}

struct Outcome {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    code: Option<i32>,
}

fn run_case(case: &Path, extra: &[&str]) -> Outcome {
    let relative = case
        .strip_prefix(suite_dir())
        .expect("case under the suite");
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    if let Ok(text) = fs::read_to_string(case.with_extension("flags")) {
        args.extend(text.lines().map(str::to_string));
    }
    args.push(relative.display().to_string());
    if let Ok(text) = fs::read_to_string(case.with_extension("args")) {
        args.extend(text.lines().map(str::to_string));
    }
    let child = Command::new(common::bin())
        .args(&args)
        .current_dir(suite_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wasmtap");
    let out = common::wait_output(child, Duration::from_secs(60));
    Outcome {
        stdout: out.stdout,
        stderr: out.stderr,
        code: out.status.code(),
    }
}

fn blessing() -> bool {
    std::env::var_os("BLESS").is_some()
}

/// Compares `got` with the file `expected` (or writes it when blessing);
/// returns a description of the difference.
fn compare(expected: &Path, got: &[u8]) -> Option<String> {
    if blessing() {
        fs::write(expected, got).expect("write expected file");
        return None;
    }
    let want = fs::read(expected).unwrap_or_default();
    (want != got).then(|| {
        format!(
            "{} differs\n--- expected\n{}\n--- got\n{}",
            expected.display(),
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(got)
        )
    })
}

/// Runs every case of `kind` with `check`, and fails once with all the
/// failures listed.
fn run_all(kind: &str, minimum: usize, check: impl Fn(&Path) -> Vec<String>) {
    let cases = cases(kind);
    assert!(
        cases.len() >= minimum,
        "conformance/{kind} has {} cases, expected at least {minimum}",
        cases.len()
    );
    let failures: Vec<String> = cases.iter().flat_map(|case| check(case)).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases in conformance/{kind} failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

fn name(case: &Path) -> String {
    case.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn scripts_that_must_compile() {
    run_all("ok", 40, |case| {
        let out = run_case(case, &["-p", "2"]);
        if out.code == Some(0) {
            return vec![];
        }
        vec![format!(
            "{}: exit {:?}\n{}",
            name(case),
            out.code,
            String::from_utf8_lossy(&out.stderr)
        )]
    });
}

fn must_fail(case: &Path) -> Vec<String> {
    let out = run_case(case, &["-p", "2"]);
    let mut failures = Vec::new();
    if out.code != Some(1) {
        failures.push(format!("{}: exit {:?}, expected 1", name(case), out.code));
    }
    failures.extend(compare(&case.with_extension("err"), &out.stderr));
    failures
}

#[test]
fn scripts_with_syntax_errors() {
    run_all("parse_err", 30, must_fail);
}

#[test]
fn scripts_with_type_errors() {
    run_all("type_err", 25, must_fail);
}

#[test]
fn scripts_run_with_golden_output() {
    run_all("run", 100, |case| {
        let out = run_case(case, &[]);
        let err_file = case.with_extension("err");
        let mut failures = Vec::new();
        failures.extend(compare(&case.with_extension("out"), &out.stdout));
        let wants_error = err_file.exists() || (blessing() && !out.stderr.is_empty());
        if wants_error {
            failures.extend(compare(&err_file, &out.stderr));
        } else if !out.stderr.is_empty() {
            failures.push(format!(
                "{}: unexpected stderr\n{}",
                name(case),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let want_code = if wants_error { 1 } else { 0 };
        if out.code != Some(want_code) {
            failures.push(format!(
                "{}: exit {:?}, expected {want_code}",
                name(case),
                out.code
            ));
        }
        failures
    });
}
