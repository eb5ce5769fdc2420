//! Topics created on first use through the native protocol: Metadata
//! version 3's `allow_auto_create`, the library's producer and `sluice
//! produce`, with the broker's `auto_create_topics` on and off.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_client::{ClientError, Connection, Producer, ProducerConfig};
use sluice_protocol::wire::metadata::{MetadataRequest, MetadataRequestV3, MetadataResponse};
use sluice_protocol::wire::{ApiKey, ErrorCode};
use sluice_tests::{broker_creating_topics as broker, sluice_with_input as sluice};

/// Each topic's name, error and partition count, in the answer's order.
fn rows(m: MetadataResponse) -> Vec<(String, ErrorCode, usize)> {
    m.topics
        .into_iter()
        .map(|t| (t.name, t.error_code, t.partitions.len()))
        .collect()
}

fn row(name: &str, error: ErrorCode, partitions: usize) -> (String, ErrorCode, usize) {
    (name.to_owned(), error, partitions)
}

/// Metadata of `names` at version 3 with `allow_auto_create` as given.
async fn ask_v3(
    c: &mut Connection,
    names: &[&str],
    allow_auto_create: bool,
) -> Vec<(String, ErrorCode, usize)> {
    let req = MetadataRequestV3 {
        topics: Some(names.iter().map(|n| (*n).to_owned()).collect()),
        allow_auto_create,
    };
    c.send_version(ApiKey::Metadata, 3, &req, &[])
        .await
        .unwrap();
    rows(c.recv::<MetadataResponse>().await.unwrap().0)
}

async fn topic_names(c: &mut Connection) -> Vec<String> {
    let mut names: Vec<String> = c
        .metadata(None)
        .await
        .unwrap()
        .topics
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.sort();
    names
}

/// A producer of `config` sending to `topic` gets `UnknownTopicOrPartition`.
async fn send_fails_on_an_unknown_topic(config: ProducerConfig, topic: &str) {
    let producer = Producer::new(config);
    let sent = producer.send(topic, None, b"v").await;
    assert!(
        matches!(
            sent,
            Err(ClientError::Broker {
                code: ErrorCode::UnknownTopicOrPartition,
                ..
            })
        ),
        "{sent:?}"
    );
    producer.close().await;
}

#[tokio::test]
async fn a_version_3_metadata_request_creates_the_topics_it_names_when_it_allows_it() {
    let (b, _f) = broker(true);
    let mut c = b.connect().await;
    // Not allowed by the request, or asked in a version that cannot say:
    // nothing is created.
    assert_eq!(
        ask_v3(&mut c, &["quiet"], false).await,
        vec![row("quiet", ErrorCode::UnknownTopicOrPartition, 0)]
    );
    let v2 = MetadataRequest {
        topics: Some(vec!["quiet".to_owned()]),
    };
    c.send_version(ApiKey::Metadata, 2, &v2, &[]).await.unwrap();
    assert_eq!(
        rows(c.recv::<MetadataResponse>().await.unwrap().0),
        vec![row("quiet", ErrorCode::UnknownTopicOrPartition, 0)]
    );
    assert!(topic_names(&mut c).await.is_empty());
    // Allowed: created once with the default partition count, and described
    // next to names that cannot be topics and two that collide.
    assert_eq!(
        ask_v3(
            &mut c,
            &[
                "orders",
                "orders",
                "__sluice_reserved",
                "a/b",
                "dot.ted",
                "dot_ted"
            ],
            true
        )
        .await,
        vec![
            row("orders", ErrorCode::None, 3),
            row("__sluice_reserved", ErrorCode::InvalidTopicName, 0),
            row("a/b", ErrorCode::InvalidTopicName, 0),
            row("dot.ted", ErrorCode::None, 3),
            row("dot_ted", ErrorCode::InvalidTopicName, 0),
        ]
    );
    assert_eq!(topic_names(&mut c).await, ["dot.ted", "orders"]);
    // The library's own calls: plain Metadata creates nothing; the
    // creating one does.
    let m = c.metadata(Some(vec!["plain".to_owned()])).await.unwrap();
    assert_eq!(m.topics[0].error_code, ErrorCode::UnknownTopicOrPartition);
    let m = c.metadata_creating(vec!["asked".to_owned()]).await.unwrap();
    assert_eq!(rows(m), vec![row("asked", ErrorCode::None, 3)]);
    assert_eq!(topic_names(&mut c).await, ["asked", "dot.ted", "orders"]);
    assert!(
        b.log().contains("created topic on first use"),
        "{}",
        b.log_tail(20)
    );
}

#[tokio::test]
async fn without_auto_create_topics_nothing_is_created() {
    let (b, _f) = broker(false);
    let mut c = b.connect().await;
    assert_eq!(
        ask_v3(&mut c, &["orders"], true).await,
        vec![row("orders", ErrorCode::UnknownTopicOrPartition, 0)]
    );
    // The producer's first send fails on the unknown topic.
    send_fails_on_an_unknown_topic(ProducerConfig::new(b.addr.to_string()), "orders").await;
    let out = sluice(&b.addr.to_string(), &["produce", "orders"], b"v\n");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("create it first"), "{stderr}");
    assert!(topic_names(&mut c).await.is_empty());
}

#[tokio::test]
async fn producers_create_the_topics_they_send_to() {
    let (b, _f) = broker(true);
    let addr = b.addr.to_string();
    // The library's producer, by default.
    let producer = Producer::new(ProducerConfig::new(addr.clone()));
    let mut acks = Vec::new();
    for i in 0..30 {
        let v = format!("value-{i}");
        acks.push(
            producer
                .send("lib-made", Some(v.as_bytes()), v.as_bytes())
                .await
                .unwrap(),
        );
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close().await;
    // ... but not when told not to.
    let mut config = ProducerConfig::new(addr.clone());
    config.allow_auto_create_topics = false;
    send_fails_on_an_unknown_topic(config, "not-made").await;
    // `sluice produce`; its records read back.
    let out = sluice(&addr, &["produce", "cli-made"], b"one\ntwo\nthree\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sluice(
        &addr,
        &[
            "consume",
            "cli-made",
            "--from-beginning",
            "--count",
            "3",
            "--timeout-ms",
            "20000",
        ],
        b"",
    );
    let mut lines: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    lines.sort();
    assert_eq!(lines, ["one", "three", "two"]);
    // A consumer does not create the topic it reads.
    let out = sluice(&addr, &["consume", "read-only", "--timeout-ms", "100"], b"");
    assert_eq!(out.status.code(), Some(1));
    let mut c = b.connect().await;
    assert_eq!(topic_names(&mut c).await, ["cli-made", "lib-made"]);
    let m = c.metadata(None).await.unwrap();
    assert!(m.topics.iter().all(|t| t.partitions.len() == 3), "{m:?}");
}
