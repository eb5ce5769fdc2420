//! ElectLeaders on a broker without `--cluster`, by raw requests: it leads
//! every partition it has, so a preferred election is
//! `ELECTION_NOT_NEEDED` for each (named, or every partition when the
//! request names none), and so is an unclean one; a partition that does
//! not exist (past the count, negative, of an unknown topic) is
//! `UNKNOWN_TOPIC_OR_PARTITION`; a partition named twice is answered once;
//! an unknown election type is refused at the top (v1+), or per partition
//! in v0, which has no top-level error. The cluster side is in
//! `cluster_preferred_leaders.rs`.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::kafka::elect_leaders::{
    ELECTION_PREFERRED, ELECTION_UNCLEAN, ElectLeadersRequest, ElectLeadersResponse,
    ElectLeadersTopic,
};
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::call;
use sluice_tests::{TestBroker, create_topic};

/// Sends one ElectLeaders request; returns the top-level error and every
/// (topic, partition, code) answered, sorted.
fn elect(
    s: &mut TcpStream,
    version: i16,
    election_type: i8,
    named: Option<&[(&str, &[i32])]>,
) -> (i16, Vec<(String, i32, i16)>) {
    let mut req = ElectLeadersRequest {
        election_type,
        topic_partitions: named.map(|n| {
            n.iter()
                .map(|(t, ps)| ElectLeadersTopic {
                    topic: (*t).into(),
                    partitions: ps.to_vec(),
                })
                .collect()
        }),
        timeout_ms: 5000,
    };
    let r: ElectLeadersResponse = call(s, version, &mut req);
    let mut out: Vec<(String, i32, i16)> = r
        .replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result
                .iter()
                .map(|p| (t.topic.clone(), p.partition_id, p.error_code))
        })
        .collect();
    out.sort();
    (r.error_code, out)
}

#[test]
fn a_broker_alone_needs_no_election_and_refuses_what_does_not_exist() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "a", 2, TopicConfig::default()).await;
        create_topic(&mut c, "b", 1, TopicConfig::default()).await;
    });
    let s = &mut TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let not_needed = |t: &str, p| (t.to_owned(), p, code::ELECTION_NOT_NEEDED);
    let unknown = |t: &str, p| (t.to_owned(), p, code::UNKNOWN_TOPIC_OR_PARTITION);
    for v in 0..=2 {
        // Every partition.
        let (top, all) = elect(s, v, ELECTION_PREFERRED, None);
        assert_eq!(top, code::NONE);
        assert_eq!(
            all,
            [not_needed("a", 0), not_needed("a", 1), not_needed("b", 0)]
        );
        // Named ones, one twice, with some that do not exist.
        let named: &[(&str, &[i32])] = &[("a", &[1, 0, 1, 2, -1]), ("nope", &[0]), ("b", &[0])];
        let (top, some) = elect(s, v, ELECTION_PREFERRED, Some(named));
        assert_eq!(top, code::NONE);
        assert_eq!(
            some,
            [
                unknown("a", -1),
                not_needed("a", 0),
                not_needed("a", 1),
                unknown("a", 2),
                not_needed("b", 0),
                unknown("nope", 0),
            ]
        );
    }
    // Unclean (v1+): there is a leader, so none is needed.
    let (top, unclean) = elect(s, 2, ELECTION_UNCLEAN, Some(&[("a", &[0, 5])]));
    assert_eq!(top, code::NONE);
    assert_eq!(unclean, [not_needed("a", 0), unknown("a", 5)]);
    // Another type: refused at the top from v1.
    let (top, none) = elect(s, 1, 7, Some(&[("a", &[0])]));
    assert_eq!((top, none.len()), (code::INVALID_REQUEST, 0));
    // The connection still serves.
    let (top, _) = elect(s, 2, ELECTION_PREFERRED, None);
    assert_eq!(top, code::NONE);
}

/// Entries are counted as sent, before any is looked at: more than
/// `max_partitions_per_request` (repeats included) is refused at the top,
/// nothing elected; as many is answered.
#[test]
fn more_entries_than_the_request_limit_are_refused_before_they_are_read() {
    let config = std::env::temp_dir().join(format!("elect-limit-{}.toml", std::process::id()));
    std::fs::write(&config, "max_partitions_per_request = 10\n").unwrap();
    let b = TestBroker::start_with_args(&["--config", &config.display().to_string()]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "a", 1, TopicConfig::default()).await;
    });
    let s = &mut TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let ten = [0; 10];
    let (top, answered) = elect(s, 2, ELECTION_PREFERRED, Some(&[("a", &ten)]));
    assert_eq!(top, code::NONE);
    assert_eq!(answered, [("a".to_owned(), 0, code::ELECTION_NOT_NEEDED)]);
    let eleven = [0; 11];
    let (top, none) = elect(s, 2, ELECTION_PREFERRED, Some(&[("a", &eleven)]));
    assert_eq!((top, none.len()), (code::INVALID_REQUEST, 0));
    // A topic named with no partitions counts as one.
    let (top, _) = elect(s, 1, ELECTION_PREFERRED, Some(&[("a", &ten), ("b", &[])]));
    assert_eq!(top, code::INVALID_REQUEST);
}
