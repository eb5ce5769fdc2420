//! One coordinator per consumer group in a 3-node cluster (the leader of
//! the group's partition of the group-state topic): every node names the
//! same coordinator (FindCoordinator, native and Kafka), the others refuse the group's calls with `NotCoordinator`, and members that
//! reach different nodes meet in one group: they share the partitions,
//! read each record once between them, and their commits are seen by a
//! member started at the third node.
//!
//! The Kafka half needs the Python of `SLUICE_KAFKA_PYTHON` (see
//! `kafka_clients.rs`).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_client::group::{GroupConfig, GroupConsumer};
use sluice_client::{ClientError, ConsumerConfig, OffsetReset};
use sluice_protocol::kafka::groups::{HeartbeatRequest, HeartbeatResponse};
use sluice_protocol::kafka::offsets::{
    FindCoordinatorRequest, FindCoordinatorResponse, OffsetFetchGroup, OffsetFetchRequest,
    OffsetFetchResponse, OffsetFetchTopic,
};
use sluice_protocol::wire::ErrorCode;
use sluice_tests::cluster::TestCluster;
use sluice_tests::kafka::{call, python, run_clients};
use sluice_tests::sluice_ok;

const P: u32 = 4;

/// A member's assignment: `(topic, partition)`.
type Owned = BTreeSet<(String, i32)>;

const NATIVE_GROUP: &str = "coord-native";
const KAFKA_GROUP: &str = "kafka-spread";

