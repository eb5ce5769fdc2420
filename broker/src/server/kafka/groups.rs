//! Kafka's classic consumer-group APIs over the service's group
//! coordinator (`crate::service::groups`): JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, DescribeGroups, ListGroups, DeleteGroups. Metadata and
//! assignments pass through as opaque bytes, so Kafka clients and native
//! clients can be members of one group.

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::kafka::error_code::{code, to_kafka};
use sluice_protocol::kafka::groups::*;

use crate::server::native::connection::{Conn, peer_closed};
use crate::service::groups::{Heartbeat, JoinGroup, MemberRef, SyncGroup};

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// JoinGroup: completes when the generation forms. From v4 a first join
/// of a dynamic member gets `MEMBER_ID_REQUIRED` with its id (as Kafka).
pub(super) async fn join(
    conn: &mut Conn,
    r: JoinGroupRequest,
    version: i16,
    client_id: Option<String>,
) -> JoinGroupResponse {
    let rebalance = if version >= 1 {
        r.rebalance_timeout_ms
    } else {
        r.session_timeout_ms
    };
    conn.wait_allowance = millis(rebalance);
    let svc = Arc::clone(&conn.broker.service);
    if let Err(refused) = svc.check_coordinator(&r.group_id).await {
        return JoinGroupResponse {
            throttle_time_ms: 0,
            error_code: to_kafka(refused.code),
            generation_id: -1,
            protocol_type: None,
            protocol_name: (version < 7).then(String::new),
            leader: String::new(),
            member_id: r.member_id,
            members: Vec::new(),
        };
    }
    let join = svc.join_group(JoinGroup {
        group: r.group_id,
        member_id: r.member_id,
        group_instance_id: r.group_instance_id,
        client_id: client_id.unwrap_or_default(),
        client_host: format!("/{}", conn.peer.ip()),
        session_timeout: millis(r.session_timeout_ms),
        rebalance_timeout: millis(rebalance),
        protocol_type: r.protocol_type,
        protocols: r
            .protocols
            .into_iter()
            .map(|p| (p.name, p.metadata))
            .collect(),
        require_known_member_id: version >= 4,
    });
    // A client that closes its end while the join waits for the group
    // gives its seat back at once (see `native::groups::left_while_waiting`):
    // the answer, a rejoin, goes to a closed socket, or to a client that only
    // shut down its writing side.
    let res = tokio::select! {
        res = join => res,
        () = peer_closed(&conn.stream) => return rejoin_join(version),
    };
    JoinGroupResponse {
        throttle_time_ms: 0,
        error_code: to_kafka(res.error),
        generation_id: res.generation_id,
        protocol_type: res.protocol_type,
        // Before v7 the name is not nullable.
        protocol_name: res
            .protocol_name
            .or_else(|| (version < 7).then(String::new)),
        leader: res.leader,
        member_id: res.member_id,
        members: res
            .members
            .into_iter()
            .map(|m| JoinGroupMember {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                metadata: m.metadata,
            })
            .collect(),
    }
}

/// The JoinGroup answer of a member whose client closed its end while the
/// join waited: rejoin.
fn rejoin_join(version: i16) -> JoinGroupResponse {
    JoinGroupResponse {
        throttle_time_ms: 0,
        error_code: code::REBALANCE_IN_PROGRESS,
        generation_id: -1,
        protocol_type: None,
        protocol_name: (version < 7).then(String::new),
        leader: String::new(),
        member_id: String::new(),
        members: Vec::new(),
    }
}

