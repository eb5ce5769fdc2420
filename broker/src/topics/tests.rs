use super::meta::{TopicRecord, encode_meta};
use super::*;
use sluice_protocol::wire::topic_config::TopicCompression;

#[test]
fn meta_round_trips_and_detects_damage() {
    let records = vec![
        TopicRecord {
            name: "a".into(),
            partitions: 3,
            config: TopicConfig::default(),
            hosted: Some(vec![0, 2]),
            id: [1; 16],
        },
        TopicRecord {
            name: "b.c".into(),
            partitions: 1,
            config: TopicConfig {
                retention_ms: Some(5),
                compression: Some(TopicCompression::Zstd),
                ..TopicConfig::default()
            },
            hosted: None,
            id: [2; 16],
        },
    ];
    let bytes = encode_meta(&records);
    assert_eq!(&bytes[..4], b"SLTM");
    assert_eq!(&bytes[4..6], [0, 5], "version 5");
    let back = decode_meta(&bytes).unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].hosted, Some(vec![0, 2]));
    assert_eq!(back[1].hosted, None);
    assert_eq!(back[1].config.retention_ms, Some(5));
    assert_eq!(back[1].config.compression, Some(TopicCompression::Zstd));
    assert_eq!(back[0].config, TopicConfig::default());
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 1;
        assert!(decode_meta(&bad).is_err(), "flip at {i}");
    }
    for n in 0..bytes.len() {
        assert!(decode_meta(&bytes[..n]).is_err());
    }
}

#[test]
fn create_delete_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    store.create("orders", 3, &TopicConfig::default()).unwrap();
    store.create("gone", 1, &TopicConfig::default()).unwrap();
    assert!(matches!(
        store.create("orders", 1, &TopicConfig::default()),
        Err(BrokerError::Request {
            code: ErrorCode::TopicAlreadyExists,
            ..
        })
    ));
    // As in Kafka, a name that differs from a topic's only in '.' and '_'.
    store
        .create("orders.eu", 1, &TopicConfig::default())
        .unwrap();
    for check in [
        store.check_create("orders_eu", 1, &TopicConfig::default()),
        store.create("orders_eu", 1, &TopicConfig::default()),
    ] {
        match check {
            Err(BrokerError::Request {
                code: ErrorCode::InvalidTopicName,
                message,
            }) => assert!(
                message.contains("collides with topic \"orders.eu\""),
                "{message}"
            ),
            other => panic!("{other:?}"),
        }
    }
    assert!(!dir.path().join("orders_eu-0").exists());
    store.delete("orders.eu").unwrap();
    for (bad, code) in [
        ("../x", ErrorCode::InvalidTopicName),
        ("", ErrorCode::InvalidTopicName),
        ("__consumer_offsets", ErrorCode::InvalidTopicName),
        ("__consumer.offsets", ErrorCode::InvalidTopicName),
        ("__sluice_group_state", ErrorCode::InvalidTopicName),
    ] {
        assert!(matches!(
            store.create(bad, 1, &TopicConfig::default()),
            Err(BrokerError::Request { code: c, .. }) if c == code
        ));
    }
    assert!(matches!(
        store.create("zero", 0, &TopicConfig::default()),
        Err(BrokerError::Request {
            code: ErrorCode::InvalidPartitions,
            ..
        })
    ));
    store.delete("gone").unwrap();
    assert!(!dir.path().join("gone-0").exists());
    store.shutdown();
    drop(store);
    // A leftover directory of an interrupted create is set aside, not
    // removed.
    std::fs::create_dir(dir.path().join("stray-0")).unwrap();
    std::fs::write(dir.path().join("stray-0/keep"), b"x").unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.list().len(), 1);
    assert_eq!(store.topic("orders").unwrap().partitions.len(), 3);
    assert!(store.partition("orders", 3).is_err());
    assert!(!dir.path().join("stray-0").exists());
    let kept = dir_names(dir.path())
        .into_iter()
        .find(|n| n.starts_with("stray-0.") && n.ends_with("-stray"))
        .expect("stray directory kept");
    assert_eq!(
        std::fs::read(dir.path().join(kept).join("keep")).unwrap(),
        b"x"
    );
}

