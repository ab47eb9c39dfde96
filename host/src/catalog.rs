//! The compiler's view of the running system.
//!
//! Syscall numbers and argument lists come from the table recorded in the
//! compiler (x86_64); the kernel version comes from `uname`; tracepoints
//! and their fields from tracefs (`events/SYSTEM/EVENT/format`), mounted on
//! first use when this process may. BTF lookups will be added here as
//! probe families need them.

use std::{
    collections::HashMap,
    fs,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use wasmtap_compiler::catalog::{
    Catalog, StaticCatalog, Syscall, Tracepoint, UserBinary, parse_format_fields,
};

use crate::elf;

/// A [`Catalog`] for the machine wasmtap runs on.
pub struct LiveCatalog {
    inner: StaticCatalog,
    /// Where tracefs is mounted; looked up (and mounted) on the first
    /// tracepoint question, so scripts without tracepoints never touch it.
    tracefs: OnceLock<Option<PathBuf>>,
    /// User binaries read so far, by the name the script wrote: resolution
    /// and code generation ask for the same binary once per probe.
    binaries: Mutex<HashMap<String, Result<Arc<UserBinary>, String>>>,
    /// The `-x` process.
    target: Option<u32>,
    /// The binary a `-c` command execs, when it names one.
    target_executable: Option<String>,
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
            tracefs: OnceLock::new(),
            binaries: Mutex::default(),
            target: None,
            target_executable: None,
        })
    }

    /// Sets the process `-x` names: `process.function` probes its
    /// executable, and user-space probes attach to it alone. Default none.
    pub fn with_target(mut self, pid: Option<u32>) -> Self {
        self.target = pid;
        self
    }

    /// Sets the binary a `-c` command will exec (its first word, looked up
    /// like the shell does): `process.function` probes it, since at compile
    /// time the held command is still its start-up shell.
    pub fn with_target_command(mut self, command: Option<&str>) -> Self {
        self.target_executable = command
            .and_then(|c| c.split_whitespace().next())
            .and_then(|name| crate::elf::resolve_path(name).ok())
            .map(|path| path.display().to_string());
        self
    }

    /// `events/` of tracefs, if it is (or can be) mounted.
    fn events_dir(&self) -> Option<PathBuf> {
        self.tracefs
            .get_or_init(|| crate::kernel::ensure_tracefs().ok())
            .as_deref()
            .map(|root| root.join("events"))
    }
}

/// The names of the subdirectories of `dir`, sorted.
fn subdirectories(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// A tracepoint from the text of its `format` file.
fn parse_format(system: &str, event: &str, text: &str) -> Option<Tracepoint> {
    let id = text
        .lines()
        .find_map(|line| line.strip_prefix("ID:"))?
        .trim()
        .parse()
        .ok()?;
    Some(Tracepoint {
        system: system.to_string(),
        event: event.to_string(),
        id,
        fields: parse_format_fields(text),
    })
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

    fn target_executable(&self) -> Option<String> {
        self.target_executable
            .clone()
            .or_else(|| self.target.map(|pid| format!("/proc/{pid}/exe")))
    }

    fn tracepoints(&self) -> Vec<(String, String)> {
        let Some(events) = self.events_dir() else {
            return Vec::new();
        };
        subdirectories(&events)
            .into_iter()
            .flat_map(|system| {
                subdirectories(&events.join(&system))
                    .into_iter()
                    .map(move |event| (system.clone(), event))
            })
            .collect()
    }

    fn tracepoint(&self, system: &str, event: &str) -> Option<Tracepoint> {
        // Names come from the script: never let them leave events/.
        let safe = |name: &str| !name.is_empty() && !name.contains(['/', '.']);
        if !safe(system) || !safe(event) {
            return None;
        }
        let path = self.events_dir()?.join(system).join(event).join("format");
        let text = fs::read_to_string(path).ok()?;
        parse_format(system, event, &text)
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
    fn parses_a_format_file() {
        let text = "name: sched_process_exec\nID: 365\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;\n\tfield:pid_t pid;\toffset:12;\tsize:4;\tsigned:1;\n\nprint fmt: \"filename=%s\"\n";
        let tp = super::parse_format("sched", "sched_process_exec", text).unwrap();
        assert_eq!(tp.id, 365);
        let names: Vec<_> = tp.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["filename", "pid"]);
    }

    #[test]
    fn lists_and_reads_the_live_tracepoints() {
        // Needs root (as CI has): tracefs is mounted here if it is not.
        use wasmtap_compiler::catalog::Catalog;
        let catalog = super::LiveCatalog::new().unwrap();
        let all = catalog.tracepoints();
        assert!(all.contains(&("sched".into(), "sched_process_exec".into())));
        let exec = catalog.tracepoint("sched", "sched_process_exec").unwrap();
        assert!(exec.fields.iter().any(|f| f.name == "filename"));
        assert!(catalog.tracepoint("..", "sched").is_none());
    }

    #[test]
    fn parses_releases() {
        assert_eq!(super::parse_release("6.18.44-fc-v657"), (6, 18, 44));
        assert_eq!(super::parse_release("5.4"), (5, 4, 0));
    }
}
