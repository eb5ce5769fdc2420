//! Groups of Kafka's consumer group protocol (KIP-848): the broker computes
//! each member's target assignment and hands it over through heartbeats, a
//! partition going to its new owner only after the old one has given it
//! up. Pure state: no I/O, no clock of its own (every call is given `now`),
//! no lock; [`super::Coordinator`] holds the groups behind its lock and runs
//! the expiry sweep.
//!
//! Epochs, as in Kafka: the *group epoch* rises with every change of
//! membership, subscriptions or the subscribed topics' partitions; the
//! *assignment epoch* is the group epoch the target assignment was computed
//! for; a member's *epoch* reaches the assignment epoch once it holds no
//! partition the target takes away from it. Offsets committed with a member
//! epoch other than the member's current one are refused, unless the member
//! held every committed partition at that epoch and still does (Kafka's
//! KIP-1251, [`ConsumerGroup::check_commit`]).
//!
//! Guarantees:
//! - A partition is never in two members' assignments at once: a member is
//!   given a partition only while no other member holds it or is still
//!   giving it up (the owner map is checked on every hand-out).
//! - A member that does not give up its revoked partitions within its
//!   rebalance timeout, or does not heartbeat within the session timeout,
//!   is removed, and its partitions go to the others.
//! - Each change to the group's epochs, members, their holdings and
//!   subscriptions, or its target raises the group's revision; the
//!   coordinator stores the group ([`ConsumerGroup::to_record`]) before it
//!   answers a heartbeat while a change is unstored, so a member is never
//!   told of a partition, an epoch or a membership that a restart (or a move
//!   of the coordinator) would forget. A restored group
//!   ([`ConsumerGroup::from_record`]) takes its members' heartbeats at the
//!   epochs they hold, without a rebalance.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use crate::topics::TopicId;

mod stored;

/// Partitions by topic id.
pub type Assignment = BTreeMap<TopicId, BTreeSet<u32>>;

/// The server-side assignors, by the names clients ask for.
pub const ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// Longest regular expression a member may subscribe with, in bytes.
pub const MAX_REGEX_BYTES: usize = 4096;

/// What the coordinator needs to know of the topics: each one's id and
/// partition count.
pub trait TopicView {
    /// Topic `name`'s id and partition count, if it exists.
    fn topic(&self, name: &str) -> Option<(TopicId, u32)>;
    /// Every topic's name (for regular-expression subscriptions); internal
    /// topics left out.
    fn names(&self) -> Vec<String>;
}

/// Where a member is in taking its target assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// It holds its whole target at the assignment epoch.
    Stable,
    /// It must give up partitions first (its epoch is the old one).
    UnrevokedPartitions,
    /// Its epoch is current, but partitions of its target are still held
    /// by members that have not given them up.
    UnreleasedPartitions,
}

/// Why a heartbeat was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeatError {
    /// Not a well-formed heartbeat (the message says why).
    InvalidRequest(String),
    /// No such member (it left, expired, or the coordinator restarted).
    UnknownMember,
    /// The member's epoch is not the one the group has for it: it must
    /// join again with epoch 0.
    FencedEpoch,
    /// A static member joined while another member holds its instance id.
    UnreleasedInstanceId,
    /// The instance id does not belong to the member.
    FencedInstanceId,
    /// An assignor the broker does not have.
    UnsupportedAssignor(String),
    /// A regular expression that does not compile.
    InvalidRegex(String),
    /// The group has `group_max_size` members, or would hold more than its
    /// byte budget.
    GroupMaxSize,
    /// A group name that is not a valid name (the topic-name rules).
    InvalidGroupId,
    /// The group is a classic group with members.
    NotConsumerGroup,
    /// The group's state could not be stored (the error of the write, or
    /// `NotCoordinator` if the group is no longer coordinated here).
    NotStored(sluice_protocol::wire::ErrorCode, String),
}

/// A heartbeat, as the coordinator reads it (wire quirks removed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beat {
    /// Member id (empty: the coordinator picks one).
    pub member_id: String,
    /// 0 join, -1 leave, -2 static leave, else the member's epoch.
    pub member_epoch: i32,
    /// Static id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Rebalance timeout; `None` when unchanged.
    pub rebalance_timeout: Option<Duration>,
    /// Subscribed topic names; `None` when unchanged.
    pub topic_names: Option<Vec<String>>,
    /// Subscribed regular expression; `None` when unchanged, `Some("")`
    /// to drop it.
    pub topic_regex: Option<String>,
    /// Server assignor; `None`: the default.
    pub assignor: Option<String>,
    /// Partitions the member owns; `None` when unchanged.
    pub owned: Option<Assignment>,
    /// Client id (shown by describe).
    pub client_id: String,
    /// Client address (shown by describe).
    pub client_host: String,
}

/// A heartbeat's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeatAnswer {
    /// The member's id.
    pub member_id: String,
    /// Its epoch now (-1 or -2 after a leave).
    pub member_epoch: i32,
    /// Its whole assignment, when it changed since last sent.
    pub assignment: Option<Assignment>,
}

/// One member.
#[derive(Debug, Clone)]
pub struct Member {
    /// Static id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Its epoch.
    pub epoch: i32,
    previous_epoch: i32,
    /// Where it is in taking its target.
    pub state: MemberState,
    /// What it holds.
    pub assigned: Assignment,
    /// What it is giving up (still its own until it says so).
    pub revoking: Assignment,
    /// The member epoch at which it was given each partition it holds or
    /// is giving up (KIP-1251's assignment epochs): a commit at an older
    /// member epoch is taken for partitions it was given by then.
    held_since: HashMap<(TopicId, u32), i32>,
    /// Subscribed names.
    pub topic_names: Vec<String>,
    /// Subscribed regular expression.
    pub topic_regex: Option<String>,
    compiled: Option<regex::Regex>,
    /// The topics its subscription resolves to now.
    subscribed: BTreeSet<String>,
    /// Assignor asked for.
    pub assignor: Option<String>,
    rebalance_timeout: Duration,
    session_deadline: Instant,
    revoke_deadline: Option<Instant>,
    /// The assignment last sent to it, and at which epoch.
    sent: Option<(i32, Assignment)>,
    /// A static member away after a temporary leave (epoch -2): its
    /// partitions wait for it until its session timeout.
    pub parked: bool,
    /// The bytes counted for it in [`ConsumerGroup::held`].
    counted: usize,
}

/// Bytes a member's own fields take, as counted against the group's
/// budget.
fn member_bytes(
    names: &[String],
    regex: Option<&String>,
    client_id: &str,
    client_host: &str,
    instance_id: Option<&String>,
    rack_id: Option<&String>,
) -> usize {
    names.iter().map(|t| t.len() + 16).sum::<usize>()
        + regex.map_or(0, String::len)
        + client_id.len()
        + client_host.len()
        + instance_id.map_or(0, String::len)
        + rack_id.map_or(0, String::len)
        + 256
}

/// Bytes counted per partition of the subscribed topics: the target,
/// owner, held and last-sent entries the group keeps for it.
const PARTITION_BYTES: usize = 128;

/// The group's settings for its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A member not heard from for this long is removed.
    pub session_timeout: Duration,
    /// Most members.
    pub max_size: usize,
    /// Most bytes of member state.
    pub max_bytes: usize,
}

/// A consumer-protocol group.
#[derive(Debug, Default)]
pub struct ConsumerGroup {
    /// Group epoch.
    pub epoch: i32,
    /// The group epoch the target assignment was computed for.
    pub assignment_epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    target: HashMap<String, Assignment>,
    /// The subscribed topics' ids and partition counts the target was
    /// computed from.
    topics: BTreeMap<String, (TopicId, u32)>,
    topics_checked: Option<Instant>,
    /// Who holds (or is giving up) each partition.
    owners: HashMap<(TopicId, u32), String>,
    /// Bytes counted for the members' own fields.
    members_held: usize,
    /// Bytes counted for the subscribed topics' partitions.
    partitions_held: usize,
    /// Raised by every change to what [`ConsumerGroup::to_record`] stores.
    revision: u64,
    /// The revision last stored durably (the coordinator's to set).
    pub stored_revision: u64,
    /// Serialises the group's writes to the offsets log (the
    /// coordinator's to hold).
    pub persist: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// DeleteGroups is writing the group's tombstone (the coordinator's to
    /// set): heartbeats are refused meanwhile.
    pub deleting: bool,
    /// When the last store of the group failed, if the last one did (the
    /// coordinator's to set: its sweep tries again a second later).
    pub store_failed_at: Option<Instant>,
}

/// How often a group looks again at its subscribed topics (partitions
/// added, topics created or deleted) when nothing else changed.
const TOPICS_RECHECK: Duration = Duration::from_secs(1);

/// A member id for a v0 join that brought none: 32 random hex digits.
pub fn new_member_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        b = now.to_be_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn compile(regex: &str) -> Result<regex::Regex, BeatError> {
    if regex.len() > MAX_REGEX_BYTES {
        return Err(BeatError::InvalidRegex(format!(
            "regular expression of {} bytes (at most {MAX_REGEX_BYTES})",
            regex.len()
        )));
    }
    // The pattern must stand on its own (so that it cannot close the
    // anchoring group below); Kafka matches the whole topic name.
    regex::RegexBuilder::new(regex)
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| BeatError::InvalidRegex(format!("{regex:?}: {e}")))?;
    regex::RegexBuilder::new(&format!("^(?:{regex})$"))
        .size_limit(1 << 20)
        .dfa_size_limit(1 << 20)
        .build()
        .map_err(|e| BeatError::InvalidRegex(format!("{regex:?}: {e}")))
}

