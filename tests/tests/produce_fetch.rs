//! Produce to several partitions and fetch everything back, including
//! pipelined requests on one connection.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::wire::ApiKey;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, OffsetSpec};
use sluice_protocol::wire::produce::{Acks, ProducePartition, ProduceRequest, ProduceResponse};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_of, batch_sized, create_topic, read_partition};

#[tokio::test]
async fn round_trip_over_several_partitions() {
    let broker = TestBroker::start();
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "orders", 3, TopicConfig::default()).await;

    // One request carrying three partitions' record sets.
    let (a, b, c) = (
        batch_of(&["a0", "a1"]),
        batch_of(&["b0"]),
        batch_of(&["c0", "c1", "c2"]),
    );
    let resp = conn
        .produce(
            Acks::Leader,
            5000,
            &[("orders", 0, &a), ("orders", 1, &b), ("orders", 2, &c)],
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        resp.partitions
            .iter()
            .all(|p| p.error_code == ErrorCode::None),
        "{resp:?}"
    );
    assert_eq!(
        resp.partitions
            .iter()
            .map(|p| p.base_offset)
            .collect::<Vec<_>>(),
        [0, 0, 0]
    );
    let resp = conn
        .produce(Acks::All, 5000, &[("orders", 0, &batch_of(&["a2"]))])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.partitions[0].base_offset, 2);

    let p0 = read_partition(&mut conn, "orders", 0, 0).await;
    assert_eq!(
        p0.iter().map(|(o, v)| (*o, v.as_ref())).collect::<Vec<_>>(),
        [(0, &b"a0"[..]), (1, b"a1"), (2, b"a2")]
    );
    assert_eq!(read_partition(&mut conn, "orders", 2, 1).await.len(), 2);

    // A multi-partition fetch returns each partition's records in order.
    let fetched = conn
        .fetch(
            0,
            0,
            1 << 20,
            (0..3)
                .map(|p| FetchPartition {
                    topic: "orders".into(),
                    partition: p,
                    offset: 0,
                    max_bytes: 1 << 20,
                })
                .collect(),
        )
        .await
        .unwrap();
    let counts: Vec<usize> = fetched
        .iter()
        .map(|p| sluice_tests::decode_records(&p.records, 0).len())
        .collect();
    assert_eq!(counts, [3, 1, 3]);
    assert_eq!(fetched[0].high_watermark, 3);

    let offsets = conn
        .list_offsets(vec![
            ListOffsetsPartition {
                topic: "orders".into(),
                partition: 0,
                spec: OffsetSpec::Earliest,
            },
            ListOffsetsPartition {
                topic: "orders".into(),
                partition: 0,
                spec: OffsetSpec::Latest,
            },
            ListOffsetsPartition {
                topic: "orders".into(),
                partition: 0,
                spec: OffsetSpec::Timestamp(0),
            },
            ListOffsetsPartition {
                topic: "nope".into(),
                partition: 0,
                spec: OffsetSpec::Latest,
            },
        ])
        .await
        .unwrap();
    let got: Vec<_> = offsets
        .partitions
        .iter()
        .map(|p| (p.error_code, p.offset))
        .collect();
    assert_eq!(
        got,
        [
            (ErrorCode::None, 0),
            (ErrorCode::None, 3),
            (ErrorCode::None, 0),
            (ErrorCode::UnknownTopicOrPartition, 0)
        ]
    );

    let meta = conn.metadata(None).await.unwrap();
    assert_eq!(meta.topics.len(), 1);
    assert_eq!(meta.topics[0].partitions.len(), 3);
    assert_eq!(meta.topics[0].partitions[0].high_watermark, 3);
}

#[tokio::test]
async fn pipelined_produces_come_back_in_order() {
    let broker = TestBroker::start();
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "pipe", 1, TopicConfig::default()).await;
    let batches: Vec<_> = (0..50)
        .map(|i| batch_sized(&format!("p{i}"), 10, 200))
        .collect();
    let mut ids = Vec::new();
    for b in &batches {
        let req = ProduceRequest {
            acks: Acks::Leader,
            timeout_ms: 5000,
            partitions: vec![ProducePartition {
                topic: "pipe".into(),
                partition: 0,
                records_len: b.len() as u32,
            }],
        };
        ids.push(conn.send(ApiKey::Produce, &req, b).await.unwrap());
    }
    for (i, _) in ids.iter().enumerate() {
        let (resp, _): (ProduceResponse, _) = conn.recv().await.unwrap();
        assert_eq!(resp.partitions[0].base_offset, i as u64 * 10);
    }
    let all = read_partition(&mut conn, "pipe", 0, 0).await;
    assert_eq!(all.len(), 500);
    assert!(all.iter().enumerate().all(|(i, (o, _))| *o == i as u64));
    assert!(all[499].1.starts_with(b"p49:9"));
}

#[tokio::test]
async fn prefetched_fetches_are_answered_in_order() {
    let broker = TestBroker::start();
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "pre", 2, TopicConfig::default()).await;
    conn.produce(
        Acks::Leader,
        5000,
        &[
            ("pre", 0, &batch_of(&["a0", "a1", "a2"])),
            ("pre", 1, &batch_of(&["b0"])),
        ],
    )
    .await
    .unwrap()
    .unwrap();
    let ask = |partition: u32, offset: u64| {
        vec![FetchPartition {
            topic: "pre".into(),
            partition,
            offset,
            max_bytes: 1 << 20,
        }]
    };
    // Three fetches on the wire before any answer is read: the second
    // asks for partition 1, the third for what follows partition 0's end
    // (it waits out its 200 ms and comes back empty).
    conn.send_fetch(0, 1, 1 << 20, ask(0, 1)).await.unwrap();
    conn.send_fetch(0, 1, 1 << 20, ask(1, 0)).await.unwrap();
    conn.send_fetch(200, 1, 1 << 20, ask(0, 3)).await.unwrap();
    let first = conn.recv_fetch().await.unwrap();
    assert_eq!(first[0].partition, 0);
    let values: Vec<_> = sluice_tests::decode_records(&first[0].records, 1)
        .into_iter()
        .map(|(o, v)| (o, v.to_vec()))
        .collect();
    assert_eq!(values, [(1, b"a1".to_vec()), (2, b"a2".to_vec())]);
    let second = conn.recv_fetch().await.unwrap();
    assert_eq!(second[0].partition, 1);
    assert_eq!(sluice_tests::decode_records(&second[0].records, 0).len(), 1);
    let third = conn.recv_fetch().await.unwrap();
    assert_eq!(third[0].partition, 0);
    assert!(third[0].records.is_empty());
    assert_eq!(third[0].high_watermark, 3);
}
