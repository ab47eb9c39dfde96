//! Values of user-space probes: function parameters, `$return`, USDT
//! arguments and the members behind them (`$req->next->len`, `@cast`),
//! read from the registers the uprobe saw or from user memory through
//! `UserRead` captures; `$$parms` and the pretty forms (`$$parms$`,
//! `$req$`) formatted as stap does; `probemod()`.
//!
//! A child of `body` (included with `#[path]`) so it extends the body
//! generator with methods instead of widening its interface.
//!
//! # Faults
//! A value read from user memory raises the run-time error `read fault
//! at 0x...` when the kernel could not read it (as stap does, so
//! `try`/`catch` catch it). Pretty-printed values never raise: what cannot
//! be read prints as its address, as stap's `user_string_quoted` does.

use wasm_encoder::{BlockType, ValType};
use wasmtap_abi::{USER_READ_HEADER_LEN, wasm::spec};

use super::{Gen, mem};
use crate::{
    catalog::{TypeClass, TypeShape, UserType},
    diagnostics::Diagnostic,
    passes::{
        resolve::ProbeKind,
        symbols::{ProbeVar, Ty},
        types::Scope,
        uprobe::UserSite,
        userpath::{self, Addr, AddrBase, Place, Value},
    },
    plan::{Capture, ReadFrom},
    span::Span,
    syntax::ast::{Access, Expr},
};

/// Bytes a pretty-printed struct is copied with at most (one `UserRead`);
/// members beyond print as `?`.
const PRETTY_STRUCT_BYTES: u32 = wasmtap_abi::MAX_CTX_FIELD as u32;
/// Nesting depth of pretty-printed structs and arrays; deeper ones print
/// as `{...}`.
const PRETTY_DEPTH: u8 = 3;
/// Array elements a pretty-printed array shows; more print as `...`.
const PRETTY_ELEMENTS: u32 = 16;

/// Whether `ty` is a character (what `char*` and `char[]` strings hold).
fn is_char(ty: &UserType) -> bool {
    ty.size == 1
        && matches!(ty.class, TypeClass::Signed | TypeClass::Unsigned)
        && ty.name.contains("char")
}

