//! Appending to a [`PartitionLog`]: validation, offsets reserved under the
//! state lock, the `pwrite` outside it, publication in reservation order,
//! and rolling to a new segment.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use parking_lot::MutexGuard;
use sluice_protocol::batch::{self, TimestampType};

use super::LogError;
use super::config::FlushPolicy;
use super::io::write_all_at;
use super::partition::{LogPoint, LogState, PartitionLog, unix_millis};
use super::producers::IdempotentBatch;
use super::segment::Segment;
use crate::producer::state::BatchIdentity;

/// Which checks an append runs besides validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppendMode {
    /// Assigns offsets; checks timestamps and idempotent producers.
    Leader,
    /// Keeps the given offsets; checks timestamps, trusts the leader's
    /// producer checks.
    Follower,
    /// Keeps the given offsets; checks idempotent producers (the replica
    /// that first stores a proposal decides) but not timestamps
    /// (clock-dependent), and validates only headers and CRCs (the leader
    /// walked the records).
    Replica,
    /// [`AppendMode::Replica`], trusting the producer checks of the replica
    /// that first stored these batches (the leader that proposed them).
    ReplicaCopy,
}

impl AppendMode {
    /// Whether the leader already walked the records and rewrote the
    /// timestamps (only headers and CRCs are checked).
    fn is_replica(self) -> bool {
        matches!(self, AppendMode::Replica | AppendMode::ReplicaCopy)
    }

    /// Whether idempotent producers' sequences are checked (else only
    /// recorded).
    fn checks_producers(self) -> bool {
        matches!(self, AppendMode::Leader | AppendMode::Replica)
    }
}

/// What [`PartitionLog::check_batches`] found in the batches of an append.
struct Checked {
    /// Number of batches.
    count: u32,
    /// Offsets they take.
    offsets: u64,
    /// Largest `maxTimestamp` (as it will be stored).
    max_timestamp: i64,
    /// Batches of idempotent producers.
    idempotent: Vec<IdempotentBatch>,
}

/// Where an append landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// Offset assigned to the first record.
    pub base_offset: u64,
    /// Offset of the last record.
    pub last_offset: u64,
    /// The log's next offset after this append; pass it to
    /// [`PartitionLog::flush_to`] to make the append durable.
    pub next_offset: u64,
    /// Largest record timestamp of the appended batches.
    pub max_timestamp: i64,
    /// Number of record batches appended.
    pub batches: u32,
    /// Whether this append started a new segment.
    pub rolled: bool,
    /// Whether every batch was a retry of batches already appended by the
    /// same idempotent producer: nothing was written, and the offsets are
    /// the original ones (already published, maybe not yet durable).
    pub duplicate: bool,
}

impl PartitionLog {
    /// Appends one or more record batches (Kafka RecordBatch v2, back to
    /// back) to the log.
    ///
    /// Every batch is validated first; if any fails, nothing is written.
    /// A batch is refused unless:
    /// - it passes [`batch::validate_decompressing`] (header, CRC-32C, every
    ///   record walked, `lastOffsetDelta == recordCount - 1`; a compressed
    ///   batch's records are decompressed into a buffer of at most
    ///   [`LogConfig::max_decompressed_batch_bytes`] and walked the same way),
    ///   else [`LogError::InvalidBatch`]. The stored bytes are the bytes given,
    ///   compressed or not, but for the header fields below;
    /// - it holds at least one record, else [`LogError::EmptyBatch`];
    /// - it is neither a control batch nor transactional, else
    ///   [`LogError::TransactionBatch`] (this broker has no transactions, and
    ///   control records are a broker's to write);
    /// - it is at most [`PartitionLog::max_batch_bytes`] long, else
    ///   [`LogError::BatchTooLarge`];
    /// - its largest record timestamp is at most
    ///   [`LogConfig::max_timestamp_ahead`] ahead of the system clock, else
    ///   [`LogError::TimestampTooFarAhead`].
    ///
    /// A batch with create-time timestamps is stored with its largest record
    /// timestamp as `maxTimestamp` (and its CRC-32C recomputed) when the
    /// client sent another value, as Kafka does (older clients send -1): the
    /// time index, timestamp lookups and retention go by it.
    ///
    /// The append as a whole takes exactly the sum of its batches' record
    /// counts in offsets, at most [`PartitionLog::MAX_APPEND_OFFSETS`] of them
    /// in at most [`PartitionLog::MAX_APPEND_BYTES`] bytes
    /// ([`LogError::AppendTooLarge`]), and may not take the log past
    /// [`PartitionLog::OFFSET_CEILING`] ([`LogError::OffsetSpaceExhausted`]).
    /// If the active segment's 32-bit relative offsets cannot hold every
    /// batch of the append, the log rolls first, so the whole append lands in
    /// one segment whose range holds it.
    ///
    /// Offsets are then assigned by rewriting each batch's `baseOffset` in
    /// `batches` in place, and its `partitionLeaderEpoch` set to
    /// [`PartitionLog::LEADER_EPOCH`] (no re-encoding: the CRC covers
    /// neither), and
    /// the bytes are written with one positional write.
    /// On return the data is in the page cache: it survives a crash of this
    /// process. Make it durable with [`PartitionLog::flush_to`].
    ///
    /// A failed write (disk full, EIO) is rolled back and reported; the log
    /// stays consistent and accepts later appends.
    pub fn append(&self, batches: &mut [u8]) -> Result<AppendInfo, LogError> {
        self.append_capped(batches, Self::MAX_APPEND_OFFSETS)
    }

