//! A process-wide bound on the record batches being decompressed at once.
//!
//! Each decompression holds a buffer of up to `max_decompressed_batch_bytes`
//! (128 MiB by default) for as long as it runs, and the work runs on the
//! blocking pool, up to 512 threads. A few KiB of zstd can decompress to
//! 128 MiB: sixty connections that each sent such a batch at once took a
//! broker to 4 GiB resident, a few hundred would exhaust the machine. So
//! whatever decompresses a batch — checking a produced batch, re-encoding
//! it for a topic's codec, reading a stored one's records for a timestamp
//! look-up — first takes one of a fixed number of slots
//! ([`set_slots`]: `max_decompressed_bytes_in_flight /
//! max_decompressed_batch_bytes`, at least one), waiting on its blocking
//! thread while all are taken. Uncompressed batches take none.
//!
//! Slots are re-entrant per thread: work that holds one and calls other
//! work that asks for one (a re-encoding that checks the batches it
//! re-encodes) does not wait for itself.

use std::cell::Cell;
use std::sync::{Condvar, Mutex};

/// Slots when [`set_slots`] was never called: a 512 MiB bound with the
/// default 128 MiB per batch.
pub const DEFAULT_SLOTS: usize = 4;

struct Slots {
    /// (slots in all, slots taken)
    state: Mutex<(usize, usize)>,
    freed: Condvar,
}

static SLOTS: Slots = Slots {
    state: Mutex::new((DEFAULT_SLOTS, 0)),
    freed: Condvar::new(),
};

thread_local! {
    /// Whether this thread holds a slot.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

/// A slot, held until dropped. Not `Send`: it is released by the thread that
/// took it.
#[derive(Debug)]
pub struct Slot {
    /// False for a nested slot of a thread that already held one.
    owned: bool,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Sets how many batches may be decompressed at once (at least 1). Slots
/// taken stay taken; if more are taken than the new number, new ones wait
/// until enough are released.
pub fn set_slots(n: usize) {
    let mut s = lock();
    s.0 = n.max(1);
    drop(s);
    SLOTS.freed.notify_all();
}

/// The slots for `in_flight` bytes of decompressed output when each batch
/// may decompress to `per_batch` bytes: at least one.
pub fn slots_for(in_flight: u64, per_batch: u64) -> usize {
    usize::try_from(in_flight / per_batch.max(1))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Takes a slot, blocking the calling thread while every slot is taken.
/// Call only off the async reactor (the blocking pool, a thread of its
/// own). Immediate if this thread already holds one.
pub fn enter() -> Slot {
    if HOLDING.with(Cell::get) {
        return Slot {
            owned: false,
            _not_send: std::marker::PhantomData,
        };
    }
    let mut s = lock();
    while s.1 >= s.0 {
        s = SLOTS
            .freed
            .wait(s)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    s.1 += 1;
    drop(s);
    HOLDING.with(|h| h.set(true));
    Slot {
        owned: true,
        _not_send: std::marker::PhantomData,
    }
}

/// Slots taken right now.
pub fn taken() -> usize {
    lock().1
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        HOLDING.with(|h| h.set(false));
        let mut s = lock();
        s.1 = s.1.saturating_sub(1);
        drop(s);
        SLOTS.freed.notify_one();
    }
}

/// The counts are plain numbers updated in one step each: a poisoned lock
/// still guards consistent data.
fn lock() -> std::sync::MutexGuard<'static, (usize, usize)> {
    SLOTS
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn slots_for_a_memory_bound() {
        assert_eq!(slots_for(512 << 20, 128 << 20), 4);
        assert_eq!(slots_for(100, 128 << 20), 1);
        assert_eq!(slots_for(1 << 30, 0), 1 << 30);
    }

    /// The slots are process-wide, and other tests decompress: this test
    /// alone changes their number, and measures only the threads it starts.
    #[test]
    fn no_more_than_the_slots_run_at_once_and_a_nested_slot_does_not_wait() {
        let slots = DEFAULT_SLOTS;
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..slots * 4)
            .map(|_| {
                let running = Arc::clone(&running);
                let most = Arc::clone(&most);
                std::thread::spawn(move || {
                    let _slot = enter();
                    let _nested = enter();
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let most = most.load(Ordering::SeqCst);
        assert!(most >= 1 && most <= slots, "{most} at once");
    }
}
