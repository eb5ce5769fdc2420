//! ListOffsets through the Kafka listener: earliest, latest, by timestamp
//! (the first record at or after it, inside its batch, with that record's
//! timestamp) and the largest timestamp (v7); a timestamp later than every
//! record answers offset -1 and timestamp -1, as Kafka does (the native
//! protocol answers the high watermark there instead).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::batch::{BatchBuilder, NewRecord};
use sluice_protocol::kafka::list_offsets::{
    EARLIEST, LATEST, ListOffsetsPartition, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopic, MAX_TIMESTAMP,
};
use sluice_protocol::wire::list_offsets::{self as native, OffsetSpec};
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::call;
use sluice_tests::{TestBroker, create_topic};

/// 2100-01-01: later than any record written by this test.
const FUTURE: i64 = 4_102_444_800_000;

/// ListOffsets of partition 0 of `topic` at `version`, one request per
/// timestamp (a partition named twice in one request is `INVALID_REQUEST`):
/// (error, offset, timestamp) each.
fn lookup(
    s: &mut TcpStream,
    version: i16,
    topic: &str,
    timestamps: &[i64],
) -> Vec<(i16, i64, i64)> {
    timestamps
        .iter()
        .map(|&timestamp| {
            let mut req = ListOffsetsRequest {
                replica_id: -1,
                isolation_level: 0,
                topics: vec![ListOffsetsTopic {
                    name: topic.to_owned(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: 0,
                        current_leader_epoch: -1,
                        timestamp,
                    }],
                }],
            };
            let r: ListOffsetsResponse = call(s, version, &mut req);
            let p = &r.topics[0].partitions[0];
            (p.error_code, p.offset, p.timestamp)
        })
        .collect()
}

/// One batch, as a producer's linger makes them: records `a`, `b`, `c` at
/// T, T + 5 and T + 10 ms, T being now; returns T and the batch.
fn three_records_now() -> (i64, bytes::BytesMut) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut batch = BatchBuilder::new();
    for (i, v) in ["a", "b", "c"].iter().enumerate() {
        batch.push(&NewRecord {
            timestamp: t + 5 * i as i64,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        });
    }
    (t, batch.finish())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timestamp_after_every_record_answers_minus_one_on_the_kafka_port() {
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "lo", 1, TopicConfig::default()).await;
    let (t, batch) = three_records_now();
    c.produce(Acks::Leader, 5000, &[("lo", 0, &batch)])
        .await
        .unwrap()
        .unwrap();

    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for version in [1, 4, 7] {
        let got = lookup(
            &mut s,
            version,
            "lo",
            &[EARLIEST, LATEST, 0, t + 3, t + 10, FUTURE, MAX_TIMESTAMP],
        );
        assert_eq!(
            got,
            vec![
                (0, 0, -1),
                (0, 3, -1),
                (0, 0, t),
                (0, 1, t + 5),
                (0, 2, t + 10),
                (0, -1, -1),
                // The largest timestamp (KIP-734) is a v7 query.
                if version >= 7 {
                    (0, 2, t + 10)
                } else {
                    (35, -1, -1)
                }
            ],
            "v{version}"
        );
    }
    // Leader epochs (v4+): the partition's current one (0 on a single
    // broker, as Metadata names it) for the latest offset and a found
    // record's batch's; -1 for the earliest (no epoch history is kept)
    // and where nothing was found.
    let epochs: Vec<i32> = [EARLIEST, LATEST, t + 3, FUTURE]
        .into_iter()
        .map(|timestamp| {
            let mut req = ListOffsetsRequest {
                replica_id: -1,
                isolation_level: 0,
                topics: vec![ListOffsetsTopic {
                    name: "lo".to_owned(),
                    partitions: vec![ListOffsetsPartition {
                        partition_index: 0,
                        current_leader_epoch: -1,
                        timestamp,
                    }],
                }],
            };
            let r: ListOffsetsResponse = call(&mut s, 4, &mut req);
            r.topics[0].partitions[0].leader_epoch
        })
        .collect();
    assert_eq!(epochs, [-1, 0, 0, -1]);
    // The largest timestamp of a partition with no records: -1, as in Kafka.
    create_topic(&mut c, "lo-empty", 1, TopicConfig::default()).await;
    assert_eq!(
        lookup(&mut s, 7, "lo-empty", &[MAX_TIMESTAMP]),
        vec![(0, -1, -1)]
    );

    // The native protocol answers the high watermark for the same query.
    let r = c
        .list_offsets(vec![native::ListOffsetsPartition {
            topic: "lo".to_owned(),
            partition: 0,
            spec: OffsetSpec::Timestamp(FUTURE),
        }])
        .await
        .unwrap();
    assert_eq!(r.partitions[0].offset, 3);
}

/// A batch whose `maxTimestamp` is -1 (what sarama before 1.45.1 sends) is
/// found by time like any other: the broker stores its largest record
/// timestamp, as Kafka does, and a consumer reads that value back in the
/// batch header.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_sent_without_its_max_timestamp_is_found_by_time() {
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "nomax", 1, TopicConfig::default()).await;
    let (t, mut bytes) = three_records_now();
    sluice_protocol::batch::set_max_timestamp(&mut bytes, -1).unwrap();
    c.produce(Acks::Leader, 5000, &[("nomax", 0, &bytes)])
        .await
        .unwrap()
        .unwrap();
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let got = lookup(&mut s, 7, "nomax", &[0, t + 3, MAX_TIMESTAMP]);
    assert_eq!(got, vec![(0, 0, t), (0, 1, t + 5), (0, 2, t + 10)]);
    let fetched = c
        .fetch(
            0,
            0,
            1 << 20,
            vec![sluice_protocol::wire::fetch::FetchPartition {
                topic: "nomax".to_owned(),
                partition: 0,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    let header = sluice_protocol::batch::verify_crc(&fetched[0].records).unwrap();
    assert_eq!(header.max_timestamp, t + 10);
}
