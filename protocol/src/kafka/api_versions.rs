//! ApiVersions (key 18), versions 0–3.

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// ApiVersions request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionsRequest {
    /// Client software name (v3+).
    pub client_software_name: String,
    /// Client software version (v3+).
    pub client_software_version: String,
}

impl Message for ApiVersionsRequest {
    const API: ApiKey = ApiKey::ApiVersions;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        if v >= 3 {
            s.string(&mut self.client_software_name)?;
            s.string(&mut self.client_software_version)?;
        }
        s.tags()
    }
}

/// One API's version range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiRange {
    /// API key.
    pub api_key: i16,
    /// Lowest version served.
    pub min_version: i16,
    /// Highest version served.
    pub max_version: i16,
}

/// ApiVersions response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiVersionsResponse {
    /// Error code (35 when the request's version is not served, KIP-511).
    pub error_code: i16,
    /// The APIs served.
    pub api_keys: Vec<ApiRange>,
    /// Throttle time (v1+).
    pub throttle_time_ms: i32,
}

impl ApiVersionsResponse {
    /// The answer listing every API of [`ApiKey::ALL`].
    pub fn served(error_code: i16) -> Self {
        ApiVersionsResponse {
            error_code,
            api_keys: ApiKey::ALL
                .iter()
                .map(|k| {
                    let (min_version, max_version) = k.versions();
                    ApiRange {
                        api_key: *k as i16,
                        min_version,
                        max_version,
                    }
                })
                .collect(),
            throttle_time_ms: 0,
        }
    }
}

impl Message for ApiVersionsResponse {
    const API: ApiKey = ApiKey::ApiVersions;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i16(&mut self.error_code)?;
        s.array(&mut self.api_keys, |s, a| {
            s.i16(&mut a.api_key)?;
            s.i16(&mut a.min_version)?;
            s.i16(&mut a.max_version)?;
            s.tags()
        })?;
        if v >= 1 {
            s.i32(&mut self.throttle_time_ms)?;
        }
        s.tags()
    }
}
