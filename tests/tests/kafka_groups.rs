//! Consumer groups through the Kafka listener, with Kafka's own clients:
//! kcat's balanced consumer, a confluent-kafka consumer that commits and a
//! second one that resumes from the commit, and two kafka-python (then
//! aiokafka) consumers that split a topic's partitions, one taking over
//! when the other leaves.
//!
//! Needs kcat and the Python of `SLUICE_KAFKA_PYTHON` (installed by
//! `.ci/run`); skipped without them unless `SLUICE_REQUIRE_KAFKA_CLIENTS=1`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use serde_json::{Value, json};
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::{kcat, python, run_clients, run_kcat};
use sluice_tests::{TestBroker, batch_of, create_topic};

async fn produce_values(b: &TestBroker, topic: &str, partition: u32, values: &[String]) {
    let mut c = b.connect().await;
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    let batch = batch_of(&refs);
    c.produce(Acks::Leader, 5000, &[(topic, partition, &batch)])
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_consumes_in_a_group() {
    if !kcat() {
        return;
    }
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "kg", 2, TopicConfig::default()).await;
    let values: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    produce_values(&b, "kg", 0, &values[..20]).await;
    produce_values(&b, "kg", 1, &values[20..]).await;
    let addr = b.kafka_addr.unwrap().to_string();
    let out = run_kcat(
        &[
            "-b",
            &addr,
            "-G",
            "kcat-group",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%s\n",
            "kg",
        ],
        b"",
    );
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    let mut want: Vec<&str> = values.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    // The group is known to the coordinator (and empty now kcat left).
    let d = c.describe_groups(vec!["kcat-group".into()]).await.unwrap();
    assert_eq!(d.groups[0].state, "Empty", "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_consumer_commits_in_a_group_and_the_next_one_resumes() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "cg", 1, TopicConfig::default()).await;
    let first: Vec<String> = (0..10).map(|i| format!("a{i}")).collect();
    produce_values(&b, "cg", 0, &first).await;
    let addr = b.kafka_addr.unwrap().to_string();
    let out = run_clients(&py, &["group-commit", &addr, "cg", "g1", "10"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["values"], json!(first));
    assert_eq!(v["committed"], json!({"0": 10}));
    // The native protocol sees the commit.
    let fetched = c.offset_fetch("g1", None).await.unwrap();
    assert_eq!(fetched.partitions[0].offset, Some(10), "{fetched:?}");
    // A new consumer of the group starts after the commit.
    let second: Vec<String> = (0..5).map(|i| format!("b{i}")).collect();
    produce_values(&b, "cg", 0, &second).await;
    let out = run_clients(&py, &["group-commit", &addr, "cg", "g1", "5"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["values"], json!(second));
    assert_eq!(v["committed"], json!({"0": 15}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_split_the_partitions_and_one_takes_over_when_the_other_leaves() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "pair", 4, TopicConfig::default()).await;
    let addr = b.kafka_addr.unwrap().to_string();
    for client in ["kafka-python", "aiokafka"] {
        let group = format!("pair-{client}");
        let out = run_clients(&py, &["group-pair", client, &addr, "pair", &group]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["alone"], json!([0, 1, 2, 3]), "{client}: {out}");
        let a = v["split"][0].as_array().unwrap();
        let b2 = v["split"][1].as_array().unwrap();
        assert!(!a.is_empty() && !b2.is_empty(), "{client}: {out}");
        assert_eq!(a.len() + b2.len(), 4, "{client}: {out}");
        assert_eq!(v["after"], json!([0, 1, 2, 3]), "{client}: {out}");
    }
}

/// A static member's process restarts (librdkafka, `group.instance.id`): the
/// restarted consumer gets its partitions back and the other member sees no
/// rebalance. With cooperative-sticky the restarted one's subscription bytes
/// differ from those it last joined with (they no longer name the partitions
/// it owned); before that was told apart from a change of protocol, the
/// other member saw a rebalance there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_static_member_takes_its_partitions_back_without_a_rebalance() {
    let Some(py) = python() else { return };
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "static", 4, TopicConfig::default()).await;
    let addr = b.kafka_addr.unwrap().to_string();
    for strategy in ["range", "cooperative-sticky"] {
        let group = format!("static-{strategy}");
        let out = run_clients(&py, &["static-restart", &addr, "static", &group, strategy]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["errors"], json!([]), "{strategy}: {out}");
        assert_eq!(
            v["after"]["a2_owned"], v["before"]["a_owned"],
            "{strategy}: the restarted member's partitions: {out}"
        );
        assert_eq!(
            v["after"]["b"], v["before"]["b"],
            "{strategy}: the other member saw a rebalance: {out}"
        );
        assert_eq!(v["after"]["b_owned"], v["before"]["b_owned"], "{out}");
        let d = c.describe_groups(vec![group]).await.unwrap();
        assert_eq!(d.groups[0].state, "Stable", "{d:?}");
    }
}

/// OffsetCommit on the Kafka port is fenced by the group's generation and
/// membership, as Kafka's coordinator does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_commits_are_fenced_by_generation_and_member() {
    use sluice_protocol::kafka::error_code::code;
    use sluice_protocol::kafka::groups::{
        JoinGroupRequest, JoinGroupResponse, SyncAssignment, SyncGroupRequest, SyncGroupResponse,
    };
    use sluice_protocol::kafka::offsets::OffsetCommitResponse;
    use sluice_tests::kafka::call;

    let b = TestBroker::start_with_args(&["--config", &{
        let p = std::env::temp_dir().join(format!("kafka-fence-{}.toml", std::process::id()));
        std::fs::write(&p, "group_initial_rebalance_delay_ms = 0\n").unwrap();
        p.display().to_string()
    }]);
    let mut c = b.connect().await;
    create_topic(&mut c, "fenced", 1, TopicConfig::default()).await;
    let addr = b.kafka_addr.unwrap();
    let result = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut join = JoinGroupRequest {
            session_timeout_ms: 10_000,
            ..sluice_tests::kafka::classic_join("fg")
        };
        let commit_at = |s: &mut std::net::TcpStream,
                         version: i16,
                         generation_id: i32,
                         member_id: &str| {
            let mut req =
                sluice_tests::kafka::commit_request("fg", generation_id, member_id, "fenced", 5);
            req.topics[0].partitions[0].commit_timestamp_ms = 1_700_000_000_000;
            let r: OffsetCommitResponse = call(s, version, &mut req);
            r.topics[0].partitions[0].error_code
        };
        let commit = |s: &mut std::net::TcpStream, generation_id: i32, member_id: &str| {
            commit_at(s, 8, generation_id, member_id)
        };
        // v4+: the first join asks for a member id.
        let first: JoinGroupResponse = call(&mut s, 7, &mut join.clone());
        assert_eq!(first.error_code, code::MEMBER_ID_REQUIRED);
        join.member_id = first.member_id.clone();
        let joined: JoinGroupResponse = call(&mut s, 7, &mut join);
        assert_eq!(joined.error_code, 0, "{joined:?}");
        // While the generation awaits its assignment, commits must wait.
        let early = commit(&mut s, joined.generation_id, &joined.member_id);
        assert_eq!(early, code::REBALANCE_IN_PROGRESS);
        let mut sync = SyncGroupRequest {
            group_id: "fg".into(),
            generation_id: joined.generation_id,
            member_id: joined.member_id.clone(),
            group_instance_id: None,
            protocol_type: Some("consumer".into()),
            protocol_name: Some("range".into()),
            assignments: vec![SyncAssignment {
                member_id: joined.member_id.clone(),
                assignment: vec![1, 2, 3],
            }],
        };
        let synced: SyncGroupResponse = call(&mut s, 5, &mut sync);
        assert_eq!(synced.error_code, 0);
        assert_eq!(synced.assignment, vec![1, 2, 3]);
        assert_eq!(commit(&mut s, joined.generation_id, &joined.member_id), 0);
        // The oldest versions, as older clients (sarama) still send them:
        // v1 commits as the member (with a per-partition timestamp, ignored),
        // v0 outside any generation, refused while the group has members.
        assert_eq!(
            commit_at(&mut s, 1, joined.generation_id, &joined.member_id),
            0
        );
        assert_eq!(
            commit_at(&mut s, 1, joined.generation_id + 1, &joined.member_id),
            code::ILLEGAL_GENERATION
        );
        assert_ne!(
            commit_at(&mut s, 0, joined.generation_id, &joined.member_id),
            0
        );
        (
            commit(&mut s, joined.generation_id + 1, &joined.member_id),
            commit(&mut s, joined.generation_id, "someone-else"),
            commit(&mut s, -1, ""),
            joined,
        )
    })
    .await
    .unwrap();
    let (stale, stranger, simple, _joined) = result;
    assert_eq!(stale, code::ILLEGAL_GENERATION);
    assert_eq!(stranger, code::UNKNOWN_MEMBER_ID);
    // A simple commit while the group has a member is refused too.
    assert_ne!(simple, 0);
}

