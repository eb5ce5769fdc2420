use std::time::Duration;

use sluice_protocol::wire::topic_config::TopicCompression;

use super::*;
use crate::log::FlushPolicy;

#[test]
fn empty_file_gives_defaults() {
    assert_eq!(
        BrokerConfig::from_toml("").unwrap(),
        BrokerConfig::default()
    );
    BrokerConfig::default().validate().unwrap();
}

/// Kafka clients put every partition they use through a broker in one
/// request (a consumer's first ListOffsets names all it reads): by default
/// a request may name every partition the broker may hold.
#[test]
fn by_default_one_request_may_name_every_partition_the_broker_holds() {
    let c = BrokerConfig::default();
    assert!(
        c.max_partitions_per_request >= c.max_partitions,
        "{} < {}",
        c.max_partitions_per_request,
        c.max_partitions
    );
    // Also with more partitions allowed, unless set apart.
    let c = BrokerConfig::from_toml("max_partitions = 50000\n").unwrap();
    assert_eq!(c.max_partitions_per_request, 50_000);
    let c = BrokerConfig::from_toml("max_partitions = 50000\nmax_partitions_per_request = 7\n")
        .unwrap();
    assert_eq!(c.max_partitions_per_request, 7);
    let c = BrokerConfig::from_toml("max_partitions = 10\n").unwrap();
    assert_eq!(c.max_partitions_per_request, 10_000);
}

#[test]
fn file_overrides_and_rejects_unknown_keys() {
    let c = BrokerConfig::from_toml(
        "listen = \"127.0.0.1:7000\"\nfetch_path = \"copy\"\n[topic_defaults]\npartitions = 3\nflush = \"before-ack\"\n",
    )
    .unwrap();
    assert_eq!(c.listen.port(), 7000);
    assert_eq!(c.fetch_path, FetchPath::Copy);
    assert_eq!(c.topic_defaults.partitions, 3);
    assert_eq!(
        c.topic_defaults.log_config(&TopicConfig::default()).flush,
        FlushPolicy::BeforeAck
    );
    assert_eq!(
        c.topic_defaults
            .log_config(&TopicConfig::default())
            .max_timestamp_ahead,
        Some(Duration::from_secs(3600)),
        "one hour by default"
    );
    let c = BrokerConfig::from_toml(
        "[topic_defaults]\nflush = 250\nmessage_timestamp_after_max_ms = 0\n",
    )
    .unwrap();
    assert_eq!(
        c.topic_defaults
            .log_config(&TopicConfig::default())
            .max_timestamp_ahead,
        None
    );
    assert_eq!(
        c.topic_defaults.log_config(&TopicConfig::default()).flush,
        FlushPolicy::Interval(Duration::from_millis(250))
    );
    assert!(BrokerConfig::from_toml("listen_addr = \"x\"").is_err());
}

#[test]
fn topic_compression_overrides_the_default() {
    use sluice_protocol::batch::Compression;
    let c = BrokerConfig::from_toml("[topic_defaults]\ncompression = \"gzip\"\n").unwrap();
    let d = &c.topic_defaults;
    assert_eq!(
        d.log_config(&TopicConfig::default()).compression,
        Some(Compression::Gzip)
    );
    assert_eq!(
        d.resolve(&TopicConfig::default()).compression,
        Some(TopicCompression::Gzip)
    );
    let zstd = TopicConfig {
        compression: Some(TopicCompression::Zstd),
        ..TopicConfig::default()
    };
    assert_eq!(d.log_config(&zstd).compression, Some(Compression::Zstd));
    let keep = TopicConfig {
        compression: Some(TopicCompression::Producer),
        ..TopicConfig::default()
    };
    assert_eq!(d.log_config(&keep).compression, None);
    assert_eq!(
        d.resolve(&keep).compression,
        Some(TopicCompression::Producer)
    );
}

