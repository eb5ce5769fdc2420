//! Expiry of committed offsets (Kafka's `offsets.retention.minutes`): the
//! offsets of a group that nobody has used for the retention period go,
//! and the group with them once no offset of it is left.
//!
//! The store decides what is old; the group coordinator, asked under the
//! group's lock by [`OffsetStore::expire_group`], decides whether the group
//! is in use (has members), and then nothing of it is removed.
//!
//! A key's age counts from the latest of:
//! - its commit (the time stored with it; a value written before commit
//!   times were stored counts from when the store was opened);
//! - the group's stored metadata record, which the coordinator writes when
//!   a generation becomes Stable and when the group becomes Empty, so for a
//!   group of Kafka's classic protocol this is when its last member left;
//! - when the store was opened, for a group without such a record or whose
//!   record does not say when it was written. When the members of such a
//!   group (a consumer-protocol group, or a standalone consumer committing
//!   offsets) last came is not stored, so a restart starts their clock
//!   again rather than take offsets a group may still need.

use super::*;

/// What [`OffsetStore::expire_group`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Committed offsets removed.
    pub offsets: usize,
    /// Whether the whole group went: it has no committed offset and no
    /// stored metadata left.
    pub group: bool,
}

impl OffsetStore {
    /// The groups [`OffsetStore::expire_group`] would take something from
    /// now, sorted: those with a committed offset older than `cutoff_ms`
    /// (milliseconds since the Unix epoch), and those with stored metadata
    /// but no committed offset.
    /// `written_ms` gives the time a group metadata value was written (0 if
    /// unknown). Memory only.
    pub fn groups_to_expire(
        &self,
        cutoff_ms: i64,
        written_ms: impl Fn(&[u8]) -> i64,
    ) -> Vec<String> {
        let opened = self.opened_ms.load(Ordering::Relaxed);
        let c = self.committed.lock();
        let floors: HashMap<&str, i64> = c
            .groups
            .iter()
            .map(|(g, v)| (g.as_str(), floor_of(written_ms(v), opened)))
            .collect();
        let floor = |g: &str| floors.get(g).copied().unwrap_or(opened);
        let with_offsets: std::collections::HashSet<&str> =
            c.map.keys().map(|(g, _, _)| g.as_str()).collect();
        let mut out: Vec<String> = c
            .map
            .iter()
            .filter(|((g, _, _), (_, _, at))| age_from(*at, floor(g), opened) < cutoff_ms)
            .map(|((g, _, _), _)| g.clone())
            // A group with stored metadata but no committed offset goes
            // whatever its age, as in Kafka.
            .chain(
                floors
                    .keys()
                    .filter(|g| !with_offsets.contains(*g))
                    .map(|g| (*g).to_owned()),
            )
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Removes `group`'s committed offsets older than `cutoff_ms`
    /// (milliseconds since the Unix epoch; see the module doc for how a
    /// key's age is counted), and its stored metadata too once no offset is
    /// left (a group without members and offsets is removed whatever its
    /// age, as Kafka removes it): durably writes their tombstones (one
    /// batch), then forgets them. Nothing is removed unless `unused`, asked
    /// with the group's stored metadata value under the group's lock (so
    /// serialised with its commits and metadata writes), says the group has
    /// no members; a commit made meanwhile is never removed. `written_ms` as
    /// for [`OffsetStore::groups_to_expire`]. Blocking.
    pub fn expire_group(
        &self,
        group: &str,
        cutoff_ms: i64,
        written_ms: impl Fn(&[u8]) -> i64,
        unused: impl FnOnce(Option<&[u8]>) -> bool,
    ) -> Result<Expired, BrokerError> {
        let expired = {
            let _group = self.group_lock(group).lock();
            let _gate = self.gate.read();
            let (doomed, kept, meta, record) = {
                let opened = self.opened_ms.load(Ordering::Relaxed);
                let c = self.committed.lock();
                let record = c.groups.get(group).cloned();
                let meta = record.as_deref().map(|v| floor_of(written_ms(v), opened));
                let floor = meta.unwrap_or(opened);
                let mut doomed = Vec::new();
                let mut kept = 0usize;
                for (k, (_, _, at)) in c.map.iter().filter(|((g, _, _), _)| g == group) {
                    if age_from(*at, floor, opened) < cutoff_ms {
                        doomed.push(k.clone());
                    } else {
                        kept += 1;
                    }
                }
                (doomed, kept, meta, record)
            };
            // Once no offset is kept the group goes: its record's time is a
            // floor of every offset's age, so a group whose offsets all
            // expired has an expired record too, and one with a record but
            // no offset goes whatever its age.
            let whole = kept == 0;
            // Asked here, under the group's lock: no commit and no record
            // of the group is written meanwhile (a generation formed since
            // the caller looked is seen).
            if (!doomed.is_empty() || whole) && !unused(record.as_deref()) {
                return Ok(Expired::default());
            }
            let mut records: Vec<_> = doomed
                .iter()
                .map(|(g, t, p)| (encode_key(g, t, *p), None))
                .collect();
            let drop_meta = whole && meta.is_some();
            if drop_meta {
                records.push((encode_group_key(group), None));
            }
            if records.is_empty() {
                return Ok(Expired {
                    offsets: 0,
                    group: whole,
                });
            }
            // Gone from memory before the tombstones are written, as Kafka
            // does: a member joining meanwhile reads what the group will be,
            // not offsets about to vanish under it. Put back should the
            // write fail (no commit or snapshot of the group runs between:
            // its lock and the gate are held).
            let removed = {
                let mut c = self.committed.lock();
                let offsets: Vec<(Key, Value)> = doomed
                    .iter()
                    .filter_map(|k| c.map.remove_entry(k))
                    .collect();
                let meta = if drop_meta {
                    c.groups.remove(group)
                } else {
                    None
                };
                (offsets, meta)
            };
            if let Err(e) = self.append_durably(group, &records) {
                let mut c = self.committed.lock();
                c.map.extend(removed.0);
                if let Some(v) = removed.1 {
                    c.groups.insert(group.to_owned(), v);
                }
                return Err(e);
            }
            Expired {
                offsets: doomed.len(),
                group: whole,
            }
        };
        self.maybe_snapshot();
        Ok(expired)
    }
}

/// The time a group's age counts from at the least: when its metadata
/// record was `written` if known (nonzero), else `opened`.
fn floor_of(written: i64, opened: i64) -> i64 {
    if written > 0 { written } else { opened }
}

/// The time a key committed at `at` (0: unknown, then `opened`) counts its
/// age from, in a group whose floor is `floor`.
fn age_from(at: i64, floor: i64, opened: i64) -> i64 {
    floor_of(at, opened).max(floor)
}
