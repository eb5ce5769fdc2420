//! Topic ids on the Kafka listener (KIP-516): CreateTopics, Metadata and
//! DeleteTopics tell a topic's id, Fetch from version 13 names topics by
//! it, and the id belongs to one incarnation of the topic: the same after a
//! restart, and on every node of a cluster, new when the topic is deleted
//! and created again. Clients that fetch by id (librdkafka from 2.4,
//! `@platformatic/kafka`) read nothing when ids are all zero.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use sluice_client::Acks;
use sluice_protocol::kafka::admin::{
    CreatableTopic, CreateTopicsRequest, CreateTopicsResponse, DeleteTopicState,
    DeleteTopicsRequest, DeleteTopicsResponse,
};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::fetch::{FetchPartition, FetchRequest, FetchResponse, FetchTopic};
use sluice_protocol::kafka::metadata::{MetadataRequest, MetadataRequestTopic, MetadataResponse};
use sluice_protocol::kafka::{ApiKey, decode};
use sluice_tests::cluster::TestCluster;
use sluice_tests::kafka::{call, read_response, request_frame};
use sluice_tests::{TestBroker, batch_of, decode_records};

type Id = [u8; 16];
/// A topic's answer to a Fetch: its id, and per partition (error, values).
type Answered = (Id, Vec<(i16, Vec<Bytes>)>);

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Creates `name` through CreateTopics v7 and returns the id it answers.
fn create(s: &mut TcpStream, name: &str, partitions: i32, replication_factor: i16) -> Id {
    let mut req = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor,
            ..CreatableTopic::default()
        }],
        timeout_ms: 10_000,
        validate_only: false,
    };
    let r: CreateTopicsResponse = call(s, 7, &mut req);
    let t = &r.topics[0];
    assert_eq!(t.error_code, code::NONE, "{t:?}");
    t.topic_id
}

/// Metadata v12 for the given topics (by name or by id): (error, name,
/// id) per topic answered.
fn metadata(
    s: &mut TcpStream,
    topics: Vec<MetadataRequestTopic>,
) -> Vec<(i16, Option<String>, Id)> {
    let mut req = MetadataRequest {
        topics: Some(topics),
        ..MetadataRequest::default()
    };
    let r: MetadataResponse = call(s, 12, &mut req);
    r.topics
        .into_iter()
        .map(|t| (t.error_code, t.name, t.topic_id))
        .collect()
}

fn by_name(name: &str) -> MetadataRequestTopic {
    MetadataRequestTopic {
        topic_id: [0; 16],
        name: Some(name.into()),
    }
}

fn by_id(id: Id) -> MetadataRequestTopic {
    MetadataRequestTopic {
        topic_id: id,
        name: None,
    }
}

/// The id Metadata v12 gives topic `name` (asserting it exists).
fn id_of(s: &mut TcpStream, name: &str) -> Id {
    let t = metadata(s, vec![by_name(name)]).remove(0);
    assert_eq!(t.0, code::NONE, "{name}: {t:?}");
    t.2
}

/// Fetches partition 0 of each topic id at `version` (with a tagged
/// `ReplicaState` from version 15, as Kafka 3.5+ clients may send) and
/// returns each topic's answer.
fn fetch_by_id(addr: SocketAddr, version: i16, ids: &[Id]) -> Vec<Answered> {
    fetch_by_id_waiting(addr, version, ids, 0)
}