    /// [`PartitionLog::append`] with `max_offsets` in place of
    /// [`PartitionLog::MAX_APPEND_OFFSETS`] (which no test can reach with
    /// real records).
    pub(crate) fn append_capped(
        &self,
        batches: &mut [u8],
        max_offsets: u64,
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(batches, max_offsets, None, AppendMode::Leader)
    }

    /// A follower's append: stores `batches` with the offsets they carry.
    ///
    /// The same checks as [`PartitionLog::append`], and in addition the
    /// first batch must start at `expected_base`, which must be the log end
    /// ([`PartitionLog::next_offset`] once the appends in flight are
    /// published), and each further batch where the one before it ends;
    /// otherwise [`LogError::BaseOffsetMismatch`] and nothing is written.
    /// The batches are not changed (their `baseOffset` is kept).
    pub fn append_at(
        &self,
        expected_base: u64,
        batches: &mut [u8],
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(
            batches,
            Self::MAX_APPEND_OFFSETS,
            Some(expected_base),
            AppendMode::Follower,
        )
    }

    /// A Raft replica's append: [`PartitionLog::append_at`], but without the
    /// [`LogConfig::max_timestamp_ahead`] check, which depends on this
    /// broker's clock, and without walking the records: each batch's header
    /// and CRC-32C are checked ([`batch::validate_shallow`]), its records
    /// are not (nor decompressed), and its `maxTimestamp` is stored as it
    /// is. The leader ran every other check once, before proposing, with
    /// [`PartitionLog::check_proposal`]. With the idempotent producer
    /// checks of [`PartitionLog::append`], for the replica that first
    /// stores a proposal (its leader): a retried batch is answered with its
    /// original offsets (`duplicate`) and not written, an out-of-sequence
    /// one refused. The other replicas store what that one stored, with
    /// [`PartitionLog::append_replica_copy`].
    pub fn append_replica(
        &self,
        expected_base: u64,
        batches: &mut [u8],
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(
            batches,
            Self::MAX_APPEND_OFFSETS,
            Some(expected_base),
            AppendMode::Replica,
        )
    }

    /// [`PartitionLog::append_replica`] of batches another replica (the
    /// leader that proposed them) stored after its producer checks: they
    /// are not checked again, only recorded in this log's producer table.
    /// Producer tables are not the same on every replica (the table's
    /// eviction goes by this broker's clock and by the producer ids all of
    /// its partitions hold), so a check here could decide otherwise and
    /// leave this log with other offsets than the leader's.
    pub fn append_replica_copy(
        &self,
        expected_base: u64,
        batches: &mut [u8],
    ) -> Result<AppendInfo, LogError> {
        self.append_inner(
            batches,
            Self::MAX_APPEND_OFFSETS,
            Some(expected_base),
            AppendMode::ReplicaCopy,
        )
    }

