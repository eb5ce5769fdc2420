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
        LogError::AppendTooLarge { .. } => ErrorCode::MessageTooLarge,
        LogError::OffsetSpaceExhausted { .. } => ErrorCode::OffsetSpaceExhausted,
        LogError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        LogError::Offline { .. } => ErrorCode::PartitionOffline,
        LogError::Io { .. } if e.is_disk_full() => ErrorCode::DiskFull,
        LogError::Io { .. } | LogError::Corrupt { .. } => ErrorCode::StorageError,
        LogError::Config(_) => ErrorCode::InvalidConfig,
        LogError::Sequence { source, .. } => match source {
            SeqError::OutOfOrder { .. } | SeqError::MixedRetry => ErrorCode::OutOfOrderSequence,
            SeqError::Fenced { .. } => ErrorCode::ProducerFenced,
            SeqError::UnknownProducer { .. } => ErrorCode::UnknownProducerId,
        },
    }
}