/// SyncGroup: completes when the leader's assignments are stored.
pub(super) async fn sync(conn: &mut Conn, r: SyncGroupRequest) -> SyncGroupResponse {
    let svc = Arc::clone(&conn.broker.service);
    if let Err(refused) = svc.check_coordinator(&r.group_id).await {
        return SyncGroupResponse {
            throttle_time_ms: 0,
            error_code: to_kafka(refused.code),
            protocol_type: None,
            protocol_name: None,
            assignment: Vec::new(),
        };
    }
    let sync = svc.sync_group(SyncGroup {
        group: r.group_id,
        generation_id: r.generation_id,
        member_id: r.member_id,
        group_instance_id: r.group_instance_id,
        protocol_type: r.protocol_type,
        protocol_name: r.protocol_name,
        assignments: r
            .assignments
            .into_iter()
            .map(|a| (a.member_id, a.assignment))
            .collect(),
    });
    let res = tokio::select! {
        res = sync => res,
        () = peer_closed(&conn.stream) => {
            return SyncGroupResponse {
                throttle_time_ms: 0,
                error_code: code::REBALANCE_IN_PROGRESS,
                protocol_type: None,
                protocol_name: None,
                assignment: Vec::new(),
            };
        }
    };
    SyncGroupResponse {
        throttle_time_ms: 0,
        error_code: to_kafka(res.error),
        protocol_type: res.protocol_type,
        protocol_name: res.protocol_name,
        assignment: res.assignment,
    }
}

/// Heartbeat: `REBALANCE_IN_PROGRESS` tells the member to rejoin.
pub(super) async fn heartbeat(conn: &Conn, r: HeartbeatRequest) -> HeartbeatResponse {
    let svc = Arc::clone(&conn.broker.service);
    if let Err(refused) = svc.check_coordinator(&r.group_id).await {
        return HeartbeatResponse {
            throttle_time_ms: 0,
            error_code: to_kafka(refused.code),
        };
    }
    let e = svc
        .heartbeat(Heartbeat {
            group: r.group_id,
            generation_id: r.generation_id,
            member_id: r.member_id,
            group_instance_id: r.group_instance_id,
        })
        .await;
    HeartbeatResponse {
        throttle_time_ms: 0,
        error_code: to_kafka(e),
    }
}

/// LeaveGroup: one member (v0–2) or several (v3+).
pub(super) async fn leave(conn: &Conn, r: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let svc = Arc::clone(&conn.broker.service);
    if let Err(refused) = svc.check_coordinator(&r.group_id).await {
        return LeaveGroupResponse {
            throttle_time_ms: 0,
            error_code: to_kafka(refused.code),
            members: Vec::new(),
        };
    }
    let members = r
        .members
        .into_iter()
        .map(|m| MemberRef {
            member_id: m.member_id,
            group_instance_id: m.group_instance_id,
        })
        .collect();
    let res = svc.leave_group(r.group_id, members).await;
    let mut error_code = to_kafka(res.error);
    if version < 3 && error_code == code::NONE {
        // One member, no per-member list: its outcome is the answer's.
        if let Some((_, e)) = res.members.first() {
            error_code = to_kafka(*e);
        }
    }
    LeaveGroupResponse {
        throttle_time_ms: 0,
        error_code,
        members: res
            .members
            .into_iter()
            .map(|(m, e)| LeftMember {
                member_id: m.member_id,
                group_instance_id: m.group_instance_id,
                error_code: to_kafka(e),
            })
            .collect(),
    }
}

/// DescribeGroups: state, protocol and members of each group (`Dead` and
/// no members for an unknown group, as Kafka), each group once.
pub(super) async fn describe(conn: &Conn, mut r: DescribeGroupsRequest) -> DescribeGroupsResponse {
    let svc = Arc::clone(&conn.broker.service);
    let ops = super::operations::answer(r.include_authorized_operations, super::operations::GROUP);
    // A group named twice is answered once (as the service does).
    r.groups = crate::service::first_of_each(&r.groups)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let refused = refusals(&svc, &r.groups).await;
    let asked = ours(&r.groups, &refused);
    let mut described = svc
        .describe_groups(asked)
        .into_iter()
        .map(|g| DescribedGroup {
            error_code: to_kafka(g.error),
            group_id: g.group,
            group_state: g.state.kafka_name(g.consumer_protocol).to_owned(),
            protocol_type: g.protocol_type,
            protocol_data: g.protocol,
            members: g
                .members
                .into_iter()
                .map(|m| DescribedMember {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    member_metadata: m.metadata,
                    member_assignment: m.assignment,
                })
                .collect(),
            authorized_operations: ops,
        });
    // Groups another node coordinates: NOT_COORDINATOR, so the client asks
    // FindCoordinator again (COORDINATOR_NOT_AVAILABLE while none is known).
    // Request order is kept.
    let groups = r
        .groups
        .into_iter()
        .zip(refused)
        .map(
            |(group_id, refused)| match refused.is_none().then(|| described.next()).flatten() {
                Some(d) => d,
                None => DescribedGroup {
                    error_code: refused.unwrap_or(code::NOT_COORDINATOR),
                    group_id,
                    group_state: String::new(),
                    protocol_type: String::new(),
                    protocol_data: String::new(),
                    members: Vec::new(),
                    authorized_operations: super::operations::NOT_ASKED,
                },
            },
        )
        .collect();
    DescribeGroupsResponse {
        throttle_time_ms: 0,
        groups,
    }
}

