//! Errors of the storage layer.

use std::io;
use std::path::PathBuf;

use sluice_protocol::batch::BatchError;

/// What went wrong in a partition log. Each variant says whether the log
/// is still usable: see [`LogError::is_retriable`].
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A file operation failed. For a failed append the log was truncated
    /// back to where it was, so it is intact and may accept later appends.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done (`"append to"`, `"open"`, …).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A record batch in an append failed validation; nothing was written.
    #[error("invalid record batch at byte {position} of the append: {source}")]
    InvalidBatch {
        /// Where the bad batch starts in the appended buffer.
        position: usize,
        /// What is wrong with it.
        #[source]
        source: BatchError,
    },
    /// A record batch in an append holds no records (Kafka refuses these on
    /// produce too); nothing was written.
    #[error("record batch at byte {position} of the append holds no records")]
    EmptyBatch {
        /// Where the empty batch starts in the appended buffer.
        position: usize,
    },
    /// A record batch of a kind clients may not write: a control batch
    /// (transaction markers, written only by a broker) or a transactional
    /// batch (this broker has no transactions). Nothing was written.
    #[error(
        "record batch at byte {position} of the append is {}",
        if *control { "a control batch (transaction markers are written by brokers only)" } else { "transactional, and this broker has no transactions" }
    )]
    TransactionBatch {
        /// Where the batch starts in the appended buffer.
        position: usize,
        /// A control batch (attributes bit 5); otherwise transactional (bit 4).
        control: bool,
    },
    /// An append held no record batch.
    #[error("append holds no record batch")]
    EmptyAppend,
    /// A record batch's `maxTimestamp` is further ahead of the broker's clock
    /// than [`super::LogConfig::max_timestamp_ahead`]; nothing was written.
    #[error(
        "record batch at byte {position} of the append has max timestamp {max_timestamp} ms, more than {ahead_ms} ms ahead of the broker's clock ({now_ms} ms)"
    )]
    TimestampTooFarAhead {
        /// Where the batch starts in the appended buffer.
        position: usize,
        /// Its `maxTimestamp`, in milliseconds since the Unix epoch.
        max_timestamp: i64,
        /// The broker's clock at the append, in milliseconds since the epoch.
        now_ms: i64,
        /// How far ahead a timestamp may be, in milliseconds.
        ahead_ms: i64,
    },
    /// One append would take more offsets or bytes than the log takes at
    /// once (see [`super::PartitionLog::MAX_APPEND_OFFSETS`]); nothing was written.
    #[error(
        "append of {bytes} bytes takes {offsets} offsets; one append may take at most {max_offsets} offsets and {max_bytes} bytes"
    )]
    AppendTooLarge {
        /// Offsets (records) the append would take, counted up to the batch
        /// that went over.
        offsets: u64,
        /// Bytes of the append.
        bytes: u64,
        /// The most offsets one append may take.
        max_offsets: u64,
        /// The most bytes one append may hold.
        max_bytes: u64,
    },
    /// A batch is larger than the partition's batch limit (Kafka's
    /// `max.message.bytes`, [`super::LogConfig::max_batch_bytes`]); nothing
    /// was written.
    #[error(
        "the batch at byte {position} of the append is {bytes} bytes; this topic takes batches of at most {max} bytes (max.message.bytes)"
    )]
    BatchTooLarge {
        /// Where the batch starts in the appended buffer.
        position: usize,
        /// Its size in bytes.
        bytes: u64,
        /// The most bytes one batch may hold.
        max: u32,
    },
    /// The append would take the log past [`super::PartitionLog::OFFSET_CEILING`];
    /// nothing was written.
    #[error(
        "append of {offsets} offsets at offset {next_offset} would pass the partition's offset ceiling {ceiling}"
    )]
    OffsetSpaceExhausted {
        /// The log's next offset.
        next_offset: u64,
        /// Offsets the append would take.
        offsets: u64,
        /// The largest next offset a log may reach.
        ceiling: u64,
    },
    /// A fetch or lookup asked for an offset the log does not hold.
    #[error(
        "offset {requested} is out of range: the log holds [{log_start}, {log_end}), readers see up to {high_watermark}"
    )]
    OffsetOutOfRange {
        /// The offset asked for.
        requested: u64,
        /// The first offset held.
        log_start: u64,
        /// One past the last offset held (appended, not necessarily
        /// visible yet).
        log_end: u64,
        /// One past the last offset visible to readers.
        high_watermark: u64,
    },
    /// A flush failed earlier (the data written since the last good flush
    /// may not be on disk, and fsync errors are not retryable), or recovery
    /// found damaged flushed data when the log was opened; the log refuses
    /// writes until it is reopened. Reads keep working.
    #[error("partition log {} is offline: {reason}", dir.display())]
    Offline {
        /// The partition directory.
        dir: PathBuf,
        /// The failure that took it offline.
        reason: String,
    },
    /// The partition's topic was deleted (or is being deleted): the log
    /// takes no more appends or flushes. A request's race with a deletion,
    /// not a storage failure.
    #[error("the partition's topic was deleted")]
    Deleted,
    /// A file in the partition directory is damaged beyond what recovery
    /// repairs (for example a segment name that cannot be parsed).
    #[error("corrupt {}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A follower append ([`super::PartitionLog::append_at`]) whose batch at
    /// `position` does not start where the log expects: the first at the log
    /// end, each further one where the one before it ends. Nothing was
    /// written.
    #[error("the batch at byte {position} starts at offset {found}, the log expects {expected}")]
    BaseOffsetMismatch {
        /// Byte position of the batch in the append.
        position: usize,
        /// The offset the log expected.
        expected: u64,
        /// The offset the append gave.
        found: u64,
    },
    /// The settings are out of range.
    #[error("invalid log configuration: {0}")]
    Config(String),
    /// A batch of an idempotent producer does not fit its producer's state
    /// on this partition (sequence gap, stale epoch, unknown producer);
    /// nothing of the append was written.
    #[error("record batch at byte {position} of the append: {source}")]
    Sequence {
        /// Byte position of the batch in the append.
        position: usize,
        /// What is wrong.
        #[source]
        source: crate::producer::state::SeqError,
    },
}

impl LogError {
    /// Whether the same request may succeed later without operator action
    /// (disk full and other I/O errors of an append that was rolled back).
    pub fn is_retriable(&self) -> bool {
        matches!(self, LogError::Io { .. })
    }

    /// Whether this is the disk being full (`ENOSPC` or `EDQUOT`).
    pub fn is_disk_full(&self) -> bool {
        match self {
            LogError::Io { source, .. } => super::io::is_disk_full(source),
            _ => false,
        }
    }

    /// The text sent to a client with this error: the `Display` text, except
    /// that the storage failures (`Io`, `Offline`, `Corrupt`) leave out the
    /// broker's file paths, which are the operator's business, not the
    /// client's. [`LogError::is_storage_failure`] says which those are.
    pub fn client_message(&self) -> String {
        match self {
            LogError::Io { op, source, .. } => format!("storage failure ({op}): {source}"),
            LogError::Offline { .. } => {
                "the partition is offline (a failed write or flush, or damaged data found \
                 when it was opened); see the broker's log"
                    .into()
            }
            LogError::Corrupt { .. } => {
                "the partition's files are damaged; see the broker's log".into()
            }
            other => other.to_string(),
        }
    }

    /// Whether this is a failure of the broker's storage (the disk, the
    /// files) rather than of the request: worth the operator's attention.
    pub fn is_storage_failure(&self) -> bool {
        matches!(
            self,
            LogError::Io { .. } | LogError::Offline { .. } | LogError::Corrupt { .. }
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
