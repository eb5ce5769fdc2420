//! ListOffsets (key 6): earliest, latest, or first offset at a timestamp.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// Which offset to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The high watermark (the offset the next record will get, as visible).
    Latest,
    /// The first offset whose batch holds a record with a timestamp at or
    /// after this many milliseconds since the Unix epoch.
    Timestamp(i64),
}

/// One partition to look up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// What to look up.
    pub spec: OffsetSpec,
}

/// Looks up offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsRequest {
    /// The partitions.
    pub partitions: Vec<ListOffsetsPartition>,
}

/// One partition's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsPartitionResponse {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Outcome.
    pub error_code: ErrorCode,
    /// The offset; for a timestamp with no record at or after it, the high
    /// watermark.
    pub offset: u64,
}

/// One entry per requested partition, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOffsetsResponse {
    /// Results.
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{check_all, encode};

    fn partition(spec: OffsetSpec) -> ListOffsetsPartition {
        ListOffsetsPartition {
            topic: "orders".into(),
            partition: 1,
            spec,
        }
    }

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            ListOffsetsRequest { partitions: vec![] },
            ListOffsetsRequest {
                partitions: vec![
                    partition(OffsetSpec::Earliest),
                    partition(OffsetSpec::Latest),
                    partition(OffsetSpec::Timestamp(1_700_000_000_000)),
                    partition(OffsetSpec::Timestamp(-1)),
                    partition(OffsetSpec::Timestamp(i64::MIN)),
                    partition(OffsetSpec::Timestamp(i64::MAX)),
                ],
            },
        ]);
    }

    #[test]
    fn spec_layout_uses_zigzag_for_the_timestamp() {
        assert_eq!(encode(&OffsetSpec::Earliest), [0]);
        assert_eq!(encode(&OffsetSpec::Latest), [1]);
        assert_eq!(encode(&OffsetSpec::Timestamp(0)), [2, 0]);
        assert_eq!(encode(&OffsetSpec::Timestamp(-1)), [2, 1]);
        assert_eq!(encode(&OffsetSpec::Timestamp(1)), [2, 2]);
        assert_eq!(encode(&OffsetSpec::Timestamp(-65)), [2, 0x81, 0x01]);
        assert_eq!(encode(&OffsetSpec::Timestamp(i64::MIN)).len(), 11);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            ListOffsetsResponse { partitions: vec![] },
            ListOffsetsResponse {
                partitions: vec![
                    ListOffsetsPartitionResponse {
                        topic: "orders".into(),
                        partition: 0,
                        error_code: ErrorCode::None,
                        offset: 42,
                    },
                    ListOffsetsPartitionResponse {
                        topic: "nope".into(),
                        partition: 7,
                        error_code: ErrorCode::UnknownTopicOrPartition,
                        offset: 0,
                    },
                    ListOffsetsPartitionResponse {
                        topic: "orders".into(),
                        partition: 1,
                        error_code: ErrorCode::StorageError,
                        offset: u64::MAX,
                    },
                ],
            },
        ]);
    }
}