#[test]
fn request_caps_are_validated() {
    let c = BrokerConfig::from_toml(
        "max_partitions_per_request = 5\nmax_fetch_response_bytes = 65536\n",
    )
    .unwrap();
    assert_eq!(c.max_partitions_per_request, 5);
    assert_eq!(c.max_fetch_response_bytes, 65536);
    c.validate().unwrap();
    for bad in [
        "max_partitions_per_request = 0",
        "max_partitions_per_request = 1000001",
        "max_fetch_response_bytes = 0",
        "max_fetch_response_bytes = 1073741825",
        "runtime_threads = 1025",
        "[topic_defaults]\nmax_message_bytes = 2147483648",
    ] {
        let c = BrokerConfig::from_toml(bad).unwrap();
        assert!(c.validate().is_err(), "{bad}");
    }
}

#[test]
fn group_settings_are_validated() {
    let c = BrokerConfig::from_toml(
        "group_min_session_timeout_ms = 10\ngroup_max_session_timeout_ms = 10\n\
         group_max_size = 2\ngroup_initial_rebalance_delay_ms = 0\n",
    )
    .unwrap();
    c.validate().unwrap();
    assert_eq!(c.group_config().max_size, 2);
    for (text, needle) in [
        (
            "group_min_session_timeout_ms = 0",
            "group_min_session_timeout_ms",
        ),
        (
            "group_min_session_timeout_ms = 5000\ngroup_max_session_timeout_ms = 4999",
            "group_min_session_timeout_ms",
        ),
        ("group_max_size = 0", "group_max_size"),
        ("group_max_size = 1000001", "group_max_size"),
        ("group_max_bytes = 4095", "group_max_bytes"),
        ("groups_max_bytes = 1048576", "groups_max_bytes"),
        (
            "group_initial_rebalance_delay_ms = 300001",
            "group_initial_rebalance_delay_ms",
        ),
    ] {
        let err = BrokerConfig::from_toml(text)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.contains(needle), "{text}: {err}");
    }
}

#[test]
fn resource_floors_and_partition_limit_are_validated() {
    let c = BrokerConfig::from_toml("max_partitions = 5\n").unwrap();
    assert_eq!(c.max_partitions, 5);
    c.validate().unwrap();
    for (text, needle) in [
        ("max_partitions = 0\n", "max_partitions"),
        ("[topic_defaults]\nsegment_bytes = 4096\n", "segment_bytes"),
        ("[topic_defaults]\nsegment_ms = 10\n", "segment_ms"),
    ] {
        let err = BrokerConfig::from_toml(text)
            .unwrap()
            .validate()
            .unwrap_err();
        assert!(err.contains(needle), "{text}: {err}");
    }
    let c = BrokerConfig::from_toml("[topic_defaults]\nsegment_ms = 0\n").unwrap();
    c.validate().unwrap();
}

#[test]
fn kafka_listen_and_advertised_address_are_checked() {
    let c = BrokerConfig::from_toml("kafka_listen = \"none\"").expect("parse");
    assert_eq!(c.kafka_listen, KafkaListen::Off);
    let c = BrokerConfig::from_toml("kafka_listen = \"0.0.0.0:19092\"").expect("parse");
    assert_eq!(
        c.kafka_listen,
        KafkaListen::On(([0, 0, 0, 0], 19092).into())
    );
    assert!(BrokerConfig::from_toml("kafka_listen = \"nowhere\"").is_err());
    for (addr, ok) in [
        ("kafka.example:9092", true),
        ("[::1]:9092", true),
        ("host", false),
        (":9092", false),
        ("host:99999", false),
    ] {
        let c = BrokerConfig {
            kafka_advertised: addr.to_owned(),
            ..BrokerConfig::default()
        };
        assert_eq!(c.validate().is_ok(), ok, "{addr}");
    }
    assert_eq!(split_host_port("[::1]:9092"), Some(("::1", 9092)));
}

#[test]
fn metrics_listen_parses_addresses_and_none() {
    let c = BrokerConfig::from_toml("metrics_listen = \"none\"\nmetrics_per_partition = false\n")
        .unwrap();
    assert_eq!(c.metrics_listen, MetricsListen::Off);
    assert!(!c.metrics_per_partition);
    let c = BrokerConfig::from_toml("metrics_listen = \"0.0.0.0:9500\"\n").unwrap();
    assert_eq!(
        c.metrics_listen,
        MetricsListen::On("0.0.0.0:9500".parse().unwrap())
    );
    assert!(BrokerConfig::from_toml("metrics_listen = \"localhost\"\n").is_err());
    assert_eq!(
        String::from(MetricsListen::default()),
        DEFAULT_METRICS_LISTEN
    );
}

