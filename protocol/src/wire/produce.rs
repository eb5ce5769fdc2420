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
