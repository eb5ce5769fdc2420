//! Consumers of a topic whose partitions are led by different nodes of a
//! 3-node cluster: the plain consumer fetches each partition from its own
//! leader over one connection per leader (no reconnect per fetch), follows
//! a new leader after a SIGKILL without skipping or repeating an offset,
//! and a group consumer's members share such a topic and read every record
//! once across a leader kill. The CLI reads through a bootstrap list. A
//! partition whose only replica is on a node that is down holds up none of
//! the others, for the library and the CLI alike.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_client::group::{GroupConfig, GroupConsumer};
use sluice_client::{
    Acks, Consumer, ConsumerConfig, OffsetReset, Producer, ProducerConfig, ProducerRecord,
};
use sluice_tests::cluster::TestCluster;
use sluice_tests::{http_get, sample, sluice_ok, sluice_with_input};

/// Partition → leader, as node `id`'s Metadata names them (`None` for a
/// partition without a leader), or `None` if it does not answer.
async fn leaders(c: &TestCluster, id: u64, topic: &str) -> Option<Vec<Option<u64>>> {
    let mut conn = sluice_client::Connection::connect(c.node(id).addr)
        .await
        .ok()?;
    let m = conn.metadata(Some(vec![topic.into()])).await.ok()?;
    let t = m.topics.first()?;
    Some(t.partitions.iter().map(|p| p.leader).collect())
}

