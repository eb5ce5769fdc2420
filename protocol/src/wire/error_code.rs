//! Stable numeric error codes. A code, once assigned, is never reused for
//! another meaning; new codes are appended.

use serde::{Deserialize, Serialize};

/// An error code carried in responses. Unknown numbers decode as
/// [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "u16", into = "u16")]
#[repr(u16)]
pub enum ErrorCode {
    /// Success.
    None = 0,
    /// An unexpected error in the broker; see the message.
    Unknown = 1,
    /// A record batch failed validation (CRC, structure).
    CorruptRecord = 2,
    /// No such topic or partition.
    UnknownTopicOrPartition = 3,
    /// A topic name outside the allowed character set or length.
    InvalidTopicName = 4,
    /// Create of a topic that exists.
    TopicAlreadyExists = 5,
    /// Fetch or list outside the partition's offsets.
    OffsetOutOfRange = 6,
    /// A frame or record set over the configured maximum.
    MessageTooLarge = 7,
    /// The API key is not known to this broker.
    UnsupportedApi = 8,
    /// The API version is not supported for that API.
    UnsupportedVersion = 9,
    /// The request body could not be decoded or is inconsistent.
    InvalidRequest = 10,
    /// The disk is full; retry after space is freed.
    DiskFull = 11,
    /// Another I/O error while writing; retry may succeed.
    StorageError = 12,
    /// The partition is offline after a failed fsync; an operator must act.
    PartitionOffline = 13,
    /// Partition count out of range.
    InvalidPartitions = 14,
    /// A topic setting out of range.
    InvalidConfig = 15,
    /// The broker is shutting down; retry against it after restart.
    BrokerShuttingDown = 16,
    /// The request waited too long (for example for a flush).
    RequestTimedOut = 17,
    /// An invalid consumer group name.
    InvalidGroupName = 18,
}

impl ErrorCode {
    /// The code for a number; unknown numbers give [`ErrorCode::Unknown`].
    pub fn from_u16(code: u16) -> ErrorCode {
        use ErrorCode::*;
        match code {
            0 => None,
            2 => CorruptRecord,
            3 => UnknownTopicOrPartition,
            4 => InvalidTopicName,
            5 => TopicAlreadyExists,
            6 => OffsetOutOfRange,
            7 => MessageTooLarge,
            8 => UnsupportedApi,
            9 => UnsupportedVersion,
            10 => InvalidRequest,
            11 => DiskFull,
            12 => StorageError,
            13 => PartitionOffline,
            14 => InvalidPartitions,
            15 => InvalidConfig,
            16 => BrokerShuttingDown,
            17 => RequestTimedOut,
            18 => InvalidGroupName,
            _ => Unknown,
        }
    }

    /// Whether the same request may succeed if retried later.
    pub fn is_retriable(self) -> bool {
        matches!(
            self,
            ErrorCode::DiskFull
                | ErrorCode::StorageError
                | ErrorCode::BrokerShuttingDown
                | ErrorCode::RequestTimedOut
        )
    }

    /// Whether this is [`ErrorCode::None`].
    pub fn is_ok(self) -> bool {
        self == ErrorCode::None
    }
}

impl From<u16> for ErrorCode {
    fn from(code: u16) -> Self {
        ErrorCode::from_u16(code)
    }
}

impl From<ErrorCode> for u16 {
    fn from(code: ErrorCode) -> u16 {
        code as u16
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            ErrorCode::None => "no error",
            ErrorCode::Unknown => "unexpected broker error",
            ErrorCode::CorruptRecord => "corrupt record batch",
            ErrorCode::UnknownTopicOrPartition => "unknown topic or partition",
            ErrorCode::InvalidTopicName => "invalid topic name",
            ErrorCode::TopicAlreadyExists => "topic already exists",
            ErrorCode::OffsetOutOfRange => "offset out of range",
            ErrorCode::MessageTooLarge => "message too large",
            ErrorCode::UnsupportedApi => "unsupported API",
            ErrorCode::UnsupportedVersion => "unsupported API version",
            ErrorCode::InvalidRequest => "invalid request",
            ErrorCode::DiskFull => "disk full",
            ErrorCode::StorageError => "storage error",
            ErrorCode::PartitionOffline => "partition offline",
            ErrorCode::InvalidPartitions => "invalid partition count",
            ErrorCode::InvalidConfig => "invalid topic configuration",
            ErrorCode::BrokerShuttingDown => "broker shutting down",
            ErrorCode::RequestTimedOut => "request timed out",
            ErrorCode::InvalidGroupName => "invalid consumer group name",
        };
        write!(f, "{text} ({})", *self as u16)
    }
}
