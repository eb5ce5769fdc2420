//! Model-based test: random sequences of append (honest or hostile), read,
//! roll, retain and reopen (clean or after a crash of the process) against a
//! plain in-memory list of records, with small segments so rolls and
//! retention happen all the time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;

use super::hostile_headers::resign;
use super::util::{batch, read_all};
use crate::log::{FlushPolicy, LogConfig, LogError, PartitionLog};

/// How a hostile append lies.
#[derive(Debug, Clone, Copy)]
enum Lie {
    /// gzip-flagged, honest counts.
    Compressed,
    /// `lastOffsetDelta` claims more offsets than the batch's two records.
    LastOffsetDelta(i32),
    /// `recordCount` disagrees with the two records.
    RecordCount(i32),
    /// A day ahead of the clock.
    FutureTimestamp,
    /// No records.
    Empty,
}

#[derive(Debug, Clone)]
enum Op {
    /// Batches of (records, value length), appended in one call.
    Append(Vec<(usize, usize)>),
    /// An honest batch followed by a lying one, in one call.
    Hostile(usize, Lie),
    /// Read everything, `max_bytes` per slice.
    ReadAll(u64),
    /// Read from the offset at this fraction of the visible range.
    ReadAt(u8, u64),
    /// Seal the active segment (if it holds anything) and start a new one.
    Roll,
    /// Retention at a time when nothing (false) or everything (true) is old.
    Retain(bool),
    /// Close cleanly (true) or drop as if the process died (false), reopen.
    Reopen(bool),
    /// A follower append of batches carrying their own offsets, at the log
    /// end (true) or at a wrong expected base (false).
    AppendAt(Vec<(usize, usize)>, bool),
    /// Truncate at the offset at this fraction of the whole range.
    Truncate(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let lie = prop_oneof![
        Just(Lie::Compressed),
        (2..i32::MAX).prop_map(Lie::LastOffsetDelta),
        prop_oneof![Just(0), Just(1), Just(3), Just(1000), Just(i32::MAX)]
            .prop_map(Lie::RecordCount),
        Just(Lie::FutureTimestamp),
        Just(Lie::Empty),
    ];
    prop_oneof![
        6 => vec((1usize..6, 0usize..300), 1..4).prop_map(Op::Append),
        2 => (1usize..4, lie).prop_map(|(n, l)| Op::Hostile(n, l)),
        1 => prop_oneof![Just(1u64), Just(200), Just(1 << 20)].prop_map(Op::ReadAll),
        2 => (any::<u8>(), prop_oneof![Just(1u64), Just(700)]).prop_map(|(f, m)| Op::ReadAt(f, m)),
        1 => Just(Op::Roll),
        1 => any::<bool>().prop_map(Op::Retain),
        1 => any::<bool>().prop_map(Op::Reopen),
        3 => (vec((1usize..6, 0usize..300), 1..4), prop::bool::weighted(0.8))
            .prop_map(|(b, ok)| Op::AppendAt(b, ok)),
        2 => any::<u8>().prop_map(Op::Truncate),
    ]
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        segment_age: None,
        index_interval_bytes: 128,
        index_max_bytes: 128,
        retention_age: Some(Duration::from_secs(24 * 3600)),
        retention_bytes: Some(6 * 1024),
        flush: FlushPolicy::Never,
        max_timestamp_ahead: Some(Duration::from_secs(3600)),
        ..LogConfig::default()
    }
}

/// The model: every record ever acknowledged, the batch starts, and the log start.
#[derive(Default)]
struct Model {
    records: Vec<(u64, Bytes)>,
    batch_starts: Vec<u64>,
    log_start: u64,
}

