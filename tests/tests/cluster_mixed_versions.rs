//! A cluster in the middle of a rolling upgrade: one node runs a build from
//! before the node-to-node protocol version (its hellos say none, and it
//! closes a connection on a pre-vote request, as builds without the
//! pre-vote do; the broker's `raft-faults` rule `version 0` has a node
//! speak so). The others know it lacks the pre-vote and do not wait for its
//! answer: when the leader dies and the one up-to-date node left must lead,
//! it is elected. Asking the older node for a pre-vote instead would lose
//! every round, while the older node, whose log is behind, cannot win its
//! own elections: the partition would stay without a leader.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_client::Admin;
use sluice_tests::batch_of;
use sluice_tests::cluster::TestCluster;

const TOPIC: &str = "upgrading";
const WAIT: Duration = Duration::from_secs(30);
/// The node of the earlier build.
const OLDER: u64 = 3;

/// Partition 0's log end on node `id` (what that node holds).
async fn log_end(c: &TestCluster, id: u64) -> Option<u64> {
    let mut admin = Admin::connect(&c.node(id).addr.to_string()).await.ok()?;
    let t = admin.topic_status(TOPIC).await.ok()?;
    Some(t.partitions.first()?.log_end_offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_up_to_date_node_is_elected_beside_a_node_without_the_pre_vote() {
    let mut c = TestCluster::start(3);
    assert!(
        c.node(OLDER).log().contains("raft fault injection is on"),
        "the broker must be built with the raft-faults feature"
    );
    // Node 3 restarts as a node of the earlier build.
    c.set_faults(OLDER, "version 0\n");
    c.kill(OLDER);
    c.restart(OLDER);
    c.wait_for_leader_among(&[1, 2, 3], WAIT);
    c.create_replicated(TOPIC, 1, 3, Default::default()).await;
    c.produce_through_leader(&[1, 2, 3], TOPIC, &batch_of(&["a", "b"]), &[], WAIT)
        .await;
    // Every node holds the first records (node 3 among them: the others
    // have talked to it, so they know its version).
    let deadline = Instant::now() + WAIT;
    while log_end(&c, OLDER).await != Some(2) {
        assert!(Instant::now() < deadline, "node {OLDER} did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Node 3 falls behind: cut off while the others take more records.
    c.set_faults(OLDER, "version 0\npartition 1\npartition 2\n");
    c.set_faults(1, &format!("partition {OLDER}\n"));
    c.set_faults(2, &format!("partition {OLDER}\n"));
    // The rules are re-read every 100 ms.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (leader, _) = c
        .produce_through_leader(&[1, 2], TOPIC, &batch_of(&["c", "d", "e"]), &[], WAIT)
        .await;
    let newer = if leader == 1 { 2 } else { 1 };
    assert_eq!(log_end(&c, newer).await, Some(5));
    assert_eq!(
        log_end(&c, OLDER).await,
        Some(2),
        "node {OLDER} was cut off"
    );

    // The leader dies; node 3 is reachable again but behind. Only the
    // other new node can lead, and only if it calls an election.
    c.kill(leader);
    c.set_faults(OLDER, "version 0\n");
    c.set_faults(newer, "");
    let elected = c.wait_partition_leader(&[newer], TOPIC, WAIT).await;
    assert_eq!(elected, newer);
    let (l, _) = c
        .produce_through_leader(&[newer, OLDER], TOPIC, &batch_of(&["f"]), &[], WAIT)
        .await;
    assert_eq!(l, newer);
    // Node 3 follows it again: it catches up to every acknowledged record.
    let deadline = Instant::now() + WAIT;
    while log_end(&c, OLDER).await != Some(6) {
        assert!(Instant::now() < deadline, "node {OLDER} did not follow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
