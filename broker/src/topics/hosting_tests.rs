//! Per-partition hosting: a topic listed with only some of its partitions
//! on disk, and versions 3 and 4 of `topics.meta` that record them (and,
//! from version 4, each topic's id).

use proptest::prelude::*;

use super::meta::{TopicRecord, encode_meta};
use super::tests::{append_some, dir_names, unhex};
use super::*;

/// A version 2 file (one topic "a", 3 partitions, retention_ms 5), as
/// brokers before per-partition hosting wrote it.
const V2_FILE: &str = "534c544d000200000000000b01016103000001050000009427d92a";

/// A version 3 file: topic "a", 4 partitions, retention_ms 5, hosting
/// partitions 1 and 3 (the example of `docs/storage-format.md`).
const V3_FILE: &str = "534c544d000300000000000f010161040000010500000001020103cd9f69f9";

/// A version 4 file: version 3's topic with id `00…0f` (the example of
/// `docs/storage-format.md`).
const V4_FILE: &str = "534c544d000400000000001f010161040000010500000001020103000102030405060708090a0b0c0d0e0f46fdc048";

fn v4_record() -> TopicRecord {
    TopicRecord {
        name: "a".into(),
        partitions: 4,
        config: TopicConfig {
            retention_ms: Some(5),
            ..TopicConfig::default()
        },
        hosted: Some(vec![1, 3]),
        id: std::array::from_fn(|i| i as u8),
    }
}

/// A version 5 file: version 4's topic with `max_message_bytes` 300 (the
/// example of `docs/storage-format.md`).
const V5_FILE: &str = "534c544d0005000000000022010161040000010500000001ac0201020103000102030405060708090a0b0c0d0e0fb184d828";

#[test]
fn version_5_layout_is_pinned() {
    let record = TopicRecord {
        config: TopicConfig {
            max_message_bytes: Some(300),
            ..v4_record().config
        },
        ..v4_record()
    };
    assert_eq!(hex(&encode_meta(std::slice::from_ref(&record))), V5_FILE);
    let back = decode_meta(&unhex(V5_FILE)).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].hosted, Some(vec![1, 3]));
    assert_eq!(back[0].partitions, 4);
    assert_eq!(back[0].config, record.config);
    assert_eq!(back[0].id, record.id);
}

#[test]
fn version_4_file_loads_without_a_batch_limit() {
    let record = v4_record();
    let back = decode_meta(&unhex(V4_FILE)).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].hosted, Some(vec![1, 3]));
    assert_eq!(back[0].partitions, 4);
    assert_eq!(back[0].config, record.config);
    assert_eq!(back[0].config.max_message_bytes, None);
    assert_eq!(back[0].id, record.id);
    // Rewritten as version 5: the same topic, one more (absent) setting.
    let again = encode_meta(&back);
    assert_eq!(&again[4..6], [0, 5]);
    assert_eq!(again.len(), unhex(V4_FILE).len() + 1);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A version 3 file lists no ids: each topic gets the id derived from its
/// name, the same at every start, and the next rewrite keeps it.
#[test]
fn version_3_file_loads_with_ids_derived_from_the_names() {
    let back = decode_meta(&unhex(V3_FILE)).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].hosted, Some(vec![1, 3]));
    assert_eq!(back[0].config.retention_ms, Some(5));
    let derived = TopicId::derived("a", 0);
    assert_eq!(back[0].id, derived.0);

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(TOPICS_FILE), unhex(V3_FILE)).unwrap();
    for p in [1, 3] {
        std::fs::create_dir(dir.path().join(format!("a-{p}"))).unwrap();
    }
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.topic("a").unwrap().id, derived);
    store.create("b", 1, &TopicConfig::default()).unwrap();
    let b = store.topic("b").unwrap().id;
    store.shutdown();
    drop(store);
    let bytes = std::fs::read(dir.path().join(TOPICS_FILE)).unwrap();
    assert_eq!(&bytes[4..6], [0, 5], "rewritten as version 5");
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.topic("a").unwrap().id, derived);
    assert_eq!(store.topic("b").unwrap().id, b);
    store.shutdown();
}

#[test]
fn version_2_file_loads_with_every_partition_hosted() {
    let records = decode_meta(&unhex(V2_FILE)).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].name, "a");
    assert_eq!(records[0].partitions, 3);
    assert_eq!(records[0].hosted, None);
    assert_eq!(records[0].config.retention_ms, Some(5));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(TOPICS_FILE), unhex(V2_FILE)).unwrap();
    for p in 0..3 {
        std::fs::create_dir(dir.path().join(format!("a-{p}"))).unwrap();
    }
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    assert_eq!(store.topic("a").unwrap().hosted().count(), 3);
    assert_eq!(dir_names(dir.path()), ["a-0", "a-1", "a-2", TOPICS_FILE]);
}

#[test]
fn hosted_sets_out_of_order_or_out_of_range_are_refused() {
    for hosted in [vec![2, 1], vec![1, 1], vec![4]] {
        let bytes = encode_meta(&[TopicRecord {
            hosted: Some(hosted.clone()),
            ..v4_record()
        }]);
        let err = decode_meta(&bytes).unwrap_err();
        assert!(err.contains("hosted partitions"), "{hosted:?}: {err}");
    }
}

