//! rskafka, a Kafka client written in Rust of its own (not librdkafka),
//! against the Kafka listener of a real broker and of a 3-node cluster:
//! topics created (again: refused; an invalid name refused), listed and
//! deleted by its controller client; records produced with every codec it
//! has, with keys, headers and timestamps, read back equal by offset;
//! offsets by spec and by time; a stream consumer woken by a record
//! produced while it waits; records deleted from a partition's start; an
//! unknown topic or partition refused.
//!
//! rskafka negotiates each API's version from ApiVersions, as the docs
//! advise Rust users to use such a client; this test is what backs that
//! advice.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use rskafka::chrono::{DateTime, TimeZone, Utc};
use rskafka::client::consumer::{StartOffset, StreamConsumerBuilder};
use rskafka::client::error::{Error, ProtocolError};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};
use rskafka::record::Record;
use rskafka::topic::Topic;
use sluice_tests::TestBroker;
use sluice_tests::cluster::TestCluster;

/// The codecs, each produced as one batch of [`PER_CODEC`] records to
/// partition `index % 3`.
const CODECS: [(&str, Compression); 5] = [
    ("none", Compression::NoCompression),
    ("gzip", Compression::Gzip),
    ("lz4", Compression::Lz4),
    ("snappy", Compression::Snappy),
    ("zstd", Compression::Zstd),
];
const PER_CODEC: usize = 10;
/// The first record's timestamp (ms); codec `c`'s record `i` has
/// `BASE_MS + 1000 c + i`.
const BASE_MS: i64 = 1_700_000_000_000;

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).unwrap()
}

fn record(codec: usize, i: usize) -> Record {
    let name = CODECS[codec].0;
    Record {
        key: Some(format!("k{i}").into_bytes()),
        value: Some(format!("{name}-{i}").into_bytes()),
        headers: [("codec".to_owned(), name.as_bytes().to_vec())].into(),
        timestamp: at(BASE_MS + 1000 * codec as i64 + i as i64),
    }
}

fn server_error(e: &Error) -> Option<ProtocolError> {
    match e {
        Error::ServerError { protocol_error, .. } => Some(*protocol_error),
        _ => None,
    }
}

async fn partition(client: &Client, topic: &str, p: i32) -> Arc<PartitionClient> {
    Arc::new(
        client
            .partition_client(topic, p, UnknownTopicHandling::Retry)
            .await
            .unwrap(),
    )
}

/// Every record of partition `p` from `from` up to `end`.
async fn read_all(client: &PartitionClient, from: i64, end: i64) -> Vec<(i64, Record)> {
    let mut got = Vec::new();
    let mut next = from;
    while next < end {
        let (records, high_watermark) = client
            .fetch_records(next, 1..1_000_000, 1_000)
            .await
            .unwrap();
        assert_eq!(high_watermark, end);
        assert!(!records.is_empty(), "no records at {next} of {end}");
        for r in records {
            assert!(r.offset >= next, "offset {} before {next}", r.offset);
            next = r.offset + 1;
            got.push((r.offset, r.record));
        }
    }
    got
}

