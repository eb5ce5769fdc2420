//! Hostile and odd bytes on the Kafka port: an oversized frame, a frame
//! cut short, counts larger than the bytes that follow, an unknown API key
//! and version, records in an old message format. Each gets an error answer
//! or a closed connection, never a crash or a hang; the broker keeps
//! serving. Also: pipelined requests are answered in order, acks=0
//! produces get no answer at all, and control or transactional batches are
//! refused.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::kafka::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::fetch::{FetchPartition, FetchRequest, FetchResponse, FetchTopic};
use sluice_protocol::kafka::io::Records;
use sluice_protocol::kafka::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use sluice_protocol::kafka::produce::{
    ProducePartitionData, ProducePartitionResponse, ProduceRequest, ProduceResponse,
    ProduceTopicData,
};
use sluice_protocol::kafka::{ApiKey, decode};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::api_versions_request;
use sluice_tests::kafka::{read_response, request_frame};
use sluice_tests::{TestBroker, batch_of, create_topic};

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// The connection is closed by the broker (EOF or reset), within the
/// read timeout.
fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("the connection is still open after the read timeout")
        }
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("expected a closed connection, read {n} bytes"),
    }
}

/// A fresh connection still gets its ApiVersions answered.
fn assert_serving(b: &TestBroker) {
    api_versions(&mut connect(b), 77);
}

/// Asks ApiVersions (v3) with correlation id `id` and checks the answer.
fn api_versions(s: &mut TcpStream, id: i32) {
    s.write_all(&request_frame(3, id, &mut api_versions_request(), &[]))
        .unwrap();
    let (got, body) = read_response(s, 0);
    assert_eq!(got, id);
    let r: ApiVersionsResponse = decode(&body, 3).unwrap();
    assert_eq!(r.error_code, 0);
}

#[test]
fn oversized_truncated_and_miscounted_frames_close_the_connection() {
    let b = TestBroker::start_with_args(&["--log", "info"]);
    // A frame over max_frame_bytes: closed before anything is allocated.
    let mut s = connect(&b);
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 18, 0, 0]).unwrap();
    assert_closed(&mut s);
    // A negative length.
    let mut s = connect(&b);
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    assert_closed(&mut s);
    // A frame shorter than a request header.
    let mut s = connect(&b);
    s.write_all(&[0, 0, 0, 3, 0, 18, 0]).unwrap();
    assert_closed(&mut s);
    // A header whose client id runs past the frame.
    let mut s = connect(&b);
    s.write_all(&[0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0xff])
        .unwrap();
    assert_closed(&mut s);
    // Metadata v1 claiming 2^31 - 1 topics in a 4-byte body.
    let mut s = connect(&b);
    let mut f = request_frame(1, 5, &mut MetadataRequest::default(), &[]);
    let body_at = f.len() - 4;
    f[body_at..].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
    s.write_all(&f).unwrap();
    assert_closed(&mut s);
    // A compact array count (flexible Metadata v12) of 2^32 - 2.
    let mut s = connect(&b);
    let mut f = request_frame(12, 6, &mut MetadataRequest::default(), &[]);
    let body_at = f.len() - 4; // topics (1), 2 bools, tags
    f.truncate(body_at);
    f.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0]);
    let len = (f.len() - 4) as u32;
    f[..4].copy_from_slice(&len.to_be_bytes());
    s.write_all(&f).unwrap();
    assert_closed(&mut s);
    // A frame cut short by the client closing.
    let mut s = connect(&b);
    s.write_all(&[0, 0, 1, 0, 0, 18, 0, 0, 0, 0]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert_closed(&mut s);
    assert_serving(&b);
    assert!(!b.log().contains("panicked"), "{}", b.log());
}

