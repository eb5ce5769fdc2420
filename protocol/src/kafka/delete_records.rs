//! DeleteRecords (key 21, versions 0–2): deleting the records below an
//! offset of each named partition. Version 2 is flexible.

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// `offset` meaning "up to the high watermark".
pub const HIGH_WATERMARK: i64 = -1;

/// One partition whose records below `offset` go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRecordsPartition {
    /// Partition index.
    pub partition_index: i32,
    /// Records below it are deleted; [`HIGH_WATERMARK`] for all visible ones.
    pub offset: i64,
}

/// One topic's partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRecordsTopic {
    /// Name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<DeleteRecordsPartition>,
}

/// DeleteRecords request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRecordsRequest {
    /// Topics.
    pub topics: Vec<DeleteRecordsTopic>,
    /// How long the client waits.
    pub timeout_ms: i32,
}

impl Message for DeleteRecordsRequest {
    const API: ApiKey = ApiKey::DeleteRecords;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition_index)?;
                s.i64(&mut p.offset)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.i32(&mut self.timeout_ms)?;
        s.tags()
    }
}

/// One partition's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRecordsPartitionResult {
    /// Partition index.
    pub partition_index: i32,
    /// The log start offset afterwards (-1 on error).
    pub low_watermark: i64,
    /// Error code.
    pub error_code: i16,
}

/// One topic's outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRecordsTopicResult {
    /// Name.
    pub name: String,
    /// Partitions, in request order.
    pub partitions: Vec<DeleteRecordsPartitionResult>,
}

/// DeleteRecords response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRecordsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Topics, in request order.
    pub topics: Vec<DeleteRecordsTopicResult>,
}

impl Message for DeleteRecordsResponse {
    const API: ApiKey = ApiKey::DeleteRecords;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition_index)?;
                s.i64(&mut p.low_watermark)?;
                s.i16(&mut p.error_code)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}
