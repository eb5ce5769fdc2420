//! Kafka's error codes (those the listener sends) and the one table that
//! maps Sluice's [`ErrorCode`]s onto them.

use crate::wire::ErrorCode;

/// A Kafka error code.
pub type KafkaCode = i16;

/// Kafka's error codes, by Kafka's names.
#[allow(missing_docs)]
pub mod code {
    use super::KafkaCode;
    pub const NONE: KafkaCode = 0;
    pub const UNKNOWN_SERVER_ERROR: KafkaCode = -1;
    pub const OFFSET_OUT_OF_RANGE: KafkaCode = 1;
    pub const CORRUPT_MESSAGE: KafkaCode = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: KafkaCode = 3;
    pub const LEADER_NOT_AVAILABLE: KafkaCode = 5;
    pub const NOT_LEADER_OR_FOLLOWER: KafkaCode = 6;
    pub const REQUEST_TIMED_OUT: KafkaCode = 7;
    pub const MESSAGE_TOO_LARGE: KafkaCode = 10;
    pub const OFFSET_METADATA_TOO_LARGE: KafkaCode = 12;
    pub const COORDINATOR_NOT_AVAILABLE: KafkaCode = 15;
    pub const NOT_COORDINATOR: KafkaCode = 16;
    pub const INVALID_TOPIC_EXCEPTION: KafkaCode = 17;
    pub const INVALID_REQUIRED_ACKS: KafkaCode = 21;
    pub const ILLEGAL_GENERATION: KafkaCode = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: KafkaCode = 23;
    pub const INVALID_GROUP_ID: KafkaCode = 24;
    pub const UNKNOWN_MEMBER_ID: KafkaCode = 25;
    pub const INVALID_SESSION_TIMEOUT: KafkaCode = 26;
    pub const REBALANCE_IN_PROGRESS: KafkaCode = 27;
    pub const INVALID_TIMESTAMP: KafkaCode = 32;
    pub const UNSUPPORTED_VERSION: KafkaCode = 35;
    pub const TOPIC_ALREADY_EXISTS: KafkaCode = 36;
    pub const INVALID_PARTITIONS: KafkaCode = 37;
    pub const INVALID_REPLICATION_FACTOR: KafkaCode = 38;
    pub const NOT_ENOUGH_REPLICAS: KafkaCode = 19;
    pub const INVALID_REPLICA_ASSIGNMENT: KafkaCode = 39;
    pub const INVALID_CONFIG: KafkaCode = 40;
    pub const INVALID_REQUEST: KafkaCode = 42;
    pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: KafkaCode = 43;
    pub const POLICY_VIOLATION: KafkaCode = 44;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: KafkaCode = 45;
    pub const INVALID_PRODUCER_EPOCH: KafkaCode = 47;
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: KafkaCode = 53;
    pub const SECURITY_DISABLED: KafkaCode = 54;
    pub const KAFKA_STORAGE_ERROR: KafkaCode = 56;
    pub const UNKNOWN_PRODUCER_ID: KafkaCode = 59;
    pub const NON_EMPTY_GROUP: KafkaCode = 68;
    pub const GROUP_ID_NOT_FOUND: KafkaCode = 69;
    pub const FETCH_SESSION_ID_NOT_FOUND: KafkaCode = 70;
    pub const MEMBER_ID_REQUIRED: KafkaCode = 79;
    pub const PREFERRED_LEADER_NOT_AVAILABLE: KafkaCode = 80;
    pub const GROUP_MAX_SIZE_REACHED: KafkaCode = 81;
    pub const FENCED_INSTANCE_ID: KafkaCode = 82;
    pub const ELIGIBLE_LEADERS_NOT_AVAILABLE: KafkaCode = 83;
    pub const ELECTION_NOT_NEEDED: KafkaCode = 84;
    pub const GROUP_SUBSCRIBED_TO_TOPIC: KafkaCode = 86;
    pub const INVALID_RECORD: KafkaCode = 87;
    pub const UNKNOWN_TOPIC_ID: KafkaCode = 100;
    pub const FENCED_MEMBER_EPOCH: KafkaCode = 110;
    pub const UNRELEASED_INSTANCE_ID: KafkaCode = 111;
    pub const UNSUPPORTED_ASSIGNOR: KafkaCode = 112;
    pub const STALE_MEMBER_EPOCH: KafkaCode = 113;
    pub const INVALID_REGULAR_EXPRESSION: KafkaCode = 128;
    pub const UNSUPPORTED_COMPRESSION_TYPE: KafkaCode = 76;
}

