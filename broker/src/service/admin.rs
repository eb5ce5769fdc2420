//! Topics (create, delete, describe) and offset look-ups.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::topic_config::TopicConfig;

use super::leadership::ClusterTopic;
use super::{Refused, Service, blocking};
use crate::error::{BrokerError, client_message_logged, log_error_code};
use crate::log::validate_topic_name;
use crate::replication::controller::state::{assign, placement};
use crate::replication::controller::{AdminError, Cluster, Command, Outcome};
use crate::topics::TopicId;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count.
    pub partitions: u32,
    /// Settings (unset fields follow the broker's defaults).
    pub config: TopicConfig,
    /// Replicas per partition; `None` takes `default_replication_factor`.
    pub replication_factor: Option<u16>,
}

/// The outcome of creating or deleting one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOutcome {
    /// Name.
    pub name: String,
    /// `ErrorCode::None` on success.
    pub error_code: ErrorCode,
    /// Why it failed.
    pub message: Option<String>,
}

/// What a topic looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicInfo {
    /// Name.
    pub name: String,
    /// Id (all zero when there is no such topic).
    pub id: TopicId,
    /// `UnknownTopicOrPartition` or `InvalidTopicName` if there is no such topic.
    pub error_code: ErrorCode,
    /// Its partitions, by index.
    pub partitions: Vec<PartitionInfo>,
    /// Its settings with the defaults filled in.
    pub config: TopicConfig,
    /// The settings it was created with (unset: it follows the broker's
    /// defaults).
    pub explicit: TopicConfig,
}

/// What a partition looks like now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionInfo {
    /// Index.
    pub partition: u32,
    /// `PartitionOffline` after a failed flush.
    pub error_code: ErrorCode,
    /// First offset held.
    pub log_start_offset: u64,
    /// One past the last offset readers may see.
    pub high_watermark: u64,
}

/// Which offset of a partition to look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffsetQuery {
    /// The log start offset.
    Earliest,
    /// The high watermark.
    Latest,
    /// The first record at or after this timestamp (ms since the epoch);
    /// the high watermark if none.
    Timestamp(i64),
    /// The first record with the largest timestamp; the high watermark
    /// (with `past_end`) when the partition holds no visible record.
    MaxTimestamp,
}

/// One offset look-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetLookup {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// What to look up.
    pub query: OffsetQuery,
}

/// The answer to one [`OffsetLookup`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetFound {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// `ErrorCode::None` on success.
    pub error_code: ErrorCode,
    /// The offset (0 on error).
    pub offset: u64,
    /// True when a [`OffsetQuery::Timestamp`] look-up found no record at or
    /// after the timestamp, or a [`OffsetQuery::MaxTimestamp`] one no
    /// record at all (`offset` is then the high watermark).
    pub past_end: bool,
    /// The record a [`OffsetQuery::Timestamp`] or
    /// [`OffsetQuery::MaxTimestamp`] look-up found: its timestamp and its
    /// batch's partition leader epoch (`None` for other queries).
    pub found: Option<(i64, i32)>,
    /// The leader epoch of the answer, -1 if not known: the found record's
    /// batch's, or for [`OffsetQuery::Latest`] the partition's current
    /// leader epoch (what Metadata names, 0 without `--cluster`); -1 for
    /// [`OffsetQuery::Earliest`] (Sluice keeps no epoch history) and when
    /// nothing was found.
    pub leader_epoch: i32,
}

fn outcome(name: &str, r: Result<(), BrokerError>) -> TopicOutcome {
    match r {
        Ok(()) => TopicOutcome {
            name: name.to_owned(),
            error_code: ErrorCode::None,
            message: None,
        },
        Err(e) => TopicOutcome {
            name: name.to_owned(),
            error_code: e.code(),
            message: Some(match &e {
                BrokerError::Log(l) => client_message_logged(l, format_args!("topic {name:?}")),
                other => other.client_message(),
            }),
        },
    }
}

/// Cluster mode: each topic deleted through the controller.
async fn delete_in_cluster(cluster: &Cluster, names: Vec<String>) -> Vec<TopicOutcome> {
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let r = if crate::topics::is_internal(&name) {
            Err((
                ErrorCode::InvalidTopicName,
                format!("topic {name:?} is internal to the cluster and cannot be deleted"),
            ))
        } else {
            proposed(
                cluster
                    .propose(Command::DeleteTopic { name: name.clone() })
                    .await,
            )
        };
        out.push(cluster_outcome(name, r));
    }
    out
}

