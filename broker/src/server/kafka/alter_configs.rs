//! AlterConfigs and IncrementalAlterConfigs: a topic's settings changed
//! through the service (all but `flush.ms` may change, which is fixed at
//! creation: a change to it is refused with `INVALID_CONFIG`). Other resource types are refused with
//! `INVALID_REQUEST`: Sluice has no dynamic broker settings.

use std::sync::Arc;

use sluice_protocol::kafka::admin::RESOURCE_TOPIC;
use sluice_protocol::kafka::alter_configs::{
    AlterConfigsOutcome, AlterConfigsResource, AlterConfigsResult, OP_DELETE, OP_SET,
};
use sluice_protocol::kafka::error_code::{KafkaCode, code, to_kafka};
use sluice_protocol::wire::topic_config::TopicConfig;

use super::configs;
use crate::server::native::connection::Conn;

/// How a request's configs combine with a topic's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// AlterConfigs: the settings become exactly the ones given.
    Replace,
    /// IncrementalAlterConfigs: each one is set or removed on its own.
    Incremental,
}

/// Answers either request: one result per resource, in request order.
pub(super) async fn alter(
    conn: &Conn,
    resources: Vec<AlterConfigsResource>,
    validate_only: bool,
    mode: Mode,
) -> AlterConfigsOutcome {
    let mut responses = Vec::with_capacity(resources.len());
    // More resources than a request may name partitions: refused whole,
    // each answered without being looked at.
    let cap = conn.broker.config.max_partitions_per_request as usize;
    if resources.len() > cap {
        let message =
            format!("more than {cap} resources in one request (max_partitions_per_request)");
        for (i, r) in resources.into_iter().enumerate() {
            responses.push(AlterConfigsResult {
                error_code: code::INVALID_REQUEST,
                // Said once: the answer stays the size of the request.
                error_message: (i == 0).then(|| message.clone()),
                resource_type: r.resource_type,
                resource_name: r.resource_name,
            });
        }
        return AlterConfigsOutcome {
            throttle_time_ms: 0,
            responses,
        };
    }
    // A resource named more than once is refused at each mention and not
    // changed, as Kafka refuses it (which entry would hold is not said).
    let mut mentions: std::collections::HashMap<(i8, &str), usize> =
        std::collections::HashMap::new();
    for r in &resources {
        *mentions
            .entry((r.resource_type, r.resource_name.as_str()))
            .or_default() += 1;
    }
    let twice: Vec<bool> = resources
        .iter()
        .map(|r| mentions[&(r.resource_type, r.resource_name.as_str())] > 1)
        .collect();
    for (r, twice) in resources.into_iter().zip(twice) {
        let outcome = match twice {
            true => Err((
                code::INVALID_REQUEST,
                "Each resource must appear at most once.".to_owned(),
            )),
            false => alter_one(conn, &r, validate_only, mode).await,
        };
        let (error_code, error_message) = match outcome {
            Ok(()) => (code::NONE, None),
            Err((c, m)) => (c, Some(m)),
        };
        responses.push(AlterConfigsResult {
            error_code,
            error_message,
            resource_type: r.resource_type,
            resource_name: r.resource_name,
        });
    }
    AlterConfigsOutcome {
        throttle_time_ms: 0,
        responses,
    }
}

async fn alter_one(
    conn: &Conn,
    r: &AlterConfigsResource,
    validate_only: bool,
    mode: Mode,
) -> Result<(), (KafkaCode, String)> {
    if r.resource_type != RESOURCE_TOPIC {
        return Err((
            code::INVALID_REQUEST,
            "only topic configs can change: Sluice has no dynamic broker settings".to_owned(),
        ));
    }
    // List operations are refused before the topic is looked at.
    if let Some(c) = r
        .configs
        .iter()
        .find(|c| mode == Mode::Incremental && !matches!(c.operation, OP_SET | OP_DELETE))
    {
        return Err((
            code::INVALID_REQUEST,
            format!(
                "operation {} on {}: only SET (0) and DELETE (1) apply, \
                 Sluice's topic configs are not lists",
                c.operation, c.name
            ),
        ));
    }
    // A config named twice in one incremental change is refused, as Kafka
    // refuses it (which of the two would hold is not said).
    if mode == Mode::Incremental {
        let mut seen = std::collections::HashSet::new();
        if let Some(c) = r.configs.iter().find(|c| !seen.insert(c.name.as_str())) {
            return Err((
                code::INVALID_REQUEST,
                format!("config {} is named more than once", c.name),
            ));
        }
    }
    // The changes apply to the topic's settings as the store holds them,
    // under its lock: concurrent changes of one topic do not undo each
    // other.
    let changes = r.configs.clone();
    // `min.insync.replicas` is checked against it (a topic this node does
    // not know is refused by the change itself).
    let factor = conn
        .broker
        .service
        .replication_factor(&r.resource_name)
        .unwrap_or(1);
    let edit = move |current: &TopicConfig| {
        let mut config = match mode {
            Mode::Replace => TopicConfig::default(),
            Mode::Incremental => current.clone(),
        };
        for c in &changes {
            match (mode, c.operation, c.value.as_deref()) {
                (Mode::Replace, _, Some(v)) | (Mode::Incremental, OP_SET, Some(v)) => {
                    configs::apply(&mut config, &c.name, v, factor)?;
                }
                (Mode::Incremental, OP_SET, None) => {
                    return Err(format!("{} has no value to set", c.name));
                }
                _ => configs::unset(&mut config, &c.name)?,
            }
        }
        Ok(config)
    };
    let svc = Arc::clone(&conn.broker.service);
    let outcome = svc
        .alter_topic_config(r.resource_name.clone(), edit, validate_only)
        .await;
    if outcome.error_code.is_ok() {
        Ok(())
    } else {
        Err((
            to_kafka(outcome.error_code),
            outcome.message.unwrap_or_default(),
        ))
    }
}
