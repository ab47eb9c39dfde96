//! Stacks and symbols on the guest side: `stack_op` asks the host, through
//! its one `stack` import, for a stack value, frame lines or a symbol, and
//! turns the answer into a script string or output.
//!
//! The host does the work that needs the system (unwinding against the
//! process's binaries, ELF and kallsyms symbols) and caches it; the guest
//! only moves bytes. One call covers a whole stack, so printing a stack of
//! forty frames is one crossing, not forty.

use alloc::vec::Vec;

use wasmtap_abi::wasm::stack::PRINT;

use crate::rt::{Runtime, Str};

/// First guess at the size of a result; the host says when it needs more.
const INITIAL_CAPACITY: usize = 2048;

/// Runs stack op `op` ([`wasmtap_abi::wasm::stack`]) for process `pid` on
/// `value` (an address) or `input` (a record slot or a stack value). With
/// [`PRINT`] set the text is appended to the output (or the open `sprintf`
/// builder) and the result is empty; otherwise the text is the result,
/// truncated like any string to MAXSTRINGLEN.
pub fn stack_op(rt: &mut Runtime, op: i32, pid: i64, value: i64, input: Str) -> Str {
    let text = stack_text(op & !PRINT, pid, value, input.bytes());
    // SAFETY: `text` lives until the end of this function, and fmt_lit
    // copies it before then.
    let text_str = unsafe { Str::from_raw(text.as_ptr(), text.len()) };
    if op & PRINT != 0 {
        rt.fmt_lit(text_str);
        return Str::EMPTY;
    }
    rt.fmt_begin();
    rt.fmt_lit(text_str);
    rt.fmt_end()
}

/// The text of stack op `op` (without [`PRINT`]) for process `pid` on
/// `value` or `input`: one host call, retried once with the size the host
/// asks for when the first guess is too small.
pub(crate) fn stack_text(op: i32, pid: i64, value: i64, input: &[u8]) -> Vec<u8> {
    let mut buf: Vec<u8> = Vec::with_capacity(INITIAL_CAPACITY);
    loop {
        let needed = host::stack(op, pid, value, input, buf.spare_capacity_mut());
        if needed <= buf.capacity() {
            // SAFETY: the host wrote `needed` bytes into the spare capacity.
            unsafe { buf.set_len(needed) };
            return buf;
        }
        buf.reserve(needed);
    }
}

#[cfg(target_arch = "wasm32")]
mod host {
    use core::mem::MaybeUninit;

    #[link(wasm_import_module = "host")]
    unsafe extern "C" {
        #[link_name = "stack"]
        fn host_stack(
            op: i32,
            pid: i64,
            value: i64,
            in_ptr: i32,
            in_len: i32,
            out_ptr: i32,
            out_cap: i32,
        ) -> i32;
    }

    /// The host's `stack` import: writes the result into `out` when it
    /// fits and returns its length either way.
    pub fn stack(
        op: i32,
        pid: i64,
        value: i64,
        input: &[u8],
        out: &mut [MaybeUninit<u8>],
    ) -> usize {
        // SAFETY: the host reads `input` and writes at most `out.len()`
        // bytes into `out`, both in our memory.
        let n = unsafe {
            host_stack(
                op,
                pid,
                value,
                input.as_ptr() as i32,
                input.len() as i32,
                out.as_mut_ptr() as i32,
                out.len() as i32,
            )
        };
        n.max(0) as usize
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod host {
    use core::mem::MaybeUninit;

    /// Native stand-in: echoes the op and input, so tests can check the
    /// retry on a small buffer and the print/return split.
    pub fn stack(
        op: i32,
        _pid: i64,
        _value: i64,
        input: &[u8],
        out: &mut [MaybeUninit<u8>],
    ) -> usize {
        let text: Vec<u8> = format!("op{op}:")
            .bytes()
            .chain(input.iter().copied())
            .collect();
        if text.len() <= out.len() {
            for (slot, byte) in out.iter_mut().zip(&text) {
                slot.write(*byte);
            }
        }
        text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_prints() {
        let mut rt = Runtime::new();
        let input = alloc::vec![b'x'; 5000];
        // SAFETY: `input` outlives the call.
        let s = unsafe { Str::from_raw(input.as_ptr(), input.len()) };
        let out = stack_op(&mut rt, 3, 1, 0, s);
        assert!(out.bytes().starts_with(b"op3:xxx"));
        assert_eq!(out.len(), rt.max_string());
        let printed = stack_op(&mut rt, 3 | PRINT, 1, 0, Str::EMPTY);
        assert!(printed.is_empty());
        assert_eq!(rt.pending_output(), b"op3:");
    }
}
