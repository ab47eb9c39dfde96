//! The functions the generated script code imports (module `rt`), with the
//! exact names and signatures of [`wasmtap_abi::wasm::RUNTIME_FUNCS`], and
//! the exports the host calls (`alloc_static`, `batch_buffer`, `flush`).
//!
//! Each is a thin wrapper: unpack `i64` strings into [`Str`], call the one
//! [`Runtime`], pack the result. Symbols are unmangled only on Wasm; native
//! builds keep them as ordinary (mangled) functions so names like `strlen`
//! cannot shadow the C library's in unit tests, and pointers there do not fit
//! the 32-bit packing, so these wrappers are exercised by the host's tests
//! against the real Wasm build.

use wasmtap_abi::wasm::{pack_str, str_len, str_ptr};

use crate::rt::{Runtime, Str};

#[cfg(target_arch = "wasm32")]
mod state {
    use super::Runtime;
    use core::cell::UnsafeCell;

    struct Global(UnsafeCell<Option<Runtime>>);
    // SAFETY: wasm32-unknown-unknown without threads: one thread only.
    unsafe impl Sync for Global {}
    static RT: Global = Global(UnsafeCell::new(None));

    /// The instance's runtime, created on first use.
    #[inline(always)]
    pub fn with<R>(f: impl FnOnce(&mut Runtime) -> R) -> R {
        // SAFETY: single-threaded, and no export re-enters another while
        // holding the reference (host imports never call back in).
        let rt = unsafe { &mut *RT.0.get() };
        f(rt.get_or_insert_with(Runtime::new))
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod state {
    use super::Runtime;
    use std::cell::RefCell;

    std::thread_local! {
        static RT: RefCell<Option<Runtime>> = const { RefCell::new(None) };
    }

    /// This thread's runtime, created on first use.
    pub fn with<R>(f: impl FnOnce(&mut Runtime) -> R) -> R {
        RT.with(|rt| f(rt.borrow_mut().get_or_insert_with(Runtime::new)))
    }
}

pub(crate) use state::with;

#[inline(always)]
fn s(v: i64) -> Str {
    // SAFETY: string values handed in by script code point into linear
    // memory by the ABI contract; on Wasm a bad one traps when read.
    unsafe { Str::from_raw(str_ptr(v) as usize as *const u8, str_len(v) as usize) }
}

#[inline(always)]
fn pack(v: Str) -> i64 {
    pack_str(v.ptr() as usize as u32, v.len() as u32)
}

// ---- host-facing exports --------------------------------------------------

/// Reserves `size` bytes for the script's constant data; returns the base.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn alloc_static(size: i32) -> i32 {
    with(|rt| rt.alloc_static(size.max(0) as usize) as usize as i32)
}

/// A buffer of at least `size` bytes for a batch of records.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn batch_buffer(size: i32) -> i32 {
    with(|rt| rt.batch_buffer(size.max(0) as usize) as usize as i32)
}

/// Hands buffered output to `host.write`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn flush() {
    with(|rt| rt.flush())
}

/// Sets MAXSTRINGLEN (host option; not used by generated code).
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn set_maxstringlen(n: i32) {
    with(|rt| rt.set_maxstringlen(n.max(2) as usize))
}

// ---- memory ---------------------------------------------------------------

/// Frees the temporaries of the record or probe that just ended.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn scratch_reset() {
    with(|rt| rt.scratch_reset())
}

// ---- strings --------------------------------------------------------------

/// `a . b`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn str_concat(a: i64, b: i64) -> i64 {
    with(|rt| pack(rt.str_concat(s(a), s(b))))
}

/// Byte-wise comparison: -1, 0, 1.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn str_cmp(a: i64, b: i64) -> i32 {
    with(|rt| rt.str_cmp(s(a), s(b)))
}

/// The NUL-terminated string at `ptr`, at most `max` bytes; no copy.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn str_from_cstr(ptr: i32, max: i32) -> i64 {
    with(|rt| {
        // SAFETY: on Wasm any address is either readable or traps.
        let v = unsafe { rt.str_from_cstr(ptr as u32 as usize as *const u8, max.max(0) as usize) };
        pack(v)
    })
}

/// Copies `new` to the heap for a global; releases `old` if it was kept.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn str_keep(old: i64, new: i64) -> i64 {
    with(|rt| pack(rt.str_keep(s(old), s(new))))
}

/// Decimal text of `v`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn str_from_i64(v: i64) -> i64 {
    with(|rt| pack(rt.str_from_i64(v)))
}

/// stap's `strlen`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn strlen(v: i64) -> i64 {
    str_len(v) as i64
}

