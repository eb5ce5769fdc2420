//! The group-state topic of a 3-node cluster is compacted by checkpoint
//! (`docs/replication.md`, "Growth"): with a small `offsets_snapshot_bytes`,
//! many commits of one group write checkpoints, every replica deletes the
//! group-state segments below the latest one, and the group's latest
//! offsets survive its coordinator:
//!
//! - after a SIGKILL of the coordinator, at the new one;
//! - at a replica whose group-state directory was removed while it was
//!   down and whose log the others compacted meanwhile: it installs the
//!   leader's snapshot, capped below the checkpoint, so its log restarts at
//!   or below the checkpoint and it still holds every group's offsets when
//!   it becomes the coordinator (without the cap it restarts after the
//!   checkpoint and has lost them).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::path::PathBuf;
use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::offset_commit::CommitPartition;
use sluice_tests::cluster::{TestCluster, partition_dir, segment_batches};

const TOPIC: &str = "compacted";
const GROUP: &str = "compaction-group";
const P: u32 = 10;
/// The only partition of the group-state topic (`offsets_topic_partitions
/// = 1`).
const GS: &str = "__sluice_group_state-0";
/// Checkpoint threshold 16 KiB; group-state segments of 64 KiB (the
/// smallest a topic may have).
const CONFIG: &str = "offsets_snapshot_bytes = 16384\noffsets_topic_partitions = 1\n";

/// Commits `(partition, offset)` of `TOPIC` for `GROUP` at the
/// coordinator `ids` agree on, with `pad` bytes of metadata each, retrying
/// until every partition is acknowledged (the coordinator may move).
async fn commit(c: &TestCluster, ids: &[u64], entries: &[(u32, u64)], pad: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let at = c.agreed_coordinator(ids, GROUP).await;
        let mut conn = c.node(at).connect().await;
        let partitions = entries
            .iter()
            .map(|&(partition, offset)| CommitPartition {
                topic: TOPIC.into(),
                partition,
                offset,
                metadata: "m".repeat(pad),
            })
            .collect();
        match conn.offset_commit(GROUP, partitions).await {
            Ok(r) if r.partitions.iter().all(|p| p.error_code == ErrorCode::None) => return,
            Ok(r) => eprintln!("commit at node {at}: {:?}", r.partitions.first()),
            Err(e) => eprintln!("commit at node {at}: {e}"),
        }
        assert!(Instant::now() < deadline, "commit {entries:?} acknowledged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The offsets `GROUP` committed, read at the coordinator `ids` agree on,
/// once they equal `want` (within 30 s); returns the last answer.
async fn committed(c: &TestCluster, ids: &[u64], want: &[Option<u64>]) -> Vec<Option<u64>> {
    c.committed_offsets(ids, GROUP, TOPIC, P, |got| got == want)
        .await
}

/// Base offset of the first segment of node `id`'s group-state partition
/// (from the segment file names), `None` without segments.
fn first_segment(c: &TestCluster, id: u64) -> Option<u64> {
    let dir = partition_dir(&c.node(id).data_dir, GS)?;
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log")?.parse::<u64>().ok()
        })
        .min()
}

/// Waits until the first group-state segment of each of `ids` starts above
/// offset 0 (the segments below a checkpoint were deleted).
fn wait_compacted(c: &TestCluster, ids: &[u64]) {
    c.wait_until(
        Duration::from_secs(60),
        "group-state segments deleted below a checkpoint",
        |c| {
            ids.iter()
                .all(|&id| first_segment(c, id).is_some_and(|b| b > 0))
        },
    );
}

