//! What the Kafka listener answers for partitions it cannot serve: an
//! errored partition's offsets are -1, as Kafka answers (librdkafka
//! compares the high watermark with its position before it looks at the
//! error, and took a 0 for the end of a partition read from 0), and a topic
//! name longer than any topic's is answered at once, without the name
//! being copied for each of the thousands of partitions a request may list
//! under it.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use sluice_client::Acks;
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::fetch::{FetchPartition, FetchRequest, FetchResponse, FetchTopic};
use sluice_protocol::kafka::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopic,
};
use sluice_protocol::kafka::offsets::{
    OffsetCommitPartition, OffsetCommitRequest, OffsetCommitResponse, OffsetCommitTopic,
};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::call;
use sluice_tests::{TestBroker, batch_of, create_topic};

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

fn fetch_partition(partition: i32) -> FetchPartition {
    FetchPartition {
        partition,
        current_leader_epoch: -1,
        fetch_offset: 0,
        last_fetched_epoch: -1,
        log_start_offset: -1,
        partition_max_bytes: 1 << 20,
    }
}

fn fetch_request(topics: Vec<(String, Vec<i32>)>) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: topics
            .into_iter()
            .map(|(topic, partitions)| FetchTopic {
                topic,
                topic_id: [0; 16],
                partitions: partitions.into_iter().map(fetch_partition).collect(),
            })
            .collect(),
        ..FetchRequest::default()
    }
}

#[tokio::test]
async fn errored_partitions_answer_minus_one_for_their_offsets() {
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "fa", 1, TopicConfig::default()).await;
    c.produce(
        Acks::Leader,
        5000,
        &[("fa", 0, &batch_of(&["a", "b", "c"]))],
    )
    .await
    .unwrap()
    .unwrap();
    let mut s = connect(&b);
    let mut req = fetch_request(vec![
        ("fa".into(), vec![0, 9]),
        ("no-such-topic".into(), vec![0]),
    ]);
    let r: FetchResponse = call(&mut s, 11, &mut req);
    let got: Vec<(i32, i16, i64, i64, i64)> = r
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            (
                p.partition,
                p.error_code,
                p.high_watermark,
                p.last_stable_offset,
                p.log_start_offset,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, code::NONE, 3, 3, 0),
            (9, code::UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1),
            (0, code::UNKNOWN_TOPIC_OR_PARTITION, -1, -1, -1),
        ]
    );
}

/// No fetch session is ever handed out. An incremental fetch (any epoch but
/// -1 and 0) is refused with `FETCH_SESSION_ID_NOT_FOUND`; a full fetch naming a
/// session (epoch -1 or 0: a client closing a session another broker gave
/// it) is served, as Kafka serves one that closes its session.
#[tokio::test]
async fn fetch_sessions_are_declined_as_kafka_declines_an_unknown_one() {
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "fs", 1, TopicConfig::default()).await;
    c.produce(Acks::Leader, 5000, &[("fs", 0, &batch_of(&["a"]))])
        .await
        .unwrap()
        .unwrap();
    let mut s = connect(&b);
    for (session_id, epoch, served) in [
        (5, -1, true),
        (5, 0, true),
        (0, -1, true),
        (5, 3, false),
        (0, 3, false),
        (5, -2, false),
        (0, i32::MIN, false),
    ] {
        let mut req = fetch_request(vec![("fs".into(), vec![0])]);
        req.session_id = session_id;
        req.session_epoch = epoch;
        let r: FetchResponse = call(&mut s, 12, &mut req);
        assert_eq!(r.session_id, 0);
        if served {
            assert_eq!(
                r.error_code,
                code::NONE,
                "session {session_id} epoch {epoch}"
            );
            let p = &r.topics[0].partitions[0];
            assert!(p.records.is_some_and(|r| r.len > 0), "{r:?}");
        } else {
            assert_eq!(
                r.error_code,
                code::FETCH_SESSION_ID_NOT_FOUND,
                "session {session_id} epoch {epoch}"
            );
        }
    }
}

