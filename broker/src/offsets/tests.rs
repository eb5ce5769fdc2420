use super::*;
use crate::log::StdFs;
use sluice_protocol::batch::{BatchBuilder, NewRecord};

fn entry(topic: &str, partition: u32, offset: u64) -> CommitPartition {
    CommitPartition {
        topic: topic.into(),
        partition,
        offset,
        metadata: format!("m{offset}"),
    }
}

fn open(dir: &Path, config: OffsetsConfig) -> OffsetStore {
    OffsetStore::open(Arc::new(StdFs), dir, config).unwrap()
}

/// Bytes of `.log` files in the offsets log directory.
fn log_bytes_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join(OFFSETS_DIR))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn commits_survive_reopen_latest_wins() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), OffsetsConfig::default());
    store
        .commit("g1", &[entry("t", 0, 5), entry("t", 1, 7)])
        .unwrap();
    store.commit("g1", &[entry("t", 0, 9)]).unwrap();
    store.commit("g2", &[entry("t", 0, 1)]).unwrap();
    assert_eq!(store.get("g1", "t", 0), Some((9, "m9".into())));
    drop(store); // crash: no clean shutdown
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(store.get("g1", "t", 0), Some((9, "m9".into())));
    assert_eq!(store.get("g1", "t", 1), Some((7, "m7".into())));
    assert_eq!(store.get("g2", "t", 0), Some((1, "m1".into())));
    assert_eq!(store.get("g3", "t", 0), None);
    assert_eq!(store.group("g1").len(), 2);
}

/// Records written before keys were versioned (bare postcard key and
/// value) still load, and newer records override them.
#[test]
fn unversioned_records_still_load() {
    let dir = tempfile::tempdir().unwrap();
    {
        let config = LogConfig {
            flush: FlushPolicy::BeforeAck,
            ..LogConfig::default()
        };
        let (log, _) = PartitionLog::open(dir.path().join(OFFSETS_DIR), config).unwrap();
        let mut b = BatchBuilder::new();
        let records = [(("g", "t", 0u32), (3u64, "old")), (("g", "t", 1), (4, "x"))];
        let encoded: Vec<_> = records
            .iter()
            .map(|(k, v)| {
                (
                    postcard::to_stdvec(k).unwrap(),
                    postcard::to_stdvec(v).unwrap(),
                )
            })
            .collect();
        for (k, v) in &encoded {
            b.push(&NewRecord {
                timestamp: 1,
                key: Some(k),
                value: Some(v),
                headers: &[],
            });
        }
        let mut batch = b.finish();
        let info = log.append(&mut batch).unwrap();
        log.flush_to(info.next_offset).unwrap();
    }
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(store.get("g", "t", 0), Some((3, "old".into())));
    store.commit("g", &[entry("t", 0, 8)]).unwrap();
    drop(store);
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(store.get("g", "t", 0), Some((8, "m8".into())));
    assert_eq!(store.get("g", "t", 1), Some((4, "x".into())));
}

