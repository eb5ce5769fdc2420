//! The benchmark's raw produce and fetch loops (`sluice-bench --cluster`)
//! follow a partition's leader when it moves, so that an election on a
//! loaded machine does not end a cluster run: refused records are sent
//! again to the new leader, none counted twice.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use sluice_bench::harness::meter::Meter;
use sluice_bench::harness::options::{Params, ValueKind};
use sluice_bench::harness::workloads::{consume, produce};
use sluice_protocol::batch::Compression;
use sluice_protocol::wire::produce::Acks;
use sluice_tests::cluster::TestCluster;

const TOPIC: &str = "bench-loops";
const RECORDS: u64 = 30_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_produce_and_fetch_loops_follow_a_leader_that_moved() {
    let c = TestCluster::start(3);
    c.create_replicated(TOPIC, 1, 3, Default::default()).await;
    let all = [1, 2, 3];
    let old = c
        .wait_partition_leader(&all, TOPIC, Duration::from_secs(30))
        .await;
    let p = Params {
        records: RECORDS,
        value_len: 100,
        batch_bytes: 4 * 1024,
        in_flight: 4,
        acks: Acks::All,
        fetch_bytes: 1 << 20,
        verify_crc: true,
        compression: Compression::None,
        value_kind: ValueKind::Random,
        idempotent: false,
    };
    let meter = Meter::new();
    let producer = {
        let (addr, p, meter) = (c.node(old).addr, p.clone(), meter.clone());
        tokio::spawn(async move { produce(addr, TOPIC, &[(0, RECORDS)], &p, 1, &meter).await })
    };
    // Part of the records in, the leader is cut off from the others: they
    // elect a new one, and the old one refuses what it held once it hears.
    let started = tokio::time::Instant::now();
    while meter.get() < RECORDS / 10 * p.value_len as u64 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the producer made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    c.isolate(old);
    let rest: Vec<u64> = all.into_iter().filter(|&i| i != old).collect();
    let new = c
        .wait_partition_leader(&rest, TOPIC, Duration::from_secs(30))
        .await;
    assert_ne!(new, old);
    c.heal();
    let moved = tokio::time::timeout(Duration::from_secs(120), producer)
        .await
        .expect("the producer finishes")
        .unwrap()
        .expect("the producer follows the new leader");
    assert_eq!(moved.records, RECORDS);

    // Every record exactly once, read starting from the old leader (now a
    // follower).
    let read = consume(c.node(old).addr, TOPIC, &[(0, RECORDS)], &p, &Meter::new())
        .await
        .expect("the consumer follows the leader");
    assert_eq!(read.records, RECORDS);
    let meta = c
        .node(new)
        .connect()
        .await
        .metadata(Some(vec![TOPIC.into()]))
        .await
        .unwrap();
    assert_eq!(
        meta.topics[0].partitions[0].high_watermark, RECORDS,
        "no record stored twice"
    );
}
