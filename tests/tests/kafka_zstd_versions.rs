//! zstd and the request versions before it (KIP-110), as Kafka answers: a
//! Produce older than v7 carrying a zstd-compressed batch is refused for
//! that partition with `UNSUPPORTED_COMPRESSION_TYPE` and nothing of it is
//! written (other partitions of the request are served), and a Fetch older
//! than v10 of a topic whose `compression.type` is zstd gets that error for
//! the partition instead of batches its client may not read.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use sluice_protocol::batch::Compression;
use sluice_protocol::batch::compression::{Codec, compress_batch};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::fetch::{FetchPartition, FetchRequest, FetchResponse, FetchTopic};
use sluice_protocol::kafka::io::Records;
use sluice_protocol::kafka::produce::{
    ProducePartitionData, ProduceRequest, ProduceResponse, ProduceTopicData,
};
use sluice_protocol::kafka::{ApiKey, decode};
use sluice_protocol::wire::topic_config::{TopicCompression, TopicConfig};
use sluice_tests::kafka::{call, read_response, request_frame};
use sluice_tests::{TestBroker, batch_sized_now, create_topic};

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Produces `batches` (topic, bytes) in one request of `version`; returns
/// each partition's error code and base offset.
fn produce(s: &mut TcpStream, version: i16, batches: &[(&str, &BytesMut)]) -> Vec<(i16, i64)> {
    let mut body = Vec::new();
    let mut topics = Vec::new();
    for (topic, bytes) in batches {
        topics.push(ProduceTopicData {
            name: (*topic).to_owned(),
            partitions: vec![ProducePartitionData {
                index: 0,
                records: Some(Records {
                    start: body.len(),
                    len: bytes.len(),
                }),
            }],
        });
        body.extend_from_slice(bytes);
    }
    let mut req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 5000,
        topics,
    };
    s.write_all(&request_frame(version, 3, &mut req, &body))
        .unwrap();
    let (_, answer) = read_response(s, ApiKey::Produce.response_header_version(version));
    let r: ProduceResponse = decode(&answer, version).unwrap();
    r.topics
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| (p.error_code, p.base_offset))
        .collect()
}

/// Fetches partition 0 of `topic` from 0 at `version`: its error code and
/// record bytes.
fn fetch(s: &mut TcpStream, version: i16, topic: &str) -> (i16, usize) {
    let mut req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 0,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: vec![FetchTopic {
            topic: topic.to_owned(),
            topic_id: [0; 16],
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: -1,
                fetch_offset: 0,
                last_fetched_epoch: -1,
                log_start_offset: -1,
                partition_max_bytes: 1 << 20,
            }],
        }],
        ..FetchRequest::default()
    };
    let r: FetchResponse = call(s, version, &mut req);
    let p = &r.topics[0].partitions[0];
    (p.error_code, p.records.map_or(0, |r| r.len))
}

#[tokio::test]
async fn zstd_needs_produce_v7_and_fetch_v10() {
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "mixed", 1, TopicConfig::default()).await;
    create_topic(&mut c, "other", 1, TopicConfig::default()).await;
    let zstd_config = TopicConfig {
        compression: Some(TopicCompression::Zstd),
        ..TopicConfig::default()
    };
    create_topic(&mut c, "zonly", 1, zstd_config).await;
    let plain = batch_sized_now("plain", 3, 100);
    let zstd =
        compress_batch(&batch_sized_now("z", 3, 100), Codec::new(Compression::Zstd)).unwrap();
    let gzip =
        compress_batch(&batch_sized_now("g", 3, 100), Codec::new(Compression::Gzip)).unwrap();
    // Two batches in one record set, the zstd one second.
    let mut plain_then_zstd = plain.clone();
    plain_then_zstd.extend_from_slice(&zstd);
    let mut s = connect(&b);
    for v in 3..=6 {
        let got = produce(
            &mut s,
            v,
            &[
                ("mixed", &zstd),
                ("zonly", &plain_then_zstd),
                ("other", &gzip),
            ],
        );
        let codes: Vec<i16> = got.iter().map(|(c, _)| *c).collect();
        assert_eq!(
            codes,
            [
                code::UNSUPPORTED_COMPRESSION_TYPE,
                code::UNSUPPORTED_COMPRESSION_TYPE,
                code::NONE
            ],
            "v{v}"
        );
    }
    // Nothing was written but the gzip batches: from v7 both are taken.
    let got = produce(
        &mut s,
        7,
        &[
            ("mixed", &zstd),
            ("zonly", &plain_then_zstd),
            ("other", &gzip),
        ],
    );
    assert_eq!(got, [(code::NONE, 0), (code::NONE, 0), (code::NONE, 12)]);
    // A plain batch to the zstd topic (which the broker compresses) is
    // fine at any version.
    assert_eq!(produce(&mut s, 3, &[("zonly", &plain)]), [(code::NONE, 6)]);

    for v in 4..=9 {
        let (error, _) = fetch(&mut s, v, "zonly");
        assert_eq!(error, code::UNSUPPORTED_COMPRESSION_TYPE, "v{v}");
        // A topic that keeps the producer's codec is served as stored
        // (its zstd batch included), as Kafka serves it.
        let (error, len) = fetch(&mut s, v, "mixed");
        assert_eq!((error, len > 0), (code::NONE, true), "v{v}");
    }
    for v in 10..=12 {
        let (error, len) = fetch(&mut s, v, "zonly");
        assert_eq!((error, len > 0), (code::NONE, true), "v{v}");
    }
}
