//! Consumer group state in a cluster: the internal replicated topic
//! [`GROUP_STATE_TOPIC`] holds every group's committed offsets and
//! metadata, with the record layouts of the single broker's offsets log
//! (`docs/storage-format.md`). A group's records go to partition
//! `fnv1a_64(group) % partitions`, and the group's coordinator is that
//! partition's Raft leader.
//!
//! - **Creation.** The topic is created the first time any node is asked
//!   for a group's coordinator (FindCoordinator or a group call) while it
//!   does not exist, as Kafka creates `__consumer_offsets`: that node
//!   proposes it to the controller (`offsets_topic_partitions`
//!   partitions, replication factor `min(3, nodes)`, no retention by age
//!   or size: [`super::group_checkpoint`] compacts it) through
//!   the normal replicated topic creation ([`run`]), and the call is
//!   answered `CoordinatorNotAvailable` meanwhile. A cluster whose clients
//!   use no consumer groups runs no group-state partitions.
//! - **Writes.** [`ReplicatedGroupLog`] appends each commit and group
//!   record through the partition's group with acks=all; the
//!   [`OffsetStore`](crate::offsets::OffsetStore) makes it visible only
//!   after that commit.
//! - **Load.** When this node leads a partition in a new term and has
//!   applied an entry of that term (so its log holds everything committed
//!   before), [`run`] reads the partition from its start to the high
//!   watermark, replaces the offsets and groups of that partition in
//!   memory, and only then marks it loaded ([`Loaded`]); group calls for
//!   its groups get `CoordinatorNotAvailable` until then. A node that
//!   stops leading a partition forgets its groups in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::topic_config::TopicConfig;

use super::controller::{Cluster, Command};
use super::manager::ReplicaManager;
use super::partition::ReplicationError;
use crate::error::BrokerError;
use crate::offsets::{GroupLog, Replayed};
use crate::partition::Acks;
use crate::service::Service;
use crate::service::coordinator::group_hash;
use crate::topics::MIN_SEGMENT_BYTES;

/// Name of the internal topic holding consumer group state in a cluster.
/// Its partition directories (`__sluice_group_state-<p>`) cannot collide
/// with the single broker's local offsets log `__consumer_offsets-0`, and
/// clients cannot create, delete or produce to it (names starting with
/// `__sluice` are reserved: `topics::is_internal`).
pub const GROUP_STATE_TOPIC: &str = "__sluice_group_state";

/// How long one group-state write waits for its commit.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often leadership of the group-state partitions is looked at.
const POLL: Duration = Duration::from_millis(20);

/// The partition of [`GROUP_STATE_TOPIC`] that holds `group`, among
/// `partitions` (at least 1).
pub fn partition_of(group: &str, partitions: u32) -> u32 {
    (group_hash(group) % u64::from(partitions.max(1))) as u32
}

/// The settings of the group-state topic: no retention (a Raft snapshot
/// holds no records, so deleting by age or size would lose group state;
/// [`super::group_checkpoint`] deletes only what a checkpoint restates),
/// and segments of a quarter of `checkpoint_bytes` (the broker's
/// `offsets_snapshot_bytes`), between [`MIN_SEGMENT_BYTES`] and 64 MiB, so
/// that whole segments fall below a checkpoint.
pub fn topic_config(checkpoint_bytes: u64) -> TopicConfig {
    TopicConfig {
        retention_ms: Some(0),
        retention_bytes: Some(0),
        segment_bytes: Some((checkpoint_bytes / 4).clamp(MIN_SEGMENT_BYTES, 64 << 20)),
        ..TopicConfig::default()
    }
}

/// The group-state partitions this node has loaded, each with the Raft
/// term (leader epoch) it loaded it in.
#[derive(Debug, Default)]
pub struct Loaded {
    terms: Mutex<HashMap<u32, u64>>,
    /// A coordinator was asked for while the topic did not exist.
    wanted: AtomicBool,
}

impl Loaded {
    /// Whether partition `p` was loaded in term `term`.
    pub fn is_loaded(&self, p: u32, term: u64) -> bool {
        self.terms.lock().get(&p) == Some(&term)
    }

    /// Records that a group's coordinator was asked for while the
    /// group-state topic does not exist: [`run`] then creates it.
    pub fn want_topic(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }

    fn get(&self, p: u32) -> Option<u64> {
        self.terms.lock().get(&p).copied()
    }
}

/// The number of partitions of the group-state topic in `cluster`'s
/// metadata, `None` before it is created.
pub fn partitions(cluster: &Cluster) -> Option<u32> {
    cluster.with_metadata(|m| {
        m.topics
            .get(GROUP_STATE_TOPIC)
            .map(|t| t.replicas.len() as u32)
    })
}

