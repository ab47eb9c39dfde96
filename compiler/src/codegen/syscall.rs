//! Code generation for the syscall tapset variables: `argstr`, `retstr`
//! and the decoded `*_str` / quoted string variables.
//!
//! The per-syscall layout comes from [`crate::syscalls`]; each argument
//! becomes one call into the guest runtime's decoders (`fmt_sysarg`,
//! `fmt_sys_str`, `fmt_sys_argv`, `fmt_sys_buf`), which append to the
//! string builder opened here. Only the captures the layout needs are added
//! to the plan: the argument values, plus the strings behind `char *`
//! arguments, argv arrays and a short prefix of written buffers.

use wasm_encoder::BlockType;
use wasmtap_abi::{
    USER_READ_HEADER_LEN,
    sysarg::{
        ArgKind, OPEN_TAKES_MODE, SOCKADDR_HEAD, SOCKADDR_TAIL, SYSCALL_ARG_REGS, TIMESPEC_LEN,
    },
};

use super::Gen;
use crate::{
    catalog::SyscallArg,
    passes::{resolve::ProbeKind, symbols},
    plan::{Capture, ReadFrom},
    span::Span,
    syscalls,
};

/// Bytes of a written buffer the kernel copies for `argstr` (stap's
/// `syscall_string_trunc` prefix of `write`'s data).
const BUF_CAPTURE: u16 = 32;

