//! Many clients producing and fetching at once get unique, contiguous
//! offsets and read back exactly what was written: every record is stored at
//! the offset its producer was told, both in reads interleaved with the
//! writes and in a final read of the whole partition.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::{HashMap, HashSet};

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized, create_topic, read_partition};

const RECORDS_PER_BATCH: u64 = 4;
const VALUE_LEN: usize = 64;

/// The value `batch_sized(tag, _, VALUE_LEN)` gives record `i` of its batch.
fn expected_value(tag: &str, i: u64) -> Vec<u8> {
    let mut v = format!("{tag}:{i}").into_bytes();
    v.resize(VALUE_LEN.max(v.len()), b'-');
    v
}

/// Asserts that each of `batches` (tag, base offset) that `records` covers
/// is there with exactly its values at its offsets.
fn check_batches(records: &[(u64, bytes::Bytes)], batches: &[(String, u64)], who: &str) {
    let by_offset: HashMap<u64, &[u8]> = records.iter().map(|(o, v)| (*o, &v[..])).collect();
    for (tag, base) in batches {
        for i in 0..RECORDS_PER_BATCH {
            let got = by_offset.get(&(base + i)).copied();
            assert_eq!(
                got,
                Some(&expected_value(tag, i)[..]),
                "{who}: record {i} of batch {tag} acknowledged at base offset {base}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_clients_at_once() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "busy", 2, TopicConfig::default()).await;
    let clients = 24;
    let per_client = 20;
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = broker.addr;
        tasks.push(tokio::spawn(async move {
            let mut conn = sluice_client::Connection::connect(addr).await.unwrap();
            let mut offsets = Vec::new();
            // (tag, base offset) of this client's acknowledged batches.
            let mut mine: Vec<(String, u64)> = Vec::new();
            for i in 0..per_client {
                let tag = format!("c{c}-{i}");
                let b = batch_sized(&tag, RECORDS_PER_BATCH as usize, VALUE_LEN);
                let acks = if i % 3 == 0 { Acks::All } else { Acks::Leader };
                let r = conn
                    .produce(acks, 5000, &[("busy", c % 2, &b)])
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(r.partitions[0].error_code, ErrorCode::None);
                let base = r.partitions[0].base_offset;
                offsets.push((c % 2, base));
                mine.push((tag, base));
                // Interleave reads with the writes: everything this client
                // was acknowledged so far is readable, at its offsets.
                if i % 5 == 0 {
                    let recs = read_partition(&mut conn, "busy", c % 2, 0).await;
                    check_batches(&recs, &mine, &format!("client {c} mid-run"));
                }
            }
            (c % 2, offsets, mine)
        }));
    }
    let mut seen = HashSet::new();
    let mut acked: [Vec<(String, u64)>; 2] = [Vec::new(), Vec::new()];
    for t in tasks {
        let (p, offsets, mine) = t.await.unwrap();
        for o in offsets {
            assert!(seen.insert(o), "offset {o:?} handed out twice");
        }
        acked[p as usize].extend(mine);
    }
    let mut total = 0;
    for p in 0..2u32 {
        let recs = read_partition(&mut admin, "busy", p, 0).await;
        assert!(recs.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
        check_batches(&recs, &acked[p as usize], &format!("partition {p}"));
        total += recs.len();
    }
    assert_eq!(total, clients as usize * per_client * 4);
    let stats = admin.stats().await.unwrap();
    assert!(stats.get("connections_accepted").unwrap() > u64::from(clients));
}
