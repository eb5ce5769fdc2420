//! Compressed batches written by Kafka's own clients (kafka-python and
//! librdkafka, every codec) validate, decode to the records the clients were
//! given, and go through a real broker byte for byte.
//!
//! The checked-in fixtures under `tests/fixtures/compression/` were made by
//! its `generate.py`; [`live_clients_batches_round_trip`] runs that script
//! again with the Python in `SLUICE_KAFKA_PYTHON` (`.ci/run` makes a venv),
//! and skips when there is none unless `SLUICE_REQUIRE_KAFKA_CLIENTS=1`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sluice_protocol::batch::{RecordBatch, validate_decompressing};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, create_topic};

const CLIENTS: [&str; 2] = ["kafka-python", "librdkafka"];
const CODECS: [&str; 4] = ["gzip", "snappy", "lz4", "zstd"];
/// Records per fixture batch (`COUNT` in generate.py).
const COUNT: usize = 20;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/compression")
}

/// The value generate.py gives record `i`.
fn value(i: usize) -> String {
    format!(
        "record-{i} {}",
        "the quick brown fox jumps over the lazy dog ".repeat(3)
    )
}

/// Checks every `<client>-<codec>.bin` in `dir`: codec, records, and a
/// produce/fetch through `broker` that returns the bytes as sent.
async fn check_dir(dir: &Path, broker: &TestBroker) {
    let mut c = broker.connect().await;
    let topic = format!(
        "interop-{}",
        std::process::id() ^ dir.as_os_str().len() as u32
    );
    create_topic(&mut c, &topic, 1, TopicConfig::default()).await;
    let mut next = 0u64;
    for client in CLIENTS {
        for codec in CODECS {
            let name = format!("{client}-{codec}");
            let bytes = std::fs::read(dir.join(format!("{name}.bin"))).unwrap();
            let mut scratch = Vec::new();
            let header = validate_decompressing(&bytes, 1 << 20, &mut scratch)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(header.compression().to_string(), codec, "{name}");
            assert_eq!(header.total_len(), bytes.len(), "{name}");
            let batch = RecordBatch::new(Bytes::from(bytes.clone())).unwrap();
            let records: Vec<_> = batch.records().map(Result::unwrap).collect();
            assert_eq!(records.len(), COUNT, "{name}");
            for (i, r) in records.iter().enumerate() {
                assert_eq!(
                    r.key.as_deref(),
                    Some(format!("key-{i}").as_bytes()),
                    "{name}"
                );
                assert_eq!(r.value.as_deref(), Some(value(i).as_bytes()), "{name}");
                assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64, "{name}");
            }
            let r = c
                .produce(Acks::Leader, 5000, &[(&topic, 0, &bytes)])
                .await
                .unwrap()
                .unwrap();
            let p = &r.partitions[0];
            assert_eq!(p.error_code, ErrorCode::None, "{name}: {:?}", p.message);
            assert_eq!(p.base_offset, next, "{name}");
            let fetched = c
                .fetch(
                    0,
                    0,
                    1 << 20,
                    vec![FetchPartition {
                        topic: topic.clone(),
                        partition: 0,
                        offset: next,
                        max_bytes: 1 << 20,
                    }],
                )
                .await
                .unwrap();
            let got = &fetched[0].records;
            assert_eq!(got.len(), bytes.len(), "{name}");
            assert_eq!(&got[..8], &(next as i64).to_be_bytes(), "{name}");
            // The leader epoch (12..16) is the broker's; the rest is as sent.
            assert_eq!(&got[8..12], &bytes[8..12], "{name}");
            assert_eq!(&got[16..], &bytes[16..], "{name}");
            next += COUNT as u64;
        }
    }
}

#[tokio::test]
async fn checked_in_client_batches_round_trip() {
    let broker = TestBroker::start();
    check_dir(&fixtures(), &broker).await;
}

#[tokio::test]
async fn live_clients_batches_round_trip() {
    let required = std::env::var("SLUICE_REQUIRE_KAFKA_CLIENTS").as_deref() == Ok("1");
    let python = std::env::var_os("SLUICE_KAFKA_PYTHON").map(PathBuf::from);
    let usable = python.as_ref().is_some_and(|p| {
        std::process::Command::new(p)
            .args(["-c", "import kafka, confluent_kafka"])
            .status()
            .is_ok_and(|s| s.success())
    });
    if !usable {
        assert!(
            !required,
            "SLUICE_REQUIRE_KAFKA_CLIENTS=1 but SLUICE_KAFKA_PYTHON ({python:?}) lacks kafka-python or confluent-kafka"
        );
        eprintln!(
            "skipped: set SLUICE_KAFKA_PYTHON to a Python with kafka-python and confluent-kafka"
        );
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(python.unwrap())
        .arg(fixtures().join("generate.py"))
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success(), "generate.py failed");
    let broker = TestBroker::start();
    check_dir(out.path(), &broker).await;
}
