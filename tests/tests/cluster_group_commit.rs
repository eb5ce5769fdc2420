//! Group commit on a 3-node cluster (RF=3): many concurrent small acks=all
//! produce requests and one idempotent producer share Raft entries. Every
//! acknowledged record is on every replica exactly once, at the offset it
//! was acknowledged with, and the partition's Raft log holds fewer entries
//! than there were produce requests (read from the `raft/*.ridx` files:
//! one 40-byte record per entry, docs/storage-format.md).

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use sluice_client::{Acks, Connection, Producer, ProducerConfig, ProducerRecord};
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks as WireAcks;
use sluice_tests::cluster::{TestCluster, partition_dir};

const CONNECTIONS: usize = 12;
const REQUESTS_PER_CONNECTION: usize = 40;
const IDEMPOTENT_RECORDS: usize = 300;

/// Every record of partition `name` on `dir`'s segment files: (offset,
/// value), read independently of the broker.
fn stored(dir: &Path, name: &str) -> Vec<(u64, Vec<u8>)> {
    let Some(d) = partition_dir(dir, name) else {
        return Vec::new();
    };
    let mut logs: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for p in logs {
        let mut bytes = bytes::Bytes::from(std::fs::read(p).unwrap());
        while let Ok(b) = RecordBatch::split_first(&mut bytes) {
            let base = b.header().base_offset as u64;
            for (i, r) in b.records().enumerate() {
                let r = r.unwrap();
                out.push((
                    base + i as u64,
                    r.value.map(|v| v.to_vec()).unwrap_or_default(),
                ));
            }
        }
    }
    out
}

/// Raft entries of partition `name` on `dir`: the records of its Raft
/// index files.
fn raft_entries(dir: &Path, name: &str) -> u64 {
    let raft = partition_dir(dir, name).unwrap().join("raft");
    std::fs::read_dir(raft)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "ridx"))
        .map(|e| e.metadata().unwrap().len() / 40)
        .sum()
}

fn one_record(value: &str) -> Vec<u8> {
    let mut b = BatchBuilder::new();
    b.push(&NewRecord {
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(value.as_bytes()),
        headers: &[],
    });
    b.finish().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_small_acks_all_requests_share_raft_entries_and_lose_nothing() {
    let c = TestCluster::start(3);
    c.create_replicated("gc", 1, 3, Default::default()).await;
    let leader = c
        .wait_partition_leader(&[1, 2, 3], "gc", Duration::from_secs(30))
        .await;
    let addr = c.node(leader).addr;

    // Plain producers: one connection each, one record per request, the
    // next request once the previous one is acknowledged.
    let plain: Vec<_> = (0..CONNECTIONS)
        .map(|t| {
            tokio::spawn(async move {
                let mut conn = Connection::connect(addr).await.unwrap();
                let mut acked = Vec::new();
                for i in 0..REQUESTS_PER_CONNECTION {
                    let value = format!("c{t}-{i}");
                    let r = conn
                        .produce(WireAcks::All, 30_000, &[("gc", 0, &one_record(&value))])
                        .await
                        .unwrap()
                        .unwrap();
                    let p = &r.partitions[0];
                    assert_eq!(p.error_code, ErrorCode::None, "{p:?}");
                    acked.push((p.base_offset, value.into_bytes()));
                }
                acked
            })
        })
        .collect();
    let plain = async {
        let mut all = Vec::new();
        for h in plain {
            all.extend(h.await.unwrap());
        }
        all
    };
    // And an idempotent producer of the client library, 5 requests in flight.
    let idempotent = async {
        let producer = Producer::new(ProducerConfig {
            acks: Acks::All,
            idempotence: true,
            max_in_flight: 5,
            batch_bytes: 256,
            linger: Duration::from_millis(1),
            ..ProducerConfig::with_brokers(&[addr.to_string()])
        });
        let mut deliveries = Vec::new();
        for i in 0..IDEMPOTENT_RECORDS {
            let value = format!("idem{i}");
            let d = producer
                .send_record(ProducerRecord {
                    topic: "gc",
                    partition: Some(0),
                    value: Some(value.as_bytes()),
                    ..Default::default()
                })
                .await
                .unwrap();
            deliveries.push((d, value));
        }
        let mut acked = Vec::new();
        for (d, value) in deliveries {
            let meta = d.await.unwrap();
            acked.push((meta.offset.unwrap(), value.into_bytes()));
        }
        producer.close().await;
        acked
    };
    let (plain, mut acked) = tokio::join!(plain, idempotent);
    let idempotent_acked = acked.clone();
    acked.extend(plain);
    let requests = (CONNECTIONS * REQUESTS_PER_CONNECTION) as u64;
    assert_eq!(acked.len(), requests as usize + IDEMPOTENT_RECORDS);
    let end = acked.iter().map(|(o, _)| o + 1).max().unwrap();

    // Every replica: each acknowledged record exactly once, at its offset.
    let deadline = Instant::now() + Duration::from_secs(30);
    for id in 1..=3 {
        let dir = &c.node(id).data_dir;
        let mut records = stored(dir, "gc-0");
        while records.len() < end as usize {
            assert!(Instant::now() < deadline, "node {id} did not catch up");
            tokio::time::sleep(Duration::from_millis(50)).await;
            records = stored(dir, "gc-0");
        }
        let at: HashMap<u64, &Vec<u8>> = records.iter().map(|(o, v)| (*o, v)).collect();
        assert_eq!(at.len(), records.len(), "node {id}: an offset twice");
        let mut seen: HashMap<&Vec<u8>, usize> = HashMap::new();
        for (_, v) in &records {
            *seen.entry(v).or_default() += 1;
        }
        for (offset, value) in &acked {
            assert_eq!(at.get(offset), Some(&value), "node {id}: offset {offset}");
            assert_eq!(seen.get(value), Some(&1), "node {id}: {value:?} not once");
        }
    }
    // The idempotent producer's records in the order it sent them.
    assert!(idempotent_acked.windows(2).all(|w| w[0].0 < w[1].0));

    // Fewer Raft entries than produce requests (blank and membership
    // entries included), on every replica.
    for id in 1..=3 {
        let entries = raft_entries(&c.node(id).data_dir, "gc-0");
        assert!(
            entries < requests,
            "node {id}: {entries} Raft entries for more than {requests} produce requests"
        );
    }
}