impl Model {
    fn next(&self) -> u64 {
        self.records
            .last()
            .map_or(self.log_start, |(o, _)| (o + 1).max(self.log_start))
    }
    fn visible(&self) -> Vec<(u64, Bytes)> {
        self.records
            .iter()
            .filter(|(o, _)| *o >= self.log_start)
            .cloned()
            .collect()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn check(log: &PartitionLog, model: &Model) {
    assert_eq!(log.next_offset(), model.next());
    assert_eq!(log.high_watermark(), model.next());
    assert_eq!(log.log_start_offset(), model.log_start);
    assert_eq!(read_all(log, 1 << 20), model.visible());
}

fn run(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m-0");
    let (mut log, _) = PartitionLog::open(&path, config()).unwrap();
    let mut model = Model::default();
    let mut tag = 0;
    for op in ops {
        match op {
            Op::Append(batches) => {
                let mut buf = Vec::new();
                let mut values = Vec::new();
                let mut starts = Vec::new();
                let mut at = model.next();
                for (n, len) in batches {
                    tag += 1;
                    let b = batch(&format!("{tag}"), n, len, 1000);
                    starts.push(at);
                    for i in 0..n {
                        let mut v = format!("{tag}-{i}").into_bytes();
                        v.resize(len.max(v.len()), b'.');
                        values.push((at, Bytes::from(v)));
                        at += 1;
                    }
                    buf.extend_from_slice(&b);
                }
                let info = log.append(&mut buf).unwrap();
                assert_eq!(info.base_offset, model.next());
                assert_eq!(info.next_offset, at);
                model.records.extend(values);
                model.batch_starts.extend(starts);
            }
            Op::AppendAt(batches, honest) => {
                let mut buf = Vec::new();
                let mut values = Vec::new();
                let mut starts = Vec::new();
                let mut at = model.next();
                for (n, len) in batches {
                    tag += 1;
                    let mut b = batch(&format!("{tag}"), n, len, 1000).to_vec();
                    // The leader's offsets; the CRC does not cover them.
                    sluice_protocol::batch::set_base_offset(&mut b, at as i64).unwrap();
                    starts.push(at);
                    for i in 0..n {
                        let mut v = format!("{tag}-{i}").into_bytes();
                        v.resize(len.max(v.len()), b'.');
                        values.push((at, Bytes::from(v)));
                        at += 1;
                    }
                    buf.extend_from_slice(&b);
                }
                let copy = buf.clone();
                if honest {
                    let info = log.append_at(model.next(), &mut buf).unwrap();
                    assert_eq!(info.base_offset, model.next());
                    assert_eq!(info.next_offset, at);
                    assert_eq!(buf, copy, "a follower append keeps the bytes");
                    model.records.extend(values);
                    model.batch_starts.extend(starts);
                } else {
                    let err = log.append_at(model.next() + 1, &mut buf).unwrap_err();
                    assert!(matches!(err, LogError::BaseOffsetMismatch { .. }), "{err}");
                }
            }
            Op::Truncate(fraction) => {
                let (start, end) = (model.log_start, model.next());
                let offset = start + (end - start) * u64::from(fraction) / 255;
                let boundary = if offset >= end {
                    end
                } else {
                    *model
                        .batch_starts
                        .iter()
                        .filter(|&&b| b <= offset)
                        .max()
                        .unwrap()
                };
                assert_eq!(log.truncate_to(offset).unwrap(), boundary);
                model.records.retain(|(o, _)| *o < boundary);
                model.batch_starts.retain(|&b| b < boundary);
            }
            Op::Hostile(n, lie) => {
                let mut buf = batch("honest", n, 10, 1000).to_vec();
                let at = buf.len();
                let mut bad = match lie {
                    Lie::Empty => batch("e", 0, 10, 1000).to_vec(),
                    Lie::FutureTimestamp => batch("f", 2, 10, now_ms() + 24 * 3600 * 1000).to_vec(),
                    _ => batch("l", 2, 10, 1000).to_vec(),
                };
                match lie {
                    Lie::Compressed => bad[21..23].copy_from_slice(&2i16.to_be_bytes()),
                    Lie::LastOffsetDelta(d) => bad[23..27].copy_from_slice(&d.to_be_bytes()),
                    Lie::RecordCount(c) => bad[57..61].copy_from_slice(&c.to_be_bytes()),
                    Lie::FutureTimestamp | Lie::Empty => {}
                }
                resign(&mut bad);
                buf.extend_from_slice(&bad);
                let segments = log.segment_count();
                let err = log.append(&mut buf).unwrap_err();
                let position = match err {
                    LogError::InvalidBatch { position, .. }
                    | LogError::TimestampTooFarAhead { position, .. }
                    | LogError::EmptyBatch { position } => position,
                    other => panic!("{lie:?}: {other}"),
                };
                assert_eq!(position, at, "{lie:?}");
                assert_eq!(log.segment_count(), segments);
            }
            Op::ReadAll(max) => {
                assert_eq!(read_all(&log, max), model.visible());
            }
            Op::ReadAt(fraction, max) => {
                let (start, end) = (model.log_start, model.next());
                let offset = start + (end - start) * u64::from(fraction) / 255;
                let slice = log.read(offset, max).unwrap();
                if offset == end {
                    assert_eq!(slice.len, 0);
                } else {
                    assert!(slice.first_offset <= offset && offset < slice.next_offset);
                    assert!(model.batch_starts.contains(&slice.first_offset));
                    assert!(
                        slice.next_offset == end || model.batch_starts.contains(&slice.next_offset)
                    );
                    // KIP-74: the first batch comes whole, and nothing
                    // past the budget after it.
                    let bytes = slice.read_bytes().unwrap();
                    let first_len =
                        12 + u64::from(u32::from_be_bytes(bytes[8..12].try_into().unwrap()));
                    assert!(
                        slice.len <= max.max(first_len),
                        "{} bytes read for a budget of {max} (first batch {first_len})",
                        slice.len
                    );
                }
            }
            Op::Roll => {
                let mut state = log.state.lock();
                if state.active().size() > 0 {
                    log.roll(&mut state).unwrap();
                }
            }
            Op::Retain(expire) => {
                let now = if expire {
                    SystemTime::now()
                } else {
                    UNIX_EPOCH + Duration::from_secs(1)
                };
                let before = log.log_start_offset();
                let point = log.retention_point(now);
                log.retain(now).unwrap();
                let start = log.log_start_offset();
                // The retention point foretells the pass exactly.
                assert_eq!(point.map_or(before, |p| p.max(before)), start);
                assert!(start >= before && start <= model.next());
                assert!(
                    start == model.next() || model.batch_starts.contains(&start),
                    "retention cuts at a segment (batch) boundary"
                );
                if expire {
                    // Every record is old: only the active segment is left.
                    assert_eq!(log.segment_count(), 1);
                }
                model.log_start = start;
            }
            Op::Reopen(clean) => {
                if clean {
                    log.close().unwrap();
                } else {
                    drop(log);
                }
                let (reopened, report) = PartitionLog::open(&path, config()).unwrap();
                assert_eq!(report.clean_shutdown, clean);
                assert_eq!(report.bytes_truncated, 0, "nothing acknowledged is lost");
                log = reopened;
            }
        }
        check(&log, &model);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn log_behaves_like_a_list_of_records(ops in vec(op(), 1..40)) {
        run(ops);
    }
}
