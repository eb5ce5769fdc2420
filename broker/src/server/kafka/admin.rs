//! Kafka's control-plane APIs over the service: Metadata, ListOffsets,
//! FindCoordinator, OffsetCommit, OffsetFetch, CreateTopics, DeleteTopics,
//! DescribeConfigs, InitProducerId.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::kafka::admin::{
    CreatableTopic, CreateTopicsRequest, CreateTopicsResponse, CreatedConfig, CreatedTopic,
    DeleteTopicState, DeleteTopicsRequest, DeleteTopicsResponse, DeletedTopic,
    DescribeConfigsRequest, DescribeConfigsResponse, DescribeConfigsResult, DescribedConfig,
    InitProducerIdRequest, InitProducerIdResponse, RESOURCE_BROKER, RESOURCE_GROUP, RESOURCE_TOPIC,
};
use sluice_protocol::kafka::error_code::{KafkaCode, code, to_kafka, to_kafka_partition};
use sluice_protocol::kafka::list_offsets::{
    EARLIEST, LATEST, ListOffsetsPartitionResponse, ListOffsetsRequest, ListOffsetsResponse,
    ListOffsetsTopicResponse, MAX_TIMESTAMP,
};
use sluice_protocol::kafka::metadata::{
    MetadataBroker, MetadataPartition, MetadataRequest, MetadataResponse, MetadataTopic,
};
use sluice_protocol::kafka::offsets::{
    Coordinator, FindCoordinatorRequest, FindCoordinatorResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetCommitTopicResponse, OffsetFetchGroupResponse,
    OffsetFetchPartition, OffsetFetchRequest, OffsetFetchResponse, OffsetFetchTopicResponse,
    PartitionError,
};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::topic_config::TopicConfig;

use super::{Advertised, configs, may_name_topic, operations, partition_index};
use crate::server::native::connection::{Conn, Front};
use crate::service::Refused;
use crate::service::admin::{NewTopic, OffsetLookup, OffsetQuery};
use crate::service::coordinator::GroupCoordinator;
use crate::service::groups::CommitAs;
use crate::service::offsets::Commit;
use crate::topics::TopicId;

/// The cluster id in Metadata answers of a broker without `--cluster` (a
/// cluster's nodes answer with its id, `ClusterConfig::cluster_id`).
const CLUSTER_ID: &str = "sluice";

fn advertised(conn: &Conn) -> Advertised {
    match &conn.front {
        Front::Kafka(a) => Advertised::clone(a),
        Front::Native => Advertised {
            node_id: 0,
            host: String::new(),
            port: 0,
        },
    }
}

/// Metadata: the cluster's brokers (this one as its own listener
/// advertises it; the others by their Kafka addresses; a node without a
/// Kafka address is left out, and so is one this node has not reached for
/// [`crate::replication::controller::BROKER_SESSION_TIMEOUT`], whose
/// replicas are then listed as offline), and the topics asked for (all when null)
/// with each partition's leader, epoch, replicas and in-sync replicas. A
/// partition led by a node left out shows leader -1 and
/// `LEADER_NOT_AVAILABLE`. With `auto_create_topics`, topics named that
/// do not exist are created first
/// ([`Service::create_on_first_use`](crate::service::Service::create_on_first_use)).
pub(super) async fn metadata(conn: &Conn, r: MetadataRequest, version: i16) -> MetadataResponse {
    let topic_ops = operations::answer(r.include_topic_authorized_operations, operations::TOPIC);
    let cluster_ops =
        operations::answer(r.include_cluster_authorized_operations, operations::CLUSTER);
    let me = advertised(conn);
    let svc = &conn.broker.service;
    let leadership = svc.leadership.as_ref();
    let local = leadership.local_node();
    let node = |id: u64| i32::try_from(id).unwrap_or(i32::MAX);
    let nodes = |ids: Vec<u64>| -> Vec<i32> {
        ids.into_iter()
            .map(|id| if id == local { me.node_id } else { node(id) })
            .collect()
    };
    let mut brokers = vec![MetadataBroker {
        node_id: me.node_id,
        host: me.host.clone(),
        port: me.port,
        rack: None,
    }];
    let unreachable = leadership.unreachable();
    for b in leadership.brokers() {
        let Some((host, port)) = b.kafka.as_deref().and_then(crate::config::split_host_port) else {
            continue;
        };
        if b.id != local && !unreachable.contains(&b.id) {
            brokers.push(MetadataBroker {
                node_id: node(b.id),
                host: host.to_owned(),
                port: i32::from(port),
                rack: None,
            });
        }
    }
    let listed = |id: i32| brokers.iter().any(|b| b.node_id == id);
    // A topic asked for by id alone (version 12) is looked up by it; an id
    // no topic has is answered with UNKNOWN_TOPIC_ID.
    let mut unknown_ids = Vec::new();
    let names: Option<Vec<String>> = r.topics.map(|ts| {
        let ids: Vec<TopicId> = ts
            .iter()
            .filter(|t| t.name.is_none())
            .map(|t| TopicId(t.topic_id))
            .collect();
        let mut found = svc.topic_names(&ids).into_iter().zip(ids);
        ts.into_iter()
            .filter_map(|t| match t.name {
                Some(name) => Some(name),
                None => match found.next() {
                    Some((Some(name), _)) => Some(name),
                    Some((None, id)) => {
                        unknown_ids.push(id);
                        None
                    }
                    None => None,
                },
            })
            .collect()
    });
    // Before version 4 a request cannot say, and allows it (as in Kafka).
    let refused = match &names {
        Some(names) if version < 4 || r.allow_auto_topic_creation => {
            svc.create_on_first_use(names, conn.peer).await
        }
        _ => HashMap::new(),
    };
    let mut topics: Vec<MetadataTopic> = svc
        .describe_topics(names.as_deref())
        .into_iter()
        .map(|t| MetadataTopic {
            error_code: refused
                .get(t.name.as_str())
                .map_or_else(|| to_kafka(t.error_code), |&e| to_kafka(e)),
            topic_id: t.id.0,
            is_internal: crate::topics::is_internal(&t.name),
            partitions: t
                .partitions
                .into_iter()
                .map(|p| {
                    let l = crate::service::leadership::describe(leadership, &t.name, p.partition);
                    let leader_id = match l.leader {
                        Some(id) if id == local => me.node_id,
                        Some(id) => node(id),
                        None => -1,
                    };
                    let (error_code, leader_id) = if leader_id == -1 || !listed(leader_id) {
                        (code::LEADER_NOT_AVAILABLE, -1)
                    } else {
                        (to_kafka(p.error_code), leader_id)
                    };
                    let offline = l
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| unreachable.contains(r))
                        .collect();
                    MetadataPartition {
                        error_code,
                        partition_index: i32::try_from(p.partition).unwrap_or(i32::MAX),
                        leader_id,
                        leader_epoch: i32::try_from(l.leader_epoch).unwrap_or(i32::MAX),
                        replica_nodes: nodes(l.replicas),
                        isr_nodes: nodes(l.isr),
                        offline_replicas: nodes(offline),
                    }
                })
                .collect(),
            name: Some(t.name),
            topic_authorized_operations: topic_ops,
        })
        .collect();
    topics.extend(unknown_ids.into_iter().map(|id| MetadataTopic {
        error_code: code::UNKNOWN_TOPIC_ID,
        topic_id: id.0,
        name: None,
        is_internal: false,
        partitions: Vec::new(),
        topic_authorized_operations: topic_ops,
    }));
    MetadataResponse {
        throttle_time_ms: 0,
        brokers,
        cluster_id: Some(
            leadership
                .cluster_id()
                .unwrap_or_else(|| CLUSTER_ID.to_owned()),
        ),
        controller_id: me.node_id,
        topics,
        cluster_authorized_operations: cluster_ops,
    }
}

