//! Idempotent producers against the real broker: a request sent twice on
//! the wire is stored once; sequence gaps, stale epochs and unknown
//! producer ids get their error codes; producer ids stay unique across a
//! SIGKILL; the dedup window survives a clean restart (snapshot) and a
//! SIGKILL (rebuilt from the log); `sluice produce` is idempotent by default.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::PathBuf;
use std::process::{Command, Stdio};

use bytes::{Bytes, BytesMut};
use sluice_client::Connection;
use sluice_protocol::batch::{BatchBuilder, NewRecord, RecordBatch};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, create_topic, read_partition};

/// A batch of `n` records of producer `pid`/`epoch` from sequence `seq`.
fn batch(pid: i64, epoch: i16, seq: i32, n: usize) -> BytesMut {
    let mut b = BatchBuilder::new().producer(pid, epoch, seq);
    for i in 0..n {
        let v = format!("p{pid}-e{epoch}-s{}", seq as usize + i);
        b.push(&NewRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        });
    }
    b.finish()
}

/// Produces one batch to `t`/0; returns the error code and base offset.
async fn send(conn: &mut Connection, records: &[u8]) -> (ErrorCode, u64) {
    let resp = conn
        .produce(Acks::All, 5000, &[("t", 0, records)])
        .await
        .unwrap()
        .unwrap();
    let p = &resp.partitions[0];
    (p.error_code, p.base_offset)
}

async fn setup(broker: &TestBroker) -> Connection {
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "t", 1, TopicConfig::default()).await;
    conn
}

#[tokio::test]
async fn the_same_request_sent_twice_gets_the_same_offsets_and_one_copy() {
    let broker = TestBroker::start();
    let mut conn = setup(&broker).await;
    let id = conn.init_producer_id().await.unwrap();
    assert!(id.producer_id >= 0);
    assert_eq!(id.producer_epoch, 0);
    let first = batch(id.producer_id, 0, 0, 3);
    assert_eq!(send(&mut conn, &first).await, (ErrorCode::None, 0));
    assert_eq!(
        send(&mut conn, &batch(id.producer_id, 0, 3, 2)).await,
        (ErrorCode::None, 3)
    );
    // A retry of the first batch, on another connection.
    let mut other = broker.connect().await;
    assert_eq!(send(&mut other, &first).await, (ErrorCode::None, 0));
    let stored = read_partition(&mut conn, "t", 0, 0).await;
    assert_eq!(stored.len(), 5, "stored once");
    // Without a producer id the same bytes are stored again.
    let plain = sluice_tests::batch_of(&["a"]);
    assert_eq!(send(&mut conn, &plain).await, (ErrorCode::None, 5));
    assert_eq!(send(&mut conn, &plain).await, (ErrorCode::None, 6));
}

#[tokio::test]
async fn gaps_and_stale_epochs_get_their_codes_and_unknown_producer_ids_start_anywhere() {
    let broker = TestBroker::start();
    let mut conn = setup(&broker).await;
    let pid = conn.init_producer_id().await.unwrap().producer_id;
    let other = conn.init_producer_id().await.unwrap().producer_id;
    assert_eq!(
        send(&mut conn, &batch(pid, 1, 0, 2)).await.0,
        ErrorCode::None
    );
    assert_eq!(
        send(&mut conn, &batch(pid, 1, 3, 1)).await.0,
        ErrorCode::OutOfOrderSequence
    );
    assert_eq!(
        send(&mut conn, &batch(pid, 0, 2, 1)).await.0,
        ErrorCode::ProducerFenced
    );
    assert_eq!(u16::from(ErrorCode::OutOfOrderSequence), 30);
    assert_eq!(u16::from(ErrorCode::ProducerFenced), 31);
    assert_eq!(u16::from(ErrorCode::UnknownProducerId), 32);
    assert_eq!(
        read_partition(&mut conn, "t", 0, 0).await.len(),
        2,
        "refusals store nothing"
    );
    // A producer id the partition holds nothing for (its batches gone with
    // retention, or forgotten when idle) starts at any sequence, as Kafka
    // 2.5+ accepts, and is checked from there; a retry is stored once.
    let resumed = batch(other, 0, 40, 2);
    assert_eq!(send(&mut conn, &resumed).await, (ErrorCode::None, 2));
    assert_eq!(send(&mut conn, &resumed).await, (ErrorCode::None, 2));
    assert_eq!(
        send(&mut conn, &batch(other, 0, 43, 1)).await.0,
        ErrorCode::OutOfOrderSequence
    );
    assert_eq!(read_partition(&mut conn, "t", 0, 0).await.len(), 4);
}

#[tokio::test]
async fn producer_ids_stay_unique_across_sigkill() {
    let mut broker = TestBroker::start();
    let mut conn = broker.connect().await;
    let a = conn.init_producer_id().await.unwrap().producer_id;
    let b = conn.init_producer_id().await.unwrap().producer_id;
    assert_ne!(a, b);
    broker.kill();
    broker.restart();
    let mut conn = broker.connect().await;
    let c = conn.init_producer_id().await.unwrap().producer_id;
    assert!(c > b, "{c} after {a}, {b}");
}

