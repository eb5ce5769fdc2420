//! Fetch (key 5): read record batches from partitions, with long polling.
//!
//! The response body lists partitions with the byte length of each one's
//! records; the records follow the body in the frame's tail, in the same
//! order — sent by the broker straight from its segment files. Each
//! partition's records are whole batches; the first batch may start before
//! the requested offset (the reader skips records below it).

use serde::{Deserialize, Serialize};

use super::{ErrorCode, WireError};

/// One partition to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// First offset wanted.
    pub offset: u64,
    /// At most about this many bytes for this partition (at least one whole
    /// batch is returned when any is available).
    pub max_bytes: u32,
}

/// Reads from partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// Wait up to this long for `min_bytes` to become available.
    pub max_wait_ms: u32,
    /// Answer as soon as this many bytes are available in total.
    pub min_bytes: u32,
    /// At most about this many bytes in total.
    pub max_bytes: u32,
    /// The partitions.
    pub partitions: Vec<FetchPartition>,
}

/// One partition's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchPartitionResponse {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Outcome.
    pub error_code: ErrorCode,
    /// One past the last offset readable.
    pub high_watermark: u64,
    /// First offset held.
    pub log_start_offset: u64,
    /// Length of this partition's records in the tail.
    pub records_len: u32,
}

/// One entry per requested partition, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchResponse {
    /// Results.
    pub partitions: Vec<FetchPartitionResponse>,
}

impl FetchResponse {
    /// Checks that the record lengths add up to the tail's length.
    pub fn check_tail(&self, tail_len: usize) -> Result<(), WireError> {
        super::check_tail_lengths(self.partitions.iter().map(|p| p.records_len), tail_len)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::testutil::{assert_truncations_fail, check_all, round_trip};

    fn partition_response(
        topic: &str,
        code: ErrorCode,
        records_len: u32,
    ) -> FetchPartitionResponse {
        FetchPartitionResponse {
            topic: topic.into(),
            partition: 2,
            error_code: code,
            high_watermark: 1000,
            log_start_offset: 10,
            records_len,
        }
    }

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            FetchRequest {
                max_wait_ms: 0,
                min_bytes: 0,
                max_bytes: 0,
                partitions: vec![],
            },
            FetchRequest {
                max_wait_ms: 500,
                min_bytes: 1,
                max_bytes: 1 << 20,
                partitions: vec![
                    FetchPartition {
                        topic: "orders".into(),
                        partition: 0,
                        offset: 0,
                        max_bytes: 1 << 20,
                    },
                    FetchPartition {
                        topic: "orders".into(),
                        partition: u32::MAX,
                        offset: u64::MAX,
                        max_bytes: u32::MAX,
                    },
                ],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            FetchResponse { partitions: vec![] },
            FetchResponse {
                partitions: vec![
                    partition_response("orders", ErrorCode::None, 4096),
                    partition_response("orders", ErrorCode::OffsetOutOfRange, 0),
                    partition_response("", ErrorCode::Unknown, u32::MAX),
                ],
            },
        ]);
    }

    #[test]
    fn check_tail_sums_records_lengths() {
        let resp = FetchResponse {
            partitions: vec![
                partition_response("a", ErrorCode::None, 61),
                partition_response("b", ErrorCode::UnknownTopicOrPartition, 0),
                partition_response("c", ErrorCode::None, 100),
            ],
        };
        assert_eq!(resp.check_tail(161), Ok(()));
        assert_eq!(
            resp.check_tail(162),
            Err(WireError::TailMismatch {
                listed: 161,
                tail: 162
            })
        );
        assert_eq!(FetchResponse { partitions: vec![] }.check_tail(0), Ok(()));
    }

    fn request() -> impl Strategy<Value = FetchRequest> {
        let part = (any::<String>(), any::<u32>(), any::<u64>(), any::<u32>()).prop_map(
            |(topic, partition, offset, max_bytes)| FetchPartition {
                topic,
                partition,
                offset,
                max_bytes,
            },
        );
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            proptest::collection::vec(part, 0..6),
        )
            .prop_map(
                |(max_wait_ms, min_bytes, max_bytes, partitions)| FetchRequest {
                    max_wait_ms,
                    min_bytes,
                    max_bytes,
                    partitions,
                },
            )
    }

    fn response() -> impl Strategy<Value = FetchResponse> {
        let part = (
            any::<String>(),
            any::<u32>(),
            any::<u16>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
        )
            .prop_map(
                |(topic, partition, code, high_watermark, log_start_offset, records_len)| {
                    FetchPartitionResponse {
                        topic,
                        partition,
                        error_code: ErrorCode::from_u16(code),
                        high_watermark,
                        log_start_offset,
                        records_len,
                    }
                },
            );
        proptest::collection::vec(part, 0..6).prop_map(|partitions| FetchResponse { partitions })
    }

    proptest! {
        #[test]
        fn request_round_trips(req in request()) {
            let bytes = round_trip(&req);
            assert_truncations_fail::<FetchRequest>(&bytes);
        }

        #[test]
        fn response_round_trips(resp in response()) {
            let bytes = round_trip(&resp);
            assert_truncations_fail::<FetchResponse>(&bytes);
            let listed: u64 = resp.partitions.iter().map(|p| u64::from(p.records_len)).sum();
            prop_assert_eq!(resp.check_tail(listed as usize), Ok(()));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = crate::wire::decode_body::<FetchRequest>(&bytes);
            if let Ok(resp) = crate::wire::decode_body::<FetchResponse>(&bytes) {
                let _ = resp.check_tail(bytes.len());
            }
        }
    }
}
