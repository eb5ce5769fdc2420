//! Compressed batches end to end: each codec is accepted, stored as sent and
//! fetched back byte for byte; bombs and broken streams are refused with
//! their own codes and take no offsets.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::batch::Compression;
use sluice_protocol::batch::compression::{Codec, compress_batch};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized, create_topic, read_partition, sluice_ok};

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn config_file(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("broker.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn compressed_batches_round_trip_byte_for_byte() {
    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    create_topic(&mut c, "z", 1, TopicConfig::default()).await;
    let mut sent = Vec::new();
    for codec in CODECS {
        let packed =
            compress_batch(&batch_sized(&codec.to_string(), 50, 200), Codec::new(codec)).unwrap();
        assert!(packed.len() < 50 * 200 / 4, "{codec}");
        let r = c
            .produce(Acks::Leader, 5000, &[("z", 0, &packed)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            r.partitions[0].error_code,
            ErrorCode::None,
            "{codec}: {r:?}"
        );
        sent.push((r.partitions[0].base_offset, packed));
    }
    // The fetched bytes are the produced bytes, base offset and leader
    // epoch aside.
    let resp = c
        .fetch(
            0,
            0,
            4 << 20,
            vec![FetchPartition {
                topic: "z".into(),
                partition: 0,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    let fetched = &resp[0].records;
    let mut at = 0;
    for (base, packed) in &sent {
        let got = &fetched[at..at + packed.len()];
        assert_eq!(&got[..8], &(*base as i64).to_be_bytes());
        assert_eq!(&got[8..12], &packed[8..12]);
        // The leader's epoch is stamped, as Kafka does; the CRC covers neither.
        assert_eq!(&got[12..16], &0i32.to_be_bytes());
        assert_eq!(&got[16..], &packed[16..]);
        at += packed.len();
    }
    assert_eq!(at, fetched.len());
    // And they decode to the records.
    let records = read_partition(&mut c, "z", 0, 0).await;
    assert_eq!(records.len(), 200);
    assert!(records[0].1.starts_with(b"gzip:0-"));
    assert!(records[199].1.starts_with(b"zstd:49-"));
    assert_eq!(
        records.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..200).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn bombs_and_broken_streams_are_refused_with_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        dir.path(),
        "[topic_defaults]\nmax_decompressed_batch_bytes = 1048576\n",
    );
    let broker = TestBroker::start_with_args(&["--config", &file]);
    let mut c = broker.connect().await;
    create_topic(&mut c, "b", 1, TopicConfig::default()).await;
    for codec in CODECS {
        // 4 MiB of padding compresses to a few KiB: over the 1 MiB limit.
        let bomb = compress_batch(&batch_sized("x", 4, 1 << 20), Codec::new(codec)).unwrap();
        assert!(bomb.len() < 256 << 10, "{codec}: {}", bomb.len());
        let mut broken = compress_batch(&batch_sized("y", 10, 100), Codec::new(codec))
            .unwrap()
            .to_vec();
        broken.truncate(broken.len() - 3);
        let new_len = (broken.len() - 12) as i32;
        broken[8..12].copy_from_slice(&new_len.to_be_bytes());
        let crc = crc32c::crc32c(&broken[21..]);
        broken[17..21].copy_from_slice(&crc.to_be_bytes());
        for (batch, code) in [
            (&bomb[..], ErrorCode::DecompressedBatchTooLarge),
            (&broken[..], ErrorCode::CorruptCompressedBatch),
        ] {
            let r = c
                .produce(Acks::Leader, 5000, &[("b", 0, batch)])
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.partitions[0].error_code, code, "{codec}: {r:?}");
        }
    }
    // Nothing was taken, and the broker still serves.
    let ok = compress_batch(&batch_sized("ok", 3, 10), Codec::new(Compression::Zstd)).unwrap();
    let r = c
        .produce(Acks::Leader, 5000, &[("b", 0, &ok)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    assert_eq!(r.partitions[0].base_offset, 0);
}

/// The client library's producer compresses with each codec and its
/// consumer reads the records back transparently.
#[tokio::test]
async fn producer_compresses_and_consumer_decompresses() {
    use sluice_client::{Consumer, ConsumerConfig, Producer, ProducerConfig};
    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    for codec in CODECS {
        let topic = format!("t-{codec}");
        create_topic(&mut c, &topic, 1, TopicConfig::default()).await;
        let mut config = ProducerConfig::new(broker.addr.to_string());
        config.compression = codec;
        config.compression_level = (codec == Compression::Zstd).then_some(5);
        let producer = Producer::new(config);
        let mut deliveries = Vec::new();
        for i in 0..500 {
            let value = format!("{{\"n\":{i},\"codec\":\"{codec}\"}}");
            deliveries.push(producer.send(&topic, None, value.as_bytes()).await.unwrap());
        }
        for d in deliveries {
            d.await.unwrap();
        }
        producer.close().await;
        // Stored compressed, and much smaller than the records.
        let resp = c
            .fetch(
                0,
                0,
                4 << 20,
                vec![FetchPartition {
                    topic: topic.clone(),
                    partition: 0,
                    offset: 0,
                    max_bytes: 1 << 20,
                }],
            )
            .await
            .unwrap();
        let raw = resp[0].records.clone();
        let first = sluice_protocol::batch::BatchHeader::parse(&raw).unwrap();
        assert_eq!(first.compression(), codec);
        assert!(raw.len() < 500 * 20, "{codec}: {} bytes", raw.len());

        let mut consumer = Consumer::connect(ConsumerConfig::new(broker.addr.to_string()))
            .await
            .unwrap();
        consumer.subscribe(&topic).await.unwrap();
        let mut got = Vec::new();
        while got.len() < 500 {
            for r in consumer.poll().await.unwrap() {
                got.push(String::from_utf8(r.record.value.unwrap().to_vec()).unwrap());
            }
        }
        assert_eq!(got[0], format!("{{\"n\":0,\"codec\":\"{codec}\"}}"));
        assert_eq!(got[499], format!("{{\"n\":499,\"codec\":\"{codec}\"}}"));
    }
}

/// `compression = "zstd"` in the topic defaults: the broker stores every
/// batch as zstd whatever the producer sent; `"uncompressed"` stores
/// records uncompressed. The records read back are the same.
#[tokio::test]
async fn a_fixed_topic_codec_recompresses_on_produce() {
    for (setting, stored) in [
        ("zstd", Compression::Zstd),
        ("uncompressed", Compression::None),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = config_file(
            dir.path(),
            &format!("[topic_defaults]\ncompression = \"{setting}\"\n"),
        );
        let broker = TestBroker::start_with_args(&["--config", &file]);
        let mut c = broker.connect().await;
        create_topic(&mut c, "r", 1, TopicConfig::default()).await;
        let plain = batch_sized("p", 20, 100);
        let lz4 = compress_batch(&batch_sized("l", 20, 100), Codec::new(Compression::Lz4)).unwrap();
        let mut both = plain.to_vec();
        both.extend_from_slice(&lz4);
        let r = c
            .produce(Acks::Leader, 5000, &[("r", 0, &both)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");
        let resp = c
            .fetch(
                0,
                0,
                4 << 20,
                vec![FetchPartition {
                    topic: "r".into(),
                    partition: 0,
                    offset: 0,
                    max_bytes: 1 << 20,
                }],
            )
            .await
            .unwrap();
        let mut bytes = resp[0].records.clone();
        let mut batches = 0;
        while !bytes.is_empty() {
            let b = sluice_protocol::batch::RecordBatch::split_first(&mut bytes).unwrap();
            assert_eq!(b.header().compression(), stored, "{setting}");
            batches += 1;
        }
        assert_eq!(batches, 2);
        let records = read_partition(&mut c, "r", 0, 0).await;
        assert_eq!(records.len(), 40);
        assert!(records[0].1.starts_with(b"p:0-"));
        assert!(records[39].1.starts_with(b"l:19-"));
    }
}

/// Produces one uncompressed and one lz4 batch to `topic` and returns the
/// codecs of the batches stored from `from` on.
async fn produce_and_stored_codecs(
    c: &mut sluice_client::Connection,
    topic: &str,
    tag: &str,
    from: u64,
) -> Vec<Compression> {
    let plain = batch_sized(tag, 10, 100);
    let lz4 = compress_batch(&batch_sized(tag, 10, 100), Codec::new(Compression::Lz4)).unwrap();
    for batch in [&plain[..], &lz4[..]] {
        let r = c
            .produce(Acks::Leader, 5000, &[(topic, 0, batch)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");
    }
    let resp = c
        .fetch(
            0,
            0,
            4 << 20,
            vec![FetchPartition {
                topic: topic.into(),
                partition: 0,
                offset: from,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    let mut bytes = resp[0].records.clone();
    let mut codecs = Vec::new();
    while !bytes.is_empty() {
        let b = sluice_protocol::batch::RecordBatch::split_first(&mut bytes).unwrap();
        codecs.push(b.header().compression());
    }
    codecs
}

/// `sluice topic create --compression zstd`: that topic stores zstd
/// whatever producers send, before and after a restart, while another
/// topic on the same broker keeps what producers send; describe shows the
/// setting in text and JSON.
#[tokio::test]
async fn a_per_topic_codec_recompresses_only_that_topic_and_survives_restart() {
    let mut broker = TestBroker::start();
    let addr = broker.addr.to_string();
    sluice_ok(&addr, &["topic", "create", "z", "--compression", "zstd"]);
    sluice_ok(&addr, &["topic", "create", "k"]);
    let mut c = broker.connect().await;
    let zstd = vec![Compression::Zstd; 2];
    let as_sent = vec![Compression::None, Compression::Lz4];
    assert_eq!(produce_and_stored_codecs(&mut c, "z", "a", 0).await, zstd);
    assert_eq!(
        produce_and_stored_codecs(&mut c, "k", "a", 0).await,
        as_sent
    );

    drop(c);
    broker.stop();
    broker.restart();
    let mut c = broker.connect().await;
    assert_eq!(produce_and_stored_codecs(&mut c, "z", "b", 20).await, zstd);
    assert_eq!(
        produce_and_stored_codecs(&mut c, "k", "b", 20).await,
        as_sent
    );
    let records = read_partition(&mut c, "z", 0, 0).await;
    assert_eq!(records.len(), 40);
    assert!(records[0].1.starts_with(b"a:0-"));
    assert!(records[39].1.starts_with(b"b:9-"));

    let text = sluice_ok(&addr, &["topic", "describe", "z"]);
    assert!(text.lines().any(|l| l == "compression: zstd"), "{text}");
    let text = sluice_ok(&addr, &["topic", "describe", "k"]);
    assert!(text.lines().any(|l| l == "compression: producer"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&sluice_ok(
        &addr,
        &["topic", "describe", "z", "--output", "json"],
    ))
    .unwrap();
    assert_eq!(json["config"]["compression"], "zstd", "{json}");
}

/// Version 0 of CreateTopics and Metadata (clients from before per-topic
/// compression) still works against this broker, which answers in version
/// 0; version 1 carries the setting.
#[tokio::test]
async fn version_0_requests_are_answered_in_version_0() {
    use sluice_protocol::wire::ApiKey;
    use sluice_protocol::wire::create_topics::{
        CreateTopicsRequestV0, CreateTopicsRequestV1, CreateTopicsResponse, NewTopicV0, NewTopicV1,
    };
    use sluice_protocol::wire::metadata::{
        MetadataRequest, MetadataResponseV0, MetadataResponseV1,
    };
    use sluice_protocol::wire::topic_config::{TopicCompression, TopicConfigV0};

    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    let v0 = CreateTopicsRequestV0 {
        topics: vec![NewTopicV0 {
            name: "old".into(),
            partitions: 1,
            config: TopicConfigV0 {
                retention_ms: Some(60_000),
                ..TopicConfigV0::default()
            },
        }],
    };
    c.send_version(ApiKey::CreateTopics, 0, &v0, &[])
        .await
        .unwrap();
    let (r, _) = c.recv::<CreateTopicsResponse>().await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
    let v1 = CreateTopicsRequestV1 {
        topics: vec![NewTopicV1 {
            name: "new".into(),
            partitions: 1,
            config: TopicConfig {
                compression: Some(TopicCompression::Gzip),
                ..TopicConfig::default()
            },
        }],
    };
    c.send_version(ApiKey::CreateTopics, 1, &v1, &[])
        .await
        .unwrap();
    let (r, _) = c.recv::<CreateTopicsResponse>().await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");

    // Version 0 answers decode as version 0 (no bytes left over).
    let all = MetadataRequest { topics: None };
    c.send_version(ApiKey::Metadata, 0, &all, &[])
        .await
        .unwrap();
    let (m, _) = c.recv::<MetadataResponseV0>().await.unwrap();
    let old = m.topics.iter().find(|t| t.name == "old").unwrap();
    assert_eq!(old.config.retention_ms, Some(60_000));
    c.send_version(ApiKey::Metadata, 1, &all, &[])
        .await
        .unwrap();
    let (m, _) = c.recv::<MetadataResponseV1>().await.unwrap();
    let compression = |name: &str| {
        m.topics
            .iter()
            .find(|t| t.name == name)
            .unwrap()
            .config
            .compression
    };
    assert_eq!(compression("old"), Some(TopicCompression::Producer));
    assert_eq!(compression("new"), Some(TopicCompression::Gzip));
    // The library negotiates the newest version, 3, with this broker.
    assert_eq!(c.negotiated_version(ApiKey::Metadata).await.unwrap(), 3);
}

/// Many clients sending decompression bombs at once: each bomb is refused
/// with its code, and the broker holds at most
/// `max_decompressed_bytes_in_flight` of decompressed records at a time (two
/// 16 MiB batches here) instead of one buffer per bomb (48 × 16 MiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bombs_are_decompressed_a_few_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = config_file(
        dir.path(),
        "max_decompressed_bytes_in_flight = 33554432\n\
         [topic_defaults]\nmax_decompressed_batch_bytes = 16777216\n",
    );
    // glibc's allocator keeps freed buffers of up to 32 MiB in per-thread
    // arenas for reuse; with a fixed mmap threshold every decompression
    // buffer goes back to the system when freed, so the peak below is what
    // was held at once, not what the arenas of many blocking threads kept.
    let broker = TestBroker::start_with_env(
        &["--config", &file],
        &[("MALLOC_MMAP_THRESHOLD_", "131072")],
    );
    let mut c = broker.connect().await;
    create_topic(&mut c, "b", 1, TopicConfig::default()).await;
    // 24 MiB of padding: a few KiB of zstd, over the 16 MiB limit.
    let bomb = compress_batch(
        &batch_sized("x", 24, 1 << 20),
        Codec::new(Compression::Zstd),
    )
    .unwrap()
    .to_vec();
    assert!(bomb.len() < 64 << 10, "{}", bomb.len());
    let mut clients = Vec::new();
    for _ in 0..48 {
        clients.push(broker.connect().await);
    }
    let before = broker.peak_rss();
    let bomb = std::sync::Arc::new(bomb);
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let bomb = std::sync::Arc::clone(&bomb);
            tokio::spawn(async move {
                let r = client
                    .produce(Acks::Leader, 60_000, &[("b", 0, &bomb[..])])
                    .await
                    .unwrap()
                    .unwrap();
                r.partitions[0].error_code
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), ErrorCode::DecompressedBatchTooLarge);
    }
    let grew = broker.peak_rss().saturating_sub(before);
    eprintln!("peak resident memory grew by {} MiB", grew >> 20);
    assert!(
        grew < 120 << 20,
        "peak resident memory grew by {} MiB",
        grew >> 20
    );
    let ok = compress_batch(&batch_sized("ok", 3, 10), Codec::new(Compression::Zstd)).unwrap();
    let r = c
        .produce(Acks::Leader, 5000, &[("b", 0, &ok)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].error_code, ErrorCode::None);
}