/// The config file shown in `docs/operations.md` lists every key with its
/// default: it parses, validates, equals the defaults (apart from the
/// example data directory), and names every key the broker has.
#[test]
fn the_documented_config_file_is_the_defaults() {
    let doc = include_str!("../../../docs/operations.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = doc[start..].find("```").expect("its end");
    let c = BrokerConfig::from_toml(&doc[start..start + len]).unwrap();
    c.validate().unwrap();
    let want = BrokerConfig {
        data_dir: c.data_dir.clone(),
        ..BrokerConfig::default()
    };
    assert_eq!(c, want);
    let block = &doc[start..start + len];
    let all = toml::to_string(&BrokerConfig::default()).unwrap();
    for line in all.lines() {
        if let Some((key, _)) = line.split_once(" = ") {
            assert!(
                block.lines().any(|l| l.starts_with(&format!("{key} ="))),
                "docs/operations.md does not show `{key}`"
            );
        }
    }
}

#[test]
fn raft_timing_keys_are_read_and_checked() {
    let c = BrokerConfig::from_toml(
        "raft_heartbeat_ms = 20\nraft_election_timeout_min_ms = 80\nraft_election_timeout_max_ms = 160\n",
    )
    .unwrap();
    assert_eq!(
        (
            c.raft_heartbeat_ms,
            c.raft_election_timeout_min_ms,
            c.raft_election_timeout_max_ms
        ),
        (20, 80, 160)
    );
    c.validate().unwrap();
    for (hb, min, max) in [
        (0, 150, 300),
        (150, 150, 300),
        (50, 300, 300),
        (50, 400, 300),
    ] {
        let c = BrokerConfig {
            raft_heartbeat_ms: hb,
            raft_election_timeout_min_ms: min,
            raft_election_timeout_max_ms: max,
            ..BrokerConfig::default()
        };
        let e = c.validate().unwrap_err();
        assert!(e.contains("raft_heartbeat_ms"), "{hb}/{min}/{max}: {e}");
    }
}

/// Listen addresses may name their host; it is resolved at once.
#[test]
fn listen_addresses_may_name_their_host() {
    use super::listen_addr;
    assert_eq!(
        listen_addr("127.0.0.1:9292").unwrap(),
        "127.0.0.1:9292".parse().unwrap()
    );
    let local = listen_addr("localhost:9292").unwrap();
    assert!(local.ip().is_loopback() && local.port() == 9292, "{local}");
    assert!(listen_addr("localhost").is_err());
    assert!(listen_addr("no-such-host.invalid:1").is_err());
    let k: KafkaListen = "localhost:9092".parse().unwrap();
    assert!(matches!(k, KafkaListen::On(a) if a.ip().is_loopback()));
    // The config file's `listen` as well.
    let c = BrokerConfig::from_toml("listen = \"localhost:7001\"\n").expect("parse");
    assert!(
        c.listen.ip().is_loopback() && c.listen.port() == 7001,
        "{}",
        c.listen
    );
    let e = BrokerConfig::from_toml("listen = \"localhost\"\n").unwrap_err();
    assert!(e.to_string().contains("not HOST:PORT"), "{e}");
}

#[test]
fn the_open_file_limit_lowers_partitions_and_connections_and_is_named() {
    let mut c = BrokerConfig::default();
    assert_eq!(c.fit_open_files(1 << 20, true), None);
    assert_eq!(c.max_partitions_name(), "max_partitions");
    assert_eq!(c.fit_open_files(600, false), Some((10_000, 1024)));
    assert_eq!((c.max_partitions, c.max_connections), (75, 76));
    assert!(c.validate().is_ok());
    assert!(
        c.max_partitions_name().contains("open-file limit of 600"),
        "{}",
        c.max_partitions_name()
    );
}