fn contains(a: &Assignment, t: &TopicId, p: u32) -> bool {
    a.get(t).is_some_and(|ps| ps.contains(&p))
}

fn pairs(a: &Assignment) -> impl Iterator<Item = (TopicId, u32)> + '_ {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
}

fn minus(a: &Assignment, b: &Assignment) -> Assignment {
    let mut out = Assignment::new();
    for (t, p) in pairs(a).filter(|(t, p)| !contains(b, t, *p)) {
        out.entry(t).or_default().insert(p);
    }
    out
}

fn disjoint(a: &Assignment, b: &Assignment) -> bool {
    pairs(a).all(|(t, p)| !contains(b, &t, p))
}

fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// [`PARTITION_BYTES`] for every partition of `topics`.
fn partition_bytes(topics: &BTreeMap<String, (TopicId, u32)>) -> usize {
    topics
        .values()
        .map(|(_, n)| *n as usize)
        .sum::<usize>()
        .saturating_mul(PARTITION_BYTES)
}

impl ConsumerGroup {
    /// Bytes of state counted for the group: its members' own fields and
    /// its subscribed topics' partitions.
    pub fn held(&self) -> usize {
        self.members_held.saturating_add(self.partitions_held)
    }

    /// What [`ConsumerGroup::partitions_held`] would be with a member
    /// subscribed to `names` and `regex` as well.
    fn partitions_with(
        &self,
        names: &[String],
        regex: Option<&regex::Regex>,
        view: &dyn TopicView,
    ) -> usize {
        let mut topics = self.topics.clone();
        for name in names {
            if let Some(t) = view.topic(name) {
                topics.insert(name.clone(), t);
            }
        }
        if let Some(re) = regex {
            for name in view.names().into_iter().filter(|n| re.is_match(n)) {
                if let Some(t) = view.topic(&name) {
                    topics.insert(name, t);
                }
            }
        }
        partition_bytes(&topics)
    }

    /// A member's heartbeat (join, leave, or keep-alive with the partitions
    /// it owns). `limits` bound the group; `topics` resolves
    /// subscriptions. A change to what the group stores raises
    /// [`ConsumerGroup::revision`].
    pub fn heartbeat(
        &mut self,
        beat: Beat,
        now: Instant,
        limits: Limits,
        topics: &dyn TopicView,
    ) -> Result<BeatAnswer, BeatError> {
        let id = beat.member_id.clone();
        let before = self.fingerprint(&id);
        let r = self.beat(beat, now, limits, topics);
        if self.fingerprint(&id) != before {
            self.revision += 1;
        }
        r
    }

    fn beat(
        &mut self,
        beat: Beat,
        now: Instant,
        limits: Limits,
        topics: &dyn TopicView,
    ) -> Result<BeatAnswer, BeatError> {
        if let Some(a) = &beat.assignor {
            if !ASSIGNORS.contains(&a.as_str()) {
                return Err(BeatError::UnsupportedAssignor(format!(
                    "assignor {a:?} (this broker has {ASSIGNORS:?})"
                )));
            }
        }
        if beat.member_epoch < 0 {
            return match beat.member_epoch {
                -1 | -2 => self.leave(beat, now, limits),
                e => Err(BeatError::InvalidRequest(format!("member epoch {e}"))),
            };
        }
        // Checked before anything changes: a refused heartbeat leaves the
        // group as it was.
        let compiled = match beat.topic_regex.as_deref() {
            Some(r) if !r.is_empty() => Some(compile(r)?),
            _ => None,
        };
        match beat.member_epoch {
            0 => self.join(&beat, now, limits)?,
            _ => self.check_epoch(&beat)?,
        }
        let id = beat.member_id.clone();
        let Some(m) = self.members.get(&id) else {
            return Err(BeatError::UnknownMember);
        };
        // The member's new fields, applied only once they fit.
        let mut resubscribed = false;
        let names = match beat.topic_names {
            Some(mut names) => {
                names.sort();
                names.dedup();
                resubscribed |= names != m.topic_names;
                names
            }
            None => m.topic_names.clone(),
        };
        let (regex, compiled) = match beat.topic_regex {
            Some(r) => {
                let r = Some(r).filter(|r| !r.is_empty());
                resubscribed |= r != m.topic_regex;
                (r, compiled)
            }
            None => (m.topic_regex.clone(), m.compiled.clone()),
        };
        let assignor = match beat.assignor {
            Some(a) => {
                resubscribed |= m.assignor.as_ref() != Some(&a);
                Some(a)
            }
            None => m.assignor.clone(),
        };
        let rack_id = beat.rack_id.or_else(|| m.rack_id.clone());
        let bytes = member_bytes(
            &names,
            regex.as_ref(),
            &beat.client_id,
            &beat.client_host,
            m.instance_id.as_ref(),
            rack_id.as_ref(),
        );
        let partitions = if resubscribed {
            self.partitions_with(&names, compiled.as_ref(), topics)
        } else {
            self.partitions_held
        };
        let total = (self.members_held.saturating_sub(m.counted))
            .saturating_add(bytes)
            .saturating_add(partitions);
        if total > limits.max_bytes {
            // Nothing changes; a member that was joining is not kept.
            if beat.member_epoch == 0 {
                self.remove(&id);
                self.epoch = self.epoch.saturating_add(1);
            }
            return Err(BeatError::GroupMaxSize);
        }
        let Some(m) = self.members.get_mut(&id) else {
            return Err(BeatError::UnknownMember);
        };
        m.topic_names = names;
        m.topic_regex = regex;
        m.compiled = compiled;
        m.assignor = assignor;
        m.rack_id = rack_id;
        m.client_id = beat.client_id;
        m.client_host = beat.client_host;
        if let Some(t) = beat.rebalance_timeout {
            m.rebalance_timeout = t;
        }
        m.session_deadline = now + limits.session_timeout;
        self.members_held = self.members_held.saturating_sub(m.counted) + bytes;
        m.counted = bytes;
        if resubscribed {
            self.epoch = self.epoch.saturating_add(1);
        }
        self.refresh_topics(now, resubscribed, topics);
        if self.epoch > self.assignment_epoch {
            self.compute_target();
        }
        self.reconcile(&id, beat.owned.as_ref(), now);
        let Some(m) = self.members.get_mut(&id) else {
            return Err(BeatError::UnknownMember);
        };
        let changed = m.sent.as_ref() != Some(&(m.epoch, m.assigned.clone()));
        let disagrees = beat.owned.as_ref().is_some_and(|o| *o != m.assigned);
        let assignment = (changed || disagrees || beat.member_epoch == 0).then(|| {
            m.sent = Some((m.epoch, m.assigned.clone()));
            m.assigned.clone()
        });
        Ok(BeatAnswer {
            member_id: id,
            member_epoch: m.epoch,
            assignment,
        })
    }

    fn join(&mut self, beat: &Beat, now: Instant, limits: Limits) -> Result<(), BeatError> {
        if beat.member_id.is_empty() {
            return Err(BeatError::InvalidRequest("member id missing".into()));
        }
        if beat.rebalance_timeout.is_none() {
            return Err(BeatError::InvalidRequest(
                "a joining member must give its rebalance timeout".into(),
            ));
        }
        if beat.topic_names.is_none() && beat.topic_regex.is_none() {
            return Err(BeatError::InvalidRequest(
                "a joining member must give its subscription".into(),
            ));
        }
        if beat.owned.as_ref().is_some_and(|o| count(o) > 0) {
            return Err(BeatError::InvalidRequest(
                "a joining member cannot own partitions".into(),
            ));
        }
        if let Some(instance) = &beat.instance_id {
            let holder = self
                .members
                .iter()
                .find(|(_, m)| m.instance_id.as_ref() == Some(instance))
                .map(|(id, m)| (id.clone(), m.parked));
            match holder {
                // A static member back after a temporary leave takes its
                // place, partitions and epoch, without a rebalance.
                Some((old, true)) => {
                    self.unpark(&old, &beat.member_id, now, limits);
                    return Ok(());
                }
                Some((old, false)) if old != beat.member_id => {
                    return Err(BeatError::UnreleasedInstanceId);
                }
                _ => {}
            }
        }
        if self.members.contains_key(&beat.member_id) {
            // Joining again: whatever it held is given up.
            self.remove(&beat.member_id);
        }
        if self.members.len() >= limits.max_size {
            return Err(BeatError::GroupMaxSize);
        }
        let m = Member {
            instance_id: beat.instance_id.clone(),
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            revoking: Assignment::new(),
            held_since: HashMap::new(),
            topic_names: Vec::new(),
            topic_regex: None,
            compiled: None,
            subscribed: BTreeSet::new(),
            assignor: None,
            rebalance_timeout: Duration::ZERO,
            session_deadline: now + limits.session_timeout,
            revoke_deadline: None,
            sent: None,
            parked: false,
            counted: 0,
        };
        self.members.insert(beat.member_id.clone(), m);
        self.epoch = self.epoch.saturating_add(1);
        Ok(())
    }