impl Gen<'_, '_> {
    /// stap's `argstr`: the arguments as the syscall's tapset prints them,
    /// separated by ", ". Syscalls without a layout print each tracepoint
    /// field in hex, strings quoted.
    pub(super) fn argstr(&mut self, kind: &ProbeKind, span: Span) -> Option<()> {
        let ProbeKind::Syscall { name, .. } = kind else {
            return None;
        };
        let fields = symbols::syscall_args(kind, self.l.catalog)
            .unwrap_or(&[])
            .to_vec();
        let index_of = |field: &str| fields.iter().position(|a| a.name == field).map(|i| i as u8);
        let mut args: Vec<(u8, ArgKind)> = match syscalls::layout(name) {
            Some(layout) => layout
                .args
                .iter()
                .filter_map(|a| Some((index_of(&a.field)?, a.kind)))
                .collect(),
            None => fields
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let kind = if a.is_user_string() {
                        ArgKind::Str
                    } else {
                        ArgKind::Hex
                    };
                    (i as u8, kind)
                })
                .collect(),
        };
        let flags = index_of("flags");
        // open's mode is printed only when the flags take one: the last
        // argument, so it is emitted under a condition after the others.
        let creat_mode = match args.last() {
            Some(&(index, ArgKind::CreatMode)) => {
                args.pop();
                flags.map(|flags| (index, flags))
            }
            _ => None,
        };
        self.rt("fmt_begin");
        for (i, &(index, arg_kind)) in args.iter().enumerate() {
            if i > 0 {
                self.literal(b", ");
                self.rt("fmt_lit");
            }
            self.sysarg(index, arg_kind, bound(&fields, arg_kind), span)?;
        }
        if let Some((mode, flags)) = creat_mode {
            self.arg(flags, span)?;
            self.ins()
                .i64_const(OPEN_TAKES_MODE as i64)
                .i64_and()
                .i64_const(0)
                .i64_ne();
            self.open(BlockType::Empty, b'i');
            self.literal(b", ");
            self.rt("fmt_lit");
            self.sysarg(mode, ArgKind::Oct, None, span)?;
            self.close();
        }
        self.rt("fmt_end");
        Some(())
    }

    /// stap's `retstr`: `-2 (ENOENT)` for errors, else the value (in hex for
    /// calls that return addresses).
    pub(super) fn retstr(&mut self, kind: &ProbeKind, span: Span) -> Option<()> {
        let ProbeKind::Syscall { name, .. } = kind else {
            return None;
        };
        let ret_kind = syscalls::layout(name).map_or(ArgKind::RetErrno, |layout| layout.ret);
        let offset = self.capture(Capture::RetVal, span)?;
        self.load_field(offset);
        self.ins().i32_const(ret_kind as i32);
        self.rt("sys_retstr");
        Some(())
    }

    /// A decoded tapset variable (`flags_str`, a quoted `filename`, execve's
    /// `args`) as a string value.
    pub(super) fn decoded_arg(&mut self, index: u8, kind: ArgKind, span: Span) -> Option<()> {
        let bound = match self.scope {
            super::Scope::Probe(p) => symbols::syscall_args(&self.l.probes[p].kind, self.l.catalog)
                .and_then(|args| bound(args, kind)),
            super::Scope::Function(_) => None,
        };
        self.rt("fmt_begin");
        self.sysarg(index, kind, bound, span)?;
        self.rt("fmt_end");
        Some(())
    }

    /// Appends argument `index` rendered as `kind` to the open builder;
    /// `count` is the argument that bounds it ([`bound`]).
    fn sysarg(&mut self, index: u8, kind: ArgKind, count: Option<u8>, span: Span) -> Option<()> {
        let max = self.l.options.capture_string_bytes;
        match kind {
            ArgKind::Str => {
                self.slot(Capture::UserString { arg: index, max }, max, span)?;
                self.arg(index, span)?;
                self.rt("fmt_sys_str");
            }
            ArgKind::Argv => {
                self.slot(Capture::UserStrArray { arg: index, max }, max, span)?;
                self.arg(index, span)?;
                self.rt("fmt_sys_argv");
            }
            ArgKind::Buf => {
                let max = BUF_CAPTURE.min(max);
                self.slot(Capture::UserString { arg: index, max }, max, span)?;
                self.arg(index, span)?;
                self.arg_or(count, max, span)?;
                self.rt("fmt_sys_buf");
            }
            ArgKind::Sockaddr => {
                let size = SOCKADDR_HEAD + SOCKADDR_TAIL;
                self.read_arg(index, 0, SOCKADDR_HEAD, span)?;
                self.read_arg(index, SOCKADDR_HEAD, SOCKADDR_TAIL, span)?;
                self.arg(index, span)?;
                self.arg_or(count, size, span)?;
                self.rt("fmt_sys_sockaddr");
            }
            ArgKind::Timespec => {
                self.read_arg(index, 0, TIMESPEC_LEN, span)?;
                self.arg(index, span)?;
                self.rt("fmt_sys_timespec");
            }
            _ => {
                self.arg(index, span)?;
                self.ins().i32_const(i32::from(kind as u8));
                self.rt("fmt_sysarg");
            }
        }
        Some(())
    }

    /// Pushes argument `index` if there is one, else `default`.
    fn arg_or(&mut self, index: Option<u8>, default: u16, span: Span) -> Option<()> {
        match index {
            Some(index) => self.arg(index, span),
            None => {
                self.ins().i64_const(i64::from(default));
                Some(())
            }
        }
    }

    /// Pushes the address (i32) and length (i32) of a `UserRead` slot of
    /// `len` bytes at `disp` past the pointer in syscall argument `index`,
    /// adding its capture to the plan.
    fn read_arg(&mut self, index: u8, disp: u16, len: u16, span: Span) -> Option<()> {
        let reg = *SYSCALL_ARG_REGS.get(usize::from(index))?;
        let capture = Capture::UserRead {
            base: ReadFrom::Reg(reg),
            disp: i32::from(disp),
            len,
        };
        let offset = self.capture(capture, span)?;
        let rec = self.l.g_rec;
        self.ins()
            .global_get(rec)
            .i32_const(i32::from(offset))
            .i32_add()
            .i32_const(USER_READ_HEADER_LEN as i32 + i32::from(len));
        Some(())
    }

    /// Pushes the address (i32) and length (i32) of a string slot of the
    /// current record, adding its capture to the plan.
    fn slot(&mut self, capture: Capture, max: u16, span: Span) -> Option<()> {
        let offset = self.capture(capture, span)?;
        let rec = self.l.g_rec;
        let len = wasmtap_abi::STR_STATUS_LEN as i32 + i32::from(max);
        self.ins()
            .global_get(rec)
            .i32_const(i32::from(offset))
            .i32_add()
            .i32_const(len);
        Some(())
    }
}

/// The argument that bounds an argument of `kind`, by its tracepoint
/// field: the byte count of a written buffer, the length of a sockaddr.
fn bound(fields: &[SyscallArg], kind: ArgKind) -> Option<u8> {
    let names: &[&str] = match kind {
        ArgKind::Buf => &["count"],
        ArgKind::Sockaddr => &["addrlen", "addr_len"],
        _ => return None,
    };
    let index = fields
        .iter()
        .position(|a| names.contains(&a.name.as_str()))?;
    u8::try_from(index).ok()
}
