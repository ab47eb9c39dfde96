//! The names a script can use besides its own variables: builtin functions
//! and the variables each kind of probe provides.

use serde::Serialize;

use crate::{
    catalog::{Catalog, SyscallArg},
    passes::resolve::ProbeKind,
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
    b("strlen", Some(&[Str]), Some(Long), Runtime),
    b("substr", Some(&[Str, Long, Long]), Some(Str), Runtime),
    b("isinstr", Some(&[Str, Str]), Some(Long), Runtime),
    b("str_replace", Some(&[Str, Str, Str]), Some(Str), Runtime),
    b("strtol", Some(&[Str, Long]), Some(Long), Runtime),
    b("isdigit", Some(&[Str]), Some(Long), Runtime),
    b("stringat", Some(&[Str, Long]), Some(Long), Runtime),
    b("text_str", Some(&[Str]), Some(Str), Runtime),
    b(
        "text_strn",
        Some(&[Str, Long, Long, Long]),
        Some(Str),
        Runtime,
    ),
    b("tokenize", Some(&[Str, Str]), Some(Str), Runtime),
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
}

impl ProbeVar {
    /// The value type of the variable.
    pub fn ty(&self) -> Ty {
        match self {
            ProbeVar::Arg { .. }
            | ProbeVar::Return
            | ProbeVar::UserParam { .. }
            | ProbeVar::UserReturn
            | ProbeVar::MarkArg { .. } => Ty::Long,
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
    let ProbeKind::Syscall { ret, .. } = kind else {
        return None;
    };
    let args = syscall_args(kind, catalog).unwrap_or(&[]);
    let arg = args.iter().position(|arg| arg.name == name);
    match (target, name) {
        (true, "return") if *ret => Some(ProbeVar::Return),
        (true, _) => arg.map(|index| ProbeVar::Arg { index: index as u8 }),
        (false, "name") => Some(ProbeVar::SyscallName),
        (false, "argstr") => Some(ProbeVar::ArgStr),
        (false, "retstr") if *ret => Some(ProbeVar::RetStr),
        (false, _) => arg.map(|index| {
            if args[index].is_user_string() {
                ProbeVar::ArgString { index: index as u8 }
            } else {
                ProbeVar::Arg { index: index as u8 }
            }
        }),
    }
}

/// Names of every variable a probe offers, for "did you mean" hints and
/// listings.
pub fn probe_var_names(kind: &ProbeKind, catalog: &dyn Catalog) -> Vec<String> {
    let mut names = super::uprobe::probe_var_names(kind, catalog);
    if let ProbeKind::Syscall { ret, .. } = kind {
        names.push("name".to_string());
        names.push("argstr".to_string());
        if *ret {
            names.push("retstr".to_string());
            names.push("$return".to_string());
        }
        for arg in syscall_args(kind, catalog).unwrap_or(&[]) {
            names.push(arg.name.clone());
            names.push(format!("${}", arg.name));
        }
    }
    names
}