/// An API or version not served closes the connection, as Kafka does,
/// after answering what came before it; only ApiVersions of any version is
/// answered (KIP-511). A bare error code in place of the layout a client
/// expects is what clients that skip ApiVersions cannot parse.
#[test]
fn unknown_apis_and_versions_close_the_connection_after_earlier_answers() {
    let b = TestBroker::start();
    let metadata = |id| request_frame(1, id, &mut MetadataRequest::default(), &[]);
    // An unknown API key, and Fetch v99, each behind a Metadata request
    // (and nothing after it: unread bytes would turn the close into a reset).
    for (key_and_version, what) in [
        ([0x03, 0xE7, 0, 0], "key 999"),
        ([0, 1, 0, 99], "Fetch v99"),
    ] {
        let mut s = connect(&b);
        let mut frames = metadata(1);
        let mut f = request_frame(0, 2, &mut api_versions_request(), &[]);
        f[4..8].copy_from_slice(&key_and_version);
        frames.extend(f);
        s.write_all(&frames).unwrap();
        let (id, _) = read_response(&mut s, 0);
        assert_eq!(id, 1, "{what}: the answer before it");
        assert_closed(&mut s);
    }
    // ApiVersions v99 (KIP-511; flexible, so header v2): a v0 answer with
    // error 35 and the ranges, and the connection goes on.
    let mut s = connect(&b);
    let mut f = request_frame(3, 3, &mut api_versions_request(), &[]);
    f[6..8].copy_from_slice(&99i16.to_be_bytes());
    s.write_all(&f).unwrap();
    let (id, body) = read_response(&mut s, 0);
    assert_eq!(id, 3);
    let r: ApiVersionsResponse = decode(&body, 0).unwrap();
    assert_eq!(r.error_code, code::UNSUPPORTED_VERSION);
    assert!(
        r.api_keys
            .iter()
            .any(|a| a.api_key == 18 && a.max_version == 3)
    );
    s.write_all(&metadata(4)).unwrap();
    assert_eq!(read_response(&mut s, 0).0, 4);
    // ApiVersions v3 naming the client's software with characters Kafka
    // does not take (KIP-511), or not at all: INVALID_REQUEST and no APIs,
    // and the connection goes on.
    for (id, name, version) in [(5, "", "1.0"), (6, "my client", "1.0"), (7, "x", "1+local")] {
        let mut req = ApiVersionsRequest {
            client_software_name: name.to_owned(),
            client_software_version: version.to_owned(),
        };
        s.write_all(&request_frame(3, id, &mut req, &[])).unwrap();
        let (got, body) = read_response(&mut s, 0);
        assert_eq!(got, id);
        let r: ApiVersionsResponse = decode(&body, 3).unwrap();
        assert_eq!(r.error_code, code::INVALID_REQUEST, "{name:?} {version:?}");
        assert!(r.api_keys.is_empty());
    }
    // A client id that is not UTF-8 is taken, as Kafka takes it (read with
    // replacement characters).
    let mut f = request_frame(3, 9, &mut api_versions_request(), &[]);
    assert_eq!(&f[14..26], b"sluice-tests");
    f[14] = 0xff;
    s.write_all(&f).unwrap();
    let (got, body) = read_response(&mut s, 0);
    assert_eq!(got, 9);
    assert_eq!(
        decode::<ApiVersionsResponse>(&body, 3).unwrap().error_code,
        0
    );
    // v2 has no names: the same connection is answered.
    s.write_all(&request_frame(
        2,
        8,
        &mut ApiVersionsRequest::default(),
        &[],
    ))
    .unwrap();
    let (got, body) = read_response(&mut s, 0);
    assert_eq!(got, 8);
    assert_eq!(
        decode::<ApiVersionsResponse>(&body, 2).unwrap().error_code,
        0
    );
    assert_serving(&b);
}

