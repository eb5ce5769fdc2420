//! `sluice topic create|list|describe|delete|alter|delete-records`.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use sluice_client::{Admin, ClientError, ConfigField, FlushMode, TopicConfig};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::metadata::{PartitionMetadata, TopicMetadata};
use sluice_protocol::wire::partition_status::{PartitionState, TopicState};
use sluice_protocol::wire::topic_config::TopicCompression;

use crate::{Outcome, Output, connect_admin, describe, topic_error};

/// Topic administration.
#[derive(Debug, Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic
    Create {
        /// Topic name
        name: String,
        /// Number of partitions
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// Copies of each partition, on distinct brokers (default: the
        /// broker's default_replication_factor)
        #[arg(long, value_name = "R")]
        replication_factor: Option<u16>,
        /// Delete data older than this many milliseconds (0 = keep forever)
        #[arg(long, value_name = "MS")]
        retention_ms: Option<u64>,
        /// Delete the oldest data while a partition is larger (0 = no limit)
        #[arg(long, value_name = "BYTES")]
        retention_bytes: Option<u64>,
        /// Segment size before a new segment is started
        #[arg(long, value_name = "BYTES")]
        segment_bytes: Option<u64>,
        /// Segment age before a new segment is started
        #[arg(long, value_name = "MS")]
        segment_ms: Option<u64>,
        /// When data is forced to disk: never, before-ack, or every MS milliseconds
        #[arg(long, value_name = "never|before-ack|MS", value_parser = parse_flush)]
        flush: Option<FlushMode>,
        /// How the broker stores produced batches: producer (as sent),
        /// uncompressed, gzip, snappy, lz4 or zstd
        #[arg(long, value_name = "CODEC", value_parser = parse_compression)]
        compression: Option<TopicCompression>,
    },
    /// List topics, one per line: NAME PARTITIONS
    List {
        /// Output format
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Show a topic's settings and partitions (log start, high watermark,
    /// log end, size, segments, offline or not, leader, leader epoch,
    /// replicas, in-sync replicas)
    Describe {
        /// Topic name
        name: String,
        /// Output format
        #[arg(long, value_enum, default_value_t = Output::Text)]
        output: Output,
    },
    /// Delete a topic and its data
    Delete {
        /// Topic name
        name: String,
    },
    /// Change a topic: raise its partition count, or change its retention,
    /// segment size or age, or codec
    #[command(group = clap::ArgGroup::new("change").required(true).multiple(true))]
    Alter {
        /// Topic name
        name: String,
        /// The new partition count (above the current one; the new
        /// partitions start empty)
        #[arg(long, value_name = "N", group = "change")]
        partitions: Option<u32>,
        /// Delete data older than this many milliseconds (0 = keep
        /// forever; default: back to the broker's default)
        #[arg(long, value_name = "MS|default", value_parser = parse_setting, group = "change")]
        retention_ms: Option<Setting>,
        /// Delete the oldest data while a partition is larger (0 = no
        /// limit; default: back to the broker's default)
        #[arg(long, value_name = "BYTES|default", value_parser = parse_setting, group = "change")]
        retention_bytes: Option<Setting>,
        /// Segment size before a new segment is started (default: back to
        /// the broker's default)
        #[arg(long, value_name = "BYTES|default", value_parser = parse_setting, group = "change")]
        segment_bytes: Option<Setting>,
        /// Segment age before a new segment is started (default: back to
        /// the broker's default)
        #[arg(long, value_name = "MS|default", value_parser = parse_setting, group = "change")]
        segment_ms: Option<Setting>,
        /// How the broker stores batches produced from now on: producer,
        /// uncompressed, gzip, snappy, lz4, zstd, or default
        #[arg(long, value_name = "CODEC|default", value_parser = parse_codec_setting, group = "change")]
        compression: Option<CodecSetting>,
    },
    /// Delete the records of a partition below an offset; prints the
    /// partition's first offset afterwards
    DeleteRecords {
        /// Topic name
        name: String,
        /// Partition number
        #[arg(long, default_value_t = 0)]
        partition: u32,
        /// Records below this offset go (default: every record consumers
        /// can read)
        #[arg(long, value_name = "OFFSET")]
        before: Option<u64>,
    },
}

/// A setting given on the command line: a value, or back to the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Setting {
    /// This value.
    Value(u64),
    /// The broker's default.
    Default,
}

/// A codec given on the command line, or back to the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodecSetting {
    /// This codec.
    Codec(TopicCompression),
    /// The broker's default.
    Default,
}

