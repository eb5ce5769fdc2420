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