impl Gen<'_, '_> {
    /// Pushes the value of a user probe's variable.
    pub(super) fn user_probe_var(&mut self, var: &ProbeVar, span: Span) -> Option<Ty> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        let site = UserSite::of(&self.l.probes[p].kind, self.l.catalog)?;
        match var {
            ProbeVar::UserParam { .. } | ProbeVar::UserReturn | ProbeVar::MarkArg { .. } => {
                let value = self.var_value(&site, var, span)?;
                self.push_value(&value, span)?;
            }
            ProbeVar::UserParms | ProbeVar::MarkParms => self.parms(&site, false, span),
            ProbeVar::MarkName => self.literal(site.mark()?.name.as_bytes()),
            ProbeVar::MarkProvider => self.literal(site.mark()?.provider.as_bytes()),
            _ => return None,
        }
        Some(var.ty())
    }

    /// `probemod()`: the binary of a user probe, `kernel` otherwise.
    pub(super) fn probemod(&mut self) -> Option<Ty> {
        let text = match self.scope {
            Scope::Probe(p) => match &self.l.probes[p].kind {
                ProbeKind::UserFunction { path, .. } | ProbeKind::UserMark { path, .. } => {
                    path.clone()
                }
                _ => "kernel".to_string(),
            },
            Scope::Function(_) => String::new(),
        };
        self.literal(text.as_bytes());
        Some(Ty::Str)
    }

    /// Narrows the u64 register on the stack to the type's width, sign- or
    /// zero-extending as C would convert it to `long`.
    fn extend(&mut self, ty: &UserType) {
        let signed = ty.class == TypeClass::Signed;
        match (ty.size, signed) {
            (1, true) => {
                self.ins().i64_extend8_s();
            }
            (2, true) => {
                self.ins().i64_extend16_s();
            }
            (4, true) => {
                self.ins().i64_extend32_s();
            }
            (1 | 2 | 4, false) => {
                let mask = (1i64 << (8 * ty.size)) - 1;
                self.ins().i64_const(mask).i64_and();
            }
            _ => {}
        }
    }

    /// The value of a user probe's variable, with a diagnostic where it
    /// cannot be read.
    fn var_value(&mut self, site: &UserSite, var: &ProbeVar, span: Span) -> Option<Value> {
        match userpath::var_value(site, var, span)? {
            Ok(value) => Some(value),
            Err(diagnostic) => {
                self.error(diagnostic);
                None
            }
        }
    }

    /// A target expression of a user probe that `userpath` resolves
    /// (`$req->len`, `$p$`, `$a`): pushes its script value. `None` when
    /// the target is not such a value (the caller handles it).
    pub(super) fn user_target(
        &mut self,
        target: &crate::syntax::ast::TargetExpr,
        span: Span,
    ) -> Option<Option<Ty>> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        let kind = &self.l.probes[p].kind;
        if target.pretty && target.path.is_empty() && target.name == "$parms" {
            let site = UserSite::of(kind, self.l.catalog)?;
            self.parms(&site, true, span);
            return Some(Some(Ty::Str));
        }
        let value = userpath::target_value(kind, self.l.catalog, target, span)?;
        Some(self.value_or_error(value, target.pretty, span))
    }

    /// The user value a `user_string()` argument names (`$p->name`,
    /// `@cast(...)->name`, `$s`), if it is one.
    pub(super) fn user_value_arg(&mut self, arg: &Expr) -> Option<Value> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        let kind = &self.l.probes[p].kind;
        let value = match &arg.kind {
            crate::syntax::ast::ExprKind::Target(target) if !target.pretty => {
                userpath::target_value(kind, self.l.catalog, target, arg.span)?
            }
            crate::syntax::ast::ExprKind::AtCall { name, args, path } if name.name == "cast" => {
                userpath::cast_value(kind, self.l.catalog, args, path, arg.span)
            }
            _ => return None,
        };
        value.ok()
    }

    /// `@cast(ptr, "TYPE"[, "PATH"])->path`: pushes the member's value.
    pub(super) fn cast(&mut self, args: &[Expr], path: &[Access], span: Span) -> Option<Ty> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        let kind = self.l.probes[p].kind.clone();
        let value = userpath::cast_value(&kind, self.l.catalog, args, path, span);
        self.value_or_error(value, false, span)
    }

    fn value_or_error(
        &mut self,
        value: Result<Value, Diagnostic>,
        pretty: bool,
        span: Span,
    ) -> Option<Ty> {
        let value = match value {
            Ok(value) => value,
            Err(diagnostic) => {
                self.error(diagnostic);
                return None;
            }
        };
        if pretty {
            self.rt("fmt_begin");
            self.pretty(&value, None, 0, span);
            self.rt("fmt_end");
            return Some(Ty::Str);
        }
        self.push_value(&value, span)?;
        Some(Ty::Long)
    }

    /// `$$parms` (`a=0x3 b=0x4`) or `$$parms$` (`a=3 s="text" r={.len=5}`)
    /// of a function or a mark, as one string.
    fn parms(&mut self, site: &UserSite, pretty: bool, span: Span) {
        let vars: Vec<(String, ProbeVar)> = match (site.function(), site.mark()) {
            (Some(function), _) => function
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name.clone(), ProbeVar::UserParam { index: i as u8 }))
                .collect(),
            (_, Some(mark)) => (0..mark.args.len())
                .map(|i| {
                    (
                        format!("arg{}", i + 1),
                        ProbeVar::MarkArg { index: i as u8 },
                    )
                })
                .collect(),
            _ => Vec::new(),
        };
        self.rt("fmt_begin");
        for (i, (name, var)) in vars.iter().enumerate() {
            let prefix = if i == 0 { "" } else { " " };
            self.fmt_text(&format!("{prefix}{name}="));
            let value = userpath::var_value(site, var, span).and_then(Result::ok);
            match value {
                Some(value) if pretty => self.pretty(&value, None, 0, span),
                Some(value) if value.script_ty(false).is_ok() => {
                    if self.push_value_quiet(&value, span).is_some() {
                        self.fmt_spec(spec::pack(b'x', spec::FLAG_HASH, None, None));
                    }
                }
                _ => self.fmt_text("?"),
            }
        }
        self.rt("fmt_end");
    }

    /// Appends literal text to the string being built.
    fn fmt_text(&mut self, text: &str) {
        self.literal(text.as_bytes());
        self.rt("fmt_lit");
    }

    /// Appends the i64 on the stack with a packed printf spec.
    fn fmt_spec(&mut self, packed: i64) {
        self.ins().i64_const(packed);
        self.rt("fmt_i64");
    }

    /// Pushes a scalar (or an array's address) as the script's long,
    /// raising `read fault` when its memory was unreadable.
    fn push_value(&mut self, value: &Value, span: Span) -> Option<()> {
        if let Err(message) = value.script_ty(false) {
            self.error(Diagnostic::error(message, span, "not a script value"));
            return None;
        }
        self.push_value_checked(value, span, true)
    }

    /// [`Self::push_value`] for `$$parms`: a fault prints as the value 0
    /// instead of raising, as the rest of the line is still worth having.
    fn push_value_quiet(&mut self, value: &Value, span: Span) -> Option<()> {
        self.push_value_checked(value, span, false)
    }

    fn push_value_checked(&mut self, value: &Value, span: Span, raise: bool) -> Option<()> {
        let array = value.ty.class == TypeClass::Aggregate;
        match &value.place {
            Place::Const(n) => {
                self.ins().i64_const(*n);
            }
            Place::Reg(reg) => {
                let offset = self.capture(Capture::Reg(*reg), span)?;
                self.load_field(offset);
                self.extend(&value.ty);
            }
            Place::Mem(addr) if array => {
                // An array is its address: the base plus the displacement.
                match &addr.base {
                    AddrBase::Reg(reg) => {
                        let offset = self.capture(Capture::Reg(*reg), span)?;
                        self.load_field(offset);
                    }
                    AddrBase::Loaded(pointer) => {
                        let slot = self.read_slot(pointer, 8, span)?;
                        if raise {
                            self.raise_on_fault(slot, span);
                        }
                        self.load_field(slot + USER_READ_HEADER_LEN as u16);
                    }
                }
                self.ins().i64_const(addr.disp).i64_add();
            }
            Place::Mem(addr) => {
                let size = value.ty.size.clamp(1, 8) as u16;
                let slot = self.read_slot(addr, size, span)?;
                if raise {
                    self.raise_on_fault(slot, span);
                }
                self.load_scalar(slot + USER_READ_HEADER_LEN as u16, &value.ty);
            }
        }
        Some(())
    }

    /// The record offset of a `UserRead` of `len` bytes at `addr`, with
    /// one more `UserRead` per pointer the base goes through.
    fn read_slot(&mut self, addr: &Addr, len: u16, span: Span) -> Option<u16> {
        let base = self.read_base(&addr.base, span)?;
        let disp = self.displacement(addr.disp, span)?;
        self.capture(Capture::UserRead { base, disp, len }, span)
    }

    fn read_base(&mut self, base: &AddrBase, span: Span) -> Option<ReadFrom> {
        Some(match base {
            AddrBase::Reg(reg) => ReadFrom::Reg(*reg),
            AddrBase::Loaded(pointer) => ReadFrom::Slot(self.read_slot(pointer, 8, span)?),
        })
    }

    fn displacement(&mut self, disp: i64, span: Span) -> Option<i32> {
        match i32::try_from(disp) {
            Ok(disp) => Some(disp),
            Err(_) => {
                self.error(Diagnostic::error(
                    format!("offset {disp} is too far from its base to read"),
                    span,
                    "too far",
                ));
                None
            }
        }
    }

    /// Raises `read fault at 0x...` when the `UserRead` slot at `slot`
    /// holds a fault.
    fn raise_on_fault(&mut self, slot: u16, span: Span) {
        self.raise_if_faulted(slot, "read fault", span);
    }

    /// Raises `WHAT at 0x<address>` (stap's wording) when the read slot at
    /// `slot` holds a fault.
    fn raise_if_faulted(&mut self, slot: u16, what: &str, span: Span) {
        let rec = self.l.g_rec;
        self.ins()
            .global_get(rec)
            .i32_load(mem(slot.into(), 2))
            .i32_const(0)
            .i32_lt_s();
        self.open(BlockType::Empty, b'i');
        self.rt("fmt_begin");
        self.fmt_text(&format!("{what} at 0x"));
        self.load_field(slot + 8);
        self.fmt_spec(spec::pack(b'x', spec::FLAG_ZERO, Some(16), None));
        self.rt("fmt_end");
        self.raise(span);
        self.close();
    }

    /// Opens an `if` that runs when the read slot at `slot` holds data;
    /// the caller emits the readable branch, `else`, and closes it.
    fn if_readable(&mut self, slot: u16) {
        let rec = self.l.g_rec;
        self.ins()
            .global_get(rec)
            .i32_load(mem(slot.into(), 2))
            .i32_const(0)
            .i32_ge_s();
        self.open(BlockType::Empty, b'i');
    }

    /// Pushes the scalar of type `ty` at record offset `offset`, extended
    /// to i64 as C converts it to `long`.
    fn load_scalar(&mut self, offset: u16, ty: &UserType) {
        let rec = self.l.g_rec;
        let signed = ty.class == TypeClass::Signed;
        let at = mem(offset.into(), 0);
        let mut ins = self.ins();
        ins.global_get(rec);
        match (ty.size, signed) {
            (1, true) => ins.i64_load8_s(at),
            (1, false) => ins.i64_load8_u(at),
            (2, true) => ins.i64_load16_s(at),
            (2, false) => ins.i64_load16_u(at),
            (4, true) => ins.i64_load32_s(at),
            (4, false) => ins.i64_load32_u(at),
            _ => ins.i64_load(at),
        };
    }

    /// Pushes the user string `value` (a `char*` or a `char` array) names,
    /// at most `max` bytes, raising `user string copy fault` when it
    /// cannot be read (stap's `user_string`).
    pub(super) fn user_string_value(&mut self, value: &Value, max: u16, span: Span) -> Option<Ty> {
        let slot = self.string_slot(value, max, span)?;
        self.raise_if_faulted(slot, "user string copy fault", span);
        self.string_of_slot(slot);
        Some(Ty::Str)
    }

    /// The `UserStrAt` slot of the string `value` points at or holds.
    fn string_slot(&mut self, value: &Value, max: u16, span: Span) -> Option<u16> {
        let (base, disp) = match (&value.place, value.ty.class) {
            (Place::Reg(reg), TypeClass::Pointer | TypeClass::Signed | TypeClass::Unsigned) => {
                (ReadFrom::Reg(*reg), 0)
            }
            (Place::Mem(addr), TypeClass::Pointer | TypeClass::Signed | TypeClass::Unsigned) => {
                (ReadFrom::Slot(self.read_slot(addr, 8, span)?), 0)
            }
            (Place::Mem(addr), TypeClass::Aggregate) => (
                self.read_base(&addr.base, span)?,
                self.displacement(addr.disp, span)?,
            ),
            _ => {
                self.error(
                    Diagnostic::error(
                        format!(
                            "a '{}' does not point at a string the kernel can copy",
                            value.ty.name
                        ),
                        span,
                        "not a string",
                    )
                    .with_hint("pass a char* or a char array"),
                );
                return None;
            }
        };
        self.capture(Capture::UserStrAt { base, disp, max }, span)
    }

    /// Pushes the string of a readable `UserStrAt` slot.
    fn string_of_slot(&mut self, slot: u16) {
        let rec = self.l.g_rec;
        let status = self.temp(ValType::I32);
        self.ins()
            .global_get(rec)
            .i32_load(mem(slot.into(), 2))
            .local_set(status);
        self.record_str(i32::from(slot) + USER_READ_HEADER_LEN as i32, status);
    }

    /// Appends the quoted string on the stack.
    fn fmt_quoted(&mut self) {
        self.ins().i64_const(0).i64_const(1).i64_const(0);
        self.rt("text_strn");
        self.rt("fmt_lit");
    }

    /// Appends `value` pretty-printed as stap's `$var$` does: integers in
    /// decimal, pointers in hex, `char*` and `char` arrays as quoted
    /// strings, structs as `{.a=1, .b=2}` (a pointer to a struct at the
    /// top shows the struct), other arrays as `[1, 2]`. `copied` is the
    /// record offset where the value's bytes already sit, when an
    /// enclosing struct was copied whole.
    fn pretty(&mut self, value: &Value, copied: Option<u16>, depth: u8, span: Span) {
        let binary = self.user_binary();
        let shape = binary
            .as_ref()
            .and_then(|b| userpath::shape(b, &value.ty).cloned());
        match (value.ty.class, shape) {
            (TypeClass::Float, _) => self.fmt_text("?"),
            (TypeClass::Pointer, Some(TypeShape::Pointer(target))) if is_char(&target) => {
                self.pretty_string(value, copied, span);
            }
            (TypeClass::Pointer, Some(TypeShape::Pointer(target)))
                if depth == 0
                    && target.class == TypeClass::Aggregate
                    && binary.as_ref().is_some_and(|b| {
                        matches!(userpath::shape(b, &target), Some(TypeShape::Record(_)))
                    }) =>
            {
                let Some(base) = self.pointer_base(value, span) else {
                    return;
                };
                let pointee = Value {
                    place: Place::Mem(Addr { base, disp: 0 }),
                    ty: target,
                };
                self.pretty(&pointee, None, depth + 1, span);
            }
            (TypeClass::Signed | TypeClass::Unsigned | TypeClass::Pointer, _) => {
                let conv = match value.ty.class {
                    TypeClass::Signed => spec::pack(b'd', 0, None, None),
                    TypeClass::Unsigned => spec::pack(b'u', 0, None, None),
                    _ => spec::pack(b'x', spec::FLAG_HASH, None, None),
                };
                match copied {
                    Some(offset) => self.load_scalar(offset, &value.ty),
                    None => {
                        if self.push_value_quiet(value, span).is_none() {
                            return;
                        }
                    }
                }
                self.fmt_spec(conv);
            }
            (TypeClass::Aggregate, Some(TypeShape::Array { element, count })) => {
                if is_char(&element) {
                    self.pretty_string(value, copied, span);
                } else {
                    self.pretty_array(value, &element, count, copied, depth, span);
                }
            }
            (TypeClass::Aggregate, Some(TypeShape::Record(members))) => {
                if depth >= PRETTY_DEPTH {
                    self.fmt_text("{...}");
                    return;
                }
                let Place::Mem(addr) = &value.place else {
                    self.fmt_text("{...}");
                    return;
                };
                let copied = match copied {
                    Some(offset) => offset,
                    None => {
                        let len = value.ty.size.min(PRETTY_STRUCT_BYTES) as u16;
                        let Some(slot) = self.read_slot(addr, len, span) else {
                            return;
                        };
                        self.if_readable(slot);
                        self.pretty_members(&members, addr, slot + 16, len, depth, span);
                        self.ins().else_();
                        self.fmt_text("0x");
                        self.load_field(slot + 8);
                        self.fmt_spec(spec::pack(b'x', 0, None, None));
                        self.close();
                        return;
                    }
                };
                let len = value.ty.size.min(PRETTY_STRUCT_BYTES) as u16;
                self.pretty_members(&members, addr, copied, len, depth, span);
            }
            _ => self.fmt_text("?"),
        }
    }

    /// `{.a=1, .b=2}` from a struct copied to record offset `copied`.
    fn pretty_members(
        &mut self,
        members: &[crate::catalog::UserMember],
        addr: &Addr,
        copied: u16,
        len: u16,
        depth: u8,
        span: Span,
    ) {
        self.fmt_text("{");
        let mut first = true;
        for member in members {
            if !first {
                self.fmt_text(", ");
            }
            first = false;
            if !member.name.is_empty() {
                self.fmt_text(&format!(".{}=", member.name));
            }
            let inside = member.offset + member.ty.size <= u32::from(len);
            let value = Value {
                place: Place::Mem(Addr {
                    base: addr.base.clone(),
                    disp: addr.disp + i64::from(member.offset),
                }),
                ty: member.ty.clone(),
            };
            if member.bit_field || !inside {
                self.fmt_text("?");
            } else {
                self.pretty(&value, Some(copied + member.offset as u16), depth + 1, span);
            }
        }
        self.fmt_text("}");
    }

    fn pretty_array(
        &mut self,
        value: &Value,
        element: &UserType,
        count: u32,
        copied: Option<u16>,
        depth: u8,
        span: Span,
    ) {
        let (Some(offset), Place::Mem(addr)) = (copied, &value.place) else {
            // Only arrays inside a copied struct are shown.
            self.fmt_text("[...]");
            return;
        };
        self.fmt_text("[");
        for i in 0..count.min(PRETTY_ELEMENTS) {
            if i > 0 {
                self.fmt_text(", ");
            }
            let at = i * element.size;
            let item = Value {
                place: Place::Mem(Addr {
                    base: addr.base.clone(),
                    disp: addr.disp + i64::from(at),
                }),
                ty: element.clone(),
            };
            self.pretty(&item, Some(offset + at as u16), depth + 1, span);
        }
        if count > PRETTY_ELEMENTS {
            self.fmt_text(", ...");
        }
        self.fmt_text("]");
    }

    /// A quoted string for a `char*` or a `char` array; an unreadable one
    /// prints as its address.
    fn pretty_string(&mut self, value: &Value, copied: Option<u16>, span: Span) {
        let max = self.l.options.capture_string_bytes;
        if let (Some(offset), TypeClass::Aggregate) = (copied, value.ty.class) {
            // A char array inside a copied struct: the bytes are here.
            let rec = self.l.g_rec;
            self.ins()
                .global_get(rec)
                .i32_const(i32::from(offset))
                .i32_add()
                .i32_const(value.ty.size as i32);
            self.rt("str_from_cstr");
            self.fmt_quoted();
            return;
        }
        // A char* (even one inside a copied struct) is read again as a
        // pointer by its own op, so the string op can take it as a base.
        let Some(slot) = self.string_slot(value, max, span) else {
            return;
        };
        self.if_readable(slot);
        self.string_of_slot(slot);
        self.fmt_quoted();
        self.ins().else_();
        self.fmt_text("0x");
        self.load_field(slot + 8);
        self.fmt_spec(spec::pack(b'x', 0, None, None));
        self.close();
    }

    /// The base address a pointer value gives (a pointer in memory is read
    /// by its own op, even inside a copied struct).
    fn pointer_base(&mut self, value: &Value, span: Span) -> Option<AddrBase> {
        match &value.place {
            Place::Reg(reg) => Some(AddrBase::Reg(*reg)),
            Place::Mem(addr) => Some(AddrBase::Loaded(Box::new(addr.clone()))),
            Place::Const(_) => {
                self.error(Diagnostic::error(
                    "a constant is not a pointer the kernel can follow",
                    span,
                    "not a pointer",
                ));
                None
            }
        }
    }

    /// The binary of the current user probe.
    fn user_binary(&self) -> Option<std::sync::Arc<crate::catalog::UserBinary>> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        UserSite::of(&self.l.probes[p].kind, self.l.catalog).map(|site| site.binary().clone())
    }
}