pub(super) fn proposed(r: Result<Outcome, AdminError>) -> Result<(), (ErrorCode, String)> {
    match r {
        Ok(o) if o.code.is_ok() => Ok(()),
        Ok(o) => Err((o.code, o.message.unwrap_or_default())),
        Err(e) => Err((e.code, e.message)),
    }
}

fn cluster_outcome(name: String, r: Result<(), (ErrorCode, String)>) -> TopicOutcome {
    match r {
        Ok(()) => TopicOutcome {
            name,
            error_code: ErrorCode::None,
            message: None,
        },
        Err((error_code, message)) => TopicOutcome {
            name,
            error_code,
            message: Some(message),
        },
    }
}

fn task_failed(e: std::io::Error) -> Refused {
    Refused {
        code: ErrorCode::Unknown,
        message: format!("task failed: {e}"),
    }
}

impl Service {
    /// Refuses a replication factor of 0 or above the number of brokers
    /// (`InvalidReplicationFactor`); `None` is the configured default.
    fn check_replication_factor(&self, factor: Option<u16>) -> Result<(), BrokerError> {
        let factor = factor.unwrap_or(self.config.default_replication_factor);
        let brokers = self.leadership.brokers().len();
        if factor == 0 || usize::from(factor) > brokers {
            let noun = if brokers == 1 { "broker" } else { "brokers" };
            return Err(BrokerError::Request {
                code: ErrorCode::InvalidReplicationFactor,
                message: format!(
                    "replication factor {factor} is not possible: the cluster has {brokers} {noun}"
                ),
            });
        }
        Ok(())
    }

    /// Creates topics (file creation and fsyncs, on the blocking pool).
    /// A topic whose replication factor is 0 or above the number of
    /// brokers is refused with `InvalidReplicationFactor`.
    ///
    /// In a cluster the answer waits, up to `leaders_within`, until this
    /// node knows a leader of every partition of the topics created (as
    /// Kafka's CreateTopics waits for their metadata up to its
    /// `timeout_ms`), so a client that asks this node's Metadata next finds
    /// them led; past it the topics are created all the same, their leaders
    /// elected later.
    pub async fn create_topics(
        self: &Arc<Self>,
        topics: Vec<NewTopic>,
        leaders_within: Duration,
    ) -> Result<Vec<TopicOutcome>, Refused> {
        if let Some(cluster) = self.cluster.get() {
            let counts: Vec<(String, u32)> = topics
                .iter()
                .map(|t| (t.name.clone(), t.partitions))
                .collect();
            let out = self.create_in_cluster(cluster, topics).await;
            let created: Vec<(String, u32)> = counts
                .into_iter()
                .zip(&out)
                .filter(|(_, o)| o.error_code.is_ok())
                .map(|(c, _)| c)
                .collect();
            self.wait_for_leaders(&created, leaders_within).await;
            return Ok(out);
        }
        let svc = Arc::clone(self);
        blocking(move || {
            topics
                .iter()
                .map(|t| {
                    let created = svc
                        .check_replication_factor(t.replication_factor)
                        .and_then(|()| svc.topics.create(&t.name, t.partitions, &t.config));
                    outcome(&t.name, created)
                })
                .collect()
        })
        .await
        .map_err(task_failed)
    }

