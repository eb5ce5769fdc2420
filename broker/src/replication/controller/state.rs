//! Cluster metadata and the commands that change it: the controller's
//! state machine, as pure functions of the log (every node applies the
//! same entries in the same order and ends with the same metadata).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::topic_config::{TopicConfig, without_max_message_bytes};

/// A command of the controller log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Create a topic, its replicas spread over the nodes.
    CreateTopic {
        /// Name (validated by the proposing node).
        name: String,
        /// Partition count.
        partitions: u32,
        /// Replicas per partition: 1..=node count.
        replication_factor: u32,
        /// Settings (without `max_message_bytes`, which logs of this
        /// command never held: see [`Command::CreateTopicV2`]).
        #[serde(with = "without_max_message_bytes")]
        config: TopicConfig,
    },
    /// Delete a topic.
    DeleteTopic {
        /// Name.
        name: String,
    },
    /// A partition group's leader reports itself (and the replicas in
    /// sync with it), so that every node can name it in Metadata. A report
    /// older than the recorded one (lower epoch) changes nothing.
    ReportLeader {
        /// The topic's id (a report for a deleted topic changes nothing).
        topic_id: u64,
        /// Partition index.
        partition: u32,
        /// What the leader says.
        leader: ReportedLeader,
    },
    // New commands go last: entries are encoded by variant index, and
    // logs written before a command existed must decode unchanged.
    /// Raise a topic's partition count; the new partitions' replicas are
    /// spread as [`assign`] spreads a created topic's, over the nodes of
    /// now, with the topic's replication factor.
    CreatePartitions {
        /// Name.
        name: String,
        /// The partition count wanted (above the current one).
        count: u32,
    },
    /// Give a topic new settings, if its settings are still `expected`
    /// (the proposer checked the change against them: all but the flush
    /// policy may change; a concurrent change makes this one refused, to be proposed
    /// again on top of it).
    AlterTopicConfig {
        /// Name.
        name: String,
        /// Its settings the change was made from (without
        /// `max_message_bytes`, as [`Command::CreateTopic`]).
        #[serde(with = "without_max_message_bytes")]
        expected: TopicConfig,
        /// Its new settings (the same).
        #[serde(with = "without_max_message_bytes")]
        config: TopicConfig,
    },
    /// Delete the records of a partition below an offset (Kafka's
    /// DeleteRecords): every replica's log start is raised to it, as far as
    /// its log reaches ([`Metadata::log_starts`]).
    DeleteRecords {
        /// The topic's id (a topic deleted meanwhile: refused).
        topic_id: u64,
        /// Partition index.
        partition: u32,
        /// Records below it go.
        before: u64,
    },
    /// [`Command::CreateTopic`] with every setting of a topic,
    /// `max_message_bytes` included, and the nodes to keep replicas off:
    /// what a node proposes to create a topic.
    CreateTopicV2 {
        /// Name (validated by the proposing node).
        name: String,
        /// Partition count.
        partitions: u32,
        /// Replicas per partition: 1..=node count.
        replication_factor: u32,
        /// Settings.
        config: TopicConfig,
        /// Nodes the proposing node could not reach: the replicas are
        /// placed on the others when enough remain ([`placement`]).
        avoid: Vec<u64>,
    },
    /// [`Command::AlterTopicConfig`] with every setting of a topic: what a
    /// node proposes to change a topic's settings.
    AlterTopicConfigV2 {
        /// Name.
        name: String,
        /// Its settings the change was made from.
        expected: TopicConfig,
        /// Its new settings.
        config: TopicConfig,
    },
    /// [`Command::CreatePartitions`] with the nodes to keep the new
    /// replicas off, as [`Command::CreateTopicV2`]: what a node proposes.
    CreatePartitionsV2 {
        /// Name.
        name: String,
        /// The partition count wanted (above the current one).
        count: u32,
        /// Nodes the proposing node could not reach.
        avoid: Vec<u64>,
    },
    /// Have the preferred replica (the first listed) of each partition take
    /// its leadership (Kafka's ElectLeaders, preferred election). Changes
    /// no metadata: every node is told
    /// ([`MetadataEvent::PreferredElection`]) and calls the elections of
    /// the partitions it is the preferred replica of.
    ElectPreferred {
        /// (topic id, partition) pairs.
        partitions: Vec<(u64, u32)>,
        /// When it was asked, Unix milliseconds: a node that applies it
        /// much later (back from a long absence) does not act on it.
        asked_at_ms: u64,
    },
}

/// A partition's leadership as its leader last reported it to the
/// controller. It may lag: the partition group itself is the authority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedLeader {
    /// The leader's node id.
    pub leader: u64,
    /// Its Raft term (the leader epoch).
    pub epoch: u64,
    /// The replicas in sync with it, ascending.
    pub isr: Vec<u64>,
}

/// What applying a command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `None` when the command took effect.
    pub code: ErrorCode,
    /// Why it did not.
    pub message: Option<String>,
}

impl Outcome {
    fn ok() -> Self {
        Outcome {
            code: ErrorCode::None,
            message: None,
        }
    }

    fn refused(code: ErrorCode, message: String) -> Self {
        Outcome {
            code,
            message: Some(message),
        }
    }
}

