//! Target expressions of user probes that reach into memory:
//! `$req->len`, `$req->next->name`, `$p->inner->x` (an embedded struct:
//! stap writes `->` for both), `$p->arr[2]`, and
//! `@cast(ptr, "struct req"[, "PATH"])->member`, resolved against the
//! binary's DWARF types into the [`Place`] the value sits at when the probe
//! fires.
//!
//! The type checker resolves a path to report mistakes and learn the
//! script type; the code generator resolves it again and turns each
//! [`AddrBase::Loaded`] into one `UserRead` capture, so the kernel follows
//! `$a->b->c` one dereference per plan op.

use std::sync::Arc;

use crate::{
    catalog::{
        Catalog, TypeClass, TypeShape, UsdtLocation, UserBinary, UserMember, UserType,
        ValueLocation,
    },
    diagnostics::Diagnostic,
    passes::{
        resolve::ProbeKind,
        symbols::{ProbeVar, Ty},
        uprobe::{UserSite, probe_var},
    },
    span::Span,
    syntax::ast::{Access, Expr, ExprKind, TargetExpr, UnaryOp},
};

/// Byte offset of `ax` (the return value register) in x86_64 `pt_regs`.
pub(crate) const PT_REGS_AX: u16 = 80;

/// `pt_regs` offsets of the syscall argument registers (di, si, dx, r10,
/// r8, r9), for `@cast` on a syscall argument.
const SYSCALL_ARG_REGS: [u16; 6] = [112, 104, 96, 56, 72, 64];

/// Where a value is when the probe fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// In a register (its `pt_regs` offset).
    Reg(u16),
    /// In user memory.
    Mem(Addr),
    /// A constant (a USDT argument the compiler folded).
    Const(i64),
}

/// A user address: a base plus a displacement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Addr {
    pub base: AddrBase,
    pub disp: i64,
}

/// Where the base of an [`Addr`] comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddrBase {
    /// A register's value (a pointer parameter, `sp`).
    Reg(u16),
    /// The pointer stored in user memory at this address.
    Loaded(Box<Addr>),
}

/// A value of a user probe: where it is and its C type.
#[derive(Clone, Debug)]
pub(crate) struct Value {
    pub place: Place,
    pub ty: UserType,
}

impl Value {
    /// The type a script sees: strings for pretty-printed values (`$p$`),
    /// longs for integers, pointers and arrays (an array is its address,
    /// as in stap).
    ///
    /// # Errors
    /// Whole structs and floating-point values, which are not script
    /// values.
    pub(crate) fn script_ty(&self, pretty: bool) -> Result<Ty, String> {
        if pretty {
            return Ok(Ty::Str);
        }
        match self.ty.class {
            TypeClass::Signed | TypeClass::Unsigned | TypeClass::Pointer => Ok(Ty::Long),
            TypeClass::Aggregate if self.is_array() => Ok(Ty::Long),
            TypeClass::Aggregate => Err(format!(
                "'{}' is a whole struct, not a number: read one of its members, or print it with a trailing '$'",
                self.ty.name
            )),
            TypeClass::Float => Err(format!(
                "'{}' is a floating-point value, which scripts cannot hold",
                self.ty.name
            )),
        }
    }

    fn is_array(&self) -> bool {
        self.ty.name.ends_with(']')
    }
}

/// The value a target expression of a user probe names, its path
/// followed; `None` when the probe is not a user probe or the variable is
/// not one `$name` with a path can start from (those keep their own
/// handling).
pub(crate) fn target_value(
    kind: &ProbeKind,
    catalog: &dyn Catalog,
    target: &TargetExpr,
    span: Span,
) -> Option<Result<Value, Diagnostic>> {
    let site = UserSite::of(kind, catalog)?;
    let var = probe_var(kind, catalog, &target.name, true)??;
    let root = var_value(&site, &var, span)?;
    Some(root.and_then(|root| walk(site.binary(), root, &target.path)))
}