#[test]
fn record_layout_known_bytes_and_round_trip() {
    let key = encode_key("g", "tp", 7);
    assert_eq!(key, [0, 1, 1, b'g', 2, b't', b'p', 7]);
    let value = encode_value(300, "m", 0x0102_0304_0506_0708);
    assert_eq!(value, [0, 2, 0xAC, 0x02, 1, b'm', 1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(
        decode_record(&key, Some(&value)),
        Ok(OffsetRecord::Commit(
            ("g".into(), "tp".into(), 7),
            Some((300, "m".into(), 0x0102_0304_0506_0708))
        ))
    );
    // Version 1, without the commit time, still reads (time unknown: 0).
    assert_eq!(
        decode_record(&key, Some(&[0, 1, 0xAC, 0x02, 1, b'm'])),
        Ok(OffsetRecord::Commit(
            ("g".into(), "tp".into(), 7),
            Some((300, "m".into(), 0))
        ))
    );
    // Version 2 with the time cut short, or a byte too many; version 3.
    for bad in [&value[..13], &[&value[..], &[0]].concat()[..]] {
        assert!(decode_record(&key, Some(bad)).is_err(), "{bad:?}");
    }
    assert!(decode_record(&key, Some(&[0, 3, 0xAC, 0x02, 1, b'm'])).is_err());
    assert_eq!(
        decode_record(&key, None),
        Ok(OffsetRecord::Commit(("g".into(), "tp".into(), 7), None))
    );
    assert_eq!(
        decode_record(&[0, 9, 9, 9], Some(b"whatever")),
        Ok(OffsetRecord::Unknown(9))
    );
    let group_key = encode_group_key("g");
    assert_eq!(group_key, [0, 2, 1, b'g']);
    assert_eq!(
        decode_record(&group_key, Some(b"\x00\x01opaque")),
        Ok(OffsetRecord::Group(
            "g".into(),
            Some(b"\x00\x01opaque".to_vec())
        ))
    );
    assert_eq!(
        decode_record(&group_key, None),
        Ok(OffsetRecord::Group("g".into(), None))
    );
    assert!(decode_record(&[0, 2, 9, 9], None).is_err());
    assert!(decode_record(&[], None).is_err());
    assert!(decode_record(&key, Some(&[0, 9, 1, 1])).is_err());
}

/// The checkpoint marker layout of docs/storage-format.md.
#[test]
fn checkpoint_marker_layout_known_bytes_and_round_trip() {
    let marker = CheckpointMarker {
        term: 5,
        started_at: 0x0102_0304_0506_0708,
        part: 1,
        parts: 3,
    };
    assert_eq!(CheckpointMarker::key(), [0, 3]);
    let value = marker.encode();
    assert_eq!(
        value,
        [
            0, 1, // version
            0, 0, 0, 0, 0, 0, 0, 5, // term
            1, 2, 3, 4, 5, 6, 7, 8, // started_at
            0, 0, 0, 1, // part
            0, 0, 0, 3, // parts
        ]
    );
    assert_eq!(value.len(), CHECKPOINT_VALUE_LEN);
    assert_eq!(
        decode_record(&CheckpointMarker::key(), Some(&value)),
        Ok(OffsetRecord::Checkpoint(marker))
    );
    for len in 0..value.len() {
        assert!(
            decode_record(&[0, 3], Some(&value[..len])).is_err(),
            "cut at {len}"
        );
    }
    let mut longer = value.clone();
    longer.push(0);
    assert!(decode_record(&[0, 3], Some(&longer)).is_err());
    assert!(
        decode_record(&[0, 3], None).is_err(),
        "a marker has a value"
    );
    assert!(decode_record(&[0, 3, 0], Some(&value)).is_err());
    let mut version = value.clone();
    version[1] = 2;
    assert!(decode_record(&[0, 3], Some(&version)).is_err());
    let mut past = value.clone();
    past[21] = 3; // part 3 of 3
    assert!(decode_record(&[0, 3], Some(&past)).is_err());
    // Replaying a marker changes nothing.
    let mut state = Replayed::default();
    state.apply(0, &encode_key("g", "t", 0), Some(&encode_value(4, "", 1)));
    state.apply(1, &CheckpointMarker::key(), Some(&value));
    assert_eq!(state.offsets.len(), 1);
    assert_eq!(state.records, 2);
}

#[test]
fn snapshot_round_trips_and_rejects_damage() {
    let snap = Snapshot {
        covers_to: 0x0102_0304_0506_0708,
        entries: vec![
            (("g".into(), "t".into(), 0), (5, String::new(), 1)),
            (("g2".into(), "t".into(), 3), (9, "x".repeat(4096), 0)),
        ],
        groups: vec![("g".into(), vec![0, 1, 7])],
    };
    let bytes = snap.encode().unwrap();
    assert_eq!(&bytes[0..8], b"SLOF\x00\x02\x00\x00");
    assert_eq!(&bytes[8..16], &[1, 2, 3, 4, 5, 6, 7, 8]);
    assert_eq!(&bytes[16..20], &[0, 0, 0, 3]);
    // The group entry is last: key length, key, value length, value.
    assert_eq!(
        &bytes[bytes.len() - 15..],
        &[0, 0, 0, 4, 0, 2, 1, b'g', 0, 0, 0, 3, 0, 1, 7]
    );
    assert_eq!(
        u32::from_be_bytes(bytes[20..24].try_into().unwrap()) as usize,
        bytes.len() - SNAPSHOT_HEADER_LEN
    );
    assert_eq!(Snapshot::decode(&bytes).unwrap(), snap);
    let empty = Snapshot::default();
    assert_eq!(Snapshot::decode(&empty.encode().unwrap()).unwrap(), empty);
    for at in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[at] ^= 0x41;
        assert!(Snapshot::decode(&bad).is_err(), "flip at {at}");
    }
    for len in 0..bytes.len() {
        assert!(Snapshot::decode(&bytes[..len]).is_err(), "cut at {len}");
    }
}

/// A version 1 snapshot (offsets only, from before group metadata) is
/// still read; group entries in it, or offsets after group entries, are
/// refused.
#[test]
fn version_1_snapshots_still_load() {
    let with_crc = |mut bytes: Vec<u8>| {
        let mut crc = crc32fast::Hasher::new();
        crc.update(&bytes[..28]);
        crc.update(&bytes[32..]);
        bytes[28..32].copy_from_slice(&crc.finalize().to_be_bytes());
        bytes
    };
    let offsets_only = Snapshot {
        covers_to: 9,
        entries: vec![(("g".into(), "t".into(), 0), (5, String::new(), 0))],
        groups: vec![],
    };
    let mut v1 = offsets_only.encode().unwrap();
    v1[5] = 1;
    assert_eq!(Snapshot::decode(&with_crc(v1)), Ok(offsets_only.clone()));
    let mut with_group = offsets_only.clone();
    with_group.groups.push(("g".into(), vec![0, 1]));
    let mut v1 = with_group.encode().unwrap();
    v1[5] = 1;
    assert!(Snapshot::decode(&with_crc(v1)).is_err());
}

#[test]
fn group_metadata_survives_reopen_and_snapshots_and_is_deleted_with_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), OffsetsConfig::default());
    store.store_group("g", Some(vec![0, 1, 1])).unwrap();
    store.store_group("g", Some(vec![0, 1, 2])).unwrap();
    store.store_group("h", Some(vec![0, 1, 3])).unwrap();
    store.commit("g", &[entry("t", 0, 5)]).unwrap();
    store.commit("k", &[entry("t", 0, 6)]).unwrap();
    drop(store);
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(
        store.group_records(),
        [("g".into(), vec![0, 1, 2]), ("h".into(), vec![0, 1, 3])]
    );
    assert!(store.has_group("k") && store.has_group("h") && !store.has_group("z"));
    assert!(store.delete_group("g").unwrap());
    assert!(!store.delete_group("g").unwrap(), "nothing left to delete");
    assert_eq!(store.get("g", "t", 0), None);
    store.snapshot().unwrap();
    store.store_group("h", None).unwrap();
    drop(store);
    let store = open(dir.path(), OffsetsConfig::default());
    assert!(store.group_records().is_empty());
    assert!(!store.has_group("g"));
    assert_eq!(store.get("k", "t", 0), Some((6, "m6".into())));
    assert_eq!(store.groups_with_offsets(), ["k"]);
    // In the snapshot too.
    store.store_group("s", Some(vec![0, 1, 9])).unwrap();
    store.snapshot().unwrap();
    drop(store);
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(store.replayed_at_open(), 0);
    assert_eq!(store.group_records(), [("s".into(), vec![0, 1, 9])]);
}

