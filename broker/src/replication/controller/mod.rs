//! The controller: one Raft group across every node of the cluster file,
//! holding the cluster metadata (topics, their ids and replica lists).
//!
//! Any node accepts admin commands ([`Cluster::propose`]): the leader
//! commits them, others forward them to it over the transport, and the
//! answer waits until the command is applied on the node that was asked.
//! Every node applies every command and tells its [`MetadataObserver`]
//! (here: the topic store, which creates or deletes the topic locally when
//! the node holds one of its replicas).
//!
//! - [`state`]: the metadata and its commands (pure).
//! - [`log_store`], [`state_machine`], [`files`]: durable storage in
//!   `<data_dir>/cluster/`.
//! - [`observer`]: the topic-store observer.

pub mod files;
pub mod log_store;
pub mod observer;
pub mod state;
pub mod state_machine;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use sluice_protocol::wire::ErrorCode;
use tokio::sync::watch;

use super::config::{ClusterConfig, ClusterConfigError, claim_data_dir, cluster_dir};
use super::election::{Heard, PreVoteNetwork};
use super::transport::raft::{Network, RaftHandler};
use super::transport::{CallError, GroupHandler, GroupId, HandlerFuture, Rpc, Transport};
pub use state::{Command, Metadata, MetadataEvent, Outcome, TopicMeta};

openraft::declare_raft_types!(
    /// The controller group's types: commands in, outcomes out.
    pub TypeConfig:
        D = Command,
        R = Outcome,
        NodeId = u64,
        Node = BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// Told of every metadata change on this node, in log order, before the
/// change is reported applied. Runs on the blocking pool (it may do file
/// I/O); it must not fail the change (it logs what it cannot do).
pub trait MetadataObserver: Send + Sync + 'static {
    /// `local` is this node's id.
    fn changed(&self, local: u64, event: &MetadataEvent);
}

/// Controller Raft timing: a leader heartbeats every 50 ms; a follower
/// that hears nothing for 250–500 ms (after the 500 ms leader lease while
/// it knew a leader) starts an election once a pre-vote of the others
/// says it would win ([`super::election`]).
pub fn raft_config() -> openraft::Config {
    openraft::Config {
        cluster_name: "sluice-controller".into(),
        heartbeat_interval: 50,
        election_timeout_min: 250,
        election_timeout_max: 500,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(1000),
        max_in_snapshot_log_to_keep: 100,
        enable_elect: false,
        ..openraft::Config::default()
    }
}

/// How often this node makes sure it can reach every peer.
const PEER_WATCH_EVERY: Duration = Duration::from_secs(1);

/// How long a peer must have been unreachable from this node to be left
/// out of the brokers Kafka clients are told of (Kafka's
/// `broker.session.timeout.ms`, 9 s by default): clients that go to every
/// broker (listing groups, say) would otherwise wait on a dead one until
/// their request timeout.
pub const BROKER_SESSION_TIMEOUT: Duration = Duration::from_secs(9);

/// Why the cluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The cluster file or the data directory's node id.
    #[error(transparent)]
    Config(#[from] ClusterConfigError),
    /// Binding the raft address or opening the controller files.
    #[error("{0}")]
    Io(String),
    /// openraft refused to start.
    #[error("starting the controller group: {0}")]
    Raft(String),
}

/// A refused admin command: the code and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AdminError {
    /// Stable code (`ControllerUnavailable` when no leader answered).
    pub code: ErrorCode,
    /// Why.
    pub message: String,
}

/// The answer to a forwarded command.
#[derive(Debug, Serialize, Deserialize)]
enum ForwardAnswer {
    /// Applied on the leader at this log index.
    Applied { outcome: Outcome, index: u64 },
    /// The node asked is not the leader (any more).
    NotLeader,
}