/// ListOffsets: earliest (-2), latest (-1), by timestamp (the first
/// record at or after it, with its timestamp and its batch's leader
/// epoch) or, from v7, the largest timestamp (-3: the first record with
/// it); as in Kafka, a timestamp later than every record, or -3 on an
/// empty partition, answers offset -1 and timestamp -1. Other negative
/// timestamps, and -3 before v7, get `UNSUPPORTED_VERSION` for the
/// partition. A partition named more than once gets `INVALID_REQUEST` at
/// each place, as Kafka answers: a timestamp look-up may decompress a whole
/// batch, which a request must not be able to ask for again and again.
pub(super) async fn list_offsets(
    conn: &Conn,
    r: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut named: std::collections::HashMap<(&str, i32), u32> = std::collections::HashMap::new();
    for t in &r.topics {
        for p in &t.partitions {
            *named
                .entry((t.name.as_str(), p.partition_index))
                .or_default() += 1;
        }
    }
    let mut lookups = Vec::new();
    let mut local: Vec<Option<KafkaCode>> = Vec::new();
    for t in &r.topics {
        for p in &t.partitions {
            if named.get(&(t.name.as_str(), p.partition_index)) > Some(&1) {
                local.push(Some(code::INVALID_REQUEST));
                continue;
            }
            let query = match p.timestamp {
                EARLIEST => Some(OffsetQuery::Earliest),
                LATEST => Some(OffsetQuery::Latest),
                MAX_TIMESTAMP if version >= 7 => Some(OffsetQuery::MaxTimestamp),
                ts if ts >= 0 => Some(OffsetQuery::Timestamp(ts)),
                _ => None,
            };
            match (partition_index(p.partition_index), query) {
                _ if !may_name_topic(&t.name) => {
                    local.push(Some(code::UNKNOWN_TOPIC_OR_PARTITION));
                }
                (Some(partition), Some(query)) => {
                    local.push(None);
                    lookups.push(OffsetLookup {
                        topic: t.name.clone(),
                        partition,
                        query,
                    });
                }
                (None, _) => local.push(Some(code::UNKNOWN_TOPIC_OR_PARTITION)),
                (_, None) => local.push(Some(code::UNSUPPORTED_VERSION)),
            }
        }
    }
    let svc = Arc::clone(&conn.broker.service);
    let found = svc.list_offsets(lookups).await;
    let mut found_iter = found.as_ref().ok().map(|v| v.iter());
    let mut local = local.into_iter();
    let mut resp = ListOffsetsResponse::default();
    for t in r.topics {
        let mut out = ListOffsetsTopicResponse {
            name: t.name,
            partitions: Vec::new(),
        };
        for p in t.partitions {
            let mut pr = ListOffsetsPartitionResponse {
                partition_index: p.partition_index,
                error_code: code::NONE,
                timestamp: -1,
                offset: -1,
                leader_epoch: -1,
            };
            match (local.next().flatten(), &found, found_iter.as_mut()) {
                (Some(c), _, _) => pr.error_code = c,
                (None, Err(refused), _) => pr.error_code = to_kafka_partition(refused.code),
                (None, Ok(_), Some(it)) => match it.next() {
                    Some(f) => {
                        pr.error_code = to_kafka_partition(f.error_code);
                        if f.error_code.is_ok() && !f.past_end {
                            pr.offset = i64::try_from(f.offset).unwrap_or(-1);
                            pr.leader_epoch = f.leader_epoch;
                            if let Some((timestamp, _)) = f.found {
                                pr.timestamp = timestamp;
                            }
                        }
                    }
                    None => pr.error_code = code::UNKNOWN_SERVER_ERROR,
                },
                (None, Ok(_), None) => pr.error_code = code::UNKNOWN_SERVER_ERROR,
            }
            out.partitions.push(pr);
        }
        resp.topics.push(out);
    }
    resp
}

