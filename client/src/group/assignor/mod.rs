//! Partition assignors: pure functions from the group's subscriptions to
//! each member's partitions, run by the group leader.
//!
//! - [`range`] — Kafka's `range`: per topic, contiguous ranges in member
//!   order (eager).
//! - [`roundrobin`] — Kafka's `roundrobin`: all partitions dealt out in
//!   turn (eager).
//! - [`sticky`] — Kafka's `cooperative-sticky`: balanced, keeps owned
//!   partitions where balance allows, and never hands a partition to a new
//!   owner in the generation its old owner still holds it (cooperative).
//!
//! Names are Kafka's, so a group can mix Sluice and Kafka members.

use std::collections::{BTreeMap, BTreeSet};

use sluice_protocol::group::consumer_protocol::TopicPartitions;

pub mod range;
pub mod roundrobin;
pub mod sticky;

#[cfg(test)]
mod tests;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// What the leader knows of one member when it assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its static identity, if any (orders members like Kafka: static
    /// members by instance id, so a restart keeps its place).
    pub group_instance_id: Option<String>,
    /// Topics it subscribes to.
    pub topics: BTreeSet<String>,
    /// Partitions it says it owns now.
    pub owned: BTreeSet<TopicPartition>,
    /// The generation in which it owned them (-1 unknown).
    pub generation_id: i32,
}

impl MemberSubscription {
    fn sort_key(&self) -> &str {
        self.group_instance_id.as_deref().unwrap_or(&self.member_id)
    }
}

/// Each member's partitions, by member id. Every member given to an
/// assignor has an entry, possibly empty.
pub type GroupAssignment = BTreeMap<String, BTreeSet<TopicPartition>>;

/// How members move partitions during a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebalanceProtocol {
    /// Every member gives up all its partitions before rejoining.
    Eager,
    /// Members keep what they are assigned again; a moving partition is
    /// first revoked by its owner and assigned in a later rebalance.
    Cooperative,
}

/// The assignors this client runs, by Kafka's protocol name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssignorKind {
    /// `range`
    Range,
    /// `roundrobin`
    RoundRobin,
    /// `cooperative-sticky`
    CooperativeSticky,
}

impl AssignorKind {
    /// Kafka's protocol name.
    pub fn name(self) -> &'static str {
        match self {
            AssignorKind::Range => "range",
            AssignorKind::RoundRobin => "roundrobin",
            AssignorKind::CooperativeSticky => "cooperative-sticky",
        }
    }

    /// The assignor with this protocol name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "range" => Some(AssignorKind::Range),
            "roundrobin" => Some(AssignorKind::RoundRobin),
            "cooperative-sticky" => Some(AssignorKind::CooperativeSticky),
            _ => None,
        }
    }

    /// Whether members give up everything before a rebalance.
    pub fn protocol(self) -> RebalanceProtocol {
        match self {
            AssignorKind::Range | AssignorKind::RoundRobin => RebalanceProtocol::Eager,
            AssignorKind::CooperativeSticky => RebalanceProtocol::Cooperative,
        }
    }

    /// Assigns the partitions of the subscribed topics (`partition_counts`:
    /// topic → partitions; topics missing from it are skipped). Each
    /// existing partition of a subscribed topic goes to at most one member,
    /// and to one member exactly unless (cooperative) its previous owner
    /// must revoke it first.
    pub fn assign(
        self,
        partition_counts: &BTreeMap<String, u32>,
        members: &[MemberSubscription],
    ) -> GroupAssignment {
        let mut sorted: Vec<&MemberSubscription> = members.iter().collect();
        sorted.sort_by(|a, b| (a.sort_key(), &a.member_id).cmp(&(b.sort_key(), &b.member_id)));
        match self {
            AssignorKind::Range => range::assign(partition_counts, &sorted),
            AssignorKind::RoundRobin => roundrobin::assign(partition_counts, &sorted),
            AssignorKind::CooperativeSticky => {
                sticky::assign_cooperative(partition_counts, &sorted)
            }
        }
    }
}

/// The entry for every member, empty.
fn empty_assignment(members: &[&MemberSubscription]) -> GroupAssignment {
    members
        .iter()
        .map(|m| (m.member_id.clone(), BTreeSet::new()))
        .collect()
}

/// Groups partitions by topic, in the ConsumerProtocol's shape.
pub fn to_topic_partitions(set: &BTreeSet<TopicPartition>) -> Vec<TopicPartitions> {
    let mut out: Vec<TopicPartitions> = Vec::new();
    for tp in set {
        match out.last_mut() {
            Some(last) if last.topic == tp.topic => last.partitions.push(tp.partition),
            _ => out.push(TopicPartitions {
                topic: tp.topic.clone(),
                partitions: vec![tp.partition],
            }),
        }
    }
    out
}

/// Flattens the ConsumerProtocol's per-topic lists.
pub fn from_topic_partitions(list: &[TopicPartitions]) -> BTreeSet<TopicPartition> {
    list.iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|&p| TopicPartition::new(t.topic.clone(), p))
        })
        .collect()
}