    /// The checks of [`PartitionLog::append`] that depend only on the
    /// batches and this broker's clock, not on the log: what a replication
    /// leader runs once, before proposing batches that every replica then
    /// stores with [`PartitionLog::append_replica`]. Refuses what `append`
    /// refuses for those reasons (invalid batch, records walked and
    /// decompressed; empty; control or transactional; timestamp too far
    /// ahead; too large), and sets each create-time batch's `maxTimestamp`
    /// to its largest record timestamp as `append` does, so the replicas
    /// store the same bytes without walking the records. CPU-bound: for a
    /// large or compressed set, call it on a blocking thread.
    pub fn check_proposal(&self, batches: &mut [u8]) -> Result<(), LogError> {
        self.check_batches(
            batches,
            Self::MAX_APPEND_OFFSETS,
            None,
            AppendMode::Leader,
            SystemTime::now(),
        )
        .map(drop)
    }

    fn append_inner(
        &self,
        batches: &mut [u8],
        max_offsets: u64,
        expected_base: Option<u64>,
        mode: AppendMode,
    ) -> Result<AppendInfo, LogError> {
        let now = SystemTime::now();
        let Checked {
            count,
            offsets,
            max_timestamp,
            idempotent,
        } = self.check_batches(batches, max_offsets, expected_base, mode, now)?;
        let now_ms = unix_millis(now);
        let bytes = batches.len() as u64;

        // Reserve offsets and the file range under the lock; write outside it.
        let mut state = self.state.lock();
        let (base_offset, end_offset, rolled) = loop {
            if let Some(refused) = self.refusal(&state) {
                return Err(refused);
            }
            if state.closing {
                return Err(self.offline_error("the log is shutting down"));
            }
            if state.pending.failed.is_some() {
                // A write failed: the appends in flight fail and the last
                // one cuts the file back; start after that, not into it.
                self.turn.wait(&mut state);
                continue;
            }
            let base_offset = state.end.offset + state.pending.offsets;
            let end_offset = base_offset
                .checked_add(offsets)
                .filter(|&n| n <= Self::OFFSET_CEILING)
                .ok_or(LogError::OffsetSpaceExhausted {
                    next_offset: base_offset,
                    offsets,
                    ceiling: Self::OFFSET_CEILING,
                })?;
            if let Some(found) = expected_base.filter(|&b| b != base_offset) {
                return Err(LogError::BaseOffsetMismatch {
                    position: 0,
                    expected: base_offset,
                    found,
                });
            }
            if !idempotent.is_empty() && mode.checks_producers() {
                match super::producers::check_append(&state.producers, &idempotent, count)? {
                    None => {}
                    // The original is still in flight: answer only once it
                    // is published (or, if its write failed, check again).
                    Some((_, last)) if last.last_offset >= state.end.offset => {
                        self.turn.wait(&mut state);
                        continue;
                    }
                    Some((first, last)) => {
                        return Ok(AppendInfo {
                            base_offset: first.first_offset,
                            last_offset: last.last_offset,
                            next_offset: last.last_offset + 1,
                            max_timestamp,
                            batches: count,
                            rolled: false,
                            duplicate: true,
                        });
                    }
                }
            }
            if !self.roll_needed(&state, bytes, offsets, now) {
                break (base_offset, end_offset, false);
            }
            // A roll seals the active segment: every write into it must
            // have published first.
            if !state.pending.is_idle() {
                self.turn.wait(&mut state);
                continue;
            }
            self.roll(&mut state)?;
            break (base_offset, end_offset, true);
        };
        // A roll seals everything below `base_offset`: keep the producer
        // table as of there, for the next maintenance pass to write (no
        // file I/O here, this may be a reactor thread).
        if rolled {
            let bytes = crate::producer::snapshot::encode(base_offset, &state.producers);
            state.pending_snapshot = Some((base_offset, bytes));
        }
        let file = state.active().file()?;
        super::producers::record_append(
            &mut state.producers,
            &idempotent,
            base_offset,
            &self.config,
            now_ms,
        );
        let ticket = state.pending.next_ticket;
        state.pending.next_ticket += 1;
        let position = state.active().size() + state.pending.bytes;
        let reserve =
            state
                .active_mut()
                .reserve_blocks(position, position + bytes, self.roll_policy().0);
        state.pending.offsets += offsets;
        state.pending.bytes += bytes;
        drop(state);

        // Offsets and the leader epoch are assigned in the caller's buffer:
        // no lock needed (a follower's append keeps what it carries).
        let mut next = base_offset;
        let mut at = 0usize;
        while let Some(rest) = batches
            .get_mut(at..)
            .filter(|r| !r.is_empty() && expected_base.is_none())
        {
            // Both steps succeeded on these bytes in the validation pass.
            let Ok(header) = batch::BatchHeader::parse(rest) else {
                break;
            };
            // `next` stays at most `end_offset <= OFFSET_CEILING < i64::MAX`.
            let _ = batch::set_base_offset(rest, next as i64);
            // As Kafka stamps the leader's epoch: what a client put there is
            // not the log's (a replica's append is stamped by its group).
            let _ = batch::set_partition_leader_epoch(rest, Self::LEADER_EPOCH);
            next += u64::try_from(header.record_count).unwrap_or(0);
            at += header.total_len();
        }
        debug_assert!(
            next == end_offset || expected_base.is_some(),
            "second pass assigns what the first counted"
        );

        if let Some((at, len)) = reserve {
            // Advisory: where it fails (no such call, no space) the write
            // below allocates as usual, and reports a full disk itself.
            if let Err(e) = file.preallocate(at, len) {
                tracing::trace!(dir = %self.dir.display(), error = %e, "preallocate failed");
            }
        }
        let written = write_all_at(&*file, batches, position);
        drop(file);

        let mut state = self.state.lock();
        while state.pending.published != ticket {
            self.turn.wait(&mut state);
        }
        let result = self.publish(&mut state, batches, written, offsets, bytes, now);
        state.pending.published += 1;
        self.turn.notify_all();
        drop(state);
        result?;
        Ok(AppendInfo {
            base_offset,
            last_offset: end_offset - 1,
            next_offset: end_offset,
            max_timestamp,
            batches: count,
            rolled,
            duplicate: false,
        })
    }

