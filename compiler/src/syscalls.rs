//! How SystemTap's syscall tapsets name and print each syscall's
//! arguments: the table in `data/syscall_argstr.tsv`, parsed once.
//!
//! For each syscall it lists, in `argstr` order, the tapset variable, the
//! tracepoint field it reads and the [`ArgKind`] that renders it. Symbol
//! lookup ([`crate::passes::symbols`]) offers the variables, code
//! generation (`codegen/syscall.rs`) emits the runtime calls that print
//! them, and listings (`-L`) show them. Syscalls the table leaves out print
//! their tracepoint fields in hex.

use std::sync::OnceLock;

use wasmtap_abi::sysarg::ArgKind;

/// One syscall's tapset layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyscallLayout {
    /// The syscall's name as the catalog spells it (`openat`).
    pub name: String,
    /// How `retstr` renders the return value ([`ArgKind::RetErrno`] or
    /// [`ArgKind::RetHex`]).
    pub ret: ArgKind,
    /// The arguments in `argstr` order.
    pub args: Vec<TapsetArg>,
}

/// One argument as the tapset offers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapsetArg {
    /// The tapset variable (`flags`, `buf_uaddr`, `filename`).
    pub var: String,
    /// The string variable with the decoded value (`flags_str`), for
    /// symbolic kinds and buffers.
    pub str_var: Option<String>,
    /// The syscall tracepoint field it reads.
    pub field: String,
    /// How `argstr` and the `*_str` variable render it.
    pub kind: ArgKind,
}

impl TapsetArg {
    /// Whether `var` itself is a string (quoted path, argv list) rather than
    /// the raw number.
    pub fn var_is_string(&self) -> bool {
        matches!(self.kind, ArgKind::Str | ArgKind::Argv)
    }
}

const TABLE: &str = include_str!("../data/syscall_argstr.tsv");

/// The layout of syscall `name`, if the table has one.
pub fn layout(name: &str) -> Option<&'static SyscallLayout> {
    layouts().iter().find(|layout| layout.name == name)
}

/// Every layout of the table.
pub fn layouts() -> &'static [SyscallLayout] {
    static LAYOUTS: OnceLock<Vec<SyscallLayout>> = OnceLock::new();
    LAYOUTS.get_or_init(|| parse(TABLE).unwrap_or_else(|error| panic!("{error}")))
}

/// Whether a kind has a `*_str` variable besides the raw number.
fn is_symbolic(kind: ArgKind) -> bool {
    !matches!(
        kind,
        ArgKind::Dec
            | ArgKind::Int
            | ArgKind::UDec
            | ArgKind::Hex
            | ArgKind::HexOrZero
            | ArgKind::Oct
            | ArgKind::CreatMode
            | ArgKind::Str
            | ArgKind::Argv
    )
}

/// Parses the table; an error names the bad line (a bug in the data,
/// caught by the tests).
fn parse(text: &str) -> Result<Vec<SyscallLayout>, String> {
    let mut layouts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let bad = |what: &str| format!("syscall_argstr.tsv line {}: {what}: {line}", n + 1);
        let mut columns = line.split('\t');
        let name = columns.next().ok_or_else(|| bad("no name"))?.to_string();
        let ret = columns
            .next()
            .and_then(ArgKind::from_name)
            .filter(|kind| matches!(kind, ArgKind::RetErrno | ArgKind::RetHex))
            .ok_or_else(|| bad("the return kind is not ret or ret_hex"))?;
        let mut args = Vec::new();
        for column in columns {
            let (vars, rest) = column.split_once('=').ok_or_else(|| bad("no '='"))?;
            let (field, kind) = rest.split_once(':').ok_or_else(|| bad("no ':'"))?;
            let kind = ArgKind::from_name(kind).ok_or_else(|| bad("unknown kind"))?;
            let (var, str_var) = match vars.split_once('/') {
                Some((var, str_var)) => (var, Some(str_var.to_string())),
                None => (vars, is_symbolic(kind).then(|| format!("{vars}_str"))),
            };
            args.push(TapsetArg {
                var: var.to_string(),
                str_var,
                field: field.to_string(),
                kind,
            });
        }
        layouts.push(SyscallLayout { name, ret, args });
    }
    Ok(layouts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, StaticCatalog};

    #[test]
    fn every_layout_names_real_fields() {
        let catalog = StaticCatalog::x86_64((6, 18, 0));
        assert!(layouts().len() >= 60, "decoders for the common syscalls");
        for layout in layouts() {
            let syscall = catalog
                .syscalls()
                .iter()
                .find(|s| s.name == layout.name)
                .unwrap_or_else(|| panic!("{} is not a syscall", layout.name));
            for arg in &layout.args {
                let field = syscall.args.iter().find(|a| a.name == arg.field);
                assert!(
                    field.is_some(),
                    "{}: no tracepoint field {}",
                    layout.name,
                    arg.field
                );
                if arg.kind == ArgKind::Str {
                    assert!(field.unwrap().is_user_string(), "{}", layout.name);
                }
            }
            if layout.args.iter().any(|a| a.kind == ArgKind::Buf) {
                assert!(layout.args.iter().any(|a| a.field == "count"));
            }
            if layout.args.iter().any(|a| a.kind == ArgKind::CreatMode) {
                assert!(layout.args.iter().any(|a| a.field == "flags"));
                assert_eq!(
                    layout.args.last().map(|a| a.kind),
                    Some(ArgKind::CreatMode),
                    "{}: the optional mode comes last",
                    layout.name
                );
            }
        }
    }

    #[test]
    fn openat_as_stap_names_it() {
        let openat = layout("openat").unwrap();
        let vars: Vec<_> = openat
            .args
            .iter()
            .flat_map(|a| std::iter::once(a.var.clone()).chain(a.str_var.clone()))
            .collect();
        assert_eq!(
            vars,
            ["dfd", "dfd_str", "filename", "flags", "flags_str", "mode"]
        );
        assert_eq!(layout("mmap").unwrap().ret, ArgKind::RetHex);
        assert_eq!(
            layout("write").unwrap().args[1].str_var.as_deref(),
            Some("buf_str")
        );
        assert!(layout("nonesuch").is_none());
    }
}
