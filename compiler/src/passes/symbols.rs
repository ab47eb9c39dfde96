//! The names a script can use besides its own variables: builtin functions
//! and the variables each kind of probe provides.

use serde::Serialize;

use wasmtap_abi::sysarg::ArgKind;

use crate::{
    catalog::{Catalog, SyscallArg},
    passes::{resolve::ProbeKind, tracepoints},
    syscalls::{self, SyscallLayout},
};

/// The value types of the language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Ty {
    Long,
    Str,
    /// An aggregate fed with `<<<`.
    Stats,
}

impl Ty {
    /// The name stap uses in messages.
    pub fn name(self) -> &'static str {
        match self {
            Ty::Long => "long",
            Ty::Str => "string",
            Ty::Stats => "stats",
        }
    }
}

/// A context value copied by the kernel into every record of a script that
/// uses it, at a fixed offset (see `plan::context_offset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ContextField {
    PidTgid,
    UidGid,
    KtimeNs,
    Cpu,
    Comm,
    /// `ppid()`: the tgid of the real parent.
    ParentTgid,
    /// `euid()`, `egid()`.
    EuidEgid,
    /// `cmdline_str()`: the command line, NUL separated.
    Cmdline,
}

/// How a builtin is compiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinKind {
    /// A call into the guest runtime with the same name.
    Runtime,
    /// Reads a context field from the record.
    Context,
    /// Handled by the code generator itself (printf family, exit, ...).
    Special,
}

/// A builtin function: its parameter types (None: variadic / special) and
/// result type (None: no value).
#[derive(Clone, Copy, Debug)]
pub struct Builtin {
    pub name: &'static str,
    pub params: Option<&'static [Ty]>,
    pub ret: Option<Ty>,
    pub kind: BuiltinKind,
}

const fn b(
    name: &'static str,
    params: Option<&'static [Ty]>,
    ret: Option<Ty>,
    kind: BuiltinKind,
) -> Builtin {
    Builtin {
        name,
        params,
        ret,
        kind,
    }
}

use BuiltinKind::{Context, Runtime, Special};
use Ty::{Long, Str};

