//! The zero-copy claim, checked on the real broker process: while it serves
//! a large fetch, segment bytes leave through `sendfile(2)` and no
//! `read`-family system call returns bytes of a segment file. The same probe
//! on the `copy` fetch path does see `pread`s of segment files, which shows
//! the probe can tell the difference.
//!
//! Needs `strace` (installed by `.ci/run`). Without it the test is skipped
//! with a message, unless `SLUICE_REQUIRE_STRACE=1`, which makes it fail.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::strace::{SegmentTrace, Trace, strace_available};
use sluice_tests::{TestBroker, batch_sized, create_topic, decode_records};

const BATCHES: usize = 24;
const RECORDS: usize = 1024;
const VALUE: usize = 1000;

/// Syscall summary of the broker while it served the fetches.
async fn fetch_everything_traced(fetch_path: &str) -> (Trace, u64, u64) {
    let broker = TestBroker::start_with_args(&["--fetch-path", fetch_path]);
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "big", 1, TopicConfig::default()).await;
    let mut produced = 0u64;
    for i in 0..BATCHES {
        let b = batch_sized(&format!("z{i}"), RECORDS, VALUE);
        produced += b.len() as u64;
        conn.produce(Acks::Leader, 5000, &[("big", 0, &b)])
            .await
            .unwrap()
            .unwrap();
    }

    let probe = SegmentTrace::attach(broker.pid()).await;

    let mut offset = 0;
    let mut received = 0u64;
    let mut records = 0usize;
    loop {
        let r = conn
            .fetch(
                0,
                0,
                8 << 20,
                vec![FetchPartition {
                    topic: "big".into(),
                    partition: 0,
                    offset,
                    max_bytes: 8 << 20,
                }],
            )
            .await
            .unwrap();
        if r[0].records.is_empty() {
            break;
        }
        received += r[0].records.len() as u64;
        let recs = decode_records(&r[0].records, offset);
        records += recs.len();
        offset = recs.last().unwrap().0 + 1;
    }
    assert_eq!(records, BATCHES * RECORDS);
    assert_eq!(received, produced);
    let trace = probe.finish().await;
    let stats = conn.stats().await.unwrap();
    (
        trace,
        stats.get("fetch_bytes_sendfile").unwrap(),
        stats.get("fetch_bytes_copy").unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sends_segment_bytes_with_sendfile_only() {
    if !strace_available() {
        return;
    }
    let total = (BATCHES * RECORDS * VALUE) as u64;
    let (trace, by_sendfile, by_copy) = fetch_everything_traced("sendfile").await;
    assert!(
        trace.segment_reads.is_empty(),
        "segment bytes read into user space: {:?}",
        &trace.segment_reads[..trace.segment_reads.len().min(5)]
    );
    assert!(
        trace.sendfile_bytes >= total,
        "sendfile moved {} of {total} bytes",
        trace.sendfile_bytes
    );
    assert!(by_sendfile >= total);
    assert_eq!(by_copy, 0);

    let (trace, by_sendfile, by_copy) = fetch_everything_traced("copy").await;
    assert!(
        !trace.segment_reads.is_empty(),
        "the probe must see the copy path's preads"
    );
    assert_eq!(trace.sendfile_bytes, 0);
    assert_eq!(by_sendfile, 0);
    assert!(by_copy >= total);
}
