//! Preferred leaders on a 3-node cluster: a topic's partitions start led by
//! their preferred replicas (the first of each replica list). A node killed
//! and restarted finds its partitions led by the others:
//!
//! - with `leader_rebalance_interval_ms` set, it takes them back by itself
//!   within a few intervals, and every record acknowledged with acks=all
//!   before, during and after is there, once, on the new leaders;
//! - with it off (0), they stay with the others for as long as nobody
//!   asks, and
//!   confluent-kafka's `elect_leaders` (Kafka's ElectLeaders, preferred)
//!   moves them back: `ok` for the partitions moved, `ELECTION_NOT_NEEDED`
//!   for those already led by their preferred replica (and for an unclean
//!   election asked for where leaders are), `UNKNOWN_TOPIC_OR_PARTITION`
//!   for a partition that does not exist.
//!
//! The ElectLeaders part needs the Python of `SLUICE_KAFKA_PYTHON` (see
//! `kafka_clients.rs`) and is skipped without it.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::cluster::TestCluster;
use sluice_tests::decode_records;
use sluice_tests::kafka::{python, run_clients};

const TOPIC: &str = "pref";
const PARTITIONS: u32 = 6;
const WAIT: Duration = Duration::from_secs(60);

/// (leader, replicas) of every partition of `TOPIC` as node `id`'s native
/// Metadata names them; `None` while it cannot answer in full.
async fn partitions(c: &TestCluster, id: u64) -> Option<Vec<(Option<u64>, Vec<u64>)>> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![TOPIC.into()])).await.ok()?;
    let t = m.topics.first()?;
    if t.partitions.len() != PARTITIONS as usize {
        return None;
    }
    Some(
        t.partitions
            .iter()
            .map(|p| (p.leader, p.replicas.clone()))
            .collect(),
    )
}

