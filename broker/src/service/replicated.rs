//! Produce to replicated partitions (cluster mode): each partition's
//! records go through its Raft group ([`ReplicatedPartition::append`]),
//! all partitions of a request at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use sluice_protocol::wire::ErrorCode;

use super::Service;
use super::leadership::{NotServed, check_leader};
use super::produce::{ProducePartition, Produced};
use super::stats::Stats;
use crate::error::{client_message_logged, log_error_code};
use crate::log::LogError;
use crate::partition::Acks;
use crate::replication::manager::ReplicaManager;
use crate::replication::partition::{ReplicatedPartition, ReplicationError};
use crate::replication::transport::frame::MAX_FRAME;

/// The most record bytes one partition of one produce request may carry in
/// a cluster: each becomes one Raft entry, and an entry must fit in one
/// node-to-node frame ([`MAX_FRAME`], with room for the entry's envelope).
/// A larger one is refused with `MessageTooLarge` instead of being
/// appended on the leader and then never replicated.
pub(crate) const MAX_ENTRY_BYTES: usize = MAX_FRAME - (1 << 20);

/// Appends every partition's records through its group and answers as
/// `acks` asks: `All` once committed (a majority has them fsynced),
/// `Leader`/`None` once the leader's local append is done. A partition
/// not led here is refused with `NotLeaderForPartition` (naming the
/// leader) or `LeaderNotAvailable`; no answer within `timeout` (no commit
/// for acks=all; for the others no local append, which waits while the
/// partition's last few entries are uncommitted) is `RequestTimedOut` (the
/// records may still be appended and commit later).
pub(super) async fn produce(
    svc: &Arc<Service>,
    manager: &ReplicaManager,
    partitions: Vec<ProducePartition>,
    records: &BytesMut,
    acks: Acks,
    timeout: Duration,
) -> Vec<Produced> {
    let appends = partitions.into_iter().map(|p| {
        // The refusal says what this one check found (leadership moves).
        let replica = if crate::topics::is_internal(&p.topic) {
            Err((
                ErrorCode::InvalidTopicName,
                format!(
                    "topic {:?} is internal: clients cannot produce to it",
                    p.topic
                ),
            ))
        } else {
            match check_leader(svc.leadership.as_ref(), &p.topic, p.partition) {
                Err(n) => Err((n.code(), n.message(&p.topic, p.partition))),
                // Not listed by the cluster's metadata (a leader check that
                // passes without a replica here): the topic store answers,
                // as for fetch — `UnknownTopicOrPartition` for a topic or
                // partition that does not exist, which clients answer by
                // refreshing their metadata.
                Ok(()) => manager
                    .replica(&p.topic, p.partition)
                    .ok_or_else(|| unserved(svc, &p.topic, p.partition)),
            }
        };
        // One copy per partition and request (not per record): the group
        // owns the bytes until every replica has them.
        let bytes = records
            .get(p.records.clone())
            .map(BytesMut::from)
            .unwrap_or_default();
        async move { append_one(svc, p, replica, bytes, acks, timeout).await }
    });
    futures::future::join_all(appends).await
}

/// Why a partition that passed the leader check has no replica here.
fn unserved(svc: &Service, topic: &str, partition: u32) -> (ErrorCode, String) {
    match svc.topics.partition(topic, partition) {
        Err(code) => (code, svc.refusal_message(code, topic, partition)),
        Ok(_) => {
            let n = NotServed::NoLeader;
            (n.code(), n.message(topic, partition))
        }
    }
}

