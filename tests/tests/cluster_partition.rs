//! Network faults between nodes (the broker's `raft-faults` transport):
//! a controller leader cut off from the others stops committing admin
//! changes, the majority elects a leader and goes on, and after the heal
//! every node converges.

use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_tests::cluster::{CONTROLLER_TIMEOUT_MS, TestCluster};
use sluice_tests::create_topic;

const WAIT: Duration = Duration::from_secs(30);

fn topic(name: &str) -> Vec<NewTopic> {
    vec![NewTopic {
        name: name.into(),
        partitions: 1,
        config: Default::default(),
        replication_factor: None,
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_controller_leader_stops_answering_and_the_majority_goes_on() {
    let c = TestCluster::start(3);
    let old = c.wait_for_leader(WAIT);
    assert!(
        c.node(old).log().contains("raft fault injection is on"),
        "the broker must be built with the raft-faults feature"
    );
    let majority: Vec<u64> = (1..=3).filter(|&i| i != old).collect();
    let mut on_old = c.node(old).connect().await;
    c.isolate(old);
    let new = c.wait_for_leader_among(&majority, WAIT);
    assert_ne!(new, old);

    // The cut-off node cannot commit: refused after the controller timeout.
    let started = Instant::now();
    let r = on_old
        .create_topics(topic("minority"))
        .await
        .expect("answer");
    assert_eq!(
        r.results[0].error_code,
        ErrorCode::ControllerUnavailable,
        "{r:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(CONTROLLER_TIMEOUT_MS / 2));

    // The majority side goes on.
    create_topic(
        &mut c.node(new).connect().await,
        "majority",
        1,
        Default::default(),
    )
    .await;
    assert!(c.topic(old, "majority").is_none());

    c.heal();
    c.wait_until(WAIT, "the healed node to converge", |c| {
        c.topic(old, "majority").is_some()
    });
    c.wait_for_leader(WAIT);
    for id in 1..=3 {
        assert!(c.topic(id, "minority").is_none(), "node {id}");
        assert_eq!(
            c.topic(id, "majority"),
            c.topic(new, "majority"),
            "node {id}"
        );
    }
}