#[test]
fn oversized_metadata_and_too_many_keys_are_refused_unstored() {
    let dir = tempfile::tempdir().unwrap();
    let config = OffsetsConfig {
        max_keys: 3,
        ..OffsetsConfig::default()
    };
    let store = open(dir.path(), config);
    let mut big = entry("t", 0, 1);
    big.metadata = "x".repeat(4097);
    let err = store.commit("g", &[entry("t", 1, 1), big]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::OffsetMetadataTooLarge);
    assert_eq!(
        store.get("g", "t", 1),
        None,
        "nothing of the request stored"
    );
    let mut fits = entry("t", 0, 1);
    fits.metadata = "x".repeat(4096);
    store.commit("g", &[fits, entry("t", 1, 1)]).unwrap();
    store.commit("g", &[entry("t", 2, 1)]).unwrap();
    let err = store.commit("h", &[entry("t", 0, 1)]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::TooManyCommittedOffsets);
    // Updating keys already held is still allowed at the limit.
    store.commit("g", &[entry("t", 2, 5)]).unwrap();
    assert_eq!(store.len(), 3);
    assert_eq!(
        store.log().next_offset(),
        4,
        "refused commits wrote nothing"
    );
}

/// Many commits: the log on disk stays bounded by the snapshot
/// threshold, startup replays only the log after the snapshot, and
/// every latest value survives restart.
#[test]
fn snapshots_bound_the_log_and_startup_replay() {
    let dir = tempfile::tempdir().unwrap();
    let config = OffsetsConfig {
        snapshot_bytes: 16 << 10,
        ..OffsetsConfig::default()
    };
    let store = open(dir.path(), config);
    let commits = 3000u64;
    for i in 0..commits {
        let group = format!("g{}", i % 7);
        store
            .commit(&group, &[entry("t", (i % 5) as u32, i)])
            .unwrap();
        // Bounded at all times: threshold plus one segment plus the
        // commit in flight.
        let on_disk = log_bytes_on_disk(dir.path());
        assert!(
            on_disk <= (16 << 10) + 4096 + 512,
            "{on_disk} bytes after {i}"
        );
    }
    assert!(dir.path().join(SNAPSHOT_FILE).exists());
    let expected: Vec<_> = (0..7).map(|g| store.group(&format!("g{g}"))).collect();
    drop(store);
    let store = open(dir.path(), config);
    assert!(
        store.replayed_at_open() < 1000,
        "replayed {} of {commits} records",
        store.replayed_at_open()
    );
    for (g, want) in expected.iter().enumerate() {
        assert_eq!(&store.group(&format!("g{g}")), want);
    }
    assert_eq!(store.get("g6", "t", 4), Some((2974, "m2974".into())));
    // Without its snapshot the log after it would lose every offset the
    // snapshot held: the store refuses to open, and says why.
    drop(store);
    let snapshot = std::fs::read(dir.path().join(SNAPSHOT_FILE)).unwrap();
    std::fs::remove_file(dir.path().join(SNAPSHOT_FILE)).unwrap();
    let e = OffsetStore::open(Arc::new(StdFs), dir.path(), config).unwrap_err();
    assert!(e.to_string().contains("snapshot is missing"), "{e}");
    std::fs::write(dir.path().join(SNAPSHOT_FILE), snapshot).unwrap();
    let store = open(dir.path(), config);
    assert_eq!(store.get("g6", "t", 4), Some((2974, "m2974".into())));
}

