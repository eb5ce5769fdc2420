//! The coordinator's state machine, on a real offsets store in a temporary
//! directory, with tokio's clock paused (timers fire when the test sleeps).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;

use super::*;
use crate::log::StdFs;
use crate::offsets::{OffsetStore, OffsetsConfig};

const SESSION: Duration = Duration::from_secs(10);
const REBALANCE: Duration = Duration::from_secs(30);

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<OffsetStore>,
    c: Arc<Coordinator>,
    config: GroupConfig,
}

impl Fixture {
    fn new(delay: Duration) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            OffsetStore::open(Arc::new(StdFs), dir.path(), OffsetsConfig::default()).unwrap(),
        );
        let config = GroupConfig {
            initial_rebalance_delay: delay,
            ..GroupConfig::default()
        };
        let c = Coordinator::open(config, Arc::clone(&store));
        Fixture {
            _dir: dir,
            store,
            c,
            config,
        }
    }

    /// A coordinator restarted on the same store.
    fn reopen(&mut self) {
        self.c = Coordinator::open(self.config, Arc::clone(&self.store));
    }
}

fn join_req(member_id: &str, instance: Option<&str>, protocols: &[(&str, &[u8])]) -> JoinGroup {
    JoinGroup {
        group: "g".into(),
        member_id: member_id.into(),
        group_instance_id: instance.map(str::to_owned),
        client_id: "c".into(),
        client_host: "127.0.0.1".into(),
        session_timeout: SESSION,
        rebalance_timeout: REBALANCE,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|(n, m)| ((*n).to_owned(), m.to_vec()))
            .collect(),
        require_known_member_id: true,
    }
}

const RANGE: &[(&str, &[u8])] = &[("range", b"r")];

/// A dynamic member's first join: the id to use.
async fn member_id(c: &Coordinator) -> String {
    let r = c.join(join_req("", None, RANGE)).await;
    assert_eq!(r.error, ErrorCode::MemberIdRequired);
    r.member_id
}

fn spawn_join(c: &Arc<Coordinator>, req: JoinGroup) -> tokio::task::JoinHandle<JoinResult> {
    let c = Arc::clone(c);
    tokio::spawn(async move { c.join(req).await })
}

fn sync_req(id: &str, generation: i32, assignments: &[(&str, &[u8])]) -> SyncGroup {
    SyncGroup {
        group: "g".into(),
        generation_id: generation,
        member_id: id.into(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| ((*m).to_owned(), a.to_vec()))
            .collect(),
    }
}

fn hb(id: &str, generation: i32) -> Heartbeat {
    Heartbeat {
        group: "g".into(),
        generation_id: generation,
        member_id: id.into(),
        group_instance_id: None,
    }
}

fn state(c: &Coordinator) -> (GroupState, i32, usize) {
    let d = c.describe(vec!["g".into()]).remove(0);
    (d.state, d.generation_id, d.members.len())
}

/// One member alone: join, sync, Stable in generation 1.
async fn lone_member(c: &Arc<Coordinator>) -> String {
    let a = member_id(c).await;
    let r = c.join(join_req(&a, None, RANGE)).await;
    assert_eq!((r.error, r.generation_id), (ErrorCode::None, 1));
    assert_eq!(r.leader, a);
    let s = c.sync(sync_req(&a, 1, &[(&a, b"A1")])).await;
    assert_eq!((s.error, s.assignment), (ErrorCode::None, b"A1".to_vec()));
    a
}

/// Two members in a Stable generation 2, `a` the leader.
async fn two_members(c: &Arc<Coordinator>) -> (String, String) {
    let a = lone_member(c).await;
    let b = member_id(c).await;
    let jb = spawn_join(c, join_req(&b, None, RANGE));
    tokio::task::yield_now().await;
    assert_eq!(c.heartbeat(&hb(&a, 1)), ErrorCode::RebalanceInProgress);
    let ra = c.join(join_req(&a, None, RANGE)).await;
    let rb = jb.await.unwrap();
    assert_eq!((ra.generation_id, rb.generation_id), (2, 2));
    assert_eq!(ra.members.len(), 2, "the leader gets every member");
    assert!(rb.members.is_empty());
    assert_eq!(ra.protocol_name.as_deref(), Some("range"));
    let sb = {
        let c = Arc::clone(c);
        let b = b.clone();
        tokio::spawn(async move { c.sync(sync_req(&b, 2, &[])).await })
    };
    let sa = c.sync(sync_req(&a, 2, &[(&a, b"A2"), (&b, b"B2")])).await;
    assert_eq!(sa.assignment, b"A2");
    assert_eq!(sb.await.unwrap().assignment, b"B2");
    assert_eq!(state(c), (GroupState::Stable, 2, 2));
    (a, b)
}

#[tokio::test(start_paused = true)]
async fn two_members_join_and_sync_and_a_leave_gives_a_new_generation() {
    let f = Fixture::new(Duration::ZERO);
    let (a, b) = two_members(&f.c).await;
    assert_eq!(f.c.heartbeat(&hb(&b, 2)), ErrorCode::None);
    let left = f.c.leave(
        "g",
        vec![MemberRef {
            member_id: b.clone(),
            group_instance_id: None,
        }],
    );
    assert_eq!(left.members[0].1, ErrorCode::None);
    assert_eq!(f.c.heartbeat(&hb(&a, 2)), ErrorCode::RebalanceInProgress);
    assert_eq!(f.c.heartbeat(&hb(&b, 2)), ErrorCode::UnknownMemberId);
    let r = f.c.join(join_req(&a, None, RANGE)).await;
    assert_eq!(
        (r.error, r.generation_id, r.members.len()),
        (ErrorCode::None, 3, 1)
    );
    let s = f.c.sync(sync_req(&a, 3, &[(&a, b"all")])).await;
    assert_eq!(s.assignment, b"all");
    assert_eq!(f.c.stats().rebalances, 3);
}

