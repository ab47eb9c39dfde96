//! How generated script modules, the guest runtime and the host talk.
//!
//! Two Wasm modules run per script: the runtime (`guest-sdk`, precompiled
//! once) owns the linear memory, the allocator, strings, maps, statistics and
//! formatting; the script module (generated per script) imports the runtime's
//! memory and the functions in [`RUNTIME_FUNCS`] and exports the entry points
//! named below. Script values are `i64`: a long is itself, a string is a
//! [`pack_str`]ed pointer and length into the runtime's memory.

/// Module name under which the runtime instance is linked.
pub const RUNTIME_MODULE: &str = "rt";
/// The runtime's exported memory, imported by the script.
pub const MEMORY: &str = "memory";
/// Module name for host functions imported by the runtime and the script.
pub const HOST_MODULE: &str = "host";
/// Script import (module [`HOST_MODULE`]): an immutable i32 global holding
/// where the script's constant data (string literals) starts in memory; the
/// host gets it from the runtime's [`RT_ALLOC_STATIC`] before instantiation.
pub const STATIC_BASE: &str = "static_base";

/// Script export `() -> ()`: creates the maps and runs global initializers.
pub const SCRIPT_INIT: &str = "init";
/// Script export `(ptr: i32, len: i32) -> ()`: runs the handler of every
/// record in the batch at `ptr` (records padded to `RECORD_ALIGN`), stopping
/// early once `exit()` was called.
pub const SCRIPT_HANDLE_BATCH: &str = "handle_batch";
/// Script export `(probe: i32) -> ()`: runs a probe that has no record
/// (begin, end, error, timers), by manifest probe id. The id after the last
/// probe prints the globals the script wrote but never read, as stap does
/// at exit.
pub const SCRIPT_RUN_PROBE: &str = "run_probe";
/// Script export `() -> i32`: non-zero once the script called `exit()`.
pub const SCRIPT_EXIT_REQUESTED: &str = "exit_requested";

/// Runtime export `(size: i32) -> i32`: reserves `size` bytes that live as
/// long as the instance (the script's constant data).
pub const RT_ALLOC_STATIC: &str = "alloc_static";
/// Runtime export `(size: i32) -> i32`: a buffer of at least `size` bytes
/// into which the host copies a batch of records; valid until the next call.
pub const RT_BATCH_BUFFER: &str = "batch_buffer";
/// Runtime export `() -> ()`: hands buffered output to `host.write`.
pub const RT_FLUSH: &str = "flush";

/// Host import `(ptr: i32, len: i32) -> ()`: output bytes.
pub const HOST_WRITE: &str = "write";
/// Host import `(msg: i64) -> ()`, never returns: raises a run-time error
/// (stap's `error()`, division by zero, ...); the message is a string value.
pub const HOST_ERROR: &str = "error";
/// Host import `(clock: i32) -> i64`: 0 realtime ns, 1 monotonic ns.
pub const HOST_NOW_NS: &str = "now_ns";
/// Host import `() -> i64`: 64 random bits.
pub const HOST_RANDOM: &str = "random";

/// Host import `() -> i64`: the run's target process (`-x PID`, or the
/// pid of the `-c` command), 0 when there is none; plugins read it where a
/// compiled script has it compiled in.
pub const HOST_TARGET: &str = "target";

/// Host import `(op: i32, pid: i64, value: i64, in_ptr: i32, in_len: i32,
/// out_ptr: i32, out_cap: i32) -> i32`: the one entry point for stacks and
/// symbols (ops in [`stack`]). The host reads `in_len` bytes at `in_ptr`,
/// computes the op's text and returns its length; it writes the text at
/// `out_ptr` only when it fits in `out_cap` bytes, so the guest retries
/// with a larger buffer when the result is longer. One call formats a
/// whole stack.
pub const HOST_STACK: &str = "stack";

/// A value type in a runtime function signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    I32,
    I64,
}

/// One function the runtime exports for generated code.
#[derive(Clone, Copy, Debug)]
pub struct RuntimeFunc {
    pub name: &'static str,
    pub params: &'static [Ty],
    pub results: &'static [Ty],
}

const fn f(name: &'static str, params: &'static [Ty], results: &'static [Ty]) -> RuntimeFunc {
    RuntimeFunc {
        name,
        params,
        results,
    }
}

use Ty::{I32, I64};

