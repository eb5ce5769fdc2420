//! The partition groups' Raft timing comes from the broker config: with an
//! election timeout of 3–4 s, no survivor elects a new partition leader
//! within 2 s of the leader's SIGKILL (with the 150–300 ms defaults one is
//! elected well within a second), and one is elected after.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_client::Connection;
use sluice_tests::cluster::TestCluster;

async fn leader_seen_by(c: &TestCluster, id: u64) -> Option<u64> {
    let mut conn = Connection::connect(c.node(id).addr).await.ok()?;
    let m = conn.metadata(Some(vec!["slow".into()])).await.ok()?;
    m.topics.first()?.partitions.first()?.leader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_election_timeouts_are_taken_from_the_config() {
    let mut c = TestCluster::start_with(
        3,
        "raft_election_timeout_min_ms = 3000\nraft_election_timeout_max_ms = 4000",
    );
    c.create_replicated("slow", 1, 3, Default::default()).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let leader = loop {
        let mut seen = Vec::new();
        for id in 1..=3 {
            seen.push(leader_seen_by(&c, id).await);
        }
        if let Some(Some(l)) = seen.first()
            && seen.iter().all(|s| *s == Some(*l))
        {
            break *l;
        }
        assert!(Instant::now() < deadline, "no agreed leader: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    c.kill(leader);
    let killed = Instant::now();
    let survivors: Vec<u64> = (1..=3).filter(|&id| id != leader).collect();
    let elected = loop {
        let mut new = None;
        for &id in &survivors {
            if let Some(l) = leader_seen_by(&c, id).await
                && l != leader
            {
                new = Some(l);
            }
        }
        if new.is_some() {
            break killed.elapsed();
        }
        assert!(killed.elapsed() < Duration::from_secs(30), "no new leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        elected >= Duration::from_secs(2),
        "a new leader after {elected:?}: the 3-4 s election timeout was not used"
    );
}
