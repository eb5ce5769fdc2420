//! The group coordinator against a real broker, through the native
//! protocol and the client's group calls: members join and sync, a leave
//! gives the others a new generation, a silent member is expired after its
//! session timeout and its commits are fenced, and after a SIGKILL of the
//! broker a Stable generation continues without a rebalance while a
//! rebalance cut short starts again.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_client::{ClientError, Connection};
use sluice_protocol::wire::join_group::{JoinGroupRequest, JoinGroupResponse, JoinProtocol};
use sluice_protocol::wire::leave_group::LeavingMember;
use sluice_protocol::wire::offset_commit::{CommitPartition, OffsetCommitRequestV1};
use sluice_protocol::wire::sync_group::{SyncGroupAssignment, SyncGroupRequest};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_protocol::wire::{ApiKey, ErrorCode, RequestHeader};
use sluice_tests::{TestBroker, create_topic};

const GROUP: &str = "g";

/// One member: its connection, id and generation.
struct Member {
    addr: std::net::SocketAddr,
    conn: Connection,
    id: String,
    generation: i32,
    session_ms: u32,
}

impl Member {
    async fn new(broker: &TestBroker, session_ms: u32) -> Member {
        Member {
            addr: broker.addr,
            conn: broker.connect().await,
            id: String::new(),
            generation: -1,
            session_ms,
        }
    }

    fn join_request(&self) -> JoinGroupRequest {
        JoinGroupRequest {
            group: GROUP.into(),
            session_timeout_ms: self.session_ms,
            rebalance_timeout_ms: 10_000,
            member_id: self.id.clone(),
            group_instance_id: None,
            client_id: "groups-test".into(),
            protocol_type: "consumer".into(),
            protocols: vec![JoinProtocol {
                name: "range".into(),
                metadata: b"subscription".to_vec(),
            }],
        }
    }

    /// Joins (taking a member id first if it has none); waits for the
    /// generation.
    async fn join(&mut self) -> JoinGroupResponse {
        if self.id.is_empty() {
            let r = self.conn.join_group(&self.join_request()).await.unwrap();
            assert_eq!(r.error_code, ErrorCode::MemberIdRequired);
            assert!(!r.member_id.is_empty());
            self.id = r.member_id;
        }
        let r = self.conn.join_group(&self.join_request()).await.unwrap();
        assert_eq!(r.error_code, ErrorCode::None, "join of {}", self.id);
        self.generation = r.generation_id;
        r
    }

