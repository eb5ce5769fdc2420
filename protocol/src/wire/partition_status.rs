//! PartitionStatus (key 11): what each partition of some topics holds on
//! disk — offsets, size, segments, offline or not — for operators
//! (`sluice topic describe`). Unlike Metadata, the broker reads each
//! partition log's state to answer.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// Asks for the partitions of the named topics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatusRequest {
    /// Topic names (at most `max_partitions_per_request` of them).
    pub topics: Vec<String>,
}

/// One partition's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Partition number.
    pub partition: u32,
    /// First offset held.
    pub log_start_offset: u64,
    /// One past the last offset consumers may read.
    pub high_watermark: u64,
    /// Offset the next appended record will get.
    pub log_end_offset: u64,
    /// Bytes of record batches held.
    pub size_bytes: u64,
    /// Segment files.
    pub segments: u32,
    /// Whether the partition is offline (refuses writes).
    pub offline: bool,
}

/// One topic's partitions, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicState {
    /// Topic name.
    pub name: String,
    /// `UnknownTopicOrPartition` when the broker has no such topic.
    pub error_code: ErrorCode,
    /// Partitions in number order.
    pub partitions: Vec<PartitionState>,
}

/// The topics asked for, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionStatusResponse {
    /// One entry per requested topic.
    pub topics: Vec<TopicState>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            PartitionStatusRequest { topics: vec![] },
            PartitionStatusRequest {
                topics: vec!["a".into(), "orders".into()],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            PartitionStatusResponse { topics: vec![] },
            PartitionStatusResponse {
                topics: vec![
                    TopicState {
                        name: "orders".into(),
                        error_code: ErrorCode::None,
                        partitions: vec![PartitionState {
                            partition: 3,
                            log_start_offset: 10,
                            high_watermark: u64::MAX,
                            log_end_offset: u64::MAX,
                            size_bytes: 1 << 40,
                            segments: 7,
                            offline: true,
                        }],
                    },
                    TopicState {
                        name: "gone".into(),
                        error_code: ErrorCode::UnknownTopicOrPartition,
                        partitions: vec![],
                    },
                ],
            },
        ]);
    }
}