#[tokio::test(start_paused = true)]
async fn a_silent_member_expires_after_its_session_timeout() {
    let f = Fixture::new(Duration::ZERO);
    let (a, b) = two_members(&f.c).await;
    // `a` heartbeats, `b` does not.
    for _ in 0..4 {
        tokio::time::sleep(SESSION / 4).await;
        let code = f.c.heartbeat(&hb(&a, 2));
        if code != ErrorCode::None {
            assert_eq!(code, ErrorCode::RebalanceInProgress);
            break;
        }
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(f.c.heartbeat(&hb(&b, 2)), ErrorCode::UnknownMemberId);
    assert_eq!(f.c.heartbeat(&hb(&a, 2)), ErrorCode::RebalanceInProgress);
    let r = f.c.join(join_req(&a, None, RANGE)).await;
    assert_eq!((r.generation_id, r.members.len()), (3, 1));
}

#[tokio::test(start_paused = true)]
async fn a_member_that_does_not_rejoin_is_removed_at_the_rebalance_timeout() {
    let f = Fixture::new(Duration::ZERO);
    let (a, b) = two_members(&f.c).await;
    let c = f.c.clone();
    let ja = spawn_join(&f.c, join_req(&a, None, RANGE));
    // `b` keeps heartbeating but never rejoins.
    let beat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if c.heartbeat(&hb(&b, 2)) == ErrorCode::UnknownMemberId {
                return tokio::time::Instant::now();
            }
        }
    });
    let started = tokio::time::Instant::now();
    let r = ja.await.unwrap();
    assert_eq!((r.generation_id, r.members.len()), (3, 1));
    assert!(started.elapsed() >= REBALANCE);
    let kicked = beat.await.unwrap();
    assert!(kicked - started >= REBALANCE);
}

#[tokio::test(start_paused = true)]
async fn a_static_member_restarts_without_a_rebalance_and_fences_its_old_id() {
    let f = Fixture::new(Duration::ZERO);
    let r = f.c.join(join_req("", Some("host-1"), RANGE)).await;
    assert_eq!(
        (r.error, r.generation_id),
        (ErrorCode::None, 1),
        "static members need no id round"
    );
    let old = r.member_id;
    let s =
        f.c.sync(SyncGroup {
            group_instance_id: Some("host-1".into()),
            ..sync_req(&old, 1, &[(&old, b"mine")])
        })
        .await;
    assert_eq!(s.assignment, b"mine");
    // The process restarts: no member id, same instance id, and metadata
    // that no longer names its generation (as Kafka's clients send).
    let r =
        f.c.join(join_req("", Some("host-1"), &[("range", b"restarted")]))
            .await;
    assert_eq!((r.error, r.generation_id), (ErrorCode::None, 1));
    let new = r.member_id;
    assert_ne!(new, old);
    assert_eq!(
        r.leader, old,
        "the leader as it was: the restarted one follows"
    );
    assert!(r.members.is_empty());
    assert_eq!(state(&f.c), (GroupState::Stable, 1, 1), "no rebalance");
    let s =
        f.c.sync(SyncGroup {
            group_instance_id: Some("host-1".into()),
            ..sync_req(&new, 1, &[])
        })
        .await;
    assert_eq!(s.assignment, b"mine", "the assignment is kept");
    let zombie = Heartbeat {
        group_instance_id: Some("host-1".into()),
        ..hb(&old, 1)
    };
    assert_eq!(f.c.heartbeat(&zombie), ErrorCode::FencedInstanceId);
    let zombie_commit = CommitAs {
        generation_id: 1,
        member_id: old,
        group_instance_id: Some("host-1".into()),
    };
    assert_eq!(
        f.c.check_commit("g", &zombie_commit, &[]),
        Err(ErrorCode::FencedInstanceId)
    );
    assert_eq!(f.c.stats().rebalances, 1);
    // The member naming a static id no member has is unknown, as Kafka's
    // `validateMember` answers (it was served as if it named none).
    let stranger = Heartbeat {
        group_instance_id: Some("host-9".into()),
        ..hb(&new, 1)
    };
    assert_eq!(f.c.heartbeat(&stranger), ErrorCode::UnknownMemberId);
    let stranger_commit = CommitAs {
        generation_id: 1,
        member_id: new.clone(),
        group_instance_id: Some("host-9".into()),
    };
    assert_eq!(
        f.c.check_commit("g", &stranger_commit, &[]),
        Err(ErrorCode::UnknownMemberId)
    );
    let right = Heartbeat {
        group_instance_id: Some("host-1".into()),
        ..hb(&new, 1)
    };
    assert_eq!(f.c.heartbeat(&right), ErrorCode::None);
}