fn member_config(c: &TestCluster, node: u64) -> ConsumerConfig {
    ConsumerConfig {
        group: Some(NATIVE_GROUP.into()),
        offset_reset: OffsetReset::Earliest,
        max_wait: Duration::from_millis(100),
        auto_commit: Some(Duration::from_millis(100)),
        ..ConsumerConfig::with_brokers([c.node(node).addr.to_string()])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_members_at_different_nodes_share_one_group_at_its_coordinator() {
    let c = TestCluster::start(3);
    c.create_replicated("spread", P, 3, Default::default())
        .await;

    // Each node's status names it and its Kafka listener.
    for id in 1..=3 {
        let s = c.node(id).connect().await.broker_status().await.unwrap();
        assert_eq!(s.node_id, Some(id));
        assert_eq!(s.v0.listen, c.node(id).addr.to_string());
        let kafka = c.node(id).kafka_addr.unwrap();
        assert_eq!(s.kafka_listen, kafka.to_string());
    }

    // Every node names the same coordinator, at its native address; another
    // node refuses the group's calls naming it, and the coordinator serves
    // them. (Tried again should the group-state leaders move meanwhile:
    // an election answers CoordinatorNotAvailable for a moment.)
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let coord_id = c.agreed_coordinator(&[1, 2, 3], NATIVE_GROUP).await;
        let other_id = if coord_id == 1 { 2 } else { 1 };
        let mut other = c.node(other_id).connect().await;
        let refused = match other.heartbeat(NATIVE_GROUP, 0, "m", None).await {
            Err(ClientError::Broker { code, message }) => (code, message),
            r => panic!("heartbeat at a non-coordinator: {r:?}"),
        };
        let fetch = match other.offset_fetch(NATIVE_GROUP, None).await {
            Err(ClientError::Broker { code, .. }) => code,
            r => panic!("offset fetch at a non-coordinator: {r:?}"),
        };
        let mut coord = c.node(coord_id).connect().await;
        let served = coord.heartbeat(NATIVE_GROUP, 0, "m", None).await;
        let moved = refused.0 == ErrorCode::CoordinatorNotAvailable
            || fetch == ErrorCode::CoordinatorNotAvailable
            || served.is_err();
        if moved && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        assert_eq!(refused.0, ErrorCode::NotCoordinator);
        assert!(
            refused.1.contains(&format!("node {coord_id}")),
            "{}",
            refused.1
        );
        assert_eq!(fetch, ErrorCode::NotCoordinator);
        assert_eq!(served.unwrap().error_code, ErrorCode::UnknownMemberId);
        break;
    }

    // Member A bootstrapped at node 1, member B at node 2 only.
    let consumed = Arc::new(Mutex::new(Vec::<(u32, u64)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let owned: Arc<[Mutex<Owned>; 2]> = Arc::default();
    let polled = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut members = Vec::new();
    for (m, node) in [(0usize, 1u64), (1, 2)] {
        let mut member = GroupConsumer::connect(
            member_config(&c, node),
            GroupConfig::new(vec!["spread".into()]),
        )
        .await
        .unwrap();
        let (consumed, stop, owned, polled) = (
            Arc::clone(&consumed),
            Arc::clone(&stop),
            Arc::clone(&owned),
            Arc::clone(&polled),
        );
        members.push(tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let records = member.poll().await.expect("member poll");
                *owned[m].lock().unwrap() = member
                    .assignment()
                    .iter()
                    .map(|tp| (tp.topic.clone(), tp.partition))
                    .collect();
                let mut c = consumed.lock().unwrap();
                for r in records {
                    c.push((r.partition, r.offset()));
                }
                polled[m].fetch_add(1, Ordering::AcqRel);
            }
            member.close().await.unwrap();
        }));
    }
    // They meet in one group and split the partitions (two groups would
    // each own all of them).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (a, b) = (
            owned[0].lock().unwrap().clone(),
            owned[1].lock().unwrap().clone(),
        );
        if !a.is_empty() && !b.is_empty() && a.is_disjoint(&b) && a.len() + b.len() == P as usize {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "members at nodes 1 and 2 split the partitions: {a:?} {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    const PER: u64 = 25;
    c.produce_spread(&[1, 2, 3], "spread", P, 0..PER * u64::from(P))
        .await;
    let want = (PER * u64::from(P)) as usize;
    let deadline = Instant::now() + Duration::from_secs(60);
    while consumed.lock().unwrap().len() < want {
        assert!(Instant::now() < deadline, "members read every record");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let each member commit what it read (auto-commit every 100 ms, and
    // on close): two more polls each.
    let marks = [0, 1].map(|m| polled[m].load(Ordering::Acquire));
    while (0..2).any(|m| polled[m].load(Ordering::Acquire) < marks[m] + 2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Release);
    for m in members {
        m.await.unwrap();
    }
    let got = consumed.lock().unwrap().clone();
    let mut by_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (p, o) in got {
        by_partition.entry(p).or_default().push(o);
    }
    for p in 0..P {
        let mut offsets = by_partition.remove(&p).unwrap_or_default();
        offsets.sort_unstable();
        assert_eq!(
            offsets,
            (0..PER).collect::<Vec<_>>(),
            "partition {p}: each record once in total"
        );
    }

    // A third member at node 3 starts where the group committed: the end.
    let mut third = GroupConsumer::connect(
        member_config(&c, 3),
        GroupConfig::new(vec!["spread".into()]),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while third.assignment().len() < P as usize {
        let records = third.poll().await.unwrap();
        assert!(
            records.is_empty(),
            "nothing left to read: {}",
            records.len()
        );
        assert!(Instant::now() < deadline, "the third member joins");
    }
    for p in 0..P {
        assert_eq!(
            third.position("spread", p),
            Some(PER),
            "partition {p} starts at the committed offset"
        );
    }
    third.close().await.unwrap();

    // The CLI, given node 2 only, deletes the (now empty) group at its
    // coordinator.
    let out = sluice_ok(
        &c.node(2).addr.to_string(),
        &["group", "delete", NATIVE_GROUP],
    );
    assert_eq!(out.trim(), format!("deleted group {NATIVE_GROUP}"));
}

#[test]
fn kafka_members_bootstrapped_at_different_nodes_consume_once_between_them() {
    let c = TestCluster::start_with_kafka(3);
    let kafka = |id: u64| std::net::TcpStream::connect(c.node(id).kafka_addr.unwrap()).unwrap();
    // FindCoordinator v4 (a batch of keys) at node 1, and v1 at nodes 2
    // and 3, name the same coordinators (once the group-state topic's
    // leaders have settled).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (kc, r) = loop {
        let r: FindCoordinatorResponse = call(
            &mut kafka(1),
            4,
            &mut FindCoordinatorRequest {
                key: String::new(),
                key_type: 0,
                coordinator_keys: vec![KAFKA_GROUP.into(), NATIVE_GROUP.into()],
            },
        );
        let v1: Vec<(i32, i16)> = [2, 3]
            .map(|id| {
                let r: FindCoordinatorResponse = call(
                    &mut kafka(id),
                    1,
                    &mut FindCoordinatorRequest {
                        key: KAFKA_GROUP.into(),
                        key_type: 0,
                        coordinator_keys: Vec::new(),
                    },
                );
                (r.coordinators[0].node_id, r.coordinators[0].error_code)
            })
            .to_vec();
        let named: Vec<(i32, i16)> = r
            .coordinators
            .iter()
            .map(|c| (c.node_id, c.error_code))
            .collect();
        if named.iter().all(|(_, e)| *e == 0) && v1.iter().all(|n| *n == named[0]) {
            break (named[0].0 as u64, r);
        }
        assert!(
            Instant::now() < deadline,
            "coordinators named: {named:?} {v1:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let kaddr = c.node(kc).kafka_addr.unwrap();
    assert_eq!(r.coordinators[0].host, kaddr.ip().to_string());
    assert_eq!(r.coordinators[0].port, i32::from(kaddr.port()));
    let non = if kc == 1 { 2 } else { 1 };
    let mut at1 = kafka(non);
    // A group call at a non-coordinator: NOT_COORDINATOR (16); at the
    // coordinator: served (an unknown member).
    let mut heartbeat = HeartbeatRequest {
        group_id: KAFKA_GROUP.into(),
        generation_id: 1,
        member_id: "m".into(),
        group_instance_id: None,
    };
    // COORDINATOR_NOT_AVAILABLE (15) is the retriable answer of a node
    // that sees no leader of the group's partition for a moment (an
    // election on a loaded machine): asked again, as a client would.
    let settled = |ask: &mut dyn FnMut() -> i16| -> i16 {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let code = ask();
            if code != 15 || Instant::now() >= deadline {
                return code;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let code = settled(&mut || {
        let r: HeartbeatResponse = call(&mut at1, 1, &mut heartbeat);
        r.error_code
    });
    assert_eq!(code, 16);
    let code = settled(&mut || {
        let r: HeartbeatResponse = call(&mut kafka(kc), 1, &mut heartbeat);
        r.error_code
    });
    assert_eq!(code, 25, "UNKNOWN_MEMBER_ID at the coordinator");
    // OffsetFetch v1 carries errors per partition only: each asked for
    // gets NOT_COORDINATOR.
    let mut codes = Vec::new();
    settled(&mut || {
        let r: OffsetFetchResponse = call(
            &mut at1,
            1,
            &mut OffsetFetchRequest {
                groups: vec![OffsetFetchGroup {
                    group_id: KAFKA_GROUP.into(),
                    member_id: None,
                    member_epoch: -1,
                    topics: Some(vec![OffsetFetchTopic {
                        name: "kspread".into(),
                        partition_indexes: vec![0, 1],
                    }]),
                }],
                require_stable: false,
            },
        );
        codes = r.groups[0].topics[0]
            .partitions
            .iter()
            .map(|p| p.error_code)
            .collect();
        codes.first().copied().unwrap_or_default()
    });
    assert_eq!(codes, [16, 16]);

    let Some(python) = python() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(c.create_replicated("kspread", P, 3, Default::default()));
    // Neither member reaches the coordinator first.
    let others: Vec<u64> = (1..=3).filter(|&i| i != kc).collect();
    let a = c.node(others[0]).kafka_addr.unwrap().to_string();
    let b = c.node(others[1]).kafka_addr.unwrap().to_string();
    const N: usize = 200;
    let out = run_clients(
        &python,
        &[
            "group-spread",
            &a,
            &b,
            "kspread",
            KAFKA_GROUP,
            &N.to_string(),
        ],
    );
    let doc: Value = serde_json::from_str(&out).unwrap();
    let assigned = doc["assigned"].as_array().unwrap();
    assert_eq!(assigned.len(), 2);
    let mut values = Vec::new();
    for m in ["A", "B"] {
        let read = doc[m].as_array().unwrap();
        assert!(!read.is_empty(), "member {m} read records: {doc}");
        values.extend(read.iter().map(|r| r[2].as_str().unwrap().to_owned()));
    }
    values.sort();
    let len = values.len();
    values.dedup();
    assert_eq!(values.len(), len, "a record was read twice: {doc}");
    assert_eq!(len, N);
}
