//! CreateTopics (key 2).

use serde::{Deserialize, Serialize};

use super::ErrorCode;
use super::topic_config::TopicConfig;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Number of partitions (at least 1).
    pub partitions: u32,
    /// Settings; unset fields take the broker's defaults.
    pub config: TopicConfig,
}

/// Creates topics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicsRequest {
    /// The topics.
    pub topics: Vec<NewTopic>,
}

/// The outcome for one topic of a CreateTopics or DeleteTopics request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicResult {
    /// Topic name.
    pub name: String,
    /// Outcome.
    pub error_code: ErrorCode,
    /// Detail when `error_code` is not `None`.
    pub message: Option<String>,
}

/// One result per requested topic, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateTopicsResponse {
    /// Results.
    pub results: Vec<TopicResult>,
}
