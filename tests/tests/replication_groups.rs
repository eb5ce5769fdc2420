//! Partition groups form once: after a RF=3 topic is created, each
//! partition gets a leader whose epoch (the Raft term) then holds still
//! while nothing fails (one replica, the first of the partition's list,
//! forms each group).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_tests::cluster::TestCluster;

const PARTITIONS: u32 = 6;

/// (leader, leader epoch) of every partition as node `id` sees them.
async fn leaders(c: &TestCluster, id: u64) -> Vec<(Option<u64>, u64)> {
    let Ok(mut conn) = sluice_client::Connection::connect(c.node(id).addr).await else {
        return Vec::new();
    };
    let Ok(m) = conn.metadata(Some(vec!["g".into()])).await else {
        return Vec::new();
    };
    let Some(t) = m.topics.first() else {
        return Vec::new();
    };
    let mut v: Vec<(u32, Option<u64>, u64)> = t
        .partitions
        .iter()
        .map(|p| (p.partition, p.leader, p.leader_epoch))
        .collect();
    v.sort_unstable();
    v.into_iter().map(|(_, l, e)| (l, e)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_groups_leader_and_epoch_hold_still_without_faults() {
    let c = TestCluster::start(3);
    c.create_replicated("g", PARTITIONS, 3, Default::default())
        .await;
    // Every node names the same leader of every partition.
    let deadline = Instant::now() + Duration::from_secs(60);
    let first = loop {
        let seen = [
            leaders(&c, 1).await,
            leaders(&c, 2).await,
            leaders(&c, 3).await,
        ];
        let all_led =
            seen[0].len() == PARTITIONS as usize && seen[0].iter().all(|(l, _)| l.is_some());
        if all_led && seen.iter().all(|s| *s == seen[0]) {
            break seen[0].clone();
        }
        assert!(Instant::now() < deadline, "no agreed leaders: {seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Nothing fails: no partition changes its leader or epoch.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for id in 1..=3 {
            let now = leaders(&c, id).await;
            assert_eq!(
                now, first,
                "node {id} sees a new election after the group formed"
            );
        }
    }
}
