//! The replica manager: this node's partition groups.
//!
//! It follows the controller's metadata: for every partition whose replica
//! list names this node it opens a [`ReplicatedPartition`] over the local
//! partition log, serves the group's Raft calls on the transport
//! ([`GroupId::Partition`]) and forms the group with the partition's
//! replicas; when the topic is deleted it stops the groups first.
//!
//! Leadership follows the replica lists: a new group's first replica (its
//! preferred one) takes the leadership once the group formed, and every
//! `leader_rebalance_interval_ms` each node takes back the leadership of
//! its preferred partitions led elsewhere, when more than
//! `leader_imbalance_percent` of them are (as Kafka's automatic preferred
//! leader election): after a node restarted, its partitions' leaders stay
//! on the nodes that took over only until the next look.
//!
//! It is also the cluster's [`Leadership`]: brokers from the cluster file,
//! and per partition the leader and term from the partition group's Raft
//! metrics, the replicas from the metadata, the in-sync replicas from the
//! leader's replication progress.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use openraft::BasicNode;
use parking_lot::RwLock;

use super::controller::observer::TopicStoreObserver;
use super::controller::state::Metadata;
use super::controller::state::ReportedLeader;
use super::controller::{Cluster, Command, MetadataEvent, MetadataObserver, TopicMeta};
use super::partition::{PartitionRaft, ReplicatedPartition, ReplicationConfig};
use super::transport::GroupId;
use super::transport::raft::{Network, RaftHandler};
use crate::service::Service;
use crate::service::leadership::{
    BrokerInfo, ClusterTopic, Leadership, PartitionLeadership, SingleNode,
};

/// How long a replica other than the first of a partition's list waits to
/// be contacted by the group before it forms the group itself.
const INITIALIZE_FALLBACK: Duration = Duration::from_secs(2);

/// How long a replica whose Raft core stopped on its own stays closed
/// before it is opened again, the first time.
const REOPEN_DELAY: Duration = Duration::from_secs(1);

/// The longest a replica whose core keeps stopping (a full disk under it)
/// waits before it is opened again: the delay doubles from
/// [`REOPEN_DELAY`] at each stop within [`REOPEN_RESET`] of the previous
/// reopen. Each reopened follower calls an election once its timeout
/// passes without a leader, and one reopened every second kept raising
/// the partition's term (and its leader epoch, which clients follow) while
/// filling the log with errors.
const REOPEN_DELAY_MAX: Duration = Duration::from_secs(30);

/// A replica that ran this long since it was last reopened starts again
/// from [`REOPEN_DELAY`].
const REOPEN_RESET: Duration = Duration::from_secs(120);

/// How many preferred-replica elections a node runs at once when it takes
/// its partitions' leadership back: each interrupts its partition's produce
/// for about an election timeout.
const REBALANCE_PARALLEL: usize = 4;

/// How long the broker's shutdown waits for each partition group to stop
/// (they stop together). A group's core can wait on calls to a peer that
/// does not answer (stopped, not dead); what it would write after is
/// refused by its closed log.
const GROUP_SHUTDOWN_PATIENCE: Duration = Duration::from_secs(5);

/// How long a node tries to take one partition's leadership back.
const TAKE_LEADERSHIP_PATIENCE: Duration = Duration::from_secs(10);

/// A preferred election asked for ([`Command::ElectPreferred`]) longer ago
/// than this when a node applies it is not acted on.
const ELECTION_REQUEST_MAX_AGE: Duration = Duration::from_secs(60);

/// One hosted replica.
struct Hosted {
    topic_id: u64,
    replica: Arc<ReplicatedPartition>,
}

/// This node's partition groups, keyed by (topic, partition).
pub struct ReplicaManager {
    local: u64,
    service: Weak<Service>,
    /// This node's bound listener addresses (recorded by `main`).
    local_addrs: Arc<SingleNode>,
    cluster: OnceLock<Arc<Cluster>>,
    /// By topic, then partition: looked up by `&str` without allocating.
    hosted: RwLock<HashMap<String, HashMap<u32, Hosted>>>,
    /// Opening and closing are serialized: a partition's files are never
    /// opened by two groups at once.
    changing: tokio::sync::Mutex<()>,
    runtime: tokio::runtime::Handle,
    config: ReplicationConfig,
    /// The group-state partitions loaded here, with their terms.
    pub(crate) group_loads: super::group_state::Loaded,
    /// Replicas reopened after their core stopped: when last, and the
    /// delay used then (see [`REOPEN_DELAY_MAX`]).
    reopened: parking_lot::Mutex<HashMap<(String, u32), (tokio::time::Instant, Duration)>>,
    /// Preferred-replica elections running here, at most
    /// [`REBALANCE_PARALLEL`] at once.
    elections: Arc<tokio::sync::Semaphore>,
    /// Set when the broker shuts down: nothing is opened, reopened or
    /// rebalanced any more.
    closing: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for ReplicaManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaManager")
            .field("local", &self.local)
            .field(
                "hosted",
                &self.hosted.read().values().map(HashMap::len).sum::<usize>(),
            )
            .finish_non_exhaustive()
    }
}