    /// Syncs; the leader gives `assignments`. Returns the own assignment.
    async fn sync(&mut self, assignments: Vec<(String, Vec<u8>)>) -> Vec<u8> {
        let req = SyncGroupRequest {
            group: GROUP.into(),
            generation_id: self.generation,
            member_id: self.id.clone(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: assignments
                .into_iter()
                .map(|(member_id, assignment)| SyncGroupAssignment {
                    member_id,
                    assignment,
                })
                .collect(),
        };
        let r = self.conn.sync_group(&req).await.unwrap();
        assert_eq!(r.error_code, ErrorCode::None, "sync of {}", self.id);
        r.assignment
    }

    /// Its connection, replaced by a fresh one (the taken one can wait in
    /// a join or sync on another task).
    async fn take_conn(&mut self) -> Connection {
        let fresh = Connection::connect(self.addr).await.unwrap();
        std::mem::replace(&mut self.conn, fresh)
    }

    async fn heartbeat(&mut self) -> ErrorCode {
        let r = self.conn.heartbeat(GROUP, self.generation, &self.id, None);
        r.await.unwrap().error_code
    }

    /// Heartbeats every 100 ms until the answer is not `None`.
    async fn heartbeat_until_told(&mut self) -> ErrorCode {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let code = self.heartbeat().await;
            if code != ErrorCode::None {
                return code;
            }
            assert!(Instant::now() < deadline, "never told to rejoin");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn commit(&mut self, generation: i32, offset: u64) -> ErrorCode {
        let r = self
            .conn
            .offset_commit_in_generation(GROUP, generation, &self.id, None, vec![part(offset)])
            .await
            .unwrap();
        r.partitions[0].error_code
    }
}

fn part(offset: u64) -> CommitPartition {
    CommitPartition {
        topic: "t".into(),
        partition: 0,
        offset,
        metadata: String::new(),
    }
}

/// Member `b` joins a group where `a` is alone and Stable: `a` is told to
/// rejoin, both get the next generation, the leader `a` assigns.
async fn second_member_joins(a: &mut Member, b: &mut Member) {
    let r = b.conn.join_group(&b.join_request()).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::MemberIdRequired);
    b.id = r.member_id;
    let req = b.join_request();
    let mut b_conn = b.take_conn().await;
    let b_join = tokio::spawn(async move {
        let r = b_conn.join_group(&req).await.unwrap();
        (b_conn, r)
    });
    assert_eq!(
        a.heartbeat_until_told().await,
        ErrorCode::RebalanceInProgress
    );
    let ra = a.join().await;
    let (b_conn, rb) = b_join.await.unwrap();
    b.conn = b_conn;
    assert_eq!(rb.error_code, ErrorCode::None);
    b.generation = rb.generation_id;
    assert_eq!(ra.generation_id, rb.generation_id);
    assert_eq!(ra.leader, a.id, "the first member stays the leader");
    assert_eq!(ra.members.len(), 2);
    assert!(rb.members.is_empty(), "only the leader gets the members");
    let assignments = vec![
        (a.id.clone(), b"p0".to_vec()),
        (b.id.clone(), b"p1".to_vec()),
    ];
    let mut b_conn = b.take_conn().await;
    let b_req = SyncGroupRequest {
        group: GROUP.into(),
        generation_id: b.generation,
        member_id: b.id.clone(),
        group_instance_id: None,
        protocol_type: None,
        protocol_name: None,
        assignments: vec![],
    };
    let b_sync = tokio::spawn(async move {
        let r = b_conn.sync_group(&b_req).await.unwrap();
        (b_conn, r)
    });
    assert_eq!(a.sync(assignments).await, b"p0");
    let (b_conn, r) = b_sync.await.unwrap();
    b.conn = b_conn;
    assert_eq!(
        (r.error_code, r.assignment),
        (ErrorCode::None, b"p1".to_vec())
    );
}

/// A broker with topic `t`, and two members in a Stable generation 2.
async fn stable_pair(broker: &TestBroker, session_ms: u32) -> (Member, Member) {
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "t", 1, TopicConfig::default()).await;
    let mut a = Member::new(broker, session_ms).await;
    let r = a.join().await;
    assert_eq!((r.generation_id, r.leader.as_str()), (1, a.id.as_str()));
    assert_eq!(a.sync(vec![(a.id.clone(), b"all".to_vec())]).await, b"all");
    let mut b = Member::new(broker, session_ms).await;
    second_member_joins(&mut a, &mut b).await;
    assert_eq!((a.generation, b.generation), (2, 2));
    (a, b)
}

