//! DescribeProducers (key 61, version 0, flexible): the idempotent
//! producers a partition's leader holds state for (Kafka's
//! `kafka-transactions.sh describe-producers`).

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// One topic's partitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeProducersTopic {
    /// Name.
    pub name: String,
    /// Partition indexes.
    pub partition_indexes: Vec<i32>,
}

/// DescribeProducers request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeProducersRequest {
    /// The partitions, by topic.
    pub topics: Vec<DescribeProducersTopic>,
}

impl Message for DescribeProducersRequest {
    const API: ApiKey = ApiKey::DescribeProducers;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partition_indexes, |s, p| s.i32(p))?;
            s.tags()
        })?;
        s.tags()
    }
}

/// One producer's state in a partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerState {
    /// Producer id.
    pub producer_id: i64,
    /// Its newest epoch.
    pub producer_epoch: i32,
    /// Sequence of its last record appended.
    pub last_sequence: i32,
    /// When it last appended (milliseconds since the Unix epoch).
    pub last_timestamp: i64,
    /// Its transaction coordinator's epoch (-1: no transactions).
    pub coordinator_epoch: i32,
    /// Where its open transaction starts (-1: none).
    pub current_txn_start_offset: i64,
}

/// One partition's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeProducersPartition {
    /// Partition index.
    pub partition_index: i32,
    /// Error code.
    pub error_code: i16,
    /// What went wrong, if anything.
    pub error_message: Option<String>,
    /// The producers it holds state for.
    pub active_producers: Vec<ProducerState>,
}

/// One topic's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeProducersTopicResponse {
    /// Name.
    pub name: String,
    /// Per partition, in request order.
    pub partitions: Vec<DescribeProducersPartition>,
}

/// DescribeProducers response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeProducersResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Per topic, in request order.
    pub topics: Vec<DescribeProducersTopicResponse>,
}

impl Message for DescribeProducersResponse {
    const API: ApiKey = ApiKey::DescribeProducers;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition_index)?;
                s.i16(&mut p.error_code)?;
                s.nullable_string(&mut p.error_message)?;
                s.array(&mut p.active_producers, |s, a| {
                    s.i64(&mut a.producer_id)?;
                    s.i32(&mut a.producer_epoch)?;
                    s.i32(&mut a.last_sequence)?;
                    s.i64(&mut a.last_timestamp)?;
                    s.i32(&mut a.coordinator_epoch)?;
                    s.i64(&mut a.current_txn_start_offset)?;
                    s.tags()
                })?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}
