//! Deleting records from the start of partitions (Kafka's DeleteRecords).

use std::sync::Arc;

use sluice_protocol::wire::ErrorCode;

use super::{Refused, Service, blocking, check_partition_count};
use crate::error::log_error_code;

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
    /// watermark; `InvalidRequest` in a cluster.
    pub error_code: ErrorCode,
    /// The log start offset afterwards (on success).
    pub log_start_offset: u64,
}

impl Service {
    /// Deletes the records below each given offset (see
    /// [`crate::log::PartitionLog::delete_records_before`]: the log start
    /// offset moves there, durably, and the segments wholly below it go),
    /// on the blocking pool. A partition named more than once is deleted
    /// up to each offset in turn. Not served in a cluster
    /// (`InvalidRequest`): there the log start would have to move on every
    /// replica through the partition's group, which it does not yet.
    pub async fn delete_records(
        self: &Arc<Self>,
        deletions: Vec<RecordsDeletion>,
    ) -> Result<Vec<RecordsDeleted>, Refused> {
        check_partition_count(deletions.len(), self.config.max_partitions_per_request)?;
        let clustered = self.cluster.get().is_some();
        let svc = Arc::clone(self);
        blocking(move || {
            deletions
                .into_iter()
                .map(|d| {
                    let result = if clustered {
                        Err(ErrorCode::InvalidRequest)
                    } else {
                        svc.led_partition(&d.topic, d.partition).and_then(|p| {
                            let log = &p.log;
                            let before = d.before.unwrap_or_else(|| log.high_watermark());
                            log.delete_records_before(before).map_err(|e| {
                                if !matches!(e, crate::log::LogError::OffsetOutOfRange { .. }) {
                                    tracing::warn!(topic = %d.topic, partition = d.partition, error = %e, "could not delete records");
                                }
                                log_error_code(&e)
                            })
                        })
                    };
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
                })
                .collect()
        })
        .await
        .map_err(|e| Refused {
            code: ErrorCode::Unknown,
            message: format!("task failed: {e}"),
        })
    }
}
