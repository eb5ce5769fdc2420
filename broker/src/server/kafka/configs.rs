//! Kafka topic config names for Sluice's topic settings, both ways.
//!
//! | Kafka name | Sluice setting | notes |
//! |---|---|---|
//! | `retention.ms` | `retention_ms` | Kafka's -1 (forever) is Sluice's 0 |
//! | `retention.bytes` | `retention_bytes` | Kafka's -1 (no limit) is Sluice's 0 |
//! | `segment.bytes` | `segment_bytes` | |
//! | `segment.ms` | `segment_ms` | |
//! | `compression.type` | `compression` | producer, uncompressed, gzip, snappy, lz4, zstd |
//! | `flush.ms` | `flush` | 0: fsync before ack; N: every N ms; `9223372036854775807`: never |
//! | `max.message.bytes` | `max_message_bytes` | the largest batch a produce may append, 0..=2^31-1 |
//!
//! And the [`FIXED`] configs, whose only value is what Sluice does.

use sluice_protocol::wire::topic_config::{FlushMode, TopicCompression, TopicConfig};

/// Kafka's `flush.ms` default, meaning "never".
const NEVER: &str = "9223372036854775807";

/// Kafka topic configs that have one value in Sluice, what it always does:
/// (name, that value, why no other). Setting one to that value is accepted
/// and changes nothing (tools name them when they create topics: Kafka
/// Streams' repartition topics, Spring's topic builders); any other value
/// is refused with the reason. DescribeConfigs lists them as defaults.
pub(super) const FIXED: [(&str, &str, &str); 2] = [
    (
        "cleanup.policy",
        "delete",
        "Sluice deletes old segments by retention and does not compact logs",
    ),
    (
        "message.timestamp.type",
        "CreateTime",
        "Sluice stores the producer's timestamps (LogAppendTime is not supported)",
    ),
];

/// The replicas an acks=all write of a topic of `replication_factor`
/// replicas is on when it is acknowledged: a majority (the Raft commit),
/// what Sluice lists as its `min.insync.replicas`.
pub(super) fn majority(replication_factor: u16) -> u16 {
    replication_factor / 2 + 1
}

/// Sets `name = value` on `config` of a topic of `replication_factor`
/// replicas, or says why it cannot.
///
/// `min.insync.replicas` is accepted, and changes nothing, when it is at
/// most what Sluice always guarantees ([`majority`]): an acks=all write is
/// then on at least that many replicas when acknowledged, as asked. (Sluice
/// may refuse writes Kafka would take: with fewer than a majority of
/// replicas alive it takes none.) A larger value is refused: Sluice does
/// not wait for more than a majority.
pub(super) fn apply(
    config: &mut TopicConfig,
    name: &str,
    value: &str,
    replication_factor: u16,
) -> Result<(), String> {
    if name == "min.insync.replicas" {
        let n: u16 = value
            .parse()
            .ok()
            .filter(|&n| n >= 1)
            .ok_or_else(|| format!("{name} must be a positive number, not {value:?}"))?;
        let most = majority(replication_factor);
        return if n <= most {
            Ok(())
        } else {
            Err(format!(
                "{name} {n} is more than Sluice guarantees with {replication_factor} \
                 replica(s): an acks=all write is acknowledged once a majority ({most}) \
                 of the replicas have it"
            ))
        };
    }
    if let Some((_, only, why)) = FIXED.iter().find(|(n, ..)| *n == name) {
        return if value == *only {
            Ok(())
        } else {
            Err(format!("{name} must be {only:?}, not {value:?}: {why}"))
        };
    }
    let num = || -> Result<i64, String> {
        value
            .parse::<i64>()
            .map_err(|_| format!("{name} must be a number, not {value:?}"))
    };
    let non_negative = |v: i64| -> Result<u64, String> {
        u64::try_from(v).map_err(|_| format!("{name} must not be negative"))
    };
    // Kafka's -1 (unlimited) is Sluice's 0. Kafka's 0 deletes every
    // segment but the active one, as Sluice's 1 does (nothing of a sealed
    // segment is newer than 1 ms, or fits in 1 byte).
    let retention = |v: i64| -> Result<u64, String> {
        match v {
            -1 => Ok(0),
            0 => Ok(1),
            v => u64::try_from(v)
                .map_err(|_| format!("{name} must be -1 (no limit) or at least 0, not {value:?}")),
        }
    };
    match name {
        "retention.ms" => config.retention_ms = Some(retention(num()?)?),
        "retention.bytes" => config.retention_bytes = Some(retention(num()?)?),
        "segment.bytes" => {
            let min = crate::topics::MIN_SEGMENT_BYTES;
            let bytes = non_negative(num()?)?;
            if bytes < min || bytes > i32::MAX as u64 {
                return Err(format!(
                    "{name} must be between {min} and {}, not {value:?}",
                    i32::MAX
                ));
            }
            config.segment_bytes = Some(bytes);
        }
        // Kafka's segment.ms is at least 1 (Sluice's at least 1000); its
        // largest long, as Kafka lists a segment that never rolls by age,
        // is Sluice's 0 (never).
        "segment.ms" => {
            let min = crate::topics::MIN_SEGMENT_MS;
            config.segment_ms = Some(match num()? {
                i64::MAX => 0,
                v if v >= min as i64 => non_negative(v)?,
                _ => {
                    return Err(format!(
                        "{name} must be at least {min}, or {NEVER} (never by age), not {value:?}"
                    ));
                }
            })
        }
        "compression.type" => {
            config.compression = Some(
                TopicCompression::from_name(value)
                    .ok_or_else(|| format!("unknown compression.type {value:?}"))?,
            );
        }
        "flush.ms" => {
            config.flush = Some(match value {
                NEVER => FlushMode::Never,
                "0" => FlushMode::BeforeAck,
                _ => FlushMode::IntervalMs(non_negative(num()?)?),
            });
        }
        "max.message.bytes" => {
            // Kafka's int, at least 0.
            let bytes = num()?;
            config.max_message_bytes = Some(
                u32::try_from(bytes)
                    .ok()
                    .filter(|&b| b <= i32::MAX as u32)
                    .ok_or_else(|| {
                        format!("{name} must be between 0 and {}, not {value:?}", i32::MAX)
                    })?,
            );
        }
        _ => return Err(format!("topic config {name:?} is not supported by Sluice")),
    }
    Ok(())
}

