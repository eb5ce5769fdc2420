//! `sluice group list|describe|reset-offsets|delete`.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use clap::{ArgGroup, Subcommand};
use serde_json::json;
use sluice_client::admin::list_offsets_at_leaders;
use sluice_client::{ClientError, Connection};
use sluice_protocol::group::consumer_protocol::{self, Assignment};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::describe_groups::DescribedGroup;
use sluice_protocol::wire::list_groups::ListedGroup;
use sluice_protocol::wire::list_offsets::{ListOffsetsPartition, OffsetSpec};
use sluice_protocol::wire::offset_commit::{CommitPartition, OffsetCommitRequestV1};

use crate::{Outcome, Output, cannot_connect, describe, topic_error};

/// Consumer group administration.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupCommand {
    /// List groups, one per line: NAME STATE PROTOCOL-TYPE
    List {
        /// Output format
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show a group's state and members, and one line per partition:
    /// topic, partition, committed offset, log end offset, lag, member
    Describe {
        /// Group name
        group: String,
        /// Output format
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Set a group's committed offsets for a topic (only while the group
    /// has no members)
    #[command(group(ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset", "to_time"])))]
    ResetOffsets {
        /// Group name
        group: String,
        /// Topic whose partitions are reset (all of them)
        #[arg(long)]
        topic: String,
        /// To each partition's log start
        #[arg(long)]
        to_earliest: bool,
        /// To each partition's end
        #[arg(long)]
        to_latest: bool,
        /// To this offset (clamped to each partition's log start and end)
        #[arg(long, value_name = "N")]
        to_offset: Option<u64>,
        /// To the first record at or after T (ms since the epoch); the end
        /// where there is none
        #[arg(long, value_name = "T")]
        to_time: Option<i64>,
        /// Print the plan without committing it
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete a group without members, with its committed offsets
    Delete {
        /// Group name
        group: String,
    },
}

/// How long `group list` waits for each node of a cluster.
const ASK_NODE: std::time::Duration = std::time::Duration::from_secs(10);

/// Every group of the cluster: each broker lists only the groups it
/// coordinates, so, as Kafka's admin client does, every broker named in the
/// metadata of the one reached (`conn`) is asked and the answers merged
/// (a group listed by two nodes while its coordinator moves appears once).
/// The nodes are asked at once, each for up to [`ASK_NODE`]. Returns the groups and the nodes that could not be asked, with why. A
/// broker running alone is asked once, over `conn`.
async fn list_everywhere(
    conn: &mut Connection,
) -> anyhow::Result<(Vec<ListedGroup>, Vec<(u64, String)>)> {
    let brokers = match conn.metadata(Some(Vec::new())).await {
        Ok(m) if m.brokers.len() > 1 => m.brokers,
        // Alone (or a broker too old to name its peers): this one only.
        _ => Vec::new(),
    };
    let mut lists = Vec::new();
    let mut failed = Vec::new();
    if brokers.is_empty() {
        let r = conn
            .list_groups(Vec::new())
            .await
            .map_err(|e| anyhow::anyhow!("cannot list groups: {}", describe(&e)))?;
        check(r.error_code, "cannot list groups")?;
        lists.push(r.groups);
    }
    // Every node at once: a cluster with nodes down answers within one
    // node's wait, not one per node down.
    let answers = futures::future::join_all(brokers.iter().map(|b| {
        tokio::time::timeout(ASK_NODE, async {
            let mut c = Connection::connect(b.listen.as_str()).await?;
            c.list_groups(Vec::new()).await
        })
    }))
    .await;
    for (b, answer) in brokers.iter().zip(answers) {
        match answer {
            Ok(Ok(r)) if r.error_code == ErrorCode::None => lists.push(r.groups),
            Ok(Ok(r)) => failed.push((b.id, format!("{:?}", r.error_code))),
            Ok(Err(e)) => failed.push((b.id, describe(&e))),
            Err(_) => failed.push((b.id, format!("no answer within {ASK_NODE:?}"))),
        }
    }
    let mut merged: BTreeMap<String, ListedGroup> = BTreeMap::new();
    for g in lists.into_iter().flatten() {
        merged.entry(g.group.clone()).or_insert(g);
    }
    Ok((merged.into_values().collect(), failed))
}

/// The group's coordinator, asked again (100 ms apart, for up to 10 s)
/// while the answer is retriable: no coordinator known yet (a cluster
/// electing, or creating its group-state topic) or the named one moving.
async fn connect_coordinator(
    brokers: &sluice_client::Bootstrap,
    group: &str,
) -> Result<sluice_client::Connection, sluice_client::ClientError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match brokers.connect_coordinator(group).await {
            Err(sluice_client::ClientError::Broker { code, .. })
                if code.is_retriable() && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            r => return r,
        }
    }
}