    /// Moves parked static member `old` to member id `new`.
    fn unpark(&mut self, old: &str, new: &str, now: Instant, limits: Limits) {
        if new != old && self.members.contains_key(new) {
            // Another member under that id joins again: it gives up
            // whatever it held.
            self.remove(new);
            self.epoch = self.epoch.saturating_add(1);
        }
        let Some(mut m) = self.members.remove(old) else {
            return;
        };
        for tp in pairs(&m.assigned).chain(pairs(&m.revoking)) {
            if let Some(o) = self.owners.get_mut(&tp) {
                if o == old {
                    *o = new.to_owned();
                }
            }
        }
        if let Some(t) = self.target.remove(old) {
            self.target.insert(new.to_owned(), t);
        }
        m.parked = false;
        m.sent = None;
        m.session_deadline = now + limits.session_timeout;
        self.members.insert(new.to_owned(), m);
    }

    fn check_epoch(&self, beat: &Beat) -> Result<(), BeatError> {
        let Some(m) = self.members.get(&beat.member_id).filter(|m| !m.parked) else {
            return Err(BeatError::UnknownMember);
        };
        if beat.instance_id.is_some() && beat.instance_id != m.instance_id {
            return Err(BeatError::FencedInstanceId);
        }
        let e = beat.member_epoch;
        if e == m.epoch {
            return Ok(());
        }
        // A member that missed the answer that raised its epoch may go on
        // with the one before, if it owns nothing it was not given.
        let missed_answer = e == m.previous_epoch
            && beat
                .owned
                .as_ref()
                .is_some_and(|o| pairs(o).all(|(t, p)| contains(&m.assigned, &t, p)));
        if missed_answer {
            Ok(())
        } else {
            Err(BeatError::FencedEpoch)
        }
    }

    fn leave(&mut self, beat: Beat, now: Instant, limits: Limits) -> Result<BeatAnswer, BeatError> {
        if beat.member_epoch == -2 {
            // A static member's temporary leave: it keeps its partitions
            // (nobody else is given them) until it comes back under its
            // instance id or its session timeout passes.
            let Some(instance) = &beat.instance_id else {
                return Err(BeatError::InvalidRequest(
                    "a temporary leave (epoch -2) needs the instance id".into(),
                ));
            };
            let found = self
                .members
                .iter_mut()
                .find(|(_, m)| m.instance_id.as_ref() == Some(instance));
            return match found {
                Some((id, m)) if beat.member_id.is_empty() || *id == beat.member_id => {
                    m.parked = true;
                    self.revision += 1;
                    m.session_deadline = now + limits.session_timeout;
                    Ok(BeatAnswer {
                        member_id: id.clone(),
                        member_epoch: -2,
                        assignment: None,
                    })
                }
                Some(_) => Err(BeatError::FencedInstanceId),
                None => Err(BeatError::UnknownMember),
            };
        }
        let id = if beat.member_id.is_empty() {
            // A static member may leave by its instance id.
            beat.instance_id.as_ref().and_then(|i| {
                self.members
                    .iter()
                    .find(|(_, m)| m.instance_id.as_ref() == Some(i))
                    .map(|(id, _)| id.clone())
            })
        } else {
            Some(beat.member_id.clone())
        };
        match id {
            Some(id) if self.members.contains_key(&id) => {
                self.remove(&id);
                self.epoch = self.epoch.saturating_add(1);
                Ok(BeatAnswer {
                    member_id: id,
                    member_epoch: beat.member_epoch,
                    assignment: None,
                })
            }
            _ => Err(BeatError::UnknownMember),
        }
    }

    /// Removes a member; its partitions are free at once.
    fn remove(&mut self, id: &str) {
        if let Some(m) = self.members.remove(id) {
            self.members_held = self.members_held.saturating_sub(m.counted);
            for tp in pairs(&m.assigned).chain(pairs(&m.revoking)) {
                if self.owners.get(&tp).is_some_and(|o| o == id) {
                    self.owners.remove(&tp);
                }
            }
        }
        self.target.remove(id);
    }

    /// Removes the members whose session or rebalance timeout passed;
    /// returns their ids.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| {
                m.session_deadline <= now || m.revoke_deadline.is_some_and(|d| d <= now)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            self.remove(id);
        }
        if !gone.is_empty() {
            self.epoch = self.epoch.saturating_add(1);
            self.revision += 1;
        }
        gone
    }

    /// The earliest moment [`ConsumerGroup::expire`] may remove a member.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.members
            .values()
            .flat_map(|m| std::iter::once(m.session_deadline).chain(m.revoke_deadline))
            .min()
    }

    /// Checks a fetch of committed offsets by `member_id` at `epoch`: `Ok`
    /// if the member exists and `epoch` is its current one.
    pub fn check_fetch(&self, member_id: &str, epoch: i32) -> Result<(), CommitRefusal> {
        match self.members.get(member_id).filter(|m| !m.parked) {
            None => Err(CommitRefusal::UnknownMember),
            Some(m) if m.epoch == epoch => Ok(()),
            Some(_) => Err(CommitRefusal::StaleEpoch),
        }
    }

    /// Checks an offset commit by `member_id` at `epoch` of `partitions`
    /// (topic name, partition), with KIP-1251's rule: `Ok` at the member's
    /// current epoch; at an older epoch only if the member still holds (or
    /// is giving up) every one of them and was given each at that epoch or
    /// before. A member commits as it reads while a heartbeat answer raises
    /// its epoch (any reconciliation does): such a commit is taken, where a
    /// check of the epoch alone refused it; a commit of a partition the
    /// member no longer holds, or got only after that epoch, is refused.
    pub fn check_commit(
        &self,
        member_id: &str,
        epoch: i32,
        partitions: &[(&str, u32)],
    ) -> Result<(), CommitRefusal> {
        let Some(m) = self.members.get(member_id).filter(|m| !m.parked) else {
            return Err(CommitRefusal::UnknownMember);
        };
        if epoch == m.epoch {
            return Ok(());
        }
        if epoch > m.epoch || epoch <= 0 {
            return Err(CommitRefusal::StaleEpoch);
        }
        let held_by_then = |(name, p): &(&str, u32)| {
            self.topics.get(*name).is_some_and(|(t, _)| {
                (contains(&m.assigned, t, *p) || contains(&m.revoking, t, *p))
                    && m.held_since.get(&(*t, *p)).is_some_and(|e| *e <= epoch)
            })
        };
        if partitions.iter().all(held_by_then) {
            Ok(())
        } else {
            Err(CommitRefusal::StaleEpoch)
        }
    }

    /// Whether `member_id` is a member (not parked after a temporary
    /// leave).
    pub fn has_member(&self, member_id: &str) -> bool {
        self.members.get(member_id).is_some_and(|m| !m.parked)
    }

    /// Whether the group has members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The topic names any member's subscription resolves to now.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect()
    }

    /// Whether every member holds its target at the assignment epoch.
    pub fn is_stable(&self) -> bool {
        self.members.values().all(|m| {
            m.parked || (m.state == MemberState::Stable && m.epoch == self.assignment_epoch)
        })
    }

    /// Partitions of `assignment` by topic name (for describing members),
    /// topics the group no longer knows left out.
    pub fn named(&self, assignment: &Assignment) -> Vec<(String, Vec<u32>)> {
        self.with_names(assignment)
            .into_iter()
            .map(|(_, name, partitions)| (name, partitions))
            .collect()
    }

    /// Looks at the subscribed topics again (when a subscription changed,
    /// else at most once per [`TOPICS_RECHECK`]); a change raises the group
    /// epoch.
    fn refresh_topics(&mut self, now: Instant, force: bool, view: &dyn TopicView) {
        if !force
            && self
                .topics_checked
                .is_some_and(|t| now.duration_since(t) < TOPICS_RECHECK)
        {
            return;
        }
        self.topics_checked = Some(now);
        let all_names = if self.members.values().any(|m| m.compiled.is_some()) {
            view.names()
        } else {
            Vec::new()
        };
        let mut topics = BTreeMap::new();
        for m in self.members.values_mut() {
            let mut subscribed = BTreeSet::new();
            for name in &m.topic_names {
                if let Some(t) = view.topic(name) {
                    topics.insert(name.clone(), t);
                    subscribed.insert(name.clone());
                }
            }
            if let Some(re) = &m.compiled {
                for name in all_names.iter().filter(|n| re.is_match(n)) {
                    if !subscribed.contains(name) {
                        if let Some(t) = view.topic(name) {
                            topics.insert(name.clone(), t);
                            subscribed.insert(name.clone());
                        }
                    }
                }
            }
            m.subscribed = subscribed;
        }
        self.partitions_held = partition_bytes(&topics);
        if topics != self.topics {
            self.topics = topics;
            self.epoch = self.epoch.saturating_add(1);
        }
    }

    /// Computes every member's target for the current group epoch.
    fn compute_target(&mut self) {
        self.target = if self.assignor() == "range" {
            range_assign(&self.members, &self.topics)
        } else {
            uniform_assign(&self.members, &self.topics, &self.target)
        };
        self.assignment_epoch = self.epoch;
    }

    /// Moves member `id` towards its target, given what it says it owns.
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return;
        };
        if m.state == MemberState::UnrevokedPartitions {
            match owned {
                Some(o) if disjoint(o, &m.revoking) => {
                    for tp in pairs(&m.revoking) {
                        m.held_since.remove(&tp);
                        if self.owners.get(&tp).is_some_and(|x| x == id) {
                            self.owners.remove(&tp);
                        }
                    }
                    m.revoking.clear();
                    m.revoke_deadline = None;
                    m.state = MemberState::Stable;
                }
                _ => return,
            }
        }
        if m.epoch == assignment_epoch && m.state == MemberState::Stable {
            return;
        }
        if m.epoch < assignment_epoch {
            let revoke = minus(&m.assigned, &target);
            if count(&revoke) > 0 {
                m.assigned = minus(&m.assigned, &revoke);
                m.revoking = revoke;
                m.state = MemberState::UnrevokedPartitions;
                m.revoke_deadline = Some(now + m.rebalance_timeout);
                return;
            }
            m.previous_epoch = m.epoch;
            m.epoch = assignment_epoch;
        }
        // Take what of the target no one else holds.
        for (t, p) in pairs(&target) {
            if contains(&m.assigned, &t, p) {
                continue;
            }
            match self.owners.get(&(t, p)) {
                Some(o) if o != id => {}
                _ => {
                    self.owners.insert((t, p), id.to_owned());
                    m.assigned.entry(t).or_default().insert(p);
                    m.held_since.insert((t, p), m.epoch);
                }
            }
        }
        m.state = if m.assigned == target {
            MemberState::Stable
        } else {
            MemberState::UnreleasedPartitions
        };
    }
}

