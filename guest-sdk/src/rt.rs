//! The runtime state behind every exported function.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cmp::Ordering;
use wasmtap_abi::wasm::{stat as which, value_kind};

use crate::arena::Arena;
use crate::fmt;
use crate::host;
use crate::map::{self, KeyPart, Overflow, Table};
use crate::stat::{self, HistKind, Linear, Stat};
use crate::strings::{self, Tokenizer};

/// stap's `MAXSTRINGLEN` default for wasmtap: strings hold at most one byte
/// less (stap counts the NUL).
pub const DEFAULT_MAXSTRINGLEN: usize = 1024;
/// Entries an array may hold when `map_new` is given 0. More generous than
/// stap's MAXMAPENTRIES (2048): the sandbox's memory limit is the real cap,
/// this only turns runaway growth into stap's clear error first.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Buffered output is handed to `host.write` once it reaches this size.
pub const OUTPUT_FLUSH: usize = 64 * 1024;

/// stap's message for inserting into a full array.
pub const MSG_OVERFLOW: &[u8] = b"Array overflow, check MAXMAPENTRIES";
/// stap's message for `@min`/`@max`/`@avg`/`@variance`/`@hist_*` of an
/// aggregate without values.
pub const MSG_EMPTY: &[u8] = b"empty aggregate";
/// stap's message for `stringat` outside the string.
pub const MSG_POSITION: &[u8] = b"Position out of bounds";

/// A string value: a pointer and a length into (Wasm) memory.
///
/// This is the runtime's view of the ABI's packed `i64` strings. It is a raw
/// handle, like the `i64` the script holds: it points into the scratch
/// arena, the heap (kept strings, array values), the script's static data or
/// the record batch, and stays valid as long as that storage does (see
/// [`Runtime::scratch_reset`]).
#[derive(Clone, Copy, Debug)]
pub struct Str {
    ptr: *const u8,
    len: usize,
}

impl Str {
    /// The empty string; packs to the `i64` 0, so a zero-initialized string
    /// variable is "".
    pub const EMPTY: Str = Str {
        ptr: core::ptr::null(),
        len: 0,
    };

    /// A handle to `len` bytes at `ptr`.
    ///
    /// # Safety
    /// The bytes must stay readable for as long as the handle is used.
    pub const unsafe fn from_raw(ptr: *const u8, len: usize) -> Str {
        Str { ptr, len }
    }

