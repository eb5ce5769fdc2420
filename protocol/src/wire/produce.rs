//! Produce (key 4): append record batches to partitions.
//!
//! The body lists partitions with the byte length of each one's record set;
//! the record sets (whole RecordBatch v2 batches back to back) follow the
//! body in the frame's tail, in the same order, never through serde.

use serde::{Deserialize, Serialize};

use super::{ErrorCode, WireError};

/// When the broker acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Acks {
    /// No response at all is sent.
    None,
    /// After the append reached the page cache (or the topic's stronger
    /// durability).
    Leader,
    /// After the append was `fdatasync`ed.
    All,
}

/// One partition's record set in a produce request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducePartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Length of this partition's record set in the tail.
    pub records_len: u32,
}

/// Appends record sets to partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProduceRequest {
    /// Acknowledgement level.
    pub acks: Acks,
    /// How long the broker may wait for durability before answering
    /// [`ErrorCode::RequestTimedOut`].
    pub timeout_ms: u32,
    /// The partitions, in tail order.
    pub partitions: Vec<ProducePartition>,
}

impl ProduceRequest {
    /// Checks that the record set lengths add up to the tail's length.
    pub fn check_tail(&self, tail_len: usize) -> Result<(), WireError> {
        super::check_tail_lengths(self.partitions.iter().map(|p| p.records_len), tail_len)
    }
}

/// The outcome for one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducePartitionResponse {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: u32,
    /// Outcome.
    pub error_code: ErrorCode,
    /// Offset assigned to the first record (when `error_code` is `None`).
    pub base_offset: u64,
    /// Detail when `error_code` is not `None`.
    pub message: Option<String>,
}

/// One entry per requested partition, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProduceResponse {
    /// Results.
    pub partitions: Vec<ProducePartitionResponse>,
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::testutil::{assert_truncations_fail, check_all, encode, round_trip};

    fn partition(topic: &str, partition: u32, records_len: u32) -> ProducePartition {
        ProducePartition {
            topic: topic.into(),
            partition,
            records_len,
        }
    }

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            ProduceRequest {
                acks: Acks::None,
                timeout_ms: 0,
                partitions: vec![],
            },
            ProduceRequest {
                acks: Acks::Leader,
                timeout_ms: 5000,
                partitions: vec![partition("orders", 0, 70)],
            },
            ProduceRequest {
                acks: Acks::All,
                timeout_ms: u32::MAX,
                partitions: vec![
                    partition("orders", 3, u32::MAX),
                    partition("", 0, 0),
                    partition("ü", u32::MAX, 128),
                ],
            },
        ]);
    }

    #[test]
    fn acks_are_variant_indexes() {
        assert_eq!(encode(&Acks::None), [0]);
        assert_eq!(encode(&Acks::Leader), [1]);
        assert_eq!(encode(&Acks::All), [2]);
        check_all(&[Acks::None, Acks::Leader, Acks::All]);
        assert!(crate::wire::decode_body::<Acks>(&[3]).is_err());
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            ProduceResponse { partitions: vec![] },
            ProduceResponse {
                partitions: vec![
                    ProducePartitionResponse {
                        topic: "orders".into(),
                        partition: 0,
                        error_code: ErrorCode::None,
                        base_offset: 1 << 35,
                        message: None,
                    },
                    ProducePartitionResponse {
                        topic: "orders".into(),
                        partition: 9,
                        error_code: ErrorCode::UnknownTopicOrPartition,
                        base_offset: 0,
                        message: Some("no partition 9 of topic \"orders\"".into()),
                    },
                    ProducePartitionResponse {
                        topic: "audit".into(),
                        partition: 1,
                        error_code: ErrorCode::RequestTimedOut,
                        base_offset: u64::MAX,
                        message: Some(String::new()),
                    },
                ],
            },
        ]);
    }

    #[test]
    fn check_tail_sums_record_set_lengths() {
        let req = ProduceRequest {
            acks: Acks::Leader,
            timeout_ms: 1,
            partitions: vec![partition("a", 0, 10), partition("b", 1, 5)],
        };
        assert_eq!(req.check_tail(15), Ok(()));
        assert_eq!(
            req.check_tail(14),
            Err(WireError::TailMismatch {
                listed: 15,
                tail: 14
            })
        );
        // Lengths are summed without overflow.
        let big = ProduceRequest {
            acks: Acks::None,
            timeout_ms: 0,
            partitions: vec![partition("a", 0, u32::MAX), partition("a", 1, u32::MAX)],
        };
        assert_eq!(
            big.check_tail(0),
            Err(WireError::TailMismatch {
                listed: 2 * u64::from(u32::MAX),
                tail: 0
            })
        );
        let empty = ProduceRequest {
            acks: Acks::All,
            timeout_ms: 0,
            partitions: vec![],
        };
        assert_eq!(empty.check_tail(0), Ok(()));
    }

    fn acks() -> impl Strategy<Value = Acks> {
        prop_oneof![Just(Acks::None), Just(Acks::Leader), Just(Acks::All)]
    }

    fn request() -> impl Strategy<Value = ProduceRequest> {
        let part = (any::<String>(), any::<u32>(), any::<u32>()).prop_map(
            |(topic, partition, records_len)| ProducePartition {
                topic,
                partition,
                records_len,
            },
        );
        (acks(), any::<u32>(), proptest::collection::vec(part, 0..6)).prop_map(
            |(acks, timeout_ms, partitions)| ProduceRequest {
                acks,
                timeout_ms,
                partitions,
            },
        )
    }

    fn response() -> impl Strategy<Value = ProduceResponse> {
        let part = (
            any::<String>(),
            any::<u32>(),
            any::<u16>(),
            any::<u64>(),
            proptest::option::of(any::<String>()),
        )
            .prop_map(|(topic, partition, code, base_offset, message)| {
                ProducePartitionResponse {
                    topic,
                    partition,
                    error_code: ErrorCode::from_u16(code),
                    base_offset,
                    message,
                }
            });
        proptest::collection::vec(part, 0..6).prop_map(|partitions| ProduceResponse { partitions })
    }

    proptest! {
        #[test]
        fn request_round_trips(req in request()) {
            let bytes = round_trip(&req);
            assert_truncations_fail::<ProduceRequest>(&bytes);
        }

        #[test]
        fn response_round_trips(resp in response()) {
            let bytes = round_trip(&resp);
            assert_truncations_fail::<ProduceResponse>(&bytes);
        }

        #[test]
        fn request_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = crate::wire::decode_body::<ProduceRequest>(&bytes);
            let _ = crate::wire::decode_body::<ProduceResponse>(&bytes);
        }
    }
}
