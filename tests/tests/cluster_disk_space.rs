//! A cluster node below its free-space floor (`min_free_bytes`): as a
//! partition leader it refuses produce requests with `DiskFull`; as a
//! follower it refuses entries and stays a quiet, lagging follower — its
//! Raft cores keep running, it starts no elections, and the other replicas
//! go on committing. Once it has space again it catches up.
//!
//! The floor is relative to the file system's free space, so a floor of a
//! pebibyte makes any disk "low" without filling one (the tmpfs tests in
//! `disk_full.rs` fill real ones).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::cluster::TestCluster;
use sluice_tests::{batch_of, read_partition};

const PARTITIONS: u32 = 6;

/// Every partition's leader of `topic`, once node 1's Metadata names one
/// for each.
async fn leaders(c: &TestCluster, topic: &str) -> BTreeMap<u32, u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut conn = c.node(1).connect().await;
        let m = conn.metadata(Some(vec![topic.into()])).await.unwrap();
        let found: BTreeMap<u32, u64> = m.topics[0]
            .partitions
            .iter()
            .filter_map(|p| Some((p.partition, p.leader?)))
            .collect();
        if found.len() == PARTITIONS as usize {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no leader for every partition: {m:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Produces `value` with acks=all to `partition` of `topic` through node
/// `node`: the error code and message.
async fn produce(
    c: &TestCluster,
    node: u64,
    topic: &str,
    partition: u32,
    value: &str,
) -> (ErrorCode, String) {
    let mut conn = c.node(node).connect().await;
    let batch = batch_of(&[value]);
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        conn.produce(Acks::All, 10_000, &[(topic, partition, &batch)]),
    )
    .await
    .expect("a produce is answered")
    .expect("produce request")
    .expect("acks=all has a response");
    let p = &r.partitions[0];
    (p.error_code, p.message.clone().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_below_its_free_space_floor_refuses_produce_as_leader_and_entries_as_follower() {
    // Node 3's floor is above any disk's free space; the others have none.
    let mut c = TestCluster::start_with_node_configs(
        3,
        "",
        &[
            (1, "min_free_bytes = 0"),
            (2, "min_free_bytes = 0"),
            (3, "min_free_bytes = 1125899906842624"),
        ],
    );
    c.create_replicated("t", PARTITIONS, 3, TopicConfig::default())
        .await;
    let first = leaders(&c, "t").await;
    assert!(
        first.values().any(|&l| l == 3) && first.values().any(|&l| l != 3),
        "node 3 leads some partitions, not all: {first:?}"
    );

    // Rounds of produce to every partition through its leader.
    let mut acked: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for round in 0..20 {
        for (&p, &leader) in &first {
            let value = format!("p{p}-r{round}");
            let (code, message) = produce(&c, leader, "t", p, &value).await;
            if leader == 3 {
                assert_eq!(code, ErrorCode::DiskFull, "{message}");
                assert!(message.contains("min_free_bytes"), "{message}");
            } else {
                // Committed by the leader and the other follower.
                assert_eq!(
                    code,
                    ErrorCode::None,
                    "partition {p} round {round}: {message}\n{}\n{}\n{}",
                    c.node(1).log_tail(40),
                    c.node(2).log_tail(40),
                    c.node(3).log_tail(40)
                );
                acked.entry(p).or_default().push(value);
            }
        }
    }
    // Node 3 refused entries, and disturbed nobody: no leader changed (a
    // follower that hears its leader starts no election), and no core
    // stopped anywhere.
    assert_eq!(leaders(&c, "t").await, first);
    let log3 = c.node(3).log();
    assert!(
        log3.contains("refusing partition entries from leaders: disk space low"),
        "{}",
        c.node(3).log_tail(30)
    );
    assert!(
        log3.contains("refusing produce requests: disk space low"),
        "{}",
        c.node(3).log_tail(30)
    );
    for id in 1..=3 {
        let log = c.node(id).log();
        assert!(
            !log.contains("Raft core stopped") && !log.contains("panicked"),
            "node {id}: {}",
            c.node(id).log_tail(30)
        );
    }

    // Space again: node 3 takes entries once more and catches up. With
    // the leader's other follower gone, a commit needs node 3, which must
    // first store everything it refused.
    std::fs::write(
        c.config_file(3),
        "controller_timeout_ms = 3000\nmin_free_bytes = 0\n",
    )
    .unwrap();
    c.kill(3);
    c.restart(3);
    let (&p, &leader) = first.iter().find(|&(_, &l)| l != 3).unwrap();
    let other = if leader == 1 { 2 } else { 1 };
    c.kill(other);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (code, message) = produce(&c, leader, "t", p, "after").await;
        if code == ErrorCode::None {
            acked.entry(p).or_default().push("after".to_owned());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "node 3 never caught up on partition {p}: {code} {message}\n{}",
            c.node(3).log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut conn = c.node(leader).connect().await;
    let values: Vec<String> = read_partition(&mut conn, "t", p, 0)
        .await
        .into_iter()
        .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap())
        .collect();
    assert_eq!(values, acked[&p]);
}