impl ReplicaManager {
    /// The manager of node `local`'s replicas in `service`'s topic store;
    /// groups run on `runtime`. It opens nothing until
    /// [`ReplicaManager::attach`].
    pub fn new(
        local: u64,
        service: Weak<Service>,
        local_addrs: Arc<SingleNode>,
        runtime: tokio::runtime::Handle,
        config: ReplicationConfig,
    ) -> Arc<Self> {
        Arc::new(ReplicaManager {
            local,
            service,
            local_addrs,
            cluster: OnceLock::new(),
            hosted: RwLock::new(HashMap::new()),
            changing: tokio::sync::Mutex::new(()),
            runtime,
            config,
            group_loads: super::group_state::Loaded::default(),
            reopened: parking_lot::Mutex::new(HashMap::new()),
            elections: Arc::new(tokio::sync::Semaphore::new(REBALANCE_PARALLEL)),
            closing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Connects the manager to the started cluster and opens the replicas
    /// of every hosted partition the metadata lists now. Later creations
    /// and deletions arrive through [`ReplicaObserver`].
    ///
    /// A restarted node applies the controller log again without telling
    /// the observer what it already observed, so the manager also opens
    /// what is missing each time an applied entry changes which partitions
    /// exist ([`hosting_shape`]: a topic created or deleted, partitions
    /// added); entries that change none (leader reports, settings, record
    /// deletions, blanks) cost one comparison of the shape.
    ///
    /// Nothing is opened while the metadata is older than the topic store
    /// ([`Cluster::caught_up`]: right after a restart, until the entries
    /// after the last controller snapshot are applied again): that
    /// metadata may list topics deleted since, which opening would create
    /// again in the store. The first look follows as soon as it has caught
    /// up.
    pub async fn attach(self: &Arc<Self>, cluster: Arc<Cluster>) {
        let _ = self.cluster.set(Arc::clone(&cluster));
        let mut applied = cluster.applied();
        // Read before the scan: a change made meanwhile is looked at
        // twice, never missed (opening is idempotent).
        let mut seen = cluster.with_metadata(hosting_shape);
        let mut caught_up = cluster.caught_up();
        if caught_up {
            self.open_missing(&cluster, 0).await;
        } else {
            tracing::info!(
                "the controller metadata is older than the topic store; opening partitions once it has caught up"
            );
        }
        if self.config.leader_rebalance_interval_ms > 0 {
            self.runtime.spawn(rebalance_leaders(
                Arc::downgrade(self),
                Duration::from_millis(self.config.leader_rebalance_interval_ms),
            ));
        }
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            while applied.changed().await.is_ok() {
                let Some(m) = me.upgrade() else { return };
                if !cluster.caught_up() {
                    continue;
                }
                let now = cluster.with_metadata(hosting_shape);
                if now != seen || !caught_up {
                    // Partitions added to an older topic are missing as
                    // much as a new topic's: every topic is looked at.
                    m.open_missing(&cluster, 0).await;
                    seen = now;
                    caught_up = true;
                }
            }
        });
    }

    /// Opens the hosted partitions not open yet of the topics whose id is
    /// at least `since`.
    async fn open_missing(self: &Arc<Self>, cluster: &Cluster, since: u64) {
        let missing: Vec<TopicMeta> = cluster.with_metadata(|m| {
            let hosted = self.hosted.read();
            topics_to_open(m, since, self.local, |name, p| {
                hosted.get(name).and_then(|t| t.get(&p)).map(|h| h.topic_id)
            })
        });
        for t in missing {
            self.open_topic(t).await;
        }
    }

    /// The replica of a hosted partition, once its group is open.
    pub fn replica(&self, topic: &str, partition: u32) -> Option<Arc<ReplicatedPartition>> {
        self.hosted
            .read()
            .get(topic)
            .and_then(|t| t.get(&partition))
            .map(|h| Arc::clone(&h.replica))
    }

    /// Every open replica.
    pub fn replicas(&self) -> Vec<Arc<ReplicatedPartition>> {
        self.hosted
            .read()
            .values()
            .flat_map(HashMap::values)
            .map(|h| Arc::clone(&h.replica))
            .collect()
    }

    /// The open replicas whose records the metadata says were deleted
    /// past their log start ([`Command::DeleteRecords`]), each with the
    /// offset to raise its log start to: the deletion's offset, or the
    /// replica's high watermark while that is below it (raised further at
    /// a later pass).
    pub fn log_starts_to_raise(&self) -> Vec<(Arc<ReplicatedPartition>, u64)> {
        let Some(cluster) = self.cluster.get() else {
            return Vec::new();
        };
        let floors = cluster.with_metadata(|m| m.log_starts.clone());
        if floors.is_empty() {
            return Vec::new();
        }
        let hosted = self.hosted.read();
        let mut out = Vec::new();
        for topic in hosted.values() {
            for (&partition, h) in topic {
                let Some(&floor) = floors.get(&h.topic_id).and_then(|p| p.get(&partition)) else {
                    continue;
                };
                let log = &h.replica.partition().log;
                let to = floor.min(log.high_watermark());
                if to > log.log_start_offset() {
                    out.push((Arc::clone(&h.replica), to));
                }
            }
        }
        out
    }

    /// The hosted replicas whose leadership this node should take back
    /// now: none unless more than `leader_imbalance_percent` of the
    /// partitions it is the preferred replica of (first of a replica list
    /// of two or more) are led by other nodes; then those of them whose
    /// leader last reported this node in sync (a replica out of sync would
    /// lose the election, or win it without the latest records' majority).
    fn leaders_to_take_back(&self) -> Vec<Arc<ReplicatedPartition>> {
        let Some(cluster) = self.cluster.get() else {
            return Vec::new();
        };
        let percent = u64::from(self.config.leader_imbalance_percent);
        cluster.with_metadata(|m| {
            let hosted = self.hosted.read();
            let (mut preferred, mut elsewhere) = (0u64, 0u64);
            let mut take = Vec::new();
            for (name, parts) in hosted.iter() {
                let Some(t) = m.topics.get(name) else {
                    continue;
                };
                for (&partition, h) in parts {
                    let Some(replicas) = t.replicas.get(partition as usize) else {
                        continue;
                    };
                    if h.topic_id != t.topic_id
                        || replicas.len() < 2
                        || replicas.first() != Some(&self.local)
                    {
                        continue;
                    }
                    preferred += 1;
                    if h.replica.is_leader() {
                        continue;
                    }
                    elsewhere += 1;
                    let in_sync = m
                        .leaders
                        .get(&t.topic_id)
                        .and_then(|p| p.get(&partition))
                        .is_some_and(|r| r.leader != self.local && r.isr.contains(&self.local));
                    if in_sync {
                        take.push(Arc::clone(&h.replica));
                    }
                }
            }
            if elsewhere * 100 <= percent * preferred {
                take.clear();
            }
            take
        })
    }

    /// Takes the leadership of the partitions of `partitions` (topic id,
    /// partition) this node is the preferred replica of and does not lead
    /// ([`Command::ElectPreferred`]), in the background; nothing when the
    /// request is more than [`ELECTION_REQUEST_MAX_AGE`] old (this node
    /// applied it late, after an absence).
    fn elect_preferred(&self, partitions: &[(u64, u32)], asked_at_ms: u64) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        if now_ms.saturating_sub(asked_at_ms) > ELECTION_REQUEST_MAX_AGE.as_millis() as u64 {
            return;
        }
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let mine: Vec<Arc<ReplicatedPartition>> = cluster.with_metadata(|m| {
            let names: HashMap<u64, &TopicMeta> =
                m.topics.values().map(|t| (t.topic_id, t)).collect();
            let hosted = self.hosted.read();
            partitions
                .iter()
                .filter_map(|&(topic_id, partition)| {
                    let t = names.get(&topic_id)?;
                    let replicas = t.replicas.get(partition as usize)?;
                    if replicas.first() != Some(&self.local) {
                        return None;
                    }
                    let h = hosted.get(&t.name)?.get(&partition)?;
                    (h.topic_id == topic_id && !h.replica.is_leader())
                        .then(|| Arc::clone(&h.replica))
                })
                .collect()
        });
        for replica in mine {
            let raft = replica.raft().clone();
            let (local, permits) = (self.local, Arc::clone(&self.elections));
            self.runtime.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                take_leadership(&raft, local, TAKE_LEADERSHIP_PATIENCE).await;
            });
        }
    }

    /// Opens the groups of `t`'s partitions hosted here (those not open
    /// yet). Failures are logged: the partition stays without a leader
    /// here (`LeaderNotAvailable`). For a new group (no Raft log yet), the
    /// preferred replica (the first listed) takes the leadership once the
    /// group has formed, so a topic's leaders spread over the nodes as its
    /// replica lists do.
    async fn open_topic(self: &Arc<Self>, t: TopicMeta) {
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let Some(svc) = self.service.upgrade() else {
            return;
        };
        let _guard = self.changing.lock().await;
        if self.is_closing() {
            return;
        }
        // The caller's copy of the metadata may be older than what is
        // applied now: a topic deleted since (or deleted and created again)
        // is not opened, nor created again in the store. A deletion applied
        // from here on closes the groups only after this lock is released,
        // and removes the topic from the store after that.
        let current = cluster.with_metadata(|m| {
            m.topics
                .get(&t.name)
                .filter(|now| now.topic_id == t.topic_id)
                .cloned()
        });
        let Some(t) = current else {
            tracing::debug!(topic = %t.name, "not opening a topic the metadata no longer lists");
            return;
        };
        // The topic store may lag the metadata: a change this node could
        // not make when it was committed (its files could not be created)
        // is tried again here.
        let lags = svc
            .topics
            .topic(&t.name)
            .is_none_or(|held| held.partition_count() < t.replicas.len() as u32);
        if lags {
            let (svc, local, meta) = (Arc::clone(&svc), self.local, t.clone());
            let held = tokio::task::spawn_blocking(move || {
                crate::replication::controller::observer::hold(&svc, local, &meta)
            });
            if let Err(e) = held.await {
                tracing::error!(topic = %t.name, error = %e, "could not follow the metadata of a hosted topic");
            }
        }
        for (index, replicas) in t.replicas.iter().enumerate() {
            let partition = index as u32;
            if !replicas.contains(&self.local) {
                continue;
            }
            // A shutdown waits for this lock: it must not wait for the
            // rest of a large topic to open first (a node asked to stop
            // while opening the last hundred of a thousand partitions on
            // a loaded machine took minutes).
            if self.is_closing() {
                return;
            }
            let key = (t.name.clone(), partition);
            if self
                .hosted
                .read()
                .get(&key.0)
                .and_then(|p| p.get(&key.1))
                .is_some_and(|h| h.topic_id == t.topic_id)
            {
                continue;
            }
            let part = match svc.topics.partition(&t.name, partition) {
                Ok(p) => p,
                Err(code) => {
                    tracing::error!(topic = %t.name, partition, %code, "hosted partition has no local log");
                    continue;
                }
            };
            let group = GroupId::Partition {
                topic_id: t.topic_id,
                partition,
            };
            let network = Network::<PartitionRaft>::new(Arc::clone(&cluster.transport), group);
            // A replica that failed to open before is tried again with its
            // log back online (what took it offline was only that).
            part.log.replica_opened();
            let (replica, report) = match ReplicatedPartition::open(
                Arc::clone(&part),
                self.local,
                self.config.clone(),
                network,
            )
            .await
            {
                Ok((r, report)) => (Arc::new(r), report),
                Err(e) => {
                    tracing::error!(topic = %t.name, partition, error = %e, "could not open partition replica");
                    part.log.replica_unopened(&e.to_string());
                    continue;
                }
            };
            // Before any peer can reach it: whether the group is new here
            // (no log entry and no vote stored). Asked of the Raft core,
            // which has read the storage: its metrics still hold their
            // initial values right after the open.
            let fresh = match replica.raft().is_initialized().await {
                Ok(initialized) => !initialized,
                Err(e) => {
                    tracing::error!(topic = %t.name, partition, error = %e, "partition group stopped at open");
                    continue;
                }
            };
            // `fresh`: formed from nothing here (a new partition), else
            // going on from what its files hold.
            tracing::info!(topic = %t.name, partition, fresh, ?report, "opened partition replica");
            // Entries are refused while the disk is nearly full
            // (`free_space`): a write that fails would stop the core.
            let mut handler =
                RaftHandler::new(replica.raft().clone()).with_pre_vote(Arc::clone(replica.heard()));
            if let Some(svc) = self.service.upgrade() {
                handler = handler.with_free_space(Arc::clone(&svc.free_space));
            }
            cluster
                .transport
                .registry
                .register(group, Arc::new(handler));
            let members: BTreeMap<u64, BasicNode> = cluster
                .config
                .nodes
                .iter()
                .filter(|n| replicas.contains(&n.id))
                .map(|n| (n.id, BasicNode::new(n.raft.to_string())))
                .collect();
            if !fresh {
                // A group with a log here formed before (openraft refuses
                // to initialize it again): it elects from what it holds.
            } else if replicas.first() == Some(&self.local) {
                if let Err(e) = replica.initialize(members).await {
                    form_failed(&replica, &t.name, partition, &e);
                }
            } else {
                // The first replica of the list forms the group; the others
                // wait to be contacted, so that one election, not several,
                // follows the creation. Should the first replica be down,
                // they form it themselves after a while (the same
                // membership: safe, as when every replica initializes).
                let replica = Arc::clone(&replica);
                let topic = t.name.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(INITIALIZE_FALLBACK).await;
                    let untouched = {
                        let m = replica.raft().metrics();
                        let m = m.borrow();
                        m.last_log_index.is_none() && m.current_leader.is_none()
                    };
                    if untouched {
                        tracing::info!(%topic, partition, "the first replica did not form the partition group; forming it");
                        if let Err(e) = replica.initialize(members).await {
                            form_failed(&replica, &topic, partition, &e);
                        }
                    }
                });
            }
            if fresh && replicas.first() == Some(&self.local) && replicas.len() > 1 {
                self.runtime
                    .spawn(take_preferred_leadership(Arc::downgrade(&replica)));
            }
            self.runtime.spawn(report_leadership(
                Arc::clone(cluster),
                Arc::downgrade(self),
                t.name.clone(),
                Arc::downgrade(&replica),
                t.topic_id,
                partition,
            ));
            let old = self.hosted.write().entry(key.0).or_default().insert(
                key.1,
                Hosted {
                    topic_id: t.topic_id,
                    replica,
                },
            );
            if let Some(old) = old {
                let _ = old.replica.shutdown().await;
            }
        }
    }

    /// Opens again, after [`REOPEN_DELAY`], the replica `dead` of
    /// (`topic`, `partition`) whose Raft core stopped on its own (a panic,
    /// a storage error that left the log writable): the group is shut
    /// down and opened afresh from its files, as after a restart of the
    /// node, while the other replicas carry on without it. A log taken
    /// offline by a failed write or fsync refuses writes until the broker
    /// restarts: that replica stays stopped, said at `error`. Nothing happens
    /// if the partition was closed or opened anew meanwhile. Should the new
    /// core stop too, its own leadership task calls this again: one attempt
    /// per delay, never a busy loop.
    ///
    /// Boxed: it opens the replica, which spawns the leadership task that
    /// calls it (a future cannot contain itself).
    fn reopen_stopped(
        self: Arc<Self>,
        topic: String,
        partition: u32,
        dead: Weak<ReplicatedPartition>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
        Box::pin(self.reopen_stopped_inner(topic, partition, dead))
    }

    async fn reopen_stopped_inner(
        self: Arc<Self>,
        topic: String,
        partition: u32,
        dead: Weak<ReplicatedPartition>,
    ) {
        let (offline, cause) = dead.upgrade().map_or((false, String::new()), |r| {
            (r.partition().log.is_offline(), r.stop_cause())
        });
        if offline {
            // A failed write or fsync: the log refuses writes until it is
            // opened again from its files, at the broker's next start.
            tracing::error!(%topic, partition, %cause, "the partition's Raft core stopped and its log is offline after a failed write; the replica stays stopped until the broker restarts");
            return;
        }
        let delay = self.reopen_delay(&topic, partition);
        tracing::error!(%topic, partition, %cause, delay_ms = delay.as_millis() as u64, "the partition's Raft core stopped; opening the replica again");
        tokio::time::sleep(delay).await;
        let Some(cluster) = self.cluster.get() else {
            return;
        };
        let old = {
            let _guard = self.changing.lock().await;
            if self.is_closing() {
                return;
            }
            let Some(dead) = dead.upgrade() else { return };
            let old = {
                let mut hosted = self.hosted.write();
                let Some(t) = hosted.get_mut(&topic) else {
                    return;
                };
                if !t
                    .get(&partition)
                    .is_some_and(|h| Arc::ptr_eq(&h.replica, &dead))
                {
                    return;
                }
                t.remove(&partition)
            };
            if let Some(h) = &old {
                cluster.transport.registry.unregister(GroupId::Partition {
                    topic_id: h.topic_id,
                    partition,
                });
                let _ = h.replica.shutdown().await;
            }
            old
        };
        drop(old);
        let meta = cluster.with_metadata(|m| m.topics.get(&topic).cloned());
        if let Some(meta) = meta {
            self.open_topic(meta).await;
        }
    }

    /// The delay before (`topic`, `partition`) is opened again: doubled
    /// from the last one if that reopen was less than [`REOPEN_RESET`] ago,
    /// up to [`REOPEN_DELAY_MAX`]; else [`REOPEN_DELAY`].
    fn reopen_delay(&self, topic: &str, partition: u32) -> Duration {
        let now = tokio::time::Instant::now();
        let mut reopened = self.reopened.lock();
        reopened.retain(|_, (at, _)| now.saturating_duration_since(*at) < REOPEN_RESET);
        let key = (topic.to_owned(), partition);
        let delay = match reopened.get(&key) {
            Some((_, last)) => (*last * 2).min(REOPEN_DELAY_MAX),
            None => REOPEN_DELAY,
        };
        reopened.insert(key, (now + delay, delay));
        delay
    }

    /// Stops the groups of topic `name` and stops serving their calls.
    async fn close_topic(&self, name: &str) {
        let _guard = self.changing.lock().await;
        let gone = self.hosted.write().remove(name).unwrap_or_default();
        for (partition, h) in gone {
            if let Some(c) = self.cluster.get() {
                c.transport.registry.unregister(GroupId::Partition {
                    topic_id: h.topic_id,
                    partition,
                });
            }
            if let Err(e) = h.replica.shutdown().await {
                tracing::warn!(topic = name, partition, error = %e, "stopping a partition group");
            }
        }
    }

    /// Whether the broker is shutting down ([`ReplicaManager::shutdown`]).
    fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stops every group (broker shutdown), before the logs are closed:
    /// nothing is opened, reopened or rebalanced from then on, and the
    /// groups stop all at once, each given [`GROUP_SHUTDOWN_PATIENCE`]. One
    /// after another, a node of a few hundred partitions in an election
    /// storm on a saturated machine took minutes. A group that does not
    /// stop in time is left running: its log refuses writes once it is
    /// closed, and a log that still has a write in flight is closed only
    /// after it.
    pub async fn shutdown(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::Release);
        let _guard = self.changing.lock().await;
        let gone: Vec<(String, u32, Hosted)> = std::mem::take(&mut *self.hosted.write())
            .into_iter()
            .flat_map(|(name, t)| t.into_iter().map(move |(p, h)| (name.clone(), p, h)))
            .collect();
        if let Some(c) = self.cluster.get() {
            for (_, partition, h) in &gone {
                c.transport.registry.unregister(GroupId::Partition {
                    topic_id: h.topic_id,
                    partition: *partition,
                });
            }
        }
        let stops = gone.iter().map(|(name, partition, h)| async move {
            match tokio::time::timeout(GROUP_SHUTDOWN_PATIENCE, h.replica.shutdown()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(topic = %name, partition, error = %e, "stopping a partition group");
                }
                Err(_) => {
                    tracing::warn!(topic = %name, partition, patience_ms = GROUP_SHUTDOWN_PATIENCE.as_millis() as u64, "a partition group did not stop in time; closing its log anyway");
                }
            }
        });
        futures::future::join_all(stops).await;
    }
}

