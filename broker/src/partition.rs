//! A partition as the service sees it: the [`PartitionLog`] plus the policy
//! around it — when an append is acknowledged (acks none / leader / all,
//! flush before ack), when readers may see it (waking long polls), and
//! whether the partition is offline — so front-ends never decide these.
//!
//! Dependencies point one way: front-end → service → partition → log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};

use tokio::sync::{Notify, watch};

use crate::log::{AppendInfo, FlushPolicy, LogError, PartitionLog};

/// How much of an append must be done before the producer is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acks {
    /// No answer at all: the producer does not wait.
    None,
    /// Answer once the records are in the leader's log (page cache), unless
    /// the topic flushes before acknowledging.
    Leader,
    /// Answer only once the records are durable (`fdatasync`).
    All,
}

/// Where an append landed and what it still needs before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// What the log reported.
    pub info: AppendInfo,
    /// `Some(offset)`: the records must be flushed up to `offset` (with
    /// [`Partition::flush_to`]) before the producer is answered, and readers
    /// see them only then. `None`: already visible and acknowledgeable.
    pub flush_to: Option<u64>,
}

/// Traffic counters of one partition since the broker started (relaxed
/// atomics, read by the metrics exposition).
#[derive(Debug, Default)]
pub struct PartitionCounters {
    /// Records appended.
    pub records_appended: AtomicU64,
    /// Bytes of record batches appended.
    pub bytes_appended: AtomicU64,
    /// Bytes of record batches put in fetch responses.
    pub bytes_fetched: AtomicU64,
}

/// One partition served by the broker: its log, a signal that fires when
/// its high watermark may have moved (wakes long-poll fetches), and an
/// offline flag readable without touching the log's lock.
#[derive(Debug)]
pub struct Partition {
    /// The partition log (shared with the log flusher thread while a group
    /// commit for it is pending).
    pub log: Arc<PartitionLog>,
    watermark: watch::Sender<u64>,
    /// The highest high-watermark value a fetch has resolved its ranges
    /// against (see [`Partition::fetch_resolved`]).
    resolved: AtomicU64,
    /// Wakes [`Partition::fetch_turn`] waiters when `resolved` moves or a
    /// fetch stops watching.
    resolved_signal: Notify,
    /// [`Partition::fetch_turn`] calls under way: fetches signal only when
    /// one is, so a fetch that nobody waits for takes no lock.
    turn_waiters: AtomicUsize,
    offline: AtomicBool,
    /// Set once the partition's topic is deleted.
    retired: AtomicBool,
    /// Traffic counters.
    pub counters: PartitionCounters,
}

/// Counts a [`Partition::fetch_turn`] call while it is under way (also
/// when its future is dropped mid-wait).
struct TurnWaiter<'a>(&'a AtomicUsize);

impl Drop for TurnWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Partition {
    /// Wraps an opened log. Takes the log's lock once (to read its offline
    /// state): call it where blocking is allowed.
    pub fn new(log: PartitionLog) -> Self {
        let (watermark, _) = watch::channel(log.high_watermark());
        let offline = AtomicBool::new(log.is_offline());
        Partition {
            log: Arc::new(log),
            watermark,
            resolved: AtomicU64::new(0),
            resolved_signal: Notify::new(),
            turn_waiters: AtomicUsize::new(0),
            offline,
            retired: AtomicBool::new(false),
            counters: PartitionCounters::default(),
        }
    }

    /// Publishes the current high watermark to waiting fetches.
    pub fn notify(&self) {
        let hw = self.log.high_watermark();
        self.watermark.send_if_modified(|v| {
            let changed = *v != hw;
            *v = hw;
            changed
        });
    }

    /// Publishes the high watermark and wakes every waiting fetch even if it
    /// did not move: after the log was cut (a replica's truncation), a
    /// fetch parked past the high watermark may now be past the log's end,
    /// and answers `OffsetOutOfRange` at once instead of at its deadline.
    pub fn wake_all(&self) {
        let hw = self.log.high_watermark();
        self.watermark.send_modify(|v| *v = hw);
    }

