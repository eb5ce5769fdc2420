//! DeleteRecords (key 24): deleting the records at the start of partitions.

use serde::{Deserialize, Serialize};

use super::ErrorCode;

/// Deletes the records below an offset of each named partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRecordsRequest {
    /// The partitions, each with the offset records go below.
    pub partitions: Vec<RecordsBelow>,
}

/// One partition and the offset its records go below.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsBelow {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Records below it go; `None`: every record consumers may read (up to
    /// the high watermark).
    pub before: Option<u64>,
}

/// One result per requested partition, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRecordsResponse {
    /// Results.
    pub partitions: Vec<RecordsDeletedResult>,
}

/// What became of one partition's deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordsDeletedResult {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Outcome.
    pub error_code: ErrorCode,
    /// The partition's log start offset afterwards (0 on error).
    pub log_start_offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            DeleteRecordsRequest { partitions: vec![] },
            DeleteRecordsRequest {
                partitions: vec![
                    RecordsBelow {
                        topic: "orders".into(),
                        partition: 3,
                        before: Some(u64::MAX),
                    },
                    RecordsBelow {
                        topic: "x".repeat(300),
                        partition: 0,
                        before: None,
                    },
                ],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[DeleteRecordsResponse {
            partitions: vec![
                RecordsDeletedResult {
                    topic: "orders".into(),
                    partition: 3,
                    error_code: ErrorCode::None,
                    log_start_offset: 500,
                },
                RecordsDeletedResult {
                    topic: "orders".into(),
                    partition: 4,
                    error_code: ErrorCode::OffsetOutOfRange,
                    log_start_offset: 0,
                },
            ],
        }]);
    }

    /// `01 01 61 02 01 ac 02`: partition 2 of topic `a`, below offset 300.
    #[test]
    fn layout_is_as_documented() {
        let r = DeleteRecordsRequest {
            partitions: vec![RecordsBelow {
                topic: "a".into(),
                partition: 2,
                before: Some(300),
            }],
        };
        assert_eq!(
            crate::wire::testutil::encode(&r),
            [0x01, 0x01, b'a', 0x02, 0x01, 0xac, 0x02]
        );
    }
}