impl Leadership for ReplicaManager {
    fn local_node(&self) -> u64 {
        self.local
    }

    fn unreachable(&self) -> Vec<u64> {
        self.cluster.get().map_or_else(Vec::new, |c| {
            c.transport
                .unreachable(super::controller::BROKER_SESSION_TIMEOUT)
        })
    }

    fn cluster_id(&self) -> Option<String> {
        self.cluster
            .get()
            .map(|c| c.transport.cluster_id().to_owned())
    }

    /// Every node of the cluster file; this node with its bound addresses.
    fn brokers(&self) -> Vec<BrokerInfo> {
        let Some(c) = self.cluster.get() else {
            return Vec::new();
        };
        let me = self.local_addrs.brokers().into_iter().next();
        c.config
            .nodes
            .iter()
            .map(|n| match &me {
                Some(me) if n.id == self.local => BrokerInfo {
                    id: n.id,
                    listen: me.listen.clone(),
                    kafka: me.kafka.clone().or_else(|| n.kafka.map(|k| k.to_string())),
                },
                _ => BrokerInfo {
                    id: n.id,
                    listen: n.listen.to_string(),
                    kafka: n.kafka.map(|k| k.to_string()),
                },
            })
            .collect()
    }

    /// A partition of a topic in the metadata: its group's view when this
    /// node hosts it (a follower, which does not know the others' progress,
    /// gives the in-sync set the leader it follows last reported to the
    /// controller for its current term, or the leader alone before that
    /// report arrives); the controller's view (what the group's leader last
    /// reported, which may lag) when this node does not host it or its
    /// group is not open yet; no leader when none was reported. A replica here whose Raft core stopped counts as not
    /// open, and this node is never named from the controller's view: a
    /// report of its own leadership is stale. No leader (and no replicas)
    /// for a partition the controller's metadata as applied here does not
    /// list, or before this node has joined its cluster: a node restarted
    /// replays its metadata from the controller's log only once the
    /// controller leader tells it what is committed, and meanwhile it must
    /// not pass for the leader of the partitions on its disk (Metadata by
    /// topic name finds those). Never `None`: a cluster node never leads a
    /// partition on its own authority.
    fn partition(&self, topic: &str, partition: u32) -> Option<PartitionLeadership> {
        let placed = self.cluster.get().and_then(|c| {
            c.with_metadata(|m| {
                let t = m.topics.get(topic)?;
                let replicas = t.replicas.get(partition as usize)?.clone();
                Some((replicas, m.reported_leader(t, partition).cloned()))
            })
        });
        let Some((replicas, reported)) = placed else {
            return Some(PartitionLeadership {
                leader: None,
                leader_epoch: 0,
                replicas: Vec::new(),
                isr: Vec::new(),
            });
        };
        let reported = reported.filter(|r| r.leader != self.local);
        let Some(r) = self.replica(topic, partition).filter(|r| !r.core_stopped()) else {
            return Some(match reported {
                Some(rep) => PartitionLeadership {
                    leader: Some(rep.leader),
                    leader_epoch: rep.epoch,
                    replicas,
                    isr: rep.isr,
                },
                None => PartitionLeadership {
                    leader: None,
                    leader_epoch: 0,
                    replicas,
                    isr: Vec::new(),
                },
            });
        };
        let leader = r.leader();
        let epoch = r.leader_epoch();
        let isr = if leader == Some(self.local) {
            r.in_sync().into_iter().collect()
        } else {
            match reported {
                Some(rep) if Some(rep.leader) == leader && rep.epoch == epoch => rep.isr,
                _ => leader.into_iter().collect(),
            }
        };
        Some(PartitionLeadership {
            leader,
            leader_epoch: epoch,
            replicas,
            isr,
        })
    }