/// Every runtime function the generated code may import. Strings are i64
/// ([`pack_str`]); string results live in a scratch arena until the script
/// calls `scratch_reset` (after each record or probe), except those from
/// `str_keep`. Maps take their key from the pending key built with
/// `key_i64`/`key_str` (no key parts for a scalar aggregate), which every
/// map operation consumes.
pub const RUNTIME_FUNCS: &[RuntimeFunc] = &[
    // Memory.
    f("scratch_reset", &[], &[]),
    // Strings.
    f("str_concat", &[I64, I64], &[I64]),
    f("str_cmp", &[I64, I64], &[I32]),
    // (ptr, max): the NUL-terminated string at ptr, at most max bytes.
    f("str_from_cstr", &[I32, I32], &[I64]),
    // Copies a string out of the scratch arena into the heap; frees `old`
    // if it was kept: `str_keep(old, new) -> kept`.
    f("str_keep", &[I64, I64], &[I64]),
    f("str_from_i64", &[I64], &[I64]),
    f("strlen", &[I64], &[I64]),
    f("substr", &[I64, I64, I64], &[I64]),
    f("isinstr", &[I64, I64], &[I64]),
    f("strpos", &[I64, I64], &[I64]),
    f("str_replace", &[I64, I64, I64], &[I64]),
    f("strtol", &[I64, I64], &[I64]),
    f("isdigit", &[I64], &[I64]),
    f("stringat", &[I64, I64], &[I64]),
    f("text_str", &[I64], &[I64]),
    // (s, len, quoted, ellipsis)
    f("text_strn", &[I64, I64, I64, I64], &[I64]),
    // (s, delim): stap's stateful tokenize; an empty s continues the last.
    f("tokenize", &[I64, I64], &[I64]),
    // Formatting: appends to the innermost open builder, or to the output
    // when none is open.
    f("fmt_begin", &[], &[]),
    f("fmt_end", &[], &[I64]),
    f("fmt_lit", &[I64], &[]),
    // (value, spec): see [`spec`].
    f("fmt_i64", &[I64, I64], &[]),
    f("fmt_str", &[I64, I64], &[]),
    // Maps: (value_kind, max_entries) -> map id; see [`value_kind`].
    f("map_new", &[I32, I32], &[I32]),
    f("key_i64", &[I64], &[]),
    f("key_str", &[I64], &[]),
    f("map_get_i64", &[I32], &[I64]),
    f("map_get_str", &[I32], &[I64]),
    f("map_set_i64", &[I32, I64], &[]),
    f("map_set_str", &[I32, I64], &[]),
    // Adds to a long element and returns the new value.
    f("map_add_i64", &[I32, I64], &[I64]),
    f("map_exists", &[I32], &[I32]),
    f("map_delete", &[I32], &[]),
    f("map_clear", &[I32], &[]),
    f("map_len", &[I32], &[I64]),
    // Statistics: `<<<` into the element; read one aggregate of it.
    f("stat_add", &[I32, I64], &[]),
    // (map, which): see [`stat`].
    f("stat_get", &[I32, I32], &[I64]),
    // (map, kind, lo, hi, step): prints @hist_log (kind 0) or @hist_linear
    // (kind 1) of the element in stap's ASCII layout.
    f("stat_print_hist", &[I32, I32, I64, I64, I64], &[]),
    // (map, lo, hi, step): declares that a statistics array keeps
    // @hist_linear(lo, hi, step); call once after `map_new`, before any
    // `stat_add` (linear buckets must be counted while adding).
    f("stat_hist_linear", &[I32, I64, I64, I64], &[]),
    // Iteration: (map, sort_column, descending, limit) -> iterator.
    // sort_column: -1 unsorted, 0 the value (@count for stats), k>0 key k.
    // limit < 0: no limit.
    f("iter_begin", &[I32, I32, I32, I64], &[I32]),
    // Advances; 0 when done.
    f("iter_next", &[I32], &[I32]),
    // (iterator, key index from 0)
    f("iter_key_i64", &[I32, I32], &[I64]),
    f("iter_key_str", &[I32, I32], &[I64]),
    f("iter_end", &[I32], &[]),
    // Stacks and symbols: (op, pid, value, input) -> string; see [`stack`].
    // With [`stack::PRINT`] set in op the text goes to the output (or the
    // open builder) and the result is "".
    f("stack_op", &[I32, I64, I64, I64], &[I64]),
    // Syscall decoding (`argstr`, `retstr`, tapset `*_str` variables):
    // (value, kind): appends `value` rendered as [`crate::sysarg::ArgKind`]
    // `kind` to the innermost open builder.
    f("fmt_sysarg", &[I64, I32], &[]),
    // (slot, slot_len, pointer): appends the quoted user string of the
    // `UserStr` slot at `slot` (`slot_len` bytes, status included), `NULL`
    // when `pointer` is 0, `pointer` in hex when the kernel could not read it.
    f("fmt_sys_str", &[I32, I32, I64], &[]),
    // (slot, slot_len, pointer): appends a `UserStrArray` slot as a list,
    // `["ls", "-l"]`.
    f("fmt_sys_argv", &[I32, I32, I64], &[]),
    // (slot, slot_len, pointer, count): appends at most `count` bytes of a
    // `UserStr` slot, quoted, with `...` when cut short.
    f("fmt_sys_buf", &[I32, I32, I64, I64], &[]),
    // (head, head_len, tail, tail_len, pointer, addrlen): appends the
    // sockaddr read by two `UserRead` slots (the first
    // [`crate::sysarg::SOCKADDR_HEAD`] bytes, then the rest), `{AF_INET,
    // 127.0.0.1, 80}`.
    f("fmt_sys_sockaddr", &[I32, I32, I32, I32, I64, I64], &[]),
    // (slot, slot_len, pointer): appends the timespec of a `UserRead`
    // slot, `[1.500000000]`.
    f("fmt_sys_timespec", &[I32, I32, I64], &[]),
    // (value, kind): stap's `retstr`: `-2 (ENOENT)`, or the value.
    f("sys_retstr", &[I64, I32], &[I64]),
    // (maxstringlen, maxmapentries): the script's limits, from `init`.
    f("set_limits", &[I64, I64], &[]),
    // Raises a run-time error with the message; returns only inside `try`
    // (the error is then pending until `try_catch`).
    f("error_raise", &[I64], &[]),
    // Enters a `try`; `try_leave` leaves it normally, `try_catch` for its
    // `catch`, returning the message.
    f("try_enter", &[], &[]),
    f("try_leave", &[], &[]),
    f("try_catch", &[], &[I64]),
    // 1 while a caught error waits for its `catch`.
    f("err_pending", &[], &[I32]),
    // (name, kind, value): prints a global written but never read; see
    // [`dump_kind`].
    f("global_dump", &[I64, I32, I64], &[]),
    // (table, subject) -> 1 if the DFA table (a string value pointing at
    // the script's constant data, built by the compiler) matches anywhere.
    f("regex_match", &[I64, I64], &[I64]),
];

