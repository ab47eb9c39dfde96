//! What the compiler may know about the system it compiles for.
//!
//! Resolution asks a [`Catalog`] which syscalls and tracepoints (and later
//! kernel types and user binaries) exist. The host implements it from the
//! live system; tests use [`StaticCatalog`], built from tables recorded on
//! Linux 6.18 x86_64, so they run without a kernel.

use std::sync::Arc;

use serde::Serialize;

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
    /// Every tracepoint as `(system, event)`, sorted. Default: none, for
    /// catalogs that know no tracepoints.
    fn tracepoints(&self) -> Vec<(String, String)> {
        Vec::new()
    }
    /// The format of one tracepoint, `None` if the system lacks it.
    fn tracepoint(&self, _system: &str, _event: &str) -> Option<Tracepoint> {
        None
    }
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
    /// The executable `process.function(...)` without a path probes: the
    /// target's. A `-c` command is still its start-up shell at compile
    /// time, so a catalog may name the command's binary instead.
    fn target_executable(&self) -> Option<String> {
        self.target_process().map(|pid| format!("/proc/{pid}/exe"))
    }
}

/// A kernel tracepoint and the fields of its trace entry, as its tracefs
/// `format` file describes them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tracepoint {
    /// The tracefs directory it sits in (`sched`, `signal`).
    pub system: String,
    /// The event's name (`sched_process_exec`).
    pub event: String,
    /// The event id (`common_type` of every entry).
    pub id: u32,
    /// The event's own fields, `common_*` excluded, in entry order.
    pub fields: Vec<TracepointField>,
}

/// One field of a trace entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TracepointField {
    /// The name `$name` reads it by.
    pub name: String,
    /// The C type as the format prints it (`pid_t`, `char[16]`,
    /// `__data_loc char[]`).
    pub c_type: String,
    /// Byte offset in the trace entry.
    pub offset: u16,
    /// Bytes the field occupies.
    pub size: u16,
    /// Whether the format marks the field signed.
    pub signed: bool,
}

/// How a script sees a tracepoint field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// An integer (or pointer) of `bytes` (1, 2, 4 or 8) bytes.
    Int { bytes: u8, signed: bool },
    /// A `char[N]` array holding a NUL-padded string.
    CharArray,
    /// A `__data_loc char[]` string stored after the fixed fields.
    DataLocStr,
    /// Anything else (other arrays, `__data_loc` of non-chars): not offered.
    Unsupported,
}

impl TracepointField {
    /// How the field reads as a script value. The C type decides the width
    /// and sign where it is a plain integer type, because syscall
    /// tracepoints store an `int` in an 8-byte unsigned slot and stap's
    /// `$fd` is still a signed int.
    pub fn kind(&self) -> FieldKind {
        let ty = self.c_type.trim();
        if ty.starts_with("__data_loc") {
            return if ty.ends_with("char[]") {
                FieldKind::DataLocStr
            } else {
                FieldKind::Unsupported
            };
        }
        if ty.ends_with(']') {
            let element = ty.split('[').next().unwrap_or("").trim();
            return if element.ends_with("char") {
                FieldKind::CharArray
            } else {
                FieldKind::Unsupported
            };
        }
        let declared = c_int_type(ty);
        let size = self.size.min(8) as u8;
        match declared {
            Some((bytes, signed)) if bytes <= size => FieldKind::Int { bytes, signed },
            _ if matches!(size, 1 | 2 | 4 | 8) => FieldKind::Int {
                bytes: size,
                signed: self.signed,
            },
            _ => FieldKind::Unsupported,
        }
    }
}

/// Width and sign of the common integer types of trace formats.
fn c_int_type(ty: &str) -> Option<(u8, bool)> {
    Some(match ty {
        "bool" | "u8" | "unsigned char" => (1, false),
        "char" | "s8" | "signed char" => (1, true),
        "short" | "s16" | "short int" => (2, true),
        "u16" | "unsigned short" | "umode_t" => (2, false),
        "int" | "s32" | "pid_t" | "key_t" | "clockid_t" | "timer_t" | "mqd_t" => (4, true),
        "u32" | "unsigned int" | "unsigned" | "uid_t" | "gid_t" | "qid_t" => (4, false),
        _ => return None,
    })
}

/// Parses the `field:` lines of a tracefs `format` file; `common_*`
/// fields are left out (stap does not offer them either).
pub fn parse_format_fields(text: &str) -> Vec<TracepointField> {
    text.lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("field:")?;
            let mut parts = rest.split(';').map(str::trim);
            let decl = parts.next()?;
            let mut offset = None;
            let mut size = None;
            let mut signed = false;
            for part in parts {
                if let Some(v) = part.strip_prefix("offset:") {
                    offset = v.parse().ok();
                } else if let Some(v) = part.strip_prefix("size:") {
                    size = v.parse().ok();
                } else if let Some(v) = part.strip_prefix("signed:") {
                    signed = v == "1";
                }
            }
            let (c_type, name) = split_declaration(decl)?;
            if name.starts_with("common_") {
                return None;
            }
            Some(TracepointField {
                name,
                c_type,
                offset: offset?,
                size: size?,
                signed,
            })
        })
        .collect()
}