/// This node's part of the cluster: the transport and the controller.
pub struct Cluster {
    /// The cluster file.
    pub config: ClusterConfig,
    /// Node-to-node RPC (partition groups register here too).
    pub transport: Arc<Transport>,
    /// The controller group.
    pub raft: Raft<TypeConfig>,
    metadata: Arc<parking_lot::RwLock<Metadata>>,
    applied: watch::Receiver<u64>,
    /// The state machine's observed index
    /// ([`state_machine::StateMachine::observed_index`]).
    observed: Arc<std::sync::atomic::AtomicU64>,
    /// Set once [`Cluster::caught_up`] has held (it then holds for good:
    /// the store changes only as entries are applied).
    caught_up_once: std::sync::atomic::AtomicBool,
    /// When this node's controller started: [`Cluster::wait_caught_up`]
    /// waits until `limit` after it, not after each call.
    started: tokio::time::Instant,
    timeout: Duration,
    raft_addr: SocketAddr,
    /// The task calling the controller's elections
    /// ([`super::election::campaign`]).
    campaign: tokio::task::JoinHandle<()>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.campaign.abort();
    }
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("local", &self.config.local)
            .field("raft_addr", &self.raft_addr)
            .finish_non_exhaustive()
    }
}

/// What `/cluster` shows of a node.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// The cluster this node belongs to (see
    /// [`ClusterConfig::cluster_id`]).
    pub cluster_id: String,
    /// This node.
    pub node_id: u64,
    /// The controller leader this node knows of.
    pub leader: Option<u64>,
    /// The metadata as applied on this node.
    pub metadata: Metadata,
}

