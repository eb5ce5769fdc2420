//! DescribeConfigs on the Kafka listener: a topic's settings under Kafka's
//! names, those it was created with told apart from those that follow the
//! broker's defaults, as Kafka's admin tools expect (kafka-python lists
//! only the former by default).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::TcpStream;
use std::time::Duration;

use sluice_protocol::kafka::admin::{
    DescribeConfigsRequest, DescribeConfigsResource, DescribeConfigsResponse, RESOURCE_TOPIC,
};
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::kafka::call;
use sluice_tests::{TestBroker, create_topic};

#[test]
fn topic_settings_are_told_apart_from_the_defaults() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let mut c = b.connect().await;
        let config = TopicConfig {
            retention_ms: Some(3_600_000),
            ..TopicConfig::default()
        };
        create_topic(&mut c, "conf", 1, config).await;
    });
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // No keys asked for, null or empty (as some clients send it): every
    // config, as Kafka answers.
    for (version, keys) in (0..=4).flat_map(|v| [(v, None), (v, Some(Vec::new()))]) {
        let mut req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: "conf".into(),
                configuration_keys: keys,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        let r: DescribeConfigsResponse = call(&mut s, version, &mut req);
        let configs = &r.results[0].configs;
        let get = |name: &str| configs.iter().find(|c| c.name == name).unwrap();
        let set = get("retention.ms");
        assert_eq!(set.value.as_deref(), Some("3600000"), "v{version}");
        assert!(!set.is_default || version >= 1, "v{version}");
        let default = get("segment.bytes");
        // Only the flush policy cannot change while the topic is open.
        assert!(get("flush.ms").read_only && !default.read_only && !set.read_only);
        if version == 0 {
            assert!(default.is_default);
        } else {
            assert_eq!(
                (set.config_source, default.config_source),
                (1, 5),
                "v{version}"
            );
        }
        if version >= 3 {
            assert_eq!((set.config_type, default.config_type), (5, 3), "v{version}");
            assert_eq!(get("compression.type").config_type, 2);
        }
    }
}

