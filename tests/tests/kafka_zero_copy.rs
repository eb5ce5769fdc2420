//! The Kafka listener's fetch path is zero-copy too: while kcat consumes
//! over 200 MB from the beginning to the end of a partition, an `strace` of
//! the broker shows at least 95% of the segment bytes leaving by
//! `sendfile(2)` and none read into user space, the older part of it sent
//! from a blocking thread off the reactor. With `--fetch-path copy` the
//! same probe sees the reads (so it can tell).
//!
//! Needs `strace` and `kcat` (installed by `.ci/run`).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::{kcat, run_kcat};
use sluice_tests::strace::{SegmentTrace, strace_available};
use sluice_tests::{TestBroker, batch_sized, create_topic};

const RECORDS: usize = 1024;
const VALUE: usize = 1000;

/// What a traced consume saw.
struct Traced {
    /// Bytes moved by sendfile from segment files.
    sendfile: u64,
    /// Segment reads into user space.
    reads: Vec<String>,
    /// Record batch bytes produced.
    produced: u64,
    /// Fetch responses the broker sent from a blocking thread.
    offloaded: u64,
}

/// Traces the broker while kcat reads `batches` batches of about 1 MiB
/// from the beginning.
async fn consume_traced(fetch_path: &str, batches: usize) -> Traced {
    let broker = TestBroker::start_with_args(&["--fetch-path", fetch_path]);
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "big", 1, TopicConfig::default()).await;
    let mut produced = 0u64;
    for i in 0..batches {
        let b = batch_sized(&format!("z{i}"), RECORDS, VALUE);
        produced += b.len() as u64;
        conn.produce(Acks::Leader, 5000, &[("big", 0, &b)])
            .await
            .unwrap()
            .unwrap();
    }
    let probe = SegmentTrace::attach(broker.pid()).await;

    let addr = broker.kafka_addr.unwrap().to_string();
    let offsets = tokio::task::spawn_blocking(move || {
        run_kcat(
            &[
                "-b",
                &addr,
                "-C",
                "-t",
                "big",
                "-p",
                "0",
                "-o",
                "beginning",
                "-e",
                "-q",
                "-f",
                "%o\n",
            ],
            b"",
        )
    })
    .await
    .unwrap();
    let lines: Vec<&str> = offsets.lines().collect();
    assert_eq!(lines.len(), batches * RECORDS, "kcat read every record");
    assert_eq!(
        lines.last().copied(),
        Some(&*(batches * RECORDS - 1).to_string())
    );
    let trace = probe.finish().await;
    let offloaded = conn
        .stats()
        .await
        .unwrap()
        .counters
        .iter()
        .find(|c| c.name == "offloaded_sends")
        .map_or(0, |c| c.value);
    Traced {
        sendfile: trace.sendfile_bytes,
        reads: trace.segment_reads,
        produced,
        offloaded,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_consuming_200_mb_is_served_by_sendfile() {
    if !strace_available() || !kcat() {
        return;
    }
    // 200 batches of 1024 records of 1000 bytes: over 200 MB.
    let Traced {
        sendfile,
        reads,
        produced,
        offloaded,
    } = consume_traced("sendfile", 200).await;
    eprintln!(
        "kcat: {sendfile} of {produced} segment bytes by sendfile, {offloaded} responses off the reactor"
    );
    assert!(produced >= 200_000_000, "{produced}");
    assert!(
        reads.is_empty(),
        "segment bytes read into user space: {:?}",
        &reads[..reads.len().min(5)]
    );
    assert!(
        sendfile * 100 >= produced * 95,
        "sendfile moved {sendfile} of {produced} bytes"
    );
    // The records older than the hot tail (64 MiB) went from a blocking
    // thread (this test's own connection stays open beside kcat's): still
    // by sendfile, as the trace (which follows every thread) shows.
    assert!(offloaded > 0, "no response was sent off the reactor");

    let Traced {
        sendfile, reads, ..
    } = consume_traced("copy", 8).await;
    assert!(
        !reads.is_empty(),
        "the probe must see the copy path's reads"
    );
    assert_eq!(sendfile, 0);
}
