//! An idempotent producer under faults, against real processes: every
//! connection through a TCP proxy is reset (RST) every 0.3 s while the
//! broker is SIGKILLed and restarted three times. One producer sends N
//! unique records with acks=all to two partitions. Afterwards:
//!
//! - the producer finished, and every record was acknowledged;
//! - every record is stored exactly once, at the offset its
//!   acknowledgement gave;
//! - each partition holds its records in the order they were sent.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use sluice_client::{Acks, Producer, ProducerConfig, ProducerRecord};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, create_topic, read_partition};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const RECORDS: usize = 20_000;
const RESET_EVERY: Duration = Duration::from_millis(300);

/// Forwards connections to `target`; each is reset (zero linger, so the
/// close sends RST) whenever `resets` changes.
async fn proxy(listener: TcpListener, target: SocketAddr, resets: watch::Receiver<u64>) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            return;
        };
        let mut resets = resets.clone();
        resets.mark_unchanged();
        tokio::spawn(async move {
            let _ = client.set_zero_linger();
            let Ok(mut server) = TcpStream::connect(target).await else {
                return; // dropped: the client sees a reset
            };
            let _ = server.set_zero_linger();
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                _ = resets.changed() => {}
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_stored_once_in_order_through_resets_and_broker_kills() {
    let mut broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "faults", 2, TopicConfig::default()).await;
    drop(admin);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = listener.local_addr().unwrap();
    let (reset_tx, reset_rx) = watch::channel(0u64);
    let proxy_task = tokio::spawn(proxy(listener, broker.addr, reset_rx));
    let resetter = tokio::spawn(async move {
        loop {
            tokio::time::sleep(RESET_EVERY).await;
            reset_tx.send_modify(|g| *g += 1);
        }
    });

    let producer = std::sync::Arc::new(Producer::new(ProducerConfig {
        acks: Acks::All,
        batch_bytes: 8 * 1024,
        linger: Duration::from_millis(2),
        retry_backoff: Duration::from_millis(20),
        delivery_timeout: Duration::from_secs(60),
        ..ProducerConfig::new(proxy_addr.to_string())
    }));
    let sender = {
        let producer = std::sync::Arc::clone(&producer);
        tokio::spawn(async move {
            let mut deliveries = Vec::with_capacity(RECORDS);
            for i in 0..RECORDS {
                let value = format!("r{i:06}");
                let d = producer
                    .send_record(ProducerRecord {
                        topic: "faults",
                        partition: Some((i % 2) as u32),
                        value: Some(value.as_bytes()),
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                deliveries.push(d);
                if i % 200 == 199 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            deliveries
        })
    };

    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(600)).await;
        broker.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        tokio::task::block_in_place(|| broker.restart());
    }

    let deliveries = sender.await.unwrap();
    let finish = async {
        let mut acked = Vec::with_capacity(RECORDS);
        for (i, d) in deliveries.into_iter().enumerate() {
            let meta = d.await.unwrap_or_else(|e| panic!("record {i} failed: {e}"));
            acked.push((meta.partition, meta.offset.unwrap()));
        }
        producer.close().await;
        acked
    };
    let acked = tokio::time::timeout(Duration::from_secs(90), finish)
        .await
        .expect("the producer finished within its delivery timeout");
    resetter.abort();
    proxy_task.abort();

    let mut conn = broker.connect().await;
    let mut offsets_of: HashMap<String, Vec<(u32, u64)>> = HashMap::new();
    for partition in 0..2 {
        let stored = read_partition(&mut conn, "faults", partition, 0).await;
        let mut last = None;
        for (offset, value) in stored {
            let value = String::from_utf8(value.to_vec()).unwrap();
            let i: usize = value[1..].parse().unwrap();
            assert_eq!(
                i % 2,
                partition as usize,
                "{value} in partition {partition}"
            );
            assert!(
                last < Some(i),
                "{value} at {offset} after r{last:?}: out of order"
            );
            last = Some(i);
            offsets_of
                .entry(value)
                .or_default()
                .push((partition, offset));
        }
    }
    let twice: Vec<_> = offsets_of.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "{} records stored more than once, e.g. {:?}",
        twice.len(),
        twice.first()
    );
    for (i, at) in acked.iter().enumerate() {
        let value = format!("r{i:06}");
        let stored = offsets_of
            .get(&value)
            .unwrap_or_else(|| panic!("{value} was acknowledged but is missing"));
        assert_eq!(
            &stored[0], at,
            "{value} is stored where its acknowledgement said"
        );
    }
    assert_eq!(offsets_of.len(), RECORDS);
}

/// A broker that stops answering (SIGSTOP) fails a record at its delivery
/// timeout, though the request carrying it is in flight, not a request
/// timeout later; once the broker answers again the producer goes on, each
/// record stored at most once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_in_flight_to_a_silent_broker_fails_at_its_delivery_timeout() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "silent", 1, TopicConfig::default()).await;
    drop(admin);
    let producer = Producer::new(ProducerConfig {
        acks: Acks::All,
        delivery_timeout: Duration::from_secs(3),
        ..ProducerConfig::new(broker.addr.to_string())
    });
    let send = |value: &'static str| {
        producer.send_record(ProducerRecord {
            topic: "silent",
            partition: Some(0),
            value: Some(value.as_bytes()),
            ..Default::default()
        })
    };
    let first = send("before").await.unwrap().await.unwrap();
    assert_eq!(first.offset, Some(0));

    broker.pause();
    let started = std::time::Instant::now();
    let lost = send("while paused").await.unwrap().await;
    let took = started.elapsed();
    broker.resume();
    assert!(lost.is_err(), "{lost:?}");
    // 3 s, not the 30 s request timeout (and its 10 s grace) later.
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(15),
        "failed after {took:?}"
    );

    let after = send("after").await.unwrap().await.unwrap();
    let mut conn = broker.connect().await;
    let values: Vec<bytes::Bytes> = read_partition(&mut conn, "silent", 0, 0)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        Some(values.len() as u64),
        after.offset.map(|o| o + 1),
        "{values:?}"
    );
    assert_eq!(values.first().unwrap().as_ref(), b"before");
    assert_eq!(values.last().unwrap().as_ref(), b"after");
    assert!(values.len() <= 3, "{values:?}");
}
