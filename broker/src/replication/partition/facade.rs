//! [`ReplicatedPartition`]: what the service layer calls to append to a
//! replicated partition and to learn its leadership.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::BytesMut;
use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Raft, RaftNetworkFactory, ServerState, SnapshotPolicy};
use parking_lot::Mutex;
use sluice_protocol::batch::compression::first_compressed;

use super::PartitionRaft;
use super::index::RaftIndex;
use super::liveness::{Answered, Noting};
use super::payload::Response;
use super::proposer::Proposer;
use super::state::StateMachine;
use super::store::{LogStore, Shared};
use crate::log::LogError;
use crate::partition::{Acks, Partition};
use crate::replication::election::{self, Heard, PreVoteNetwork};

/// How long a snapshot and a purge before deleting segments are waited
/// for ([`ReplicatedPartition::retain`], [`ReplicatedPartition::compact_below`]):
/// openraft postpones a purge while a replication stream still reads the
/// entries, so it is asked for again, once per heartbeat, until then.
pub const PURGE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// Settings of a partition group, with defaults tuned for sub-second
/// failover on a local network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationConfig {
    /// Leader heartbeat interval, milliseconds (default 50).
    pub heartbeat_ms: u64,
    /// Smallest election timeout, milliseconds (default 150).
    pub election_timeout_min_ms: u64,
    /// Largest election timeout, milliseconds (default 300).
    pub election_timeout_max_ms: u64,
    /// A replica is in sync while its matched Raft index is at most this
    /// many entries behind the leader's last one (default 100) and it has
    /// answered one of the leader's calls within
    /// [`ReplicationConfig::in_sync_max_silence_ms`].
    pub in_sync_max_lag: u64,
    /// A replica that has answered none of the leader's calls (heartbeats
    /// included, every `heartbeat_ms`) for this many milliseconds is out of
    /// sync however close its matched index (default 5,000): a dead
    /// follower of an idle partition matches the last entry forever.
    pub in_sync_max_silence_ms: u64,
    /// How often a node takes back the leadership of the partitions it is
    /// the preferred replica of, milliseconds (default 300,000; 0: never).
    /// See [`crate::replication::manager`].
    pub leader_rebalance_interval_ms: u64,
    /// The share of a node's preferred partitions, percent, that may be
    /// led elsewhere before it takes them back (default 10).
    pub leader_imbalance_percent: u32,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            heartbeat_ms: 50,
            election_timeout_min_ms: 150,
            election_timeout_max_ms: 300,
            in_sync_max_lag: 100,
            in_sync_max_silence_ms: 5_000,
            leader_rebalance_interval_ms: 300_000,
            leader_imbalance_percent: 10,
        }
    }
}

/// The most entries one AppendEntries call carries (openraft's default is
/// 300). openraft 0.9 keeps one call in flight per follower and a follower
/// answers after its flush, so a follower takes at most this many entries
/// per round trip: with acks=leader every small produce request is its own
/// entry, and at 300 a round trip of a few milliseconds capped what a
/// follower could take near the rate W4 offers, so the commit (and what
/// consumers see) fell hundreds of milliseconds behind. The bytes of one
/// call stay bounded by [`crate::replication::transport::raft::APPEND_BUDGET_BYTES`].
pub(crate) const MAX_PAYLOAD_ENTRIES: u64 = 4096;

impl ReplicationConfig {
    fn raft_config(&self) -> Result<Arc<openraft::Config>, ReplicationError> {
        let c = openraft::Config {
            cluster_name: "sluice-partition".to_owned(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            // Snapshots are built when retention needs one
            // ([`ReplicatedPartition::retain`], [`ReplicatedPartition::compact_below`]),
            // never by count:
            // installing one discards a follower's whole log.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: 0,
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            // Elections are called by `election::campaign`, after a
            // pre-vote a majority granted.
            enable_elect: false,
            ..Default::default()
        };
        c.validate()
            .map(Arc::new)
            .map_err(|e| ReplicationError::Config(e.to_string()))
    }
}

/// Why a replicated append or operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// This replica does not lead the group; `leader` is the one it knows.
    #[error("not the leader of the partition (leader: {leader:?})")]
    NotLeader {
        /// The current leader, if known.
        leader: Option<u64>,
    },
    /// The group was shut down (or its Raft stopped on a fatal error).
    #[error("the partition's replication group is shut down")]
    Shutdown,
    /// Invalid settings.
    #[error("invalid replication settings: {0}")]
    Config(String),
    /// Opening the Raft index or the log failed.
    #[error("storage: {0}")]
    Storage(String),
    /// The partition log refused the records.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Any other Raft error.
    #[error("raft: {0}")]
    Raft(String),
}