/// Operations of `stack_op` and of the host's [`HOST_STACK`] import. A
/// stack value is stap's: hex return addresses (`0x4005d4`) separated by
/// spaces, innermost first. `pid` names the process whose memory maps give
/// user addresses meaning (0 when the probe has no process).
pub mod stack {
    /// Input: a `UserRegsStack` slot of the record. Unwinds it (DWARF CFI,
    /// then frame pointers) and gives the stack value; the host also notes
    /// the process's mappings so the frames can be named after it exits.
    pub const USER_UNWIND: i32 = 1;
    /// Input: a `KernelStack` slot. Gives the stack value.
    pub const KERNEL_STACK: i32 = 2;
    /// Input: a user stack value. One line per frame in stap's layout:
    /// ` 0x4005d4 : main+0x24/0x40 [/usr/bin/prog]`.
    pub const USER_FRAMES: i32 = 3;
    /// Input: a kernel stack value; lines like [`USER_FRAMES`], module
    /// `kernel`.
    pub const KERNEL_FRAMES: i32 = 4;
    /// `value`: a user address. Its symbol name, or the address in hex.
    pub const USYMNAME: i32 = 5;
    /// `value`: a user address. `symbol+0xoff/0xsize [module]`.
    pub const USYMDATA: i32 = 6;
    /// `value`: a user address. The path of the module it is in.
    pub const UMODNAME: i32 = 7;
    /// `value`: a kernel address. Its symbol name, or the address in hex.
    pub const SYMNAME: i32 = 8;
    /// `value`: a kernel address. `symbol+0xoff/0xsize [kernel]`.
    pub const SYMDATA: i32 = 9;
    /// Input: a user stack value (addresses only, e.g. from a frame-pointer
    /// `UserStack` capture). Pins every frame to its binary, reading the
    /// mappings of `pid` while it runs, so the frames can be named after it
    /// exits; gives the same stack value.
    pub const USER_PIN: i32 = 10;
    /// Flag for `stack_op`: print the text instead of returning it.
    pub const PRINT: i32 = 0x100;
}

