//! Errors at the server edge, and their wire error codes.

use sluice_protocol::batch::BatchError;
use sluice_protocol::wire::{ErrorCode, WireError};

use crate::log::LogError;
use crate::producer::state::SeqError;

/// What went wrong serving a request.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    /// The storage layer failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The request itself is at fault (unknown topic, bad name, …).
    #[error("{message}")]
    Request {
        /// The code sent to the client.
        code: ErrorCode,
        /// Detail sent with it.
        message: String,
    },
    /// Bytes from the network could not be decoded.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A socket or other I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl BrokerError {
    /// The text sent to a client with this error (see
    /// [`LogError::client_message`]: no file paths of the broker).
    pub fn client_message(&self) -> String {
        match self {
            BrokerError::Log(e) => e.client_message(),
            other => other.to_string(),
        }
    }

    /// The wire error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            BrokerError::Log(e) => log_error_code(e),
            BrokerError::Request { code, .. } => *code,
            BrokerError::Wire(WireError::FrameTooLarge { .. }) => ErrorCode::MessageTooLarge,
            BrokerError::Wire(_) => ErrorCode::InvalidRequest,
            BrokerError::Io(_) => ErrorCode::Unknown,
        }
    }
}

/// The wire error code for a storage error.
pub fn log_error_code(e: &LogError) -> ErrorCode {
    match e {
        LogError::InvalidBatch { source, .. } => match source {
            BatchError::UnknownCompression(_) => ErrorCode::UnsupportedCompression,
            BatchError::BadCompressedData { .. } => ErrorCode::CorruptCompressedBatch,
            BatchError::DecompressedTooLarge { .. } => ErrorCode::DecompressedBatchTooLarge,
            _ => ErrorCode::CorruptRecord,
        },
        LogError::EmptyAppend
        | LogError::EmptyBatch { .. }
        | LogError::BaseOffsetMismatch { .. } => ErrorCode::InvalidRequest,
        LogError::TimestampTooFarAhead { .. } => ErrorCode::InvalidTimestamp,
        LogError::TransactionBatch { .. } => ErrorCode::InvalidRecord,
        LogError::AppendTooLarge { .. } | LogError::BatchTooLarge { .. } => {
            ErrorCode::MessageTooLarge
        }
        LogError::OffsetSpaceExhausted { .. } => ErrorCode::OffsetSpaceExhausted,
        LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        LogError::Offline { .. } => ErrorCode::PartitionOffline,
        LogError::Deleted => ErrorCode::UnknownTopicOrPartition,
        LogError::Io { .. } if e.is_disk_full() => ErrorCode::DiskFull,
        LogError::Io { .. } | LogError::Corrupt { .. } => ErrorCode::StorageError,
        LogError::Config(_) => ErrorCode::InvalidConfig,
        LogError::Sequence { source, .. } => match source {
            SeqError::OutOfOrder { .. } | SeqError::MixedRetry => ErrorCode::OutOfOrderSequence,
            SeqError::Fenced { .. } => ErrorCode::ProducerFenced,
        },
    }
}

/// The message a client gets for `e`, a failure serving `what` (a
/// partition, a topic). A storage failure is logged here with its file
/// path, since the client's message leaves it out: at most one warning a
/// second for the whole broker (whichever failure comes first), the next
/// one counting those skipped, so a full disk under a busy producer does
/// not flood the log (which may share the disk).
pub fn client_message_logged(e: &LogError, what: std::fmt::Arguments<'_>) -> String {
    if e.is_storage_failure() {
        warn_storage_failure(e, what);
    }
    e.client_message()
}

fn warn_storage_failure(e: &LogError, what: std::fmt::Arguments<'_>) {
    use std::sync::OnceLock;
    use std::time::Instant;
    // The monotonic clock, so a wall clock stepped back never mutes it.
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    static LIMIT: OncePerSecond = OncePerSecond::new();
    let now_ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64;
    if let Some(skipped) = LIMIT.pass(now_ms) {
        tracing::warn!(error = %e, skipped, "storage failure serving {what}");
    }
}

/// Lets one event a second through, counting the ones it holds back.
struct OncePerSecond {
    /// When the last event passed, in milliseconds plus one (0: never).
    last: std::sync::atomic::AtomicU64,
    skipped: std::sync::atomic::AtomicU64,
}

impl OncePerSecond {
    const fn new() -> Self {
        OncePerSecond {
            last: std::sync::atomic::AtomicU64::new(0),
            skipped: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// `Some(events held back since the last one that passed)` if an event
    /// at `now_ms` (a monotonic clock) passes, `None` if it is held back.
    fn pass(&self, now_ms: u64) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = now_ms.saturating_add(1);
        let last = self.last.load(Relaxed);
        if (last != 0 && now < last.saturating_add(1000))
            || self
                .last
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            self.skipped.fetch_add(1, Relaxed);
            return None;
        }
        Some(self.skipped.swap(0, Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::OncePerSecond;

    #[test]
    fn one_event_a_second_passes_and_the_next_counts_the_rest() {
        let limit = OncePerSecond::new();
        assert_eq!(limit.pass(0), Some(0));
        assert_eq!(limit.pass(1), None);
        assert_eq!(limit.pass(999), None);
        assert_eq!(limit.pass(1000), Some(2));
        assert_eq!(limit.pass(1500), None);
        assert_eq!(limit.pass(5000), Some(1));
        assert_eq!(limit.pass(5001), None);
    }
}
