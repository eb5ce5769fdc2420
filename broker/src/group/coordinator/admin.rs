//! Commit fencing, describe, list, delete, and deleting committed offsets.

use std::sync::Arc;

use sluice_protocol::wire::ErrorCode;
use tokio::time::Instant;

use super::{Coordinator, fenced};
use crate::group::state::Group;
use crate::group::types::*;

impl Coordinator {
    /// Checks a commit of `partitions` (topic name, partition) against the
    /// group (Kafka's fencing): `Ok` lets it be stored, and refreshes the
    /// committing member's session.
    pub fn check_commit(
        &self,
        group: &str,
        who: &CommitAs,
        partitions: &[(&str, u32)],
    ) -> Result<(), ErrorCode> {
        if let Some(checked) = self.check_consumer_commit(group, who, Some(partitions)) {
            return checked;
        }
        let mut groups = self.groups.lock();
        let Some(g) = groups.get_mut(group) else {
            // Offsets only, no membership: simple commits are allowed.
            return if who.generation_id < 0 {
                Ok(())
            } else {
                Err(ErrorCode::IllegalGeneration)
            };
        };
        // In Kafka's order: who is committing first, then the state, so
        // that a tool's simple commit to a group with members fails at
        // once (not retriable) and a stale member learns it is stale.
        if g.state == GroupState::Dead {
            return Err(ErrorCode::CoordinatorNotAvailable);
        }
        let as_member =
            who.generation_id >= 0 || !who.member_id.is_empty() || who.group_instance_id.is_some();
        if !as_member {
            // Offsets only: allowed while nobody is a member.
            return if g.state == GroupState::Empty {
                Ok(())
            } else {
                Err(ErrorCode::UnknownMemberId)
            };
        }
        if let Some(code) = fenced(g, &who.member_id, who.group_instance_id.as_deref()) {
            return Err(code);
        }
        let (generation, state) = (g.generation, g.state);
        let Some(m) = g.members.get_mut(&who.member_id) else {
            return Err(ErrorCode::UnknownMemberId);
        };
        if who.generation_id != generation {
            return Err(ErrorCode::IllegalGeneration);
        }
        if state == GroupState::CompletingRebalance {
            // A member of the new generation that has not its assignment
            // yet: it commits again once it has.
            return Err(ErrorCode::RebalanceInProgress);
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
                let described = self
                    .describe_consumer(&name)
                    .or_else(|| groups.get(&name).map(|g| g.describe(&name)));
                let mut d = match described {
                    Some(d) => d,
                    None => {
                        let mut d = Group::new(&self.held).describe(&name);
                        if !self.store.has_group(&name) {
                            d.state = GroupState::Dead;
                        }
                        d
                    }
                };
                if !crate::group::valid_group_name(&name) {
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
                    consumer_protocol: false,
                })
                .collect();
            let consumer = self.list_consumer();
            out.retain(|g| !consumer.iter().any(|c| c.group == g.group));
            for c in &consumer {
                out.push(c.clone());
            }
            for name in self.store.groups_with_offsets() {
                if !groups.contains_key(&name) && !consumer.iter().any(|c| c.group == name) {
                    out.push(GroupListing {
                        group: name,
                        protocol_type: String::new(),
                        state: GroupState::Empty,
                        consumer_protocol: false,
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
        if !crate::group::valid_group_name(name) {
            return ErrorCode::InvalidGroupName;
        }
        let consumer_persist = match self.start_consumer_delete(name) {
            Some(Err(code)) => return code,
            Some(Ok(persist)) => Some(persist),
            None => None,
        };
        let was_consumer_group = consumer_persist.is_some();
        // However this ends (an error, or the call dropped), the consumer
        // group is no longer being deleted: forgotten if it was deleted.
        let mut ending = was_consumer_group.then_some(EndConsumerDelete {
            c: self,
            name,
            deleted: false,
        });
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
                None if !self.store.has_group(name) && !was_consumer_group => {
                    return ErrorCode::GroupIdNotFound;
                }
                None => None,
            }
        };
        let _persist = match &persist {
            Some(p) => Some(p.lock().await),
            None => None,
        };
        let _consumer_persist = match &consumer_persist {
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
        if let Some(e) = ending.as_mut() {
            e.deleted = code.is_ok();
        }
        drop(ending);
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

    /// Deletes `group`'s committed offsets of `partitions` (Kafka's
    /// OffsetDelete), except those of topics its members read: for each
    /// partition, whether it was kept for that reason. A group without
    /// members loses every one named; one with members of the `consumer`
    /// protocol type keeps those of the topics any member subscribes to (a
    /// subscription that does not parse counts as every topic); one with
    /// members of another protocol type is refused whole
    /// ([`ErrorCode::NonEmptyGroup`]: its subscriptions are opaque). An
    /// unknown group is [`ErrorCode::GroupIdNotFound`]. Partitions without
    /// a committed offset are answered as deleted.
    pub async fn delete_offsets(
        &self,
        name: &str,
        partitions: Vec<(String, u32)>,
    ) -> Result<Vec<bool>, ErrorCode> {
        if !crate::group::valid_group_name(name) {
            return Err(ErrorCode::InvalidGroupName);
        }
        let read = if let Some(topics) = self.consumer_topics(name) {
            Subscribed::Topics(topics.into_iter().collect())
        } else {
            let groups = self.groups.lock();
            match groups.get(name) {
                Some(g) if g.members.is_empty() && g.pending.is_empty() => Subscribed::Nothing,
                Some(g) if g.protocol_type.as_deref() == Some("consumer") => {
                    let mut topics = std::collections::HashSet::new();
                    let mut opaque = false;
                    for (_, metadata) in g.members.values().flat_map(|m| &m.protocols) {
                        match subscribed_topics(metadata) {
                            Some(t) => topics.extend(t),
                            None => opaque = true,
                        }
                    }
                    if opaque || !g.pending.is_empty() {
                        // Members whose topics are not known: any topic.
                        Subscribed::All
                    } else {
                        Subscribed::Topics(topics)
                    }
                }
                Some(_) => return Err(ErrorCode::NonEmptyGroup),
                None if !self.store.has_group(name) => return Err(ErrorCode::GroupIdNotFound),
                None => Subscribed::Nothing,
            }
        };
        let kept: Vec<bool> = partitions
            .iter()
            .map(|(t, _)| match &read {
                Subscribed::Nothing => false,
                Subscribed::All => true,
                Subscribed::Topics(topics) => topics.contains(t),
            })
            .collect();
        let doomed: Vec<(String, u32)> = partitions
            .into_iter()
            .zip(&kept)
            .filter(|(_, k)| !**k)
            .map(|(p, _)| p)
            .collect();
        if !doomed.is_empty() {
            let store = Arc::clone(&self.store);
            let key = name.to_owned();
            match crate::service::blocking(move || store.delete_offsets(&key, &doomed)).await {
                Ok(Ok(n)) => {
                    tracing::info!(group = name, offsets = n, "deleted committed offsets");
                }
                Ok(Err(e)) => return Err(e.code()),
                Err(_) => return Err(ErrorCode::Unknown),
            }
        }
        Ok(kept)
    }
}

/// The topics a group's members read, as far as an offset deletion is
/// concerned.
enum Subscribed {
    Nothing,
    All,
    Topics(std::collections::HashSet<String>),
}

/// The topics of a member's `consumer` protocol metadata (Kafka's
/// ConsumerProtocolSubscription, any version: i16 version, then an array
/// of strings), or `None` if it does not parse.
fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut at = 2usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let b = metadata.get(at..at.checked_add(n)?)?;
        at += n;
        Some(b)
    };
    take(0)?;
    let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let count = usize::try_from(count).ok()?;
    // Each topic takes at least two bytes: the count cannot pass the input.
    if count > metadata.len() / 2 {
        return None;
    }
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        let len = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let len = usize::try_from(len).ok()?;
        topics.push(String::from_utf8(take(len)?.to_vec()).ok()?);
    }
    Some(topics)
}

/// Ends a consumer-protocol group's delete when dropped
/// ([`Coordinator::end_consumer_delete`]).
struct EndConsumerDelete<'a> {
    c: &'a Coordinator,
    name: &'a str,
    deleted: bool,
}

impl Drop for EndConsumerDelete<'_> {
    fn drop(&mut self) {
        self.c.end_consumer_delete(self.name, self.deleted);
    }
}

#[cfg(test)]
mod tests {
    use super::subscribed_topics;

    #[test]
    fn consumer_subscriptions_parse_and_hostile_ones_do_not() {
        // Version 1, topics "a" and "bc", then user data.
        let m = [
            0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(subscribed_topics(&m), Some(vec!["a".into(), "bc".into()]));
        assert_eq!(subscribed_topics(&[0, 0, 0, 0, 0, 0]), Some(vec![]));
        for bad in [
            &[][..],
            &[0, 1],
            &[0, 1, 0x7f, 0xff, 0xff, 0xff],
            &[0, 1, 0xff, 0xff, 0xff, 0xff],
            &[0, 1, 0, 0, 0, 1, 0, 5, b'a'],
            &[0, 1, 0, 0, 0, 1, 0xff, 0xff],
            &[0, 1, 0, 0, 0, 1, 0, 1, 0xff],
        ] {
            assert_eq!(subscribed_topics(bad), None, "{bad:?}");
        }
    }
}