    /// The checks of an append that need no lock: every batch validated
    /// (fully, or for a replica's append only its header and CRC), its
    /// create-time `maxTimestamp` set, the timestamp, size and offset-count
    /// limits. Changes only the `maxTimestamp` fields of `batches`.
    fn check_batches(
        &self,
        batches: &mut [u8],
        max_offsets: u64,
        expected_base: Option<u64>,
        mode: AppendMode,
        now: SystemTime,
    ) -> Result<Checked, LogError> {
        let now_ms = unix_millis(now);
        let ahead_ms = self
            .config
            .max_timestamp_ahead
            .filter(|_| !mode.is_replica())
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let bytes = batches.len() as u64;
        let too_large = |offsets: u64| LogError::AppendTooLarge {
            offsets,
            bytes,
            max_offsets,
            max_bytes: Self::MAX_APPEND_BYTES,
        };
        if bytes > Self::MAX_APPEND_BYTES {
            return Err(too_large(0));
        }
        let max_batch = self.max_batch_bytes();
        let mut count = 0u32;
        let mut offsets = 0u64;
        // Decompressed records of the batch being checked; allocated only
        // for a compressed batch.
        let mut scratch = Vec::new();
        // One of the broker's decompression slots, taken at the first
        // compressed batch to check (see `decompression`).
        let mut slot = None;
        let mut max_timestamp = i64::MIN;
        let mut at = 0usize;
        // Batches of idempotent producers; allocates only when there is one.
        let mut idempotent: Vec<IdempotentBatch> = Vec::new();
        while at < batches.len() {
            let rest = batches.get(at..).unwrap_or_default();
            let limit = self.config.max_decompressed_batch_bytes;
            // A replica stores what its leader validated in full before
            // proposing it ([`PartitionLog::check_proposal`]): the CRC
            // proves these are those bytes, so no walk of the records (no
            // decompression) holds up the Raft core on any replica.
            let checked = if mode.is_replica() {
                batch::validate_shallow(rest).map(|header| batch::Validated {
                    header,
                    max_record_timestamp: None,
                })
            } else {
                let parsed = batch::BatchHeader::parse(rest);
                if let Ok(h) = &parsed {
                    // Before the records are walked (decompressed): a batch
                    // over the limit is refused whatever it holds.
                    let bytes = h.total_len() as u64;
                    if mode == AppendMode::Leader && bytes > u64::from(max_batch) {
                        return Err(LogError::BatchTooLarge {
                            position: at,
                            bytes,
                            max: max_batch,
                        });
                    }
                }
                if slot.is_none()
                    && parsed.is_ok_and(|h| h.compression() != batch::Compression::None)
                {
                    slot = Some(super::decompression::enter());
                }
                batch::validate_measuring(rest, limit, &mut scratch)
            }
            .map_err(|source| LogError::InvalidBatch {
                position: at,
                source,
            })?;
            let header = checked.header;
            // `last_offset_delta == record_count - 1`; and (walked here, or
            // by the leader for a replica) exactly `record_count` records,
            // decompressed first if compressed, with offset deltas 0...
            let records = u64::try_from(header.record_count).unwrap_or(0);
            if records == 0 {
                return Err(LogError::EmptyBatch { position: at });
            }
            // Client data (a leader's append, or a replica applying what a
            // leader proposed); a follower copies what a leader stored.
            if mode != AppendMode::Follower && (header.is_control() || header.is_transactional()) {
                return Err(LogError::TransactionBatch {
                    position: at,
                    control: header.is_control(),
                });
            }
            if let Some(expected) = expected_base.map(|b| b.saturating_add(offsets)) {
                let found = u64::try_from(header.base_offset).unwrap_or(u64::MAX);
                if found != expected {
                    return Err(LogError::BaseOffsetMismatch {
                        position: at,
                        expected,
                        found,
                    });
                }
            }
            // Every batch a client sends is stored as create-time with its
            // largest record timestamp as `maxTimestamp`, whatever the
            // client sent (older clients send -1; a log-append-time bit
            // would make readers give every record that one timestamp), as
            // Kafka does for a topic of producers' timestamps: the time
            // index, timestamp lookups and retention go by it. A replica
            // stores what its leader so rewrote (`max_record_timestamp` is
            // not measured for it); a follower copies a leader's batch as
            // is.
            let mut batch_max = header.max_timestamp;
            if mode != AppendMode::Follower {
                let log_append = header.timestamp_type() == TimestampType::LogAppendTime;
                if let Some(m) = checked
                    .max_record_timestamp
                    .filter(|&m| m != batch_max || log_append)
                {
                    let here = batches.get_mut(at..).unwrap_or_default();
                    batch::set_create_time(here, m).map_err(|source| LogError::InvalidBatch {
                        position: at,
                        source,
                    })?;
                    batch_max = m;
                }
            }
            if let Some(ahead_ms) = ahead_ms {
                if batch_max > now_ms.saturating_add(ahead_ms) {
                    return Err(LogError::TimestampTooFarAhead {
                        position: at,
                        max_timestamp: batch_max,
                        now_ms,
                        ahead_ms,
                    });
                }
            }
            offsets = offsets
                .checked_add(records)
                .filter(|&o| o <= max_offsets)
                .ok_or_else(|| too_large(offsets.saturating_add(records)))?;
            if header.producer_id >= 0 {
                idempotent.push(IdempotentBatch {
                    position: at,
                    delta: offsets - records,
                    id: BatchIdentity {
                        producer_id: header.producer_id,
                        epoch: header.producer_epoch,
                        first_seq: header.base_sequence,
                        records: u32::try_from(records).unwrap_or(u32::MAX),
                    },
                });
            }
            max_timestamp = max_timestamp.max(batch_max);
            count += 1;
            at += header.total_len();
        }
        if count == 0 {
            return Err(LogError::EmptyAppend);
        }
        Ok(Checked {
            count,
            offsets,
            max_timestamp,
            idempotent,
        })
    }