/// One topic of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// Name.
    pub name: String,
    /// Unique over the cluster's life: a topic deleted and created again
    /// gets a new id, so its old Raft groups' messages never reach it.
    pub topic_id: u64,
    /// Per partition (by index), its replicas' node ids; the first is the
    /// preferred leader.
    pub replicas: Vec<Vec<u64>>,
    /// Settings. Stored without `max_message_bytes`, which a snapshot
    /// keeps apart ([`Metadata`]'s layout), so that snapshots written
    /// before it existed decode unchanged.
    #[serde(with = "without_max_message_bytes")]
    pub config: TopicConfig,
}

impl TopicMeta {
    /// The id Kafka clients see, derived from the name and `topic_id`, so
    /// every node computes the same one and a topic created again gets a
    /// new one.
    pub fn kafka_id(&self) -> crate::topics::TopicId {
        crate::topics::TopicId::derived(&self.name, self.topic_id)
    }

    /// Whether node `id` holds at least one replica of this topic.
    pub fn hosted_on(&self, id: u64) -> bool {
        self.replicas.iter().any(|r| r.contains(&id))
    }

    /// The partitions node `id` holds a replica of, ascending.
    pub fn partitions_on(&self, id: u64) -> Vec<u32> {
        (0..self.replicas.len() as u32)
            .filter(|&p| self.replicas[p as usize].contains(&id))
            .collect()
    }
}

/// A change of the metadata, told to the [`super::MetadataObserver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataEvent {
    /// A topic was created.
    TopicCreated(TopicMeta),
    /// A topic was deleted.
    TopicDeleted(TopicMeta),
    /// A topic's partition count rose: the topic as it is now, and its
    /// partition count before.
    PartitionsAdded(TopicMeta, u32),
    /// A topic's settings changed: the topic as it is now.
    TopicConfigChanged(TopicMeta),
    /// The preferred replicas of these (topic id, partition) pairs are to
    /// take their leadership ([`Command::ElectPreferred`]).
    PreferredElection {
        /// (topic id, partition) pairs.
        partitions: Vec<(u64, u32)>,
        /// When it was asked, Unix milliseconds.
        asked_at_ms: u64,
    },
}

/// The cluster metadata. Its serde layout (a snapshot's) is its fields in
/// order, then each topic's `max_message_bytes`, by name, for the topics
/// that set one ([`Metadata::decode`] also reads the older layouts).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// The controller group's voters, ascending (from its membership).
    pub nodes: Vec<u64>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMeta>,
    /// The id the next created topic gets.
    pub next_topic_id: u64,
    /// Per topic id, per partition: the leadership last reported by the
    /// partition group's leader.
    pub leaders: BTreeMap<u64, BTreeMap<u32, ReportedLeader>>,
    /// Per topic id, per partition: the offset records were deleted below
    /// ([`Command::DeleteRecords`], the highest asked for). Each replica
    /// raises its log start to it once its high watermark reaches it.
    pub log_starts: BTreeMap<u64, BTreeMap<u32, u64>>,
}

/// [`Metadata`] as a snapshot holds it.
#[derive(Serialize)]
struct StoredRef<'a> {
    nodes: &'a Vec<u64>,
    topics: &'a BTreeMap<String, TopicMeta>,
    next_topic_id: u64,
    leaders: &'a BTreeMap<u64, BTreeMap<u32, ReportedLeader>>,
    log_starts: &'a BTreeMap<u64, BTreeMap<u32, u64>>,
    max_message_bytes: BTreeMap<&'a str, u32>,
}

/// [`StoredRef`], decoded.
#[derive(Deserialize)]
struct Stored {
    nodes: Vec<u64>,
    topics: BTreeMap<String, TopicMeta>,
    next_topic_id: u64,
    leaders: BTreeMap<u64, BTreeMap<u32, ReportedLeader>>,
    log_starts: BTreeMap<u64, BTreeMap<u32, u64>>,
    max_message_bytes: BTreeMap<String, u32>,
}

impl Serialize for Metadata {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        StoredRef {
            nodes: &self.nodes,
            topics: &self.topics,
            next_topic_id: self.next_topic_id,
            leaders: &self.leaders,
            log_starts: &self.log_starts,
            max_message_bytes: self
                .topics
                .iter()
                .filter_map(|(name, t)| Some((name.as_str(), t.config.max_message_bytes?)))
                .collect(),
        }
        .serialize(s)
    }
}

/// [`Metadata`] as written before topics had `max_message_bytes`
/// (snapshots of older brokers).
#[derive(Debug, Clone, Default, Deserialize)]
struct MetadataV3 {
    nodes: Vec<u64>,
    topics: BTreeMap<String, TopicMeta>,
    next_topic_id: u64,
    leaders: BTreeMap<u64, BTreeMap<u32, ReportedLeader>>,
    log_starts: BTreeMap<u64, BTreeMap<u32, u64>>,
}

/// [`Metadata`] as written before records could be deleted (snapshots of
/// older brokers); read as metadata with no deletions.
#[derive(Debug, Clone, Default, Deserialize)]
struct MetadataV2 {
    nodes: Vec<u64>,
    topics: BTreeMap<String, TopicMeta>,
    next_topic_id: u64,
    leaders: BTreeMap<u64, BTreeMap<u32, ReportedLeader>>,
}

/// [`Metadata`] as written before leaders were reported (snapshots of
/// older brokers); read as metadata with no reported leaders.
#[derive(Debug, Clone, Default, Deserialize)]
struct MetadataV1 {
    nodes: Vec<u64>,
    topics: BTreeMap<String, TopicMeta>,
    next_topic_id: u64,
}

