//! OffsetForLeaderEpoch on the Kafka listener (what a consumer asks after
//! a leader change, KIP-320): an epoch at or below the partition's current
//! one ends at the log end offset, a later one is answered with the
//! current epoch, an undefined one with -1 and -1; unknown topics and
//! partitions are `UNKNOWN_TOPIC_OR_PARTITION`. (The cluster path, across
//! a leader kill, is exercised by librdkafka's consumer in
//! `kafka_cluster.rs`.)
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::kafka::api_versions::ApiVersionsResponse;
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::kafka::offset_for_leader_epoch::{
    EpochQuery, EpochQueryTopic, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
    UNDEFINED,
};
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::api_versions_request;
use sluice_tests::kafka::call;
use sluice_tests::{TestBroker, batch_of, create_topic};

#[test]
fn epochs_end_at_the_log_end() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "ep", 2, TopicConfig::default()).await;
        let r = c
            .produce(
                Acks::Leader,
                5000,
                &[("ep", 1, &batch_of(&["a", "b", "c", "d", "e"]))],
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            r.partitions[0].error_code,
            sluice_protocol::wire::ErrorCode::None
        );
    });
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let r: ApiVersionsResponse = call(&mut s, 3, &mut api_versions_request());
    let listed = r
        .api_keys
        .iter()
        .find(|k| k.api_key == 23)
        .expect("key 23 listed");
    assert_eq!((listed.min_version, listed.max_version), (0, 4));

    let ask = |topic: &str, partition: i32, leader_epoch: i32| EpochQueryTopic {
        topic: topic.to_owned(),
        partitions: vec![EpochQuery {
            partition,
            current_leader_epoch: 0,
            leader_epoch,
        }],
    };
    for v in 0..=4 {
        let mut req = OffsetForLeaderEpochRequest {
            replica_id: -1,
            topics: vec![
                ask("ep", 1, 0),
                ask("ep", 1, 9),
                ask("ep", 0, 0),
                ask("ep", 1, UNDEFINED),
                ask("nope", 0, 0),
                ask("ep", 7, 0),
                ask("ep", -1, 0),
            ],
        };
        let r: OffsetForLeaderEpochResponse = call(&mut s, v, &mut req);
        let got: Vec<(i16, i32, i64)> = r
            .topics
            .iter()
            .map(|t| {
                let p = &t.partitions[0];
                (p.error_code, p.leader_epoch, p.end_offset)
            })
            .collect();
        // Before v1 the answer carries no epoch (read back as -1).
        let e0 = if v >= 1 { 0 } else { UNDEFINED };
        assert_eq!(
            got,
            [
                (code::NONE, e0, 5),
                (code::NONE, e0, 5),
                (code::NONE, e0, 0),
                (code::NONE, UNDEFINED, -1),
                (code::UNKNOWN_TOPIC_OR_PARTITION, UNDEFINED, -1),
                (code::UNKNOWN_TOPIC_OR_PARTITION, UNDEFINED, -1),
                (code::UNKNOWN_TOPIC_OR_PARTITION, UNDEFINED, -1),
            ],
            "v{v}"
        );
        assert_eq!(r.topics[4].topic, "nope");
    }
}
