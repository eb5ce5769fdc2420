//! Expiry of committed offsets (`offsets_retention_ms`, Kafka's
//! `offsets.retention.minutes`) against a real broker: the offsets of a
//! group without members go once older than the retention, counted from
//! their commit or from when the group's last member left, and the group
//! with them (gone from ListGroups, Dead in DescribeGroups); a group whose
//! member stays keeps its offsets however old they are; the time a group
//! was left is kept across a restart.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_client::Connection;
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::join_group::{JoinGroupRequest, JoinProtocol};
use sluice_protocol::wire::leave_group::LeavingMember;
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_protocol::wire::sync_group::{SyncGroupAssignment, SyncGroupRequest};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, create_topic};

const RETENTION: Duration = Duration::from_millis(3_000);

/// A commit of `offset` to partition `partition` of topic `t`.
fn part(partition: u32, offset: u64) -> CommitPartition {
    CommitPartition {
        topic: "t".into(),
        partition,
        offset,
        metadata: String::new(),
    }
}

/// The offsets `group` has committed.
async fn committed(c: &mut Connection, group: &str) -> Vec<u64> {
    let r = c.offset_fetch(group, None).await.unwrap();
    r.partitions.iter().filter_map(|p| p.offset).collect()
}

async fn listed(c: &mut Connection) -> Vec<String> {
    let r = c.list_groups(Vec::new()).await.unwrap();
    let mut out: Vec<_> = r.groups.into_iter().map(|g| g.group).collect();
    out.sort();
    out
}

async fn state(c: &mut Connection, group: &str) -> String {
    let r = c.describe_groups(vec![group.into()]).await.unwrap();
    r.groups[0].state.clone()
}

/// Joins `group` as its only member, syncs, and returns the member id and
/// generation.
async fn join(c: &mut Connection, group: &str) -> (String, i32) {
    let mut req = JoinGroupRequest {
        group: group.into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 10_000,
        member_id: String::new(),
        group_instance_id: None,
        client_id: "retention-test".into(),
        protocol_type: "consumer".into(),
        protocols: vec![JoinProtocol {
            name: "range".into(),
            metadata: Vec::new(),
        }],
    };
    let first = c.join_group(&req).await.unwrap();
    assert_eq!(first.error_code, ErrorCode::MemberIdRequired);
    req.member_id = first.member_id;
    let joined = c.join_group(&req).await.unwrap();
    assert_eq!(joined.error_code, ErrorCode::None);
    let sync = SyncGroupRequest {
        group: group.into(),
        generation_id: joined.generation_id,
        member_id: req.member_id.clone(),
        group_instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("range".into()),
        assignments: vec![SyncGroupAssignment {
            member_id: req.member_id.clone(),
            assignment: Vec::new(),
        }],
    };
    assert_eq!(
        c.sync_group(&sync).await.unwrap().error_code,
        ErrorCode::None
    );
    (req.member_id, joined.generation_id)
}

/// A broker whose offsets expire after [`RETENTION`], looked for every
/// `check` (config file named after `name`).
fn broker(name: &str, check: Duration) -> TestBroker {
    let config = std::env::temp_dir().join(format!(
        "offset-retention-{name}-{}.toml",
        std::process::id()
    ));
    std::fs::write(
        &config,
        format!(
            "group_initial_rebalance_delay_ms = 0\noffsets_retention_ms = {}\n\
             offsets_retention_check_interval_ms = {}\n",
            RETENTION.as_millis(),
            check.as_millis()
        ),
    )
    .unwrap();
    TestBroker::start_with_args(&["--config", &config.display().to_string()])
}

/// `member` leaves `group`.
async fn leave(c: &mut Connection, group: &str, member: String) {
    let r = c
        .leave_group(
            group,
            vec![LeavingMember {
                member_id: member,
                group_instance_id: None,
            }],
        )
        .await
        .unwrap();
    assert_eq!(r.error_code, ErrorCode::None);
}