#[tokio::test(start_paused = true)]
async fn a_static_member_that_changes_the_groups_protocol_rebalances_it() {
    let f = Fixture::new(Duration::ZERO);
    let both: &[(&str, &[u8])] = &[("range", b"r"), ("roundrobin", b"r")];
    let r = f.c.join(join_req("", Some("host-1"), both)).await;
    assert_eq!(r.protocol_name.as_deref(), Some("range"));
    let old = r.member_id;
    let s =
        f.c.sync(SyncGroup {
            group_instance_id: Some("host-1".into()),
            ..sync_req(&old, 1, &[(&old, b"mine")])
        })
        .await;
    assert_eq!(s.error, ErrorCode::None);
    // Restarted preferring the other protocol: the group's would change.
    let flipped: &[(&str, &[u8])] = &[("roundrobin", b"r"), ("range", b"r")];
    let r = f.c.join(join_req("", Some("host-1"), flipped)).await;
    assert_eq!(r.error, ErrorCode::None);
    assert_eq!(r.generation_id, 2, "a new generation");
    assert_eq!(r.protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(r.leader, r.member_id);
    assert_eq!(f.c.stats().rebalances, 2);
}

#[tokio::test(start_paused = true)]
async fn a_static_leader_that_does_not_rejoin_hands_the_lead_to_a_member_that_did() {
    let f = Fixture::new(Duration::ZERO);
    // The leader's session outlasts the rebalance timeout, as static
    // members' usually do.
    let r =
        f.c.join(JoinGroup {
            session_timeout: REBALANCE * 2,
            ..join_req("", Some("l"), RANGE)
        })
        .await;
    let leader = r.member_id;
    assert_eq!((r.generation_id, r.leader.as_str()), (1, leader.as_str()));
    let s =
        f.c.sync(SyncGroup {
            group_instance_id: Some("l".into()),
            ..sync_req(&leader, 1, &[(&leader, b"all")])
        })
        .await;
    assert_eq!(s.error, ErrorCode::None);
    // Another static member joins while the leader is restarting: the
    // leader does not rejoin within the rebalance timeout.
    let started = tokio::time::Instant::now();
    let r = f.c.join(join_req("", Some("f"), RANGE)).await;
    assert!(started.elapsed() >= REBALANCE);
    assert_eq!((r.error, r.generation_id), (ErrorCode::None, 2));
    assert_eq!(r.leader, r.member_id, "the member that rejoined leads");
    let mut named: Vec<&str> = r.members.iter().map(|m| m.member_id.as_str()).collect();
    named.sort_unstable();
    let mut want = vec![leader.as_str(), r.member_id.as_str()];
    want.sort_unstable();
    assert_eq!(named, want, "the absent static member is assigned too");
    let s =
        f.c.sync(SyncGroup {
            group_instance_id: Some("f".into()),
            ..sync_req(&r.member_id, 2, &[(&r.member_id, b"f"), (&leader, b"l")])
        })
        .await;
    assert_eq!(
        (s.error, s.assignment.as_slice()),
        (ErrorCode::None, &b"f"[..])
    );
    assert_eq!(state(&f.c), (GroupState::Stable, 2, 2));
}

#[tokio::test(start_paused = true)]
async fn commits_are_fenced_by_generation_and_membership() {
    let f = Fixture::new(Duration::ZERO);
    let as_member = |id: &str, generation| CommitAs {
        generation_id: generation,
        member_id: id.into(),
        group_instance_id: None,
    };
    // No group yet: a simple commit is allowed, a generation is not.
    assert_eq!(f.c.check_commit("g", &CommitAs::simple(), &[]), Ok(()));
    assert_eq!(
        f.c.check_commit("g", &as_member("x", 1), &[]),
        Err(ErrorCode::IllegalGeneration)
    );
    let (a, b) = two_members(&f.c).await;
    assert_eq!(f.c.check_commit("g", &as_member(&a, 2), &[]), Ok(()));
    assert_eq!(
        f.c.check_commit("g", &as_member(&a, 1), &[]),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        f.c.check_commit("g", &as_member("zombie", 2), &[]),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        f.c.check_commit("g", &CommitAs::simple(), &[]),
        Err(ErrorCode::UnknownMemberId)
    );
    // While the generation awaits its assignment, commits wait too.
    let jb = spawn_join(&f.c, join_req(&b, None, RANGE));
    let r = f.c.join(join_req(&a, None, RANGE)).await;
    assert_eq!(jb.await.unwrap().generation_id, 3);
    assert_eq!(
        f.c.check_commit("g", &as_member(&a, r.generation_id), &[]),
        Err(ErrorCode::RebalanceInProgress)
    );
    // Who commits is checked before the state, as Kafka does: a tool's
    // simple commit fails at once, a stale member learns it is stale.
    assert_eq!(
        f.c.check_commit("g", &CommitAs::simple(), &[]),
        Err(ErrorCode::UnknownMemberId)
    );
    assert_eq!(
        f.c.check_commit("g", &as_member(&a, r.generation_id - 1), &[]),
        Err(ErrorCode::IllegalGeneration)
    );
    assert_eq!(
        f.c.check_commit("g", &as_member("zombie", r.generation_id), &[]),
        Err(ErrorCode::UnknownMemberId)
    );
    // Once everyone left, a tool may commit (offset reset).
    let everyone = [a, b].map(|id| MemberRef {
        member_id: id,
        group_instance_id: None,
    });
    f.c.leave("g", everyone.to_vec());
    assert_eq!(state(&f.c).0, GroupState::Empty);
    assert_eq!(f.c.check_commit("g", &CommitAs::simple(), &[]), Ok(()));
    // Naming a member makes it a member's commit, even at generation -1.
    assert_eq!(
        f.c.check_commit("g", &as_member("gone", -1), &[]),
        Err(ErrorCode::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn a_group_with_members_is_not_deleted() {
    let f = Fixture::new(Duration::ZERO);
    assert_eq!(
        f.c.delete(vec!["g".into()]).await,
        [("g".into(), ErrorCode::GroupIdNotFound)]
    );
    let a = lone_member(&f.c).await;
    assert_eq!(
        f.c.delete(vec!["g".into()]).await[0].1,
        ErrorCode::NonEmptyGroup
    );
    f.c.leave(
        "g",
        vec![MemberRef {
            member_id: a,
            group_instance_id: None,
        }],
    );
    // The Empty generation is stored by a task of its own.
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(state(&f.c), (GroupState::Empty, 2, 0));
    let stored = f.store.group_records();
    let empty = record::GroupRecord::decode(&stored[0].1).unwrap();
    assert_eq!((empty.generation_id, empty.members.len()), (2, 0));
    assert_eq!(f.c.delete(vec!["g".into()]).await[0].1, ErrorCode::None);
    assert_eq!(state(&f.c).0, GroupState::Dead);
    assert!(f.store.group_records().is_empty());
    assert!(f.c.list(&[]).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_restarted_coordinator_restores_the_stable_generation() {
    let mut f = Fixture::new(Duration::ZERO);
    let (a, b) = two_members(&f.c).await;
    f.reopen();
    assert_eq!(state(&f.c), (GroupState::Stable, 2, 2));
    let d = f.c.describe(vec!["g".into()]).remove(0);
    assert_eq!(d.members[1].assignment, b"B2");
    assert_eq!(d.protocol, "range");
    // `a` heartbeats on; `b` died with the old coordinator and expires.
    for _ in 0..8 {
        tokio::time::sleep(SESSION / 4).await;
        if f.c.heartbeat(&hb(&a, 2)) != ErrorCode::None {
            break;
        }
    }
    assert_eq!(f.c.heartbeat(&hb(&b, 2)), ErrorCode::UnknownMemberId);
    assert_eq!(f.c.heartbeat(&hb(&a, 2)), ErrorCode::RebalanceInProgress);
}

#[tokio::test(start_paused = true)]
async fn members_joining_an_empty_group_together_share_its_first_generation() {
    let f = Fixture::new(Duration::from_millis(300));
    let a = member_id(&f.c).await;
    let ja = spawn_join(&f.c, join_req(&a, None, RANGE));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let b = member_id(&f.c).await;
    let jb = spawn_join(&f.c, join_req(&b, None, RANGE));
    let (ra, rb) = (ja.await.unwrap(), jb.await.unwrap());
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    assert_eq!(ra.members.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn joins_are_checked() {
    let f = Fixture::new(Duration::ZERO);
    let short = JoinGroup {
        session_timeout: Duration::from_millis(10),
        ..join_req("", None, RANGE)
    };
    assert_eq!(
        f.c.join(short).await.error,
        ErrorCode::InvalidSessionTimeout
    );
    let bad_name = JoinGroup {
        group: "bad\u{0}name".into(),
        ..join_req("", None, RANGE)
    };
    assert_eq!(f.c.join(bad_name).await.error, ErrorCode::InvalidGroupName);
    assert_eq!(
        f.c.join(join_req("", None, &[])).await.error,
        ErrorCode::InconsistentGroupProtocol
    );
    assert_eq!(
        f.c.join(join_req("nobody", None, RANGE)).await.error,
        ErrorCode::UnknownMemberId
    );
    lone_member(&f.c).await;
    let other = member_id(&f.c).await;
    assert_eq!(
        f.c.join(join_req(&other, None, &[("roundrobin", b"")]))
            .await
            .error,
        ErrorCode::InconsistentGroupProtocol
    );
}

/// `a` leader and `b` joined generation 2, both yet to sync.
async fn joined_pair(c: &Arc<Coordinator>) -> (String, String) {
    let a = lone_member(c).await;
    let b = member_id(c).await;
    let jb = spawn_join(c, join_req(&b, None, RANGE));
    tokio::task::yield_now().await;
    let ra = c.join(join_req(&a, None, RANGE)).await;
    assert_eq!((ra.generation_id, jb.await.unwrap().generation_id), (2, 2));
    (a, b)
}

#[tokio::test(start_paused = true)]
async fn a_generation_becomes_stable_even_if_the_leader_goes_away_while_it_is_stored() {
    let f = Fixture::new(Duration::ZERO);
    let (a, b) = joined_pair(&f.c).await;
    let c = Arc::clone(&f.c);
    let b2 = b.clone();
    let sb = tokio::spawn(async move { c.sync(sync_req(&b2, 2, &[])).await });
    tokio::task::yield_now().await;
    // The leader's request is dropped right after it was read.
    let leader = f.c.sync(sync_req(&a, 2, &[(&a, b"A"), (&b, b"B")]));
    assert!(tokio::time::timeout(Duration::ZERO, leader).await.is_err());
    let sb = tokio::time::timeout(Duration::from_secs(60), sb).await;
    assert_eq!(
        sb.expect("follower's sync never answered")
            .unwrap()
            .assignment,
        b"B"
    );
    assert_eq!(state(&f.c).0, GroupState::Stable);
}

#[tokio::test(start_paused = true)]
async fn a_member_whose_waiting_sync_was_abandoned_still_expires() {
    let f = Fixture::new(Duration::ZERO);
    let (a, b) = joined_pair(&f.c).await;
    // `b`'s sync waits for the leader, then its caller goes away.
    let abandoned = f.c.sync(sync_req(&b, 2, &[]));
    assert!(
        tokio::time::timeout(Duration::ZERO, abandoned)
            .await
            .is_err()
    );
    // The leader only heartbeats (slow to assign): `b` expires all the same.
    let told = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let code = f.c.heartbeat(&hb(&a, 2));
            if code != ErrorCode::None {
                return code;
            }
        }
    })
    .await;
    assert_eq!(told, Ok(ErrorCode::RebalanceInProgress));
    assert_eq!(f.c.heartbeat(&hb(&b, 2)), ErrorCode::UnknownMemberId);
}

#[tokio::test(start_paused = true)]
async fn group_size_is_capped_and_static_members_leave_by_instance_id() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(OffsetStore::open(Arc::new(StdFs), dir.path(), OffsetsConfig::default()).unwrap());
    let config = GroupConfig {
        max_size: 1,
        initial_rebalance_delay: Duration::ZERO,
        max_groups: 1,
        ..GroupConfig::default()
    };
    let c = Coordinator::open(config, store);
    let r = c.join(join_req("", Some("i1"), RANGE)).await;
    assert_eq!((r.error, r.generation_id), (ErrorCode::None, 1));
    assert_eq!(
        c.join(join_req("", None, RANGE)).await.error,
        ErrorCode::GroupMaxSizeReached
    );
    assert_eq!(
        c.join(join_req("", Some("i2"), RANGE)).await.error,
        ErrorCode::GroupMaxSizeReached
    );
    let another_group = JoinGroup {
        group: "h".into(),
        ..join_req("", None, RANGE)
    };
    assert_eq!(
        c.join(another_group).await.error,
        ErrorCode::TooManyCommittedOffsets,
        "groups held are capped"
    );
    let wrong = MemberRef {
        member_id: "someone-else".into(),
        group_instance_id: Some("i1".into()),
    };
    let by_instance = MemberRef {
        member_id: String::new(),
        group_instance_id: Some("i1".into()),
    };
    let left = c.leave("g", vec![wrong, by_instance]);
    let codes: Vec<ErrorCode> = left.members.iter().map(|m| m.1).collect();
    assert_eq!(codes, [ErrorCode::FencedInstanceId, ErrorCode::None]);
    assert_eq!(state(&c), (GroupState::Empty, 2, 0));
    // Kafka's JoinGroup v0-3: no member id round.
    let old_style = JoinGroup {
        require_known_member_id: false,
        ..join_req("", None, RANGE)
    };
    let r = c.join(old_style).await;
    assert_eq!((r.error, r.generation_id), (ErrorCode::None, 3));
    assert!(!r.member_id.is_empty());
}

/// Groups that only handed out member ids (`MemberIdRequired`, never
/// joined) do not keep new groups out when `max_groups` are held: the
/// oldest of them is forgotten, and its id is then unknown. Groups with
/// members are never forgotten for room.
#[tokio::test(start_paused = true)]
async fn groups_that_only_handed_out_member_ids_make_room_for_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(OffsetStore::open(Arc::new(StdFs), dir.path(), OffsetsConfig::default()).unwrap());
    let config = GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        max_groups: 2,
        ..GroupConfig::default()
    };
    let c = Coordinator::open(config, store);
    let in_group = |group: &str, member: &str| JoinGroup {
        group: group.into(),
        ..join_req(member, None, RANGE)
    };
    // "g" gets a member; "p1" and "p2" only hand out ids.
    let first = c.join(in_group("g", "")).await;
    assert_eq!(first.error, ErrorCode::MemberIdRequired);
    let g = c.join(in_group("g", &first.member_id)).await;
    assert_eq!((g.error, g.generation_id), (ErrorCode::None, 1));
    let p1 = c.join(in_group("p1", "")).await;
    assert_eq!(p1.error, ErrorCode::MemberIdRequired);
    let p2 = c.join(in_group("p2", "")).await;
    assert_eq!(p2.error, ErrorCode::MemberIdRequired, "p1 made room");
    assert_eq!(
        c.join(in_group("p1", &p1.member_id)).await.error,
        ErrorCode::UnknownMemberId
    );
    // "p2" joins for real: nothing is left to forget.
    let p2 = c.join(in_group("p2", &p2.member_id)).await;
    assert_eq!((p2.error, p2.generation_id), (ErrorCode::None, 1));
    assert_eq!(
        c.join(in_group("h", "")).await.error,
        ErrorCode::TooManyCommittedOffsets
    );
    // "g" keeps its member.
    assert_eq!((state(&c).1, state(&c).2), (1, 1));
}

/// The bytes held for a group's members (protocols and assignments) are
/// capped per group and over all groups: a join or a leader's assignments
/// past either get `GroupMaxSizeReached` and keep nothing; a member
/// rejoining with the same protocols, or with smaller ones, is not refused.
#[tokio::test(start_paused = true)]
async fn bytes_held_for_members_are_capped_per_group_and_over_all_groups() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Arc::new(OffsetStore::open(Arc::new(StdFs), dir.path(), OffsetsConfig::default()).unwrap());
    let config = GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        max_bytes: 10_000,
        max_total_bytes: 15_000,
        ..GroupConfig::default()
    };
    let c = Coordinator::open(config, store);
    let four_k = vec![7u8; 4000];
    let big: &[(&str, &[u8])] = &[("range", &four_k)];
    let join_in = |group: &str, id: &str, protocols: &[(&str, &[u8])]| JoinGroup {
        group: group.into(),
        require_known_member_id: false,
        ..join_req(id, None, protocols)
    };
    // Two members of 4005 bytes each fit in 10,000; a third does not.
    let a = c.join(join_in("g", "", big)).await;
    assert_eq!((a.error, a.generation_id), (ErrorCode::None, 1));
    let sync = c.sync(sync_req(&a.member_id, 1, &[(&a.member_id, b"x")]));
    assert_eq!(sync.await.error, ErrorCode::None);
    let b = spawn_join(&c, join_in("g", "", big));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let a2 = c.join(join_in("g", &a.member_id, big)).await;
    let b = b.await.unwrap();
    assert_eq!((a2.error, b.error), (ErrorCode::None, ErrorCode::None));
    assert_eq!(
        c.join(join_in("g", "", big)).await.error,
        ErrorCode::GroupMaxSizeReached
    );
    assert_eq!(state(&c).2, 2, "the refused member was not kept");
    // Rejoining with the same protocols (or lighter ones) is allowed.
    let small: &[(&str, &[u8])] = &[("range", b"small")];
    let b2 = spawn_join(&c, join_in("g", &b.member_id, small));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let a3 = c.join(join_in("g", &a.member_id, big)).await;
    assert_eq!(
        (a3.error, b2.await.unwrap().error),
        (ErrorCode::None, ErrorCode::None)
    );
    let generation = a3.generation_id;
    // Held now: 4005 + 10 (+ the old 1-byte assignment). The leader's
    // assignments may not take the group past 10,000...
    let heavy = vec![1u8; 6000];
    let leader = if a3.leader == a.member_id {
        &a.member_id
    } else {
        &b.member_id
    };
    let refused = c
        .sync(sync_req(
            leader,
            generation,
            &[(&a.member_id, &heavy), (&b.member_id, b"y")],
        ))
        .await;
    assert_eq!(refused.error, ErrorCode::GroupMaxSizeReached);
    // ...and another group may not take all groups past 15,000.
    let other = c.join(join_in("h", "", big)).await;
    assert_eq!(other.error, ErrorCode::None, "held: 4015 + 4005");
    let sync = c.sync(SyncGroup {
        group: "h".into(),
        ..sync_req(&other.member_id, 1, &[])
    });
    assert_eq!(sync.await.error, ErrorCode::None);
    let third = c.join(join_in("i", "", big)).await;
    assert_eq!(third.error, ErrorCode::None, "held: 12,025");
    assert_eq!(
        c.join(join_in("j", "", big)).await.error,
        ErrorCode::GroupMaxSizeReached,
        "all groups would hold 16,030"
    );
    assert!(
        c.list(&[]).iter().all(|g| g.group != "j"),
        "a group made for a refused join is not kept"
    );
    // A member leaving gives its bytes back.
    let left = c.leave(
        "h",
        vec![MemberRef {
            member_id: other.member_id.clone(),
            group_instance_id: None,
        }],
    );
    assert_eq!(left.members[0].1, ErrorCode::None);
    assert_eq!(c.join(join_in("j", "", big)).await.error, ErrorCode::None);
}