    /// [`Leadership::partition`]'s leader without cloning the replica and
    /// ISR lists: the produce and fetch check of every partition.
    fn leader(&self, topic: &str, partition: u32) -> Option<Option<u64>> {
        // Not in the cluster yet (see `partition`): nothing served here. A
        // topic the metadata does not list is answered by the topic store
        // (unknown, or what is on disk).
        let Some(c) = self.cluster.get() else {
            return Some(None);
        };
        let reported = c.with_metadata(|m| {
            let t = m.topics.get(topic)?;
            t.replicas.get(partition as usize)?;
            Some(m.reported_leader(t, partition).map(|r| r.leader))
        })?;
        Some(match self.replica(topic, partition) {
            // One metrics read on the hot path; the stop is looked at only
            // when the replica names no leader.
            Some(r) => match r.leader() {
                None if r.core_stopped() => reported.filter(|&l| l != self.local),
                leader => leader,
            },
            None => reported.filter(|&l| l != self.local),
        })
    }

    /// Every topic of the controller's metadata as applied on this node.
    fn topics(&self) -> Option<Vec<ClusterTopic>> {
        let c = self.cluster.get()?;
        Some(c.with_metadata(|m| {
            m.topics
                .values()
                .map(|t| ClusterTopic {
                    name: t.name.clone(),
                    id: t.kafka_id(),
                    partitions: t.replicas.len() as u32,
                    config: t.config.clone(),
                })
                .collect()
        }))
    }
}

