//! Associative arrays and statistics for plugins: thin typed handles on the
//! runtime's maps (the same tables, limits and stap semantics compiled
//! scripts get).

use alloc::string::String;
use alloc::vec::Vec;

use wasmtap_abi::wasm::{stat, value_kind};

use core::marker::PhantomData;

use crate::rt::{Runtime, Str};

/// A value usable as (part of) a map key: integers, strings, and tuples of
/// up to three of them.
pub trait Key {
    /// Appends this key's parts to the runtime's pending key.
    fn push(&self, rt: &mut Runtime);
    /// Appends the kind of each part (`true` for an integer) so iteration
    /// can read the parts back.
    fn kinds(out: &mut Vec<bool>)
    where
        Self: Sized;
}

macro_rules! int_key {
    ($($t:ty),*) => {$(
        impl Key for $t {
            fn push(&self, rt: &mut Runtime) {
                rt.key_i64(*self as i64);
            }
            fn kinds(out: &mut Vec<bool>) {
                out.push(true);
            }
        }
    )*};
}
int_key!(i64, u64, i32, u32, usize);

impl Key for &str {
    fn push(&self, rt: &mut Runtime) {
        // SAFETY: the runtime copies the key before `self` goes away.
        rt.key_str(unsafe { Str::from_raw(self.as_ptr(), self.len()) });
    }
    fn kinds(out: &mut Vec<bool>) {
        out.push(false);
    }
}

impl Key for String {
    fn push(&self, rt: &mut Runtime) {
        self.as_str().push(rt);
    }
    fn kinds(out: &mut Vec<bool>) {
        out.push(false);
    }
}

impl<A: Key, B: Key> Key for (A, B) {
    fn push(&self, rt: &mut Runtime) {
        self.0.push(rt);
        self.1.push(rt);
    }
    fn kinds(out: &mut Vec<bool>) {
        A::kinds(out);
        B::kinds(out);
    }
}

impl<A: Key, B: Key, C: Key> Key for (A, B, C) {
    fn push(&self, rt: &mut Runtime) {
        self.0.push(rt);
        self.1.push(rt);
        self.2.push(rt);
    }
    fn kinds(out: &mut Vec<bool>) {
        A::kinds(out);
        B::kinds(out);
        C::kinds(out);
    }
}

/// One part of a key read back while iterating.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyPart {
    /// An integer part.
    Int(i64),
    /// A string part.
    Str(String),
}

impl core::fmt::Display for KeyPart {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Honors width and alignment (`{:<16}`) like the values themselves.
        match self {
            Self::Int(v) => core::fmt::Display::fmt(v, f),
            Self::Str(s) => f.pad(s),
        }
    }
}

/// One element of a sorted iteration: its key parts and its value (the
/// count, for statistics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key's parts, in order.
    pub key: Vec<KeyPart>,
    /// The value (`@count` for statistics).
    pub value: i64,
}

fn with<R>(f: impl FnOnce(&mut Runtime) -> R) -> R {
    crate::exports::with(f)
}

/// The elements of map `id` by value, largest first, at most `limit`;
/// `kinds` says how to read the key parts back.
fn top(id: i32, kinds: &[bool], stats: bool, limit: usize) -> Vec<Entry> {
    with(|rt| {
        let it = rt.iter_begin(id, 0, true, limit as i64);
        let mut keys = Vec::new();
        while rt.iter_next(it) != 0 {
            let key: Vec<KeyPart> = (0..kinds.len() as i32)
                .zip(kinds)
                .map(|(idx, &int)| {
                    if int {
                        KeyPart::Int(rt.iter_key_i64(it, idx))
                    } else {
                        let s = rt.iter_key_str(it, idx);
                        KeyPart::Str(String::from_utf8_lossy(s.bytes()).into_owned())
                    }
                })
                .collect();
            keys.push(key);
        }
        rt.iter_end(it);
        keys.into_iter()
            .map(|key| {
                for part in &key {
                    match part {
                        KeyPart::Int(v) => rt.key_i64(*v),
                        // SAFETY: copied by the runtime before `part` drops.
                        KeyPart::Str(s) => {
                            rt.key_str(unsafe { Str::from_raw(s.as_ptr(), s.len()) })
                        }
                    }
                }
                let value = if stats {
                    rt.stat_get(id, stat::COUNT)
                } else {
                    rt.map_get_i64(id)
                };
                Entry { key, value }
            })
            .collect()
    })
}

fn kinds_of<K: Key>() -> Vec<bool> {
    let mut kinds = Vec::new();
    K::kinds(&mut kinds);
    kinds
}

/// An array of longs (stap's `global counts`), e.g. counts per name.
/// `K` is the key type (an integer, `String`, or a tuple), used to read
/// keys back in [`LongMap::top`]; any [`Key`] may be passed to lookups.
#[derive(Debug)]
pub struct LongMap<K: Key>(i32, PhantomData<fn(K)>);

impl<K: Key> LongMap<K> {
    /// An empty array of at most `max_entries` elements (0: the runtime's
    /// default, 100 000).
    pub fn new(max_entries: u32) -> Self {
        Self(
            with(|rt| rt.map_new(value_kind::LONG, max_entries as i32)),
            PhantomData,
        )
    }