#[tokio::test]
async fn the_dedup_window_survives_a_clean_restart_and_a_sigkill() {
    let mut broker = TestBroker::start();
    let mut conn = setup(&broker).await;
    let pid = conn.init_producer_id().await.unwrap().producer_id;
    let first = batch(pid, 0, 0, 2);
    assert_eq!(send(&mut conn, &first).await, (ErrorCode::None, 0));
    broker.stop();
    broker.restart();
    let mut conn = broker.connect().await;
    assert_eq!(
        send(&mut conn, &first).await,
        (ErrorCode::None, 0),
        "after a clean restart"
    );
    let second = batch(pid, 0, 2, 2);
    assert_eq!(send(&mut conn, &second).await, (ErrorCode::None, 2));
    broker.kill();
    broker.restart();
    let mut conn = broker.connect().await;
    assert_eq!(
        send(&mut conn, &second).await,
        (ErrorCode::None, 2),
        "after SIGKILL"
    );
    assert_eq!(
        send(&mut conn, &first).await,
        (ErrorCode::None, 0),
        "after SIGKILL"
    );
    assert_eq!(read_partition(&mut conn, "t", 0, 0).await.len(), 4);
}

fn sluice_binary() -> PathBuf {
    sluice_tests::workspace_binary("sluice-client", "sluice", "SLUICE_CLI_BIN")
}

/// The producer ids of the batches stored in `t`/0.
async fn stored_producer_ids(conn: &mut Connection) -> Vec<i64> {
    let resp = conn
        .fetch(
            0,
            0,
            1 << 20,
            vec![FetchPartition {
                topic: "t".to_owned(),
                partition: 0,
                offset: 0,
                max_bytes: 1 << 20,
            }],
        )
        .await
        .unwrap();
    let mut bytes: Bytes = resp[0].records.clone();
    let mut ids = Vec::new();
    while !bytes.is_empty() {
        ids.push(
            RecordBatch::split_first(&mut bytes)
                .unwrap()
                .header()
                .producer_id,
        );
    }
    ids
}

#[tokio::test]
async fn sluice_produce_is_idempotent_unless_told_otherwise() {
    let broker = TestBroker::start();
    let mut conn = setup(&broker).await;
    let addr = broker.addr.to_string();
    for extra in [None, Some("--no-idempotence")] {
        let mut cmd = Command::new(sluice_binary());
        cmd.args(["--broker", &addr, "produce", "t", "--acks", "all"]);
        cmd.args(extra);
        let mut child = cmd
            .env_remove("SLUICE_BROKER")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"a\nb\n").unwrap();
        assert!(child.wait().unwrap().success());
    }
    let ids = stored_producer_ids(&mut conn).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids[0] >= 0, "the default run stamps a producer id: {ids:?}");
    assert_eq!(ids[1], -1, "--no-idempotence sends none: {ids:?}");
}

/// Producer ids made up by a client (never asked for with InitProducerId)
/// are taken, as Kafka takes them, but the entries they leave over all
/// partitions stay within `max_producer_states` (plus one per partition):
/// past it, each new producer takes the place of its partition's least
/// recently active one. A producer still held keeps its dedup window; the
/// count holds across a restart.
#[tokio::test]
async fn made_up_producer_ids_stay_within_max_producer_states() {
    use std::io::Write;
    let mut config = tempfile::NamedTempFile::new().unwrap();
    config.write_all(b"max_producer_states = 40\n").unwrap();
    let path = config.path().display().to_string();
    let mut broker = TestBroker::start_with_args(&["--config", &path]);
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "t", 4, TopicConfig::default()).await;
    let held = |b: &TestBroker| {
        let (_, body) = sluice_tests::http_get(b.metrics_addr.unwrap(), "/metrics");
        sluice_tests::sample(&body, "sluice_producer_states").expect("gauge")
    };
    for pid in 1_000..1_100i64 {
        let p = (pid % 4) as u32;
        let r = conn
            .produce(Acks::All, 5000, &[("t", p, &batch(pid, 0, 0, 1))])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None, "{r:?}");
    }
    let n = held(&broker);
    assert!((40.0..=44.0).contains(&n), "{n} entries held");
    // The newest producer is still held: its retry is answered, not stored again.
    let retry = batch(1_099, 0, 0, 1);
    let r = conn
        .produce(Acks::All, 5000, &[("t", 3, &retry)])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].base_offset, 24, "{r:?}");
    assert_eq!(
        read_partition(&mut conn, "t", 3, 0).await.len(),
        25,
        "stored once"
    );
    drop(conn);
    broker.stop();
    broker.restart();
    let n = held(&broker);
    assert!(
        (40.0..=44.0).contains(&n),
        "{n} entries held after a restart"
    );
}

/// A data directory that lost its `producer_ids` file does not hand out
/// again an id whose sequences a partition remembers: the next producer's
/// first batch is stored, not taken for a retry of the old producer's.
#[tokio::test]
async fn a_lost_producer_id_file_does_not_hand_out_held_ids_again() {
    let mut broker = TestBroker::start();
    let mut conn = setup(&broker).await;
    let old = conn.init_producer_id().await.unwrap().producer_id;
    assert_eq!(
        send(&mut conn, &batch(old, 0, 0, 1)).await,
        (ErrorCode::None, 0)
    );
    drop(conn);
    broker.stop();
    std::fs::remove_file(broker.data_dir.join("producer_ids")).unwrap();
    broker.restart();
    let mut conn = broker.connect().await;
    let new = conn.init_producer_id().await.unwrap().producer_id;
    assert!(new > old, "{new} after {old}");
    assert_eq!(
        send(&mut conn, &batch(new, 0, 0, 1)).await,
        (ErrorCode::None, 1)
    );
    assert_eq!(read_partition(&mut conn, "t", 0, 0).await.len(), 2);
    assert!(broker.log().contains("the producer id file is missing"));
}
