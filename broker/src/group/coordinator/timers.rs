//! The coordinator's tokio timers (session expiry, forgotten member ids,
//! rebalance timeouts) and its writes of a group's state as a task of their
//! own. A timer holds only a weak reference: it ends with the coordinator.

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
use tokio::time::Instant;

use super::Coordinator;
use crate::group::state::InitialDelay;
use crate::group::types::GroupState;

impl Coordinator {
    pub(super) fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(&self, f: F) -> bool {
        match tokio::runtime::Handle::try_current() {
            Ok(h) => {
                h.spawn(f);
                true
            }
            Err(_) => false,
        }
    }

    /// Expires the member when its session ends (a timer, re-armed when
    /// heartbeats move the deadline).
    pub(super) fn spawn_expiry(&self, group: String, member: String, incarnation: u64) {
        let me = self.me.clone();
        let (g2, m2) = (group.clone(), member.clone());
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
        if !started {
            self.deferred.lock().push((g2, m2, incarnation));
        }
    }

    /// Forgets a handed-out member id that is not used within the session
    /// timeout.
    pub(super) fn spawn_pending_expiry(&self, group: String, member: String, after: Duration) {
        let me = self.me.clone();
        self.spawn(async move {
            tokio::time::sleep(after).await;
            let Some(c) = me.upgrade() else { return };
            let mut groups = c.groups.lock();
            let Some(g) = groups.get_mut(&group) else {
                return;
            };
            if g.pending.remove(&member) {
                c.maybe_complete_join(&group, g);
                if g.state == GroupState::Empty && g.generation == 0 && g.pending.is_empty() {
                    groups.remove(&group);
                }
            }
        });
    }

    /// Ends the join phase of rebalance `epoch` when its time is up.
    pub(super) fn spawn_rebalance_timer(&self, group: String, epoch: u64, after: Duration) {
        let me = self.me.clone();
        let delay = self.config.initial_rebalance_delay;
        self.spawn(async move {
            tokio::time::sleep(after).await;
            let Some(c) = me.upgrade() else { return };
            let mut groups = c.groups.lock();
            let Some(g) = groups.get_mut(&group) else {
                return;
            };
            if g.epoch != epoch || g.state != GroupState::PreparingRebalance {
                return;
            }
            if let Some(d) = g.initial_delay {
                if d.joined && !d.remaining.is_zero() {
                    let step = delay.min(d.remaining);
                    g.initial_delay = Some(InitialDelay {
                        remaining: d.remaining - step,
                        joined: false,
                    });
                    c.spawn_rebalance_timer(group.clone(), epoch, step);
                    return;
                }
            }
            c.complete_join(&group, g);
        });
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
