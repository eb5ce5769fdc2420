//! ApiVersions (key 0): which APIs and versions the broker speaks.

use serde::{Deserialize, Serialize};

/// Asks for the supported API versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiVersionsRequest {}

/// One API's supported versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiVersionRange {
    /// The API key.
    pub api_key: u16,
    /// Oldest supported version.
    pub min_version: u16,
    /// Newest supported version.
    pub max_version: u16,
}

/// The APIs the broker speaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiVersionsResponse {
    /// One entry per API.
    pub apis: Vec<ApiVersionRange>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::testutil::{assert_truncations_fail, check_all, round_trip};

    #[test]
    fn request_is_empty_and_round_trips() {
        let bytes = round_trip(&ApiVersionsRequest {});
        assert!(bytes.is_empty());
        assert_truncations_fail::<ApiVersionsRequest>(&bytes);
    }

    #[test]
    fn response_round_trips_and_rejects_truncation() {
        check_all(&[
            ApiVersionsResponse { apis: vec![] },
            ApiVersionsResponse {
                apis: vec![
                    ApiVersionRange {
                        api_key: 0,
                        min_version: 0,
                        max_version: 0,
                    },
                    ApiVersionRange {
                        api_key: 300,
                        min_version: 1,
                        max_version: u16::MAX,
                    },
                ],
            },
        ]);
    }
}