/// A generation that cannot be stored is not acknowledged: every waiting
/// sync gets the storage error and the group rebalances; once the disk
/// recovers, the next generation is stored and Stable.
#[tokio::test(start_paused = true)]
async fn a_generation_that_cannot_be_stored_is_not_acknowledged() {
    use crate::log::fault::{Faults, FaultyFs};
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let fs = Arc::new(FaultyFs::new(Arc::clone(&faults)));
    let store = Arc::new(OffsetStore::open(fs, dir.path(), OffsetsConfig::default()).unwrap());
    let config = GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        ..GroupConfig::default()
    };
    let c = Coordinator::open(config, Arc::clone(&store));
    let (a, b) = joined_pair(&c).await;
    faults.set_space_left(0);
    let c2 = Arc::clone(&c);
    let b2 = b.clone();
    let sb = tokio::spawn(async move { c2.sync(sync_req(&b2, 2, &[])).await });
    tokio::task::yield_now().await;
    let sa = c.sync(sync_req(&a, 2, &[(&a, b"A"), (&b, b"B")])).await;
    assert_eq!(sa.error, ErrorCode::DiskFull);
    assert_eq!(sb.await.unwrap().error, ErrorCode::DiskFull);
    assert!(sa.assignment.is_empty());
    assert_eq!(state(&c).0, GroupState::PreparingRebalance);
    let stored = record::GroupRecord::decode(&store.group_records()[0].1).unwrap();
    assert_eq!(stored.generation_id, 1, "nothing of generation 2 stored");
    faults.clear_disk_full();
    let jb = spawn_join(&c, join_req(&b, None, RANGE));
    let ra = c.join(join_req(&a, None, RANGE)).await;
    assert_eq!((ra.generation_id, jb.await.unwrap().generation_id), (3, 3));
    let sb = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.sync(sync_req(&b, 3, &[])).await })
    };
    tokio::task::yield_now().await;
    let sa = c.sync(sync_req(&a, 3, &[(&a, b"A3")])).await;
    assert_eq!(sa.assignment, b"A3");
    assert_eq!(sb.await.unwrap().error, ErrorCode::None);
    assert_eq!(state(&c), (GroupState::Stable, 3, 2));
}