/// stap's `substr`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn substr(v: i64, start: i64, len: i64) -> i64 {
    with(|rt| pack(rt.substr(s(v), start, len)))
}

/// stap's `isinstr`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn isinstr(a: i64, b: i64) -> i64 {
    with(|rt| rt.isinstr(s(a), s(b)))
}

/// stap's `strpos`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn strpos(a: i64, b: i64) -> i64 {
    with(|rt| rt.strpos(s(a), s(b)))
}

/// stap's `str_replace`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn str_replace(v: i64, search: i64, repl: i64) -> i64 {
    with(|rt| pack(rt.str_replace(s(v), s(search), s(repl))))
}

/// stap's `strtol`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn strtol(v: i64, base: i64) -> i64 {
    crate::strings::strtol(s(v).bytes(), base)
}

/// stap's `isdigit`: 1 if the first byte is a digit.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn isdigit(v: i64) -> i64 {
    s(v).bytes().first().is_some_and(u8::is_ascii_digit) as i64
}

/// stap's `stringat`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn stringat(v: i64, pos: i64) -> i64 {
    with(|rt| rt.stringat(s(v), pos))
}

/// stap's `text_str`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn text_str(v: i64) -> i64 {
    with(|rt| pack(rt.text_str(s(v), 0, false, false)))
}

/// stap's `text_strn(s, len, quoted)`; `ellipsis` also marks truncation of
/// an unquoted result with `...`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn text_strn(v: i64, len: i64, quoted: i64, ellipsis: i64) -> i64 {
    with(|rt| pack(rt.text_str(s(v), len, quoted != 0, ellipsis != 0)))
}

/// stap's `tokenize`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn tokenize(v: i64, delim: i64) -> i64 {
    with(|rt| pack(rt.tokenize(s(v), s(delim))))
}

// ---- formatting -----------------------------------------------------------

/// Opens a string builder.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_begin() {
    with(|rt| rt.fmt_begin())
}

/// Closes the innermost builder, returning its text.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_end() -> i64 {
    with(|rt| pack(rt.fmt_end()))
}

/// Appends literal text.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_lit(v: i64) {
    with(|rt| rt.fmt_lit(s(v)))
}

/// Appends an integer conversion.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_i64(v: i64, spec: i64) {
    with(|rt| rt.fmt_i64(v, spec))
}

/// Appends a `%s` conversion.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_str(v: i64, spec: i64) {
    with(|rt| rt.fmt_str(s(v), spec))
}

// ---- syscall decoding -----------------------------------------------------

/// The `len` bytes of a record slot at `ptr`.
#[inline(always)]
fn slot<'a>(ptr: i32, len: i32) -> &'a [u8] {
    // SAFETY: the generated code passes a slot of the current record, which
    // lies in the batch buffer; on Wasm a bad address traps when read.
    unsafe { core::slice::from_raw_parts(ptr as u32 as usize as *const u8, len.max(0) as usize) }
}

/// Appends `value` rendered as syscall argument kind `kind`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_sysarg(value: i64, kind: i32) {
    with(|rt| rt.fmt_sysarg(value, kind))
}

/// Appends the quoted user string of a `UserStr` slot.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_sys_str(ptr: i32, len: i32, pointer: i64) {
    with(|rt| rt.fmt_sys_str(slot(ptr, len), pointer))
}

/// Appends a `UserStrArray` slot as a list.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_sys_argv(ptr: i32, len: i32, pointer: i64) {
    with(|rt| rt.fmt_sys_argv(slot(ptr, len), pointer))
}

/// Appends at most `count` bytes of a `UserStr` slot, quoted.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_sys_buf(ptr: i32, len: i32, pointer: i64, count: i64) {
    with(|rt| rt.fmt_sys_buf(slot(ptr, len), pointer, count))
}

/// Appends a sockaddr read in two `UserRead` slots.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_sys_sockaddr(
    head: i32,
    head_len: i32,
    tail: i32,
    tail_len: i32,
    pointer: i64,
    addrlen: i64,
) {
    with(|rt| rt.fmt_sys_sockaddr(slot(head, head_len), slot(tail, tail_len), pointer, addrlen))
}

/// Appends the timespec of a `UserRead` slot.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn fmt_sys_timespec(ptr: i32, len: i32, pointer: i64) {
    with(|rt| rt.fmt_sys_timespec(slot(ptr, len), pointer))
}

/// stap's `retstr` of a return value.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn sys_retstr(value: i64, kind: i32) -> i64 {
    with(|rt| pack(rt.sys_retstr(value, kind)))
}

// ---- arrays ---------------------------------------------------------------

/// Creates an array.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_new(kind: i32, max_entries: i32) -> i32 {
    with(|rt| rt.map_new(kind, max_entries))
}

