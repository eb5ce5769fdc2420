//! Which node coordinates each consumer group.
//!
//! Every node computes the same answer from the group id and the node ids
//! of the cluster file, with no communication: the FNV-1a 64-bit hash of
//! the group id's bytes, modulo the number of nodes, indexes the node ids
//! sorted in ascending order ([`coordinator_of`]). A broker without
//! `--cluster` coordinates every group. A group's calls (join, sync,
//! heartbeat, leave, describe, delete, offset commit and fetch) sent to
//! another node are refused with `NotCoordinator`, naming the coordinator,
//! so two members reaching different nodes always meet in one group.
//!
//! The coordinator does not move: while its node is down, its groups wait
//! for it (clients keep asking), as documented in `docs/replication.md`.

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

/// The coordinator of `group` among the node ids `nodes` (any order,
/// duplicates ignored): `sorted[group_hash(group) % len]`. `None` when
/// `nodes` is empty.
pub fn coordinator_of(group: &str, nodes: &[u64]) -> Option<u64> {
    let mut ids = nodes.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let n = u64::try_from(ids.len()).ok().filter(|n| *n > 0)?;
    let i = usize::try_from(group_hash(group) % n).ok()?;
    ids.get(i).copied()
}

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
    /// with no allocation.
    pub fn group_coordinator(&self, group: &str) -> GroupCoordinator {
        if self.cluster.get().is_none() {
            return GroupCoordinator::Local;
        }
        let brokers = self.leadership.brokers();
        let ids: Vec<u64> = brokers.iter().map(|b| b.id).collect();
        match coordinator_of(group, &ids) {
            None => GroupCoordinator::Unavailable,
            Some(id) if id == self.leadership.local_node() => GroupCoordinator::Local,
            Some(id) => brokers
                .into_iter()
                .find(|b| b.id == id)
                .map_or(GroupCoordinator::Unavailable, GroupCoordinator::Remote),
        }
    }

    /// `Ok` when this node coordinates `group`; otherwise `NotCoordinator`
    /// naming the coordinator's node id (or `CoordinatorNotAvailable`).
    pub fn check_coordinator(&self, group: &str) -> Result<(), Refused> {
        match self.group_coordinator(group) {
            GroupCoordinator::Local => Ok(()),
            GroupCoordinator::Remote(b) => Err(Refused {
                code: ErrorCode::NotCoordinator,
                message: format!(
                    "group {group:?} is coordinated by node {} ({}), not this broker",
                    b.id, b.listen
                ),
            }),
            GroupCoordinator::Unavailable => Err(Refused {
                code: ErrorCode::CoordinatorNotAvailable,
                message: format!("the coordinator of group {group:?} is not known yet"),
            }),
        }
    }

    /// Like [`Service::check_coordinator`] for every group of a list: the
    /// first refusal.
    pub fn check_coordinator_all(&self, groups: &[String]) -> Result<(), Refused> {
        groups.iter().try_for_each(|g| self.check_coordinator(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned: changing the rule moves groups between nodes of a running
    /// cluster during an upgrade.
    #[test]
    fn group_to_node_mappings_are_pinned() {
        assert_eq!(group_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(group_hash("a"), 0xaf63_dc4c_8601_ec8c);
        let nodes = [3, 1, 2];
        let got: Vec<(&str, u64)> = ["orders", "billing", "g1", "g2", "g3", "analytics"]
            .into_iter()
            .map(|g| (g, coordinator_of(g, &nodes).unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("orders", 2),
                ("billing", 2),
                ("g1", 2),
                ("g2", 2),
                ("g3", 3),
                ("analytics", 3),
            ]
        );
    }

    #[test]
    fn order_and_duplicates_of_the_node_list_do_not_matter() {
        for g in ["a", "b", "orders", "x-y.z"] {
            let one = coordinator_of(g, &[1, 2, 3]);
            assert_eq!(one, coordinator_of(g, &[3, 2, 1]));
            assert_eq!(one, coordinator_of(g, &[2, 3, 1, 3]));
        }
        assert_eq!(coordinator_of("a", &[]), None);
        assert_eq!(coordinator_of("a", &[7]), Some(7));
    }

    #[test]
    fn groups_spread_over_the_nodes() {
        let mut counts = [0u32; 3];
        for i in 0..300 {
            let c = coordinator_of(&format!("group-{i}"), &[1, 2, 3]).unwrap();
            counts[(c - 1) as usize] += 1;
        }
        assert!(counts.iter().all(|c| *c > 60), "{counts:?}");
    }
}
