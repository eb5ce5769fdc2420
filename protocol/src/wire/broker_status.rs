//! BrokerStatus (key 12): what a broker is and how it is doing, for
//! operators (`sluice broker status`).

use serde::{Deserialize, Serialize};

/// Asks for the broker's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatusRequest {}

/// The broker's status, as version 1 carries it: version 0's fields
/// ([`BrokerStatusResponseV0`]) then the Kafka listener and the node id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatusResponse {
    /// Version 0's fields.
    pub v0: BrokerStatusResponseV0,
    /// The Kafka-protocol listener (`HOST:PORT` as bound, or `none`).
    pub kafka_listen: String,
    /// This broker's id in its cluster file, or `None` for a broker
    /// running alone (`--cluster` not given).
    pub node_id: Option<u64>,
}

/// The broker's status, as version 0 carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatusResponseV0 {
    /// Version of the broker build (`CARGO_PKG_VERSION`).
    pub version: String,
    /// Milliseconds since the broker opened its data directory.
    pub uptime_ms: u64,
    /// Native protocol listen address (the bound one: never port 0).
    pub listen: String,
    /// Metrics endpoint (`HOST:PORT` as bound, or `none`).
    pub metrics_listen: String,
    /// Data directory.
    pub data_dir: String,
    /// Size of the file system holding the data directory, in bytes.
    pub disk_total_bytes: u64,
    /// Bytes of that file system available to the broker.
    pub disk_free_bytes: u64,
    /// Client connections open (this one included).
    pub connections_open: u64,
    /// Topics.
    pub topics: u32,
    /// Partitions over all topics.
    pub partitions: u32,
    /// Partitions offline.
    pub partitions_offline: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{assert_truncations_fail, check_all, round_trip};

    #[test]
    fn request_is_empty_and_round_trips() {
        let bytes = round_trip(&BrokerStatusRequest {});
        assert!(bytes.is_empty());
        assert_truncations_fail::<BrokerStatusRequest>(&bytes);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        let v0 = v0();
        check_all(std::slice::from_ref(&v0));
        let v1 = BrokerStatusResponse {
            v0: v0.clone(),
            kafka_listen: "127.0.0.1:9092".into(),
            node_id: Some(3),
        };
        check_all(&[
            v1.clone(),
            BrokerStatusResponse {
                kafka_listen: "none".into(),
                node_id: None,
                ..v1.clone()
            },
        ]);
        // Version 1 is version 0's bytes, then the two fields.
        let (old, new) = (round_trip(&v0), round_trip(&v1));
        assert_eq!(new[..old.len()], old[..]);
        assert_eq!(new[old.len()..], *b"\x0e127.0.0.1:9092\x01\x03");
    }

    fn v0() -> BrokerStatusResponseV0 {
        BrokerStatusResponseV0 {
            version: "0.1.0".into(),
            uptime_ms: 12_345,
            listen: "127.0.0.1:9292".into(),
            metrics_listen: "none".into(),
            data_dir: "/var/lib/sluice".into(),
            disk_total_bytes: 1 << 40,
            disk_free_bytes: u64::MAX,
            connections_open: 1,
            topics: 2,
            partitions: 7,
            partitions_offline: 0,
        }
    }
}