/// A long poll ends once the partitions hold `min_bytes` past their
/// offsets (each counted up to its `partition_max_bytes`), as Kafka's does,
/// even when a partition's next batch does not fit in this answer: here
/// partition 1's 200 KB batch comes after partition 0's records, so only
/// partition 0's 1 KB is answered, at once rather than after `max_wait_ms`.
#[tokio::test]
async fn a_long_poll_ends_when_the_bytes_are_there_even_if_they_do_not_fit() {
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "lp", 2, TopicConfig::default()).await;
    let small = "s".repeat(1000);
    let big = "b".repeat(200_000);
    for (p, v) in [(0, &small), (1, &big)] {
        c.produce(Acks::Leader, 5000, &[("lp", p, &batch_of(&[v]))])
            .await
            .unwrap()
            .unwrap();
    }
    let mut s = connect(&b);
    let mut req = fetch_request(vec![("lp".into(), vec![0, 1])]);
    req.max_wait_ms = 10_000;
    req.min_bytes = 50_000;
    for p in &mut req.topics[0].partitions {
        p.partition_max_bytes = 100_000;
    }
    let started = std::time::Instant::now();
    let r: FetchResponse = call(&mut s, 11, &mut req);
    let took = started.elapsed();
    let parts = &r.topics[0].partitions;
    assert_eq!(parts[0].error_code, code::NONE);
    assert!(parts[0].records.is_some_and(|r| r.len > 1000), "{parts:?}");
    assert_eq!(parts[1].records.map_or(0, |r| r.len), 0, "{parts:?}");
    assert!(took < Duration::from_secs(5), "answered after {took:?}");
}

#[tokio::test]
async fn a_topic_name_longer_than_any_costs_no_memory_per_partition() {
    let b = TestBroker::start();
    let long = "x".repeat(32_767);
    let partitions: Vec<i32> = (0..10_000).collect();
    let before = b.peak_rss();
    let mut s = connect(&b);
    let unknown = |codes: Vec<i16>| {
        assert_eq!(codes.len(), partitions.len());
        assert!(
            codes.iter().all(|&c| c == code::UNKNOWN_TOPIC_OR_PARTITION),
            "{:?}",
            &codes[..3]
        );
    };
    for _ in 0..3 {
        let mut req = fetch_request(vec![(long.clone(), partitions.clone())]);
        let r: FetchResponse = call(&mut s, 11, &mut req);
        unknown(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code)
                .collect(),
        );
        let mut req = ListOffsetsRequest {
            replica_id: -1,
            isolation_level: 0,
            topics: vec![ListOffsetsTopic {
                name: long.clone(),
                partitions: partitions
                    .iter()
                    .map(|&partition_index| ListOffsetsPartition {
                        partition_index,
                        current_leader_epoch: -1,
                        timestamp: -1,
                    })
                    .collect(),
            }],
        };
        let r: ListOffsetsResponse = call(&mut s, 1, &mut req);
        unknown(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code)
                .collect(),
        );
        let mut req = OffsetCommitRequest {
            group_id: "g".into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![OffsetCommitTopic {
                name: long.clone(),
                partitions: partitions
                    .iter()
                    .map(|&partition_index| OffsetCommitPartition {
                        partition_index,
                        committed_offset: 1,
                        commit_timestamp_ms: -1,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                    })
                    .collect(),
            }],
        };
        let r: OffsetCommitResponse = call(&mut s, 2, &mut req);
        unknown(
            r.topics
                .iter()
                .flat_map(|t| &t.partitions)
                .map(|p| p.error_code)
                .collect(),
        );
    }
    // Each request is ~150–320 KB; copying the name per partition took
    // 0.3 to 1 GB for one of them.
    let grew = b.peak_rss().saturating_sub(before);
    assert!(grew < 150 << 20, "peak memory grew by {} MiB", grew >> 20);
}