/// FindCoordinator: the group's coordinator (`service::coordinator`: this
/// broker without `--cluster`) with its Kafka address; all versions, v4+
/// batches of keys. A coordinator not known yet is waited for, up to
/// [`COORDINATOR_WAIT`](crate::service::coordinator::COORDINATOR_WAIT) for
/// the whole request; one still unknown then, or without a Kafka listener,
/// is `COORDINATOR_NOT_AVAILABLE`. Transactions are not served: a
/// transaction coordinator is refused with
/// `TRANSACTIONAL_ID_AUTHORIZATION_FAILED` (final for clients), any other
/// key type with `INVALID_REQUEST`.
pub(super) async fn find_coordinator(
    conn: &Conn,
    r: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let me = advertised(conn);
    let keys = if version >= 4 {
        r.coordinator_keys
    } else {
        vec![r.key]
    };
    let deadline = std::time::Instant::now() + crate::service::coordinator::COORDINATOR_WAIT;
    let mut coordinators = Vec::with_capacity(keys.len());
    for key in keys {
        let found = if r.key_type == 0 {
            Some(
                conn.broker
                    .service
                    .group_coordinator_by(&key, deadline)
                    .await,
            )
        } else {
            None
        };
        coordinators.push(coordinator_answer(&me, key, r.key_type, found));
    }
    FindCoordinatorResponse {
        throttle_time_ms: 0,
        coordinators,
    }
}

/// One key's answer to FindCoordinator: `found` is its group's
/// coordinator (`None` for another key type).
fn coordinator_answer(
    me: &Advertised,
    key: String,
    key_type: i8,
    found: Option<GroupCoordinator>,
) -> Coordinator {
    if let Some(found) = found {
        let unavailable = |why: String| Coordinator {
            key: key.clone(),
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code: code::COORDINATOR_NOT_AVAILABLE,
            error_message: Some(why),
        };
        match found {
            GroupCoordinator::Local => Coordinator {
                key,
                node_id: me.node_id,
                host: me.host.clone(),
                port: me.port,
                error_code: code::NONE,
                error_message: None,
            },
            GroupCoordinator::Remote(b) => {
                match b.kafka.as_deref().and_then(crate::config::split_host_port) {
                    Some((host, port)) => Coordinator {
                        node_id: i32::try_from(b.id).unwrap_or(i32::MAX),
                        host: host.to_owned(),
                        port: i32::from(port),
                        error_code: code::NONE,
                        error_message: None,
                        key,
                    },
                    None => unavailable(format!(
                        "the coordinator, node {}, has no Kafka listener",
                        b.id
                    )),
                }
            }
            GroupCoordinator::Unavailable => unavailable(
                "no node coordinates the group yet (the group-state topic is being created, \
                 or its partition is electing a leader)"
                    .to_owned(),
            ),
        }
    } else {
        // Not COORDINATOR_NOT_AVAILABLE, which clients retry until
        // their own timeout: a transactional producer (librdkafka,
        // the Java client) takes this code from FindCoordinator as
        // fatal and reports the message at once.
        let (error_code, why) = if key_type == 1 {
            (
                code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                "transactions are not supported by this broker (Sluice); \
                 produce without a transactional.id"
                    .to_owned(),
            )
        } else {
            (
                code::INVALID_REQUEST,
                format!("unknown coordinator type {key_type}"),
            )
        };
        Coordinator {
            key,
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code,
            error_message: Some(why),
        }
    }
}

/// OffsetCommit, fenced as Kafka's coordinator does: a member commits in
/// its generation; generation -1 with no member id is a simple commit,
/// allowed only while the group has no members.
pub(super) async fn offset_commit(
    conn: &Conn,
    r: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let mut commits = Vec::new();
    let mut local: Vec<Option<KafkaCode>> = Vec::new();
    for t in &r.topics {
        for p in &t.partitions {
            match partition_index(p.partition_index).filter(|_| may_name_topic(&t.name)) {
                Some(partition) => {
                    local.push(None);
                    commits.push(Commit {
                        topic: t.name.clone(),
                        partition,
                        // A negative offset (KafkaJS commits -1 or -2 to
                        // reset a group's position) leaves no committed
                        // offset, which OffsetFetch answers as -1.
                        offset: u64::try_from(p.committed_offset).ok(),
                        metadata: p.committed_metadata.clone().unwrap_or_default(),
                    });
                }
                None => local.push(Some(code::UNKNOWN_TOPIC_OR_PARTITION)),
            }
        }
    }
    let svc = Arc::clone(&conn.broker.service);
    let done = if let Err(refused) = svc.check_coordinator(&r.group_id).await {
        // Another node coordinates the group: NOT_COORDINATOR everywhere.
        local.iter_mut().for_each(|l| *l = None);
        Err(refused)
    } else if commits.is_empty() {
        Ok(Vec::new())
    } else if version < 9 && svc.is_consumer_member(&r.group_id, &r.member_id) {
        // As Kafka: a member of the consumer group protocol (KIP-848)
        // commits with v9 or later, which carries its member epoch.
        Err(Refused {
            code: ErrorCode::UnsupportedVersion,
            message: String::new(),
        })
    } else {
        let member = CommitAs {
            generation_id: r.generation_id,
            member_id: r.member_id,
            group_instance_id: r.group_instance_id,
        };
        svc.commit_offsets_as(r.group_id, member, commits).await
    };
    let mut it = done.as_ref().ok().map(|v| v.iter());
    let mut local = local.into_iter();
    let mut resp = OffsetCommitResponse::default();
    for t in r.topics {
        let mut out = OffsetCommitTopicResponse {
            name: t.name,
            partitions: Vec::new(),
        };
        for p in t.partitions {
            let error_code = match (local.next().flatten(), &done, it.as_mut()) {
                (Some(c), _, _) => c,
                (None, Err(refused), _) => to_kafka(refused.code),
                (None, Ok(_), Some(it)) => it
                    .next()
                    .map_or(code::UNKNOWN_SERVER_ERROR, |c| to_kafka(c.error_code)),
                (None, Ok(_), None) => code::UNKNOWN_SERVER_ERROR,
            };
            out.partitions.push(PartitionError {
                partition_index: p.partition_index,
                error_code,
            });
        }
        resp.topics.push(out);
    }
    resp
}