/// Concurrent commits to the same keys: what memory says is what the
/// log says after a restart.
#[test]
fn concurrent_commits_of_one_group_agree_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path(), OffsetsConfig::default()));
    let threads = 4;
    let keys = 150u32;
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                for k in 0..keys {
                    barrier.wait();
                    let offset = u64::from(k) * 100 + t as u64;
                    store.commit("g", &[entry("t", k, offset)]).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let in_memory = store.group("g");
    assert_eq!(in_memory.len(), keys as usize);
    drop(store);
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(store.group("g"), in_memory, "memory and log disagree");
}

#[test]
fn forgotten_topics_stay_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), OffsetsConfig::default());
    store
        .commit("g", &[entry("gone", 0, 1), entry("kept", 0, 2)])
        .unwrap();
    store.commit("h", &[entry("gone", 1, 3)]).unwrap();
    assert_eq!(store.forget_topics(|t| t != "gone").unwrap(), 2);
    assert_eq!(store.get("g", "gone", 0), None);
    drop(store);
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(store.get("g", "gone", 0), None);
    assert_eq!(store.get("h", "gone", 1), None);
    assert_eq!(store.get("g", "kept", 0), Some((2, "m2".into())));
    assert_eq!(store.len(), 1);
}

#[test]
fn a_commit_for_a_deleted_topic_is_refused_under_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), OffsetsConfig::default());
    let err = store
        .commit_if(
            "g",
            &[entry("kept", 0, 1), entry("gone", 0, 2)],
            |t| t != "gone",
            || Ok(()),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownTopicOrPartition);
    assert!(store.is_empty(), "nothing of a refused commit is stored");
    store
        .commit_if("g", &[entry("kept", 0, 3)], |t| t != "gone", || Ok(()))
        .unwrap();
    assert_eq!(store.get("g", "kept", 0), Some((3, "m3".into())));
    // A commit its group no longer allows (asked under the group's lock)
    // stores nothing and gets the group's code.
    let err = store
        .commit_if(
            "g",
            &[entry("kept", 0, 4)],
            |_| true,
            || Err(ErrorCode::IllegalGeneration),
        )
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::IllegalGeneration);
    assert_eq!(store.get("g", "kept", 0), Some((3, "m3".into())));
}

