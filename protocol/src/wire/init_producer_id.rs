//! InitProducerId (key 10): a producer id and epoch for an idempotent
//! producer.
//!
//! Every call returns a fresh id (never handed out before by this broker,
//! across restarts) with epoch 0. The producer stamps the id, the epoch and a
//! per-partition sequence number into each RecordBatch v2 it sends, so the
//! broker can recognise a retried batch and store it once.

use serde::{Deserialize, Serialize};

/// Asks for a producer id. Empty: there are no transactional ids yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitProducerIdRequest {}

/// The id and epoch to stamp into record batches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitProducerIdResponse {
    /// The producer id (non-negative).
    pub producer_id: i64,
    /// The producer epoch (0 for a new id).
    pub producer_epoch: i16,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{assert_truncations_fail, check_all, encode, round_trip};

    #[test]
    fn request_is_empty_and_round_trips() {
        let bytes = round_trip(&InitProducerIdRequest {});
        assert!(bytes.is_empty());
        assert_truncations_fail::<InitProducerIdRequest>(&bytes);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            InitProducerIdResponse {
                producer_id: 0,
                producer_epoch: 0,
            },
            InitProducerIdResponse {
                producer_id: i64::MAX,
                producer_epoch: i16::MAX,
            },
        ]);
        // postcard zigzag varints: 1000 → 0xD0 0x0F, 0 → 0x00.
        let bytes = encode(&InitProducerIdResponse {
            producer_id: 1000,
            producer_epoch: 0,
        });
        assert_eq!(bytes, [0xD0, 0x0F, 0x00]);
    }
}