async fn setup() -> TestCluster {
    let c = TestCluster::start_with(3, CONFIG);
    c.create_replicated(TOPIC, P, 3, Default::default()).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_are_compacted_on_every_replica_and_survive_the_coordinator() {
    let mut c = setup().await;
    let all = [1, 2, 3];
    const ROUNDS: u64 = 300;
    for round in 0..ROUNDS {
        let entries: Vec<(u32, u64)> = (0..P).map(|p| (p, round * 100 + u64::from(p))).collect();
        commit(&c, &all, &entries, 200).await;
    }
    wait_compacted(&c, &all);
    let want: Vec<Option<u64>> = (0..P)
        .map(|p| Some((ROUNDS - 1) * 100 + u64::from(p)))
        .collect();
    assert_eq!(committed(&c, &all, &want).await, want);

    let old = c.agreed_coordinator(&all, GROUP).await;
    c.kill(old);
    let rest: Vec<u64> = all.into_iter().filter(|&i| i != old).collect();
    let new = c.agreed_coordinator(&rest, GROUP).await;
    assert_ne!(new, old);
    assert_eq!(
        committed(&c, &rest, &want).await,
        want,
        "the new coordinator holds the latest offsets"
    );
}

/// The replica comes back with no group-state log at all (its directory
/// removed while it was down), installs the snapshot capped below the
/// checkpoint and, made coordinator, returns every offset. Fails without
/// the cap; and, before the partition's leader tolerated a follower log
/// that went back (openraft's `loosen-follower-log-revert`), the leader's
/// Raft core panicked on the wiped replica's first answer and its node
/// named itself coordinator for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_lost_its_group_state_while_down_coordinates_with_every_offset() {
    let mut c = setup().await;
    let all = [1, 2, 3];
    // Every partition's final offset, then a follower goes down.
    for round in 0..20u64 {
        let entries: Vec<(u32, u64)> = (0..P).map(|p| (p, round * 100 + u64::from(p))).collect();
        commit(&c, &all, &entries, 10).await;
    }
    let leader = c.agreed_coordinator(&all, GROUP).await;
    let lost = all.into_iter().find(|&i| i != leader).unwrap();
    let dir: PathBuf = partition_dir(&c.node(lost).data_dir, GS).unwrap();
    c.kill(lost);
    std::fs::remove_dir_all(&dir).unwrap();
    let rest: Vec<u64> = all.into_iter().filter(|&i| i != lost).collect();
    // Only the last partition moves on while it is down: checkpoints,
    // compaction below them.
    const LAST: u64 = 400;
    for i in 0..=LAST {
        commit(&c, &rest, &[(P - 1, 10_000 + i)], 1000).await;
    }
    wait_compacted(&c, &rest);
    let want: Vec<Option<u64>> = (0..P)
        .map(|p| {
            Some(if p == P - 1 {
                10_000 + LAST
            } else {
                1900 + u64::from(p)
            })
        })
        .collect();
    assert_eq!(committed(&c, &rest, &want).await, want);

    // It comes back with no group-state log at all: the records it needs
    // are gone from the others, so it installs a snapshot and catches up.
    c.restart(lost);
    let leader_end = |c: &TestCluster| {
        rest.iter()
            .map(|&id| {
                segment_batches(&c.node(id).data_dir, GS)
                    .last()
                    .map(|b| b.2)
            })
            .max()
            .flatten()
    };
    // Caught up: its log ends where the others' does (or, holding no
    // batch yet, its first segment starts there).
    c.wait_until(Duration::from_secs(60), "the replica caught up", |c| {
        let end = leader_end(c);
        let own = segment_batches(&c.node(lost).data_dir, GS)
            .last()
            .map(|b| b.2);
        own == end || (own.is_none() && first_segment(c, lost).map(|b| b as i64) == end)
    });
    let start = first_segment(&c, lost).unwrap();
    assert!(start > 0, "it restarted from a snapshot, not from offset 0");

    // Make it the coordinator: kill whoever else leads (bringing back the
    // one killed before, so that two of three run).
    let mut down: Option<u64> = None;
    for _ in 0..20 {
        let live = c.live();
        let at = c.agreed_coordinator(&live, GROUP).await;
        if at == lost {
            break;
        }
        if let Some(d) = down.take() {
            c.restart(d);
        }
        c.kill(at);
        down = Some(at);
    }
    let live = c.live();
    assert_eq!(c.agreed_coordinator(&live, GROUP).await, lost);
    assert_eq!(
        committed(&c, &live, &want).await,
        want,
        "the replica that installed the snapshot holds every offset"
    );
}

/// A measurement, run by hand (`docs/replication.md`, "Growth"): the same
/// commits (`SLUICE_GS_ROUNDS` rounds, default 2000, of 10 partitions with
/// 200 bytes of metadata each) with checkpoints every 1 MiB and with none;
/// then the coordinator is SIGKILLed and the new one's load (records read,
/// milliseconds, from its log line) and the time from the kill to the first
/// OffsetFetch answered with the latest offsets are printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, run by hand"]
async fn measure_the_load_after_a_failover() {
    let rounds: u64 = std::env::var("SLUICE_GS_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    for (name, config) in [
        (
            "checkpoints every 1 MiB",
            "offsets_snapshot_bytes = 1048576\noffsets_topic_partitions = 1\n",
        ),
        (
            "no checkpoints",
            "offsets_snapshot_bytes = 1099511627776\noffsets_topic_partitions = 1\n",
        ),
    ] {
        let mut c = TestCluster::start_with(3, config);
        c.create_replicated(TOPIC, P, 3, Default::default()).await;
        let all = [1, 2, 3];
        for round in 0..rounds {
            let entries: Vec<(u32, u64)> =
                (0..P).map(|p| (p, round * 100 + u64::from(p))).collect();
            commit(&c, &all, &entries, 200).await;
        }
        // Let every replica scan and compact up to the end.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let want: Vec<Option<u64>> = (0..P)
            .map(|p| Some((rounds - 1) * 100 + u64::from(p)))
            .collect();
        let old = c.agreed_coordinator(&all, GROUP).await;
        let rest: Vec<u64> = all.into_iter().filter(|&i| i != old).collect();
        let killed = Instant::now();
        c.kill(old);
        assert_eq!(committed(&c, &rest, &want).await, want);
        let window = killed.elapsed();
        let new = c.agreed_coordinator(&rest, GROUP).await;
        let log = std::fs::read_to_string(c.node(new).data_dir.with_extension("log")).unwrap();
        let line = log
            .lines()
            .rfind(|l| l.contains("loaded a group-state partition"))
            .unwrap_or("");
        let bytes: usize = segment_batches(&c.node(new).data_dir, GS)
            .iter()
            .map(|b| b.1)
            .sum();
        println!(
            "{name}: {rounds} commits; group-state log on the new coordinator {bytes} bytes; \
             kill to latest offsets {window:?}; load: {line}"
        );
    }
}
