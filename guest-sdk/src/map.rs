//! Associative arrays: insertion-ordered hash tables keyed by encoded
//! multi-part keys.
//!
//! A key is the concatenation of its parts, each tagged so it decodes
//! without knowing the array's declaration: `0` + 8 little-endian bytes for
//! a long, `1` + a 4-byte length + the bytes for a string. Entries live in a
//! vector in insertion order (unsorted `foreach` is then deterministic and
//! sorts are stable with respect to it); a `hashbrown` table of indices finds
//! them. Deleting leaves a hole that later compaction removes.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::cmp::Ordering;
use hashbrown::HashTable;

/// Tag of a long key part.
pub const KEY_I64: u8 = 0;
/// Tag of a string key part.
pub const KEY_STR: u8 = 1;

/// Appends a long key part.
#[inline]
pub fn push_key_i64(key: &mut Vec<u8>, v: i64) {
    key.push(KEY_I64);
    key.extend_from_slice(&v.to_le_bytes());
}

/// Appends a string key part.
#[inline]
pub fn push_key_str(key: &mut Vec<u8>, s: &[u8]) {
    key.push(KEY_STR);
    key.extend_from_slice(&(s.len() as u32).to_le_bytes());
    key.extend_from_slice(s);
}

/// One decoded key part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPart<'a> {
    /// A long.
    I64(i64),
    /// A string.
    Str(&'a [u8]),
}

impl Ord for KeyPart<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (KeyPart::I64(a), KeyPart::I64(b)) => a.cmp(b),
            (KeyPart::Str(a), KeyPart::Str(b)) => a.cmp(b),
            (KeyPart::I64(_), KeyPart::Str(_)) => Ordering::Less,
            (KeyPart::Str(_), KeyPart::I64(_)) => Ordering::Greater,
        }
    }
}

impl PartialOrd for KeyPart<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Decodes part `idx` (from 0) of an encoded key.
pub fn key_part(key: &[u8], idx: usize) -> Option<KeyPart<'_>> {
    let mut rest = key;
    let mut i = 0;
    loop {
        let (&tag, tail) = rest.split_first()?;
        let (part, next) = match tag {
            KEY_I64 => {
                let bytes: [u8; 8] = tail.get(..8)?.try_into().ok()?;
                (KeyPart::I64(i64::from_le_bytes(bytes)), &tail[8..])
            }
            _ => {
                let len: [u8; 4] = tail.get(..4)?.try_into().ok()?;
                let len = u32::from_le_bytes(len) as usize;
                let s = tail.get(4..4 + len)?;
                (KeyPart::Str(s), &tail[4 + len..])
            }
        };
        if i == idx {
            return Some(part);
        }
        i += 1;
        rest = next;
    }
}

#[inline(always)]
fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Hashes a key: a seeded multiply-rotate over 8-byte words (the tail read
/// as an overlapping last word, so no variable-length copy) with a final
/// avalanche. Small (one copy in the module) and fast for the short keys
/// arrays use; the per-instance random seed keeps crafted keys from
/// predicting collisions.
#[inline]
pub fn hash_key(seed: u64, key: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mix = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
    let len = key.len();
    let mut h = seed ^ (len as u64).wrapping_mul(K);
    if len >= 8 {
        let mut i = 0;
        while i + 8 <= len {
            h = mix(h, word(key, i));
            i += 8;
        }
        if i < len {
            h = mix(h, word(key, len - 8));
        }
    } else {
        let mut w = 0u64;
        for (j, &b) in key.iter().enumerate() {
            w |= u64::from(b) << (8 * j);
        }
        h = mix(h, w);
    }
    h ^= h >> 32;
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^ (h >> 29)
}

/// Key equality a word at a time (the bytewise `memcmp` of the Wasm build
/// is slow for the 9- to 30-byte keys arrays use).
#[inline]
fn key_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len();
    if len != b.len() {
        return false;
    }
    if len < 8 {
        return a == b;
    }
    let mut i = 0;
    while i + 8 <= len {
        if word(a, i) != word(b, i) {
            return false;
        }
        i += 8;
    }
    i == len || word(a, len - 8) == word(b, len - 8)
}

struct Slot {
    hash: u64,
    key: Box<[u8]>,
    live: bool,
}

/// The key side of a [`Table`]: not generic over the value type, so the
/// hash-table code exists once in the Wasm build.
struct Index {
    seed: u64,
    table: HashTable<u32>,
    slots: Vec<Slot>,
    live: usize,
}