fn produce_request(acks: i16, topic: &str, len: usize) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 5000,
        topics: vec![ProduceTopicData {
            name: topic.to_owned(),
            partitions: vec![ProducePartitionData {
                index: 0,
                records: Some(Records { start: 0, len }),
            }],
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order_and_acks_0_gets_no_answer() {
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "pipe", 1, TopicConfig::default()).await;
    let batch = batch_of(&["a", "b"]);
    let mut s = connect(&b);
    // Produce acks=0, Produce acks=1, ApiVersions, Produce acks=-1: three
    // answers, in order; the first produce has none.
    let mut bytes = Vec::new();
    bytes.extend(request_frame(
        9,
        10,
        &mut produce_request(0, "pipe", batch.len()),
        &batch,
    ));
    bytes.extend(request_frame(
        7,
        11,
        &mut produce_request(1, "pipe", batch.len()),
        &batch,
    ));
    bytes.extend(request_frame(2, 12, &mut api_versions_request(), &[]));
    bytes.extend(request_frame(
        9,
        13,
        &mut produce_request(-1, "pipe", batch.len()),
        &batch,
    ));
    s.write_all(&bytes).unwrap();
    let (id, body) = read_response(&mut s, 0);
    assert_eq!(id, 11);
    let r: ProduceResponse = decode(&body, 7).unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(
        r.topics[0].partitions[0].base_offset, 2,
        "after acks=0's two records"
    );
    let (id, _) = read_response(&mut s, 0);
    assert_eq!(id, 12);
    let (id, body) = read_response(&mut s, 1);
    assert_eq!(id, 13);
    let r: ProduceResponse = decode(&body, 9).unwrap();
    assert_eq!(r.topics[0].partitions[0].base_offset, 4);
    // The answer carries the partition's log start offset (v5+), as Kafka's
    // does: 0, then where DeleteRecords moved it.
    assert_eq!(r.topics[0].partitions[0].log_start_offset, 0);
    use sluice_protocol::wire::delete_records::{DeleteRecordsRequest, RecordsBelow};
    c.delete_records(&DeleteRecordsRequest {
        partitions: vec![RecordsBelow {
            topic: "pipe".into(),
            partition: 0,
            before: Some(3),
        }],
    })
    .await
    .unwrap();
    s.write_all(&request_frame(
        9,
        14,
        &mut produce_request(-1, "pipe", batch.len()),
        &batch,
    ))
    .unwrap();
    let (id, body) = read_response(&mut s, 1);
    assert_eq!(id, 14);
    let r: ProduceResponse = decode(&body, 9).unwrap();
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.base_offset, p.log_start_offset), (6, 3), "{p:?}");
}

#[test]
fn records_in_an_old_message_format_are_refused_per_partition() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "old", 1, TopicConfig::default()).await;
    });
    let mut batch = batch_of(&["x"]).to_vec();
    batch[16] = 1; // magic 1
    let mut s = connect(&b);
    s.write_all(&request_frame(
        8,
        1,
        &mut produce_request(1, "old", batch.len()),
        &batch,
    ))
    .unwrap();
    let (_, body) = read_response(&mut s, 0);
    let r: ProduceResponse = decode(&body, 8).unwrap();
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, code::UNSUPPORTED_FOR_MESSAGE_FORMAT);
    // A record set too short to hold a batch header.
    let mut s = connect(&b);
    s.write_all(&request_frame(
        8,
        2,
        &mut produce_request(1, "old", 5),
        &batch,
    ))
    .unwrap();
    let (_, body) = read_response(&mut s, 0);
    let r: ProduceResponse = decode(&body, 8).unwrap();
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code::UNSUPPORTED_FOR_MESSAGE_FORMAT
    );
    // An unknown topic.
    let batch = batch_of(&["x"]);
    s.write_all(&request_frame(
        8,
        3,
        &mut produce_request(1, "nope", batch.len()),
        &batch,
    ))
    .unwrap();
    let (_, body) = read_response(&mut s, 0);
    let r: ProduceResponse = decode(&body, 8).unwrap();
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        code::UNKNOWN_TOPIC_OR_PARTITION
    );
}