/// Per-state flags of a regex DFA table (see `regex_match`).
pub mod regex_flag {
    /// Reaching this state means the pattern matched.
    pub const MATCH: u8 = 1;
    /// No match can follow from this state.
    pub const DEAD: u8 = 2;
}

/// Kinds for `global_dump`.
pub mod dump_kind {
    pub const LONG: i32 = 0;
    pub const STRING: i32 = 1;
    pub const MAP: i32 = 2;
    pub const STATS: i32 = 3;
}

/// Kinds of map values, for `map_new`.
pub mod value_kind {
    pub const LONG: i32 = 0;
    pub const STRING: i32 = 1;
    pub const STATS: i32 = 2;
}

/// Aggregates readable with `stat_get`.
pub mod stat {
    pub const COUNT: i32 = 0;
    pub const SUM: i32 = 1;
    pub const MIN: i32 = 2;
    pub const MAX: i32 = 3;
    pub const AVG: i32 = 4;
    pub const VARIANCE: i32 = 5;
}

/// Packs a string value: pointer in the low 32 bits, length in the high.
pub const fn pack_str(ptr: u32, len: u32) -> i64 {
    ((len as u64) << 32 | ptr as u64) as i64
}

/// The pointer of a string value.
pub const fn str_ptr(value: i64) -> u32 {
    value as u64 as u32
}

/// The length of a string value.
pub const fn str_len(value: i64) -> u32 {
    ((value as u64) >> 32) as u32
}

/// printf conversion specs packed into one i64, so a conversion is one call.
///
/// Bits 0-7: the conversion character; 8-15: flags; 16-31: width + 1 (0 =
/// none); 32-47: precision + 1 (0 = none).
pub mod spec {
    pub const FLAG_MINUS: u8 = 1;
    pub const FLAG_PLUS: u8 = 2;
    pub const FLAG_SPACE: u8 = 4;
    pub const FLAG_ZERO: u8 = 8;
    pub const FLAG_HASH: u8 = 16;

    /// Packs a spec; width and precision above 65534 are clamped.
    pub const fn pack(conv: u8, flags: u8, width: Option<u32>, precision: Option<u32>) -> i64 {
        let w = match width {
            Some(w) if w < 0xffff => w + 1,
            Some(_) => 0xffff,
            None => 0,
        };
        let p = match precision {
            Some(p) if p < 0xffff => p + 1,
            Some(_) => 0xffff,
            None => 0,
        };
        (conv as u64 | (flags as u64) << 8 | (w as u64) << 16 | (p as u64) << 32) as i64
    }

    /// Unpacks a spec into (conversion, flags, width, precision).
    pub const fn unpack(spec: i64) -> (u8, u8, Option<u32>, Option<u32>) {
        let s = spec as u64;
        let w = ((s >> 16) & 0xffff) as u32;
        let p = ((s >> 32) & 0xffff) as u32;
        (
            s as u8,
            (s >> 8) as u8,
            if w == 0 { None } else { Some(w - 1) },
            if p == 0 { None } else { Some(p - 1) },
        )
    }

    /// Bit position of the width field, for code that sets `*` widths at
    /// run time (`spec | (width + 1) << WIDTH_SHIFT`).
    pub const WIDTH_SHIFT: u32 = 16;
    /// Bit position of the precision field.
    pub const PRECISION_SHIFT: u32 = 32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_pack() {
        let v = pack_str(0x1234, 77);
        assert_eq!((str_ptr(v), str_len(v)), (0x1234, 77));
    }

    #[test]
    fn specs_pack() {
        let s = spec::pack(b'x', spec::FLAG_HASH, Some(8), None);
        assert_eq!(spec::unpack(s), (b'x', spec::FLAG_HASH, Some(8), None));
        let s = spec::pack(b's', 0, None, Some(0));
        assert_eq!(spec::unpack(s), (b's', 0, None, Some(0)));
    }
}
