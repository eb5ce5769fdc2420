//! Cluster mode: a coordinator takes over the groups of a group-state
//! partition when this node starts leading it, and lets them go when it
//! stops.

use std::sync::atomic::Ordering;

use sluice_protocol::wire::ErrorCode;
use tokio::time::Instant;

use super::Coordinator;
use crate::group::record::StoredGroup;
use crate::group::state::Group;

impl Coordinator {
    /// Replaces every group `owned` selects with the groups of `records`
    /// (name, stored value): a stored generation is Stable again with its
    /// members, a consumer-protocol group has its members back at their
    /// epochs, and every session starts now, as at a restart. The
    /// groups it replaces are dropped as by [`Coordinator::drop_groups`].
    pub fn load_groups(&self, owned: impl Fn(&str) -> bool, records: Vec<(String, Vec<u8>)>) {
        self.drop_groups(&owned);
        let now = Instant::now();
        let mut incarnation = self.next_incarnation.load(Ordering::Relaxed);
        let mut groups = self.groups.lock();
        let mut consumer_groups = Vec::new();
        for (name, bytes) in records.into_iter().filter(|(n, _)| owned(n)) {
            match StoredGroup::decode(&bytes) {
                Ok(StoredGroup::Consumer(r)) => consumer_groups.push((name, r)),
                Ok(StoredGroup::Classic(r)) => {
                    let mut g = Group::from_record(r, now, &mut incarnation, &self.held);
                    let ids: Vec<String> = g.members.keys().cloned().collect();
                    for id in ids {
                        self.arm_expiry(&name, &mut g, &id);
                    }
                    groups.insert(name, g);
                }
                Err(reason) => {
                    tracing::warn!(group = %name, reason, "skipping undecodable group metadata")
                }
            }
        }
        self.next_incarnation
            .fetch_max(incarnation, Ordering::Relaxed);
        drop(groups);
        self.restore_consumer_groups(consumer_groups);
    }

    /// Forgets every group `owned` selects: their waiting joins and syncs
    /// are answered `NotCoordinator`, their timers stop. Their state stays
    /// in the group-state topic for the next coordinator.
    pub fn drop_groups(&self, owned: impl Fn(&str) -> bool) {
        self.drop_consumer_groups(&owned);
        let mut gone: Vec<Group> = Vec::new();
        {
            let mut groups = self.groups.lock();
            let names: Vec<String> = groups.keys().filter(|n| owned(n)).cloned().collect();
            for n in names {
                if let Some(g) = groups.remove(&n) {
                    gone.push(g);
                }
            }
        }
        for mut g in gone {
            for m in g.members.values_mut() {
                m.fail_waiters(ErrorCode::NotCoordinator);
            }
            if let Some(t) = g.rebalance_timer.take() {
                t.abort();
            }
            for t in g.pending.drain().filter_map(|(_, t)| t) {
                t.abort();
            }
        }
    }
}
