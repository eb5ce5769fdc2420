//! Which node coordinates each consumer group.
//!
//! A broker without `--cluster` coordinates every group. In a cluster, a
//! group's coordinator is the Raft leader of partition
//! `fnv1a_64(group id) % partitions` of the internal group-state topic
//! ([`crate::replication::group_state`]), so it moves with that leader
//! when a node fails. A group's calls (join, sync, heartbeat, leave,
//! describe, delete, offset commit and fetch) sent to another node are
//! refused with `NotCoordinator`, naming the coordinator, so two members
//! reaching different nodes always meet in one group.

use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;

use super::leadership::BrokerInfo;
use super::{Refused, Service};

/// FNV-1a, 64 bits: stable across builds, platforms and processes (unlike
/// std's randomized hasher), so every node and every release agrees.
pub fn group_hash(group: &str) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    group
        .bytes()
        .fold(OFFSET_BASIS, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// How long a FindCoordinator waits for a coordinator that is not known
/// yet ([`Service::group_coordinator_by`]) before it answers
/// `CoordinatorNotAvailable`: longer than creating the group-state topic at
/// a cluster's first group call takes, about an election after a
/// coordinator failed, and far below clients' request timeouts (30 s and
/// more).
pub const COORDINATOR_WAIT: Duration = Duration::from_secs(3);

/// How often [`Service::group_coordinator_by`] looks again.
const COORDINATOR_POLL: Duration = Duration::from_millis(20);

/// Where a group's calls must go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupCoordinator {
    /// This node coordinates the group (always without `--cluster`).
    Local,
    /// Another node does.
    Remote(BrokerInfo),
    /// The cluster's node list is not known yet.
    Unavailable,
}

impl Service {
    /// The coordinator of `group`. Without `--cluster`: [`GroupCoordinator::Local`],
    /// with no allocation. In a cluster: the current leader of the
    /// group's partition of the group-state topic
    /// ([`crate::replication::group_state`]), `Unavailable` while the
    /// topic does not exist or the partition has no leader. This node is
    /// named also while it is still loading the partition (its group
    /// calls are then refused with `CoordinatorNotAvailable`).
    pub fn group_coordinator(&self, group: &str) -> GroupCoordinator {
        self.coordinator_state(group).0
    }

    /// [`Service::group_coordinator`], waiting until `deadline` while it is
    /// `Unavailable` (the group-state topic being created, which this call
    /// sets off at a cluster's first group call, or its partition without
    /// a leader for an election) or is this node still loading the group's
    /// state. Clients retry `CoordinatorNotAvailable` after a backoff of
    /// their own (sarama first waits for a `__consumer_offsets` leader,
    /// which Sluice's Metadata never lists: seconds), and some take it from
    /// a JoinGroup as final (sarama 1.22 ends its `Consume`), so an answer
    /// as soon as the coordinator is known and ready saves them that.
    pub async fn group_coordinator_by(&self, group: &str, deadline: Instant) -> GroupCoordinator {
        loop {
            let (found, loaded) = self.coordinator_state(group);
            if (found != GroupCoordinator::Unavailable && loaded) || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(COORDINATOR_POLL).await;
        }
    }

    /// The coordinator, and whether this node has loaded the group's
    /// state (always true when the coordinator is not this node).
    fn coordinator_state(&self, group: &str) -> (GroupCoordinator, bool) {
        use crate::replication::group_state::{GROUP_STATE_TOPIC, partition_of, partitions};
        let Some(cluster) = self.cluster.get() else {
            return (GroupCoordinator::Local, true);
        };
        let Some(n) = partitions(cluster) else {
            if let Some(m) = self.replicas.get() {
                m.group_loads.want_topic();
            }
            return (GroupCoordinator::Unavailable, true);
        };
        let p = partition_of(group, n);
        let Some(leadership) = self.leadership.partition(GROUP_STATE_TOPIC, p) else {
            return (GroupCoordinator::Unavailable, true);
        };
        match leadership.leader {
            None => (GroupCoordinator::Unavailable, true),
            Some(id) if id == self.leadership.local_node() => {
                let loaded = self
                    .replicas
                    .get()
                    .is_some_and(|m| m.group_loads.is_loaded(p, leadership.leader_epoch));
                (GroupCoordinator::Local, loaded)
            }
            Some(id) => (
                self.leadership
                    .brokers()
                    .into_iter()
                    .find(|b| b.id == id)
                    .map_or(GroupCoordinator::Unavailable, GroupCoordinator::Remote),
                true,
            ),
        }
    }