/// Parses a `--compression` value or `default`.
fn parse_codec_setting(s: &str) -> Result<CodecSetting, String> {
    match s {
        "default" => Ok(CodecSetting::Default),
        codec => parse_compression(codec).map(CodecSetting::Codec),
    }
}

/// Parses a number or `default`.
fn parse_setting(s: &str) -> Result<Setting, String> {
    match s {
        "default" => Ok(Setting::Default),
        n => n
            .parse()
            .map(Setting::Value)
            .map_err(|_| format!("{n:?} is not a number or default")),
    }
}

/// Parses `never`, `before-ack` or a number of milliseconds.
fn parse_flush(s: &str) -> Result<FlushMode, String> {
    match s {
        "never" => Ok(FlushMode::Never),
        "before-ack" => Ok(FlushMode::BeforeAck),
        ms => ms
            .parse()
            .map(FlushMode::IntervalMs)
            .map_err(|_| format!("{ms:?} is not never, before-ack or a number of milliseconds")),
    }
}

/// Parses a `--compression` value.
fn parse_compression(s: &str) -> Result<TopicCompression, String> {
    TopicCompression::from_name(s)
        .ok_or_else(|| format!("{s:?} is not producer, uncompressed, gzip, snappy, lz4 or zstd"))
}

/// The `--flush` spelling of a mode.
fn flush_text(mode: FlushMode) -> String {
    match mode {
        FlushMode::Never => "never".into(),
        FlushMode::BeforeAck => "before-ack".into(),
        FlushMode::IntervalMs(ms) => ms.to_string(),
    }
}

/// Runs one topic command.
pub(crate) async fn run(broker: &str, cmd: TopicCommand) -> anyhow::Result<Outcome> {
    let mut admin = connect_admin(broker).await?;
    let mut out = std::io::stdout().lock();
    match cmd {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            retention_ms,
            retention_bytes,
            segment_bytes,
            segment_ms,
            flush,
            compression,
        } => {
            let config = TopicConfig {
                segment_bytes,
                segment_ms,
                retention_ms,
                retention_bytes,
                flush,
                compression,
                // The native protocol does not carry it (Kafka's
                // `max.message.bytes`, set through the Kafka listener).
                max_message_bytes: None,
            };
            admin
                .create_replicated_topic(&name, partitions, replication_factor, config)
                .await
                .map_err(|e| anyhow::anyhow!("cannot create topic {name:?}: {}", describe(&e)))?;
            writeln!(
                out,
                "created topic {name} with {}",
                crate::partitions(partitions)
            )?;
        }
        TopicCommand::List { output } => {
            let mut topics = admin
                .list_topics()
                .await
                .map_err(|e| anyhow::anyhow!("cannot list topics: {}", describe(&e)))?;
            topics.sort_by(|a, b| a.name.cmp(&b.name));
            match output {
                Output::Text => {
                    for t in topics {
                        writeln!(out, "{} {}", t.name, t.partitions.len())?;
                    }
                }
                Output::Json => {
                    let list: Vec<_> = topics
                        .iter()
                        .map(|t| json!({"name": t.name, "partitions": t.partitions.len()}))
                        .collect();
                    writeln!(out, "{}", json!({ "topics": list }))?;
                }
            }
        }
        TopicCommand::Describe { name, output } => {
            let t = admin
                .describe_topic(&name)
                .await
                .map_err(|e| topic_error(&name, e))?;
            let state = admin
                .topic_status_from_leaders(&name)
                .await
                .map_err(|e| topic_error(&name, e))?;
            match output {
                Output::Text => print_description(&mut out, &t, &state)?,
                Output::Json => writeln!(out, "{}", description_json(&t, &state))?,
            }
        }
        TopicCommand::Delete { name } => {
            admin
                .delete_topic(&name)
                .await
                .map_err(|e| anyhow::anyhow!("cannot delete topic {name:?}: {}", describe(&e)))?;
            writeln!(out, "deleted topic {name}")?;
        }
        TopicCommand::Alter {
            name,
            partitions,
            retention_ms,
            retention_bytes,
            segment_bytes,
            segment_ms,
            compression,
        } => {
            let mut set = TopicConfig::default();
            let mut reset = Vec::new();
            for (setting, value, field) in [
                (
                    retention_ms,
                    &mut set.retention_ms,
                    ConfigField::RetentionMs,
                ),
                (
                    retention_bytes,
                    &mut set.retention_bytes,
                    ConfigField::RetentionBytes,
                ),
                (
                    segment_bytes,
                    &mut set.segment_bytes,
                    ConfigField::SegmentBytes,
                ),
                (segment_ms, &mut set.segment_ms, ConfigField::SegmentMs),
            ] {
                match setting {
                    Some(Setting::Value(v)) => *value = Some(v),
                    Some(Setting::Default) => reset.push(field),
                    None => {}
                }
            }
            match compression {
                Some(CodecSetting::Codec(codec)) => set.compression = Some(codec),
                Some(CodecSetting::Default) => reset.push(ConfigField::Compression),
                None => {}
            }
            let settings = !(set == TopicConfig::default() && reset.is_empty());
            if settings && partitions.is_some() {
                // Both or neither: a refusal of either changes nothing.
                admin
                    .check_topic_changes(&name, partitions, Some((set.clone(), reset.clone())))
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("cannot change topic {name:?}: {}", describe(&e))
                    })?;
            }
            if settings {
                admin
                    .alter_topic_config(&name, set, reset)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!("cannot change topic {name:?}: {}", describe(&e))
                    })?;
                writeln!(out, "changed the settings of topic {name}")?;
            }
            if let Some(count) = partitions {
                admin.add_partitions(&name, count).await.map_err(|e| {
                    anyhow::anyhow!(
                        "cannot raise the partition count of {name:?}: {}",
                        describe(&e)
                    )
                })?;
                writeln!(out, "topic {name} has {}", crate::partitions(count))?;
            }
        }
        TopicCommand::DeleteRecords {
            name,
            partition,
            before,
        } => {
            let start = match admin.delete_records(&name, partition, before).await {
                Ok(start) => start,
                Err(e) => {
                    let why = delete_records_refusal(&mut admin, &name, partition, before, &e)
                        .await
                        .unwrap_or_else(|| describe(&e));
                    anyhow::bail!(
                        "cannot delete records of partition {partition} of {name:?}: {why}"
                    )
                }
            };
            writeln!(
                out,
                "partition {partition} of topic {name} starts at offset {start}"
            )?;
        }
    }
    out.flush().context("writing to stdout")?;
    Ok(Outcome::Success)
}

