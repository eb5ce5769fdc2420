//! Pipelined requests on the real broker: every whole request frame already
//! read is served before the broker sends, the answers leave together in
//! one send and in request order, one request's error changes nothing for
//! the others, and a request that may wait never holds back the answers to
//! the requests before it.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use sluice_client::Connection;
use sluice_protocol::wire::api_versions::ApiVersionsRequest;
use sluice_protocol::wire::fetch::{FetchPartition, FetchRequest};
use sluice_protocol::wire::list_offsets::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsResponse, OffsetSpec,
};
use sluice_protocol::wire::metadata::MetadataRequest;
use sluice_protocol::wire::produce::{Acks, ProducePartition, ProduceRequest, ProduceResponse};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_protocol::wire::{ApiKey, ErrorCode, RequestHeader, decode_body, encode_body};
use sluice_tests::{TestBroker, batch_of, create_topic, read_partition};

/// A request body, encoded.
macro_rules! body {
    ($b:expr) => {{
        let mut v = Vec::new();
        encode_body(&$b, &mut v);
        v
    }};
}

/// One request frame: header, body bytes, raw tail.
fn frame(api_key: u16, version: u16, id: u32, body: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    out.extend_from_slice(body);
    let body_len = body.len();
    let header = RequestHeader {
        api_key,
        api_version: version,
        correlation_id: id,
        body_len: body_len as u32,
    }
    .encode(tail.len())
    .unwrap();
    out[..16].copy_from_slice(&header);
    out.extend_from_slice(tail);
    out
}

fn produce(id: u32, topic: &str, records: &[u8]) -> Vec<u8> {
    let req = ProduceRequest {
        acks: Acks::Leader,
        timeout_ms: 5000,
        partitions: vec![ProducePartition {
            topic: topic.to_owned(),
            partition: 0,
            records_len: records.len() as u32,
        }],
    };
    frame(ApiKey::Produce as u16, 0, id, &body!(req), records)
}

async fn counter(conn: &mut Connection, name: &str) -> u64 {
    let stats = conn.stats().await.unwrap();
    stats
        .counters
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no counter {name}"))
        .value
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_in_one_send_with_mixed_errors() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "p", 1, TopicConfig::default()).await;
    let first = batch_of(&["a", "b", "c"]);
    let second = batch_of(&["d", "e"]);

    let mut bytes = Vec::new();
    bytes.extend(frame(
        ApiKey::ApiVersions as u16,
        0,
        100,
        &body!(ApiVersionsRequest {}),
        &[],
    ));
    bytes.extend(produce(101, "p", &first));
    bytes.extend(frame(999, 0, 102, &body!(ApiVersionsRequest {}), &[]));
    bytes.extend(produce(103, "missing", &first));
    bytes.extend(frame(
        ApiKey::Metadata as u16,
        0,
        104,
        &body!(MetadataRequest { topics: None }),
        &[],
    ));
    bytes.extend(frame(
        ApiKey::Produce as u16,
        99,
        105,
        &body!(ApiVersionsRequest {}),
        &[],
    ));
    bytes.extend(produce(106, "p", &second));
    // A produce body that does not decode.
    bytes.extend(frame(ApiKey::Produce as u16, 0, 107, &[0xffu8; 3], &[]));
    let lookups = ListOffsetsRequest {
        partitions: vec![ListOffsetsPartition {
            topic: "p".into(),
            partition: 0,
            spec: OffsetSpec::Latest,
        }],
    };
    // ListOffsets may wait: what is held back before it goes out first.
    bytes.extend(frame(
        ApiKey::ListOffsets as u16,
        0,
        108,
        &body!(lookups),
        &[],
    ));
    bytes.extend(frame(
        ApiKey::ApiVersions as u16,
        0,
        109,
        &body!(ApiVersionsRequest {}),
        &[],
    ));

    let sends_before = counter(&mut admin, "response_sends").await;
    let mut c = broker.connect().await;
    c.write_raw(&bytes).await.unwrap();
    let mut answers = Vec::new();
    for _ in 0..10 {
        let (header, body, _) = tokio::time::timeout(Duration::from_secs(10), c.recv_raw())
            .await
            .expect("answer in time")
            .unwrap();
        answers.push((header.correlation_id, header.error_code, body));
    }
    let ids: Vec<u32> = answers.iter().map(|a| a.0).collect();
    assert_eq!(ids, (100..110).collect::<Vec<_>>(), "request order");
    let codes: Vec<ErrorCode> = answers.iter().map(|a| a.1).collect();
    use ErrorCode::{InvalidRequest, None as Fine, UnsupportedApi, UnsupportedVersion};
    assert_eq!(
        codes,
        [
            Fine,
            Fine,
            UnsupportedApi,
            Fine,
            Fine,
            UnsupportedVersion,
            Fine,
            InvalidRequest,
            Fine,
            Fine
        ]
    );
    let produced = |i: usize| {
        decode_body::<ProduceResponse>(&answers[i].2)
            .unwrap()
            .partitions
    };
    assert_eq!(produced(1)[0].error_code, ErrorCode::None);
    assert_eq!(produced(1)[0].base_offset, 0);
    assert_eq!(
        produced(3)[0].error_code,
        ErrorCode::UnknownTopicOrPartition
    );
    assert_eq!(produced(6)[0].error_code, ErrorCode::None);
    assert_eq!(produced(6)[0].base_offset, 3);
    let latest = decode_body::<ListOffsetsResponse>(&answers[8].2).unwrap();
    assert_eq!(latest.partitions[0].offset, 5);

    // The admin connection's own Stats answer counts once after its
    // snapshot; the ten answers left in two sends: the eight before the
    // ListOffsets together, then the last two together (the broker read all
    // ten frames at once: they were written by one small write).
    let sends = counter(&mut admin, "response_sends").await - sends_before - 1;
    assert!(sends <= 2, "{sends} sends for 10 pipelined answers");

    let values: Vec<_> = read_partition(&mut admin, "p", 0, 0)
        .await
        .into_iter()
        .map(|(o, v)| (o, String::from_utf8(v.to_vec()).unwrap()))
        .collect();
    let want: Vec<_> = ["a", "b", "c", "d", "e"]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as u64, (*v).to_owned()))
        .collect();
    assert_eq!(values, want);
}

