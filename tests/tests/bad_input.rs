//! Hostile and broken input gets clear errors, and the broker keeps
//! serving everyone else.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use sluice_client::{ClientError, Connection};
use sluice_protocol::wire::ApiKey;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::RequestHeader;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_of, create_topic, read_partition};

async fn expect_frame_error(conn: &mut Connection, code: ErrorCode) {
    match tokio::time::timeout(Duration::from_secs(10), conn.recv::<()>())
        .await
        .expect("answer in time")
    {
        Err(ClientError::Broker { code: c, message }) => {
            assert_eq!(c, code, "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected {code}, got {other:?}"),
    }
}

async fn assert_closed(conn: &mut Connection) {
    let r = tokio::time::timeout(Duration::from_secs(10), conn.recv_raw())
        .await
        .expect("closed in time");
    assert!(r.is_err(), "connection should be closed");
}

#[tokio::test]
async fn bad_input_gets_errors_and_others_keep_working() {
    let broker = TestBroker::start_with_args(&[]);
    let mut good = broker.connect().await;
    create_topic(&mut good, "t", 1, TopicConfig::default()).await;

    // Garbage bytes: a frame too short for its header -> one error, closed.
    let mut c = broker.connect().await;
    c.write_raw(&[0, 0, 0, 3, 1, 2, 3]).await.unwrap();
    expect_frame_error(&mut c, ErrorCode::InvalidRequest).await;
    assert_closed(&mut c).await;

    // A frame declaring 4 GiB -> MessageTooLarge before any body arrives.
    let mut c = broker.connect().await;
    c.write_raw(&[0xff, 0xff, 0xff, 0xff, 0, 1]).await.unwrap();
    expect_frame_error(&mut c, ErrorCode::MessageTooLarge).await;
    assert_closed(&mut c).await;

    // Unknown API key and unsupported version: error, connection stays open.
    let mut c = broker.connect().await;
    let mut frame = RequestHeader {
        api_key: 77,
        api_version: 0,
        correlation_id: 1,
        body_len: 0,
    }
    .encode(0)
    .unwrap()
    .to_vec();
    c.write_raw(&frame).await.unwrap();
    expect_frame_error(&mut c, ErrorCode::UnsupportedApi).await;
    frame = RequestHeader {
        api_key: ApiKey::Metadata as u16,
        api_version: 9,
        correlation_id: 2,
        body_len: 0,
    }
    .encode(0)
    .unwrap()
    .to_vec();
    c.write_raw(&frame).await.unwrap();
    expect_frame_error(&mut c, ErrorCode::UnsupportedVersion).await;
    // Undecodable body.
    let mut frame = RequestHeader {
        api_key: ApiKey::Metadata as u16,
        api_version: 0,
        correlation_id: 3,
        body_len: 3,
    }
    .encode(0)
    .unwrap()
    .to_vec();
    frame.extend_from_slice(&[9, 9, 9]);
    c.write_raw(&frame).await.unwrap();
    expect_frame_error(&mut c, ErrorCode::InvalidRequest).await;
    // Body length past the frame's end.
    let mut frame = RequestHeader {
        api_key: ApiKey::Metadata as u16,
        api_version: 0,
        correlation_id: 4,
        body_len: 100,
    }
    .encode(0)
    .unwrap()
    .to_vec();
    frame[0..4].copy_from_slice(&14u32.to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    c.write_raw(&frame).await.unwrap();
    expect_frame_error(&mut c, ErrorCode::InvalidRequest).await;
    // Still usable for a good request.
    let meta = c.metadata(None).await;
    assert!(meta.is_ok(), "{meta:?}");

    // A batch with a wrong CRC, an unknown topic and partition, an empty
    // record set: per-partition errors; nothing written. (A request lists
    // each partition once, so the empty set goes to a partition of its own.)
    create_topic(&mut c, "e", 1, TopicConfig::default()).await;
    let mut bad = batch_of(&["x", "y"]);
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    let ok = batch_of(&["fine"]);
    let r = c
        .produce(
            Acks::Leader,
            1000,
            &[
                ("t", 0, &bad),
                ("nope", 0, &ok),
                ("t", 5, &ok),
                ("e", 0, &[]),
            ],
        )
        .await
        .unwrap()
        .unwrap();
    let codes: Vec<_> = r.partitions.iter().map(|p| p.error_code).collect();
    assert_eq!(
        codes,
        [
            ErrorCode::CorruptRecord,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::UnknownTopicOrPartition,
            ErrorCode::InvalidRequest,
        ]
    );
    assert!(
        r.partitions[0].message.as_deref().unwrap().contains("CRC"),
        "{:?}",
        r.partitions[0].message
    );
    let r = c
        .produce(Acks::Leader, 1000, &[("t", 0, &ok)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.partitions[0].error_code, r.partitions[0].base_offset),
        (ErrorCode::None, 0),
        "the corrupt batch took no offsets"
    );

    // Invalid topic names.
    let names = ["../x", "", &"x".repeat(250), "a/b", "__sluice_reserved"];
    let r = c
        .create_topics(
            names
                .iter()
                .map(|n| NewTopic {
                    name: (*n).into(),
                    partitions: 1,
                    config: TopicConfig::default(),
                    replication_factor: None,
                })
                .collect(),
        )
        .await
        .unwrap();
    assert!(
        r.results
            .iter()
            .all(|t| t.error_code == ErrorCode::InvalidTopicName),
        "{r:?}"
    );
    let r = c
        .create_topics(vec![NewTopic {
            name: "zero".into(),
            partitions: 0,
            config: TopicConfig::default(),
            replication_factor: None,
        }])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::InvalidPartitions);
    assert!(!broker.data_dir.parent().unwrap().join("x-0").exists());

    // Fetch out of range and of an unknown partition.
    let f = c
        .fetch(
            0,
            0,
            1000,
            vec![
                FetchPartition {
                    topic: "t".into(),
                    partition: 0,
                    offset: 99,
                    max_bytes: 1000,
                },
                FetchPartition {
                    topic: "t".into(),
                    partition: 9,
                    offset: 0,
                    max_bytes: 1000,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(f[0].error_code, ErrorCode::OffsetOutOfRange);
    assert_eq!(f[1].error_code, ErrorCode::UnknownTopicOrPartition);

    // The well-behaved client saw none of it.
    let recs = read_partition(&mut good, "t", 0, 0).await;
    assert_eq!(recs.len(), 1);
    let stats = good.stats().await.unwrap();
    assert!(stats.get("bad_requests").unwrap() >= 6);
}

#[tokio::test]
async fn a_frame_cut_short_and_an_idle_client_are_dropped() {
    let broker =
        TestBroker::start_with_args(&["--config", &write_config("idle_timeout_ms = 500\n")]);
    let mut c = broker.connect().await;
    // Half a frame, then silence: closed after the idle timeout.
    c.write_raw(&[0, 0, 0, 50, 0, 1]).await.unwrap();
    let t = std::time::Instant::now();
    assert_closed(&mut c).await;
    assert!(t.elapsed() < Duration::from_secs(5));
    let mut good = broker.connect().await;
    assert!(good.metadata(None).await.is_ok());
}

fn write_config(text: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "sluice-test-{}-{}.toml",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn a_frame_trickled_in_is_dropped_at_the_frame_timeout() {
    let config = write_config("idle_timeout_ms = 5000\nframe_timeout_ms = 700\n# trickle\n");
    let broker = TestBroker::start_with_args(&["--config", &config]);
    let mut c = broker.connect().await;
    c.write_raw(&[0, 0, 0, 100, 0]).await.unwrap();
    let t = std::time::Instant::now();
    // One byte every 200 ms keeps the idle timeout from firing, not the
    // frame timeout.
    let mut closed = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if c.write_raw(&[0]).await.is_err() {
            closed = true;
            break;
        }
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(1), c.recv_raw()).await {
            assert!(r.is_err());
            closed = true;
            break;
        }
    }
    assert!(closed, "the trickling connection was not closed");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

#[tokio::test]
async fn acks_none_with_inconsistent_lengths_closes_the_connection() {
    use sluice_protocol::wire::produce::{ProducePartition, ProduceRequest};
    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    create_topic(&mut c, "t", 1, TopicConfig::default()).await;
    let b = batch_of(&["x"]);
    let req = ProduceRequest {
        acks: Acks::None,
        timeout_ms: 1000,
        partitions: vec![ProducePartition {
            topic: "t".into(),
            partition: 0,
            records_len: b.len() as u32 + 5,
        }],
    };
    c.send(ApiKey::Produce, &req, &b).await.unwrap();
    assert_closed(&mut c).await;
    let mut good = broker.connect().await;
    assert_eq!(read_partition(&mut good, "t", 0, 0).await.len(), 0);
}

/// Recomputes the CRC-32C of a batch (bytes 21..end, stored at 17..21), so
/// only the header's claims are wrong, not its checksum.
fn resign(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

async fn latest_offset(c: &mut Connection, topic: &str) -> u64 {
    use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, OffsetSpec};
    let r = c
        .list_offsets(vec![ListOffsetsPartition {
            topic: topic.into(),
            partition: 0,
            spec: OffsetSpec::Latest,
        }])
        .await
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    r.partitions[0].offset
}

/// Batch headers are claims: a gzip-flagged batch, a batch whose
/// lastOffsetDelta claims 2^31 offsets for one record, and a batch stamped a
/// day in the future are each refused with their own code, and take no
/// offsets; an honest batch after them gets the next offset.
#[tokio::test]
async fn batch_headers_that_lie_are_refused_and_take_no_offsets() {
    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    create_topic(&mut c, "h", 1, TopicConfig::default()).await;
    let r = c
        .produce(Acks::Leader, 1000, &[("h", 0, &batch_of(&["a", "b"]))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    assert_eq!(latest_offset(&mut c, "h").await, 2);

    let mut gzip = batch_of(&["x"]).to_vec();
    gzip[21..23].copy_from_slice(&1i16.to_be_bytes()); // attributes: gzip
    resign(&mut gzip);
    let mut liar = batch_of(&["x"]).to_vec();
    liar[23..27].copy_from_slice(&i32::MAX.to_be_bytes()); // lastOffsetDelta
    resign(&mut liar);
    let mut codec5 = batch_of(&["x"]).to_vec();
    codec5[21..23].copy_from_slice(&5i16.to_be_bytes()); // attributes: no such codec
    resign(&mut codec5);
    let mut gzip_liar = gzip.clone();
    gzip_liar[23..27].copy_from_slice(&i32::MAX.to_be_bytes());
    resign(&mut gzip_liar);
    let day_ms = 24 * 3600 * 1000;
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + day_ms;
    let mut late = batch_of(&["x"]).to_vec();
    late[27..35].copy_from_slice(&future.to_be_bytes()); // baseTimestamp
    late[35..43].copy_from_slice(&future.to_be_bytes()); // maxTimestamp
    resign(&mut late);

    // One partition may appear once per request: one request per bad batch.
    let cases = [
        (&gzip, ErrorCode::CorruptCompressedBatch),
        (&codec5, ErrorCode::UnsupportedCompression),
        (&liar, ErrorCode::CorruptRecord),
        (&gzip_liar, ErrorCode::CorruptRecord),
        (&late, ErrorCode::InvalidTimestamp),
    ];
    for acks in [Acks::Leader, Acks::All] {
        for (batch, code) in &cases {
            let r = c
                .produce(acks, 1000, &[("h", 0, batch)])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.partitions.len(), 1, "{r:?}");
            let p = &r.partitions[0];
            assert_eq!(p.error_code, *code, "{r:?}");
            assert!(!p.message.as_deref().unwrap_or_default().is_empty());
        }
        assert_eq!(latest_offset(&mut c, "h").await, 2, "no offsets taken");
    }

    let r = c
        .produce(Acks::Leader, 1000, &[("h", 0, &batch_of(&["c"]))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    assert_eq!(r.partitions[0].base_offset, 2);
    let recs = read_partition(&mut c, "h", 0, 0).await;
    let values: Vec<_> = recs.iter().map(|(o, v)| (*o, v.clone())).collect();
    assert_eq!(
        values,
        [
            (0, bytes::Bytes::from_static(b"a")),
            (1, bytes::Bytes::from_static(b"b")),
            (2, bytes::Bytes::from_static(b"c")),
        ]
    );
}

/// Every test here relies on the harness failing a test whose broker
/// panicked, even when the broker carried on serving (a panicking task of
/// a multi-threaded runtime does not end the process): a panic message in
/// the broker's log fails the test when the broker is dropped.
#[test]
#[should_panic(expected = "panicked during the test")]
fn a_panic_in_the_broker_log_fails_the_test() {
    use std::io::Write;
    let b = TestBroker::start();
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(b.data_dir.with_extension("log"))
        .unwrap();
    writeln!(
        log,
        "thread 'tokio-rt-worker' (1) panicked at broker/src/example.rs:1:1:"
    )
    .unwrap();
    drop(b);
}