/// ListGroups: every group, or those in the states asked for (v4+, Kafka's
/// names in any case: `Reconciling` for a consumer-protocol group handing
/// partitions over); unknown state names match nothing.
pub(super) fn list(conn: &Conn, r: ListGroupsRequest) -> ListGroupsResponse {
    // Types as Kafka names them, case aside; an unknown one matches no
    // group.
    let types: Vec<&str> = r
        .types_filter
        .iter()
        .map(|t| {
            if t.eq_ignore_ascii_case(CLASSIC) {
                CLASSIC
            } else if t.eq_ignore_ascii_case(CONSUMER) {
                CONSUMER
            } else {
                ""
            }
        })
        .collect();
    let mut groups = conn.broker.service.list_groups(&[]);
    if !r.states_filter.is_empty() {
        groups.retain(|g| g.state.matches_any(g.consumer_protocol, &r.states_filter));
    }
    ListGroupsResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        groups: groups
            .into_iter()
            .map(|g| ListedGroup {
                group_id: g.group,
                protocol_type: g.protocol_type,
                group_state: g.state.kafka_name(g.consumer_protocol).to_owned(),
                group_type: if g.consumer_protocol {
                    CONSUMER
                } else {
                    CLASSIC
                }
                .to_owned(),
            })
            .filter(|g| types.is_empty() || types.contains(&g.group_type.as_str()))
            .collect(),
    }
}

/// Kafka's group type of a classic-protocol group (and of a group with only
/// committed offsets).
const CLASSIC: &str = "classic";
/// Kafka's group type of a consumer-group-protocol (KIP-848) group.
const CONSUMER: &str = "consumer";

/// DeleteGroups: only groups without members (`NON_EMPTY_GROUP` otherwise).
pub(super) async fn delete(conn: &Conn, r: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let svc = Arc::clone(&conn.broker.service);
    let refused = refusals(&svc, &r.groups_names).await;
    let asked = ours(&r.groups_names, &refused);
    let mut deleted = svc.delete_groups(asked).await.into_iter();
    // Request order is kept; groups of other nodes get NOT_COORDINATOR
    // (COORDINATOR_NOT_AVAILABLE while none is known).
    let results = r
        .groups_names
        .into_iter()
        .zip(refused)
        .map(
            |(group_id, refused)| match refused.is_none().then(|| deleted.next()).flatten() {
                Some((group_id, e)) => DeletedGroup {
                    group_id,
                    error_code: to_kafka(e),
                },
                None => DeletedGroup {
                    group_id,
                    error_code: refused.unwrap_or(code::NOT_COORDINATOR),
                },
            },
        )
        .collect();
    DeleteGroupsResponse {
        throttle_time_ms: 0,
        results,
    }
}

/// Each group's coordinator check ([`crate::service::Service::check_coordinators`]):
/// `None` where this node serves the group, else the refusal's Kafka code.
async fn refusals(svc: &crate::service::Service, groups: &[String]) -> Vec<Option<i16>> {
    let names: Vec<&str> = groups.iter().map(String::as_str).collect();
    svc.check_coordinators(&names)
        .await
        .into_iter()
        .map(|c| c.err().map(|refused| to_kafka(refused.code)))
        .collect()
}

/// The groups of `groups` this node serves, in order.
fn ours(groups: &[String], refused: &[Option<i16>]) -> Vec<String> {
    groups
        .iter()
        .zip(refused)
        .filter(|(_, r)| r.is_none())
        .map(|(g, _)| g.clone())
        .collect()
}
