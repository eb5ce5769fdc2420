//! The brokers Kafka clients are told of in a cluster: every node while it
//! is up; a node its peers have not reached for the broker session timeout
//! (9 s, Kafka's `broker.session.timeout.ms`) is left out of Metadata, as
//! Kafka leaves out a broker whose session ended, and is listed again once
//! it is back, and its replicas are listed as offline meanwhile (a stopped
//! node too, once it has answered nothing for as long); the
//! latest offset of ListOffsets carries the leader epoch Metadata names.
//! Clients that go to every broker (librdkafka's and Java's
//! ListGroups, for one) would otherwise wait on the dead node until their
//! request timeout.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sluice_protocol::kafka::admin::{CreatableTopic, CreateTopicsRequest, CreateTopicsResponse};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::list_offsets::{
    LATEST, ListOffsetsPartition, ListOffsetsRequest, ListOffsetsResponse, ListOffsetsTopic,
};
use sluice_protocol::kafka::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use sluice_tests::cluster::TestCluster;
use sluice_tests::kafka::call;

fn connect(c: &TestCluster, id: u64) -> TcpStream {
    let s = TcpStream::connect(c.node(id).kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Metadata v12 from node `id`, with topic `t`.
fn metadata(c: &TestCluster, id: u64) -> MetadataResponse {
    let mut req = MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            topic_id: [0; 16],
            name: Some("t".into()),
        }]),
        ..MetadataRequest::default()
    };
    call(&mut connect(c, id), 12, &mut req)
}

/// The broker ids node `id`'s Kafka listener names in Metadata.
fn brokers_seen_by(c: &TestCluster, id: u64) -> Vec<i32> {
    let mut ids: Vec<i32> = metadata(c, id).brokers.iter().map(|b| b.node_id).collect();
    ids.sort_unstable();
    ids
}

/// The offline replicas of topic `t`'s partition, as node `id` sees them.
fn offline_seen_by(c: &TestCluster, id: u64) -> Vec<i32> {
    metadata(c, id).topics[0].partitions[0]
        .offline_replicas
        .clone()
}

/// Creates topic `t`, one partition on the three nodes.
fn create_t(c: &TestCluster) {
    let mut create = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: "t".into(),
            num_partitions: 1,
            replication_factor: 3,
            ..CreatableTopic::default()
        }],
        timeout_ms: 10_000,
        validate_only: false,
    };
    let r: CreateTopicsResponse = call(&mut connect(c, 1), 7, &mut create);
    assert_eq!(r.topics[0].error_code, code::NONE, "{r:?}");
}

/// Polls until node `id` names `want`, for up to `limit`; the time it took.
fn wait_for(c: &TestCluster, id: u64, want: &[i32], limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let seen = brokers_seen_by(c, id);
        if seen == want {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "node {id} still names {seen:?}, not {want:?}, after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_node_down_past_the_session_timeout_is_left_out_of_metadata_until_it_is_back() {
    let mut c = TestCluster::start_with_kafka(3);
    c.wait_for_leader(Duration::from_secs(20));
    create_t(&c);
    let cluster_id = c.status(1).unwrap()["cluster_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in 1..=3 {
        wait_for(&c, id, &[1, 2, 3], Duration::from_secs(10));
        assert_eq!(offline_seen_by(&c, id), [0i32; 0]);
        // Every node names the cluster by its id.
        assert_eq!(
            metadata(&c, id).cluster_id.as_deref(),
            Some(cluster_id.as_str())
        );
    }
    // Node 3 dies. Node 2 leads no Raft group that calls it, perhaps: it
    // still notices, as it keeps a connection to every peer.
    c.kill(3);
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        brokers_seen_by(&c, 1),
        [1, 2, 3],
        "left out before the session timeout"
    );
    for id in [1, 2] {
        wait_for(&c, id, &[1, 2], Duration::from_secs(30));
        assert_eq!(offline_seen_by(&c, id), [3]);
    }
    assert!(killed.elapsed() >= Duration::from_secs(9));
    // Topics created meanwhile keep their replicas off node 3 when the
    // others can hold them all, so that every partition gets a leader.
    for (topic, rf) in [("one-copy", 1i16), ("two-copies", 2)] {
        let mut create = CreateTopicsRequest {
            topics: vec![CreatableTopic {
                name: topic.into(),
                num_partitions: 6,
                replication_factor: rf,
                ..CreatableTopic::default()
            }],
            timeout_ms: 10_000,
            validate_only: false,
        };
        let r: CreateTopicsResponse = call(&mut connect(&c, 1), 7, &mut create);
        assert_eq!(r.topics[0].error_code, code::NONE, "{r:?}");
        let mut req = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                topic_id: [0; 16],
                name: Some(topic.into()),
            }]),
            ..MetadataRequest::default()
        };
        let m: MetadataResponse = call(&mut connect(&c, 1), 12, &mut req);
        let parts = &m.topics[0].partitions;
        assert_eq!(parts.len(), 6, "{m:?}");
        for p in parts {
            assert_eq!(p.replica_nodes.len(), rf as usize, "{p:?}");
            assert!(!p.replica_nodes.contains(&3), "{topic}: {p:?}");
            assert!(p.leader_id > 0, "{topic}: no leader: {p:?}");
        }
    }
    // A stopped (hung) node keeps its connections open, and its kernel
    // still accepts new ones: it is left out once it has answered nothing
    // for as long.
    let stopped = Pid::from_raw(c.node(2).pid() as i32);
    kill(stopped, Signal::SIGSTOP).unwrap();
    wait_for(&c, 1, &[1], Duration::from_secs(30));
    kill(stopped, Signal::SIGCONT).unwrap();
    wait_for(&c, 1, &[1, 2], Duration::from_secs(20));
    c.restart(3);
    for id in 1..=3 {
        wait_for(&c, id, &[1, 2, 3], Duration::from_secs(20));
        assert_eq!(offline_seen_by(&c, id), [0i32; 0]);
    }
    // ListOffsets' latest offset carries the leader epoch Metadata names.
    let p = metadata(&c, 1).topics[0].partitions[0].clone();
    assert!(p.leader_id > 0 && p.leader_epoch > 0, "{p:?}");
    let mut req = ListOffsetsRequest {
        replica_id: -1,
        isolation_level: 0,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: vec![ListOffsetsPartition {
                partition_index: 0,
                current_leader_epoch: -1,
                timestamp: LATEST,
            }],
        }],
    };
    let r: ListOffsetsResponse = call(&mut connect(&c, p.leader_id as u64), 4, &mut req);
    let answered = &r.topics[0].partitions[0];
    assert_eq!(
        (answered.error_code, answered.leader_epoch),
        (code::NONE, p.leader_epoch)
    );
}