/// With the broker's committed offsets at `max_committed_offsets`, a new
/// group's consumer, of either group protocol, is told at once: librdkafka
/// hands the application an error instead of rejoining in a loop (a join
/// that succeeded and a SyncGroup refused every time: thousands of
/// rebalances a second, three log lines each, and nothing the application
/// could see). The refusal is logged once, naming the setting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_past_the_committed_offsets_limit_is_told_not_looped() {
    use std::io::Write;
    let Some(py) = python() else { return };
    let mut f = tempfile::NamedTempFile::new().unwrap();
    writeln!(f, "max_committed_offsets = 4").unwrap();
    let path = f.path().display().to_string();
    let b = TestBroker::start_with_args(&["--config", &path]);
    let mut c = b.connect().await;
    create_topic(&mut c, "full", 4, TopicConfig::default()).await;
    produce_values(&b, "full", 0, &["x".to_owned()]).await;
    let commit = |partition| sluice_protocol::wire::offset_commit::CommitPartition {
        topic: "full".into(),
        partition,
        offset: 1,
        metadata: String::new(),
    };
    let r = c
        .offset_commit("filler", (0..4).map(commit).collect())
        .await
        .unwrap();
    assert!(r.partitions.iter().all(|p| p.error_code.is_ok()), "{r:?}");
    let addr = b.kafka_addr.unwrap().to_string();
    for protocol in ["classic", "consumer"] {
        let out = run_clients(
            &py,
            &[
                "group-refused",
                &addr,
                "full",
                &format!("new-{protocol}"),
                protocol,
                "6",
            ],
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["read"], json!(0), "{protocol}: {v}");
        let errors = v["errors"].as_array().unwrap();
        assert!(
            !errors.is_empty(),
            "{protocol}: the application saw no error"
        );
        let told = |s: &str| errors.iter().any(|e| e.as_str().unwrap().contains(s));
        match protocol {
            "classic" => assert!(told("Policy violation"), "{v}"),
            _ => assert!(told("maximum size"), "{v}"),
        }
    }
    let log = b.log();
    let formed = log.matches("generation formed").count();
    assert_eq!(formed, 0, "no generation of a group that cannot be stored");
    assert_eq!(
        log.matches("raise max_committed_offsets").count(),
        1,
        "one warning a minute:\n{}",
        b.log_tail(40)
    );
}
