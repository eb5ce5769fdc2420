//! Fetch byte limits against a real broker (KIP-74, as Kafka applies them):
//! the first batch of the first partition with records comes whole, even
//! larger than every limit; past it a partition's records end at the last
//! batch boundary within its limit, however large the next batch is; and a
//! later partition whose first batch does not fit in what is left of the
//! request's budget gets no records in that answer.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized_now, create_topic, decode_records};

const BIG: usize = 2 << 20;

/// Fetches without waiting; the offsets and record bytes of each
/// partition's answer.
async fn fetch(
    c: &mut sluice_client::Connection,
    max_bytes: u32,
    parts: Vec<FetchPartition>,
) -> Vec<(Vec<u64>, usize)> {
    c.fetch(0, 0, max_bytes, parts)
        .await
        .unwrap()
        .into_iter()
        .map(|p| {
            assert_eq!(p.error_code, ErrorCode::None);
            let offsets = decode_records(&p.records, 0)
                .into_iter()
                .map(|(o, _)| o)
                .collect();
            (offsets, p.records.len())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_after_a_small_one_stays_out_of_a_small_fetch() {
    let b = TestBroker::start();
    let mut c = b.connect().await;
    create_topic(&mut c, "limits", 2, TopicConfig::default()).await;
    // Partition 0: a small batch (offset 0), a 2 MiB one (1), a small one
    // (2). Partition 1: one small batch.
    for (partition, len) in [(0, 10), (0, BIG), (0, 10), (1, 10)] {
        let batch = batch_sized_now("v", 1, len);
        let r = c
            .produce(Acks::All, 5000, &[("limits", partition, &batch)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    }
    let at = |partition, offset, max_bytes| FetchPartition {
        topic: "limits".into(),
        partition,
        offset,
        max_bytes,
    };
    // Only the small first batch: the 2 MiB one does not fit.
    let r = fetch(&mut c, 1 << 30, vec![at(0, 0, 1000)]).await;
    assert_eq!(r[0].0, [0]);
    assert!(r[0].1 < 1000, "{} bytes", r[0].1);
    let r = fetch(&mut c, 1000, vec![at(0, 0, 1 << 30)]).await;
    assert_eq!(r[0].0, [0], "the request's limit too");
    let r = fetch(&mut c, 1 << 30, vec![at(0, 0, 0)]).await;
    assert_eq!(r[0].0, [0], "a zero limit still gives the first batch");
    // The large batch first: it comes whole, alone.
    let r = fetch(&mut c, 1000, vec![at(0, 1, 1000)]).await;
    assert_eq!(r[0].0, [1]);
    assert!(r[0].1 > BIG, "{} bytes", r[0].1);
    // After partition 1's records, partition 0's large first batch does
    // not fit in what is left: no records for it this time; with room, it
    // comes.
    let r = fetch(&mut c, 1 << 20, vec![at(1, 0, 1000), at(0, 1, 4 << 20)]).await;
    assert_eq!(r[0].0, [0]);
    assert!(r[1].0.is_empty(), "{:?}", r[1]);
    let r = fetch(&mut c, 4 << 20, vec![at(1, 0, 1000), at(0, 1, 4 << 20)]).await;
    assert_eq!(
        (r[0].0.as_slice(), r[1].0.as_slice()),
        (&[0][..], &[1, 2][..])
    );
}
