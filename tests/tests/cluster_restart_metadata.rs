//! A node restarted after a controller snapshot that still listed a topic
//! deleted since does not bring the topic back: at a restart the metadata
//! is the snapshot's until the entries after it are applied again, and
//! the node opens no partition from it before then (it would create the
//! deleted topic's directories again, and its store would keep them), nor
//! serves a client (its first Metadata answer already lists the topics
//! created after the snapshot and not the deleted one).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_tests::cluster::TestCluster;
use sluice_tests::create_topic;

const WAIT: Duration = Duration::from_secs(60);

/// The node restarted.
const NODE: u64 = 3;

/// Directories of `topic`'s partitions in node `NODE`'s data directory.
fn dirs(c: &TestCluster, topic: &str) -> Vec<String> {
    let prefix = format!("{topic}-");
    let mut out: Vec<String> = std::fs::read_dir(&c.node(NODE).data_dir)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(&prefix) && !n.contains('.'))
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_deleted_after_the_controller_snapshot_stays_deleted_after_a_restart() {
    let mut c = TestCluster::start_with(3, "default_replication_factor = 3\n");
    c.wait_for_leader(WAIT);
    let mut conn = c.node(1).connect().await;
    create_topic(&mut conn, "victim", 4, Default::default()).await;
    c.wait_until(WAIT, "victim on the node", |c| dirs(c, "victim").len() == 4);

    // Enough controller entries (creations, their leaders' reports,
    // deletions) for a snapshot, taken while "victim" exists.
    let snapshot = c.node(NODE).data_dir.join("cluster").join("snapshot");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut i = 0;
    while !snapshot.exists() {
        assert!(
            Instant::now() < deadline,
            "no controller snapshot after {i} topics"
        );
        let name = format!("pad{i}");
        create_topic(&mut conn, &name, 12, Default::default()).await;
        let r = conn.delete_topics(vec![name]).await.unwrap();
        assert!(r.results[0].error_code.is_ok(), "{r:?}");
        i += 1;
    }
    let r = conn.delete_topics(vec!["victim".into()]).await.unwrap();
    assert!(r.results[0].error_code.is_ok(), "{r:?}");
    c.wait_until(WAIT, "victim's directories removed", |c| {
        dirs(c, "victim").is_empty()
    });

    // A topic created after the snapshot.
    create_topic(&mut conn, "late", 1, Default::default()).await;
    c.wait_until(WAIT, "late on the node", |c| dirs(c, "late").len() == 1);

    c.kill(NODE);
    c.restart(NODE);
    // The first answer of the restarted node is already the caught-up
    // metadata: it serves clients only once it has caught up, and says it
    // is not ready until then.
    let mut first = c.node(NODE).connect().await;
    let listed = first.metadata(None).await.unwrap();
    let names: Vec<&str> = listed.topics.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"late") && !names.contains(&"victim"),
        "{names:?}"
    );
    c.wait_until(WAIT, "the metadata applied again, without victim", |c| {
        c.status(NODE).is_some() && c.topic(NODE, "victim").is_none()
    });
    // Give a late opening time to show.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(dirs(&c, "victim"), Vec::<String>::new());
    let mut conn = c.node(NODE).connect().await;
    let listed = conn.metadata(None).await.unwrap();
    assert!(
        listed.topics.iter().all(|t| t.name != "victim"),
        "{:?}",
        listed.topics
    );

    // The name is free: created again with another partition count, the
    // node holds exactly that.
    create_topic(&mut conn, "victim", 2, Default::default()).await;
    c.wait_until(WAIT, "victim again on the node", |c| {
        dirs(c, "victim").len() == 2
    });
    assert_eq!(dirs(&c, "victim"), ["victim-0", "victim-1"]);
    let listed = conn.metadata(Some(vec!["victim".into()])).await.unwrap();
    assert_eq!(listed.topics[0].partitions.len(), 2, "{listed:?}");
}