/// A name starting with `__` that is not one the broker keeps (Debezium's
/// heartbeat topics) is an ordinary topic: created, and its partitions
/// reopened as its own (not taken for an internal or a stray directory).
#[test]
fn other_double_underscore_names_are_ordinary_topics() {
    let dir = tempfile::tempdir().unwrap();
    let name = "__debezium-heartbeat.inventory";
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    store.create(name, 2, &TopicConfig::default()).unwrap();
    store.shutdown();
    drop(store);
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.topic(name).unwrap().partitions.len(), 2);
    assert_eq!(
        dir_names(dir.path())
            .into_iter()
            .filter(|n| n.starts_with("__"))
            .collect::<Vec<_>>(),
        [format!("{name}-0"), format!("{name}-1")]
    );
    store.shutdown();
}

/// The entries of `dir`, sorted, without the space reserve (which the
/// store keeps there whenever it can).
pub(super) fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != super::space_reserve::RESERVE_FILE)
        .collect();
    names.sort();
    names
}

/// Every file under `dir` with its length, sorted.
fn tree(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        if e.file_type().unwrap().is_dir() {
            for (n, len) in tree(&e.path()) {
                out.push((format!("{name}/{n}"), len));
            }
        } else {
            out.push((name, e.metadata().unwrap().len()));
        }
    }
    out.sort();
    out
}

pub(super) fn append_some(store: &TopicStore, topic: &str, partition: u32) {
    let log = &store.partition(topic, partition).unwrap().log;
    let mut b = sluice_protocol::batch::BatchBuilder::new();
    for v in [&b"one"[..], b"two", b"three"] {
        b.push(&sluice_protocol::batch::NewRecord {
            timestamp: 1,
            key: None,
            value: Some(v),
            headers: &[],
        });
    }
    log.append(&mut b.finish()).unwrap();
}

/// A version 1 file (one topic "a", 3 partitions, retention_ms 5),
/// as brokers before per-topic compression wrote it.
const V1_FILE: &str = "534c544d000100000000000a01016103000001050000de9c5aeb";

pub(super) fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn version_1_file_loads_and_is_migrated_on_the_next_write() {
    let v1 = unhex(V1_FILE);
    let records = decode_meta(&v1).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name, "a");
    assert_eq!(records[0].partitions, 3);
    assert_eq!(
        records[0].config,
        TopicConfig {
            retention_ms: Some(5),
            ..TopicConfig::default()
        }
    );
    // A version 2 body under a version 1 header is refused (and the
    // reverse), whatever the CRC says.
    let mut v2 = encode_meta(&records);
    v2[5] = 1;
    let n = v2.len() - 4;
    let crc = crc32fast::hash(&v2[..n]);
    v2[n..].copy_from_slice(&crc.to_be_bytes());
    assert!(decode_meta(&v2).is_err());

    // A broker opening it keeps the topic; the next create rewrites
    // the file in today's version with both topics.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(TOPICS_FILE), &v1).unwrap();
    // Its partitions' directories, as a broker of that version left them.
    for p in 0..3 {
        std::fs::create_dir(dir.path().join(format!("a-{p}"))).unwrap();
    }
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    let a = store.topic("a").unwrap();
    assert_eq!(a.partitions.len(), 3);
    assert_eq!(a.config.retention_ms, Some(5));
    let zstd = TopicConfig {
        compression: Some(TopicCompression::Zstd),
        ..TopicConfig::default()
    };
    store.create("z", 1, &zstd).unwrap();
    store.shutdown();
    drop(store);
    let now = std::fs::read(dir.path().join(TOPICS_FILE)).unwrap();
    assert_eq!(&now[4..6], [0, 5]);
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.topic("a").unwrap().config.retention_ms, Some(5));
    assert_eq!(store.topic("z").unwrap().config, zstd);
    assert_eq!(
        store.partition("z", 0).unwrap().log.config().compression,
        Some(sluice_protocol::batch::Compression::Zstd)
    );
}