    /// Creates the topics of `names` that do not exist, when the broker
    /// creates topics on first use (`auto_create_topics`; otherwise nothing
    /// happens), as a CreateTopics request without settings would:
    /// `topic_defaults.partitions` partitions, `default_replication_factor`
    /// replicas, the broker's topic defaults; in a cluster through the
    /// controller, waiting up to `controller_timeout_ms` for the new
    /// partitions' leaders, so that a Metadata answer right after names
    /// them. A name repeated is created once. Returns the error of each name
    /// that could not be created, to be answered in its place (an invalid or
    /// reserved name, more replicas than nodes, the partition limits); a
    /// name created meanwhile by another request is not an error.
    /// `requested_by` (the client's address) is logged with each topic
    /// created. The front-ends call it for a Metadata request that allows it.
    pub async fn create_on_first_use(
        self: &Arc<Self>,
        names: &[String],
        requested_by: std::net::SocketAddr,
    ) -> HashMap<String, ErrorCode> {
        if !self.config.auto_create_topics {
            return HashMap::new();
        }
        let partitions = self.config.topic_defaults.partitions;
        let leaders_within = Duration::from_millis(self.config.controller_timeout_ms);
        let mut seen = std::collections::HashSet::new();
        let missing: Vec<NewTopic> = self
            .describe_topics(Some(names))
            .into_iter()
            .filter(|t| t.error_code == ErrorCode::UnknownTopicOrPartition)
            .filter(|t| seen.insert(t.name.clone()))
            .map(|t| NewTopic {
                name: t.name,
                partitions,
                config: TopicConfig::default(),
                replication_factor: None,
            })
            .collect();
        if missing.is_empty() {
            return HashMap::new();
        }
        let asked: Vec<String> = missing.iter().map(|t| t.name.clone()).collect();
        let outcomes = match self.create_topics(missing, leaders_within).await {
            Ok(o) => o,
            Err(refused) => return asked.into_iter().map(|n| (n, refused.code)).collect(),
        };
        let mut refused = HashMap::new();
        for (name, o) in asked.into_iter().zip(outcomes) {
            match o.error_code {
                ErrorCode::None => tracing::info!(
                    topic = %name,
                    partitions,
                    peer = %requested_by,
                    "created topic on first use (auto_create_topics)"
                ),
                ErrorCode::TopicAlreadyExists => {}
                e => {
                    tracing::debug!(topic = %name, error = ?o.message, "topic not created on first use");
                    refused.insert(name, e);
                }
            }
        }
        refused
    }

    /// The replication factor of topic `name`: its first partition's
    /// replica count in the controller's metadata in a cluster, 1 on a
    /// single broker; `None` for a topic this node does not know.
    pub fn replication_factor(&self, name: &str) -> Option<u16> {
        match self.cluster.get() {
            Some(cluster) => cluster.with_metadata(|m| {
                let t = m.topics.get(name)?;
                let n = t.replicas.first().map_or(0, Vec::len);
                u16::try_from(n).ok().filter(|&n| n > 0)
            }),
            None => self.topics.topic(name).map(|_| 1),
        }
    }

    /// The settings a topic created with `explicit` goes by: those, and the
    /// broker's topic defaults for the others.
    pub fn resolve_topic_config(&self, explicit: &TopicConfig) -> TopicConfig {
        self.topics.defaults().resolve(explicit)
    }

    /// What [`Service::create_topics`] would answer for each of `topics`,
    /// without creating any (CreateTopics' `validate_only`): the topic's
    /// name, partition count, settings and replication factor, whether it
    /// exists (in a cluster, in the controller's metadata as this node has
    /// applied it) or is named earlier in `topics`, and the partition limit
    /// (this broker's, or in a cluster each node's, as the controller would
    /// place the replicas). Each topic's limit is checked as if it were
    /// the only one created.
    pub fn check_new_topics(&self, topics: &[NewTopic]) -> Vec<TopicOutcome> {
        let mut seen = crate::log::CollisionIndex::default();
        topics
            .iter()
            .map(|t| {
                let factor = t
                    .replication_factor
                    .unwrap_or(self.config.default_replication_factor);
                let exists = || {
                    (
                        ErrorCode::TopicAlreadyExists,
                        format!("topic {:?} already exists", t.name),
                    )
                };
                let checked = self
                    .check_replication_factor(Some(factor))
                    .map_err(|e| (e.code(), e.client_message()))
                    .and_then(|()| match self.cluster.get() {
                        Some(cluster) => {
                            self.check_in_cluster(cluster, t, factor)?;
                            let known = cluster.with_metadata(|m| m.topics.contains_key(&t.name));
                            if known { Err(exists()) } else { Ok(()) }
                        }
                        None => self
                            .topics
                            .check_create(&t.name, t.partitions, &t.config)
                            .map_err(|e| (e.code(), e.client_message())),
                    })
                    .and_then(|()| {
                        // As the creation would: a name colliding with one
                        // created before it in this request is refused.
                        crate::topics::refuse_collision(&t.name, seen.colliding(&t.name))
                            .map_err(|e| (e.code(), e.client_message()))?;
                        if seen.insert(&t.name) {
                            Ok(())
                        } else {
                            Err(exists())
                        }
                    });
                cluster_outcome(t.name.clone(), checked)
            })
            .collect()
    }

