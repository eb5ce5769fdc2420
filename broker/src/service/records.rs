//! Deleting records from the start of partitions (Kafka's DeleteRecords).

use std::sync::Arc;

use sluice_protocol::wire::ErrorCode;

use super::admin::proposed;
use super::{Refused, Service, blocking, check_partition_count};
use crate::error::log_error_code;
use crate::replication::controller::{Cluster, Command};

/// The records of one partition to delete: those below `before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsDeletion {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// Records below it go; `None` for every visible record (up to the high
    /// watermark).
    pub before: Option<u64>,
}

/// The outcome of one [`RecordsDeletion`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsDeleted {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// `None` on success; `OffsetOutOfRange` for an offset past the high
    /// watermark; `InvalidRequest` for an internal topic of a cluster.
    pub error_code: ErrorCode,
    /// The log start offset afterwards (on success).
    pub log_start_offset: u64,
}

impl Service {
    /// Deletes the records below each given offset, in turn (a partition
    /// named more than once is deleted up to each offset in turn).
    ///
    /// Single broker: see [`crate::log::PartitionLog::delete_records_before`]
    /// (the log start offset moves there, durably, and the segments wholly
    /// below it go), on the blocking pool.
    ///
    /// Cluster: at the partition's leader only (`NotLeaderOrFollower`
    /// elsewhere), never of an internal topic (`InvalidRequest`). The
    /// deletion is committed through the controller
    /// ([`Command::DeleteRecords`]), then this replica's log start is raised
    /// to it ([`crate::log::PartitionLog::raise_log_start`]) before the
    /// answer; every other replica raises its own at its next maintenance
    /// pass once its high watermark reaches the offset (also after a
    /// restart or a snapshot install: the offset is in the metadata), and
    /// retention deletes the segments wholly below it once the Raft log no
    /// longer refers to them.
    pub async fn delete_records(
        self: &Arc<Self>,
        deletions: Vec<RecordsDeletion>,
    ) -> Result<Vec<RecordsDeleted>, Refused> {
        check_partition_count(deletions.len(), self.config.max_partitions_per_request)?;
        if let Some(cluster) = self.cluster.get() {
            let mut out = Vec::with_capacity(deletions.len());
            for d in deletions {
                let r = self.delete_in_cluster(cluster, &d).await;
                out.push(deleted(d, r));
            }
            return Ok(out);
        }
        let svc = Arc::clone(self);
        blocking(move || {
            deletions
                .into_iter()
                .map(|d| {
                    let result = svc.led_partition(&d.topic, d.partition).and_then(|p| {
                        let log = &p.log;
                        let before = d.before.unwrap_or_else(|| log.high_watermark());
                        svc.topics
                            .freeing_space(|| log.delete_records_before(before))
                            .map_err(|e| refusal(&d, &e))
                    });
                    deleted(d, result)
                })
                .collect()
        })
        .await
        .map_err(|e| Refused {
            code: ErrorCode::Unknown,
            message: format!("task failed: {e}"),
        })
    }

    /// One deletion in a cluster; the log start afterwards.
    async fn delete_in_cluster(
        self: &Arc<Self>,
        cluster: &Cluster,
        d: &RecordsDeletion,
    ) -> Result<u64, ErrorCode> {
        if crate::topics::is_internal(&d.topic) {
            return Err(ErrorCode::InvalidRequest);
        }
        let p = self.led_partition(&d.topic, d.partition)?;
        let (start, hw) = (p.log.log_start_offset(), p.log.high_watermark());
        let before = d.before.unwrap_or(hw);
        if before > hw {
            return Err(ErrorCode::OffsetOutOfRange);
        }
        if before <= start {
            return Ok(start);
        }
        let topic_id = cluster
            .with_metadata(|m| m.topics.get(&d.topic).map(|t| t.topic_id))
            .ok_or(ErrorCode::UnknownTopicOrPartition)?;
        let command = Command::DeleteRecords {
            topic_id,
            partition: d.partition,
            before,
        };
        proposed(cluster.propose(command).await).map_err(|(code, message)| {
            tracing::warn!(topic = %d.topic, partition = d.partition, %code, %message, "could not delete records");
            code
        })?;
        let (log, svc) = (Arc::clone(&p.log), Arc::clone(self));
        let raised = blocking(move || svc.topics.freeing_space(|| log.raise_log_start(before)))
            .await
            .map_err(|_| ErrorCode::Unknown)?;
        raised.map_err(|e| refusal(d, &e))
    }
}

/// The error code of a deletion the log refused (logged unless it is an
/// offset out of range).
fn refusal(d: &RecordsDeletion, e: &crate::log::LogError) -> ErrorCode {
    if !matches!(e, crate::log::LogError::OffsetOutOfRange { .. }) {
        tracing::warn!(topic = %d.topic, partition = d.partition, error = %e, "could not delete records");
    }
    log_error_code(e)
}

fn deleted(d: RecordsDeletion, result: Result<u64, ErrorCode>) -> RecordsDeleted {
    let (error_code, log_start_offset) = match result {
        Ok(start) => (ErrorCode::None, start),
        Err(code) => (code, 0),
    };
    RecordsDeleted {
        topic: d.topic,
        partition: d.partition,
        error_code,
        log_start_offset,
    }
}
