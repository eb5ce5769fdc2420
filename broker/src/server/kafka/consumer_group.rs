//! ConsumerGroupHeartbeat (KIP-848) over the service's group coordinator
//! (`crate::service::groups`, state machine in `crate::group::consumer`).
//! Topic ids on the wire, [`TopicId`]s and durations inside.

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::kafka::consumer_group::*;
use sluice_protocol::kafka::error_code::{code, to_kafka};

use crate::server::native::connection::Conn;
use crate::service::groups::{Assignment, Beat, BeatError};
use crate::topics::TopicId;
use sluice_protocol::wire::ErrorCode;

fn to_assignment(parts: Vec<TopicPartitions>) -> Assignment {
    let mut a = Assignment::new();
    for t in parts {
        let ps = a.entry(TopicId(t.topic_id)).or_default();
        ps.extend(
            t.partitions
                .into_iter()
                .filter_map(|p| u32::try_from(p).ok()),
        );
    }
    a.retain(|_, ps| !ps.is_empty());
    a
}

fn from_assignment(a: Assignment) -> Vec<TopicPartitions> {
    a.into_iter()
        .map(|(t, ps)| TopicPartitions {
            topic_id: t.0,
            partitions: ps.into_iter().map(|p| p as i32).collect(),
        })
        .collect()
}

/// ConsumerGroupHeartbeat: join, leave, or keep-alive and reconciliation.
pub(super) async fn heartbeat(
    conn: &Conn,
    r: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: Option<String>,
) -> ConsumerGroupHeartbeatResponse {
    let svc = &conn.broker.service;
    let interval = i32::try_from(svc.consumer_heartbeat_interval().as_millis()).unwrap_or(i32::MAX);
    let refuse = |error_code, message: String, member_id: &str| ConsumerGroupHeartbeatResponse {
        throttle_time_ms: 0,
        error_code,
        error_message: Some(message),
        member_id: Some(member_id.to_owned()),
        member_epoch: 0,
        heartbeat_interval_ms: interval,
        assignment: None,
    };
    if let Err(refused) = svc.check_coordinator(&r.group_id).await {
        return refuse(to_kafka(refused.code), refused.message, &r.member_id);
    }
    let mut member_id = r.member_id;
    if member_id.is_empty() && version == 0 && r.member_epoch == 0 {
        // Version 0: the coordinator names a joining member.
        member_id = crate::group::consumer::new_member_id();
    }
    let empty = |s: &Option<String>| s.as_deref() == Some("");
    if r.group_id.is_empty() || empty(&r.instance_id) || empty(&r.rack_id) {
        return refuse(
            code::INVALID_REQUEST,
            "group id, instance id and rack id may not be empty strings".into(),
            &member_id,
        );
    }
    let beat = Beat {
        member_id: member_id.clone(),
        member_epoch: r.member_epoch,
        instance_id: r.instance_id,
        rack_id: r.rack_id,
        rebalance_timeout: u64::try_from(r.rebalance_timeout_ms)
            .ok()
            .map(Duration::from_millis),
        topic_names: r.subscribed_topic_names,
        topic_regex: r.subscribed_topic_regex,
        assignor: r.server_assignor,
        owned: r.topic_partitions.map(to_assignment),
        client_id: client_id.unwrap_or_default(),
        client_host: format!("/{}", conn.peer.ip()),
    };
    match svc.consumer_group_heartbeat(&r.group_id, beat).await {
        Ok(a) => ConsumerGroupHeartbeatResponse {
            throttle_time_ms: 0,
            error_code: code::NONE,
            error_message: None,
            member_id: Some(a.member_id),
            member_epoch: a.member_epoch,
            heartbeat_interval_ms: interval,
            assignment: a.assignment.map(from_assignment),
        },
        Err(e) => {
            let (c, message) = match e {
                BeatError::InvalidRequest(m) => (code::INVALID_REQUEST, m),
                BeatError::UnknownMember => (
                    code::UNKNOWN_MEMBER_ID,
                    format!(
                        "member {member_id:?} is not in group {:?}: join again with epoch 0",
                        r.group_id
                    ),
                ),
                BeatError::FencedEpoch => (
                    code::FENCED_MEMBER_EPOCH,
                    format!(
                        "epoch {} is not the member's current one: join again with epoch 0",
                        r.member_epoch
                    ),
                ),
                BeatError::UnreleasedInstanceId => (
                    code::UNRELEASED_INSTANCE_ID,
                    "another member holds this instance id".into(),
                ),
                BeatError::FencedInstanceId => (
                    code::FENCED_INSTANCE_ID,
                    "the instance id belongs to another member".into(),
                ),
                BeatError::UnsupportedAssignor(m) => (code::UNSUPPORTED_ASSIGNOR, m),
                BeatError::InvalidRegex(m) => (code::INVALID_REGULAR_EXPRESSION, m),
                BeatError::GroupMaxSize => (
                    code::GROUP_MAX_SIZE_REACHED,
                    "the group has group_max_size members, or would hold more than group_max_bytes"
                        .into(),
                ),
                BeatError::InvalidGroupId => (
                    code::INVALID_GROUP_ID,
                    format!("{:?} is not a valid group name", r.group_id),
                ),
                BeatError::NotStored(c, m) => (
                    if c == ErrorCode::NotCoordinator {
                        code::NOT_COORDINATOR
                    } else {
                        code::COORDINATOR_NOT_AVAILABLE
                    },
                    format!("the group's state could not be stored: {m}"),
                ),
                BeatError::NotConsumerGroup => (
                    code::GROUP_ID_NOT_FOUND,
                    format!(
                        "group {:?} is a classic group with members, not a consumer group",
                        r.group_id
                    ),
                ),
            };
            refuse(c, message, &member_id)
        }
    }
}

