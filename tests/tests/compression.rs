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
use sluice_tests::{TestBroker, batch_sized, create_topic, read_partition};

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
    // The fetched bytes are the produced bytes, base offset aside.
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
        assert_eq!(&got[8..], &packed[8..]);
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