    /// Publishes the in-flight append whose turn it is (every earlier one
    /// published or failed): indexes its batches and moves the log end and
    /// the high watermark. After a failed write (this one's or an earlier
    /// one's) nothing is published, and the last append in flight cuts the
    /// file back to the published end, or takes the log offline if it
    /// cannot.
    fn publish(
        &self,
        state: &mut MutexGuard<'_, LogState>,
        batches: &[u8],
        written: std::io::Result<()>,
        offsets: u64,
        bytes: u64,
        now: SystemTime,
    ) -> Result<(), LogError> {
        state.pending.offsets -= offsets;
        state.pending.bytes -= bytes;
        let error = match written {
            Err(e) => {
                let reason = e.to_string();
                state.pending.failed.get_or_insert(reason);
                Some(LogError::io("append to", state.active().log_path(), e))
            }
            Ok(()) => state.pending.failed.as_ref().map(|reason| {
                LogError::io(
                    "append to",
                    state.active().log_path(),
                    std::io::Error::other(format!("an earlier append failed: {reason}")),
                )
            }),
        };
        let Some(error) = error else {
            let config = &self.config;
            let active = state.active_mut();
            active.commit_write(batches, config, now);
            let end = LogPoint {
                offset: active.next_offset(),
                segment_base: active.base_offset(),
                position: active.size(),
            };
            state.end = end;
            self.next_offset.store(end.offset, Ordering::Release);
            if self.config.flush != FlushPolicy::BeforeAck && state.external_hw.is_none() {
                self.high_watermark.store(end.offset, Ordering::Release);
            }
            return Ok(());
        };
        if state.pending.offsets == 0 {
            // The last append in flight: no later write lies beyond the
            // published end any more.
            state.pending.failed = None;
            let end = state.end.offset;
            state.producers.truncate_to(end);
            if let Err(rollback) = state.active_mut().roll_back() {
                let reason = format!(
                    "append failed ({error}) and truncating back failed ({rollback}); the segment tail is unknown"
                );
                tracing::error!(dir = %self.dir.display(), %reason);
                state.offline = Some(reason.clone());
                return Err(self.offline_error(&reason));
            }
        }
        Err(error)
    }

