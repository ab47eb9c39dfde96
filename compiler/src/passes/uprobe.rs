//! Resolution of user-space probe points: `process("PATH").function("PAT")`
//! (with `.call` and `.return`), `process(PID).function("PAT")` and
//! `process.function("PAT")` (the `-x` target) on a process's executable,
//! and `process("PATH").mark("NAME")` for USDT probes.
//!
//! Each matched function or mark becomes its own probe (one uprobe each),
//! as each syscall of `syscall.*` does: its parameters sit in different
//! registers, so each gets its own capture plan.

use crate::{
    catalog::{Catalog, UsdtMark, UserBinary, UserFunction},
    diagnostics::Diagnostic,
    passes::resolve::{ProbeKind, glob_match, point_text},
    span::Span,
    syntax::ast::{Component, Literal, ProbePoint},
};

/// Probes named by a `process...` point, as `(pp() text, kind)`.
///
/// # Errors
/// An unreadable binary, a malformed point, or a pattern that matches
/// nothing in the binary.
pub(crate) fn resolve(
    point: &ProbePoint,
    catalog: &dyn Catalog,
) -> Result<Vec<(String, ProbeKind)>, Diagnostic> {
    let components = &point.components;
    let names: Vec<&str> = components.iter().map(|c| c.name.as_str()).collect();
    let (site, ret) = match names.as_slice() {
        ["process", "function"] | ["process", "function", "call"] => (Site::Function, false),
        ["process", "function", "return"] => (Site::Function, true),
        ["process", "mark"] => (Site::Mark { provider: None }, false),
        ["process", "provider", "mark"] => (
            Site::Mark {
                provider: Some(string_arg(&components[1], "the provider name")?),
            },
            false,
        ),
        _ => return Err(unknown_user_point(point)),
    };
    let binary = binary(&components[0], catalog)?;
    let pattern_component = components
        .iter()
        .rfind(|c| c.name == "function" || c.name == "mark")
        .ok_or_else(|| unknown_user_point(point))?;
    let pattern = string_arg(pattern_component, "a name pattern")?;
    // `process(PID)` probes that process; otherwise `-x` narrows every
    // user probe to the target.
    let pid = match &components[0].arg {
        Some(Literal::Int(pid)) => u32::try_from(*pid).ok(),
        _ => catalog.target_process(),
    };
    let probes: Vec<_> = match &site {
        Site::Function => without_aliases(binary.matching_functions(&pattern))
            .into_iter()
            .map(|function| {
                let index = function_index(&binary, function);
                (
                    function_pp(&binary, function, names.last().copied()),
                    ProbeKind::UserFunction {
                        path: binary.path.clone(),
                        function: function.name.clone(),
                        index,
                        file_offset: function.file_offset,
                        ret,
                        pid,
                    },
                )
            })
            .collect(),
        Site::Mark { provider } => binary
            .marks
            .iter()
            .enumerate()
            .filter(|(_, mark)| {
                glob_match(&pattern, &mark.name)
                    && provider
                        .as_deref()
                        .is_none_or(|p| glob_match(p, &mark.provider))
            })
            .map(|(index, mark)| {
                (
                    mark_pp(&binary, mark),
                    ProbeKind::UserMark {
                        path: binary.path.clone(),
                        provider: mark.provider.clone(),
                        name: mark.name.clone(),
                        index,
                        file_offset: mark.file_offset,
                        pid,
                    },
                )
            })
            .collect(),
    };
    if probes.is_empty() {
        return Err(nothing_matches(
            point,
            pattern_component.span,
            &binary,
            matches!(site, Site::Mark { .. }),
        ));
    }
    Ok(probes)
}

/// One function per entry address: aliases (`malloc` and `__libc_malloc`)
/// would put two uprobes on one instruction and print every call twice.
/// The name kept is the one with the fewest leading underscores, then the
/// shortest; the result stays in name order.
fn without_aliases<'b>(functions: impl Iterator<Item = &'b UserFunction>) -> Vec<&'b UserFunction> {
    let rank = |f: &UserFunction| {
        let underscores = f.name.len() - f.name.trim_start_matches('_').len();
        (underscores, f.name.len())
    };
    let mut best: std::collections::HashMap<u64, &UserFunction> = std::collections::HashMap::new();
    let mut all = Vec::new();
    for function in functions {
        all.push(function);
        best.entry(function.file_offset)
            .and_modify(|kept| {
                if rank(function) < rank(kept) {
                    *kept = function;
                }
            })
            .or_insert(function);
    }
    all.retain(|f| std::ptr::eq(*f, best[&f.file_offset]));
    all
}