/// Timers stop with what they time: members joining and leaving in a loop
/// leave no sleeping expiry or rebalance timers behind.
#[tokio::test(start_paused = true)]
async fn members_coming_and_going_leave_no_timers_behind() {
    let f = Fixture::new(Duration::ZERO);
    for _ in 0..200 {
        let id = member_id(&f.c).await;
        let r = f.c.join(join_req(&id, None, RANGE)).await;
        assert_eq!(r.error, ErrorCode::None);
        // The member's timers start sleeping.
        tokio::task::yield_now().await;
        let left = f.c.leave(
            "g",
            vec![MemberRef {
                member_id: id,
                group_instance_id: None,
            }],
        );
        assert_eq!(left.members[0].1, ErrorCode::None);
    }
    tokio::time::sleep(Duration::from_millis(1)).await;
    let alive = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();
    assert!(alive < 10, "{alive} tasks alive");
}

/// A leader that joins but never assigns does not hold the group: at the
/// rebalance timeout it is removed and the others rebalance without it.
#[tokio::test(start_paused = true)]
async fn a_leader_that_never_syncs_is_removed_at_the_rebalance_timeout() {
    let f = Fixture::new(Duration::ZERO);
    let (a, b) = joined_pair(&f.c).await;
    let c = Arc::clone(&f.c);
    let b2 = b.clone();
    let sb = tokio::spawn(async move { c.sync(sync_req(&b2, 2, &[])).await });
    // The leader heartbeats on but never sends its SyncGroup.
    let c = Arc::clone(&f.c);
    let started = tokio::time::Instant::now();
    let beat = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let code = c.heartbeat(&hb(&a, 2));
            if code != ErrorCode::None {
                return code;
            }
        }
    });
    let sb = tokio::time::timeout(REBALANCE * 4, sb).await;
    assert_eq!(
        sb.expect("the group waited for the leader").unwrap().error,
        ErrorCode::RebalanceInProgress
    );
    assert!(started.elapsed() >= REBALANCE);
    assert_eq!(beat.await.unwrap(), ErrorCode::UnknownMemberId);
    let r = f.c.join(join_req(&b, None, RANGE)).await;
    assert_eq!(
        (r.generation_id, r.leader.as_str(), r.members.len()),
        (3, b.as_str(), 1)
    );
}