/// Partitions by topic, with each topic's id and name.
pub type NamedAssignment = Vec<(TopicId, String, Vec<u32>)>;

/// One member, described (ConsumerGroupDescribe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// Member id.
    pub member_id: String,
    /// Static id.
    pub instance_id: Option<String>,
    /// Rack.
    pub rack_id: Option<String>,
    /// Its epoch.
    pub epoch: i32,
    /// Client id.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Subscribed names.
    pub topic_names: Vec<String>,
    /// Subscribed regular expression.
    pub topic_regex: Option<String>,
    /// What it holds.
    pub assigned: NamedAssignment,
    /// What the target gives it.
    pub target: NamedAssignment,
}

/// A group, described (ConsumerGroupDescribe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    /// Kafka's name of its state: `Stable` when every member holds its
    /// target, else `Reconciling`.
    pub state: &'static str,
    /// Group epoch.
    pub epoch: i32,
    /// Target assignment epoch.
    pub assignment_epoch: i32,
    /// The assignor in use.
    pub assignor: &'static str,
    /// Members, by id.
    pub members: Vec<MemberView>,
}

impl ConsumerGroup {
    /// The assignor the target is computed with: `range` when every member
    /// asks for it, else `uniform`.
    pub fn assignor(&self) -> &'static str {
        if !self.members.is_empty()
            && self
                .members
                .values()
                .all(|m| m.assignor.as_deref() == Some("range"))
        {
            "range"
        } else {
            "uniform"
        }
    }

    fn with_names(&self, a: &Assignment) -> NamedAssignment {
        self.topics
            .iter()
            .filter_map(|(name, (id, _))| {
                a.get(id)
                    .map(|ps| (*id, name.clone(), ps.iter().copied().collect()))
            })
            .collect()
    }

    /// The whole group, described.
    pub fn view(&self) -> GroupView {
        GroupView {
            state: if self.is_empty() {
                "Empty"
            } else if self.is_stable() {
                "Stable"
            } else {
                "Reconciling"
            },
            epoch: self.epoch,
            assignment_epoch: self.assignment_epoch,
            assignor: self.assignor(),
            members: self
                .members
                .iter()
                .map(|(id, m)| MemberView {
                    member_id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    rack_id: m.rack_id.clone(),
                    epoch: m.epoch,
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    topic_names: m.topic_names.clone(),
                    topic_regex: m.topic_regex.clone(),
                    assigned: self.with_names(&m.assigned),
                    target: self.with_names(self.target.get(id).unwrap_or(&Assignment::new())),
                })
                .collect(),
        }
    }
}

/// Why a commit by a consumer-protocol member was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitRefusal {
    /// No such member.
    UnknownMember,
    /// Not the member's current epoch (nor, for a commit, an older one it
    /// held every committed partition at).
    StaleEpoch,
}

/// Kafka's `uniform` assignor, sticky. When every member subscribes to the
/// same topics (the usual case), each gets ⌊P/N⌋ or ⌈P/N⌉ partitions,
/// keeping what its last target gave it up to that: O(P log P + N).
/// Otherwise see [`uniform_assign_mixed`].
fn uniform_assign(
    members: &BTreeMap<String, Member>,
    topics: &BTreeMap<String, (TopicId, u32)>,
    previous: &HashMap<String, Assignment>,
) -> HashMap<String, Assignment> {
    let mut subs = members.values().map(|m| &m.subscribed);
    let same = subs.next().is_some_and(|first| subs.all(|s| s == first));
    if !same {
        return uniform_assign_mixed(members, topics, previous);
    }
    let Some(first) = members.values().next() else {
        return HashMap::new();
    };
    let all: BTreeSet<(TopicId, u32)> = topics
        .iter()
        .filter(|(name, _)| first.subscribed.contains(*name))
        .flat_map(|(_, (t, n))| (0..*n).map(move |p| (*t, p)))
        .collect();
    let n = members.len();
    let (base, extra) = (all.len() / n, all.len() % n);
    // Who keeps what: each member's previous partitions that still exist,
    // at most ⌈P/N⌉ of them, and only `extra` members that many.
    let mut kept: Vec<(&String, Vec<(TopicId, u32)>)> = members
        .keys()
        .map(|id| {
            let prev: Vec<(TopicId, u32)> = previous
                .get(id)
                .map(|a| pairs(a).filter(|tp| all.contains(tp)).collect())
                .unwrap_or_default();
            (id, prev)
        })
        .collect();
    // Those that held the most get the larger quotas, so that fewer move.
    kept.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut taken: BTreeSet<(TopicId, u32)> = BTreeSet::new();
    let mut quotas = Vec::with_capacity(n);
    for (i, (_, prev)) in kept.iter_mut().enumerate() {
        let quota = base + usize::from(i < extra);
        prev.retain(|tp| !taken.contains(tp));
        prev.truncate(quota);
        taken.extend(prev.iter().copied());
        quotas.push(quota);
    }
    let mut free = all.iter().filter(|tp| !taken.contains(tp));
    let mut out = HashMap::with_capacity(n);
    for ((id, prev), quota) in kept.into_iter().zip(quotas) {
        let mut a = Assignment::new();
        for (t, p) in prev {
            a.entry(t).or_default().insert(p);
        }
        while count(&a) < quota {
            let Some((t, p)) = free.next() else {
                break;
            };
            a.entry(*t).or_default().insert(*p);
        }
        out.insert(id.clone(), a);
    }
    out
}

