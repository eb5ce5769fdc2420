//! Per-partition batches being filled, and sealed batches waiting to be sent.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::BytesMut;
use sluice_protocol::batch::{BatchBuilder, NewRecord};
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use super::{ProducerConfig, ProducerRecord, RecordMetadata};
use crate::error::ClientError;

/// Where a record's outcome goes.
pub(crate) type Waiter = oneshot::Sender<Result<RecordMetadata, ClientError>>;

struct OpenBatch {
    builder: BatchBuilder,
    waiters: Vec<Waiter>,
    permit: Option<OwnedSemaphorePermit>,
    created: Instant,
}

/// A sealed batch: encoded, with the waiters of its records in order.
pub(crate) struct ReadyBatch {
    pub(crate) topic: String,
    pub(crate) partition: u32,
    pub(crate) bytes: BytesMut,
    pub(crate) waiters: Vec<Waiter>,
    /// Buffer memory held until the batch is settled.
    pub(crate) _permit: Option<OwnedSemaphorePermit>,
    /// Sends so far that failed in a retriable way.
    pub(crate) attempts: u32,
    /// Not to be sent before this (retry backoff).
    pub(crate) not_before: Option<Instant>,
    /// `bytes` holds the batch with the producer's codec applied (so a
    /// retry does not compress it again).
    pub(crate) compressed: bool,
    /// When its first record was buffered (the delivery timeout counts
    /// from here).
    pub(crate) created: Instant,
    /// Idempotent producer id, epoch and sequence, once first sent.
    pub(crate) stamp: Option<super::idempotence::Stamp>,
    /// Why its last attempt failed, if one did: told with a delivery
    /// timeout that passes while it is in flight again.
    pub(crate) last_failure: Option<String>,
}

/// Batches of the producer, guarded by its mutex.
pub(crate) struct Accumulator {
    /// Open batches by topic, then partition: looked up by `&str`, so
    /// appending a record allocates nothing for the key.
    open: HashMap<String, HashMap<u32, OpenBatch>>,
    ready: VecDeque<ReadyBatch>,
    sticky: HashMap<String, u32>,
    /// Counts up from a random start: a topic's first sticky partition is
    /// random, so short runs of many producers (each a process of the CLI,
    /// say) do not all fill the same partition.
    next_sticky: u32,
}

impl Default for Accumulator {
    fn default() -> Self {
        use std::hash::{BuildHasher, Hasher};
        // The standard library's randomly keyed hasher: a random start
        // without another dependency.
        let start = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish() as u32;
        Accumulator {
            open: HashMap::new(),
            ready: VecDeque::new(),
            sticky: HashMap::new(),
            next_sticky: start,
        }
    }
}

impl Accumulator {
    /// The partition keyless records of `topic` go to now, if one is
    /// chosen (and below `count`).
    pub(crate) fn current_sticky(&self, topic: &str, count: u32) -> Option<u32> {
        self.sticky.get(topic).copied().filter(|&p| p < count)
    }

    /// The partition keyless records of `topic` currently go to. A new one
    /// is the next in turn that `takes` (any, if none does); the current
    /// one is kept until its batch fills, or, with `recheck`, until it no
    /// longer `takes`.
    pub(crate) fn sticky_partition(
        &mut self,
        topic: &str,
        count: u32,
        recheck: bool,
        takes: impl Fn(u32) -> bool,
    ) -> u32 {
        if let Some(&p) = self.sticky.get(topic).filter(|&&p| p < count)
            && (!recheck || takes(p))
        {
            return p;
        }
        let n = count.max(1);
        let first = self.next_sticky.wrapping_add(1);
        let p = (0..n)
            .map(|k| first.wrapping_add(k))
            .find(|&i| takes(i % n))
            .unwrap_or(first);
        self.next_sticky = p;
        let p = p % n;
        self.sticky.insert(topic.to_owned(), p);
        p
    }

