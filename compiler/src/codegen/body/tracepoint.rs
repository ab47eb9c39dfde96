//! Reading tracepoint entries in handlers: `$field` values captured from
//! the trace entry at its format offsets, `sig_name`, and the guards that
//! narrow a tracepoint to what a tapset alias means (`process.end` is the
//! last thread of a process, not every exiting thread).

use wasm_encoder::{BlockType, ValType};
use wasmtap_abi::wasm::spec;

use super::{Gen, mem};
use crate::{
    catalog::{FieldKind, TracepointField},
    diagnostics::Diagnostic,
    passes::{
        resolve::ProbeKind,
        symbols::Ty,
        tracepoints::{CLONE_THREAD, TapsetAlias},
        types::Scope,
    },
    plan::Capture,
    span::Span,
};

impl Gen<'_, '_> {
    /// The tracepoint field `index` of the current probe.
    fn tracepoint_field_def(&self, index: usize) -> Option<TracepointField> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        match &self.l.probes[p].kind {
            ProbeKind::Tracepoint { tracepoint, .. } => tracepoint.fields.get(index).cloned(),
            _ => None,
        }
    }

    /// Pushes field `index` of the trace entry: an integer of the field's
    /// width and sign, or a string for `char[]` and `__data_loc` fields.
    pub(super) fn tracepoint_field(&mut self, index: usize, span: Span) -> Option<Ty> {
        let field = self.tracepoint_field_def(index)?;
        let rec = self.l.g_rec;
        match field.kind() {
            FieldKind::Int { bytes, signed } => {
                let capture = Capture::CtxField {
                    src: field.offset,
                    len: u16::from(bytes),
                };
                let offset = u64::from(self.capture(capture, span)?);
                let mut ins = self.ins();
                ins.global_get(rec);
                match (bytes, signed) {
                    (1, true) => ins.i64_load8_s(mem(offset, 0)),
                    (1, false) => ins.i64_load8_u(mem(offset, 0)),
                    (2, true) => ins.i64_load16_s(mem(offset, 1)),
                    (2, false) => ins.i64_load16_u(mem(offset, 1)),
                    (4, true) => ins.i64_load32_s(mem(offset, 2)),
                    (4, false) => ins.i64_load32_u(mem(offset, 2)),
                    _ => ins.i64_load(mem(offset, 3)),
                };
                Some(Ty::Long)
            }
            FieldKind::CharArray => {
                let len = field.size.min(wasmtap_abi::MAX_CTX_FIELD as u16);
                let capture = Capture::CtxField {
                    src: field.offset,
                    len,
                };
                let offset = self.capture(capture, span)?;
                self.ins()
                    .global_get(rec)
                    .i32_const(i32::from(offset))
                    .i32_add()
                    .i32_const(i32::from(len));
                self.rt("str_from_cstr");
                Some(Ty::Str)
            }
            FieldKind::DataLocStr => {
                let max = self.l.options.capture_string_bytes;
                let capture = Capture::CtxDataLoc {
                    src: field.offset,
                    max,
                };
                let offset = self.capture(capture, span)?;
                // The string up to its NUL; an unreadable one (negative
                // status) is empty.
                let status = self.temp(ValType::I32);
                self.ins()
                    .global_get(rec)
                    .i32_load(mem(u64::from(offset), 2))
                    .local_set(status)
                    .global_get(rec)
                    .i32_const(i32::from(offset) + wasmtap_abi::STR_STATUS_LEN as i32)
                    .i32_add()
                    .local_get(status)
                    .i32_const(0)
                    .local_get(status)
                    .i32_const(0)
                    .i32_gt_s()
                    .select()
                    .i32_const(i32::from(max))
                    .local_get(status)
                    .i32_const(i32::from(max))
                    .i32_lt_s()
                    .select();
                self.rt("str_from_cstr");
                Some(Ty::Str)
            }
            FieldKind::Unsupported => {
                self.error(Diagnostic::error(
                    format!(
                        "field '{}' of type '{}' cannot be read yet",
                        field.name, field.c_type
                    ),
                    span,
                    "unsupported field type",
                ));
                None
            }
        }
    }

    /// `$$parms`: each readable field as `name=value`, separated by
    /// spaces; integers in hex and strings quoted, as stap prints them.
    pub(super) fn tracepoint_parms(&mut self, span: Span) -> Option<Ty> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        let ProbeKind::Tracepoint { tracepoint, .. } = &self.l.probes[p].kind else {
            return None;
        };
        let fields: Vec<(usize, String, FieldKind)> = tracepoint
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.kind() != FieldKind::Unsupported)
            .map(|(i, f)| (i, f.name.clone(), f.kind()))
            .collect();
        // Values first: a field read may itself format (none do today),
        // and fmt_begin must bracket only this text.
        let mut values = Vec::new();
        for (index, _, _) in &fields {
            self.tracepoint_field(*index, span)?;
            let value = self.temp(ValType::I64);
            self.ins().local_set(value);
            values.push(value);
        }
        self.rt("fmt_begin");
        for (n, ((_, name, kind), value)) in fields.iter().zip(values).enumerate() {
            let string = !matches!(kind, FieldKind::Int { .. });
            let separator = if n == 0 { "" } else { " " };
            let quote = if string { "\"" } else { "" };
            self.literal(format!("{separator}{name}={quote}").as_bytes());
            self.rt("fmt_lit");
            self.ins().local_get(value);
            if string {
                self.rt("fmt_lit");
                self.literal(b"\"");
                self.rt("fmt_lit");
            } else {
                self.ins()
                    .i64_const(spec::pack(b'x', spec::FLAG_HASH, None, None));
                self.rt("fmt_i64");
            }
        }
        self.rt("fmt_end");
        Some(Ty::Str)
    }

    /// Pushes the name of the signal in field `index` (`sig_name`).
    pub(super) fn signal_name(&mut self, index: usize, span: Span) -> Option<Ty> {
        // The guest's syscall decoders already name signals (`SIGTERM`,
        // `SIGRTMIN+3`) for `argstr`; one table serves both.
        self.rt("fmt_begin");
        self.tracepoint_field(index, span)?;
        self.ins()
            .i32_const(i32::from(wasmtap_abi::sysarg::ArgKind::Signal as u8));
        self.rt("fmt_sysarg");
        self.rt("fmt_end");
        Some(Ty::Str)
    }

    /// A context builtin whose stap meaning in this alias's handler differs
    /// from the task the tracepoint fires in: `process.begin` fires in the
    /// creating task, but stap's `pid()`, `tid()` and `execname()` there
    /// are the new process's.
    pub(super) fn alias_context(&mut self, name: &str) -> Option<Ty> {
        let Scope::Probe(p) = self.scope else {
            return None;
        };
        let ProbeKind::Tracepoint {
            tracepoint,
            alias: Some(TapsetAlias::ProcessBegin),
        } = &self.l.probes[p].kind
        else {
            return None;
        };
        let field = match name {
            "pid" | "tid" => "pid",
            "execname" => "comm",
            _ => return None,
        };
        let index = tracepoint.fields.iter().position(|f| f.name == field)?;
        let span = self.l.probes[p].span;
        self.tracepoint_field(index, span)
    }

    /// Returns early from the handler of `probe` for events its alias does
    /// not cover: new threads for `process.begin`, threads other than a
    /// process's last for `process.end`.
    pub(super) fn tracepoint_prologue(&mut self, probe: usize, span: Span) {
        let ProbeKind::Tracepoint {
            tracepoint,
            alias: Some(alias),
        } = &self.l.probes[probe].kind
        else {
            return;
        };
        let field = |name: &str| tracepoint.fields.iter().position(|f| f.name == name);
        match alias {
            TapsetAlias::ProcessBegin => {
                let Some(flags) = field("clone_flags") else {
                    return;
                };
                self.tracepoint_field(flags, span);
                self.ins()
                    .i64_const(CLONE_THREAD)
                    .i64_and()
                    .i64_const(0)
                    .i64_ne();
            }
            TapsetAlias::ProcessEnd => {
                let Some(group_dead) = field("group_dead") else {
                    return;
                };
                self.tracepoint_field(group_dead, span);
                self.ins().i64_eqz();
            }
            _ => return,
        }
        self.open(BlockType::Empty, b'i');
        self.ins().return_();
        self.close();
    }
}