enum Site {
    Function,
    Mark { provider: Option<String> },
}

/// The binary a `process` component names: its argument, or without one
/// the executable of the `-x` target.
fn binary(
    component: &Component,
    catalog: &dyn Catalog,
) -> Result<std::sync::Arc<UserBinary>, Diagnostic> {
    let path = match &component.arg {
        Some(Literal::Str(path)) => path.clone(),
        Some(Literal::Int(pid)) => format!("/proc/{pid}/exe"),
        None => {
            match catalog.target_executable() {
                Some(path) => path,
                None => {
                    return Err(Diagnostic::error(
                    "'process' without a path probes the target process, and none is set",
                    component.span,
                    "which binary?",
                )
                .with_hint("pass the target with -x PID, or name the binary: process(\"/path/to/bin\")"));
                }
            }
        }
    };
    catalog.user_binary(&path).map_err(|reason| {
        Diagnostic::error(
            format!("cannot read the binary '{path}': {reason}"),
            component.span,
            "this binary",
        )
        .with_hint("give an absolute path, a path relative to the current directory, or a program name found in $PATH")
    })
}

fn string_arg(component: &Component, what: &str) -> Result<String, Diagnostic> {
    match &component.arg {
        Some(Literal::Str(s)) => Ok(s.clone()),
        _ => Err(Diagnostic::error(
            format!("'{}' takes {what} in quotes", component.name),
            component.span,
            "invalid argument",
        )),
    }
}

fn function_index(binary: &UserBinary, function: &UserFunction) -> usize {
    binary
        .functions
        .iter()
        .position(|f| std::ptr::eq(f, function))
        .unwrap_or_default()
}

/// `pp()` as stap prints it: `process("/bin/x").function("add@/src/x.c:3")`.
fn function_pp(binary: &UserBinary, function: &UserFunction, last: Option<&str>) -> String {
    let mut site = function.name.clone();
    if let Some(file) = &function.file {
        site.push('@');
        site.push_str(file);
        if let Some(line) = function.line {
            site.push_str(&format!(":{line}"));
        }
    }
    let suffix = match last {
        Some(last @ ("return" | "call")) => format!(".{last}"),
        _ => String::new(),
    };
    format!("process(\"{}\").function(\"{site}\"){suffix}", binary.path)
}

fn mark_pp(binary: &UserBinary, mark: &UsdtMark) -> String {
    format!(
        "process(\"{}\").provider(\"{}\").mark(\"{}\")",
        binary.path, mark.provider, mark.name
    )
}

fn nothing_matches(point: &ProbePoint, span: Span, binary: &UserBinary, mark: bool) -> Diagnostic {
    let (what, hint) = if mark {
        let names: Vec<String> = binary
            .marks
            .iter()
            .take(8)
            .map(|m| format!("{}:{}", m.provider, m.name))
            .collect();
        (
            "USDT mark",
            if names.is_empty() {
                "the binary has no .note.stapsdt section: it defines no USDT probes".to_string()
            } else {
                format!("its marks include: {}", names.join(", "))
            },
        )
    } else {
        (
            "function",
            format!(
                "list its functions with: wasmtap -L 'process(\"{}\").function(\"*\")'",
                binary.path
            ),
        )
    };
    let error = Diagnostic::error(
        format!(
            "probe point '{}' matches no {what} of '{}'",
            point_text(point),
            binary.path
        ),
        span,
        "nothing matches",
    )
    .with_hint(hint);
    if what == "function" && !binary.has_debug_info {
        error.with_hint(format!(
            "'{}' has no debug information, and its symbol tables name {} functions: a stripped binary names only what it exports; install its debug symbols (Debian: the -dbgsym package) or probe an unstripped build",
            binary.path,
            binary.functions.len()
        ))
    } else {
        error
    }
}

