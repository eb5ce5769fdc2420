//! Commit fencing, describe, list and delete.

use std::sync::Arc;

use sluice_protocol::wire::ErrorCode;
use tokio::time::Instant;

use super::{Coordinator, fenced};
use crate::group::state::Group;
use crate::group::types::*;
use crate::log::validate_topic_name;

impl Coordinator {
    /// Checks a commit against the group (Kafka's fencing): `Ok` lets it
    /// be stored, and refreshes the committing member's session.
    pub fn check_commit(&self, group: &str, who: &CommitAs) -> Result<(), ErrorCode> {
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            // Offsets only, no membership: simple commits are allowed.
            return if who.generation_id < 0 {
                Ok(())
            } else {
                Err(ErrorCode::IllegalGeneration)
            };
        };
        if g.state == GroupState::Dead {
            return Err(ErrorCode::UnknownMemberId);
        }
        if let Some(code) = fenced(g, &who.member_id, who.group_instance_id.as_deref()) {
            return Err(code);
        }
        if who.generation_id < 0 && g.state == GroupState::Empty {
            return Ok(());
        }
        if g.state == GroupState::CompletingRebalance {
            return Err(ErrorCode::RebalanceInProgress);
        }
        let generation = g.generation;
        let Some(m) = g.members.get_mut(&who.member_id) else {
            return Err(ErrorCode::UnknownMemberId);
        };
        if who.generation_id != generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        m.deadline = Instant::now() + m.session_timeout;
        Ok(())
    }

    /// Describes groups; an unknown group is Dead, a group with only
    /// committed offsets is Empty.
    pub fn describe(&self, names: Vec<String>) -> Vec<GroupDescription> {
        let groups = self.groups.lock();
        names
            .into_iter()
            .map(|name| {
                let mut d = match groups.get(&name) {
                    Some(g) => g.describe(&name),
                    None => {
                        let mut d = Group::new(&self.held).describe(&name);
                        if !self.store.has_group(&name) {
                            d.state = GroupState::Dead;
                        }
                        d
                    }
                };
                if validate_topic_name(&name).is_err() {
                    d.error = ErrorCode::InvalidGroupName;
                    d.state = GroupState::Dead;
                }
                d
            })
            .collect()
    }

    /// Every group (with members, stored metadata or committed offsets) in
    /// one of `states` (all if empty), sorted by name.
    pub fn list(&self, states: &[GroupState]) -> Vec<GroupListing> {
        let mut out: Vec<GroupListing> = {
            let groups = self.groups.lock();
            let mut out: Vec<GroupListing> = groups
                .iter()
                .filter(|(_, g)| g.state != GroupState::Dead)
                .map(|(name, g)| GroupListing {
                    group: name.clone(),
                    protocol_type: g.protocol_type.clone().unwrap_or_default(),
                    state: g.state,
                })
                .collect();
            for name in self.store.groups_with_offsets() {
                if !groups.contains_key(&name) {
                    out.push(GroupListing {
                        group: name,
                        protocol_type: String::new(),
                        state: GroupState::Empty,
                    });
                }
            }
            out
        };
        out.retain(|g| states.is_empty() || states.contains(&g.state));
        out.sort_by(|a, b| a.group.cmp(&b.group));
        out
    }

    /// Deletes groups without members, with their stored metadata and
    /// committed offsets.
    pub async fn delete(&self, names: Vec<String>) -> Vec<(String, ErrorCode)> {
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let code = self.delete_one(&name).await;
            out.push((name, code));
        }
        out
    }

    async fn delete_one(&self, name: &str) -> ErrorCode {
        if validate_topic_name(name).is_err() {
            return ErrorCode::InvalidGroupName;
        }
        let persist = {
            let mut groups = self.groups.lock();
            match groups.get_mut(name) {
                Some(g) if g.state != GroupState::Empty || !g.pending.is_empty() => {
                    return ErrorCode::NonEmptyGroup;
                }
                Some(g) => {
                    g.state = GroupState::Dead;
                    Some(Arc::clone(&g.persist))
                }
                None if !self.store.has_group(name) => return ErrorCode::GroupIdNotFound,
                None => None,
            }
        };
        let _persist = match &persist {
            Some(p) => Some(p.lock().await),
            None => None,
        };
        let store = Arc::clone(&self.store);
        let key = name.to_owned();
        let deleted = crate::service::blocking(move || store.delete_group(&key)).await;
        let code = match deleted {
            Ok(Ok(_)) => ErrorCode::None,
            Ok(Err(e)) => e.code(),
            Err(_) => ErrorCode::Unknown,
        };
        let mut groups = self.groups.lock();
        if let Some(g) = groups.get_mut(name) {
            if code.is_ok() {
                groups.remove(name);
                tracing::info!(group = name, "group deleted");
            } else {
                g.state = GroupState::Empty;
            }
        }
        code
    }
}
