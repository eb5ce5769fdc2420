//! Admin APIs: CreateTopics (key 19, versions 2–7), DeleteTopics (key 20,
//! versions 1–6), DescribeConfigs (key 32, versions 0–4) and
//! InitProducerId (key 22, versions 0–4).

use super::io::Io;
use super::{ApiKey, KafkaError, Message, i32s};

/// A config entry (name, nullable value).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
}

/// A manual replica assignment (refused: one broker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Partition index.
    pub partition_index: i32,
    /// Brokers.
    pub broker_ids: Vec<i32>,
}

/// A topic to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatableTopic {
    /// Name.
    pub name: String,
    /// Partitions (-1: the broker's default).
    pub num_partitions: i32,
    /// Replication factor (-1 or 1).
    pub replication_factor: i16,
    /// Manual assignments.
    pub assignments: Vec<Assignment>,
    /// Topic configs.
    pub configs: Vec<ConfigEntry>,
}

/// CreateTopics request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTopicsRequest {
    /// Topics.
    pub topics: Vec<CreatableTopic>,
    /// Timeout.
    pub timeout_ms: i32,
    /// Only validate.
    pub validate_only: bool,
}

impl Message for CreateTopicsRequest {
    const API: ApiKey = ApiKey::CreateTopics;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            s.i32(&mut t.num_partitions)?;
            s.i16(&mut t.replication_factor)?;
            s.array(&mut t.assignments, |s, a| {
                s.i32(&mut a.partition_index)?;
                i32s(s, &mut a.broker_ids)?;
                s.tags()
            })?;
            s.array(&mut t.configs, |s, c| {
                s.string(&mut c.name)?;
                s.nullable_string(&mut c.value)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.i32(&mut self.timeout_ms)?;
        s.bool(&mut self.validate_only)?;
        s.tags()
    }
}

/// A config of a created topic (v5+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedConfig {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Read-only.
    pub read_only: bool,
    /// Source.
    pub config_source: i8,
    /// Sensitive.
    pub is_sensitive: bool,
}

/// One topic's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreatedTopic {
    /// Name.
    pub name: String,
    /// Topic id (v7+).
    pub topic_id: [u8; 16],
    /// Error code.
    pub error_code: i16,
    /// Error message.
    pub error_message: Option<String>,
    /// Partitions (v5+).
    pub num_partitions: i32,
    /// Replication factor (v5+).
    pub replication_factor: i16,
    /// Configs (v5+).
    pub configs: Option<Vec<CreatedConfig>>,
}

/// CreateTopics response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateTopicsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Topics.
    pub topics: Vec<CreatedTopic>,
}

impl Message for CreateTopicsResponse {
    const API: ApiKey = ApiKey::CreateTopics;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.topics, |s, t| {
            s.string(&mut t.name)?;
            if v >= 7 {
                s.uuid(&mut t.topic_id)?;
            }
            s.i16(&mut t.error_code)?;
            s.nullable_string(&mut t.error_message)?;
            if v >= 5 {
                s.i32(&mut t.num_partitions)?;
                s.i16(&mut t.replication_factor)?;
                s.nullable_array(&mut t.configs, |s, c| {
                    s.string(&mut c.name)?;
                    s.nullable_string(&mut c.value)?;
                    s.bool(&mut c.read_only)?;
                    s.i8(&mut c.config_source)?;
                    s.bool(&mut c.is_sensitive)?;
                    s.tags()
                })?;
            }
            s.tags()
        })?;
        s.tags()
    }
}

/// A topic to delete (v6+ by name or by id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteTopicState {
    /// Name.
    pub name: Option<String>,
    /// Topic id (v6+).
    pub topic_id: [u8; 16],
}

/// DeleteTopics request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteTopicsRequest {
    /// Topics (names before v6).
    pub topics: Vec<DeleteTopicState>,
    /// Timeout.
    pub timeout_ms: i32,
}

impl Message for DeleteTopicsRequest {
    const API: ApiKey = ApiKey::DeleteTopics;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.topics, |s, t| {
            if v >= 6 {
                s.nullable_string(&mut t.name)?;
                s.uuid(&mut t.topic_id)?;
                s.tags()
            } else {
                let mut name = t.name.take().unwrap_or_default();
                s.string(&mut name)?;
                t.name = Some(name);
                Ok(())
            }
        })?;
        s.i32(&mut self.timeout_ms)?;
        s.tags()
    }
}

/// One topic's deletion outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedTopic {
    /// Name.
    pub name: Option<String>,
    /// Topic id (v6+).
    pub topic_id: [u8; 16],
    /// Error code.
    pub error_code: i16,
    /// Error message (v5+).
    pub error_message: Option<String>,
}

/// DeleteTopics response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteTopicsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Topics.
    pub responses: Vec<DeletedTopic>,
}

