//! Native-protocol glue for the group APIs (keys 13-19): decode, call
//! [`crate::service::groups`], encode. In a cluster, a group this node does
//! not coordinate is refused with `NotCoordinator` (ListGroups lists only
//! this node's groups). A join or sync that waits for the
//! other members ends early with `BrokerShuttingDown` when the broker stops.

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::delete_groups::{
    DeleteGroupsRequest, DeleteGroupsResponse, DeletedGroup,
};
use sluice_protocol::wire::describe_groups::{
    DescribeGroupsRequest, DescribeGroupsResponse, DescribedGroup, DescribedMember,
};
use sluice_protocol::wire::heartbeat::{HeartbeatRequest, HeartbeatResponse};
use sluice_protocol::wire::join_group::{JoinGroupMember, JoinGroupRequest, JoinGroupResponse};
use sluice_protocol::wire::leave_group::{LeaveGroupRequest, LeaveGroupResponse, LeftMember};
use sluice_protocol::wire::list_groups::{ListGroupsRequest, ListGroupsResponse, ListedGroup};
use sluice_protocol::wire::sync_group::{SyncGroupRequest, SyncGroupResponse};
use sluice_protocol::wire::{ApiKey, ErrorCode};

use super::connection::{Conn, ConnError, peer_closed};
use super::respond;
use crate::service::groups::{GroupState, Heartbeat, JoinGroup, MemberRef, SyncGroup};
use crate::service::stats::Stats;