/// Unsets `name` on `config` (it follows the defaults again), or says why
/// it cannot.
pub(super) fn unset(config: &mut TopicConfig, name: &str) -> Result<(), String> {
    match name {
        n if n == "min.insync.replicas" || FIXED.iter().any(|(f, ..)| *f == n) => {}
        "retention.ms" => config.retention_ms = None,
        "retention.bytes" => config.retention_bytes = None,
        "segment.bytes" => config.segment_bytes = None,
        "segment.ms" => config.segment_ms = None,
        "compression.type" => config.compression = None,
        "flush.ms" => config.flush = None,
        "max.message.bytes" => config.max_message_bytes = None,
        _ => return Err(format!("topic config {name:?} is not supported by Sluice")),
    }
    Ok(())
}

/// Kafka's `config_source` of a setting a topic was created with
/// (`DYNAMIC_TOPIC_CONFIG`).
const SOURCE_TOPIC: i8 = 1;
/// Kafka's `config_source` of a setting that follows the broker's defaults
/// (`DEFAULT_CONFIG`).
const SOURCE_DEFAULT: i8 = 5;

/// Every config DescribeConfigs and CreateTopics list for a topic whose
/// resolved settings are `resolved`, `explicit` those set on the topic
/// itself: (name, value, whether it follows the broker's defaults), the
/// [`FIXED`] ones last, as defaults.
///
/// With the topic's `replication_factor`, `min.insync.replicas` is listed
/// too, as a default: the [`majority`] every acks=all write is on.
pub(super) fn listed(
    resolved: &TopicConfig,
    explicit: &TopicConfig,
    replication_factor: Option<u16>,
) -> Vec<(&'static str, String, bool)> {
    let set: Vec<&str> = describe(explicit).into_iter().map(|(n, _)| n).collect();
    let fixed = FIXED.iter().map(|(n, v, _)| (*n, (*v).to_owned()));
    let insync = replication_factor.map(|rf| ("min.insync.replicas", majority(rf).to_string()));
    describe(resolved)
        .into_iter()
        .chain(fixed)
        .chain(insync)
        .map(|(name, value)| (name, value, !set.contains(&name)))
        .collect()
}

/// Whether a listed config cannot change once its topic exists: `flush.ms`
/// alone (it decides what an acknowledgement promises).
pub(super) fn read_only(name: &str) -> bool {
    name == "flush.ms"
}

/// Kafka's `config_source` of a listed config.
pub(super) fn source(is_default: bool) -> i8 {
    if is_default {
        SOURCE_DEFAULT
    } else {
        SOURCE_TOPIC
    }
}