/// The value of a user probe's variable; `None` for variables that are
/// not values in memory or registers (`$$parms`, `$$name`).
pub(crate) fn var_value(
    site: &UserSite,
    var: &ProbeVar,
    span: Span,
) -> Option<Result<Value, Diagnostic>> {
    let unavailable = |name: &str, what: &str| {
        Diagnostic::error(
            format!("'${name}' ({what}) cannot be read at this probe"),
            span,
            "not available",
        )
        .with_hint("wasmtap reads integer and pointer values from registers and user memory; floating point values and values the compiler optimized away are not available")
    };
    Some(match var {
        ProbeVar::UserParam { index } => {
            let param = site.function()?.params.get(*index as usize)?;
            match param.location {
                ValueLocation::Register(reg) => Ok(Value {
                    place: Place::Reg(reg),
                    ty: param.ty.clone(),
                }),
                ValueLocation::Memory { base, disp } => Ok(Value {
                    place: Place::Mem(Addr {
                        base: AddrBase::Reg(base),
                        disp: disp.into(),
                    }),
                    ty: param.ty.clone(),
                }),
                ValueLocation::Unavailable => Err(unavailable(&param.name, &param.ty.name)),
            }
        }
        ProbeVar::UserReturn => Ok(Value {
            place: Place::Reg(PT_REGS_AX),
            ty: site
                .function()
                .and_then(|f| f.return_type.clone())
                .unwrap_or_else(|| UserType::scalar("long", 8, TypeClass::Signed)),
        }),
        ProbeVar::MarkArg { index } => {
            let arg = site.mark()?.args.get(*index as usize)?;
            let class = if arg.signed {
                TypeClass::Signed
            } else {
                TypeClass::Unsigned
            };
            let ty = UserType::scalar("", arg.size.into(), class);
            let place = match arg.location {
                UsdtLocation::Register(reg) => Place::Reg(reg),
                UsdtLocation::Memory { base, disp } => Place::Mem(Addr {
                    base: AddrBase::Reg(base),
                    disp,
                }),
                UsdtLocation::Constant(value) => Place::Const(value),
                UsdtLocation::Unsupported => {
                    return Some(Err(Diagnostic::error(
                        format!(
                            "argument {} of mark '{}' is an operand wasmtap cannot read ('{}')",
                            index + 1,
                            site.mark()?.name,
                            arg.spec
                        ),
                        span,
                        "cannot be captured",
                    )
                    .with_hint("wasmtap reads registers, constants and base+displacement memory operands; index registers and high-byte registers are not supported")));
                }
            };
            Ok(Value { place, ty })
        }
        _ => return None,
    })
}