#[test]
fn a_failed_acks_0_produce_closes_the_connection() {
    let b = TestBroker::start();
    let batch = batch_of(&["x"]);
    let mut s = connect(&b);
    // No answer is read for acks=0: the broker closes instead, so the
    // client does not go on as if the records were stored.
    s.write_all(&request_frame(
        9,
        1,
        &mut produce_request(0, "no-such-topic", batch.len()),
        &batch,
    ))
    .unwrap();
    assert_closed(&mut s);
    assert_serving(&b);
}

/// A broker started with these config-file settings.
fn broker_with(toml: &str) -> (TestBroker, tempfile::NamedTempFile) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    let path = f.path().display().to_string();
    (TestBroker::start_with_args(&["--config", &path]), f)
}

#[test]
fn kafka_connections_count_against_the_connection_cap_and_idle_ones_close() {
    let (b, _config) = broker_with("max_connections = 2\nidle_timeout_ms = 1500\n");
    // Two connections (one of each protocol) fill the cap...
    let mut first = connect(&b);
    let _native = std::net::TcpStream::connect(b.addr).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // ...so a third, on the Kafka port, is closed at once.
    let mut third = connect(&b);
    third
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    assert_closed(&mut third);
    // An idle Kafka connection is closed after idle_timeout_ms.
    let started = std::time::Instant::now();
    assert_closed(&mut first);
    assert!(started.elapsed() >= Duration::from_millis(1000));
}

/// Connections that send nothing cannot lock clients out by holding every
/// seat: once silent past their grace (one second without a first request)
/// each gives its seat to a newcomer, on either listener, while a client that
/// has been served keeps its connection.
#[test]
fn silent_connections_give_way_to_new_clients_at_the_cap() {
    let (b, _config) = broker_with("max_connections = 6\n");
    let mut served = connect(&b);
    api_versions(&mut served, 1);
    // Five silent connections take the other seats, on both listeners.
    let mut silent: Vec<TcpStream> = (0..5)
        .map(|i| match i % 2 {
            0 => connect(&b),
            _ => {
                let s = TcpStream::connect(b.addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                s
            }
        })
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    // Within their grace they keep their seats: a newcomer is closed.
    assert_closed(&mut connect(&b));
    std::thread::sleep(Duration::from_millis(1100));
    // Past it, five newcomers are served, each in a silent one's seat.
    let mut newcomers: Vec<TcpStream> = (0..5)
        .map(|i| {
            let mut s = connect(&b);
            api_versions(&mut s, 10 + i);
            s
        })
        .collect();
    for s in &mut silent {
        assert_closed(s);
    }
    // Every seat is now held by a connection served moments ago: those keep
    // them, and the next newcomer is closed.
    api_versions(&mut served, 2);
    assert_closed(&mut connect(&b));
    for (i, s) in newcomers.iter_mut().enumerate() {
        api_versions(s, 20 + i as i32);
    }
    // One leaves; its seat is free as soon as the broker sees it close.
    drop(newcomers.pop());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let stats = rt.block_on(async {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Ok(Ok(mut c)) = tokio::time::timeout(
                Duration::from_secs(5),
                sluice_client::Connection::connect(b.addr),
            )
            .await
                && let Ok(stats) = c.stats().await
            {
                return stats;
            }
        }
        panic!("no seat freed after a client left");
    });
    assert_eq!(stats.get("connections_displaced"), Some(5));
    assert!(stats.get("connections_rejected").unwrap() >= 2);
}

/// Produces `batch` to partition 0 of `topic` with acks=all (Produce v8)
/// and returns the partition's answer.
fn produce_v8(s: &mut TcpStream, id: i32, topic: &str, batch: &[u8]) -> ProducePartitionResponse {
    s.write_all(&request_frame(
        8,
        id,
        &mut produce_request(-1, topic, batch.len()),
        batch,
    ))
    .unwrap();
    let (_, body) = read_response(s, 0);
    let mut r: ProduceResponse = decode(&body, 8).unwrap();
    r.topics.remove(0).partitions.remove(0)
}

