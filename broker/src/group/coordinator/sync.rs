//! SyncGroup: the leader's assignments are stored, then every member gets
//! its own.

use std::collections::HashMap;
use std::sync::Arc;

use sluice_protocol::wire::ErrorCode;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Coordinator, WithMessage, fenced};
use crate::group::types::*;

impl Coordinator {
    /// SyncGroup: completes when the leader's assignments are stored, or at
    /// once (an error, or the assignment of a Stable generation).
    pub async fn sync(&self, req: SyncGroup) -> SyncResult {
        self.start_deferred();
        let (rx, leader_persist) = match self.sync_locked(req.clone()) {
            Err(r) => return r,
            Ok(v) => v,
        };
        if let Some((persist, generation)) = leader_persist {
            // A task of its own: the generation becomes Stable even if the
            // leader goes away while it is stored.
            let me = self.me.clone();
            let group = req.group.clone();
            self.spawn(async move {
                if let Some(c) = me.upgrade() {
                    c.store_assignments(&group, persist, generation).await;
                }
            });
        }
        rx.await
            .unwrap_or_else(|_| SyncResult::error(ErrorCode::RebalanceInProgress))
    }

    #[allow(clippy::type_complexity)]
    fn sync_locked(
        &self,
        req: SyncGroup,
    ) -> Result<
        (
            oneshot::Receiver<SyncResult>,
            Option<(Arc<tokio::sync::Mutex<()>>, i32)>,
        ),
        SyncResult,
    > {
        let fail = |code| Err(SyncResult::error(code));
        if !crate::group::valid_group_name(&req.group) {
            return fail(ErrorCode::InvalidGroupName);
        }
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(&req.group) else {
            return fail(ErrorCode::UnknownMemberId);
        };
        if let Some(code) = fenced(g, &req.member_id, req.group_instance_id.as_deref()) {
            return fail(code);
        }
        if !g.members.contains_key(&req.member_id) {
            return fail(ErrorCode::UnknownMemberId);
        }
        if req.generation_id != g.generation {
            return fail(ErrorCode::IllegalGeneration);
        }
        if req
            .protocol_type
            .as_ref()
            .is_some_and(|t| Some(t) != g.protocol_type.as_ref())
            || req
                .protocol_name
                .as_ref()
                .is_some_and(|p| Some(p) != g.protocol.as_ref())
        {
            return fail(ErrorCode::InconsistentGroupProtocol);
        }
        let is_leader = g.leader.as_deref() == Some(req.member_id.as_str());
        if is_leader
            && g.state == GroupState::CompletingRebalance
            && g.pending_assignments.is_none()
        {
            // The new assignments take the place of the last generation's.
            let before: usize = g.members.values().map(|m| m.assignment.len()).sum();
            let after: usize = req
                .assignments
                .iter()
                .filter(|(id, _)| g.members.contains_key(id))
                .map(|(_, a)| a.len())
                .sum();
            if let Err(code) = self.check_bytes(&groups, &req.group, before, after) {
                return fail(code);
            }
        }
        let Some(g) = groups.get_mut(&req.group) else {
            return fail(ErrorCode::UnknownMemberId);
        };
        match g.state {
            GroupState::Empty | GroupState::Dead => fail(ErrorCode::UnknownMemberId),
            GroupState::PreparingRebalance => fail(ErrorCode::RebalanceInProgress),
            GroupState::Stable => {
                let Some(m) = g.members.get_mut(&req.member_id) else {
                    return fail(ErrorCode::UnknownMemberId);
                };
                m.deadline = Instant::now() + m.session_timeout;
                Err(SyncResult {
                    error: ErrorCode::None,
                    protocol_type: g.protocol_type.clone(),
                    protocol_name: g.protocol.clone(),
                    assignment: m.assignment.clone(),
                })
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = g.members.get_mut(&req.member_id) {
                    m.deadline = Instant::now() + m.session_timeout;
                    m.sync_waiter = Some(tx);
                }
                if is_leader && g.pending_assignments.is_none() {
                    let assignments: HashMap<String, Vec<u8>> = req
                        .assignments
                        .into_iter()
                        .filter(|(id, _)| g.members.contains_key(id))
                        .collect();
                    g.pending_assignments = Some(assignments);
                    g.recharge();
                    return Ok((rx, Some((Arc::clone(&g.persist), g.generation))));
                }
                Ok((rx, None))
            }
        }
    }

    /// Stores the generation with the leader's assignments, then makes it
    /// Stable and answers every waiting sync; if the write fails, the
    /// waiting syncs get its error and the group rebalances.
    async fn store_assignments(
        &self,
        name: &str,
        persist: Arc<tokio::sync::Mutex<()>>,
        generation: i32,
    ) {
        let _persist = persist.lock().await;
        let value = {
            let groups = self.groups.lock();
            match groups.get(name) {
                Some(g)
                    if g.generation == generation && g.state == GroupState::CompletingRebalance =>
                {
                    g.to_record(g.pending_assignments.as_ref()).encode()
                }
                _ => return,
            }
        };
        let store = Arc::clone(&self.store);
        let key = name.to_owned();
        let written = crate::service::blocking(move || store.store_group(&key, Some(value)))
            .await
            .map_err(|e| ErrorCode::StorageError.with(e.to_string()))
            .and_then(|r| r.map_err(|e| e.code().with(e.to_string())));
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(name) else {
            return;
        };
        if g.generation != generation || g.state != GroupState::CompletingRebalance {
            return;
        }
        match written {
            Ok(()) => {
                let mut assignments = g.pending_assignments.take().unwrap_or_default();
                g.state = GroupState::Stable;
                let (pt, pn) = (g.protocol_type.clone(), g.protocol.clone());
                for m in g.members.values_mut() {
                    m.assignment = assignments.remove(&m.id).unwrap_or_default();
                    if let Some(w) = m.sync_waiter.take() {
                        // Answered: its session starts again.
                        m.deadline = Instant::now() + m.session_timeout;
                        let _ = w.send(SyncResult {
                            error: ErrorCode::None,
                            protocol_type: pt.clone(),
                            protocol_name: pn.clone(),
                            assignment: m.assignment.clone(),
                        });
                    }
                }
                g.recharge();
                tracing::info!(group = name, generation, "generation is stable");
            }
            Err((code, message)) => {
                tracing::warn!(group = name, generation, %message, "could not store the group");
                for m in g.members.values_mut() {
                    if let Some(w) = m.sync_waiter.take() {
                        // Answered: its session starts again.
                        m.deadline = Instant::now() + m.session_timeout;
                        let _ = w.send(SyncResult::error(code));
                    }
                }
                self.prepare_rebalance(name, g);
            }
        }
    }
}
