//! The idempotent producer's bookkeeping: its producer id and epoch, the
//! next sequence number per partition, and what to do when the broker
//! refuses a batch for its sequence.
//!
//! A batch gets its sequence when it is first sent and keeps it on every
//! retry, so the broker recognises a retry of a batch it already stored
//! and answers with the original offsets instead of storing it again.

use std::collections::HashMap;

use sluice_protocol::batch::set_producer;
use sluice_protocol::wire::ErrorCode;

use super::accumulator::ReadyBatch;

/// The producer id, epoch and first sequence stamped into a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) producer_id: i64,
    pub(crate) epoch: i16,
    pub(crate) seq: i32,
}

/// What to do with a batch the broker refused for its sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnRefusal {
    /// Send it again later with the same stamp (an earlier batch of the
    /// partition is being retried, so the gap closes).
    Retry,
    /// The producer's state on the broker is gone or fenced: get a new
    /// producer id, then send it again with a new stamp.
    Reset,
    /// Not a sequence error.
    NotMine,
}

/// Sequences wrap from `i32::MAX` to 0, as in Kafka.
fn wrap(n: i64) -> i32 {
    n.rem_euclid(i64::from(i32::MAX) + 1) as i32
}

/// The idempotence state of one producer (guarded by its mutex).
#[derive(Debug, Default)]
pub(crate) struct Idempotence {
    producer: Option<(i64, i16)>,
    /// Next sequence to stamp, per topic and partition.
    next_seq: HashMap<String, HashMap<u32, i32>>,
    /// Sequence after the last acknowledged batch, per topic and partition.
    acked_next: HashMap<String, HashMap<u32, i32>>,
    /// Per topic and partition, the last refusal of one of its batches for
    /// another reason than its sequence, since its last acknowledged batch:
    /// what the later batches refused as out of order wait behind.
    causes: HashMap<String, HashMap<u32, String>>,
    reset: bool,
}

impl Idempotence {
    /// Whether a (new) producer id must be acquired before sending.
    pub(crate) fn needs_id(&self) -> bool {
        self.producer.is_none() || self.reset
    }

    /// Starts over with a new producer id: every batch is stamped again from
    /// sequence 0 per partition.
    pub(crate) fn set_producer(&mut self, producer_id: i64, epoch: i16) {
        self.producer = Some((producer_id, epoch));
        self.next_seq.clear();
        self.acked_next.clear();
        self.causes.clear();
        self.reset = false;
    }

    /// Stamps `batch` for sending, unless it already carries the current
    /// producer's stamp (a retry keeps its sequence).
    pub(crate) fn stamp(&mut self, batch: &mut ReadyBatch) {
        let Some((producer_id, epoch)) = self.producer else {
            return;
        };
        if batch
            .stamp
            .is_some_and(|s| s.producer_id == producer_id && s.epoch == epoch)
        {
            return;
        }
        let records = batch.waiters.len() as i64;
        let next = self
            .next_seq
            .entry(batch.topic.clone())
            .or_default()
            .entry(batch.partition)
            .or_insert(0);
        let seq = *next;
        *next = wrap(i64::from(seq) + records);
        if set_producer(&mut batch.bytes, producer_id, epoch, seq).is_ok() {
            batch.stamp = Some(Stamp {
                producer_id,
                epoch,
                seq,
            });
        }
    }

    /// Notes that a batch of `batch`'s partition was refused for `why`
    /// (not for its sequence), or, with `None`, acknowledged.
    pub(crate) fn note_outcome(&mut self, batch: &ReadyBatch, why: Option<String>) {
        match why {
            Some(why) => {
                self.causes
                    .entry(batch.topic.clone())
                    .or_default()
                    .insert(batch.partition, why);
            }
            // Every acknowledgement comes here: no lookup while no partition
            // has a cause.
            None if self.causes.is_empty() => {}
            None => {
                if let Some(p) = self.causes.get_mut(&batch.topic) {
                    p.remove(&batch.partition);
                    if p.is_empty() {
                        self.causes.remove(&batch.topic);
                    }
                }
            }
        }
    }

    /// The last refusal [`note_outcome`](Self::note_outcome) noted for
    /// `batch`'s partition: why a batch refused as out of order waits.
    pub(crate) fn cause(&self, batch: &ReadyBatch) -> Option<&str> {
        self.causes
            .get(&batch.topic)?
            .get(&batch.partition)
            .map(String::as_str)
    }

    /// Notes an acknowledged batch.
    pub(crate) fn acked(&mut self, batch: &ReadyBatch) {
        let Some(s) = batch
            .stamp
            .filter(|s| Some((s.producer_id, s.epoch)) == self.producer)
        else {
            return;
        };
        let next = wrap(i64::from(s.seq) + batch.waiters.len() as i64);
        self.acked_next
            .entry(batch.topic.clone())
            .or_default()
            .insert(batch.partition, next);
    }

