//! A real full disk under a real broker: its data directory is a small
//! tmpfs. Produce until the disk is full; every refused append is answered
//! `DiskFull` at once, nothing acknowledged is lost or changed (served while
//! full, after space comes back, and after a crash on the full disk), and
//! appends resume once space is freed. A topic creation and an offset commit
//! on the full disk are answered (made or refused), never a crash, and
//! deleting a topic works there.
//!
//! Needs to mount a tmpfs (root, or a user that may mount): skipped with a
//! note otherwise, unless `SLUICE_REQUIRE_TMPFS` is set (`.ci/run` sets it
//! where a probe mount succeeds).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::delete_records::{DeleteRecordsRequest, RecordsBelow};
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized_now, create_topic, read_partition, sample};

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
/// A large produce: 16 records of 4,000 bytes.
const LARGE: Shape = Shape {
    records: 16,
    value: 4000,
};
/// A small one, to fill what the large ones leave.
const SMALL: Shape = Shape {
    records: 1,
    value: 100,
};

#[derive(Debug, Clone, Copy)]
struct Shape {
    records: usize,
    value: usize,
}

/// An acknowledged batch.
struct Sent {
    base: u64,
    tag: String,
    shape: Shape,
}

/// Produces one batch of `shape` tagged `tag` to partition 0 of `topic`;
/// `Ok(base offset)` or the error code and message. Never waits long: a
/// full disk must not hang it.
async fn produce(
    conn: &mut sluice_client::Connection,
    topic: &str,
    tag: &str,
    shape: Shape,
) -> Result<u64, (ErrorCode, String)> {
    let batch = batch_sized_now(tag, shape.records, shape.value);
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

/// Produces batches of `shape` to `topic` until the disk is full, adding
/// each acknowledged one to `sent`; returns the refusal's message.
async fn fill(
    conn: &mut sluice_client::Connection,
    topic: &str,
    prefix: &str,
    shape: Shape,
    sent: &mut Vec<Sent>,
) -> String {
    let most = 2 * DISK as usize / (shape.records * (shape.value + 20));
    for i in 0..most {
        let tag = format!("{prefix}-{i}");
        match produce(conn, topic, &tag, shape).await {
            Ok(base) => sent.push(Sent { base, tag, shape }),
            Err((code, message)) => {
                assert_eq!(code, ErrorCode::DiskFull, "{message}");
                return message;
            }
        }
    }
    panic!("{most} batches of {shape:?} never filled the disk");
}

/// Each acknowledged record as (offset, value).
fn expected(sent: &[Sent]) -> Vec<(u64, Bytes)> {
    let mut out = Vec::new();
    for s in sent {
        let mut bytes = batch_sized_now(&s.tag, s.shape.records, s.shape.value).freeze();
        let b = sluice_protocol::batch::RecordBatch::split_first(&mut bytes).unwrap();
        for (i, r) in b.records().enumerate() {
            out.push((s.base + i as u64, r.unwrap().value.unwrap()));
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
    create_topic(&mut conn, "fill", 1, small_segments.clone()).await;
    let mut ballast = Vec::new();
    for i in 0..128 {
        let tag = format!("ballast-{i}");
        let base = produce(&mut conn, "ballast", &tag, LARGE).await.unwrap();
        ballast.push(Sent {
            base,
            tag,
            shape: LARGE,
        });
    }

    // Fill the disk, to the last few bytes: every refusal says why.
    let mut sent: Vec<Sent> = Vec::new();
    let message = fill(&mut conn, "fill", "large", LARGE, &mut sent).await;
    assert!(
        message.contains("No space left"),
        "the message names the cause: {message}"
    );
    // The broker's paths are for its operator: they go to its log, once a
    // second at most, not to the client.
    assert!(
        !message.contains(data.to_str().unwrap()),
        "no broker path in the message: {message}"
    );
    let log = broker.log();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("storage failure serving a produce to fill-0"))
        .collect();
    assert!(
        warnings.iter().any(|l| l.contains(data.to_str().unwrap())),
        "the broker logs the failure with its path:\n{}",
        broker.log_tail(20)
    );
    assert!(sent.len() > 100, "{} batches fitted", sent.len());
    fill(&mut conn, "fill", "small", SMALL, &mut sent).await;
    let (code, _) = produce(&mut conn, "fill", "again", SMALL)
        .await
        .unwrap_err();
    assert_eq!(code, ErrorCode::DiskFull);
    // An operator sees it: three refused partitions, and the disk's size
    // and what is left of it.
    let (status, metrics) = sluice_tests::http_get(broker.metrics_addr.unwrap(), "/metrics");
    assert_eq!(status, 200);
    assert_eq!(
        sample(
            &metrics,
            r#"sluice_produce_partition_errors_total{code="11",error="DiskFull"}"#
        ),
        Some(3.0),
        "{metrics}"
    );
    assert_eq!(
        sample(&metrics, "sluice_disk_size_bytes"),
        Some(DISK as f64)
    );
    let free = sample(&metrics, "sluice_disk_free_bytes").unwrap();
    assert!(free < (1 << 20) as f64, "{free} bytes free on a full disk");
    // The CLI producer retries a full disk until its delivery timeout (2
    // minutes by default), which `--delivery-timeout-ms` shortens; then it
    // fails with one clear line.
    let started = std::time::Instant::now();
    let mut child = std::process::Command::new(sluice_tests::workspace_binary(
        "sluice-client",
        "sluice",
        "SLUICE_CLI_BIN",
    ))
    .args(["--broker", &broker.addr.to_string(), "produce", "fill"])
    .args(["--delivery-timeout-ms", "2000"])
    .stdin(std::process::Stdio::piped())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&vec![b'x'; 4096]).unwrap();
        stdin.write_all(b"\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        took < Duration::from_secs(30),
        "gave up after {took:?}: {stderr}"
    );
    println!("CLI produce on the full disk gave up after {took:?}: {stderr}");

    // A committed offset on the full disk: stored, or refused clearly.
    let commit = |offset| {
        vec![CommitPartition {
            topic: "fill".into(),
            partition: 0,
            offset,
            metadata: String::new(),
        }]
    };
    let committed = conn.offset_commit("g", commit(5)).await.unwrap();
    assert!(
        matches!(
            committed.partitions[0].error_code,
            ErrorCode::None | ErrorCode::DiskFull | ErrorCode::StorageError
        ),
        "{committed:?}"
    );

    // New partitions on the full disk (new segment and index files): made
    // or refused with a clear error, and the broker stays up either way.
    let created = conn
        .create_topics(vec![NewTopic {
            name: "late".into(),
            partitions: 4,
            config: small_segments,
            replication_factor: None,
        }])
        .await
        .expect("the broker answers a topic creation on a full disk");
    let late = &created.results[0];
    assert!(
        matches!(
            late.error_code,
            ErrorCode::None | ErrorCode::DiskFull | ErrorCode::StorageError
        ),
        "{late:?}"
    );
    if late.error_code == ErrorCode::None {
        match produce(&mut conn, "late", "late", SMALL).await {
            Ok(_) | Err((ErrorCode::DiskFull, _)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }

    // What was acknowledged is served, unchanged, while the disk is full.
    assert_eq!(
        read_partition(&mut conn, "fill", 0, 0).await,
        expected(&sent)
    );
    assert_eq!(
        read_partition(&mut conn, "ballast", 0, 0).await,
        expected(&ballast)
    );

    // Deleting records frees space too, even on the full disk, where the
    // file that records the new log start has no room but for the space
    // reserve: the segments below the cut go, and appends resume.
    let cut = ballast[ballast.len() / 2].base;
    let r = conn
        .delete_records(&DeleteRecordsRequest {
            partitions: vec![RecordsBelow {
                topic: "ballast".into(),
                partition: 0,
                before: Some(cut),
            }],
        })
        .await
        .unwrap();
    assert_eq!(
        (r.partitions[0].error_code, r.partitions[0].log_start_offset),
        (ErrorCode::None, cut),
        "log: {}",
        broker.log_tail(20)
    );
    ballast.retain(|b| b.base >= cut);
    let last = sent.last().unwrap();
    let base = produce(&mut conn, "fill", "after-cut", SMALL)
        .await
        .expect("an append after the deletion of records");
    assert_eq!(base, last.base + last.shape.records as u64);
    sent.push(Sent {
        base,
        tag: "after-cut".into(),
        shape: SMALL,
    });
    fill(&mut conn, "fill", "refill", LARGE, &mut sent).await;
    fill(&mut conn, "fill", "refill-small", SMALL, &mut sent).await;

    // Deleting a topic frees space: appends resume, after the last
    // acknowledged offset.
    let resp = conn.delete_topics(vec!["ballast".into()]).await.unwrap();
    assert_eq!(
        resp.results[0].error_code,
        ErrorCode::None,
        "{:?}",
        resp.results[0].message
    );
    let last = sent.last().unwrap();
    let mut next = last.base + last.shape.records as u64;
    for i in 0..16 {
        let tag = format!("after-{i}");
        let base = produce(&mut conn, "fill", &tag, LARGE).await.unwrap();
        assert_eq!(base, next);
        next += LARGE.records as u64;
        sent.push(Sent {
            base,
            tag,
            shape: LARGE,
        });
    }

    let committed = conn.offset_commit("g", commit(7)).await.unwrap();
    assert_eq!(committed.partitions[0].error_code, ErrorCode::None);

    // Fill it again; then a crash on the full disk, a clean stop on it, and
    // a start after each.
    fill(&mut conn, "fill", "again", LARGE, &mut sent).await;
    fill(&mut conn, "fill", "squeeze", SMALL, &mut sent).await;
    drop(conn);
    for (clean, when) in [(false, "a crash"), (true, "a clean stop")] {
        if clean {
            let mut conn = broker.connect().await;
            fill(&mut conn, "fill", "last", SMALL, &mut sent).await;
            drop(conn);
            broker.stop();
        } else {
            broker.kill();
        }
        broker.restart();
        let mut conn = broker.connect().await;
        assert_eq!(
            read_partition(&mut conn, "fill", 0, 0).await,
            expected(&sent),
            "after {when} on the full disk; log: {}",
            broker.log_tail(30)
        );
    }
    let mut conn = broker.connect().await;
    let fetched = conn.offset_fetch("g", None).await.unwrap();
    assert_eq!(fetched.partitions.len(), 1, "{fetched:?}");
    assert_eq!(fetched.partitions[0].offset, Some(7), "{fetched:?}");
    let log = broker.log();
    assert!(!log.contains("panicked"), "{log}");
    // A create that failed on the full disk left no directory behind.
    assert!(
        !log.contains("set aside") && !log.contains("removed the empty partition directory"),
        "{log}"
    );
}

/// Writes a file of zeros into `dir` until the file system is full.
fn fill_with_a_file(dir: &Path) -> std::fs::File {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let chunk = vec![0u8; 64 << 10];
    loop {
        match f.write(&chunk) {
            Ok(0) => return f,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => return f,
            Err(e) => panic!("filling the disk: {e}"),
        }
    }
}

/// A cluster node whose disk is full keeps its controller and its
/// partitions' Raft cores: produce is refused below `min_free_bytes`; the
/// controller's writes take the blocks it keeps back (`.space-reserve` in
/// its directory) when the disk refuses them, so metadata changes go on —
/// a topic deleted to free space above all — where the node used to lose
/// its controller core and exit, and exit again at every restart while the
/// disk stayed full. Started again once space is back, it has what was
/// acknowledged before and takes changes.
#[tokio::test]
async fn a_cluster_node_on_a_full_disk_keeps_its_controller_and_recovers() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("data");
    let Some(_disk) = small_disk(&data, 16 << 20) else {
        return;
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], sluice_tests::free_port()));
    let cluster = base.path().join("cluster.toml");
    std::fs::write(
        &cluster,
        format!(
            "[[node]]\nid = 1\nlisten = \"{addr}\"\nraft = \"127.0.0.1:{}\"\n",
            sluice_tests::free_port()
        ),
    )
    .unwrap();
    // A floor well below the disk's size: produce is refused once the
    // disk is full (the controller's own writes are not).
    let config = base.path().join("broker.toml");
    std::fs::write(&config, "min_free_bytes = 1048576\n").unwrap();
    let args = [
        "--node-id",
        "1",
        "--cluster",
        cluster.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ];
    let mut broker = TestBroker::try_start_at_in(addr, data.clone(), &args, &[]).unwrap();
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "kept", 1, TopicConfig::default()).await;
    create_topic(&mut conn, "doomed", 1, TopicConfig::default()).await;
    // The new partition's group elects its leader first.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let base_offset = loop {
        match produce(&mut conn, "kept", "before", SMALL).await {
            Ok(offset) => break offset,
            Err((ErrorCode::LeaderNotAvailable | ErrorCode::NotLeaderForPartition, _))
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("produce: {e:?}"),
        }
    };
    let filler = fill_with_a_file(&data);
    // The partition's leader refuses records below the floor (measured at
    // most every 100 ms), before its group orders an entry every replica
    // would fail to store.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, message) = produce(&mut conn, "kept", "full", SMALL).await.unwrap_err();
    assert_eq!(code, ErrorCode::DiskFull, "{message}");
    assert!(message.contains("min_free_bytes"), "{message}");

    // Each creation adds an entry to the controller's log (its partition's
    // files may not fit: refused then, with an answer).
    let long = "x".repeat(200);
    for i in 0..20 {
        let topic = NewTopic {
            name: format!("{long}{i}"),
            partitions: 1,
            config: TopicConfig::default(),
            replication_factor: None,
        };
        let answered =
            tokio::time::timeout(Duration::from_secs(20), conn.create_topics(vec![topic]))
                .await
                .expect("a create on a full disk is answered");
        assert!(
            broker.wait_exit(Duration::ZERO).is_none(),
            "the node exited on a full disk: {}",
            broker.log_tail(30)
        );
        if answered.is_err() {
            conn = broker.connect().await;
        }
    }
    // The way out: delete a topic, on the full disk.
    let deleted = tokio::time::timeout(
        Duration::from_secs(20),
        conn.delete_topics(vec!["doomed".to_owned()]),
    )
    .await
    .expect("a delete on a full disk is answered")
    .expect("delete");
    assert_eq!(
        deleted.results[0].error_code,
        ErrorCode::None,
        "{deleted:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        broker.wait_exit(Duration::ZERO).is_none(),
        "the node exited on a full disk: {}",
        broker.log_tail(30)
    );
    let log = broker.log();
    assert!(
        log.contains("released the reserved space") && !log.contains("Raft core stopped"),
        "{}",
        broker.log_tail(30)
    );
    assert!(!log.contains("panicked"), "{log}");

    drop(filler);
    std::fs::remove_file(data.join("filler")).unwrap();
    broker.stop();
    broker.restart();
    let mut conn = broker.connect().await;
    // The partition's group elects its leader again after the restart.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let p = conn
            .fetch(
                0,
                0,
                1 << 20,
                vec![sluice_protocol::wire::fetch::FetchPartition {
                    topic: "kept".to_owned(),
                    partition: 0,
                    offset: base_offset,
                    max_bytes: 1 << 10,
                }],
            )
            .await
            .expect("fetch");
        let led = !matches!(
            p[0].error_code,
            ErrorCode::LeaderNotAvailable | ErrorCode::NotLeaderForPartition
        );
        if led || std::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let records = read_partition(&mut conn, "kept", 0, 0).await;
    assert_eq!(
        records.first().map(|r| r.0),
        Some(base_offset),
        "{records:?}"
    );
    assert_eq!(records.len(), SMALL.records);
    create_topic(&mut conn, "after", 1, TopicConfig::default()).await;
}