impl Metadata {
    /// Decodes a snapshot's metadata, in the current layout or one of the
    /// older ones (before `max_message_bytes`, before record deletions,
    /// before leader reports).
    pub fn decode(bytes: &[u8]) -> Result<Metadata, postcard::Error> {
        // Each layout extends the one before it at the end, so an older
        // snapshot ends before a newer layout's last field: tried newest
        // first.
        let e = match postcard::from_bytes::<Stored>(bytes) {
            Ok(mut m) => {
                for (name, bytes) in m.max_message_bytes {
                    if let Some(t) = m.topics.get_mut(&name) {
                        t.config.max_message_bytes = Some(bytes);
                    }
                }
                return Ok(Metadata {
                    nodes: m.nodes,
                    topics: m.topics,
                    next_topic_id: m.next_topic_id,
                    leaders: m.leaders,
                    log_starts: m.log_starts,
                });
            }
            Err(e) => e,
        };
        if let Ok(v3) = postcard::from_bytes::<MetadataV3>(bytes) {
            return Ok(Metadata {
                nodes: v3.nodes,
                topics: v3.topics,
                next_topic_id: v3.next_topic_id,
                leaders: v3.leaders,
                log_starts: v3.log_starts,
            });
        }
        if let Ok(v2) = postcard::from_bytes::<MetadataV2>(bytes) {
            return Ok(Metadata {
                nodes: v2.nodes,
                topics: v2.topics,
                next_topic_id: v2.next_topic_id,
                leaders: v2.leaders,
                log_starts: BTreeMap::new(),
            });
        }
        match postcard::from_bytes::<MetadataV1>(bytes) {
            Ok(v1) => Ok(Metadata {
                nodes: v1.nodes,
                topics: v1.topics,
                next_topic_id: v1.next_topic_id,
                ..Metadata::default()
            }),
            Err(_) => Err(e),
        }
    }

    /// The offset records of partition `partition` of the topic with id
    /// `topic_id` were deleted below (0: none deleted).
    pub fn log_start(&self, topic_id: u64, partition: u32) -> u64 {
        self.log_starts
            .get(&topic_id)
            .and_then(|p| p.get(&partition))
            .copied()
            .unwrap_or(0)
    }

    /// The leadership last reported for partition `partition` of `topic`.
    pub fn reported_leader(&self, topic: &TopicMeta, partition: u32) -> Option<&ReportedLeader> {
        self.leaders.get(&topic.topic_id)?.get(&partition)
    }

    /// Applies `cmd`, returning its outcome and the events it caused.
    pub fn apply(&mut self, cmd: &Command) -> (Outcome, Option<MetadataEvent>) {
        match cmd {
            Command::CreateTopic {
                name,
                partitions,
                replication_factor,
                config,
            } => self.create_topic(name, *partitions, *replication_factor, config, &[]),
            Command::CreateTopicV2 {
                name,
                partitions,
                replication_factor,
                config,
                avoid,
            } => self.create_topic(name, *partitions, *replication_factor, config, avoid),
            Command::DeleteTopic { name } => match self.topics.remove(name) {
                Some(meta) => {
                    self.leaders.remove(&meta.topic_id);
                    self.log_starts.remove(&meta.topic_id);
                    (Outcome::ok(), Some(MetadataEvent::TopicDeleted(meta)))
                }
                None => (
                    Outcome::refused(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("no topic {name:?}"),
                    ),
                    None,
                ),
            },
            Command::ReportLeader {
                topic_id,
                partition,
                leader,
            } => (self.report_leader(*topic_id, *partition, leader), None),
            Command::CreatePartitions { name, count } => self.create_partitions(name, *count, &[]),
            Command::CreatePartitionsV2 { name, count, avoid } => {
                self.create_partitions(name, *count, avoid)
            }
            Command::AlterTopicConfig {
                name,
                expected,
                config,
            }
            | Command::AlterTopicConfigV2 {
                name,
                expected,
                config,
            } => match self.topics.get_mut(name) {
                None => (
                    Outcome::refused(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("no topic {name:?}"),
                    ),
                    None,
                ),
                Some(t) if t.config != *expected => (
                    Outcome::refused(
                        ErrorCode::InvalidConfig,
                        format!("the settings of topic {name:?} changed meanwhile"),
                    ),
                    None,
                ),
                Some(t) => {
                    t.config = config.clone();
                    (
                        Outcome::ok(),
                        Some(MetadataEvent::TopicConfigChanged(t.clone())),
                    )
                }
            },
            Command::DeleteRecords {
                topic_id,
                partition,
                before,
            } => (self.delete_records(*topic_id, *partition, *before), None),
            Command::ElectPreferred {
                partitions,
                asked_at_ms,
            } => (
                Outcome::ok(),
                Some(MetadataEvent::PreferredElection {
                    partitions: partitions.clone(),
                    asked_at_ms: *asked_at_ms,
                }),
            ),
        }
    }

