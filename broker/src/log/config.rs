//! Per-partition-log settings: segment size and age, index density,
//! retention, durability and the accepted timestamp range.

use std::time::Duration;

/// When written data is forced to disk with `fdatasync`.
///
/// Whatever the policy, an acknowledged append has reached the operating
/// system's page cache, so it survives a crash of the broker process. What
/// survives a power cut or kernel crash depends on the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Never on the append path: the kernel writes back when it likes (and
    /// sealed segments are flushed by [`super::PartitionLog::maintain`]).
    /// A power cut can take back any data not yet flushed. Consumers see data
    /// as soon as it is appended.
    Never,
    /// At most this long after an append, when the owner calls
    /// [`super::PartitionLog::maintain`]. A power cut can take back up to
    /// the interval's worth of acknowledged data. Consumers see data as soon
    /// as it is appended.
    Interval(Duration),
    /// Before every acknowledgement: the owner calls
    /// [`super::PartitionLog::flush_to`] and acknowledges after it returns;
    /// concurrent callers share one `fdatasync` (group commit). The high
    /// watermark advances only after the flush, so no consumer sees data a
    /// power cut could take back.
    BeforeAck,
}

/// Default of [`LogConfig::max_decompressed_batch_bytes`]: 128 MiB, twice
/// the broker's default largest frame.
pub const DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES: usize = 128 << 20;

/// Settings of one partition log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll to a new segment when an append would make the active segment
    /// larger than this (a single larger append still goes into a fresh
    /// segment). At most `i32::MAX`, since index positions are 32-bit.
    pub segment_bytes: u64,
    /// Roll when the active segment's first append is older than this.
    pub segment_age: Option<Duration>,
    /// Add an offset index entry after this many bytes appended.
    pub index_interval_bytes: u32,
    /// Size each index file is preallocated to; a full index rolls.
    pub index_max_bytes: u32,
    /// Delete sealed segments whose newest record is older than this.
    pub retention_age: Option<Duration>,
    /// Delete the oldest sealed segments while the log is larger than this.
    pub retention_bytes: Option<u64>,
    /// When data is forced to disk.
    pub flush: FlushPolicy,
    /// Refuse a batch whose `maxTimestamp` is more than this far ahead of
    /// the broker's clock at append (Kafka's `message.timestamp.after.max.ms`),
    /// so one producer with a wrong clock cannot keep a segment from expiring
    /// under age retention. `None`: no limit.
    pub max_timestamp_ahead: Option<Duration>,
    /// The most bytes the records of one compressed batch may decompress to
    /// when an append checks them; a batch over it is refused
    /// ([`sluice_protocol::batch::BatchError::DecompressedTooLarge`]) and
    /// no more than this (plus one byte) was allocated for it.
    pub max_decompressed_batch_bytes: usize,
    /// `None`: batches are stored compressed as the producer sent them
    /// (Kafka's `compression.type = producer`). `Some(codec)`: the produce
    /// path re-encodes every batch not already in `codec` before the append
    /// (off the reactor threads); the log itself stores what it is given.
    pub compression: Option<sluice_protocol::batch::Compression>,
    /// Forget an idempotent producer whose newest batch on this partition
    /// is older than this (Kafka's `producer.id.expiration.ms`, 24 h); its
    /// next batch with a sequence other than 0 is refused as from an
    /// unknown producer.
    pub producer_id_expiration: Duration,
    /// The most idempotent producers remembered per partition; a new one
    /// beyond it makes the partition forget the least recently active.
    pub max_producer_ids: usize,
    /// The largest batch a client's append may hold, in bytes (Kafka's
    /// `max.message.bytes`); a larger one is refused
    /// ([`super::LogError::BatchTooLarge`]). Replicas and followers store
    /// what their leader took, whatever its size.
    pub max_batch_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_age: Some(Duration::from_secs(7 * 24 * 3600)),
            index_interval_bytes: 4096,
            index_max_bytes: 10 << 20,
            retention_age: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_bytes: None,
            flush: FlushPolicy::Never,
            max_timestamp_ahead: Some(Duration::from_secs(3600)),
            max_decompressed_batch_bytes: DEFAULT_MAX_DECOMPRESSED_BATCH_BYTES,
            compression: None,
            producer_id_expiration: Duration::from_secs(24 * 3600),
            max_producer_ids: 10_000,
            max_batch_bytes: u32::MAX,
        }
    }
}

impl LogConfig {
    /// The bounds of the producer table these settings give.
    pub(crate) fn producer_limits(&self) -> crate::producer::state::ProducerLimits {
        crate::producer::state::ProducerLimits {
            expiration_ms: i64::try_from(self.producer_id_expiration.as_millis())
                .unwrap_or(i64::MAX),
            max_ids: self.max_producer_ids,
        }
    }

    /// Checks the settings; the error says which one is out of range.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_bytes == 0 || self.segment_bytes > i32::MAX as u64 {
            return Err(format!(
                "segment_bytes must be in 1..={}, got {}",
                i32::MAX,
                self.segment_bytes
            ));
        }
        if self.index_interval_bytes == 0 {
            return Err("index_interval_bytes must be positive".into());
        }
        if self
            .max_timestamp_ahead
            .is_some_and(|d| d.as_millis() > i64::MAX as u128)
        {
            return Err("max_timestamp_ahead must be at most i64::MAX milliseconds".into());
        }
        if !(64 << 10..=i32::MAX as usize).contains(&self.max_decompressed_batch_bytes) {
            return Err(format!(
                "max_decompressed_batch_bytes must be in 65536..={}, got {}",
                i32::MAX,
                self.max_decompressed_batch_bytes
            ));
        }
        if self.producer_id_expiration.as_millis() > i64::MAX as u128 {
            return Err("producer_id_expiration must be at most i64::MAX milliseconds".into());
        }
        if self.max_producer_ids == 0 {
            return Err("max_producer_ids must be positive".into());
        }
        if self.index_max_bytes < 64 {
            return Err(format!(
                "index_max_bytes must be at least 64, got {}",
                self.index_max_bytes
            ));
        }
        Ok(())
    }
}
