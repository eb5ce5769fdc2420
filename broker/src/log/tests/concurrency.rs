//! Readers and writers of one partition log at the same time: a reader never
//! waits for a writer's `pwrite`, and concurrent appends publish in order.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use super::util::{assert_contiguous, batch, read_all, small_config};
use crate::log::fault::{Faults, FaultyFs};
use crate::log::segment::TAIL_BATCHES;
use crate::log::{LogConfig, PartitionLog};

fn faulty(dir: &std::path::Path, config: LogConfig) -> (Arc<PartitionLog>, Arc<Faults>) {
    let faults = Faults::new();
    let (log, _) =
        PartitionLog::open_with(Arc::new(FaultyFs::new(faults.clone())), dir, config).unwrap();
    (Arc::new(log), faults)
}

/// Waits (bounded) until `cond` holds; a deterministic signal, polled.
fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::yield_now();
    }
}

#[test]
fn readers_do_not_wait_for_a_stalled_pwrite() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty(dir.path(), small_config());
    for i in 0..20 {
        log.append(&mut batch(&format!("b{i}"), 3, 50, 1000 + i))
            .unwrap();
    }
    let before = read_all(&log, 1 << 20);
    faults.set_hold_writes(true);
    let writer = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.append(&mut batch("slow", 2, 50, 5000)))
    };
    // The append now sits inside its write.
    wait_until("the append to reach its write", || {
        faults.writes_held() == 1
    });
    let (tx, rx) = mpsc::channel();
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let records = read_all(&log, 300);
            let mid = log.read(31, 1).unwrap();
            let ts = log.offset_for_timestamp(1010).unwrap();
            let _ = tx.send((records, mid.first_offset, ts, log.high_watermark()));
        })
    };
    let got = rx.recv_timeout(Duration::from_secs(10));
    faults.set_hold_writes(false);
    let (records, mid_first, ts, hw) = got.expect("a reader was blocked by a stalled write");
    reader.join().unwrap();
    assert_eq!(records, before, "readers see only published data");
    assert_eq!(mid_first, 30);
    assert_eq!(
        ts.map(|m| (m.offset, m.timestamp)),
        Some((26, 1010)),
        "batch 8 (offsets 24..27, times 1008..1011) is the first reaching 1010"
    );
    assert_eq!(hw, 60);
    let info = writer.join().unwrap().unwrap();
    assert_eq!(info.base_offset, 60);
    assert_eq!(log.high_watermark(), 62);
}

#[test]
fn concurrent_appends_publish_contiguously_while_rolling() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = faulty(dir.path(), small_config());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for i in 0..200 {
                    let info = log
                        .append(&mut batch(&format!("t{t}-{i}"), 1 + i % 3, 40, 1000))
                        .unwrap();
                    assert!(log.high_watermark() >= info.next_offset);
                }
            })
        })
        .collect();
    let reader = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut offset = 0;
            while offset < 800 {
                let slice = log.read(offset, 700).unwrap();
                assert!(slice.next_offset <= log.high_watermark());
                offset = slice.next_offset;
            }
        })
    };
    for t in threads {
        t.join().unwrap();
    }
    reader.join().unwrap();
    let total: u64 = (0..200).map(|i| 1 + i % 3).sum::<u64>() * 4;
    assert_eq!(log.next_offset(), total);
    let records = read_all(&log, 1 << 20);
    assert_eq!(records.len() as u64, total);
    assert_contiguous(&records, 0);
    assert!(log.segment_count() > 1, "the appends rolled segments");
    // Everything published survives a reopen.
    drop(records);
    let log = Arc::into_inner(log).unwrap();
    log.close().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(log.next_offset(), total);
}

#[test]
fn a_failed_write_fails_later_in_flight_appends_and_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let (log, faults) = faulty(dir.path(), small_config());
    log.append(&mut batch("first", 2, 50, 1000)).unwrap();
    let size = log.size_in_bytes();
    // Two appends in flight at once; the first write fails.
    faults.set_hold_writes(true);
    let a = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.append(&mut batch("a", 2, 50, 1000)))
    };
    wait_until("the first append to reach its write", || {
        faults.writes_held() == 1
    });
    let b = {
        let log = Arc::clone(&log);
        std::thread::spawn(move || log.append(&mut batch("b", 2, 50, 1000)))
    };
    wait_until("the second append to reach its write", || {
        faults.writes_held() == 2
    });
    faults.set_write_eio(true);
    faults.set_hold_writes(false);
    assert!(a.join().unwrap().is_err());
    assert!(b.join().unwrap().is_err());
    faults.set_write_eio(false);
    assert_eq!(log.next_offset(), 2);
    assert_eq!(log.size_in_bytes(), size);
    let file_len = std::fs::metadata(dir.path().join(format!("{:020}.log", 0)))
        .unwrap()
        .len();
    assert_eq!(file_len, size, "the file was cut back to the published end");
    let info = log.append(&mut batch("after", 1, 50, 1000)).unwrap();
    assert_eq!(info.base_offset, 2);
    assert_eq!(read_all(&log, 1 << 20).len(), 3);
}