fn unknown_user_point(point: &ProbePoint) -> Diagnostic {
    Diagnostic::error(
        format!("unknown probe point '{}'", point_text(point)),
        point.span,
        "not a user-space probe point wasmtap knows",
    )
    .with_hint(
        "supported: process(\"PATH\").function(\"PATTERN\") with .call or .return, process.function(\"PATTERN\") with -x, process(\"PATH\").mark(\"NAME\")",
    )
}

/// The function or mark a user probe names, looked up again in the catalog
/// (which caches binaries, so this is a map lookup).
pub(crate) enum UserSite {
    Function(std::sync::Arc<UserBinary>, usize, bool),
    Mark(std::sync::Arc<UserBinary>, usize),
}

impl UserSite {
    /// The site of `kind`, or `None` for other probes and unreadable binaries.
    pub(crate) fn of(kind: &ProbeKind, catalog: &dyn Catalog) -> Option<Self> {
        match kind {
            ProbeKind::UserFunction {
                path, index, ret, ..
            } => Some(Self::Function(
                catalog.user_binary(path).ok()?,
                *index,
                *ret,
            )),
            ProbeKind::UserMark { path, index, .. } => {
                Some(Self::Mark(catalog.user_binary(path).ok()?, *index))
            }
            _ => None,
        }
    }

    /// The binary the probe sits in.
    pub(crate) fn binary(&self) -> &std::sync::Arc<UserBinary> {
        match self {
            Self::Function(binary, ..) | Self::Mark(binary, _) => binary,
        }
    }

    /// The function, for function probes.
    pub(crate) fn function(&self) -> Option<&UserFunction> {
        match self {
            Self::Function(binary, index, _) => binary.functions.get(*index),
            Self::Mark(..) => None,
        }
    }

    /// The mark, for USDT probes.
    pub(crate) fn mark(&self) -> Option<&UsdtMark> {
        match self {
            Self::Mark(binary, index) => binary.marks.get(*index),
            Self::Function(..) => None,
        }
    }
}

/// Looks up `$name` (target = true) in a user probe: `Some(var)` if found,
/// `Some(None)` for a user probe that lacks it, `None` for other probes.
///
/// Parameters are read from registers at the function's entry, so a
/// `.return` probe offers `$return` but not the parameters (their registers
/// hold other values by then).
pub(crate) fn probe_var(
    kind: &ProbeKind,
    catalog: &dyn Catalog,
    name: &str,
    target: bool,
) -> Option<Option<crate::passes::symbols::ProbeVar>> {
    use crate::passes::symbols::ProbeVar;
    let site = UserSite::of(kind, catalog)?;
    if !target {
        return Some(None);
    }
    let var = match (&site, name) {
        (UserSite::Function(_, _, true), "return") => Some(ProbeVar::UserReturn),
        (UserSite::Function(_, _, true), _) => None,
        (UserSite::Function(..), "$parms") => Some(ProbeVar::UserParms),
        (UserSite::Function(..), _) => site
            .function()?
            .params
            .iter()
            .position(|p| p.name == name)
            .map(|index| ProbeVar::UserParam { index: index as u8 }),
        (UserSite::Mark(..), "$parms") => Some(ProbeVar::MarkParms),
        (UserSite::Mark(..), "$name") => Some(ProbeVar::MarkName),
        (UserSite::Mark(..), "$provider") => Some(ProbeVar::MarkProvider),
        (UserSite::Mark(..), _) => {
            let n: usize = name.strip_prefix("arg")?.parse().ok()?;
            (n >= 1 && n <= site.mark()?.args.len()).then(|| ProbeVar::MarkArg {
                index: (n - 1) as u8,
            })
        }
    };
    Some(var)
}

/// The variables a user probe offers with their types, for hints and
/// `-L`; `None` for other probes.
pub(crate) fn probe_vars(
    kind: &ProbeKind,
    catalog: &dyn Catalog,
) -> Option<Vec<(String, crate::passes::symbols::Ty)>> {
    use crate::passes::symbols::Ty;
    let site = UserSite::of(kind, catalog)?;
    let long = |name: String| (name, Ty::Long);
    Some(match (&site, site.function(), site.mark()) {
        (UserSite::Function(_, _, true), ..) => vec![long("$return".to_string())],
        (_, Some(function), _) => std::iter::once(("$$parms".to_string(), Ty::Str))
            .chain(function.params.iter().map(|p| long(format!("${}", p.name))))
            .collect(),
        (_, _, Some(mark)) => ["$$parms", "$$name", "$$provider"]
            .into_iter()
            .map(|name| (name.to_string(), Ty::Str))
            .chain((1..=mark.args.len()).map(|n| long(format!("$arg{n}"))))
            .collect(),
        _ => Vec::new(),
    })
}