/// Waits until every node of `ids` names the same live leader of every
/// partition of `topic`, and the leaders are `distinct` nodes if asked;
/// returns them by partition.
async fn agreed_leaders(c: &TestCluster, ids: &[u64], topic: &str, distinct: bool) -> Vec<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut seen = Vec::new();
        for &id in ids {
            seen.push(leaders(c, id, topic).await);
        }
        if let Some(Some(first)) = seen.first()
            && seen.iter().all(|s| s.as_ref() == Some(first))
            && first.iter().all(|l| l.is_some_and(|l| ids.contains(&l)))
        {
            let ls: Vec<u64> = first.iter().map(|l| l.unwrap()).collect();
            let nodes: BTreeSet<u64> = ls.iter().copied().collect();
            if !distinct || nodes.len() == ids.len().min(ls.len()) {
                return ls;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agreed leaders of {topic} among {ids:?}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Client connections node `id` accepted so far.
fn accepted(c: &TestCluster, id: u64) -> f64 {
    let (status, body) = http_get(c.node(id).metrics_addr.unwrap(), "/metrics");
    assert_eq!(status, 200);
    sample(&body, "sluice_connections_accepted_total").expect("connections metric")
}

fn brokers(c: &TestCluster) -> Vec<String> {
    (1..=3).map(|i| c.node(i).addr.to_string()).collect()
}

fn producer(c: &TestCluster) -> Producer {
    Producer::new(ProducerConfig {
        acks: Acks::All,
        linger: Duration::from_millis(1),
        delivery_timeout: Duration::from_secs(90),
        ..ProducerConfig::with_brokers(brokers(c))
    })
}

/// Sends `values` to `partition`, waiting for every acknowledgement;
/// returns the offsets.
async fn send_all(producer: &Producer, topic: &str, partition: u32, values: &[String]) -> Vec<u64> {
    let mut deliveries = Vec::new();
    for v in values {
        deliveries.push(
            producer
                .send_record(ProducerRecord {
                    topic,
                    partition: Some(partition),
                    value: Some(v.as_bytes()),
                    ..Default::default()
                })
                .await
                .unwrap(),
        );
    }
    let mut offsets = Vec::new();
    for d in deliveries {
        offsets.push(d.await.unwrap().offset.unwrap());
    }
    offsets
}

/// Records by partition: `(offset, value)` in the order consumed.
type Consumed = BTreeMap<u32, Vec<(u64, String)>>;

fn total(consumed: &Consumed) -> usize {
    consumed.values().map(Vec::len).sum()
}

/// Waits until `partition` has `more` records beyond what it had when
/// called (consumers that followed it to a new leader), panicking with
/// `what` after 30 s.
async fn wait_for_more(consumed: &Mutex<Consumed>, partition: u32, more: usize, what: &str) {
    let count = || consumed.lock().unwrap().get(&partition).map_or(0, Vec::len);
    let before = count();
    let deadline = Instant::now() + Duration::from_secs(30);
    while count() < before + more {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `want` records were consumed in all, for up to 60 s.
async fn wait_for_total(consumed: &Mutex<Consumed>, want: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while total(&consumed.lock().unwrap()) < want {
        assert!(
            Instant::now() < deadline,
            "consumed {} of {want} acknowledged records",
            total(&consumed.lock().unwrap())
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts each partition was consumed once, gap-free from offset 0, in
/// order, and holds every acknowledged `(offset, value)` of `acked`.
fn assert_exactly_once(consumed: &Consumed, acked: &Consumed) {
    for (p, want) in acked {
        let got = consumed.get(p).cloned().unwrap_or_default();
        let offsets: Vec<u64> = got.iter().map(|(o, _)| *o).collect();
        let expect: Vec<u64> = (0..got.len() as u64).collect();
        assert_eq!(
            offsets, expect,
            "partition {p}: offsets once, in order, gap-free"
        );
        for (o, v) in want {
            assert_eq!(
                got.get(*o as usize).map(|(_, v)| v),
                Some(v),
                "partition {p}: acknowledged offset {o}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_fetches_each_partition_from_its_leader_over_one_connection_each() {
    const P: u32 = 3;
    let c = TestCluster::start(3);
    c.create_replicated("spread", P, 3, Default::default())
        .await;
    let ls = agreed_leaders(&c, &[1, 2, 3], "spread", true).await;
    eprintln!("leaders by partition: {ls:?}");

    let producer = producer(&c);
    let mut consumer = Consumer::connect(ConsumerConfig {
        offset_reset: OffsetReset::Earliest,
        max_wait: Duration::from_millis(200),
        ..ConsumerConfig::with_brokers(brokers(&c))
    })
    .await
    .unwrap();
    consumer.subscribe("spread").await.unwrap();

    let mut acked = Consumed::new();
    let mut consumed = Consumed::new();
    let mut baseline = None;
    const ROUNDS: usize = 20;
    for round in 0..ROUNDS {
        for p in 0..P {
            let values: Vec<String> = (0..5).map(|i| format!("p{p}-r{round}-{i}")).collect();
            let offsets = send_all(&producer, "spread", p, &values).await;
            acked
                .entry(p)
                .or_default()
                .extend(offsets.into_iter().zip(values));
        }
        let want = total(&acked);
        let deadline = Instant::now() + Duration::from_secs(30);
        while total(&consumed) < want {
            assert!(
                Instant::now() < deadline,
                "round {round}: consumed {} of {want}",
                total(&consumed)
            );
            for r in consumer.poll().await.unwrap() {
                let v = String::from_utf8(r.value().to_vec()).unwrap();
                consumed
                    .entry(r.partition)
                    .or_default()
                    .push((r.offset(), v));
            }
        }
        if round == 0 {
            // Every session is open now: from here on, fetches reuse them.
            assert_eq!(consumer.fetch_connections(), 3, "one per leader");
            baseline = Some([1, 2, 3].map(|id| accepted(&c, id)));
        }
    }
    assert_exactly_once(&consumed, &acked);
    let after = [1, 2, 3].map(|id| accepted(&c, id));
    assert_eq!(
        Some(after),
        baseline,
        "{} rounds of fetches from three leaders opened no connection",
        ROUNDS - 1
    );
    assert_eq!(consumer.fetch_connections(), 3);

    // The CLI, given the bootstrap list, reads every record too.
    let want = total(&acked);
    let out = sluice_ok(
        &brokers(&c).join(","),
        &[
            "consume",
            "spread",
            "--from-beginning",
            "--timeout-ms",
            "20000",
            "--count",
            &want.to_string(),
            "--format",
            "%p %o %v",
        ],
    );
    let mut printed = Consumed::new();
    for line in out.lines() {
        let mut f = line.splitn(3, ' ');
        let (p, o, v) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
        printed
            .entry(p.parse().unwrap())
            .or_default()
            .push((o.parse().unwrap(), v.to_owned()));
    }
    assert_eq!(total(&printed), want);
    assert_exactly_once(&printed, &acked);
}

/// Runs `producer` sending to every partition in turn until `stop`;
/// returns the acknowledged records by partition.
async fn produce_until(
    producer: Arc<Producer>,
    topic: &'static str,
    p: u32,
    stop: Arc<AtomicBool>,
) -> Consumed {
    let mut deliveries = Vec::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Acquire) {
        let partition = (i % u64::from(p)) as u32;
        let v = format!("v{i:06}");
        let d = producer
            .send_record(ProducerRecord {
                topic,
                partition: Some(partition),
                value: Some(v.as_bytes()),
                ..Default::default()
            })
            .await
            .unwrap();
        deliveries.push((partition, v, d));
        i += 1;
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut acked = Consumed::new();
    for (p, v, d) in deliveries {
        let offset = d.await.unwrap_or_else(|e| panic!("{v} failed: {e}"));
        acked
            .entry(p)
            .or_default()
            .push((offset.offset.unwrap(), v));
    }
    for records in acked.values_mut() {
        records.sort();
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tailing_consumer_follows_a_new_leader_after_a_sigkill_without_gaps_or_repeats() {
    const P: u32 = 3;
    let mut c = TestCluster::start(3);
    c.create_replicated("tail", P, 3, Default::default()).await;
    let ls = agreed_leaders(&c, &[1, 2, 3], "tail", true).await;

    let consumed = Arc::new(Mutex::new(Consumed::new()));
    let stop_consumer = Arc::new(AtomicBool::new(false));
    let mut consumer = Consumer::connect(ConsumerConfig {
        offset_reset: OffsetReset::Earliest,
        max_wait: Duration::from_millis(200),
        ..ConsumerConfig::with_brokers(brokers(&c))
    })
    .await
    .unwrap();
    consumer.subscribe("tail").await.unwrap();
    let tailing = {
        let (consumed, stop) = (Arc::clone(&consumed), Arc::clone(&stop_consumer));
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let records = consumer.poll().await.expect("poll across the failover");
                let mut c = consumed.lock().unwrap();
                for r in records {
                    let v = String::from_utf8(r.value().to_vec()).unwrap();
                    c.entry(r.partition).or_default().push((r.offset(), v));
                }
            }
        })
    };

    let producer = Arc::new(producer(&c));
    let stop_producer = Arc::new(AtomicBool::new(false));
    let sending = tokio::spawn(produce_until(
        Arc::clone(&producer),
        "tail",
        P,
        Arc::clone(&stop_producer),
    ));
    // The consumer tails records of every partition before the kill.
    let deadline = Instant::now() + Duration::from_secs(30);
    while consumed
        .lock()
        .unwrap()
        .values()
        .filter(|v| v.len() >= 20)
        .count()
        < P as usize
    {
        assert!(Instant::now() < deadline, "consumer did not start tailing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A leader other than the bootstrap list's first node.
    let (p_killed, &killed) = ls.iter().enumerate().find(|(_, l)| **l != 1).unwrap();
    c.kill(killed);
    let survivors: Vec<u64> = (1..=3).filter(|&id| id != killed).collect();
    let new = agreed_leaders(&c, &survivors, "tail", false).await;
    eprintln!("killed node {killed} (led partition {p_killed}); leaders now {new:?}");
    // Records acknowledged by the new leader too.
    wait_for_more(
        &consumed,
        p_killed as u32,
        50,
        &format!("the consumer did not follow partition {p_killed} to its new leader"),
    )
    .await;
    stop_producer.store(true, Ordering::Release);
    let acked = sending.await.unwrap();

    let want = total(&acked);
    wait_for_total(&consumed, want).await;
    stop_consumer.store(true, Ordering::Release);
    tailing.await.unwrap();
    let consumed = consumed.lock().unwrap().clone();
    assert_eq!(
        total(&consumed),
        want,
        "nothing beyond the acknowledged records"
    );
    assert_exactly_once(&consumed, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_group_members_read_a_multi_leader_topic_once_across_a_leader_kill() {
    const P: u32 = 4;
    let mut c = TestCluster::start(3);
    c.create_replicated("shared", P, 3, Default::default())
        .await;
    let ls = agreed_leaders(&c, &[1, 2, 3], "shared", false).await;
    assert!(
        ls.iter().collect::<BTreeSet<_>>().len() > 1,
        "leaders on several nodes: {ls:?}"
    );

    let consumed = Arc::new(Mutex::new(Consumed::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let owned: Arc<[AtomicUsize; 2]> = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut members = Vec::new();
    for m in 0..2 {
        let config = ConsumerConfig {
            group: Some("readers".into()),
            offset_reset: OffsetReset::Earliest,
            max_wait: Duration::from_millis(200),
            auto_commit: Some(Duration::from_millis(200)),
            ..ConsumerConfig::with_brokers(brokers(&c))
        };
        let mut member = GroupConsumer::connect(config, GroupConfig::new(vec!["shared".into()]))
            .await
            .unwrap();
        let (consumed, stop, owned) =
            (Arc::clone(&consumed), Arc::clone(&stop), Arc::clone(&owned));
        members.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let records = member.poll().await.expect("member poll");
                owned[m].store(member.assignment().len(), Ordering::Release);
                let mut c = consumed.lock().unwrap();
                for r in records {
                    let v = String::from_utf8(r.value().to_vec()).unwrap();
                    c.entry(r.partition).or_default().push((r.offset(), v));
                }
            }
            member.close().await.unwrap();
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (
            owned[0].load(Ordering::Acquire),
            owned[1].load(Ordering::Acquire),
        );
        if a > 0 && b > 0 && a + b == P as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members share the partitions: {a} + {b}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let producer = Arc::new(producer(&c));
    let stop_producer = Arc::new(AtomicBool::new(false));
    let sending = tokio::spawn(produce_until(
        Arc::clone(&producer),
        "shared",
        P,
        Arc::clone(&stop_producer),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while total(&consumed.lock().unwrap()) < 400 {
        assert!(Instant::now() < deadline, "members did not start reading");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A partition leader that is not the group's coordinator.
    let coordinator = c
        .node(1)
        .connect()
        .await
        .find_coordinator("readers")
        .await
        .unwrap()
        .node_id;
    let (p_killed, &killed) = ls
        .iter()
        .enumerate()
        .find(|(_, l)| **l != coordinator)
        .unwrap();
    c.kill(killed);
    let survivors: Vec<u64> = (1..=3).filter(|&id| id != killed).collect();
    agreed_leaders(&c, &survivors, "shared", false).await;
    wait_for_more(
        &consumed,
        p_killed as u32,
        50,
        &format!("no member followed partition {p_killed} to its new leader"),
    )
    .await;
    stop_producer.store(true, Ordering::Release);
    let acked = sending.await.unwrap();

    let want = total(&acked);
    wait_for_total(&consumed, want).await;
    stop.store(true, Ordering::Release);
    for m in members {
        m.await.unwrap();
    }
    let mut consumed = consumed.lock().unwrap().clone();
    // Two members: the order across them is interleaved; each partition's
    // records come from one member at a time.
    for records in consumed.values_mut() {
        records.sort();
    }
    assert_exactly_once(&consumed, &acked);
    assert_eq!(total(&consumed), want, "every record once");
}

/// A partition whose only replica is on a node that is down holds up no
/// other. Once the live nodes have missed the node for 9 s their Metadata
/// names no leader for it, and keyless records (the CLI's producer) all go
/// to the other partitions. As in Kafka's consumer, `assign` returns within seconds with it
/// unresolved (the reason naming its leader's address) and no position,
/// polls read every record of the other partitions, and once the node is
/// back the partition is read from its start. The CLI reads the other
/// partitions, says on stderr which one it could not read and why, and
/// exits non-zero, with `--group` too, whose member commits only what it
/// read and reads the rest once the node is back. (Before, `assign` failed
/// after 30 s and the CLI printed nothing; a group member printed nothing
/// and exited with status 0 at its `--timeout-ms`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_whose_only_replica_is_down_holds_up_no_other() {
    const P: u32 = 3;
    let mut c = TestCluster::start(3);
    c.create_replicated("solo", P, 1, Default::default()).await;
    let ls = agreed_leaders(&c, &[1, 2, 3], "solo", false).await;
    let producer = producer(&c);
    let mut acked = Consumed::new();
    for p in 0..P {
        let values: Vec<String> = (0..5).map(|i| format!("p{p}-{i}")).collect();
        let offsets = send_all(&producer, "solo", p, &values).await;
        acked
            .entry(p)
            .or_default()
            .extend(offsets.into_iter().zip(values));
    }
    drop(producer);
    let down = ls[0];
    let down_addr = c.node(down).addr.to_string();
    let gone: BTreeSet<u32> = (0..P).filter(|&p| ls[p as usize] == down).collect();
    let readable: BTreeSet<u32> = (0..P).filter(|p| !gone.contains(p)).collect();
    assert!(
        !readable.is_empty(),
        "every partition on node {down}: {ls:?}"
    );
    c.kill(down);
    let live: Vec<String> = (1..=3)
        .filter(|&id| id != down)
        .map(|id| c.node(id).addr.to_string())
        .collect();

    // Once the live nodes have missed it for 9 s, their Metadata names no
    // leader for its partitions (as their Kafka listeners do), and keyless
    // records keep off them: every one is acknowledged, on the others.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut seen = Vec::new();
        for id in (1..=3).filter(|&id| id != down) {
            seen.push(leaders(&c, id, "solo").await);
        }
        if seen.iter().all(|ls| {
            ls.as_ref()
                .is_some_and(|ls| gone.iter().all(|&p| ls[p as usize].is_none()))
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "leaders still named: {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let lines: String = (0..30).map(|i| format!("keyless-{i}\n")).collect();
    let out = sluice_with_input(
        &live.join(","),
        &[
            "produce",
            "solo",
            "--print-offsets",
            "--delivery-timeout-ms",
            "20000",
        ],
        lines.as_bytes(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 30, "{stdout}");
    for (i, line) in stdout.lines().enumerate() {
        let (p, o) = line.split_once(' ').unwrap();
        let p: u32 = p.parse().unwrap();
        assert!(readable.contains(&p), "{line}");
        acked
            .entry(p)
            .or_default()
            .push((o.parse().unwrap(), format!("keyless-{i}")));
    }

    let mut consumer = Consumer::connect(ConsumerConfig {
        offset_reset: OffsetReset::Earliest,
        max_wait: Duration::from_millis(200),
        ..ConsumerConfig::with_brokers(live.clone())
    })
    .await
    .unwrap();
    let started = Instant::now();
    consumer
        .assign((0..P).map(|p| ("solo".to_owned(), p)).collect())
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "assign took {:?}",
        started.elapsed()
    );
    let unresolved: Vec<(String, u32, String)> = consumer
        .unresolved()
        .map(|(t, p, why)| (t.to_owned(), p, why.to_owned()))
        .collect();
    assert_eq!(
        unresolved.iter().map(|u| u.1).collect::<BTreeSet<_>>(),
        gone,
        "{unresolved:?}"
    );
    // Why: the connect refused, or (once the others have missed the node
    // for 9 s, as here) no leader they can reach.
    let names_down = |why: &str| {
        why.contains(&format!("cannot connect to {down_addr}"))
            || why.contains("has no leader the brokers can reach")
    };
    for (_, p, why) in &unresolved {
        assert!(names_down(why), "partition {p}: {why}");
        assert_eq!(consumer.position("solo", *p), None);
    }
    for p in &readable {
        assert_eq!(consumer.position("solo", *p), Some(0));
    }

    // The readable partitions are read whole meanwhile.
    let mut consumed = Consumed::new();
    let want: usize = readable.iter().map(|p| acked[p].len()).sum();
    let deadline = Instant::now() + Duration::from_secs(30);
    while total(&consumed) < want {
        assert!(Instant::now() < deadline, "consumed {consumed:?}");
        for r in consumer.poll().await.unwrap() {
            let v = String::from_utf8(r.value().to_vec()).unwrap();
            consumed
                .entry(r.partition)
                .or_default()
                .push((r.offset(), v));
        }
    }
    assert_eq!(consumed.keys().copied().collect::<BTreeSet<_>>(), readable);
    assert_eq!(consumer.unresolved().count(), gone.len());

    // The CLI reads them too, then says which partition it could not read.
    let out = sluice_with_input(
        &live.join(","),
        &[
            "consume",
            "solo",
            "--from-beginning",
            "--timeout-ms",
            "2000",
            "--format",
            "%p %v",
        ],
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), want, "{stdout}\n{stderr}");
    let told = |stderr: &str, p: u32| {
        stderr
            .lines()
            .any(|l| l.contains(&format!("solo-{p}: ")) && names_down(l))
    };
    for p in &gone {
        assert!(told(&stderr, *p), "{stderr}");
    }
    assert!(stderr.contains("not read"), "{stderr}");

    // So does a group member (which took every partition): it commits
    // what it read and nothing of the partition it could not read.
    let group_consume = |live: &[String]| {
        sluice_with_input(
            &live.join(","),
            &[
                "consume",
                "solo",
                "--group",
                "readers",
                "--from-beginning",
                "--timeout-ms",
                "3000",
                "--format",
                "%p %v",
            ],
            b"",
        )
    };
    let out = group_consume(&live);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), want, "{stdout}\n{stderr}");
    for p in &gone {
        assert!(told(&stderr, *p), "{stderr}");
    }

    // Back: the partition is read from its start, nothing repeated.
    c.restart(down);
    let want = total(&acked);
    let deadline = Instant::now() + Duration::from_secs(60);
    while total(&consumed) < want {
        assert!(Instant::now() < deadline, "consumed {consumed:?}");
        for r in consumer.poll().await.unwrap() {
            let v = String::from_utf8(r.value().to_vec()).unwrap();
            consumed
                .entry(r.partition)
                .or_default()
                .push((r.offset(), v));
        }
    }
    assert_eq!(consumer.unresolved().count(), 0);
    assert_exactly_once(&consumed, &acked);

    // The group member goes on from its commits: only what it could not
    // read before.
    let out = group_consume(&live);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let mut printed: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for line in stdout.lines() {
        let (p, v) = line.split_once(' ').unwrap();
        printed
            .entry(p.parse().unwrap())
            .or_default()
            .push(v.to_owned());
    }
    let expected: BTreeMap<u32, Vec<String>> = gone
        .iter()
        .map(|p| (*p, acked[p].iter().map(|(_, v)| v.clone()).collect()))
        .collect();
    assert_eq!(printed, expected, "{stderr}");
}
