//! A follower that was down while the leader appended far more than one
//! node-to-node frame can carry catches up when it returns: the leader
//! sends it the missed entries in calls of bounded size instead of one
//! call that can never be sent. And a partition's records too large for
//! one Raft entry are refused with `MessageTooLarge`, not appended on the
//! leader and then never replicated.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::Path;
use std::time::{Duration, Instant};

use sluice_protocol::batch::{BatchBuilder, NewRecord};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::cluster::TestCluster;

const WAIT: Duration = Duration::from_secs(60);

/// Bytes in the `.log` files of partition directory `name` anywhere under
/// `dir` (0 when there is none yet).
fn log_bytes(dir: &Path, name: &str) -> u64 {
    let mut total = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if p.file_name().is_some_and(|n| n == name) {
            for f in std::fs::read_dir(&p).unwrap().flatten() {
                if f.path().extension().is_some_and(|x| x == "log") {
                    total += f.metadata().unwrap().len();
                }
            }
        } else {
            total += log_bytes(&p, name);
        }
    }
    total
}

/// A batch of `n` records of `len` bytes stamped now (older timestamps
/// would let retention delete a sealed segment on one replica only).
fn batch_sized(tag: &str, n: usize, len: usize) -> bytes::BytesMut {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut b = BatchBuilder::new();
    for i in 0..n {
        let mut v = format!("{tag}:{i}").into_bytes();
        v.resize(len.max(v.len()), b'-');
        b.push(&NewRecord {
            timestamp: now,
            key: None,
            value: Some(&v),
            headers: &[],
        });
    }
    b.finish()
}

/// (base offset, length) of the batches in the first segment of `lag-0`.
fn batches(dir: &Path) -> Vec<(i64, usize)> {
    fn find(dir: &Path) -> Option<std::path::PathBuf> {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "lag-0") {
                    return Some(p.join(format!("{:020}.log", 0)));
                }
                if let Some(f) = find(&p) {
                    return Some(f);
                }
            }
        }
        None
    }
    let Some(path) = find(dir) else {
        return Vec::new();
    };

    let mut bytes = bytes::Bytes::from(std::fs::read(path).unwrap_or_default());
    let mut out = Vec::new();
    while let Ok(b) = sluice_protocol::batch::RecordBatch::split_first(&mut bytes) {
        let h = b.header();
        if out.len() < 3 || bytes.len() < 3 << 20 {
            out.push((h.base_offset, h.total_len()));
        }
    }
    out
}

/// Partition 0's leader of `topic` as node `id` names it.
async fn leader_seen_by(c: &TestCluster, id: u64, topic: &str) -> Option<u64> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![topic.into()])).await.ok()?;
    m.topics.first()?.partitions.first()?.leader
}

/// Produces `records` with acks=all through whichever node leads, until
/// one request is acknowledged; returns the leader and the answer's code.
async fn produce_once(
    c: &TestCluster,
    live: &[u64],
    topic: &str,
    records: &[u8],
) -> (u64, ErrorCode) {
    let deadline = Instant::now() + WAIT;
    loop {
        assert!(Instant::now() < deadline, "no answer from a leader");
        for &id in live {
            let Some(l) = leader_seen_by(c, id, topic).await else {
                continue;
            };
            if !live.contains(&l) {
                continue;
            }
            let mut conn = c.node(l).connect().await;
            let Ok(Some(r)) = conn
                .produce(Acks::All, 10_000, &[(topic, 0, records)])
                .await
            else {
                continue;
            };
            let code = r.partitions[0].error_code;
            if code == ErrorCode::None || code == ErrorCode::MessageTooLarge {
                return (l, code);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_back_from_far_behind_catches_up_in_bounded_calls() {
    let mut c = TestCluster::start_with(
        3,
        "max_frame_bytes = 134217728\nmax_request_bytes_in_flight = 536870912\n",
    );
    let r = c
        .node(1)
        .connect()
        .await
        .create_topics(vec![NewTopic {
            name: "lag".into(),
            partitions: 1,
            config: TopicConfig::default(),
            replication_factor: Some(3),
        }])
        .await
        .unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");

    let small = batch_sized("s", 1, 10);
    let (leader, code) = produce_once(&c, &[1, 2, 3], "lag", &small).await;
    assert_eq!(code, ErrorCode::None);
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    c.kill(follower);
    let live: Vec<u64> = (1..=3).filter(|&n| n != follower).collect();

    // 80 MiB in 1 MiB requests while the follower is down: more than one
    // node-to-node frame (64 MiB) can carry.
    let mib = batch_sized("m", 1000, 1030);
    for _ in 0..80 {
        let (_, code) = produce_once(&c, &live, "lag", &mib).await;
        assert_eq!(code, ErrorCode::None);
    }

    // One partition's records beyond what one Raft entry can carry.
    let huge = batch_sized("h", 70, 1 << 20);
    let (_, code) = produce_once(&c, &live, "lag", &huge).await;
    assert_eq!(code, ErrorCode::MessageTooLarge, "a 70 MiB entry was taken");

    c.restart(follower);
    let deadline = Instant::now() + WAIT;
    loop {
        let sizes: Vec<u64> = (1..=3)
            .map(|n| log_bytes(&c.node(n).data_dir, "lag-0"))
            .collect();
        let lead = sizes[..].iter().copied().max().unwrap();
        if lead > 80_000_000 && sizes.iter().all(|&s| s == lead) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the returning follower {follower} did not catch up: log bytes per node {sizes:?}, batches {:?}",
            (1..=3)
                .map(|n| batches(&c.node(n).data_dir))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
