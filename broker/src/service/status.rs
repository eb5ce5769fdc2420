//! Status for operators: what each partition holds on disk, and how the
//! broker is doing (uptime, disk, connections).

use std::sync::atomic::Ordering;

use sluice_protocol::wire::ErrorCode;

use super::{Refused, Service, blocking, check_partition_count};

/// One partition's state, read from its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Partition number.
    pub partition: u32,
    /// First offset held.
    pub log_start_offset: u64,
    /// One past the last offset consumers may read.
    pub high_watermark: u64,
    /// Offset the next appended record will get.
    pub log_end_offset: u64,
    /// Bytes of record batches held.
    pub size_bytes: u64,
    /// Segment files.
    pub segments: u32,
    /// Whether the partition refuses writes.
    pub offline: bool,
}

/// A topic's partitions, or why there are none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicState {
    /// Topic name.
    pub name: String,
    /// `UnknownTopicOrPartition` when there is no such topic.
    pub error_code: ErrorCode,
    /// Partitions in number order.
    pub partitions: Vec<PartitionState>,
}

/// How the broker is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerStatus {
    /// Milliseconds since the data directory was opened.
    pub uptime_ms: u64,
    /// Size of the data directory's file system in bytes (0 if unknown).
    pub disk_total_bytes: u64,
    /// Bytes of it available to the broker (0 if unknown).
    pub disk_free_bytes: u64,
    /// Client connections open.
    pub connections_open: u64,
    /// Topics.
    pub topics: u32,
    /// Partitions over all topics.
    pub partitions: u32,
    /// Partitions offline.
    pub partitions_offline: u32,
}

impl Service {
    /// The state of every partition of `topics`, in request order. Reads
    /// each log's segment list under its lock, on the blocking pool.
    pub async fn partition_status(
        self: &std::sync::Arc<Self>,
        topics: Vec<String>,
    ) -> Result<Vec<TopicState>, Refused> {
        check_partition_count(topics.len(), self.config.max_partitions_per_request)?;
        let svc = std::sync::Arc::clone(self);
        blocking(move || {
            topics
                .into_iter()
                .map(|name| match svc.topics.topic(&name) {
                    None => TopicState {
                        name,
                        error_code: ErrorCode::UnknownTopicOrPartition,
                        partitions: Vec::new(),
                    },
                    Some(t) => TopicState {
                        name,
                        error_code: ErrorCode::None,
                        partitions: t
                            .hosted()
                            .map(|(i, p)| PartitionState {
                                partition: i,
                                log_start_offset: p.log.log_start_offset(),
                                high_watermark: p.log.high_watermark(),
                                log_end_offset: p.log.next_offset(),
                                size_bytes: p.log.size_in_bytes(),
                                segments: p.log.segment_count() as u32,
                                offline: p.is_offline(),
                            })
                            .collect(),
                    },
                })
                .collect()
        })
        .await
        .map_err(|e| Refused {
            code: ErrorCode::StorageError,
            message: e.to_string(),
        })
    }

    /// The data directory's file system: total and free bytes (0 and 0 if
    /// `statvfs(2)` fails).
    pub fn disk_space(&self) -> (u64, u64) {
        crate::log::io::disk_space(&self.config.data_dir).unwrap_or((0, 0))
    }

    /// Uptime, disk space, connections and partition counts. Lock-free
    /// apart from one `statvfs(2)` of the data directory.
    pub fn broker_status(&self) -> BrokerStatus {
        let (disk_total_bytes, disk_free_bytes) = self.disk_space();
        let topics = self.topics.list();
        let parts = topics.iter().flat_map(|t| t.hosted().map(|(_, p)| p));
        BrokerStatus {
            uptime_ms: self.stats.started.0.elapsed().as_millis() as u64,
            disk_total_bytes,
            disk_free_bytes,
            connections_open: self.stats.connections_open.load(Ordering::Relaxed),
            topics: topics.len() as u32,
            partitions: parts.clone().count() as u32,
            partitions_offline: parts.filter(|p| p.is_offline()).count() as u32,
        }
    }

    /// The data directory (made absolute), its file
    /// system's total and free bytes ([`Service::disk_space`]), and
    /// the bytes of each hosted partition `wanted` names (all when `None`;
    /// names and numbers not hosted here are left out), by topic in name
    /// order. Reads only in-memory sizes and one `statvfs(2)`.
    pub fn log_dir(&self, wanted: Option<&[(String, Vec<u32>)]>) -> LogDirReport {
        let (total_bytes, free_bytes) = self.disk_space();
        // Made absolute without touching the disk (no symlinks resolved).
        let dir = std::path::absolute(&self.config.data_dir)
            .unwrap_or_else(|_| self.config.data_dir.clone());
        let sizes = |t: &crate::topics::Topic, only: Option<&[u32]>| -> Vec<(u32, u64)> {
            t.hosted()
                .filter(|(p, _)| only.is_none_or(|o| o.contains(p)))
                .map(|(p, part)| (p, part.log.size_in_bytes()))
                .collect()
        };
        let topics = match wanted {
            // Internal topics (the cluster's group-state topic) only when
            // asked for by name, as Metadata lists them.
            None => self
                .topics
                .list()
                .iter()
                .filter(|t| !crate::topics::is_internal(&t.name))
                .map(|t| (t.name.clone(), sizes(t, None)))
                .collect(),
            Some(wanted) => wanted
                .iter()
                .filter_map(|(name, partitions)| {
                    let t = self.topics.topic(name)?;
                    Some((t.name.clone(), sizes(&t, Some(partitions))))
                })
                .filter(|(_, p)| !p.is_empty())
                .collect(),
        };
        LogDirReport {
            dir,
            total_bytes,
            free_bytes,
            topics,
        }
    }
}

/// What [`Service::log_dir`] tells of the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirReport {
    /// The data directory.
    pub dir: std::path::PathBuf,
    /// Size of its file system (0 if unknown).
    pub total_bytes: u64,
    /// Bytes free there (0 if unknown).
    pub free_bytes: u64,
    /// Per topic, its hosted partitions' bytes.
    pub topics: Vec<(String, Vec<(u32, u64)>)>,
}
