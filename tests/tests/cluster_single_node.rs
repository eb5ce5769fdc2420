//! Cluster mode's edges on one or two nodes: bad cluster files and flags,
//! hostile bytes on the raft port, a replication factor above the node
//! count.

use std::io::{Read, Write};
use std::process::Command;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_tests::cluster::TestCluster;
use sluice_tests::{broker_binary, create_topic, free_port};

/// Runs the broker with `args` (on a fresh data directory) and returns its
/// exit status and stderr; it must exit by itself.
fn refused(data_dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(broker_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--metrics-listen", "none", "--kafka-listen", "none"])
        .args(args)
        .output()
        .expect("running sluice-broker");
    assert!(!out.status.success(), "{args:?} started a broker");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_cluster_files_and_flags_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let file = dir.path().join("cluster.toml");
    let path = file.to_str().expect("utf-8");
    let (r1, r2) = (free_port(), free_port());
    let good = format!(
        "[[node]]\nid = 1\nlisten = \"127.0.0.1:0\"\nraft = \"127.0.0.1:{r1}\"\n\n\
         [[node]]\nid = 2\nlisten = \"127.0.0.1:0\"\nraft = \"127.0.0.1:{r2}\"\n"
    );
    let cases: Vec<(String, Vec<&str>, &str)> = vec![
        (good.clone(), vec!["--node-id", "1"], "--cluster"),
        (good.clone(), vec!["--cluster", path], "--node-id"),
        (
            good.clone(),
            vec!["--node-id", "3", "--cluster", path],
            "--node-id 3 is not in the cluster file",
        ),
        (
            good.replace("id = 2", "id = 1"),
            vec!["--node-id", "1", "--cluster", path],
            "node id 1 is listed twice",
        ),
        (
            good.replace(&r2.to_string(), &r1.to_string()),
            vec!["--node-id", "1", "--cluster", path],
            "is used twice",
        ),
        (
            good.replace(&format!("raft = \"127.0.0.1:{r2}\"\n"), ""),
            vec!["--node-id", "1", "--cluster", path],
            "missing field `raft`",
        ),
        (
            "[[node]]\nid = 1\nlisten = \"x\"".into(),
            vec!["--node-id", "1", "--cluster", path],
            "cluster file",
        ),
        (
            format!("cluster_id = \"a/b\"\n{good}"),
            vec!["--node-id", "1", "--cluster", path],
            "cluster_id \"a/b\" must be 1 to 64 letters",
        ),
    ];
    for (text, args, expected) in cases {
        std::fs::write(&file, &text).expect("cluster file");
        let err = refused(&data, &args);
        assert!(
            err.contains(expected),
            "{args:?}: expected {expected:?} in {err}"
        );
    }
    let missing = dir.path().join("missing.toml");
    let err = refused(
        &data,
        &[
            "--node-id",
            "1",
            "--cluster",
            missing.to_str().expect("utf-8"),
        ],
    );
    assert!(err.contains("cannot read cluster file"), "{err}");

    // A data directory keeps the node id it was first started with.
    std::fs::write(&file, &good).expect("cluster file");
    std::fs::create_dir_all(data.join("cluster")).expect("dir");
    std::fs::write(data.join("cluster").join("node_id"), "2\n").expect("node id");
    let err = refused(&data, &["--node-id", "1", "--cluster", path]);
    assert!(err.contains("belongs to node 2, not --node-id 1"), "{err}");

    // And the cluster id: a cluster file naming another is refused.
    std::fs::write(data.join("cluster").join("node_id"), "1\n").expect("node id");
    std::fs::write(data.join("cluster").join("cluster_id"), "orders-eu\n").expect("cluster id");
    std::fs::write(&file, format!("cluster_id = \"orders-us\"\n{good}")).expect("cluster file");
    let err = refused(&data, &["--node-id", "1", "--cluster", path]);
    assert!(
        err.contains(
            "belongs to cluster \"orders-eu\", but the cluster file says cluster_id = \"orders-us\""
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_on_the_raft_port_close_the_connection() {
    let c = TestCluster::start(1);
    let raft = c.node(1).raft_addr.expect("the raft startup line");
    let hostile: Vec<Vec<u8>> = vec![
        vec![0xff; 64],                                      // a length above the limit
        vec![0, 0, 0, 4, 1, 0, 1, 0],                        // a length below the header
        [&[0, 0, 0, 40, 9][..], &[0; 40]].concat(),          // an unknown version
        [&[0, 0, 0, 32, 1, 1, 1, 0][..], &[0; 28]].concat(), // a response, not a request
        [&[0, 0, 0, 33, 1, 0, 1, 0][..], &[0; 28]].concat(), // lengths that disagree
    ];
    for bytes in hostile {
        let mut s = std::net::TcpStream::connect(raft).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        s.write_all(&bytes).expect("write");
        let mut answer = Vec::new();
        // Closed (EOF or reset), not left hanging until the read timeout.
        match s.read_to_end(&mut answer) {
            Ok(_) => assert!(answer.is_empty(), "{bytes:?}: {answer:?}"),
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{bytes:?}"),
        }
    }
    // A well-framed call on a connection that did not begin with a hello
    // (a Vote with an empty body, for the controller or a group it does not
    // hold): an error frame at once, not a hang.
    for group in [[0u8; 12], [0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0]] {
        let tag = u8::from(group != [0; 12]);
        let mut s = std::net::TcpStream::connect(raft).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut frame = vec![0, 0, 0, 32, 1, 0, 2, tag];
        frame.extend_from_slice(&group);
        frame.extend_from_slice(&[0; 16]);
        s.write_all(&frame).expect("write");
        let mut head = [0u8; 36];
        s.read_exact(&mut head).expect("an answer");
        assert_eq!(head[5], 2, "an error frame");
    }
    // The broker is unharmed.
    let mut conn = c.node(1).connect().await;
    create_topic(&mut conn, "still-here", 1, Default::default()).await;
    assert!(c.topic(1, "still-here").is_some());
}

/// Also when CreateTopics only validates (Kafka's `validate_only`), which
/// answers what the creation would and creates nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replication_factor_above_the_node_count_is_refused() {
    use sluice_protocol::kafka::admin::{
        ConfigEntry, CreatableTopic, CreateTopicsRequest, CreateTopicsResponse,
    };
    use sluice_protocol::kafka::error_code::code;

    // (A default factor over the nodes refuses the start: see
    // `restart::a_default_replication_factor_over_the_brokers_refuses_the_start`.)
    let c = TestCluster::start_with_kafka(2);
    let validated_at = |node: u64, name: &str, factor: i16, insync: &str| {
        let mut s = std::net::TcpStream::connect(c.node(node).kafka_addr.unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: name.into(),
                num_partitions: 2,
                replication_factor: factor,
                configs: vec![ConfigEntry {
                    name: "min.insync.replicas".into(),
                    value: Some(insync.into()),
                }],
                ..Default::default()
            }],
            timeout_ms: 5000,
            validate_only: true,
        };
        let r: CreateTopicsResponse = sluice_tests::kafka::call(&mut s, 5, &mut req);
        (r.topics[0].error_code, r.topics[0].replication_factor)
    };
    let validated = |factor: i16, insync: &str| validated_at(1, "dry", factor, insync);
    assert_eq!(validated(3, "1").0, code::INVALID_REPLICATION_FACTOR);
    assert_eq!(validated(2, "2"), (code::NONE, 2));
    // Two replicas: an acks=all write is on both, three is more than there are.
    assert_eq!(validated(2, "3").0, code::INVALID_CONFIG);
    assert!(c.topic(1, "dry").is_none() && c.topic(2, "dry").is_none());

    let mut conn = c.node(1).connect().await;
    let r = conn
        .create_topics(vec![NewTopic {
            name: "too-wide".into(),
            partitions: 1,
            config: Default::default(),
            replication_factor: Some(3),
        }])
        .await
        .expect("create_topics");
    assert_eq!(r.results[0].error_code, ErrorCode::InvalidReplicationFactor);
    let message = r.results[0].message.clone().unwrap_or_default();
    assert!(message.contains("replication factor 3"), "{message}");
    assert!(c.topic(1, "too-wide").is_none());

    // A topic of one replica exists on one node only; validating its
    // creation again is TOPIC_ALREADY_EXISTS on both nodes, as the
    // creation itself would be.
    let r = conn
        .create_topics(vec![NewTopic {
            name: "one".into(),
            partitions: 1,
            config: Default::default(),
            replication_factor: Some(1),
        }])
        .await
        .expect("create_topics");
    assert_eq!(r.results[0].error_code, ErrorCode::None, "{r:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for node in [1, 2] {
        loop {
            let (code, _) = validated_at(node, "one", 1, "1");
            if code == code::TOPIC_ALREADY_EXISTS {
                break;
            }
            // A node applies the controller's metadata a moment later.
            assert!(std::time::Instant::now() < deadline, "node {node}: {code}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
