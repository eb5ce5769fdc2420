//! Consumer-group payloads that the broker treats as opaque bytes.
//!
//! - [`consumer_protocol`] — Kafka's ConsumerProtocol `Subscription` and
//!   `Assignment`, the bytes members of a `"consumer"` group put in JoinGroup
//!   metadata and SyncGroup assignments. Byte layout: `docs/protocol.md`.

pub mod consumer_protocol;