    /// Deletes topics and forgets their committed offsets (on the blocking
    /// pool).
    pub async fn delete_topics(
        self: &Arc<Self>,
        names: Vec<String>,
    ) -> Result<Vec<TopicOutcome>, Refused> {
        if let Some(cluster) = self.cluster.get() {
            return Ok(delete_in_cluster(cluster, names).await);
        }
        let svc = Arc::clone(self);
        blocking(move || {
            names
                .iter()
                .map(|n| {
                    let deleted = svc.topics.delete(n);
                    if deleted.is_ok() {
                        // Its committed offsets go too (and, should this
                        // fail, at the next start).
                        if let Err(e) = svc.offsets.forget_topics(|t| t != n.as_str()) {
                            tracing::warn!(topic = %n, error = %e, "could not forget committed offsets of deleted topic");
                        }
                    }
                    outcome(n, deleted)
                })
                .collect()
        })
        .await
        .map_err(task_failed)
    }

    /// Gives topic `name` the settings `edit` makes of its settings as
    /// given (see [`crate::topics::TopicStore::alter_config`]: only its
    /// retention may change), or with `validate_only` only checks them. In
    /// a cluster the change is checked here against the controller's
    /// settings of the topic and committed through the controller, which
    /// has every node holding a replica apply it; a change committed by
    /// another node meanwhile has this one made again on top of it.
    pub async fn alter_topic_config(
        self: &Arc<Self>,
        name: String,
        edit: impl Fn(&TopicConfig) -> Result<TopicConfig, String> + Send + 'static,
        validate_only: bool,
    ) -> TopicOutcome {
        if let Some(cluster) = self.cluster.get() {
            let r = self
                .alter_in_cluster(cluster, &name, edit, validate_only)
                .await;
            return cluster_outcome(name, r);
        }
        self.change_topic(name, move |svc, n| {
            svc.topics.alter_config(n, edit, validate_only)
        })
        .await
    }

    /// Runs `change` of topic `name` on the blocking pool, unless no such
    /// topic is listed here (then answered at once, without a trip there).
    async fn change_topic(
        self: &Arc<Self>,
        name: String,
        change: impl FnOnce(&Service, &str) -> Result<(), BrokerError> + Send + 'static,
    ) -> TopicOutcome {
        if self.topics.topic(&name).is_none() {
            return TopicOutcome {
                message: Some(format!("no topic {name:?}")),
                name,
                error_code: ErrorCode::UnknownTopicOrPartition,
            };
        }
        let svc = Arc::clone(self);
        let n = name.clone();
        blocking(move || outcome(&n, change(&svc, &n)))
            .await
            .unwrap_or_else(|e| {
                let r = task_failed(e);
                TopicOutcome {
                    name,
                    error_code: r.code,
                    message: Some(r.message),
                }
            })
    }

    /// Raises topic `name`'s partition count to `count` (see
    /// [`crate::topics::TopicStore::add_partitions`]), or with
    /// `validate_only` only checks that it could. In a cluster the
    /// controller places the new partitions' replicas as it places a
    /// created topic's, with the topic's replication factor, and the nodes
    /// holding them open them. The cluster's internal topics (`__…`) are
    /// refused (`InvalidRequest`).
    pub async fn create_partitions(
        self: &Arc<Self>,
        name: String,
        count: u32,
        validate_only: bool,
    ) -> TopicOutcome {
        if crate::topics::is_internal(&name) {
            return TopicOutcome {
                message: Some(format!(
                    "topic {name:?} is internal: its partition count is fixed"
                )),
                name,
                error_code: ErrorCode::InvalidRequest,
            };
        }
        if let Some(cluster) = self.cluster.get() {
            let r = self.check_new_count(cluster, &name, count);
            let r = match r {
                Err(e) => Err(e),
                Ok(()) if validate_only => Ok(()),
                Ok(()) => proposed(
                    cluster
                        .propose(Command::CreatePartitionsV2 {
                            name: name.clone(),
                            count,
                            avoid: self.leadership.unreachable(),
                        })
                        .await,
                ),
            };
            return cluster_outcome(name, r);
        }
        self.change_topic(name, move |svc, n| {
            svc.topics
                .add_partitions(n, count, crate::topics::Hosting::All, validate_only)
        })
        .await
    }

