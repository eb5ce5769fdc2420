//! [`ProducerStates`]: what one partition remembers of each idempotent
//! producer — its epoch and the sequence numbers and offsets of its last
//! [`WINDOW`] batches — so a retried batch is recognised and stored once.
//!
//! Pure data: no I/O, no locking. The partition log keeps one table under
//! the same lock that reserves offsets, so a batch is checked and recorded
//! atomically with the offsets it is given.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Batches remembered per producer and partition (Kafka's 5: a producer
/// keeps at most this many requests in flight per connection).
pub const WINDOW: usize = 5;

/// Producer id meaning "not idempotent" (Kafka's `NO_PRODUCER_ID`).
pub const NO_PRODUCER_ID: i64 = -1;

/// One appended batch of an idempotent producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    /// Producer epoch the batch carried.
    pub epoch: i16,
    /// Sequence number of its first record.
    pub first_seq: i32,
    /// Sequence number of its last record.
    pub last_seq: i32,
    /// Offset given to its first record.
    pub first_offset: u64,
    /// Offset given to its last record.
    pub last_offset: u64,
    /// When it was appended by the broker's clock, or when the broker
    /// recovered it from the log (milliseconds since the Unix epoch): the
    /// producer's last activity, which expiry measures.
    pub timestamp: i64,
}

/// What a partition holds for one producer id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The newest epoch seen.
    pub epoch: i16,
    /// The last batches appended, oldest first, at most [`WINDOW`].
    pub batches: VecDeque<BatchMeta>,
}

impl ProducerEntry {
    /// Timestamp of the newest batch (the producer's last activity).
    pub fn last_timestamp(&self) -> i64 {
        self.batches.back().map_or(i64::MIN, |b| b.timestamp)
    }
}

/// The identity and sequence range of a batch being appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchIdentity {
    /// Producer id (non-negative).
    pub producer_id: i64,
    /// Producer epoch.
    pub epoch: i16,
    /// Sequence of the first record.
    pub first_seq: i32,
    /// Number of records.
    pub records: u32,
}

impl BatchIdentity {
    /// Sequence of the last record; sequences wrap from `i32::MAX` to 0, as
    /// in Kafka.
    pub fn last_seq(&self) -> i32 {
        wrap_seq(i64::from(self.first_seq) + i64::from(self.records) - 1)
    }
}

/// What [`ProducerStates::check`] decided for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqCheck {
    /// The next batch of its producer: append it.
    Append,
    /// Already appended: this is where.
    Duplicate(BatchMeta),
}

/// Why a batch of an idempotent producer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SeqError {
    /// The batch does not follow the producer's last one.
    #[error("producer {producer_id} epoch {epoch}: expected sequence {expected}, got {found}")]
    OutOfOrder {
        /// Producer id.
        producer_id: i64,
        /// Epoch of the batch.
        epoch: i16,
        /// The sequence that would have been accepted.
        expected: i32,
        /// The batch's first sequence.
        found: i32,
    },
    /// A newer epoch of this producer id was already seen.
    #[error("producer {producer_id}: epoch {epoch} is older than the current epoch {current}")]
    Fenced {
        /// Producer id.
        producer_id: i64,
        /// Epoch of the batch.
        epoch: i16,
        /// The newest epoch seen.
        current: i16,
    },
    /// One append mixes batches already stored (retries) with new ones, or
    /// with batches of no producer; a producer never sends that.
    #[error("an append mixes retried batches with new or non-idempotent ones")]
    MixedRetry,
}

/// Bounds of a [`ProducerStates`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerLimits {
    /// A producer whose newest batch is older than this (by
    /// [`BatchMeta::timestamp`]) is forgotten at the next [`ProducerStates::expire`].
    pub expiration_ms: i64,
    /// The most producer ids kept; recording a new one beyond it forgets
    /// the least recently active.
    pub max_ids: usize,
}

/// Producer entries (one per producer id and partition) held by every
/// table that charges it, and the most that may be held: past it, a table
/// recording a new producer forgets its own least recently active one
/// first, so the count stays put (a table holding none still takes its
/// first, so the count exceeds the cap by at most one per partition).
/// Bounds the memory that producer ids — which a client may make up, as
/// Kafka's clients need not ask for them — can take across partitions,
/// where `max_producer_ids` bounds one partition's.
#[derive(Debug)]
pub struct ProducerBudget {
    held: AtomicUsize,
    max: AtomicUsize,
}

impl ProducerBudget {
    /// A budget of at most `max` entries.
    pub const fn new(max: usize) -> Self {
        ProducerBudget {
            held: AtomicUsize::new(0),
            max: AtomicUsize::new(max),
        }
    }