/// IncrementalAlterConfigs changes a topic's retention while it is open:
/// the next retention pass goes by it, the setting survives a restart and
/// DescribeConfigs tells it; the setting fixed at creation (`flush.ms`) is refused
/// (`INVALID_CONFIG`) and changes nothing, `validate_only` changes nothing,
/// and a broker resource is refused (`INVALID_REQUEST`). AlterConfigs
/// replaces the whole set. confluent-kafka and kafka-python go through it
/// too.
#[test]
fn a_topics_retention_changes_while_it_is_open() {
    use sluice_protocol::kafka::alter_configs::{
        AlterConfigsOutcome, AlterConfigsRequest, AlterConfigsResource, AlterConfigsResponse,
        AlterableConfig, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, OP_SET,
    };
    use sluice_protocol::kafka::error_code::code;

    let mut b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let config = TopicConfig {
        segment_bytes: Some(64 << 10),
        ..TopicConfig::default()
    };
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "shrink", 1, config).await;
        // About 1 MiB over some 16 segments.
        for i in 0..64 {
            let batch = sluice_tests::batch_sized_now(&format!("r{i}"), 16, 1000);
            c.produce(
                sluice_protocol::wire::produce::Acks::Leader,
                5000,
                &[("shrink", 0, &batch)],
            )
            .await
            .unwrap()
            .unwrap();
        }
    });
    let start_offset = |b: &TestBroker| {
        rt.block_on(async {
            let mut c = b.connect().await;
            let r = c
                .list_offsets(vec![
                    sluice_protocol::wire::list_offsets::ListOffsetsPartition {
                        topic: "shrink".to_owned(),
                        partition: 0,
                        spec: sluice_protocol::wire::list_offsets::OffsetSpec::Earliest,
                    },
                ])
                .await
                .unwrap();
            r.partitions[0].offset
        })
    };
    assert_eq!(start_offset(&b), 0);

    let set = |name: &str, value: &str| AlterableConfig {
        name: name.into(),
        operation: OP_SET,
        value: Some(value.into()),
    };
    let topic = |configs| AlterConfigsResource {
        resource_type: RESOURCE_TOPIC,
        resource_name: "shrink".into(),
        configs,
    };
    let incremental = |s: &mut TcpStream, configs, validate_only, version| {
        let mut req = IncrementalAlterConfigsRequest {
            resources: vec![topic(configs)],
            validate_only,
        };
        let r: IncrementalAlterConfigsResponse = call(s, version, &mut req);
        let IncrementalAlterConfigsResponse(AlterConfigsOutcome { responses, .. }) = r;
        (responses[0].error_code, responses[0].error_message.clone())
    };
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The fixed setting, a list operation and validate_only change
    // nothing.
    let (c, m) = incremental(&mut s, vec![set("flush.ms", "0")], false, 1);
    assert_eq!(c, code::INVALID_CONFIG);
    assert!(m.unwrap().contains("flush.ms"));
    let append = AlterableConfig {
        operation: 2,
        ..set("retention.bytes", "1")
    };
    assert_eq!(
        incremental(&mut s, vec![append], false, 0).0,
        code::INVALID_REQUEST
    );
    // A config named twice is refused whole.
    let twice = vec![set("retention.bytes", "1"), set("retention.bytes", "2")];
    assert_eq!(
        incremental(&mut s, twice, false, 1).0,
        code::INVALID_REQUEST
    );
    let small = || vec![set("retention.bytes", "200000")];
    assert_eq!(incremental(&mut s, small(), true, 1).0, code::NONE);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(start_offset(&b), 0, "validate_only changed the retention");
    // Now for real: retention by size takes the old segments.
    assert_eq!(incremental(&mut s, small(), false, 1), (code::NONE, None));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while start_offset(&b) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let after = start_offset(&b);
    assert!(after > 0, "retention did not go by the new setting");
    let described = |s: &mut TcpStream| {
        let mut req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: "shrink".into(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        let r: DescribeConfigsResponse = call(s, 1, &mut req);
        let get = |n: &str| {
            let c = r.results[0].configs.iter().find(|c| c.name == n).unwrap();
            (c.value.clone().unwrap(), c.config_source)
        };
        (get("retention.bytes"), get("segment.bytes"))
    };
    let want = (("200000".to_owned(), 1), ((64 << 10).to_string(), 1));
    assert_eq!(described(&mut s), want);
    // Kept across a restart.
    b.stop();
    b.restart();
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_eq!(described(&mut s), want);
    assert!(start_offset(&b) >= after);
    // AlterConfigs replaces the set: retention.bytes back to its default,
    // segment.bytes restated (else it would go back to its default too).
    let mut req = AlterConfigsRequest {
        resources: vec![topic(vec![
            set("segment.bytes", "65536"),
            set("retention.ms", "-1"),
        ])],
        validate_only: false,
    };
    let r: AlterConfigsResponse = call(&mut s, 0, &mut req);
    assert_eq!(r.0.responses[0].error_code, code::NONE);
    let ((bytes, source), _) = described(&mut s);
    assert_eq!((bytes.as_str(), source), ("-1", 5));
    // Kafka's retention.ms 0 (Sluice's 1, which DescribeConfigs then
    // lists; unlike -1) deletes every segment, the active one too: it is
    // sealed and a new empty one takes its place, so every record goes.
    let segments = || sluice_tests::segment_file_count(&b.data_dir, "shrink-0");
    assert!(segments() > 1, "{} segments", segments());
    let zero = vec![set("retention.ms", "0")];
    assert_eq!(incremental(&mut s, zero, false, 1), (code::NONE, None));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while segments() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(segments(), 1, "retention.ms 0 kept sealed segments");
    // The active segment goes at the pass after the sealed ones.
    while start_offset(&b) < 64 * 16 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(start_offset(&b), 64 * 16, "retention.ms 0 kept records");
    assert_eq!(segments(), 1);
    // A broker resource is refused.
    let mut req = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: 4,
            resource_name: "0".into(),
            configs: vec![set("log.retention.ms", "1")],
        }],
        validate_only: false,
    };
    let r: IncrementalAlterConfigsResponse = call(&mut s, 1, &mut req);
    assert_eq!(r.0.responses[0].error_code, code::INVALID_REQUEST);

    // Kafka's own clients.
    let Some(python) = sluice_tests::kafka::python() else {
        return;
    };
    rt.block_on(async {
        let mut c = b.connect().await;
        create_topic(&mut c, "by-clients", 1, TopicConfig::default()).await;
    });
    let out = sluice_tests::kafka::run_clients(
        &python,
        &[
            "alter-configs",
            &b.kafka_addr.unwrap().to_string(),
            "by-clients",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["set"], "ok", "{out}");
    assert_eq!(v["after_set"]["retention.ms"][0], "60000", "{out}");
    assert_eq!(v["fixed"], "INVALID_CONFIG", "{out}");
    assert_eq!(v["delete"], "ok", "{out}");
    assert_eq!(v["kafka_python"], serde_json::json!([0]), "{out}");
    assert_eq!(
        v["after_all"],
        serde_json::json!({
            "retention.ms": ["604800000", 5],
            "retention.bytes": ["1000000", 1],
        }),
        "{out}"
    );
}

