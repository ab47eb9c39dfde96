//! Checks and set-up of the running system: capabilities and tracefs.

use std::{fs, io, path::PathBuf};

use super::KernelError;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// Where tracefs lives on current kernels.
const TRACEFS: &str = "/sys/kernel/tracing";
/// Where older set-ups mount it (through debugfs); aya also looks here.
const TRACEFS_DEBUGFS: &str = "/sys/kernel/debug/tracing";

/// Fails with a clear message unless this process may load and attach
/// tracing programs.
///
/// Loading tracing programs needs `CAP_BPF` and reading kernel and user
/// memory from them needs `CAP_PERFMON` (`CAP_SYS_ADMIN` implies both).
/// Checking up front turns an opaque `EPERM` from `bpf(2)` into an error
/// that says which capability is missing. `RLIMIT_MEMLOCK` is deliberately
/// not checked: kernels since 5.11 account BPF memory to the memory cgroup.
pub fn check_privileges() -> Result<(), KernelError> {
    let path = PathBuf::from("/proc/self/status");
    let status = fs::read_to_string(&path).map_err(|source| KernelError::ReadCapabilities {
        path: path.clone(),
        source,
    })?;
    let effective = parse_cap_eff(&status).ok_or_else(|| KernelError::ReadCapabilities {
        path,
        source: io::Error::new(io::ErrorKind::InvalidData, "no parsable CapEff line"),
    })?;
    let missing = missing_capabilities(effective);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(KernelError::Privileges {
            missing: missing.join(", "),
        })
    }
}

/// The effective capability mask from the text of `/proc/<pid>/status`.
fn parse_cap_eff(status: &str) -> Option<u64> {
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// Names of the capabilities tracing needs that `effective` lacks.
fn missing_capabilities(effective: u64) -> Vec<&'static str> {
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    if has(CAP_SYS_ADMIN) {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    missing
}

/// Makes sure tracefs is mounted and returns its mount point.
///
/// Tracepoint probes (`kernel.trace(...)`) resolve event ids through
/// tracefs, and aya looks it up once per process and caches the answer, so
/// this must run before the first tracepoint attach. Raw tracepoints (the
/// syscall probes) do not need it. When tracefs is missing and this process
/// may mount, it mounts tracefs at `/sys/kernel/tracing`; otherwise it says
/// which command to run.
pub fn ensure_tracefs() -> Result<PathBuf, KernelError> {
    for root in [TRACEFS, TRACEFS_DEBUGFS] {
        let root = PathBuf::from(root);
        if root.join("events").is_dir() {
            return Ok(root);
        }
    }
    let path = PathBuf::from(TRACEFS);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(KernelError::TracefsMissing { path });
    }
    let mount_err = |source| KernelError::TracefsMount {
        path: path.clone(),
        source,
    };
    let target = c"/sys/kernel/tracing";
    let fstype = c"tracefs";
    let source = c"nodev";
    // SAFETY: all strings are NUL-terminated and outlive the call; no data.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(mount_err(io::Error::last_os_error()));
    }
    if !path.join("events").is_dir() {
        return Err(mount_err(io::Error::new(
            io::ErrorKind::NotFound,
            "tracefs mounted but has no events directory",
        )));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cap_eff() {
        let status = "Name:\tcat\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1ff_ffff_ffff));
        assert_eq!(parse_cap_eff("Name:\tcat\n"), None);
    }

    #[test]
    fn names_missing_capabilities() {
        assert!(missing_capabilities(1 << CAP_SYS_ADMIN).is_empty());
        assert!(missing_capabilities((1 << CAP_BPF) | (1 << CAP_PERFMON)).is_empty());
        assert_eq!(missing_capabilities(1 << CAP_BPF), vec!["CAP_PERFMON"]);
        assert_eq!(missing_capabilities(0), vec!["CAP_BPF", "CAP_PERFMON"]);
    }
}