    /// A handle to static bytes.
    pub const fn from_static(s: &'static [u8]) -> Str {
        Str {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// The pointer.
    pub fn ptr(self) -> *const u8 {
        self.ptr
    }

    /// The length in bytes.
    pub fn len(self) -> usize {
        self.len
    }

    /// Whether the string is empty.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }

    /// The bytes. Valid while the storage the handle points into is (the
    /// ABI's contract for string values; on Wasm an out-of-bounds handle
    /// traps instead of reading host memory).
    #[inline]
    pub fn bytes<'a>(self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: string values point at live storage by the ABI contract
        // above; the runtime never frees storage a live value can reach
        // before `scratch_reset`.
        unsafe { core::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// What an array holds.
enum Values {
    Long(Table<i64>),
    Str(Table<Box<[u8]>>),
    Stat(Table<Stat>, Option<Linear>),
}

struct Map {
    values: Values,
    max: usize,
}

/// A `foreach` in progress: a snapshot of the keys, in visiting order.
struct Iter {
    keys: Vec<u8>,
    bounds: Vec<(u32, u32)>,
    /// Index of the current key plus one (0 = before the first).
    pos: usize,
}

/// All runtime state of one script instance.
pub struct Runtime {
    arena: Arena,
    /// Heap strings no live value can reach after the next reset: replaced
    /// kept strings and array values. Freed by `scratch_reset`, because a
    /// local may still point at them until the probe ends.
    graveyard: Vec<Box<[u8]>>,
    /// Heap copies made by `str_keep`, keyed by their address.
    kept: Table<Box<[u8]>>,
    seed: u64,
    maxstr: usize,
    out: Vec<u8>,
    fmt_buf: Vec<u8>,
    builders: Vec<usize>,
    tmp: Vec<u8>,
    key: Vec<u8>,
    maps: Vec<Map>,
    iters: Vec<Option<Iter>>,
    tokenizer: Tokenizer,
    batch: Vec<u64>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Runtime {
    /// A fresh runtime with the default limits.
    pub fn new() -> Self {
        let seed = host::random() as u64;
        Self {
            seed,
            arena: Arena::new(),
            graveyard: Vec::new(),
            kept: Table::new(seed),
            maxstr: DEFAULT_MAXSTRINGLEN - 1,
            out: Vec::new(),
            fmt_buf: Vec::new(),
            builders: Vec::new(),
            tmp: Vec::new(),
            key: Vec::new(),
            maps: Vec::new(),
            iters: Vec::new(),
            tokenizer: Tokenizer::default(),
            batch: Vec::new(),
        }
    }

    /// Sets stap's MAXSTRINGLEN (strings then hold at most `n - 1` bytes).
    pub fn set_maxstringlen(&mut self, n: usize) {
        self.maxstr = n.max(2) - 1;
    }

    /// The longest string a value may hold.
    pub fn max_string(&self) -> usize {
        self.maxstr
    }

    // ---- memory ----------------------------------------------------------

    /// Ends a record or probe: frees every temporary string and forgets any
    /// half-built key, open `sprintf` or `foreach` (left behind only by a
    /// run-time error).
    pub fn scratch_reset(&mut self) {
        self.arena.reset();
        self.graveyard.clear();
        self.builders.clear();
        self.fmt_buf.clear();
        self.key.clear();
        self.iters.clear();
    }

    /// Reserves `size` zeroed bytes for the life of the instance, 16-byte
    /// aligned (the script's constant data).
    pub fn alloc_static(&mut self, size: usize) -> *mut u8 {
        let words = size.div_ceil(16).max(1);
        let block: Box<[u128]> = alloc::vec![0u128; words].into_boxed_slice();
        Box::leak(block).as_mut_ptr().cast()
    }

    /// A buffer of at least `size` bytes, 8-byte aligned, for a batch of
    /// records; valid until the next call.
    pub fn batch_buffer(&mut self, size: usize) -> *mut u8 {
        let words = size.div_ceil(8).max(1);
        if self.batch.len() < words {
            self.batch = alloc::vec![0u64; words];
        }
        self.batch.as_mut_ptr().cast()
    }

    fn temp(&mut self, bytes: &[u8]) -> Str {
        let len = bytes.len().min(self.maxstr);
        let p = self.arena.copy(&bytes[..len]);
        Str { ptr: p, len }
    }

    /// Copies `self.tmp` into the arena and clears it.
    fn temp_from_tmp(&mut self) -> Str {
        let tmp = core::mem::take(&mut self.tmp);
        let s = self.temp(&tmp);
        self.tmp = tmp;
        self.tmp.clear();
        s
    }

    // ---- strings ---------------------------------------------------------

    /// `a . b`, truncated to the maximum string length.
    pub fn str_concat(&mut self, a: Str, b: Str) -> Str {
        if b.len == 0 {
            return a;
        }
        if a.len == 0 {
            return b;
        }
        let total = (a.len + b.len).min(self.maxstr);
        let extra = total.saturating_sub(a.len);
        // Appending to the newest temporary (s = s . x in a loop) extends
        // it in place instead of copying it again.
        let end = a.ptr.wrapping_add(a.len);
        if extra > 0 && self.arena.extend_last(end, extra) {
            // SAFETY: the arena just reserved `extra` bytes at `end`.
            unsafe { core::ptr::copy(b.ptr, end.cast_mut(), extra) };
            return Str {
                ptr: a.ptr,
                len: total,
            };
        }
        let p = self.arena.alloc(total);
        let head = a.len.min(total);
        // SAFETY: `p` has room for `total` bytes; sources are live values.
        unsafe {
            core::ptr::copy_nonoverlapping(a.ptr, p, head);
            core::ptr::copy_nonoverlapping(b.ptr, p.add(head), total - head);
        }
        Str { ptr: p, len: total }
    }

    /// Byte-wise comparison: -1, 0 or 1.
    pub fn str_cmp(&self, a: Str, b: Str) -> i32 {
        match a.bytes().cmp(b.bytes()) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        }
    }

    /// The NUL-terminated string at `ptr`, reading at most `max` bytes (and
    /// at most the maximum string length); no copy.
    ///
    /// # Safety
    /// `max` bytes at `ptr` must be readable.
    pub unsafe fn str_from_cstr(&self, ptr: *const u8, max: usize) -> Str {
        let max = max.min(self.maxstr);
        if max == 0 || ptr.is_null() {
            return Str::EMPTY;
        }
        // SAFETY: the caller guarantees `max` readable bytes.
        let bytes = unsafe { core::slice::from_raw_parts(ptr, max) };
        Str {
            ptr,
            len: strings::cstr_len(bytes),
        }
    }

    /// Copies `new` to the heap for a global; `old` (the global's previous
    /// value) is released if this function made it, at the next reset.
    pub fn str_keep(&mut self, old: Str, new: Str) -> Str {
        let kept = if new.len == 0 {
            Str::EMPTY
        } else {
            let copy: Box<[u8]> = new.bytes()[..new.len.min(self.maxstr)].into();
            let s = Str {
                ptr: copy.as_ptr(),
                len: copy.len(),
            };
            if let Ok(slot) =
                self.kept
                    .get_or_insert(&(s.ptr as usize).to_le_bytes(), usize::MAX, Box::default)
            {
                *slot = copy;
            }
            s
        };
        if old.len != 0
            && let Some(b) = self.kept.remove(&(old.ptr as usize).to_le_bytes())
        {
            self.graveyard.push(b);
        }
        kept
    }

    /// Decimal text of `v`.
    pub fn str_from_i64(&mut self, v: i64) -> Str {
        let mut buf = Vec::new();
        core::mem::swap(&mut buf, &mut self.tmp);
        buf.clear();
        fmt::push_i64(&mut buf, v);
        self.tmp = buf;
        self.temp_from_tmp()
    }

    /// stap's `substr(s, start, len)`: empty when `start` is outside `s`.
    pub fn substr(&self, s: Str, start: i64, len: i64) -> Str {
        if start < 0 || start as u64 >= s.len as u64 || len <= 0 {
            return Str::EMPTY;
        }
        let start = start as usize;
        let n = (len as u64).min((s.len - start) as u64) as usize;
        Str {
            ptr: s.ptr.wrapping_add(start),
            len: n,
        }
    }

    /// stap's `isinstr(s1, s2)`: 1 if `s2` occurs in `s1`.
    pub fn isinstr(&self, s1: Str, s2: Str) -> i64 {
        strings::find(s1.bytes(), s2.bytes()).is_some() as i64
    }

    /// stap's `strpos(s1, s2)`: index of the first `s2` in `s1`, or -1.
    pub fn strpos(&self, s1: Str, s2: Str) -> i64 {
        strings::find(s1.bytes(), s2.bytes()).map_or(-1, |i| i as i64)
    }

    /// stap's `str_replace(s, search, repl)`: every occurrence replaced.
    pub fn str_replace(&mut self, s: Str, search: Str, repl: Str) -> Str {
        if search.len == 0 || s.len == 0 {
            return s;
        }
        let mut tmp = core::mem::take(&mut self.tmp);
        tmp.clear();
        strings::replace(
            &mut tmp,
            s.bytes(),
            search.bytes(),
            repl.bytes(),
            self.maxstr,
        );
        self.tmp = tmp;
        self.temp_from_tmp()
    }

    /// stap's `stringat(s, pos)`: the byte at `pos` (as a C `char`).
    pub fn stringat(&self, s: Str, pos: i64) -> i64 {
        match usize::try_from(pos).ok().and_then(|p| s.bytes().get(p)) {
            Some(&b) => b as i8 as i64,
            None => host::error(MSG_POSITION),
        }
    }

    /// stap's `text_str` / `text_strn`.
    pub fn text_str(&mut self, s: Str, len: i64, quoted: bool, ellipsis: bool) -> Str {
        let mut tmp = core::mem::take(&mut self.tmp);
        tmp.clear();
        let len = len.clamp(0, self.maxstr as i64 + 1);
        strings::text_str(&mut tmp, s.bytes(), len, quoted, ellipsis, self.maxstr);
        self.tmp = tmp;
        self.temp_from_tmp()
    }

    /// stap's `tokenize(s, delim)`.
    pub fn tokenize(&mut self, s: Str, delim: Str) -> Str {
        let max = self.maxstr;
        let tok = self.tokenizer.next(s.bytes(), delim.bytes(), max);
        match tok {
            Some(t) => {
                let len = t.len();
                let p = self.arena.copy(t);
                Str { ptr: p, len }
            }
            None => Str::EMPTY,
        }
    }

    // ---- formatting ------------------------------------------------------

    #[inline]
    fn sink(&mut self) -> &mut Vec<u8> {
        if self.builders.is_empty() {
            &mut self.out
        } else {
            &mut self.fmt_buf
        }
    }

    #[inline]
    fn after_output(&mut self) {
        if self.builders.is_empty() && self.out.len() >= OUTPUT_FLUSH {
            self.flush();
        }
    }

    /// Hands buffered output to `host.write`.
    pub fn flush(&mut self) {
        if !self.out.is_empty() {
            host::write(&self.out);
            self.out.clear();
        }
    }

    /// Opens a string builder (`sprintf`): output goes to it until
    /// [`Runtime::fmt_end`].
    pub fn fmt_begin(&mut self) {
        self.builders.push(self.fmt_buf.len());
    }

    /// Closes the innermost builder and returns what it collected.
    pub fn fmt_end(&mut self) -> Str {
        let Some(start) = self.builders.pop() else {
            return Str::EMPTY;
        };
        let len = (self.fmt_buf.len() - start).min(self.maxstr);
        let p = self.arena.copy(&self.fmt_buf[start..start + len]);
        self.fmt_buf.truncate(start);
        Str { ptr: p, len }
    }

    /// Appends literal text.
    #[inline]
    pub fn fmt_lit(&mut self, s: Str) {
        self.sink().extend_from_slice(s.bytes());
        self.after_output();
    }

    /// Appends an integer conversion.
    #[inline]
    pub fn fmt_i64(&mut self, v: i64, spec: i64) {
        fmt::format_i64(self.sink(), v, spec);
        self.after_output();
    }

    /// Appends a `%s` conversion.
    #[inline]
    pub fn fmt_str(&mut self, s: Str, spec: i64) {
        fmt::format_str(self.sink(), s.bytes(), spec);
        self.after_output();
    }

    /// Appends what `write` produces to the innermost builder, or to the
    /// output when none is open (decoders that render into bytes, such as
    /// [`crate::syscalls`]).
    #[inline]
    pub fn fmt_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(self.sink());
        self.after_output();
    }

    /// Output not yet handed to the host (for tests).
    pub fn pending_output(&self) -> &[u8] {
        &self.out
    }

    // ---- arrays ----------------------------------------------------------

    /// Creates an array of `kind` ([`value_kind`]) holding at most
    /// `max_entries` (0: [`DEFAULT_MAX_ENTRIES`]); returns its id.
    pub fn map_new(&mut self, kind: i32, max_entries: i32) -> i32 {
        let values = match kind {
            value_kind::STRING => Values::Str(Table::new(self.seed)),
            value_kind::STATS => Values::Stat(Table::new(self.seed), None),
            _ => Values::Long(Table::new(self.seed)),
        };
        let max = if max_entries <= 0 {
            DEFAULT_MAX_ENTRIES
        } else {
            max_entries as usize
        };
        self.maps.push(Map { values, max });
        (self.maps.len() - 1) as i32
    }

    /// Appends a long part to the pending key.
    #[inline]
    pub fn key_i64(&mut self, v: i64) {
        map::push_key_i64(&mut self.key, v);
    }

    /// Appends a string part to the pending key.
    #[inline]
    pub fn key_str(&mut self, s: Str) {
        map::push_key_str(&mut self.key, s.bytes());
    }

    #[inline]
    fn map(&mut self, id: i32) -> &mut Map {
        match self.maps.get_mut(id as usize) {
            Some(m) => m,
            None => host::error(b"invalid array id"),
        }
    }

    /// Runs `f` on the array and the pending key, then clears the key.
    #[inline]
    fn with_key<R>(
        &mut self,
        id: i32,
        f: impl FnOnce(&mut Map, &[u8], &mut Vec<Box<[u8]>>) -> R,
    ) -> R {
        let key = core::mem::take(&mut self.key);
        let mut graveyard = core::mem::take(&mut self.graveyard);
        let r = f(self.map(id), &key, &mut graveyard);
        self.graveyard = graveyard;
        self.key = key;
        self.key.clear();
        r
    }

    /// The long under the pending key, 0 if missing (nothing is inserted).
    #[inline]
    pub fn map_get_i64(&mut self, id: i32) -> i64 {
        self.with_key(id, |m, key, _| match &m.values {
            Values::Long(t) => t.get(key).copied().unwrap_or(0),
            Values::Stat(t, _) => t.get(key).map_or(0, |s| s.count),
            Values::Str(_) => 0,
        })
    }

    /// The string under the pending key, "" if missing. It stays valid
    /// until the next reset even if the element is replaced or deleted.
    pub fn map_get_str(&mut self, id: i32) -> Str {
        self.with_key(id, |m, key, _| match &m.values {
            Values::Str(t) => t.get(key).map_or(Str::EMPTY, |v| Str {
                ptr: v.as_ptr(),
                len: v.len(),
            }),
            _ => Str::EMPTY,
        })
    }

    /// Sets the long under the pending key.
    #[inline]
    pub fn map_set_i64(&mut self, id: i32, v: i64) {
        let r = self.with_key(id, |m, key, _| match &mut m.values {
            Values::Long(t) => t.get_or_insert(key, m.max, || 0).map(|e| *e = v),
            _ => Ok(()),
        });
        if r.is_err() {
            host::error(MSG_OVERFLOW);
        }
    }

    /// Sets the string under the pending key (copied into the array).
    pub fn map_set_str(&mut self, id: i32, s: Str) {
        let maxstr = self.maxstr;
        let r = self.with_key(id, |m, key, graveyard| match &mut m.values {
            Values::Str(t) => t.get_or_insert(key, m.max, Box::default).map(|e| {
                let bytes = s.bytes();
                let new: Box<[u8]> = bytes[..bytes.len().min(maxstr)].into();
                let old = core::mem::replace(e, new);
                if !old.is_empty() {
                    graveyard.push(old);
                }
            }),
            _ => Ok(()),
        });
        if r.is_err() {
            host::error(MSG_OVERFLOW);
        }
    }

    /// Adds to the long under the pending key, inserting it at 0 first;
    /// returns the new value.
    #[inline]
    pub fn map_add_i64(&mut self, id: i32, delta: i64) -> i64 {
        let r = self.with_key(id, |m, key, _| match &mut m.values {
            Values::Long(t) => t.get_or_insert(key, m.max, || 0).map(|e| {
                *e = e.wrapping_add(delta);
                *e
            }),
            _ => Ok(0),
        });
        match r {
            Ok(v) => v,
            Err(Overflow) => host::error(MSG_OVERFLOW),
        }
    }

    /// 1 if the pending key is in the array.
    pub fn map_exists(&mut self, id: i32) -> i32 {
        self.with_key(id, |m, key, _| match &m.values {
            Values::Long(t) => t.get(key).is_some(),
            Values::Str(t) => t.get(key).is_some(),
            Values::Stat(t, _) => t.get(key).is_some(),
        }) as i32
    }

    /// Deletes the element under the pending key.
    pub fn map_delete(&mut self, id: i32) {
        self.with_key(id, |m, key, graveyard| match &mut m.values {
            Values::Long(t) => {
                t.remove(key);
            }
            Values::Str(t) => {
                if let Some(old) = t.remove(key)
                    && !old.is_empty()
                {
                    graveyard.push(old);
                }
            }
            Values::Stat(t, _) => {
                t.remove(key);
            }
        });
    }

    /// Deletes every element (`delete arr`).
    pub fn map_clear(&mut self, id: i32) {
        self.with_key(id, |m, _, graveyard| match &mut m.values {
            Values::Long(t) => t.clear(drop),
            Values::Str(t) => t.clear(|old| {
                if !old.is_empty() {
                    graveyard.push(old);
                }
            }),
            Values::Stat(t, _) => t.clear(drop),
        });
    }

    /// Number of elements.
    pub fn map_len(&mut self, id: i32) -> i64 {
        let m = self.map(id);
        (match &m.values {
            Values::Long(t) => t.len(),
            Values::Str(t) => t.len(),
            Values::Stat(t, _) => t.len(),
        }) as i64
    }

    // ---- statistics ------------------------------------------------------

    /// Declares that the statistics array keeps `@hist_linear(lo, hi,
    /// step)` (call right after `map_new`, before any `<<<`).
    pub fn stat_hist_linear(&mut self, id: i32, lo: i64, hi: i64, step: i64) {
        let linear = match Linear::new(lo, hi, step) {
            Ok(l) => l,
            Err(msg) => host::error(msg.as_bytes()),
        };
        if let Values::Stat(_, cfg) = &mut self.map(id).values {
            *cfg = Some(linear);
        }
    }

    /// `arr[key] <<< v`.
    #[inline]
    pub fn stat_add(&mut self, id: i32, v: i64) {
        let r = self.with_key(id, |m, key, _| match &mut m.values {
            Values::Stat(t, linear) => t
                .get_or_insert(key, m.max, Stat::default)
                .map(|s| s.add(v, linear.as_ref())),
            _ => Ok(()),
        });
        if r.is_err() {
            host::error(MSG_OVERFLOW);
        }
    }

    /// One aggregate ([`which`]) of the element under the pending key.
    /// `@count` and `@sum` of a missing element are 0; the others raise
    /// stap's "empty aggregate".
    pub fn stat_get(&mut self, id: i32, what: i32) -> i64 {
        let r = self.with_key(id, |m, key, _| match &m.values {
            Values::Stat(t, _) => match t.get(key) {
                Some(s) if s.count > 0 => Some(match what {
                    which::COUNT => s.count,
                    which::SUM => s.sum,
                    which::MIN => s.min,
                    which::MAX => s.max,
                    which::AVG => s.avg(),
                    which::VARIANCE => s.variance(),
                    _ => 0,
                }),
                _ => None,
            },
            _ => Some(0),
        });
        match r {
            Some(v) => v,
            None if what == which::COUNT || what == which::SUM => 0,
            None => host::error(MSG_EMPTY),
        }
    }

    /// Prints `@hist_log` (kind 0) or `@hist_linear` (kind 1, which must
    /// match the declaration) of the element under the pending key.
    pub fn stat_print_hist(&mut self, id: i32, kind: i32, lo: i64, hi: i64, step: i64) {
        let mut text = core::mem::take(&mut self.tmp);
        text.clear();
        let r: Result<(), &'static [u8]> = self.with_key(id, |m, key, _| {
            let Values::Stat(t, linear) = &m.values else {
                return Err(MSG_EMPTY);
            };
            let s = match t.get(key) {
                Some(s) if s.count > 0 => s,
                _ => return Err(MSG_EMPTY),
            };
            if kind == 0 {
                stat::print_histogram(&mut text, HistKind::Log, &s.log_buckets());
                return Ok(());
            }
            match (linear, s.linear_buckets()) {
                (Some(l), Some(h)) if (l.start, l.stop, l.interval) == (lo, hi, step) => {
                    stat::print_histogram(&mut text, HistKind::Linear(l), h);
                    Ok(())
                }
                _ => Err(b"@hist_linear was not declared for this array (stat_hist_linear)"),
            }
        });
        if let Err(msg) = r {
            self.tmp = text;
            host::error(msg);
        }
        self.sink().extend_from_slice(&text);
        self.tmp = text;
        self.after_output();
    }

    // ---- iteration -------------------------------------------------------

    /// Starts a `foreach`: snapshots the keys, sorted by the value
    /// (`column` 0; `@count` for statistics) or by key part `column` (from
    /// 1), or in insertion order (`column` < 0); stable; at most `limit`
    /// keys unless `limit` < 0. Returns the iterator id.
    pub fn iter_begin(&mut self, id: i32, column: i32, descending: bool, limit: i64) -> i32 {
        enum SortVal<'a> {
            I(i64),
            S(&'a [u8]),
        }
        let m = self.map(id);
        let mut rows: Vec<(&[u8], SortVal<'_>)> = match &m.values {
            Values::Long(t) => t.iter().map(|(k, v)| (k, SortVal::I(*v))).collect(),
            Values::Str(t) => t.iter().map(|(k, v)| (k, SortVal::S(&v[..]))).collect(),
            Values::Stat(t, _) => t.iter().map(|(k, v)| (k, SortVal::I(v.count))).collect(),
        };
        if column >= 0 {
            let col = column as usize;
            rows.sort_by(|a, b| {
                let o = if col == 0 {
                    match (&a.1, &b.1) {
                        (SortVal::I(x), SortVal::I(y)) => x.cmp(y),
                        (SortVal::S(x), SortVal::S(y)) => x.cmp(y),
                        _ => Ordering::Equal,
                    }
                } else {
                    map::key_part(a.0, col - 1).cmp(&map::key_part(b.0, col - 1))
                };
                if descending { o.reverse() } else { o }
            });
        }
        if limit >= 0 {
            rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        let mut keys = Vec::with_capacity(rows.iter().map(|r| r.0.len()).sum());
        let mut bounds = Vec::with_capacity(rows.len());
        for (k, _) in &rows {
            bounds.push((keys.len() as u32, k.len() as u32));
            keys.extend_from_slice(k);
        }
        drop(rows);
        let it = Iter {
            keys,
            bounds,
            pos: 0,
        };
        match self.iters.iter().position(Option::is_none) {
            Some(i) => {
                self.iters[i] = Some(it);
                i as i32
            }
            None => {
                self.iters.push(Some(it));
                (self.iters.len() - 1) as i32
            }
        }
    }

    fn iter(&mut self, it: i32) -> &mut Iter {
        match self.iters.get_mut(it as usize).and_then(Option::as_mut) {
            Some(i) => i,
            None => host::error(b"invalid iterator"),
        }
    }

    /// Moves to the next key; 0 when there is none.
    pub fn iter_next(&mut self, it: i32) -> i32 {
        let i = self.iter(it);
        if i.pos < i.bounds.len() {
            i.pos += 1;
            1
        } else {
            i.pos = i.bounds.len() + 1;
            0
        }
    }

    fn current_part(&mut self, it: i32, idx: i32) -> Option<KeyPart<'_>> {
        let i = self.iter(it);
        let &(off, len) = i.bounds.get(i.pos.checked_sub(1)?)?;
        let key = &i.keys[off as usize..(off + len) as usize];
        map::key_part(key, usize::try_from(idx).ok()?)
    }

    /// Long part `idx` of the current key.
    pub fn iter_key_i64(&mut self, it: i32, idx: i32) -> i64 {
        match self.current_part(it, idx) {
            Some(KeyPart::I64(v)) => v,
            _ => 0,
        }
    }

    /// String part `idx` of the current key (a temporary copy).
    pub fn iter_key_str(&mut self, it: i32, idx: i32) -> Str {
        let mut tmp = core::mem::take(&mut self.tmp);
        tmp.clear();
        if let Some(KeyPart::Str(s)) = self.current_part(it, idx) {
            tmp.extend_from_slice(s);
        }
        self.tmp = tmp;
        if self.tmp.is_empty() {
            return Str::EMPTY;
        }
        self.temp_from_tmp()
    }

    /// Ends a `foreach`.
    pub fn iter_end(&mut self, it: i32) {
        if let Some(slot) = self.iters.get_mut(it as usize) {
            *slot = None;
        }
    }
}