/// What decides which partitions exist: the next topic id, the number of
/// topics and their partitions in all. A creation raises the id, a
/// deletion lowers the number of topics (which nothing but a creation
/// raises again), an addition of partitions raises the total alone; so
/// any of them, or any mix, changes the shape.
fn hosting_shape(m: &Metadata) -> (u64, usize, usize) {
    (
        m.next_topic_id,
        m.topics.len(),
        m.topics.values().map(|t| t.replicas.len()).sum(),
    )
}

/// The topics of `m` created since `next_topic_id` was `since` (their id
/// is at least `since`: ids are given in increasing order) with a
/// partition hosted on node `local` whose open group (`open(name,
/// partition)` gives its topic id) is missing or belongs to an older topic
/// of that name.
fn topics_to_open(
    m: &Metadata,
    since: u64,
    local: u64,
    open: impl Fn(&str, u32) -> Option<u64>,
) -> Vec<TopicMeta> {
    if m.next_topic_id <= since {
        return Vec::new();
    }
    m.topics
        .values()
        .filter(|t| t.topic_id >= since)
        .filter(|t| {
            t.replicas
                .iter()
                .enumerate()
                .any(|(p, r)| r.contains(&local) && open(&t.name, p as u32) != Some(t.topic_id))
        })
        .cloned()
        .collect()
}

