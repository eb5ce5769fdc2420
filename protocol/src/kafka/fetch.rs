//! Fetch (key 1), versions 4–17 (topics named by id from version 13). In a
//! response each partition's record set is a position: the broker encodes
//! the response around them with [`encode_cut`](super::encode_cut) and sends
//! the record bytes from the segment files; a client decoding a response gets
//! positions in its buffer.

use super::io::{Io, Records};
use super::{ApiKey, KafkaError, Message, i32s};

/// One partition to fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPartition {
    /// Partition index.
    pub partition: i32,
    /// Current leader epoch (v9+).
    pub current_leader_epoch: i32,
    /// First offset wanted.
    pub fetch_offset: i64,
    /// Epoch of the last fetched record (v12+; -1 from consumers).
    pub last_fetched_epoch: i32,
    /// Follower's log start offset (v5+; -1 from consumers).
    pub log_start_offset: i64,
    /// Most bytes from this partition (KIP-74: the first batch comes whole).
    pub partition_max_bytes: i32,
}

/// One topic to fetch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchTopic {
    /// Topic name (v4–12).
    pub topic: String,
    /// Topic id (v13+).
    pub topic_id: [u8; 16],
    /// Partitions.
    pub partitions: Vec<FetchPartition>,
}

/// Partitions an incremental fetch forgets (v7+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForgottenTopic {
    /// Topic name (v7–12).
    pub topic: String,
    /// Topic id (v13+).
    pub topic_id: [u8; 16],
    /// Partitions.
    pub partitions: Vec<i32>,
}

/// Fetch request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchRequest {
    /// -1 from consumers (v4–14; from v15 a tagged field, skipped).
    pub replica_id: i32,
    /// Longest wait for `min_bytes`.
    pub max_wait_ms: i32,
    /// Bytes to wait for.
    pub min_bytes: i32,
    /// Most bytes in the response.
    pub max_bytes: i32,
    /// 0 read uncommitted, 1 read committed.
    pub isolation_level: i8,
    /// Fetch session (v7+).
    pub session_id: i32,
    /// Fetch session epoch (v7+).
    pub session_epoch: i32,
    /// Topics.
    pub topics: Vec<FetchTopic>,
    /// Forgotten partitions (v7+).
    pub forgotten: Vec<ForgottenTopic>,
    /// Rack (v11+).
    pub rack_id: String,
}

impl Message for FetchRequest {
    const API: ApiKey = ApiKey::Fetch;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v <= 14 {
            s.i32(&mut self.replica_id)?;
        }
        s.i32(&mut self.max_wait_ms)?;
        s.i32(&mut self.min_bytes)?;
        s.i32(&mut self.max_bytes)?;
        s.i8(&mut self.isolation_level)?;
        if v >= 7 {
            s.i32(&mut self.session_id)?;
            s.i32(&mut self.session_epoch)?;
        }
        s.array(&mut self.topics, |s, t| {
            topic_key(s, v, &mut t.topic, &mut t.topic_id)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition)?;
                if v >= 9 {
                    s.i32(&mut p.current_leader_epoch)?;
                }
                s.i64(&mut p.fetch_offset)?;
                if v >= 12 {
                    s.i32(&mut p.last_fetched_epoch)?;
                }
                if v >= 5 {
                    s.i64(&mut p.log_start_offset)?;
                }
                s.i32(&mut p.partition_max_bytes)?;
                s.tags()
            })?;
            s.tags()
        })?;
        if v >= 7 {
            s.array(&mut self.forgotten, |s, t| {
                topic_key(s, v, &mut t.topic, &mut t.topic_id)?;
                i32s(s, &mut t.partitions)?;
                s.tags()
            })?;
        }
        if v >= 11 {
            s.string(&mut self.rack_id)?;
        }
        s.tags()
    }
}

/// An aborted transaction (never sent: transactions are not served).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// Producer id.
    pub producer_id: i64,
    /// First offset.
    pub first_offset: i64,
}

/// One partition's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchPartitionResponse {
    /// Partition index.
    pub partition: i32,
    /// Error code.
    pub error_code: i16,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset (the high watermark: no transactions).
    pub last_stable_offset: i64,
    /// Log start offset (v5+).
    pub log_start_offset: i64,
    /// Aborted transactions.
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// Preferred read replica (v11+; -1).
    pub preferred_read_replica: i32,
    /// The record set.
    pub records: Option<Records>,
}

/// One topic's answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchTopicResponse {
    /// Topic name (v4–12).
    pub topic: String,
    /// Topic id (v13+).
    pub topic_id: [u8; 16],
    /// Partitions.
    pub partitions: Vec<FetchPartitionResponse>,
}

/// Fetch response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Whole-request error (v7+).
    pub error_code: i16,
    /// Fetch session (v7+; always 0: sessions are declined).
    pub session_id: i32,
    /// Topics.
    pub topics: Vec<FetchTopicResponse>,
}

impl Message for FetchResponse {
    const API: ApiKey = ApiKey::Fetch;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        if v >= 7 {
            s.i16(&mut self.error_code)?;
            s.i32(&mut self.session_id)?;
        }
        s.array(&mut self.topics, |s, t| {
            topic_key(s, v, &mut t.topic, &mut t.topic_id)?;
            s.array(&mut t.partitions, |s, p| {
                s.i32(&mut p.partition)?;
                s.i16(&mut p.error_code)?;
                s.i64(&mut p.high_watermark)?;
                s.i64(&mut p.last_stable_offset)?;
                if v >= 5 {
                    s.i64(&mut p.log_start_offset)?;
                }
                s.nullable_array(&mut p.aborted_transactions, |s, a| {
                    s.i64(&mut a.producer_id)?;
                    s.i64(&mut a.first_offset)?;
                    s.tags()
                })?;
                if v >= 11 {
                    s.i32(&mut p.preferred_read_replica)?;
                }
                s.records(&mut p.records)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}

/// A topic's key in a Fetch: its name up to version 12, its id from 13.
fn topic_key<S: Io>(
    s: &mut S,
    v: i16,
    name: &mut String,
    id: &mut [u8; 16],
) -> Result<(), KafkaError> {
    if v >= 13 { s.uuid(id) } else { s.string(name) }
}