/// A loop-mounted ext4 file system of `bytes` at `dir`, unmounted (and its
/// image removed with the temporary directory) when dropped.
struct Ext4 {
    dir: PathBuf,
}

impl Ext4 {
    fn mount(image: &Path, dir: &Path, bytes: u64) -> Result<Ext4, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let file = std::fs::File::create(image).map_err(|e| e.to_string())?;
        file.set_len(bytes).map_err(|e| e.to_string())?;
        let run = |cmd: &mut Command| -> Result<(), String> {
            let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
            match out.status.success() {
                true => Ok(()),
                false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
            }
        };
        // No blocks reserved for root: the broker (root here) fills it all.
        run(Command::new("mkfs.ext4")
            .args(["-q", "-F", "-m", "0"])
            .arg(image))?;
        run(Command::new("mount")
            .args(["-o", "loop"])
            .arg(image)
            .arg(dir))?;
        Ok(Ext4 {
            dir: dir.to_owned(),
        })
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        // Lazily: a file still open on it (a failed test's) must not keep
        // it mounted, with its loop device, after the test.
        let _ = Command::new("umount")
            .args(["-d", "-l"])
            .arg(&self.dir)
            .status();
    }
}

/// A broker killed on a full ext4 disk starts again on it and serves every
/// acknowledged record. Its recovery rebuilds the active segments' indexes;
/// it zeroed them through their memory mappings, and on ext4 (unlike tmpfs)
/// a store into a mapped page can need a block, which on a full disk is
/// `SIGBUS`: the broker died at every start until space was added. The
/// checkpoint written after recovery, which needs a block too, no longer
/// keeps it from starting either.
///
/// Needs `mkfs.ext4` and a loop mount (root): skipped with a note otherwise,
/// unless `SLUICE_REQUIRE_LOOP_EXT4` is set (`.ci/run` sets it where a probe
/// mount succeeds).
#[tokio::test]
async fn a_broker_killed_on_a_full_ext4_disk_starts_again_and_serves_what_was_acknowledged() {
    let base = tempfile::tempdir().unwrap();
    let data = base.path().join("mnt");
    let disk = match Ext4::mount(&base.path().join("image"), &data, 64 << 20) {
        Ok(d) => d,
        Err(e) if std::env::var_os("SLUICE_REQUIRE_LOOP_EXT4").is_some() => {
            panic!("cannot mount an ext4 image and SLUICE_REQUIRE_LOOP_EXT4 is set: {e}")
        }
        Err(e) => {
            eprintln!("skipped: cannot mount an ext4 image here ({e})");
            return;
        }
    };
    // The file system's root is the data directory: the broker's log goes
    // beside it, off the full disk.
    let mut broker = TestBroker::try_start_in(data.clone(), &[], &[]).unwrap();
    let mut conn = broker.connect().await;
    let small_segments = TopicConfig {
        segment_bytes: Some(1 << 20),
        ..TopicConfig::default()
    };
    create_topic(&mut conn, "t", 2, small_segments).await;
    let mut sent: Vec<(u32, Sent)> = Vec::new();
    'fill: for i in 0.. {
        for partition in 0..2u32 {
            let tag = format!("r-{i}-{partition}");
            let batch = batch_sized_now(&tag, LARGE.records, LARGE.value);
            let resp = tokio::time::timeout(
                Duration::from_secs(20),
                conn.produce(Acks::All, 10_000, &[("t", partition, &batch)]),
            )
            .await
            .expect("a produce on a full disk is answered at once")
            .unwrap()
            .unwrap();
            let p = &resp.partitions[0];
            match p.error_code {
                ErrorCode::None => sent.push((
                    partition,
                    Sent {
                        base: p.base_offset,
                        tag,
                        shape: LARGE,
                    },
                )),
                ErrorCode::DiskFull => break 'fill,
                code => panic!("{code:?}: {:?}", p.message),
            }
        }
    }
    assert!(
        sent.len() > 100,
        "{} batches before the disk filled",
        sent.len()
    );
    // Whatever the broker's early refusal left, taken by another writer.
    let filler = fill_with_a_file(&data);
    broker.kill();
    broker.restart();
    let mut conn = broker.connect().await;
    for partition in 0..2u32 {
        let mine: Vec<Sent> = sent
            .iter()
            .filter(|(p, _)| *p == partition)
            .map(|(_, s)| Sent {
                base: s.base,
                tag: s.tag.clone(),
                shape: s.shape,
            })
            .collect();
        let want = expected(&mine);
        let got = read_partition(&mut conn, "t", partition, 0).await;
        assert_eq!(got.len(), want.len(), "partition {partition}");
        assert!(got == want, "partition {partition}: records differ");
    }
    broker.kill();
    drop(filler);
    drop(disk);
}
