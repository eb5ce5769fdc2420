//! SIGTERM of a replica while acks=all writes go on: the node stops its
//! partition groups before it closes the logs, so it exits cleanly with a
//! clean-shutdown marker that nothing wrote past, restarts without
//! recovery work (its Raft index and log agree: nothing dropped, nothing
//! cut), and loses nothing acknowledged (the three replicas' files, read
//! with an independent reader, hold every acknowledged batch).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::batch::RecordBatch;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks;
use sluice_tests::batch_of;
use sluice_tests::cluster::TestCluster;

const WAIT: Duration = Duration::from_secs(60);

/// Every whole batch of a replica's segment files (base offset, bytes).
fn segment_batches(data_dir: &Path, dir_name: &str) -> Vec<(i64, Bytes)> {
    let Some(dir) = sluice_tests::cluster::partition_dir(data_dir, dir_name) else {
        return Vec::new();
    };
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let mut bytes = Bytes::from(std::fs::read(&log).unwrap());
        while let Ok(b) = RecordBatch::split_first(&mut bytes) {
            out.push((b.header().base_offset, b.as_bytes().clone()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigtermed_replica_restarts_clean_and_loses_nothing_acknowledged() {
    let mut c = TestCluster::start(3);
    c.create_replicated("s", 1, 3, Default::default()).await;
    let leader = c.wait_partition_leader(&[1, 2, 3], "s", WAIT).await;
    let follower = (1..=3).find(|&i| i != leader).unwrap();

    // A producer sends acks=all batches to the leader until told to stop;
    // it returns the base offsets it got acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let addr = c.node(leader).addr;
    let producer = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut conn = sluice_client::Connection::connect(addr).await.unwrap();
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let b = batch_of(&[&format!("v{i}")]);
                i += 1;
                if let Ok(Some(r)) = conn.produce(Acks::All, 10_000, &[("s", 0, &b)]).await {
                    let p = &r.partitions[0];
                    if p.error_code == ErrorCode::None {
                        acked.push(p.base_offset);
                    }
                }
            }
            acked
        })
    };
    let partition_dir =
        || sluice_tests::cluster::partition_dir(&c.node(follower).data_dir, "s-0").unwrap();
    // Writes flow to the follower, then it gets SIGTERM mid-stream.
    let deadline = Instant::now() + WAIT;
    while segment_batches(&c.node(follower).data_dir, "s-0").len() < 20 {
        assert!(Instant::now() < deadline, "the follower gets no writes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = partition_dir();
    let node = c.node_mut(follower);
    tokio::task::block_in_place(|| node.stop());
    assert!(
        dir.join(".clean-shutdown").exists(),
        "no clean-shutdown marker after SIGTERM"
    );
    // Nothing was written after the marker: the groups stopped first.
    let marker = std::fs::metadata(dir.join(".clean-shutdown"))
        .unwrap()
        .modified()
        .unwrap();
    for d in [dir.clone(), dir.join("raft")] {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_file() {
                assert!(
                    m.modified().unwrap() <= marker,
                    "{} written after the clean-shutdown marker",
                    e.path().display()
                );
            }
        }
    }
    let before_restart = segment_batches(&c.node(follower).data_dir, "s-0");
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.node_mut(follower).restart();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = producer.await.unwrap();
    assert!(acked.len() >= 20, "{} acknowledged", acked.len());

    // No recovery work at the restart: the log opened clean and the Raft
    // index and log agreed.
    let log = c.node(follower).log();
    let opened: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("opened partition replica"))
        .collect();
    let last = opened.last().expect("the replica reopened");
    assert!(
        last.contains("index_records_dropped: 0") && last.contains("log_offsets_truncated: 0"),
        "{last}"
    );
    // What the stopped replica held is a prefix of what it holds now.
    let deadline = Instant::now() + WAIT;
    loop {
        let all: Vec<Vec<(i64, Bytes)>> = (1..=3)
            .map(|id| segment_batches(&c.node(id).data_dir, "s-0"))
            .collect();
        let offsets: Vec<i64> = all[0].iter().map(|(o, _)| *o).collect();
        let complete = acked.iter().all(|a| offsets.contains(&(*a as i64)));
        if complete && all.iter().all(|a| *a == all[0]) {
            assert!(all[0].starts_with(&before_restart));
            break;
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = (1..=3)
                .map(|id| {
                    format!(
                        "--- node {id} (the leader was {leader}, the restarted follower {follower})\n{}",
                        c.node(id).log_tail(60)
                    )
                })
                .collect();
            panic!(
                "replicas differ or lack acknowledged batches: {:?} batches, {} acknowledged\n{}",
                all.iter().map(Vec::len).collect::<Vec<_>>(),
                acked.len(),
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
