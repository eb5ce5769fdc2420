//! Expiry of the committed offsets of groups nobody uses (Kafka's
//! `offsets.retention.minutes`; see [`crate::offsets`]'s `expiry` for how
//! an offset's age is counted). Without it every group ever used would be
//! kept for good, and ad-hoc groups (a console consumer's, a test's) would
//! fill `max_committed_offsets` until no new group could commit.

use std::sync::Arc;
use std::time::Duration;

use super::Coordinator;
use crate::group::record::GroupRecord;
use crate::group::types::GroupState;

/// When a group metadata value was written (0 if it does not say).
fn written_ms(value: &[u8]) -> i64 {
    GroupRecord::decode(value).map_or(0, |r| r.written_ms)
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
        removed
    }

    async fn expire_one(&self, name: &str, cutoff: i64) -> usize {
        if self.has_consumer_members(name) {
            return 0;
        }
        // A classic group is Dead while its expiry is written (a join meanwhile
        // is told to join again), and its metadata writes are held back.
        let persist = {
            let mut groups = self.groups.lock();
            match groups.get_mut(name) {
                Some(g) if g.state != GroupState::Empty || !g.pending.is_empty() => return 0,
                Some(g) => {
                    g.state = GroupState::Dead;
                    Some(Arc::clone(&g.persist))
                }
                None => None,
            }
        };
        let _persist = match &persist {
            Some(p) => Some(p.lock().await),
            None => None,
        };
        // A group that became Empty whose Empty record is not written yet
        // (its stored record still lists members): its clock starts when
        // that is written, so it waits for the next pass.
        let stale = persist.is_some()
            && self
                .store
                .group_record(name)
                .and_then(|v| GroupRecord::decode(&v).ok())
                .is_some_and(|r| !r.members.is_empty());
        if stale {
            self.revive(name);
            return 0;
        }
        let store = Arc::clone(&self.store);
        let key = name.to_owned();
        let done =
            crate::service::blocking(move || store.expire_group(&key, cutoff, written_ms)).await;
        let expired = match done {
            Ok(Ok(e)) => Some(e),
            Ok(Err(e)) => {
                tracing::warn!(group = name, error = %e, "could not expire committed offsets");
                None
            }
            Err(e) => {
                tracing::warn!(group = name, error = %e, "could not expire committed offsets");
                None
            }
        };
        let whole = expired.is_some_and(|e| e.group);
        if whole {
            self.forget_empty_consumer_group(name);
            self.groups.lock().remove(name);
        } else {
            self.revive(name);
        }
        let offsets = expired.map_or(0, |e| e.offsets);
        if offsets > 0 || whole {
            tracing::info!(
                group = name,
                offsets,
                group_removed = whole,
                "expired committed offsets of a group unused for the retention period"
            );
        }
        offsets
    }

    /// Makes classic group `name`, Dead while its expiry was looked at,
    /// Empty again.
    fn revive(&self, name: &str) {
        if let Some(g) = self.groups.lock().get_mut(name) {
            g.state = GroupState::Empty;
        }
    }
}
