//! Group metadata in the offset store, and the cluster's hand-over of a
//! group-state partition between coordinators.

use super::*;

impl OffsetStore {
    /// Durably stores a group's metadata value (`Some`) or its tombstone
    /// (`None`), then makes it visible to [`OffsetStore::group_records`].
    /// Blocking. A new group counts against `max_committed_offsets`
    /// ([`ErrorCode::TooManyCommittedOffsets`]).
    pub fn store_group(&self, group: &str, value: Option<Vec<u8>>) -> Result<(), BrokerError> {
        {
            let _group = self.group_lock(group).lock();
            let _gate = self.gate.read();
            {
                let c = self.committed.lock();
                let known = c.groups.contains_key(group);
                if value.is_none() && !known {
                    return Ok(());
                }
                if value.is_some()
                    && !known
                    && c.map.len() + c.groups.len() + c.reserved >= self.config.max_keys
                {
                    return Err(full_error(self.config.max_keys));
                }
            }
            self.append_durably(group, &[(encode_group_key(group), value.clone())])?;
            let mut c = self.committed.lock();
            match value {
                Some(v) => c.groups.insert(group.to_owned(), v),
                None => c.groups.remove(group),
            };
        }
        self.maybe_snapshot();
        Ok(())
    }

    /// Deletes a group: durably writes tombstones for its metadata and
    /// every offset it committed (one batch), then forgets them. Returns
    /// whether there was anything to delete. Blocking.
    pub fn delete_group(&self, group: &str) -> Result<bool, BrokerError> {
        {
            let _group = self.group_lock(group).lock();
            let _gate = self.gate.read();
            let (keys, had_meta) = {
                let c = self.committed.lock();
                let keys: Vec<Key> = c
                    .map
                    .keys()
                    .filter(|(g, _, _)| g == group)
                    .cloned()
                    .collect();
                (keys, c.groups.contains_key(group))
            };
            if keys.is_empty() && !had_meta {
                return Ok(false);
            }
            let mut records: Vec<_> = keys
                .iter()
                .map(|(g, t, p)| (encode_key(g, t, *p), None))
                .collect();
            if had_meta {
                records.push((encode_group_key(group), None));
            }
            self.append_durably(group, &records)?;
            let mut c = self.committed.lock();
            for k in &keys {
                c.map.remove(k);
            }
            c.groups.remove(group);
        }
        self.maybe_snapshot();
        Ok(true)
    }

    /// Every group's stored metadata value, sorted by group name.
    pub fn group_records(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = self
            .committed
            .lock()
            .groups
            .iter()
            .map(|(g, v)| (g.clone(), v.clone()))
            .collect();
        out.sort();
        out
    }

    /// Whether [`OffsetStore::store_group`] could store `group`'s metadata
    /// now: it has some stored, or one more key fits
    /// `max_committed_offsets`. A coordinator asks before it creates a
    /// group, so that a group whose generation could never be stored is
    /// refused at its first join, not at every SyncGroup after it.
    pub fn has_room_for_group(&self, group: &str) -> bool {
        let room = {
            let c = self.committed.lock();
            c.groups.contains_key(group)
                || c.map.len() + c.groups.len() + c.reserved < self.config.max_keys
        };
        if !room {
            warn_full(self.config.max_keys);
        }
        room
    }

    /// `group`'s stored metadata value, if it has one.
    pub fn group_record(&self, group: &str) -> Option<Vec<u8>> {
        self.committed.lock().groups.get(group).cloned()
    }

    /// Whether `group` has committed offsets or stored metadata.
    pub fn has_group(&self, group: &str) -> bool {
        let c = self.committed.lock();
        c.groups.contains_key(group) || c.map.keys().any(|(g, _, _)| g == group)
    }

    /// How many groups have committed offsets, but those `except` names:
    /// counted without copying a name.
    pub fn count_groups_with_offsets(&self, except: impl Fn(&str) -> bool) -> usize {
        let c = self.committed.lock();
        let names: std::collections::HashSet<&str> =
            c.map.keys().map(|(g, _, _)| g.as_str()).collect();
        names.into_iter().filter(|n| !except(n)).count()
    }

    /// Names of the groups that have committed offsets, sorted.
    pub fn groups_with_offsets(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .committed
            .lock()
            .map
            .keys()
            .map(|(g, _, _)| g.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Cluster mode, set once before any client is served: records go
    /// through `log` from now on, and what the local offsets log held is
    /// forgotten (not used in a cluster). Memory then holds only the groups
    /// that [`OffsetStore::replace_groups`] loads.
    pub fn use_replicated(&self, log: Arc<dyn GroupLog>) {
        let _gate = self.gate.write();
        if self.replicated.set(log).is_ok() {
            let mut c = self.committed.lock();
            c.map.clear();
            c.groups.clear();
        }
    }

    /// Replaces the offsets and metadata of every group `owned` selects
    /// with `state` (a coordinator that loaded a group-state partition).
    /// Memory only; waits for commits between append and update.
    pub fn replace_groups(&self, owned: impl Fn(&str) -> bool, state: Replayed) {
        let _gate = self.gate.write();
        // Loaded groups whose times are not known count from now.
        self.opened_ms.store(now_ms(), Ordering::Relaxed);
        let mut c = self.committed.lock();
        c.map.retain(|(g, _, _), _| !owned(g));
        c.groups.retain(|g, _| !owned(g));
        c.map
            .extend(state.offsets.into_iter().filter(|((g, _, _), _)| owned(g)));
        c.groups
            .extend(state.groups.into_iter().filter(|(g, _)| owned(g)));
    }

    /// Cluster mode, for a checkpoint of a group-state partition: calls
    /// `write` with the live state of every group `owned` selects, as
    /// offsets-log records (offsets sorted by key, then group records
    /// sorted by group; no tombstones), while holding the gate exclusively.
    /// No commit, group record, group deletion or topic forgetting is
    /// between its log append and its update of memory meanwhile, so the
    /// records are exactly the latest value of every live key in the log
    /// as far as this node wrote it, and nothing is written while `write`
    /// runs. Blocking.
    pub fn with_live_state<T>(
        &self,
        owned: impl Fn(&str) -> bool,
        write: impl FnOnce(Vec<(Vec<u8>, Option<Vec<u8>>)>) -> T,
    ) -> T {
        let _gate = self.gate.write();
        let records = {
            let c = self.committed.lock();
            let mut offsets: Vec<(&Key, &Value)> =
                c.map.iter().filter(|((g, _, _), _)| owned(g)).collect();
            offsets.sort();
            let mut groups: Vec<(&String, &Vec<u8>)> =
                c.groups.iter().filter(|(g, _)| owned(g)).collect();
            groups.sort();
            offsets
                .into_iter()
                .map(|((g, t, p), (o, m, at))| {
                    (encode_key(g, t, *p), Some(encode_value(*o, m, *at)))
                })
                .chain(
                    groups
                        .into_iter()
                        .map(|(g, v)| (encode_group_key(g), Some(v.clone()))),
                )
                .collect()
        };
        write(records)
    }

    /// Forgets, in memory only, every group `owned` selects (a coordinator
    /// that stopped leading their partition).
    pub fn drop_groups(&self, owned: impl Fn(&str) -> bool) {
        self.replace_groups(owned, Replayed::default());
    }
}