    /// Adds a record to its partition's open batch; returns whether the
    /// sender must look again: a batch became ready to send, or a new batch
    /// was opened whose linger deadline the sender must start timing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &mut self,
        config: &ProducerConfig,
        topic: &str,
        partition: u32,
        record: &ProducerRecord<'_>,
        timestamp: i64,
        waiter: Waiter,
        permit: OwnedSemaphorePermit,
    ) -> bool {
        if !self.open.contains_key(topic) {
            self.open.insert(topic.to_owned(), HashMap::new());
        }
        let Some(partitions) = self.open.get_mut(topic) else {
            return false;
        };
        let opened = !partitions.contains_key(&partition);
        let batch = partitions.entry(partition).or_insert_with(|| OpenBatch {
            builder: BatchBuilder::with_capacity(config.batch_bytes + 1024),
            waiters: Vec::new(),
            permit: None,
            created: Instant::now(),
        });
        batch.builder.push(&NewRecord {
            timestamp,
            key: record.key,
            value: record.value,
            headers: record.headers,
        });
        batch.waiters.push(waiter);
        match &mut batch.permit {
            Some(p) => p.merge(permit),
            None => batch.permit = Some(permit),
        }
        if batch.builder.size_in_bytes() >= config.batch_bytes {
            self.seal(topic, partition);
            if record.key.is_none() && record.partition.is_none() {
                // Sticky partitioning moves on once a batch is full.
                self.sticky.remove(topic);
            }
            return true;
        }
        opened
    }

    fn seal(&mut self, topic: &str, partition: u32) {
        let Some(open) = self
            .open
            .get_mut(topic)
            .and_then(|partitions| partitions.remove(&partition))
        else {
            return;
        };
        self.ready.push_back(ReadyBatch {
            topic: topic.to_owned(),
            partition,
            bytes: open.builder.finish(),
            waiters: open.waiters,
            _permit: open.permit,
            attempts: 0,
            not_before: None,
            compressed: false,
            created: open.created,
            stamp: None,
            last_failure: None,
        });
    }

    /// The (topic, partition) of every open batch that `pick` selects.
    fn open_keys(&self, pick: impl Fn(&OpenBatch) -> bool) -> Vec<(String, u32)> {
        self.open
            .iter()
            .flat_map(|(t, parts)| {
                parts
                    .iter()
                    .filter(|(_, b)| pick(b))
                    .map(move |(p, _)| (t.clone(), *p))
            })
            .collect()
    }

    /// Seals every open batch.
    pub(crate) fn seal_all(&mut self) {
        for (t, p) in self.open_keys(|_| true) {
            self.seal(&t, p);
        }
    }

    /// Seals batches that waited `linger`; returns when the next one will.
    ///
    /// A partition's open batch is not sealed while a sealed batch of the
    /// same partition still waits in the ready queue (its broker has no
    /// free request slot, or it backs off before a retry): it keeps taking
    /// records, up to `batch_bytes`, and is sealed on the first call after
    /// that batch has left. So a producer that falls behind sends what
    /// queued meanwhile in one batch, not one request per record, even with
    /// `linger` 0; a producer that keeps up seals each batch as soon as its
    /// linger is over. Held batches are not in the returned deadline: the
    /// sender looks again when a request completes (or a retry is due).
    pub(crate) fn seal_expired(
        &mut self,
        linger: std::time::Duration,
        now: Instant,
    ) -> Option<Instant> {
        let waiting: std::collections::HashSet<(&str, u32)> = self
            .ready
            .iter()
            .map(|b| (b.topic.as_str(), b.partition))
            .collect();
        let mut expired = Vec::new();
        let mut next_linger: Option<Instant> = None;
        for (t, parts) in &self.open {
            for (p, b) in parts {
                if waiting.contains(&(t.as_str(), *p)) {
                    continue;
                }
                let due = b.created + linger;
                if due <= now {
                    expired.push((t.clone(), *p));
                } else {
                    next_linger = Some(next_linger.map_or(due, |n| n.min(due)));
                }
            }
        }
        drop(waiting);
        for (t, p) in expired {
            self.seal(&t, p);
        }
        let next_retry = self.ready.front().and_then(|b| b.not_before);
        match (next_linger, next_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Takes ready batches from the front, up to about `max_bytes` (at least
    /// one), skipping none: a batch in retry backoff stops the take.
    pub(crate) fn take_ready(&mut self, max_bytes: usize, now: Instant) -> Vec<ReadyBatch> {
        let mut out = Vec::new();
        let mut bytes = 0;
        while let Some(front) = self.ready.front() {
            if front.not_before.is_some_and(|t| t > now)
                || (!out.is_empty() && bytes + front.bytes.len() > max_bytes)
            {
                break;
            }
            bytes += front.bytes.len();
            if let Some(b) = self.ready.pop_front() {
                out.push(b);
            }
        }
        out
    }

    /// Takes ready batches for one Produce request to one destination:
    /// `route` names each batch's destination (`None`: not now, for
    /// example its broker has no free request slot). The first batch
    /// routed fixes the destination; batches of other destinations are
    /// passed over, and so is every later batch of a partition passed
    /// over (or in retry backoff, or already in the request), so each
    /// partition's batches leave in order. At most `max_entries` batches
    /// and about `max_bytes` (at least one batch).
    pub(crate) fn take_request_by<K: PartialEq>(
        &mut self,
        max_bytes: usize,
        max_entries: usize,
        now: Instant,
        mut route: impl FnMut(&ReadyBatch) -> Option<K>,
    ) -> Option<(K, Vec<ReadyBatch>)> {
        let mut dest: Option<K> = None;
        let mut chosen: Vec<usize> = Vec::new();
        let mut passed: Vec<usize> = Vec::new();
        let mut bytes = 0;
        for (i, b) in self.ready.iter().enumerate() {
            let same = |j: &usize| {
                self.ready
                    .get(*j)
                    .is_some_and(|o| o.partition == b.partition && o.topic == b.topic)
            };
            if passed.iter().any(same) || chosen.iter().any(same) {
                continue;
            }
            if b.not_before.is_some_and(|t| t > now) {
                passed.push(i);
                continue;
            }
            let Some(k) = route(b) else {
                passed.push(i);
                continue;
            };
            if dest.as_ref().is_some_and(|d| *d != k) {
                passed.push(i);
                continue;
            }
            if !chosen.is_empty()
                && (bytes + b.bytes.len() > max_bytes || chosen.len() >= max_entries)
            {
                break;
            }
            bytes += b.bytes.len();
            chosen.push(i);
            dest.get_or_insert(k);
        }
        let dest = dest?;
        let mut out = Vec::with_capacity(chosen.len());
        for i in chosen.into_iter().rev() {
            if let Some(b) = self.ready.remove(i) {
                out.push(b);
            }
        }
        out.reverse();
        Some((dest, out))
    }

    /// Puts batches back at the front, in their order, for a retry. Batches
    /// already stamped by an idempotent producer then go first, in stamp
    /// order (a partition's batches must be sent again in sequence order,
    /// whichever response came back first); the others keep their order.
    pub(crate) fn requeue_front(&mut self, batches: Vec<ReadyBatch>) {
        for b in batches.into_iter().rev() {
            self.ready.push_front(b);
        }
        if self.ready.iter().any(|b| b.stamp.is_some()) {
            self.ready.make_contiguous().sort_by_key(|b| match b.stamp {
                Some(s) => (0, s.producer_id, s.epoch, s.seq),
                None => (1, 0, 0, 0),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready(topic: &str, partition: u32, len: usize) -> ReadyBatch {
        ReadyBatch {
            topic: topic.to_owned(),
            partition,
            bytes: BytesMut::zeroed(len),
            waiters: Vec::new(),
            _permit: None,
            attempts: 0,
            not_before: None,
            compressed: false,
            created: Instant::now(),
            stamp: None,
            last_failure: None,
        }
    }

    /// Producers start their sticky partitions at random places: twenty
    /// of them over 64 partitions do not all start on one (by chance, one
    /// time in 64^19), and each moves on to the next partition.
    #[test]
    fn keyless_records_keep_off_partitions_that_do_not_take_them() {
        let mut a = Accumulator::default();
        // Partition 0 and 1 have no reachable leader: every choice is 2 or 3.
        for _ in 0..20 {
            let p = a.sticky_partition("t", 4, false, |p| p >= 2);
            assert!(p >= 2, "{p}");
            a.sticky.remove("t");
        }
        // The current one loses its leader: with a recheck, records move on.
        let p = a.sticky_partition("t", 4, false, |_| true);
        assert_eq!(a.sticky_partition("t", 4, false, |q| q != p), p);
        let q = a.sticky_partition("t", 4, true, |q| q != p);
        assert_ne!(q, p);
        // None takes them: a partition all the same.
        a.sticky.remove("t");
        assert!(a.sticky_partition("t", 4, true, |_| false) < 4);
    }

    #[test]
    fn the_first_sticky_partition_is_random() {
        let firsts: std::collections::HashSet<u32> = (0..20)
            .map(|_| {
                let mut a = Accumulator::default();
                let first = a.sticky_partition("t", 64, false, |_| true);
                assert_eq!(a.sticky_partition("t", 64, true, |_| true), first);
                a.sticky.remove("t");
                assert_eq!(
                    a.sticky_partition("t", 64, false, |_| true),
                    (first + 1) % 64
                );
                first
            })
            .collect();
        assert!(firsts.len() > 1, "{firsts:?}");
    }

    fn keys(batches: &[ReadyBatch]) -> Vec<(&str, u32)> {
        batches
            .iter()
            .map(|b| (b.topic.as_str(), b.partition))
            .collect()
    }

    #[test]
    fn a_request_lists_each_partition_once_and_at_most_max_entries() {
        let mut acc = Accumulator::default();
        for (t, p) in [("a", 0), ("a", 1), ("b", 0), ("a", 0), ("c", 0)] {
            acc.ready.push_back(ready(t, p, 10));
        }
        let now = Instant::now();
        let take = |acc: &mut Accumulator, bytes, entries| {
            acc.take_request_by(bytes, entries, now, |_| Some(()))
                .map(|(_, b)| b)
                .unwrap_or_default()
        };
        let first = take(&mut acc, 1 << 20, 1000);
        assert_eq!(keys(&first), [("a", 0), ("a", 1), ("b", 0), ("c", 0)]);
        let second = take(&mut acc, 1 << 20, 1);
        assert_eq!(keys(&second), [("a", 0)]);
        assert!(take(&mut acc, 1 << 20, 1000).is_empty());
        for (t, p) in [("a", 0), ("b", 0), ("c", 0)] {
            acc.ready.push_back(ready(t, p, 10));
        }
        let third = take(&mut acc, 15, 1000);
        assert_eq!(keys(&third), [("a", 0)]);
    }

    #[test]
    fn a_request_goes_to_one_destination_and_keeps_partition_order() {
        let mut acc = Accumulator::default();
        for (t, p) in [("t", 0), ("t", 1), ("t", 0), ("t", 2), ("t", 1)] {
            acc.ready.push_back(ready(t, p, 10));
        }
        let now = Instant::now();
        // Partition 0 and 2 on broker "A", 1 on "B"; "B" has no free slot.
        let mut b_free = false;
        let route = |b: &ReadyBatch, b_free: bool| match b.partition {
            1 if b_free => Some("B"),
            1 => None,
            _ => Some("A"),
        };
        let (dest, first) = acc
            .take_request_by(1 << 20, 1000, now, |b| route(b, b_free))
            .unwrap();
        assert_eq!((dest, keys(&first)), ("A", vec![("t", 0), ("t", 2)]));
        b_free = true;
        let (dest, second) = acc
            .take_request_by(1 << 20, 1000, now, |b| route(b, b_free))
            .unwrap();
        assert_eq!((dest, keys(&second)), ("B", vec![("t", 1)]));
        let (dest, third) = acc
            .take_request_by(1 << 20, 1000, now, |b| route(b, b_free))
            .unwrap();
        assert_eq!((dest, keys(&third)), ("A", vec![("t", 0)]));
        let (dest, fourth) = acc
            .take_request_by(1 << 20, 1000, now, |b| route(b, b_free))
            .unwrap();
        assert_eq!((dest, keys(&fourth)), ("B", vec![("t", 1)]));
        assert!(
            acc.take_request_by(1 << 20, 1000, now, |b| route(b, b_free))
                .is_none()
        );
    }

    /// Appends one record with value `v` to `t`-`p`.
    fn add(acc: &mut Accumulator, config: &ProducerConfig, t: &str, p: u32, v: &[u8]) {
        static MEMORY: std::sync::LazyLock<std::sync::Arc<tokio::sync::Semaphore>> =
            std::sync::LazyLock::new(|| std::sync::Arc::new(tokio::sync::Semaphore::new(1 << 20)));
        let permit = std::sync::Arc::clone(&MEMORY)
            .try_acquire_many_owned(1)
            .unwrap();
        let (tx, _rx) = oneshot::channel();
        let record = ProducerRecord {
            topic: t,
            partition: Some(p),
            value: Some(v),
            ..Default::default()
        };
        acc.append(config, t, p, &record, 0, tx, permit);
    }

    #[test]
    fn with_a_batch_waiting_linger_zero_keeps_filling_the_next_one() {
        let config = ProducerConfig {
            linger: std::time::Duration::ZERO,
            ..ProducerConfig::new("unused:1")
        };
        let mut acc = Accumulator::default();
        let now = Instant::now() + std::time::Duration::from_secs(1);
        add(&mut acc, &config, "t", 0, b"first");
        assert_eq!(acc.seal_expired(config.linger, now), None);
        add(&mut acc, &config, "u", 0, b"other");
        assert_eq!(acc.seal_expired(config.linger, now), None);
        assert_eq!(acc.ready.len(), 2);
        // Nothing could be sent: these records join one open batch.
        for _ in 0..100 {
            add(&mut acc, &config, "t", 0, b"queued");
        }
        add(&mut acc, &config, "u", 1, b"free");
        // Held back, so not due: no deadline for it.
        assert_eq!(acc.seal_expired(config.linger, now), None);
        assert_eq!(
            keys(acc.ready.make_contiguous()),
            [("t", 0), ("u", 0), ("u", 1)]
        );
        let first = acc.take_ready(1, now);
        assert_eq!(first[0].waiters.len(), 1);
        acc.seal_expired(config.linger, now);
        let rest = acc.take_ready(usize::MAX, now);
        assert_eq!(keys(&rest), [("u", 0), ("u", 1), ("t", 0)]);
        assert_eq!(rest[2].waiters.len(), 100);
    }

    #[test]
    fn requeued_stamped_batches_go_first_in_sequence_order() {
        use super::super::idempotence::Stamp;
        let mut acc = Accumulator::default();
        acc.ready.push_back(ready("a", 0, 10));
        let stamped = |seq| {
            let mut b = ready("a", 0, 10);
            b.stamp = Some(Stamp {
                producer_id: 1,
                epoch: 0,
                seq,
            });
            b
        };
        // Responses came back out of order: 20 was requeued before 10.
        acc.requeue_front(vec![stamped(20)]);
        acc.requeue_front(vec![stamped(10)]);
        acc.requeue_front(vec![stamped(30)]);
        let seqs: Vec<Option<i32>> = acc.ready.iter().map(|b| b.stamp.map(|s| s.seq)).collect();
        assert_eq!(seqs, [Some(10), Some(20), Some(30), None]);
    }
}