/// Kafka's `config_type` (DescribeConfigs v3+) of a setting `describe`
/// or [`FIXED`] names: `INT` (3) for `segment.bytes`,
/// `max.message.bytes` and `min.insync.replicas`, `STRING` (2) for
/// `compression.type` and `message.timestamp.type`, `LIST` (7) for
/// `cleanup.policy`, `LONG` (5) for the others, as Kafka declares them.
pub(super) fn config_type(name: &str) -> i8 {
    match name {
        "segment.bytes" | "max.message.bytes" | "min.insync.replicas" => 3,
        "compression.type" | "message.timestamp.type" => 2,
        "cleanup.policy" => 7,
        _ => 5,
    }
}

/// The Kafka name and value of every setting set in `config` (a topic's
/// resolved settings, or only those it was created with).
pub(super) fn describe(config: &TopicConfig) -> Vec<(&'static str, String)> {
    let unlimited = |v: u64| {
        if v == 0 {
            "-1".to_owned()
        } else {
            v.to_string()
        }
    };
    let mut out = Vec::new();
    if let Some(v) = config.retention_ms {
        out.push(("retention.ms", unlimited(v)));
    }
    if let Some(v) = config.retention_bytes {
        out.push(("retention.bytes", unlimited(v)));
    }
    if let Some(v) = config.segment_bytes {
        out.push(("segment.bytes", v.to_string()));
    }
    if let Some(v) = config.segment_ms {
        let v = match v {
            0 => NEVER.to_owned(),
            v => v.to_string(),
        };
        out.push(("segment.ms", v));
    }
    if let Some(c) = config.compression {
        out.push(("compression.type", c.name().to_owned()));
    }
    if let Some(f) = config.flush {
        let v = match f {
            FlushMode::Never => NEVER.to_owned(),
            FlushMode::BeforeAck => "0".to_owned(),
            FlushMode::IntervalMs(ms) => ms.to_string(),
        };
        out.push(("flush.ms", v));
    }
    if let Some(v) = config.max_message_bytes {
        out.push(("max.message.bytes", v.to_string()));
    }
    out
}

/// Kafka's `config_source` of a broker setting: `STATIC_BROKER_CONFIG`
/// (the broker's config file, its flags, or Sluice's default for it).
const SOURCE_STATIC_BROKER: i8 = 4;

/// Kafka's `config_type`s.
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_LIST: i8 = 7;

/// One broker setting as DescribeConfigs lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BrokerSetting {
    /// Kafka's name.
    pub name: &'static str,
    /// Its value.
    pub value: String,
    /// Kafka's `config_type`.
    pub config_type: i8,
    /// Kafka's `config_source` ([`SOURCE_STATIC_BROKER`] for all: Sluice
    /// has no dynamic broker settings).
    pub config_source: i8,
}

/// A consumer group's configs (DescribeConfigs of a group resource, as
/// Kafka 4 lists them for any group name): the consumer protocol's session
/// timeout and heartbeat interval, which Sluice takes from the broker's
/// settings for every group (none can be set per group). Kafka's share
/// group configs are not listed: Sluice has no share groups.
pub(super) fn group_settings(config: &crate::config::BrokerConfig) -> Vec<(&'static str, String)> {
    vec![
        (
            "consumer.session.timeout.ms",
            config.group_consumer_session_timeout_ms.to_string(),
        ),
        (
            "consumer.heartbeat.interval.ms",
            config.group_consumer_heartbeat_interval_ms.to_string(),
        ),
    ]
}

/// Kafka's `config_type` of a group setting: both are INT.
pub(super) const GROUP_SETTING_TYPE: i8 = TYPE_INT;

