//! Values of user-space probes: function parameters and `$return` read
//! from the registers the uprobe saw, `$$parms` formatted as stap does,
//! USDT arguments decoded from `.note.stapsdt`, and `probemod()`.
//!
//! A child of `body` (included with `#[path]`) so it extends the body
//! generator with methods instead of widening its interface.

use wasmtap_abi::wasm::spec;

use super::Gen;
use crate::{
    catalog::{TypeClass, UsdtLocation, UserType, ValueLocation},
    diagnostics::Diagnostic,
    passes::{
        resolve::ProbeKind,
        symbols::{ProbeVar, Ty},
        types::Scope,
        uprobe::UserSite,
    },
    plan::Capture,
    span::Span,
};

/// Byte offset of `ax` (the return value register) in x86_64 `pt_regs`.
const PT_REGS_AX: u16 = 80;

impl Gen<'_, '_> {
    /// Pushes the value of a user probe's variable.
    pub(super) fn user_probe_var(&mut self, var: &ProbeVar, span: Span) -> Option<Ty> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        let site = UserSite::of(&self.l.probes[p].kind, self.l.catalog)?;
        match var {
            ProbeVar::UserParam { index } => {
                let function = site.function()?;
                let param = function.params.get(*index as usize)?;
                let readable = self.register_value(param.location, &param.ty, span);
                if readable.is_none() {
                    self.error(
                        Diagnostic::error(
                            format!(
                                "parameter '${}' ({}) of '{}' is not in an integer register at the function's entry",
                                param.name, param.ty.name, function.name
                            ),
                            span,
                            "cannot be captured",
                        )
                        .with_hint("wasmtap reads parameters from the registers the uprobe saw; floating point, by-value structs and stack-passed arguments are not supported yet"),
                    );
                }
            }
            ProbeVar::UserParms => {
                let function = site.function()?;
                self.rt("fmt_begin");
                for (i, param) in function.params.iter().enumerate() {
                    let prefix = if i == 0 { "" } else { " " };
                    self.literal(format!("{prefix}{}=", param.name).as_bytes());
                    self.rt("fmt_lit");
                    self.hex_or_unknown(|g| g.register_value(param.location, &param.ty, span));
                }
                self.rt("fmt_end");
            }
            ProbeVar::UserReturn => {
                let ty = site.function().and_then(|f| f.return_type.clone());
                let ty = ty.unwrap_or(UserType {
                    name: "long".to_string(),
                    size: 8,
                    class: TypeClass::Signed,
                });
                let offset = self.capture(Capture::Reg(PT_REGS_AX), span)?;
                self.load_field(offset);
                self.extend(&ty);
            }
            ProbeVar::MarkArg { index } => {
                let mark = site.mark()?;
                let arg = mark.args.get(*index as usize)?;
                if self
                    .usdt_value(arg.location, arg.size, arg.signed, span)
                    .is_none()
                {
                    self.error(
                        Diagnostic::error(
                            format!(
                                "argument {} of mark '{}' is an operand wasmtap cannot read yet ('{}'; it reads registers and constants)",
                                index + 1,
                                mark.name,
                                arg.spec
                            ),
                            span,
                            "cannot be captured",
                        )
                        .with_hint("build the program with optimization (-O2) so the argument is passed in a register"),
                    );
                }
            }
            ProbeVar::MarkParms => {
                let mark = site.mark()?;
                self.rt("fmt_begin");
                for (i, arg) in mark.args.iter().enumerate() {
                    let prefix = if i == 0 { "" } else { " " };
                    self.literal(format!("{prefix}arg{}=", i + 1).as_bytes());
                    self.rt("fmt_lit");
                    self.hex_or_unknown(|g| g.usdt_value(arg.location, arg.size, arg.signed, span));
                }
                self.rt("fmt_end");
            }
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

    /// Appends `%#x` of the value `push` leaves on the stack, or `?` when it
    /// pushes nothing (the value cannot be captured).
    fn hex_or_unknown(&mut self, push: impl FnOnce(&mut Self) -> Option<()>) {
        if push(self).is_some() {
            self.ins()
                .i64_const(spec::pack(b'x', spec::FLAG_HASH, None, None));
            self.rt("fmt_i64");
        } else {
            self.literal(b"?");
            self.rt("fmt_lit");
        }
    }

    /// Pushes a register-held value of type `ty`, or pushes nothing and
    /// returns `None` when it is not in an integer register.
    fn register_value(&mut self, location: ValueLocation, ty: &UserType, span: Span) -> Option<()> {
        let ValueLocation::Register(reg) = location else {
            return None;
        };
        if matches!(ty.class, TypeClass::Float | TypeClass::Aggregate) {
            return None;
        }
        let offset = self.capture(Capture::Reg(reg), span)?;
        self.load_field(offset);
        self.extend(ty);
        Some(())
    }

    /// Pushes a USDT argument, or nothing (`None`) when it is in memory.
    fn usdt_value(
        &mut self,
        location: UsdtLocation,
        size: u8,
        signed: bool,
        span: Span,
    ) -> Option<()> {
        match location {
            UsdtLocation::Constant(value) => {
                self.ins().i64_const(value);
            }
            UsdtLocation::Register(reg) => {
                let offset = self.capture(Capture::Reg(reg), span)?;
                self.load_field(offset);
                let class = if signed {
                    TypeClass::Signed
                } else {
                    TypeClass::Unsigned
                };
                self.extend(&UserType {
                    name: String::new(),
                    size: size.into(),
                    class,
                });
            }
            UsdtLocation::Memory { .. } | UsdtLocation::Unsupported => return None,
        }
        Some(())
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
}
