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