/// OffsetFetch: committed offsets of each group (-1 where none).
///
/// A group named twice is answered once, and so is a partition named twice
/// for one group (each answer carries the commit's metadata, up to 4 KiB,
/// so repeats would let a small request ask for a huge answer). A request
/// naming more groups, or more partitions in all, than
/// `max_partitions_per_request` gets `INVALID_REQUEST` for every group and
/// partition it names, with no offsets.
pub(super) async fn offset_fetch(conn: &Conn, r: OffsetFetchRequest) -> OffsetFetchResponse {
    let mut seen_groups = std::collections::HashSet::with_capacity(r.groups.len());
    let asked: Vec<_> = r
        .groups
        .into_iter()
        .filter(|g| seen_groups.insert(g.group_id.clone()))
        .map(|g| {
            let wanted = g.topics.as_ref().map(|ts| {
                let mut seen = std::collections::HashSet::new();
                ts.iter()
                    .flat_map(|t| {
                        t.partition_indexes
                            .iter()
                            .filter_map(move |&p| Some((t.name.as_str(), partition_index(p)?)))
                    })
                    .filter(|&(t, p)| seen.insert((t, p)))
                    .map(|(t, p)| (t.to_owned(), p))
                    .collect::<Vec<_>>()
            });
            // Negative indexes, which no partition has: answered with no
            // offset, as Kafka answers every partition asked for.
            let mut seen = std::collections::HashSet::new();
            let negative: Vec<(String, i32)> = g
                .topics
                .iter()
                .flatten()
                .flat_map(|t| {
                    t.partition_indexes
                        .iter()
                        .filter(|&&p| p < 0)
                        .map(move |&p| (t.name.as_str(), p))
                })
                .filter(|&(t, p)| seen.insert((t, p)))
                .map(|(t, p)| (t.to_owned(), p))
                .collect();
            (g, wanted, negative)
        })
        .collect();
    let cap = conn.broker.config.max_partitions_per_request as usize;
    let named: usize = asked
        .iter()
        .map(|(_, w, n)| w.as_ref().map_or(0, Vec::len) + n.len())
        .sum();
    let refuse_all = asked.len() > cap || named > cap;
    // Each group's coordination confirmed first (in a cluster), so the
    // offsets answered are never older than ones committed meanwhile.
    let checked: Vec<Result<(), i16>> = if refuse_all {
        asked.iter().map(|_| Err(code::INVALID_REQUEST)).collect()
    } else {
        let names: Vec<&str> = asked.iter().map(|(g, _, _)| g.group_id.as_str()).collect();
        conn.broker
            .service
            .check_coordinators_for_read(&names)
            .await
            .into_iter()
            .map(|r| r.map_err(|refused| to_kafka(refused.code)))
            .collect()
    };
    let groups = asked
        .into_iter()
        .zip(checked)
        .map(|((g, wanted, negative), refused)| {
            let mut out = OffsetFetchGroupResponse {
                group_id: g.group_id.clone(),
                topics: Vec::new(),
                error_code: code::NONE,
            };
            if let Err(e) = refused {
                // Before v2 only the partitions carry an error: each asked
                // for gets it too.
                out.error_code = e;
                let asked = wanted
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(t, p)| (t, i32::try_from(p).unwrap_or(i32::MAX)));
                for (topic, partition) in asked.chain(negative) {
                    let part = OffsetFetchPartition {
                        partition_index: partition,
                        committed_offset: -1,
                        committed_leader_epoch: -1,
                        metadata: None,
                        error_code: e,
                    };
                    match out.topics.last_mut() {
                        Some(t) if t.name == topic => t.partitions.push(part),
                        _ => out.topics.push(OffsetFetchTopicResponse {
                            name: topic,
                            partitions: vec![part],
                        }),
                    }
                }
                return out;
            }
            if let Some(member) = g.member_id.as_deref().filter(|m| !m.is_empty()) {
                let checked =
                    conn.broker
                        .service
                        .check_offset_fetch(&g.group_id, member, g.member_epoch);
                if let Err(c) = checked {
                    out.error_code = to_kafka(c);
                    return out;
                }
            }
            match conn.broker.service.fetch_offsets(&g.group_id, wanted) {
                Err(c) => out.error_code = to_kafka(c),
                Ok(list) => {
                    for c in list {
                        let part = OffsetFetchPartition {
                            partition_index: i32::try_from(c.partition).unwrap_or(i32::MAX),
                            committed_offset: c
                                .offset
                                .and_then(|o| i64::try_from(o).ok())
                                .unwrap_or(-1),
                            committed_leader_epoch: -1,
                            metadata: Some(c.metadata),
                            error_code: code::NONE,
                        };
                        match out.topics.last_mut() {
                            Some(t) if t.name == c.topic => t.partitions.push(part),
                            _ => out.topics.push(OffsetFetchTopicResponse {
                                name: c.topic,
                                partitions: vec![part],
                            }),
                        }
                    }
                    for (topic, partition) in negative {
                        let part = OffsetFetchPartition {
                            partition_index: partition,
                            committed_offset: -1,
                            committed_leader_epoch: -1,
                            metadata: Some(String::new()),
                            error_code: code::NONE,
                        };
                        match out.topics.iter_mut().find(|t| t.name == topic) {
                            Some(t) => t.partitions.push(part),
                            None => out.topics.push(OffsetFetchTopicResponse {
                                name: topic,
                                partitions: vec![part],
                            }),
                        }
                    }
                }
            }
            out
        })
        .collect();
    OffsetFetchResponse {
        throttle_time_ms: 0,
        groups,
    }
}