/// Runs one group command.
pub(crate) async fn run(broker: &str, cmd: GroupCommand) -> anyhow::Result<Outcome> {
    // A group's commands go to its coordinator (in a cluster, one node per
    // group); listing asks every broker of the cluster.
    let brokers = sluice_client::Bootstrap::parse(broker);
    let group = match &cmd {
        GroupCommand::List { .. } => None,
        GroupCommand::Describe { group, .. }
        | GroupCommand::ResetOffsets { group, .. }
        | GroupCommand::Delete { group } => Some(group.clone()),
    };
    let mut conn = match &group {
        Some(g) => connect_coordinator(&brokers, g).await,
        None => brokers.connect().await,
    }
    .map_err(|e| cannot_connect(broker, &e))?;
    let mut out = std::io::stdout().lock();
    match cmd {
        GroupCommand::List { output } => {
            let (listed, failed) = list_everywhere(&mut conn).await?;
            let mut groups = listed;
            groups.sort_by(|a, b| a.group.cmp(&b.group));
            match output {
                Output::Text => {
                    for g in groups {
                        let kind = if g.protocol_type.is_empty() {
                            "-"
                        } else {
                            &g.protocol_type
                        };
                        writeln!(out, "{} {} {}", g.group, g.state, kind)?;
                    }
                }
                Output::Json => {
                    let list: Vec<_> = groups
                        .iter()
                        .map(|g| json!({"group": g.group, "state": g.state, "protocol_type": g.protocol_type}))
                        .collect();
                    writeln!(out, "{}", json!({ "groups": list }))?;
                }
            }
            if !failed.is_empty() {
                out.flush().context("writing to stdout")?;
                for (node, e) in &failed {
                    eprintln!("cannot list the groups of node {node}: {e}");
                }
                return Ok(Outcome::Failed);
            }
        }
        GroupCommand::Describe { group, output } => {
            let d = describe_group(&mut conn, &group).await?;
            let lines = partition_lines(&mut conn, &d).await?;
            // No members, no commits: described (a group about to form is
            // so too, and scripts wait for it), with a note on standard
            // error, so a mistyped name does not pass for an empty group.
            if d.state == "Dead" && d.members.is_empty() && lines.is_empty() {
                eprintln!("note: group {group:?} has no members and no committed offsets");
            }
            match output {
                Output::Text => print_description(&mut out, &d, &lines)?,
                Output::Json => writeln!(out, "{}", description_json(&d, &lines))?,
            }
        }
        GroupCommand::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            to_time,
            dry_run,
        } => {
            let to = if to_earliest {
                Target::Spec(OffsetSpec::Earliest)
            } else if to_latest {
                Target::Spec(OffsetSpec::Latest)
            } else if let Some(t) = to_time {
                Target::Spec(OffsetSpec::Timestamp(t))
            } else {
                Target::Offset(to_offset.unwrap_or_default())
            };
            reset_offsets(&mut conn, &mut out, &group, &topic, to, dry_run).await?;
        }
        GroupCommand::Delete { group } => {
            let r = conn
                .delete_groups(vec![group.clone()])
                .await
                .map_err(|e| anyhow::anyhow!("cannot delete group {group:?}: {}", describe(&e)))?;
            let code = r
                .results
                .first()
                .map_or(ErrorCode::Unknown, |r| r.error_code);
            match code {
                ErrorCode::None => writeln!(out, "deleted group {group}")?,
                ErrorCode::NonEmptyGroup => {
                    anyhow::bail!("cannot delete group {group:?}: it has members (stop them first)")
                }
                ErrorCode::GroupIdNotFound => anyhow::bail!("unknown group {group:?}"),
                code => anyhow::bail!("cannot delete group {group:?}: {code}"),
            }
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(Outcome::Success)
}

fn check(code: ErrorCode, what: &str) -> anyhow::Result<()> {
    if code == ErrorCode::None {
        Ok(())
    } else {
        anyhow::bail!("{what}: {code}")
    }
}

async fn describe_group(conn: &mut Connection, group: &str) -> anyhow::Result<DescribedGroup> {
    let r = conn
        .describe_groups(vec![group.to_owned()])
        .await
        .map_err(|e| anyhow::anyhow!("cannot describe group {group:?}: {}", describe(&e)))?;
    let d = r
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("cannot describe group {group:?}: empty answer"))?;
    check(d.error_code, &format!("cannot describe group {group:?}"))?;
    Ok(d)
}