#[tokio::test(flavor = "current_thread")]
async fn two_members_join_and_sync_and_a_leave_gives_the_other_a_new_generation() {
    let broker = TestBroker::start();
    let (mut a, mut b) = stable_pair(&broker, 10_000).await;
    let mut admin = broker.connect().await;
    let d = admin.describe_groups(vec![GROUP.into()]).await.unwrap();
    let g = &d.groups[0];
    assert_eq!((g.state.as_str(), g.generation_id), ("Stable", 2));
    assert_eq!(
        (g.protocol_type.as_str(), g.protocol.as_str()),
        ("consumer", "range")
    );
    let assigned: Vec<_> = g.members.iter().map(|m| m.assignment.clone()).collect();
    assert_eq!(assigned, [b"p0".to_vec(), b"p1".to_vec()]);
    assert_eq!(g.members[0].client_host, "127.0.0.1");
    assert_eq!(g.members[0].client_id, "groups-test");

    let (status, metrics) = sluice_tests::http_get(broker.metrics_addr.unwrap(), "/metrics");
    assert_eq!(status, 200);
    let sample = |series| sluice_tests::sample(&metrics, series);
    assert_eq!(sample("sluice_groups{state=\"Stable\"}"), Some(1.0));
    assert_eq!(sample("sluice_groups{state=\"Empty\"}"), Some(0.0));
    assert_eq!(sample("sluice_group_members"), Some(2.0));
    assert_eq!(sample("sluice_group_rebalances_total"), Some(2.0));
    // A group with only committed offsets (a tool's commit) is listed as
    // Empty, and counted so.
    let r = admin
        .offset_commit(
            "offsets-only",
            vec![CommitPartition {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                metadata: String::new(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    let listed = admin.list_groups(Vec::new()).await.unwrap();
    assert!(
        listed
            .groups
            .iter()
            .any(|g| g.group == "offsets-only" && g.state == "Empty"),
        "{listed:?}"
    );
    let (_, metrics) = sluice_tests::http_get(broker.metrics_addr.unwrap(), "/metrics");
    let sample = |series| sluice_tests::sample(&metrics, series);
    assert_eq!(sample("sluice_groups{state=\"Empty\"}"), Some(1.0));
    assert_eq!(sample("sluice_groups{state=\"Stable\"}"), Some(1.0));
    let r = admin
        .delete_groups(vec!["offsets-only".into()])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None);
    let (_, metrics) = sluice_tests::http_get(broker.metrics_addr.unwrap(), "/metrics");
    assert_eq!(
        sluice_tests::sample(&metrics, "sluice_groups{state=\"Empty\"}"),
        Some(0.0)
    );

    let left_at = Instant::now();
    let r = b
        .conn
        .leave_group(
            GROUP,
            vec![LeavingMember {
                member_id: b.id.clone(),
                group_instance_id: None,
            }],
        )
        .await
        .unwrap();
    assert_eq!(r.members[0].error_code, ErrorCode::None);
    assert_eq!(b.heartbeat().await, ErrorCode::UnknownMemberId);
    assert_eq!(
        a.heartbeat_until_told().await,
        ErrorCode::RebalanceInProgress
    );
    let r = a.join().await;
    assert_eq!((r.generation_id, r.members.len()), (3, 1));
    assert_eq!(
        a.sync(vec![(a.id.clone(), b"p0p1".to_vec())]).await,
        b"p0p1"
    );
    println!(
        "clean leave to new assignment (100 ms heartbeat): {:?}",
        left_at.elapsed()
    );

    // A group with a member is not deleted; once it left, it is (offsets too).
    assert_eq!(a.commit(3, 42).await, ErrorCode::None);
    let r = admin.delete_groups(vec![GROUP.into()]).await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::NonEmptyGroup);
    let leave = LeavingMember {
        member_id: a.id.clone(),
        group_instance_id: None,
    };
    a.conn.leave_group(GROUP, vec![leave]).await.unwrap();
    let listed = admin.list_groups(vec![]).await.unwrap();
    assert_eq!(listed.groups.len(), 1);
    assert_eq!(
        (
            listed.groups[0].group.as_str(),
            listed.groups[0].state.as_str()
        ),
        (GROUP, "Empty")
    );
    let r = admin.delete_groups(vec![GROUP.into()]).await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None);
    let fetched = admin.offset_fetch(GROUP, None).await.unwrap();
    assert!(
        fetched.partitions.is_empty(),
        "offsets deleted with the group"
    );
    let r = admin.delete_groups(vec![GROUP.into()]).await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::GroupIdNotFound);
}