impl Index {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            table: HashTable::new(),
            slots: Vec::new(),
            live: 0,
        }
    }

    #[inline]
    fn find(&self, key: &[u8]) -> (u64, Option<usize>) {
        let hash = hash_key(self.seed, key);
        let slots = &self.slots;
        let found = self.table.find(hash, |&i| {
            let s = &slots[i as usize];
            s.hash == hash && key_eq(&s.key, key)
        });
        (hash, found.map(|&i| i as usize))
    }

    fn link(table: &mut HashTable<u32>, slots: &[Slot], hash: u64, i: usize) {
        table.insert_unique(hash, i as u32, |&j| slots[j as usize].hash);
    }

    fn insert(&mut self, hash: u64, key: &[u8]) -> usize {
        let i = self.slots.len();
        self.slots.push(Slot {
            hash,
            key: key.into(),
            live: true,
        });
        Self::link(&mut self.table, &self.slots, hash, i);
        self.live += 1;
        i
    }

    fn remove(&mut self, key: &[u8]) -> Option<usize> {
        let hash = hash_key(self.seed, key);
        let slots = &self.slots;
        let entry = self
            .table
            .find_entry(hash, |&i| {
                let s = &slots[i as usize];
                s.hash == hash && key_eq(&s.key, key)
            })
            .ok()?;
        let (i, _) = entry.remove();
        let slot = &mut self.slots[i as usize];
        slot.live = false;
        slot.key = Box::default();
        self.live -= 1;
        Some(i as usize)
    }

    fn wants_compaction(&self) -> bool {
        let holes = self.slots.len() - self.live;
        holes > 32 && holes > self.live
    }

    fn compact(&mut self) {
        self.slots.retain(|s| s.live);
        self.table.clear();
        for i in 0..self.slots.len() {
            Self::link(&mut self.table, &self.slots, self.slots[i].hash, i);
        }
    }

    fn clear(&mut self) {
        self.table.clear();
        self.slots.clear();
        self.live = 0;
    }
}

/// An insertion-ordered hash table from encoded keys to `V`.
pub struct Table<V> {
    index: Index,
    values: Vec<Option<V>>,
}

/// Inserting would exceed the array's maximum number of entries.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

impl<V> Table<V> {
    /// An empty table hashing with `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            index: Index::new(seed),
            values: Vec::new(),
        }
    }

    /// The value under `key`.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        let i = self.index.find(key).1?;
        self.values[i].as_ref()
    }

    /// The value under `key`, inserting `make()` first if it is missing and
    /// the table holds fewer than `max` entries.
    #[inline]
    pub fn get_or_insert(
        &mut self,
        key: &[u8],
        max: usize,
        make: impl FnOnce() -> V,
    ) -> Result<&mut V, Overflow> {
        let i = match self.index.find(key) {
            (_, Some(i)) => i,
            (hash, None) => {
                if self.index.live >= max {
                    return Err(Overflow);
                }
                self.values.push(Some(make()));
                self.index.insert(hash, key)
            }
        };
        self.values[i].as_mut().ok_or(Overflow)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        let i = self.index.remove(key)?;
        let v = self.values[i].take();
        if self.index.wants_compaction() {
            self.index.compact();
            self.values.retain(Option::is_some);
        }
        v
    }

    /// Removes every entry, handing each value to `sink`.
    pub fn clear(&mut self, sink: impl FnMut(V)) {
        self.index.clear();
        self.values.drain(..).flatten().for_each(sink);
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.live
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.index.live == 0
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.index
            .slots
            .iter()
            .zip(&self.values)
            .filter_map(|(s, v)| v.as_ref().map(|v| (&*s.key, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(v: i64) -> Vec<u8> {
        let mut key = Vec::new();
        push_key_i64(&mut key, v);
        key
    }

    #[test]
    fn hashing_and_equality() {
        let keys: [&[u8]; 6] = [
            b"",
            b"a",
            b"abcdefg",
            b"abcdefgh",
            b"abcdefghi",
            b"abcdefghijklmnopq",
        ];
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(key_eq(a, b), i == j);
            }
            assert_eq!(hash_key(1, a), hash_key(1, a));
            assert_ne!(hash_key(1, a), hash_key(2, a));
        }
        assert!(!key_eq(b"abcdefghX", b"abcdefghY"));
        assert!(!key_eq(b"Xbcdefghi", b"Ybcdefghi"));
        assert_ne!(hash_key(0, b"abcdefghX"), hash_key(0, b"abcdefghY"));
    }

    #[test]
    fn keys_round_trip() {
        let mut key = Vec::new();
        push_key_i64(&mut key, -5);
        push_key_str(&mut key, b"abc");
        push_key_i64(&mut key, 7);
        assert_eq!(key_part(&key, 0), Some(KeyPart::I64(-5)));
        assert_eq!(key_part(&key, 1), Some(KeyPart::Str(b"abc")));
        assert_eq!(key_part(&key, 2), Some(KeyPart::I64(7)));
        assert_eq!(key_part(&key, 3), None);
        assert_eq!(key_part(&[], 0), None);
    }

    #[test]
    fn insert_get_remove_compact() {
        let mut t: Table<i64> = Table::new(7);
        for i in 0..200 {
            *t.get_or_insert(&k(i), 1000, || 0).unwrap() += i;
        }
        assert_eq!(t.len(), 200);
        assert_eq!(t.get(&k(150)), Some(&150));
        for i in 0..150 {
            assert_eq!(t.remove(&k(i)), Some(i));
        }
        assert_eq!(t.remove(&k(3)), None);
        assert_eq!(t.len(), 50);
        assert!(t.values.len() < 200, "compacted");
        for i in 150..200 {
            assert_eq!(t.get(&k(i)), Some(&i));
        }
        let order: Vec<i64> = t.iter().map(|(_, v)| *v).collect();
        assert_eq!(order, (150..200).collect::<Vec<_>>());
        assert_eq!(t.get_or_insert(&k(999), 50, || 0), Err(Overflow));
        let mut sum = 0;
        t.clear(|v| sum += v);
        assert_eq!(sum, (150..200).sum::<i64>());
        assert!(t.is_empty());
    }
}
