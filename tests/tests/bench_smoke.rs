//! `scripts/bench.py --quick` runs every scenario and produces every row
//! (its numbers are not asserted: timing has no place in tests).

mod common;

use std::process::Command;

#[test]
fn quick_benchmark_produces_every_row() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("python3")
        .arg(root.join("scripts/bench.py"))
        .arg("--quick")
        .env("WASMTAP_BIN", common::bin())
        .output()
        .expect("python3 runs scripts/bench.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench.py failed:\n{stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("target/bench.json")).unwrap()).unwrap();
    let rows = json["rows"].as_object().expect("rows");
    for prefix in [
        "start to exit",
        "start to attached",
        "counting overhead per event",
        "counting: events dropped",
        "printf path: events/s delivered",
        "host peak RSS",
        "999 Hz profile: overhead",
        "uprobe: overhead per hit",
        "attach ",
        "exit after ",
        "compile 500-line script, -p4, cold cache",
        "compile 500-line script, -p4, cached",
        "begin script, 1M array updates",
        "begin script, 1M sprintf",
        "1 tenant(s) counting getppid",
        "16 tenant(s): daemon memory per tenant",
    ] {
        let (name, row) = rows
            .iter()
            .find(|(name, _)| name.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row '{prefix}...' in {rows:?}"));
        // A row has wasmtap's figure, or says why this build cannot run it.
        assert!(
            !row["wasmtap"].is_null() || row["note"].as_str().is_some_and(|n| !n.is_empty()),
            "row '{name}' is empty: {row}"
        );
    }
}