/// The partition count a CreateTopics entry's manual assignment gives, as
/// Kafka checks one (the count and factor left at -1 or matching it, partitions numbered
/// from 0 without gaps, each with its brokers listed once), on a single
/// broker, where the only assignment that can be kept is every partition on
/// node 0; a cluster refuses manual assignments.
fn single_broker_assignment(
    t: &CreatableTopic,
    clustered: bool,
) -> Result<u32, (KafkaCode, String)> {
    let refuse = |m: String| Err((code::INVALID_REPLICA_ASSIGNMENT, m));
    if clustered {
        return refuse("manual replica assignment is not supported in a cluster".to_owned());
    }
    // Kafka wants both at -1; librdkafka's client wants the count given
    // too (it sends -1): either is taken, a count or factor that differs
    // from the assignment's is not.
    let count = t.assignments.len();
    if !(t.num_partitions == -1 || usize::try_from(t.num_partitions).is_ok_and(|n| n == count))
        || !matches!(t.replication_factor, -1 | 1)
    {
        return Err((
            code::INVALID_REQUEST,
            "a manual replica assignment leaves the partition count and replication factor at -1"
                .to_owned(),
        ));
    }
    let mut indexes: Vec<i32> = t.assignments.iter().map(|a| a.partition_index).collect();
    indexes.sort_unstable();
    if indexes.iter().zip(0..).any(|(&i, n)| i != n) {
        return refuse("the assigned partitions must be numbered 0, 1, 2, ... without gaps".into());
    }
    for a in &t.assignments {
        if a.broker_ids != [0] {
            return refuse(format!(
                "partition {} is assigned to brokers {:?}: this single broker is node 0, \
                 and each partition has one replica, on it",
                a.partition_index, a.broker_ids
            ));
        }
    }
    u32::try_from(t.assignments.len())
        .map_err(|_| (code::INVALID_PARTITIONS, "too many partitions".to_owned()))
}

