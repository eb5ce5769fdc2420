//! Expiry of the committed offsets of groups nobody uses (Kafka's
//! `offsets.retention.minutes`; see [`crate::offsets`]'s `expiry` for how
//! an offset's age is counted). Without it every group ever used would be
//! kept for good, and ad-hoc groups (a console consumer's, a test's) would
//! fill `max_committed_offsets` until no new group could commit.

use std::sync::Arc;
use std::time::Duration;

use super::Coordinator;
use crate::group::record::StoredGroup;
use crate::group::types::GroupState;

/// When a group metadata value was written (0 if it does not say).
fn written_ms(value: &[u8]) -> i64 {
    StoredGroup::decode(value).map_or(0, |r| r.written_ms())
}

impl Coordinator {
    /// Removes the committed offsets older than `retention` of every group
    /// without members, and such a group itself once no offset of it is
    /// left, whatever its age (it is then gone from ListGroups, and
    /// DescribeGroups calls it Dead), as Kafka does at each check.
    /// A group with members, or in a rebalance, is left alone. Returns the
    /// number of offsets removed. A failed write is logged and retried at
    /// the next pass.
    pub async fn expire_offsets(&self, retention: Duration) -> usize {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = crate::offsets::now_ms().saturating_sub(retention_ms);
        let store = Arc::clone(&self.store);
        let names = crate::service::blocking(move || store.groups_to_expire(cutoff, written_ms))
            .await
            .unwrap_or_default();
        let mut removed = 0;
        for name in names {
            removed += self.expire_one(&name, cutoff).await;
        }
        self.forget_empty_consumer_groups();
        removed
    }

    async fn expire_one(&self, name: &str, cutoff: i64) -> usize {
        if !self.unused(name, None) {
            return 0;
        }
        let store = Arc::clone(&self.store);
        let me = self.me.clone();
        let key = name.to_owned();
        let done = crate::service::blocking(move || {
            store.expire_group(&key, cutoff, written_ms, |record| {
                me.upgrade().is_some_and(|c| c.unused(&key, record))
            })
        })
        .await;
        let expired = match done {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => {
                tracing::warn!(group = name, error = %e, "could not expire committed offsets");
                return 0;
            }
            Err(e) => {
                tracing::warn!(group = name, error = %e, "could not expire committed offsets");
                return 0;
            }
        };
        if expired.group {
            self.forget_unused(name);
        }
        if expired.offsets > 0 || expired.group {
            tracing::info!(
                group = name,
                offsets = expired.offsets,
                group_removed = expired.group,
                "expired committed offsets of a group unused for the retention period"
            );
        }
        expired.offsets
    }

    /// Whether group `name` has no members and no rebalance under way, and
    /// `record` (its stored metadata, when given) names no members either:
    /// a generation whose Empty record is not written yet, or a group the
    /// coordinator has not loaded yet or no longer holds (a cluster
    /// coordinator taking a group-state partition over or handing it on),
    /// counts as used. Takes the group locks in the coordinator's order.
    fn unused(&self, name: &str, record: Option<&[u8]>) -> bool {
        if record
            .and_then(|v| StoredGroup::decode(v).ok())
            .is_some_and(|r| r.has_members())
        {
            return false;
        }
        let groups = self.groups.lock();
        let classic_unused = groups.get(name).is_none_or(|g| {
            g.state == GroupState::Empty && g.pending.is_empty() && g.members.is_empty()
        });
        classic_unused && !self.has_consumer_members(name)
    }

    /// Forgets group `name` in memory after its whole expiry, if it is
    /// still without members (one may have joined since).
    fn forget_unused(&self, name: &str) {
        let mut groups = self.groups.lock();
        if groups.get(name).is_some_and(|g| {
            g.state == GroupState::Empty && g.pending.is_empty() && g.members.is_empty()
        }) {
            groups.remove(name);
        }
        drop(groups);
        self.forget_empty_consumer_group(name);
    }

    /// Forgets the consumer-protocol groups without members that have no
    /// committed offset and no stored record (Kafka removes such a group at
    /// each check; one with a record goes with it through
    /// [`OffsetStore::expire_group`](crate::offsets::OffsetStore::expire_group)).
    fn forget_empty_consumer_groups(&self) -> usize {
        let names: Vec<String> = self
            .consumer
            .lock()
            .iter()
            .filter(|(_, g)| g.is_empty())
            .map(|(n, _)| n.clone())
            .collect();
        let mut forgotten = 0;
        for name in names {
            if !self.store.has_group(&name) && self.forget_empty_consumer_group(&name) {
                tracing::info!(group = %name, "removed a consumer group without members or committed offsets");
                forgotten += 1;
            }
        }
        forgotten
    }
}