/// Polls `check` every 50 ms until it holds or `limit` passes; whether it
/// held.
async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn offsets_of_groups_nobody_uses_expire_and_the_groups_go() {
    let mut b = broker("expire", Duration::from_millis(100));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let left_at = rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "t", 1, TopicConfig::default()).await;
        // A standalone consumer's commit: no member, no stored generation.
        let r = c
            .offset_commit("standalone", vec![part(0, 5)])
            .await
            .unwrap();
        assert!(r.partitions[0].error_code.is_ok());
        // A member commits once, then only heartbeats, longer than the
        // retention.
        let mut m = b.connect().await;
        let (member, generation) = join(&mut m, "active").await;
        let r = m
            .offset_commit_in_generation("active", generation, &member, None, vec![part(0, 7)])
            .await
            .unwrap();
        assert!(r.partitions[0].error_code.is_ok());
        let committed_at = Instant::now();
        assert_eq!(listed(&mut c).await, ["active", "standalone"]);

        let gone = eventually(RETENTION * 4, async || {
            m.heartbeat("active", generation, &member, None)
                .await
                .unwrap();
            committed(&mut c, "standalone").await.is_empty()
        })
        .await;
        assert!(gone, "the standalone group's offset never expired");
        while committed_at.elapsed() < RETENTION + Duration::from_millis(500) {
            let hb = m
                .heartbeat("active", generation, &member, None)
                .await
                .unwrap();
            assert_eq!(hb.error_code, ErrorCode::None);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(listed(&mut c).await, ["active"]);
        assert_eq!(state(&mut c, "standalone").await, "Dead");
        // Older than the retention, but its member is still there.
        assert_eq!(committed(&mut c, "active").await, [7]);

        // The member leaves: the group's clock starts now.
        leave(&mut m, "active", member).await;
        let left_at = Instant::now();
        assert_eq!(state(&mut c, "active").await, "Empty");
        assert_eq!(committed(&mut c, "active").await, [7]);
        left_at
    });

    // Restarted before the retention has passed since the member left, the
    // broker still counts from then, not from its start.
    std::thread::sleep(RETENTION * 3 / 5);
    b.kill();
    b.restart();
    let restarted_at = Instant::now();
    rt.block_on(async {
        let mut c = b.connect().await;
        if left_at.elapsed() + Duration::from_millis(300) < RETENTION {
            assert_eq!(committed(&mut c, "active").await, [7]);
        }
        let gone = eventually(RETENTION * 4, async || {
            committed(&mut c, "active").await.is_empty()
        })
        .await;
        assert!(gone, "the left group's offset never expired");
        let took = restarted_at.elapsed();
        assert!(
            took + Duration::from_millis(500) < RETENTION,
            "expired {took:?} after the restart: counted from the restart, not from the leave"
        );
        assert!(left_at.elapsed() >= RETENTION);
        assert!(listed(&mut c).await.is_empty());
        assert_eq!(state(&mut c, "active").await, "Dead");
        // A group used again afresh works as any new group.
        let r = c.offset_commit("active", vec![part(0, 9)]).await.unwrap();
        assert!(r.partitions[0].error_code.is_ok());
        assert_eq!(committed(&mut c, "active").await, [9]);
    });
}

/// A group whose member left, then committed to by a standalone tool
/// (generation -1): each expiry check takes the partition nobody commits
/// any more, and never refuses or loses a commit of the one still in use.
#[test]
fn expiry_never_disturbs_commits_to_the_partitions_still_in_use() {
    let b = broker("busy", Duration::from_millis(20));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "t", 2, TopicConfig::default()).await;
        let mut m = b.connect().await;
        let (member, generation) = join(&mut m, "busy").await;
        let r = m
            .offset_commit_in_generation("busy", generation, &member, None, vec![part(0, 3)])
            .await
            .unwrap();
        assert!(r.partitions[0].error_code.is_ok());
        leave(&mut m, "busy", member).await;
        // Partition 1 is committed every 20 ms; partition 0 never again.
        let start = Instant::now();
        let mut offset = 0;
        while start.elapsed() < RETENTION * 2 {
            offset += 1;
            let r = c
                .offset_commit("busy", vec![part(1, offset)])
                .await
                .unwrap();
            assert_eq!(
                r.partitions[0].error_code,
                ErrorCode::None,
                "commit {offset} refused after {:?}",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let r = c.offset_fetch("busy", None).await.unwrap();
        let left: Vec<_> = r
            .partitions
            .iter()
            .filter_map(|p| p.offset.map(|o| (p.partition, o)))
            .collect();
        assert_eq!(left, [(1, offset)]);
        assert_eq!(listed(&mut c).await, ["busy"]);
    });
}
