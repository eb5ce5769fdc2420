//! The zero-copy claim, checked on the real broker process: while it serves
//! a large fetch, segment bytes leave through `sendfile(2)` and no
//! `read`-family system call returns bytes of a segment file. The same probe
//! on the `copy` fetch path does see `pread`s of segment files, which shows
//! the probe can tell the difference.
//!
//! Needs `strace` (installed by `.ci/run`). Without it the test is skipped
//! with a message, unless `SLUICE_REQUIRE_STRACE=1`, which makes it fail.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized, create_topic, decode_records};

const BATCHES: usize = 24;
const RECORDS: usize = 1024;
const VALUE: usize = 1000;

fn strace_available() -> bool {
    let ok = Command::new("strace")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("SLUICE_REQUIRE_STRACE").is_err(),
            "strace is required (SLUICE_REQUIRE_STRACE is set) but not installed"
        );
        eprintln!("SKIPPED: strace is not installed; the zero-copy probe did not run");
    }
    ok
}

/// Syscall summary of the broker while it served the fetches.
struct Trace {
    sendfile_bytes: u64,
    segment_reads: Vec<String>,
}

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

    let out = tempfile::NamedTempFile::new().unwrap();
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-e",
            "trace=read,pread64,readv,preadv,preadv2,sendfile",
            "-o",
        ])
        .arg(out.path())
        .args(["-p", &broker.pid().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace");
    // Wait until strace has attached to every thread.
    let stderr = strace.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("attached") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20))
        .expect("strace attached");
    tokio::time::sleep(Duration::from_millis(300)).await;

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
    tokio::time::sleep(Duration::from_millis(200)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(strace.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    strace.wait().unwrap();

    let text = std::fs::read_to_string(out.path()).unwrap();
    let mut trace = Trace {
        sendfile_bytes: 0,
        segment_reads: Vec::new(),
    };
    for line in text.lines() {
        let ret = line
            .rsplit_once(" = ")
            .and_then(|(_, r)| r.split_whitespace().next()?.parse::<i64>().ok());
        if line.contains("sendfile(") && line.contains(".log>") {
            trace.sendfile_bytes += ret.unwrap_or(0).max(0) as u64;
        } else if (line.contains("read(")
            || line.contains("read64(")
            || line.contains("readv")
            || line.contains("preadv"))
            && line.contains(".log>")
            && ret.unwrap_or(0) > 0
        {
            trace.segment_reads.push(line.to_owned());
        }
    }
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
