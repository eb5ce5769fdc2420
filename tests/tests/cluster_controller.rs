//! A 3-node cluster's controller: topic changes sent to any node are
//! committed by the controller leader and applied on every node.

use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks as WireAcks;
use sluice_tests::cluster::TestCluster;
use sluice_tests::create_topic;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_created_and_deleted_through_a_follower_reach_every_node() {
    let c = TestCluster::start(3);
    let leader = c.wait_for_leader(WAIT);
    let follower = (1..=3).find(|&i| i != leader).expect("a follower");
    let mut conn = c.node(follower).connect().await;

    // Forwarded to the leader; answered once applied on the follower.
    create_topic(&mut conn, "spread", 3, Default::default()).await;
    let on_follower = c
        .topic(follower, "spread")
        .expect("applied before the answer");
    c.wait_until(WAIT, "the topic on every node", |c| {
        (1..=3).all(|id| c.topic(id, "spread").is_some())
    });
    for id in 1..=3 {
        assert_eq!(
            c.topic(id, "spread"),
            Some(on_follower.clone()),
            "node {id}"
        );
    }
    // Replication factor 1 (the default): one replica per partition, the
    // partitions' replicas spread over the three nodes.
    let replicas: Vec<u64> = on_follower["replicas"]
        .as_array()
        .expect("replica lists")
        .iter()
        .map(|r| {
            let r = r.as_array().expect("a replica list");
            assert_eq!(r.len(), 1);
            r[0].as_u64().expect("node id")
        })
        .collect();
    let mut sorted = replicas.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [1, 2, 3], "{replicas:?}");

    // One partition, one replica: only its node holds its directory.
    create_topic(&mut conn, "solo", 1, Default::default()).await;
    c.wait_until(WAIT, "solo on every node", |c| {
        (1..=3).all(|id| c.topic(id, "solo").is_some())
    });
    let solo = c.topic(leader, "solo").expect("solo");
    let host = solo["replicas"][0][0].as_u64().expect("host");
    assert_ne!(
        solo["topic_id"], on_follower["topic_id"],
        "every topic has its own id"
    );
    for id in 1..=3 {
        let dir = c.node(id).data_dir.join("solo-0");
        assert_eq!(dir.is_dir(), id == host, "node {id}, host {host}");
    }

    // A second create of the same name is refused by the state machine.
    let again = conn
        .create_topics(vec![sluice_protocol::wire::create_topics::NewTopic {
            name: "solo".into(),
            partitions: 1,
            config: Default::default(),
            replication_factor: None,
        }])
        .await
        .expect("create_topics");
    assert_eq!(again.results[0].error_code, ErrorCode::TopicAlreadyExists);
    // So is a name that differs from a topic's only in '.' and '_', as in
    // Kafka.
    create_topic(&mut conn, "solo.eu", 1, Default::default()).await;
    let colliding = conn
        .create_topics(vec![sluice_protocol::wire::create_topics::NewTopic {
            name: "solo_eu".into(),
            partitions: 1,
            config: Default::default(),
            replication_factor: None,
        }])
        .await
        .expect("create_topics");
    let r = &colliding.results[0];
    assert_eq!(r.error_code, ErrorCode::InvalidTopicName, "{r:?}");
    assert!(c.topic(follower, "solo_eu").is_none());
    // Also when the two names come in one request (the second is checked
    // before this node may have applied the first).
    let new = |name: &str| sluice_protocol::wire::create_topics::NewTopic {
        name: name.into(),
        partitions: 1,
        config: Default::default(),
        replication_factor: None,
    };
    let pair = conn
        .create_topics(vec![new("pair.eu"), new("pair_eu")])
        .await
        .expect("create_topics");
    let codes: Vec<ErrorCode> = pair.results.iter().map(|r| r.error_code).collect();
    assert_eq!(
        codes,
        [ErrorCode::None, ErrorCode::InvalidTopicName],
        "{pair:?}"
    );
    c.wait_until(WAIT, "pair.eu everywhere", |c| {
        (1..=3).all(|id| c.topic(id, "pair.eu").is_some())
    });
    assert!((1..=3).all(|id| c.topic(id, "pair_eu").is_none()));

    // Delete through another node: gone from every node's metadata and disk.
    let other = (1..=3).find(|&i| i != follower).expect("another node");
    let mut conn2 = c.node(other).connect().await;
    let r = conn2
        .delete_topics(vec!["solo".into()])
        .await
        .expect("delete_topics");
    assert_eq!(
        r.results[0].error_code,
        ErrorCode::None,
        "{:?}",
        r.results[0].message
    );
    c.wait_until(WAIT, "solo gone everywhere", |c| {
        (1..=3).all(|id| c.topic(id, "solo").is_none())
    });
    c.wait_until(WAIT, "solo's directory removed", |c| {
        !c.node(host).data_dir.join("solo-0").exists()
    });
    let r = conn2
        .delete_topics(vec!["solo".into()])
        .await
        .expect("delete_topics");
    assert_eq!(r.results[0].error_code, ErrorCode::UnknownTopicOrPartition);

    // Producing to the deleted topic, to one that never existed, or past a
    // topic's partitions is `UnknownTopicOrPartition` on every node (as on
    // a single broker, and as fetch answers): clients refresh their
    // metadata and give up, where the retriable `LeaderNotAvailable` kept
    // them retrying.
    for id in 1..=3 {
        let mut conn = c.node(id).connect().await;
        for (topic, partition) in [("solo", 0), ("never-was", 0), ("spread", 3)] {
            let r = conn
                .produce(
                    WireAcks::All,
                    2000,
                    &[(topic, partition, &sluice_tests::batch_of(&["x"]))],
                )
                .await
                .expect("produce")
                .expect("an answer");
            let p = &r.partitions[0];
            assert_eq!(
                p.error_code,
                ErrorCode::UnknownTopicOrPartition,
                "node {id}, {topic}-{partition}: {p:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_leader_exposes_its_role_and_rpc_counts() {
    let mut c = TestCluster::start(3);
    let leader = c.wait_for_leader(WAIT);
    for id in 1..=3 {
        let (code, body) =
            sluice_tests::http_get(c.node(id).metrics_addr.expect("metrics"), "/metrics");
        assert_eq!(code, 200);
        let is_leader = sluice_tests::sample(&body, "sluice_controller_leader").expect("gauge");
        assert_eq!(is_leader, if id == leader { 1.0 } else { 0.0 }, "node {id}");
        let with_quorum =
            sluice_tests::sample(&body, "sluice_controller_leader_with_quorum").expect("gauge");
        assert_eq!(with_quorum, is_leader, "node {id}");
        promtool_check(&body);
        if id == leader {
            let ok = sluice_tests::sample(
                &body,
                "sluice_raft_rpc_total{kind=\"append_entries\",result=\"ok\"}",
            )
            .expect("rpc counter");
            assert!(ok > 0.0, "a leader heartbeats its followers");
        }
    }
    // Partition leadership: every partition led once, none short of
    // replicas; then the node leading some loses both others, and says
    // that it leads them without a quorum (acks=all cannot commit).
    c.create_replicated("q", 6, 3, Default::default()).await;
    let gauge = |c: &TestCluster, id: u64, name: &str| {
        let (_, body) =
            sluice_tests::http_get(c.node(id).metrics_addr.expect("metrics"), "/metrics");
        sluice_tests::sample(&body, name).unwrap_or_else(|| panic!("{name} on node {id}"))
    };
    let deadline = std::time::Instant::now() + WAIT;
    let led = loop {
        let led: Vec<f64> = (1..=3)
            .map(|id| gauge(&c, id, "sluice_partitions_led"))
            .collect();
        let under: f64 = (1..=3)
            .map(|id| gauge(&c, id, "sluice_partitions_under_replicated"))
            .sum();
        if led.iter().sum::<f64>() == 6.0 && under == 0.0 {
            break led;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "led {led:?}, under-replicated {under}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let keeper = (1..=3u64)
        .find(|&id| led[id as usize - 1] > 0.0)
        .expect("a leader");
    assert_eq!(gauge(&c, keeper, "sluice_partitions_without_quorum"), 0.0);
    for id in (1..=3).filter(|&id| id != keeper) {
        c.kill(id);
    }
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let led = gauge(&c, keeper, "sluice_partitions_led");
        let without = gauge(&c, keeper, "sluice_partitions_without_quorum");
        let under = gauge(&c, keeper, "sluice_partitions_under_replicated");
        let controller = gauge(&c, keeper, "sluice_controller_leader_with_quorum");
        if led > 0.0 && without == led && under == led && controller == 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node {keeper}: led {led}, without quorum {without}, under-replicated {under}, controller with quorum {controller}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `promtool check metrics` accepts the scrape (skipped when promtool is
/// missing, unless `SLUICE_REQUIRE_PROMTOOL=1`, as in CI).
fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let have = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("SLUICE_REQUIRE_PROMTOOL").as_deref() != Ok("1"),
            "SLUICE_REQUIRE_PROMTOOL=1 but promtool is not installed"
        );
        return;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A controller leader that hangs (SIGSTOP: no crash, no reset, its
/// connections stay open) is replaced within an election, and a topic
/// created through another node meanwhile is committed by the new leader:
/// the forward to the hung one is given up when the follower sees the new
/// leader. It waited out the whole controller timeout on the hung node and
/// answered `ControllerUnavailable` (with `REQUEST_TIMED_OUT` for Kafka
/// clients, which do not retry it). (The answer may still take up to the
/// timeout when a new partition is placed on the hung node: it waits for
/// that partition's leader.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_while_the_controller_leader_hangs_goes_to_the_next_leader() {
    let timeout = 20_000;
    let c = TestCluster::start_with(3, &format!("controller_timeout_ms = {timeout}"));
    let leader = c.wait_for_leader(WAIT);
    let follower = (1..=3).find(|&i| i != leader).expect("a follower");
    let mut conn = c.node(follower).connect().await;
    create_topic(&mut conn, "before", 1, Default::default()).await;
    c.node(leader).pause();
    let started = std::time::Instant::now();
    let r = conn
        .create_topics(vec![sluice_protocol::wire::create_topics::NewTopic {
            name: "during".into(),
            partitions: 2,
            config: Default::default(),
            replication_factor: None,
        }])
        .await
        .expect("create_topics");
    let took = started.elapsed();
    let live: Vec<u64> = (1..=3).filter(|&i| i != leader).collect();
    let new_leader = c.wait_for_leader_among(&live, WAIT);
    c.node(leader).resume();
    assert_eq!(
        r.results[0].error_code,
        ErrorCode::None,
        "{r:?} after {took:?}"
    );
    assert_ne!(new_leader, leader);
    println!("created with the controller leader hung in {took:?}");
    c.wait_until(WAIT, "the topic on every node, the resumed one too", |c| {
        (1..=3).all(|id| c.topic(id, "during").is_some())
    });
}

/// A node that hangs (SIGSTOP: its connections stay open and the kernel
/// still accepts new ones) gets no replica of a topic created through
/// another node once the controller leader's heartbeats to it have gone
/// unanswered for the broker session timeout (9 s): the leader adds the
/// peers it cannot reach to those the proposing node avoids, which a node
/// that calls the hung one for nothing cannot tell is hung. Replicas placed
/// there made the creation wait for leaders that could not be elected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_replicas_are_kept_off_a_hung_node() {
    let c = TestCluster::start(3);
    let leader = c.wait_for_leader(WAIT);
    let via = (1..=3).find(|&i| i != leader).expect("a follower");
    let hung = (1..=3).find(|&i| i != leader && i != via).expect("another");
    let mut conn = c.node(via).connect().await;
    c.node(hung).pause();
    // The broker session timeout, and a margin for the heartbeat that
    // starts it.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let started = std::time::Instant::now();
    let r = conn
        .create_topics(vec![sluice_protocol::wire::create_topics::NewTopic {
            name: "spread".into(),
            partitions: 6,
            config: Default::default(),
            replication_factor: Some(1),
        }])
        .await
        .expect("create_topics");
    let took = started.elapsed();
    c.node(hung).resume();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
    let topic = c.topic(via, "spread").expect("applied before the answer");
    let hosts: Vec<u64> = topic["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .map(|p| p[0].as_u64().expect("host"))
        .collect();
    assert_eq!(hosts.len(), 6, "{topic}");
    assert!(
        !hosts.contains(&hung),
        "a partition placed on hung node {hung}: {hosts:?} (created in {took:?})"
    );
}
