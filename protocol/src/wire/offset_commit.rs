//! OffsetCommit (key 7): store a consumer group's positions durably.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// One partition's committed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// The next offset the group will consume.
    pub offset: u64,
    /// Free-form application data stored with it.
    pub metadata: String,
}

/// Commits offsets for a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommitRequest {
    /// Consumer group name (same rules as topic names).
    pub group: String,
    /// Positions.
    pub partitions: Vec<CommitPartition>,
}

/// One partition's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitPartitionResponse {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Outcome.
    pub error_code: ErrorCode,
}

/// One entry per requested partition, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommitResponse {
    /// Results.
    pub partitions: Vec<CommitPartitionResponse>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            OffsetCommitRequest {
                group: String::new(),
                partitions: vec![],
            },
            OffsetCommitRequest {
                group: "billing".into(),
                partitions: vec![
                    CommitPartition {
                        topic: "orders".into(),
                        partition: 0,
                        offset: 0,
                        metadata: String::new(),
                    },
                    CommitPartition {
                        topic: "orders".into(),
                        partition: 5,
                        offset: u64::MAX,
                        metadata: "host-3 📦".into(),
                    },
                ],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            OffsetCommitResponse { partitions: vec![] },
            OffsetCommitResponse {
                partitions: vec![
                    CommitPartitionResponse {
                        topic: "orders".into(),
                        partition: 0,
                        error_code: ErrorCode::None,
                    },
                    CommitPartitionResponse {
                        topic: "orders".into(),
                        partition: 99,
                        error_code: ErrorCode::UnknownTopicOrPartition,
                    },
                    CommitPartitionResponse {
                        topic: "orders".into(),
                        partition: 1,
                        error_code: ErrorCode::InvalidGroupName,
                    },
                ],
            },
        ]);
    }
}