/// `char comm[16]` -> (`char[16]`, `comm`); `const char * filename` ->
/// (`const char *`, `filename`).
fn split_declaration(decl: &str) -> Option<(String, String)> {
    let (decl, array) = match decl.find('[') {
        Some(open) if !decl.starts_with("__data_loc") => (&decl[..open], &decl[open..]),
        _ => (decl, ""),
    };
    let split = decl.rfind(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    let name = decl[split + 1..].to_string();
    let base = decl[..=split].trim();
    if name.is_empty() {
        return None;
    }
    Some((format!("{base}{array}"), name))
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
    /// What pointers point at, the members of structs and the elements of
    /// arrays, indexed by [`UserType::shape`]: a table rather than nested
    /// values because C types refer to themselves (`struct req *next`).
    pub types: Vec<TypeShape>,
    /// The named types DWARF defines (`struct req`, `union u`, typedef
    /// names), for `@cast(p, "struct req")`.
    pub named_types: std::collections::BTreeMap<String, UserType>,
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
    /// Index in [`UserBinary::types`] of what a pointer points at, a
    /// struct's members or an array's elements; `None` for scalars and
    /// where DWARF says nothing.
    pub shape: Option<u32>,
}

impl UserType {
    /// A scalar type without a shape (`long`, a USDT argument).
    pub fn scalar(name: &str, size: u32, class: TypeClass) -> Self {
        Self {
            name: name.to_string(),
            size,
            class,
            shape: None,
        }
    }
}

/// The structure of a compound [`UserType`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeShape {
    /// A pointer and the type it points at (`void` is an aggregate of size
    /// 0).
    Pointer(UserType),
    /// A struct or union and its members in declaration order.
    Record(Vec<UserMember>),
    /// An array: the element type and the element count (0 when unknown,
    /// as for `char name[]`).
    Array { element: UserType, count: u32 },
}

/// A member of a struct or union.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserMember {
    /// Empty for anonymous structs and unions, whose members are reached
    /// as if they were the outer record's.
    pub name: String,
    /// Byte offset from the start of the record.
    pub offset: u32,
    pub ty: UserType,
    /// Whether the member is a bit-field (which wasmtap does not read).
    pub bit_field: bool,
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
    /// In user memory at a register plus a displacement (read with
    /// `OpCode::UserRead`): arguments the calling convention passes on the
    /// stack sit at `sp + 8`, `sp + 16`... at the function's entry.
    Memory { base: u16, disp: i32 },
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

/// A catalog from recorded data: the syscall table and a subset of the
/// tracepoints of Linux 6.18 x86_64.
#[derive(Clone, Debug)]
pub struct StaticCatalog {
    syscalls: Vec<Syscall>,
    tracepoints: Vec<Tracepoint>,
    kernel_version: (u32, u32, u32),
}

const SYSCALLS_X86_64: &str = include_str!("../data/syscalls_x86_64.tsv");
const TRACEPOINTS_X86_64: &str = include_str!("../data/tracepoints_x86_64.txt");

impl StaticCatalog {
    /// The recorded x86_64 table with the given kernel version.
    pub fn x86_64(kernel_version: (u32, u32, u32)) -> Self {
        Self {
            syscalls: parse_syscall_table(SYSCALLS_X86_64),
            tracepoints: parse_tracepoint_table(TRACEPOINTS_X86_64),
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

    fn tracepoints(&self) -> Vec<(String, String)> {
        self.tracepoints
            .iter()
            .map(|tp| (tp.system.clone(), tp.event.clone()))
            .collect()
    }

    fn tracepoint(&self, system: &str, event: &str) -> Option<Tracepoint> {
        self.tracepoints
            .iter()
            .find(|tp| tp.system == system && tp.event == event)
            .cloned()
    }
}

/// Parses the recorded table: `event SYSTEM:EVENT ID` lines, each followed
/// by the event's `field:` lines.
fn parse_tracepoint_table(text: &str) -> Vec<Tracepoint> {
    let mut tracepoints = Vec::new();
    let mut lines = text.lines().filter(|l| !l.starts_with('#')).peekable();
    while let Some(line) = lines.next() {
        let Some(header) = line.strip_prefix("event ") else {
            continue;
        };
        let mut body = String::new();
        while let Some(next) = lines.next_if(|l| !l.starts_with("event ")) {
            body.push_str(next);
            body.push('\n');
        }
        let mut words = header.split_whitespace();
        let (Some(name), Some(id)) = (words.next(), words.next()) else {
            continue;
        };
        let Some((system, event)) = name.split_once(':') else {
            continue;
        };
        tracepoints.push(Tracepoint {
            system: system.to_string(),
            event: event.to_string(),
            id: id.parse().unwrap_or(0),
            fields: parse_format_fields(&body),
        });
    }
    tracepoints.sort_by(|a, b| (&a.system, &a.event).cmp(&(&b.system, &b.event)));
    tracepoints
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
    fn recorded_tracepoints_have_typed_fields() {
        let catalog = StaticCatalog::x86_64((6, 18, 0));
        let signal = catalog
            .tracepoint("signal", "signal_generate")
            .expect("signal_generate");
        let comm = signal.fields.iter().find(|f| f.name == "comm").unwrap();
        assert_eq!((comm.c_type.as_str(), comm.offset), ("char[16]", 20));
        assert_eq!(comm.kind(), FieldKind::CharArray);
        let sig = &signal.fields[0];
        assert_eq!(sig.name, "sig");
        assert_eq!(
            sig.kind(),
            FieldKind::Int {
                bytes: 4,
                signed: true
            }
        );
        let exec = catalog.tracepoint("sched", "sched_process_exec").unwrap();
        assert_eq!(exec.fields[0].name, "filename");
        assert_eq!(exec.fields[0].kind(), FieldKind::DataLocStr);
        let openat = catalog.tracepoint("syscalls", "sys_enter_openat").unwrap();
        let dfd = openat.fields.iter().find(|f| f.name == "dfd").unwrap();
        assert_eq!(
            dfd.kind(),
            FieldKind::Int {
                bytes: 4,
                signed: true
            },
            "an int in an 8-byte syscall slot reads as a signed int"
        );
        assert!(
            catalog
                .tracepoints()
                .contains(&("sched".into(), "sched_process_exit".into()))
        );
    }

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
