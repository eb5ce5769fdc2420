//! Kafka's consumer group protocol (KIP-848, ConsumerGroupHeartbeat)
//! through the Kafka listener: confluent-kafka consumers with
//! `group.protocol=consumer` sharing a topic while records arrive, and raw
//! requests for what Kafka's coordinator checks (member ids, epochs,
//! assignors, commits at a stale epoch, a classic join of the group,
//! expiry, a restart).
//!
//! The confluent-kafka test needs the Python of `SLUICE_KAFKA_PYTHON`
//! (installed by `.ci/run`); skipped without it unless
//! `SLUICE_REQUIRE_KAFKA_CLIENTS=1`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_protocol::kafka::consumer_group::{
    ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::{call, classic_join, python, run_clients};
use sluice_tests::{TestBroker, batch_of, create_topic};

/// A broker whose consumer-protocol members heartbeat every 200 ms and
/// expire after 2 s.
fn broker(name: &str) -> TestBroker {
    let p = std::env::temp_dir().join(format!("kip848-{name}-{}.toml", std::process::id()));
    std::fs::write(
        &p,
        "group_consumer_heartbeat_interval_ms = 200\ngroup_consumer_session_timeout_ms = 2000\n",
    )
    .unwrap();
    TestBroker::start_with_args(&["--config", &p.display().to_string()])
}