/// Offsets of a group count their age from their commit, or from the
/// group's stored metadata if later; what is older than the cutoff goes,
/// durably, and the group with it once nothing is left.
#[test]
fn old_offsets_expire_and_newer_ones_and_their_group_stay() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), OffsetsConfig::default());
    let written =
        |v: &[u8]| crate::group::record::GroupRecord::decode(v).map_or(0, |r| r.written_ms);
    store
        .commit("old", &[entry("t", 0, 1), entry("t", 1, 2)])
        .unwrap();
    store.commit("mixed", &[entry("t", 0, 3)]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let between = now_ms();
    std::thread::sleep(std::time::Duration::from_millis(20));
    store.commit("mixed", &[entry("t", 1, 4)]).unwrap();
    // Committed long ago, but the group's record (its last member left)
    // is newer than the cutoff: kept.
    store.commit("left", &[entry("t", 0, 5)]).unwrap();
    let record = crate::group::record::GroupRecord {
        protocol_type: String::new(),
        generation_id: 1,
        protocol: None,
        leader: None,
        members: vec![],
        written_ms: now_ms() + 60_000,
    };
    store.store_group("left", Some(record.encode())).unwrap();

    // A group with metadata but no offset goes whatever its age.
    store.store_group("bare", Some(record.encode())).unwrap();
    // Nothing else is older than an hour ago.
    assert_eq!(
        store.groups_to_expire(between - 3_600_000, written),
        ["bare".to_owned()]
    );
    assert_eq!(
        store
            .expire_group("bare", between - 3_600_000, written, |_| true)
            .unwrap(),
        Expired {
            offsets: 0,
            group: true
        }
    );
    assert!(!store.has_group("bare"));
    assert!(
        store
            .groups_to_expire(between - 3_600_000, written)
            .is_empty()
    );
    assert_eq!(
        store.groups_to_expire(between, written),
        ["mixed".to_owned(), "old".to_owned()]
    );
    // A group its coordinator says is in use keeps everything.
    assert_eq!(
        store
            .expire_group("old", between, written, |_| false)
            .unwrap(),
        Expired::default()
    );
    assert_eq!(store.group("old").len(), 2);
    assert_eq!(
        store
            .expire_group("old", between, written, |_| true)
            .unwrap(),
        Expired {
            offsets: 2,
            group: true
        }
    );
    assert_eq!(
        store
            .expire_group("mixed", between, written, |_| true)
            .unwrap(),
        Expired {
            offsets: 1,
            group: false
        }
    );
    let later = now_ms() + 1_000;
    assert_eq!(
        store
            .expire_group("left", later, written, |_| true)
            .unwrap(),
        Expired {
            offsets: 0,
            group: false
        }
    );
    assert!(store.has_group("left"));
    drop(store);
    let store = open(dir.path(), OffsetsConfig::default());
    assert!(!store.has_group("old"));
    assert_eq!(store.group("mixed"), [("t".into(), 1, 4, "m4".into())]);
    assert_eq!(store.get("left", "t", 0), Some((5, "m5".into())));
    // Past the record's time too: the group goes whole, its record with it.
    let much_later = now_ms() + 120_000;
    assert_eq!(
        store
            .expire_group("left", much_later, written, |_| true)
            .unwrap(),
        Expired {
            offsets: 1,
            group: true
        }
    );
    assert!(store.group_records().is_empty());
    store.snapshot().unwrap();
    drop(store);
    let store = open(dir.path(), OffsetsConfig::default());
    assert!(!store.has_group("left") && !store.has_group("old"));
    assert_eq!(store.len(), 1);
}

