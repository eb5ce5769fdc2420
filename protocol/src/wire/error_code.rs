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
    /// Offset commit metadata over the broker's limit
    /// (`offset_metadata_max_bytes`, 4096 bytes by default).
    OffsetMetadataTooLarge = 19,
    /// The broker holds the most committed offsets it may
    /// (`max_committed_offsets`); a commit that would add keys is refused.
    TooManyCommittedOffsets = 20,
    /// A record batch names a compression codec this broker does not know
    /// (attributes codec bits 5-7). Nothing of the append was written.
    UnsupportedCompression = 21,
    /// A record batch's timestamp is out of the range the topic accepts (its
    /// largest timestamp is too far ahead of the broker's clock). Nothing of
    /// the append was written.
    InvalidTimestamp = 22,
    /// The append would take the partition past its largest offset. Nothing
    /// was written; the partition accepts no more records.
    OffsetSpaceExhausted = 23,
    /// A Produce or Fetch request lists one (topic, partition) more than once.
    DuplicatePartition = 24,
    /// A Produce or Fetch request lists more partitions than the broker's
    /// `max_partitions_per_request`.
    TooManyPartitions = 25,
    /// The records of a compressed record batch do not decompress with its
    /// codec (truncated or corrupt stream, bytes after it). Nothing of the
    /// append was written.
    CorruptCompressedBatch = 26,
    /// The records of a compressed record batch decompress to more than the
    /// broker's `max_decompressed_batch_bytes`; the broker stopped at the
    /// limit. Nothing of the append was written.
    DecompressedBatchTooLarge = 27,
    /// An idempotent producer's batch does not continue its sequence on the
    /// partition (a gap: an earlier batch is missing). Nothing of the append
    /// was written; resend the earlier batches first.
    OutOfOrderSequence = 30,
    /// An idempotent producer's batch carries an epoch older than one
    /// already seen for its producer id on the partition: a newer instance
    /// of the producer took over. Nothing was written.
    ProducerFenced = 31,
    /// A batch with a sequence number other than 0 names a producer id the
    /// partition holds no state for (never seen, or expired after
    /// `producer_id_expiration_ms` idle, or evicted). Nothing was written;
    /// the producer should acquire a new id.
    UnknownProducerId = 32,
    /// The member id is not (or no longer) a member of the group: its session expired, it left, or it never joined. Rejoin with an empty member id.
    UnknownMemberId = 33,
    /// The generation given is not the group's current one: the member is a zombie of an older generation. Rejoin.
    IllegalGeneration = 34,
    /// The group is rebalancing: rejoin (JoinGroup) to take part. Commits are refused while the group awaits its leader's assignment.
    RebalanceInProgress = 35,
    /// A first JoinGroup without a member id: the response carries the id to join with.
    MemberIdRequired = 36,
    /// The static member (`group_instance_id`) is now held by another member id: a newer instance took over.
    FencedInstanceId = 37,
    /// The group has members (DeleteGroups of an active group).
    NonEmptyGroup = 38,
    /// No such group.
    GroupIdNotFound = 39,
    /// The member's protocol type differs from the group's, or it shares no protocol with the other members, or it sent none.
    InconsistentGroupProtocol = 40,
    /// The group already has `group_max_size` members.
    GroupMaxSizeReached = 41,
    /// The session timeout is outside the broker's `group_min_session_timeout_ms..=group_max_session_timeout_ms`.
    InvalidSessionTimeout = 42,
    /// This broker does not lead the partition (Produce, Fetch, ListOffsets):
    /// another node does. The message names the leader's node id; refresh
    /// Metadata and send to the leader. Nothing was written.
    NotLeaderForPartition = 43,
    /// CreateTopics: the replication factor is 0 or larger than the number
    /// of brokers in the cluster (the message says how many there are).
    InvalidReplicationFactor = 44,
    /// The partition has no leader right now (an election is under way):
    /// refresh Metadata and retry after a backoff. Nothing was written.
    LeaderNotAvailable = 45,
    /// No controller leader could be reached within the admin timeout (cluster mode): the admin request was not applied; retry later.
    ControllerUnavailable = 46,
    /// Not sent (reserved): a replication factor above the cluster's node
    /// count is `InvalidReplicationFactor`.
    NotEnoughReplicas = 47,
    /// This broker does not coordinate the consumer group (cluster mode):
    /// the message names the coordinator's node id. Ask FindCoordinator and
    /// send the group's requests there. Nothing was done.
    NotCoordinator = 48,
    /// The group's coordinator cannot be named right now (no cluster view
    /// yet): retry after a backoff.
    CoordinatorNotAvailable = 49,
    /// A record batch of a kind clients may not write: a control batch
    /// (attributes bit 5: transaction markers, which only a broker writes) or
    /// a transactional batch (bit 4: this broker has no transactions).
    /// Nothing of the append was written.
    InvalidRecord = 50,
    /// An offset commit by a member of Kafka's consumer group protocol
    /// (KIP-848) with an epoch other than its current one: retry with the
    /// epoch of its latest heartbeat. Nothing was stored.
    StaleMemberEpoch = 51,
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
            19 => OffsetMetadataTooLarge,
            20 => TooManyCommittedOffsets,
            21 => UnsupportedCompression,
            22 => InvalidTimestamp,
            23 => OffsetSpaceExhausted,
            24 => DuplicatePartition,
            25 => TooManyPartitions,
            26 => CorruptCompressedBatch,
            27 => DecompressedBatchTooLarge,
            30 => OutOfOrderSequence,
            31 => ProducerFenced,
            32 => UnknownProducerId,
            33 => UnknownMemberId,
            34 => IllegalGeneration,
            35 => RebalanceInProgress,
            36 => MemberIdRequired,
            37 => FencedInstanceId,
            38 => NonEmptyGroup,
            39 => GroupIdNotFound,
            40 => InconsistentGroupProtocol,
            41 => GroupMaxSizeReached,
            42 => InvalidSessionTimeout,
            43 => NotLeaderForPartition,
            44 => InvalidReplicationFactor,
            45 => LeaderNotAvailable,
            46 => ControllerUnavailable,
            47 => NotEnoughReplicas,
            48 => NotCoordinator,
            49 => CoordinatorNotAvailable,
            50 => InvalidRecord,
            51 => StaleMemberEpoch,
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
                | ErrorCode::NotLeaderForPartition
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::ControllerUnavailable
                | ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
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
            ErrorCode::OffsetMetadataTooLarge => "offset metadata too large",
            ErrorCode::TooManyCommittedOffsets => "too many committed offsets",
            ErrorCode::UnsupportedCompression => "unsupported compression",
            ErrorCode::InvalidTimestamp => "invalid timestamp",
            ErrorCode::OffsetSpaceExhausted => "partition offset space exhausted",
            ErrorCode::DuplicatePartition => "partition listed twice in one request",
            ErrorCode::TooManyPartitions => "too many partitions in one request",
            ErrorCode::CorruptCompressedBatch => "compressed record batch does not decompress",
            ErrorCode::DecompressedBatchTooLarge => "record batch decompresses beyond the limit",
            ErrorCode::OutOfOrderSequence => "out of order sequence number",
            ErrorCode::ProducerFenced => "producer fenced by a newer epoch",
            ErrorCode::UnknownProducerId => "unknown producer id",
            ErrorCode::UnknownMemberId => "unknown member id",
            ErrorCode::IllegalGeneration => "illegal generation",
            ErrorCode::RebalanceInProgress => "rebalance in progress",
            ErrorCode::MemberIdRequired => "member id required",
            ErrorCode::FencedInstanceId => "fenced instance id",
            ErrorCode::NonEmptyGroup => "group is not empty",
            ErrorCode::GroupIdNotFound => "group not found",
            ErrorCode::InconsistentGroupProtocol => "inconsistent group protocol",
            ErrorCode::GroupMaxSizeReached => "group is full",
            ErrorCode::InvalidSessionTimeout => "invalid session timeout",
            ErrorCode::NotLeaderForPartition => "not the leader for the partition",
            ErrorCode::InvalidReplicationFactor => "invalid replication factor",
            ErrorCode::LeaderNotAvailable => "partition leader not available",
            ErrorCode::ControllerUnavailable => "controller unavailable",
            ErrorCode::NotEnoughReplicas => "not enough replicas",
            ErrorCode::NotCoordinator => "not the group's coordinator",
            ErrorCode::CoordinatorNotAvailable => "group coordinator not available",
            ErrorCode::InvalidRecord => "record batch of a kind clients may not write",
            ErrorCode::StaleMemberEpoch => "stale member epoch",
        };
        write!(f, "{text} ({})", *self as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{check_all, encode};
    use crate::wire::{WireError, decode_body};

    /// Every code with its number. Codes are stable: changing a number here
    /// breaks every client in the field.
    const PINNED: [(ErrorCode, u16); 50] = [
        (ErrorCode::None, 0),
        (ErrorCode::Unknown, 1),
        (ErrorCode::CorruptRecord, 2),
        (ErrorCode::UnknownTopicOrPartition, 3),
        (ErrorCode::InvalidTopicName, 4),
        (ErrorCode::TopicAlreadyExists, 5),
        (ErrorCode::OffsetOutOfRange, 6),
        (ErrorCode::MessageTooLarge, 7),
        (ErrorCode::UnsupportedApi, 8),
        (ErrorCode::UnsupportedVersion, 9),
        (ErrorCode::InvalidRequest, 10),
        (ErrorCode::DiskFull, 11),
        (ErrorCode::StorageError, 12),
        (ErrorCode::PartitionOffline, 13),
        (ErrorCode::InvalidPartitions, 14),
        (ErrorCode::InvalidConfig, 15),
        (ErrorCode::BrokerShuttingDown, 16),
        (ErrorCode::RequestTimedOut, 17),
        (ErrorCode::InvalidGroupName, 18),
        (ErrorCode::OffsetMetadataTooLarge, 19),
        (ErrorCode::TooManyCommittedOffsets, 20),
        (ErrorCode::UnsupportedCompression, 21),
        (ErrorCode::InvalidTimestamp, 22),
        (ErrorCode::OffsetSpaceExhausted, 23),
        (ErrorCode::DuplicatePartition, 24),
        (ErrorCode::TooManyPartitions, 25),
        (ErrorCode::CorruptCompressedBatch, 26),
        (ErrorCode::DecompressedBatchTooLarge, 27),
        (ErrorCode::OutOfOrderSequence, 30),
        (ErrorCode::ProducerFenced, 31),
        (ErrorCode::UnknownProducerId, 32),
        (ErrorCode::UnknownMemberId, 33),
        (ErrorCode::IllegalGeneration, 34),
        (ErrorCode::RebalanceInProgress, 35),
        (ErrorCode::MemberIdRequired, 36),
        (ErrorCode::FencedInstanceId, 37),
        (ErrorCode::NonEmptyGroup, 38),
        (ErrorCode::GroupIdNotFound, 39),
        (ErrorCode::InconsistentGroupProtocol, 40),
        (ErrorCode::GroupMaxSizeReached, 41),
        (ErrorCode::InvalidSessionTimeout, 42),
        (ErrorCode::NotLeaderForPartition, 43),
        (ErrorCode::InvalidReplicationFactor, 44),
        (ErrorCode::LeaderNotAvailable, 45),
        (ErrorCode::ControllerUnavailable, 46),
        (ErrorCode::NotEnoughReplicas, 47),
        (ErrorCode::NotCoordinator, 48),
        (ErrorCode::CoordinatorNotAvailable, 49),
        (ErrorCode::InvalidRecord, 50),
        (ErrorCode::StaleMemberEpoch, 51),
    ];

    #[test]
    fn numbers_are_pinned() {
        for (code, number) in PINNED {
            assert_eq!(code as u16, number, "{code:?}");
            assert_eq!(u16::from(code), number);
        }
    }

    /// A new variant must be added to [`PINNED`] (this match stops compiling
    /// otherwise) and to `docs/protocol.md`.
    #[test]
    fn pinned_list_covers_every_variant() {
        for (code, _) in PINNED {
            match code {
                ErrorCode::None
                | ErrorCode::Unknown
                | ErrorCode::CorruptRecord
                | ErrorCode::UnknownTopicOrPartition
                | ErrorCode::InvalidTopicName
                | ErrorCode::TopicAlreadyExists
                | ErrorCode::OffsetOutOfRange
                | ErrorCode::MessageTooLarge
                | ErrorCode::UnsupportedApi
                | ErrorCode::UnsupportedVersion
                | ErrorCode::InvalidRequest
                | ErrorCode::DiskFull
                | ErrorCode::StorageError
                | ErrorCode::PartitionOffline
                | ErrorCode::InvalidPartitions
                | ErrorCode::InvalidConfig
                | ErrorCode::BrokerShuttingDown
                | ErrorCode::RequestTimedOut
                | ErrorCode::InvalidGroupName
                | ErrorCode::OffsetMetadataTooLarge
                | ErrorCode::TooManyCommittedOffsets
                | ErrorCode::UnsupportedCompression
                | ErrorCode::InvalidTimestamp
                | ErrorCode::OffsetSpaceExhausted
                | ErrorCode::DuplicatePartition
                | ErrorCode::TooManyPartitions
                | ErrorCode::CorruptCompressedBatch
                | ErrorCode::DecompressedBatchTooLarge
                | ErrorCode::OutOfOrderSequence
                | ErrorCode::ProducerFenced
                | ErrorCode::UnknownProducerId
                | ErrorCode::UnknownMemberId
                | ErrorCode::IllegalGeneration
                | ErrorCode::RebalanceInProgress
                | ErrorCode::MemberIdRequired
                | ErrorCode::FencedInstanceId
                | ErrorCode::NonEmptyGroup
                | ErrorCode::GroupIdNotFound
                | ErrorCode::InconsistentGroupProtocol
                | ErrorCode::GroupMaxSizeReached
                | ErrorCode::InvalidSessionTimeout
                | ErrorCode::NotLeaderForPartition
                | ErrorCode::InvalidReplicationFactor
                | ErrorCode::LeaderNotAvailable
                | ErrorCode::ControllerUnavailable
                | ErrorCode::NotEnoughReplicas
                | ErrorCode::NotCoordinator
                | ErrorCode::CoordinatorNotAvailable
                | ErrorCode::InvalidRecord
                | ErrorCode::StaleMemberEpoch => {}
            }
        }
        let mut numbers: Vec<u16> = PINNED.iter().map(|(_, n)| *n).collect();
        numbers.dedup();
        assert_eq!(
            numbers,
            (0..28).chain(30..52).collect::<Vec<u16>>(),
            "unique, in order, dense within each range"
        );
    }

    #[test]
    fn every_code_round_trips_through_u16() {
        for (code, number) in PINNED {
            assert_eq!(ErrorCode::from_u16(number), code);
            assert_eq!(ErrorCode::from(u16::from(code)), code);
        }
    }

    #[test]
    fn unknown_numbers_decode_as_unknown() {
        for n in [28, 29, 52, 100, 127, 128, 1000, u16::MAX] {
            assert_eq!(ErrorCode::from_u16(n), ErrorCode::Unknown, "{n}");
        }
        // Through a body as well: 1000 = varint E8 07.
        assert_eq!(
            decode_body::<ErrorCode>(&[0xE8, 0x07]),
            Ok(ErrorCode::Unknown)
        );
        // Past u16 range is malformed, not Unknown.
        assert!(matches!(
            decode_body::<ErrorCode>(&[0x80, 0x80, 0x04]),
            Err(WireError::Body(_))
        ));
    }

    #[test]
    fn serialized_as_the_u16_varint() {
        for (code, number) in PINNED {
            assert_eq!(encode(&code), encode(&number));
        }
        assert_eq!(encode(&ErrorCode::InvalidGroupName), [0x12]);
        check_all(&PINNED.map(|(code, _)| code));
    }

    #[test]
    fn retriable_codes() {
        let retriable: Vec<ErrorCode> = PINNED
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| c.is_retriable())
            .collect();
        assert_eq!(
            retriable,
            [
                ErrorCode::DiskFull,
                ErrorCode::StorageError,
                ErrorCode::BrokerShuttingDown,
                ErrorCode::RequestTimedOut,
                ErrorCode::NotLeaderForPartition,
                ErrorCode::LeaderNotAvailable,
                ErrorCode::ControllerUnavailable,
                ErrorCode::NotCoordinator,
                ErrorCode::CoordinatorNotAvailable,
            ]
        );
        assert!(ErrorCode::None.is_ok());
        assert!(!ErrorCode::Unknown.is_ok());
    }

    #[test]
    fn display_names_the_number() {
        assert_eq!(ErrorCode::DiskFull.to_string(), "disk full (11)");
        for (code, number) in PINNED {
            assert!(code.to_string().ends_with(&format!("({number})")));
        }
    }
}