/// The settings of this broker (`node_id`) that have a Kafka name, under
/// it, as DescribeConfigs lists them for a broker resource: its id, its
/// topic defaults (`resolved`: [`TopicConfig::default`] resolved against
/// them) under the broker names Kafka gives them (`log.retention.ms`...),
/// and the limits, group settings and fixed behaviours Kafka clients and
/// tools look for. All are read-only: Sluice's broker settings come from
/// its config file and flags, and change only with a restart.
pub(super) fn broker_settings(
    config: &crate::config::BrokerConfig,
    node_id: i32,
    resolved: &TopicConfig,
) -> Vec<BrokerSetting> {
    let topic_names = [
        ("retention.ms", "log.retention.ms"),
        ("retention.bytes", "log.retention.bytes"),
        ("segment.bytes", "log.segment.bytes"),
        ("segment.ms", "log.roll.ms"),
        ("compression.type", "compression.type"),
        ("flush.ms", "log.flush.interval.ms"),
        ("max.message.bytes", "message.max.bytes"),
    ];
    let t = &config.topic_defaults;
    // Kafka's "no limit" for the timestamp bound is Long.MAX_VALUE.
    let after_max = match t.message_timestamp_after_max_ms {
        0 => NEVER.to_owned(),
        ms => ms.to_string(),
    };
    let mut out: Vec<(&'static str, String, i8)> = vec![
        ("node.id", node_id.to_string(), TYPE_INT),
        ("broker.id", node_id.to_string(), TYPE_INT),
        (
            "log.dirs",
            // Absolute, as DescribeLogDirs names it.
            std::path::absolute(&config.data_dir)
                .unwrap_or_else(|_| config.data_dir.clone())
                .display()
                .to_string(),
            TYPE_STRING,
        ),
        ("num.partitions", t.partitions.to_string(), TYPE_INT),
        (
            "default.replication.factor",
            config.default_replication_factor.to_string(),
            TYPE_INT,
        ),
        (
            "auto.create.topics.enable",
            config.auto_create_topics.to_string(),
            TYPE_BOOLEAN,
        ),
        ("log.cleanup.policy", "delete".to_owned(), TYPE_LIST),
        (
            "log.message.timestamp.type",
            "CreateTime".to_owned(),
            TYPE_STRING,
        ),
        ("log.message.timestamp.after.max.ms", after_max, TYPE_LONG),
        (
            "producer.id.expiration.ms",
            t.producer_id_expiration_ms.to_string(),
            TYPE_INT,
        ),
        (
            "socket.request.max.bytes",
            config.max_frame_bytes.to_string(),
            TYPE_INT,
        ),
        (
            "connections.max.idle.ms",
            config.idle_timeout_ms.to_string(),
            TYPE_LONG,
        ),
        (
            "max.connections",
            config.max_connections.to_string(),
            TYPE_INT,
        ),
        (
            // Kafka's default, 2147483647, is its "no bound": Sluice's 0.
            "max.connections.per.ip",
            match config.max_connections_per_ip {
                0 => i32::MAX.to_string(),
                n => n.to_string(),
            },
            TYPE_INT,
        ),
        (
            "group.min.session.timeout.ms",
            config.group_min_session_timeout_ms.to_string(),
            TYPE_INT,
        ),
        (
            "group.max.session.timeout.ms",
            config.group_max_session_timeout_ms.to_string(),
            TYPE_INT,
        ),
        (
            "group.max.size",
            config.group_max_size.to_string(),
            TYPE_INT,
        ),
        (
            "group.initial.rebalance.delay.ms",
            config.group_initial_rebalance_delay_ms.to_string(),
            TYPE_INT,
        ),
        (
            "group.consumer.session.timeout.ms",
            config.group_consumer_session_timeout_ms.to_string(),
            TYPE_INT,
        ),
        (
            "group.consumer.heartbeat.interval.ms",
            config.group_consumer_heartbeat_interval_ms.to_string(),
            TYPE_INT,
        ),
        (
            "auto.leader.rebalance.enable",
            (config.leader_rebalance_interval_ms != 0).to_string(),
            TYPE_BOOLEAN,
        ),
        (
            // Kafka counts it in seconds.
            "leader.imbalance.check.interval.seconds",
            config
                .leader_rebalance_interval_ms
                .div_ceil(1000)
                .to_string(),
            TYPE_LONG,
        ),
        (
            "leader.imbalance.per.broker.percentage",
            config.leader_imbalance_percent.to_string(),
            TYPE_INT,
        ),
        (
            "offsets.topic.num.partitions",
            config.offsets_topic_partitions.to_string(),
            TYPE_INT,
        ),
        (
            // Kafka counts it in minutes; Sluice's 0 (kept for good) is -1.
            "offsets.retention.minutes",
            match config.offsets_retention_ms {
                0 => "-1".to_owned(),
                ms => ms.div_ceil(60_000).to_string(),
            },
            TYPE_INT,
        ),
        (
            "offsets.retention.check.interval.ms",
            config.offsets_retention_check_interval_ms.to_string(),
            TYPE_LONG,
        ),
    ];
    for (name, value) in describe(resolved) {
        if let Some((_, broker_name)) = topic_names.iter().find(|(n, _)| *n == name) {
            let kind = match name {
                "compression.type" => TYPE_STRING,
                "segment.bytes" | "max.message.bytes" => TYPE_INT,
                _ => TYPE_LONG,
            };
            out.push((broker_name, value, kind));
        }
    }
    out.into_iter()
        .map(|(name, value, config_type)| BrokerSetting {
            name,
            value,
            config_type,
            config_source: SOURCE_STATIC_BROKER,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `log.dirs` is absolute, as DescribeLogDirs names the directory,
    /// also when the broker was given a relative one.
    #[test]
    fn log_dirs_is_absolute() {
        let config = crate::config::BrokerConfig {
            data_dir: "rel/data".into(),
            ..crate::config::BrokerConfig::default()
        };
        let listed = broker_settings(&config, 1, &TopicConfig::default());
        let dirs = listed.iter().find(|s| s.name == "log.dirs").unwrap();
        let path = std::path::Path::new(&dirs.value);
        assert!(path.is_absolute() && path.ends_with("rel/data"), "{path:?}");
    }

    #[test]
    fn kafka_names_round_trip_through_sluice_settings() {
        let mut c = TopicConfig::default();
        for (n, v) in [
            ("retention.ms", "-1"),
            ("retention.bytes", "1000"),
            ("segment.bytes", "1048576"),
            ("segment.ms", "60000"),
            ("compression.type", "zstd"),
            ("flush.ms", "0"),
        ] {
            apply(&mut c, n, v, 3).expect(n);
        }
        assert_eq!(c.retention_ms, Some(0));
        // Kafka's 0 deletes every sealed segment: Sluice's 1.
        apply(&mut c, "retention.ms", "0", 3).unwrap();
        apply(&mut c, "retention.bytes", "0", 3).unwrap();
        assert_eq!((c.retention_ms, c.retention_bytes), (Some(1), Some(1)));
        apply(&mut c, "retention.ms", "-1", 3).unwrap();
        apply(&mut c, "retention.bytes", "1000", 3).unwrap();
        // A segment that never rolls by age is Kafka's largest long.
        apply(&mut c, "segment.ms", NEVER, 3).unwrap();
        assert_eq!(c.segment_ms, Some(0));
        assert!(describe(&c).contains(&("segment.ms", NEVER.to_owned())));
        for v in ["0", "-1", "1", "999"] {
            let e = apply(&mut c, "segment.ms", v, 3).unwrap_err();
            assert!(e.contains("segment.ms must be at least 1000"), "{e}");
        }
        for v in ["0", "1", "65535", "2147483648"] {
            let e = apply(&mut c, "segment.bytes", v, 3).unwrap_err();
            assert!(e.contains("segment.bytes must be between 65536"), "{e}");
        }
        apply(&mut c, "segment.ms", "60000", 3).unwrap();
        assert_eq!(c.flush, Some(FlushMode::BeforeAck));
        let d = describe(&c);
        assert!(d.contains(&("retention.ms", "-1".to_owned())));
        assert!(d.contains(&("compression.type", "zstd".to_owned())));
        // The fixed configs: their one value changes nothing, others are
        // refused with the reason; unsetting them changes nothing.
        let before = c.clone();
        apply(&mut c, "cleanup.policy", "delete", 3).unwrap();
        apply(&mut c, "message.timestamp.type", "CreateTime", 3).unwrap();
        unset(&mut c, "cleanup.policy").unwrap();
        assert_eq!(c, before);
        for (n, v) in [
            ("cleanup.policy", "compact"),
            ("cleanup.policy", "delete,compact"),
            ("message.timestamp.type", "LogAppendTime"),
        ] {
            let e = apply(&mut c, n, v, 3).unwrap_err();
            assert!(e.contains(n) && e.contains(v), "{e}");
        }
        // At most the majority of the replicas; unsetting changes nothing.
        apply(&mut c, "min.insync.replicas", "2", 3).unwrap();
        apply(&mut c, "min.insync.replicas", "1", 1).unwrap();
        unset(&mut c, "min.insync.replicas").unwrap();
        assert_eq!(c, before);
        for (v, rf) in [("3", 3), ("2", 1), ("0", 3), ("x", 3)] {
            let e = apply(&mut c, "min.insync.replicas", v, rf).unwrap_err();
            assert!(e.contains("min.insync.replicas"), "{e}");
        }
        apply(&mut c, "max.message.bytes", "1000", 3).unwrap();
        assert_eq!(c.max_message_bytes, Some(1000));
        assert!(describe(&c).contains(&("max.message.bytes", "1000".to_owned())));
        assert_eq!(config_type("max.message.bytes"), 3);
        unset(&mut c, "max.message.bytes").unwrap();
        assert_eq!(c, before);
        for v in ["-1", "2147483648", "1e6", ""] {
            let e = apply(&mut c, "max.message.bytes", v, 3).unwrap_err();
            assert!(e.contains("max.message.bytes"), "{e}");
        }
        assert!(apply(&mut c, "max.compaction.lag.ms", "1000", 3).is_err());
        assert!(apply(&mut c, "segment.bytes", "-5", 3).is_err());
        assert!(apply(&mut c, "compression.type", "brotli", 3).is_err());
    }
}