impl Cluster {
    /// Starts this node's cluster part: claims `<data_dir>/cluster/`,
    /// binds the raft address, opens the controller's files, starts the
    /// controller group and initializes it with every node of the file
    /// (the same on every node, as openraft allows). `timeout` bounds each
    /// admin command; `tcp` is the congestion control of node-to-node
    /// connections.
    pub async fn start(
        config: ClusterConfig,
        data_dir: &Path,
        observer: Arc<dyn MetadataObserver>,
        timeout: Duration,
        tcp: crate::config::TcpCongestion,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let local = config.local;
        let dir = cluster_dir(data_dir);
        let data_dir = data_dir.to_owned();
        let sm_dir = dir.clone();
        let sm_observer = Arc::clone(&observer);
        let claimed = config.clone();
        let (log_store, state_machine, cluster_id) = tokio::task::spawn_blocking(move || {
            let cluster_id = claim_data_dir(&data_dir, &claimed)?;
            let log = log_store::LogStore::open(dir)
                .map_err(|e| ClusterError::Io(format!("opening the controller log: {e}")))?;
            let snapshot_path = sm_dir.join("snapshot");
            let sm = state_machine::StateMachine::open(sm_dir, local, sm_observer)
                .map_err(|e| ClusterError::Io(format!("opening the controller snapshot: {e}")))?;
            // The log is purged only up to a snapshot that was written
            // first: without it, what the purged entries said is gone.
            if let Some(purged) = log.purged_index()
                && sm.snapshot_index().is_none_or(|s| s < purged)
            {
                return Err(ClusterError::Io(format!(
                    "{}: the controller snapshot is missing or older than the controller log's \
                     purge point (entry {purged}), so the metadata before it is gone; restore \
                     it, or empty this node's data directory to rejoin it as a new node",
                    snapshot_path.display()
                )));
            }
            Ok::<_, ClusterError>((log, sm, cluster_id))
        })
        .await
        .map_err(|e| ClusterError::Io(e.to_string()))??;
        let raft_addr = config.local_node().raft;
        let listener = tokio::net::TcpListener::bind(raft_addr)
            .await
            .map_err(|e| ClusterError::Io(format!("binding the raft address {raft_addr}: {e}")))?;
        crate::tcp::check(&listener, &tcp).map_err(ClusterError::Io)?;
        let peers: HashMap<u64, SocketAddr> = config
            .nodes
            .iter()
            .filter(|n| n.id != local)
            .map(|n| (n.id, n.raft))
            .collect();
        let transport = Transport::with_tcp_congestion(&cluster_id, local, peers, tcp);
        let raft_config = Arc::new(
            raft_config()
                .validate()
                .map_err(|e| ClusterError::Raft(e.to_string()))?,
        );
        let metadata = Arc::clone(&state_machine.metadata);
        let applied = state_machine.applied_index();
        let observed = state_machine.observed_index();
        let mut log_store = log_store;
        let stored_vote = openraft::storage::RaftLogStorage::read_vote(&mut log_store)
            .await
            .ok()
            .flatten();
        let raft = Raft::new(
            local,
            raft_config,
            Network::<TypeConfig>::new(Arc::clone(&transport), GroupId::Controller),
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| ClusterError::Raft(e.to_string()))?;
        let forward: Arc<dyn GroupHandler> = Arc::new(ForwardHandler {
            raft: raft.clone(),
            transport: Arc::clone(&transport),
        });
        let heard = Arc::new(Heard::opened(stored_vote.as_ref()));
        transport.registry.register(
            GroupId::Controller,
            Arc::new(
                RaftHandler::new(raft.clone())
                    .with_extra(forward)
                    .with_pre_vote(Arc::clone(&heard)),
            ),
        );
        let pre_votes = Network::<TypeConfig>::new(Arc::clone(&transport), GroupId::Controller)
            .pre_vote_peers();
        let campaign = tokio::spawn(super::election::campaign(raft.clone(), heard, pre_votes));
        super::transport::serve(listener, Arc::clone(&transport));
        transport.watch_peers(PEER_WATCH_EVERY);
        let members: BTreeMap<u64, BasicNode> = config
            .nodes
            .iter()
            .map(|n| (n.id, BasicNode::new(n.raft.to_string())))
            .collect();
        // Each change of the controller's leader, in the broker's words
        // (openraft's own reports are below the default log level).
        let mut server = raft.server_metrics();
        tokio::spawn(async move {
            let mut logged = None;
            loop {
                let now = {
                    let s = server.borrow_and_update();
                    (s.current_leader, s.vote.leader_id().get_term())
                };
                if now.0.is_some() && logged != Some(now) {
                    tracing::info!(leader = now.0, term = now.1, "controller leader");
                    logged = Some(now);
                }
                if server.changed().await.is_err() {
                    return;
                }
            }
        });
        // Only a node with no controller state forms the group: a restart
        // keeps its state (openraft would refuse, logging an error).
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ClusterError::Raft(e.to_string()))?;
        if !initialized {
            if let Err(e) = raft.initialize(members).await {
                tracing::debug!(error = %e, "controller group already initialized");
            }
        }
        Ok(Arc::new(Cluster {
            config,
            transport,
            raft,
            metadata,
            applied,
            observed,
            caught_up_once: std::sync::atomic::AtomicBool::new(false),
            started: tokio::time::Instant::now(),
            timeout,
            raft_addr,
            campaign,
        }))
    }

    /// The address the raft listener is bound to.
    pub fn raft_addr(&self) -> SocketAddr {
        self.raft_addr
    }

    /// This node's id.
    pub fn local(&self) -> u64 {
        self.config.local
    }

    /// Why this node's controller core is not running, if it is not: it
    /// stopped on a fatal error (a storage failure, say), or was shut down.
    /// While it is stopped the node applies no metadata change.
    pub fn core_stopped(&self) -> Option<String> {
        let metrics = self.raft.metrics();
        if metrics.has_changed().is_err() {
            return Some("its task has ended".to_owned());
        }
        let m = metrics.borrow();
        m.running_state.as_ref().err().map(ToString::to_string)
    }

    /// Resolves once this node's controller core has stopped without
    /// [`Cluster::shutdown`] being asked for, with the reason (see
    /// [`Cluster::core_stopped`]); never while it runs. A node in that state
    /// applies no metadata change again, so the broker shuts down on it and
    /// exits with an error for its supervisor to restart it.
    pub async fn core_ended(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Some(why) = self.core_stopped() {
                return why;
            }
            if metrics.changed().await.is_err() {
                return "its task has ended".to_owned();
            }
        }
    }

    /// The controller leader this node knows of; `None` once this node's
    /// controller core has ended on its own (its last metrics would name a
    /// leader forever).
    ///
    /// This node names itself only once a quorum of the controller group
    /// has answered it in its term: openraft restores a node that led
    /// before a restart as leader at once, in its old term, until it hears
    /// of the term elected while it was down. Named meanwhile, it would
    /// take metadata changes it cannot commit, and `/cluster` would
    /// contradict the other nodes'. A group of one is its own quorum.
    pub fn leader(&self) -> Option<u64> {
        let local = self.local();
        super::with_live_metrics(&self.raft.metrics(), |m| match m.current_leader {
            Some(l) if l == local && m.millis_since_quorum_ack.is_none() => None,
            other => other,
        })
        .flatten()
    }

    /// Whether this node leads the controller group (never once its core
    /// has ended).
    pub fn is_leader(&self) -> bool {
        super::with_live_metrics(&self.raft.metrics(), |m| {
            m.state == ServerState::Leader && m.current_leader == Some(self.local())
        })
        .unwrap_or(false)
    }

    /// Whether this node leads the controller group and a quorum of the
    /// group acknowledged it within the last `within`: a leader cut off
    /// from the others goes on calling itself leader (openraft 0.9 has no
    /// check-quorum step-down), and this tells it apart.
    pub fn leads_with_quorum(&self, within: Duration) -> bool {
        self.is_leader()
            && super::with_live_metrics(&self.raft.metrics(), |m| {
                m.millis_since_quorum_ack
                    .is_some_and(|ms| u128::from(ms) <= within.as_millis())
            })
            .unwrap_or(false)
    }

    /// The metadata as applied on this node.
    pub fn metadata(&self) -> Metadata {
        self.metadata.read().clone()
    }

    /// Reads the metadata as applied on this node without copying it.
    pub fn with_metadata<R>(&self, f: impl FnOnce(&Metadata) -> R) -> R {
        f(&self.metadata.read())
    }

    /// The last controller log index applied on this node; changes as
    /// metadata changes are applied.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// Whether the applied metadata is at least as new as the topic store:
    /// the applied index has reached the last index whose changes the
    /// store made. Right after a restart it is, unless the committed index
    /// saved before the restart was lost or trails the store (the log store
    /// saves it without fsync): the entries after the last snapshot up to
    /// it are applied again at start. Otherwise the metadata is the last
    /// snapshot's, which may still list topics deleted since (and the store
    /// no longer holds), until a controller leader commits them again.
    pub fn caught_up(&self) -> bool {
        *self.applied.borrow() >= self.observed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether [`Cluster::caught_up`] has held, with a controller leader
    /// known, since this node started (latched: a change being applied
    /// makes the store's index run ahead of the applied one for a moment,
    /// which is no reason to stop serving). Without a leader the node may
    /// have missed what was committed while it was down.
    pub fn has_caught_up(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.caught_up_once.load(Ordering::Acquire) {
            return true;
        }
        // A node in touch with no controller leader since it started may
        // have missed changes committed while it was down (the leader its
        // saved vote names may be gone).
        let leader_reached = {
            let m = self.raft.metrics();
            let m = m.borrow();
            match m.current_leader {
                Some(l) if l == self.local() => {
                    m.state == ServerState::Leader && m.millis_since_quorum_ack.is_some()
                }
                Some(l) => self.transport.connected(l),
                None => false,
            }
        };
        if self.caught_up() && leader_reached {
            if !self.caught_up_once.swap(true, Ordering::AcqRel) {
                tracing::info!("the controller metadata has caught up; serving clients");
            }
            return true;
        }
        false
    }

    /// Waits until [`Cluster::caught_up`] holds, until `limit` after this
    /// node's controller started at the latest; whether it does. Clients
    /// are served only then: before it, a restarted node's metadata lacks
    /// the topics created since its last controller snapshot (and may list
    /// some deleted since), which Kafka clients would take for the truth. A
    /// node that cannot catch up by then (no controller leader: most of the
    /// cluster is down) serves every connection at once with what it has,
    /// and says so once in its log.
    pub async fn wait_caught_up(&self, limit: Duration) -> bool {
        use std::sync::atomic::Ordering;
        let mut applied = self.applied();
        let mut metrics = self.raft.metrics();
        let deadline = self.started + limit;
        loop {
            if self.has_caught_up() {
                return true;
            }
            let changed = async {
                // The leader's connection coming up changes neither: a
                // look every 100 ms too.
                tokio::select! {
                    r = applied.changed() => r.is_ok(),
                    r = metrics.changed() => r.is_ok(),
                    () = tokio::time::sleep(Duration::from_millis(100)) => true,
                }
            };
            match tokio::time::timeout_at(deadline, changed).await {
                Ok(true) => {}
                _ => {
                    static WARNED: std::sync::atomic::AtomicBool =
                        std::sync::atomic::AtomicBool::new(false);
                    let caught_up = self.has_caught_up();
                    if !caught_up && !WARNED.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            waited_ms = limit.as_millis() as u64,
                            "serving clients before the controller metadata has caught up (no controller leader?): changes committed while this node was down are missing until it has"
                        );
                    }
                    return caught_up;
                }
            }
        }
    }

    /// What `/cluster` shows.
    pub fn status(&self) -> ClusterStatus {
        ClusterStatus {
            cluster_id: self.transport.cluster_id().to_owned(),
            node_id: self.local(),
            leader: self.leader(),
            metadata: self.metadata(),
        }
    }

    /// Stops the controller group.
    pub async fn shutdown(&self) {
        self.campaign.abort();
        let _ = self.raft.shutdown().await;
    }

    /// Commits `cmd` through the controller leader (this node or, over the
    /// transport, another) and waits until this node has applied it.
    /// `ControllerUnavailable` when no leader commits it within the
    /// timeout; a command whose answer was lost may still take effect.
    pub async fn propose(&self, cmd: Command) -> Result<Outcome, AdminError> {
        let deadline = Instant::now() + self.timeout;
        let mut last_error = String::from("no controller leader is known");
        // Whether an attempt failed in a way that may have left the command
        // committed (the leader died or moved before answering).
        let mut retried = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(AdminError {
                    code: ErrorCode::ControllerUnavailable,
                    message: format!(
                        "no controller leader committed the change within {:?} ({last_error})",
                        self.timeout
                    ),
                });
            }
            let attempt = match self.leader() {
                Some(l) if l == self.local() => self.write_local(&cmd, left).await,
                Some(l) => self.forward(l, &cmd, left).await,
                None => Err(Retry::After(last_error.clone())),
            };
            match attempt {
                Ok((outcome, index)) => {
                    self.wait_applied(index, deadline).await;
                    if retried && self.with_metadata(|m| done_by_earlier_attempt(&cmd, &outcome, m))
                    {
                        return Ok(Outcome {
                            code: ErrorCode::None,
                            message: None,
                        });
                    }
                    return Ok(outcome);
                }
                Err(Retry::After(why)) => {
                    retried = true;
                    last_error = why;
                    let mut m = self.raft.metrics();
                    let pause = Duration::from_millis(50).min(left);
                    // Wake early when the leader changes.
                    let _ = tokio::time::timeout(pause, m.changed()).await;
                }
                Err(Retry::Never(e)) => return Err(e),
            }
        }
    }

    async fn write_local(&self, cmd: &Command, left: Duration) -> Result<(Outcome, u64), Retry> {
        match tokio::time::timeout(left, self.raft.client_write(cmd.clone())).await {
            Err(_) => Err(Retry::Never(AdminError {
                code: ErrorCode::ControllerUnavailable,
                message: format!(
                    "the controller leader (node {}) could not commit the change within {:?}: \
                     no majority reachable",
                    self.local(),
                    self.timeout
                ),
            })),
            Ok(Ok(r)) => Ok((r.data, r.log_id.index)),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => Err(
                Retry::After(format!("leadership moved to {:?}", f.leader_id)),
            ),
            Ok(Err(e)) => Err(Retry::After(e.to_string())),
        }
    }

    async fn forward(
        &self,
        leader: u64,
        cmd: &Command,
        left: Duration,
    ) -> Result<(Outcome, u64), Retry> {
        let body = postcard::to_allocvec(cmd).map_err(|e| {
            Retry::Never(AdminError {
                code: ErrorCode::Unknown,
                message: e.to_string(),
            })
        })?;
        let call = self
            .transport
            .call(leader, GroupId::Controller, Rpc::Forward, body, left);
        // A leader that hangs (stopped, or cut off without a reset) never
        // answers, and the others elect a new one within an election
        // timeout: the call is given up as soon as this node sees another
        // leader (or none), and the command sent again to whoever leads
        // then. Waiting out the whole deadline on the hung one failed the
        // request though the cluster could commit it within a second. The
        // command may have been committed before the hang: the retry's
        // answer is read with that in mind (`done_by_earlier_attempt`).
        let answer = tokio::select! {
            answer = call => answer,
            () = self.leadership_leaves(leader) => {
                return Err(Retry::After(format!(
                    "node {leader} stopped leading while it was asked (no answer)"
                )));
            }
        };
        match answer {
            Ok(bytes) => {
                match crate::replication::transport::raft::decode_peer::<ForwardAnswer>(&bytes) {
                    Ok(ForwardAnswer::Applied { outcome, index }) => Ok((outcome, index)),
                    Ok(ForwardAnswer::NotLeader) => Err(Retry::After(format!(
                        "node {leader} is no longer the leader"
                    ))),
                    Err(e) => Err(Retry::After(format!("malformed answer from {leader}: {e}"))),
                }
            }
            // Not sent, or refused before it ran: safe to try again.
            Err(e @ (CallError::Unreachable(..) | CallError::Remote(..))) => {
                Err(Retry::After(e.to_string()))
            }
            Err(e @ CallError::Timeout(..)) => Err(Retry::Never(AdminError {
                code: ErrorCode::ControllerUnavailable,
                message: format!("forwarding to the controller leader: {e}"),
            })),
        }
    }

    /// Returns once this node no longer takes `leader` for the controller
    /// leader (another node leads, or none is known); never if it stays.
    async fn leadership_leaves(&self, leader: u64) {
        let mut metrics = self.raft.metrics();
        while self.leader() == Some(leader) {
            if metrics.changed().await.is_err() {
                // The group stopped: the call ends with it.
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits (until `deadline`) for this node to apply log index `index`.
    async fn wait_applied(&self, index: u64, deadline: Instant) {
        let mut rx = self.applied.clone();
        let wait = rx.wait_for(|&applied| applied >= index);
        if tokio::time::timeout_at(deadline.into(), wait)
            .await
            .is_err()
        {
            tracing::warn!(
                index,
                "admin change committed but not yet applied on this node"
            );
        }
    }
}

enum Retry {
    /// Not applied: try again (after a pause) until the deadline.
    After(String),
    /// Give up with this error.
    Never(AdminError),
}

/// Serves forwarded commands on the leader.
struct ForwardHandler {
    raft: Raft<TypeConfig>,
    /// The leader's node-to-node transport: which peers it finds unreachable.
    transport: Arc<Transport>,
}

impl GroupHandler for ForwardHandler {
    fn handle(&self, rpc: Rpc, body: Bytes, _payload: bytes::BytesMut) -> HandlerFuture {
        let raft = self.raft.clone();
        let transport = Arc::clone(&self.transport);
        Box::pin(async move {
            if rpc != Rpc::Forward {
                return Err(format!("unsupported call {}", rpc.name()));
            }
            let mut cmd: Command = crate::replication::transport::raft::decode_peer(&body)
                .map_err(|e| format!("malformed command: {e}"))?;
            // The proposer avoids the peers it cannot reach; a follower
            // calls few peers (none, if it leads no partition), so a hung
            // peer (its connections open, its calls unanswered) is often
            // seen only here, where the controller's heartbeats go
            // unanswered.
            cmd.avoid_also(&transport.unreachable(BROKER_SESSION_TIMEOUT));
            let answer = match raft.client_write(cmd).await {
                Ok(r) => ForwardAnswer::Applied {
                    outcome: r.data,
                    index: r.log_id.index,
                },
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    ForwardAnswer::NotLeader
                }
                Err(e) => return Err(e.to_string()),
            };
            postcard::to_allocvec(&answer)
                .map(Bytes::from)
                .map_err(|e| e.to_string())
        })
    }
}

/// Whether `outcome`, the answer to `cmd` proposed again after an attempt
/// whose answer was lost (its leader died or moved), is only the trace of
/// that earlier attempt having taken effect: a creation refused because the
/// topic exists with the partitions and replication factor asked, a
/// deletion refused because the topic is gone, partitions refused because
/// the topic has the count asked. The request then did what it asked, and
/// is answered so: without this, one CreateTopics whose controller leader
/// was killed as it committed answered `TOPIC_ALREADY_EXISTS` for a name
/// that did not exist before it. (A concurrent request asking the very
/// same thing is answered alike.)
fn done_by_earlier_attempt(cmd: &Command, outcome: &Outcome, m: &Metadata) -> bool {
    match cmd {
        Command::CreateTopic {
            name,
            partitions,
            replication_factor,
            ..
        }
        | Command::CreateTopicV2 {
            name,
            partitions,
            replication_factor,
            ..
        } => {
            outcome.code == ErrorCode::TopicAlreadyExists
                && m.topics.get(name).is_some_and(|t| {
                    t.replicas.len() == *partitions as usize
                        && t.replicas
                            .iter()
                            .all(|r| r.len() == *replication_factor as usize)
                })
        }
        Command::DeleteTopic { name } => {
            outcome.code == ErrorCode::UnknownTopicOrPartition && !m.topics.contains_key(name)
        }
        Command::CreatePartitions { name, count }
        | Command::CreatePartitionsV2 { name, count, .. } => {
            outcome.code == ErrorCode::InvalidPartitions
                && m.topics
                    .get(name)
                    .is_some_and(|t| t.replicas.len() == *count as usize)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_protocol::wire::topic_config::TopicConfig;

    fn create(name: &str, partitions: u32, rf: u32) -> Command {
        Command::CreateTopicV2 {
            name: name.into(),
            partitions,
            replication_factor: rf,
            config: TopicConfig::default(),
            avoid: Vec::new(),
        }
    }

    /// A retried command whose refusal only says the lost first attempt
    /// took effect is answered as done; any other refusal stands.
    #[test]
    fn a_refusal_left_by_the_earlier_attempt_is_taken_for_success() {
        let mut m = Metadata {
            nodes: vec![1, 2, 3],
            ..Metadata::default()
        };
        assert!(m.apply(&create("a", 4, 3)).0.code.is_ok());
        let again = m.apply(&create("a", 4, 3)).0;
        assert_eq!(again.code, ErrorCode::TopicAlreadyExists);
        assert!(done_by_earlier_attempt(&create("a", 4, 3), &again, &m));
        // Another partition count or factor: someone else's topic.
        assert!(!done_by_earlier_attempt(&create("a", 5, 3), &again, &m));
        assert!(!done_by_earlier_attempt(&create("a", 4, 2), &again, &m));

        let grow = Command::CreatePartitionsV2 {
            name: "a".into(),
            count: 6,
            avoid: Vec::new(),
        };
        assert!(m.apply(&grow).0.code.is_ok());
        let again = m.apply(&grow).0;
        assert_eq!(again.code, ErrorCode::InvalidPartitions);
        assert!(done_by_earlier_attempt(&grow, &again, &m));
        let shrink = Command::CreatePartitionsV2 {
            name: "a".into(),
            count: 5,
            avoid: Vec::new(),
        };
        let refused = m.apply(&shrink).0;
        assert!(!done_by_earlier_attempt(&shrink, &refused, &m));

        let delete = Command::DeleteTopic { name: "a".into() };
        assert!(m.apply(&delete).0.code.is_ok());
        let again = m.apply(&delete).0;
        assert_eq!(again.code, ErrorCode::UnknownTopicOrPartition);
        assert!(done_by_earlier_attempt(&delete, &again, &m));
        // Success stays success; other commands are never rewritten.
        let ok = Outcome {
            code: ErrorCode::None,
            message: None,
        };
        assert!(!done_by_earlier_attempt(&delete, &ok, &m));
    }
}
