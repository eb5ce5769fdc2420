//! Produce (key 0), versions 3–9. Record sets stay in the request's
//! buffer: the decoded request holds their positions.

use super::io::{Io, Records};
use super::{ApiKey, KafkaError, Message};

/// One partition's record set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducePartitionData {
    /// Partition index.
    pub index: i32,
    /// The record set, by position.
    pub records: Option<Records>,
}

/// One topic's partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceTopicData {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<ProducePartitionData>,
}

/// Produce request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceRequest {
    /// Transactional id (transactions are not served).
    pub transactional_id: Option<String>,
    /// 0: no response, 1: leader, -1: all.
    pub acks: i16,
    /// Timeout.
    pub timeout_ms: i32,
    /// Topics.
    pub topics: Vec<ProduceTopicData>,
}

impl Message for ProduceRequest {
    const API: ApiKey = ApiKey::Produce;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.nullable_string(&mut self.transactional_id)?;
        s.i16(&mut self.acks)?;
        s.i32(&mut self.timeout_ms)?;
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.index)?;
                s.records(&mut p.records)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}

/// A batch refused inside a partition's record set (v8+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordError {
    /// Index of the batch.
    pub batch_index: i32,
    /// Why.
    pub message: Option<String>,
}

/// One partition's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducePartitionResponse {
    /// Partition index.
    pub index: i32,
    /// Error code.
    pub error_code: i16,
    /// Offset of the first record appended.
    pub base_offset: i64,
    /// Log append time (-1: create time is used).
    pub log_append_time_ms: i64,
    /// Log start offset (v5+).
    pub log_start_offset: i64,
    /// Refused batches (v8+).
    pub record_errors: Vec<RecordError>,
    /// Error message (v8+).
    pub error_message: Option<String>,
}

/// One topic's outcomes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceTopicResponse {
    /// Topic name.
    pub name: String,
    /// Partitions.
    pub partitions: Vec<ProducePartitionResponse>,
}

/// Produce response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceResponse {
    /// Topics.
    pub topics: Vec<ProduceTopicResponse>,
    /// Throttle time.
    pub throttle_time_ms: i32,
}

impl Message for ProduceResponse {
    const API: ApiKey = ApiKey::Produce;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.index)?;
                s.i16(&mut p.error_code)?;
                s.i64(&mut p.base_offset)?;
                s.i64(&mut p.log_append_time_ms)?;
                if v >= 5 {
                    s.i64(&mut p.log_start_offset)?;
                }
                if v >= 8 {
                    s.array(&mut p.record_errors, |s, e| {
                        s.i32(&mut e.batch_index)?;
                        s.nullable_string(&mut e.message)?;
                        s.tags()
                    })?;
                    s.nullable_string(&mut p.error_message)?;
                }
                s.tags()
            })?;
            s.tags()
        })?;
        s.i32(&mut self.throttle_time_ms)?;
        s.tags()
    }
}
