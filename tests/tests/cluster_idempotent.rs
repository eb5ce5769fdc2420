//! The client library's idempotent producer across a partition failover on
//! a 3-node cluster: acks=all, records pipelined (several requests in
//! flight), the partition leader SIGKILLed mid-run. Every acknowledged
//! record is on the new leader exactly once, in the order sent, at the
//! offset it was acknowledged with.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::Duration;

use sluice_client::{Acks, Producer, ProducerConfig, ProducerRecord};
use sluice_tests::cluster::TestCluster;
use sluice_tests::read_partition;

const RECORDS: usize = 4000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_keeps_every_record_once_in_order_across_a_leader_kill() {
    let mut c = TestCluster::start(3);
    c.create_replicated("idem", 1, 3, Default::default()).await;
    c.wait_partition_leader(&[1, 2, 3], "idem", Duration::from_secs(30))
        .await;

    let brokers: Vec<String> = (1..=3).map(|i| c.node(i).addr.to_string()).collect();
    let producer = Producer::new(ProducerConfig {
        acks: Acks::All,
        idempotence: true,
        max_in_flight: 5,
        batch_bytes: 2048,
        linger: Duration::from_millis(1),
        delivery_timeout: Duration::from_secs(90),
        ..ProducerConfig::with_brokers(&brokers)
    });
    let mut deliveries = Vec::with_capacity(RECORDS);
    let mut killed = None;
    for i in 0..RECORDS {
        let value = format!("r{i:05}");
        deliveries.push(
            producer
                .send_record(ProducerRecord {
                    topic: "idem",
                    partition: Some(0),
                    value: Some(value.as_bytes()),
                    ..Default::default()
                })
                .await
                .unwrap(),
        );
        if i == RECORDS / 3 {
            // Let some of it be acknowledged by the first leader, then kill
            // it with requests in flight.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let leader = c
                .wait_partition_leader(&[1, 2, 3], "idem", Duration::from_secs(30))
                .await;
            c.kill(leader);
            killed = Some(leader);
        }
    }
    let killed = killed.unwrap();
    let mut acked = Vec::with_capacity(RECORDS);
    for (i, d) in deliveries.into_iter().enumerate() {
        let meta = tokio::time::timeout(Duration::from_secs(90), d)
            .await
            .expect("delivered in time")
            .unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        acked.push(meta.offset.unwrap());
    }
    producer.close().await;

    let survivors: Vec<u64> = (1..=3).filter(|&id| id != killed).collect();
    let leader = c
        .wait_partition_leader(&survivors, "idem", Duration::from_secs(30))
        .await;
    assert_ne!(leader, killed);
    let mut conn = c.node(leader).connect().await;
    let stored: Vec<(u64, String)> = read_partition(&mut conn, "idem", 0, 0)
        .await
        .into_iter()
        .map(|(o, v)| (o, String::from_utf8(v.to_vec()).unwrap()))
        .collect();
    let want: Vec<String> = (0..RECORDS).map(|i| format!("r{i:05}")).collect();
    let values: Vec<&String> = stored.iter().map(|(_, v)| v).collect();
    assert_eq!(values.len(), RECORDS, "every record exactly once");
    assert!(
        values.iter().zip(&want).all(|(a, b)| *a == b),
        "in the order sent"
    );
    for (i, (offset, _)) in stored.iter().enumerate() {
        assert_eq!(acked[i], *offset, "record {i} acknowledged where stored");
    }
}
