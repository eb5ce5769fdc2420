//! OffsetCommit (key 7): store a consumer group's positions durably.
//! Version 1 adds the committing member's generation and ids, which the
//! group coordinator checks (fencing); a version 0 request is a "simple"
//! commit (generation -1, no member), accepted only while the group has no
//! members.

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

/// Commits offsets for a group as a member of a generation (version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetCommitRequestV1 {
    /// Consumer group name (same rules as topic names).
    pub group: String,
    /// The member's generation, or -1 for a commit from outside the group
    /// (allowed only while the group has no members).
    pub generation_id: i32,
    /// The member's id, or empty with generation -1.
    pub member_id: String,
    /// The member's static id, if any.
    pub group_instance_id: Option<String>,
    /// Positions.
    pub partitions: Vec<CommitPartition>,
}

impl From<OffsetCommitRequest> for OffsetCommitRequestV1 {
    /// A version 0 commit is a simple commit: generation -1, no member.
    fn from(r: OffsetCommitRequest) -> OffsetCommitRequestV1 {
        OffsetCommitRequestV1 {
            group: r.group,
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            partitions: r.partitions,
        }
    }
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
    fn request_v1_round_trips_and_rejects_truncation() {
        check_all(&[
            OffsetCommitRequestV1 {
                group: String::new(),
                generation_id: -1,
                member_id: String::new(),
                group_instance_id: None,
                partitions: vec![],
            },
            OffsetCommitRequestV1 {
                group: "billing".into(),
                generation_id: i32::MAX,
                member_id: "m-1".into(),
                group_instance_id: Some("host-1".into()),
                partitions: vec![CommitPartition {
                    topic: "orders".into(),
                    partition: 5,
                    offset: 77,
                    metadata: String::new(),
                }],
            },
        ]);
    }

    #[test]
    fn a_version_0_request_is_a_simple_commit() {
        let v1 = OffsetCommitRequestV1::from(OffsetCommitRequest {
            group: "g".into(),
            partitions: vec![],
        });
        assert_eq!(v1.generation_id, -1);
        assert!(v1.member_id.is_empty() && v1.group_instance_id.is_none());
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
