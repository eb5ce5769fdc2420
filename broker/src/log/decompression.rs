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
//! max_decompressed_batch_bytes`, at least one). The request paths wait for
//! theirs before handing the work to the blocking pool ([`acquire`], then
//! [`Slot::adopt`] on the blocking thread), so requests waiting for a slot
//! hold no thread: with the waiting on the blocking threads themselves, a
//! few hundred queued bombs took every one of the pool's 512 threads and
//! uncompressed produces, which need no slot, waited behind them.
//! Decompression reached otherwise takes one where it runs ([`enter`]).
//! Uncompressed batches take none.
//!
//! Slots are re-entrant per thread: work that holds one and calls other
//! work that asks for one (a re-encoding that checks the batches it
//! re-encodes) does not wait for itself.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Semaphore, SemaphorePermit};

/// Slots when [`set_slots`] was never called: a 512 MiB bound with the
/// default 128 MiB per batch.
pub const DEFAULT_SLOTS: usize = 4;

static SLOTS: Semaphore = Semaphore::const_new(DEFAULT_SLOTS);
/// The number of slots [`SLOTS`] was set to.
static TOTAL: AtomicUsize = AtomicUsize::new(DEFAULT_SLOTS);

thread_local! {
    /// Whether this thread holds a slot.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

/// A slot taken with [`acquire`] (on the async side, so that waiting for
/// it holds no thread), to be [`Slot::adopt`]ed by the blocking thread
/// that decompresses.
#[derive(Debug)]
pub struct Slot(SemaphorePermit<'static>);

/// A slot held by the current thread: [`enter`] on this thread returns at
/// once while it lives. Not `Send`: it is released by the thread that holds
/// it.
#[derive(Debug)]
pub struct Held {
    /// `None` for a nested hold of a thread that already held a slot.
    permit: Option<SemaphorePermit<'static>>,
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Sets how many batches may be decompressed at once (at least 1). Meant
/// for start-up, before any is taken: slots taken then stay taken.
pub fn set_slots(n: usize) {
    let n = n.max(1);
    let old = TOTAL.swap(n, Ordering::AcqRel);
    if n > old {
        SLOTS.add_permits(n - old);
    } else {
        SLOTS.forget_permits(old - n);
    }
}

/// The slots for `in_flight` bytes of decompressed output when each batch
/// may decompress to `per_batch` bytes: at least one.
pub fn slots_for(in_flight: u64, per_batch: u64) -> usize {
    usize::try_from(in_flight / per_batch.max(1))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Waits for a slot without holding a thread: for work that will
/// decompress on the blocking pool, taken before it is handed there.
pub async fn acquire() -> Slot {
    match SLOTS.acquire().await {
        Ok(p) => Slot(p),
        // Never closed.
        Err(_) => unreachable!("the decompression slots are never closed"),
    }
}

impl Slot {
    /// Makes this thread the holder: decompression on it takes no other
    /// slot until the returned hold is dropped.
    pub fn adopt(self) -> Held {
        if HOLDING.with(Cell::get) {
            // Already holding one: this one is not needed.
            return Held {
                permit: None,
                _not_send: std::marker::PhantomData,
            };
        }
        HOLDING.with(|h| h.set(true));
        Held {
            permit: Some(self.0),
            _not_send: std::marker::PhantomData,
        }
    }
}

/// Takes a slot, blocking the calling thread while every slot is taken:
/// for decompression whose caller did not [`acquire`] one first. Call only
/// off the async reactor (the blocking pool, a thread of its own).
/// Immediate if this thread already holds one.
pub fn enter() -> Held {
    if HOLDING.with(Cell::get) {
        return Held {
            permit: None,
            _not_send: std::marker::PhantomData,
        };
    }
    futures::executor::block_on(acquire()).adopt()
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.permit.take().is_some() {
            HOLDING.with(|h| h.set(false));
        }
    }
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

    /// The slots are process-wide, and other tests may hold some: only the
    /// threads this test starts are counted.
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

    /// A slot acquired on the async side and adopted by the blocking thread
    /// covers the decompression there: a nested `enter` does not wait.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_adopted_slot_covers_the_decompression_under_it() {
        let slot = acquire().await;
        tokio::task::spawn_blocking(move || {
            let held = slot.adopt();
            let inner = enter();
            assert!(inner.permit.is_none(), "nested: no second slot");
            assert!(HOLDING.with(Cell::get));
            drop(inner);
            assert!(HOLDING.with(Cell::get), "still held by the adopted slot");
            drop(held);
            assert!(!HOLDING.with(Cell::get));
        })
        .await
        .unwrap();
    }
}