    /// `Ok` when this node coordinates `group` (and, in a cluster, has
    /// loaded its state); otherwise `NotCoordinator` naming the
    /// coordinator's node id, or `CoordinatorNotAvailable` (no coordinator
    /// known, or this node is still loading the group's state). Every
    /// group call checks here first. In a cluster, while the coordinator is
    /// not known (the group-state topic being created, which this sets off
    /// at a cluster's first group call, or its partition between leaders)
    /// or is this node still loading the group's state, it waits for that
    /// to end, up to [`COORDINATOR_WAIT`], and refuses only then: a member
    /// sent here by FindCoordinator a moment before the load ended, or
    /// heartbeating through a coordinator's failover, is served rather than
    /// refused (some clients take a refused JoinGroup as final). Without
    /// `--cluster` it never waits.
    pub async fn check_coordinator(&self, group: &str) -> Result<(), Refused> {
        self.group_coordinator_by(group, Instant::now() + COORDINATOR_WAIT)
            .await;
        self.check_coordinator_now(group)
    }

    /// [`Service::check_coordinator`] for each group of `groups`, in order,
    /// all within one [`COORDINATOR_WAIT`].
    pub async fn check_coordinators(&self, groups: &[&str]) -> Vec<Result<(), Refused>> {
        let deadline = Instant::now() + COORDINATOR_WAIT;
        for g in groups {
            self.group_coordinator_by(g, deadline).await;
        }
        groups
            .iter()
            .map(|g| self.check_coordinator_now(g))
            .collect()
    }

    /// [`Service::check_coordinator`] without the wait: as things stand
    /// now (for listing the groups this node coordinates).
    pub fn check_coordinator_now(&self, group: &str) -> Result<(), Refused> {
        match self.coordinator_state(group) {
            (GroupCoordinator::Local, true) => Ok(()),
            (GroupCoordinator::Local, false) => Err(Refused {
                code: ErrorCode::CoordinatorNotAvailable,
                message: format!("this broker is loading the state of group {group:?}"),
            }),
            (GroupCoordinator::Remote(b), _) => Err(Refused {
                code: ErrorCode::NotCoordinator,
                message: format!(
                    "group {group:?} is coordinated by node {} ({}), not this broker",
                    b.id, b.listen
                ),
            }),
            (GroupCoordinator::Unavailable, _) => Err(Refused {
                code: ErrorCode::CoordinatorNotAvailable,
                message: format!("the coordinator of group {group:?} is not known yet"),
            }),
        }
    }

    /// [`Service::check_coordinator`], then, in a cluster, a confirmation
    /// that this node still leads the group's partition of the group-state
    /// topic with everything committed applied
    /// ([`crate::replication::partition::ReplicatedPartition::confirm_leadership`]):
    /// for a read of the group's committed offsets, which a coordinator
    /// paused while another took over would answer from older state.
    /// Refused with `NotCoordinator` when it cannot confirm it.
    pub async fn check_coordinator_for_read(&self, group: &str) -> Result<(), Refused> {
        self.check_coordinators_for_read(&[group])
            .await
            .pop()
            .unwrap_or(Ok(()))
    }

    /// [`Service::check_coordinator_for_read`] for each group of `groups`,
    /// in order, each group-state partition confirmed once, all at once.
    pub async fn check_coordinators_for_read(&self, groups: &[&str]) -> Vec<Result<(), Refused>> {
        use crate::replication::group_state::{GROUP_STATE_TOPIC, partition_of, partitions};
        let mut out = self.check_coordinators(groups).await;
        let Some(n) = self.cluster.get().and_then(|c| partitions(c)) else {
            return out;
        };
        let key = |g: &str| (GROUP_STATE_TOPIC.to_owned(), partition_of(g, n));
        let ours = groups.iter().zip(&out).filter(|(_, r)| r.is_ok());
        let unconfirmed = self.unconfirmed_leadership(ours.map(|(g, _)| key(g))).await;
        for (g, r) in groups.iter().zip(out.iter_mut()) {
            if r.is_ok() && unconfirmed.contains(&key(g)) {
                *r = Err(Refused {
                    code: ErrorCode::NotCoordinator,
                    message: format!(
                        "this broker could not confirm it still coordinates group {g:?}; find its coordinator again"
                    ),
                });
            }
        }
        out
    }

    /// [`Service::check_coordinators`] for every group of a list: the
    /// first refusal.
    pub async fn check_coordinator_all(&self, groups: &[String]) -> Result<(), Refused> {
        let names: Vec<&str> = groups.iter().map(String::as_str).collect();
        self.check_coordinators(&names).await.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: changing the hash moves groups between partitions of the
    /// group-state topic of a running cluster during an upgrade.
    #[test]
    fn group_hash_is_pinned() {
        assert_eq!(group_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(group_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