#[test]
fn missing_or_damaged_metadata_refuses_to_start_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A fresh, empty data directory starts and records that it has no topics.
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert!(dir.path().join(TOPICS_FILE).exists());
    store.create("orders", 2, &TopicConfig::default()).unwrap();
    append_some(&store, "orders", 1);
    store.shutdown();
    drop(store);
    let meta = std::fs::read(dir.path().join(TOPICS_FILE)).unwrap();

    std::fs::remove_file(dir.path().join(TOPICS_FILE)).unwrap();
    let before = tree(dir.path());
    let err = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("topics.meta is missing"), "{msg}");
    assert!(msg.contains("refusing to start"), "{msg}");
    assert!(msg.contains("restore"), "{msg}");
    assert_eq!(tree(dir.path()), before, "nothing may change");

    let mut bad = meta.clone();
    bad[10] ^= 0xff;
    std::fs::write(dir.path().join(TOPICS_FILE), &bad).unwrap();
    let before = tree(dir.path());
    let msg = TopicStore::open(dir.path(), TopicDefaults::default())
        .unwrap_err()
        .to_string();
    assert!(msg.contains("damaged"), "{msg}");
    assert!(msg.contains("refusing to start"), "{msg}");
    assert_eq!(tree(dir.path()), before, "nothing may change");

    // Restored, the broker opens with the data in place.
    std::fs::write(dir.path().join(TOPICS_FILE), &meta).unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.partition("orders", 1).unwrap().log.next_offset(), 3);
}

#[test]
fn interrupted_deletions_are_finished_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    for t in ["half", "marked", "kept"] {
        store.create(t, 2, &TopicConfig::default()).unwrap();
        append_some(&store, t, 0);
    }
    store.shutdown();
    drop(store);
    // "half": the deletion crashed after renaming partition 0, before
    // the metadata file was updated.
    std::fs::rename(
        dir.path().join("half-0"),
        dir.path().join("half-0.00000000000000aa-delete"),
    )
    .unwrap();
    // A marked directory of a topic already unlisted (the crash came
    // after the metadata update), with a recreated topic of that name
    // that must not be touched.
    std::fs::rename(
        dir.path().join("marked-1"),
        dir.path().join("marked-1.00000000000000bb-delete"),
    )
    .unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert!(store.topic("half").is_none(), "deletion finished");
    let names = dir_names(dir.path());
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("half-") || n.ends_with("-delete")),
        "{names:?}"
    );
    // "marked" is still listed (its marker was left by an earlier
    // deletion): finished too, as the marker says it was being deleted.
    assert!(store.topic("marked").is_none());
    assert_eq!(store.partition("kept", 0).unwrap().log.next_offset(), 3);
    assert!(names.contains(&"kept-0".to_owned()) && names.contains(&"kept-1".to_owned()));
    store.shutdown();
    drop(store);
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.list().len(), 1);
}

#[test]
fn a_cut_short_delete_marker_finishes_no_other_topics_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    // `long-10` partition 0's marker, cut to 255 bytes, reads as `long`
    // partition 1.
    let long = "a".repeat(229);
    let longer = format!("{long}-10");
    store.create(&long, 4, &TopicConfig::default()).unwrap();
    store.create(&longer, 1, &TopicConfig::default()).unwrap();
    append_some(&store, &long, 1);
    store.shutdown();
    drop(store);
    // The deletion of `longer` crashed after its rename.
    let tp = TopicPartition::new(&longer, 0).unwrap();
    std::fs::rename(
        dir.path().join(tp.dir_name()),
        dir.path().join(crate::log::names::set_aside_dir_name(
            &tp.dir_name(),
            0xcc,
            DELETE_SUFFIX,
        )),
    )
    .unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert!(store.topic(&long).is_some(), "the other topic is kept");
    assert_eq!(store.partition(&long, 1).unwrap().log.next_offset(), 3);
    assert!(!dir_names(dir.path()).iter().any(|n| n.ends_with("-delete")));
    store.shutdown();
}