    /// Creates topic `name` ([`Command::CreateTopicV2`]).
    fn create_topic(
        &mut self,
        name: &str,
        partitions: u32,
        replication_factor: u32,
        config: &TopicConfig,
        avoid: &[u64],
    ) -> (Outcome, Option<MetadataEvent>) {
        if self.topics.contains_key(name) {
            return (
                Outcome::refused(
                    ErrorCode::TopicAlreadyExists,
                    format!("topic {name:?} already exists"),
                ),
                None,
            );
        }
        let n = self.nodes.len();
        let rf = replication_factor as usize;
        if rf == 0 || rf > n {
            return (
                Outcome::refused(
                    ErrorCode::InvalidReplicationFactor,
                    format!("replication factor {rf} needs 1..={n} nodes; the cluster has {n}"),
                ),
                None,
            );
        }
        let topic_id = self.next_topic_id.max(1);
        self.next_topic_id = topic_id + 1;
        let meta = TopicMeta {
            name: name.to_owned(),
            topic_id,
            replicas: assign(&placement(&self.nodes, avoid, rf), topic_id, partitions, rf),
            config: config.clone(),
        };
        self.topics.insert(name.to_owned(), meta.clone());
        (Outcome::ok(), Some(MetadataEvent::TopicCreated(meta)))
    }

    /// Records that the records of a partition below `before` are deleted
    /// (never lowering what an earlier deletion recorded); refused for a
    /// topic or partition that does not exist.
    fn delete_records(&mut self, topic_id: u64, partition: u32, before: u64) -> Outcome {
        let exists = self
            .topics
            .values()
            .any(|t| t.topic_id == topic_id && (partition as usize) < t.replicas.len());
        if !exists {
            return Outcome::refused(
                ErrorCode::UnknownTopicOrPartition,
                format!("no partition {partition} of topic id {topic_id}"),
            );
        }
        let start = self
            .log_starts
            .entry(topic_id)
            .or_default()
            .entry(partition)
            .or_default();
        *start = (*start).max(before);
        Outcome::ok()
    }

    /// Raises `name`'s partition count to `count`, refused if there is no
    /// such topic, if `count` is not above the current count, or if the
    /// cluster has fewer nodes than the topic's replication factor.
    fn create_partitions(
        &mut self,
        name: &str,
        count: u32,
        avoid: &[u64],
    ) -> (Outcome, Option<MetadataEvent>) {
        let n = self.nodes.len();
        let Some(t) = self.topics.get_mut(name) else {
            return (
                Outcome::refused(
                    ErrorCode::UnknownTopicOrPartition,
                    format!("no topic {name:?}"),
                ),
                None,
            );
        };
        let from = t.replicas.len() as u32;
        if count <= from {
            return (
                Outcome::refused(
                    ErrorCode::InvalidPartitions,
                    format!(
                        "topic {name:?} has {from} partitions; the count can only rise, \
                         and {count} is not more"
                    ),
                ),
                None,
            );
        }
        let rf = t.replicas.first().map_or(1, Vec::len);
        if rf == 0 || rf > n {
            return (
                Outcome::refused(
                    ErrorCode::InvalidReplicationFactor,
                    format!("replication factor {rf} needs {rf} nodes; the cluster has {n}"),
                ),
                None,
            );
        }
        let mut all = assign(&placement(&self.nodes, avoid, rf), t.topic_id, count, rf);
        t.replicas.extend(all.drain(from as usize..));
        (
            Outcome::ok(),
            Some(MetadataEvent::PartitionsAdded(t.clone(), from)),
        )
    }

    /// Records `report` unless its topic is gone or the partition or the
    /// leader is not one of the topic's (refused), or a report of a later
    /// epoch is already recorded (ignored: the answer is still `None`).
    fn report_leader(&mut self, topic_id: u64, partition: u32, report: &ReportedLeader) -> Outcome {
        let Some(t) = self.topics.values().find(|t| t.topic_id == topic_id) else {
            return Outcome::refused(
                ErrorCode::UnknownTopicOrPartition,
                format!("no topic with id {topic_id}"),
            );
        };
        let Some(replicas) = t.replicas.get(partition as usize) else {
            return Outcome::refused(
                ErrorCode::UnknownTopicOrPartition,
                format!("topic {:?} has no partition {partition}", t.name),
            );
        };
        if !replicas.contains(&report.leader) {
            return Outcome::refused(
                ErrorCode::InvalidRequest,
                format!("node {} holds no replica of that partition", report.leader),
            );
        }
        let slot = self.leaders.entry(topic_id).or_default();
        match slot.get(&partition) {
            Some(old) if old.epoch > report.epoch => {}
            _ => {
                slot.insert(partition, report.clone());
            }
        }
        Outcome::ok()
    }

    /// The events that turn `self` into `new` (after a snapshot install):
    /// deletions first, then creations, added partitions and changed
    /// settings; a topic whose id changed is both deleted and created.
    pub fn diff(&self, new: &Metadata) -> Vec<MetadataEvent> {
        let mut events = Vec::new();
        for (name, old) in &self.topics {
            if new
                .topics
                .get(name)
                .is_none_or(|t| t.topic_id != old.topic_id)
            {
                events.push(MetadataEvent::TopicDeleted(old.clone()));
            }
        }
        for (name, t) in &new.topics {
            match self.topics.get(name) {
                Some(o) if o.topic_id == t.topic_id => {
                    if t.replicas.len() > o.replicas.len() {
                        events.push(MetadataEvent::PartitionsAdded(
                            t.clone(),
                            o.replicas.len() as u32,
                        ));
                    }
                    if t.config != o.config {
                        events.push(MetadataEvent::TopicConfigChanged(t.clone()));
                    }
                }
                _ => events.push(MetadataEvent::TopicCreated(t.clone())),
            }
        }
        events
    }
}

