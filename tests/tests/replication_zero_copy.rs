//! Replication traffic on the zero-copy path, checked on real broker
//! processes: while a 3-node cluster replicates a large acks=all volume,
//! the leader's writes to its followers' raft ports carry the record bytes
//! with `sendfile(2)` from its segment files; only frame headers and
//! postcard bodies go out with `write`/`send`. Every replica ends with the
//! same batches (read with an independent reader).
//!
//! Needs `strace` (installed by `.ci/run`). Without it the test is skipped
//! with a message, unless `SLUICE_REQUIRE_STRACE=1`, which makes it fail.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_protocol::batch::RecordBatch;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::produce::Acks;
use sluice_tests::batch_sized;
use sluice_tests::cluster::TestCluster;
use sluice_tests::strace::strace_available;

const WAIT: Duration = Duration::from_secs(60);
const BATCHES: usize = 24;
const RECORDS: usize = 512;
const VALUE: usize = 1000;

/// The raft ports of the cluster file, by node id (1-based order).
fn raft_ports(file: &Path) -> Vec<u16> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("raft = \"127.0.0.1:"))
        .map(|p| p.trim_end_matches('"').parse().unwrap())
        .collect()
}

/// Bytes the traced process sent to `ports`: (by sendfile from a segment
/// file, by write-family calls).
#[derive(Debug, Default)]
struct SocketBytes {
    sendfile: u64,
    written: u64,
}

fn parse_trace(text: &str, ports: &[u16]) -> SocketBytes {
    let mut out = SocketBytes::default();
    // A call another thread interrupted: `PID call(args <unfinished ...>`,
    // then `PID <... call resumed>...) = N`.
    let mut unfinished: std::collections::HashMap<String, String> = Default::default();
    for line in text.lines() {
        let Some((pid, body)) = line.split_once(' ') else {
            continue;
        };
        let body = body.trim_start();
        let whole = if body.contains("<unfinished ...>") {
            unfinished.insert(pid.to_owned(), body.to_owned());
            continue;
        } else if body.starts_with("<... ") {
            match unfinished.remove(pid) {
                Some(start) => format!("{start} {body}"),
                None => continue,
            }
        } else {
            body.to_owned()
        };
        // The first argument: `fd<TCP:[local->remote]>` with `-yy`.
        let Some((call, rest)) = whole.split_once('(') else {
            continue;
        };
        let first = rest.split(">,").next().unwrap_or(rest);
        let to_peer = ports
            .iter()
            .any(|p| first.contains(&format!("->127.0.0.1:{p}]")));
        if !to_peer {
            continue;
        }
        let ret = whole
            .rsplit_once(" = ")
            .and_then(|(_, r)| r.split_whitespace().next()?.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0) as u64;
        match call {
            "sendfile" | "sendfile64" if whole.contains(".log>") => out.sendfile += ret,
            "write" | "writev" | "sendto" | "sendmsg" => out.written += ret,
            _ => {}
        }
    }
    out
}

/// Every whole batch of a replica's segment files, in file order.
fn segment_batches(data_dir: &Path, dir_name: &str) -> Vec<Bytes> {
    fn find(dir: &Path, name: &str) -> Option<PathBuf> {
        for e in std::fs::read_dir(dir).ok()? {
            let p = e.ok()?.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == name) {
                    return Some(p);
                }
                if let Some(f) = find(&p, name) {
                    return Some(f);
                }
            }
        }
        None
    }
    let Some(dir) = find(data_dir, dir_name) else {
        return Vec::new();
    };
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    let mut out = Vec::new();
    for log in logs {
        let mut bytes = Bytes::from(std::fs::read(&log).unwrap());
        while let Ok(b) = RecordBatch::split_first(&mut bytes) {
            out.push(b.as_bytes().clone());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_sends_follower_records_with_sendfile() {
    if !strace_available() {
        return;
    }
    let c = TestCluster::start(3);
    c.create_replicated("zc", 1, 3, Default::default()).await;
    let leader = c.wait_partition_leader(&[1, 2, 3], "zc", WAIT).await;
    let ports = raft_ports(&c.file);
    let follower_ports: Vec<u16> = (1..=3u64)
        .filter(|&i| i != leader)
        .map(|i| ports[i as usize - 1])
        .collect();

    let out = tempfile::NamedTempFile::new().unwrap();
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-yy",
            "-e",
            "trace=write,writev,sendto,sendmsg,sendfile",
            "-o",
        ])
        .arg(out.path())
        .args(["-p", &c.node(leader).pid().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = strace.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("attached") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(20)).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut conn = c.node(leader).connect().await;
    let mut produced = 0u64;
    let mut refused = 0;
    let mut i = 0;
    while i < BATCHES {
        let b = batch_sized(&format!("z{i}"), RECORDS, VALUE);
        let r = conn
            .produce(Acks::All, 30_000, &[("zc", 0, &b)])
            .await
            .unwrap()
            .unwrap();
        let code = r.partitions[0].error_code;
        if code == ErrorCode::None {
            produced += b.len() as u64;
            i += 1;
        } else {
            // A group that has just formed may still move its leader.
            refused += 1;
            assert!(refused < 50, "produce refused: {r:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Both followers hold every batch before the trace ends.
    let deadline = Instant::now() + WAIT;
    loop {
        let all: Vec<Vec<Bytes>> = (1..=3)
            .map(|id| segment_batches(&c.node(id).data_dir, "zc-0"))
            .collect();
        if all.iter().all(|a| a.len() == BATCHES && *a == all[0]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replicas differ: {:?} batches",
            all.iter().map(Vec::len).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(strace.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    strace.wait().unwrap();
    let text = std::fs::read_to_string(out.path()).unwrap();
    let sent = parse_trace(&text, &follower_ports);
    eprintln!(
        "produced {produced} B; to followers: {} B by sendfile, {} B by write/send",
        sent.sendfile, sent.written
    );
    // Two followers: each record byte goes out twice, by sendfile.
    assert!(
        sent.sendfile >= 2 * produced,
        "only {} of {} record bytes went to the followers by sendfile ({} B written)",
        sent.sendfile,
        2 * produced,
        sent.written
    );
    // What is written is frame headers and bodies: far below the records.
    assert!(
        sent.written < produced / 10,
        "{} B written to followers for {produced} B of records",
        sent.written
    );
}