async fn produce(b: &TestBroker, topic: &str, partitions: u32, per_partition: usize, tag: &str) {
    let mut c = b.connect().await;
    for p in 0..partitions {
        let values: Vec<String> = (0..per_partition)
            .map(|i| format!("{tag}-{p}-{i}"))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        c.produce(Acks::Leader, 5000, &[(topic, p, &batch_of(&refs))])
            .await
            .unwrap()
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_consumers_share_a_topic_through_the_consumer_group_protocol() {
    let Some(py) = python() else { return };
    let b = broker("pair");
    let mut c = b.connect().await;
    create_topic(&mut c, "k848", 4, TopicConfig::default()).await;
    produce(&b, "k848", 4, 50, "before").await;
    let addr = b.kafka_addr.unwrap().to_string();
    // More records arrive while the members come and go.
    let native = b.addr;
    let more = tokio::spawn(async move {
        let mut c = sluice_client::Connection::connect(native).await.unwrap();
        for round in 0..40 {
            for p in 0..4u32 {
                let v = format!("during-{round}-{p}");
                c.produce(Acks::Leader, 5000, &[("k848", p, &batch_of(&[&v]))])
                    .await
                    .unwrap()
                    .unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let out = tokio::task::spawn_blocking(move || {
        run_clients(&py, &["kip848-pair", &addr, "k848", "g848", "4", "360"])
    })
    .await
    .unwrap();
    more.await.unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["alone"], json!([0, 1, 2, 3]), "{out}");
    let a = v["split"][0].as_array().unwrap();
    let b2 = v["split"][1].as_array().unwrap();
    assert_eq!(a.len(), 2, "the uniform assignor splits evenly: {out}");
    assert_eq!(b2.len(), 2, "{out}");
    assert_eq!(
        v["described"]["members"],
        json!([["kip848-A", a], ["kip848-B", b2]]),
        "the admin client's description: {out}"
    );
    assert_eq!(v["after"], json!([0, 1, 2, 3]), "{out}");
    assert_eq!(
        v["overlaps"],
        json!([]),
        "a partition had two owners: {out}"
    );
    assert_eq!(v["errors"], json!([]), "{out}");
    // Every record was read, and the commits reached the end of each
    // partition (the members committed as they read).
    let read: BTreeSet<(u64, u64)> = v["read"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r[1].as_u64().unwrap(), r[2].as_u64().unwrap()))
        .collect();
    let fetched = c.offset_fetch("g848", None).await.unwrap();
    for p in 0..4u64 {
        let end = read.iter().filter(|(q, _)| *q == p).count() as u64;
        assert_eq!(end, 90, "partition {p}: {out}");
        assert!(
            (0..90).all(|o| read.contains(&(p, o))),
            "partition {p}: {out}"
        );
        let committed = fetched
            .partitions
            .iter()
            .find(|x| u64::from(x.partition) == p)
            .and_then(|x| x.offset);
        assert_eq!(committed, Some(90), "{fetched:?}");
    }
}

fn join(group: &str, member: &str, topics: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        group_id: group.into(),
        member_id: member.into(),
        member_epoch: 0,
        instance_id: None,
        rack_id: None,
        rebalance_timeout_ms: 30_000,
        subscribed_topic_names: Some(topics.iter().map(|t| (*t).to_owned()).collect()),
        subscribed_topic_regex: Some(String::new()),
        server_assignor: None,
        topic_partitions: Some(Vec::new()),
    }
}

fn beat(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest {
        member_epoch: epoch,
        rebalance_timeout_ms: -1,
        subscribed_topic_names: None,
        subscribed_topic_regex: None,
        topic_partitions: None,
        ..join(group, member, &[])
    }
}

fn hb(
    s: &mut TcpStream,
    v: i16,
    mut r: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    call(s, v, &mut r)
}

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn commit(s: &mut TcpStream, group: &str, epoch: i32, member: &str) -> i16 {
    commit_at(s, 9, group, epoch, member)
}

/// An OffsetCommit of `version` (v9 carries the member epoch).
fn commit_at(s: &mut TcpStream, version: i16, group: &str, epoch: i32, member: &str) -> i16 {
    use sluice_protocol::kafka::offsets::OffsetCommitResponse;
    let mut req = sluice_tests::kafka::commit_request(group, epoch, member, "raw848", 1);
    let r: OffsetCommitResponse = call(s, version, &mut req);
    r.topics[0].partitions[0].error_code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_group_heartbeats_are_checked_as_kafka_checks_them() {
    let mut b = broker("raw");
    let mut c = b.connect().await;
    create_topic(&mut c, "raw848", 2, TopicConfig::default()).await;
    produce(&b, "raw848", 2, 3, "r").await;
    let bb = &b;
    let id = tokio::task::block_in_place(|| {
        let mut s = connect(bb);
        // v1: the member names itself.
        let r = hb(&mut s, 1, join("rg", "", &["raw848"]));
        assert_eq!(r.error_code, code::INVALID_REQUEST, "{r:?}");
        assert!(r.error_message.is_some());
        // v0: the coordinator names it; it gets every partition at once.
        let r = hb(&mut s, 0, join("rg", "", &["raw848"]));
        assert_eq!(r.error_code, 0, "{r:?}");
        let me = r.member_id.clone().unwrap();
        assert!(!me.is_empty());
        let epoch = r.member_epoch;
        assert!(epoch > 0);
        let assigned = r.assignment.clone().unwrap();
        assert_eq!(assigned.len(), 1, "{r:?}");
        assert_eq!(assigned[0].partitions, vec![0, 1]);
        assert_eq!(r.heartbeat_interval_ms, 200);
        // ConsumerGroupDescribe tells the member, its epoch and its
        // partitions; a group of no such kind is GROUP_ID_NOT_FOUND.
        {
            use sluice_protocol::kafka::consumer_group::*;
            let mut d = ConsumerGroupDescribeRequest {
                group_ids: vec!["rg".into(), "nope".into(), "rg".into()],
                include_authorized_operations: false,
            };
            let r: ConsumerGroupDescribeResponse = call(&mut s, 1, &mut d);
            assert_eq!(r.groups.len(), 2, "{r:?}");
            let g = &r.groups[0];
            assert_eq!(
                (g.error_code, g.group_state.as_str()),
                (0, "Stable"),
                "{r:?}"
            );
            assert_eq!((g.group_epoch, g.assignment_epoch), (epoch, epoch));
            assert_eq!(g.assignor_name, "uniform");
            let m = &g.members[0];
            assert_eq!((m.member_id.as_str(), m.member_epoch), (me.as_str(), epoch));
            assert_eq!(m.subscribed_topic_names, vec!["raw848".to_owned()]);
            assert_eq!(m.assignment, m.target_assignment);
            assert_eq!(m.assignment[0].topic_name, "raw848");
            assert_eq!(m.assignment[0].topic_id, assigned[0].topic_id);
            assert_eq!(m.assignment[0].partitions, vec![0, 1]);
            assert_eq!(m.member_type, 1);
            assert_eq!(r.groups[1].error_code, code::GROUP_ID_NOT_FOUND);
        }
        // An unchanged member's heartbeat carries no assignment.
        let r = hb(&mut s, 1, beat("rg", &me, epoch));
        assert_eq!((r.error_code, r.assignment), (0, None));
        // Epochs it was never given, and members that are not there.
        let r = hb(&mut s, 1, beat("rg", &me, epoch + 7));
        assert_eq!(r.error_code, code::FENCED_MEMBER_EPOCH);
        let r = hb(&mut s, 1, beat("rg", "nobody", 3));
        assert_eq!(r.error_code, code::UNKNOWN_MEMBER_ID);
        let r = hb(&mut s, 1, beat("no-such-group", "nobody", 3));
        assert_eq!(r.error_code, code::UNKNOWN_MEMBER_ID);
        // Assignors and regular expressions it does not have.
        let mut sticky = join("rg", "other", &["raw848"]);
        sticky.server_assignor = Some("sticky".into());
        assert_eq!(hb(&mut s, 1, sticky).error_code, code::UNSUPPORTED_ASSIGNOR);
        let mut regex = join("rg", "other", &[]);
        regex.subscribed_topic_names = None;
        regex.subscribed_topic_regex = Some("raw[".into());
        assert_eq!(
            hb(&mut s, 1, regex).error_code,
            code::INVALID_REGULAR_EXPRESSION
        );
        let mut owning = join("rg", "other", &["raw848"]);
        owning.topic_partitions = Some(vec![TopicPartitions {
            topic_id: assigned[0].topic_id,
            partitions: vec![0],
        }]);
        assert_eq!(hb(&mut s, 1, owning).error_code, code::INVALID_REQUEST);
        // Commits: at the member's epoch only; nobody else while it is there.
        assert_eq!(commit(&mut s, "rg", epoch, &me), 0);
        assert_eq!(
            commit(&mut s, "rg", epoch - 1, &me),
            code::STALE_MEMBER_EPOCH
        );
        assert_eq!(commit(&mut s, "rg", -1, ""), code::UNKNOWN_MEMBER_ID);
        // A member of this protocol commits with v9 or later, as in Kafka;
        // an older version from anyone else goes through the usual checks.
        assert_eq!(
            commit_at(&mut s, 8, "rg", epoch, &me),
            code::UNSUPPORTED_VERSION
        );
        assert_eq!(commit_at(&mut s, 8, "rg", -1, ""), code::UNKNOWN_MEMBER_ID);
        {
            use sluice_protocol::kafka::offsets::*;
            let mut fetch = OffsetFetchRequest {
                groups: vec![OffsetFetchGroup {
                    group_id: "rg".into(),
                    member_id: Some(me.clone()),
                    member_epoch: epoch + 1,
                    topics: None,
                }],
                require_stable: false,
            };
            let r: OffsetFetchResponse = call(&mut s, 9, &mut fetch.clone());
            assert_eq!(r.groups[0].error_code, code::STALE_MEMBER_EPOCH, "{r:?}");
            fetch.groups[0].member_epoch = epoch;
            let r: OffsetFetchResponse = call(&mut s, 9, &mut fetch);
            assert_eq!(r.groups[0].error_code, 0, "{r:?}");
            assert_eq!(r.groups[0].topics[0].partitions[0].committed_offset, 1);
        }
        // A classic member cannot join the group, nor can it be deleted.
        {
            use sluice_protocol::kafka::groups::*;
            let mut j = JoinGroupRequest {
                session_timeout_ms: 10_000,
                ..classic_join("rg")
            };
            let r: JoinGroupResponse = call(&mut s, 7, &mut j);
            assert_eq!(r.error_code, code::INCONSISTENT_GROUP_PROTOCOL);
            let mut d = DeleteGroupsRequest {
                groups_names: vec!["rg".into()],
            };
            let r: DeleteGroupsResponse = call(&mut s, 2, &mut d);
            assert_eq!(r.results[0].error_code, code::NON_EMPTY_GROUP, "{r:?}");
        }
        me
    });
    // DescribeGroups shows it in the classic shape.
    let d = c.describe_groups(vec!["rg".into()]).await.unwrap();
    assert_eq!(d.groups[0].state, "Stable", "{d:?}");
    assert_eq!(d.groups[0].protocol_type, "consumer");
    assert_eq!(d.groups[0].protocol, "uniform");
    assert_eq!(d.groups[0].members.len(), 1);
    assert_eq!(d.groups[0].members[0].member_id, id);
    // Silent past the session timeout: removed.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let bb = &b;
    let again = tokio::task::block_in_place(|| {
        let mut s = connect(bb);
        let r = hb(&mut s, 1, beat("rg", &id, 1));
        assert_eq!(r.error_code, code::UNKNOWN_MEMBER_ID, "{r:?}");
        // A new member, then a restart and a crash: membership is kept
        // (the member goes on at its epoch, with its partitions, and may
        // commit at it), and so is the committed offset.
        let r = hb(&mut s, 1, join("rg", "again", &["raw848"]));
        assert_eq!(r.error_code, 0, "{r:?}");
        (r.member_epoch, r.assignment.unwrap())
    });
    let (epoch, assigned) = again;
    // Sessions of 30 s from here on: a slow restart must not end one.
    std::fs::write(
        std::env::temp_dir().join(format!("kip848-raw-{}.toml", std::process::id())),
        "group_consumer_heartbeat_interval_ms = 200\ngroup_consumer_session_timeout_ms = 30000\n",
    )
    .unwrap();
    for crash in [false, true] {
        if crash {
            b.kill();
        } else {
            b.stop();
        }
        b.restart();
        let bb = &b;
        tokio::task::block_in_place(|| {
            let mut s = connect(bb);
            let r = hb(&mut s, 1, beat("rg", "again", epoch));
            assert_eq!((r.error_code, r.member_epoch), (0, epoch), "{r:?}");
            // Its whole assignment, sent again: the same partitions.
            assert_eq!(r.assignment.as_ref(), Some(&assigned), "{r:?}");
            assert_eq!(commit(&mut s, "rg", epoch, "again"), 0);
        });
    }
    let bb = &b;
    tokio::task::block_in_place(|| {
        let mut s = connect(bb);
        // It leaves; the group is empty and may be deleted.
        let r = hb(&mut s, 1, beat("rg", "again", -1));
        assert_eq!((r.error_code, r.member_epoch), (0, -1), "{r:?}");
        assert!(epoch > 0);
        use sluice_protocol::kafka::groups::*;
        // Empty now, it is still a consumer-protocol group.
        let mut l = ListGroupsRequest::default();
        let r: ListGroupsResponse = call(&mut s, 4, &mut l);
        let listed = r.groups.iter().find(|g| g.group_id == "rg").unwrap();
        assert_eq!(
            (listed.protocol_type.as_str(), listed.group_state.as_str()),
            ("consumer", "Empty"),
            "{r:?}"
        );
        {
            use sluice_protocol::kafka::consumer_group::*;
            let mut d = ConsumerGroupDescribeRequest {
                group_ids: vec!["rg".into()],
                include_authorized_operations: false,
            };
            let r: ConsumerGroupDescribeResponse = call(&mut s, 1, &mut d);
            assert_eq!(
                (r.groups[0].error_code, r.groups[0].group_state.as_str()),
                (0, "Empty"),
                "{r:?}"
            );
            assert!(r.groups[0].members.is_empty());
        }
        let mut d = DeleteGroupsRequest {
            groups_names: vec!["rg".into()],
        };
        let r: DeleteGroupsResponse = call(&mut s, 2, &mut d);
        assert_eq!(r.results[0].error_code, 0, "{r:?}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classic_group_with_members_is_not_a_consumer_group() {
    use sluice_protocol::kafka::groups::*;
    let p = std::env::temp_dir().join(format!("kip848-classic-{}.toml", std::process::id()));
    std::fs::write(&p, "group_initial_rebalance_delay_ms = 0\n").unwrap();
    let b = TestBroker::start_with_args(&["--config", &p.display().to_string()]);
    let mut c = b.connect().await;
    create_topic(&mut c, "cl848", 1, TopicConfig::default()).await;
    let bb = &b;
    tokio::task::block_in_place(|| {
        let mut s = connect(bb);
        let mut j = JoinGroupRequest {
            session_timeout_ms: 10_000,
            ..classic_join("classic")
        };
        let r: JoinGroupResponse = call(&mut s, 7, &mut j.clone());
        j.member_id = r.member_id;
        let r: JoinGroupResponse = call(&mut s, 7, &mut j);
        assert_eq!(r.error_code, 0, "{r:?}");
        let r = hb(&mut s, 1, join("classic", "m", &["cl848"]));
        assert_eq!(r.error_code, code::GROUP_ID_NOT_FOUND, "{r:?}");
        // A consumer-protocol group next to it: ListGroups v5 tells their
        // types and filters by them (any case; an unknown type matches
        // nothing); v4 lists both without a type.
        let r = hb(&mut s, 0, join("kip848", "", &["cl848"]));
        assert_eq!(r.error_code, 0, "{r:?}");
        let list = |s: &mut TcpStream, v: i16, types: &[&str]| -> Vec<(String, String)> {
            let mut req = ListGroupsRequest {
                states_filter: Vec::new(),
                types_filter: types.iter().map(|t| (*t).to_owned()).collect(),
            };
            let r: ListGroupsResponse = call(s, v, &mut req);
            assert_eq!(r.error_code, 0);
            let mut g: Vec<(String, String)> = r
                .groups
                .into_iter()
                .map(|g| (g.group_id, g.group_type))
                .collect();
            g.sort();
            g
        };
        let both = [
            ("classic".to_owned(), "classic".to_owned()),
            ("kip848".to_owned(), "consumer".to_owned()),
        ];
        assert_eq!(list(&mut s, 5, &[]), both);
        assert_eq!(list(&mut s, 5, &["Consumer"]), both[1..]);
        assert_eq!(list(&mut s, 5, &["classic"]), both[..1]);
        assert_eq!(list(&mut s, 5, &["consumer", "CLASSIC"]), both);
        assert_eq!(list(&mut s, 5, &["share"]), []);
        let untyped: Vec<String> = list(&mut s, 4, &[]).into_iter().map(|g| g.1).collect();
        assert_eq!(untyped, ["", ""]);
    });
}

/// A child process killed when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The node coordinating `group`, as node `ask`'s Kafka listener names it.
fn coordinator(c: &sluice_tests::cluster::TestCluster, ask: u64, group: &str) -> Option<u64> {
    use sluice_protocol::kafka::offsets::{FindCoordinatorRequest, FindCoordinatorResponse};
    let mut s = TcpStream::connect(c.node(ask).kafka_addr?).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = FindCoordinatorRequest {
        key: group.into(),
        key_type: 0,
        coordinator_keys: Vec::new(),
    };
    let r: FindCoordinatorResponse = call(&mut s, 3, &mut req);
    let found = r.coordinators.first()?;
    (found.error_code == 0).then(|| u64::try_from(found.node_id).ok())?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_follows_its_group_to_a_new_coordinator() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let Some(py) = python() else { return };
    let mut c = sluice_tests::cluster::TestCluster::start_with_kafka_config(
        3,
        "group_consumer_heartbeat_interval_ms = 200\n",
    );
    let kafka: Vec<String> = (1..=3)
        .map(|id| c.node(id).kafka_addr.unwrap().to_string())
        .collect();
    let addrs = |ids: &[u64]| {
        ids.iter()
            .map(|&id| kafka[id as usize - 1].clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    let all = addrs(&[1, 2, 3]);
    let out = run_clients(&py, &["create", &all, "kf", "2", "3"]);
    assert!(out.contains("\"partitions\""), "{out}");
    let out = run_clients(
        &py,
        &["cluster-produce", "confluent", &all, "kf", "40", "0", "pre"],
    );
    assert!(out.trim_end().ends_with("{\"done\": 40}"), "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let victim = loop {
        if let Some(id) = coordinator(&c, 1, "gf") {
            break id;
        }
        assert!(std::time::Instant::now() < deadline, "no coordinator");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut follower = KillOnDrop(
        Command::new(&py)
            .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kafka_clients/clients.py"))
            .args(["kip848-follow", &all, "kf", "gf", "120"])
            .stdout(Stdio::piped())
            .stderr(err.reopen().unwrap())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(follower.0.stdout.take().unwrap()).lines();
    let mut line = || {
        lines.next().and_then(Result::ok).unwrap_or_else(|| {
            let e = std::fs::read_to_string(err.path()).unwrap_or_default();
            panic!("the consumer ended early: {e}")
        })
    };
    assert_eq!(line(), "{\"reading\": true}");
    c.kill(victim);
    let rest: Vec<u64> = (1..=3).filter(|id| *id != victim).collect();
    let out = run_clients(
        &py,
        &[
            "cluster-produce",
            "confluent",
            &addrs(&rest),
            "kf",
            "80",
            "0",
            "post",
        ],
    );
    assert!(out.trim_end().ends_with("{\"done\": 80}"), "{out}");
    let v: Value = serde_json::from_str(&line()).unwrap();
    assert!(follower.0.wait().unwrap().success());
    let mut want: Vec<String> = (0..40)
        .map(|i| format!("pre-{i}"))
        .chain((0..80).map(|i| format!("post-{i}")))
        .collect();
    want.sort();
    let got: Vec<String> = v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, want, "{v}");
    assert_eq!(v["committed"], json!(true), "{v}");
    // What the client reported meanwhile were retried errors (the node
    // down), nothing that ended its membership for good, and no commit
    // refused for its member id or epoch: the new coordinator restored the
    // group with the member at its epoch.
    let errors = v["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .all(|e| !e.as_str().unwrap().to_lowercase().contains("fatal")),
        "{v}"
    );
    for fenced in [
        "ILLEGAL_GENERATION",
        "UNKNOWN_MEMBER_ID",
        "STALE_MEMBER_EPOCH",
        "FENCED_MEMBER_EPOCH",
    ] {
        assert!(
            errors.iter().all(|e| !e.as_str().unwrap().contains(fenced)),
            "{fenced}: {v}"
        );
    }
    // Another node coordinates the group now, and took the member's
    // commits at its epoch there.
    let now = coordinator(&c, rest[0], "gf").unwrap();
    assert_ne!(now, victim);
    use sluice_protocol::kafka::offsets::*;
    let mut s = TcpStream::connect(c.node(now).kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut fetch = OffsetFetchRequest {
        groups: vec![OffsetFetchGroup {
            group_id: "gf".into(),
            member_id: None,
            member_epoch: -1,
            topics: None,
        }],
        require_stable: false,
    };
    let r: OffsetFetchResponse = call(&mut s, 9, &mut fetch);
    let total: i64 = r.groups[0]
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.committed_offset)
        .sum();
    assert_eq!(total, 120, "{r:?}");
}
