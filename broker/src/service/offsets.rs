//! Consumer-group committed offsets.

use std::sync::Arc;

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::offset_commit::CommitPartition;

use super::{Refused, Service, blocking};
use crate::group::types::CommitAs;

/// One offset to commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The next offset the group will consume; `None` forgets the
    /// committed offset (Kafka clients commit a negative offset to reset a
    /// group's position: read back, the partition then has none).
    pub offset: Option<u64>,
    /// Free-form metadata (at most `offset_metadata_max_bytes`).
    pub metadata: String,
}

/// The outcome of one [`Commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// `ErrorCode::None` if stored.
    pub error_code: ErrorCode,
}

/// A committed offset read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// The offset, `None` if the group committed none for the partition.
    pub offset: Option<u64>,
    /// Its metadata.
    pub metadata: String,
}

impl Service {
    /// Stores the offsets of existing partitions whose metadata fits; the
    /// others get their own error code. Writes the offsets log: blocking pool.
    pub async fn commit_offsets(
        self: &Arc<Self>,
        group: String,
        commits: Vec<Commit>,
    ) -> Result<Vec<Committed>, Refused> {
        self.commit_offsets_checked(group, commits, None).await
    }

    /// [`Service::commit_offsets`], checked as `member` against the group
    /// again under the offset store's lock of the group (see
    /// [`crate::offsets::OffsetStore::commit_if`]).
    pub(super) async fn commit_offsets_checked(
        self: &Arc<Self>,
        group: String,
        commits: Vec<Commit>,
        member: Option<CommitAs>,
    ) -> Result<Vec<Committed>, Refused> {
        super::check_partition_count(commits.len(), self.config.max_partitions_per_request)?;
        let svc = Arc::clone(self);
        blocking(move || svc.commit_blocking(&group, commits, member.as_ref()))
            .await
            .map_err(|e| Refused {
                code: ErrorCode::Unknown,
                message: format!("commit task failed: {e}"),
            })
    }

    /// Whether `partition` of `topic` exists. In a cluster the controller's
    /// metadata says so: a group's coordinator may host no replica of the
    /// topics its group consumes. Alone: the broker's own topics.
    fn partition_exists(&self, topic: &str, partition: u32) -> bool {
        match self.cluster.get() {
            Some(c) => c.with_metadata(|m| {
                m.topics
                    .get(topic)
                    .is_some_and(|t| (partition as usize) < t.replicas.len())
            }),
            None => self.topics.has_partition(topic, partition),
        }
    }

    /// Whether `topic` exists (as [`Self::partition_exists`]).
    fn topic_exists(&self, topic: &str) -> bool {
        match self.cluster.get() {
            Some(c) => c.with_metadata(|m| m.topics.contains_key(topic)),
            None => self.topics.topic(topic).is_some(),
        }
    }

    fn commit_blocking(
        &self,
        group: &str,
        commits: Vec<Commit>,
        member: Option<&CommitAs>,
    ) -> Vec<Committed> {
        let group_code = if crate::group::valid_group_name(group) {
            ErrorCode::None
        } else {
            ErrorCode::InvalidGroupName
        };
        let max_metadata = self.offsets.max_metadata_bytes();
        let own_codes: Vec<ErrorCode> = commits
            .iter()
            .map(|p| {
                if !self.partition_exists(&p.topic, p.partition) {
                    ErrorCode::UnknownTopicOrPartition
                } else if p.metadata.len() > max_metadata {
                    ErrorCode::OffsetMetadataTooLarge
                } else {
                    ErrorCode::None
                }
            })
            .collect();
        // A partition named more than once takes its last entry, as in
        // Kafka (a clear, then an offset, leaves the offset).
        let mut last: std::collections::HashMap<(&str, u32), usize> =
            std::collections::HashMap::new();
        for (i, p) in commits.iter().enumerate() {
            last.insert((p.topic.as_str(), p.partition), i);
        }
        let accepted = commits
            .iter()
            .enumerate()
            .zip(&own_codes)
            .filter(|((i, p), c)| c.is_ok() && last[&(p.topic.as_str(), p.partition)] == *i)
            .map(|((_, p), c)| (p, c));
        let to_store: Vec<CommitPartition> = accepted
            .clone()
            .filter_map(|(p, _)| {
                Some(CommitPartition {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    offset: p.offset?,
                    metadata: p.metadata.clone(),
                })
            })
            .collect();
        let to_forget: Vec<(String, u32)> = accepted
            .filter(|(p, _)| p.offset.is_none())
            .map(|(p, _)| (p.topic.clone(), p.partition))
            .collect();
        // Checked again where the commit is stored, under the lock that a
        // group's deletion takes too: the member may have been fenced, or
        // have left and the group been deleted, since the first check.
        let partitions: Vec<(&str, u32)> = commits
            .iter()
            .map(|c| (c.topic.as_str(), c.partition))
            .collect();
        let allowed = || match member {
            Some(m) => self.groups.check_commit(group, m, &partitions),
            None => Ok(()),
        };
        let stored = if group_code.is_ok() {
            self.offsets
                .commit_if(group, &to_store, |t| self.topic_exists(t), allowed)
                .and_then(|()| match to_forget.is_empty() {
                    true => Ok(0),
                    false => self.offsets.delete_offsets_if(group, &to_forget, allowed),
                })
                .map(|_| ())
                .map_err(|e| e.code())
        } else {
            Err(group_code)
        };
        commits
            .into_iter()
            .zip(own_codes)
            .map(|(p, own)| Committed {
                topic: p.topic,
                partition: p.partition,
                error_code: match (&stored, own) {
                    (Err(code), _) => *code,
                    (Ok(()), own) => own,
                },
            })
            .collect()
    }

    /// The group's committed offsets for the given partitions, or all of
    /// them. In memory, no disk. `InvalidGroupName` refuses the request.
    pub fn fetch_offsets(
        &self,
        group: &str,
        partitions: Option<Vec<(String, u32)>>,
    ) -> Result<Vec<CommittedOffset>, ErrorCode> {
        if !crate::group::valid_group_name(group) {
            return Err(ErrorCode::InvalidGroupName);
        }
        Ok(match partitions {
            Some(list) => list
                .into_iter()
                .map(|(topic, partition)| {
                    let committed = self.offsets.get(group, &topic, partition);
                    CommittedOffset {
                        offset: committed.as_ref().map(|c| c.0),
                        metadata: committed.map(|c| c.1).unwrap_or_default(),
                        topic,
                        partition,
                    }
                })
                .collect(),
            None => self
                .offsets
                .group(group)
                .into_iter()
                .map(|(topic, partition, offset, metadata)| CommittedOffset {
                    topic,
                    partition,
                    offset: Some(offset),
                    metadata,
                })
                .collect(),
        })
    }
}
