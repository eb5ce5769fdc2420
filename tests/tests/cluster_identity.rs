//! Cluster identity: every node-to-node connection begins with a hello
//! naming the caller's cluster and node, and a node refuses those of
//! another cluster. A node of another cluster on a member's address learns
//! nothing of the cluster's metadata and takes no part in its groups; the
//! cluster goes on without it, and the real member rejoins.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::TestBroker;
use sluice_tests::cluster::TestCluster;

/// Waits up to 60 s until `check`, else panics with `what` and the logs
/// of `brokers`.
fn wait_for(what: &str, brokers: &[&TestBroker], mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        if Instant::now() >= deadline {
            let logs: Vec<String> = brokers.iter().map(|b| b.log_tail(60)).collect();
            panic!(
                "timed out waiting for {what}; logs:\n{}",
                logs.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The `/cluster` view of a broker outside a [`TestCluster`].
fn status(b: &TestBroker) -> serde_json::Value {
    let (code, body) = sluice_tests::http_get(b.metrics_addr.unwrap(), "/cluster");
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_of_another_cluster_on_a_members_address_is_refused() {
    let mut c = TestCluster::start(3);
    // Every node speaks for the id derived from the file's members, and
    // keeps it in its data directory.
    let id = c.status(1).unwrap()["cluster_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with('m') && id.len() == 17, "{id}");
    for n in 1..=3 {
        assert_eq!(c.status(n).unwrap()["cluster_id"], id.as_str());
        let stored = std::fs::read_to_string(c.node(n).data_dir.join("cluster/cluster_id"));
        assert_eq!(stored.unwrap(), format!("{id}\n"));
    }
    c.create_replicated("before", 1, 3, TopicConfig::default())
        .await;

    // Node 3 goes away; a node of another cluster starts on its addresses:
    // the same cluster file but for its cluster_id, a fresh data directory.
    let node3 = c.node(3).addr;
    c.kill(3);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cluster.toml");
    let text = std::fs::read_to_string(&c.file).unwrap();
    std::fs::write(&file, format!("cluster_id = \"intruder\"\n{text}")).unwrap();
    let intruder = TestBroker::try_start_at(
        node3,
        &["--node-id", "3", "--cluster", file.to_str().unwrap()],
        &[],
    )
    .unwrap();
    assert_eq!(status(&intruder)["cluster_id"], "intruder");

    // Both sides refuse each other's connections and say why.
    wait_for("the refusals", &[c.node(1), &intruder], || {
        let ours = c.node(1).log();
        let theirs = intruder.log();
        ours.contains("the caller (node 3) to cluster \"intruder\"")
            // (the reason quoted: its quotes escaped)
            && ours.contains("it refused this node: node 3 belongs to cluster \\\"intruder\\\"")
            // (a refusal is logged at most every 10 s: node 1's or node 2's)
            && theirs.contains(&format!(") to cluster \"{id}\"; nodes of different"))
    });

    // The cluster goes on without it: a new topic is created and written
    // with acks=all through its two members.
    c.create_replicated("during", 1, 3, TopicConfig::default())
        .await;
    let batch = sluice_tests::batch_of(&["while away"]);
    let (_, code) = c
        .produce_through_leader(&[1, 2], "during", &batch, &[], Duration::from_secs(60))
        .await;
    assert_eq!(code, sluice_protocol::wire::ErrorCode::None);

    // The intruder learned nothing of the cluster: no controller leader, no
    // topic (before cluster ids it would have been caught up as node 3).
    let seen = status(&intruder);
    assert!(seen["leader"].is_null(), "{seen}");
    assert!(
        seen["metadata"]["topics"]
            .as_object()
            .is_none_or(|t| t.is_empty()),
        "{seen}"
    );
    drop(intruder);

    // The real node 3 comes back and catches up.
    c.restart(3);
    c.wait_until(
        Duration::from_secs(60),
        "node 3 to learn of \"during\"",
        |c| c.topic(3, "during").is_some(),
    );
    c.wait_for_leader(Duration::from_secs(60));
}
