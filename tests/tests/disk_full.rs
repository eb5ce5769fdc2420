//! A real full disk under a real broker: its data directory is a small
//! tmpfs. Produce until the disk is full; every refused append is answered
//! `DiskFull` at once, nothing acknowledged is lost or changed (served while
//! full, after space comes back, and after a crash on the full disk), and
//! appends resume once space is freed.
//!
//! Needs to mount a tmpfs (root, or a user that may mount): skipped with a
//! note otherwise, unless `SLUICE_REQUIRE_TMPFS` is set (`.ci/run` sets it
//! when it runs as root).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized_now, create_topic, read_partition};

/// A tmpfs of a fixed size mounted for the test's life.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, bytes: u64) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let size = format!("size={bytes}");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &size, "sluice-disk-full"])
            .arg(dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Tmpfs {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Mounts a tmpfs at `dir`, or says why the test is skipped.
fn small_disk(dir: &Path, bytes: u64) -> Option<Tmpfs> {
    match Tmpfs::mount(dir, bytes) {
        Ok(fs) => Some(fs),
        Err(e) if std::env::var_os("SLUICE_REQUIRE_TMPFS").is_some() => {
            panic!("cannot mount a tmpfs and SLUICE_REQUIRE_TMPFS is set: {e}")
        }
        Err(e) => {
            eprintln!("skipped: cannot mount a tmpfs here ({e})");
            None
        }
    }
}

const DISK: u64 = 32 << 20;
/// One produce: 16 records of 4,000 bytes.
const RECORDS: usize = 16;
const VALUE: usize = 4000;

/// Produces one batch tagged `tag` to `topic`; `Ok(base offset)` or the
/// error code and message. Never waits long: a full disk must not hang it.
async fn produce(
    conn: &mut sluice_client::Connection,
    topic: &str,
    tag: &str,
) -> Result<u64, (ErrorCode, String)> {
    let batch = batch_sized_now(tag, RECORDS, VALUE);
    let resp = tokio::time::timeout(
        Duration::from_secs(20),
        conn.produce(Acks::Leader, 10_000, &[(topic, 0, &batch)]),
    )
    .await
    .expect("a produce on a full disk is answered at once")
    .expect("produce request")
    .expect("acks=leader has a response");
    let p = &resp.partitions[0];
    match p.error_code {
        ErrorCode::None => Ok(p.base_offset),
        code => Err((code, p.message.clone().unwrap_or_default())),
    }
}

/// Each acknowledged record as (offset, value).
fn expected(acked: &[(u64, String)]) -> Vec<(u64, Bytes)> {
    let mut out = Vec::new();
    for (base, tag) in acked {
        let batch = batch_sized_now(tag, RECORDS, VALUE);
        let mut bytes = batch.freeze();
        let b = sluice_protocol::batch::RecordBatch::split_first(&mut bytes).unwrap();
        for (i, r) in b.records().enumerate() {
            out.push((base + i as u64, r.unwrap().value.unwrap()));
        }
    }
    out
}

#[tokio::test]
async fn a_full_disk_refuses_appends_keeps_what_was_acknowledged_and_recovers() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let Some(_disk) = small_disk(&data, DISK) else {
        return;
    };
    let mut broker = TestBroker::try_start_in(data.clone(), &[], &[]).unwrap();
    let mut conn = broker.connect().await;
    let small_segments = TopicConfig {
        segment_bytes: Some(1 << 20),
        ..TopicConfig::default()
    };
    create_topic(&mut conn, "ballast", 1, small_segments.clone()).await;
    create_topic(&mut conn, "fill", 1, small_segments).await;
    for i in 0..128 {
        produce(&mut conn, "ballast", &format!("ballast-{i}"))
            .await
            .unwrap();
    }

    // Fill the disk: the first refusal says why, and so does the next.
    let mut acked: Vec<(u64, String)> = Vec::new();
    let mut refused = None;
    for i in 0..(2 * DISK as usize / (RECORDS * VALUE)) {
        let tag = format!("fill-{i}");
        match produce(&mut conn, "fill", &tag).await {
            Ok(base) => acked.push((base, tag)),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let (code, message) = refused.expect("the disk fills up");
    assert_eq!(code, ErrorCode::DiskFull, "{message}");
    assert!(
        message.contains("No space left"),
        "the message names the cause: {message}"
    );
    assert!(
        acked.len() > 100,
        "{} batches fitted before the disk was full",
        acked.len()
    );
    let (code, _) = produce(&mut conn, "fill", "refused-again")
        .await
        .unwrap_err();
    assert_eq!(code, ErrorCode::DiskFull);

    // What was acknowledged is served, unchanged, while the disk is full.
    let want = expected(&acked);
    assert_eq!(read_partition(&mut conn, "fill", 0, 0).await, want);

    // Deleting a topic frees space: appends resume, after the last
    // acknowledged offset.
    let resp = conn.delete_topics(vec!["ballast".into()]).await.unwrap();
    assert_eq!(
        resp.results[0].error_code,
        ErrorCode::None,
        "{:?}",
        resp.results[0].message
    );
    let next = acked.last().unwrap().0 + RECORDS as u64;
    for i in 0..16 {
        let tag = format!("after-{i}");
        let base = produce(&mut conn, "fill", &tag).await.unwrap();
        assert_eq!(base, next + (i * RECORDS) as u64);
        acked.push((base, tag));
    }
    // Fill it again, then crash the broker on the full disk.
    for i in 0.. {
        let tag = format!("again-{i}");
        match produce(&mut conn, "fill", &tag).await {
            Ok(base) => acked.push((base, tag)),
            Err((code, message)) => {
                assert_eq!(code, ErrorCode::DiskFull, "{message}");
                break;
            }
        }
    }
    drop(conn);
    broker.kill();
    broker.restart();
    let mut conn = broker.connect().await;
    assert_eq!(
        read_partition(&mut conn, "fill", 0, 0).await,
        expected(&acked),
        "after a crash on the full disk; log: {}",
        broker.log_tail(30)
    );
    assert!(!broker.log().contains("panicked"), "{}", broker.log());
}
