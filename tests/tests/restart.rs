//! Data and committed offsets survive a clean restart and a crash.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::offset_fetch::TopicPartitionRef;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized, create_topic, read_partition};

fn commit(topic: &str, partition: u32, offset: u64) -> CommitPartition {
    CommitPartition {
        topic: topic.into(),
        partition,
        offset,
        metadata: "m".into(),
    }
}

#[tokio::test]
async fn data_and_offsets_survive_restarts() {
    let mut broker = TestBroker::start();
    let mut conn = broker.connect().await;
    create_topic(&mut conn, "keep", 2, TopicConfig::default()).await;
    for i in 0..20 {
        let b = batch_sized(&format!("k{i}"), 5, 100);
        let r = conn
            .produce(Acks::All, 5000, &[("keep", i % 2, &b)])
            .await
            .unwrap()
            .unwrap();
        assert_eq!(r.partitions[0].error_code, ErrorCode::None);
    }
    let r = conn
        .offset_commit("readers", vec![commit("keep", 0, 17), commit("keep", 1, 3)])
        .await
        .unwrap();
    assert!(r.partitions.iter().all(|p| p.error_code == ErrorCode::None));
    let r = conn
        .offset_commit("readers", vec![commit("missing", 0, 1)])
        .await
        .unwrap();
    assert_eq!(
        r.partitions[0].error_code,
        ErrorCode::UnknownTopicOrPartition
    );
    let before = read_partition(&mut conn, "keep", 0, 0).await;
    assert_eq!(before.len(), 50);
    drop(conn);

    broker.stop();
    assert!(broker.log().contains("shut down cleanly"));
    broker.restart();
    let mut conn = broker.connect().await;
    assert_eq!(read_partition(&mut conn, "keep", 0, 0).await, before);
    let got = conn
        .offset_fetch(
            "readers",
            Some(vec![TopicPartitionRef {
                topic: "keep".into(),
                partition: 0,
            }]),
        )
        .await
        .unwrap();
    assert_eq!(got.partitions[0].offset, Some(17));
    let all = conn.offset_fetch("readers", None).await.unwrap();
    assert_eq!(all.partitions.len(), 2);

    // Acknowledged with acks=all, then SIGKILL: still there after restart.
    let r = conn
        .produce(
            Acks::All,
            5000,
            &[("keep", 0, &batch_sized("after", 3, 10))],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partitions[0].base_offset, 50);
    conn.offset_commit("readers", vec![commit("keep", 0, 53)])
        .await
        .unwrap();
    drop(conn);
    broker.kill();
    broker.restart();
    let mut conn = broker.connect().await;
    let after = read_partition(&mut conn, "keep", 0, 0).await;
    assert_eq!(after.len(), 53);
    assert_eq!(&after[..50], &before[..]);
    let got = conn.offset_fetch("readers", None).await.unwrap();
    let p0 = got.partitions.iter().find(|p| p.partition == 0).unwrap();
    assert_eq!(p0.offset, Some(53));
    let meta = conn.metadata(Some(vec!["keep".into()])).await.unwrap();
    assert_eq!(meta.topics[0].partitions.len(), 2);
}

