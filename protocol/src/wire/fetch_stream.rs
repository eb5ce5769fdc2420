//! FetchStream (key 21): a fetch that keeps answering. The request is a
//! [`FetchRequest`]; the broker answers it with a sequence of frames, all
//! with the request's correlation id, each a [`FetchStreamResponse`] body
//! followed by the records in the frame's tail (laid out as Fetch's). After
//! each frame every partition's position moves to just past the last batch
//! sent, and the broker fetches again from there: a tailing consumer gets
//! each append without sending a request per read.
//!
//! - Each frame is sent once `min_bytes` are available, or with no records
//!   after `max_wait_ms` without any (a heartbeat carrying the high
//!   watermarks).
//! - The stream ends with a frame whose `last` is true: when the client
//!   sends its next request (any; the frame answers the stream and that
//!   request is served after it, so responses stay in request order), when
//!   a partition fails (its error code is in the last frame), or when the
//!   broker shuts down. A client may also just close the connection.
//! - The broker sends the next frame only once the previous one is written
//!   to the socket: a consumer that reads slowly slows the stream, and one
//!   that stops reading for the broker's write timeout is disconnected.

use serde::{Deserialize, Serialize};

use super::WireError;
pub use super::fetch::{FetchPartition, FetchPartitionResponse, FetchRequest};

/// One frame of a stream: every requested partition, in request order,
/// with the length of its records in the tail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchStreamResponse {
    /// Whether this frame ends the stream.
    pub last: bool,
    /// Results.
    pub partitions: Vec<FetchPartitionResponse>,
}

impl FetchStreamResponse {
    /// Checks that the record lengths add up to the tail's length.
    pub fn check_tail(&self, tail_len: usize) -> Result<(), WireError> {
        super::check_tail_lengths(self.partitions.iter().map(|p| p.records_len), tail_len)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::wire::ErrorCode;
    use crate::wire::testutil::{assert_truncations_fail, check_all, round_trip};

    fn partition(code: ErrorCode, records_len: u32) -> FetchPartitionResponse {
        FetchPartitionResponse {
            topic: "orders".into(),
            partition: 1,
            error_code: code,
            high_watermark: 77,
            log_start_offset: 3,
            records_len,
        }
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            FetchStreamResponse {
                last: true,
                partitions: vec![],
            },
            FetchStreamResponse {
                last: false,
                partitions: vec![
                    partition(ErrorCode::None, 4096),
                    partition(ErrorCode::NotLeaderForPartition, 0),
                ],
            },
        ]);
    }

    #[test]
    fn the_last_flag_comes_first() {
        // `last` is one byte (postcard's bool) ahead of the partition list.
        let bytes = round_trip(&FetchStreamResponse {
            last: true,
            partitions: vec![],
        });
        assert_eq!(bytes, [1, 0]);
        let bytes = round_trip(&FetchStreamResponse {
            last: false,
            partitions: vec![partition(ErrorCode::None, 5)],
        });
        assert_eq!(bytes.first(), Some(&0));
        assert_eq!(bytes.get(1), Some(&1), "one partition");
    }

    #[test]
    fn check_tail_sums_records_lengths() {
        let resp = FetchStreamResponse {
            last: false,
            partitions: vec![
                partition(ErrorCode::None, 10),
                partition(ErrorCode::None, 5),
            ],
        };
        assert_eq!(resp.check_tail(15), Ok(()));
        assert!(resp.check_tail(14).is_err());
    }

    proptest! {
        #[test]
        fn response_round_trips(
            last in any::<bool>(),
            lens in proptest::collection::vec(any::<u32>(), 0..6),
        ) {
            let resp = FetchStreamResponse {
                last,
                partitions: lens.iter().map(|&l| partition(ErrorCode::None, l)).collect(),
            };
            let bytes = round_trip(&resp);
            assert_truncations_fail::<FetchStreamResponse>(&bytes);
            let listed: u64 = lens.iter().map(|&l| u64::from(l)).sum();
            prop_assert_eq!(resp.check_tail(listed as usize), Ok(()));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(resp) = crate::wire::decode_body::<FetchStreamResponse>(&bytes) {
                let _ = resp.check_tail(bytes.len());
            }
        }
    }
}
