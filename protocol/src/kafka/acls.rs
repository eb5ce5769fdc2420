//! DescribeAcls (key 29), CreateAcls (30) and DeleteAcls (31), versions
//! 0–3, flexible from v2. Sluice has no authorizer: the listener answers
//! each as a Kafka broker without one does (`SECURITY_DISABLED`), so these
//! carry the fields to read a request whole and to answer it.

use super::io::Io;
use super::{ApiKey, KafkaError, Message};

/// An ACL filter (DescribeAcls' request, each of DeleteAcls' filters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFilter {
    /// Resource type (1: any, 2: topic, 3: group, …).
    pub resource_type: i8,
    /// Resource name; `None`: any.
    pub resource_name: Option<String>,
    /// Pattern type (v1+; literal, 3, before).
    pub pattern_type: i8,
    /// Principal; `None`: any.
    pub principal: Option<String>,
    /// Host; `None`: any.
    pub host: Option<String>,
    /// Operation.
    pub operation: i8,
    /// Permission type.
    pub permission_type: i8,
}

/// Kafka's literal pattern type: the one v0 implies.
pub const PATTERN_LITERAL: i8 = 3;

fn filter_io<S: Io>(s: &mut S, f: &mut AclFilter, v: i16) -> Result<(), KafkaError> {
    s.i8(&mut f.resource_type)?;
    s.nullable_string(&mut f.resource_name)?;
    if v >= 1 {
        s.i8(&mut f.pattern_type)?;
    } else {
        f.pattern_type = PATTERN_LITERAL;
    }
    s.nullable_string(&mut f.principal)?;
    s.nullable_string(&mut f.host)?;
    s.i8(&mut f.operation)?;
    s.i8(&mut f.permission_type)
}

/// DescribeAcls request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeAclsRequest {
    /// Which ACLs.
    pub filter: AclFilter,
}

impl Message for DescribeAclsRequest {
    const API: ApiKey = ApiKey::DescribeAcls;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        filter_io(s, &mut self.filter, v)?;
        s.tags()
    }
}

/// One ACL of a resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclDescription {
    /// Principal.
    pub principal: String,
    /// Host.
    pub host: String,
    /// Operation.
    pub operation: i8,
    /// Permission type.
    pub permission_type: i8,
}

/// A resource and its ACLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeAclsResource {
    /// Resource type.
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: String,
    /// Pattern type (v1+).
    pub pattern_type: i8,
    /// Its ACLs.
    pub acls: Vec<AclDescription>,
}

/// DescribeAcls response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DescribeAclsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Error code.
    pub error_code: i16,
    /// What went wrong, if anything.
    pub error_message: Option<String>,
    /// The ACLs found.
    pub resources: Vec<DescribeAclsResource>,
}

impl Message for DescribeAclsResponse {
    const API: ApiKey = ApiKey::DescribeAcls;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.i16(&mut self.error_code)?;
        s.nullable_string(&mut self.error_message)?;
        s.array(&mut self.resources, |s, r| {
            s.i8(&mut r.resource_type)?;
            s.string(&mut r.resource_name)?;
            if v >= 1 {
                s.i8(&mut r.pattern_type)?;
            }
            s.array(&mut r.acls, |s, a| {
                s.string(&mut a.principal)?;
                s.string(&mut a.host)?;
                s.i8(&mut a.operation)?;
                s.i8(&mut a.permission_type)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}

/// One ACL: to create (CreateAcls), or one a DeleteAcls filter matched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclCreation {
    /// Resource type.
    pub resource_type: i8,
    /// Resource name.
    pub resource_name: String,
    /// Pattern type (v1+; literal before).
    pub pattern_type: i8,
    /// Principal.
    pub principal: String,
    /// Host.
    pub host: String,
    /// Operation.
    pub operation: i8,
    /// Permission type.
    pub permission_type: i8,
}

fn acl_io<S: Io>(s: &mut S, a: &mut AclCreation, v: i16) -> Result<(), KafkaError> {
    s.i8(&mut a.resource_type)?;
    s.string(&mut a.resource_name)?;
    if v >= 1 {
        s.i8(&mut a.pattern_type)?;
    } else {
        a.pattern_type = PATTERN_LITERAL;
    }
    s.string(&mut a.principal)?;
    s.string(&mut a.host)?;
    s.i8(&mut a.operation)?;
    s.i8(&mut a.permission_type)
}

/// CreateAcls request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateAclsRequest {
    /// The ACLs to create.
    pub creations: Vec<AclCreation>,
}

impl Message for CreateAclsRequest {
    const API: ApiKey = ApiKey::CreateAcls;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.creations, |s, c| {
            acl_io(s, c, v)?;
            s.tags()
        })?;
        s.tags()
    }
}

/// An error code and its message: one creation's (CreateAcls) or one
/// filter's (DeleteAcls) outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclOutcome {
    /// Error code.
    pub error_code: i16,
    /// What went wrong, if anything.
    pub error_message: Option<String>,
}

/// CreateAcls response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateAclsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// One per creation, in order.
    pub results: Vec<AclOutcome>,
}

impl Message for CreateAclsResponse {
    const API: ApiKey = ApiKey::CreateAcls;
    fn io<S: Io>(&mut self, s: &mut S, _v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.results, |s, r| {
            s.i16(&mut r.error_code)?;
            s.nullable_string(&mut r.error_message)?;
            s.tags()
        })?;
        s.tags()
    }
}

/// DeleteAcls request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteAclsRequest {
    /// Each filter names the ACLs it deletes.
    pub filters: Vec<AclFilter>,
}

impl Message for DeleteAclsRequest {
    const API: ApiKey = ApiKey::DeleteAcls;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.array(&mut self.filters, |s, f| {
            filter_io(s, f, v)?;
            s.tags()
        })?;
        s.tags()
    }
}

/// An ACL a DeleteAcls filter matched (and deleted, or failed to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclMatch {
    /// This ACL's error code and message.
    pub outcome: AclOutcome,
    /// The ACL.
    pub acl: AclCreation,
}

/// One filter's outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteAclsFilterResult {
    /// The filter's error code and message.
    pub outcome: AclOutcome,
    /// The ACLs it matched.
    pub matching_acls: Vec<AclMatch>,
}

/// DeleteAcls response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteAclsResponse {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// One per filter, in order.
    pub filter_results: Vec<DeleteAclsFilterResult>,
}

impl Message for DeleteAclsResponse {
    const API: ApiKey = ApiKey::DeleteAcls;
    fn io<S: Io>(&mut self, s: &mut S, v: i16) -> Result<(), KafkaError> {
        s.i32(&mut self.throttle_time_ms)?;
        s.array(&mut self.filter_results, |s, r| {
            s.i16(&mut r.outcome.error_code)?;
            s.nullable_string(&mut r.outcome.error_message)?;
            s.array(&mut r.matching_acls, |s, m| {
                s.i16(&mut m.outcome.error_code)?;
                s.nullable_string(&mut m.outcome.error_message)?;
                acl_io(s, &mut m.acl, v)?;
                s.tags()
            })?;
            s.tags()
        })?;
        s.tags()
    }
}