#[test]
fn only_hosted_partitions_get_directories_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default())
        .unwrap()
        .with_max_partitions(3);
    store
        .create_hosting(
            "t",
            TopicId::derived("t", 1),
            5,
            Hosting::Only(&[1, 3]),
            &TopicConfig::default(),
        )
        .unwrap();
    assert_eq!(dir_names(dir.path()), ["t-1", "t-3", TOPICS_FILE]);
    let t = store.topic("t").unwrap();
    assert_eq!(t.partition_count(), 5);
    assert_eq!(t.hosted().map(|(i, _)| i).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(
        store.partition("t", 0).unwrap_err(),
        ErrorCode::NotLeaderForPartition
    );
    assert_eq!(
        store.partition("t", 5).unwrap_err(),
        ErrorCode::UnknownTopicOrPartition
    );
    assert!(store.has_partition("t", 4) && !store.has_partition("t", 5));
    assert_eq!(store.all_partitions().len(), 2);
    // The limit counts hosted partitions only: 2 used, 1 more fits.
    store
        .create_hosting(
            "u",
            TopicId::derived("u", 1),
            4,
            Hosting::Only(&[2]),
            &TopicConfig::default(),
        )
        .unwrap();
    let err = store
        .create_hosting(
            "v",
            TopicId::derived("v", 1),
            9,
            Hosting::Only(&[0, 1]),
            &TopicConfig::default(),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidPartitions);
    append_some(&store, "t", 3);
    store.shutdown();
    drop(store);

    // Reopened: the same partitions, hosted set and data.
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    let t = store.topic("t").unwrap();
    assert_eq!(t.partition_count(), 5);
    assert_eq!(t.hosted().map(|(i, _)| i).collect::<Vec<_>>(), [1, 3]);
    assert_eq!(store.partition("t", 3).unwrap().log.next_offset(), 3);
    assert_eq!(
        dir_names(dir.path()),
        ["t-1", "t-3", TOPICS_FILE, "u-2"],
        "no directory created for an unhosted partition"
    );

    // Deletion removes the hosted directories and lists nothing more.
    store.delete("t").unwrap();
    assert_eq!(dir_names(dir.path()), [TOPICS_FILE, "u-2"]);
    store.shutdown();
}

#[test]
fn a_directory_of_an_unhosted_partition_is_removed_or_set_aside_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    store
        .create_hosting(
            "t",
            TopicId::derived("t", 1),
            3,
            Hosting::Only(&[1]),
            &TopicConfig::default(),
        )
        .unwrap();
    store.shutdown();
    drop(store);
    // An empty directory of a partition not hosted here goes; one with
    // records is set aside.
    std::fs::create_dir(dir.path().join("t-2")).unwrap();
    std::fs::create_dir(dir.path().join("t-0")).unwrap();
    std::fs::write(dir.path().join("t-0/00000000000000000000.log"), b"records").unwrap();
    let store = TopicStore::open(dir.path(), TopicDefaults::default()).unwrap();
    let names = dir_names(dir.path());
    assert!(!names.iter().any(|n| n.starts_with("t-2")), "{names:?}");
    assert!(!names.contains(&"t-0".to_owned()), "{names:?}");
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("t-0.") && n.ends_with("-stray")),
        "{names:?}"
    );
    assert_eq!(
        store.partition("t", 2).unwrap_err(),
        ErrorCode::NotLeaderForPartition
    );
    store.shutdown();
}

fn arb_record() -> impl Strategy<Value = TopicRecord> {
    (
        "[a-z][a-z0-9._-]{0,20}",
        1u32..64,
        (
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u32>()),
        ),
        proptest::option::of(proptest::collection::btree_set(0u32..64, 0..16)),
        any::<[u8; 16]>(),
    )
        .prop_map(
            |(name, partitions, (retention_ms, max_message_bytes), hosted, id)| TopicRecord {
                name,
                partitions,
                config: TopicConfig {
                    retention_ms,
                    max_message_bytes,
                    ..TopicConfig::default()
                },
                hosted: hosted.map(|h| h.into_iter().filter(|&p| p < partitions).collect()),
                id,
            },
        )
}

proptest! {
    #[test]
    fn meta_round_trips(records in proptest::collection::vec(arb_record(), 0..8)) {
        let bytes = encode_meta(&records);
        let back = decode_meta(&bytes).unwrap();
        prop_assert_eq!(back.len(), records.len());
        for (a, b) in records.iter().zip(&back) {
            prop_assert_eq!(&a.name, &b.name);
            prop_assert_eq!(a.partitions, b.partitions);
            prop_assert_eq!(&a.config, &b.config);
            prop_assert_eq!(&a.hosted, &b.hosted);
            prop_assert_eq!(a.id, b.id);
        }
    }

    #[test]
    fn damaged_meta_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = decode_meta(&bytes);
    }
}
