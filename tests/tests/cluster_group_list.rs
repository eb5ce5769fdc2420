//! `sluice group list` in a 3-node cluster: each node coordinates some of
//! the groups (the leaders of their group-state partitions), and the list
//! asked at any node names every group of the cluster; with a node down it
//! still prints the others' groups but fails, naming the node it could not
//! ask. `group describe` and `group reset-offsets` read each partition's
//! offsets at its leader, which need not be the group's coordinator.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::cluster::TestCluster;
use sluice_tests::{sluice_ok, workspace_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_list_names_the_groups_of_every_coordinator() {
    let mut c = TestCluster::start(3);
    c.wait_for_leader(Duration::from_secs(30));
    c.create_replicated("listed", 1, 3, TopicConfig::default())
        .await;
    c.produce_spread(&[1, 2, 3], "listed", 1, 0..5).await;

    // Groups until at least two nodes coordinate some of them.
    let mut by_node: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for i in 0..40 {
        let group = format!("listed-{i}");
        let node = c.agreed_coordinator(&[1, 2, 3], &group).await;
        by_node.entry(node).or_default().push(group);
        if by_node.len() >= 2 && by_node.values().map(Vec::len).sum::<usize>() >= 3 {
            break;
        }
    }
    assert!(
        by_node.len() >= 2,
        "one coordinator for 40 groups: {by_node:?}"
    );
    let groups: BTreeSet<String> = by_node.values().flatten().cloned().collect();
    let boot = c.node(1).addr.to_string();
    for g in &groups {
        let out = sluice_ok(
            &boot,
            &[
                "consume",
                "listed",
                "--group",
                g,
                "--from-beginning",
                "--timeout-ms",
                "1500",
            ],
        );
        assert_eq!(out.lines().count(), 5, "{g}: {out}");
    }

    let listed = |node: u64| -> BTreeSet<String> {
        sluice_ok(&c.node(node).addr.to_string(), &["group", "list"])
            .lines()
            .filter_map(|l| l.split(' ').next())
            .filter(|g| g.starts_with("listed-"))
            .map(str::to_owned)
            .collect()
    };
    for node in [1, 2, 3] {
        assert_eq!(listed(node), groups, "listed at node {node}");
    }

    // A node down: the others' groups are still printed, and the command
    // fails naming the node it could not ask.
    let (&down, _) = by_node.iter().next().unwrap();
    let up = [1, 2, 3].into_iter().find(|&n| n != down).unwrap();
    c.kill(down);
    let out = Command::new(workspace_binary(
        "sluice-client",
        "sluice",
        "SLUICE_CLI_BIN",
    ))
    .args(["--broker", &c.node(up).addr.to_string(), "group", "list"])
    .env_remove("SLUICE_BROKER")
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded with node {down} down");
    assert!(
        stderr.contains(&format!("node {down}")),
        "stderr does not name node {down}: {stderr}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for g in by_node
        .iter()
        .filter(|(n, _)| **n != down)
        .flat_map(|(_, g)| g)
    {
        assert!(stdout.contains(g.as_str()), "{g} missing: {stdout}");
    }
}

/// The leader of each of `partitions` partitions of `topic`, once node 1's
/// Metadata names one for every partition (30 s at most).
async fn partition_leaders(c: &TestCluster, topic: &str, partitions: u32) -> Vec<u64> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut conn = c.node(1).connect().await;
        let m = conn.metadata(Some(vec![topic.into()])).await.unwrap();
        let leaders: Vec<Option<u64>> = (0..partitions)
            .map(|p| m.leader(topic, p).flatten())
            .collect();
        if leaders.iter().all(Option::is_some) {
            return leaders.into_iter().flatten().collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "partitions of {topic} without a leader: {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_describe_and_reset_read_offsets_at_each_partitions_leader() {
    let c = TestCluster::start(3);
    c.wait_for_leader(Duration::from_secs(30));
    // One replica each: the partitions are spread over the nodes, so
    // whichever node coordinates the group, some partition is led elsewhere.
    c.create_replicated("spread", 3, 1, TopicConfig::default())
        .await;
    let leaders = partition_leaders(&c, "spread", 3).await;
    c.produce_spread(&[1, 2, 3], "spread", 3, 0..30).await;
    let coordinator = c.agreed_coordinator(&[1, 2, 3], "described").await;
    assert!(
        leaders.iter().any(|&l| l != coordinator),
        "every partition led by the coordinator {coordinator}: {leaders:?}"
    );
    let boot = c.node(1).addr.to_string();
    let out = sluice_ok(
        &boot,
        &[
            "consume",
            "spread",
            "--group",
            "described",
            "--from-beginning",
            "--timeout-ms",
            "1500",
        ],
    );
    assert_eq!(out.lines().count(), 30, "{out}");

    let described: serde_json::Value = serde_json::from_str(&sluice_ok(
        &boot,
        &["group", "describe", "described", "--output", "json"],
    ))
    .unwrap();
    let rows = described["partitions"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{described}");
    for row in rows {
        assert_eq!(row["committed_offset"], 10, "{row}");
        assert_eq!(row["log_end_offset"], 10, "{row}");
        assert_eq!(row["lag"], 0, "{row}");
    }

    for (to, want) in [(&["--to-earliest"][..], 0), (&["--to-offset", "4"][..], 4)] {
        let mut args = vec!["group", "reset-offsets", "described", "--topic", "spread"];
        args.extend(to);
        sluice_ok(&boot, &args);
        let at = c
            .committed_offsets(&[1, 2, 3], "described", "spread", 3, |o| {
                o.iter().all(|o| *o == Some(want))
            })
            .await;
        assert_eq!(at, vec![Some(want); 3], "{to:?}");
    }
}
