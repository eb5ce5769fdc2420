//! Consumer groups: members share a topic's partitions.
//!
//! - [`assignor`] — the leader's pure partition assignors (`range`,
//!   `roundrobin`, `cooperative-sticky`).

pub mod assignor;