/// A replicated group log shared by two coordinators: what one writes,
/// the other loads.
type Record = (Vec<u8>, Option<Vec<u8>>);

#[derive(Debug, Default)]
struct SharedLog {
    records: parking_lot::Mutex<Vec<Record>>,
    refuse: std::sync::atomic::AtomicBool,
}

impl crate::offsets::GroupLog for SharedLog {
    fn append(
        &self,
        _group: &str,
        records: &[(Vec<u8>, Option<Vec<u8>>)],
    ) -> Result<(), crate::error::BrokerError> {
        if self.refuse.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::error::BrokerError::Request {
                code: ErrorCode::NotCoordinator,
                message: "not the leader".into(),
            });
        }
        self.records.lock().extend_from_slice(records);
        Ok(())
    }
}

impl SharedLog {
    fn replayed(&self) -> crate::offsets::Replayed {
        let mut r = crate::offsets::Replayed::default();
        for (i, (k, v)) in self.records.lock().iter().enumerate() {
            r.apply(i as i64, k, v.as_deref());
        }
        r
    }
}

#[tokio::test(start_paused = true)]
async fn a_group_moves_to_another_coordinator_through_the_replicated_log() {
    let log = Arc::new(SharedLog::default());
    let old = Fixture::new(Duration::ZERO);
    old.store.use_replicated(Arc::clone(&log) as _);
    // The first coordinator loads an empty partition, then serves.
    old.store.replace_groups(|_| true, log.replayed());
    old.c.load_groups(|_| true, Vec::new());
    let a = lone_member(&old.c).await;
    old.store
        .commit(
            "g",
            &[sluice_protocol::wire::offset_commit::CommitPartition {
                topic: "t".into(),
                partition: 0,
                offset: 42,
                metadata: "m".into(),
            }],
        )
        .unwrap();
    // Nothing went to the local offsets log.
    assert_eq!(old.store.log().next_offset(), 0);

    // Another coordinator (empty memory, its local log not used) loads
    // the partition: the offsets and the Stable generation with its member.
    let new = Fixture::new(Duration::ZERO);
    new.store.use_replicated(Arc::clone(&log) as _);
    assert_eq!(new.store.get("g", "t", 0), None);
    let replayed = log.replayed();
    let groups: Vec<(String, Vec<u8>)> = replayed
        .groups
        .iter()
        .map(|(g, v)| (g.clone(), v.clone()))
        .collect();
    new.store.replace_groups(|g| g == "g", replayed);
    new.c.load_groups(|g| g == "g", groups);
    assert_eq!(new.store.get("g", "t", 0), Some((42, "m".into())));
    assert_eq!(state(&new.c), (GroupState::Stable, 1, 1));
    assert_eq!(new.c.heartbeat(&hb(&a, 1)), ErrorCode::None);

    // The old coordinator lets the group go: no state, and its writes
    // are refused by the log.
    old.c.drop_groups(|g| g == "g");
    old.store.drop_groups(|g| g == "g");
    assert_eq!(old.store.get("g", "t", 0), None);
    assert_eq!(old.c.describe(vec!["g".into()])[0].state, GroupState::Dead);
    log.refuse.store(true, std::sync::atomic::Ordering::SeqCst);
    let refused = old.store.commit(
        "g",
        &[sluice_protocol::wire::offset_commit::CommitPartition {
            topic: "t".into(),
            partition: 0,
            offset: 50,
            metadata: String::new(),
        }],
    );
    assert_eq!(refused.unwrap_err().code(), ErrorCode::NotCoordinator);
    assert_eq!(new.store.get("g", "t", 0), Some((42, "m".into())));
}

