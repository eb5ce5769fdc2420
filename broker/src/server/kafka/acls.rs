//! DescribeAcls, CreateAcls and DeleteAcls: Sluice has no authorizer, so
//! each is answered as a Kafka broker without one answers them,
//! `SECURITY_DISABLED` (the request's error for DescribeAcls, each
//! creation's and each filter's for the others). Nothing is stored.

use sluice_protocol::kafka::acls::{
    AclOutcome, CreateAclsRequest, CreateAclsResponse, DeleteAclsFilterResult, DeleteAclsRequest,
    DeleteAclsResponse, DescribeAclsResponse,
};
use sluice_protocol::kafka::error_code::code;

/// The message of every answer.
const NO_AUTHORIZER: &str =
    "No Authorizer is configured: Sluice does not check ACLs, every client may do everything";

fn disabled() -> AclOutcome {
    AclOutcome {
        error_code: code::SECURITY_DISABLED,
        error_message: Some(NO_AUTHORIZER.to_owned()),
    }
}

/// DescribeAcls: none, `SECURITY_DISABLED`.
pub(super) fn describe() -> DescribeAclsResponse {
    let d = disabled();
    DescribeAclsResponse {
        throttle_time_ms: 0,
        error_code: d.error_code,
        error_message: d.error_message,
        resources: Vec::new(),
    }
}

/// CreateAcls: each creation `SECURITY_DISABLED`, in order.
pub(super) fn create(r: &CreateAclsRequest) -> CreateAclsResponse {
    CreateAclsResponse {
        throttle_time_ms: 0,
        results: r.creations.iter().map(|_| disabled()).collect(),
    }
}

/// DeleteAcls: each filter `SECURITY_DISABLED`, matching nothing.
pub(super) fn delete(r: &DeleteAclsRequest) -> DeleteAclsResponse {
    DeleteAclsResponse {
        throttle_time_ms: 0,
        filter_results: r
            .filters
            .iter()
            .map(|_| DeleteAclsFilterResult {
                outcome: disabled(),
                matching_acls: Vec::new(),
            })
            .collect(),
    }
}