/// Writes group state through the group-state partitions (cluster mode).
#[derive(Debug)]
pub struct ReplicatedGroupLog {
    manager: Weak<ReplicaManager>,
    cluster: Arc<Cluster>,
    runtime: tokio::runtime::Handle,
}

impl ReplicatedGroupLog {
    /// Writes through `manager`'s replicas of the topic in `cluster`.
    pub fn new(manager: &Arc<ReplicaManager>, cluster: Arc<Cluster>) -> Self {
        ReplicatedGroupLog {
            manager: Arc::downgrade(manager),
            cluster,
            runtime: tokio::runtime::Handle::current(),
        }
    }
}

fn refused(code: ErrorCode, message: String) -> BrokerError {
    BrokerError::Request { code, message }
}

impl GroupLog for ReplicatedGroupLog {
    fn append(
        &self,
        group: &str,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), BrokerError> {
        let not_coordinator = || {
            refused(
                ErrorCode::NotCoordinator,
                format!("this node does not coordinate group {group:?} (any more)"),
            )
        };
        let Some(n) = partitions(&self.cluster) else {
            return Err(refused(
                ErrorCode::CoordinatorNotAvailable,
                "the group-state topic does not exist yet".into(),
            ));
        };
        let p = partition_of(group, n);
        let manager = self.manager.upgrade().ok_or_else(not_coordinator)?;
        let replica = manager
            .replica(GROUP_STATE_TOPIC, p)
            .ok_or_else(not_coordinator)?;
        // Only the coordinator that loaded the partition in this term
        // writes: a node that led it before and leads it again must not
        // write from a stale memory.
        if !replica.is_leader() || !manager.group_loads.is_loaded(p, replica.leader_epoch()) {
            return Err(not_coordinator());
        }
        let batch = crate::offsets::encode_batch(records);
        let appended = self.runtime.block_on(async {
            tokio::time::timeout(WRITE_TIMEOUT, replica.append(batch, Acks::All)).await
        });
        match appended {
            Ok(Ok(r)) if !r.rejected => Ok(()),
            Ok(Ok(_)) => Err(refused(
                ErrorCode::StorageError,
                "the group-state partition refused the records".into(),
            )),
            Ok(Err(ReplicationError::NotLeader { .. } | ReplicationError::Shutdown)) => {
                Err(not_coordinator())
            }
            Ok(Err(e)) => Err(refused(ErrorCode::StorageError, e.to_string())),
            Err(_) => Err(refused(
                ErrorCode::RequestTimedOut,
                format!("group state not committed by a majority within {WRITE_TIMEOUT:?}"),
            )),
        }
    }
}

/// Cluster mode, for as long as the broker runs: creates the group-state
/// topic (through the controller leader, at most once a second) when it is
/// missing and a group's coordinator was asked of this node, and loads or drops the groups of each group-state partition as this
/// node's leadership of it changes.
pub async fn run(service: Weak<Service>, manager: Arc<ReplicaManager>, cluster: Arc<Cluster>) {
    tokio::spawn(super::group_checkpoint::run(
        service.clone(),
        Arc::clone(&manager),
        Arc::clone(&cluster),
    ));
    let mut last_create = None::<tokio::time::Instant>;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(svc) = service.upgrade() else { return };
        let Some(n) = partitions(&cluster) else {
            let due = last_create.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if manager.group_loads.wanted.load(Ordering::Relaxed) && due {
                last_create = Some(tokio::time::Instant::now());
                create_topic(&svc, &cluster).await;
            }
            continue;
        };
        for p in 0..n {
            step(&svc, &manager, n, p).await;
        }
    }
}

/// Creates the group-state topic through the controller (idempotent: an
/// existing topic is left as it is).
async fn create_topic(svc: &Service, cluster: &Cluster) {
    let nodes = cluster.config.nodes.len() as u32;
    let cmd = Command::CreateTopic {
        name: GROUP_STATE_TOPIC.to_owned(),
        partitions: svc.config.offsets_topic_partitions,
        replication_factor: nodes.clamp(1, 3),
        config: topic_config(svc.config.offsets_snapshot_bytes),
    };
    match cluster.propose(cmd).await {
        Ok(o) if o.code.is_ok() => {
            tracing::info!(
                partitions = svc.config.offsets_topic_partitions,
                "created the group-state topic"
            )
        }
        Ok(o) if o.code == ErrorCode::TopicAlreadyExists => {}
        Ok(o) => tracing::warn!(code = %o.code, "could not create the group-state topic"),
        Err(e) => tracing::debug!(error = %e, "could not create the group-state topic yet"),
    }
}