/// The Kafka code a Sluice code is answered with on the Kafka listener.
/// Codes Kafka has no equivalent for become `UNKNOWN_SERVER_ERROR` (or the
/// nearest code a Kafka client handles the same way).
pub fn to_kafka(c: ErrorCode) -> KafkaCode {
    use ErrorCode as E;
    match c {
        E::None => code::NONE,
        E::CorruptRecord | E::CorruptCompressedBatch => code::CORRUPT_MESSAGE,
        E::UnknownTopicOrPartition => code::UNKNOWN_TOPIC_OR_PARTITION,
        E::InvalidTopicName => code::INVALID_TOPIC_EXCEPTION,
        E::TopicAlreadyExists => code::TOPIC_ALREADY_EXISTS,
        E::OffsetOutOfRange => code::OFFSET_OUT_OF_RANGE,
        E::MessageTooLarge | E::DecompressedBatchTooLarge => code::MESSAGE_TOO_LARGE,
        E::UnsupportedApi | E::UnsupportedVersion => code::UNSUPPORTED_VERSION,
        E::InvalidRequest | E::DuplicatePartition | E::TooManyPartitions => code::INVALID_REQUEST,
        // Retriable on Kafka clients, as the disk may recover.
        E::DiskFull | E::StorageError | E::PartitionOffline => code::KAFKA_STORAGE_ERROR,
        E::InvalidPartitions => code::INVALID_PARTITIONS,
        E::InvalidConfig => code::INVALID_CONFIG,
        // Retriable after a metadata refresh: the client comes back.
        E::BrokerShuttingDown => code::NOT_LEADER_OR_FOLLOWER,
        E::RequestTimedOut => code::REQUEST_TIMED_OUT,
        E::InvalidGroupName => code::INVALID_GROUP_ID,
        E::OffsetMetadataTooLarge => code::OFFSET_METADATA_TOO_LARGE,
        E::TooManyCommittedOffsets => code::POLICY_VIOLATION,
        E::UnsupportedCompression => code::UNSUPPORTED_COMPRESSION_TYPE,
        E::InvalidTimestamp => code::INVALID_TIMESTAMP,
        E::OutOfOrderSequence => code::OUT_OF_ORDER_SEQUENCE_NUMBER,
        E::ProducerFenced => code::INVALID_PRODUCER_EPOCH,
        E::UnknownProducerId => code::UNKNOWN_PRODUCER_ID,
        E::UnknownMemberId => code::UNKNOWN_MEMBER_ID,
        E::IllegalGeneration => code::ILLEGAL_GENERATION,
        E::RebalanceInProgress => code::REBALANCE_IN_PROGRESS,
        E::MemberIdRequired => code::MEMBER_ID_REQUIRED,
        E::FencedInstanceId => code::FENCED_INSTANCE_ID,
        E::NonEmptyGroup => code::NON_EMPTY_GROUP,
        E::GroupIdNotFound => code::GROUP_ID_NOT_FOUND,
        E::InconsistentGroupProtocol => code::INCONSISTENT_GROUP_PROTOCOL,
        E::GroupMaxSizeReached => code::GROUP_MAX_SIZE_REACHED,
        E::InvalidSessionTimeout => code::INVALID_SESSION_TIMEOUT,
        E::NotLeaderForPartition => code::NOT_LEADER_OR_FOLLOWER,
        E::InvalidReplicationFactor => code::INVALID_REPLICATION_FACTOR,
        E::LeaderNotAvailable => code::LEADER_NOT_AVAILABLE,
        // Retriable on Kafka clients, like the controller moving.
        E::ControllerUnavailable => code::REQUEST_TIMED_OUT,
        E::NotEnoughReplicas => code::NOT_ENOUGH_REPLICAS,
        E::NotCoordinator => code::NOT_COORDINATOR,
        E::CoordinatorNotAvailable => code::COORDINATOR_NOT_AVAILABLE,
        E::InvalidRecord => code::INVALID_RECORD,
        E::StaleMemberEpoch => code::STALE_MEMBER_EPOCH,
        // OffsetSpaceExhausted, Unknown, and codes added later.
        #[allow(unreachable_patterns)]
        _ => code::UNKNOWN_SERVER_ERROR,
    }
}

/// [`to_kafka`] for a partition's error on the data path — Produce, Fetch,
/// ListOffsets, OffsetForLeaderEpoch, DeleteRecords: a partition with no
/// leader is `NOT_LEADER_OR_FOLLOWER`, as Kafka answers there (it names
/// `LEADER_NOT_AVAILABLE` only in Metadata). Clients refresh their metadata
/// on either, but some (kafka-python's fetcher) take any code other than
/// the few Kafka sends as fatal and raise it to the application.
pub fn to_kafka_partition(e: ErrorCode) -> KafkaCode {
    match e {
        ErrorCode::LeaderNotAvailable => code::NOT_LEADER_OR_FOLLOWER,
        e => to_kafka(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sluice_code_has_a_kafka_code() {
        for n in 0..=u16::from(ErrorCode::LeaderNotAvailable) {
            let c = ErrorCode::from_u16(n);
            let k = to_kafka(c);
            assert_eq!(k == code::NONE, c == ErrorCode::None, "{c:?}");
        }
        assert_eq!(to_kafka(ErrorCode::UnsupportedVersion), 35);
        assert_eq!(to_kafka(ErrorCode::UnknownTopicOrPartition), 3);
        assert_eq!(to_kafka(ErrorCode::RebalanceInProgress), 27);
        assert_eq!(to_kafka(ErrorCode::MemberIdRequired), 79);
        assert_eq!(to_kafka(ErrorCode::NotLeaderForPartition), 6);
        assert_eq!(to_kafka(ErrorCode::LeaderNotAvailable), 5);
        assert_eq!(to_kafka_partition(ErrorCode::LeaderNotAvailable), 6);
        assert_eq!(to_kafka_partition(ErrorCode::NotLeaderForPartition), 6);
        assert_eq!(to_kafka_partition(ErrorCode::UnknownTopicOrPartition), 3);
        assert_eq!(to_kafka(ErrorCode::InvalidReplicationFactor), 38);
    }
}
