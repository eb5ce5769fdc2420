//! A producer whose partitions are led by different brokers: a scripted
//! fake broker answers Metadata saying partition 0 is led by real broker
//! A and partition 1 by real broker B (two single brokers, each holding
//! the topic), and passes every other request through to A. Given only
//! the fake's address, the producer must send each partition's records
//! straight to its own leader: nothing through the fake, partition 0's
//! records on A only, partition 1's on B only, in order.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sluice_client::{Acks, Producer, ProducerConfig, ProducerRecord};
use sluice_protocol::wire::metadata::{BrokerMetadata, MetadataResponse};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_protocol::wire::{ApiKey, RequestHeader, ResponseHeader, decode_body, encode_body};
use sluice_tests::fake::{self, read_frame};
use sluice_tests::{TestBroker, create_topic, read_partition};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// What the fake broker has seen.
#[derive(Debug, Default)]
struct Seen {
    /// Metadata requests it answered.
    metadata: AtomicUsize,
    /// Produce requests it passed through.
    produce: AtomicUsize,
}

/// Rewrites a Metadata (version 2) answer of `a`: brokers are node 1 at
/// `a` and node 2 at `b`; partition `p` of every topic is led by node
/// `p % 2 + 1`.
fn rewrite(frame: &[u8], a: SocketAddr, b: SocketAddr) -> Vec<u8> {
    let (h, _) = ResponseHeader::decode(frame).unwrap();
    let body = &frame[14..14 + h.body_len as usize];
    let mut meta: MetadataResponse = decode_body(body).unwrap();
    meta.brokers = vec![
        BrokerMetadata {
            id: 1,
            listen: a.to_string(),
            kafka: None,
        },
        BrokerMetadata {
            id: 2,
            listen: b.to_string(),
            kafka: None,
        },
    ];
    for t in &mut meta.topics {
        for p in &mut t.partitions {
            let leader = u64::from(p.partition % 2 + 1);
            p.leader = Some(leader);
            p.leader_epoch = 7;
            p.replicas = vec![leader];
            p.isr = vec![leader];
        }
    }
    let mut out = Vec::new();
    encode_body(&meta, &mut out);
    let header = ResponseHeader {
        body_len: out.len() as u32,
        ..h
    }
    .encode(0)
    .unwrap();
    [&header[..], &out].concat()
}

async fn serve(
    mut client: TcpStream,
    a: SocketAddr,
    b: SocketAddr,
    seen: &Seen,
) -> std::io::Result<()> {
    let mut upstream = TcpStream::connect(a).await?;
    loop {
        let frame = read_frame(&mut client).await?;
        let (h, _) = RequestHeader::decode(&frame).unwrap();
        upstream.write_all(&frame).await?;
        let response = read_frame(&mut upstream).await?;
        if h.api_key == ApiKey::Produce as u16 {
            seen.produce.fetch_add(1, Ordering::SeqCst);
        }
        if h.api_key == ApiKey::Metadata as u16 && h.api_version >= 2 {
            seen.metadata.fetch_add(1, Ordering::SeqCst);
            client.write_all(&rewrite(&response, a, b)).await?;
        } else {
            client.write_all(&response).await?;
        }
    }
}

async fn fake_broker(a: SocketAddr, b: SocketAddr) -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let shared = Arc::clone(&seen);
    let addr = fake::spawn(move |client, _| {
        let seen = Arc::clone(&shared);
        async move { serve(client, a, b, &seen).await }
    })
    .await;
    (addr, seen)
}

async fn values(broker: &TestBroker, topic: &str, partition: u32) -> Vec<String> {
    let mut conn = broker.connect().await;
    read_partition(&mut conn, topic, partition, 0)
        .await
        .into_iter()
        .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_producer_sends_each_partition_to_its_own_leader() {
    const RECORDS: u32 = 400;
    let (a, b) = (TestBroker::start(), TestBroker::start());
    for broker in [&a, &b] {
        let mut admin = broker.connect().await;
        create_topic(&mut admin, "split", 2, TopicConfig::default()).await;
    }
    let (fake, seen) = fake_broker(a.addr, b.addr).await;

    let producer = Producer::new(ProducerConfig {
        acks: Acks::All,
        batch_bytes: 512,
        linger: Duration::from_millis(1),
        max_in_flight: 5,
        delivery_timeout: Duration::from_secs(30),
        ..ProducerConfig::new(fake.to_string())
    });
    let mut deliveries = Vec::new();
    for i in 0..RECORDS {
        let value = format!("v{i:04}");
        deliveries.push(
            producer
                .send_record(ProducerRecord {
                    topic: "split",
                    partition: Some(i % 2),
                    value: Some(value.as_bytes()),
                    ..Default::default()
                })
                .await
                .unwrap(),
        );
    }
    for (i, d) in deliveries.into_iter().enumerate() {
        let meta = tokio::time::timeout(Duration::from_secs(30), d)
            .await
            .expect("delivered in time")
            .unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        assert_eq!(meta.offset, Some(i as u64 / 2), "record {i}'s offset");
    }
    producer.close().await;

    let want = |p: u32| -> Vec<String> {
        (0..RECORDS)
            .filter(|i| i % 2 == p)
            .map(|i| format!("v{i:04}"))
            .collect()
    };
    assert_eq!(values(&a, "split", 0).await, want(0), "A holds partition 0");
    assert_eq!(values(&b, "split", 1).await, want(1), "B holds partition 1");
    assert!(values(&a, "split", 1).await.is_empty(), "nothing of 1 on A");
    assert!(values(&b, "split", 0).await.is_empty(), "nothing of 0 on B");
    assert_eq!(
        seen.produce.load(Ordering::SeqCst),
        0,
        "no produce request went through the bootstrap broker"
    );
    let asked = seen.metadata.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&asked),
        "Metadata asked once (plus the partition count), not per request: {asked}"
    );
}