#[tokio::test(flavor = "current_thread")]
async fn a_silent_member_expires_and_its_commits_are_fenced() {
    let broker = TestBroker::start();
    let (mut a, mut zombie) = stable_pair(&broker, 1000).await;
    let silent_since = Instant::now();
    assert_eq!(zombie.commit(2, 5).await, ErrorCode::None);
    // `a` heartbeats; the other stops (a long GC pause, say).
    assert_eq!(
        a.heartbeat_until_told().await,
        ErrorCode::RebalanceInProgress
    );
    let expired_after = silent_since.elapsed();
    assert!(
        expired_after >= Duration::from_millis(900),
        "{expired_after:?}"
    );
    let r = a.join().await;
    assert_eq!((r.generation_id, r.members.len()), (3, 1));
    a.sync(vec![]).await;
    // The zombie wakes up: its heartbeat and commit are refused.
    assert_eq!(zombie.heartbeat().await, ErrorCode::UnknownMemberId);
    assert_eq!(zombie.commit(2, 6).await, ErrorCode::UnknownMemberId);
    assert_eq!(a.commit(2, 7).await, ErrorCode::IllegalGeneration);
    assert_eq!(a.commit(3, 8).await, ErrorCode::None);
    // A simple (version 0) commit is refused while the group has members.
    let r = zombie
        .conn
        .offset_commit(GROUP, vec![part(9)])
        .await
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::UnknownMemberId);
    let fetched = zombie.conn.offset_fetch(GROUP, None).await.unwrap();
    assert_eq!(fetched.partitions[0].offset, Some(8));
    // Once the group is empty, an offset reset (generation -1) is allowed.
    let leave = LeavingMember {
        member_id: a.id.clone(),
        group_instance_id: None,
    };
    a.conn.leave_group(GROUP, vec![leave]).await.unwrap();
    let reset = OffsetCommitRequestV1 {
        group: GROUP.into(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        partitions: vec![part(0)],
    };
    let r = zombie.conn.offset_commit_as(&reset).await.unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    println!("silent member expired after {expired_after:?} (session 1000 ms)");
}

#[tokio::test(flavor = "current_thread")]
async fn after_a_coordinator_crash_a_stable_generation_continues() {
    let mut broker = TestBroker::start();
    let (mut a, mut b) = stable_pair(&broker, 10_000).await;
    broker.kill();
    broker.restart();
    for m in [&mut a, &mut b] {
        m.conn = broker.connect().await;
        assert_eq!(m.heartbeat().await, ErrorCode::None, "no rebalance");
    }
    let mut admin = broker.connect().await;
    let d = admin.describe_groups(vec![GROUP.into()]).await.unwrap();
    let g = &d.groups[0];
    assert_eq!(
        (g.state.as_str(), g.generation_id, g.members.len()),
        ("Stable", 2, 2)
    );
    assert_eq!(g.members[1].assignment, b"p1");
    assert_eq!(b.commit(2, 11).await, ErrorCode::None);
    // A follower's rejoin with unchanged protocols gets the same generation.
    let r = b.join().await;
    assert_eq!(r.generation_id, 2);
}