/// In a 3-node cluster a topic's retention changes through any node: the
/// controller commits it, every node answers DescribeConfigs with it, a
/// node that was down meanwhile takes it when it is back, and two changes
/// of different settings sent to two nodes at once both hold afterwards
/// (neither undoes the other). A fixed setting is still refused and
/// `validate_only` still changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topics_retention_changes_across_a_cluster() {
    use sluice_protocol::kafka::alter_configs::{
        AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse, OP_SET,
    };
    use sluice_protocol::kafka::error_code::code;
    use sluice_tests::cluster::TestCluster;

    let mut c = TestCluster::start_with_kafka(3);
    {
        let mut conn = c.node(1).connect().await;
        let r = conn
            .create_topics(vec![sluice_protocol::wire::create_topics::NewTopic {
                name: "kept".into(),
                partitions: 2,
                config: TopicConfig {
                    segment_bytes: Some(1 << 20),
                    ..TopicConfig::default()
                },
                replication_factor: Some(3),
            }])
            .await
            .unwrap();
        assert_eq!(
            r.results[0].error_code,
            sluice_protocol::wire::ErrorCode::None
        );
    }
    let stream = |c: &TestCluster, id: u64| {
        let s = TcpStream::connect(c.node(id).kafka_addr.unwrap()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    };
    let set = |name: &str, value: &str| AlterableConfig {
        name: name.into(),
        operation: OP_SET,
        value: Some(value.into()),
    };
    let alter = |s: &mut TcpStream, configs: Vec<AlterableConfig>, validate_only: bool| {
        let mut req = IncrementalAlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: "kept".into(),
                configs,
            }],
            validate_only,
        };
        let r: IncrementalAlterConfigsResponse = call(s, 1, &mut req);
        (
            r.0.responses[0].error_code,
            r.0.responses[0].error_message.clone(),
        )
    };
    // (value, source) of each of `names` as node `id` describes "kept".
    let described = |c: &TestCluster, id: u64, names: &[&str]| {
        let mut req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_TOPIC,
                resource_name: "kept".into(),
                configuration_keys: None,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        let r: DescribeConfigsResponse = call(&mut stream(c, id), 1, &mut req);
        // A node just restarted may not know the topic yet: no configs,
        // told apart from every wanted answer, so `until` asks again.
        names
            .iter()
            .map(|n| {
                r.results[0]
                    .configs
                    .iter()
                    .find(|c| c.name == *n)
                    .map_or(("?".to_owned(), -1), |c| {
                        (c.value.clone().unwrap_or_default(), c.config_source)
                    })
            })
            .collect::<Vec<_>>()
    };
    let until = |c: &TestCluster, id: u64, names: &[&str], want: &[(&str, i8)]| {
        let want: Vec<(String, i8)> = want.iter().map(|(v, s)| ((*v).to_owned(), *s)).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let got = described(c, id, names);
            if got == want {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {id}: {got:?}, want {want:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    c.kill(3);
    let mut s2 = stream(&c, 2);
    let (code_, m) = alter(&mut s2, vec![set("flush.ms", "0")], false);
    assert_eq!(code_, code::INVALID_CONFIG, "{m:?}");
    assert!(m.unwrap().contains("flush.ms"));
    assert_eq!(
        alter(&mut s2, vec![set("retention.ms", "1")], true).0,
        code::NONE
    );
    assert_eq!(
        alter(&mut s2, vec![set("retention.ms", "60000")], false),
        (code::NONE, None)
    );
    for id in [1, 2] {
        until(
            &c,
            id,
            &["retention.ms", "segment.bytes"],
            &[("60000", 1), ("1048576", 1)],
        );
    }
    // Node 3 was down: it takes the change when it is back.
    c.restart(3);
    until(&c, 3, &["retention.ms"], &[("60000", 1)]);
    // Two changes at once through two nodes: both hold.
    let (a, b) = (c.node(1).kafka_addr.unwrap(), c.node(2).kafka_addr.unwrap());
    let one = std::thread::spawn(move || {
        let mut s = TcpStream::connect(a).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut out = Vec::new();
        for i in 0..5 {
            let cfg = vec![set("retention.ms", &(70_000 + i).to_string())];
            let mut req = IncrementalAlterConfigsRequest {
                resources: vec![AlterConfigsResource {
                    resource_type: RESOURCE_TOPIC,
                    resource_name: "kept".into(),
                    configs: cfg,
                }],
                validate_only: false,
            };
            let r: IncrementalAlterConfigsResponse = call(&mut s, 1, &mut req);
            out.push((
                r.0.responses[0].error_code,
                r.0.responses[0].error_message.clone(),
            ));
        }
        out
    });
    let mut other = Vec::new();
    for i in 0..5 {
        let cfg = vec![set("retention.bytes", &(1_000_000 + i).to_string())];
        let mut s = TcpStream::connect(b).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        other.push(alter(&mut s, cfg, false));
    }
    let one = one.join().unwrap();
    assert!(one.iter().all(|(c, _)| *c == code::NONE), "{one:?}");
    assert!(other.iter().all(|(c, _)| *c == code::NONE), "{other:?}");
    for id in 1..=3 {
        until(
            &c,
            id,
            &["retention.ms", "retention.bytes"],
            &[("70004", 1), ("1000004", 1)],
        );
    }
}

/// The segment size and the codec change while a topic is open: after
/// `segment.bytes` grows from 64 KiB to 1 MiB, 512 KB more take no more
/// than one new segment file (they took eight before); after
/// `compression.type` becomes gzip, an uncompressed batch produced then is
/// stored gzipped, while the one produced before stays as it was; both
/// hold after a restart.
#[test]
fn segment_size_and_codec_change_while_a_topic_is_open() {
    use sluice_protocol::kafka::alter_configs::{
        AlterConfigsOutcome, AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
        IncrementalAlterConfigsResponse, OP_SET,
    };
    use sluice_protocol::kafka::error_code::code;
    use sluice_protocol::wire::fetch::FetchPartition;
    use sluice_protocol::wire::produce::Acks;

    let mut b = TestBroker::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let segments = |b: &TestBroker| sluice_tests::segment_file_count(&b.data_dir, "live-0");
    let produce = |b: &TestBroker, batches: usize| {
        rt.block_on(async {
            let mut c = b.connect().await;
            for i in 0..batches {
                let batch = sluice_tests::batch_sized_now(&format!("r{i}"), 16, 4000);
                let r = c
                    .produce(Acks::Leader, 5000, &[("live", 0, &batch)])
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(
                    r.partitions[0].error_code,
                    sluice_protocol::wire::ErrorCode::None
                );
            }
        })
    };
    // The codec (attributes bits 0-2) of each batch from offset 0.
    let codecs = |b: &TestBroker| {
        rt.block_on(async {
            let mut c = b.connect().await;
            let mut out = Vec::new();
            let mut offset = 0;
            loop {
                let f = c
                    .fetch(
                        0,
                        0,
                        8 << 20,
                        vec![FetchPartition {
                            topic: "live".into(),
                            partition: 0,
                            offset,
                            max_bytes: 8 << 20,
                        }],
                    )
                    .await
                    .unwrap();
                let mut bytes = &f[0].records[..];
                if bytes.is_empty() {
                    return out;
                }
                while bytes.len() >= 61 {
                    let len = 12 + u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
                    let last_delta = u32::from_be_bytes(bytes[23..27].try_into().unwrap());
                    let base = u64::from_be_bytes(bytes[0..8].try_into().unwrap());
                    out.push(bytes[22] & 7);
                    offset = base + u64::from(last_delta) + 1;
                    bytes = &bytes[len..];
                }
            }
        })
    };
    rt.block_on(async {
        let mut c = b.connect().await;
        let config = TopicConfig {
            segment_bytes: Some(64 << 10),
            ..TopicConfig::default()
        };
        create_topic(&mut c, "live", 1, config).await;
    });
    // 8 batches of some 64 KB: a segment each.
    produce(&b, 8);
    let before = segments(&b);
    assert!(before >= 7, "{before} segments");
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = IncrementalAlterConfigsRequest {
        resources: vec![AlterConfigsResource {
            resource_type: RESOURCE_TOPIC,
            resource_name: "live".into(),
            configs: vec![
                AlterableConfig {
                    name: "segment.bytes".into(),
                    operation: OP_SET,
                    value: Some((1 << 20).to_string()),
                },
                AlterableConfig {
                    name: "compression.type".into(),
                    operation: OP_SET,
                    value: Some("gzip".into()),
                },
            ],
        }],
        validate_only: false,
    };
    let r: IncrementalAlterConfigsResponse = call(&mut s, 1, &mut req);
    let IncrementalAlterConfigsResponse(AlterConfigsOutcome { responses, .. }) = r;
    assert_eq!(responses[0].error_code, code::NONE, "{responses:?}");
    produce(&b, 8);
    let after = segments(&b);
    assert!(after <= before + 1, "{before} segments, then {after}");
    let stored = codecs(&b);
    assert_eq!(stored.len(), 16, "{stored:?}");
    assert!(stored[..8].iter().all(|&c| c == 0), "{stored:?}");
    assert!(stored[8..].iter().all(|&c| c == 1), "{stored:?}");
    b.stop();
    b.restart();
    produce(&b, 8);
    assert!(
        segments(&b) <= after + 1,
        "the new size held across a restart"
    );
    let stored = codecs(&b);
    assert!(stored[16..].iter().all(|&c| c == 1), "{stored:?}");
}

/// CreateTopics with `validate_only` answers what a creation would (the
/// count and factor, the configs, or the refusal with its reason) and
/// creates nothing; from v5 a created topic's answer lists its configs as
/// DescribeConfigs would (those asked for from the topic, the rest from
/// the defaults, `cleanup.policy` among them; `min.insync.replicas` as the
/// majority of the replicas, what an acks=all write is on: asking for more
/// is refused).
#[test]
fn create_topics_validates_only_and_lists_the_new_topics_configs() {
    use sluice_protocol::kafka::admin::{
        ConfigEntry, CreatableTopic, CreateTopicsRequest, CreateTopicsResponse,
    };
    use sluice_protocol::kafka::error_code::code;

    let b = TestBroker::start();
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let topic = |name: &str, partitions: i32, configs: &[(&str, &str)]| CreatableTopic {
        name: name.into(),
        num_partitions: partitions,
        replication_factor: -1,
        assignments: Vec::new(),
        configs: configs
            .iter()
            .map(|(n, v)| ConfigEntry {
                name: (*n).into(),
                value: Some((*v).into()),
            })
            .collect(),
    };
    let create = |s: &mut TcpStream, topics: Vec<CreatableTopic>, validate_only: bool| {
        let mut req = CreateTopicsRequest {
            topics,
            timeout_ms: 5000,
            validate_only,
        };
        let r: CreateTopicsResponse = call(s, 5, &mut req);
        r.topics
    };
    let exists = |name: &str| b.data_dir.join(format!("{name}-0")).exists();
    let retention = [("retention.ms", "60000"), ("min.insync.replicas", "1")];
    create(&mut s, vec![topic("there", 1, &[])], false);

    let answers = create(
        &mut s,
        vec![
            topic("dry", 3, &retention),
            topic("there", 1, &[]),
            topic("bad/name", 1, &[]),
            topic("compacted", 1, &[("cleanup.policy", "compact")]),
            topic("huge", 1_000_000, &[]),
            // One replica: every acks=all write is on one, not two.
            topic("insync", 1, &[("min.insync.replicas", "2")]),
        ],
        true,
    );
    let codes: Vec<i16> = answers.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        [
            code::NONE,
            code::TOPIC_ALREADY_EXISTS,
            code::INVALID_TOPIC_EXCEPTION,
            code::INVALID_CONFIG,
            code::INVALID_PARTITIONS,
            code::INVALID_CONFIG,
        ],
        "{answers:?}"
    );
    assert!(answers[1..].iter().all(|t| t.error_message.is_some()));
    assert_eq!(
        (answers[0].num_partitions, answers[0].replication_factor),
        (3, 1)
    );
    assert!(!exists("dry"), "validate_only created the topic");

    // Created for real: the same answer, and the configs listed.
    let answers = create(&mut s, vec![topic("dry", 3, &retention)], false);
    assert_eq!(answers[0].error_code, code::NONE, "{answers:?}");
    assert!(exists("dry"));
    let configs = answers[0].configs.as_ref().unwrap();
    let get = |name: &str| configs.iter().find(|c| c.name == name).unwrap();
    let r = get("retention.ms");
    assert_eq!((r.value.as_deref(), r.config_source), (Some("60000"), 1));
    let d = get("segment.bytes");
    assert_eq!(d.config_source, 5);
    assert_eq!(get("cleanup.policy").value.as_deref(), Some("delete"));
    assert_eq!(get("min.insync.replicas").value.as_deref(), Some("1"));
    assert!(get("flush.ms").read_only && !r.read_only);
}

/// DescribeConfigs of a broker: this broker's settings under Kafka's
/// names, read-only (the topic defaults as `log.*`, the fixed behaviours,
/// the limits); the cluster-wide defaults (empty name) list nothing, and
/// another broker's id is `INVALID_REQUEST`, as Kafka answers.
#[test]
fn a_broker_describes_its_own_settings_under_kafkas_names() {
    use sluice_protocol::kafka::admin::RESOURCE_BROKER;
    use sluice_protocol::kafka::error_code::code;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "[topic_defaults]\npartitions = 3\nretention_ms = 0\n",
    )
    .unwrap();
    let b = TestBroker::start_with_args(&["--config", config.to_str().unwrap()]);
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let describe = |s: &mut TcpStream, name: &str, keys: Option<Vec<String>>| {
        let mut req = DescribeConfigsRequest {
            resources: vec![DescribeConfigsResource {
                resource_type: RESOURCE_BROKER,
                resource_name: name.into(),
                configuration_keys: keys,
            }],
            include_synonyms: false,
            include_documentation: false,
        };
        let r: DescribeConfigsResponse = call(s, 4, &mut req);
        r.results.into_iter().next().unwrap()
    };
    let mine = describe(&mut s, "0", None);
    assert_eq!(mine.error_code, code::NONE);
    let get = |name: &str| {
        let c = mine.configs.iter().find(|c| c.name == name);
        c.unwrap_or_else(|| panic!("{name} not listed: {:?}", mine.configs))
    };
    assert_eq!(get("num.partitions").value.as_deref(), Some("3"));
    assert_eq!(get("log.retention.ms").value.as_deref(), Some("-1"));
    assert_eq!(get("log.cleanup.policy").value.as_deref(), Some("delete"));
    assert_eq!(
        get("auto.create.topics.enable").value.as_deref(),
        Some("false")
    );
    assert_eq!(get("node.id").value.as_deref(), Some("0"));
    assert!(get("log.segment.bytes").value.is_some());
    assert!(
        mine.configs
            .iter()
            .all(|c| c.read_only && c.config_source == 4)
    );
    // No keys asked for, null or empty: all of them.
    let empty = describe(&mut s, "0", Some(Vec::new()));
    assert_eq!(empty.configs.len(), mine.configs.len());
    // Only the keys asked for.
    let some = describe(&mut s, "0", Some(vec!["num.partitions".into()]));
    assert_eq!(some.configs.len(), 1);
    let defaults = describe(&mut s, "", None);
    assert_eq!(
        (defaults.error_code, defaults.configs.len()),
        (code::NONE, 0)
    );
    let other = describe(&mut s, "7", None);
    assert_eq!(other.error_code, code::INVALID_REQUEST);
    assert!(other.error_message.unwrap().contains("expected 0"));
}