/// Appends a long key part.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn key_i64(v: i64) {
    with(|rt| rt.key_i64(v))
}

/// Appends a string key part.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn key_str(v: i64) {
    with(|rt| rt.key_str(s(v)))
}

/// Reads a long element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_get_i64(map: i32) -> i64 {
    with(|rt| rt.map_get_i64(map))
}

/// Reads a string element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_get_str(map: i32) -> i64 {
    with(|rt| pack(rt.map_get_str(map)))
}

/// Writes a long element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_set_i64(map: i32, v: i64) {
    with(|rt| rt.map_set_i64(map, v))
}

/// Writes a string element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_set_str(map: i32, v: i64) {
    with(|rt| rt.map_set_str(map, s(v)))
}

/// Adds to a long element; returns the new value.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_add_i64(map: i32, delta: i64) -> i64 {
    with(|rt| rt.map_add_i64(map, delta))
}

/// 1 if the element exists.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_exists(map: i32) -> i32 {
    with(|rt| rt.map_exists(map))
}

/// Deletes one element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_delete(map: i32) {
    with(|rt| rt.map_delete(map))
}

/// Deletes every element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_clear(map: i32) {
    with(|rt| rt.map_clear(map))
}

/// Number of elements.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn map_len(map: i32) -> i64 {
    with(|rt| rt.map_len(map))
}

// ---- statistics -----------------------------------------------------------

/// `<<<`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn stat_add(map: i32, v: i64) {
    with(|rt| rt.stat_add(map, v))
}

/// One aggregate of an element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn stat_get(map: i32, what: i32) -> i64 {
    with(|rt| rt.stat_get(map, what))
}

/// Prints a histogram of an element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn stat_print_hist(map: i32, kind: i32, lo: i64, hi: i64, step: i64) {
    with(|rt| rt.stat_print_hist(map, kind, lo, hi, step))
}

/// Declares the `@hist_linear` bounds of a statistics array.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn stat_hist_linear(map: i32, lo: i64, hi: i64, step: i64) {
    with(|rt| rt.stat_hist_linear(map, lo, hi, step))
}

// ---- iteration ------------------------------------------------------------

/// Starts a `foreach`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn iter_begin(map: i32, column: i32, descending: i32, limit: i64) -> i32 {
    with(|rt| rt.iter_begin(map, column, descending != 0, limit))
}

/// Advances; 0 when done.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn iter_next(it: i32) -> i32 {
    with(|rt| rt.iter_next(it))
}

/// Long key part of the current element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn iter_key_i64(it: i32, idx: i32) -> i64 {
    with(|rt| rt.iter_key_i64(it, idx))
}

/// String key part of the current element.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn iter_key_str(it: i32, idx: i32) -> i64 {
    with(|rt| pack(rt.iter_key_str(it, idx)))
}

/// Ends a `foreach`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn iter_end(it: i32) {
    with(|rt| rt.iter_end(it))
}

// ---- stacks ---------------------------------------------------------------

/// Stack values, frame lines and symbols, from the host (see
/// [`crate::stack`]).
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn stack_op(op: i32, pid: i64, value: i64, input: i64) -> i64 {
    with(|rt| pack(crate::stack::stack_op(rt, op, pid, value, s(input))))
}

// ---- limits, errors inside try, globals at exit ----------------------------

/// `(maxstringlen, maxmapentries)`: the script's limits, set by its `init`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn set_limits(maxstringlen: i64, maxmapentries: i64) {
    with(|rt| rt.set_limits(maxstringlen, maxmapentries))
}

/// Raises a run-time error (caught when inside `try`).
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn error_raise(msg: i64) {
    // The message may live in the arena; copy it out before anything moves.
    let msg = s(msg).bytes().to_vec();
    with(|rt| rt.fail(&msg))
}

/// Enters a `try` block.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn try_enter() {
    with(Runtime::try_enter)
}

/// Leaves a `try` block.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn try_leave() {
    with(Runtime::try_leave)
}

/// 1 while a caught error waits for its `catch`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn err_pending() -> i32 {
    with(|rt| rt.err_pending() as i32)
}

/// Leaves a `try` for its `catch`; returns the caught message.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn try_catch() -> i64 {
    with(|rt| pack(rt.try_catch()))
}

/// `(name, kind, value)`: prints a written-but-unread global at exit.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn global_dump(name: i64, kind: i32, value: i64) {
    with(|rt| rt.global_dump(s(name), kind, value))
}

/// `(table, subject)`: 1 if the compiled pattern matches (`=~`).
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn regex_match(table: i64, subject: i64) -> i64 {
    crate::regex::matches(s(table).bytes(), s(subject).bytes()) as i64
}
