//! Leader-following without a cluster: a scripted fake broker stands in
//! front of a real broker process. It passes every request through to the
//! real broker except Produce, Fetch and ListOffsets beyond a scripted
//! count, which it refuses itself with `NotLeaderForPartition`. While it
//! still serves them, its Metadata names itself as the leader of every
//! partition; after, the real broker (node 0, at its own address). The
//! client, given only the fake's address, must look the leader up and go
//! to the real broker.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sluice_client::{
    Acks, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};
use sluice_protocol::wire::fetch::{FetchPartitionResponse, FetchRequest, FetchResponse};
use sluice_protocol::wire::list_offsets::{
    ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use sluice_protocol::wire::metadata::MetadataResponse;
use sluice_protocol::wire::produce::{ProducePartitionResponse, ProduceRequest, ProduceResponse};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_protocol::wire::{ApiKey, ErrorCode, RequestHeader, ResponseHeader, encode_body};
use sluice_tests::fake::{self, read_frame};
use sluice_tests::{TestBroker, create_topic, read_partition};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// What the fake broker has done, for the test to check.
#[derive(Debug, Default)]
struct Seen {
    /// Produce, Fetch and ListOffsets requests passed to the real broker.
    served: AtomicUsize,
    /// Those it refused with `NotLeaderForPartition`.
    refused: AtomicUsize,
}

/// Produce, Fetch and ListOffsets: what a non-leader refuses.
const DATA: &[ApiKey] = &[ApiKey::Produce, ApiKey::Fetch, ApiKey::ListOffsets];

/// Starts the fake broker in front of `real`: it serves the first
/// `serve_data` requests of the `refuse` APIs (over all connections) by
/// passing them through, and refuses every later one; other APIs always
/// pass through.
async fn fake_broker(
    real: SocketAddr,
    serve_data: usize,
    refuse: &'static [ApiKey],
) -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let shared = Arc::clone(&seen);
    let addr = fake::spawn(move |client, own| {
        let seen = Arc::clone(&shared);
        async move { serve(client, real, own, serve_data, refuse, &seen).await }
    })
    .await;
    (addr, seen)
}

/// One client connection: requests in order, each answered before the
/// next is read (pipelined requests wait in the socket).
async fn serve(
    mut client: TcpStream,
    real: SocketAddr,
    own: SocketAddr,
    serve_data: usize,
    refuse: &[ApiKey],
    seen: &Seen,
) -> std::io::Result<()> {
    let mut upstream = TcpStream::connect(real).await?;
    loop {
        let frame = read_frame(&mut client).await?;
        let (h, _) = RequestHeader::decode(&frame).unwrap();
        let body = &frame[16..16 + h.body_len as usize];
        let data = refuse.iter().any(|k| *k as u16 == h.api_key);
        if h.api_key == ApiKey::Metadata as u16
            && h.api_version >= 2
            && seen.served.load(Ordering::SeqCst) < serve_data
        {
            // Still serving: the leader is this fake.
            upstream.write_all(&frame).await?;
            let response = read_frame(&mut upstream).await?;
            let edited = fake::edited_response(&response, |meta: &mut MetadataResponse| {
                for b in &mut meta.brokers {
                    b.listen = own.to_string();
                }
            });
            client.write_all(&edited).await?;
            continue;
        }
        if !data || seen.served.fetch_add(1, Ordering::SeqCst) < serve_data {
            upstream.write_all(&frame).await?;
            let response = read_frame(&mut upstream).await?;
            client.write_all(&response).await?;
            continue;
        }
        seen.refused.fetch_add(1, Ordering::SeqCst);
        let code = ErrorCode::NotLeaderForPartition;
        let mut out = Vec::new();
        if h.api_key == ApiKey::Produce as u16 {
            let req: ProduceRequest = sluice_protocol::wire::decode_body(body).unwrap();
            let partitions = req
                .partitions
                .into_iter()
                .map(|p| ProducePartitionResponse {
                    topic: p.topic,
                    partition: p.partition,
                    error_code: code,
                    base_offset: 0,
                    message: Some("led by node 0".into()),
                })
                .collect();
            encode_body(&ProduceResponse { partitions }, &mut out);
        } else if h.api_key == ApiKey::Fetch as u16 {
            let req: FetchRequest = sluice_protocol::wire::decode_body(body).unwrap();
            let partitions = req
                .partitions
                .into_iter()
                .map(|p| FetchPartitionResponse {
                    topic: p.topic,
                    partition: p.partition,
                    error_code: code,
                    high_watermark: 0,
                    log_start_offset: 0,
                    records_len: 0,
                })
                .collect();
            encode_body(&FetchResponse { partitions }, &mut out);
        } else {
            let req: ListOffsetsRequest = sluice_protocol::wire::decode_body(body).unwrap();
            let partitions = req
                .partitions
                .into_iter()
                .map(|p| ListOffsetsPartitionResponse {
                    topic: p.topic,
                    partition: p.partition,
                    error_code: code,
                    offset: 0,
                })
                .collect();
            encode_body(&ListOffsetsResponse { partitions }, &mut out);
        }
        let header = ResponseHeader {
            correlation_id: h.correlation_id,
            error_code: ErrorCode::None,
            body_len: out.len() as u32,
        }
        .encode(0)
        .unwrap();
        client.write_all(&[&header[..], &out].concat()).await?;
    }
}

