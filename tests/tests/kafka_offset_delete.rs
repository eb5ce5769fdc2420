//! OffsetDelete through the Kafka listener: a group's committed offsets of
//! topics its members do not read are deleted (durably: still gone after a
//! restart), those of a topic a member subscribes to are kept with
//! `GROUP_SUBSCRIBED_TO_TOPIC` until the group is empty; unknown topics
//! and partitions are answered per partition, an unknown group and a
//! non-empty group of another protocol type at the top. An OffsetCommit of
//! a negative offset leaves none. On a 3-node cluster the deletion outlives
//! the coordinator.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::groups::{
    JoinGroupRequest, JoinGroupResponse, JoinProtocol, LeaveGroupRequest, LeaveGroupResponse,
    LeavingMember, SyncAssignment, SyncGroupRequest, SyncGroupResponse,
};
use sluice_protocol::kafka::offset_delete::{
    OffsetDeleteRequest, OffsetDeleteResponse, OffsetDeleteTopic,
};
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::call;
use sluice_tests::{TestBroker, create_topic};

/// Kafka's ConsumerProtocolSubscription v0 naming `topics`.
fn subscription(topics: &[&str]) -> Vec<u8> {
    let mut m = vec![0, 0];
    m.extend((topics.len() as i32).to_be_bytes());
    for t in topics {
        m.extend((t.len() as i16).to_be_bytes());
        m.extend(t.as_bytes());
    }
    m.extend((-1i32).to_be_bytes());
    m
}

/// Joins `group` as its only member with `protocol_type` and `metadata`,
/// and syncs; returns the member id.
fn join(s: &mut TcpStream, group: &str, protocol_type: &str, metadata: Vec<u8>) -> String {
    let mut join = JoinGroupRequest {
        protocol_type: protocol_type.into(),
        protocols: vec![JoinProtocol {
            name: "range".into(),
            metadata,
        }],
        ..sluice_tests::kafka::classic_join(group)
    };
    let first: JoinGroupResponse = call(s, 7, &mut join.clone());
    assert_eq!(first.error_code, code::MEMBER_ID_REQUIRED);
    join.member_id = first.member_id;
    let joined: JoinGroupResponse = call(s, 7, &mut join);
    assert_eq!(joined.error_code, code::NONE, "{joined:?}");
    let mut sync = SyncGroupRequest {
        group_id: group.into(),
        generation_id: joined.generation_id,
        member_id: joined.member_id.clone(),
        group_instance_id: None,
        protocol_type: Some(protocol_type.into()),
        protocol_name: Some("range".into()),
        assignments: vec![SyncAssignment {
            member_id: joined.member_id.clone(),
            assignment: Vec::new(),
        }],
    };
    let synced: SyncGroupResponse = call(s, 5, &mut sync);
    assert_eq!(synced.error_code, code::NONE);
    joined.member_id
}

/// OffsetDelete of `topics` for `group`: the top-level code and each
/// (topic, partition, code).
fn delete(
    s: &mut TcpStream,
    group: &str,
    topics: &[(&str, &[i32])],
) -> (i16, Vec<(String, i32, i16)>) {
    let mut req = OffsetDeleteRequest {
        group_id: group.into(),
        topics: topics
            .iter()
            .map(|(name, partitions)| OffsetDeleteTopic {
                name: (*name).into(),
                partitions: partitions.to_vec(),
            })
            .collect(),
    };
    let r: OffsetDeleteResponse = call(s, 0, &mut req);
    let parts = r
        .topics
        .into_iter()
        .flat_map(|t| {
            t.partitions
                .into_iter()
                .map(move |(p, e)| (t.name.clone(), p, e))
        })
        .collect();
    (r.error_code, parts)
}

/// The committed offsets of `group`, as (topic, partition, offset).
async fn committed(b: &TestBroker, group: &str) -> Vec<(String, u32, u64)> {
    let mut c = b.connect().await;
    let r = c.offset_fetch(group, None).await.unwrap();
    let mut out: Vec<_> = r
        .partitions
        .into_iter()
        .filter_map(|p| p.offset.map(|o| (p.topic, p.partition, o)))
        .collect();
    out.sort();
    out
}

