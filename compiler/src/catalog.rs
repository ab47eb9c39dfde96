//! What the compiler may know about the system it compiles for.
//!
//! Resolution asks a [`Catalog`] which syscalls (and later tracepoints,
//! kernel types and user binaries) exist. The host implements it from the
//! live system; tests use [`StaticCatalog`], built from a table recorded on
//! Linux 6.18 x86_64, so they run without a kernel.

use std::sync::Arc;

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
    /// The functions and USDT marks of the user binary `path`, as written in
    /// `process("PATH")`: an absolute path, a path relative to the current
    /// directory, or a bare name looked up in `PATH` as stap does. The
    /// default knows no binaries, for catalogs of tests that need none.
    ///
    /// # Errors
    /// A message saying why the binary cannot be read (missing, not ELF).
    fn user_binary(&self, path: &str) -> Result<Arc<UserBinary>, String> {
        Err(format!(
            "no user binaries are known to this catalog (asked for '{path}')"
        ))
    }
    /// The process `-x PID` names, if any: `process.function(...)` probes
    /// its executable, and every user-space probe attaches to it alone.
    fn target_process(&self) -> Option<u32> {
        None
    }
}

/// What the compiler knows of one ELF executable or shared library: enough
/// to resolve `process("PATH").function(...)` and `.mark(...)`, and to
/// capture parameters from registers when a probe fires.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserBinary {
    /// The canonical absolute path: what uprobes attach to and `pp()` prints.
    pub path: String,
    /// Every function with an entry address, sorted by name then address.
    pub functions: Vec<UserFunction>,
    /// The USDT probes of `.note.stapsdt`, in note order.
    pub marks: Vec<UsdtMark>,
    /// Whether DWARF described any function: without it parameters are
    /// unknown and `$$parms` is empty, as in stap.
    pub has_debug_info: bool,
}

impl UserBinary {
    /// The functions matching stap's pattern `NAME[@FILE]`, where both parts
    /// may use `*`, `?` and `[...]`; FILE matches the source file's full
    /// path, its base name, or any trailing part of the path.
    pub fn matching_functions<'b>(
        &'b self,
        pattern: &'b str,
    ) -> impl Iterator<Item = &'b UserFunction> + 'b {
        let (name, file) = match pattern.split_once('@') {
            Some((name, file)) => (name, Some(file)),
            None => (pattern, None),
        };
        self.functions.iter().filter(move |function| {
            crate::passes::resolve::glob_match(name, &function.name)
                && file.is_none_or(|file| {
                    function.file.as_deref().is_some_and(|path| {
                        crate::passes::resolve::glob_match(file, path)
                            || path.match_indices('/').any(|(i, _)| {
                                crate::passes::resolve::glob_match(file, &path[i + 1..])
                            })
                    })
                })
        })
    }
}

/// One function of a [`UserBinary`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserFunction {
    pub name: String,
    /// The source file that defines it (DWARF `decl_file`), if known.
    pub file: Option<String>,
    /// The line of the definition, if known.
    pub line: Option<u32>,
    /// Virtual address of the entry point in the ELF file.
    pub address: u64,
    /// File offset of the entry point: where the uprobe is placed.
    pub file_offset: u64,
    /// Formal parameters in declaration order (empty without DWARF).
    pub params: Vec<UserParam>,
    /// The return type; `None` for `void` or when DWARF does not say.
    pub return_type: Option<UserType>,
}

/// A formal parameter, where it is at the function's entry point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserParam {
    pub name: String,
    pub ty: UserType,
    pub location: ValueLocation,
}

/// A C type as far as capture and printing need it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserType {
    /// The C spelling (`int`, `char const*`, `struct req*`).
    pub name: String,
    /// Size in bytes (0 if unknown).
    pub size: u32,
    pub class: TypeClass,
}

/// How a value of a [`UserType`] is held and printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeClass {
    /// A signed integer or enum: sign-extended from `size` bytes.
    Signed,
    /// An unsigned integer (`char` counts as signed on x86_64).
    Unsigned,
    /// A pointer: a 64-bit address.
    Pointer,
    /// `float`/`double`: not in integer registers, so not captured.
    Float,
    /// A struct, union or array passed by value: not captured.
    Aggregate,
}

/// Where a value is when the probe fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueLocation {
    /// In a register: the byte offset of its slot in the probed task's
    /// `struct pt_regs` (read with `OpCode::Reg`).
    Register(u16),
    /// Nowhere wasmtap can read (floating point, spilled beyond the
    /// argument registers, optimized out): printed as `?` as stap does.
    Unavailable,
}

/// A USDT probe (`STAP_PROBE*` / `DTRACE_PROBE*`) from `.note.stapsdt`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsdtMark {
    pub provider: String,
    pub name: String,
    /// Virtual address of the probe's `nop`.
    pub address: u64,
    /// File offset of the probe's `nop`: where the uprobe is placed.
    pub file_offset: u64,
    /// Virtual address of the semaphore (0: none). Probes guarded by a
    /// semaphore run only once a tracer increments it.
    pub semaphore: u64,
    /// The arguments, decoded from the note's argument string.
    pub args: Vec<UsdtArg>,
}

/// One USDT argument, e.g. `-4@%edi` or `8@-16(%rbp)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsdtArg {
    /// The spec as written in the note, for messages and listings.
    pub spec: String,
    /// Size in bytes (1, 2, 4 or 8).
    pub size: u8,
    pub signed: bool,
    pub location: UsdtLocation,
}

/// Where a USDT argument is when its probe fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsdtLocation {
    /// In a register (its byte offset in `struct pt_regs`).
    Register(u16),
    /// In user memory at `register + disp` (register as a `pt_regs` offset).
    Memory { base: u16, disp: i64 },
    /// A constant folded in by the compiler (`4@$5`).
    Constant(i64),
    /// An operand wasmtap cannot read (index registers, `%ah`, segment
    /// prefixes).
    Unsupported,
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
