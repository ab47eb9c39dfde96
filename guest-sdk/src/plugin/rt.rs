//! What [`export_plugin!`](crate::export_plugin) expands to call: the
//! plugin's state slot, record dispatch and the exit flag. Not part of the
//! API a plugin author uses directly.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use wasmtap_abi::{HEADER_LEN, RECORD_ALIGN};

use super::{Event, Plugin, ProbeId};

/// Holds the one plugin value of the instance.
pub struct Slot<T>(UnsafeCell<Option<T>>);

// SAFETY: wasm32-unknown-unknown has one thread, and the host never
// re-enters an export while another runs.
unsafe impl<T> Sync for Slot<T> {}

impl<T> Slot<T> {
    /// An empty slot; [`init`] fills it.
    pub const fn new() -> Self {
        Self(UnsafeCell::new(None))
    }

    #[expect(
        clippy::mut_from_ref,
        reason = "one call at a time on a single thread; see the Sync impl"
    )]
    fn get(&self) -> &mut Option<T> {
        // SAFETY: see the `Sync` impl: one call at a time, and handlers get
        // the value only for the duration of that call.
        unsafe { &mut *self.0.get() }
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self::new()
    }
}

static EXIT: AtomicBool = AtomicBool::new(false);

/// Sets the exit flag.
pub fn request_exit() {
    EXIT.store(true, Ordering::Relaxed);
}

/// The `exit_requested` export.
pub fn exit_requested() -> i32 {
    EXIT.load(Ordering::Relaxed) as i32
}

fn plugin<P: Plugin>(slot: &Slot<P>) -> &mut P {
    slot.get().get_or_insert_with(P::new)
}

/// The `init` export.
pub fn init<P: Plugin>(slot: &Slot<P>) {
    plugin(slot);
}

/// The `run_probe` export.
pub fn run_probe<P: Plugin>(slot: &Slot<P>, probe: i32) {
    plugin(slot).probe(ProbeId(probe as u32));
    crate::exports::with(|rt| rt.scratch_reset());
}

/// The `handle_batch` export: walks the records (each padded to
/// `RECORD_ALIGN`) and hands each to [`Plugin::event`].
pub fn handle_batch<P: Plugin>(slot: &Slot<P>, ptr: i32, len: i32) {
    if len <= 0 {
        return;
    }
    // SAFETY: the host copied `len` bytes of records at `ptr` (a buffer
    // from `batch_buffer`) and they stay untouched during this call.
    let batch =
        unsafe { core::slice::from_raw_parts(ptr as u32 as usize as *const u8, len as usize) };
    let plugin = plugin(slot);
    let mut at = 0;
    while at + HEADER_LEN <= batch.len() && !EXIT.load(Ordering::Relaxed) {
        let word = |i: usize| {
            u32::from_ne_bytes([batch[i], batch[i + 1], batch[i + 2], batch[i + 3]]) as usize
        };
        let (probe, rec_len) = (word(at), word(at + 4));
        if rec_len < HEADER_LEN || at + rec_len > batch.len() {
            break;
        }
        if let Some(spec) = P::PROBES.get(probe) {
            let event = Event::new(ProbeId(probe as u32), &batch[at..at + rec_len], spec);
            plugin.event(&event);
            crate::exports::with(|rt| rt.scratch_reset());
        }
        at += rec_len.next_multiple_of(RECORD_ALIGN);
    }
}