    /// The budget every partition log of the process charges (unlimited
    /// until [`ProducerBudget::set_max`]; the broker sets
    /// `max_producer_states` at start).
    pub fn global() -> &'static ProducerBudget {
        static GLOBAL: ProducerBudget = ProducerBudget::new(usize::MAX);
        &GLOBAL
    }

    /// Sets the cap.
    pub fn set_max(&self, max: usize) {
        self.max.store(max.max(1), Ordering::Relaxed);
    }

    /// Entries held.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn full(&self) -> bool {
        self.held() >= self.max.load(Ordering::Relaxed)
    }

    fn add(&self, n: usize) {
        if n > 0 {
            self.held.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn sub(&self, n: usize) {
        if n > 0 {
            self.held.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

/// The producer table of one partition. Its entries are charged to a
/// [`ProducerBudget`] (the process's unless made with
/// [`ProducerStates::with_budget`]) while it holds them.
#[derive(Debug)]
pub struct ProducerStates {
    map: HashMap<i64, ProducerEntry>,
    budget: &'static ProducerBudget,
}

impl Default for ProducerStates {
    fn default() -> Self {
        Self::with_budget(ProducerBudget::global())
    }
}

impl Clone for ProducerStates {
    fn clone(&self) -> Self {
        self.budget.add(self.map.len());
        ProducerStates {
            map: self.map.clone(),
            budget: self.budget,
        }
    }
}

impl PartialEq for ProducerStates {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl Eq for ProducerStates {}

impl Drop for ProducerStates {
    fn drop(&mut self) {
        self.budget.sub(self.map.len());
    }
}

/// `n` reduced to the sequence space `0..=i32::MAX`.
fn wrap_seq(n: i64) -> i32 {
    (n.rem_euclid(i64::from(i32::MAX) + 1)) as i32
}

impl ProducerStates {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty table charging `budget`.
    pub fn with_budget(budget: &'static ProducerBudget) -> Self {
        ProducerStates {
            map: HashMap::new(),
            budget,
        }
    }

    /// Number of producer ids held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no producer id is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The entry of a producer id.
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.map.get(&producer_id)
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&i64, &ProducerEntry)> {
        self.map.iter()
    }

    /// Decides what to do with a batch, changing nothing: a duplicate of
    /// one of the producer's last [`WINDOW`] batches (same epoch, first and
    /// last sequence), the next batch (its first sequence follows the
    /// newest batch's last one, or is 0 for a new epoch), or an error. A
    /// producer the table does not hold (never seen here, or forgotten when
    /// idle or evicted) may start at any sequence, as Kafka (2.5 and later)
    /// allows: its earlier batches may have left with retention, and a
    /// producer refused here would lose the batch it is sending.
    pub fn check(&self, id: &BatchIdentity) -> Result<SeqCheck, SeqError> {
        let pid = id.producer_id;
        let Some(entry) = self.map.get(&pid).filter(|e| !e.batches.is_empty()) else {
            return Ok(SeqCheck::Append);
        };
        if id.epoch < entry.epoch {
            return Err(SeqError::Fenced {
                producer_id: pid,
                epoch: id.epoch,
                current: entry.epoch,
            });
        }
        if id.epoch > entry.epoch {
            return if id.first_seq == 0 {
                Ok(SeqCheck::Append)
            } else {
                Err(SeqError::OutOfOrder {
                    producer_id: pid,
                    epoch: id.epoch,
                    expected: 0,
                    found: id.first_seq,
                })
            };
        }
        let last_seq = id.last_seq();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.epoch == id.epoch && b.first_seq == id.first_seq && b.last_seq == last_seq)
        {
            return Ok(SeqCheck::Duplicate(*dup));
        }
        let newest = entry.batches.back().map_or(-1, |b| b.last_seq);
        let expected = wrap_seq(i64::from(newest) + 1);
        if id.first_seq == expected {
            Ok(SeqCheck::Append)
        } else {
            Err(SeqError::OutOfOrder {
                producer_id: pid,
                epoch: id.epoch,
                expected,
                found: id.first_seq,
            })
        }
    }

    /// Records an appended batch (after [`ProducerStates::check`] said
    /// [`SeqCheck::Append`], or while rebuilding from the log). Keeps the
    /// last [`WINDOW`] batches; beyond `limits.max_ids` producers, or with
    /// its budget spent, forgets the least recently active other one.
    pub fn record(&mut self, producer_id: i64, meta: BatchMeta, limits: &ProducerLimits) {
        let new = !self.map.contains_key(&producer_id);
        if new && (self.map.len() >= limits.max_ids.max(1) || self.budget.full()) {
            let oldest = self
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_timestamp())
                .map(|(pid, _)| *pid);
            if let Some(pid) = oldest {
                self.map.remove(&pid);
                self.budget.sub(1);
            }
        }
        if new {
            self.budget.add(1);
        }
        let entry = self
            .map
            .entry(producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: meta.epoch,
                batches: VecDeque::with_capacity(WINDOW),
            });
        if meta.epoch != entry.epoch {
            entry.epoch = meta.epoch;
        }
        entry.batches.push_back(meta);
        while entry.batches.len() > WINDOW {
            entry.batches.pop_front();
        }
    }

    /// Forgets every batch at or after `offset` (a truncation, or appends
    /// whose write failed); a producer left with no batch is forgotten.
    pub fn truncate_to(&mut self, offset: u64) {
        let before = self.map.len();
        self.map.retain(|_, e| {
            while e.batches.back().is_some_and(|b| b.last_offset >= offset) {
                e.batches.pop_back();
            }
            if let Some(b) = e.batches.back() {
                e.epoch = b.epoch;
            }
            !e.batches.is_empty()
        });
        self.budget.sub(before - self.map.len());
    }

    /// Forgets producers whose newest batch's timestamp is more than
    /// `limits.expiration_ms` before `now_ms`; returns how many.
    pub fn expire(&mut self, now_ms: i64, limits: &ProducerLimits) -> usize {
        let before = self.map.len();
        let cutoff = now_ms.saturating_sub(limits.expiration_ms);
        self.map.retain(|_, e| e.last_timestamp() >= cutoff);
        let gone = before - self.map.len();
        self.budget.sub(gone);
        gone
    }

    /// Inserts a whole entry (loading a snapshot).
    pub fn insert(&mut self, producer_id: i64, entry: ProducerEntry) {
        if self.map.insert(producer_id, entry).is_none() {
            self.budget.add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ProducerLimits = ProducerLimits {
        expiration_ms: 1000,
        max_ids: 3,
    };

    fn id(pid: i64, epoch: i16, first_seq: i32, records: u32) -> BatchIdentity {
        BatchIdentity {
            producer_id: pid,
            epoch,
            first_seq,
            records,
        }
    }

    /// Checks and records like the log does; returns the check.
    fn append(t: &mut ProducerStates, b: BatchIdentity, offset: u64, ts: i64) -> SeqCheck {
        let c = t.check(&b).unwrap();
        if c == SeqCheck::Append {
            let meta = BatchMeta {
                epoch: b.epoch,
                first_seq: b.first_seq,
                last_seq: b.last_seq(),
                first_offset: offset,
                last_offset: offset + u64::from(b.records) - 1,
                timestamp: ts,
            };
            t.record(b.producer_id, meta, &LIMITS);
        }
        c
    }

    #[test]
    fn duplicates_within_the_window_answer_the_original_offsets() {
        let mut t = ProducerStates::new();
        for i in 0..7 {
            assert_eq!(
                append(&mut t, id(1, 0, i * 10, 10), 100 * i as u64, 0),
                SeqCheck::Append
            );
        }
        // The last five are remembered, the two oldest are not.
        for i in 2..7 {
            match t.check(&id(1, 0, i * 10, 10)).unwrap() {
                SeqCheck::Duplicate(m) => assert_eq!(m.first_offset, 100 * i as u64),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            t.check(&id(1, 0, 10, 10)),
            Err(SeqError::OutOfOrder {
                expected: 70,
                found: 10,
                ..
            })
        ));
        // Same first sequence, different length: not a duplicate.
        assert!(t.check(&id(1, 0, 60, 5)).is_err());
    }

    #[test]
    fn gaps_and_stale_epochs_are_refused_and_unknown_producers_start_anywhere() {
        let mut t = ProducerStates::new();
        // A producer not held may start anywhere (as in Kafka 2.5+).
        assert!(matches!(t.check(&id(7, 0, 3, 1)), Ok(SeqCheck::Append)));
        append(&mut t, id(7, 2, 0, 1), 0, 0);
        assert!(matches!(
            t.check(&id(7, 2, 2, 1)),
            Err(SeqError::OutOfOrder { expected: 1, .. })
        ));
        assert!(matches!(
            t.check(&id(7, 1, 1, 1)),
            Err(SeqError::Fenced { current: 2, .. })
        ));
        // A new epoch starts again at 0, and fences the old one.
        assert!(matches!(
            t.check(&id(7, 3, 5, 1)),
            Err(SeqError::OutOfOrder { expected: 0, .. })
        ));
        append(&mut t, id(7, 3, 0, 1), 1, 0);
        assert!(matches!(
            t.check(&id(7, 2, 1, 1)),
            Err(SeqError::Fenced { .. })
        ));
    }

    #[test]
    fn sequences_wrap_after_i32_max() {
        let mut t = ProducerStates::new();
        append(&mut t, id(1, 0, 0, 1), 0, 0);
        let mut e = t.get(1).unwrap().clone();
        e.batches.back_mut().unwrap().last_seq = i32::MAX - 2;
        t.insert(1, e);
        let b = id(1, 0, i32::MAX - 1, 4);
        assert_eq!(b.last_seq(), 1);
        assert_eq!(append(&mut t, b, 1, 0), SeqCheck::Append);
        assert_eq!(t.check(&id(1, 0, 2, 1)).unwrap(), SeqCheck::Append);
    }

    #[test]
    fn truncation_forgets_later_batches_and_restores_the_epoch() {
        let mut t = ProducerStates::new();
        append(&mut t, id(1, 0, 0, 2), 0, 0);
        append(&mut t, id(1, 1, 0, 2), 2, 0);
        append(&mut t, id(2, 0, 0, 2), 4, 0);
        t.truncate_to(2);
        assert_eq!(t.get(1).unwrap().epoch, 0);
        assert_eq!(t.get(1).unwrap().batches.len(), 1);
        assert!(t.get(2).is_none());
        assert_eq!(t.check(&id(1, 0, 2, 1)).unwrap(), SeqCheck::Append);
    }

    #[test]
    fn expiry_and_the_id_bound_forget_the_least_recently_active() {
        let mut t = ProducerStates::new();
        append(&mut t, id(1, 0, 0, 1), 0, 100);
        append(&mut t, id(2, 0, 0, 1), 1, 500);
        append(&mut t, id(3, 0, 0, 1), 2, 300);
        append(&mut t, id(4, 0, 0, 1), 3, 900);
        assert_eq!(t.len(), 3);
        assert!(t.get(1).is_none(), "the least recently active went");
        assert_eq!(t.expire(1400, &LIMITS), 1); // 3 (300) < 400
        assert!(t.get(3).is_none());
        assert_eq!(t.len(), 2);
        assert!(matches!(t.check(&id(2, 0, 1, 1)), Ok(SeqCheck::Append)));
        assert_eq!(t.expire(10_000, &LIMITS), 2);
        // Forgotten: its next batch starts it afresh.
        assert!(matches!(t.check(&id(2, 0, 1, 1)), Ok(SeqCheck::Append)));
        assert!(t.get(2).is_none());
    }

    /// Tables charging one budget hold at most its cap (plus one for a
    /// table that holds none): past it a new producer takes the place of
    /// its table's least recently active one. Forgetting, truncating,
    /// dropping and cloning keep the count exact.
    #[test]
    fn tables_sharing_a_budget_stay_within_it() {
        let budget: &'static ProducerBudget = Box::leak(Box::new(ProducerBudget::new(4)));
        let limits = ProducerLimits {
            expiration_ms: 1000,
            max_ids: 100,
        };
        let mut a = ProducerStates::with_budget(budget);
        let mut b = ProducerStates::with_budget(budget);
        let mut next = 0u64;
        let mut rec = |t: &mut ProducerStates, pid: i64, ts: i64| {
            let meta = BatchMeta {
                epoch: 0,
                first_seq: 0,
                last_seq: 0,
                first_offset: next,
                last_offset: next,
                timestamp: ts,
            };
            next += 1;
            t.record(pid, meta, &limits);
        };
        for pid in 1..=3 {
            rec(&mut a, pid, pid);
        }
        rec(&mut b, 10, 10);
        assert_eq!(budget.held(), 4);
        // Full: each table gives up its own oldest for a new producer.
        rec(&mut b, 11, 11);
        assert_eq!((budget.held(), b.len()), (4, 1));
        assert!(b.get(10).is_none() && b.get(11).is_some());
        rec(&mut a, 4, 12);
        assert_eq!((budget.held(), a.len()), (4, 3));
        assert!(a.get(1).is_none() && a.get(4).is_some());
        // A producer already held records more batches at no cost.
        rec(&mut a, 4, 13);
        assert_eq!(budget.held(), 4);
        // An empty table still takes its first.
        let mut c = ProducerStates::with_budget(budget);
        rec(&mut c, 20, 14);
        assert_eq!(budget.held(), 5);
        let copy = c.clone();
        assert_eq!(budget.held(), 6);
        drop(copy);
        assert_eq!(a.expire(1003, &limits), 1);
        assert_eq!(budget.held(), 4);
        c.truncate_to(0);
        assert_eq!(budget.held(), 3);
        drop(a);
        assert_eq!(budget.held(), 1);
        drop(b);
        assert_eq!(budget.held(), 0);
    }
}
