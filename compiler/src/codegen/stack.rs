//! The stack builtins: which slot the kernel copies for them and which
//! `stack_op` calls the handler makes.
//!
//! A stack value is stap's: a string of hex return addresses, innermost
//! first, usable as an array key (`s[ubacktrace()] <<< 1`). The kernel only
//! copies raw material, and only for probes that use a stack builtin:
//! `ubacktrace()` takes the user registers plus a copy of the user stack
//! (the host unwinds it with the binary's DWARF CFI, so code built without
//! frame pointers gives complete stacks), `backtrace()` the kernel's own
//! stack walk. Everything else (unwinding, symbols, frame lines) is one
//! runtime call, `stack_op`, which asks the host through one import.

use wasm_encoder::InstructionSink;
use wasmtap_abi::{
    MAX_STACK_FRAMES, OpCode,
    wasm::stack::{
        KERNEL_FRAMES, KERNEL_STACK, PRINT, SYMDATA, SYMNAME, UMODNAME, USER_FRAMES, USER_UNWIND,
        USYMDATA, USYMNAME,
    },
};

use super::{Layout, mem};
use crate::{
    passes::symbols::{ContextField, Ty},
    plan::Capture,
};

/// Bytes of user stack copied from sp per `ubacktrace()` sample. Enough for
/// the frames of ordinary C and Rust call chains; a deeper stack ends at
/// the last frame inside the copy. Leaves room in a record for a kernel
/// stack and a few strings.
pub(crate) const USER_STACK_COPY: u16 = 6144;
/// Bytes of kernel return addresses per `backtrace()`.
pub(crate) const KERNEL_STACK_BYTES: u16 = (MAX_STACK_FRAMES * 8) as u16;

/// How one stack builtin is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StackCall {
    /// The slot to capture and the op that turns it into a stack value.
    pub capture: Option<(Capture, i32)>,
    /// The op applied to the stack value (or to the argument) next.
    pub then: Option<i32>,
    /// Whether the last op prints instead of returning a string.
    pub print: bool,
    /// Whether the builtin takes an address (`usymname(a)`) rather than a
    /// stack value as its argument.
    pub address_arg: bool,
    pub ret: Option<Ty>,
}

/// The lowering of stack builtin `name`, or None if it is not one.
pub(crate) fn lower(name: &str) -> Option<StackCall> {
    let user = Some((
        Capture::UserRegsStack {
            len: USER_STACK_COPY,
        },
        USER_UNWIND,
    ));
    let kernel = Some((
        Capture::KernelStack {
            len: KERNEL_STACK_BYTES,
        },
        KERNEL_STACK,
    ));
    let call = |capture, then, print, address_arg| StackCall {
        capture,
        then,
        print,
        address_arg,
        ret: (!print).then_some(Ty::Str),
    };
    Some(match name {
        "ubacktrace" => call(user, None, false, false),
        "print_ubacktrace" => call(user, Some(USER_FRAMES), true, false),
        "sprint_ubacktrace" => call(user, Some(USER_FRAMES), false, false),
        "backtrace" => call(kernel, None, false, false),
        "print_backtrace" => call(kernel, Some(KERNEL_FRAMES), true, false),
        "sprint_backtrace" => call(kernel, Some(KERNEL_FRAMES), false, false),
        "print_ustack" => call(None, Some(USER_FRAMES), true, false),
        "sprint_ustack" => call(None, Some(USER_FRAMES), false, false),
        "print_stack" => call(None, Some(KERNEL_FRAMES), true, false),
        "sprint_stack" => call(None, Some(KERNEL_FRAMES), false, false),
        "usymname" => call(None, Some(USYMNAME), false, true),
        "usymdata" => call(None, Some(USYMDATA), false, true),
        "umodname" => call(None, Some(UMODNAME), false, true),
        "symname" => call(None, Some(SYMNAME), false, true),
        "symdata" => call(None, Some(SYMDATA), false, true),
        _ => return None,
    })
}

/// Emits `call`. `slot` is the record offset of the captured slot (when
/// `call.capture` is set); `value` is a local holding the i64 argument (a
/// stack string or an address) when the builtin has one, and is otherwise
/// free for this code to use. Leaves the result string on the stack unless
/// the call prints.
pub(crate) fn emit(
    ins: &mut InstructionSink,
    l: &Layout,
    call: &StackCall,
    slot: Option<u16>,
    value: u32,
) {
    let stack_op = l.rt("stack_op");
    if let (Some((capture, op)), Some(offset)) = (call.capture, slot) {
        let width = match capture {
            Capture::UserRegsStack { len } => OpCode::UserRegsStack.width(len),
            Capture::KernelStack { len } => OpCode::KernelStack.width(len),
            _ => 0,
        };
        let last = call.then.is_none();
        ins.i32_const(op | if last && call.print { PRINT } else { 0 });
        push_pid(ins, l);
        ins.i64_const(0);
        ins.global_get(l.g_rec)
            .i32_const(i32::from(offset))
            .i32_add()
            .i64_extend_i32_u()
            .i64_const(((width as u64) << 32) as i64)
            .i64_or();
        ins.call(stack_op);
        if last {
            return;
        }
        ins.local_set(value);
    }
    let Some(op) = call.then else { return };
    ins.i32_const(op | if call.print { PRINT } else { 0 });
    push_pid(ins, l);
    if call.address_arg {
        ins.local_get(value).i64_const(0);
    } else {
        ins.i64_const(0).local_get(value);
    }
    ins.call(stack_op);
    if call.print {
        ins.drop();
    }
}

/// The current record's process id, or 0 where the script reads no pid
/// (probes without a process: begin, end, host timers).
fn push_pid(ins: &mut InstructionSink, l: &Layout) {
    match l.context.offset(ContextField::PidTgid) {
        Some(offset) => {
            ins.global_get(l.g_rec)
                .i64_load(mem(u64::from(offset), 3))
                .i64_const(32)
                .i64_shr_u();
        }
        None => {
            ins.i64_const(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_capturing_builtins_capture() {
        assert!(lower("ubacktrace").unwrap().capture.is_some());
        assert!(lower("print_backtrace").unwrap().capture.is_some());
        assert!(lower("print_ustack").unwrap().capture.is_none());
        assert!(lower("usymname").unwrap().address_arg);
        assert_eq!(lower("print_ustack").unwrap().ret, None);
        assert!(lower("printf").is_none());
    }
}
