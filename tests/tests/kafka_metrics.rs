//! The Kafka listener's per-API series in `/metrics`:
//! `sluice_kafka_requests_total`, `sluice_kafka_request_errors_total` (an
//! API or version not served: 35; the connection closed instead of an
//! answer: 42) and `sluice_kafka_request_duration_seconds`, by Kafka API
//! name (`unknown` for keys not served).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sluice_protocol::kafka::metadata::MetadataRequest;
use sluice_tests::kafka::api_versions_request;
use sluice_tests::kafka::{read_response, request_frame};
use sluice_tests::{TestBroker, http_get, sample};

fn metrics(b: &TestBroker) -> String {
    let (status, body) = http_get(b.metrics_addr.unwrap(), "/metrics");
    assert_eq!(status, 200);
    body
}

#[test]
fn kafka_requests_are_counted_timed_and_their_errors_labelled_by_kafka_api() {
    let b = TestBroker::start();
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut frames = Vec::new();
    frames.extend(request_frame(3, 1, &mut api_versions_request(), &[]));
    frames.extend(request_frame(3, 2, &mut api_versions_request(), &[]));
    frames.extend(request_frame(1, 3, &mut MetadataRequest::default(), &[]));
    s.write_all(&frames).unwrap();
    for (id, header_version) in [(1, 0), (2, 0), (3, 0)] {
        assert_eq!(read_response(&mut s, header_version).0, id);
    }
    // Metadata v99 and an unknown key (999): not served, the connection is
    // closed.
    for frame in [
        [0, 0, 0, 10, 0, 3, 0, 99, 0, 0, 0, 4, 0, 0],
        [0, 0, 0, 10, 3, 231, 0, 0, 0, 0, 0, 5, 0, 0],
    ] {
        let mut c = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.write_all(&frame).unwrap();
        assert!(matches!(c.read(&mut [0; 8]), Ok(0) | Err(_)));
    }
    // A ListOffsets v1 body cut short: the connection is closed.
    let mut bad = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    bad.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    bad.write_all(&[0, 0, 0, 11, 0, 2, 0, 1, 0, 0, 0, 6, 0, 0, 0xff])
        .unwrap();
    assert!(matches!(bad.read(&mut [0; 8]), Ok(0) | Err(_)));

    let want = [
        ("sluice_kafka_requests_total{api=\"ApiVersions\"}", 2.0),
        ("sluice_kafka_requests_total{api=\"Metadata\"}", 2.0),
        ("sluice_kafka_requests_total{api=\"unknown\"}", 1.0),
        ("sluice_kafka_requests_total{api=\"ListOffsets\"}", 1.0),
        (
            "sluice_kafka_request_errors_total{api=\"Metadata\",code=\"35\",error=\"UNSUPPORTED_VERSION\"}",
            1.0,
        ),
        (
            "sluice_kafka_request_errors_total{api=\"unknown\",code=\"35\",error=\"UNSUPPORTED_VERSION\"}",
            1.0,
        ),
        (
            "sluice_kafka_request_errors_total{api=\"ListOffsets\",code=\"42\",error=\"INVALID_REQUEST\"}",
            1.0,
        ),
        (
            "sluice_kafka_request_duration_seconds_count{api=\"ApiVersions\"}",
            2.0,
        ),
    ];
    // The counts are updated right after each answer is written: wait for
    // the last one (the closed connection's) to land.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = metrics(&b);
        if want.iter().all(|(s, v)| sample(&text, s) == Some(*v)) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for (series, value) in want {
        assert_eq!(sample(&text, series), Some(value), "{series}\n{text}");
    }
    // Errors are not counted for requests that were served.
    assert_eq!(
        sample(
            &text,
            "sluice_kafka_request_errors_total{api=\"ApiVersions\",code=\"35\",error=\"UNSUPPORTED_VERSION\"}"
        ),
        None
    );
    // Kafka requests stay out of the native per-API series.
    assert_eq!(
        sample(&text, "sluice_requests_total{api=\"Metadata\"}"),
        Some(0.0)
    );
}

/// A client that leaves before its answer (here a long poll whose
/// connection is reset) is not counted as a request error: the count is of
/// requests the broker refused. Ordinary consumer shutdowns raised
/// `INVALID_REQUEST` counts.
#[test]
fn a_client_that_leaves_before_its_answer_is_not_an_error() {
    use sluice_protocol::kafka::fetch::{FetchPartition, FetchRequest, FetchTopic};
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        sluice_tests::create_topic(&mut c, "quiet", 1, Default::default()).await;
    });
    for id in 0..5 {
        let mut req = FetchRequest {
            max_wait_ms: 10_000,
            min_bytes: 1,
            max_bytes: 1 << 20,
            topics: vec![FetchTopic {
                topic: "quiet".into(),
                partitions: vec![FetchPartition {
                    partition: 0,
                    fetch_offset: 0,
                    partition_max_bytes: 1 << 20,
                    ..FetchPartition::default()
                }],
                ..FetchTopic::default()
            }],
            ..FetchRequest::default()
        };
        let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
        (&s).write_all(&request_frame(12, id, &mut req, &[]))
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
        // A reset, not a clean close: the answer's write fails.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = metrics(&b);
        let served = sample(&text, "sluice_kafka_requests_total{api=\"Fetch\"}");
        if served == Some(5.0) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        sample(&text, "sluice_kafka_requests_total{api=\"Fetch\"}"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "sluice_kafka_request_errors_total{api=\"Fetch\",code=\"42\",error=\"INVALID_REQUEST\"}"
        ),
        None,
        "{text}"
    );
}