/// A consumer group's configs (Kafka 4's group resource): the consumer
/// protocol's session timeout and heartbeat interval the broker gives every
/// group, for any group name, as defaults; an empty name and the resource
/// types Sluice has none of are `INVALID_REQUEST` with a message.
#[test]
fn a_group_describes_the_settings_it_goes_by() {
    use sluice_protocol::kafka::admin::RESOURCE_GROUP;
    use sluice_protocol::kafka::error_code::code;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("broker.toml");
    std::fs::write(
        &config,
        "group_consumer_session_timeout_ms = 40000\ngroup_consumer_heartbeat_interval_ms = 4000\n",
    )
    .unwrap();
    let b = TestBroker::start_with_args(&["--config", config.to_str().unwrap()]);
    let mut s = TcpStream::connect(b.kafka_addr.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let resource = |kind: i8, name: &str, keys: Option<Vec<String>>| DescribeConfigsResource {
        resource_type: kind,
        resource_name: name.into(),
        configuration_keys: keys,
    };
    let mut req = DescribeConfigsRequest {
        resources: vec![
            resource(RESOURCE_GROUP, "never-joined", None),
            resource(
                RESOURCE_GROUP,
                "other",
                Some(vec!["consumer.heartbeat.interval.ms".into()]),
            ),
            resource(RESOURCE_GROUP, "", None),
            // A broker logger.
            resource(8, "0", None),
        ],
        include_synonyms: false,
        include_documentation: false,
    };
    let r: DescribeConfigsResponse = call(&mut s, 4, &mut req);
    // (v4 tells a default by its source, 5: DEFAULT_CONFIG; 3: INT.)
    let listed = |i: usize| -> Vec<(String, Option<String>, i8, i8)> {
        r.results[i]
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.clone(),
                    c.value.clone(),
                    c.config_source,
                    c.config_type,
                )
            })
            .collect()
    };
    let entry = |name: &str, value: &str| (name.to_owned(), Some(value.to_owned()), 5, 3);
    assert_eq!(r.results[0].error_code, code::NONE);
    assert_eq!(
        listed(0),
        [
            entry("consumer.session.timeout.ms", "40000"),
            entry("consumer.heartbeat.interval.ms", "4000")
        ]
    );
    assert_eq!(listed(1), [entry("consumer.heartbeat.interval.ms", "4000")]);
    for i in [2, 3] {
        let res = &r.results[i];
        assert_eq!(res.error_code, code::INVALID_REQUEST, "{res:?}");
        assert!(
            res.error_message.is_some() && res.configs.is_empty(),
            "{res:?}"
        );
    }
}

