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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ErrorCode;
    use crate::wire::testutil::check_all;

    #[test]
    fn request_round_trips_and_rejects_truncation() {
        check_all(&[
            DeleteTopicsRequest { names: vec![] },
            DeleteTopicsRequest {
                names: vec!["orders".into(), "x".repeat(300)],
            },
        ]);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            DeleteTopicsResponse { results: vec![] },
            DeleteTopicsResponse {
                results: vec![
                    TopicResult {
                        name: "orders".into(),
                        error_code: ErrorCode::None,
                        message: None,
                    },
                    TopicResult {
                        name: "gone".into(),
                        error_code: ErrorCode::UnknownTopicOrPartition,
                        message: Some("no topic \"gone\"".into()),
                    },
                ],
            },
        ]);
    }
}