/// `topic` as the metadata of some node lists it, once that agrees with
/// `exists` (a node may learn of a creation or deletion through the
/// controller a moment after the node that made it); at most 10 s.
async fn listed(client: &Client, topic: &str, exists: bool) -> Option<Topic> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = client
            .list_topics()
            .await
            .unwrap()
            .into_iter()
            .find(|t| t.name == topic);
        if found.is_some() == exists || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn life(brokers: Vec<String>, topic: &str, replication_factor: i16) {
    let client = ClientBuilder::new(brokers.clone())
        .client_id("sluice-rskafka")
        .build()
        .await
        .unwrap();
    let controller = client.controller_client().unwrap();
    controller
        .create_topic(topic, 3, replication_factor, 10_000)
        .await
        .unwrap();
    let again = controller
        .create_topic(topic, 3, replication_factor, 10_000)
        .await
        .unwrap_err();
    assert_eq!(
        server_error(&again),
        Some(ProtocolError::TopicAlreadyExists),
        "{again}"
    );
    let invalid = controller
        .create_topic("../etc", 1, replication_factor, 10_000)
        .await
        .unwrap_err();
    assert_eq!(
        server_error(&invalid),
        Some(ProtocolError::InvalidTopicException),
        "{invalid}"
    );
    assert_eq!(
        listed(&client, topic, true).await.unwrap().partitions,
        [0, 1, 2].into()
    );

    // One batch per codec; each partition's offsets dense from 0.
    let partitions = [
        partition(&client, topic, 0).await,
        partition(&client, topic, 1).await,
        partition(&client, topic, 2).await,
    ];
    let mut sent: [Vec<Record>; 3] = Default::default();
    for (c, (name, compression)) in CODECS.iter().enumerate() {
        let p = c % 3;
        let records: Vec<Record> = (0..PER_CODEC).map(|i| record(c, i)).collect();
        let offsets = partitions[p]
            .produce(records.clone(), *compression)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let first = sent[p].len() as i64;
        assert_eq!(
            offsets,
            (first..first + PER_CODEC as i64).collect::<Vec<_>>(),
            "{name}"
        );
        sent[p].extend(records);
    }

    // Read back equal, by offset; offsets by spec and by time.
    for (p, client) in partitions.iter().enumerate() {
        let end = sent[p].len() as i64;
        assert_eq!(client.get_offset(OffsetAt::Earliest).await.unwrap(), 0);
        assert_eq!(client.get_offset(OffsetAt::Latest).await.unwrap(), end);
        let got = read_all(client, 0, end).await;
        let want: Vec<(i64, Record)> = sent[p]
            .iter()
            .cloned()
            .zip(0..)
            .map(|(r, o)| (o, r))
            .collect();
        assert_eq!(got, want, "partition {p}");
    }
    // Partition 0 holds codec 0 (offsets 0..10), then codec 3 (10..20).
    let p0 = &partitions[0];
    for (ms, offset) in [
        (0, 0),
        (BASE_MS + 5, 5),
        (BASE_MS + 1000, 10),
        (BASE_MS + 3000 + 9, 19),
    ] {
        assert_eq!(
            p0.get_offset(OffsetAt::Timestamp(at(ms))).await.unwrap(),
            offset,
            "the first record at or after {ms} ms"
        );
    }

    // A stream consumer waiting at the end is woken by a new record from
    // another client (a connection's requests are answered in order, as
    // Kafka answers them, so a produce on the consumer's own connection
    // would wait for its fetch).
    let other = ClientBuilder::new(brokers.clone()).build().await.unwrap();
    let producer = partition(&other, topic, 1).await;
    let mut stream = StreamConsumerBuilder::new(Arc::clone(&partitions[1]), StartOffset::Latest)
        .with_max_wait_ms(5_000)
        .build();
    let end = sent[1].len() as i64;
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        producer
            .produce(vec![record(1, 99)], Compression::NoCompression)
            .await
            .unwrap()
    });
    let started = Instant::now();
    let (woken, high_watermark) = tokio::time::timeout(Duration::from_secs(20), stream.next())
        .await
        .expect("the stream consumer saw no record in 20 s")
        .unwrap()
        .unwrap();
    assert_eq!(late.await.unwrap(), vec![end]);
    assert_eq!((woken.offset, high_watermark), (end, end + 1));
    assert_eq!(woken.record, record(1, 99));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );

    // Records deleted from partition 0's start: reads below it are refused.
    p0.delete_records(4, 10_000).await.unwrap();
    assert_eq!(p0.get_offset(OffsetAt::Earliest).await.unwrap(), 4);
    let below = p0.fetch_records(0, 1..1_000_000, 100).await.unwrap_err();
    assert_eq!(
        server_error(&below),
        Some(ProtocolError::OffsetOutOfRange),
        "{below}"
    );
    assert_eq!(read_all(p0, 4, 20).await.len(), 16);

    // An unknown topic is refused by the broker; a partition the topic
    // does not have, by the client from the broker's metadata.
    let unknown = client
        .partition_client("no-such-topic", 0, UnknownTopicHandling::Error)
        .await
        .err()
        .unwrap();
    assert_eq!(
        server_error(&unknown),
        Some(ProtocolError::UnknownTopicOrPartition),
        "{unknown}"
    );
    let beyond = client
        .partition_client(topic, 3, UnknownTopicHandling::Error)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&beyond, Error::InvalidResponse(m) if m.contains("partition 3")),
        "{beyond}"
    );

    controller.delete_topic(topic, 10_000).await.unwrap();
    let gone = controller.delete_topic(topic, 10_000).await.unwrap_err();
    assert_eq!(
        server_error(&gone),
        Some(ProtocolError::UnknownTopicOrPartition),
        "{gone}"
    );
    assert!(listed(&client, topic, false).await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rskafka_takes_a_topic_through_its_whole_life() {
    let b = TestBroker::start();
    life(vec![b.kafka_addr.unwrap().to_string()], "rk", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rskafka_takes_a_replicated_topic_through_its_whole_life_on_a_cluster() {
    let c = TestCluster::start_with_kafka(3);
    c.wait_for_leader(Duration::from_secs(20));
    let brokers = c
        .nodes
        .iter()
        .map(|n| n.kafka_addr.unwrap().to_string())
        .collect();
    life(brokers, "rk3", 3).await;
}