/// Topics for consumer-protocol groups: `t` with 4 partitions.
struct OneTopic;

impl consumer::TopicView for OneTopic {
    fn topic(&self, name: &str) -> Option<(crate::topics::TopicId, u32)> {
        (name == "t").then_some((crate::topics::TopicId([7; 16]), 4))
    }
    fn names(&self) -> Vec<String> {
        vec!["t".into()]
    }
}

/// A consumer-protocol heartbeat as the service answers it: stored first
/// when the group has an unstored change.
async fn consumer_beat(c: &Coordinator, b: consumer::Beat) -> Result<i32, consumer::BeatError> {
    let (answer, unstored) = c.consumer_heartbeat("kg", b, &OneTopic);
    if let Some(u) = unstored {
        c.store_consumer_group("kg", u)
            .await
            .map_err(|(code, m)| consumer::BeatError::NotStored(code, m))?;
    }
    answer.map(|a| a.member_epoch)
}

fn consumer_join(id: &str) -> consumer::Beat {
    consumer::Beat {
        member_id: id.into(),
        member_epoch: 0,
        rebalance_timeout: Some(REBALANCE),
        topic_names: Some(vec!["t".into()]),
        owned: Some(consumer::Assignment::new()),
        ..consumer::Beat::default()
    }
}

fn consumer_keepalive(id: &str, epoch: i32) -> consumer::Beat {
    consumer::Beat {
        member_id: id.into(),
        member_epoch: epoch,
        ..consumer::Beat::default()
    }
}