/// A value that does not say when it was committed (written by an older
/// broker) counts from when the store was opened: it never expires early.
#[test]
fn offsets_without_a_commit_time_count_from_the_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let config = LogConfig {
            flush: FlushPolicy::BeforeAck,
            ..LogConfig::default()
        };
        let (log, _) = PartitionLog::open(dir.path().join(OFFSETS_DIR), config).unwrap();
        let key = encode_key("g", "t", 0);
        let v1 = [0, 1, 7, 0];
        let mut b = BatchBuilder::new();
        b.push(&NewRecord {
            timestamp: 1,
            key: Some(&key),
            value: Some(&v1),
            headers: &[],
        });
        let mut batch = b.finish();
        log.append(&mut batch).unwrap();
        log.flush_to(log.next_offset()).unwrap();
        log.shutdown().unwrap();
    }
    let before_open = now_ms();
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(store.get("g", "t", 0), Some((7, String::new())));
    let none = |_: &[u8]| 0;
    assert!(store.groups_to_expire(before_open - 1, none).is_empty());
    assert_eq!(
        store
            .expire_group("g", before_open - 1, none, |_| true)
            .unwrap(),
        Expired {
            offsets: 0,
            group: false
        }
    );
    assert_eq!(store.groups_to_expire(now_ms() + 1, none), ["g".to_owned()]);
}

/// An expiry whose tombstones cannot be written (a full disk) removes
/// nothing: what it took from memory first is put back.
#[test]
fn a_failed_expiry_keeps_every_offset() {
    use crate::log::fault::{Faults, FaultyFs};
    let dir = tempfile::tempdir().unwrap();
    let faults = Faults::new();
    let store = OffsetStore::open(
        Arc::new(FaultyFs::new(faults.clone())),
        dir.path(),
        OffsetsConfig::default(),
    )
    .unwrap();
    store
        .commit("g", &[entry("t", 0, 1), entry("t", 1, 2)])
        .unwrap();
    let none = |_: &[u8]| 0;
    faults.set_space_left(0);
    let failed = store.expire_group("g", now_ms() + 1_000, none, |_| true);
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.to_string().contains("space")),
        "{failed:?}"
    );
    assert_eq!(store.group("g").len(), 2);
    faults.clear_disk_full();
    assert_eq!(
        store
            .expire_group("g", now_ms() + 1_000, none, |_| true)
            .unwrap(),
        Expired {
            offsets: 2,
            group: true
        }
    );
    assert!(store.group("g").is_empty());
}

/// Twenty commits of one group, one batch each, then a clean shutdown:
/// every segment of the offsets log is trusted at the next open.
fn twenty_commits(dir: &Path) -> std::path::PathBuf {
    let store = open(dir, OffsetsConfig::default());
    for o in 1..=20 {
        store.commit("g", &[entry("t", 0, o)]).unwrap();
    }
    store.shutdown();
    drop(store);
    let segment =
        crate::log::format::segment_path(&dir.join(OFFSETS_DIR), 0, crate::log::format::LOG_SUFFIX);
    assert!(segment.exists());
    segment
}

/// The byte position of batch `n` (from 0) in the log file's `bytes`.
fn batch_position(bytes: &[u8], n: usize) -> usize {
    let mut at = 0;
    for _ in 0..n {
        at += 12 + i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
    }
    at
}

#[test]
fn a_damaged_commit_batch_costs_its_own_commits_not_the_later_ones() {
    // A flipped byte in a record of the fifth batch: its CRC fails (a
    // trusted segment's CRCs are not checked at open), the batches after it
    // are applied.
    let dir = tempfile::tempdir().unwrap();
    let segment = twenty_commits(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = batch_position(&bytes, 4) + 70;
    bytes[at] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(store.get("g", "t", 0), Some((20, "m20".into())));
    // The last batch damaged: the commit before it is the latest.
    let dir = tempfile::tempdir().unwrap();
    let segment = twenty_commits(dir.path());
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = batch_position(&bytes, 19) + 70;
    bytes[at] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();
    let store = open(dir.path(), OffsetsConfig::default());
    assert_eq!(store.get("g", "t", 0), Some((19, "m19".into())));
}

#[test]
fn an_offsets_log_that_opens_offline_stops_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let segment = twenty_commits(dir.path());
    // Flushed commits missing: the log ends below its recovery point.
    let bytes = std::fs::read(&segment).unwrap();
    std::fs::write(&segment, &bytes[..batch_position(&bytes, 10)]).unwrap();
    match OffsetStore::open(Arc::new(StdFs), dir.path(), OffsetsConfig::default()) {
        Err(BrokerError::Log(LogError::Corrupt { path, reason })) => {
            assert_eq!(path, dir.path().join(OFFSETS_DIR));
            assert!(reason.contains("offsets log is damaged"), "{reason}");
        }
        Err(other) => panic!("{other}"),
        Ok(store) => panic!("opened, serving {:?}", store.get("g", "t", 0)),
    }
}
