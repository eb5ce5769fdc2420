//! DescribeLogDirs: the broker's one log directory (its data directory)
//! with the bytes of each partition it hosts, and from v4 its file
//! system's total and usable bytes. A broker has no future replicas:
//! every offset lag is 0.

use std::sync::Arc;

use sluice_protocol::kafka::describe_log_dirs::{
    DescribeLogDirsRequest, DescribeLogDirsResponse, LogDirPartition, LogDirResult, LogDirTopic,
};
use sluice_protocol::kafka::error_code::code;

use crate::server::native::connection::Conn;

/// Answers a DescribeLogDirs request (partition indexes that are negative
/// or not hosted here are left out, as Kafka leaves out what a broker does
/// not hold; more partitions than `max_partitions_per_request` are
/// refused with `INVALID_REQUEST` at the top, from v3, or no directory).
pub(super) fn describe_log_dirs(
    conn: &Conn,
    r: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    let svc = Arc::clone(&conn.broker.service);
    let asked = r.topics.as_ref().map_or(0, |t| {
        t.iter().map(|t| t.partitions.len().max(1)).sum::<usize>()
    });
    if asked > conn.broker.config.max_partitions_per_request as usize {
        return DescribeLogDirsResponse {
            throttle_time_ms: 0,
            error_code: if version >= 3 {
                code::INVALID_REQUEST
            } else {
                code::NONE
            },
            results: Vec::new(),
        };
    }
    let wanted: Option<Vec<(String, Vec<u32>)>> = r.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .filter_map(|&p| u32::try_from(p).ok())
                    .collect();
                (t.topic, partitions)
            })
            .collect()
    });
    let report = svc.log_dir(wanted.as_deref());
    let known = |n: u64| i64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(-1);
    DescribeLogDirsResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        results: vec![LogDirResult {
            error_code: code::NONE,
            log_dir: report.dir.display().to_string(),
            topics: report
                .topics
                .into_iter()
                .map(|(name, partitions)| LogDirTopic {
                    name,
                    partitions: partitions
                        .into_iter()
                        .map(|(p, size)| LogDirPartition {
                            partition_index: p as i32,
                            partition_size: i64::try_from(size).unwrap_or(i64::MAX),
                            offset_lag: 0,
                            is_future_key: false,
                        })
                        .collect(),
                })
                .collect(),
            total_bytes: known(report.total_bytes),
            usable_bytes: known(report.free_bytes),
        }],
    }
}