/// A consumer-protocol group is stored before a heartbeat that changed it
/// is answered: a coordinator opened again on the offsets log (a restart)
/// takes its members at their epochs. A change that cannot be stored is
/// not answered (the write's error), stays in memory, and is stored by the
/// next heartbeat once the disk recovers; a group whose members all left
/// is stored Empty and removed with its record by offset expiry.
#[tokio::test(start_paused = true)]
async fn consumer_groups_are_stored_before_they_are_answered() {
    use crate::log::fault::{Faults, FaultyFs};
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let fs = Arc::new(FaultyFs::new(Arc::clone(&faults)));
    let store = Arc::new(OffsetStore::open(fs, dir.path(), OffsetsConfig::default()).unwrap());
    let config = GroupConfig::default();
    let c = Coordinator::open(config, Arc::clone(&store));
    let ea = consumer_beat(&c, consumer_join("a")).await.unwrap();
    assert!(ea > 0);
    let stored = |store: &OffsetStore| match record::StoredGroup::decode(
        &store.group_record("kg").expect("a record"),
    ) {
        Ok(record::StoredGroup::Consumer(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(stored(&store).members.len(), 1);
    // A steady heartbeat changes nothing and writes nothing.
    let (_, unstored) = c.consumer_heartbeat("kg", consumer_keepalive("a", ea), &OneTopic);
    assert!(unstored.is_none());
    // Restarted: a goes on at its epoch, no rebalance.
    let c = Coordinator::open(config, Arc::clone(&store));
    assert_eq!(consumer_beat(&c, consumer_keepalive("a", ea)).await, Ok(ea));
    // b's join cannot be stored: not answered, not forgotten.
    faults.set_space_left(0);
    let r = consumer_beat(&c, consumer_join("b")).await;
    assert!(
        matches!(
            r,
            Err(consumer::BeatError::NotStored(ErrorCode::DiskFull, _))
        ),
        "{r:?}"
    );
    assert_eq!(stored(&store).members.len(), 1);
    assert!(c.is_consumer_member("kg", "b"));
    // Once the disk recovers, the next heartbeat (any member's) stores it,
    // and, the last answers not given, tells its member its whole
    // assignment again.
    faults.clear_disk_full();
    let (answer, unstored) = c.consumer_heartbeat("kg", consumer_keepalive("a", ea), &OneTopic);
    c.store_consumer_group("kg", unstored.expect("b's join"))
        .await
        .unwrap();
    assert_eq!(answer.unwrap().member_epoch, ea);
    assert_eq!(stored(&store).members.len(), 2);
    let eb = c.view_consumer("kg").unwrap().members[1].epoch;
    let (answer, _) = c.consumer_heartbeat("kg", consumer_keepalive("b", eb), &OneTopic);
    let answer = answer.unwrap();
    assert_eq!(
        answer.assignment,
        Some(consumer::Assignment::new()),
        "{answer:?}"
    );
    // Both leave: stored Empty, kept over a restart, then expired with
    // its record (it has no committed offsets).
    for id in ["a", "b"] {
        assert_eq!(consumer_beat(&c, consumer_keepalive(id, -1)).await, Ok(-1));
    }
    assert!(stored(&store).members.is_empty());
    let c = Coordinator::open(config, Arc::clone(&store));
    assert!(c.view_consumer("kg").is_some_and(|g| g.members.is_empty()));
    c.expire_offsets(Duration::from_secs(3600)).await;
    assert!(store.group_record("kg").is_none());
    assert!(c.view_consumer("kg").is_none());
}

/// A consumer-protocol member removed by the sweep (session over) is
/// removed from the stored group too, without a heartbeat; a store that
/// failed (the disk full) is made again by the sweep once it can be, with
/// no member left to heartbeat. (Real time: the consumer groups' clock is
/// the system's.)
#[tokio::test]
async fn a_consumer_member_the_sweep_removes_is_removed_from_the_record() {
    use crate::log::fault::{Faults, FaultyFs};
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let fs = Arc::new(FaultyFs::new(Arc::clone(&faults)));
    let store = Arc::new(OffsetStore::open(fs, dir.path(), OffsetsConfig::default()).unwrap());
    let session = Duration::from_millis(300);
    let config = GroupConfig {
        consumer_session_timeout: session,
        ..GroupConfig::default()
    };
    let c = Coordinator::open(config, Arc::clone(&store));
    consumer_beat(&c, consumer_join("a")).await.unwrap();
    let members = || match record::StoredGroup::decode(&store.group_record("kg").unwrap()) {
        Ok(record::StoredGroup::Consumer(r)) => r.members.len(),
        other => panic!("{other:?}"),
    };
    assert_eq!(members(), 1);
    // a is silent: the sweep removes it, but cannot store that.
    faults.set_space_left(0);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while c.is_consumer_member("kg", "a") {
        assert!(std::time::Instant::now() < deadline, "not removed");
        tokio::time::sleep(session / 4).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(members(), 1);
    // The disk recovers: the sweep stores the group Empty.
    faults.clear_disk_full();
    while members() != 0 {
        assert!(std::time::Instant::now() < deadline, "still stored");
        tokio::time::sleep(session / 4).await;
    }
}

/// DeleteGroups of an empty consumer-protocol group refuses its heartbeats
/// (retriably) while the tombstone is written, so that no join stored
/// meanwhile is deleted by it; afterwards a join makes a new group, stored.
#[tokio::test]
async fn a_consumer_group_being_deleted_takes_no_joins() {
    use crate::log::fault::{Faults, FaultyFs};
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let fs = Arc::new(FaultyFs::new(Arc::clone(&faults)));
    let store = Arc::new(OffsetStore::open(fs, dir.path(), OffsetsConfig::default()).unwrap());
    let c = Coordinator::open(GroupConfig::default(), Arc::clone(&store));
    consumer_beat(&c, consumer_join("a")).await.unwrap();
    // Not while it has a member.
    assert_eq!(
        c.delete(vec!["kg".into()]).await,
        [("kg".to_owned(), ErrorCode::NonEmptyGroup)]
    );
    assert_eq!(consumer_beat(&c, consumer_keepalive("a", -1)).await, Ok(-1));
    faults.set_hold_writes(true);
    let deleting = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.delete(vec!["kg".into()]).await })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while faults.writes_held() == 0 {
        assert!(std::time::Instant::now() < deadline, "no tombstone written");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (r, unstored) = c.consumer_heartbeat("kg", consumer_join("b"), &OneTopic);
    assert!(
        matches!(
            r,
            Err(consumer::BeatError::NotStored(
                ErrorCode::CoordinatorNotAvailable,
                _
            ))
        ),
        "{r:?}"
    );
    assert!(unstored.is_none());
    faults.set_hold_writes(false);
    assert_eq!(
        deleting.await.unwrap(),
        [("kg".to_owned(), ErrorCode::None)]
    );
    assert!(store.group_record("kg").is_none());
    assert!(c.view_consumer("kg").is_none());
    // Now b's join makes a new group, stored.
    assert!(consumer_beat(&c, consumer_join("b")).await.unwrap() > 0);
    assert!(store.group_record("kg").is_some());
}

/// A new group is refused at its first join when the store has no room
/// for its metadata (`max_committed_offsets` reached by committed offsets):
/// before, the join succeeded and every SyncGroup after it was refused, so
/// a client rejoined in a loop without seeing an error. A group that has
/// stored metadata goes on.
#[tokio::test(start_paused = true)]
async fn a_new_group_is_refused_at_its_join_when_the_store_is_full() {
    let dir = tempfile::tempdir().unwrap();
    let offsets = OffsetsConfig {
        max_keys: 3,
        ..OffsetsConfig::default()
    };
    let store = Arc::new(OffsetStore::open(Arc::new(StdFs), dir.path(), offsets).unwrap());
    let config = GroupConfig {
        initial_rebalance_delay: Duration::ZERO,
        ..GroupConfig::default()
    };
    let c = Coordinator::open(config, Arc::clone(&store));
    // Group `g` forms a generation: its metadata is one key.
    let id = lone_member(&c).await;
    assert!(store.has_group("g"));
    let commit = |group: &str, partition| {
        store.commit(
            group,
            &[sluice_protocol::wire::offset_commit::CommitPartition {
                topic: "t".into(),
                partition,
                offset: 1,
                metadata: String::new(),
            }],
        )
    };
    commit("other", 0).unwrap();
    commit("other", 1).unwrap();
    assert_eq!(
        commit("other", 2).unwrap_err().code(),
        ErrorCode::TooManyCommittedOffsets
    );
    let new_group = JoinGroup {
        group: "h".into(),
        ..join_req("", None, RANGE)
    };
    assert_eq!(
        c.join(new_group).await.error,
        ErrorCode::TooManyCommittedOffsets
    );
    let (answer, _) = c.consumer_heartbeat("kg", consumer_join("a"), &OneTopic);
    assert!(matches!(answer, Err(consumer::BeatError::GroupMaxSize)));
    // The group that holds its key still rebalances and stores.
    let r = c.join(join_req(&id, None, RANGE)).await;
    assert_eq!(r.error, ErrorCode::None);
}
