//! Builds the two artifacts the host embeds: the eBPF object (aya-build, for
//! bpfel-unknown-none with build-std) and the guest runtime (cargo, for
//! wasm32-unknown-unknown). Both use their own target directories, because
//! this build already holds the workspace's lock on `target/`.
use std::{env, path::PathBuf, process::Command};

use anyhow::{Context as _, bail};

fn main() -> anyhow::Result<()> {
    let probes = aya_build::Package {
        name: "wasmtap-probes",
        root_dir: "../probes/ebpf",
        ..Default::default()
    };
    aya_build::build_ebpf([probes], aya_build::Toolchain::Custom("stable"))?;
    println!("cargo:rerun-if-changed=../probes/common");
    build_guest_runtime()
}

fn build_guest_runtime() -> anyhow::Result<()> {
    println!("cargo:rerun-if-changed=../guest-sdk");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").context("OUT_DIR not set")?);
    let target_dir = out_dir.join("guest-target");
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--package",
            "wasmtap-guest",
            "--lib",
            "--profile",
            "guest",
            "--target",
            "wasm32-unknown-unknown",
            "--target-dir",
        ])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("running cargo for the guest runtime")?;
    if !status.success() {
        bail!(
            "building the guest runtime failed (is the wasm32-unknown-unknown target installed? run scripts/setup)"
        );
    }
    let wasm = target_dir.join("wasm32-unknown-unknown/guest/wasmtap_guest.wasm");
    std::fs::copy(&wasm, out_dir.join("runtime.wasm"))
        .with_context(|| format!("copying {}", wasm.display()))?;
    Ok(())
}
