//! A node that loses touch with the others for a while, then comes back,
//! does not depose the leaders that a majority kept following: cut off
//! (every node-to-node call dropped, the broker's `raft-faults` transport)
//! or paused (SIGSTOP) for many election timeouts, it asks for pre-votes
//! that no majority grants, so it never raises its partition groups'
//! terms; back, it follows the leaders it finds. Before the pre-vote, each
//! of its groups came back with the term of its lost elections, and the
//! leader of every partition it did not lead stepped down.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sluice_client::Connection;
use sluice_tests::cluster::TestCluster;

const TOPIC: &str = "steady";
const PARTITIONS: u32 = 6;

/// Each partition's (leader, leader epoch) of [`TOPIC`] as node `id`'s
/// Metadata gives them.
async fn leaders(c: &TestCluster, id: u64) -> Option<BTreeMap<u32, (Option<u64>, u64)>> {
    let mut conn = Connection::connect(c.node(id).addr).await.ok()?;
    let m = conn.metadata(Some(vec![TOPIC.into()])).await.ok()?;
    Some(
        m.topics
            .first()?
            .partitions
            .iter()
            .map(|p| (p.partition, (p.leader, p.leader_epoch)))
            .collect(),
    )
}

/// Waits until every node of `ids` gives the same leader, and epoch, of
/// every partition; returns them.
async fn agreed(c: &TestCluster, ids: &[u64]) -> BTreeMap<u32, (Option<u64>, u64)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = Vec::new();
        for &id in ids {
            seen.push(leaders(c, id).await);
        }
        if let Some(Some(first)) = seen.first()
            && first.len() == PARTITIONS as usize
            && first.values().all(|(l, _)| l.is_some())
            && seen.iter().all(|s| s.as_ref() == Some(first))
        {
            return first.clone();
        }
        assert!(Instant::now() < deadline, "no agreed leaders: {seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Node `id`'s `sluice_raft_pre_votes_total` of its partition groups with
/// result `result`.
fn pre_votes(c: &TestCluster, id: u64, result: &str) -> f64 {
    let (code, body) =
        sluice_tests::http_get(c.node(id).metrics_addr.expect("metrics"), "/metrics");
    assert_eq!(code, 200);
    let name = format!("sluice_raft_pre_votes_total{{group=\"partition\",result=\"{result}\"}}");
    sluice_tests::sample(&body, &name).unwrap_or_else(|| panic!("no {name} on node {id}"))
}

/// The partitions of `before` not led by `away` kept their leader and
/// epoch in `after`.
fn kept(
    before: &BTreeMap<u32, (Option<u64>, u64)>,
    after: &BTreeMap<u32, (Option<u64>, u64)>,
    away: u64,
    what: &str,
) {
    let others: Vec<u32> = before
        .iter()
        .filter(|(_, (l, _))| *l != Some(away))
        .map(|(p, _)| *p)
        .collect();
    assert!(!others.is_empty(), "node {away} leads every partition");
    for p in others {
        assert_eq!(
            after[&p], before[&p],
            "partition {p}: its leader or epoch moved after node {away} was {what}: {before:?} -> {after:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_or_paused_and_back_deposes_no_leader() {
    let c = TestCluster::start(3);
    let all = [1, 2, 3];
    c.create_replicated(TOPIC, PARTITIONS, 3, Default::default())
        .await;
    let before = agreed(&c, &all).await;
    // The node leading the fewest partitions goes away.
    let away = *all
        .iter()
        .min_by_key(|&&n| before.values().filter(|(l, _)| *l == Some(n)).count())
        .unwrap();
    assert!(
        c.node(away).log().contains("raft fault injection is on"),
        "the broker must be built with the raft-faults feature"
    );

    // Cut off for ten of its election timeouts and more, then back.
    let (won, lost) = (pre_votes(&c, away, "won"), pre_votes(&c, away, "lost"));
    c.isolate(away);
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.heal();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = agreed(&c, &all).await;
    kept(&before, &after, away, "cut off");
    // Its metrics say so: pre-votes lost while it was cut off, none won.
    assert!(
        pre_votes(&c, away, "lost") > lost,
        "node {away} lost no pre-vote while cut off"
    );
    assert_eq!(
        pre_votes(&c, away, "won"),
        won,
        "node {away} won a pre-vote"
    );

    // Paused as long, then resumed: its timers all fire at once, before it
    // has read what the leaders sent meanwhile.
    let before = after;
    c.node(away).pause();
    tokio::time::sleep(Duration::from_secs(3)).await;
    c.node(away).resume();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = agreed(&c, &all).await;
    kept(&before, &after, away, "paused");
}