#[test]
fn delete_marks_directories_before_removing_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    store.create("gone", 3, &TopicConfig::default()).unwrap();
    store.create("kept", 1, &TopicConfig::default()).unwrap();
    append_some(&store, "gone", 2);
    store.delete("gone").unwrap();
    assert_eq!(dir_names(dir.path()), vec!["kept-0", TOPICS_FILE]);
    assert!(store.topic("gone").is_none());
    // The name is free again, and the new topic starts empty.
    store.create("gone", 3, &TopicConfig::default()).unwrap();
    assert_eq!(store.partition("gone", 2).unwrap().log.next_offset(), 0);
}

#[test]
fn a_recreated_topic_is_not_taken_for_an_interrupted_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    // An earlier deletion of "x" renamed its directory but could not
    // remove it.
    std::fs::create_dir(dir.path().join("x-0.00000000000000cc-delete")).unwrap();
    store.create("x", 1, &TopicConfig::default()).unwrap();
    append_some(&store, "x", 0);
    store.shutdown();
    drop(store);
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.partition("x", 0).unwrap().log.next_offset(), 3);
}

#[test]
fn partition_limit_and_segment_floors_are_enforced_at_creation() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default())
        .unwrap()
        .with_max_partitions(5);
    store.create("a", 3, &TopicConfig::default()).unwrap();
    let err = store.create("b", 3, &TopicConfig::default()).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidPartitions);
    assert!(err.to_string().contains("max_partitions"), "{err}");
    assert!(!dir.path().join("b-0").exists());
    store.create("b", 2, &TopicConfig::default()).unwrap();
    for (config, needle) in [
        (
            TopicConfig {
                segment_bytes: Some(MIN_SEGMENT_BYTES - 1),
                ..TopicConfig::default()
            },
            "segment_bytes",
        ),
        (
            TopicConfig {
                segment_ms: Some(1),
                ..TopicConfig::default()
            },
            "segment_ms",
        ),
        (
            TopicConfig {
                retention_ms: Some(i64::MAX as u64 + 1),
                ..TopicConfig::default()
            },
            "retention_ms (Kafka's retention.ms) must be at most 9223372036854775807",
        ),
        (
            TopicConfig {
                retention_bytes: Some(u64::MAX),
                ..TopicConfig::default()
            },
            "retention_bytes",
        ),
        (
            TopicConfig {
                segment_ms: Some(u64::MAX),
                ..TopicConfig::default()
            },
            "segment_ms",
        ),
        (
            TopicConfig {
                flush: Some(FlushMode::IntervalMs(u64::MAX)),
                ..TopicConfig::default()
            },
            "flush",
        ),
    ] {
        let store = TopicStore::open(
            tempfile::tempdir().unwrap().path(),
            TopicDefaults::default(),
        )
        .unwrap();
        let err = store.create("c", 1, &config).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidConfig);
        assert!(err.to_string().contains(needle), "{err}");
    }
}