fn described(a: crate::group::consumer::NamedAssignment) -> Vec<DescribedTopicPartitions> {
    a.into_iter()
        .map(|(id, name, ps)| DescribedTopicPartitions {
            topic_id: id.0,
            topic_name: name,
            partitions: ps.into_iter().map(|p| p as i32).collect(),
        })
        .collect()
}

/// ConsumerGroupDescribe: each group once, in the order first named. A
/// group that is not a consumer-protocol group (a classic group, one with
/// committed offsets only, or none) is
/// `GROUP_ID_NOT_FOUND`, as Kafka answers for a group of another type (its
/// admin client then describes it with DescribeGroups).
pub(super) async fn describe(
    conn: &Conn,
    r: ConsumerGroupDescribeRequest,
    version: i16,
) -> ConsumerGroupDescribeResponse {
    let svc = Arc::clone(&conn.broker.service);
    let ops = super::operations::answer(r.include_authorized_operations, super::operations::GROUP);
    let names = crate::service::first_of_each(&r.group_ids);
    let checks = svc.check_coordinators(&names).await;
    let groups = names
        .into_iter()
        .zip(checks)
        .map(|(name, check)| {
            let mut g = DescribedConsumerGroup {
                group_id: name.to_owned(),
                group_state: "Dead".into(),
                authorized_operations: ops,
                ..DescribedConsumerGroup::default()
            };
            if let Err(refused) = check {
                g.error_code = to_kafka(refused.code);
                g.error_message = Some(refused.message);
                return g;
            }
            if !crate::group::valid_group_name(name) {
                g.error_code = code::INVALID_GROUP_ID;
                g.error_message = Some(format!("{name:?} is not a valid group name"));
                return g;
            }
            let Some(v) = svc.describe_consumer_group(name) else {
                g.error_code = code::GROUP_ID_NOT_FOUND;
                g.error_message = Some(format!(
                    "group {name:?} is not a group of the consumer group protocol"
                ));
                return g;
            };
            g.group_state = v.state.into();
            g.group_epoch = v.epoch;
            g.assignment_epoch = v.assignment_epoch;
            g.assignor_name = v.assignor.into();
            g.members = v
                .members
                .into_iter()
                .map(|m| ConsumerGroupMember {
                    member_id: m.member_id,
                    instance_id: m.instance_id,
                    rack_id: m.rack_id,
                    member_epoch: m.epoch,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    subscribed_topic_names: m.topic_names,
                    subscribed_topic_regex: m.topic_regex,
                    assignment: described(m.assigned),
                    target_assignment: described(m.target),
                    member_type: if version >= 1 { 1 } else { -1 },
                })
                .collect();
            g
        })
        .collect();
    ConsumerGroupDescribeResponse {
        throttle_time_ms: 0,
        groups,
    }
}