#[test]
fn offsets_are_deleted_unless_the_group_reads_their_topic() {
    let config = std::env::temp_dir().join(format!("offset-delete-{}.toml", std::process::id()));
    std::fs::write(&config, "group_initial_rebalance_delay_ms = 0\n").unwrap();
    let mut b = TestBroker::start_with_args(&["--config", &config.display().to_string()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "read", 1, TopicConfig::default()).await;
        create_topic(&mut c, "other", 2, TopicConfig::default()).await;
        // Simple commits, before the group has members.
        let commit = |topic: &str, partition, offset| CommitPartition {
            topic: topic.into(),
            partition,
            offset,
            metadata: String::new(),
        };
        let r = c
            .offset_commit(
                "g",
                vec![
                    commit("read", 0, 5),
                    commit("other", 0, 7),
                    commit("other", 1, 9),
                ],
            )
            .await
            .unwrap();
        assert!(r.partitions.iter().all(|p| p.error_code.is_ok()), "{r:?}");
    });
    let s = &mut TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let member = join(s, "g", "consumer", subscription(&["read"]));
    let (top, parts) = delete(
        s,
        "g",
        &[("read", &[0]), ("other", &[0, 1, 5, -1]), ("missing", &[0])],
    );
    assert_eq!(top, code::NONE);
    let expect = |t: &str, p, e| (t.to_owned(), p, e);
    assert_eq!(
        parts,
        [
            expect("read", 0, code::GROUP_SUBSCRIBED_TO_TOPIC),
            expect("other", 0, code::NONE),
            expect("other", 1, code::NONE),
            expect("other", 5, code::UNKNOWN_TOPIC_OR_PARTITION),
            expect("other", -1, code::UNKNOWN_TOPIC_OR_PARTITION),
            expect("missing", 0, code::UNKNOWN_TOPIC_OR_PARTITION),
        ]
    );
    assert_eq!(rt.block_on(committed(&b, "g")), [("read".to_owned(), 0, 5)]);
    // An unknown group; a non-empty group whose subscriptions are opaque.
    assert_eq!(
        delete(s, "nope", &[("other", &[0])]).0,
        code::GROUP_ID_NOT_FOUND
    );
    let s2 = &mut TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s2.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    join(s2, "connectish", "connect", vec![1, 2, 3]);
    assert_eq!(
        delete(s2, "connectish", &[("other", &[0])]).0,
        code::NON_EMPTY_GROUP
    );
    // Once the member left, the last offset goes too.
    let mut leave = LeaveGroupRequest {
        group_id: "g".into(),
        members: vec![LeavingMember {
            member_id: member,
            group_instance_id: None,
        }],
    };
    let left: LeaveGroupResponse = call(s, 3, &mut leave);
    assert_eq!(left.error_code, code::NONE);
    let (top, parts) = delete(s, "g", &[("read", &[0])]);
    assert_eq!(
        (top, parts),
        (code::NONE, vec![expect("read", 0, code::NONE)])
    );
    assert!(rt.block_on(committed(&b, "g")).is_empty());
    // A negative committed offset (how KafkaJS resets a group whose
    // offset fell out of range) leaves none: read back as -1.
    let commit = |s: &mut TcpStream, offsets: &[i64]| {
        use sluice_protocol::kafka::offsets::{
            OffsetCommitPartition, OffsetCommitRequest, OffsetCommitResponse, OffsetCommitTopic,
        };
        let mut req = OffsetCommitRequest {
            group_id: "h".into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            retention_time_ms: -1,
            topics: vec![OffsetCommitTopic {
                name: "other".into(),
                partitions: offsets
                    .iter()
                    .map(|&committed_offset| OffsetCommitPartition {
                        partition_index: 1,
                        committed_offset,
                        commit_timestamp_ms: -1,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                    })
                    .collect(),
            }],
        };
        let r: OffsetCommitResponse = call(s, 8, &mut req);
        r.topics[0].partitions[0].error_code
    };
    assert_eq!(commit(s, &[3]), code::NONE);
    assert_eq!(
        rt.block_on(committed(&b, "h")),
        [("other".to_owned(), 1, 3)]
    );
    assert_eq!(commit(s, &[-2]), code::NONE);
    assert!(rt.block_on(committed(&b, "h")).is_empty());
    // Named twice in one request, the last entry wins, as in Kafka.
    assert_eq!(commit(s, &[-1, 8]), code::NONE);
    assert_eq!(
        rt.block_on(committed(&b, "h")),
        [("other".to_owned(), 1, 8)]
    );
    assert_eq!(commit(s, &[9, -1]), code::NONE);
    assert!(rt.block_on(committed(&b, "h")).is_empty());
    b.stop();
    b.restart();
    assert!(rt.block_on(committed(&b, "g")).is_empty());
    assert!(rt.block_on(committed(&b, "h")).is_empty());
}

/// On a 3-node cluster: OffsetDelete at a node that does not coordinate
/// the group is `NOT_COORDINATOR`; at the coordinator the offsets go on
/// every replica of the group state: the next coordinator, after the
/// first is killed, has none of them, and keeps the one not deleted.
#[test]
fn a_cluster_deletes_offsets_past_a_coordinator_failover() {
    use sluice_tests::cluster::TestCluster;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut c = TestCluster::start_with_kafka_config(3, "group_initial_rebalance_delay_ms = 0\n");
    let all = [1, 2, 3];
    let coordinator = rt.block_on(async {
        c.create_replicated("other", 3, 3, TopicConfig::default())
            .await;
        let at = c.agreed_coordinator(&all, "g").await;
        let commits = (0..3)
            .map(|p| CommitPartition {
                topic: "other".into(),
                partition: p,
                offset: 10 + u64::from(p),
                metadata: String::new(),
            })
            .collect();
        let r = c
            .node(at)
            .connect()
            .await
            .offset_commit("g", commits)
            .await
            .unwrap();
        assert!(r.partitions.iter().all(|p| p.error_code.is_ok()), "{r:?}");
        at
    });
    let kafka = |n: u64| {
        let s = TcpStream::connect(c.node(n).kafka_addr.unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s
    };
    let other = all.into_iter().find(|&n| n != coordinator).unwrap();
    assert_eq!(
        delete(&mut kafka(other), "g", &[("other", &[0])]).0,
        code::NOT_COORDINATOR
    );
    let (top, parts) = delete(&mut kafka(coordinator), "g", &[("other", &[0, 2])]);
    assert_eq!(top, code::NONE);
    assert!(parts.iter().all(|p| p.2 == code::NONE), "{parts:?}");
    c.kill(coordinator);
    let live: Vec<u64> = all.into_iter().filter(|&n| n != coordinator).collect();
    let want = [None, Some(11), None];
    let got = rt.block_on(c.committed_offsets(&live, "g", "other", 3, |o| o == want));
    assert_eq!(got, want);
}