/// CreateTopics: replication factor -1 is the broker's
/// `default_replication_factor`, others are checked by the service against
/// the number of brokers; Kafka config names mapped onto Sluice's settings
/// (see `configs`).
pub(super) async fn create_topics(conn: &Conn, r: CreateTopicsRequest) -> CreateTopicsResponse {
    let default_partitions = conn.broker.config.topic_defaults.partitions;
    let default_factor = conn.broker.config.default_replication_factor;
    let mut factors: Vec<u16> = Vec::new();
    let mut topics = Vec::new();
    let mut local: Vec<Option<(KafkaCode, String)>> = Vec::new();
    // A name given twice: neither entry is created, as Kafka answers.
    let mut seen = HashSet::new();
    let twice: HashSet<String> = r
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.as_str()))
        .map(|t| t.name.clone())
        .collect();
    for t in &r.topics {
        let mut config = TopicConfig::default();
        let checked = (|| {
            if twice.contains(t.name.as_str()) {
                return Err((code::INVALID_REQUEST, "Duplicate topic name.".to_owned()));
            }
            // -1: the broker's default; the service checks the rest
            // against the number of brokers.
            let replication_factor = match t.replication_factor {
                -1 => None,
                n => Some(u16::try_from(n).map_err(|_| {
                    (
                        code::INVALID_REPLICATION_FACTOR,
                        format!("replication factor {n} is not possible"),
                    )
                })?),
            };
            let assigned = if t.assignments.is_empty() {
                None
            } else {
                let clustered = conn.broker.service.cluster.get().is_some();
                Some(single_broker_assignment(t, clustered)?)
            };
            let replication_factor = if assigned.is_some() {
                Some(1)
            } else {
                replication_factor
            };
            let factor = replication_factor.unwrap_or(default_factor);
            for c in &t.configs {
                // As Kafka's controller: a config given without a value is
                // refused, not taken as its default.
                let Some(v) = &c.value else {
                    return Err((
                        code::INVALID_CONFIG,
                        format!("Null value not supported for topic configs: {}", c.name),
                    ));
                };
                configs::apply(&mut config, &c.name, v, factor)
                    .map_err(|m| (code::INVALID_CONFIG, m))?;
            }
            let partitions = match (assigned, t.num_partitions) {
                (Some(n), _) => Ok(n),
                (None, -1) => Ok(default_partitions),
                (None, n) => u32::try_from(n).map_err(|_| {
                    (
                        code::INVALID_PARTITIONS,
                        "partitions must be positive".to_owned(),
                    )
                }),
            }?;
            Ok((partitions, replication_factor))
        })();
        match checked {
            Ok((partitions, replication_factor)) => {
                local.push(None);
                factors.push(replication_factor.unwrap_or(default_factor));
                topics.push(NewTopic {
                    name: t.name.clone(),
                    partitions,
                    config,
                    replication_factor,
                });
            }
            Err(e) => local.push(Some(e)),
        }
    }
    // Each topic's count, factor and settings as asked, for its answer.
    let asked: Vec<(u32, u16, TopicConfig)> = topics
        .iter()
        .zip(factors)
        .map(|(t, f)| (t.partitions, f, t.config.clone()))
        .collect();
    let svc = Arc::clone(&conn.broker.service);
    // In a cluster the answer waits for the new partitions' leaders, up to
    // the request's timeout (0: not at all), at most the controller's.
    let leaders_within = Duration::from_millis(
        u64::try_from(r.timeout_ms)
            .unwrap_or(0)
            .min(conn.broker.config.controller_timeout_ms),
    );
    let done = if topics.is_empty() {
        Ok(Vec::new())
    } else if r.validate_only {
        Ok(svc.check_new_topics(&topics))
    } else {
        svc.create_topics(topics, leaders_within).await
    };
    let mut it = done.as_ref().ok().map(|v| v.iter().zip(asked));
    let mut resp = CreateTopicsResponse::default();
    // A name given twice is answered once, where it is first named, as
    // Kafka answers (librdkafka refuses an answer naming a topic twice).
    let mut answered_twice = std::collections::HashSet::new();
    for (t, l) in r.topics.into_iter().zip(local) {
        if twice.contains(t.name.as_str()) && !answered_twice.insert(t.name.clone()) {
            continue;
        }
        let mut out = CreatedTopic {
            name: t.name,
            topic_id: [0; 16],
            error_code: code::NONE,
            error_message: None,
            num_partitions: -1,
            replication_factor: -1,
            configs: None,
        };
        match (l, &done, it.as_mut()) {
            (Some((c, m)), _, _) => {
                out.error_code = c;
                out.error_message = Some(m);
            }
            (None, Err(refused), _) => {
                out.error_code = to_kafka(refused.code);
                out.error_message = Some(refused.message.clone());
            }
            (None, Ok(_), Some(it)) => match it.next() {
                Some((o, (n, factor, explicit))) => {
                    out.error_code = to_kafka(o.error_code);
                    out.error_message = o.message.clone();
                    if o.error_code.is_ok() {
                        out.num_partitions = i32::try_from(n).unwrap_or(i32::MAX);
                        out.replication_factor = i16::try_from(factor).unwrap_or(i16::MAX);
                        // As DescribeConfigs would list them (v5+).
                        let resolved = svc.resolve_topic_config(&explicit);
                        let listed = configs::listed(&resolved, &explicit, Some(factor));
                        let listed = listed.into_iter();
                        out.configs = Some(
                            listed
                                .map(|(name, value, default)| CreatedConfig {
                                    name: name.to_owned(),
                                    value: Some(value),
                                    read_only: configs::read_only(name),
                                    config_source: configs::source(default),
                                    is_sensitive: false,
                                })
                                .collect(),
                        );
                    }
                }
                None => out.error_code = code::UNKNOWN_SERVER_ERROR,
            },
            (None, Ok(_), None) => out.error_code = code::UNKNOWN_SERVER_ERROR,
        }
        resp.topics.push(out);
    }
    // The new topics' ids, looked up together.
    let created: Vec<&mut CreatedTopic> = resp
        .topics
        .iter_mut()
        .filter(|t| t.error_code == code::NONE)
        .collect();
    let ids = svc.topic_ids(created.iter().map(|t| t.name.as_str()));
    for (t, id) in created.into_iter().zip(ids) {
        t.topic_id = id.map_or([0; 16], |id| id.0);
    }
    resp
}

