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
        let listed: u64 = self
            .partitions
            .iter()
            .map(|p| u64::from(p.records_len))
            .sum();
        if listed != tail_len as u64 {
            return Err(WireError::TailMismatch {
                listed,
                tail: tail_len as u64,
            });
        }
        Ok(())
    }
}
