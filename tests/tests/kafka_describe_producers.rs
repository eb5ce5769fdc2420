//! DescribeProducers (Kafka's `kafka-transactions.sh describe-producers`):
//! each partition's leader lists the idempotent producers it holds state
//! for, with the newest epoch and the last sequence appended, the same
//! after a restart (the table is rebuilt); plain batches add none; an
//! unknown topic or partition is answered for that partition alone.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use sluice_protocol::batch::{BatchBuilder, NewRecord};
use sluice_protocol::kafka::admin::{InitProducerIdRequest, InitProducerIdResponse};
use sluice_protocol::kafka::describe_producers::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeProducersTopic,
};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::io::Records;
use sluice_protocol::kafka::produce::{
    ProducePartitionData, ProduceRequest, ProduceResponse, ProduceTopicData,
};
use sluice_protocol::kafka::{ApiKey, decode};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::{call, read_response, request_frame};
use sluice_tests::{TestBroker, batch_of, create_topic};

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A batch of `n` records of producer `pid`, epoch 0, from `seq`.
fn idempotent_batch(pid: i64, seq: i32, n: usize) -> BytesMut {
    let mut b = BatchBuilder::new().producer(pid, 0, seq);
    for _ in 0..n {
        b.push(&NewRecord {
            timestamp: now_ms(),
            key: None,
            value: Some(b"v"),
            headers: &[],
        });
    }
    b.finish()
}

fn produce(s: &mut TcpStream, topic: &str, partition: i32, batch: &BytesMut) {
    let mut req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 5000,
        topics: vec![ProduceTopicData {
            name: topic.to_owned(),
            partitions: vec![ProducePartitionData {
                index: partition,
                records: Some(Records {
                    start: 0,
                    len: batch.len(),
                }),
            }],
        }],
    };
    s.write_all(&request_frame(9, 5, &mut req, batch)).unwrap();
    let (_, body) = read_response(s, ApiKey::Produce.response_header_version(9));
    let r: ProduceResponse = decode(&body, 9).unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, code::NONE, "{r:?}");
}

/// Per partition asked: (index, error, [(producer id, epoch, last sequence)]).
type Described = Vec<(i32, i16, Vec<(i64, i32, i32)>)>;

fn describe(s: &mut TcpStream) -> (Described, Vec<i64>) {
    let mut req = DescribeProducersRequest {
        topics: vec![
            DescribeProducersTopic {
                name: "idem".into(),
                partition_indexes: vec![0, 1, 9],
            },
            DescribeProducersTopic {
                name: "never-made".into(),
                partition_indexes: vec![0],
            },
        ],
    };
    let r: DescribeProducersResponse = call(s, 0, &mut req);
    let names: Vec<&str> = r.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["idem", "never-made"]);
    let mut stamps = Vec::new();
    let described = r
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| {
            if p.error_code != code::NONE {
                assert!(p.error_message.is_some(), "{p:?}");
            }
            let producers = p
                .active_producers
                .iter()
                .map(|a| {
                    assert_eq!((a.coordinator_epoch, a.current_txn_start_offset), (-1, -1));
                    stamps.push(a.last_timestamp);
                    (a.producer_id, a.producer_epoch, a.last_sequence)
                })
                .collect();
            (p.partition_index, p.error_code, producers)
        })
        .collect();
    (described, stamps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitions_leader_lists_its_idempotent_producers() {
    let mut b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "idem", 2, TopicConfig::default()).await;
    let mut s = connect(&b);
    let mut pids = Vec::new();
    for _ in 0..2 {
        let mut req = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
        };
        let r: InitProducerIdResponse = call(&mut s, 4, &mut req);
        assert_eq!(r.error_code, code::NONE);
        pids.push(r.producer_id);
    }
    pids.sort_unstable();
    let before = now_ms();
    produce(&mut s, "idem", 0, &idempotent_batch(pids[1], 0, 3));
    produce(&mut s, "idem", 0, &idempotent_batch(pids[1], 3, 2));
    produce(&mut s, "idem", 0, &idempotent_batch(pids[0], 0, 1));
    // Not idempotent: no producer state.
    produce(&mut s, "idem", 1, &batch_of(&["plain", "plain"]));
    let want: Described = vec![
        (0, code::NONE, vec![(pids[0], 0, 0), (pids[1], 0, 4)]),
        (1, code::NONE, Vec::new()),
        (9, code::UNKNOWN_TOPIC_OR_PARTITION, Vec::new()),
        (0, code::UNKNOWN_TOPIC_OR_PARTITION, Vec::new()),
    ];
    let (got, stamps) = describe(&mut s);
    assert_eq!(got, want);
    let after = now_ms();
    assert!(
        stamps.iter().all(|t| (before..=after).contains(t)),
        "{stamps:?} not within {before}..={after}"
    );
    // The table is rebuilt at a restart, clean or not.
    drop(s);
    b.kill();
    b.restart();
    let mut s = connect(&b);
    let (got, _) = describe(&mut s);
    assert_eq!(got, want);
}