#[tokio::test]
async fn an_answer_is_not_held_back_by_a_later_long_poll() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "w", 1, TopicConfig::default()).await;
    let batch = batch_of(&["x"]);
    let poll = FetchRequest {
        max_wait_ms: 30_000,
        min_bytes: 1 << 20,
        max_bytes: 1 << 20,
        partitions: vec![FetchPartition {
            topic: "w".into(),
            partition: 0,
            offset: 1,
            max_bytes: 1 << 20,
        }],
    };
    let mut bytes = produce(1, "w", &batch);
    bytes.extend(frame(ApiKey::Fetch as u16, 0, 2, &body!(poll), &[]));
    let mut c = broker.connect().await;
    c.write_raw(&bytes).await.unwrap();
    // The long poll waits 30 s; the produce answer must not wait with it.
    let (header, body, _) = tokio::time::timeout(Duration::from_secs(10), c.recv_raw())
        .await
        .expect("the produce answer came before the long poll ended")
        .unwrap();
    assert_eq!(header.correlation_id, 1);
    let resp = decode_body::<ProduceResponse>(&body).unwrap();
    assert_eq!(resp.partitions[0].error_code, ErrorCode::None);
}

#[tokio::test]
async fn answers_held_back_still_leave_when_a_later_request_closes_the_connection() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "c", 1, TopicConfig::default()).await;
    let batch = batch_of(&["y"]);
    // An acks=none produce whose lengths do not add up closes the
    // connection (it cannot be answered); the answers before it, held back
    // while it was buffered, are sent first.
    let bad = ProduceRequest {
        acks: Acks::None,
        timeout_ms: 1000,
        partitions: vec![ProducePartition {
            topic: "c".into(),
            partition: 0,
            records_len: batch.len() as u32 + 5,
        }],
    };
    let mut bytes = frame(
        ApiKey::ApiVersions as u16,
        0,
        1,
        &body!(ApiVersionsRequest {}),
        &[],
    );
    bytes.extend(produce(2, "c", &batch));
    bytes.extend(frame(ApiKey::Produce as u16, 0, 3, &body!(bad), &batch));
    let mut c = broker.connect().await;
    c.write_raw(&bytes).await.unwrap();
    for id in [1, 2] {
        let (header, _, _) = tokio::time::timeout(Duration::from_secs(10), c.recv_raw())
            .await
            .expect("answer in time")
            .unwrap();
        assert_eq!(
            (header.correlation_id, header.error_code),
            (id, ErrorCode::None)
        );
    }
    let end = tokio::time::timeout(Duration::from_secs(10), c.recv_raw())
        .await
        .expect("closed in time");
    assert!(end.is_err(), "the connection is closed after the answers");
    assert_eq!(read_partition(&mut admin, "c", 0, 0).await.len(), 1);
}

/// Only a produce carries bytes after its body: any other request with a
/// tail is refused (`InvalidRequest`, saying so) rather than kept in memory
/// for as long as it lasts, and the connection goes on.
#[tokio::test]
async fn a_request_other_than_produce_with_bytes_after_its_body_is_refused() {
    let broker = TestBroker::start();
    let mut bytes = frame(
        ApiKey::ApiVersions as u16,
        0,
        1,
        &body!(ApiVersionsRequest {}),
        &vec![7u8; 1 << 20],
    );
    bytes.extend(frame(
        ApiKey::ApiVersions as u16,
        0,
        2,
        &body!(ApiVersionsRequest {}),
        &[],
    ));
    let mut c = broker.connect().await;
    c.write_raw(&bytes).await.unwrap();
    let mut codes = Vec::new();
    for _ in 0..2 {
        let (header, body, _) = tokio::time::timeout(Duration::from_secs(10), c.recv_raw())
            .await
            .expect("answer in time")
            .unwrap();
        codes.push((header.correlation_id, header.error_code));
        if header.correlation_id == 1 {
            let text = String::from_utf8_lossy(&body).into_owned();
            assert!(text.contains("carries no bytes after its body"), "{text}");
        }
    }
    assert_eq!(
        codes,
        [(1, ErrorCode::InvalidRequest), (2, ErrorCode::None)]
    );
}