/// A topic's retention, segment size and codec change in `topics.meta`
/// and in its open logs; its flush policy (fixed at creation), a setting
/// below its floor, an edit that fails, or an unknown topic, is refused and
/// changes nothing; `validate_only` changes nothing.
#[test]
fn a_topics_settings_but_its_flush_policy_change_after_creation() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    let created = TopicConfig {
        segment_bytes: Some(1 << 20),
        ..TopicConfig::default()
    };
    store.create("r", 2, &created).unwrap();
    let shorter = TopicConfig {
        retention_ms: Some(60_000),
        retention_bytes: Some(5 << 20),
        ..created.clone()
    };
    // An edit that replaces the settings with `c`.
    let to = |c: &TopicConfig| {
        let c = c.clone();
        move |_: &TopicConfig| Ok(c)
    };
    store.alter_config("r", to(&shorter), true).unwrap();
    assert_eq!(store.topic("r").unwrap().config, created);
    // The edit starts from the stored settings.
    store
        .alter_config(
            "r",
            |now: &TopicConfig| {
                assert_eq!(now, &created);
                Ok(TopicConfig {
                    retention_ms: Some(60_000),
                    retention_bytes: Some(5 << 20),
                    ..now.clone()
                })
            },
            false,
        )
        .unwrap();
    let want = crate::log::Retention {
        age: Some(std::time::Duration::from_secs(60)),
        bytes: Some(5 << 20),
    };
    for (_, p) in store.topic("r").unwrap().hosted() {
        assert_eq!(p.log.retention(), want);
    }
    let before_ack = TopicConfig {
        flush: Some(sluice_protocol::wire::topic_config::FlushMode::BeforeAck),
        ..shorter.clone()
    };
    let err = store.alter_config("r", to(&before_ack), false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    let tiny = TopicConfig {
        segment_bytes: Some(1024),
        ..shorter.clone()
    };
    let err = store.alter_config("r", to(&tiny), false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig, "{err}");
    // The segment size and the codec go to the open logs at once.
    let zstd = TopicConfig {
        compression: Some(TopicCompression::Zstd),
        segment_bytes: Some(2 << 20),
        ..shorter.clone()
    };
    store.alter_config("r", to(&zstd), false).unwrap();
    for (_, p) in store.topic("r").unwrap().hosted() {
        assert_eq!(p.log.roll_policy().0, 2 << 20);
        assert_eq!(
            p.log.compression(),
            Some(sluice_protocol::batch::Compression::Zstd)
        );
    }
    store.alter_config("r", to(&shorter), false).unwrap();
    let err = store.alter_config("nope", to(&shorter), false).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownTopicOrPartition);
    let err = store
        .alter_config("r", |_| Err("no".to_owned()), false)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidConfig);
    store.shutdown();
    drop(store);
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.topic("r").unwrap().config, shorter);
    for (_, p) in store.topic("r").unwrap().hosted() {
        assert_eq!(p.log.retention(), want);
        assert_eq!(p.log.roll_policy().0, 1 << 20);
        assert_eq!(p.log.compression(), None);
    }
    store.shutdown();
}

/// Partitions added to a topic get empty logs beside the untouched old
/// ones, are in `topics.meta` (a restart keeps them), and count against
/// `max_partitions`; a count that does not rise, an unknown topic or
/// `validate_only` changes nothing; a stray directory of an earlier failed
/// create is set aside, not taken over.
#[test]
fn partitions_are_added_beside_the_untouched_old_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default())
        .unwrap()
        .with_max_partitions(6);
    store.create("a", 2, &TopicConfig::default()).unwrap();
    append_some(&store, "a", 1);
    let id = store.topic("a").unwrap().id;
    for count in [2, 1, 0] {
        let err = store
            .add_partitions("a", count, Hosting::All, false)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidPartitions, "{err}");
    }
    let err = store
        .add_partitions("nope", 3, Hosting::All, false)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownTopicOrPartition);
    let err = store
        .add_partitions("a", 7, Hosting::All, false)
        .unwrap_err();
    assert!(err.to_string().contains("max_partitions"), "{err}");
    store.add_partitions("a", 4, Hosting::All, true).unwrap();
    assert_eq!(store.topic("a").unwrap().partition_count(), 2);
    assert!(!dir.path().join("a-2").exists());
    // Left by a create that failed before its metadata write.
    std::fs::create_dir(dir.path().join("a-3")).unwrap();
    std::fs::write(dir.path().join("a-3").join("junk"), b"x").unwrap();
    store.add_partitions("a", 4, Hosting::All, false).unwrap();
    let a = store.topic("a").unwrap();
    assert_eq!((a.partition_count(), a.id), (4, id));
    assert_eq!(store.partition("a", 1).unwrap().log.next_offset(), 3);
    for p in [2, 3] {
        assert_eq!(store.partition("a", p).unwrap().log.next_offset(), 0);
    }
    assert!(!dir.path().join("a-3").join("junk").exists());
    assert!(
        dir_names(dir.path())
            .iter()
            .any(|n| n.starts_with("a-3.") && n.ends_with("-stray")),
        "{:?}",
        dir_names(dir.path())
    );
    append_some(&store, "a", 3);
    store.shutdown();
    drop(store);
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    let a = store.topic("a").unwrap();
    assert_eq!((a.partition_count(), a.id), (4, id));
    assert_eq!(store.partition("a", 1).unwrap().log.next_offset(), 3);
    assert_eq!(store.partition("a", 3).unwrap().log.next_offset(), 3);
    store.shutdown();
}