/// A node that makes no calls to a hung peer still leaves it out: in a
/// cluster without topics the controller's followers call nobody (the
/// leader calls them), so a follower noticed a stopped follower only
/// through pings (rpc 7); without them it named the hung node for good.
#[test]
fn a_follower_that_calls_nobody_still_leaves_out_a_hung_peer() {
    let c = TestCluster::start_with_kafka(3);
    let leader = c.wait_for_leader(Duration::from_secs(20));
    let mut others = (1..=3u64).filter(|&id| id != leader);
    let (watcher, hung) = (others.next().unwrap(), others.next().unwrap());
    for id in 1..=3 {
        wait_for(&c, id, &[1, 2, 3], Duration::from_secs(10));
    }
    let stopped = Pid::from_raw(c.node(hung).pid() as i32);
    kill(stopped, Signal::SIGSTOP).unwrap();
    let mut rest: Vec<i32> = [leader, watcher].iter().map(|&id| id as i32).collect();
    rest.sort_unstable();
    let took = wait_for(&c, watcher, &rest, Duration::from_secs(30));
    kill(stopped, Signal::SIGCONT).unwrap();
    assert_eq!(c.leader_seen_by(watcher), Some(leader), "no election");
    wait_for(&c, watcher, &[1, 2, 3], Duration::from_secs(20));
    eprintln!("node {watcher} left out hung node {hung} after {took:?}");
}

/// A node restarted while the two others are down cannot catch up with
/// the controller's metadata: it holds the connections of the first 10 s,
/// then serves every connection at once with what it has (the metadata of
/// the last commit it knew of), and says it is not ready all along.
#[test]
fn a_node_restarted_without_a_quorum_serves_after_ten_seconds_and_then_at_once() {
    let mut c = TestCluster::start_with_kafka(3);
    c.wait_for_leader(Duration::from_secs(20));
    // A change after the last controller snapshot (none was taken), which
    // the restarted node cannot apply again without a leader.
    create_t(&c);
    c.wait_until(Duration::from_secs(20), "t on node 1", |c| {
        c.topic(1, "t").is_some()
    });
    for id in 1..=3 {
        c.kill(id);
    }
    c.restart(1);
    let restarted = Instant::now();
    // The first connection is held until 10 s after the start.
    brokers_seen_by(&c, 1);
    let first = restarted.elapsed();
    assert!(
        first >= Duration::from_secs(8) && first < Duration::from_secs(20),
        "answered after {first:?}"
    );
    // Later ones are not held again.
    let asked = Instant::now();
    brokers_seen_by(&c, 1);
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "{:?}",
        asked.elapsed()
    );
    // What it serves is its last commit (kept across the restart), not its
    // last controller snapshot: topic `t` is there, without a leader.
    let m = metadata(&c, 1);
    assert_ne!(
        m.topics[0].error_code,
        code::UNKNOWN_TOPIC_OR_PARTITION,
        "{m:?}"
    );
    assert_eq!(m.topics[0].partitions.len(), 1, "{m:?}");
    let (status, body) = sluice_tests::http_get(c.node(1).metrics_addr.unwrap(), "/health/ready");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("catching up"), "{body}");
}
