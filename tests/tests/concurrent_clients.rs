//! Many clients producing and fetching at once get unique, contiguous
//! offsets and read back exactly what was written.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::HashSet;

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized, create_topic, read_partition};

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
            for i in 0..per_client {
                let b = batch_sized(&format!("c{c}-{i}"), 4, 64);
                let acks = if i % 3 == 0 { Acks::All } else { Acks::Leader };
                let r = conn
                    .produce(acks, 5000, &[("busy", c % 2, &b)])
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(r.partitions[0].error_code, ErrorCode::None);
                offsets.push((c % 2, r.partitions[0].base_offset));
                // Interleave reads with the writes.
                if i % 5 == 0 {
                    let _ = read_partition(&mut conn, "busy", c % 2, 0).await;
                }
            }
            offsets
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        for o in t.await.unwrap() {
            assert!(seen.insert(o), "offset {o:?} handed out twice");
        }
    }
    let mut total = 0;
    for p in 0..2 {
        let recs = read_partition(&mut admin, "busy", p, 0).await;
        assert!(recs.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
        total += recs.len();
    }
    assert_eq!(total, clients as usize * per_client * 4);
    let stats = admin.stats().await.unwrap();
    assert!(stats.get("connections_accepted").unwrap() > u64::from(clients));
}