/// Serves one request of a group API.
pub(super) async fn serve(
    conn: &mut Conn,
    id: u32,
    api: ApiKey,
    body: &[u8],
) -> Result<(), ConnError> {
    let svc = Arc::clone(&conn.broker.service);
    macro_rules! decode {
        ($t:ty) => {
            decode_or_answer!(conn, id, api, body, $t)
        };
    }
    // A group this node does not coordinate: `NotCoordinator`, naming the
    // coordinator (cluster mode only).
    macro_rules! coordinated {
        ($check:expr) => {
            if let Err(r) = $check.await {
                return conn.write_error(id, r.code, &r.message).await;
            }
        };
    }
    // A request naming more groups than `max_partitions_per_request` is
    // refused before it is decoded.
    macro_rules! at_most {
        ($what:expr) => {
            if let Err(r) = super::names_within(
                body,
                false,
                conn.broker.config.max_partitions_per_request,
                $what,
            ) {
                return conn.write_error(id, r.code, &r.message).await;
            }
        };
    }
    match api {
        ApiKey::JoinGroup => {
            let req = decode!(JoinGroupRequest);
            conn.wait_allowance = Duration::from_millis(u64::from(req.rebalance_timeout_ms));
            coordinated!(svc.check_coordinator(&req.group));
            let join = JoinGroup {
                group: req.group,
                member_id: req.member_id,
                group_instance_id: req.group_instance_id,
                client_id: req.client_id,
                client_host: conn.peer.ip().to_string(),
                session_timeout: Duration::from_millis(u64::from(req.session_timeout_ms)),
                rebalance_timeout: Duration::from_millis(u64::from(req.rebalance_timeout_ms)),
                protocol_type: req.protocol_type,
                protocols: req
                    .protocols
                    .into_iter()
                    .map(|p| (p.name, p.metadata))
                    .collect(),
                require_known_member_id: true,
            };
            let mut stop = conn.stop.clone();
            let r = tokio::select! {
                r = svc.join_group(join) => r,
                () = stopping(&mut stop) => return shutting_down(conn, id).await,
                () = peer_closed(&conn.stream) => return Err(left_while_waiting()),
            };
            let resp = JoinGroupResponse {
                error_code: r.error,
                generation_id: r.generation_id,
                protocol_type: r.protocol_type,
                protocol_name: r.protocol_name,
                leader: r.leader,
                member_id: r.member_id,
                members: r
                    .members
                    .into_iter()
                    .map(|m| JoinGroupMember {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        metadata: m.metadata,
                    })
                    .collect(),
            };
            respond(conn, id, &resp).await
        }
        ApiKey::SyncGroup => {
            let req = decode!(SyncGroupRequest);
            coordinated!(svc.check_coordinator(&req.group));
            let sync = SyncGroup {
                group: req.group,
                generation_id: req.generation_id,
                member_id: req.member_id,
                group_instance_id: req.group_instance_id,
                protocol_type: req.protocol_type,
                protocol_name: req.protocol_name,
                assignments: req
                    .assignments
                    .into_iter()
                    .map(|a| (a.member_id, a.assignment))
                    .collect(),
            };
            let mut stop = conn.stop.clone();
            let r = tokio::select! {
                r = svc.sync_group(sync) => r,
                () = stopping(&mut stop) => return shutting_down(conn, id).await,
                () = peer_closed(&conn.stream) => return Err(left_while_waiting()),
            };
            let resp = SyncGroupResponse {
                error_code: r.error,
                protocol_type: r.protocol_type,
                protocol_name: r.protocol_name,
                assignment: r.assignment,
            };
            respond(conn, id, &resp).await
        }
        ApiKey::Heartbeat => {
            let req = decode!(HeartbeatRequest);
            coordinated!(svc.check_coordinator(&req.group));
            let error_code = svc
                .heartbeat(Heartbeat {
                    group: req.group,
                    generation_id: req.generation_id,
                    member_id: req.member_id,
                    group_instance_id: req.group_instance_id,
                })
                .await;
            respond(conn, id, &HeartbeatResponse { error_code }).await
        }
        ApiKey::LeaveGroup => {
            let req = decode!(LeaveGroupRequest);
            coordinated!(svc.check_coordinator(&req.group));
            let members = req
                .members
                .into_iter()
                .map(|m| MemberRef {
                    member_id: m.member_id,
                    group_instance_id: m.group_instance_id,
                })
                .collect();
            let r = svc.leave_group(req.group, members).await;
            let resp = LeaveGroupResponse {
                error_code: r.error,
                members: r
                    .members
                    .into_iter()
                    .map(|(m, error_code)| LeftMember {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        error_code,
                    })
                    .collect(),
            };
            respond(conn, id, &resp).await
        }
        ApiKey::DescribeGroups => {
            at_most!("groups");
            let req = decode!(DescribeGroupsRequest);
            coordinated!(svc.check_coordinator_all(&req.groups));
            let groups = svc
                .describe_groups(req.groups)
                .into_iter()
                .map(|g| DescribedGroup {
                    error_code: g.error,
                    group: g.group,
                    state: g.state.kafka_name(g.consumer_protocol).to_owned(),
                    generation_id: g.generation_id,
                    protocol_type: g.protocol_type,
                    protocol: g.protocol,
                    members: g
                        .members
                        .into_iter()
                        .map(|m| DescribedMember {
                            member_id: m.member_id,
                            group_instance_id: m.group_instance_id,
                            client_id: m.client_id,
                            client_host: m.client_host,
                            metadata: m.metadata,
                            assignment: m.assignment,
                        })
                        .collect(),
                })
                .collect();
            respond(conn, id, &DescribeGroupsResponse { groups }).await
        }
        ApiKey::ListGroups => {
            let req = decode!(ListGroupsRequest);
            if let Some(name) = req.states.iter().find(|n| !GroupState::is_state_name(n)) {
                Stats::add(&conn.broker.stats.bad_requests, 1);
                let msg = format!("unknown group state {name:?}");
                return conn.write_error(id, ErrorCode::InvalidRequest, &msg).await;
            }
            let groups = svc
                .list_groups(&[])
                .into_iter()
                .filter(|g| {
                    req.states.is_empty() || g.state.matches_any(g.consumer_protocol, &req.states)
                })
                .map(|g| ListedGroup {
                    group: g.group,
                    protocol_type: g.protocol_type,
                    state: g.state.kafka_name(g.consumer_protocol).to_owned(),
                })
                .collect();
            let resp = ListGroupsResponse {
                error_code: ErrorCode::None,
                groups,
            };
            respond(conn, id, &resp).await
        }
        ApiKey::DeleteGroups => {
            at_most!("groups");
            let req = decode!(DeleteGroupsRequest);
            coordinated!(svc.check_coordinator_all(&req.groups));
            let results = svc
                .delete_groups(req.groups)
                .await
                .into_iter()
                .map(|(group, error_code)| DeletedGroup { group, error_code })
                .collect();
            respond(conn, id, &DeleteGroupsResponse { results }).await
        }
        other => {
            let msg = format!("{other:?} is not a group API");
            conn.write_error(id, ErrorCode::InvalidRequest, &msg).await
        }
    }
}

/// Completes when the broker starts shutting down.
async fn stopping(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn shutting_down(conn: &mut Conn, id: u32) -> Result<(), ConnError> {
    conn.write_error(
        id,
        ErrorCode::BrokerShuttingDown,
        "the broker is shutting down",
    )
    .await
}

/// The end of a connection whose client closed its end while its JoinGroup
/// or SyncGroup waited for the rest of the group: the wait is dropped (the
/// member stays in the group until its timeouts, as a client that vanished
/// does), so the connection's seat, which never gives way while serving,
/// is not held for up to the member's rebalance timeout.
fn left_while_waiting() -> ConnError {
    ConnError::Io(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "the client closed its connection while its group call waited",
    ))
}