/// A node of a cluster adds only the new partitions it hosts; the others
/// are listed without files.
#[test]
fn added_partitions_not_hosted_here_get_no_directory() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    let id = TopicId::derived("h", 1);
    store
        .create_hosting("h", id, 2, Hosting::Only(&[0]), &TopicConfig::default())
        .unwrap();
    store
        .add_partitions("h", 5, Hosting::Only(&[0, 3]), false)
        .unwrap();
    let h = store.topic("h").unwrap();
    assert_eq!(h.partition_count(), 5);
    let hosted: Vec<u32> = h.hosted().map(|(p, _)| p).collect();
    assert_eq!(hosted, [0, 3]);
    for p in [1, 2, 4] {
        assert!(!dir.path().join(format!("h-{p}")).exists());
    }
    store.shutdown();
    drop(store);
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    let hosted: Vec<u32> = store.topic("h").unwrap().hosted().map(|(p, _)| p).collect();
    assert_eq!(hosted, [0, 3]);
    assert_eq!(store.topic("h").unwrap().partition_count(), 5);
}

#[test]
fn every_partition_of_every_topic_reopens_as_itself_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    let topics = [("a", 1), ("b", 5), ("c", 2), ("d", 3)];
    for (name, count) in topics {
        store.create(name, count, &TopicConfig::default()).unwrap();
        for p in 0..count {
            // A different length for each partition: 3 × (p + 1) records,
            // plus 3 × the topic's letter index.
            let extra = u32::from(name.as_bytes()[0] - b'a');
            for _ in 0..=(p + extra) {
                append_some(&store, name, p);
            }
        }
    }
    // No shutdown: every partition is recovered (rescanned) at the next
    // open, on several threads.
    drop(store);
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.list().len(), topics.len());
    for (name, count) in topics {
        assert_eq!(store.topic(name).unwrap().partitions.len(), count as usize);
        let extra = u64::from(name.as_bytes()[0] - b'a');
        for p in 0..count {
            let log = &store.partition(name, p).unwrap().log;
            assert_eq!(
                log.next_offset(),
                3 * (u64::from(p) + extra + 1),
                "{name}-{p}"
            );
        }
    }
    store.shutdown();
}

/// A partition directory no topic lists is removed at open when it holds
/// no records (an interrupted create leaves such directories, one per
/// crash), and set aside when it holds some, or anything unknown.
#[test]
fn unlisted_partition_directories_without_records_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    store.create("empty", 1, &TopicConfig::default()).unwrap();
    store.create("full", 1, &TopicConfig::default()).unwrap();
    append_some(&store, "full", 0);
    store.shutdown();
    drop(store);
    let copy = |from: &str, to: &str| {
        std::fs::create_dir(dir.path().join(to)).unwrap();
        for e in std::fs::read_dir(dir.path().join(from)).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), dir.path().join(to).join(e.file_name())).unwrap();
        }
    };
    // Directories as a create interrupted before its metadata write
    // leaves them: one fresh, one (as if) written to.
    copy("empty-0", "lost-0");
    copy("full-0", "kept-0");
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    let names = dir_names(dir.path());
    assert!(!names.iter().any(|n| n.starts_with("lost-0")), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("kept-0.") && n.ends_with("-stray")),
        "{names:?}"
    );
    assert!(names.contains(&"empty-0".to_owned()) && names.contains(&"full-0".to_owned()));
    store.shutdown();
}