/// One line of `group describe`.
struct PartitionLine {
    topic: String,
    partition: u32,
    committed: Option<u64>,
    log_end: Option<u64>,
    member: Option<(String, String)>,
}

impl PartitionLine {
    fn lag(&self) -> Option<u64> {
        Some(self.log_end?.saturating_sub(self.committed?))
    }
}

/// Committed offsets, log ends and owners of every partition the group has
/// committed or been assigned.
async fn partition_lines(
    conn: &mut Connection,
    d: &DescribedGroup,
) -> anyhow::Result<Vec<PartitionLine>> {
    let mut lines: BTreeMap<(String, u32), PartitionLine> = BTreeMap::new();
    let mut entry = |topic: &str, partition: u32| -> (String, u32) {
        let key = (topic.to_owned(), partition);
        lines.entry(key.clone()).or_insert_with(|| PartitionLine {
            topic: topic.to_owned(),
            partition,
            committed: None,
            log_end: None,
            member: None,
        });
        key
    };
    let mut owners = Vec::new();
    if d.protocol_type == consumer_protocol::PROTOCOL_TYPE {
        for m in &d.members {
            // A member between generations may have no assignment yet.
            let Ok(a) = Assignment::decode(&m.assignment) else {
                continue;
            };
            for tp in &a.partitions {
                for &p in &tp.partitions {
                    let key = entry(&tp.topic, p.max(0) as u32);
                    owners.push((key, (m.member_id.clone(), m.client_id.clone())));
                }
            }
        }
    }
    let committed = conn
        .offset_fetch(&d.group, None)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read offsets of {:?}: {}", d.group, describe(&e)))?;
    let mut commits = Vec::new();
    for p in committed.partitions {
        let key = entry(&p.topic, p.partition);
        commits.push((key, p.offset));
    }
    for (key, owner) in owners {
        if let Some(l) = lines.get_mut(&key) {
            l.member = Some(owner);
        }
    }
    for (key, offset) in commits {
        if let Some(l) = lines.get_mut(&key) {
            l.committed = offset;
        }
    }
    // Each partition's end from its leader (in a cluster, the coordinator
    // leads only some of them).
    let ends = list_offsets_at_leaders(
        conn,
        lines
            .keys()
            .map(|(topic, partition)| ListOffsetsPartition {
                topic: topic.clone(),
                partition: *partition,
                spec: OffsetSpec::Latest,
            })
            .collect(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot read log ends: {}", describe(&e)))?;
    for p in ends {
        if p.error_code == ErrorCode::None {
            if let Some(l) = lines.get_mut(&(p.topic, p.partition)) {
                l.log_end = Some(p.offset);
            }
        }
    }
    Ok(lines.into_values().collect())
}

fn print_description(
    out: &mut impl Write,
    d: &DescribedGroup,
    lines: &[PartitionLine],
) -> std::io::Result<()> {
    let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
    writeln!(out, "group: {}", d.group)?;
    writeln!(out, "state: {}", d.state)?;
    writeln!(out, "generation: {}", d.generation_id)?;
    writeln!(
        out,
        "protocol: {}",
        if d.protocol.is_empty() {
            "-"
        } else {
            &d.protocol
        }
    )?;
    writeln!(out, "members: {}", d.members.len())?;
    writeln!(
        out,
        "{:<20} {:>9} {:>10} {:>10} {:>8} member",
        "topic", "partition", "committed", "log-end", "lag"
    )?;
    for l in lines {
        let member = l
            .member
            .as_ref()
            .map_or_else(|| "-".to_owned(), |(id, client)| format!("{id} ({client})"));
        writeln!(
            out,
            "{:<20} {:>9} {:>10} {:>10} {:>8} {member}",
            l.topic,
            l.partition,
            opt(l.committed),
            opt(l.log_end),
            opt(l.lag())
        )?;
    }
    Ok(())
}

fn description_json(d: &DescribedGroup, lines: &[PartitionLine]) -> serde_json::Value {
    json!({
        "group": d.group,
        "state": d.state,
        "generation": d.generation_id,
        "protocol_type": d.protocol_type,
        "protocol": d.protocol,
        "members": d.members.iter().map(|m| json!({
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
        })).collect::<Vec<_>>(),
        "partitions": lines.iter().map(|l| json!({
            "topic": l.topic,
            "partition": l.partition,
            "committed_offset": l.committed,
            "log_end_offset": l.log_end,
            "lag": l.lag(),
            "member_id": l.member.as_ref().map(|m| &m.0),
            "client_id": l.member.as_ref().map(|m| &m.1),
        })).collect::<Vec<_>>(),
    })
}

/// Where `reset-offsets` moves each partition.
enum Target {
    Spec(OffsetSpec),
    Offset(u64),
}

async fn list_offsets(
    conn: &mut Connection,
    topic: &str,
    count: u32,
    spec: OffsetSpec,
) -> anyhow::Result<Vec<u64>> {
    let r = list_offsets_at_leaders(
        conn,
        (0..count)
            .map(|partition| ListOffsetsPartition {
                topic: topic.to_owned(),
                partition,
                spec,
            })
            .collect(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("cannot look up offsets of {topic:?}: {}", describe(&e)))?;
    r.into_iter()
        .map(|p| {
            if p.error_code == ErrorCode::None {
                Ok(p.offset)
            } else {
                Err(anyhow::anyhow!("{topic}-{}: {}", p.partition, p.error_code))
            }
        })
        .collect()
}

async fn reset_offsets(
    conn: &mut Connection,
    out: &mut impl Write,
    group: &str,
    topic: &str,
    to: Target,
    dry_run: bool,
) -> anyhow::Result<()> {
    let d = describe_group(conn, group).await?;
    if !d.members.is_empty() {
        anyhow::bail!(
            "cannot reset offsets of group {group:?}: it has {} member(s) (state {}); stop its consumers first",
            d.members.len(),
            d.state
        );
    }
    let meta = conn
        .metadata(Some(vec![topic.to_owned()]))
        .await
        .map_err(|e| topic_error(topic, e))?;
    let t = meta
        .topics
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("unknown topic {topic:?}"))?;
    if t.error_code != ErrorCode::None {
        return Err(topic_error(
            topic,
            ClientError::Broker {
                code: t.error_code,
                message: String::new(),
            },
        ));
    }
    let count = t.partitions.len() as u32;
    let targets = match to {
        Target::Spec(spec) => list_offsets(conn, topic, count, spec).await?,
        Target::Offset(n) => {
            let starts = list_offsets(conn, topic, count, OffsetSpec::Earliest).await?;
            let ends = list_offsets(conn, topic, count, OffsetSpec::Latest).await?;
            starts
                .into_iter()
                .zip(ends)
                .map(|(s, e)| n.clamp(s, e.max(s)))
                .collect()
        }
    };
    let committed = conn
        .offset_fetch(group, None)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read offsets of {group:?}: {}", describe(&e)))?;
    let current = |p: u32| {
        committed
            .partitions
            .iter()
            .find(|c| c.topic == topic && c.partition == p)
            .and_then(|c| c.offset)
            .map_or_else(|| "-".to_owned(), |o| o.to_string())
    };
    writeln!(
        out,
        "{:<20} {:>9} {:>10} {:>10}",
        "topic", "partition", "current", "new"
    )?;
    for (p, new) in (0u32..).zip(&targets) {
        writeln!(out, "{topic:<20} {p:>9} {:>10} {new:>10}", current(p))?;
    }
    if dry_run {
        writeln!(out, "dry run: nothing committed")?;
        return Ok(());
    }
    let req = OffsetCommitRequestV1 {
        group: group.to_owned(),
        generation_id: -1,
        member_id: String::new(),
        group_instance_id: None,
        partitions: (0u32..)
            .zip(&targets)
            .map(|(partition, &offset)| CommitPartition {
                topic: topic.to_owned(),
                partition,
                offset,
                metadata: String::new(),
            })
            .collect(),
    };
    let r = conn
        .offset_commit_as(&req)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reset offsets of {group:?}: {}", describe(&e)))?;
    if let Some(p) = r
        .partitions
        .iter()
        .find(|p| p.error_code != ErrorCode::None)
    {
        let why = match p.error_code {
            ErrorCode::UnknownMemberId
            | ErrorCode::IllegalGeneration
            | ErrorCode::RebalanceInProgress => {
                "a member joined meanwhile; stop its consumers first".to_owned()
            }
            code => code.to_string(),
        };
        anyhow::bail!("cannot reset offsets of group {group:?}: {why}");
    }
    writeln!(
        out,
        "reset {} partition(s) of {topic} for group {group}",
        targets.len()
    )?;
    Ok(())
}