    /// Notes a batch that failed for good: its sequence range will never
    /// be stored, so later batches of its partition could never follow.
    /// Start over with a new producer id.
    pub(crate) fn failed(&mut self, batch: &ReadyBatch) {
        if batch
            .stamp
            .is_some_and(|s| Some((s.producer_id, s.epoch)) == self.producer)
        {
            self.reset = true;
        }
    }

    /// Decides what to do with `batch` refused with `code`.
    pub(crate) fn on_refusal(&mut self, batch: &ReadyBatch, code: ErrorCode) -> OnRefusal {
        let Some(s) = batch.stamp else {
            return OnRefusal::NotMine;
        };
        let current = Some((s.producer_id, s.epoch)) == self.producer;
        match code {
            ErrorCode::UnknownProducerId | ErrorCode::ProducerFenced => {
                if current {
                    self.reset = true;
                }
                OnRefusal::Reset
            }
            ErrorCode::OutOfOrderSequence => {
                let acked = self
                    .acked_next
                    .get(&batch.topic)
                    .and_then(|p| p.get(&batch.partition))
                    .copied()
                    .unwrap_or(0);
                if current && s.seq == acked {
                    // No earlier batch of this partition is outstanding: the
                    // broker lost what it had (for example a power cut took
                    // back unflushed batches). Start over with a new id.
                    self.reset = true;
                    OnRefusal::Reset
                } else {
                    OnRefusal::Retry
                }
            }
            _ => OnRefusal::NotMine,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use bytes::BytesMut;
    use sluice_protocol::batch::{BatchBuilder, BatchHeader, NewRecord};

    use super::*;

    fn batch(records: usize) -> ReadyBatch {
        let mut b = BatchBuilder::new();
        let mut waiters = Vec::new();
        for _ in 0..records {
            b.push(&NewRecord {
                timestamp: 1,
                key: None,
                value: Some(b"v"),
                headers: &[],
            });
            waiters.push(tokio::sync::oneshot::channel().0);
        }
        ReadyBatch {
            topic: "t".to_owned(),
            partition: 0,
            bytes: b.finish(),
            waiters,
            _permit: None,
            attempts: 0,
            not_before: None,
            compressed: false,
            created: Instant::now(),
            stamp: None,
            last_failure: None,
        }
    }

    fn header(bytes: &BytesMut) -> BatchHeader {
        sluice_protocol::batch::validate(bytes).unwrap()
    }

    #[test]
    fn batches_are_numbered_per_partition_and_keep_their_numbers_on_retry() {
        let mut idem = Idempotence::default();
        assert!(idem.needs_id());
        idem.set_producer(7, 0);
        let (mut a, mut b) = (batch(3), batch(2));
        idem.stamp(&mut a);
        idem.stamp(&mut b);
        assert_eq!(
            (header(&a.bytes).producer_id, header(&a.bytes).base_sequence),
            (7, 0)
        );
        assert_eq!(header(&b.bytes).base_sequence, 3);
        idem.stamp(&mut a); // a retry
        assert_eq!(header(&a.bytes).base_sequence, 0);
        // A gap behind an outstanding earlier batch is retried as is; one at
        // the acknowledged end means the broker lost state: a new id.
        assert_eq!(
            idem.on_refusal(&b, ErrorCode::OutOfOrderSequence),
            OnRefusal::Retry
        );
        idem.acked(&a);
        assert_eq!(
            idem.on_refusal(&b, ErrorCode::OutOfOrderSequence),
            OnRefusal::Reset
        );
        assert!(idem.needs_id());
        idem.set_producer(8, 0);
        idem.stamp(&mut b);
        assert_eq!(
            (header(&b.bytes).producer_id, header(&b.bytes).base_sequence),
            (8, 0)
        );
        assert_eq!(
            idem.on_refusal(&b, ErrorCode::UnknownProducerId),
            OnRefusal::Reset
        );
        assert_eq!(idem.on_refusal(&b, ErrorCode::DiskFull), OnRefusal::NotMine);
    }

    /// The reason an earlier batch of a partition was refused is kept for
    /// the later batches refused as out of order, until a batch of the
    /// partition is acknowledged or a new producer id starts over.
    #[test]
    fn the_cause_of_a_gap_is_kept_until_an_acknowledgement() {
        let mut idem = Idempotence::default();
        let b = batch(1);
        assert_eq!(idem.cause(&b), None);
        idem.note_outcome(&b, Some("disk full (11): no space".into()));
        assert_eq!(idem.cause(&b), Some("disk full (11): no space"));
        let other = ReadyBatch {
            partition: 1,
            ..batch(1)
        };
        assert_eq!(idem.cause(&other), None);
        idem.note_outcome(&b, None);
        assert_eq!(idem.cause(&b), None);
        idem.note_outcome(&b, Some("disk full".into()));
        idem.set_producer(7, 0);
        assert_eq!(idem.cause(&b), None);
    }
}