/// [`fetch_by_id`] waiting up to `max_wait_ms` for a byte.
fn fetch_by_id_waiting(
    addr: SocketAddr,
    version: i16,
    ids: &[Id],
    max_wait_ms: i32,
) -> Vec<Answered> {
    let mut req = FetchRequest {
        replica_id: if version <= 14 { -1 } else { 0 },
        max_wait_ms,
        min_bytes: 1,
        max_bytes: 1 << 20,
        session_epoch: -1,
        topics: ids
            .iter()
            .map(|&topic_id| FetchTopic {
                topic: String::new(),
                topic_id,
                partitions: vec![FetchPartition {
                    partition: 0,
                    current_leader_epoch: -1,
                    fetch_offset: 0,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1 << 20,
                }],
            })
            .collect(),
        ..FetchRequest::default()
    };
    let mut frame = request_frame(version, 7, &mut req, &[]);
    if version >= 15 {
        // The request's own tag buffer is its last byte (empty): replace it
        // with tag 1, ReplicaState { replica_id -1, replica_epoch -1 }.
        assert_eq!(frame.pop(), Some(0));
        frame.extend_from_slice(&[1, 1, 13]);
        frame.extend_from_slice(&(-1i32).to_be_bytes());
        frame.extend_from_slice(&(-1i64).to_be_bytes());
        frame.push(0);
        let len = (frame.len() - 4) as u32;
        frame[..4].copy_from_slice(&len.to_be_bytes());
    }
    let mut s = connect(addr);
    s.write_all(&frame).unwrap();
    let (id, body) = read_response(&mut s, ApiKey::Fetch.response_header_version(version));
    assert_eq!(id, 7);
    let r: FetchResponse = decode(&body, version).unwrap();
    assert_eq!(r.error_code, code::NONE);
    r.topics
        .into_iter()
        .map(|t| {
            let parts = t
                .partitions
                .into_iter()
                .map(|p| {
                    let records = p
                        .records
                        .map(|r| Bytes::copy_from_slice(&body[r.start..r.start + r.len]))
                        .unwrap_or_default();
                    let values = decode_records(&records, 0)
                        .into_iter()
                        .map(|(_, v)| v)
                        .collect();
                    (p.error_code, values)
                })
                .collect();
            (t.topic_id, parts)
        })
        .collect()
}

fn delete_by_id(s: &mut TcpStream, id: Id) -> (i16, Option<String>, Id) {
    let mut req = DeleteTopicsRequest {
        topics: vec![DeleteTopicState {
            name: None,
            topic_id: id,
        }],
        timeout_ms: 10_000,
    };
    let r: DeleteTopicsResponse = call(s, 6, &mut req);
    let t = &r.responses[0];
    (t.error_code, t.name.clone(), t.topic_id)
}

#[test]
fn a_topic_id_names_one_incarnation_and_fetch_by_id_serves_it() {
    let mut b = TestBroker::start();
    let kafka = b.kafka_addr.unwrap();
    let mut s = connect(kafka);
    let id = create(&mut s, "ids", 1, 1);
    assert_ne!(id, [0; 16]);
    assert_eq!(id_of(&mut s, "ids"), id, "Metadata tells the created id");
    let other = create(&mut s, "other", 1, 1);
    assert_ne!(other, id);

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        c.produce(
            Acks::Leader,
            5000,
            &[("ids", 0, &batch_of(&["a", "b", "c"]))],
        )
        .await
        .unwrap();
    });
    let unknown: Id = [0x5a; 16];
    let want = vec![Bytes::from("a"), Bytes::from("b"), Bytes::from("c")];
    for version in [13, 14, 15, 16, 17] {
        let got = fetch_by_id(kafka, version, &[unknown, id, other]);
        assert_eq!(got.len(), 3, "v{version}");
        assert_eq!(got[0], (unknown, vec![(code::UNKNOWN_TOPIC_ID, vec![])]));
        assert_eq!(got[1], (id, vec![(code::NONE, want.clone())]), "v{version}");
        assert_eq!(got[2], (other, vec![(code::NONE, vec![])]), "v{version}");
    }

    // Metadata by id.
    let found = metadata(&mut s, vec![by_id(id), by_id(unknown)]);
    assert!(
        found.contains(&(code::NONE, Some("ids".into()), id)),
        "{found:?}"
    );
    assert!(
        found.contains(&(code::UNKNOWN_TOPIC_ID, None, unknown)),
        "{found:?}"
    );

    // The id is kept across a restart.
    drop(s);
    b.stop();
    b.restart();
    let kafka = b.kafka_addr.unwrap();
    let mut s = connect(kafka);
    assert_eq!(id_of(&mut s, "ids"), id);
    assert_eq!(id_of(&mut s, "other"), other);

    // Deleted by id; created again, the topic has a new id, and the old id
    // names nothing.
    assert_eq!(
        delete_by_id(&mut s, id),
        (code::NONE, Some("ids".into()), id)
    );
    assert_eq!(delete_by_id(&mut s, id).0, code::UNKNOWN_TOPIC_ID);
    let again = create(&mut s, "ids", 1, 1);
    assert_ne!(again, id);
    assert_eq!(id_of(&mut s, "ids"), again);
    let got = fetch_by_id(kafka, 13, &[id, again]);
    assert_eq!(got[0], (id, vec![(code::UNKNOWN_TOPIC_ID, vec![])]));
    assert_eq!(got[1], (again, vec![(code::NONE, vec![])]));
}

