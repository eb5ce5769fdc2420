//! The sealed segments of all partitions that hold their files open, counted
//! together, and a cap on them.
//!
//! A sealed segment keeps its `.log` descriptor and both index mappings
//! (three descriptors) while it is read, for up to
//! [`super::segment::IDLE_SEALED_PASSES`] maintenance passes after its last
//! read and up to [`super::segment::MAX_OPEN_SEALED_SEGMENTS`] per partition,
//! and until a flush covers it after it was written. Per partition that is
//! bounded; over thousands of partitions read from their history at once it
//! is not, and descriptors are a process's resource. So the count is the
//! process's too: when it passes the limit [`set_limit`] gave (the broker
//! derives it from its open-file limit, [`crate::fd_limit::fit`]), a
//! partition that opens one more keeps only its two most recently read, and
//! each maintenance pass, while the count stays past the cap, releases in
//! each partition the sealed segments not read during it or the pass
//! before. A segment not yet durable stays open until a flush covers it, as
//! always (so a writeback error reaches the `fdatasync` on the descriptor
//! that wrote), and each partition keeps the two it reads now, so the
//! count can pass the cap by those: two per partition being read, and the
//! segments written and not yet flushed (a produce that seals one while
//! the count is past the cap has it flushed at once: see
//! `Partition::append`). Every path that opens a sealed
//! segment's files (reads, time lookups, a follower's catch-up, the
//! largest-timestamp lookup) lists it first, so no open goes uncounted.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Sealed segments counted as open, all partitions of this process.
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// The cap; none until [`set_limit`].
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets the most sealed segments all partitions keep open together (at
/// least 1).
pub fn set_limit(segments: usize) {
    LIMIT.store(segments.max(1), Ordering::Relaxed);
}

/// The cap ([`usize::MAX`] until [`set_limit`]).
pub fn limit() -> usize {
    LIMIT.load(Ordering::Relaxed)
}

/// Sealed segments counted as open now.
pub fn open() -> usize {
    OPEN.load(Ordering::Relaxed)
}

/// Whether more are open than the cap allows.
pub(crate) fn over() -> bool {
    OPEN.load(Ordering::Relaxed) > LIMIT.load(Ordering::Relaxed)
}

/// One sealed segment counted as open; uncounted when dropped, so the
/// count follows every way an entry leaves a partition's list (released,
/// deleted by retention or truncation, the partition closed or deleted).
#[derive(Debug)]
pub(crate) struct Held(());

impl Held {
    pub(crate) fn new() -> Self {
        OPEN.fetch_add(1, Ordering::Relaxed);
        Held(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_segment_is_counted_until_dropped() {
        // Other tests of this process open and close segments meanwhile, so
        // only this test's own share is certain: at least its two.
        let a = Held::new();
        let b = Held::new();
        assert!(open() >= 2);
        drop((a, b));
    }
}