    /// Whether the active segment is full (by size, age, index, or
    /// relative-offset range) for an append of `bytes` and `records` after
    /// the appends in flight.
    fn roll_needed(&self, state: &LogState, bytes: u64, records: u64, now: SystemTime) -> bool {
        let active = state.active();
        let size = active.size() + state.pending.bytes;
        if size == 0 {
            return false;
        }
        let (segment_bytes, segment_age) = self.roll_policy();
        let by_size = size + bytes > segment_bytes;
        let by_age = match (segment_age, active.first_append()) {
            (Some(age), Some(first)) => now.duration_since(first).is_ok_and(|d| d >= age),
            _ => false,
        };
        // Offsets of the append run from the reserved end to `records` past
        // it (exclusive), its last batch ending there; if that end is beyond
        // the segment's 32-bit relative offsets, so is the last batch, and
        // the append goes to a new segment (it fits one: MAX_APPEND_OFFSETS).
        let end = state.end.offset + state.pending.offsets;
        let by_offsets = end - active.base_offset() + records > u64::from(u32::MAX);
        by_size || by_age || by_offsets || active.indexes_full()
    }

    /// Seals the active segment and starts a new one at the log end.
    pub(crate) fn roll(&self, state: &mut LogState) -> Result<(), LogError> {
        let base = state.end.offset;
        let new = Segment::create(&self.fs, &self.dir, base, &self.config)?;
        // Nothing is in flight (the caller waited), so the file ends at the
        // segment's size. Releasing is a saving of disk space only.
        if let Err(e) = state.active_mut().release_reserved() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not release reserved disk blocks");
        }
        if let Err(e) = state.active_mut().seal() {
            let _ = new.delete(&*self.fs);
            return Err(e);
        }
        let sealed = state.active().base_offset();
        state.segments.push_back(new);
        state.touch_sealed(sealed);
        state.dir_changes += 1;
        tracing::debug!(dir = %self.dir.display(), base_offset = base, "rolled segment");
        Ok(())
    }
}
