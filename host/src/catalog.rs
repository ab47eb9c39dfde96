//! The compiler's view of the running system.
//!
//! Syscall numbers and argument lists come from the table recorded in the
//! compiler (x86_64); the kernel version comes from `uname`. Tracepoint and
//! BTF lookups will be added here as probe families need them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use wasmtap_compiler::catalog::{Catalog, StaticCatalog, Syscall, UserBinary};

use crate::elf;

/// A [`Catalog`] for the machine wasmtap runs on.
pub struct LiveCatalog {
    inner: StaticCatalog,
    /// User binaries read so far, by the name the script wrote: resolution
    /// and code generation ask for the same binary once per probe.
    binaries: Mutex<HashMap<String, Result<Arc<UserBinary>, String>>>,
    /// The `-x` process.
    target: Option<u32>,
}

/// Why the live system cannot be described.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("wasmtap knows the syscall table of x86_64 only; this machine is {arch}")]
    UnsupportedArch { arch: String },
}

impl LiveCatalog {
    /// Reads the kernel version of this machine.
    ///
    /// # Errors
    /// On architectures whose syscall table wasmtap does not carry.
    pub fn new() -> Result<Self, CatalogError> {
        let arch = std::env::consts::ARCH;
        if arch != "x86_64" {
            return Err(CatalogError::UnsupportedArch {
                arch: arch.to_string(),
            });
        }
        Ok(Self {
            inner: StaticCatalog::x86_64(kernel_version()),
            binaries: Mutex::default(),
            target: None,
        })
    }

    /// Sets the process `-x` names: `process.function` probes its
    /// executable, and user-space probes attach to it alone. Default none.
    pub fn with_target(mut self, pid: Option<u32>) -> Self {
        self.target = pid;
        self
    }
}

impl Catalog for LiveCatalog {
    fn syscalls(&self) -> &[Syscall] {
        self.inner.syscalls()
    }

    fn kernel_version(&self) -> (u32, u32, u32) {
        self.inner.kernel_version()
    }

    fn arch(&self) -> &str {
        self.inner.arch()
    }

    fn user_binary(&self, path: &str) -> Result<Arc<UserBinary>, String> {
        let mut binaries = self
            .binaries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        binaries
            .entry(path.to_string())
            .or_insert_with(|| {
                elf::resolve_path(path)
                    .and_then(|resolved| elf::load(&resolved))
                    .map(Arc::new)
                    .map_err(|error| error.to_string())
            })
            .clone()
    }

    fn target_process(&self) -> Option<u32> {
        self.target
    }
}

/// `(major, minor, patch)` from uname's release, e.g. `6.18.44-fc` → (6, 18, 44).
fn kernel_version() -> (u32, u32, u32) {
    // SAFETY: utsname is plain data; uname fills it.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uts is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0, 0);
    }
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    parse_release(&String::from_utf8_lossy(&release))
}

fn parse_release(release: &str) -> (u32, u32, u32) {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_releases() {
        assert_eq!(super::parse_release("6.18.44-fc-v657"), (6, 18, 44));
        assert_eq!(super::parse_release("5.4"), (5, 4, 0));
    }
}
