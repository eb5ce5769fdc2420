//! DescribeLogDirs (key 35, versions 0–4): the broker's log directories
//! and the size of each partition in them. Version 2 and up are flexible;
//! 3 adds a top-level error code, 4 each directory's total and usable
//! bytes.

use super::io::Io;
use super::{ApiKey, KafkaError, Message, i32s};

/// A topic whose partitions to describe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribableLogDirTopic {
    /// Name.
    pub topic: String,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

/// DescribeLogDirs request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeLogDirsRequest {
    /// The partitions to describe; null for all.
    pub topics: Option<Vec<DescribableLogDirTopic>>,
}

impl Message for DescribeLogDirsRequest {
    const API: ApiKey = ApiKey::DescribeLogDirs;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.nullable_array(&mut self.topics, |s, t| {
            s.string(&mut t.topic)?;
            i32s(s, &mut t.partitions)?;
            s.tags()
        })?;
        s.tags()
    }
}

/// One partition in a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogDirPartition {
    /// Partition index.
    pub partition_index: i32,
    /// Bytes of its log.
    pub partition_size: i64,
    /// How far a future replica lags (0: none).
    pub offset_lag: i64,
    /// Whether it is a future replica being moved here.
    pub is_future_key: bool,
}

/// One topic in a directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogDirTopic {
    /// Name.
    pub name: String,
    /// Its partitions here.
    pub partitions: Vec<LogDirPartition>,
}

/// One log directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogDirResult {
    /// Error code of the directory.
    pub error_code: i16,
    /// Its absolute path.
    pub log_dir: String,
    /// Its topics.
    pub topics: Vec<LogDirTopic>,
    /// Size of its file system in bytes (v4+; -1 unknown).
    pub total_bytes: i64,
    /// Bytes free for it (v4+; -1 unknown).
    pub usable_bytes: i64,
}

/// DescribeLogDirs response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeLogDirsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Top-level error (v3+).
    pub error_code: i16,
    /// The directories.
    pub results: Vec<LogDirResult>,
}

impl Message for DescribeLogDirsResponse {
    const API: ApiKey = ApiKey::DescribeLogDirs;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        if v >= 3 {
            s.i16(&mut self.error_code)?;
        }
        s.array(&mut self.results, |s, r| {
            s.i16(&mut r.error_code)?;
            s.string(&mut r.log_dir)?;
            s.array(&mut r.topics, |s, t| {
                s.string(&mut t.name)?;
                s.array(&mut t.partitions, |s, p| {
                    s.i32(&mut p.partition_index)?;
                    s.i64(&mut p.partition_size)?;
                    s.i64(&mut p.offset_lag)?;
                    s.bool(&mut p.is_future_key)?;
                    s.tags()
                })?;
                s.tags()
            })?;
            if v >= 4 {
                s.i64(&mut r.total_bytes)?;
                s.i64(&mut r.usable_bytes)?;
            }
            s.tags()
        })?;
        s.tags()
    }
}