    /// Marks the partition deleted (its log was shut down) and wakes every
    /// waiting fetch, which then answers `UnknownTopicOrPartition` for it
    /// rather than waiting out its deadline.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
        self.watermark.send_modify(|_| {});
    }

    /// Whether [`Partition::retire`] was called.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::SeqCst)
    }

    /// A receiver that sees every later high-watermark change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.watermark.subscribe()
    }

    /// Whether a fetch holds a subscription (it is waiting in a long poll,
    /// or was just woken and has not answered yet).
    pub fn has_waiters(&self) -> bool {
        self.watermark.receiver_count() > 0
    }

    /// Fetches holding a subscription.
    pub fn waiters(&self) -> usize {
        self.watermark.receiver_count()
    }

    /// Called by a fetch after it resolved its ranges against the high
    /// watermark `seen` (the value it took from its subscription): wakes
    /// [`Partition::fetch_turn`] waiters that wait for it.
    pub fn fetch_resolved(&self, seen: u64) {
        self.resolved.fetch_max(seen, Ordering::SeqCst);
        self.signal_turn_waiters();
    }

    /// Called after a fetch dropped its subscription (answered, timed out
    /// or abandoned): wakes [`Partition::fetch_turn`] waiters, which stop
    /// waiting once no fetch watches.
    pub fn fetch_unsubscribed(&self) {
        self.signal_turn_waiters();
    }

    /// Signals [`Partition::fetch_turn`] waiters, if there are any. The
    /// fence pairs with the one in `fetch_turn`: either this sees the
    /// waiter's count, or the waiter sees the change made before this
    /// call (a new `resolved`, a dropped subscription) and does not wait.
    fn signal_turn_waiters(&self) {
        fence(Ordering::SeqCst);
        if self.turn_waiters.load(Ordering::SeqCst) > 0 {
            self.resolved_signal.notify_waiters();
        }
    }

    /// Waits until a fetch has resolved against the current high watermark,
    /// or no fetch watches this partition: an append that woke a long poll
    /// awaits this before answering its producer, so the consumer's records
    /// leave first (see `Service::let_woken_fetches_answer`, which uses it
    /// when one fetch watches the partition; with more, `resolved` is the
    /// furthest any of them got). Unlike a yield, the waiting task is woken
    /// by the fetch itself, on the fetch's thread, so no idle runtime
    /// thread is woken for it.
    ///
    /// It never outlives the watching fetches: a fetch resolves again after
    /// every change of the watermark it is woken by, and signals when it
    /// drops its subscription (answered, failed or abandoned).
    pub async fn fetch_turn(&self) {
        let target = *self.watermark.borrow();
        self.turn_waiters.fetch_add(1, Ordering::SeqCst);
        let _counted = TurnWaiter(&self.turn_waiters);
        loop {
            // Registered before the check, so a signal in between is kept.
            let signalled = self.resolved_signal.notified();
            fence(Ordering::SeqCst);
            if self.watermark.receiver_count() == 0
                || self.resolved.load(Ordering::SeqCst) >= target
            {
                return;
            }
            signalled.await;
        }
    }

    /// Whether the partition refuses writes after a failed flush, as of the
    /// last write, flush or maintenance pass. Lock-free: metadata requests
    /// read it on the reactor.
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// Re-reads the log's offline state (takes the log's lock: blocking).
    pub fn refresh_offline(&self) {
        self.offline.store(self.log.is_offline(), Ordering::Release);
    }

    /// Whether an append with `acks` must be flushed before it is answered.
    pub fn needs_flush(&self, acks: Acks) -> bool {
        acks == Acks::All || self.log.config().flush == FlushPolicy::BeforeAck
    }

    /// Appends `records` (whole RecordBatch v2 batches, offsets rewritten in
    /// place). If no flush is needed the new high watermark is published at
    /// once; otherwise the caller flushes with [`Partition::flush_to`].
    /// Blocking (file I/O): call it off the reactor.
    pub fn append(&self, records: &mut [u8], acks: Acks) -> Result<Appended, LogError> {
        let records_len = records.len() as u64;
        let result = self.log.append(records);
        match result {
            Ok(info) => {
                let records = (info.last_offset + 1).saturating_sub(info.base_offset);
                let c = &self.counters;
                c.records_appended.fetch_add(records, Ordering::Relaxed);
                c.bytes_appended.fetch_add(records_len, Ordering::Relaxed);
                let flush_to = self.needs_flush(acks).then_some(info.next_offset);
                if flush_to.is_none() {
                    self.notify();
                }
                if info.rolled && flush_to.is_none() && crate::log::open_sealed::over() {
                    // The segment just sealed keeps its descriptors until a
                    // flush covers it. Past the broker's cap on open sealed
                    // segments, waiting for the once-a-second maintenance
                    // let fast-rolling partitions take every descriptor the
                    // process had (95 sealed segments open against a cap
                    // of 10): flush it now, on the log flusher, without
                    // waiting for it.
                    drop(PartitionLog::flush_all_async([(
                        Arc::clone(&self.log),
                        info.base_offset,
                    )]));
                }
                Ok(Appended { info, flush_to })
            }
            Err(e) => {
                if matches!(e, LogError::Offline { .. }) {
                    self.offline.store(true, Ordering::Release);
                }
                Err(e)
            }
        }
    }

    /// Makes everything below `offset` durable, then publishes the high
    /// watermark (which a flush-before-ack topic advances only now).
    /// Blocking: call it off the reactor.
    pub fn flush_to(&self, offset: u64) -> Result<(), LogError> {
        let r = self.log.flush_to(offset);
        if r.is_err() {
            self.refresh_offline();
        }
        self.notify();
        r
    }

    /// Makes the partitions of one request durable up to their offsets
    /// together, as one group commit on the log flusher thread, without
    /// holding a thread per waiting request; then publishes each one's high
    /// watermark (and offline state, after a failure). Results come in the
    /// order of `items`.
    pub async fn flush_all(items: &[(Arc<Partition>, u64)]) -> Vec<Result<(), LogError>> {
        let waiters = PartitionLog::flush_all_async(
            items
                .iter()
                .map(|(part, offset)| (Arc::clone(&part.log), *offset)),
        );
        let results = waiters.wait().await;
        for ((part, _), r) in items.iter().zip(&results) {
            if r.is_err() {
                // The log's offline flag is set by the failed flush; reading
                // it takes the log's state lock only briefly (no I/O under it).
                part.refresh_offline();
            }
            part.notify();
        }
        results
    }

    /// One maintenance pass of the log (flush due data, roll, retention),
    /// then publishes the high watermark and the offline state. Blocking.
    pub fn maintain(&self, now: std::time::SystemTime) -> Result<(), LogError> {
        let r = self.log.maintain(now).map(|_| ());
        self.notify();
        self.refresh_offline();
        r
    }

    /// [`Partition::maintain`] without retention, which a replicated
    /// partition runs through its Raft group instead. Blocking.
    pub fn maintain_replicated(&self, now: std::time::SystemTime) -> Result<(), LogError> {
        let r = self.log.maintain_except_retention(now).map(|_| ());
        self.notify();
        self.refresh_offline();
        r
    }
}