/// A topic's `max.message.bytes`, as kafka-ui's create form sets it with
/// confluent-kafka: a batch over it is refused with `MESSAGE_TOO_LARGE`
/// (also through the native protocol), one under it stored; raising it
/// lets the larger batch in, and the new limit holds across a restart.
#[test]
fn a_topics_max_message_bytes_limits_its_batches() {
    use sluice_protocol::wire::ErrorCode;
    use sluice_protocol::wire::produce::Acks;
    use sluice_tests::kafka::{python, run_clients};

    let Some(py) = python() else { return };
    let mut b = TestBroker::start();
    let addr = b.kafka_addr.unwrap().to_string();
    // Runs a phase of the client script; checks the limit it describes
    // and which of the 500 KB, 2 MB and 5 MB records it could produce.
    let phase = |addr: &str, phase: &str, limit: &str, taken: [bool; 3]| {
        let out = run_clients(&py, &["max-message-bytes", addr, "limited", phase]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["described"], serde_json::json!([limit, 1]), "{v}");
        let outcome = |ok: bool| if ok { "ok" } else { "MSG_SIZE_TOO_LARGE" };
        assert_eq!(
            v["produced"],
            serde_json::json!({
                "500000": outcome(taken[0]),
                "2000000": outcome(taken[1]),
                "5000000": outcome(taken[2]),
            }),
            "{v}"
        );
    };
    phase(&addr, "create", "1048588", [true, false, false]);
    // The native protocol's produce meets the same limit.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let native = |b: &TestBroker, len: usize| {
        rt.block_on(async {
            let mut c = b.connect().await;
            let batch = sluice_tests::batch_sized_now("n", 1, len);
            let r = c
                .produce(Acks::Leader, 5000, &[("limited", 0, &batch)])
                .await
                .unwrap()
                .unwrap();
            r.partitions[0].error_code
        })
    };
    assert_eq!(native(&b, 1_100_000), ErrorCode::MessageTooLarge);
    assert_eq!(native(&b, 900_000), ErrorCode::None);
    phase(&addr, "raise", "4194304", [true, true, false]);
    b.stop();
    b.restart();
    let addr = b.kafka_addr.unwrap().to_string();
    phase(&addr, "check", "4194304", [true, true, false]);
    assert_eq!(native(&b, 4_300_000), ErrorCode::MessageTooLarge);
}
