//! Reads of a leader's state never go back in time on a 3-node cluster. A
//! partition leader paused (SIGSTOP) while another is elected and takes
//! more records, then resumed, answers a ListOffsets that reached it during
//! the pause, and the ones right after, with `NotLeaderForPartition` or the
//! new end, never with its old high watermark; a group coordinator paused
//! while the group's offsets move on elsewhere answers OffsetFetch with
//! `NotCoordinator` or the new offset, never the old one.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, OffsetSpec};
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::batch_of;
use sluice_tests::cluster::TestCluster;

const WAIT: Duration = Duration::from_secs(60);

/// One acks=all request of `n` records to partition 0 of `topic` through
/// its leader among `live`; returns the leader.
async fn produce(c: &TestCluster, live: &[u64], topic: &str, n: usize) -> u64 {
    let values: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    c.produce_through_leader(live, topic, &batch_of(&values), &[], WAIT)
        .await
        .0
}

/// A latest-offset look-up of partition 0 of `topic`.
fn latest(topic: &str) -> Vec<ListOffsetsPartition> {
    vec![ListOffsetsPartition {
        topic: topic.into(),
        partition: 0,
        spec: OffsetSpec::Latest,
    }]
}

/// Asserts a ListOffsets answer is a refusal or at least `end`.
fn not_older(r: &sluice_protocol::wire::list_offsets::ListOffsetsResponse, end: u64, when: &str) {
    let p = &r.partitions[0];
    assert!(
        p.error_code != ErrorCode::None || p.offset >= end,
        "{when}: the old leader answered {p:?}, the end is {end}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_old_leader_never_answers_an_older_end() {
    let c = TestCluster::start(3);
    let all = [1, 2, 3];
    c.create_replicated("stale", 1, 3, TopicConfig::default())
        .await;
    let old = produce(&c, &all, "stale", 10).await;
    let others: Vec<u64> = all.into_iter().filter(|&n| n != old).collect();
    let mut queued = c.node(old).connect().await;
    c.node(old).pause();
    let new = c.wait_partition_leader(&others, "stale", WAIT).await;
    assert_ne!(new, old);
    produce(&c, &others, "stale", 10).await;
    // Sent while it is stopped: read when it resumes.
    let pending = tokio::spawn(async move { queued.list_offsets(latest("stale")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.node(old).resume();
    let r = pending.await.unwrap().unwrap();
    not_older(&r, 20, "queued during the pause");
    let mut fresh = c.node(old).connect().await;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let r = fresh.list_offsets(latest("stale")).await.unwrap();
        not_older(&r, 20, "right after the pause");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_old_coordinator_never_answers_older_offsets() {
    let c = TestCluster::start(3);
    let all = [1, 2, 3];
    c.create_replicated("grp", 1, 3, TopicConfig::default())
        .await;
    produce(&c, &all, "grp", 30).await;
    let commit = |offset| {
        vec![CommitPartition {
            topic: "grp".into(),
            partition: 0,
            offset,
            metadata: String::new(),
        }]
    };
    let old = c.agreed_coordinator(&all, "g").await;
    let r = c
        .node(old)
        .connect()
        .await
        .offset_commit("g", commit(10))
        .await
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    let others: Vec<u64> = all.into_iter().filter(|&n| n != old).collect();
    let mut queued = c.node(old).connect().await;
    c.node(old).pause();
    let new = c.agreed_coordinator(&others, "g").await;
    let r = c
        .node(new)
        .connect()
        .await
        .offset_commit("g", commit(20))
        .await
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    let pending = tokio::spawn(async move { queued.offset_fetch("g", None).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.node(old).resume();
    // A refusal (the old coordinator no longer sure, or told of the new
    // one) or the new offset.
    let check = |r: Result<sluice_protocol::wire::offset_fetch::OffsetFetchResponse, _>,
                 when: &str| {
        let r = match r {
            Err(sluice_client::ClientError::Broker { .. }) => return,
            Err(e) => panic!("{when}: {e}"),
            Ok(r) => r,
        };
        let offset = r.partitions.first().and_then(|p| p.offset);
        assert!(
            r.error_code != ErrorCode::None || offset == Some(20),
            "{when}: the old coordinator answered {r:?}"
        );
    };
    check(pending.await.unwrap(), "queued during the pause");
    let mut fresh = c.node(old).connect().await;
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        check(fresh.offset_fetch("g", None).await, "right after the pause");
    }
}