/// Every builtin function, stap's names.
pub const BUILTINS: &[Builtin] = &[
    b("printf", None, None, Special),
    b("sprintf", None, Some(Str), Special),
    b("print", None, None, Special),
    b("println", None, None, Special),
    b("printd", None, None, Special),
    b("printdln", None, None, Special),
    b("sprint", None, Some(Str), Special),
    b("sprintln", None, Some(Str), Special),
    b("exit", Some(&[]), None, Special),
    b("error", Some(&[Str]), None, Special),
    b("abort", Some(&[]), None, Special),
    b("user_string", Some(&[Long]), Some(Str), Special),
    b("user_string_n", Some(&[Long, Long]), Some(Str), Special),
    b("target", Some(&[]), Some(Long), Special),
    b("pp", Some(&[]), Some(Str), Special),
    b("probefunc", Some(&[]), Some(Str), Special),
    b("ppfunc", Some(&[]), Some(Str), Special),
    b("probemod", Some(&[]), Some(Str), Special),
    b("randint", Some(&[Long]), Some(Long), Special),
    b("gettimeofday_ns", Some(&[]), Some(Long), Special),
    b("gettimeofday_us", Some(&[]), Some(Long), Special),
    b("gettimeofday_ms", Some(&[]), Some(Long), Special),
    b("gettimeofday_s", Some(&[]), Some(Long), Special),
    b("local_clock_ns", Some(&[]), Some(Long), Special),
    b("local_clock_us", Some(&[]), Some(Long), Special),
    b("local_clock_ms", Some(&[]), Some(Long), Special),
    b("local_clock_s", Some(&[]), Some(Long), Special),
    b("pid", Some(&[]), Some(Long), Context),
    b("tid", Some(&[]), Some(Long), Context),
    b("uid", Some(&[]), Some(Long), Context),
    b("gid", Some(&[]), Some(Long), Context),
    b("cpu", Some(&[]), Some(Long), Context),
    b("execname", Some(&[]), Some(Str), Context),
    b("ppid", Some(&[]), Some(Long), Context),
    b("euid", Some(&[]), Some(Long), Context),
    b("egid", Some(&[]), Some(Long), Context),
    b("cmdline_str", Some(&[]), Some(Str), Context),
    // Task values are handles into the ancestry the probe captured.
    b("task_current", Some(&[]), Some(Long), Special),
    b("task_parent", Some(&[Long]), Some(Long), Special),
    b("task_pid", Some(&[Long]), Some(Long), Special),
    b("task_tid", Some(&[Long]), Some(Long), Special),
    b("task_uid", Some(&[Long]), Some(Long), Special),
    b("task_euid", Some(&[Long]), Some(Long), Special),
    b("task_execname", Some(&[Long]), Some(Str), Special),
    b("strlen", Some(&[Str]), Some(Long), Runtime),
    b("substr", Some(&[Str, Long, Long]), Some(Str), Runtime),
    b("isinstr", Some(&[Str, Str]), Some(Long), Runtime),
    b("str_replace", Some(&[Str, Str, Str]), Some(Str), Runtime),
    b("strtol", Some(&[Str, Long]), Some(Long), Runtime),
    b("isdigit", Some(&[Str]), Some(Long), Runtime),
    b("stringat", Some(&[Str, Long]), Some(Long), Runtime),
    b("text_str", Some(&[Str]), Some(Str), Runtime),
    b("text_strn", Some(&[Str, Long, Long]), Some(Str), Special),
    b("tokenize", Some(&[Str, Str]), Some(Str), Runtime),
    // Stacks (codegen/stack.rs): a stack value is stap's string of hex
    // addresses, innermost first.
    b("ubacktrace", Some(&[]), Some(Str), Special),
    b("backtrace", Some(&[]), Some(Str), Special),
    b("print_ubacktrace", Some(&[]), None, Special),
    b("sprint_ubacktrace", Some(&[]), Some(Str), Special),
    b("print_backtrace", Some(&[]), None, Special),
    b("sprint_backtrace", Some(&[]), Some(Str), Special),
    b("print_ustack", Some(&[Str]), None, Special),
    b("sprint_ustack", Some(&[Str]), Some(Str), Special),
    b("print_stack", Some(&[Str]), None, Special),
    b("sprint_stack", Some(&[Str]), Some(Str), Special),
    b("usymname", Some(&[Long]), Some(Str), Special),
    b("usymdata", Some(&[Long]), Some(Str), Special),
    b("umodname", Some(&[Long]), Some(Str), Special),
    b("symname", Some(&[Long]), Some(Str), Special),
    b("symdata", Some(&[Long]), Some(Str), Special),
    b("strpos", Some(&[Str, Str]), Some(Long), Runtime),
    b("string_quoted", Some(&[Str]), Some(Str), Special),
];

/// Looks up a builtin by name.
pub fn builtin(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|builtin| builtin.name == name)
}

/// The context field a context builtin reads.
pub fn context_field(name: &str) -> Option<ContextField> {
    Some(match name {
        "pid" | "tid" => ContextField::PidTgid,
        "uid" | "gid" => ContextField::UidGid,
        "cpu" => ContextField::Cpu,
        "execname" => ContextField::Comm,
        // User-space symbolization needs the process whose memory maps
        // give the addresses meaning.
        "ubacktrace" | "print_ubacktrace" | "sprint_ubacktrace" | "print_ustack"
        | "sprint_ustack" | "usymname" | "usymdata" | "umodname" => ContextField::PidTgid,
        "ppid" => ContextField::ParentTgid,
        "euid" | "egid" => ContextField::EuidEgid,
        "cmdline_str" => ContextField::Cmdline,
        _ => return None,
    })
}