/// Loads partition `p` if this node leads it in a term it has not loaded
/// it in (once an entry of that term is applied), or drops its groups if
/// this node loaded it and no longer leads it.
async fn step(svc: &Arc<Service>, manager: &ReplicaManager, n: u32, p: u32) {
    let owned = move |g: &str| partition_of(g, n) == p;
    let loaded = manager.group_loads.get(p);
    let replica = manager.replica(GROUP_STATE_TOPIC, p);
    let ready_term = replica
        .as_ref()
        .filter(|r| !r.core_stopped())
        .and_then(|r| {
            let m = r.raft().metrics();
            let m = m.borrow();
            let leads = m.state == openraft::ServerState::Leader;
            let applied_own = m
                .last_applied
                .is_some_and(|l| l.leader_id.term == m.current_term);
            (leads && applied_own).then_some(m.current_term)
        });
    let leads_now = replica.as_ref().is_some_and(|r| r.is_leader());
    if let Some(term) = loaded {
        if leads_now && replica.as_ref().map(|r| r.leader_epoch()) == Some(term) {
            return;
        }
        manager.group_loads.terms.lock().remove(&p);
        svc.groups.drop_groups(owned);
        // Waits for commits between append and update: blocking pool.
        let store = Arc::clone(&svc.offsets);
        let _ = crate::service::blocking(move || store.drop_groups(owned)).await;
        tracing::info!(
            partition = p,
            "no longer coordinating the groups of this group-state partition"
        );
    }
    let (Some(term), Some(replica)) = (ready_term, replica) else {
        return;
    };
    let part = Arc::clone(replica.partition());
    let started = std::time::Instant::now();
    let log_start = part.log.log_start_offset();
    let read = crate::service::blocking(move || {
        let mut state = Replayed::default();
        state
            .replay(&part.log, part.log.log_start_offset())
            .map(|()| state)
    })
    .await;
    let state = match read {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::error!(partition = p, error = %e, "could not load a group-state partition");
            return;
        }
        Err(e) => {
            tracing::error!(partition = p, error = %e, "could not load a group-state partition");
            return;
        }
    };
    if !(replica.is_leader() && replica.leader_epoch() == term) {
        return;
    }
    let records = state.records;
    let groups: Vec<(String, Vec<u8>)> = state
        .groups
        .iter()
        .map(|(g, v)| (g.clone(), v.clone()))
        .collect();
    let store = Arc::clone(&svc.offsets);
    if crate::service::blocking(move || store.replace_groups(owned, state))
        .await
        .is_err()
    {
        return;
    }
    svc.groups.load_groups(owned, groups);
    manager.group_loads.terms.lock().insert(p, term);
    tracing::info!(
        partition = p,
        term,
        records,
        log_start,
        load_ms = started.elapsed().as_millis() as u64,
        "loaded a group-state partition; coordinating its groups"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: a group must stay in its partition across releases (its
    /// state is there).
    #[test]
    fn groups_map_to_pinned_partitions() {
        let got: Vec<(&str, u32)> = ["orders", "billing", "g1", "g2", "g3", "analytics"]
            .into_iter()
            .map(|g| (g, partition_of(g, 8)))
            .collect();
        assert_eq!(
            got,
            [
                ("orders", 4),
                ("billing", 4),
                ("g1", 5),
                ("g2", 4),
                ("g3", 7),
                ("analytics", 3),
            ]
        );
        assert_eq!(partition_of("anything", 1), 0);
        assert_eq!(partition_of("anything", 0), 0, "no division by zero");
    }

    #[test]
    fn groups_spread_over_the_partitions() {
        let mut counts = [0u32; 8];
        for i in 0..800 {
            counts[partition_of(&format!("group-{i}"), 8) as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 50), "{counts:?}");
    }

    /// Whatever the broker's topic defaults, no retention runs on it.
    #[test]
    fn the_topic_keeps_its_records() {
        let defaults = crate::config::TopicDefaults {
            retention_ms: 1000,
            retention_bytes: 1 << 20,
            ..Default::default()
        };
        let log = defaults.log_config(&topic_config(16 << 20));
        assert_eq!((log.retention_age, log.retention_bytes), (None, None));
        assert_eq!(log.segment_bytes, 4 << 20);
        let small = defaults.log_config(&topic_config(4096));
        assert_eq!(small.segment_bytes, MIN_SEGMENT_BYTES);
    }
}