/// Why a DeleteRecords was refused, in the partition's own terms: which
/// partitions the topic has, or where its readable records end. `None`
/// when the refusal is of another kind or the look-up fails (the caller
/// then prints the bare error).
async fn delete_records_refusal(
    admin: &mut Admin,
    name: &str,
    partition: u32,
    before: Option<u64>,
    e: &ClientError,
) -> Option<String> {
    let ClientError::Broker { code, .. } = e else {
        return None;
    };
    match code {
        ErrorCode::UnknownTopicOrPartition => {
            let t = admin.describe_topic(name).await;
            Some(match t {
                Err(ClientError::Broker {
                    code: ErrorCode::UnknownTopicOrPartition,
                    ..
                }) => "no such topic".to_owned(),
                Ok(t) => format!(
                    "the topic has no partition {partition} (it has {}, numbered from 0)",
                    t.partitions.len()
                ),
                Err(_) => return None,
            })
        }
        ErrorCode::OffsetOutOfRange => {
            let before = before?;
            let state = admin.topic_status_from_leaders(name).await.ok()?;
            let p = state.partitions.iter().find(|p| p.partition == partition)?;
            Some(format!(
                "offset {before} is past the partition's readable records, which end at offset {} \
                 (omit --before to delete them all)",
                p.high_watermark
            ))
        }
        _ => None,
    }
}