#[tokio::test(flavor = "current_thread")]
async fn a_rebalance_cut_short_by_a_coordinator_crash_starts_again() {
    let mut broker = TestBroker::start();
    let (mut a, mut b) = stable_pair(&broker, 10_000).await;
    // A third member's join starts a rebalance, then the broker dies.
    let mut c = Member::new(&broker, 10_000).await;
    let r = c.conn.join_group(&c.join_request()).await.unwrap();
    c.id = r.member_id;
    let req = c.join_request();
    let mut c_conn = c.take_conn().await;
    let pending = tokio::spawn(async move { c_conn.join_group(&req).await });
    assert_eq!(
        a.heartbeat_until_told().await,
        ErrorCode::RebalanceInProgress
    );
    broker.kill();
    assert!(
        pending.await.unwrap().is_err(),
        "the waiting join fails with the broker"
    );
    broker.restart();
    // The last Stable generation is back; its members go on.
    for m in [&mut a, &mut b] {
        m.conn = broker.connect().await;
        assert_eq!(m.heartbeat().await, ErrorCode::None);
    }
    // The newcomer's id died with the broker: it starts over, and the
    // rebalance runs to the end this time.
    c.conn = broker.connect().await;
    c.id.clear();
    let r = c.conn.join_group(&c.join_request()).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::MemberIdRequired);
    c.id = r.member_id;
    let req = c.join_request();
    let mut c_conn = c.take_conn().await;
    let c_join = tokio::spawn(async move { c_conn.join_group(&req).await.unwrap() });
    assert_eq!(
        a.heartbeat_until_told().await,
        ErrorCode::RebalanceInProgress
    );
    assert_eq!(b.heartbeat().await, ErrorCode::RebalanceInProgress);
    let mut b_conn = b.take_conn().await;
    let b_req = b.join_request();
    let b_join = tokio::spawn(async move { b_conn.join_group(&b_req).await.unwrap() });
    let ra = a.join().await;
    let (rb, rc) = (b_join.await.unwrap(), c_join.await.unwrap());
    assert_eq!(
        (ra.generation_id, rb.generation_id, rc.generation_id),
        (3, 3, 3)
    );
    assert_eq!(ra.members.len(), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn bad_group_requests_get_error_codes_and_the_connection_goes_on() {
    let broker = TestBroker::start();
    let mut conn = broker.connect().await;
    // An undecodable body for every group API: InvalidRequest, then the
    // connection serves the next request.
    for (i, api) in [
        ApiKey::JoinGroup,
        ApiKey::SyncGroup,
        ApiKey::Heartbeat,
        ApiKey::LeaveGroup,
        ApiKey::DescribeGroups,
        ApiKey::ListGroups,
        ApiKey::DeleteGroups,
    ]
    .into_iter()
    .enumerate()
    {
        let body = [0xFF; 7];
        let header = RequestHeader {
            api_key: api as u16,
            api_version: 0,
            correlation_id: 1000 + i as u32,
            body_len: body.len() as u32,
        }
        .encode(0)
        .unwrap();
        conn.write_raw(&[&header[..], &body].concat())
            .await
            .unwrap();
        match conn.recv::<()>().await {
            Err(ClientError::Broker { code, .. }) => {
                assert_eq!(code, ErrorCode::InvalidRequest, "{api:?}")
            }
            other => panic!("{api:?}: {other:?}"),
        }
    }
    let err = conn.list_groups(vec!["Bogus".into()]).await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Broker {
                code: ErrorCode::InvalidRequest,
                ..
            }
        ),
        "{err}"
    );
    let mut m = Member::new(&broker, 1).await;
    let r = m.conn.join_group(&m.join_request()).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::InvalidSessionTimeout);
    let mut req = m.join_request();
    req.session_timeout_ms = 10_000;
    req.group = "line\nbreak".into();
    let r = m.conn.join_group(&req).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::InvalidGroupName);
    req.group = GROUP.into();
    req.protocols.clear();
    let r = m.conn.join_group(&req).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::InconsistentGroupProtocol);
    // Metadata the coordinator would keep for the member's lifetime is
    // bounded: just over 1 MiB is refused before any group exists.
    req.protocols = vec![JoinProtocol {
        name: "range".into(),
        metadata: vec![7; (1 << 20) - 4],
    }];
    let r = m.conn.join_group(&req).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::MessageTooLarge);
    let r = conn.heartbeat(GROUP, 1, "nobody", None).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::UnknownMemberId);
    let r = conn
        .sync_group(&SyncGroupRequest {
            group: GROUP.into(),
            generation_id: 1,
            member_id: "nobody".into(),
            group_instance_id: None,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![SyncGroupAssignment {
                member_id: "nobody".into(),
                assignment: vec![7; (1 << 20) + 1],
            }],
        })
        .await
        .unwrap();
    assert_eq!(r.error_code, ErrorCode::MessageTooLarge);
    let listed = conn.list_groups(vec![]).await.unwrap();
    assert!(listed.groups.is_empty(), "refused joins created no group");
}

#[tokio::test(flavor = "current_thread")]
async fn a_join_waiting_at_shutdown_is_answered_and_the_broker_stops_cleanly() {
    let mut broker = TestBroker::start();
    let (mut a, _b) = stable_pair(&broker, 10_000).await;
    let mut c = Member::new(&broker, 10_000).await;
    let r = c.conn.join_group(&c.join_request()).await.unwrap();
    c.id = r.member_id;
    let req = c.join_request();
    let mut c_conn = c.take_conn().await;
    let waiting = tokio::spawn(async move { c_conn.join_group(&req).await });
    assert_eq!(
        a.heartbeat_until_told().await,
        ErrorCode::RebalanceInProgress
    );
    let asked = Instant::now();
    broker.stop(); // SIGTERM; panics unless the exit is clean
    assert!(
        asked.elapsed() < Duration::from_secs(9),
        "shutdown waited for the join"
    );
    match waiting.await.unwrap() {
        Err(ClientError::Broker { code, .. }) => assert_eq!(code, ErrorCode::BrokerShuttingDown),
        other => panic!("{other:?}"),
    }
}
