//! A fetch waits for data (long poll) and is woken by a later produce.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::{FlushMode, TopicConfig};
use sluice_tests::{TestBroker, batch_of, create_topic, decode_records};

fn at(topic: &str, offset: u64) -> Vec<FetchPartition> {
    vec![FetchPartition {
        topic: topic.into(),
        partition: 0,
        offset,
        max_bytes: 1 << 20,
    }]
}

#[tokio::test]
async fn fetch_waits_then_wakes_on_produce() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "lp", 1, TopicConfig::default()).await;

    // Nothing arrives: the fetch returns empty after about max_wait.
    let mut consumer = broker.connect().await;
    let t = Instant::now();
    let r = consumer.fetch(300, 1, 1 << 20, at("lp", 0)).await.unwrap();
    let waited = t.elapsed();
    assert!(r[0].records.is_empty());
    assert!(
        waited >= Duration::from_millis(280) && waited < Duration::from_secs(3),
        "{waited:?}"
    );

    // A produce 200 ms into a 10 s wait ends it early with the data.
    let addr = broker.addr;
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut p = sluice_client::Connection::connect(addr).await.unwrap();
        p.produce(Acks::Leader, 1000, &[("lp", 0, &batch_of(&["wake"]))])
            .await
            .unwrap();
    });
    let t = Instant::now();
    let r = consumer
        .fetch(10_000, 1, 1 << 20, at("lp", 0))
        .await
        .unwrap();
    let waited = t.elapsed();
    producer.await.unwrap();
    assert!(
        waited >= Duration::from_millis(150) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    let recs = decode_records(&r[0].records, 0);
    assert_eq!(recs.len(), 1);
    assert_eq!(&recs[0].1[..], b"wake");
}

#[tokio::test]
async fn fsync_topic_wakes_fetch_after_the_flush() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    let config = TopicConfig {
        flush: Some(FlushMode::BeforeAck),
        ..TopicConfig::default()
    };
    create_topic(&mut admin, "durable", 1, config).await;
    let mut consumer = broker.connect().await;
    let addr = broker.addr;
    let producer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut p = sluice_client::Connection::connect(addr).await.unwrap();
        p.produce(
            Acks::Leader,
            5000,
            &[("durable", 0, &batch_of(&["d0", "d1"]))],
        )
        .await
        .unwrap()
    });
    let r = consumer
        .fetch(10_000, 1, 1 << 20, at("durable", 0))
        .await
        .unwrap();
    let resp = producer.await.unwrap().unwrap();
    assert_eq!(resp.partitions[0].base_offset, 0);
    assert_eq!(decode_records(&r[0].records, 0).len(), 2);
    assert_eq!(r[0].high_watermark, 2);
}

#[tokio::test]
async fn deleting_the_topic_answers_a_waiting_fetch() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "gone", 1, TopicConfig::default()).await;
    let mut consumer = broker.connect().await;
    let deleter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        admin.delete_topics(vec!["gone".into()]).await.unwrap();
    });
    let t = Instant::now();
    let r = consumer
        .fetch(20_000, 1, 1 << 20, at("gone", 0))
        .await
        .unwrap();
    let waited = t.elapsed();
    deleter.await.unwrap();
    assert!(waited < Duration::from_secs(10), "{waited:?}");
    assert_eq!(
        r[0].error_code,
        sluice_protocol::wire::ErrorCode::UnknownTopicOrPartition
    );
}