/// A broker whose stdout and stderr readers are gone (a log shipper that
/// died, `| head`) goes on: log lines and the listening lines that cannot
/// be written are dropped. Writing them panicked before: at start the
/// broker exited with status 101, later each request that logged failed
/// after its change was made (a topic created, reported as an error), and
/// a SIGTERM ended in a panic instead of a clean shutdown.
#[test]
fn a_broker_whose_output_readers_are_gone_serves_and_stops_cleanly() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let port = sluice_tests::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(sluice_tests::broker_binary())
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args([
            "--listen",
            &addr,
            "--kafka-listen",
            "none",
            "--metrics-listen",
            "none",
        ])
        // Every request logged, so that each one writes to stderr.
        .args(["--log", "debug"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("sluice-broker listening on") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the broker ended");
    }
    drop(out);
    let cli = |args: &[&str]| {
        Command::new(sluice_tests::workspace_binary(
            "sluice-client",
            "sluice",
            "SLUICE_CLI_BIN",
        ))
        .args(["--broker", &addr])
        .args(args)
        .env_remove("SLUICE_BROKER")
        .output()
        .unwrap()
    };
    for i in 0..5 {
        let name = format!("t{i}");
        let created = cli(&["topic", "create", &name]);
        assert!(
            created.status.success(),
            "{}",
            String::from_utf8_lossy(&created.stderr)
        );
    }
    let listed = cli(&["topic", "list"]);
    assert!(listed.status.success());
    let listed = String::from_utf8_lossy(&listed.stdout);
    for i in 0..5 {
        assert!(listed.contains(&format!("t{i}")), "{listed}");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    // Shut down cleanly: every partition left its clean-shutdown marker.
    for i in 0..5 {
        assert!(dir.path().join(format!("t{i}-0/.clean-shutdown")).exists());
    }
}

/// A `default_replication_factor` over the brokers there are refuses the
/// start, naming the key, and touches no data directory: it was taken, and
/// then every topic created without a factor of its own was refused.
#[test]
fn a_default_replication_factor_over_the_brokers_refuses_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sluice.toml");
    std::fs::write(&config, "default_replication_factor = 2\n").unwrap();
    let data = dir.path().join("data");
    let out = std::process::Command::new(sluice_tests::broker_binary())
        .args(["--config", config.to_str().unwrap()])
        .args(["--data-dir", data.to_str().unwrap()])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--kafka-listen",
            "none",
            "--metrics-listen",
            "none",
        ])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("default_replication_factor 2 is more than the brokers there are (1"),
        "{stderr}"
    );
    assert!(!data.exists());
}

/// A Kafka listener bound to every interface (`0.0.0.0`) without
/// `kafka_advertised` tells each client the address it reached, not
/// `0.0.0.0`, which a client would take for its own host.
#[test]
fn a_kafka_listener_on_every_interface_advertises_the_address_reached() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    use sluice_protocol::kafka::metadata::{MetadataRequest, MetadataResponse};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(sluice_tests::broker_binary())
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0", "--kafka-listen", "0.0.0.0:0"])
        .args(["--metrics-listen", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let port: u16 = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the broker ended");
        if let Some(a) = line
            .trim()
            .strip_prefix("sluice-broker kafka listening on ")
        {
            break a.rsplit(':').next().unwrap().parse().unwrap();
        }
    };
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let mut req = MetadataRequest {
        topics: Some(Vec::new()),
        ..MetadataRequest::default()
    };
    let r: MetadataResponse = sluice_tests::kafka::call(&mut s, 12, &mut req);
    let _ = child.kill();
    let _ = child.wait();
    let brokers: Vec<(String, i32)> = r.brokers.iter().map(|b| (b.host.clone(), b.port)).collect();
    assert_eq!(brokers, [("127.0.0.1".to_owned(), i32::from(port))]);
}

/// A start that fails after the data directory was opened (the listen port
/// taken) closes the logs cleanly: the next start finds every partition's
/// clean-shutdown marker and recovers nothing.
#[test]
fn a_start_refused_for_a_taken_port_leaves_the_logs_closed_cleanly() {
    let mut broker = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = broker.connect().await;
        create_topic(&mut c, "kept", 3, TopicConfig::default()).await;
    });
    broker.stop();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = std::process::Command::new(sluice_tests::broker_binary())
        .args(["--data-dir", broker.data_dir.to_str().unwrap()])
        .args(["--listen", &taken.local_addr().unwrap().to_string()])
        .args(["--kafka-listen", "none", "--metrics-listen", "none"])
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("binding"), "{stderr}");
    for p in 0..3 {
        let marker = broker.data_dir.join(format!("kept-{p}/.clean-shutdown"));
        assert!(marker.exists(), "{}: {stderr}", marker.display());
    }
    drop(taken);
}