/// DeleteTopics, by name or (version 6) by id; an id no topic has is
/// answered with UNKNOWN_TOPIC_ID.
pub(super) async fn delete_topics(conn: &Conn, r: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let svc = Arc::clone(&conn.broker.service);
    let refusals = delete_refusals(&r.topics);
    let ids: Vec<TopicId> = r
        .topics
        .iter()
        .filter(|t| t.name.is_none())
        .map(|t| TopicId(t.topic_id))
        .collect();
    let mut by_id = svc.topic_names(&ids).into_iter();
    // The answer tells the id of a topic deleted by name too.
    let mut of_named = svc
        .topic_ids(r.topics.iter().filter_map(|t| t.name.as_deref()))
        .into_iter();
    // Each entry's name, looked up by id where none was given.
    let mut named: Vec<(DeleteTopicState, Option<String>, Option<&'static str>)> = r
        .topics
        .into_iter()
        .zip(refusals)
        .map(|(mut t, refused)| {
            let name = match &t.name {
                Some(n) => {
                    if let Some(id) = of_named.next().flatten() {
                        if refused.is_none() {
                            t.topic_id = id.0;
                        }
                    }
                    Some(n.clone())
                }
                None => by_id.next().flatten(),
            };
            (t, name, refused)
        })
        .collect();
    // A topic named by one entry and given by its id in another: as Kafka's
    // controller, neither deletes it, and it is answered once, at the name
    // entry, with its name and id.
    // (An id given twice is refused as a duplicate and still counts: Kafka
    // refuses the name entry of its topic too.)
    let given = |by_id: bool| -> HashSet<String> {
        named
            .iter()
            .filter(|(t, _, refused)| {
                t.name.is_none() == by_id
                    && (refused.is_none() || (by_id && *refused == Some(DUPLICATE_ID)))
            })
            .filter_map(|(_, n, _)| n.clone())
            .collect()
    };
    let both: HashSet<String> = given(true).intersection(&given(false)).cloned().collect();
    for (t, name, refused) in &mut named {
        if refused.is_none() && name.as_ref().is_some_and(|n| both.contains(n)) {
            *refused = Some(if t.name.is_some() {
                ALREADY_SUPPLIED
            } else {
                ANSWERED_BY_NAME
            });
        }
    }
    let names: Vec<String> = named
        .iter()
        .filter(|(_, _, refused)| refused.is_none())
        .filter_map(|(_, n, _)| n.clone())
        .collect();
    let done = if names.is_empty() {
        Ok(Vec::new())
    } else {
        svc.delete_topics(names).await
    };
    let mut it = done.as_ref().ok().map(|v| v.iter());
    // A name or id given more than once is answered once, where it is
    // first given, as Kafka answers (librdkafka refuses an answer naming a
    // topic twice).
    let mut answered_twice: HashSet<(Option<String>, [u8; 16])> = HashSet::new();
    let responses = named
        .into_iter()
        .filter(|(t, _, refused)| match refused {
            Some(DUPLICATE_NAME | DUPLICATE_ID) => {
                answered_twice.insert((t.name.clone(), t.topic_id))
            }
            Some(ANSWERED_BY_NAME) => false,
            _ => true,
        })
        .map(|(t, name, refused)| {
            let mut out = DeletedTopic {
                name: name.clone(),
                topic_id: t.topic_id,
                error_code: code::NONE,
                error_message: None,
            };
            match (refused, &name, &done, it.as_mut()) {
                (Some(why), _, _, _) => {
                    out.error_code = code::INVALID_REQUEST;
                    out.error_message = Some(why.to_owned());
                }
                (None, None, _, _) => {
                    out.error_code = code::UNKNOWN_TOPIC_ID;
                    out.error_message = Some("no topic has this id".to_owned());
                }
                (None, Some(_), Err(refused), _) => {
                    out.error_code = to_kafka(refused.code);
                    out.error_message = Some(refused.message.clone());
                }
                (None, Some(_), Ok(_), Some(it)) => match it.next() {
                    Some(o) => {
                        out.error_code = to_kafka(o.error_code);
                        out.error_message = o.message.clone();
                    }
                    None => out.error_code = code::UNKNOWN_SERVER_ERROR,
                },
                (None, Some(_), Ok(_), None) => out.error_code = code::UNKNOWN_SERVER_ERROR,
            }
            out
        })
        .collect();
    DeleteTopicsResponse {
        throttle_time_ms: 0,
        responses,
    }
}

const DUPLICATE_NAME: &str = "Duplicate topic name.";
const DUPLICATE_ID: &str = "Duplicate topic id.";
const ALREADY_SUPPLIED: &str = "The provided topic name maps to an ID that was already supplied.";
/// An id entry whose topic another entry names: refused, answered only at
/// the name entry (`ALREADY_SUPPLIED`).
const ANSWERED_BY_NAME: &str = "answered at the entry naming the topic";

/// Why each DeleteTopics entry is refused before anything is looked up, as
/// Kafka's controller refuses it (`INVALID_REQUEST`, nothing deleted): a
/// name and an id both given (an id that does not match must not delete
/// the topic that has the name), neither given, or a name or id given by
/// more than one entry.
fn delete_refusals(topics: &[DeleteTopicState]) -> Vec<Option<&'static str>> {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut ids: HashMap<[u8; 16], usize> = HashMap::new();
    for t in topics {
        match (&t.name, t.topic_id == [0; 16]) {
            (Some(n), true) => *names.entry(n.as_str()).or_default() += 1,
            (None, false) => *ids.entry(t.topic_id).or_default() += 1,
            _ => {}
        }
    }
    topics
        .iter()
        .map(|t| match (&t.name, t.topic_id == [0; 16]) {
            (Some(_), false) => Some("You may not specify both topic name and topic id."),
            (None, true) => Some("Neither topic name nor id were specified."),
            (Some(n), true) if names.get(n.as_str()).is_some_and(|&c| c > 1) => {
                Some(DUPLICATE_NAME)
            }
            (None, false) if ids.get(&t.topic_id).is_some_and(|&c| c > 1) => Some(DUPLICATE_ID),
            _ => None,
        })
        .collect()
}

