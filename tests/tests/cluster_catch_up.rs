//! A follower that was down while the leader appended far more than one
//! node-to-node frame can carry catches up when it returns: the leader
//! sends it the missed entries in calls of bounded size instead of one
//! call that can never be sent. And a partition's records too large for
//! one Raft entry are refused with `MessageTooLarge`, not appended on the
//! leader and then never replicated.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::batch_sized_now;
use sluice_tests::cluster::{TestCluster, segment_batches};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_back_from_far_behind_catches_up_in_bounded_calls() {
    let mut c = TestCluster::start_with(
        3,
        "max_frame_bytes = 134217728\nmax_request_bytes_in_flight = 536870912\n",
    );
    c.create_replicated("lag", 1, 3, TopicConfig::default())
        .await;

    let small = batch_sized_now("s", 1, 10);
    let (leader, _) = c
        .produce_through_leader(&[1, 2, 3], "lag", &small, &[], WAIT)
        .await;
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    c.kill(follower);
    let live: Vec<u64> = (1..=3).filter(|&n| n != follower).collect();

    // 80 MiB in 1 MiB requests while the follower is down: more than one
    // node-to-node frame (64 MiB) can carry.
    let mib = batch_sized_now("m", 1000, 1030);
    for _ in 0..80 {
        c.produce_through_leader(&live, "lag", &mib, &[], WAIT)
            .await;
    }

    // One partition's records beyond what one Raft entry can carry.
    let huge = batch_sized_now("h", 70, 1 << 20);
    let (_, code) = c
        .produce_through_leader(&live, "lag", &huge, &[ErrorCode::MessageTooLarge], WAIT)
        .await;
    assert_eq!(code, ErrorCode::MessageTooLarge, "a 70 MiB entry was taken");

    c.restart(follower);
    let deadline = Instant::now() + WAIT;
    loop {
        let logs: Vec<_> = (1..=3)
            .map(|n| segment_batches(&c.node(n).data_dir, "lag-0"))
            .collect();
        let bytes: Vec<usize> = logs.iter().map(|l| l.iter().map(|b| b.1).sum()).collect();
        if bytes[0] > 80_000_000 && logs.iter().all(|l| *l == logs[0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the returning follower {follower} did not catch up: log bytes per node {bytes:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
