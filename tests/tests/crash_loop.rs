//! Crash consistency of the real broker: producers send with acks=all (and
//! one with acks=leader), the broker is killed with SIGKILL at random
//! moments and restarted, again and again. After every restart:
//!
//! - every record acknowledged with acks=all is present, at exactly the
//!   partition and offset its acknowledgement gave;
//! - every batch served passes its CRC check and offsets are contiguous;
//! - the acks=leader sequence is a prefix of what was sent, at least as long
//!   as what was acknowledged.
//!
//! `SLUICE_CRASH_CYCLES` sets the number of cycles (default 50).
//!
//! This shows durability across *process* crashes only: SIGKILL leaves the
//! page cache to the kernel, so everything the broker wrote reaches the disk
//! whether or not it was fsynced, and this test cannot tell acks=all from
//! acks=leader (a broker that never fsyncs passes it). Power cuts are shown by
//! `broker/tests/power_cut.rs` (a server over the crash file system) and
//! `broker/src/log/tests/crash_image.rs`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_client::Connection;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_of, create_topic, read_partition};
use tokio::sync::Mutex;

/// (partition, offset) of every acknowledged acks=all record, by value.
type Acked = Arc<Mutex<HashMap<String, (u32, u64)>>>;

async fn durable_producer(addr: std::net::SocketAddr, id: usize, cycle: usize, acked: Acked) {
    let Ok(mut conn) = Connection::connect(addr).await else {
        return;
    };
    for i in 0.. {
        let values: Vec<String> = (0..5)
            .map(|r| format!("p{id}-c{cycle}-b{i}-r{r}"))
            .collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let partition = (i % 2) as u32;
        let Ok(Some(resp)) = conn
            .produce(Acks::All, 5000, &[("durable", partition, &batch_of(&refs))])
            .await
        else {
            return;
        };
        let r = &resp.partitions[0];
        if r.error_code != ErrorCode::None {
            return;
        }
        let mut acked = acked.lock().await;
        for (k, v) in values.into_iter().enumerate() {
            acked.insert(v, (partition, r.base_offset + k as u64));
        }
    }
}

/// Sends the sequence `next..` with acks=leader, one record per request;
/// returns how far it got acknowledged.
async fn sequence_producer(addr: std::net::SocketAddr, next: u64) -> u64 {
    let Ok(mut conn) = Connection::connect(addr).await else {
        return next;
    };
    let mut acked = next;
    loop {
        let v = acked.to_string();
        match conn
            .produce(Acks::Leader, 5000, &[("sequence", 0, &batch_of(&[&v]))])
            .await
        {
            Ok(Some(r)) if r.partitions[0].error_code == ErrorCode::None => acked += 1,
            _ => return acked,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_records_survive_repeated_process_kills() {
    let cycles: usize = std::env::var("SLUICE_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut broker = TestBroker::start();
    {
        let mut conn = broker.connect().await;
        create_topic(&mut conn, "durable", 2, TopicConfig::default()).await;
        create_topic(&mut conn, "sequence", 1, TopicConfig::default()).await;
    }
    let acked: Acked = Arc::default();
    let mut sequence_acked = 0u64;
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for cycle in 0..cycles {
        let addr = broker.addr;
        let producers: Vec<_> = (0..3)
            .map(|id| tokio::spawn(durable_producer(addr, id, cycle, Arc::clone(&acked))))
            .collect();
        let seq = tokio::spawn(sequence_producer(addr, sequence_acked));
        // Kill at a pseudo-random moment 20..220 ms in.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(20 + seed % 200)).await;
        broker.kill();
        for p in producers {
            p.await.unwrap();
        }
        let seq_acked_now = seq.await.unwrap();
        broker.restart();

        let mut conn = broker.connect().await;
        // acks=all: every acknowledged record is where it was acknowledged.
        let mut stored: HashMap<(u32, u64), String> = HashMap::new();
        for p in 0..2 {
            // read_partition checks CRCs and offset continuity.
            for (o, v) in read_partition(&mut conn, "durable", p, 0).await {
                stored.insert((p, o), String::from_utf8(v.to_vec()).unwrap());
            }
        }
        for (value, at) in acked.lock().await.iter() {
            assert_eq!(
                stored.get(at),
                Some(value),
                "cycle {cycle}: acknowledged {value} missing at {at:?}"
            );
        }
        // acks=leader: the log is the sequence 0..n, a prefix of what was
        // sent, holding at least everything acknowledged.
        let seq_log = read_partition(&mut conn, "sequence", 0, 0).await;
        for (i, (o, v)) in seq_log.iter().enumerate() {
            assert_eq!(*o, i as u64);
            assert_eq!(
                std::str::from_utf8(v).unwrap(),
                i.to_string(),
                "cycle {cycle}: not a prefix"
            );
        }
        assert!(
            seq_log.len() as u64 >= seq_acked_now,
            "cycle {cycle}: acknowledged sequence lost"
        );
        sequence_acked = seq_log.len() as u64;
    }
    let total = acked.lock().await.len();
    assert!(
        total > cycles,
        "the producers made progress ({total} records acknowledged)"
    );
    broker.stop();
}