/// DescribeConfigs: a topic's settings under Kafka's names, those it was
/// created with as topic configs (`DYNAMIC_TOPIC_CONFIG`), the rest as
/// defaults; this broker's settings that have a Kafka name, read-only
/// (`configs::broker_settings`); none for the cluster-wide defaults (an
/// empty name), `INVALID_REQUEST` for another broker's id, as Kafka
/// answers.
///
/// A resource named twice is answered once (the first time), and a request
/// naming more distinct resources than `max_partitions_per_request` gets
/// `INVALID_REQUEST` for each, with no configs: each answer lists up to
/// ~30 settings, so without both a small request could ask for an answer
/// a hundred times its size.
pub(super) fn describe_configs(conn: &Conn, r: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let mut seen = std::collections::HashSet::with_capacity(r.resources.len());
    let resources: Vec<_> = r
        .resources
        .into_iter()
        .filter(|res| seen.insert((res.resource_type, res.resource_name.clone())))
        .collect();
    let cap = conn.broker.config.max_partitions_per_request as usize;
    if resources.len() > cap {
        let message = format!(
            "{} resources in one request, more than {cap} (max_partitions_per_request)",
            resources.len()
        );
        let results = resources
            .into_iter()
            .enumerate()
            .map(|(i, res)| DescribeConfigsResult {
                error_code: code::INVALID_REQUEST,
                // Said once: the answer stays the size of the request.
                error_message: (i == 0).then(|| message.clone()),
                resource_type: res.resource_type,
                resource_name: res.resource_name,
                configs: Vec::new(),
            })
            .collect();
        return DescribeConfigsResponse {
            throttle_time_ms: 0,
            results,
        };
    }
    // Every topic named, described in one pass over the topics.
    let topic_names: Vec<String> = resources
        .iter()
        .filter(|r| r.resource_type == RESOURCE_TOPIC)
        .map(|r| r.resource_name.clone())
        .collect();
    let mut described: std::collections::HashMap<String, _> = if topic_names.is_empty() {
        Default::default()
    } else {
        conn.broker
            .service
            .describe_topics(Some(&topic_names))
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect()
    };
    let results = resources
        .into_iter()
        .map(|res| {
            let mut out = DescribeConfigsResult {
                error_code: code::NONE,
                error_message: None,
                resource_type: res.resource_type,
                resource_name: res.resource_name.clone(),
                configs: Vec::new(),
            };
            match res.resource_type {
                RESOURCE_TOPIC => {
                    match described.remove(&res.resource_name) {
                        Some(t) if t.error_code == ErrorCode::None => {
                            // Null or empty: every config (as Kafka).
                            let wanted = res.configuration_keys.filter(|w| !w.is_empty());
                            let factor = conn.broker.service.replication_factor(&t.name);
                            out.configs = configs::listed(&t.config, &t.explicit, factor)
                                .into_iter()
                                .filter(|(n, ..)| {
                                    wanted.as_ref().is_none_or(|w| w.iter().any(|k| k == n))
                                })
                                .map(|(name, value, default)| DescribedConfig {
                                    name: name.to_owned(),
                                    value: Some(value),
                                    read_only: configs::read_only(name),
                                    is_default: default,
                                    config_source: configs::source(default),
                                    is_sensitive: false,
                                    synonyms: Vec::new(),
                                    config_type: configs::config_type(name),
                                    documentation: None,
                                })
                                .collect();
                        }
                        Some(t) => out.error_code = to_kafka(t.error_code),
                        None => out.error_code = code::UNKNOWN_TOPIC_OR_PARTITION,
                    }
                }
                RESOURCE_BROKER => {
                    let me = advertised(conn).node_id;
                    let name = res.resource_name.as_str();
                    if name.is_empty() {
                        // The cluster-wide dynamic defaults: Sluice has none.
                    } else if name.parse::<i32>().ok() == Some(me) {
                        let resolved = conn
                            .broker
                            .service
                            .resolve_topic_config(&TopicConfig::default());
                        let wanted = res.configuration_keys.filter(|w| !w.is_empty());
                        out.configs = configs::broker_settings(&conn.broker.config, me, &resolved)
                            .into_iter()
                            .filter(|c| {
                                wanted.as_ref().is_none_or(|w| w.iter().any(|k| k == c.name))
                            })
                            .map(|c| DescribedConfig {
                                name: c.name.to_owned(),
                                value: Some(c.value),
                                read_only: true,
                                is_default: false,
                                config_source: c.config_source,
                                is_sensitive: false,
                                synonyms: Vec::new(),
                                config_type: c.config_type,
                                documentation: None,
                            })
                            .collect();
                    } else {
                        // As Kafka answers a broker asked about another.
                        out.error_code = code::INVALID_REQUEST;
                        out.error_message = Some(format!(
                            "unexpected broker id, expected {me} or empty string, but received {name}"
                        ));
                    }
                }
                RESOURCE_GROUP if res.resource_name.is_empty() => {
                    out.error_code = code::INVALID_REQUEST;
                    out.error_message = Some("Group name must not be empty".to_owned());
                }
                RESOURCE_GROUP => {
                    // Any group name, as Kafka answers: the settings every
                    // group goes by, none set for it alone.
                    let wanted = res.configuration_keys.filter(|w| !w.is_empty());
                    out.configs = configs::group_settings(&conn.broker.config)
                        .into_iter()
                        .filter(|(n, _)| wanted.as_ref().is_none_or(|w| w.iter().any(|k| k == n)))
                        .map(|(name, value)| DescribedConfig {
                            name: name.to_owned(),
                            value: Some(value),
                            read_only: true,
                            is_default: true,
                            config_source: configs::source(true),
                            is_sensitive: false,
                            synonyms: Vec::new(),
                            config_type: configs::GROUP_SETTING_TYPE,
                            documentation: None,
                        })
                        .collect();
                }
                _ => {
                    out.error_code = code::INVALID_REQUEST;
                    out.error_message = Some(
                        "only topic, broker and group resources (Sluice has no broker loggers or client metrics subscriptions)"
                            .to_owned(),
                    );
                }
            }
            out
        })
        .collect();
    DescribeConfigsResponse {
        throttle_time_ms: 0,
        results,
    }
}

/// InitProducerId: a new producer id for an idempotent producer;
/// transactional ids are refused.
pub(super) async fn init_producer_id(
    conn: &Conn,
    r: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let mut resp = InitProducerIdResponse {
        throttle_time_ms: 0,
        error_code: code::NONE,
        producer_id: -1,
        producer_epoch: -1,
    };
    if r.transactional_id.is_some() {
        resp.error_code = code::TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
        return resp;
    }
    let svc = Arc::clone(&conn.broker.service);
    match svc.init_producer_id().await {
        Ok((id, epoch)) => {
            resp.producer_id = id;
            resp.producer_epoch = epoch;
        }
        Err(refused) => resp.error_code = to_kafka(refused.code),
    }
    resp
}