    /// Cluster mode: [`Service::alter_topic_config`] through the
    /// controller, tried again (up to 10 times) while other changes of the
    /// topic's settings commit first.
    async fn alter_in_cluster(
        &self,
        cluster: &Cluster,
        name: &str,
        edit: impl Fn(&TopicConfig) -> Result<TopicConfig, String>,
        validate_only: bool,
    ) -> Result<(), (ErrorCode, String)> {
        if crate::topics::is_internal(name) {
            return Err((
                ErrorCode::InvalidRequest,
                format!("topic {name:?} is internal to the cluster: its settings are fixed"),
            ));
        }
        let current = || cluster.with_metadata(|m| m.topics.get(name).map(|t| t.config.clone()));
        let mut tries = 0;
        loop {
            let Some(expected) = current() else {
                return Err((
                    ErrorCode::UnknownTopicOrPartition,
                    format!("no topic {name:?}"),
                ));
            };
            let config = edit(&expected).map_err(|e| (ErrorCode::InvalidConfig, e))?;
            self.topics
                .check_change(name, &expected, &config)
                .map_err(|e| (e.code(), e.client_message()))?;
            if validate_only {
                return Ok(());
            }
            let r = proposed(
                cluster
                    .propose(Command::AlterTopicConfigV2 {
                        name: name.to_owned(),
                        expected: expected.clone(),
                        config,
                    })
                    .await,
            );
            tries += 1;
            match r {
                // The controller refuses a change only as made from
                // settings that changed meanwhile (or of a topic that is
                // gone): once this node has applied the newer settings,
                // the change is made again on top of them.
                Err((ErrorCode::InvalidConfig, _)) if tries < 10 => {
                    let mut applied = cluster.applied();
                    let caught_up = async {
                        while current().is_some_and(|now| now == expected) {
                            if applied.changed().await.is_err() {
                                break;
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(2), caught_up).await;
                }
                r => return r,
            }
        }
    }

    /// Cluster mode: what the controller would refuse of raising `name`'s
    /// partition count to `count` (judged on the metadata this node has
    /// applied), and a count past [`crate::topics::MAX_PARTITIONS`].
    fn check_new_count(
        &self,
        cluster: &Cluster,
        name: &str,
        count: u32,
    ) -> Result<(), (ErrorCode, String)> {
        let topic = cluster.with_metadata(|m| m.topics.get(name).cloned());
        let Some(topic) = topic else {
            return Err((
                ErrorCode::UnknownTopicOrPartition,
                format!("no topic {name:?}"),
            ));
        };
        let from = topic.replicas.len();
        if count as usize <= from {
            return Err((
                ErrorCode::InvalidPartitions,
                format!(
                    "topic {name:?} has {from} partitions; the count can only rise, \
                     and {count} is not more"
                ),
            ));
        }
        if count > crate::topics::MAX_PARTITIONS {
            return Err((
                ErrorCode::InvalidPartitions,
                format!(
                    "partitions must be in 1..={}, got {count}",
                    crate::topics::MAX_PARTITIONS
                ),
            ));
        }
        let avoid = self.leadership.unreachable();
        self.check_cluster_room(cluster, |m| {
            let rf = topic
                .replicas
                .first()
                .map_or(1, Vec::len)
                .min(m.nodes.len());
            let nodes = placement(&m.nodes, &avoid, rf);
            let mut all = assign(&nodes, topic.topic_id, count, rf);
            all.split_off(from.min(all.len()))
        })
    }

    /// Cluster mode: refuses (`InvalidPartitions`) new partitions whose
    /// replicas (`new` of the metadata this node has applied: one list of
    /// nodes per partition) would take a node past `max_partitions` (this
    /// node's setting, taken as every node's), counting the replicas every
    /// node holds now. Each node also checks its own limit when it creates
    /// the files, but the controller has committed the change by then: the
    /// check belongs before the proposal.
    fn check_cluster_room(
        &self,
        cluster: &Cluster,
        new: impl FnOnce(&crate::replication::controller::Metadata) -> Vec<Vec<u64>>,
    ) -> Result<(), (ErrorCode, String)> {
        let max = u64::from(self.config.max_partitions);
        cluster.with_metadata(|m| {
            let mut held: HashMap<u64, u64> = HashMap::new();
            for r in m.topics.values().flat_map(|t| &t.replicas) {
                for node in r {
                    *held.entry(*node).or_default() += 1;
                }
            }
            let mut added: HashMap<u64, u64> = HashMap::new();
            for node in new(m).iter().flatten() {
                *added.entry(*node).or_default() += 1;
            }
            let mut over: Vec<(u64, u64, u64)> = added
                .into_iter()
                .map(|(node, n)| (node, held.get(&node).copied().unwrap_or(0), n))
                .filter(|&(_, now, n)| now + n > max)
                .collect();
            over.sort_unstable();
            match over.first() {
                None => Ok(()),
                Some(&(node, now, n)) => Err((
                    ErrorCode::InvalidPartitions,
                    format!(
                        "node {node} holds {now} partition replicas and the limit is {max} \
                         ({}); {n} more do not fit",
                        self.config.max_partitions_name()
                    ),
                )),
            }
        })
    }

    /// Waits, up to `within`, until every partition of `topics` (name,
    /// partition count) has a leader this node knows.
    async fn wait_for_leaders(&self, topics: &[(String, u32)], within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        let led = |name: &str, p: u32| matches!(self.leadership.leader(name, p), Some(Some(_)));
        // Partitions are looked at in order; one found led stays counted.
        let mut next = topics.iter().map(|_| 0u32).collect::<Vec<_>>();
        loop {
            let mut all = true;
            for ((name, count), at) in topics.iter().zip(next.iter_mut()) {
                while *at < *count && led(name, *at) {
                    *at += 1;
                }
                all &= *at == *count;
            }
            if all || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// What this node checks of topic `t` (of `factor` replicas) before it
    /// proposes its creation to the controller: a factor of 0, the name,
    /// count and settings, and every node's partition limit as the
    /// controller would place the replicas. The controller checks the rest
    /// when it applies the creation (the name taken, the factor against
    /// the nodes).
    fn check_in_cluster(
        &self,
        cluster: &Cluster,
        t: &NewTopic,
        factor: u16,
    ) -> Result<(), (ErrorCode, String)> {
        if factor == 0 {
            return Err((
                ErrorCode::InvalidReplicationFactor,
                "replication factor 0 is not possible".into(),
            ));
        }
        self.topics
            .check_new(&t.name, t.partitions, &t.config)
            .map_err(|e| (e.code(), e.client_message()))?;
        // A name colliding with a topic's, checked against the metadata
        // this node has applied, not by the controller's state machine
        // (whose log, written by older versions, must replay as it was):
        // two colliding creations sent to two nodes at once may both be
        // made. A topic of this very name is answered as existing
        // (elsewhere), even when one colliding with it exists too.
        cluster
            .with_metadata(|m| match m.topics.contains_key(&t.name) {
                true => Ok(()),
                false => {
                    crate::topics::refuse_collision(&t.name, m.topics.keys().map(String::as_str))
                }
            })
            .map_err(|e| (e.code(), e.client_message()))?;
        let avoid = self.leadership.unreachable();
        self.check_cluster_room(cluster, |m| {
            let rf = usize::from(factor).min(m.nodes.len());
            let nodes = placement(&m.nodes, &avoid, rf);
            assign(&nodes, m.next_topic_id.max(1), t.partitions, rf)
        })
    }

    /// Cluster mode: each topic checked here, then committed through the
    /// controller (which creates it on the nodes holding its replicas).
    async fn create_in_cluster(
        &self,
        cluster: &Cluster,
        topics: Vec<NewTopic>,
    ) -> Vec<TopicOutcome> {
        let mut out = Vec::with_capacity(topics.len());
        // The names this request proposed: this node may not have applied
        // them yet, and one colliding with them is refused all the same.
        let mut created = crate::log::CollisionIndex::default();
        for t in topics {
            let factor = t
                .replication_factor
                .unwrap_or(self.config.default_replication_factor);
            let checked = self.check_in_cluster(cluster, &t, factor).and_then(|()| {
                crate::topics::refuse_collision(&t.name, created.colliding(&t.name))
                    .map_err(|e| (e.code(), e.client_message()))
            });
            // A name proposed counts as created for the rest of the
            // request even if the answer is an error: one that timed out
            // may still be committed.
            if checked.is_ok() {
                created.insert(&t.name);
            }
            let r = match checked {
                Err(e) => Err(e),
                Ok(()) => proposed(
                    cluster
                        .propose(Command::CreateTopicV2 {
                            name: t.name.clone(),
                            partitions: t.partitions,
                            replication_factor: u32::from(factor),
                            config: t.config,
                            avoid: self.leadership.unreachable(),
                        })
                        .await,
                ),
            };
            out.push(cluster_outcome(t.name, r));
        }
        out
    }

    /// Describes the named topics (each once, in the order first named), or
    /// every topic. Reads only in-memory state (atomics, the offline flag):
    /// no partition lock, no disk.
    ///
    /// In cluster mode every topic of the cluster metadata is listed (but
    /// internal ones, named `__…`, only when named), also
    /// those with no replica here: their partitions show offsets 0 (this
    /// broker does not know them; their leaders do).
    pub fn describe_topics(&self, names: Option<&[String]>) -> Vec<TopicInfo> {
        let cluster = self.leadership.topics();
        // Looked up by name once per request, not by a scan per topic.
        let by_name: Option<HashMap<&str, &ClusterTopic>> = cluster
            .as_deref()
            .map(|all| all.iter().map(|t| (t.name.as_str(), t)).collect());
        match names {
            // A name asked for twice is answered once, as Kafka does: the
            // answer stays in proportion to the topics, not to the request.
            Some(names) => super::first_of_each(names)
                .into_iter()
                .map(|n| self.describe(n, by_name.as_ref()))
                .collect(),
            // Internal topics (the cluster's group-state topic) are listed
            // only when asked for by name.
            None => match &cluster {
                Some(all) => all
                    .iter()
                    .filter(|t| !crate::topics::is_internal(&t.name))
                    .map(|t| self.describe(&t.name, by_name.as_ref()))
                    .collect(),
                None => self
                    .topics
                    .list()
                    .iter()
                    .map(|t| self.describe(&t.name, None))
                    .collect(),
            },
        }
    }

    /// The names of the topics with ids `ids`, in order (`None` for an id
    /// no topic has). The topics this broker hosts are looked up first,
    /// without copying anything (a fetch by id names hosted topics); in a
    /// cluster an id none of them has is looked up among the controller's
    /// topics (a topic hosted elsewhere, or one listed here by a
    /// `topics.meta` older than its controller id).
    pub fn topic_names(&self, ids: &[TopicId]) -> Vec<Option<String>> {
        let mut names: Vec<Option<String>> = ids.iter().map(|id| self.topics.name_of(id)).collect();
        if names.iter().any(Option::is_none) {
            if let Some(all) = self.leadership.topics() {
                let by_id: HashMap<TopicId, String> =
                    all.into_iter().map(|t| (t.id, t.name)).collect();
                for (name, id) in names.iter_mut().zip(ids).filter(|(n, _)| n.is_none()) {
                    *name = by_id.get(id).cloned();
                }
            }
        }
        names
    }

    /// The ids of the topics named `names`, in order (`None` for a name no
    /// topic has), as Metadata tells them: in a cluster the controller's,
    /// its topic list read once for all of them.
    pub fn topic_ids<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<Option<TopicId>> {
        let cluster: Option<HashMap<String, TopicId>> = self
            .leadership
            .topics()
            .map(|all| all.into_iter().map(|t| (t.name, t.id)).collect());
        names
            .into_iter()
            .map(|n| match &cluster {
                Some(by_name) => by_name.get(n).copied(),
                None => self.topics.topic(n).map(|t| t.id),
            })
            .collect()
    }

    fn describe(&self, name: &str, cluster: Option<&HashMap<&str, &ClusterTopic>>) -> TopicInfo {
        let remote = cluster.and_then(|c| c.get(name).copied());
        match (self.topics.topic(name), remote) {
            (None, Some(t)) => TopicInfo {
                name: t.name.clone(),
                id: t.id,
                error_code: ErrorCode::None,
                partitions: (0..t.partitions)
                    .map(|partition| PartitionInfo {
                        partition,
                        error_code: ErrorCode::None,
                        log_start_offset: 0,
                        high_watermark: 0,
                    })
                    .collect(),
                config: self.topics.defaults().resolve(&t.config),
                explicit: t.config.clone(),
            },
            (Some(t), remote) => TopicInfo {
                name: t.name.clone(),
                // In a cluster, the controller's id: every node answers
                // with the same one.
                id: remote.map_or(t.id, |r| r.id),
                error_code: ErrorCode::None,
                partitions: t
                    .partitions
                    .iter()
                    .enumerate()
                    .map(|(i, p)| match p {
                        Some(p) => PartitionInfo {
                            partition: i as u32,
                            error_code: if p.is_offline() {
                                ErrorCode::PartitionOffline
                            } else {
                                ErrorCode::None
                            },
                            log_start_offset: p.log.log_start_offset(),
                            high_watermark: p.log.high_watermark(),
                        },
                        // Cluster mode: no replica here, so no offsets to
                        // tell (the leader's node has them); listed as for
                        // a topic with no replica here at all (Metadata
                        // takes its error code from here).
                        None => PartitionInfo {
                            partition: i as u32,
                            error_code: ErrorCode::None,
                            log_start_offset: 0,
                            high_watermark: 0,
                        },
                    })
                    .collect(),
                config: self.topics.defaults().resolve(&t.config),
                explicit: t.config.clone(),
            },
            (None, None) => TopicInfo {
                name: name.to_owned(),
                id: TopicId([0; 16]),
                error_code: if validate_topic_name(name).is_ok() {
                    ErrorCode::UnknownTopicOrPartition
                } else {
                    ErrorCode::InvalidTopicName
                },
                partitions: Vec::new(),
                config: TopicConfig::default(),
                explicit: TopicConfig::default(),
            },
        }
    }

    /// Looks up offsets (timestamps search the time index: blocking pool).
    /// A look-up asked again in the same request is answered from the
    /// first (a timestamp look-up may decompress a whole batch: repeats
    /// must not multiply that work).
    pub async fn list_offsets(
        self: &Arc<Self>,
        lookups: Vec<OffsetLookup>,
    ) -> Result<Vec<OffsetFound>, Refused> {
        super::check_partition_count(lookups.len(), self.config.max_partitions_per_request)?;
        // In a cluster, each leader confirms it still leads with all that is
        // committed applied, so the offsets never go back in time.
        let unconfirmed = self
            .unconfirmed_leadership(lookups.iter().map(|l| (l.topic.clone(), l.partition)))
            .await;
        // A look-up by timestamp may decompress a stored batch: its slot is
        // waited for here, holding no blocking thread (see
        // `log::decompression`: waiting on the blocking pool could take
        // every thread while the slots' holders wait for one), and only
        // once leadership is confirmed, which may take a Raft round.
        let by_time = lookups.iter().any(|l| {
            matches!(
                l.query,
                OffsetQuery::Timestamp(_) | OffsetQuery::MaxTimestamp
            )
        });
        let slot = match by_time {
            true => Some(crate::log::decompression::acquire().await),
            false => None,
        };
        let svc = Arc::clone(self);
        blocking(move || {
            let _slot = slot.map(crate::log::decompression::Slot::adopt);
            let mut answered: HashMap<(String, u32, OffsetQuery), OffsetFound> = HashMap::new();
            lookups
                .into_iter()
                .map(|l| {
                    let key = (l.topic, l.partition, l.query);
                    if let Some(f) = answered.get(&key) {
                        return f.clone();
                    }
                    let (topic, partition, query) = key;
                    let l = OffsetLookup {
                        topic,
                        partition,
                        query,
                    };
                    let mut past_end = false;
                    let mut found = None;
                    let mut leader_epoch = -1;
                    let confirmed = match unconfirmed.contains(&(l.topic.clone(), l.partition)) {
                        true => Err(ErrorCode::NotLeaderForPartition),
                        false => Ok(()),
                    };
                    let result = confirmed
                        .and_then(|()| svc.led_partition(&l.topic, l.partition))
                        .and_then(|part| {
                            let log = &part.log;
                            // Offline, its end (and what lies past it) is
                            // unknown: a client told the end of the valid
                            // data would reset or commit its position there.
                            if log.is_offline() {
                                return Err(ErrorCode::PartitionOffline);
                            }
                            let record = match l.query {
                                OffsetQuery::Earliest => return Ok(log.log_start_offset()),
                                OffsetQuery::Latest => {
                                    let epoch = super::leadership::describe(
                                        svc.leadership.as_ref(),
                                        &l.topic,
                                        l.partition,
                                    )
                                    .leader_epoch;
                                    leader_epoch = i32::try_from(epoch).unwrap_or(i32::MAX);
                                    return Ok(log.high_watermark());
                                }
                                OffsetQuery::Timestamp(ts) => log.offset_for_timestamp(ts),
                                OffsetQuery::MaxTimestamp => log.max_timestamp_record(),
                            };
                            record
                                .map(|m| match m {
                                    Some(m) => {
                                        found = Some((m.timestamp, m.leader_epoch));
                                        leader_epoch = m.leader_epoch.max(-1);
                                        m.offset
                                    }
                                    None => {
                                        past_end = true;
                                        log.high_watermark()
                                    }
                                })
                                .map_err(|e| log_error_code(&e))
                        });
                    let (error_code, offset) = match result {
                        Ok(o) => (ErrorCode::None, o),
                        Err(code) => (code, 0),
                    };
                    if !error_code.is_ok() {
                        leader_epoch = -1;
                    }
                    let f = OffsetFound {
                        topic: l.topic,
                        partition: l.partition,
                        error_code,
                        offset,
                        past_end,
                        found,
                        leader_epoch,
                    };
                    answered.insert((f.topic.clone(), f.partition, l.query), f.clone());
                    f
                })
                .collect()
        })
        .await
        .map_err(task_failed)
    }
}
