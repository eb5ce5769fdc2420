//! `sluice group list` in a 3-node cluster: each node coordinates some of
//! the groups (the leaders of their group-state partitions), and the list
//! asked at any node names every group of the cluster; with a node down it
//! still prints the others' groups but fails, naming the node it could not
//! ask.
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