/// A fetch by topic id waiting for records when its topic is deleted is
/// answered `UNKNOWN_TOPIC_ID`, as every later fetch of that id is (it was
/// `UNKNOWN_TOPIC_OR_PARTITION`, the code of a name).
#[test]
fn a_fetch_by_id_waiting_when_its_topic_is_deleted_answers_unknown_topic_id() {
    let b = TestBroker::start();
    let kafka = b.kafka_addr.unwrap();
    let mut s = connect(kafka);
    let id = create(&mut s, "fleeting", 1, 1);
    let waiting = std::thread::spawn(move || fetch_by_id_waiting(kafka, 13, &[id], 8_000));
    std::thread::sleep(Duration::from_millis(500));
    let mut req = DeleteTopicsRequest {
        topics: vec![DeleteTopicState {
            name: Some("fleeting".into()),
            topic_id: [0; 16],
        }],
        timeout_ms: 10_000,
    };
    let r: DeleteTopicsResponse = call(&mut s, 6, &mut req);
    assert_eq!(r.responses[0].error_code, code::NONE);
    let got = waiting.join().unwrap();
    assert_eq!(got, vec![(id, vec![(code::UNKNOWN_TOPIC_ID, vec![])])]);
    assert_eq!(got, fetch_by_id(kafka, 13, &[id]), "a later fetch");
}