/// A variable a probe provides: a `$target` or a tapset variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeVar {
    /// A syscall argument's raw value (`$fd`, `$filename` as a pointer).
    Arg { index: u8 },
    /// The string an argument points to (stap's tapset `filename`).
    ArgString { index: u8 },
    /// The syscall's name (`name`).
    SyscallName,
    /// The syscall's return value (`$return`).
    Return,
    /// The arguments rendered as text (`argstr`).
    ArgStr,
    /// The return value rendered as text (`retstr`).
    RetStr,
    /// A formal parameter of a user function (`$a`): index in its
    /// `UserFunction::params`.
    UserParam { index: u8 },
    /// Every parameter of a user function as `a=0x3 b=0x4` (`$$parms`).
    UserParms,
    /// A user function's return value (`$return` in `.return`).
    UserReturn,
    /// Argument `index` (0-based) of a USDT mark (`$arg1` is index 0).
    MarkArg { index: u8 },
    /// Every argument of a USDT mark as `arg1=0x1 arg2=0x2` (`$$parms`).
    MarkParms,
    /// The mark's name (`$$name`).
    MarkName,
    /// The mark's provider (`$$provider`).
    MarkProvider,
    /// An argument rendered as its tapset prints it in `argstr`: a quoted
    /// path (stap's `filename`), an argv list (`args`), or a symbolic
    /// `*_str` variable (`flags_str`).
    ArgDecoded { index: u8, kind: ArgKind },
    /// The syscall number (`$__syscall_nr`), known at compile time.
    SyscallNr,
    /// An argument the tapset reads as a C `int` whatever the tracepoint's
    /// type (`fd` of mmap is an `unsigned long` there): sign-extended from
    /// 32 bits, so -1 stays -1.
    ArgInt { index: u8 },
    /// Field `index` of a tracepoint's entry (`$sig`, `pid_name`); a string
    /// for `char[]` and `__data_loc char[]` fields.
    Field { index: usize, string: bool },
    /// The name of the signal in field `index` (`sig_name`: `SIGTERM`).
    SignalName { index: usize },
    /// A tapset variable with a fixed value here (`send2queue`).
    Const(i64),
    /// A tapset variable with a fixed text (`name`).
    ConstStr(&'static str),
    /// `$$parms` of a tracepoint: every field as `name=value`.
    TracepointParms,
    /// The exit code of the exiting task (`code` of `kprocess.exit`).
    ExitCode,
}

impl ProbeVar {
    /// The value type of the variable.
    pub fn ty(&self) -> Ty {
        match self {
            ProbeVar::Arg { .. }
            | ProbeVar::Return
            | ProbeVar::UserParam { .. }
            | ProbeVar::UserReturn
            | ProbeVar::MarkArg { .. }
            | ProbeVar::ArgInt { .. }
            | ProbeVar::SyscallNr
            | ProbeVar::ExitCode
            | ProbeVar::Const(_) => Ty::Long,
            ProbeVar::Field { string, .. } if !string => Ty::Long,
            _ => Ty::Str,
        }
    }
}

/// The syscall arguments of a probe, if it is a syscall probe.
pub fn syscall_args<'c>(kind: &ProbeKind, catalog: &'c dyn Catalog) -> Option<&'c [SyscallArg]> {
    let ProbeKind::Syscall { nr, .. } = kind else {
        return None;
    };
    catalog
        .syscalls()
        .iter()
        .find(|syscall| syscall.nr == *nr)
        .map(|syscall| syscall.args.as_slice())
}