/// `batch_of(values)` with attribute `bits` set and its CRC recomputed, so
/// that only its kind is wrong.
fn batch_with_attributes(values: &[&str], bits: i16) -> Vec<u8> {
    let mut b = batch_of(values).to_vec();
    let attributes = i16::from_be_bytes([b[21], b[22]]) | bits;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

/// Control batches (transaction markers) are a broker's to write, and this
/// broker has no transactions: a client's control or transactional batch is
/// refused whole, on either listener, and takes no offset. (Stored, a control
/// batch stops librdkafka consumers at its offset for good.)
#[test]
fn control_and_transactional_batches_from_clients_are_refused() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut native = rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "ctl", 1, TopicConfig::default()).await;
        c
    });
    let mut s = connect(&b);
    for (id, (bits, what)) in [
        (0x20, "control"),
        (0x10, "transactional"),
        (0x30, "control"),
    ]
    .into_iter()
    .enumerate()
    {
        let batch = batch_with_attributes(&["m"], bits);
        let p = produce_v8(&mut s, id as i32, "ctl", &batch);
        assert_eq!(p.error_code, code::INVALID_RECORD, "{what}: {p:?}");
        let message = p.error_message.as_deref().unwrap_or_default();
        assert!(message.contains(what), "{what}: {message}");
        let r = rt
            .block_on(native.produce(Acks::All, 5000, &[("ctl", 0, &batch)]))
            .unwrap()
            .unwrap();
        assert_eq!(
            r.partitions[0].error_code,
            ErrorCode::InvalidRecord,
            "{r:?}"
        );
    }
    // Nothing was stored: the next plain batch takes offset 0.
    let p = produce_v8(&mut s, 9, "ctl", &batch_of(&["plain"]));
    assert_eq!((p.error_code, p.base_offset), (code::NONE, 0));
    assert_serving(&b);
}

fn fetch_request(entries: &[(&str, i32, i64)]) -> FetchRequest {
    FetchRequest {
        replica_id: -1,
        max_bytes: 1 << 20,
        topics: entries
            .iter()
            .map(|&(topic, partition, fetch_offset)| FetchTopic {
                topic: topic.to_owned(),
                topic_id: [0; 16],
                partitions: vec![FetchPartition {
                    partition,
                    current_leader_epoch: -1,
                    fetch_offset,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                }],
            })
            .collect(),
        ..FetchRequest::default()
    }
}