/// One replica of a replicated partition: an openraft group whose log is
/// the partition's segment files. The partition's high watermark is the
/// group's commit point: consumers see only committed records.
pub struct ReplicatedPartition {
    raft: Raft<PartitionRaft>,
    shared: Arc<Shared>,
    node_id: u64,
    config: ReplicationConfig,
    proposer: Proposer,
    stopped: Mutex<bool>,
    /// When each peer last answered this replica's Raft calls.
    answered: Arc<Answered>,
    /// What this replica heard from leaders and candidates, for its
    /// pre-votes ([`election`]).
    heard: Arc<Heard>,
    /// The task calling this replica's elections ([`election::campaign`]).
    campaign: tokio::task::JoinHandle<()>,
}

impl Drop for ReplicatedPartition {
    fn drop(&mut self) {
        self.campaign.abort();
    }
}

impl std::fmt::Debug for ReplicatedPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedPartition")
            .field("node", &self.node_id)
            .field("dir", &self.shared.partition.log.dir())
            .finish()
    }
}

/// What the open found and repaired between the Raft index and the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Index records dropped because the log lost their records.
    pub index_records_dropped: usize,
    /// Kafka offsets cut off the log because no index record covered them.
    pub log_offsets_truncated: u64,
}

impl ReplicatedPartition {
    /// Opens the group's storage in `<partition dir>/raft/`, reconciling it
    /// with the log (see `docs/storage-format.md`, "Raft index": both are
    /// cut to the shorter), and starts the Raft node `node_id`.
    pub async fn open<N: RaftNetworkFactory<PartitionRaft> + PreVoteNetwork>(
        partition: Arc<Partition>,
        node_id: u64,
        config: ReplicationConfig,
        network: N,
    ) -> Result<(ReplicatedPartition, OpenReport), ReplicationError> {
        let raft_config = config.raft_config()?;
        let p = Arc::clone(&partition);
        let (index, report) = tokio::task::spawn_blocking(move || recover(&p))
            .await
            .map_err(|e| ReplicationError::Storage(e.to_string()))??;
        let shared = Arc::new(Shared {
            node_id,
            partition,
            index: Mutex::new(index),
            waiters: Mutex::default(),
            snapshot_cap: Mutex::new(None),
            opening: std::sync::atomic::AtomicBool::new(true),
        });
        let store = LogStore::new(Arc::clone(&shared));
        let sm = StateMachine::new(Arc::clone(&shared))
            .map_err(|e| ReplicationError::Storage(e.to_string()))?;
        let answered = Arc::new(Answered::default());
        let pre_votes = network.pre_vote_peers();
        let network = Noting::new(network, Arc::clone(&answered));
        let stored_vote = shared.index.lock().meta.vote;
        let raft = Raft::new(node_id, raft_config, network, store, sm).await;
        shared.opened();
        let raft = raft.map_err(|e| ReplicationError::Raft(e.to_string()))?;
        let proposer = Proposer::start(raft.clone(), Arc::clone(&shared), node_id);
        let heard = Arc::new(Heard::opened(stored_vote.as_ref()));
        let campaign = tokio::spawn(election::campaign(
            raft.clone(),
            Arc::clone(&heard),
            pre_votes,
        ));
        Ok((
            ReplicatedPartition {
                raft,
                shared,
                node_id,
                config,
                proposer,
                stopped: Mutex::new(false),
                answered,
                heard,
                campaign,
            },
            report,
        ))
    }

