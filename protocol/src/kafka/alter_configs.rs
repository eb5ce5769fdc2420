//! AlterConfigs (key 33, versions 0–2) and IncrementalAlterConfigs (key 44,
//! versions 0–1): changing a resource's configs. Both answer one result per
//! resource, in the same layout.

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// IncrementalAlterConfigs' `config_operation`: set the value.
pub const OP_SET: i8 = 0;
/// Remove the setting (back to its default).
pub const OP_DELETE: i8 = 1;
/// Add to a list setting.
pub const OP_APPEND: i8 = 2;
/// Remove from a list setting.
pub const OP_SUBTRACT: i8 = 3;

/// One config to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterableConfig {
    /// Kafka's config name.
    pub name: String,
    /// What to do (IncrementalAlterConfigs only; [`OP_SET`] in an
    /// AlterConfigs request).
    pub operation: i8,
    /// The value (null with [`OP_DELETE`]).
    pub value: Option<String>,
}

/// One resource whose configs change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterConfigsResource {
    /// 2 topic, 4 broker, ...
    pub resource_type: i8,
    /// Its name.
    pub resource_name: String,
    /// The changes.
    pub configs: Vec<AlterableConfig>,
}

/// AlterConfigs request: each resource's configs become exactly the ones
/// given (the others go back to their defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterConfigsRequest {
    /// Resources.
    pub resources: Vec<AlterConfigsResource>,
    /// Check only.
    pub validate_only: bool,
}

impl Message for AlterConfigsRequest {
    const API: ApiKey = ApiKey::AlterConfigs;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        resources(s, &mut self.resources, false)?;
        s.bool(&mut self.validate_only)?;
        s.tags()
    }
}

/// IncrementalAlterConfigs request: each config is set or removed on its
/// own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncrementalAlterConfigsRequest {
    /// Resources.
    pub resources: Vec<AlterConfigsResource>,
    /// Check only.
    pub validate_only: bool,
}

impl Message for IncrementalAlterConfigsRequest {
    const API: ApiKey = ApiKey::IncrementalAlterConfigs;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        resources(s, &mut self.resources, true)?;
        s.bool(&mut self.validate_only)?;
        s.tags()
    }
}

/// The resources of either request; `operation` is on the wire only in
/// IncrementalAlterConfigs.
fn resources<S: Io>(
    s: &mut S,
    resources: &mut Vec<AlterConfigsResource>,
    incremental: bool,
) -> Result<(), KafkaError> {
    s.array(resources, |s, r| {
        s.i8(&mut r.resource_type)?;
        s.string(&mut r.resource_name)?;
        s.array(&mut r.configs, |s, c| {
            s.string(&mut c.name)?;
            if incremental {
                s.i8(&mut c.operation)?;
            }
            s.nullable_string(&mut c.value)?;
            s.tags()
        })?;
        s.tags()
    })
}

/// One resource's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterConfigsResult {
    /// Error code.
    pub error_code: i16,
    /// Why it failed.
    pub error_message: Option<String>,
    /// The resource's type.
    pub resource_type: i8,
    /// Its name.
    pub resource_name: String,
}

/// The answer to either request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterConfigsOutcome {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// One per resource, in request order.
    pub responses: Vec<AlterConfigsResult>,
}

/// AlterConfigs response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlterConfigsResponse(pub AlterConfigsOutcome);

/// IncrementalAlterConfigs response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncrementalAlterConfigsResponse(pub AlterConfigsOutcome);

impl AlterConfigsOutcome {
    fn io<S: Io>(&mut self, s: &mut S) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.responses, |s, r| {
            s.i16(&mut r.error_code)?;
            s.nullable_string(&mut r.error_message)?;
            s.i8(&mut r.resource_type)?;
            s.string(&mut r.resource_name)?;
            s.tags()
        })?;
        s.tags()
    }
}

impl Message for AlterConfigsResponse {
    const API: ApiKey = ApiKey::AlterConfigs;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        self.0.io(s)
    }
}

impl Message for IncrementalAlterConfigsResponse {
    const API: ApiKey = ApiKey::IncrementalAlterConfigs;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        self.0.io(s)
    }
}