/// Partitions the Kafka listener refuses itself (a negative index, a
/// negative offset) next to one it serves: each gets its error and no
/// records, and the answer is exactly as long as its frame says, so the
/// request pipelined behind it is answered next. (Such entries once carried
/// the served partition's file range again, unbounded by the response cap.)
/// A fetch over the partition limit, refused whole, names the error on every
/// partition, also in versions without a top-level error.
#[test]
fn a_fetch_with_partitions_refused_by_the_listener_sends_exactly_its_frame() {
    let (b, _config) = broker_with("max_partitions_per_request = 4\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "f", 1, TopicConfig::default()).await;
        c.produce(Acks::Leader, 5000, &[("f", 0, &batch_of(&["x", "y"]))])
            .await
            .unwrap();
    });
    for version in [4, 11, 12] {
        let mut s = connect(&b);
        let mut req = fetch_request(&[("f", 0, 0), ("f", -1, 0), ("f", -1, 0), ("g", 0, -5)]);
        let mut frames = request_frame(version, 1, &mut req, &[]);
        frames.extend(request_frame(3, 2, &mut api_versions_request(), &[]));
        s.write_all(&frames).unwrap();
        let header_version = ApiKey::Fetch.response_header_version(version);
        let (id, body) = read_response(&mut s, header_version);
        assert_eq!(id, 1);
        let r: FetchResponse = decode(&body, version).unwrap();
        let parts: Vec<_> = r.topics.iter().flat_map(|t| &t.partitions).collect();
        let codes: Vec<_> = parts.iter().map(|p| p.error_code).collect();
        assert_eq!(
            codes,
            [
                code::NONE,
                code::UNKNOWN_TOPIC_OR_PARTITION,
                code::UNKNOWN_TOPIC_OR_PARTITION,
                code::OFFSET_OUT_OF_RANGE
            ],
            "v{version}"
        );
        let lens: Vec<_> = parts
            .iter()
            .map(|p| p.records.map_or(0, |r| r.len))
            .collect();
        assert!(
            lens[0] > 0 && lens[1..] == [0, 0, 0],
            "v{version}: {lens:?}"
        );
        let first = parts[0].records.unwrap();
        let batch = body[first.start..first.start + first.len].to_vec();
        let batch = sluice_protocol::batch::RecordBatch::new(batch.into()).unwrap();
        let values: Vec<_> = batch
            .records()
            .map(|r| r.unwrap().value.unwrap().to_vec())
            .collect();
        assert_eq!(values, [b"x".to_vec(), b"y".to_vec()], "v{version}");
        // The next frame is the pipelined ApiVersions answer.
        let (id, _) = read_response(&mut s, 0);
        assert_eq!(id, 2, "v{version}");

        // Five entries, over the limit of four: refused whole.
        let mut req = fetch_request(&[
            ("f", 0, 0),
            ("f", -1, 0),
            ("f", -2, 0),
            ("f", -3, 0),
            ("f", -4, 0),
        ]);
        s.write_all(&request_frame(version, 3, &mut req, &[]))
            .unwrap();
        let (id, body) = read_response(&mut s, header_version);
        assert_eq!(id, 3);
        let r: FetchResponse = decode(&body, version).unwrap();
        let codes: Vec<_> = r
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.error_code)
            .collect();
        assert_eq!(codes, [code::INVALID_REQUEST; 5], "v{version}");
        if version >= 7 {
            assert_eq!(r.error_code, code::INVALID_REQUEST);
        }
    }
    assert_serving(&b);
}

/// A topic named many times in one Metadata request is answered once, on
/// both listeners, as Kafka does: a small request cannot ask for an answer
/// many times its size.
#[test]
fn a_topic_named_many_times_in_metadata_is_answered_once() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let native = rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "m", 8, TopicConfig::default()).await;
        let names: Vec<String> = ["m", "nope", "m"]
            .repeat(500)
            .into_iter()
            .map(String::from)
            .collect();
        c.metadata(Some(names)).await.unwrap()
    });
    let names: Vec<_> = native.topics.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["m", "nope"]);
    let mut s = connect(&b);
    let mut req = MetadataRequest {
        topics: Some(
            ["m", "nope", "m"]
                .repeat(500)
                .into_iter()
                .map(|n| MetadataRequestTopic {
                    topic_id: [0; 16],
                    name: Some(n.to_owned()),
                })
                .collect(),
        ),
        ..MetadataRequest::default()
    };
    let r: MetadataResponse = sluice_tests::kafka::call(&mut s, 9, &mut req);
    let names: Vec<_> = r
        .topics
        .iter()
        .map(|t| t.name.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(names, ["m", "nope"]);
    assert_eq!(r.topics[0].partitions.len(), 8);
}

