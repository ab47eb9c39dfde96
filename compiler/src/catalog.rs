//! What the compiler may know about the system it compiles for.
//!
//! Resolution asks a [`Catalog`] which syscalls (and later tracepoints,
//! kernel types and user binaries) exist. The host implements it from the
//! live system; tests use [`StaticCatalog`], built from a table recorded on
//! Linux 6.18 x86_64, so they run without a kernel.

/// One syscall: its number and its arguments as the syscall tracepoint
/// names and types them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Syscall {
    pub nr: u32,
    pub name: String,
    /// Name of the `syscalls:sys_enter_*` tracepoint (`newstat` for `stat`),
    /// if the kernel has one.
    pub tracepoint: Option<String>,
    pub args: Vec<SyscallArg>,
}

/// A syscall argument: its name and C type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallArg {
    pub name: String,
    pub c_type: String,
}

impl SyscallArg {
    /// Whether the argument points at a NUL-terminated user string, so its
    /// tapset variable is the string itself (stap's `filename`).
    pub fn is_user_string(&self) -> bool {
        let ty = self.c_type.replace("const ", "");
        ty.trim() == "char *"
    }
}

/// The system facts resolution needs.
pub trait Catalog {
    /// Every syscall of the target architecture, by number.
    fn syscalls(&self) -> &[Syscall];
    /// `(major, minor, patch)` of the running kernel, for `%( kernel_v ...`.
    fn kernel_version(&self) -> (u32, u32, u32);
    /// The architecture name as stap spells it (`x86_64`).
    fn arch(&self) -> &str;
}

/// A catalog from recorded data: the syscall table of Linux 6.18 x86_64.
#[derive(Clone, Debug)]
pub struct StaticCatalog {
    syscalls: Vec<Syscall>,
    kernel_version: (u32, u32, u32),
}

const SYSCALLS_X86_64: &str = include_str!("../data/syscalls_x86_64.tsv");

impl StaticCatalog {
    /// The recorded x86_64 table with the given kernel version.
    pub fn x86_64(kernel_version: (u32, u32, u32)) -> Self {
        Self {
            syscalls: parse_syscall_table(SYSCALLS_X86_64),
            kernel_version,
        }
    }
}

impl Catalog for StaticCatalog {
    fn syscalls(&self) -> &[Syscall] {
        &self.syscalls
    }

    fn kernel_version(&self) -> (u32, u32, u32) {
        self.kernel_version
    }

    fn arch(&self) -> &str {
        "x86_64"
    }
}

/// Parses the tab-separated table: `nr name tracepoint arg:type...`.
fn parse_syscall_table(text: &str) -> Vec<Syscall> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let nr = fields.next()?.parse().ok()?;
            let name = fields.next()?.to_string();
            let tracepoint = fields.next().filter(|tp| *tp != "-").map(str::to_string);
            let args = fields
                .filter_map(|field| {
                    let (name, c_type) = field.split_once(':')?;
                    Some(SyscallArg {
                        name: name.to_string(),
                        c_type: c_type.to_string(),
                    })
                })
                .collect();
            Some(Syscall {
                nr,
                name,
                tracepoint,
                args,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_table_has_openat() {
        let catalog = StaticCatalog::x86_64((6, 18, 0));
        let openat = catalog
            .syscalls()
            .iter()
            .find(|s| s.name == "openat")
            .expect("openat");
        assert_eq!(openat.nr, 257);
        let names: Vec<_> = openat.args.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["dfd", "filename", "flags", "mode"]);
        assert!(openat.args[1].is_user_string());
        assert!(!openat.args[0].is_user_string());
    }
}
