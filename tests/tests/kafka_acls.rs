//! ACLs on the Kafka listener: Sluice has no authorizer, so DescribeAcls,
//! CreateAcls and DeleteAcls are answered as a Kafka broker without one
//! answers them, `SECURITY_DISABLED` with a message (the request's error,
//! each creation's, each filter's), at every version served; admin tools
//! then say that security is disabled instead of that the broker is too
//! old. confluent-kafka's and kafka-python's admin clients are checked too
//! (with `SLUICE_KAFKA_PYTHON`, see `sluice_tests::kafka::python`).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_protocol::kafka::ApiKey;
use sluice_protocol::kafka::acls::{
    AclCreation, AclFilter, CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest,
    DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
};
use sluice_protocol::kafka::api_versions::ApiVersionsResponse;
use sluice_protocol::kafka::error_code::code;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::api_versions_request;
use sluice_tests::kafka::{call, python, run_clients};
use sluice_tests::{TestBroker, create_topic};

fn any() -> AclFilter {
    AclFilter {
        resource_type: 1,
        pattern_type: 1,
        operation: 1,
        permission_type: 1,
        ..AclFilter::default()
    }
}

#[test]
fn acl_requests_are_answered_security_disabled_at_every_version() {
    let b = TestBroker::start();
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let versions: ApiVersionsResponse = call(&mut s, 3, &mut api_versions_request());
    for key in [29, 30, 31] {
        let range = versions.api_keys.iter().find(|a| a.api_key == key);
        let range = range.map(|a| (a.min_version, a.max_version));
        assert_eq!(range, Some((0, 3)), "api {key}");
    }
    for v in 0..=3 {
        let d: DescribeAclsResponse = call(&mut s, v, &mut DescribeAclsRequest { filter: any() });
        assert_eq!(d.error_code, code::SECURITY_DISABLED, "v{v}");
        assert!(d.error_message.unwrap().contains("No Authorizer"), "v{v}");
        assert!(d.resources.is_empty());
        let creation = AclCreation {
            resource_type: 2,
            resource_name: "t".into(),
            pattern_type: 3,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: 3,
            permission_type: 3,
        };
        let mut req = CreateAclsRequest {
            creations: vec![creation.clone(), creation],
        };
        let c: CreateAclsResponse = call(&mut s, v, &mut req);
        let codes: Vec<i16> = c.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, [code::SECURITY_DISABLED; 2], "v{v}");
        let mut req = DeleteAclsRequest {
            filters: vec![any(), any(), any()],
        };
        let r: DeleteAclsResponse = call(&mut s, v, &mut req);
        let outcomes: Vec<(i16, usize)> = r
            .filter_results
            .iter()
            .map(|f| (f.outcome.error_code, f.matching_acls.len()))
            .collect();
        assert_eq!(outcomes, [(code::SECURITY_DISABLED, 0); 3], "v{v}");
    }
    // The connection is still served.
    let again: ApiVersionsResponse = call(&mut s, 3, &mut api_versions_request());
    assert_eq!(again.error_code, code::NONE);
    assert!(
        again
            .api_keys
            .iter()
            .any(|a| a.api_key == ApiKey::DescribeAcls as i16)
    );
}

#[test]
fn admin_clients_see_security_disabled() {
    let Some(python) = python() else { return };
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "guarded", 1, TopicConfig::default()).await;
    });
    let addr = b.kafka_addr.unwrap().to_string();
    let out = run_clients(&python, &["acls", &addr, "guarded"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    // confluent-kafka's describe_acls does not raise the request's error:
    // it returns no ACLs.
    assert_eq!(
        v,
        json!({
            "confluent_describe": ["ok", "[]"],
            "confluent_create": "SECURITY_DISABLED",
            "confluent_delete": "SECURITY_DISABLED",
            "kafka_python_describe": "SecurityDisabledError",
            "kafka_python_create_failed": ["SecurityDisabledError"],
            "kafka_python_create_succeeded": 0,
            "kafka_python_delete": ["SecurityDisabledError"],
            "topic_listed": true
        }),
        "{out}"
    );
}