/// Once `replica`'s new group has a leader other than this node and this
/// node has applied all it holds, starts an election here (the preferred
/// replica of a new partition); tries again while another node leads, for
/// ten seconds at most.
async fn take_preferred_leadership(replica: Weak<ReplicatedPartition>) {
    let Some(r) = replica.upgrade() else { return };
    let raft = r.raft().clone();
    let local = r.node_id();
    drop(r);
    take_leadership(&raft, local, TAKE_LEADERSHIP_PATIENCE).await;
}

/// Has node `local` take the leadership of `raft`'s group by calling an
/// election once another node leads it and this replica has applied all it
/// holds (past a heartbeat more: what the leader last sent), again after
/// each lost one, for at most `patience`. Returns whether it leads at the
/// end. An election with a lease of the old leader still running at the
/// other replicas is refused, but its higher term makes the old leader step
/// down at its next call here; the election after that is this replica's
/// to win (it is as up to date as any) unless another times out first.
async fn take_leadership(
    raft: &openraft::Raft<PartitionRaft>,
    local: u64,
    patience: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + patience;
    let mut metrics = raft.metrics();
    loop {
        let ready = metrics.wait_for(|m| {
            m.current_leader == Some(local)
                || (m.current_leader.is_some()
                    && m.last_log_index.is_some()
                    && m.last_applied.map(|l| l.index) == m.last_log_index)
        });
        match tokio::time::timeout_at(deadline, ready).await {
            Ok(Ok(m)) if m.current_leader == Some(local) => return true,
            Ok(Ok(_)) => {}
            _ => return false,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Err(e) = raft.trigger().elect().await {
            tracing::debug!(error = %e, "could not start the preferred replica's election");
            return false;
        }
        let led = metrics.wait_for(|m| m.current_leader.is_some());
        let _ = tokio::time::timeout(Duration::from_secs(1), led).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        if raft.metrics().borrow().current_leader == Some(local) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
    }
}

/// Every `every`, takes back the leadership of the partitions `manager`'s
/// node is the preferred replica of when too many are led elsewhere
/// ([`ReplicaManager::leaders_to_take_back`]), [`REBALANCE_PARALLEL`] at a
/// time (with the elections asked for meanwhile). Ends with the manager.
async fn rebalance_leaders(manager: Weak<ReplicaManager>, every: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(m) = manager.upgrade() else { return };
        if m.is_closing() {
            return;
        }
        let take = m.leaders_to_take_back();
        let (local, permits) = (m.local, Arc::clone(&m.elections));
        drop(m);
        if take.is_empty() {
            continue;
        }
        let wanted = take.len();
        tracing::info!(
            partitions = wanted,
            "taking back the leadership of preferred partitions"
        );
        let mut running = tokio::task::JoinSet::new();
        for replica in take {
            let raft = replica.raft().clone();
            drop(replica);
            let permits = Arc::clone(&permits);
            running.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return false;
                };
                take_leadership(&raft, local, TAKE_LEADERSHIP_PATIENCE).await
            });
        }
        let mut taken = 0usize;
        while let Some(done) = running.join_next().await {
            if let Ok(true) = done {
                taken += 1;
            }
        }
        tracing::info!(
            taken,
            wanted,
            "took back the leadership of preferred partitions"
        );
    }
}

/// Logs a failed formation of `replica`'s group: an error, unless the
/// group was shut down meanwhile (its topic deleted while it formed).
fn form_failed(
    replica: &ReplicatedPartition,
    topic: &str,
    partition: u32,
    e: &crate::replication::partition::ReplicationError,
) {
    if replica.was_shut_down() {
        tracing::debug!(topic, partition, error = %e, "partition group shut down while forming");
    } else {
        tracing::error!(topic, partition, error = %e, "could not form the partition group");
    }
}