/// Members joining with heavy metadata fill a group only up to
/// `group_max_bytes` (16 MiB by default): the member past it gets
/// `GROUP_MAX_SIZE_REACHED` at once and is not kept. A DescribeGroups naming
/// the full group a hundred times is answered once: its answer stays within
/// the group's bytes. (Before, 1,000 members of 1 MiB each made one group's
/// description 1 GB, and each repetition of its name another.)
#[test]
fn group_metadata_is_bounded_and_a_described_group_is_answered_once() {
    use sluice_protocol::kafka::groups::{
        DescribeGroupsRequest, DescribeGroupsResponse, JoinGroupRequest, JoinGroupResponse,
        JoinProtocol,
    };
    let b = TestBroker::start();
    let addr = b.kafka_addr.unwrap();
    // 17 members of 1,000,005 bytes each: 16 fit in 16 MiB.
    let joins: Vec<_> = (0..17)
        .map(|i| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let mut req = JoinGroupRequest {
                    protocols: vec![JoinProtocol {
                        name: "range".into(),
                        metadata: vec![i as u8; 1_000_000],
                    }],
                    ..sluice_tests::kafka::classic_join("heavy")
                };
                // Version 3: no member-id round, the member is kept at once.
                s.write_all(&request_frame(3, i, &mut req, &[])).unwrap();
                let (_, body) = read_response(&mut s, 0);
                let r: JoinGroupResponse = decode(&body, 3).unwrap();
                (r.error_code, r.members.len())
            })
        })
        .collect();
    let mut codes: Vec<i16> = Vec::new();
    let mut listed = 0;
    for j in joins {
        let (c, members) = j.join().unwrap();
        codes.push(c);
        listed = listed.max(members);
    }
    codes.sort_unstable();
    let mut want = vec![code::NONE; 16];
    want.push(code::GROUP_MAX_SIZE_REACHED);
    assert_eq!(codes, want);
    assert_eq!(listed, 16, "the leader's answer lists the 16 members kept");

    let mut s = connect(&b);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = DescribeGroupsRequest {
        groups: vec!["heavy".into(); 100],
        include_authorized_operations: false,
    };
    s.write_all(&request_frame(0, 9, &mut req, &[])).unwrap();
    let (_, body) = read_response(&mut s, 0);
    assert!(body.len() < 17_000_000, "{} bytes", body.len());
    let r: DescribeGroupsResponse = decode(&body, 0).unwrap();
    assert_eq!(r.groups.len(), 1);
    assert_eq!(r.groups[0].members.len(), 16);
    assert_serving(&b);
}

/// A newcomer is closed at once: every seat is taken by a connection being
/// served (or just served).
fn assert_every_seat_taken(b: &TestBroker) {
    let mut newcomer = connect(b);
    newcomer
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert_closed(&mut newcomer);
}

/// Moments after a client left, a newcomer is served in its seat.
fn assert_a_seat_comes_free(b: &TestBroker) {
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    assert_serving(b);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!b.log().contains("panicked"), "{}", b.log());
}

/// A long-poll fetch of a client that closes its connection ends at once:
/// before, it held its seat (a connection being served never gives way)
/// for all of its `max_wait_ms`, so clients that sent a long poll and left
/// kept everyone else out that long. A client that only shuts down its
/// writing side gets its answer then, not at the end of the wait.
#[test]
fn a_long_poll_of_a_client_that_left_gives_its_seat_back_at_once() {
    let (b, _config) = broker_with("max_connections = 2\nmax_fetch_wait_ms = 60000\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "lp", 1, TopicConfig::default()).await;
    });
    let long_poll = |id| {
        let mut req = fetch_request(&[("lp", 0, 0)]);
        req.max_wait_ms = 30_000;
        req.min_bytes = 1;
        request_frame(12, id, &mut req, &[])
    };
    let mut waiting: Vec<TcpStream> = (0..2)
        .map(|i| {
            let mut s = connect(&b);
            s.write_all(&long_poll(i)).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Both seats are serving long polls: a newcomer is closed.
    assert_every_seat_taken(&b);
    // One client shuts down its writing side: answered now, empty.
    let started = std::time::Instant::now();
    let mut half = waiting.pop().unwrap();
    half.shutdown(std::net::Shutdown::Write).unwrap();
    let (id, body) = read_response(&mut half, ApiKey::Fetch.response_header_version(12));
    assert_eq!(id, 1);
    let r: FetchResponse = decode(&body, 12).unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, code::NONE);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_closed(&mut half);
    // The other closes outright; a new client is served in its seat.
    drop(waiting);
    assert_a_seat_comes_free(&b);
}