#[test]
fn a_tailing_reader_resumes_without_reading_batch_headers() {
    let dir = tempfile::tempdir().unwrap();
    // No offset index entries at all: only the in-memory tail knows where
    // batches start.
    let config = LogConfig {
        index_interval_bytes: 1 << 30,
        segment_bytes: 1 << 30,
        ..small_config()
    };
    let (log, faults) = faulty(dir.path(), config);
    for i in 0..50 {
        log.append(&mut batch(&format!("b{i}"), 4, 30, 1000))
            .unwrap();
    }
    let reads = faults.reads();
    // Inside batch 40, at the start of batch 45, inside the last batch:
    // one batch each (the budget of 1 byte), its end found in memory too;
    // with a larger budget, to the end.
    for (offset, first) in [(161, 160), (180, 180), (199, 196)] {
        let slice = log.read(offset, 1).unwrap();
        assert_eq!(slice.first_offset, first, "read at {offset}");
        assert_eq!(slice.next_offset, first + 4, "read at {offset}: one batch");
        let slice = log.read(offset, 1 << 20).unwrap();
        assert_eq!(slice.next_offset, log.high_watermark());
    }
    assert_eq!(faults.reads(), reads, "no batch header read from disk");
    // Once the tail has moved past them, older batches are found by the
    // header walk from the segment start.
    for i in 0..TAIL_BATCHES {
        log.append(&mut batch(&format!("c{i}"), 1, 10, 1000))
            .unwrap();
    }
    let slice = log.read(5, 1).unwrap();
    assert_eq!(slice.first_offset, 4);
    assert!(faults.reads() > reads);
}

#[test]
fn rolling_a_segment_waits_for_no_msync() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = faulty(dir.path(), small_config());
    let before = crate::log::index_file::SYNC_FLUSHES.with(|n| n.get());
    let mut rolls = 0;
    for i in 0..200 {
        let info = log
            .append(&mut batch(&format!("r{i}"), 3, 100, 1000))
            .unwrap();
        rolls += u32::from(info.rolled);
    }
    assert!(rolls >= 3, "the appends rolled segments ({rolls})");
    let after = crate::log::index_file::SYNC_FLUSHES.with(|n| n.get());
    assert_eq!(after, before, "no synchronous msync on the append path");
    // The sealed indexes are still right after a reopen that trusts them.
    let expected = read_all(&log, 1 << 20);
    let log = Arc::into_inner(log).unwrap();
    log.close().unwrap();
    let (log, _) = PartitionLog::open(dir.path(), small_config()).unwrap();
    assert_eq!(read_all(&log, 300), expected);
}

#[test]
fn async_flushes_group_many_waiters_and_partitions_without_threads() {
    use crate::log::FlushPolicy;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let faults = Faults::new();
    faults.set_sync_delay(Duration::from_millis(20));
    let config = LogConfig {
        flush: FlushPolicy::BeforeAck,
        ..small_config()
    };
    let logs: Vec<Arc<PartitionLog>> = dirs
        .iter()
        .map(|d| {
            let fs = Arc::new(FaultyFs::new(faults.clone()));
            Arc::new(
                PartitionLog::open_with(fs, d.path(), config.clone())
                    .unwrap()
                    .0,
            )
        })
        .collect();
    // One thread drives 300 acks=all producers on three partitions.
    let rt = tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .build()
        .unwrap();
    let syncs_before = faults.syncs();
    rt.block_on(async {
        let mut waits = Vec::new();
        for i in 0..300 {
            let log = &logs[i % 3];
            let info = log
                .append(&mut batch(&format!("p{i}"), 1, 20, 1000))
                .unwrap();
            // BeforeAck: nothing is visible before its flush.
            assert!(log.high_watermark() < info.next_offset);
            waits.push(log.flush_to_async(info.next_offset));
        }
        for w in waits {
            w.await.unwrap();
        }
        // The partitions of one request are flushed together.
        for (i, log) in logs.iter().enumerate() {
            log.append(&mut batch(&format!("q{i}"), 2, 20, 1000))
                .unwrap();
        }
        let items = logs.iter().map(|l| (Arc::clone(l), l.next_offset()));
        let results = PartitionLog::flush_all_async(items).wait().await;
        assert!(results.iter().all(Result::is_ok));
    });
    for log in &logs {
        assert_eq!(log.high_watermark(), 102);
        assert_eq!(log.recovery_point(), 102);
    }
    let syncs = faults.syncs() - syncs_before;
    assert!(
        syncs < 100,
        "300 waiters on 3 partitions shared fsyncs ({syncs})"
    );

    // A failing fsync fails every waiter and takes the log offline.
    faults.set_fsync_fails(true);
    let log = &logs[0];
    let next = log
        .append(&mut batch("x", 1, 20, 1000))
        .unwrap()
        .next_offset;
    let results = rt.block_on(async {
        let a = log.flush_to_async(next);
        let b = log.flush_to_async(next);
        (a.await, b.await)
    });
    assert!(results.0.is_err() && results.1.is_err());
    assert!(log.is_offline());
    assert_eq!(
        log.high_watermark(),
        102,
        "nothing unflushed became visible"
    );
}
