//! Damage to a replica's Raft files on disk is told apart from the torn
//! tail of a crash: a flipped bit in an old, synced Raft index record does
//! not make the node cut the partition's flushed records (with one replica,
//! every acknowledged record); the replica stays unopened, the partition is
//! offline in `/metrics` and `/health/ready`, and the files are left as
//! they were.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use sluice_tests::cluster::{TestCluster, partition_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_raft_index_record_takes_the_replica_offline_and_cuts_nothing() {
    let mut c = TestCluster::start(3);
    c.wait_for_leader(Duration::from_secs(30));
    c.create_replicated("one", 1, 1, Default::default()).await;
    for i in 0..50 {
        let batch = sluice_tests::batch_of(&[&format!("r{i}"), &format!("s{i}")]);
        let (_, code) = c
            .produce_through_leader(&[1, 2, 3], "one", &batch, &[], Duration::from_secs(30))
            .await;
        assert_eq!(code, ErrorCode::None);
    }
    let host = (1..=3u64)
        .find(|&id| partition_dir(&c.node(id).data_dir, "one-0").is_some())
        .expect("a node hosts one-0");
    let dir = partition_dir(&c.node(host).data_dir, "one-0").unwrap();
    c.node_mut(host).stop();
    let files = |ext: &str| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for d in [dir.clone(), dir.join("raft")] {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == ext) {
                    out.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    };
    let ridx = files("ridx");
    assert_eq!(ridx.len(), 1, "{ridx:?}");
    let mut bad = ridx[0].1.clone();
    bad[5] ^= 1;
    std::fs::write(&ridx[0].0, &bad).unwrap();
    let logs = files("log");
    c.restart(host);
    let node = c.node(host);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = sluice_tests::http_get(node.metrics_addr.unwrap(), "/metrics");
        let offline = sluice_tests::sample(&body, "sluice_partitions_offline").unwrap_or(0.0);
        let (ready, _) = sluice_tests::http_get(node.metrics_addr.unwrap(), "/health/ready");
        if offline == 1.0 && ready != 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "offline {offline}, ready {ready}: {}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(node.log().contains("not a torn tail"), "{}", node.log());
    assert_eq!(files("log"), logs, "the segment files are as they were");
    assert_eq!(files("ridx")[0].1, bad, "the Raft index is as it was");
}