/// Looks up `$name` (target = true) or a tapset variable `name` in a probe.
pub fn probe_var(
    kind: &ProbeKind,
    catalog: &dyn Catalog,
    name: &str,
    target: bool,
) -> Option<ProbeVar> {
    if let Some(user) = super::uprobe::probe_var(kind, catalog, name, target) {
        return user;
    }
    if let ProbeKind::Tracepoint { tracepoint, alias } = kind {
        return tracepoints::probe_var(tracepoint, alias.as_ref(), name, target);
    }
    let ProbeKind::Syscall {
        ret, name: syscall, ..
    } = kind
    else {
        return None;
    };
    let args = syscall_args(kind, catalog).unwrap_or(&[]);
    let arg = args.iter().position(|arg| arg.name == name);
    match (target, name) {
        (true, "return" | "ret") if *ret => Some(ProbeVar::Return),
        (true, "__syscall_nr") => Some(ProbeVar::SyscallNr),
        (true, _) => arg.map(|index| ProbeVar::Arg { index: index as u8 }),
        (false, "name") => Some(ProbeVar::SyscallName),
        (false, "argstr") => Some(ProbeVar::ArgStr),
        (false, "retstr") if *ret => Some(ProbeVar::RetStr),
        (false, _) => match syscalls::layout(syscall) {
            Some(layout) => tapset_var(layout, args, name),
            None => arg.map(|index| {
                if args[index].is_user_string() {
                    ProbeVar::ArgString { index: index as u8 }
                } else {
                    ProbeVar::Arg { index: index as u8 }
                }
            }),
        },
    }
}

/// A tapset variable of a syscall the layout table describes.
fn tapset_var(layout: &SyscallLayout, args: &[SyscallArg], name: &str) -> Option<ProbeVar> {
    layout.args.iter().find_map(|tapset| {
        let index = args.iter().position(|a| a.name == tapset.field)? as u8;
        if tapset.var == name {
            Some(if tapset.var_is_string() {
                ProbeVar::ArgDecoded {
                    index,
                    kind: tapset.kind,
                }
            } else if matches!(tapset.kind, ArgKind::Int | ArgKind::DirFd) {
                ProbeVar::ArgInt { index }
            } else {
                ProbeVar::Arg { index }
            })
        } else if tapset.str_var.as_deref() == Some(name) {
            Some(ProbeVar::ArgDecoded {
                index,
                kind: tapset.kind,
            })
        } else {
            None
        }
    })
}

/// Every variable a probe offers with its type, in stap's `-L` order:
/// `name`, the tapset variables, `argstr` (or `retstr`), then the `$`
/// fields of the event.
pub fn probe_vars(kind: &ProbeKind, catalog: &dyn Catalog) -> Vec<(String, Ty)> {
    if let Some(user) = super::uprobe::probe_vars(kind, catalog) {
        return user;
    }
    if let ProbeKind::Tracepoint { tracepoint, alias } = kind {
        return tracepoints::probe_var_names(tracepoint, alias.as_ref())
            .into_iter()
            .map(|name| {
                let (target, bare) = match name.strip_prefix('$') {
                    Some(bare) => (true, bare),
                    None => (false, name.as_str()),
                };
                let ty = tracepoints::probe_var(tracepoint, alias.as_ref(), bare, target)
                    .map_or(Ty::Long, |var| var.ty());
                (name, ty)
            })
            .collect();
    }
    let mut vars = Vec::new();
    let ProbeKind::Syscall { ret, name, .. } = kind else {
        return vars;
    };
    let args = syscall_args(kind, catalog).unwrap_or(&[]);
    vars.push(("name".to_string(), Ty::Str));
    if *ret {
        vars.push(("retstr".to_string(), Ty::Str));
        vars.push(("$return".to_string(), Ty::Long));
        return vars;
    }
    match syscalls::layout(name) {
        Some(layout) => {
            for tapset in &layout.args {
                let ty = if tapset.var_is_string() {
                    Ty::Str
                } else {
                    Ty::Long
                };
                vars.push((tapset.var.clone(), ty));
                if let Some(str_var) = &tapset.str_var {
                    vars.push((str_var.clone(), Ty::Str));
                }
            }
        }
        None => {
            for arg in args {
                let ty = if arg.is_user_string() {
                    Ty::Str
                } else {
                    Ty::Long
                };
                vars.push((arg.name.clone(), ty));
            }
        }
    }
    vars.push(("argstr".to_string(), Ty::Str));
    for arg in args {
        vars.push((format!("${}", arg.name), Ty::Long));
    }
    vars
}

/// Names of every variable a probe offers, for "did you mean" hints.
pub fn probe_var_names(kind: &ProbeKind, catalog: &dyn Catalog) -> Vec<String> {
    probe_vars(kind, catalog)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}
