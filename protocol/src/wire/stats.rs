//! Stats (key 9): the broker's counters, for operators and tests.

use serde::{Deserialize, Serialize};

/// Asks for every counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsRequest {}

/// One counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    /// Name, such as `fetch_bytes_sendfile`.
    pub name: String,
    /// Value since the broker started.
    pub value: u64,
}

/// The counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsResponse {
    /// Counters in a stable order.
    pub counters: Vec<Counter>,
}

impl StatsResponse {
    /// The value of a counter by name.
    pub fn get(&self, name: &str) -> Option<u64> {
        self.counters
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{assert_truncations_fail, check_all, round_trip};

    #[test]
    fn request_is_empty_and_round_trips() {
        let bytes = round_trip(&StatsRequest {});
        assert!(bytes.is_empty());
        assert_truncations_fail::<StatsRequest>(&bytes);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        let counters = StatsResponse {
            counters: vec![
                Counter {
                    name: "requests".into(),
                    value: 12,
                },
                Counter {
                    name: "fetch_bytes_sendfile".into(),
                    value: u64::MAX,
                },
            ],
        };
        check_all(&[StatsResponse { counters: vec![] }, counters.clone()]);
        assert_eq!(counters.get("requests"), Some(12));
        assert_eq!(counters.get("nope"), None);
    }
}
