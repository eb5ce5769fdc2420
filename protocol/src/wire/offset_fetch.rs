//! OffsetFetch (key 8): read a consumer group's committed positions.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicPartitionRef {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
}

/// Reads committed offsets of a group: of the listed partitions, or of all
/// the group committed when `partitions` is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetFetchRequest {
    /// Consumer group name.
    pub group: String,
    /// Partitions, or `None` for all.
    pub partitions: Option<Vec<TopicPartitionRef>>,
}

/// One partition's committed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetFetchPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// The committed offset, `None` if the group never committed one.
    pub offset: Option<u64>,
    /// The metadata stored with it.
    pub metadata: String,
    /// Outcome.
    pub error_code: ErrorCode,
}

/// The committed positions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OffsetFetchResponse {
    /// Error for the whole request (an invalid group name).
    pub error_code: ErrorCode,
    /// Results.
    pub partitions: Vec<OffsetFetchPartition>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            OffsetFetchRequest {
                group: "billing".into(),
                partitions: None,
            },
            OffsetFetchRequest {
                group: "billing".into(),
                partitions: Some(vec![]),
            },
            OffsetFetchRequest {
                group: String::new(),
                partitions: Some(vec![
                    TopicPartitionRef {
                        topic: "orders".into(),
                        partition: 0,
                    },
                    TopicPartitionRef {
                        topic: "audit".into(),
                        partition: u32::MAX,
                    },
                ]),
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            OffsetFetchResponse {
                error_code: ErrorCode::InvalidGroupName,
                partitions: vec![],
            },
            OffsetFetchResponse {
                error_code: ErrorCode::None,
                partitions: vec![
                    OffsetFetchPartition {
                        topic: "orders".into(),
                        partition: 0,
                        offset: Some(1234),
                        metadata: "m".into(),
                        error_code: ErrorCode::None,
                    },
                    OffsetFetchPartition {
                        topic: "orders".into(),
                        partition: 1,
                        offset: None,
                        metadata: String::new(),
                        error_code: ErrorCode::None,
                    },
                    OffsetFetchPartition {
                        topic: "orders".into(),
                        partition: 2,
                        offset: Some(u64::MAX),
                        metadata: String::new(),
                        error_code: ErrorCode::Unknown,
                    },
                ],
            },
        ]);
    }
}