    /// Adds `delta` to the element (0 when new); returns the new value.
    pub fn add(&self, key: impl Key, delta: i64) -> i64 {
        with(|rt| {
            key.push(rt);
            rt.map_add_i64(self.0, delta)
        })
    }

    /// Sets the element.
    pub fn set(&self, key: impl Key, value: i64) {
        with(|rt| {
            key.push(rt);
            rt.map_set_i64(self.0, value)
        })
    }

    /// The element, if present.
    pub fn get(&self, key: impl Key) -> Option<i64> {
        with(|rt| {
            key.push(rt);
            if rt.map_exists(self.0) == 0 {
                return None;
            }
            key.push(rt);
            Some(rt.map_get_i64(self.0))
        })
    }

    /// Removes the element and returns it, if present.
    pub fn remove(&self, key: impl Key) -> Option<i64> {
        let value = self.get(&key)?;
        with(|rt| {
            key.push(rt);
            rt.map_delete(self.0)
        });
        Some(value)
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with(|rt| rt.map_len(self.0)) as usize
    }

    /// Whether the array is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every element.
    pub fn clear(&self) {
        with(|rt| rt.map_clear(self.0))
    }

    /// The elements with the largest values, largest first, at most
    /// `limit` (stap's `foreach (k in a- limit N)`).
    pub fn top(&self, limit: usize) -> Vec<Entry> {
        top(self.0, &kinds_of::<K>(), false, limit)
    }
}

impl<K: Key> Key for &K {
    fn push(&self, rt: &mut Runtime) {
        (*self).push(rt);
    }
    fn kinds(out: &mut Vec<bool>) {
        K::kinds(out);
    }
}

/// An array of strings.
#[derive(Debug)]
pub struct StrMap<K: Key>(i32, PhantomData<fn(K)>);

impl<K: Key> StrMap<K> {
    /// An empty array of at most `max_entries` elements (0: the default).
    pub fn new(max_entries: u32) -> Self {
        Self(
            with(|rt| rt.map_new(value_kind::STRING, max_entries as i32)),
            PhantomData,
        )
    }

    /// Sets the element (the runtime keeps a copy).
    pub fn set(&self, key: impl Key, value: &str) {
        with(|rt| {
            key.push(rt);
            // SAFETY: copied by the runtime.
            rt.map_set_str(self.0, unsafe {
                Str::from_raw(value.as_ptr(), value.len())
            })
        })
    }

    /// A copy of the element, if present.
    pub fn get(&self, key: impl Key) -> Option<String> {
        with(|rt| {
            key.push(rt);
            if rt.map_exists(self.0) == 0 {
                return None;
            }
            key.push(rt);
            Some(String::from_utf8_lossy(rt.map_get_str(self.0).bytes()).into_owned())
        })
    }

    /// Removes the element and returns it, if present.
    pub fn remove(&self, key: impl Key) -> Option<String> {
        let value = self.get(&key)?;
        with(|rt| {
            key.push(rt);
            rt.map_delete(self.0)
        });
        Some(value)
    }
}

/// An array of statistics (stap's `<<<` aggregates): count, sum, min,
/// max, average and the log histogram of every element.
#[derive(Debug)]
pub struct StatsMap<K: Key>(i32, PhantomData<fn(K)>);

impl<K: Key> StatsMap<K> {
    /// An empty array of at most `max_entries` elements (0: the default).
    pub fn new(max_entries: u32) -> Self {
        Self(
            with(|rt| rt.map_new(value_kind::STATS, max_entries as i32)),
            PhantomData,
        )
    }

    /// `stats[key] <<< value`.
    pub fn add(&self, key: impl Key, value: i64) {
        with(|rt| {
            key.push(rt);
            rt.stat_add(self.0, value)
        })
    }

    fn get(&self, key: impl Key, which: i32) -> i64 {
        with(|rt| {
            key.push(rt);
            rt.stat_get(self.0, which)
        })
    }

    /// `@count` (0 for a missing element).
    pub fn count(&self, key: impl Key) -> i64 {
        self.get(key, stat::COUNT)
    }

    /// `@sum` (0 for a missing element).
    pub fn sum(&self, key: impl Key) -> i64 {
        self.get(key, stat::SUM)
    }

    /// `@min`; an empty element is a run-time error, as in stap.
    pub fn min(&self, key: impl Key) -> i64 {
        self.get(key, stat::MIN)
    }

    /// `@max`; an empty element is a run-time error.
    pub fn max(&self, key: impl Key) -> i64 {
        self.get(key, stat::MAX)
    }

    /// `@avg`; an empty element is a run-time error.
    pub fn avg(&self, key: impl Key) -> i64 {
        self.get(key, stat::AVG)
    }

    /// Prints `@hist_log` of the element in stap's layout; an empty
    /// element is a run-time error.
    pub fn print_hist_log(&self, key: impl Key) {
        with(|rt| {
            key.push(rt);
            rt.stat_print_hist(self.0, 0, 0, 0, 0)
        })
    }

    /// The elements with the most values, most first, at most `limit`
    /// (the entry's value is `@count`).
    pub fn top(&self, limit: usize) -> Vec<Entry> {
        top(self.0, &kinds_of::<K>(), true, limit)
    }
}
