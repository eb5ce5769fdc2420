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

impl ApiVersionsRequest {
    /// Whether the client's software name and version (v3+) are each of
    /// letters, digits, `-` and `.`, starting and ending with a letter or
    /// digit, as Kafka requires (KIP-511): a request that breaks this gets
    /// `INVALID_REQUEST`. Before v3 they are absent and always valid.
    pub fn is_valid(&self, version: i16) -> bool {
        fn ok(s: &str) -> bool {
            let b = s.as_bytes();
            let end = |c: &u8| c.is_ascii_alphanumeric();
            b.first().is_some_and(end)
                && b.last().is_some_and(end)
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
        }
        version < 3 || (ok(&self.client_software_name) && ok(&self.client_software_version))
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
    /// The answer to a request that is not valid ([`ApiVersionsRequest::is_valid`]):
    /// `INVALID_REQUEST` and no APIs, as Kafka answers it.
    pub fn invalid() -> Self {
        ApiVersionsResponse {
            error_code: super::error_code::code::INVALID_REQUEST,
            api_keys: Vec::new(),
            throttle_time_ms: 0,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_software_names_are_checked_as_kafka_checks_them() {
        let req = |name: &str, version: &str| ApiVersionsRequest {
            client_software_name: name.into(),
            client_software_version: version.into(),
        };
        for (name, version) in [
            ("librdkafka", "2.16.0"),
            ("apache-kafka-java", "3.9.0"),
            ("a", "1"),
            ("kafka-python", "2.0.2.dev"),
        ] {
            assert!(req(name, version).is_valid(3), "{name} {version}");
        }
        for (name, version) in [
            ("", "1"),
            ("x", ""),
            ("-x", "1"),
            ("x.", "1"),
            ("x y", "1"),
            ("x", "1.0+local"),
            ("caf\u{e9}", "1"),
        ] {
            assert!(!req(name, version).is_valid(3), "{name} {version}");
            assert!(req(name, version).is_valid(2), "{name} {version}");
        }
    }
}
