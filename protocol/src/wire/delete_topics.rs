//! DeleteTopics (key 3).

use serde::{Deserialize, Serialize};

use super::create_topics::TopicResult;

/// Deletes topics and all their data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteTopicsRequest {
    /// Topic names.
    pub names: Vec<String>,
}

/// One result per requested topic, in request order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteTopicsResponse {
    /// Results.
    pub results: Vec<TopicResult>,
}