/// The `-L` line of a user probe after its name: each variable with its C
/// type as stap prints it (`$a:int $s:char const*`); `None` for other
/// probes.
pub fn listed_vars(kind: &ProbeKind, catalog: &dyn Catalog) -> Option<String> {
    let site = UserSite::of(kind, catalog)?;
    let mut line = String::new();
    match (&site, site.function(), site.mark()) {
        (UserSite::Function(_, _, true), Some(function), _) => {
            let ty = function
                .return_type
                .as_ref()
                .map_or("long", |t| t.name.as_str());
            line.push_str(&format!(" $return:{ty}"));
        }
        (_, Some(function), _) => {
            for param in &function.params {
                line.push_str(&format!(" ${}:{}", param.name, param.ty.name));
            }
        }
        (_, _, Some(mark)) => {
            for (n, arg) in mark.args.iter().enumerate() {
                let ty = match (arg.size, arg.signed) {
                    (1, true) => "char",
                    (1, false) => "unsigned char",
                    (2, true) => "short",
                    (2, false) => "unsigned short",
                    (4, true) => "int",
                    (4, false) => "unsigned int",
                    (_, true) => "long",
                    (_, false) => "unsigned long",
                };
                line.push_str(&format!(" $arg{}:{ty}", n + 1));
            }
        }
        _ => {}
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{
        CompileOptions,
        catalog::{
            StaticCatalog, Syscall, TypeClass, TypeShape, UsdtArg, UsdtLocation, UserMember,
            UserParam, UserType, ValueLocation,
        },
    };

    /// The recorded syscalls plus one user binary, `/bin/demo`.
    struct DemoCatalog {
        inner: StaticCatalog,
        binary: Arc<UserBinary>,
    }

    impl Catalog for DemoCatalog {
        fn syscalls(&self) -> &[Syscall] {
            self.inner.syscalls()
        }
        fn kernel_version(&self) -> (u32, u32, u32) {
            (6, 18, 0)
        }
        fn arch(&self) -> &str {
            "x86_64"
        }
        fn user_binary(&self, path: &str) -> Result<Arc<UserBinary>, String> {
            match path {
                "/bin/demo" | "demo" | "/proc/1234/exe" => Ok(self.binary.clone()),
                _ => Err("no such file".to_string()),
            }
        }
    }

    fn int(name: &str, reg: u16) -> UserParam {
        UserParam {
            name: name.to_string(),
            ty: UserType::scalar("int", 4, TypeClass::Signed),
            location: ValueLocation::Register(reg),
        }
    }

    fn function(name: &str, file: &str, address: u64, params: Vec<UserParam>) -> UserFunction {
        UserFunction {
            name: name.to_string(),
            file: Some(file.to_string()),
            line: Some(3),
            address,
            file_offset: address,
            params,
            return_type: None,
        }
    }

    /// `struct req { int len; struct req *next; }` as types 0 (the struct)
    /// and 1 (the pointer to it).
    fn req_types() -> (Vec<TypeShape>, UserType) {
        let req = UserType {
            shape: Some(0),
            ..UserType::scalar("struct req", 16, TypeClass::Aggregate)
        };
        let pointer = UserType {
            shape: Some(1),
            ..UserType::scalar("struct req*", 8, TypeClass::Pointer)
        };
        let members = vec![
            UserMember {
                name: "len".to_string(),
                offset: 0,
                ty: UserType::scalar("int", 4, TypeClass::Signed),
                bit_field: false,
            },
            UserMember {
                name: "next".to_string(),
                offset: 8,
                ty: pointer.clone(),
                bit_field: false,
            },
        ];
        (
            vec![TypeShape::Record(members), TypeShape::Pointer(req)],
            pointer,
        )
    }

    fn catalog() -> DemoCatalog {
        let (types, req_pointer) = req_types();
        DemoCatalog {
            inner: StaticCatalog::x86_64((6, 18, 0)),
            binary: Arc::new(UserBinary {
                path: "/bin/demo".to_string(),
                functions: vec![
                    function(
                        "add",
                        "/src/math.c",
                        0x1100,
                        vec![int("a", 112), int("b", 104)],
                    ),
                    function("scale", "/src/math.c", 0x1120, vec![int("x", 112)]),
                    function("sub", "/src/other.c", 0x1140, vec![]),
                    function("main", "/src/main.c", 0x1160, vec![]),
                    function(
                        "handle",
                        "/src/main.c",
                        0x1180,
                        vec![UserParam {
                            name: "r".to_string(),
                            ty: req_pointer,
                            location: ValueLocation::Register(112),
                        }],
                    ),
                ],
                marks: vec![UsdtMark {
                    provider: "demo".to_string(),
                    name: "tick".to_string(),
                    address: 0x1170,
                    file_offset: 0x1170,
                    semaphore: 0,
                    args: vec![UsdtArg {
                        spec: "8@(%rax)".to_string(),
                        size: 8,
                        signed: false,
                        location: UsdtLocation::Memory { base: 80, disp: 0 },
                    }],
                }],
                has_debug_info: true,
                named_types: [(
                    "struct req".to_string(),
                    UserType {
                        shape: Some(0),
                        ..UserType::scalar("struct req", 16, TypeClass::Aggregate)
                    },
                )]
                .into(),
                types,
            }),
        }
    }

    fn resolved(point: &str) -> Result<Vec<String>, Vec<Diagnostic>> {
        let catalog = catalog();
        let source = format!("probe {point} {{}}");
        let checked = crate::check(&source, &catalog, &CompileOptions::default())?;
        Ok(checked.probes.into_iter().map(|p| p.name).collect())
    }

    fn first_error(source: &str) -> String {
        let errors =
            crate::compile(source, &catalog(), &CompileOptions::default()).expect_err("an error");
        format!("{} / {}", errors[0].message, errors[0].hints.join(" / "))
    }

    #[test]
    fn wildcards_and_files_select_functions() {
        let names = resolved(r#"process("/bin/demo").function("s*")"#).unwrap();
        assert_eq!(
            names,
            [
                r#"process("/bin/demo").function("scale@/src/math.c:3")"#,
                r#"process("/bin/demo").function("sub@/src/other.c:3")"#,
            ]
        );
        let count = |p: &str| resolved(p).map(|n| n.len()).unwrap_or(0);
        assert_eq!(count(r#"process("/bin/demo").function("*")"#), 5);
        assert_eq!(count(r#"process("/bin/demo").function("?dd")"#), 1);
        assert_eq!(count(r#"process("/bin/demo").function("[am]*")"#), 2);
        assert_eq!(count(r#"process("/bin/demo").function("*@math.c")"#), 2);
        assert_eq!(count(r#"process("/bin/demo").function("*@src/m*.c")"#), 4);
        assert_eq!(count(r#"process("/bin/demo").function("s*@other.c")"#), 1);
        assert_eq!(count(r#"process("demo").function("add").return"#), 1);
        assert_eq!(count(r#"process("demo").function("add").call"#), 1);
        assert_eq!(count(r#"process("demo").mark("t*")"#), 1);
        assert_eq!(count(r#"process("demo").provider("demo").mark("tick")"#), 1);
        assert_eq!(count(r#"process("demo").function("nope")?"#), 0);
    }

    #[test]
    fn a_process_id_narrows_the_probe_to_that_process() {
        let source = r#"probe process(1234).function("add").call {}"#;
        let checked = crate::check(source, &catalog(), &CompileOptions::default()).unwrap();
        let probe = &checked.probes[0];
        assert_eq!(
            probe.name,
            r#"process("/bin/demo").function("add@/src/math.c:3").call"#
        );
        assert!(matches!(
            probe.kind,
            ProbeKind::UserFunction {
                pid: Some(1234),
                ret: false,
                ..
            }
        ));
    }

    #[test]
    fn aliases_probe_once_under_the_plainest_name() {
        let mut catalog = catalog();
        let binary = Arc::make_mut(&mut catalog.binary);
        binary
            .functions
            .insert(0, function("__add_alias", "/src/math.c", 0x1100, vec![]));
        let source = r#"probe process("demo").function("*add*") {}"#;
        let checked = crate::check(source, &catalog, &CompileOptions::default()).unwrap();
        let names: Vec<_> = checked.probes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [r#"process("/bin/demo").function("add@/src/math.c:3")"#]
        );
        let source = r#"probe process("demo").function("__add_alias") {}"#;
        let checked = crate::check(source, &catalog, &CompileOptions::default()).unwrap();
        assert_eq!(checked.probes.len(), 1);
    }

    #[test]
    fn plans_read_parameters_from_registers() {
        let bundle = crate::compile(
            r#"probe process("/bin/demo").function("add") { printf("%s(%s) %d\n", probefunc(), $$parms, $b) }"#,
            &catalog(),
            &CompileOptions::default(),
        )
        .unwrap();
        let plan = bundle.probes[0].plan.expect("a kernel probe");
        let regs: Vec<u16> = plan.ops[..plan.n_ops as usize]
            .iter()
            .filter(|op| op.code == wasmtap_abi::OpCode::Reg as u8)
            .map(|op| op.src)
            .collect();
        assert_eq!(regs, [112, 104]);
    }

    #[test]
    fn chains_read_one_pointer_per_op() {
        let bundle = crate::compile(
            r#"probe process("demo").function("handle") { print($r->next->next->len) }
               probe process("demo").mark("tick") { print($arg1) }"#,
            &catalog(),
            &CompileOptions::default(),
        )
        .unwrap();
        let plan = bundle.probes[0].plan.expect("a kernel probe");
        let reads: Vec<(u8, u16, i32, u16)> = plan.ops[..plan.n_ops as usize]
            .iter()
            .filter(|op| op.code == wasmtap_abi::OpCode::UserRead as u8)
            .map(|op| (op.arg, op.src, op.disp, op.len))
            .collect();
        let slot = |i: usize| {
            plan.ops[..plan.n_ops as usize]
                .iter()
                .filter(|op| op.code == wasmtap_abi::OpCode::UserRead as u8)
                .nth(i)
                .map(|op| op.dst)
                .unwrap()
        };
        assert_eq!(
            reads,
            [(0, 112, 8, 8), (1, slot(0), 8, 8), (1, slot(1), 0, 4)]
        );
        let plan = bundle.probes[1].plan.expect("a kernel probe");
        let op = plan.ops[..plan.n_ops as usize]
            .iter()
            .find(|op| op.code == wasmtap_abi::OpCode::UserRead as u8)
            .expect("a memory read");
        assert_eq!((op.arg, op.src, op.disp, op.len), (0, 80, 0, 8));
    }

    #[test]
    fn mistakes_are_diagnosed() {
        assert!(
            first_error(r#"probe process("/bin/demo").function("nope") {}"#)
                .starts_with("probe point 'process(\"/bin/demo\").function(\"nope\")' matches no function of '/bin/demo'")
        );
        assert!(
            first_error(r#"probe process("/bin/nothere").function("*") {}"#)
                .starts_with("cannot read the binary '/bin/nothere': no such file")
        );
        assert!(first_error(r#"probe process.function("*") {}"#).contains("-x PID"));
        assert!(
            first_error(r#"probe process("demo").function("add") { print($c) }"#)
                .contains("available: $$parms $a $b")
        );
        assert!(
            first_error(r#"probe process("demo").function("add").return { print($a) }"#)
                .contains("available: $return")
        );
        assert!(
            first_error(r#"probe process("demo").function("handle") { print($r->size) }"#)
                .starts_with("'struct req' has no member 'size' / its members: len next")
        );
        assert!(
            first_error(r#"probe process("demo").function("add") { print($a->len) }"#)
                .starts_with("'->' needs a struct or a pointer to one, and this is a 'int'")
        );
        assert!(
            first_error(r#"probe process("demo").function("handle") { print($r->len->x) }"#)
                .starts_with("'->' needs a struct or a pointer to one, and this is a 'int'")
        );
        assert!(
            first_error(r#"probe process("demo").function("handle") { print(@cast($r, "struct nope")->len) }"#)
                .starts_with("'/bin/demo' defines no type 'struct nope' / its structs and unions include: struct req")
        );
        assert!(
            first_error(
                r#"probe process("demo").function("handle") { x = 1; print($r->next[x]) }"#
            )
            .starts_with("an index into user memory must be a constant number")
        );
        assert!(
            first_error(r#"probe process("demo").statement("*") {}"#)
                .starts_with("unknown probe point")
        );
    }
}
