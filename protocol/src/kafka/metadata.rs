//! Metadata (key 3), versions 0–12.

use super::io::Io;
use super::{ApiKey, KafkaError, Message, i32s};

/// One topic asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataRequestTopic {
    /// Topic id (v10+; all zero when asked for by name).
    pub topic_id: [u8; 16],
    /// Name (nullable from v10).
    pub name: Option<String>,
}

/// Metadata request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataRequest {
    /// Topics, or null for all (v0: an empty list means all, and decodes
    /// as null).
    pub topics: Option<Vec<MetadataRequestTopic>>,
    /// Whether to create missing topics (v4+).
    pub allow_auto_topic_creation: bool,
    /// v8–10.
    pub include_cluster_authorized_operations: bool,
    /// v8+.
    pub include_topic_authorized_operations: bool,
}

impl Message for MetadataRequest {
    const API: ApiKey = ApiKey::Metadata;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        let topic = |s: &mut S, t: &mut MetadataRequestTopic| {
            if v >= 10 {
                s.uuid(&mut t.topic_id)?;
                s.nullable_string(&mut t.name)?;
            } else {
                let mut name = t.name.take().unwrap_or_default();
                s.string(&mut name)?;
                t.name = Some(name);
            }
            s.tags()
        };
        if v == 0 {
            let mut all = self.topics.take().unwrap_or_default();
            s.array(&mut all, topic)?;
            self.topics = (!all.is_empty()).then_some(all);
        } else {
            s.nullable_array(&mut self.topics, topic)?;
        }
        if v >= 4 {
            s.bool(&mut self.allow_auto_topic_creation)?;
        }
        if (8..=10).contains(&v) {
            s.bool(&mut self.include_cluster_authorized_operations)?;
        }
        if v >= 8 {
            s.bool(&mut self.include_topic_authorized_operations)?;
        }
        s.tags()
    }
}

/// A broker in a Metadata response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataBroker {
    /// Node id.
    pub node_id: i32,
    /// Host clients connect to.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Rack.
    pub rack: Option<String>,
}

/// A partition in a Metadata response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataPartition {
    /// Error code.
    pub error_code: i16,
    /// Index.
    pub partition_index: i32,
    /// Leader node.
    pub leader_id: i32,
    /// Leader epoch (v7+).
    pub leader_epoch: i32,
    /// Replica nodes.
    pub replica_nodes: Vec<i32>,
    /// In-sync replica nodes.
    pub isr_nodes: Vec<i32>,
    /// Offline replicas (v5+).
    pub offline_replicas: Vec<i32>,
}

/// A topic in a Metadata response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataTopic {
    /// Error code.
    pub error_code: i16,
    /// Name.
    pub name: Option<String>,
    /// Topic id (v10+).
    pub topic_id: [u8; 16],
    /// Internal topic (v1+).
    pub is_internal: bool,
    /// Partitions.
    pub partitions: Vec<MetadataPartition>,
    /// Authorized operations (v8+).
    pub topic_authorized_operations: i32,
}

/// Metadata response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataResponse {
    /// Throttle time (v3+).
    pub throttle_time_ms: i32,
    /// Brokers.
    pub brokers: Vec<MetadataBroker>,
    /// Cluster id (v2+).
    pub cluster_id: Option<String>,
    /// Controller (v1+).
    pub controller_id: i32,
    /// Topics.
    pub topics: Vec<MetadataTopic>,
    /// v8–10.
    pub cluster_authorized_operations: i32,
}

impl Message for MetadataResponse {
    const API: ApiKey = ApiKey::Metadata;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 3 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.array(&mut self.brokers, |s, b| {
            s.i32(&mut b.node_id)?;
            s.string(&mut b.host)?;
            s.i32(&mut b.port)?;
            if v >= 1 {
                s.nullable_string(&mut b.rack)?;
            }
            s.tags()
        })?;
        if v >= 2 {
            s.nullable_string(&mut self.cluster_id)?;
        }
        if v >= 1 {
            s.i32(&mut self.controller_id)?;
        }
        s.array(&mut self.topics, |s, t| {
            s.i16(&mut t.error_code)?;
            if v >= 12 {
                s.nullable_string(&mut t.name)?;
            } else {
                let mut name = t.name.take().unwrap_or_default();
                s.string(&mut name)?;
                t.name = Some(name);
            }
            if v >= 10 {
                s.uuid(&mut t.topic_id)?;
            }
            if v >= 1 {
                s.bool(&mut t.is_internal)?;
            }
            s.array(&mut t.partitions, |s, p| {
                s.i16(&mut p.error_code)?;
                s.i32(&mut p.partition_index)?;
                s.i32(&mut p.leader_id)?;
                if v >= 7 {
                    s.i32(&mut p.leader_epoch)?;
                }
                i32s(s, &mut p.replica_nodes)?;
                i32s(s, &mut p.isr_nodes)?;
                if v >= 5 {
                    i32s(s, &mut p.offline_replicas)?;
                }
                s.tags()
            })?;
            if v >= 8 {
                s.i32(&mut t.topic_authorized_operations)?;
            }
            s.tags()
        })?;
        if (8..=10).contains(&v) {
            s.i32(&mut self.cluster_authorized_operations)?;
        }
        s.tags()
    }
}