/// Every node of a cluster answers with the same id for a topic, also
/// after a restart; a topic created again under the same name gets a new
/// one everywhere.
#[test]
fn every_node_of_a_cluster_tells_the_same_topic_id() {
    let mut c = TestCluster::start_with_kafka(3);
    c.wait_for_leader(Duration::from_secs(20));
    let addr = |c: &TestCluster, id: u64| c.node(id).kafka_addr.unwrap();
    // Each node applies the controller's changes shortly after the node
    // that made them answers: wait until every node tells `want`.
    let assert_agreed = |c: &TestCluster, name: &str, want: Id| {
        let mut seen = Vec::new();
        for _ in 0..100 {
            seen = (1..=3)
                .map(|n| metadata(&mut connect(addr(c, n)), vec![by_name(name)]).remove(0))
                .collect();
            if seen.iter().all(|t| t.0 == code::NONE && t.2 == want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nodes disagree on {name}: want {want:?}, saw {seen:?}");
    };
    let mut s = connect(addr(&c, 1));
    let id = create(&mut s, "shared", 3, 3);
    assert_ne!(id, [0; 16]);
    assert_agreed(&c, "shared", id);

    c.kill(2);
    c.restart(2);
    assert_agreed(&c, "shared", id);

    let mut s = connect(addr(&c, 3));
    assert_eq!(delete_by_id(&mut s, id).0, code::NONE);
    let again = create(&mut s, "shared", 3, 3);
    assert_ne!(again, id);
    assert_agreed(&c, "shared", again);

    // A topic with one replica: the node holding it serves a fetch by id,
    // the two others know the id too and name the partition's leader as
    // elsewhere (never UNKNOWN_TOPIC_ID).
    let single = create(&mut s, "single", 1, 1);
    assert_agreed(&c, "single", single);
    // Until the partition's group has elected its (only) leader, every node
    // answers NOT_LEADER_OR_FOLLOWER (Kafka's answer on the data path when
    // there is no leader); then the one holding it serves the fetch.
    let mut codes = Vec::new();
    for _ in 0..100 {
        codes = (1..=3)
            .map(|n| fetch_by_id(addr(&c, n), 13, &[single])[0].1[0].0)
            .collect();
        if codes.contains(&code::NONE) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    codes.sort_unstable();
    assert_eq!(
        codes,
        vec![
            code::NONE,
            code::NOT_LEADER_OR_FOLLOWER,
            code::NOT_LEADER_OR_FOLLOWER
        ]
    );
}

/// A replica that knows no leader (its leader and the other replica were
/// killed) answers a Fetch with `NOT_LEADER_OR_FOLLOWER`, as Kafka does,
/// never `LEADER_NOT_AVAILABLE`: kafka-python's consumer raises any code
/// but the few Kafka sends there to the application.
#[test]
fn a_replica_that_knows_no_leader_answers_fetch_with_not_leader_or_follower() {
    let mut c = TestCluster::start_with_kafka(3);
    c.wait_for_leader(Duration::from_secs(20));
    let addr = |c: &TestCluster, id: u64| c.node(id).kafka_addr.unwrap();
    let id = create(&mut connect(addr(&c, 1)), "lost", 1, 3);
    let mut leader = None;
    for _ in 0..100 {
        leader = (1..=3).find(|&n| fetch_by_id(addr(&c, n), 13, &[id])[0].1[0].0 == code::NONE);
        if leader.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let leader = leader.expect("the partition's group elects a leader");
    let others: Vec<u64> = (1..=3).filter(|&n| n != leader).collect();
    c.kill(leader);
    c.kill(others[0]);
    let survivor = others[1];
    // Through the election timeouts and after: never a leader, never 5.
    let seen: Vec<i16> = (0..30)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            fetch_by_id(addr(&c, survivor), 13, &[id])[0].1[0].0
        })
        .collect();
    assert!(
        seen.iter().all(|&e| e == code::NOT_LEADER_OR_FOLLOWER),
        "{seen:?}"
    );
}

/// DeleteTopics entries refused as Kafka's controller refuses them
/// (`INVALID_REQUEST`, nothing deleted): a name with an id (a stale id
/// deleted the topic that now has the name), neither, a name or an id given
/// twice (answered once: librdkafka refuses an answer naming a topic
/// twice); a topic named by one entry and given by its id in another is
/// refused, answered once (at the name, with its id) and kept; the others
/// go on.
#[test]
fn delete_topics_entries_that_name_a_topic_ambiguously_are_refused() {
    let b = TestBroker::start();
    let mut s = connect(b.kafka_addr.unwrap());
    let victim = create(&mut s, "victim", 1, 1);
    let twice = create(&mut s, "twice", 1, 1);
    let both = create(&mut s, "both", 1, 1);
    let gone = create(&mut s, "gone", 1, 1);
    let thrice = create(&mut s, "thrice", 1, 1);
    let stale: Id = [5; 16];
    let entry = |name: Option<&str>, topic_id: Id| DeleteTopicState {
        name: name.map(str::to_owned),
        topic_id,
    };
    let mut req = DeleteTopicsRequest {
        topics: vec![
            entry(Some("victim"), stale),
            entry(None, [0; 16]),
            entry(Some("twice"), [0; 16]),
            entry(Some("twice"), [0; 16]),
            entry(None, both),
            entry(Some("both"), [0; 16]),
            entry(None, gone),
            entry(Some("thrice"), [0; 16]),
            entry(None, thrice),
            entry(None, thrice),
        ],
        timeout_ms: 10_000,
    };
    let r: DeleteTopicsResponse = call(&mut s, 6, &mut req);
    let got: Vec<(i16, Option<&str>)> = r
        .responses
        .iter()
        .map(|t| (t.error_code, t.error_message.as_deref()))
        .collect();
    let invalid = |why| (code::INVALID_REQUEST, Some(why));
    assert_eq!(
        got,
        [
            invalid("You may not specify both topic name and topic id."),
            invalid("Neither topic name nor id were specified."),
            invalid("Duplicate topic name."),
            invalid("The provided topic name maps to an ID that was already supplied."),
            (code::NONE, None),
            invalid("The provided topic name maps to an ID that was already supplied."),
            invalid("Duplicate topic id."),
        ],
        "{r:?}"
    );
    assert_eq!(r.responses[0].topic_id, stale, "the id asked is echoed");
    assert_eq!(
        (r.responses[3].name.as_deref(), r.responses[3].topic_id),
        (Some("both"), both),
        "named with its id"
    );
    assert_eq!(
        (r.responses[4].name.as_deref(), r.responses[4].topic_id),
        (Some("gone"), gone)
    );
    assert_eq!(id_of(&mut s, "victim"), victim, "kept");
    assert_eq!(id_of(&mut s, "twice"), twice, "kept");
    assert_eq!(id_of(&mut s, "both"), both, "kept");
    assert_eq!(id_of(&mut s, "thrice"), thrice, "kept");
    let left: Vec<(i16, Option<String>, Id)> = metadata(&mut s, vec![by_name("gone")]);
    assert!(
        left.iter()
            .all(|(e, _, _)| *e == code::UNKNOWN_TOPIC_OR_PARTITION),
        "{left:?}"
    );
}
