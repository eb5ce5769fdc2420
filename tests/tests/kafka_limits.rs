//! The native listener's connection limits hold on the Kafka port too (the
//! connection code is shared): connections that announce maximum frames and
//! trickle them hold request budget only for what they sent, so another
//! client's large produce is served at once; a frame that stalls is closed
//! after `frame_timeout_ms` while the broker keeps serving.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use sluice_protocol::kafka::api_versions::ApiVersionsResponse;
use sluice_protocol::kafka::decode;
use sluice_protocol::kafka::io::Records;
use sluice_protocol::kafka::produce::{
    ProducePartitionData, ProduceRequest, ProduceResponse, ProduceTopicData,
};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::api_versions_request;
use sluice_tests::kafka::{read_response, request_frame};
use sluice_tests::{TestBroker, batch_sized, create_topic, read_partition};

const MIB: u64 = 1 << 20;

fn broker_with(toml: &str) -> (TestBroker, tempfile::NamedTempFile) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(toml.as_bytes()).unwrap();
    let path = f.path().display().to_string();
    (TestBroker::start_with_args(&["--config", &path]), f)
}

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// The start of a Kafka frame announcing `len` bytes: a Metadata v1 header
/// followed by junk (never completed in these tests, or undecodable).
fn announced_frame(len: u32) -> Vec<u8> {
    let mut f = len.to_be_bytes().to_vec();
    f.extend([0, 3, 0, 1, 0, 0, 0, 1, 0, 0]); // Metadata v1, id 1, client ""
    f.resize(len as usize + 4, 0xab);
    f
}

fn produce_request(topic: &str, len: usize) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks: 1,
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
async fn kafka_tricklers_do_not_hold_the_budget_for_what_they_announce() {
    // Budget: exactly eight maximum frames.
    let (b, _config) = broker_with(
        "max_frame_bytes = 8388608\nmax_request_bytes_in_flight = 67108896\nframe_timeout_ms = 30000\n",
    );
    let mut good = b.connect().await;
    create_topic(&mut good, "t", 1, TopicConfig::default()).await;
    let start = 200 * 1024;
    let frame = announced_frame(8 * MIB as u32);
    let mut tricklers = Vec::new();
    for _ in 0..8 {
        let mut s = connect(&b);
        s.write_all(&frame[..start]).unwrap();
        tricklers.push(s);
    }
    // Wait until the broker has buffered what they sent.
    let t = Instant::now();
    loop {
        let held = good.stats().await.unwrap().get("request_bytes_held");
        if held.unwrap() >= 8 * start as u64 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "held {held:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held = good
        .stats()
        .await
        .unwrap()
        .get("request_bytes_held")
        .unwrap();
    assert!(held <= 8 * (2 * start as u64 + MIB), "held {held}");
    // A 2 MiB Kafka produce is served while they hold their frames.
    let batch = batch_sized("big", 2, 1 << 20);
    let mut s = connect(&b);
    s.write_all(&request_frame(
        7,
        9,
        &mut produce_request("t", batch.len()),
        &batch,
    ))
    .unwrap();
    let (id, body) = read_response(&mut s, 0);
    assert_eq!(id, 9);
    let r: ProduceResponse = decode(&body, 7).unwrap();
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(read_partition(&mut good, "t", 0, 0).await.len(), 2);
}

#[test]
fn a_stalled_kafka_frame_is_closed_after_the_frame_timeout() {
    let (b, _config) = broker_with("frame_timeout_ms = 1500\n");
    let mut s = connect(&b);
    let frame = announced_frame(64 * 1024);
    s.write_all(&frame[..1000]).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("a stalled frame is still open after 10 s")
        }
        Ok(0) | Err(_) => {}
        Ok(n) => panic!("expected a closed connection, read {n} bytes"),
    }
    assert!(started.elapsed() >= Duration::from_millis(1000));
    // Others are served.
    let mut s = connect(&b);
    s.write_all(&request_frame(3, 77, &mut api_versions_request(), &[]))
        .unwrap();
    let (id, body) = read_response(&mut s, 0);
    assert_eq!(id, 77);
    let r: ApiVersionsResponse = decode(&body, 3).unwrap();
    assert_eq!(r.error_code, 0);
}

/// A request naming more entries than a broker could ever need (16 ×
/// `max_partitions_per_request` + 64 Ki array elements on the Kafka
/// listener; more than `max_partitions_per_request` names on the native
/// one) is refused before its names are looked at, and the broker goes on
/// serving; one within the limits is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_naming_more_entries_than_the_limits_are_refused_up_front() {
    use sluice_protocol::kafka::metadata::{
        MetadataRequest, MetadataRequestTopic, MetadataResponse,
    };
    let (b, _config) = broker_with("max_partitions_per_request = 100\n");
    let mut conn = b.connect().await;
    create_topic(&mut conn, "real", 1, TopicConfig::default()).await;
    let names = |n: usize| -> Vec<String> { (0..n).map(|i| format!("t{i:06}")).collect() };
    let kafka_request = |n: usize| MetadataRequest {
        topics: Some(
            names(n)
                .into_iter()
                .map(|name| MetadataRequestTopic {
                    topic_id: [0; 16],
                    name: Some(name),
                })
                .collect(),
        ),
        ..MetadataRequest::default()
    };
    let cap = 16 * 100 + 65_536;
    // At the cap: answered, each unknown name with its error.
    let mut s = connect(&b);
    let r: MetadataResponse = sluice_tests::kafka::call(&mut s, 1, &mut kafka_request(cap));
    assert_eq!(r.topics.len(), cap);
    // One past it: the connection is closed without an answer.
    let mut s = connect(&b);
    s.write_all(&request_frame(1, 7, &mut kafka_request(cap + 1), &[]))
        .unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(s.read(&mut byte).unwrap(), 0, "closed without an answer");
    // The native listener: at most max_partitions_per_request names.
    let r = conn.metadata(Some(names(100))).await.unwrap();
    assert_eq!(r.topics.len(), 100);
    let e = conn.metadata(Some(names(101))).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("101 topics in one request; at most 100"),
        "{e}"
    );
    // Both still serve.
    let mut s = connect(&b);
    let r: MetadataResponse = sluice_tests::kafka::call(&mut s, 1, &mut MetadataRequest::default());
    assert_eq!(r.topics.len(), 1);
    assert_eq!(conn.metadata(None).await.unwrap().topics.len(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !b.log().contains("more than 67136 array elements") {
        assert!(Instant::now() < deadline, "{}", b.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}