/// Every record of `topic` on the real broker, partition by partition.
async fn stored(broker: &TestBroker, topic: &str, partitions: u32) -> Vec<Vec<String>> {
    let mut conn = broker.connect().await;
    let mut out = Vec::new();
    for p in 0..partitions {
        let records = read_partition(&mut conn, topic, p, 0).await;
        out.push(
            records
                .into_iter()
                .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap())
                .collect(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_follow_the_leader_metadata_names() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "follow", 2, TopicConfig::default()).await;
    drop(admin);
    // Refuses every produce, fetch and offset look-up.
    let (fake, seen) = fake_broker(broker.addr, 0, DATA).await;

    let producer = Producer::new(ProducerConfig {
        acks: Acks::All,
        retry_backoff: Duration::from_millis(10),
        delivery_timeout: Duration::from_secs(30),
        ..ProducerConfig::new(fake.to_string())
    });
    let mut deliveries = Vec::new();
    for i in 0..100u32 {
        let value = format!("v{i:03}");
        deliveries.push(
            producer
                .send_record(ProducerRecord {
                    topic: "follow",
                    partition: Some(i % 2),
                    value: Some(value.as_bytes()),
                    ..Default::default()
                })
                .await
                .unwrap(),
        );
    }
    for d in deliveries {
        let meta = tokio::time::timeout(Duration::from_secs(30), d)
            .await
            .expect("delivered in time")
            .expect("the record was acknowledged by the leader");
        assert!(meta.offset.is_some());
    }
    producer.close().await;
    // Metadata named the real broker before the first send: the producer
    // went there directly.
    let refused_producing = seen.refused.load(Ordering::SeqCst);
    assert_eq!(refused_producing, 0, "no produce went to the fake");

    let partitions = stored(&broker, "follow", 2).await;
    for (p, values) in partitions.iter().enumerate() {
        let want: Vec<String> = (0..100)
            .filter(|i| i % 2 == p)
            .map(|i| format!("v{i:03}"))
            .collect();
        assert_eq!(
            values, &want,
            "partition {p} holds its records once, in order"
        );
    }

    // The consumer too goes straight to the leader Metadata names: no
    // look-up or fetch reaches the fake that refuses them all. Through a
    // fake that names itself the leader for the consumer's two offset
    // look-ups (which it serves) and then refuses fetches, the consumer
    // follows the refusal to the real broker.
    let lookups_only: &[ApiKey] = &[ApiKey::ListOffsets, ApiKey::Fetch];
    let (fake_fetch, seen_fetch) = fake_broker(broker.addr, 2, lookups_only).await;
    for (addr, seen, refusals) in [(fake, &seen, false), (fake_fetch, &seen_fetch, true)] {
        let before = seen.refused.load(Ordering::SeqCst);
        let mut consumer = Consumer::connect(ConsumerConfig {
            offset_reset: OffsetReset::Earliest,
            max_wait: Duration::from_millis(100),
            ..ConsumerConfig::new(addr.to_string())
        })
        .await
        .unwrap();
        consumer
            .assign(vec![("follow".into(), 0), ("follow".into(), 1)])
            .await
            .expect("the offset look-up goes to the leader");
        let mut got = Vec::new();
        let read = async {
            while got.len() < 100 {
                for r in consumer.poll().await.expect("fetch follows the leader") {
                    got.push((r.partition, r.offset()));
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("every record consumed through the leader");
        got.sort();
        let want: Vec<(u32, u64)> = (0..2).flat_map(|p| (0..50).map(move |o| (p, o))).collect();
        assert_eq!(got, want, "every record once");
        let refused = seen.refused.load(Ordering::SeqCst) - before;
        assert_eq!(
            refused > 0,
            refusals,
            "refusals seen by the consumer: {refused}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_lands_every_record_once_in_order_when_the_leader_moves() {
    const RECORDS: usize = 3000;
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "moves", 2, TopicConfig::default()).await;
    drop(admin);
    // Serves 20 produce requests, then says "not leader" mid-stream.
    let (fake, seen) = fake_broker(broker.addr, 20, DATA).await;

    let producer = Producer::new(ProducerConfig {
        acks: Acks::All,
        idempotence: true,
        max_in_flight: 5,
        batch_bytes: 1024,
        linger: Duration::from_millis(1),
        retry_backoff: Duration::from_millis(10),
        delivery_timeout: Duration::from_secs(60),
        ..ProducerConfig::new(fake.to_string())
    });
    let mut deliveries = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let value = format!("r{i:05}");
        deliveries.push(
            producer
                .send_record(ProducerRecord {
                    topic: "moves",
                    partition: Some((i % 2) as u32),
                    value: Some(value.as_bytes()),
                    ..Default::default()
                })
                .await
                .unwrap(),
        );
    }
    let mut acked = HashMap::new();
    for (i, d) in deliveries.into_iter().enumerate() {
        let meta = tokio::time::timeout(Duration::from_secs(60), d)
            .await
            .expect("delivered in time")
            .unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        acked.insert(format!("r{i:05}"), (meta.partition, meta.offset.unwrap()));
    }
    producer.close().await;
    assert!(seen.served.load(Ordering::SeqCst) >= 20);
    assert!(
        seen.refused.load(Ordering::SeqCst) > 0,
        "the leader moved while records were in flight"
    );

    let partitions = stored(&broker, "moves", 2).await;
    for (p, values) in partitions.iter().enumerate() {
        let want: Vec<String> = (0..RECORDS)
            .filter(|i| i % 2 == p)
            .map(|i| format!("r{i:05}"))
            .collect();
        assert_eq!(
            values.len(),
            want.len(),
            "partition {p}: every record exactly once"
        );
        assert_eq!(values, &want, "partition {p}: in the order sent");
        for (offset, v) in values.iter().enumerate() {
            assert_eq!(
                acked[v],
                (p as u32, offset as u64),
                "{v} acknowledged where stored"
            );
        }
    }
}

/// A refusal that says the leader moved is retried on the leader the next
/// Metadata names within milliseconds, not after the producer's ordinary
/// retry backoff (set to 2 s here: its first wait would be 4 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_leader_is_found_at_once_not_after_the_retry_backoff() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "quick", 1, TopicConfig::default()).await;
    drop(admin);
    // Serves one produce request, then refuses with NotLeaderForPartition.
    let (fake, seen) = fake_broker(broker.addr, 1, DATA).await;
    let producer = Producer::new(ProducerConfig {
        acks: Acks::All,
        retry_backoff: Duration::from_secs(2),
        delivery_timeout: Duration::from_secs(60),
        ..ProducerConfig::new(fake.to_string())
    });
    let send = |v: &'static str| {
        let producer = &producer;
        async move {
            producer
                .send_record(ProducerRecord {
                    topic: "quick",
                    partition: Some(0),
                    value: Some(v.as_bytes()),
                    ..Default::default()
                })
                .await
                .unwrap()
                .await
                .unwrap()
        }
    };
    assert_eq!(send("first").await.offset, Some(0), "served by the fake");
    let started = std::time::Instant::now();
    assert_eq!(send("second").await.offset, Some(1), "on the real leader");
    let took = started.elapsed();
    // Refused at least once (again if a retry beat the Metadata refresh).
    assert!(
        seen.refused.load(Ordering::SeqCst) >= 1,
        "the fake refused it"
    );
    assert!(
        took < Duration::from_secs(1),
        "the new leader was found in {took:?}, not after the 4 s retry backoff"
    );
    producer.close().await;
}
