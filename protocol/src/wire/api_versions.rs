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