async fn append_one(
    svc: &Service,
    p: ProducePartition,
    replica: Result<Arc<ReplicatedPartition>, (ErrorCode, String)>,
    bytes: BytesMut,
    acks: Acks,
    timeout: Duration,
) -> Produced {
    let mut result = Produced {
        topic: p.topic,
        partition: p.partition,
        error_code: ErrorCode::None,
        base_offset: 0,
        log_start_offset: 0,
        message: None,
    };
    let replica = match replica {
        Ok(r) => r,
        Err((code, message)) => {
            result.error_code = code;
            result.message = Some(message);
            return result;
        }
    };
    // Below the node's free-space floor the leader takes no more records:
    // an entry every replica must store cannot be refused later
    // (`replication::free_space`). A replica that does not lead answers
    // as it would anyway (NotLeader), so the client finds the leader.
    if replica.is_leader() {
        if let Some(why) = svc.free_space.produce_refusal(bytes.len() as u64) {
            static LOGGED: crate::throttle::Throttle =
                crate::throttle::Throttle::new(Duration::from_secs(10));
            if let Some(held_back) = LOGGED.allow() {
                tracing::warn!(reason = %why, held_back, "refusing produce requests: disk space low");
            }
            result.error_code = ErrorCode::DiskFull;
            result.message = Some(why);
            return result;
        }
    }
    // A topic with a fixed codec stores every batch in it, as on a single
    // broker: re-encoded once, on the leader, before it enters the group.
    let bytes = match recompressed(&replica, bytes).await {
        Ok(b) => b,
        Err(e) => {
            result.error_code = log_error_code(&e);
            result.message = Some(client_message_logged(
                &e,
                format_args!("a produce to {}-{}", result.topic, result.partition),
            ));
            return result;
        }
    };
    if bytes.len() > MAX_ENTRY_BYTES {
        result.error_code = ErrorCode::MessageTooLarge;
        result.message = Some(format!(
            "{} bytes of records for partition {} of topic {:?}: a replicated partition takes at most {MAX_ENTRY_BYTES} per request",
            bytes.len(),
            result.partition,
            result.topic
        ));
        return result;
    }
    let len = bytes.len() as u64;
    let timeout = timeout.max(Duration::from_millis(1));
    match tokio::time::timeout(timeout, replica.append(bytes, acks)).await {
        Ok(Ok(r)) => {
            Stats::add(&svc.stats.produce_bytes, len);
            result.base_offset = r.base_offset;
            result.log_start_offset = replica.partition().log.log_start_offset();
        }
        Ok(Err(e)) => {
            let (code, message) = refusal(&e, &result.topic, result.partition);
            result.error_code = code;
            result.message = Some(message);
        }
        Err(_) => {
            result.error_code = ErrorCode::RequestTimedOut;
            result.message = Some(match acks {
                Acks::All => {
                    format!("not committed by a majority of the replicas within {timeout:?}")
                }
                // The leader appends only a few entries beyond its commit
                // point (replication::partition::proposer::MAX_UNCOMMITTED).
                _ => format!(
                    "not appended within {timeout:?}: the partition's earlier entries are not committed"
                ),
            });
        }
    }
    result
}

/// `bytes` re-encoded in the partition's fixed codec when it has one and
/// some batch is not in it (on the blocking pool); else `bytes` unchanged.
async fn recompressed(
    replica: &ReplicatedPartition,
    bytes: BytesMut,
) -> Result<BytesMut, LogError> {
    if replica.partition().log.compression().is_none() {
        return Ok(bytes);
    }
    let part = Arc::clone(replica.partition());
    let slot = crate::log::decompression::acquire().await;
    super::blocking(move || {
        let _slot = slot.adopt();
        Ok(match super::produce::recompressed(&part, &bytes)? {
            Some(new) => BytesMut::from(&new[..]),
            None => bytes,
        })
    })
    .await
    .map_err(|source| LogError::Io {
        op: "recompress for",
        path: replica.partition().log.dir().to_owned(),
        source,
    })?
}

/// The wire code and message of a failed replicated append.
pub(crate) fn refusal(e: &ReplicationError, topic: &str, partition: u32) -> (ErrorCode, String) {
    match e {
        ReplicationError::NotLeader { leader: Some(l) } => (
            ErrorCode::NotLeaderForPartition,
            format!("partition {partition} of topic {topic:?} is led by node {l}, not this broker"),
        ),
        ReplicationError::NotLeader { leader: None } | ReplicationError::Shutdown => (
            ErrorCode::LeaderNotAvailable,
            format!("partition {partition} of topic {topic:?} has no leader right now"),
        ),
        ReplicationError::Log(e) => (
            log_error_code(e),
            client_message_logged(e, format_args!("a produce to {topic}-{partition}")),
        ),
        other => (ErrorCode::Unknown, other.to_string()),
    }
}

impl Service {
    /// The partitions of `partitions` whose replica here leads but cannot
    /// confirm now that it leads with everything committed applied
    /// ([`ReplicatedPartition::confirm_leadership`], all at once): a read
    /// of their leader state here could go back in time. Empty without
    /// `--cluster` and for partitions not led here (refused as usual).
    pub(crate) async fn unconfirmed_leadership(
        &self,
        partitions: impl IntoIterator<Item = (String, u32)>,
    ) -> std::collections::HashSet<(String, u32)> {
        let Some(manager) = self.replicas.get() else {
            return std::collections::HashSet::new();
        };
        let mut distinct = std::collections::HashSet::new();
        let checks: Vec<_> = partitions
            .into_iter()
            .filter(|k| distinct.insert(k.clone()))
            .filter_map(|(topic, partition)| {
                let r = manager.replica(&topic, partition)?;
                r.is_leader().then_some((topic, partition, r))
            })
            .map(|(topic, partition, r)| async move {
                r.confirm_leadership()
                    .await
                    .err()
                    .map(|_| (topic, partition))
            })
            .collect();
        futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect()
    }
}