/// A JoinGroup waiting for the rest of its group, of a client that closes
/// its connection, gives its seat back at once: before, it held it for up
/// to the member's rebalance timeout (which the client chooses).
#[test]
fn a_join_of_a_client_that_left_gives_its_seat_back_at_once() {
    use sluice_protocol::kafka::groups::{JoinGroupRequest, JoinGroupResponse, JoinProtocol};
    let (b, _config) = broker_with("max_connections = 2\ngroup_initial_rebalance_delay_ms = 0\n");
    let join = |id| {
        let mut req = JoinGroupRequest {
            group_id: "seat".into(),
            session_timeout_ms: 30_000,
            rebalance_timeout_ms: 60_000,
            protocol_type: "consumer".into(),
            protocols: vec![JoinProtocol {
                name: "range".into(),
                metadata: Vec::new(),
            }],
            ..JoinGroupRequest::default()
        };
        request_frame(3, id, &mut req, &[])
    };
    // A joins alone (v3: no member id round) and is answered.
    let mut a = connect(&b);
    a.write_all(&join(1)).unwrap();
    let (id, body) = read_response(&mut a, ApiKey::JoinGroup.response_header_version(3));
    assert_eq!(id, 1);
    let r: JoinGroupResponse = decode(&body, 3).unwrap();
    assert_eq!(r.error_code, code::NONE, "{r:?}");
    // B's join waits for A to join again: both seats are taken.
    let mut joining = connect(&b);
    joining.write_all(&join(2)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_every_seat_taken(&b);
    // B's client leaves: a new client is served in its seat.
    drop(joining);
    assert_a_seat_comes_free(&b);
}

/// A connection to the Kafka listener from `from` (another loopback
/// address: the broker sees another client address).
fn connect_from(b: &TestBroker, from: std::net::Ipv4Addr) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((from, 0).into()).unwrap();
        socket.connect(b.kafka_addr.unwrap()).await.unwrap()
    });
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// With `max_connections_per_ip`, one client address holding that many
/// connections, all being served (long polls), gets no more; other
/// addresses still get in, and the address gets a seat again once one of
/// its connections closes. Without it one client's long polls could take
/// every seat.
#[test]
fn one_client_address_cannot_take_every_seat() {
    let (b, _config) =
        broker_with("max_connections = 8\nmax_connections_per_ip = 2\nmax_fetch_wait_ms = 60000\n");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "lp", 1, TopicConfig::default()).await;
    });
    let long_poll = |id| {
        let mut req = fetch_request(&[("lp", 0, 0)]);
        req.max_wait_ms = 30_000;
        req.min_bytes = 1;
        request_frame(12, id, &mut req, &[])
    };
    let mut polling: Vec<TcpStream> = (0..2)
        .map(|i| {
            let mut s = connect(&b);
            s.write_all(&long_poll(i)).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // 127.0.0.1 holds its two seats: a third connection from it is closed
    // at once, though six seats are free.
    let mut third = connect(&b);
    third
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    assert_closed(&mut third);
    // Another address is served.
    let other = std::net::Ipv4Addr::new(127, 0, 0, 2);
    api_versions(&mut connect_from(&b, other), 5);
    // One long poll's client leaves: 127.0.0.1 gets a seat again.
    drop(polling.pop());
    std::thread::sleep(Duration::from_millis(300));
    assert_serving(&b);
    assert!(
        b.log().contains("max_connections_per_ip"),
        "the refusal is logged: {}",
        b.log()
    );
    drop(polling);
}
