//! ListOffsets (key 2), versions 1–7.

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// Timestamp asking for the latest offset.
pub const LATEST: i64 = -1;
/// Timestamp asking for the earliest offset.
pub const EARLIEST: i64 = -2;
/// Timestamp asking for the offset of the largest timestamp (v7+).
pub const MAX_TIMESTAMP: i64 = -3;

/// One partition to look up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsPartition {
    /// Partition index.
    pub partition_index: i32,
    /// Current leader epoch (v4+).
    pub current_leader_epoch: i32,
    /// A timestamp, or [`LATEST`], [`EARLIEST`], [`MAX_TIMESTAMP`].
    pub timestamp: i64,
}

/// One topic to look up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsTopic {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<ListOffsetsPartition>,
}

/// ListOffsets request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsRequest {
    /// -1 from consumers.
    pub replica_id: i32,
    /// Isolation level (v2+).
    pub isolation_level: i8,
    /// Topics.
    pub topics: Vec<ListOffsetsTopic>,
}

impl Message for ListOffsetsRequest {
    const API: ApiKey = ApiKey::ListOffsets;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.replica_id)?;
        if v >= 2 {
            s.i8(&mut self.isolation_level)?;
        }
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition_index)?;
                if v >= 4 {
                    s.i32(&mut p.current_leader_epoch)?;
                }
                s.i64(&mut p.timestamp)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}

/// One partition's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsPartitionResponse {
    /// Partition index.
    pub partition_index: i32,
    /// Error code.
    pub error_code: i16,
    /// Timestamp of the offset found (-1 when not known).
    pub timestamp: i64,
    /// The offset (-1 when none).
    pub offset: i64,
    /// Leader epoch (v4+).
    pub leader_epoch: i32,
}

/// One topic's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsTopicResponse {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<ListOffsetsPartitionResponse>,
}

/// ListOffsets response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOffsetsResponse {
    /// Throttle time (v2+).
    pub throttle_time_ms: i32,
    /// Topics.
    pub topics: Vec<ListOffsetsTopicResponse>,
}

impl Message for ListOffsetsResponse {
    const API: ApiKey = ApiKey::ListOffsets;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 2 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition_index)?;
                s.i16(&mut p.error_code)?;
                s.i64(&mut p.timestamp)?;
                s.i64(&mut p.offset)?;
                if v >= 4 {
                    s.i32(&mut p.leader_epoch)?;
                }
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}