/// Waits until node `id` names, for every partition, a leader for which
/// `ok(leader, preferred)` holds; returns the leaders. Panics after
/// `within` with what it saw.
async fn wait_leaders(
    c: &TestCluster,
    id: u64,
    within: Duration,
    what: &str,
    ok: impl Fn(u64, u64) -> bool,
) -> Vec<u64> {
    let deadline = Instant::now() + within;
    loop {
        let seen = partitions(c, id).await;
        if let Some(ps) = &seen {
            let leaders: Option<Vec<u64>> =
                ps.iter().map(|(l, r)| l.filter(|&l| ok(l, r[0]))).collect();
            if let Some(l) = leaders {
                return l;
            }
        }
        assert!(Instant::now() < deadline, "{what}: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every value of every partition of `TOPIC`, read from its leader as node
/// `id` names it.
async fn values(c: &TestCluster, id: u64) -> Vec<String> {
    let leaders = wait_leaders(c, id, WAIT, "leaders to read from", |_, _| true).await;
    let mut out = Vec::new();
    for (partition, leader) in leaders.into_iter().enumerate() {
        let mut conn = c.node(leader).connect().await;
        let mut offset = 0;
        loop {
            let f = conn
                .fetch(
                    0,
                    0,
                    4 << 20,
                    vec![FetchPartition {
                        topic: TOPIC.into(),
                        partition: partition as u32,
                        offset,
                        max_bytes: 4 << 20,
                    }],
                )
                .await
                .unwrap();
            let records = decode_records(&f[0].records, offset);
            let Some((last, _)) = records.last() else {
                break;
            };
            offset = last + 1;
            out.extend(
                records
                    .into_iter()
                    .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap()),
            );
        }
    }
    out
}

/// The partitions node 1 prefers; asserts it prefers two (the creation
/// spreads the replica lists' first nodes).
async fn preferred_by_1(c: &TestCluster) -> Vec<u32> {
    let ps = partitions(c, 2).await.unwrap();
    let mine: Vec<u32> = (0..PARTITIONS)
        .filter(|&p| ps[p as usize].1[0] == 1)
        .collect();
    assert_eq!(mine.len(), 2, "{ps:?}");
    mine
}

/// Kills node 1 and restarts it once the others lead every partition;
/// returns after it is back and in sync with every partition it holds
/// (the leaders report it in their in-sync sets).
async fn restart_node_1(c: &mut TestCluster) {
    c.kill(1);
    wait_leaders(c, 2, WAIT, "leaders without node 1", |l, _| l != 1).await;
    c.restart(1);
    let deadline = Instant::now() + WAIT;
    loop {
        let mut conn = c.node(2).connect().await;
        let m = conn.metadata(Some(vec![TOPIC.into()])).await.unwrap();
        if m.topics[0].partitions.iter().all(|p| p.isr.contains(&1)) {
            return;
        }
        assert!(Instant::now() < deadline, "node 1 not back in sync: {m:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_takes_back_the_leadership_of_its_preferred_partitions() {
    let mut c = TestCluster::start_with(3, "leader_rebalance_interval_ms = 1000\n");
    let all = [1, 2, 3];
    c.create_replicated(TOPIC, PARTITIONS, 3, TopicConfig::default())
        .await;
    wait_leaders(&c, 2, WAIT, "preferred leaders at creation", |l, p| l == p).await;
    let mine = preferred_by_1(&c).await;
    c.produce_spread(&all, TOPIC, PARTITIONS, 0..300).await;
    restart_node_1(&mut c).await;
    c.produce_spread(&all, TOPIC, PARTITIONS, 300..600).await;
    // Two passes at most after it is in sync, with their elections.
    let leaders = wait_leaders(
        &c,
        3,
        Duration::from_secs(30),
        "node 1 taking back its preferred partitions",
        |l, p| l == p,
    )
    .await;
    for p in mine {
        assert_eq!(leaders[p as usize], 1);
    }
    c.produce_spread(&all, TOPIC, PARTITIONS, 600..900).await;
    let got = values(&c, 1).await;
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(got.len(), 900, "a record twice or missing");
    let want: BTreeSet<String> = (0..900).map(|i| format!("v-{i}")).collect();
    assert_eq!(unique, want.iter().collect());
}

#[test]
fn elect_leaders_moves_partitions_back_to_their_preferred_replicas() {
    let Some(py) = python() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = TestCluster::start_with_kafka_config(3, "leader_rebalance_interval_ms = 0\n");
    let bootstrap = c.node(2).kafka_addr.unwrap().to_string();
    let mine = rt.block_on(async {
        c.create_replicated(TOPIC, PARTITIONS, 3, TopicConfig::default())
            .await;
        wait_leaders(&c, 2, WAIT, "leaders at creation", |_, _| true).await;
        let mine = preferred_by_1(&c).await;
        restart_node_1(&mut c).await;
        mine
    });
    // Nobody asks: node 1's preferred partitions stay with the others (a
    // few seconds, many heartbeats; node 1 may still win an election of
    // its own after its restart, for any partition).
    std::thread::sleep(Duration::from_secs(3));
    let before = rt.block_on(partitions(&c, 3)).unwrap();
    let moved = before
        .iter()
        .filter(|(l, r)| l.is_some_and(|l| l != r[0]))
        .count();
    assert!(moved > 0, "{before:?}");

    let preferred = |out: &str| -> Value { serde_json::from_str(out).unwrap() };
    let out = preferred(&run_clients(
        &py,
        &["elect-leaders", &bootstrap, TOPIC, "6", "preferred"],
    ));
    for (p, (leader, replicas)) in before.iter().enumerate() {
        let want = if *leader == Some(replicas[0]) {
            "ELECTION_NOT_NEEDED"
        } else {
            "ok"
        };
        assert_eq!(out[format!("{TOPIC}:{p}")], want, "{out}");
    }
    let leaders = rt.block_on(wait_leaders(&c, 3, WAIT, "preferred leaders", |l, p| {
        l == p
    }));
    for p in &mine {
        assert_eq!(leaders[*p as usize], 1);
    }
    // Asked again for every partition of the cluster: nothing to do.
    let out = preferred(&run_clients(
        &py,
        &["elect-leaders", &bootstrap, TOPIC, "-1", "preferred"],
    ));
    for p in 0..PARTITIONS {
        assert_eq!(out[format!("{TOPIC}:{p}")], "ELECTION_NOT_NEEDED", "{out}");
    }
    // Unclean: never needed while there are leaders. A partition past the
    // topic's count is unknown.
    let out = preferred(&run_clients(
        &py,
        &["elect-leaders", &bootstrap, TOPIC, "7", "unclean"],
    ));
    assert_eq!(out[format!("{TOPIC}:0")], "ELECTION_NOT_NEEDED", "{out}");
    assert_eq!(
        out[format!("{TOPIC}:6")],
        // librdkafka's name of UNKNOWN_TOPIC_OR_PARTITION.
        "UNKNOWN_TOPIC_OR_PART",
        "{out}"
    );
}
