//! The scratch arena: where temporary strings live until the script calls
//! `scratch_reset` (after each record or probe).
//!
//! A bump allocator over a list of chunks: allocation is a pointer bump,
//! nothing is freed individually, and a reset rewinds to the start. Chunks
//! never move, so string values (raw pointers held by the script) stay valid
//! until the reset.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

/// Size of the first chunk and the minimum of later ones.
pub const CHUNK: usize = 64 * 1024;
/// A reset keeps one chunk of the size a probe needed, up to this.
pub const MAX_KEPT: usize = 4 * 1024 * 1024;

/// A chunked bump allocator for temporary bytes.
#[derive(Default)]
pub struct Arena {
    chunks: Vec<Box<[u8]>>,
    /// Bytes used in the last chunk.
    used: usize,
}

impl Arena {
    /// An empty arena; the first chunk is allocated on first use.
    pub const fn new() -> Self {
        Self {
            chunks: Vec::new(),
            used: 0,
        }
    }

    /// Reserves `len` bytes and returns a pointer to them, valid until
    /// [`Arena::reset`].
    #[inline]
    pub fn alloc(&mut self, len: usize) -> *mut u8 {
        if let Some(last) = self.chunks.last_mut()
            && last.len() - self.used >= len
        {
            // SAFETY: used + len <= chunk length.
            let p = unsafe { last.as_mut_ptr().add(self.used) };
            self.used += len;
            return p;
        }
        self.grow(len)
    }

    #[cold]
    fn grow(&mut self, len: usize) -> *mut u8 {
        let size = len.max(CHUNK);
        self.chunks.push(vec![0u8; size].into_boxed_slice());
        self.used = len;
        self.chunks
            .last_mut()
            .map_or(core::ptr::null_mut(), |c| c.as_mut_ptr())
    }

    /// Copies `bytes` into the arena.
    #[inline]
    pub fn copy(&mut self, bytes: &[u8]) -> *const u8 {
        let p = self.alloc(bytes.len());
        // SAFETY: `p` has room for `bytes.len()` bytes and does not overlap
        // `bytes`, which is either outside the arena or an earlier
        // allocation.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
        p
    }

    /// Grows the allocation that ends at `end` by `extra` bytes in place,
    /// if it is the newest one and its chunk has room; used to append to a
    /// fresh concatenation without copying it again.
    #[inline]
    pub fn extend_last(&mut self, end: *const u8, extra: usize) -> bool {
        match self.chunks.last_mut() {
            Some(last) => {
                let top = last.as_ptr().wrapping_add(self.used);
                if top == end && last.len() - self.used >= extra {
                    self.used += extra;
                    true
                } else {
                    false
                }
            }
            None => false,
        }
    }

    /// Forgets every allocation. If a probe needed several chunks, they are
    /// merged into one so the next probe does not chain again.
    pub fn reset(&mut self) {
        if self.chunks.len() > 1 {
            let total: usize = self.chunks.iter().map(|c| c.len()).sum();
            self.chunks.clear();
            self.chunks
                .push(vec![0u8; total.min(MAX_KEPT)].into_boxed_slice());
        }
        self.used = 0;
    }

    /// Bytes currently reserved in chunks (for tests and limits).
    pub fn capacity(&self) -> usize {
        self.chunks.iter().map(|c| c.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocations_are_stable_and_reset_merges() {
        let mut a = Arena::new();
        let p = a.copy(b"hello");
        let big = a.alloc(CHUNK * 2);
        assert!(!big.is_null());
        // SAFETY: p points at 5 bytes copied above, still valid.
        assert_eq!(unsafe { core::slice::from_raw_parts(p, 5) }, b"hello");
        assert_eq!(a.chunks.len(), 2);
        a.reset();
        assert_eq!(a.chunks.len(), 1);
        assert_eq!(a.capacity(), CHUNK * 3);
    }

    #[test]
    fn extend_last_only_for_newest() {
        let mut a = Arena::new();
        let p = a.copy(b"ab");
        let end = p.wrapping_add(2);
        assert!(a.extend_last(end, 3));
        let q = a.copy(b"x");
        assert!(!a.extend_last(end.wrapping_add(3), 1) || q == end.wrapping_add(3));
        assert!(!a.extend_last(end, 1));
    }
}
