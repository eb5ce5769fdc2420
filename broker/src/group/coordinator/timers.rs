//! The coordinator's tokio timers (session expiry, forgotten member ids,
//! rebalance timeouts) and its writes of a group's state as a task of their
//! own. A timer holds only a weak reference: it ends with the coordinator.

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
use tokio::time::Instant;

use super::Coordinator;
use crate::group::state::{Group, InitialDelay};
use crate::group::types::GroupState;

impl Coordinator {
    /// Spawns `f` on the current runtime, if there is one.
    pub(super) fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(
        &self,
        f: F,
    ) -> Option<tokio::task::AbortHandle> {
        tokio::runtime::Handle::try_current()
            .ok()
            .map(|h| h.spawn(f).abort_handle())
    }

    /// Arms the expiry timer of `g`'s member `id` (replacing any it had):
    /// it expires the member when its session ends, re-arming itself when
    /// heartbeats move the deadline, and stops when the member goes.
    pub(super) fn arm_expiry(&self, name: &str, g: &mut Group, id: &str) {
        let Some(m) = g.members.get_mut(id) else {
            return;
        };
        let (group, member, incarnation) = (name.to_owned(), id.to_owned(), m.incarnation);
        let me = self.me.clone();
        let started = self.spawn(async move {
            loop {
                let Some(c) = me.upgrade() else { return };
                let next = {
                    let mut groups = c.groups.lock();
                    let Some(g) = groups.get_mut(&group) else {
                        return;
                    };
                    let Some(m) = g
                        .members
                        .get(&member)
                        .filter(|m| m.incarnation == incarnation)
                    else {
                        return;
                    };
                    let now = Instant::now();
                    if m.waits() {
                        now + m.session_timeout
                    } else if m.deadline <= now {
                        tracing::info!(group, member, "session expired; member removed");
                        c.member_gone(&group, g, &member, ErrorCode::UnknownMemberId);
                        return;
                    } else {
                        m.deadline
                    }
                };
                drop(c);
                tokio::time::sleep_until(next).await;
            }
        });
        match started {
            Some(t) => {
                if let Some(old) = m.expiry.replace(t) {
                    old.abort();
                }
            }
            None => self.deferred.lock().push((name.to_owned(), id.to_owned())),
        }
    }

    /// Forgets a handed-out member id that is not used within the session
    /// timeout.
    pub(super) fn spawn_pending_expiry(
        &self,
        group: String,
        member: String,
        after: Duration,
    ) -> Option<tokio::task::AbortHandle> {
        let me = self.me.clone();
        self.spawn(async move {
            tokio::time::sleep(after).await;
            let Some(c) = me.upgrade() else { return };
            let mut groups = c.groups.lock();
            let Some(g) = groups.get_mut(&group) else {
                return;
            };
            if g.pending.remove(&member).is_some() {
                c.maybe_complete_join(&group, g);
                if g.state == GroupState::Empty && g.generation == 0 && g.pending.is_empty() {
                    groups.remove(&group);
                }
            }
        })
    }

    /// Ends the join phase of `g`'s current rebalance when its time is up
    /// (or extends the initial delay); in the sync phase, removes the
    /// members that sent no SyncGroup in time (a leader that never assigns
    /// does not hold the group). Replaces the timer of an earlier phase.
    pub(super) fn arm_rebalance_timer(&self, name: &str, g: &mut Group, after: Duration) {
        let me = self.me.clone();
        let delay = self.config.initial_rebalance_delay;
        g.rebalance_arm += 1;
        let (group, epoch, arm) = (name.to_owned(), g.epoch, g.rebalance_arm);
        let timer = self.spawn(async move {
            tokio::time::sleep(after).await;
            let Some(c) = me.upgrade() else { return };
            let mut groups = c.groups.lock();
            let Some(g) = groups.get_mut(&group) else {
                return;
            };
            // Re-armed or disarmed since (say by the join phase ending
            // while this timer waited for the lock): not this timer's turn.
            if g.epoch != epoch || g.rebalance_arm != arm {
                return;
            }
            if g.state == GroupState::CompletingRebalance && g.pending_assignments.is_none() {
                let late: Vec<String> = g
                    .members
                    .values()
                    .filter(|m| m.sync_waiter.is_none())
                    .map(|m| m.id.clone())
                    .collect();
                for id in late {
                    tracing::info!(group, member = %id, "member did not sync in time; removed");
                    c.member_gone(&group, g, &id, ErrorCode::UnknownMemberId);
                }
                return;
            }
            if g.state != GroupState::PreparingRebalance {
                return;
            }
            if let Some(d) = g.initial_delay {
                if d.joined && !d.remaining.is_zero() {
                    let step = delay.min(d.remaining);
                    g.initial_delay = Some(InitialDelay {
                        remaining: d.remaining - step,
                        joined: false,
                    });
                    c.arm_rebalance_timer(&group, g, step);
                    return;
                }
            }
            c.complete_join(&group, g);
        });
        if let Some(old) = std::mem::replace(&mut g.rebalance_timer, timer) {
            old.abort();
        }
    }

    /// Stores the group's current state if it is Stable or Empty (a write
    /// of its own, serialised with the group's other writes).
    pub(super) fn spawn_persist(&self, group: String) {
        let me = self.me.clone();
        self.spawn(async move {
            let Some(c) = me.upgrade() else { return };
            let Some(persist) = c.groups.lock().get(&group).map(|g| Arc::clone(&g.persist)) else {
                return;
            };
            let _persist = persist.lock().await;
            let value = match c.groups.lock().get(&group) {
                Some(g) if matches!(g.state, GroupState::Empty | GroupState::Stable) => {
                    g.to_record(None).encode()
                }
                _ => return,
            };
            let store = Arc::clone(&c.store);
            let key = group.clone();
            match crate::service::blocking(move || store.store_group(&key, Some(value))).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(group, error = %e, "could not store the group"),
                Err(e) => tracing::warn!(group, error = %e, "could not store the group"),
            }
        });
    }
}
