//! Cluster metadata and the commands that change it: the controller's
//! state machine, as pure functions of the log (every node applies the
//! same entries in the same order and ends with the same metadata).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::topic_config::TopicConfig;

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
        /// Settings.
        config: TopicConfig,
    },
    /// Delete a topic.
    DeleteTopic {
        /// Name.
        name: String,
    },
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
    /// Settings.
    pub config: TopicConfig,
}

impl TopicMeta {
    /// Whether node `id` holds at least one replica of this topic.
    pub fn hosted_on(&self, id: u64) -> bool {
        self.replicas.iter().any(|r| r.contains(&id))
    }
}

/// A change of the metadata, told to the [`super::MetadataObserver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataEvent {
    /// A topic was created.
    TopicCreated(TopicMeta),
    /// A topic was deleted.
    TopicDeleted(TopicMeta),
}

/// The cluster metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The controller group's voters, ascending (from its membership).
    pub nodes: Vec<u64>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMeta>,
    /// The id the next created topic gets.
    pub next_topic_id: u64,
}

impl Metadata {
    /// Applies `cmd`, returning its outcome and the events it caused.
    pub fn apply(&mut self, cmd: &Command) -> (Outcome, Option<MetadataEvent>) {
        match cmd {
            Command::CreateTopic {
                name,
                partitions,
                replication_factor,
                config,
            } => {
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
                let rf = *replication_factor as usize;
                if rf == 0 || rf > n {
                    return (
                        Outcome::refused(
                            ErrorCode::NotEnoughReplicas,
                            format!(
                                "replication factor {rf} needs 1..={n} nodes; the cluster has {n}"
                            ),
                        ),
                        None,
                    );
                }
                let topic_id = self.next_topic_id.max(1);
                self.next_topic_id = topic_id + 1;
                let meta = TopicMeta {
                    name: name.clone(),
                    topic_id,
                    replicas: assign(&self.nodes, topic_id, *partitions, rf),
                    config: config.clone(),
                };
                self.topics.insert(name.clone(), meta.clone());
                (Outcome::ok(), Some(MetadataEvent::TopicCreated(meta)))
            }
            Command::DeleteTopic { name } => match self.topics.remove(name) {
                Some(meta) => (Outcome::ok(), Some(MetadataEvent::TopicDeleted(meta))),
                None => (
                    Outcome::refused(
                        ErrorCode::UnknownTopicOrPartition,
                        format!("no topic {name:?}"),
                    ),
                    None,
                ),
            },
        }
    }

    /// The events that turn `self` into `new` (after a snapshot install):
    /// deletions first, then creations; a topic whose id changed is both.
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
            if self
                .topics
                .get(name)
                .is_none_or(|o| o.topic_id != t.topic_id)
            {
                events.push(MetadataEvent::TopicCreated(t.clone()));
            }
        }
        events
    }
}

/// Replica lists: partition `p` takes `rf` consecutive nodes (in id order)
/// starting at `(topic_id + p) mod n`, so leaders rotate over the nodes
/// within a topic and the starting node varies from topic to topic.
pub fn assign(nodes: &[u64], topic_id: u64, partitions: u32, rf: usize) -> Vec<Vec<u64>> {
    let n = nodes.len();
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
            ErrorCode::NotEnoughReplicas
        );
        assert_eq!(
            m.apply(&create("b", 1, 0)).0.code,
            ErrorCode::NotEnoughReplicas
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
            })
            .collect();
        assert_eq!(names, ["-again", "-gone", "+again", "+fresh"]);
    }
}