impl Message for DeleteTopicsResponse {
    const API: ApiKey = ApiKey::DeleteTopics;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.responses, |s, t| {
            if v >= 6 {
                s.nullable_string(&mut t.name)?;
                s.uuid(&mut t.topic_id)?;
            } else {
                let mut name = t.name.take().unwrap_or_default();
                s.string(&mut name)?;
                t.name = Some(name);
            }
            s.i16(&mut t.error_code)?;
            if v >= 5 {
                s.nullable_string(&mut t.error_message)?;
            }
            s.tags()
        })?;
        s.tags()
    }
}

/// Resource type of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// Resource type of a broker.
pub const RESOURCE_BROKER: i8 = 4;
/// Resource type of a consumer group (KIP-848's group configs).
pub const RESOURCE_GROUP: i8 = 32;

/// One resource whose configs are wanted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsResource {
    /// Resource type.
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: String,
    /// Keys, or null for all.
    pub configuration_keys: Option<Vec<String>>,
}

/// DescribeConfigs request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsRequest {
    /// Resources.
    pub resources: Vec<DescribeConfigsResource>,
    /// v1+.
    pub include_synonyms: bool,
    /// v3+.
    pub include_documentation: bool,
}

impl Message for DescribeConfigsRequest {
    const API: ApiKey = ApiKey::DescribeConfigs;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.resources, |s, r| {
            s.i8(&mut r.resource_type)?;
            s.string(&mut r.resource_name)?;
            s.nullable_array(&mut r.configuration_keys, |s, k| s.string(k))?;
            s.tags()
        })?;
        if v >= 1 {
            s.bool(&mut self.include_synonyms)?;
        }
        if v >= 3 {
            s.bool(&mut self.include_documentation)?;
        }
        s.tags()
    }
}

/// A synonym of a config (v1+; none are sent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Source.
    pub source: i8,
}

/// One config described.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribedConfig {
    /// Name.
    pub name: String,
    /// Value.
    pub value: Option<String>,
    /// Read-only.
    pub read_only: bool,
    /// Default (v0 only).
    pub is_default: bool,
    /// Source (v1+): 1 topic config, 5 default.
    pub config_source: i8,
    /// Sensitive.
    pub is_sensitive: bool,
    /// Synonyms (v1+).
    pub synonyms: Vec<ConfigSynonym>,
    /// Type (v3+).
    pub config_type: i8,
    /// Documentation (v3+).
    pub documentation: Option<String>,
}

/// One resource's configs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsResult {
    /// Error code.
    pub error_code: i16,
    /// Error message.
    pub error_message: Option<String>,
    /// Resource type.
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: String,
    /// Configs.
    pub configs: Vec<DescribedConfig>,
}

/// DescribeConfigs response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeConfigsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Results.
    pub results: Vec<DescribeConfigsResult>,
}

impl Message for DescribeConfigsResponse {
    const API: ApiKey = ApiKey::DescribeConfigs;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.results, |s, r| {
            s.i16(&mut r.error_code)?;
            s.nullable_string(&mut r.error_message)?;
            s.i8(&mut r.resource_type)?;
            s.string(&mut r.resource_name)?;
            s.array(&mut r.configs, |s, c| {
                s.string(&mut c.name)?;
                s.nullable_string(&mut c.value)?;
                s.bool(&mut c.read_only)?;
                if v == 0 {
                    s.bool(&mut c.is_default)?;
                } else {
                    s.i8(&mut c.config_source)?;
                }
                s.bool(&mut c.is_sensitive)?;
                if v >= 1 {
                    s.array(&mut c.synonyms, |s, y| {
                        s.string(&mut y.name)?;
                        s.nullable_string(&mut y.value)?;
                        s.i8(&mut y.source)?;
                        s.tags()
                    })?;
                }
                if v >= 3 {
                    s.i8(&mut c.config_type)?;
                    s.nullable_string(&mut c.documentation)?;
                }
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}

/// InitProducerId request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// Transactional id (transactions are not served: must be null).
    pub transactional_id: Option<String>,
    /// Transaction timeout.
    pub transaction_timeout_ms: i32,
    /// Existing producer id (v3+).
    pub producer_id: i64,
    /// Existing producer epoch (v3+).
    pub producer_epoch: i16,
}

impl Message for InitProducerIdRequest {
    const API: ApiKey = ApiKey::InitProducerId;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.nullable_string(&mut self.transactional_id)?;
        s.i32(&mut self.transaction_timeout_ms)?;
        if v >= 3 {
            s.i64(&mut self.producer_id)?;
            s.i16(&mut self.producer_epoch)?;
        }
        s.tags()
    }
}

/// InitProducerId response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
}

impl Message for InitProducerIdResponse {
    const API: ApiKey = ApiKey::InitProducerId;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.i16(&mut self.error_code)?;
        s.i64(&mut self.producer_id)?;
        s.i16(&mut self.producer_epoch)?;
        s.tags()
    }
}