    /// Forms the group with `members` (node id → raft address). Safe to
    /// call on every replica with the same members, and again after
    /// restarts: a group already formed is left as it is.
    pub async fn initialize(
        &self,
        members: BTreeMap<u64, BasicNode>,
    ) -> Result<(), ReplicationError> {
        // A replica that already holds entries or heard a peer's vote is
        // formed: openraft would refuse, logging an error for each.
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| ReplicationError::Raft(e.to_string()))?
        {
            return Ok(());
        }
        match self.raft.initialize(members).await {
            Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(ReplicationError::Raft(e.to_string())),
        }
    }

    /// Appends `records` (whole RecordBatch v2 batches) through the group.
    /// The leader assigns offsets and stamps `baseOffset` and
    /// `partitionLeaderEpoch` (the term) into the batches; every replica
    /// stores the same bytes at the same offsets.
    ///
    /// - [`Acks::All`]: answers once a majority has the entry durable
    ///   (fsynced) and it is committed (the high watermark covers it).
    /// - [`Acks::Leader`] / [`Acks::None`]: answers once the leader's local
    ///   append is done (page cache); the records become visible only once
    ///   committed, and a leader change may still take them back.
    ///
    /// Appends queue up per partition and those waiting together share one
    /// Raft entry (group commit, [`super::proposer`]), each as a part of
    /// its own: its own offsets, its own answer. Waits while the queue is
    /// full ([`super::proposer::QUEUE_REQUESTS`], `QUEUE_BYTES`).
    ///
    /// On a follower: [`ReplicationError::NotLeader`] naming the leader.
    /// Records the log refuses (invalid batch, producer sequence error...)
    /// take no offsets, on every replica alike, and come back as
    /// [`ReplicationError::Log`] with the log's reason; the other parts of
    /// the entry are not affected.
    pub async fn append(
        &self,
        records: BytesMut,
        acks: Acks,
    ) -> Result<Response, ReplicationError> {
        if *self.stopped.lock() {
            return Err(ReplicationError::Shutdown);
        }
        // Checked in full once, here, against the leader's clock: replicas
        // store with header and CRC checks only, so neither a clock
        // difference nor a costly batch (a compressed one decompressed to
        // be walked) can make them disagree or hold up their Raft cores.
        let records = self.check_proposal(records).await?;
        self.proposer.append(records, acks).await
    }

    /// [`PartitionLog::check_proposal`] of `records`: on this thread when
    /// the set is uncompressed and at most
    /// [`DiskIo::SMALL_APPEND_BYTES`](crate::config::DiskIo::SMALL_APPEND_BYTES)
    /// (a walk of a few records, as a single broker appends such a set
    /// inline), else on the blocking pool (decompression may cost up to
    /// `max_decompressed_batch_bytes` of output).
    async fn check_proposal(&self, mut records: BytesMut) -> Result<BytesMut, ReplicationError> {
        let log = Arc::clone(&self.shared.partition.log);
        let small = records.len() <= crate::config::DiskIo::SMALL_APPEND_BYTES;
        let compressed = first_compressed(&records).is_some();
        if small && !compressed {
            log.check_proposal(&mut records)?;
            return Ok(records);
        }
        // Waited for here, holding no blocking thread (see
        // `log::decompression`).
        let slot = match compressed {
            true => Some(crate::log::decompression::acquire().await),
            false => None,
        };
        tokio::task::spawn_blocking(move || {
            let _slot = slot.map(crate::log::decompression::Slot::adopt);
            log.check_proposal(&mut records).map(|()| records)
        })
        .await
        .map_err(|e| {
            if e.is_cancelled() {
                // The runtime is shutting down: retriable elsewhere.
                ReplicationError::Shutdown
            } else {
                ReplicationError::Raft(format!("batch check failed: {e}"))
            }
        })?
        .map_err(Into::into)
    }

    /// This replica's node id.
    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    /// The group's leader as this replica knows it; `None` once this
    /// replica's Raft core has stopped ([`ReplicatedPartition::core_stopped`]),
    /// whose last metrics would name a leader forever.
    ///
    /// This replica names itself only once a quorum of the group has
    /// answered it in its term. openraft restores a replica that led before
    /// a restart as leader at once, in its old term, and it stays so until
    /// it hears of the term the others elected meanwhile (up to the others'
    /// reconnect backoff, half a second): named, it would draw produce
    /// requests that cannot commit, and Metadata would contradict the
    /// other nodes'. A new leader waits one round of heartbeats; a group of
    /// one replica is its own quorum.
    pub fn leader(&self) -> Option<u64> {
        crate::replication::with_live_metrics(&self.raft.metrics(), |m| match m.current_leader {
            Some(l) if l == self.node_id && m.millis_since_quorum_ack.is_none() => None,
            other => other,
        })
        .flatten()
    }

    /// Whether this replica leads the group now (never once its Raft core
    /// has stopped).
    pub fn is_leader(&self) -> bool {
        crate::replication::with_live_metrics(&self.raft.metrics(), |m| {
            m.state == ServerState::Leader
        })
        .unwrap_or(false)
    }

    /// Whether this replica's Raft core has stopped without being shut
    /// down: on a fatal storage error (openraft's `running_state`), or
    /// after a panic (the metrics' sender is gone). Such a replica takes no
    /// part in the group until it is opened again
    /// ([`crate::replication::manager`] does so).
    pub fn core_stopped(&self) -> bool {
        !*self.stopped.lock() && crate::replication::raft_core_ended(&self.raft.metrics())
    }

    /// Why the Raft core stopped, for the broker's own report of it
    /// (openraft's reports of calls into a stopped core are not logged):
    /// the fatal error it ended with, or that its task ended without one.
    pub fn stop_cause(&self) -> String {
        let metrics = self.raft.metrics();
        let closed = metrics.has_changed().is_err();
        match &metrics.borrow().running_state {
            Err(fatal) => fatal.to_string(),
            Ok(()) if closed => "its task ended (a panic)".to_owned(),
            Ok(()) => "it is running".to_owned(),
        }
    }

    /// Whether [`ReplicatedPartition::shutdown`] was called (its topic was
    /// deleted, or the node is stopping).
    pub fn was_shut_down(&self) -> bool {
        *self.stopped.lock()
    }

    /// The current term, which is the leader epoch stamped in batches.
    pub fn leader_epoch(&self) -> u64 {
        self.raft.metrics().borrow().current_term
    }

    /// The voting members of the group.
    pub fn replicas(&self) -> Vec<u64> {
        self.raft
            .metrics()
            .borrow()
            .membership_config
            .membership()
            .voter_ids()
            .collect()
    }

    /// Confirms, before a read of this replica's state as the partition's
    /// leader (its high watermark, log start, the committed group offsets
    /// it holds), that it still leads and holds everything committed: a
    /// quorum answers a round of heartbeats, and the entries up to the
    /// commit point, at least up to the first of its own term, are applied
    /// (openraft's `ensure_linearizable`). A leader that was paused while
    /// another was elected would otherwise answer from older state until it
    /// heard of the new term, and a new leader from its predecessor's
    /// applied point (0 right after every replica restarted) until its
    /// first entry commits. Gives up after twice the longest election
    /// timeout, at least a second (no quorum answering).
    pub async fn confirm_leadership(&self) -> Result<(), ReplicationError> {
        let within = std::time::Duration::from_millis(
            self.config
                .election_timeout_max_ms
                .saturating_mul(2)
                .max(1000),
        );
        match tokio::time::timeout(within, self.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::Fatal(_))) => Err(ReplicationError::Shutdown),
            Ok(Err(_)) | Err(_) => Err(ReplicationError::NotLeader {
                leader: self.leader().filter(|&l| l != self.node_id),
            }),
        }
    }

    /// On the leader: itself, and the replicas whose matched Raft index is
    /// within [`ReplicationConfig::in_sync_max_lag`] of its last one and
    /// that answered one of its calls within
    /// [`ReplicationConfig::in_sync_max_silence_ms`]. Empty on a follower,
    /// which does not know.
    pub fn in_sync(&self) -> BTreeSet<u64> {
        let m = self.raft.metrics().borrow().clone();
        let Some(progress) = m.replication.as_ref() else {
            return BTreeSet::new();
        };
        let last = m.last_log_index.unwrap_or(0);
        let silence = std::time::Duration::from_millis(self.config.in_sync_max_silence_ms);
        progress
            .iter()
            .filter(|(id, matched)| {
                **id == self.node_id
                    || (matched.is_some_and(|l| l.index + self.config.in_sync_max_lag >= last)
                        && self.answered.recently(**id, silence))
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// The shared state of the group's storage (tests).
    #[cfg(test)]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The partition this group replicates.
    pub fn partition(&self) -> &Arc<Partition> {
        &self.shared.partition
    }

    /// The Raft node, for the transport (its `append_entries`, `vote` and
    /// `install_snapshot` take the requests that arrive for this replica).
    pub fn raft(&self) -> &Raft<PartitionRaft> {
        &self.raft
    }

    /// What this replica heard from leaders and candidates: whoever hands
    /// the group its calls notes them here, and answers pre-votes from it
    /// ([`election::answer`]).
    pub fn heard(&self) -> &Arc<Heard> {
        &self.heard
    }

    /// Has openraft build a snapshot unless one already covers `target`,
    /// and waits, for at most [`PURGE_PATIENCE`], until one does; returns
    /// whether one does.
    async fn snapshot_covering(
        &self,
        target: openraft::LogId<u64>,
    ) -> Result<bool, ReplicationError> {
        let mut rx = self.raft.metrics();
        if rx.borrow().snapshot >= Some(target) {
            return Ok(true);
        }
        let deadline = tokio::time::Instant::now() + PURGE_PATIENCE;
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|_| ReplicationError::Shutdown)?;
        while rx.borrow().snapshot < Some(target) {
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(r) => r.map_err(|_| ReplicationError::Shutdown)?,
                Err(_) => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Asks openraft to purge up to `target` (already in a snapshot), once
    /// per heartbeat for at most [`PURGE_PATIENCE`]; returns the log id
    /// purged up to.
    async fn purge_to(
        &self,
        target: openraft::LogId<u64>,
    ) -> Result<Option<openraft::LogId<u64>>, ReplicationError> {
        let mut rx = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + PURGE_PATIENCE;
        let tick = std::time::Duration::from_millis(self.config.heartbeat_ms.max(1));
        while rx.borrow().purged < Some(target) && tokio::time::Instant::now() < deadline {
            self.raft
                .trigger()
                .purge_log(target.index)
                .await
                .map_err(|_| ReplicationError::Shutdown)?;
            let _ = tokio::time::timeout(tick, rx.changed()).await;
        }
        let purged = rx.borrow().purged;
        Ok(purged)
    }

    /// Compaction of a group-state partition whose latest committed
    /// checkpoint starts at Kafka offset `start` (replaying the log from
    /// `start` rebuilds everything replaying it from its start would).
    /// From now on this group's snapshots are *capped*: they include no
    /// entry holding an offset at or above `start` (the highest `start`
    /// asked for). Builds such a snapshot (last included entry: the last
    /// applied entry wholly below `start`; Kafka end: that entry's end,
    /// at most `start`), purges the Raft log up to it and deletes the
    /// segments wholly below that end. A follower that installs the
    /// snapshot restarts its log at that end, so it still receives the
    /// whole checkpoint from the leader.
    ///
    /// Returns the Kafka offset the log was purged below (also when no
    /// entry wholly below `start` is held any more: done before), or `None`
    /// when nothing was done this time: the entry is not applied yet, the
    /// membership in force was applied after that entry, or the
    /// snapshot or the purge did not happen within [`PURGE_PATIENCE`] (a
    /// replication stream still reads the entries). Nothing is deleted
    /// then.
    pub async fn compact_below(&self, start: u64) -> Result<Option<u64>, ReplicationError> {
        let Some(limit) = self.purge_below(start).await? else {
            return Ok(None);
        };
        let log = Arc::clone(&self.shared.partition.log);
        tokio::task::spawn_blocking(move || log.delete_below(limit))
            .await
            .map_err(|e| ReplicationError::Storage(e.to_string()))??;
        Ok(Some(limit))
    }

    /// Caps this group's snapshots below `start` from now on (the highest
    /// `start` asked for), builds such a snapshot and purges the Raft log
    /// up to it. Returns the Kafka offset the Raft log is purged below
    /// (also when no entry wholly below `start` is held any more), or
    /// `None` when the snapshot or the purge did not happen this time.
    async fn purge_below(&self, start: u64) -> Result<Option<u64>, ReplicationError> {
        {
            let mut cap = self.shared.snapshot_cap.lock();
            *cap = Some(cap.map_or(start, |c| c.max(start)));
        }
        // No entry wholly below `start` held: purged before (the segments
        // may still need deleting, after a crash say).
        let purged_before = self.shared.index.lock().last_below(start).is_none();
        if !purged_before && !self.snapshot_and_purge_below(start).await? {
            return Ok(None);
        }
        Ok(Some(self.shared.index.lock().meta.purged_kafka_end))
    }

    /// The capped snapshot and the purge of [`ReplicatedPartition::compact_below`];
    /// whether the Raft log is purged up to the last entry wholly below
    /// `start`.
    async fn snapshot_and_purge_below(&self, start: u64) -> Result<bool, ReplicationError> {
        let rx = self.raft.metrics();
        let point = {
            let m = rx.borrow();
            super::state::snapshot_point(
                &self.shared,
                m.last_applied,
                &m.membership_config,
                Some(start),
            )
        };
        let Some((Some(target), _)) = point else {
            return Ok(false);
        };
        if !self.snapshot_covering(target).await? {
            return Ok(false);
        }
        Ok(self.purge_to(target).await? >= Some(target))
    }

    /// One retention pass of the partition log that keeps whatever the Raft
    /// log still refers to. The snapshot is capped at the retention point
    /// ([`crate::log::PartitionLog::retention_point`]): it includes no
    /// entry holding an offset retention keeps, and the Raft log is purged
    /// only up to it. A replica that falls behind the leader's Raft log
    /// therefore installs a snapshot ending at or below the leader's log
    /// start and receives every record the leader still holds, as entries;
    /// should it lead later, no record retention kept is missing from it.
    /// Then deletes the segments retention deletes, wholly below the purge
    /// point only. Does nothing when retention deletes nothing.
    pub async fn retain(
        &self,
        now: std::time::SystemTime,
    ) -> Result<crate::log::RetainOutcome, ReplicationError> {
        let Some(point) = self.shared.partition.log.retention_point(now) else {
            return Ok(Default::default());
        };
        let Some(limit) = self.purge_below(point).await? else {
            return Ok(Default::default());
        };
        let log = Arc::clone(&self.shared.partition.log);
        let r = tokio::task::spawn_blocking(move || log.retain_below(now, limit))
            .await
            .map_err(|e| ReplicationError::Storage(e.to_string()))??;
        Ok(r)
    }

    /// Stops the Raft node; later appends get [`ReplicationError::Shutdown`].
    /// The files stay as they are: opening the partition again resumes.
    pub async fn shutdown(&self) -> Result<(), ReplicationError> {
        *self.stopped.lock() = true;
        self.campaign.abort();
        self.raft
            .shutdown()
            .await
            .map_err(|e| ReplicationError::Raft(e.to_string()))
    }
}

/// The recovery rule: opens the Raft index and cuts the index and the log
/// to the shorter of the two. Blocking.
fn recover(partition: &Partition) -> Result<(RaftIndex, OpenReport), ReplicationError> {
    let log = &partition.log;
    let dir: PathBuf = log.dir().join(super::RAFT_DIR);
    let storage = |e: std::io::Error| ReplicationError::Storage(e.to_string());
    let mut index = RaftIndex::open_keeping(
        Arc::clone(&log.fs),
        dir,
        log.next_offset(),
        log.checkpointed(),
    )
    .map_err(storage)?;
    let mut report = OpenReport::default();
    let expected = index.kafka_end();
    if log.next_offset() < expected
        && log.log_start_offset() == log.next_offset()
        && index.last().is_none()
    {
        // A reset (snapshot install) cut short by a crash: finish it.
        log.reset_to(expected)?;
    }
    report.index_records_dropped = index.cut_to_log_end(log.next_offset()).map_err(storage)?;
    let end = index.kafka_end();
    if log.next_offset() > end {
        report.log_offsets_truncated = log.next_offset() - end;
        log.truncate_to(end)?;
    }
    // The index as it now stands is made durable (after a SIGKILL its
    // last records may be in the page cache only), and checkpoints may
    // vouch for the log up to its end; the flush task raises that bound
    // as it syncs more.
    for f in index.sync_handles() {
        f.sync_data().map_err(storage)?;
    }
    log.cap_checkpoints(index.kafka_end());
    // Readers see only what is known committed (the purge point); applying
    // the committed entries again moves the high watermark from there.
    log.restart_high_watermark(index.meta.purged_kafka_end)?;
    Ok((index, report))
}
