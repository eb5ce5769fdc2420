//! BrokerStatus (key 12): what a broker is and how it is doing, for
//! operators (`sluice broker status`).

use serde::{Deserialize, Serialize};

/// Asks for the broker's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatusRequest {}

/// The broker's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatusResponse {
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
        check_all(&[BrokerStatusResponse {
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
        }]);
    }
}