/// Reports `replica`'s leadership to the controller whenever this node
/// leads the group in a new term (at once), or the replicas in sync with it
/// change (at most once a second): so that nodes without a replica can
/// name the leader. Ends when the group stops; when its Raft core stopped
/// on its own, has `manager` open the replica again
/// ([`ReplicaManager::reopen_stopped`]). A failed report is tried again a
/// second later. When this node stops leading the group, it wakes the
/// fetches parked on the partition, which then answer that another node
/// leads it.
async fn report_leadership(
    cluster: Arc<Cluster>,
    manager: Weak<ReplicaManager>,
    topic: String,
    replica: Weak<ReplicatedPartition>,
    topic_id: u64,
    partition: u32,
) {
    let Some(r) = replica.upgrade() else { return };
    // The server metrics (leader, state, vote) change only with the
    // leadership; the full metrics change at every answered heartbeat, and
    // waking on those cost each idle partition's leader a wake-up and a
    // copy of its metrics per heartbeat.
    let mut server = r.raft().server_metrics();
    drop(r);
    let mut reported: Option<ReportedLeader> = None;
    let mut last = Instant::now();
    let mut led = false;
    loop {
        let Some(r) = replica.upgrade() else { return };
        // From the server metrics that woke this task: the full metrics
        // are published just after them and may not show the change yet.
        let (leads, term) = {
            let s = server.borrow_and_update();
            (
                s.state == openraft::ServerState::Leader,
                s.vote.leader_id().get_term(),
            )
        };
        let current = (leads && !r.was_shut_down() && !r.core_stopped()).then(|| ReportedLeader {
            leader: r.node_id(),
            epoch: term,
            isr: r.in_sync().into_iter().collect(),
        });
        if led && current.is_none() {
            // No longer the leader: the fetches parked here answer now
            // (with the new leader's whereabouts), not at their deadlines.
            r.partition().wake_all();
            tracing::info!(%topic, partition, term, "no longer leading the partition");
        }
        if !led && current.is_some() {
            tracing::info!(%topic, partition, epoch = term, "leading the partition");
            // Just elected: records deleted through the controller that
            // this replica's maintenance pass has not caught up with yet
            // are hidden now, not at that pass.
            let floor = cluster.with_metadata(|m| m.log_start(topic_id, partition));
            let log = Arc::clone(&r.partition().log);
            let to = floor.min(log.high_watermark());
            if to > log.log_start_offset() {
                let raised = tokio::task::spawn_blocking(move || log.raise_log_start(to)).await;
                if let Ok(Err(e)) = raised {
                    tracing::warn!(topic_id, partition, error = %e, "could not raise the log start to deleted records");
                }
            }
        }
        led = current.is_some();
        drop(r);
        let due = current
            .filter(|c| reported.as_ref() != Some(c))
            .filter(|c| {
                // A new leader or term is reported at once; a change of the
                // in-sync set alone at most once a second.
                let isr_only = reported
                    .as_ref()
                    .is_some_and(|r| r.leader == c.leader && r.epoch == c.epoch);
                !isr_only || last.elapsed() >= Duration::from_secs(1)
            });
        if let Some(now) = due {
            let cmd = Command::ReportLeader {
                topic_id,
                partition,
                leader: now.clone(),
            };
            last = Instant::now();
            match cluster.propose(cmd).await {
                Ok(o) if o.code.is_ok() => reported = Some(now),
                Ok(o) => {
                    tracing::debug!(topic_id, partition, code = %o.code, "leader report refused");
                    reported = Some(now);
                }
                Err(e) => {
                    tracing::debug!(topic_id, partition, error = %e, "could not report the leader");
                }
            }
        }
        // Woken by a change of the group's leader, state or vote, or each
        // second (a change of the in-sync set alone is reported at most
        // once a second anyway).
        let woken = tokio::time::timeout(Duration::from_secs(1), server.changed()).await;
        if let Ok(Err(_)) = woken {
            // The group stopped: shut down, or its core ended on its own.
            if let (Some(m), Some(r)) = (manager.upgrade(), replica.upgrade()) {
                if r.core_stopped() {
                    drop(r);
                    m.reopen_stopped(topic, partition, replica).await;
                }
            }
            return;
        }
    }
}

/// The metadata observer of cluster mode: the topic store follows the
/// metadata ([`TopicStoreObserver`]), then the manager opens the hosted
/// partitions' groups (of a created topic, or the new ones of a topic
/// whose partitions were added); a deleted topic's groups stop before its
/// files go.
pub struct ReplicaObserver {
    topics: TopicStoreObserver,
    manager: Arc<ReplicaManager>,
}

impl ReplicaObserver {
    /// Applies changes to `service`'s topics and `manager`'s groups.
    pub fn new(service: Weak<Service>, manager: Arc<ReplicaManager>) -> Self {
        ReplicaObserver {
            topics: TopicStoreObserver::new(service),
            manager,
        }
    }
}

