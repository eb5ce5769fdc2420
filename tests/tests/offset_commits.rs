//! Committed offsets against a real broker: metadata over the limit is
//! refused with its own error code (and nothing of it stored), bad group
//! names are refused, offsets of deleted topics are forgotten, and under
//! many commits the offsets log on disk stays bounded (snapshots) while
//! every latest value survives restarts.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::Path;

use sluice_client::Connection;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, create_topic};

fn commit(topic: &str, partition: u32, offset: u64, metadata: String) -> CommitPartition {
    CommitPartition {
        topic: topic.into(),
        partition,
        offset,
        metadata,
    }
}

/// `(topic, partition, offset, metadata)` a group committed.
async fn committed(conn: &mut Connection, group: &str) -> Vec<(String, u32, Option<u64>, String)> {
    let r = conn.offset_fetch(group, None).await.unwrap();
    assert_eq!(r.error_code, ErrorCode::None);
    let mut out: Vec<_> = r
        .partitions
        .into_iter()
        .map(|p| (p.topic, p.partition, p.offset, p.metadata))
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn metadata_over_4_kib_and_bad_group_names_are_refused_but_any_printable_name_is_taken() {
    let broker = TestBroker::start();
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "t", 2, TopicConfig::default()).await;

    let r = conn
        .offset_commit(
            "g",
            vec![
                commit("t", 0, 5, "m".repeat(4096)),
                commit("t", 1, 6, "m".repeat(4097)),
            ],
        )
        .await
        .unwrap();
    let codes: Vec<_> = r.partitions.iter().map(|p| p.error_code).collect();
    assert_eq!(
        codes,
        [ErrorCode::None, ErrorCode::OffsetMetadataTooLarge],
        "the partition whose metadata fits is stored, the other refused"
    );
    assert_eq!(
        committed(&mut conn, "g").await,
        [("t".into(), 0, Some(5), "m".repeat(4096))]
    );

    // Names Kafka clients use are taken (any string without control
    // characters, up to 1,024 bytes)...
    for group in ["a b", "ü", "svc:orders", "team/app", &"g".repeat(1024)] {
        let r = conn
            .offset_commit(group, vec![commit("t", 0, 2, String::new())])
            .await
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{group:?}");
        assert_eq!(
            committed(&mut conn, group).await,
            [("t".into(), 0, Some(2), String::new())],
            "{group:?}"
        );
    }
    // ... and these are not.
    for group in ["", "a\nb", "nul\0", "del\u{7f}", &"g".repeat(1025)] {
        let r = conn
            .offset_commit(group, vec![commit("t", 0, 1, String::new())])
            .await
            .unwrap();
        assert_eq!(
            r.partitions[0].error_code,
            ErrorCode::InvalidGroupName,
            "{group:?}"
        );
    }
}

#[tokio::test]
async fn offsets_of_a_deleted_topic_are_forgotten() {
    let mut broker = TestBroker::start();
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "gone", 1, TopicConfig::default()).await;
    create_topic(&mut conn, "kept", 1, TopicConfig::default()).await;
    let r = conn
        .offset_commit(
            "g",
            vec![
                commit("gone", 0, 3, String::new()),
                commit("kept", 0, 4, String::new()),
            ],
        )
        .await
        .unwrap();
    assert!(r.partitions.iter().all(|p| p.error_code == ErrorCode::None));
    let r = conn.delete_topics(vec!["gone".into()]).await.unwrap();
    assert_eq!(r.results[0].error_code, ErrorCode::None);
    // A topic created again under the old name starts without offsets.
    create_topic(&mut conn, "gone", 1, TopicConfig::default()).await;
    let want = [("kept".to_owned(), 0, Some(4), String::new())];
    assert_eq!(committed(&mut conn, "g").await, want);
    drop(conn);
    broker.kill();
    broker.restart();
    let mut conn = broker.connect().await;
    assert_eq!(committed(&mut conn, "g").await, want);
}

/// Bytes of segment files of the offsets log.
fn offsets_log_bytes(data_dir: &Path) -> u64 {
    std::fs::read_dir(data_dir.join("__consumer_offsets-0"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[tokio::test]
async fn many_commits_keep_the_offsets_log_bounded_and_survive_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("broker.toml");
    std::fs::write(&config, "offsets_snapshot_bytes = 8192\n").unwrap();
    let mut broker = TestBroker::start_with_args(&["--config", config.to_str().unwrap()]);
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "t", 4, TopicConfig::default()).await;
    let commits = 400u64;
    let mut largest = 0;
    for i in 0..commits {
        let group = format!("g{}", i % 3);
        let r = conn
            .offset_commit(
                &group,
                vec![commit("t", (i % 4) as u32, i, format!("meta-{i}"))],
            )
            .await
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None);
        largest = largest.max(offsets_log_bytes(&broker.data_dir));
    }
    // Threshold, plus one segment (a quarter of it, at least 4 KiB), plus
    // the commit that crossed it.
    assert!(
        largest <= 8192 + 4096 + 512,
        "offsets log reached {largest} bytes over {commits} commits"
    );
    assert!(broker.data_dir.join("__consumer_offsets.snapshot").exists());
    let mut before = Vec::new();
    for g in 0..3 {
        before.push(committed(&mut conn, &format!("g{g}")).await);
    }
    assert_eq!(before[0].len(), 4);
    drop(conn);
    // A crash, then a clean stop: both restarts read snapshot and log tail.
    broker.kill();
    broker.restart();
    let mut conn = broker.connect().await;
    for (g, want) in before.iter().enumerate() {
        assert_eq!(&committed(&mut conn, &format!("g{g}")).await, want);
    }
    drop(conn);
    broker.stop();
    broker.restart();
    let mut conn = broker.connect().await;
    for (g, want) in before.iter().enumerate() {
        assert_eq!(&committed(&mut conn, &format!("g{g}")).await, want);
    }
}

/// Connections committing the same partitions of one group at once (a
/// fresh group each round, all clients released together): after a crash
/// and restart the broker reports exactly what it reported before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_of_one_group_agree_after_restart() {
    let mut broker = TestBroker::start();
    let mut admin = broker.connect().await;
    let partitions = 8u32;
    create_topic(&mut admin, "t", partitions, TopicConfig::default()).await;
    let clients = 6u64;
    let rounds = 40u64;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(clients as usize));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let addr = broker.addr;
        let barrier = std::sync::Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::connect(addr).await.unwrap();
            for r in 0..rounds {
                let all = (0..partitions)
                    .map(|p| commit("t", p, r * 100 + c, format!("c{c}")))
                    .collect();
                barrier.wait().await;
                let resp = conn.offset_commit(&format!("g{r}"), all).await.unwrap();
                assert!(resp.partitions.iter().all(|p| p.error_code.is_ok()));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut before = Vec::new();
    for r in 0..rounds {
        let got = committed(&mut admin, &format!("g{r}")).await;
        assert_eq!(got.len(), partitions as usize);
        before.push(got);
    }
    drop(admin);
    broker.kill();
    broker.restart();
    let mut conn = broker.connect().await;
    for (r, want) in before.iter().enumerate() {
        assert_eq!(
            &committed(&mut conn, &format!("g{r}")).await,
            want,
            "group g{r}: memory and the offsets log disagreed"
        );
    }
}