/// Prints a topic's settings, then one line per partition.
fn print_description(
    out: &mut impl Write,
    t: &TopicMetadata,
    state: &TopicState,
) -> std::io::Result<()> {
    let opt = |v: Option<u64>| v.map_or_else(|| "default".to_owned(), |v| v.to_string());
    writeln!(out, "topic: {}", t.name)?;
    writeln!(out, "partitions: {}", t.partitions.len())?;
    writeln!(out, "retention-ms: {}", opt(t.config.retention_ms))?;
    writeln!(out, "retention-bytes: {}", opt(t.config.retention_bytes))?;
    writeln!(out, "segment-bytes: {}", opt(t.config.segment_bytes))?;
    writeln!(out, "segment-ms: {}", opt(t.config.segment_ms))?;
    writeln!(
        out,
        "flush: {}",
        t.config
            .flush
            .map_or_else(|| "default".to_owned(), flush_text)
    )?;
    writeln!(
        out,
        "compression: {}",
        t.config
            .compression
            .map_or("default", TopicCompression::name)
    )?;
    writeln!(
        out,
        "{:>9} {:>12} {:>14} {:>12} {:>14} {:>8} {:>7} {:>6} {:>12} {:>8} {:>8}",
        "partition",
        "log-start",
        "high-watermark",
        "log-end",
        "size-bytes",
        "segments",
        "state",
        "leader",
        "leader-epoch",
        "replicas",
        "isr"
    )?;
    for n in partition_ids(t, state) {
        let l = leadership(t, n);
        let s = state.partitions.iter().find(|s| s.partition == n);
        let num =
            |f: fn(&PartitionState) -> u64| s.map_or_else(|| "?".to_owned(), |s| f(s).to_string());
        writeln!(
            out,
            "{:>9} {:>12} {:>14} {:>12} {:>14} {:>8} {:>7} {:>6} {:>12} {:>8} {:>8}",
            n,
            num(|s| s.log_start_offset),
            num(|s| s.high_watermark),
            num(|s| s.log_end_offset),
            num(|s| s.size_bytes),
            num(|s| u64::from(s.segments)),
            match s {
                None => "?",
                Some(s) if s.offline => "offline",
                Some(_) => "online",
            },
            l.map_or_else(
                || "?".to_owned(),
                |l| {
                    l.leader
                        .map_or_else(|| "none".to_owned(), |id| id.to_string())
                }
            ),
            l.map_or_else(|| "?".to_owned(), |l| l.leader_epoch.to_string()),
            l.map_or_else(|| "?".to_owned(), |l| ids(&l.replicas)),
            l.map_or_else(|| "?".to_owned(), |l| ids(&l.isr)),
        )?;
    }
    Ok(())
}

/// Every partition listed by Metadata or by the partition states, in
/// order: a partition whose state no node gave still gets its row.
fn partition_ids(t: &TopicMetadata, state: &TopicState) -> Vec<u32> {
    let mut ids: Vec<u32> = t
        .partitions
        .iter()
        .map(|p| p.partition)
        .chain(state.partitions.iter().map(|p| p.partition))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// A partition's Metadata entry (its leadership), if listed.
fn leadership(t: &TopicMetadata, partition: u32) -> Option<&PartitionMetadata> {
    t.partitions.iter().find(|p| p.partition == partition)
}

/// Node ids as `1,2,3` (`-` for none).
fn ids(nodes: &[u64]) -> String {
    if nodes.is_empty() {
        return "-".to_owned();
    }
    nodes
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A topic's settings and partitions as one JSON object.
fn description_json(t: &TopicMetadata, state: &TopicState) -> serde_json::Value {
    let c = &t.config;
    let partitions: Vec<_> = partition_ids(t, state)
        .into_iter()
        .map(|n| {
            let l = leadership(t, n);
            let p = state.partitions.iter().find(|s| s.partition == n);
            json!({
                "partition": n,
                "log_start_offset": p.map(|p| p.log_start_offset),
                "high_watermark": p.map(|p| p.high_watermark),
                "log_end_offset": p.map(|p| p.log_end_offset),
                "size_bytes": p.map(|p| p.size_bytes),
                "segments": p.map(|p| p.segments),
                "offline": p.map(|p| p.offline),
                "leader": l.and_then(|l| l.leader),
                "leader_epoch": l.map(|l| l.leader_epoch),
                "replicas": l.map(|l| l.replicas.clone()),
                "isr": l.map(|l| l.isr.clone()),
            })
        })
        .collect();
    json!({
        "name": t.name,
        "config": {
            "retention_ms": c.retention_ms,
            "retention_bytes": c.retention_bytes,
            "segment_bytes": c.segment_bytes,
            "segment_ms": c.segment_ms,
            "flush": c.flush.map(flush_text),
            "compression": c.compression.map(TopicCompression::name),
        },
        "partitions": partitions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_modes_parse_and_print_alike() {
        for (text, mode) in [
            ("never", FlushMode::Never),
            ("before-ack", FlushMode::BeforeAck),
            ("250", FlushMode::IntervalMs(250)),
        ] {
            assert_eq!(parse_flush(text), Ok(mode));
            assert_eq!(flush_text(mode), text);
        }
        assert!(parse_flush("sometimes").is_err());
        assert!(parse_flush("-1").is_err());
    }

    #[test]
    fn compression_names_parse() {
        assert_eq!(parse_compression("zstd"), Ok(TopicCompression::Zstd));
        assert_eq!(
            parse_compression("producer"),
            Ok(TopicCompression::Producer)
        );
        assert!(parse_compression("brotli").is_err());
    }
}