/// The `uniform` assignor when members subscribe to different topics:
/// every member keeps what its last target gave it (of topics it still
/// subscribes to), the rest goes to the eligible member with the fewest
/// partitions, then partitions move from the fullest members to eligible
/// ones with at least two fewer until no such move is left.
fn uniform_assign_mixed(
    members: &BTreeMap<String, Member>,
    topics: &BTreeMap<String, (TopicId, u32)>,
    previous: &HashMap<String, Assignment>,
) -> HashMap<String, Assignment> {
    let by_id: HashMap<TopicId, (&String, u32)> =
        topics.iter().map(|(n, (id, c))| (*id, (n, *c))).collect();
    let eligible = |m: &Member, t: &TopicId| {
        by_id
            .get(t)
            .is_some_and(|(name, _)| m.subscribed.contains(*name))
    };
    let mut out: HashMap<String, Assignment> = HashMap::new();
    let mut taken: BTreeSet<(TopicId, u32)> = BTreeSet::new();
    for (id, m) in members {
        let mut kept = Assignment::new();
        if let Some(prev) = previous.get(id) {
            for (t, p) in pairs(prev) {
                let exists = by_id.get(&t).is_some_and(|(_, c)| p < *c);
                if exists && eligible(m, &t) && taken.insert((t, p)) {
                    kept.entry(t).or_default().insert(p);
                }
            }
        }
        out.insert(id.clone(), kept);
    }
    let mut counts: HashMap<&String, usize> = members
        .keys()
        .map(|id| (id, out.get(id).map_or(0, count)))
        .collect();
    // Each topic's subscribers, looked up once.
    let subscribers: HashMap<TopicId, Vec<&String>> = topics
        .iter()
        .map(|(name, (t, _))| {
            let ids = members
                .iter()
                .filter(|(_, m)| m.subscribed.contains(name))
                .map(|(id, _)| id)
                .collect();
            (*t, ids)
        })
        .collect();
    for (t, partitions) in topics.values() {
        let Some(ids) = subscribers.get(t).filter(|ids| !ids.is_empty()) else {
            continue;
        };
        // The subscriber with the fewest partitions takes the next one.
        let mut heap: std::collections::BinaryHeap<std::cmp::Reverse<(usize, &String)>> = ids
            .iter()
            .map(|id| std::cmp::Reverse((counts.get(id).copied().unwrap_or(0), *id)))
            .collect();
        for p in 0..*partitions {
            if taken.contains(&(*t, p)) {
                continue;
            }
            let Some(std::cmp::Reverse((n, to))) = heap.pop() else {
                break;
            };
            out.entry(to.clone())
                .or_default()
                .entry(*t)
                .or_default()
                .insert(p);
            counts.insert(to, n + 1);
            heap.push(std::cmp::Reverse((n + 1, to)));
        }
    }
    // Even out: each move lowers the sum of squared counts, so this ends.
    // A member holding fewer than two more than the emptiest can give
    // nothing.
    loop {
        let mut moved = false;
        let mut donors: Vec<&String> = members.keys().collect();
        donors.sort_by_key(|id| std::cmp::Reverse(counts.get(id).copied().unwrap_or(0)));
        for donor in donors {
            let least = counts.values().copied().min().unwrap_or(0);
            if counts.get(donor).copied().unwrap_or(0) < least + 2 {
                continue;
            }
            let held: Vec<(TopicId, u32)> = out
                .get(donor)
                .map(|a| pairs(a).collect())
                .unwrap_or_default();
            for (t, p) in held.into_iter().rev() {
                let have = counts.get(donor).copied().unwrap_or(0);
                if have < least + 2 {
                    break;
                }
                let Some(to) = subscribers
                    .get(&t)
                    .into_iter()
                    .flatten()
                    .copied()
                    .filter(|id| *id != donor)
                    .filter(|id| counts.get(id).copied().unwrap_or(0) + 2 <= have)
                    .min_by_key(|id| (counts.get(id).copied().unwrap_or(0), *id))
                else {
                    continue;
                };
                if let Some(ps) = out.get_mut(donor).and_then(|a| a.get_mut(&t)) {
                    ps.remove(&p);
                    if ps.is_empty() {
                        out.get_mut(donor).map(|a| a.remove(&t));
                    }
                }
                out.entry(to.clone())
                    .or_default()
                    .entry(t)
                    .or_default()
                    .insert(p);
                *counts.entry(donor).or_default() -= 1;
                *counts.entry(to).or_default() += 1;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    out
}

/// Kafka's `range` assignor: each topic's partitions in contiguous ranges
/// over its subscribers in member-id order, the first ones one more when
/// they do not divide evenly.
fn range_assign(
    members: &BTreeMap<String, Member>,
    topics: &BTreeMap<String, (TopicId, u32)>,
) -> HashMap<String, Assignment> {
    let mut out: HashMap<String, Assignment> = members
        .keys()
        .map(|id| (id.clone(), Assignment::new()))
        .collect();
    for (name, (t, partitions)) in topics {
        let subs: Vec<&String> = members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(name))
            .map(|(id, _)| id)
            .collect();
        if subs.is_empty() {
            continue;
        }
        let n = subs.len() as u32;
        let (each, extra) = (partitions / n, partitions % n);
        let mut next = 0u32;
        for (i, id) in subs.into_iter().enumerate() {
            let take = each + u32::from((i as u32) < extra);
            if take > 0 {
                let ps = out.entry(id.clone()).or_default().entry(*t).or_default();
                ps.extend(next..next + take);
            }
            next += take;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::record::ConsumerGroupRecord;
    use proptest::prelude::*;

    struct View(BTreeMap<String, (TopicId, u32)>);

    impl TopicView for View {
        fn topic(&self, name: &str) -> Option<(TopicId, u32)> {
            self.0.get(name).copied()
        }
        fn names(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
    }

    fn tid(n: u8) -> TopicId {
        TopicId([n; 16])
    }

    fn view(topics: &[(&str, u8, u32)]) -> View {
        View(
            topics
                .iter()
                .map(|(n, id, c)| ((*n).to_owned(), (tid(*id), *c)))
                .collect(),
        )
    }

    const LIMITS: Limits = Limits {
        session_timeout: Duration::from_secs(45),
        max_size: 100,
        max_bytes: 1 << 20,
    };

    fn join(id: &str, topics: &[&str]) -> Beat {
        Beat {
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout: Some(Duration::from_secs(30)),
            topic_names: Some(topics.iter().map(|t| (*t).to_owned()).collect()),
            topic_regex: Some(String::new()),
            owned: Some(Assignment::new()),
            ..Beat::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: Option<&Assignment>) -> Beat {
        Beat {
            member_id: id.into(),
            member_epoch: epoch,
            owned: owned.cloned(),
            ..Beat::default()
        }
    }

    fn parts(t: u8, ps: &[u32]) -> Assignment {
        let mut a = Assignment::new();
        if !ps.is_empty() {
            a.insert(tid(t), ps.iter().copied().collect());
        }
        a
    }

    /// The group through its record, as a restart (or a new coordinator)
    /// restores it.
    fn restored(g: &ConsumerGroup, now: Instant) -> ConsumerGroup {
        let r = ConsumerGroupRecord::decode(&g.to_record().encode()).expect("decodes");
        ConsumerGroup::from_record(r, now, LIMITS.session_timeout)
    }

    /// A record no broker writes (a partition held and given up at once,
    /// by two members, a member twice, a state that does not fit) is
    /// restored without a partition having two owners.
    #[test]
    fn an_inconsistent_record_is_restored_consistent() {
        use crate::group::record::ConsumerMemberRecord;
        let v = view(&[("t", 1, 4)]);
        let now = Instant::now();
        let member =
            |id: &str, assigned: &[u32], revoking: &[u32], state: u8| ConsumerMemberRecord {
                member_id: id.into(),
                instance_id: None,
                rack_id: None,
                client_id: String::new(),
                client_host: String::new(),
                epoch: 3,
                previous_epoch: 2,
                state,
                assigned: vec![([1; 16], assigned.to_vec())],
                revoking: vec![([1; 16], revoking.to_vec())],
                held_since: vec![],
                topic_names: vec!["t".into()],
                topic_regex: None,
                assignor: None,
                rebalance_timeout_ms: 1000,
                parked: false,
            };
        let r = ConsumerGroupRecord {
            epoch: 3,
            assignment_epoch: 3,
            topics: vec![("t".into(), [1; 16], 4)],
            targets: vec![],
            members: vec![
                member("a", &[0, 1], &[1], 0),
                member("a", &[2], &[], 0),
                member("b", &[1, 2], &[3], 9),
            ],
            written_ms: 0,
        };
        let mut g = ConsumerGroup::from_record(r, now, LIMITS.session_timeout);
        assert_eq!(g.members.len(), 2);
        let a = &g.members["a"];
        assert_eq!(
            (a.assigned.clone(), a.revoking.clone()),
            (parts(1, &[0, 1]), Assignment::new())
        );
        assert_eq!(a.state, MemberState::Stable);
        let b = &g.members["b"];
        assert_eq!(
            (b.assigned.clone(), b.revoking.clone()),
            (parts(1, &[2]), parts(1, &[3]))
        );
        assert_eq!(b.state, MemberState::UnrevokedPartitions);
        // Once b gives 3 up, whoever takes what is free, nobody holds one
        // partition twice.
        g.heartbeat(beat("b", 3, Some(&parts(1, &[2]))), now, LIMITS, &v)
            .expect("b");
        g.heartbeat(beat("a", 3, Some(&parts(1, &[0, 1]))), now, LIMITS, &v)
            .expect("a");
        let mut seen = BTreeSet::new();
        for m in g.members.values() {
            for tp in pairs(&m.assigned).chain(pairs(&m.revoking)) {
                assert!(seen.insert(tp), "{tp:?} twice: {g:?}");
            }
        }
    }

    #[test]
    fn a_restored_group_goes_on_where_it_was() {
        let v = view(&[("t", 1, 4)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        let ea = g
            .heartbeat(join("a", &["t"]), now, LIMITS, &v)
            .expect("a")
            .member_epoch;
        let mut s = join("s", &["t"]);
        s.instance_id = Some("static".into());
        let es = g.heartbeat(s, now, LIMITS, &v).expect("s").member_epoch;
        let all = parts(1, &[0, 1, 2, 3]);
        // a is told to give two up, and has not yet.
        let kept = g
            .heartbeat(beat("a", ea, Some(&all)), now, LIMITS, &v)
            .expect("a")
            .assignment
            .expect("smaller");
        assert_eq!(count(&kept), 2);
        assert!(g.unstored());
        let before = g.view();
        let mut g = restored(&g, now);
        assert_eq!(g.view(), before);
        assert!(!g.unstored());
        // The static member is not given a's partitions while a holds them.
        let r = g
            .heartbeat(beat("s", es, None), now, LIMITS, &v)
            .expect("s after the restart");
        assert_eq!(r.assignment, Some(Assignment::new()), "sent whole again");
        // a goes on at its epoch, gives them up, and s takes them.
        let r = g
            .heartbeat(beat("a", ea, Some(&kept)), now, LIMITS, &v)
            .expect("a after the restart");
        assert_eq!(r.member_epoch, es);
        assert!(g.unstored(), "a's new epoch must be stored");
        let theirs = g
            .heartbeat(beat("s", es, None), now, LIMITS, &v)
            .expect("s")
            .assignment
            .expect("s's partitions");
        assert_eq!(theirs, minus(&all, &kept));
        assert!(g.is_stable());
        // Commits at a's old epoch of what it kept still count (KIP-1251).
        let names = |a: &Assignment| pairs(a).map(|(_, p)| ("t", p)).collect::<Vec<_>>();
        let mut g = restored(&g, now);
        assert_eq!(g.check_commit("a", ea, &names(&kept)), Ok(()));
        assert_eq!(
            g.check_commit("a", ea, &names(&theirs)),
            Err(CommitRefusal::StaleEpoch)
        );
        // The static member leaves for a while; restored, it is still
        // away, and comes back to its partitions under a new id.
        // (By its instance id alone.)
        let mut bye = beat("", -2, None);
        bye.instance_id = Some("static".into());
        g.heartbeat(bye, now, LIMITS, &v).expect("temporary leave");
        assert!(g.unstored());
        let mut g = restored(&g, now);
        assert!(!g.has_member("s"));
        let mut back = join("s2", &["t"]);
        back.instance_id = Some("static".into());
        let r = g.heartbeat(back, now, LIMITS, &v).expect("back");
        assert_eq!(r.assignment, Some(theirs));
        // Sessions start again at the restore.
        let later = now + LIMITS.session_timeout + Duration::from_secs(1);
        let mut g = restored(&g, later);
        assert!(g.expire(later).is_empty());
        assert_eq!(g.expire(later + LIMITS.session_timeout).len(), 2);
        assert!(g.unstored());
    }

    #[test]
    fn a_partition_moves_only_after_its_owner_gives_it_up() {
        let v = view(&[("t", 1, 4)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        let a = g
            .heartbeat(join("a", &["t"]), now, LIMITS, &v)
            .expect("a joins");
        assert_eq!(a.assignment, Some(parts(1, &[0, 1, 2, 3])));
        let ea = a.member_epoch;
        assert!(ea > 0);
        let b = g
            .heartbeat(join("b", &["t"]), now, LIMITS, &v)
            .expect("b joins");
        // Everything is still a's: b gets nothing yet, at the new epoch.
        assert_eq!(b.assignment, Some(Assignment::new()));
        let eb = b.member_epoch;
        assert!(eb > ea);
        // a is told to keep two (its epoch unchanged while it revokes).
        let all = parts(1, &[0, 1, 2, 3]);
        let r = g
            .heartbeat(beat("a", ea, Some(&all)), now, LIMITS, &v)
            .expect("a");
        assert_eq!(r.member_epoch, ea);
        let kept = r.assignment.expect("a's smaller assignment");
        assert_eq!(count(&kept), 2);
        // b still waits: a has not said it gave them up.
        let r = g
            .heartbeat(beat("b", eb, None), now, LIMITS, &v)
            .expect("b");
        assert_eq!(r.assignment, None);
        // a gives them up and reaches the new epoch.
        let r = g
            .heartbeat(beat("a", ea, Some(&kept)), now, LIMITS, &v)
            .expect("a");
        assert_eq!(r.member_epoch, eb);
        // Now b takes the other two.
        let r = g
            .heartbeat(beat("b", eb, None), now, LIMITS, &v)
            .expect("b");
        let theirs = r.assignment.expect("b's assignment");
        assert_eq!(theirs, minus(&all, &kept));
        assert!(g.is_stable());
        // Commits: at the member's current epoch, or at an older one for
        // partitions it held then and still holds (KIP-1251).
        let names = |a: &Assignment| pairs(a).map(|(_, p)| ("t", p)).collect::<Vec<_>>();
        assert_eq!(g.check_commit("a", eb, &names(&all)), Ok(()));
        assert_eq!(g.check_commit("a", ea, &names(&kept)), Ok(()));
        assert_eq!(g.check_commit("a", ea, &[]), Ok(()));
        // Not what went to b, not at an epoch it never had, not a topic
        // the group does not know.
        let stale = Err(CommitRefusal::StaleEpoch);
        assert_eq!(g.check_commit("a", ea, &names(&theirs)), stale);
        assert_eq!(g.check_commit("a", ea, &names(&all)), stale);
        assert_eq!(g.check_commit("a", eb + 1, &[]), stale);
        assert_eq!(g.check_commit("a", ea, &[("other", 0)]), stale);
        // b was given its partitions at eb: not earlier.
        assert_eq!(g.check_commit("b", ea, &names(&theirs)), stale);
        assert_eq!(g.check_commit("b", eb, &names(&theirs)), Ok(()));
        // Fetches of committed offsets: the current epoch only.
        assert_eq!(g.check_fetch("a", eb), Ok(()));
        assert_eq!(g.check_fetch("a", ea), stale);
        assert_eq!(
            g.check_commit("c", eb, &[]),
            Err(CommitRefusal::UnknownMember)
        );
    }

    #[test]
    fn a_commit_while_giving_up_partitions_is_taken_at_either_epoch() {
        let v = view(&[("t", 1, 4)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        let ea = g
            .heartbeat(join("a", &["t"]), now, LIMITS, &v)
            .expect("a")
            .member_epoch;
        let eb = g
            .heartbeat(join("b", &["t"]), now, LIMITS, &v)
            .expect("b")
            .member_epoch;
        let all = parts(1, &[0, 1, 2, 3]);
        let kept = g
            .heartbeat(beat("a", ea, Some(&all)), now, LIMITS, &v)
            .expect("a")
            .assignment
            .expect("kept");
        let given_up = minus(&all, &kept);
        let names = |a: &Assignment| pairs(a).map(|(_, p)| ("t", p)).collect::<Vec<_>>();
        // While it gives them up (its epoch still ea), its commits of all
        // four are taken: what a rebalance callback commits.
        assert_eq!(g.check_commit("a", ea, &names(&all)), Ok(()));
        // Once it said it gave them up (its epoch now eb), a commit sent
        // before it learnt that is taken for what it kept only.
        let r = g
            .heartbeat(beat("a", ea, Some(&kept)), now, LIMITS, &v)
            .expect("a");
        assert_eq!(r.member_epoch, eb);
        assert_eq!(g.check_commit("a", ea, &names(&kept)), Ok(()));
        assert_eq!(
            g.check_commit("a", ea, &names(&given_up)),
            Err(CommitRefusal::StaleEpoch)
        );
    }

    #[test]
    fn stale_epochs_are_fenced_but_a_lost_answer_is_forgiven() {
        let v = view(&[("t", 1, 2)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(join("a", &["t"]), now, LIMITS, &v).expect("a");
        let e1 = a.member_epoch;
        // A new subscription raises the epoch; the answer "is lost".
        let mut resub = beat("a", e1, None);
        resub.topic_names = Some(vec!["t".into(), "u".into()]);
        let e2 = g.heartbeat(resub, now, LIMITS, &v).expect("a").member_epoch;
        assert!(e2 > e1);
        // The previous epoch with owned partitions it was given: allowed.
        let owned = parts(1, &[0, 1]);
        assert!(
            g.heartbeat(beat("a", e1, Some(&owned)), now, LIMITS, &v)
                .is_ok()
        );
        // Without its owned partitions, or any other epoch: fenced.
        assert_eq!(
            g.heartbeat(beat("a", e1, None), now, LIMITS, &v),
            Err(BeatError::FencedEpoch)
        );
        assert_eq!(
            g.heartbeat(beat("a", e2 + 5, None), now, LIMITS, &v),
            Err(BeatError::FencedEpoch)
        );
        assert_eq!(
            g.heartbeat(beat("zz", 3, None), now, LIMITS, &v),
            Err(BeatError::UnknownMember)
        );
        // Joining again under the same id starts afresh.
        let again = g
            .heartbeat(join("a", &["t"]), now, LIMITS, &v)
            .expect("rejoin");
        assert_eq!(again.assignment, Some(owned));
    }

    #[test]
    fn bad_heartbeats_are_refused_and_change_nothing() {
        let v = view(&[("t", 1, 2)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        let mut no_timeout = join("a", &["t"]);
        no_timeout.rebalance_timeout = None;
        assert!(matches!(
            g.heartbeat(no_timeout, now, LIMITS, &v),
            Err(BeatError::InvalidRequest(_))
        ));
        let mut owning = join("a", &["t"]);
        owning.owned = Some(parts(1, &[0]));
        assert!(matches!(
            g.heartbeat(owning, now, LIMITS, &v),
            Err(BeatError::InvalidRequest(_))
        ));
        let mut assignor = join("a", &["t"]);
        assignor.assignor = Some("sticky".into());
        assert!(matches!(
            g.heartbeat(assignor, now, LIMITS, &v),
            Err(BeatError::UnsupportedAssignor(_))
        ));
        let mut regex = join("a", &[]);
        regex.topic_regex = Some("(".into());
        assert!(matches!(
            g.heartbeat(regex, now, LIMITS, &v),
            Err(BeatError::InvalidRegex(_))
        ));
        assert!(matches!(
            g.heartbeat(beat("a", -3, None), now, LIMITS, &v),
            Err(BeatError::InvalidRequest(_))
        ));
        // The refused heartbeats left nobody behind.
        assert!(g.members.is_empty(), "{g:?}");
        assert_eq!(g.epoch, 0);
        let full = Limits {
            max_size: 1,
            ..LIMITS
        };
        g = ConsumerGroup::default();
        g.heartbeat(join("a", &["t"]), now, full, &v).expect("a");
        assert_eq!(
            g.heartbeat(join("b", &["t"]), now, full, &v),
            Err(BeatError::GroupMaxSize)
        );
        let mut static_a = join("c", &["t"]);
        static_a.instance_id = Some("i".into());
        g.heartbeat(static_a, now, LIMITS, &v).expect("static");
        let mut static_b = join("d", &["t"]);
        static_b.instance_id = Some("i".into());
        assert_eq!(
            g.heartbeat(static_b, now, LIMITS, &v),
            Err(BeatError::UnreleasedInstanceId)
        );
    }

    #[test]
    fn a_static_member_comes_back_to_its_partitions_without_a_rebalance() {
        let v = view(&[("t", 1, 2)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        let mut j = join("a1", &["t"]);
        j.instance_id = Some("i".into());
        let r = g.heartbeat(j, now, LIMITS, &v).expect("a1");
        let (epoch, mine) = (r.member_epoch, r.assignment.expect("assigned"));
        assert_eq!(mine, parts(1, &[0, 1]));
        // A temporary leave keeps its place; a second instance with the
        // same id is refused while the first is there.
        let mut bye = beat("a1", -2, None);
        bye.instance_id = Some("i".into());
        let r = g.heartbeat(bye, now, LIMITS, &v).expect("leave");
        assert_eq!(r.member_epoch, -2);
        assert_eq!(
            g.check_commit("a1", epoch, &[]),
            Err(CommitRefusal::UnknownMember)
        );
        let group_epoch = g.epoch;
        // Back under a new member id: the same partitions and epoch.
        let mut back = join("a2", &["t"]);
        back.instance_id = Some("i".into());
        let r = g.heartbeat(back, now, LIMITS, &v).expect("back");
        assert_eq!((r.member_epoch, r.assignment), (epoch, Some(mine)));
        assert_eq!(g.epoch, group_epoch, "no rebalance");
        assert!(!g.members.contains_key("a1"));
        let mut twin = join("a3", &["t"]);
        twin.instance_id = Some("i".into());
        assert_eq!(
            g.heartbeat(twin, now, LIMITS, &v),
            Err(BeatError::UnreleasedInstanceId)
        );
        // Parked past its session timeout, it is gone.
        let mut bye = beat("a2", -2, None);
        bye.instance_id = Some("i".into());
        g.heartbeat(bye, now, LIMITS, &v).expect("leave");
        assert_eq!(
            g.expire(now + LIMITS.session_timeout),
            vec!["a2".to_owned()]
        );
        let mut no_instance = beat("x", -2, None);
        no_instance.instance_id = None;
        assert!(matches!(
            g.heartbeat(no_instance, now, LIMITS, &v),
            Err(BeatError::InvalidRequest(_))
        ));
    }

    #[test]
    fn the_byte_budget_refuses_without_changing_anything() {
        let v = view(&[("t", 1, 4)]);
        let now = Instant::now();
        let small = Limits {
            max_bytes: 2000,
            ..LIMITS
        };
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(join("a", &["t"]), now, small, &v).expect("a");
        let held = g.held();
        assert!(held > 4 * PARTITION_BYTES, "{held}");
        // A subscription past the budget is refused and not kept.
        let long: Vec<String> = (0..100).map(|i| format!("topic-{i:04}")).collect();
        let mut big = beat("a", a.member_epoch, None);
        big.topic_names = Some(long);
        assert_eq!(
            g.heartbeat(big, now, small, &v),
            Err(BeatError::GroupMaxSize)
        );
        assert_eq!(g.held(), held);
        assert_eq!(g.members["a"].topic_names, vec!["t".to_owned()]);
        // Two seconds on (the topics are looked at again), still as before.
        let later = now + Duration::from_secs(2);
        let r = g
            .heartbeat(beat("a", a.member_epoch, None), later, small, &v)
            .expect("a");
        assert_eq!(r.member_epoch, a.member_epoch);
        assert_eq!(g.held(), held);
        // A member whose join does not fit is not kept, and the others'
        // bytes stay counted.
        let mut b = join("b", &["t"]);
        b.client_id = "x".repeat(3000);
        assert_eq!(g.heartbeat(b, now, small, &v), Err(BeatError::GroupMaxSize));
        assert!(!g.members.contains_key("b"));
        assert_eq!(g.held(), held);
        // A regex subscription to many partitions counts them.
        let many = view(&[("t", 1, 4), ("wide", 2, 100)]);
        let mut wide = beat("a", a.member_epoch, None);
        wide.topic_regex = Some("w.*".into());
        assert_eq!(
            g.heartbeat(wide, later, small, &many),
            Err(BeatError::GroupMaxSize)
        );
        assert_eq!(g.members["a"].topic_regex, None);
        // Leaving releases the member's bytes.
        g.heartbeat(beat("a", -1, None), later, small, &v)
            .expect("leave");
        assert_eq!(g.members_held, 0);
    }

    #[test]
    fn a_pattern_cannot_escape_its_anchors() {
        assert!(matches!(compile("a)|(b"), Err(BeatError::InvalidRegex(_))));
        let re = compile("orders|payments").expect("compiles");
        assert!(re.is_match("orders") && re.is_match("payments"));
        assert!(!re.is_match("orders-eu") && !re.is_match("x-payments"));
    }

    #[test]
    fn a_static_member_back_under_a_taken_id_replaces_that_member() {
        let v = view(&[("t", 1, 2)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        let mut s1 = join("s1", &["t"]);
        s1.instance_id = Some("i".into());
        g.heartbeat(s1, now, LIMITS, &v).expect("s1");
        g.heartbeat(join("d", &["t"]), now, LIMITS, &v).expect("d");
        let mut bye = beat("s1", -2, None);
        bye.instance_id = Some("i".into());
        g.heartbeat(bye, now, LIMITS, &v).expect("park");
        // The static member comes back under the dynamic member's id.
        let mut back = join("d", &["t"]);
        back.instance_id = Some("i".into());
        g.heartbeat(back, now, LIMITS, &v).expect("back");
        assert_eq!(g.members.len(), 1);
        assert_eq!(g.members["d"].instance_id.as_deref(), Some("i"));
        let counted: usize = g.members.values().map(|m| m.counted).sum();
        assert_eq!(g.members_held, counted);
        assert!(g.owners.values().all(|o| o == "d"), "{:?}", g.owners);
    }

    #[test]
    fn regex_subscriptions_follow_the_topics() {
        let mut v = view(&[("orders-1", 1, 2), ("other", 2, 2)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        let mut j = join("a", &[]);
        j.topic_regex = Some("orders-.*".into());
        let r = g.heartbeat(j, now, LIMITS, &v).expect("a");
        assert_eq!(r.assignment, Some(parts(1, &[0, 1])));
        // A new matching topic is seen at a heartbeat a second later.
        v.0.insert("orders-2".into(), (tid(3), 1));
        let later = now + Duration::from_secs(2);
        let r = g
            .heartbeat(beat("a", r.member_epoch, None), later, LIMITS, &v)
            .expect("a");
        let mut both = parts(1, &[0, 1]);
        both.insert(tid(3), [0].into_iter().collect());
        assert_eq!(r.assignment, Some(both));
    }

    #[test]
    fn silent_and_stuck_members_are_removed() {
        let v = view(&[("t", 1, 2)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(join("a", &["t"]), now, LIMITS, &v).expect("a");
        g.heartbeat(join("b", &["t"]), now, LIMITS, &v).expect("b");
        // a must give one up; it never says it did.
        let all = parts(1, &[0, 1]);
        g.heartbeat(beat("a", a.member_epoch, Some(&all)), now, LIMITS, &v)
            .expect("a");
        assert!(g.expire(now + Duration::from_secs(29)).is_empty());
        assert_eq!(
            g.expire(now + Duration::from_secs(31)),
            vec!["a".to_owned()]
        );
        // b now takes both; then b falls silent.
        let t = now + Duration::from_secs(32);
        let e = g.members["b"].epoch;
        let r = g.heartbeat(beat("b", e, None), t, LIMITS, &v).expect("b");
        assert_eq!(r.assignment, Some(all));
        assert_eq!(g.expire(t + LIMITS.session_timeout), vec!["b".to_owned()]);
        assert!(g.is_empty());
    }

    #[test]
    fn uniform_spreads_evenly_and_moves_as_little_as_it_can() {
        let v = view(&[("t", 1, 10), ("u", 2, 1)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        for id in ["a", "b", "c"] {
            g.heartbeat(join(id, &["t", "u"]), now, LIMITS, &v)
                .expect("join");
        }
        let sizes = |g: &ConsumerGroup| {
            let mut s: Vec<usize> = g.target.values().map(count).collect();
            s.sort_unstable();
            s
        };
        assert_eq!(sizes(&g), vec![3, 4, 4]);
        let all: BTreeSet<(TopicId, u32)> = g.target.values().flat_map(pairs).collect();
        assert_eq!(all.len(), 11);
        let before = g.target.clone();
        g.heartbeat(join("d", &["t", "u"]), now, LIMITS, &v)
            .expect("d");
        assert_eq!(sizes(&g), vec![2, 3, 3, 3]);
        // Each earlier member keeps a subset of what it had.
        for id in ["a", "b", "c"] {
            assert!(
                pairs(&g.target[id]).all(|(t, p)| contains(&before[id], &t, p)),
                "{id}: {:?} then {:?}",
                before[id],
                g.target[id]
            );
        }
        // Different subscriptions: each member only gets its own topics.
        g.heartbeat(join("e", &["u"]), now, LIMITS, &v).expect("e");
        assert!(g.target["e"].keys().all(|t| *t == tid(2)));
        let all: BTreeSet<(TopicId, u32)> = g.target.values().flat_map(pairs).collect();
        assert_eq!(all.len(), 11);
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let v = view(&[("t", 1, 5)]);
        let now = Instant::now();
        let mut g = ConsumerGroup::default();
        for id in ["a", "b"] {
            let mut j = join(id, &["t"]);
            j.assignor = Some("range".into());
            g.heartbeat(j, now, LIMITS, &v).expect("join");
        }
        assert_eq!(g.target["a"], parts(1, &[0, 1, 2]));
        assert_eq!(g.target["b"], parts(1, &[3, 4]));
    }

    /// What a well-behaved client does: it owns what it was last given,
    /// and says so in every heartbeat. Clients 0 and 1 are static members
    /// (instance ids `s0`, `s1`), which may leave temporarily and come
    /// back under a new member id.
    #[derive(Debug, Clone)]
    enum Op {
        Join(usize, Vec<usize>),
        Beat(usize),
        Leave(usize),
        Park(usize),
        Grow(usize),
        Time(u64),
        /// The coordinator restarts (or moves): the group is what was last
        /// stored.
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4usize, proptest::collection::vec(0..3usize, 1..3))
                .prop_map(|(m, t)| Op::Join(m, t)),
            (0..4usize).prop_map(Op::Beat),
            (0..4usize).prop_map(Op::Beat),
            (0..4usize).prop_map(Op::Beat),
            (0..4usize).prop_map(Op::Leave),
            (0..2usize).prop_map(Op::Park),
            (0..3usize).prop_map(Op::Grow),
            (1..40_000u64).prop_map(Op::Time),
            Just(Op::Restart),
        ]
    }

    /// What the coordinator does after each heartbeat or sweep: the group
    /// is stored if it has an unstored change.
    fn store(g: &mut ConsumerGroup, stored: &mut Option<Vec<u8>>) {
        if g.unstored() {
            *stored = Some(g.to_record().encode());
            g.stored_revision = g.revision();
        }
    }

    #[derive(Debug, Clone, Default)]
    struct Client {
        id: String,
        incarnation: u32,
        /// Its epoch and what it owns, while it is a member.
        state: Option<(i32, Assignment)>,
        /// Its topics, to come back with after a temporary leave.
        topics: Vec<String>,
        parked: bool,
    }

    fn instance(i: usize) -> Option<String> {
        (i < 2).then(|| format!("s{i}"))
    }

    fn check(clients: &[Client]) -> Result<(), TestCaseError> {
        let mut seen = BTreeSet::new();
        for (_, owned) in clients.iter().filter_map(|c| c.state.as_ref()) {
            for tp in pairs(owned) {
                prop_assert!(seen.insert(tp), "{tp:?} owned twice: {clients:?}");
            }
        }
        Ok(())
    }

    fn send(g: &mut ConsumerGroup, v: &View, now: Instant, c: &mut Client) {
        let Some((epoch, owned)) = c.state.clone() else {
            return;
        };
        match g.heartbeat(beat(&c.id, epoch, Some(&owned)), now, LIMITS, v) {
            Ok(r) => c.state = Some((r.member_epoch, r.assignment.unwrap_or(owned))),
            // Fenced or gone: the client drops everything.
            Err(_) => c.state = None,
        }
    }

    fn enter(g: &mut ConsumerGroup, v: &View, now: Instant, i: usize, c: &mut Client) {
        c.incarnation += 1;
        c.id = format!("m{i}-{}", c.incarnation);
        let topics: Vec<&str> = c.topics.iter().map(String::as_str).collect();
        let mut j = join(&c.id, &topics);
        j.instance_id = instance(i);
        if let Ok(r) = g.heartbeat(j, now, LIMITS, v) {
            c.state = Some((r.member_epoch, r.assignment.unwrap_or_default()));
            c.parked = false;
        }
    }

    proptest! {
        /// No partition is ever owned by two clients at once, and once
        /// the changes stop (and the static members that left for a while
        /// are back), a few rounds of heartbeats leave every subscribed
        /// partition with exactly one member.
        #[test]
        fn no_partition_has_two_owners_and_the_group_settles(ops in proptest::collection::vec(op(), 1..60)) {
            let names = ["t0", "t1", "t2"];
            let mut v = view(&[("t0", 1, 3), ("t1", 2, 2), ("t2", 3, 1)]);
            let mut now = Instant::now();
            let mut g = ConsumerGroup::default();
            let mut clients: Vec<Client> = vec![Client::default(); 4];
            let mut stored: Option<Vec<u8>> = None;
            for op in ops {
                match op {
                    Op::Join(i, topics) => {
                        let c = &mut clients[i];
                        if c.state.is_none() {
                            c.topics = topics.iter().map(|t| names[*t].to_owned()).collect();
                            enter(&mut g, &v, now, i, c);
                        }
                    }
                    Op::Beat(i) => send(&mut g, &v, now, &mut clients[i]),
                    Op::Leave(i) => {
                        let c = &mut clients[i];
                        if c.state.is_some() {
                            prop_assert!(g.heartbeat(beat(&c.id, -1, None), now, LIMITS, &v).is_ok());
                            c.state = None;
                        }
                    }
                    Op::Park(i) => {
                        let c = &mut clients[i];
                        if c.state.is_some() {
                            let mut bye = beat(&c.id, -2, None);
                            bye.instance_id = instance(i);
                            prop_assert!(g.heartbeat(bye, now, LIMITS, &v).is_ok());
                            c.state = None;
                            c.parked = true;
                        }
                    }
                    Op::Grow(t) => {
                        if let Some(e) = v.0.get_mut(names[t]) {
                            e.1 += 1;
                        }
                    }
                    Op::Time(ms) => {
                        now += Duration::from_millis(ms);
                        for id in g.expire(now) {
                            // A real client stops using its partitions when
                            // its session ends: they may be another's now.
                            if let Some(c) = clients.iter_mut().find(|c| c.id == id) {
                                c.state = None;
                                c.parked = false;
                            }
                        }
                    }
                    Op::Restart => {
                        g = match &stored {
                            Some(bytes) => {
                                let r = ConsumerGroupRecord::decode(bytes).expect("decodes");
                                let again = ConsumerGroup::from_record(r.clone(), now, LIMITS.session_timeout);
                                // Restored whole: stored again, it is the same record.
                                let mut r2 = again.to_record();
                                r2.written_ms = r.written_ms;
                                prop_assert_eq!(&r2, &r);
                                again
                            }
                            None => ConsumerGroup::default(),
                        };
                        // Every member goes on at the epoch it holds, and
                        // keeps what it owns: nothing a client was told
                        // was lost.
                        for i in 0..clients.len() {
                            let c = &mut clients[i];
                            if let Some((epoch, owned)) = c.state.clone() {
                                let r = g.heartbeat(beat(&c.id, epoch, Some(&owned)), now, LIMITS, &v);
                                prop_assert!(r.is_ok(), "{c:?} refused after a restart: {r:?}");
                                if let Ok(a) = r {
                                    c.state = Some((a.member_epoch, a.assignment.unwrap_or(owned)));
                                }
                                store(&mut g, &mut stored);
                                check(&clients)?;
                            }
                        }
                    }
                }
                store(&mut g, &mut stored);
                check(&clients)?;
                prop_assert!(epochs_follow_holdings(&g), "{g:?}");
            }
            // Settle: parked static members come back, then everyone
            // heartbeats until nothing changes.
            now += Duration::from_secs(2);
            for (i, c) in clients.iter_mut().enumerate() {
                if c.parked {
                    enter(&mut g, &v, now, i, c);
                    prop_assert!(c.state.is_some(), "{i} could not come back: {g:?}");
                }
            }
            check(&clients)?;
            for _ in 0..8 {
                for c in clients.iter_mut() {
                    send(&mut g, &v, now, c);
                }
                check(&clients)?;
            }
            prop_assert!(g.is_stable(), "not stable: {g:?}");
            let subscribed = g.subscribed_topics();
            let owned_total: usize = clients
                .iter()
                .filter_map(|c| c.state.as_ref())
                .map(|(_, owned)| count(owned))
                .sum();
            let want: u32 = subscribed.iter().map(|t| v.0[t].1).sum();
            prop_assert_eq!(owned_total, want as usize);
            prop_assert!(epochs_follow_holdings(&g), "{g:?}");
        }
    }

    /// Every member has an assignment epoch for exactly the partitions it
    /// holds or is giving up, none past its own epoch.
    fn epochs_follow_holdings(g: &ConsumerGroup) -> bool {
        g.members.values().all(|m| {
            let held: BTreeSet<(TopicId, u32)> =
                pairs(&m.assigned).chain(pairs(&m.revoking)).collect();
            let recorded: BTreeSet<(TopicId, u32)> = m.held_since.keys().copied().collect();
            held == recorded && m.held_since.values().all(|e| *e <= m.epoch)
        })
    }
}