impl MetadataObserver for ReplicaObserver {
    fn changed(&self, local: u64, event: &MetadataEvent) {
        match event {
            MetadataEvent::TopicConfigChanged(_) => self.topics.changed(local, event),
            MetadataEvent::TopicCreated(t) | MetadataEvent::PartitionsAdded(t, _) => {
                self.topics.changed(local, event);
                if t.hosted_on(local) {
                    let m = Arc::clone(&self.manager);
                    let t = t.clone();
                    self.manager
                        .runtime
                        .spawn(async move { m.open_topic(t).await });
                }
            }
            MetadataEvent::PreferredElection {
                partitions,
                asked_at_ms,
            } => self.manager.elect_preferred(partitions, *asked_at_ms),
            MetadataEvent::TopicDeleted(t) => {
                // On the blocking pool: waiting here is allowed.
                let m = Arc::clone(&self.manager);
                let name = t.name.clone();
                self.manager
                    .runtime
                    .block_on(async move { m.close_topic(&name).await });
                self.topics.changed(local, event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sluice_protocol::wire::topic_config::TopicConfig;

    use super::*;
    use crate::replication::controller::state::ReportedLeader;

    fn create(m: &mut Metadata, name: &str, replication_factor: u32) {
        m.apply(&Command::CreateTopic {
            name: name.into(),
            partitions: 3,
            replication_factor,
            config: TopicConfig::default(),
        });
    }

    /// A replica whose core keeps stopping is opened again after delays
    /// that double up to REOPEN_DELAY_MAX; one that ran REOPEN_RESET since
    /// starts from REOPEN_DELAY again. Each partition counts apart.
    #[tokio::test(start_paused = true)]
    async fn a_replica_that_keeps_stopping_is_reopened_less_and_less_often() {
        let m = ReplicaManager::new(
            2,
            Weak::new(),
            Arc::new(SingleNode::default()),
            tokio::runtime::Handle::current(),
            ReplicationConfig::default(),
        );
        let mut delays = Vec::new();
        for _ in 0..8 {
            let d = m.reopen_delay("t", 0);
            delays.push(d.as_secs());
            tokio::time::advance(d + Duration::from_millis(100)).await;
        }
        assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(m.reopen_delay("t", 1), REOPEN_DELAY);
        tokio::time::advance(REOPEN_DELAY_MAX + REOPEN_RESET).await;
        assert_eq!(m.reopen_delay("t", 0), REOPEN_DELAY);
    }

    /// A node that cannot place a partition in its cluster (not joined
    /// yet, or its applied metadata does not list the topic) names no
    /// leader for it, rather than passing for the leader of what is on its
    /// disk.
    #[tokio::test]
    async fn a_node_not_in_its_cluster_yet_leads_nothing() {
        let m = ReplicaManager::new(
            2,
            Weak::new(),
            Arc::new(SingleNode::default()),
            tokio::runtime::Handle::current(),
            ReplicationConfig::default(),
        );
        let p = m.partition("t", 0).unwrap();
        assert_eq!(p.leader, None);
        assert!(p.replicas.is_empty() && p.isr.is_empty(), "{p:?}");
        assert_eq!(m.leader("t", 0), Some(None));
        assert_eq!(
            crate::service::leadership::check_leader(&*m, "t", 0),
            Err(crate::service::leadership::NotServed::NoLeader)
        );
    }

    #[test]
    fn every_change_of_which_partitions_exist_changes_the_shape() {
        let mut m = Metadata {
            nodes: vec![1, 2, 3],
            ..Metadata::default()
        };
        create(&mut m, "a", 2);
        create(&mut m, "b", 2);
        let mut seen = vec![hosting_shape(&m)];
        let mut look = |m: &Metadata| {
            let now = hosting_shape(m);
            assert!(!seen.contains(&now), "{now:?} seen before: {seen:?}");
            seen.push(now);
        };
        m.apply(&Command::CreatePartitions {
            name: "a".into(),
            count: 5,
        });
        look(&m);
        // A deletion and an addition of as many partitions as it took.
        m.apply(&Command::DeleteTopic { name: "b".into() });
        m.apply(&Command::CreatePartitions {
            name: "a".into(),
            count: 8,
        });
        look(&m);
        create(&mut m, "c", 1);
        look(&m);
        // Neither settings nor leader reports change it.
        let before = hosting_shape(&m);
        m.apply(&Command::AlterTopicConfig {
            name: "a".into(),
            expected: TopicConfig::default(),
            config: TopicConfig {
                retention_ms: Some(1),
                ..TopicConfig::default()
            },
        });
        assert_eq!(hosting_shape(&m), before);
    }

    #[test]
    fn only_topics_created_since_the_last_look_are_scanned() {
        let mut m = Metadata {
            nodes: vec![1, 2, 3],
            ..Metadata::default()
        };
        create(&mut m, "a", 2);
        create(&mut m, "b", 2);
        let none_open = |_: &str, _: u32| None;
        let names = |ts: Vec<TopicMeta>| ts.into_iter().map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(topics_to_open(&m, 0, 1, none_open)), ["a", "b"]);
        let seen = m.next_topic_id;
        // A leader report creates no topic: nothing to look at.
        let a = m.topics["a"].clone();
        let (o, _) = m.apply(&Command::ReportLeader {
            topic_id: a.topic_id,
            partition: 0,
            leader: ReportedLeader {
                leader: a.replicas[0][0],
                epoch: 1,
                isr: vec![a.replicas[0][0]],
            },
        });
        assert_eq!(o.code, sluice_protocol::wire::ErrorCode::None);
        assert_eq!(m.next_topic_id, seen);
        assert!(topics_to_open(&m, seen, 1, none_open).is_empty());
        // A new topic: only it.
        create(&mut m, "c", 2);
        assert_eq!(names(topics_to_open(&m, seen, 1, none_open)), ["c"]);
        // Already open with its id: nothing; open with an older id: again.
        let c = m.topics["c"].clone();
        let id = c.topic_id;
        assert!(topics_to_open(&m, seen, 1, |_, _| Some(id)).is_empty());
        assert_eq!(
            names(topics_to_open(&m, seen, 1, |_, _| Some(id - 1))),
            ["c"]
        );
        // A node hosting nothing of a new topic: nothing.
        let seen = m.next_topic_id;
        m.apply(&Command::CreateTopic {
            name: "d".into(),
            partitions: 1,
            replication_factor: 1,
            config: TopicConfig::default(),
        });
        let host = m.topics["d"].replicas[0][0];
        assert_eq!(names(topics_to_open(&m, seen, host, none_open)), ["d"]);
        let outsider = (1..=3).find(|&n| n != host).unwrap();
        assert!(topics_to_open(&m, seen, outsider, none_open).is_empty());
    }
}