/// `@cast(ptr, "TYPE"[, "PATH"])` followed by `path`: the struct `ptr`
/// points at, typed from the DWARF of `PATH` (default: the probe's own
/// binary).
///
/// # Errors
/// A first argument the kernel cannot read at probe time, an unknown
/// binary or type, or a bad member path.
pub(crate) fn cast_value(
    kind: &ProbeKind,
    catalog: &dyn Catalog,
    args: &[Expr],
    path: &[Access],
    span: Span,
) -> Result<Value, Diagnostic> {
    let (Some(pointer), Some(type_arg)) = (args.first(), args.get(1)) else {
        return Err(Diagnostic::error(
            "@cast takes a pointer and a type name",
            span,
            "missing arguments",
        )
        .with_hint(r#"write @cast($ptr, "struct NAME")->member, or @cast($ptr, "struct NAME", "/path/to/binary")->member"#));
    };
    let ExprKind::Str(type_name) = &type_arg.kind else {
        return Err(Diagnostic::error(
            "@cast's type must be a string literal",
            type_arg.span,
            "not a literal",
        )
        .with_hint(r#"e.g. "struct req""#));
    };
    let binary = match args.get(2).map(|a| (&a.kind, a.span)) {
        Some((ExprKind::Str(module), module_span)) => {
            catalog.user_binary(module).map_err(|reason| {
                Diagnostic::error(
                    format!("cannot read the binary '{module}': {reason}"),
                    module_span,
                    "this binary",
                )
            })?
        }
        Some((_, module_span)) => {
            return Err(Diagnostic::error(
                "@cast's module must be a string literal",
                module_span,
                "not a literal",
            ));
        }
        None => match UserSite::of(kind, catalog) {
            Some(site) => site.binary().clone(),
            None => {
                return Err(Diagnostic::error(
                    "@cast outside a user-space probe needs the binary that defines the type",
                    span,
                    "which binary?",
                )
                .with_hint(r#"name it: @cast($ptr, "struct NAME", "/path/to/binary")"#));
            }
        },
    };
    let pointer_value = cast_operand(kind, catalog, pointer)?;
    if !matches!(
        pointer_value.ty.class,
        TypeClass::Pointer | TypeClass::Signed | TypeClass::Unsigned
    ) {
        return Err(Diagnostic::error(
            format!(
                "@cast needs an address, and this is a '{}'",
                pointer_value.ty.name
            ),
            pointer.span,
            "not an address",
        ));
    }
    let Some(ty) = binary.named_types.get(type_name.as_str()) else {
        let similar: Vec<&str> = binary
            .named_types
            .keys()
            .filter(|name| name.starts_with("struct ") || name.starts_with("union "))
            .take(12)
            .map(String::as_str)
            .collect();
        return Err(Diagnostic::error(
            format!("'{}' defines no type '{type_name}'", binary.path),
            type_arg.span,
            "unknown type",
        )
        .with_hint(if similar.is_empty() {
            "the binary has no DWARF types: build it with -g".to_string()
        } else {
            format!("its structs and unions include: {}", similar.join(", "))
        }));
    };
    let place = Place::Mem(Addr {
        base: base_of(&pointer_value.place, pointer.span)?,
        disp: 0,
    });
    walk(
        &binary,
        Value {
            place,
            ty: ty.clone(),
        },
        path,
    )
}

/// The value `@cast` reinterprets: a target expression, possibly with a
/// path, or a syscall argument; the kernel must read it when the probe
/// fires.
fn cast_operand(kind: &ProbeKind, catalog: &dyn Catalog, expr: &Expr) -> Result<Value, Diagnostic> {
    let not_capturable = || {
        Diagnostic::error(
            "@cast needs a value the kernel can read when the probe fires",
            expr.span,
            "not a probe value",
        )
        .with_hint("cast a target variable such as $ptr or $req->next: the struct is copied when the event fires, before the handler runs")
    };
    let ExprKind::Target(target) = &expr.kind else {
        return Err(not_capturable());
    };
    if let Some(value) = target_value(kind, catalog, target, expr.span) {
        return value;
    }
    match crate::passes::symbols::probe_var(kind, catalog, &target.name, true) {
        Some(ProbeVar::Arg { index }) if target.path.is_empty() => Ok(Value {
            place: Place::Reg(
                *SYSCALL_ARG_REGS
                    .get(index as usize)
                    .ok_or_else(not_capturable)?,
            ),
            ty: UserType::scalar("long", 8, TypeClass::Unsigned),
        }),
        _ => Err(not_capturable()),
    }
}

/// Follows `path` from `value`.
///
/// # Errors
/// A member the type lacks (with the members it has), `->` on a value
/// that is neither a struct nor a pointer to one, or an index that is not
/// a constant.
pub(crate) fn walk(
    binary: &Arc<UserBinary>,
    mut value: Value,
    path: &[Access],
) -> Result<Value, Diagnostic> {
    for access in path {
        value = match access {
            Access::Member(ident) => {
                let (addr, record, members) = record_of(binary, &value, ident.span)?;
                let Some((offset, ty)) = find_member(binary, members, &ident.name) else {
                    return Err(unknown_member(
                        binary,
                        record,
                        members,
                        &ident.name,
                        ident.span,
                    ));
                };
                Value {
                    place: Place::Mem(Addr {
                        base: addr.base,
                        disp: addr.disp + i64::from(offset),
                    }),
                    ty,
                }
            }
            Access::Index(index) => {
                let n = constant(index).ok_or_else(|| {
                    Diagnostic::error(
                        "an index into user memory must be a constant number",
                        index.span,
                        "not a constant",
                    )
                    .with_hint("the kernel copies the element when the probe fires, so its offset must be known at compile time")
                })?;
                let (element, place) = match shape(binary, &value.ty) {
                    Some(TypeShape::Array { element, .. }) => {
                        let Place::Mem(addr) = value.place else {
                            return Err(not_in_memory(&value, index.span));
                        };
                        (element.clone(), addr)
                    }
                    Some(TypeShape::Pointer(element)) => (
                        element.clone(),
                        Addr {
                            base: base_of(&value.place, index.span)?,
                            disp: 0,
                        },
                    ),
                    _ => {
                        return Err(Diagnostic::error(
                            format!(
                                "'[{n}]' needs an array or a pointer, and this is a '{}'",
                                value.ty.name
                            ),
                            index.span,
                            "cannot index",
                        ));
                    }
                };
                if element.size == 0 {
                    return Err(Diagnostic::error(
                        format!(
                            "cannot index a '{}': its element size is unknown",
                            value.ty.name
                        ),
                        index.span,
                        "cannot index",
                    ));
                }
                Value {
                    place: Place::Mem(Addr {
                        base: place.base,
                        disp: place.disp + n * i64::from(element.size),
                    }),
                    ty: element,
                }
            }
        };
    }
    Ok(value)
}

/// Where the struct `value` is or points at sits in memory, its type and
/// its members.
fn record_of<'b>(
    binary: &'b UserBinary,
    value: &'b Value,
    span: Span,
) -> Result<(Addr, &'b UserType, &'b [UserMember]), Diagnostic> {
    let not_record = |ty: &UserType| {
        Diagnostic::error(
            format!("'->' needs a struct or a pointer to one, and this is a '{ty}'", ty = ty.name),
            span,
            "no members here",
        )
        .with_hint("'->' reads a member of a struct, or of the struct a pointer points at; cast a 'void*' first: @cast($p, \"struct NAME\")->member")
    };
    match (value.ty.class, shape(binary, &value.ty)) {
        (TypeClass::Pointer, Some(TypeShape::Pointer(target))) => {
            let Some(TypeShape::Record(members)) = shape(binary, target) else {
                return Err(not_record(&value.ty));
            };
            let addr = Addr {
                base: base_of(&value.place, span)?,
                disp: 0,
            };
            Ok((addr, target, members))
        }
        (TypeClass::Aggregate, Some(TypeShape::Record(members))) => match &value.place {
            Place::Mem(addr) => Ok((addr.clone(), &value.ty, members)),
            _ => Err(not_in_memory(value, span)),
        },
        _ => Err(not_record(&value.ty)),
    }
}

fn not_in_memory(value: &Value, span: Span) -> Diagnostic {
    Diagnostic::error(
        format!(
            "this '{}' was passed in registers, so its members have no address",
            value.ty.name
        ),
        span,
        "not in memory",
    )
}

/// The shape of `ty`, looking incomplete structs (`struct req;` in one
/// unit) up by name among the binary's complete types.
pub(crate) fn shape<'b>(binary: &'b UserBinary, ty: &UserType) -> Option<&'b TypeShape> {
    let id = ty
        .shape
        .or_else(|| binary.named_types.get(&ty.name).and_then(|t| t.shape))?;
    binary.types.get(id as usize)
}

/// The offset and type of member `name`, looking through anonymous structs
/// and unions.
fn find_member(binary: &UserBinary, members: &[UserMember], name: &str) -> Option<(u32, UserType)> {
    for member in members {
        if member.name == name {
            return Some((member.offset, member.ty.clone()));
        }
        if member.name.is_empty()
            && let Some(TypeShape::Record(inner)) = shape(binary, &member.ty)
            && let Some((offset, ty)) = find_member(binary, inner, name)
        {
            return Some((member.offset + offset, ty));
        }
    }
    None
}

/// The member names `->` accepts on a record, anonymous members' included.
pub(crate) fn member_names(binary: &UserBinary, members: &[UserMember]) -> Vec<String> {
    let mut names = Vec::new();
    for member in members {
        if member.name.is_empty() {
            if let Some(TypeShape::Record(inner)) = shape(binary, &member.ty) {
                names.extend(member_names(binary, inner));
            }
        } else {
            names.push(member.name.clone());
        }
    }
    names
}

fn unknown_member(
    binary: &UserBinary,
    record: &UserType,
    members: &[UserMember],
    name: &str,
    span: Span,
) -> Diagnostic {
    let names = member_names(binary, members);
    Diagnostic::error(
        format!("'{}' has no member '{name}'", record.name),
        span,
        "unknown member",
    )
    .with_hint(if names.is_empty() {
        "it has no members".to_string()
    } else {
        format!("its members: {}", names.join(" "))
    })
}

/// The base address a pointer value gives.
fn base_of(place: &Place, span: Span) -> Result<AddrBase, Diagnostic> {
    match place {
        Place::Reg(reg) => Ok(AddrBase::Reg(*reg)),
        Place::Mem(addr) => Ok(AddrBase::Loaded(Box::new(addr.clone()))),
        Place::Const(_) => Err(Diagnostic::error(
            "this value is a constant, not a pointer the kernel can follow",
            span,
            "not a pointer",
        )),
    }
}

/// The value of a constant index (`2`, `-1`).
fn constant(expr: &Expr) -> Option<i64> {
    match &expr.kind {
        ExprKind::Int(n) => Some(*n),
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => constant(operand).map(|n| -n),
        _ => None,
    }
}