impl Command {
    /// Adds `nodes` to the nodes a command that places replicas keeps them
    /// off (`avoid` of [`Command::CreateTopicV2`] and
    /// [`Command::CreatePartitionsV2`]); other commands are unchanged.
    pub fn avoid_also(&mut self, nodes: &[u64]) {
        if let Command::CreateTopicV2 { avoid, .. } | Command::CreatePartitionsV2 { avoid, .. } =
            self
        {
            for n in nodes {
                if !avoid.contains(n) {
                    avoid.push(*n);
                }
            }
            avoid.sort_unstable();
        }
    }
}

/// The nodes replicas of `rf` copies are placed on: `nodes` but those in
/// `avoid` (nodes the proposer could not reach, which Kafka clients are
/// not told of either), if at least `rf` remain; otherwise all of `nodes`
/// (a partition whose majority is reachable still gets a leader).
pub fn placement(nodes: &[u64], avoid: &[u64], rf: usize) -> Vec<u64> {
    let reachable: Vec<u64> = nodes
        .iter()
        .copied()
        .filter(|n| !avoid.contains(n))
        .collect();
    if reachable.len() >= rf {
        reachable
    } else {
        nodes.to_vec()
    }
}

/// Replica lists: partition `p` takes `rf` consecutive nodes (in id order)
/// starting at `(topic_id + p) mod n`, so leaders rotate over the nodes
/// within a topic and the starting node varies from topic to topic.
///
/// With no nodes (metadata not yet known) every list is empty.
pub fn assign(nodes: &[u64], topic_id: u64, partitions: u32, rf: usize) -> Vec<Vec<u64>> {
    let n = nodes.len();
    if n == 0 {
        return vec![Vec::new(); partitions as usize];
    }
    (0..partitions)
        .map(|p| {
            let start = ((topic_id + u64::from(p)) % n as u64) as usize;
            (0..rf).map(|k| nodes[(start + k) % n]).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str, partitions: u32, rf: u32) -> Command {
        Command::CreateTopic {
            name: name.into(),
            partitions,
            replication_factor: rf,
            config: TopicConfig::default(),
        }
    }

    fn three() -> Metadata {
        Metadata {
            nodes: vec![1, 2, 3],
            ..Metadata::default()
        }
    }

    #[test]
    fn replicas_spread_round_robin_from_a_per_topic_start() {
        assert_eq!(
            assign(&[1, 2, 3], 1, 4, 2),
            [vec![2, 3], vec![3, 1], vec![1, 2], vec![2, 3]]
        );
        assert_eq!(assign(&[1, 2, 3], 2, 1, 3), [vec![3, 1, 2]]);
        // No nodes known yet (a node asked before its controller formed).
        assert_eq!(assign(&[], 1, 2, 3), [Vec::<u64>::new(), Vec::new()]);
        // Every node leads a third of a topic's partitions.
        let leaders: Vec<u64> = assign(&[1, 2, 3], 7, 3, 1).iter().map(|r| r[0]).collect();
        assert_eq!(leaders, [2, 3, 1]);
    }

    #[test]
    fn create_and_delete() {
        let mut m = three();
        let (o, e) = m.apply(&create("a", 2, 3));
        assert_eq!(o.code, ErrorCode::None);
        let Some(MetadataEvent::TopicCreated(a)) = e else {
            panic!("{e:?}")
        };
        assert_eq!(a.topic_id, 1);
        assert_eq!(a.replicas.len(), 2);
        assert_eq!(
            m.apply(&create("a", 1, 1)).0.code,
            ErrorCode::TopicAlreadyExists
        );
        assert_eq!(
            m.apply(&create("b", 1, 4)).0.code,
            ErrorCode::InvalidReplicationFactor
        );
        assert_eq!(
            m.apply(&create("b", 1, 0)).0.code,
            ErrorCode::InvalidReplicationFactor
        );
        let (o, e) = m.apply(&Command::DeleteTopic { name: "a".into() });
        assert_eq!(o.code, ErrorCode::None);
        assert_eq!(e, Some(MetadataEvent::TopicDeleted(a)));
        assert_eq!(
            m.apply(&Command::DeleteTopic { name: "a".into() }).0.code,
            ErrorCode::UnknownTopicOrPartition
        );
        // Created again: a new id.
        m.apply(&create("a", 1, 1));
        assert_eq!(m.topics["a"].topic_id, 2);
    }

    #[test]
    fn diff_replays_what_a_snapshot_changed() {
        let mut old = three();
        old.apply(&create("kept", 1, 1));
        old.apply(&create("gone", 1, 1));
        old.apply(&create("again", 1, 1));
        let mut new = old.clone();
        new.apply(&Command::DeleteTopic {
            name: "gone".into(),
        });
        new.apply(&Command::DeleteTopic {
            name: "again".into(),
        });
        new.apply(&create("again", 1, 1));
        new.apply(&create("fresh", 1, 1));
        let names: Vec<String> = old
            .diff(&new)
            .iter()
            .map(|e| match e {
                MetadataEvent::TopicCreated(t) => format!("+{}", t.name),
                MetadataEvent::TopicDeleted(t) => format!("-{}", t.name),
                MetadataEvent::PartitionsAdded(t, from) => {
                    format!("{}:{from}..{}", t.name, t.replicas.len())
                }
                MetadataEvent::TopicConfigChanged(t) => format!("~{}", t.name),
                MetadataEvent::PreferredElection { .. } => "elect".to_owned(),
            })
            .collect();
        assert_eq!(names, ["-again", "-gone", "+again", "+fresh"]);
        // Partitions added to a kept topic; an added topic's are in its
        // creation.
        let mut more = new.clone();
        more.apply(&Command::CreatePartitions {
            name: "kept".into(),
            count: 3,
        });
        more.apply(&Command::CreatePartitions {
            name: "fresh".into(),
            count: 2,
        });
        let retained = TopicConfig {
            retention_ms: Some(1000),
            ..TopicConfig::default()
        };
        more.apply(&Command::AlterTopicConfig {
            name: "kept".into(),
            expected: TopicConfig::default(),
            config: retained,
        });
        let events = old.diff(&more);
        let kept = more.topics["kept"].clone();
        assert!(events.contains(&MetadataEvent::PartitionsAdded(kept.clone(), 1)));
        assert!(events.contains(&MetadataEvent::TopicConfigChanged(kept)));
        assert!(events.contains(&MetadataEvent::TopicCreated(more.topics["fresh"].clone())));
        assert_eq!(events.len(), 6);
    }

    #[test]
    fn settings_change_only_from_the_settings_the_change_was_made_from() {
        let mut m = three();
        m.apply(&create("a", 1, 1));
        let day = TopicConfig {
            retention_ms: Some(86_400_000),
            ..TopicConfig::default()
        };
        let hour = TopicConfig {
            retention_ms: Some(3_600_000),
            ..TopicConfig::default()
        };
        let alter = |expected: &TopicConfig, config: &TopicConfig| Command::AlterTopicConfig {
            name: "a".into(),
            expected: expected.clone(),
            config: config.clone(),
        };
        let (o, e) = m.apply(&alter(&TopicConfig::default(), &day));
        assert_eq!(o.code, ErrorCode::None);
        assert_eq!(
            e,
            Some(MetadataEvent::TopicConfigChanged(m.topics["a"].clone()))
        );
        assert_eq!(m.topics["a"].config, day);
        // Made from the settings before: refused, nothing changes.
        let (o, e) = m.apply(&alter(&TopicConfig::default(), &hour));
        assert_eq!((o.code, e), (ErrorCode::InvalidConfig, None));
        assert_eq!(m.topics["a"].config, day);
        let (o, _) = m.apply(&alter(&day, &hour));
        assert_eq!(o.code, ErrorCode::None);
        assert_eq!(m.topics["a"].config, hour);
        let (o, _) = m.apply(&Command::AlterTopicConfig {
            name: "b".into(),
            expected: TopicConfig::default(),
            config: hour.clone(),
        });
        assert_eq!(o.code, ErrorCode::UnknownTopicOrPartition);
    }

    #[test]
    fn partitions_are_added_with_the_topics_replication_factor() {
        let mut m = three();
        m.apply(&create("a", 2, 2));
        let before = m.topics["a"].clone();
        let (o, e) = m.apply(&Command::CreatePartitions {
            name: "a".into(),
            count: 5,
        });
        assert_eq!(o.code, ErrorCode::None);
        let a = m.topics["a"].clone();
        assert_eq!(e, Some(MetadataEvent::PartitionsAdded(a.clone(), 2)));
        // The old partitions keep their replicas; the new ones are placed
        // as a topic created with five would have them.
        assert_eq!(a.replicas[..2], before.replicas[..]);
        assert_eq!(a.replicas, assign(&m.nodes, a.topic_id, 5, 2));
        assert_eq!(a.topic_id, before.topic_id);
        for count in [5, 4, 0] {
            let (o, e) = m.apply(&Command::CreatePartitions {
                name: "a".into(),
                count,
            });
            assert_eq!((o.code, e), (ErrorCode::InvalidPartitions, None));
        }
        let (o, _) = m.apply(&Command::CreatePartitions {
            name: "b".into(),
            count: 5,
        });
        assert_eq!(o.code, ErrorCode::UnknownTopicOrPartition);
        // A cluster smaller than the topic's replication factor.
        m.apply(&create("c", 1, 3));
        m.nodes = vec![1, 2];
        let (o, _) = m.apply(&Command::CreatePartitions {
            name: "c".into(),
            count: 2,
        });
        assert_eq!(o.code, ErrorCode::InvalidReplicationFactor);
        assert_eq!(m.topics["c"].replicas.len(), 1);
    }

    #[test]
    fn commands_keep_their_encoding() {
        // Entries are encoded by variant index: a command added later must
        // not renumber the ones logs already hold.
        let delete = postcard::to_allocvec(&Command::DeleteTopic { name: "a".into() }).unwrap();
        assert_eq!(delete, [1, 1, b'a']);
        let report = postcard::to_allocvec(&report(1, 0, 2, 3)).unwrap();
        assert_eq!(report[0], 2);
        let add = postcard::to_allocvec(&Command::CreatePartitions {
            name: "a".into(),
            count: 4,
        })
        .unwrap();
        assert_eq!(add, [3, 1, b'a', 4]);
        let alter = postcard::to_allocvec(&Command::AlterTopicConfig {
            name: "a".into(),
            expected: TopicConfig::default(),
            config: TopicConfig::default(),
        })
        .unwrap();
        // The settings without `max_message_bytes`: two six-option
        // configs.
        assert_eq!(alter, [4, 1, b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let create = Command::CreateTopic {
            name: "a".into(),
            partitions: 2,
            replication_factor: 3,
            config: TopicConfig {
                max_message_bytes: Some(9),
                ..TopicConfig::default()
            },
        };
        assert_eq!(
            postcard::to_allocvec(&create).unwrap(),
            [0, 1, b'a', 2, 3, 0, 0, 0, 0, 0, 0]
        );
        // The commands of every setting come after the others.
        let limited = TopicConfig {
            max_message_bytes: Some(9),
            ..TopicConfig::default()
        };
        let create = postcard::to_allocvec(&Command::CreateTopicV2 {
            name: "a".into(),
            partitions: 2,
            replication_factor: 3,
            config: limited.clone(),
            avoid: vec![4],
        })
        .unwrap();
        assert_eq!(create, [6, 1, b'a', 2, 3, 0, 0, 0, 0, 0, 0, 1, 9, 1, 4]);
        let alter = postcard::to_allocvec(&Command::AlterTopicConfigV2 {
            name: "a".into(),
            expected: TopicConfig::default(),
            config: limited,
        })
        .unwrap();
        assert_eq!(
            alter,
            [7, 1, b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9]
        );
        let add = postcard::to_allocvec(&Command::CreatePartitionsV2 {
            name: "a".into(),
            count: 4,
            avoid: vec![],
        })
        .unwrap();
        assert_eq!(add, [8, 1, b'a', 4, 0]);
        let deletion = postcard::to_allocvec(&Command::DeleteRecords {
            topic_id: 1,
            partition: 2,
            before: 3,
        })
        .unwrap();
        assert_eq!(deletion, [5, 1, 2, 3]);
    }

    /// Replicas go on the nodes the proposer reached when there are enough
    /// of them for the factor, else on every node; old commands avoid none.
    #[test]
    fn replicas_keep_off_the_nodes_the_proposer_could_not_reach() {
        assert_eq!(placement(&[1, 2, 3], &[3], 2), [1, 2]);
        assert_eq!(placement(&[1, 2, 3], &[3], 3), [1, 2, 3]);
        assert_eq!(placement(&[1, 2, 3], &[], 1), [1, 2, 3]);
        let mut m = three();
        m.apply(&Command::CreateTopicV2 {
            name: "a".into(),
            partitions: 6,
            replication_factor: 1,
            config: TopicConfig::default(),
            avoid: vec![3],
        });
        let a = &m.topics["a"].replicas;
        assert!(a.iter().all(|r| r.len() == 1 && r[0] != 3), "{a:?}");
        m.apply(&Command::CreateTopicV2 {
            name: "b".into(),
            partitions: 6,
            replication_factor: 2,
            config: TopicConfig::default(),
            avoid: vec![3],
        });
        let b = &m.topics["b"].replicas;
        assert!(b.iter().all(|r| r.len() == 2 && !r.contains(&3)), "{b:?}");
        // Three copies cannot keep off node 3: every node, as before.
        m.apply(&Command::CreateTopicV2 {
            name: "c".into(),
            partitions: 3,
            replication_factor: 3,
            config: TopicConfig::default(),
            avoid: vec![3],
        });
        assert!(m.topics["c"].replicas.iter().all(|r| r.len() == 3));
        m.apply(&Command::CreatePartitionsV2 {
            name: "a".into(),
            count: 12,
            avoid: vec![1],
        });
        let a = &m.topics["a"].replicas;
        assert!(a[..6].iter().all(|r| r[0] != 3), "{a:?}");
        assert!(a[6..].iter().all(|r| r.len() == 1 && r[0] != 1), "{a:?}");
        // A command from an older log places on every node.
        m.apply(&create("d", 3, 1));
        let d: std::collections::BTreeSet<u64> =
            m.topics["d"].replicas.iter().flatten().copied().collect();
        assert_eq!(d, std::collections::BTreeSet::from([1, 2, 3]));
    }

    #[test]
    fn record_deletions_only_rise_and_go_with_their_topic() {
        let mut m = three();
        m.apply(&create("a", 2, 3));
        let id = m.topics["a"].topic_id;
        let delete = |partition, before| Command::DeleteRecords {
            topic_id: id,
            partition,
            before,
        };
        assert_eq!(m.log_start(id, 1), 0);
        assert_eq!(m.apply(&delete(1, 10)).0.code, ErrorCode::None);
        assert_eq!(m.apply(&delete(1, 4)).0.code, ErrorCode::None);
        assert_eq!(m.log_start(id, 1), 10);
        assert_eq!(m.log_start(id, 0), 0);
        assert_eq!(
            m.apply(&delete(2, 1)).0.code,
            ErrorCode::UnknownTopicOrPartition
        );
        assert_eq!(
            m.apply(&Command::DeleteRecords {
                topic_id: id + 1,
                partition: 0,
                before: 1
            })
            .0
            .code,
            ErrorCode::UnknownTopicOrPartition
        );
        m.apply(&Command::DeleteTopic { name: "a".into() });
        assert!(m.log_starts.is_empty());
    }

    fn report(topic_id: u64, partition: u32, leader: u64, epoch: u64) -> Command {
        Command::ReportLeader {
            topic_id,
            partition,
            leader: ReportedLeader {
                leader,
                epoch,
                isr: vec![leader],
            },
        }
    }

    #[test]
    fn leader_reports_keep_the_latest_epoch() {
        let mut m = three();
        m.apply(&create("a", 2, 3));
        let a = m.topics["a"].clone();
        assert_eq!(m.reported_leader(&a, 0), None);
        assert_eq!(m.apply(&report(1, 0, 2, 5)).0.code, ErrorCode::None);
        assert_eq!(m.reported_leader(&a, 0).map(|r| r.leader), Some(2));
        // A stale report (lower epoch) changes nothing.
        assert_eq!(m.apply(&report(1, 0, 3, 4)).0.code, ErrorCode::None);
        assert_eq!(
            m.reported_leader(&a, 0).map(|r| (r.leader, r.epoch)),
            Some((2, 5))
        );
        // The same epoch updates (a new in-sync set); a later one wins.
        assert_eq!(m.apply(&report(1, 0, 3, 6)).0.code, ErrorCode::None);
        assert_eq!(
            m.reported_leader(&a, 0).map(|r| (r.leader, r.epoch)),
            Some((3, 6))
        );
        assert_eq!(m.reported_leader(&a, 1), None);
        // Unknown topic id, partition, or a node holding no replica.
        assert_eq!(
            m.apply(&report(9, 0, 1, 7)).0.code,
            ErrorCode::UnknownTopicOrPartition
        );
        assert_eq!(
            m.apply(&report(1, 2, 1, 7)).0.code,
            ErrorCode::UnknownTopicOrPartition
        );
        assert_eq!(
            m.apply(&report(1, 0, 4, 7)).0.code,
            ErrorCode::InvalidRequest
        );
        // Deleting the topic forgets its reports; a report for it then
        // changes nothing.
        m.apply(&Command::DeleteTopic { name: "a".into() });
        assert!(m.leaders.is_empty());
        assert_eq!(
            m.apply(&report(1, 0, 2, 9)).0.code,
            ErrorCode::UnknownTopicOrPartition
        );
        assert!(m.leaders.is_empty());
    }

    #[test]
    fn snapshots_written_before_leader_reports_or_record_deletions_still_load() {
        #[derive(Serialize)]
        struct Old {
            nodes: Vec<u64>,
            topics: BTreeMap<String, TopicMeta>,
            next_topic_id: u64,
        }
        let mut m = three();
        m.apply(&create("a", 2, 3));
        let old = postcard::to_allocvec(&Old {
            nodes: m.nodes.clone(),
            topics: m.topics.clone(),
            next_topic_id: m.next_topic_id,
        })
        .unwrap();
        assert_eq!(Metadata::decode(&old).unwrap(), m);
        m.apply(&report(1, 1, 3, 2));
        // Before record deletions: the layout without them.
        #[derive(Serialize)]
        struct V2<'a> {
            nodes: &'a Vec<u64>,
            topics: &'a BTreeMap<String, TopicMeta>,
            next_topic_id: u64,
            leaders: &'a BTreeMap<u64, BTreeMap<u32, ReportedLeader>>,
        }
        let v2 = postcard::to_allocvec(&V2 {
            nodes: &m.nodes,
            topics: &m.topics,
            next_topic_id: m.next_topic_id,
            leaders: &m.leaders,
        })
        .unwrap();
        assert_eq!(Metadata::decode(&v2).unwrap(), m);
        m.apply(&Command::DeleteRecords {
            topic_id: 1,
            partition: 1,
            before: 7,
        });
        // Before `max_message_bytes`.
        #[derive(Serialize)]
        struct V3<'a> {
            nodes: &'a Vec<u64>,
            topics: &'a BTreeMap<String, TopicMeta>,
            next_topic_id: u64,
            leaders: &'a BTreeMap<u64, BTreeMap<u32, ReportedLeader>>,
            log_starts: &'a BTreeMap<u64, BTreeMap<u32, u64>>,
        }
        let v3 = postcard::to_allocvec(&V3 {
            nodes: &m.nodes,
            topics: &m.topics,
            next_topic_id: m.next_topic_id,
            leaders: &m.leaders,
            log_starts: &m.log_starts,
        })
        .unwrap();
        assert_eq!(Metadata::decode(&v3).unwrap(), m);
        let new = postcard::to_allocvec(&m).unwrap();
        assert_eq!(new.len(), v3.len() + 1, "no topic with a batch limit");
        assert_eq!(Metadata::decode(&new).unwrap(), m);
        m.apply(&create("b", 1, 1));
        let limited = TopicConfig {
            max_message_bytes: Some(300),
            ..TopicConfig::default()
        };
        m.apply(&Command::AlterTopicConfigV2 {
            name: "b".into(),
            expected: TopicConfig::default(),
            config: limited.clone(),
        });
        assert_eq!(m.topics["b"].config, limited);
        let new = postcard::to_allocvec(&m).unwrap();
        let back = Metadata::decode(&new).unwrap();
        assert_eq!(back.topics["b"].config.max_message_bytes, Some(300));
        assert_eq!(back.topics["a"].config.max_message_bytes, None);
        assert_eq!(back, m);
        assert!(Metadata::decode(&[0xff; 3]).is_err());
    }
}
