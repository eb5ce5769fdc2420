//! Power cuts, simulated: a log runs on [`CrashFs`], which knows which bytes
//! and names were durable; at a random moment a crash image is taken (durable
//! bytes, plus torn and garbled unsynced tails, plus arbitrary index files)
//! and recovered. Everything flushed before the cut must be there, and the
//! log must hold a prefix of what was appended.

use std::sync::Arc;

use super::util::{batch, read_all};
use crate::log::crash::{CrashFs, Rng};
use crate::log::{FlushPolicy, LogConfig, PartitionLog};

fn config(flush: FlushPolicy) -> LogConfig {
    LogConfig {
        segment_bytes: 8 * 1024,
        segment_age: None,
        index_interval_bytes: 256,
        index_max_bytes: 1024,
        retention_age: None,
        retention_bytes: None,
        flush,
        max_timestamp_ahead: None,

        ..LogConfig::default()
    }
}

#[test]
fn recovery_from_power_cuts_keeps_everything_flushed() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for scenario in 0..60 {
        let flush = if scenario % 2 == 0 {
            FlushPolicy::BeforeAck
        } else {
            FlushPolicy::Never
        };
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("t-0");
        let fs = CrashFs::new();
        let (log, _) = PartitionLog::open_with(Arc::new(fs.clone()), &dir, config(flush)).unwrap();
        let mut values: Vec<Vec<u8>> = Vec::new();
        let mut durable = 0u64;
        for step in 0..(5 + rng.below(60)) {
            let n = 1 + rng.below(6) as usize;
            let len = 20 + rng.below(300) as usize;
            let b = batch(&format!("s{scenario}-{step}"), n, len, step as i64);
            let info = log.append(&mut b.clone()).unwrap();
            for i in 0..n {
                let mut v = format!("s{scenario}-{step}-{i}").into_bytes();
                v.resize(len.max(v.len()), b'.');
                values.push(v);
            }
            assert_eq!(info.next_offset as usize, values.len());
            if rng.below(4) == 0 {
                log.flush_to(info.next_offset).unwrap();
                durable = info.next_offset;
            }
            if rng.below(10) == 0 {
                log.maintain(std::time::SystemTime::now()).unwrap();
                durable = durable.max(log.recovery_point());
            }
        }
        let image_root = tempfile::tempdir().unwrap();
        let image = image_root.path().join("t-0");
        fs.crash_image(&dir, &image, &mut rng).unwrap();
        drop(log);

        let (recovered, _) = PartitionLog::open(&image, config(flush))
            .unwrap_or_else(|e| panic!("scenario {scenario}: recovery failed: {e}"));
        let records = read_all(&recovered, 1 << 20);
        assert!(
            records.len() as u64 >= durable,
            "scenario {scenario}: {} records survived, {durable} were flushed",
            records.len()
        );
        for (offset, value) in &records {
            assert_eq!(
                &value[..],
                &values[*offset as usize][..],
                "scenario {scenario}: offset {offset} holds other data"
            );
        }
        // The recovered log accepts appends right after what survived.
        let next = recovered
            .append(&mut batch("after", 1, 10, 0))
            .unwrap()
            .base_offset;
        assert_eq!(next, records.len() as u64);
    }
}

/// After a clean shutdown and a restart, appends that were never flushed
/// are an unflushed tail: a power cut may tear them, and recovery cuts them.
/// Opening the log makes the removal of the clean-shutdown marker durable
/// before it takes appends; otherwise the marker would come back and
/// recovery would take the torn tail for cleanly shut down data (and the
/// partition offline).
#[test]
fn a_power_cut_after_a_clean_restart_cuts_only_the_unflushed_tail() {
    let mut rng = Rng(0x5eed_0000_c1ea_0001);
    for scenario in 0..20 {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("t-0");
        let fs = CrashFs::new();
        let (log, _) =
            PartitionLog::open_with(Arc::new(fs.clone()), &dir, config(FlushPolicy::Never))
                .unwrap();
        let first = 3 + rng.below(5) as usize;
        for step in 0..first {
            log.append(&mut batch(&format!("a{step}"), 2, 100, 1))
                .unwrap();
        }
        log.close().unwrap();
        let (log, _) =
            PartitionLog::open_with(Arc::new(fs.clone()), &dir, config(FlushPolicy::Never))
                .unwrap();
        for step in 0..(1 + rng.below(5)) {
            let len = 100 + rng.below(200) as usize;
            log.append(&mut batch(&format!("b{step}"), 2, len, 1))
                .unwrap();
        }
        let image_root = tempfile::tempdir().unwrap();
        let image = image_root.path().join("t-0");
        fs.crash_image(&dir, &image, &mut rng).unwrap();
        drop(log);
        let (recovered, report) = PartitionLog::open(&image, config(FlushPolicy::Never)).unwrap();
        assert!(
            !recovered.is_offline(),
            "scenario {scenario}: offline after a power cut past a clean restart: {report:?}"
        );
        assert!(
            read_all(&recovered, 1 << 20).len() >= 2 * first,
            "scenario {scenario}: flushed records lost"
        );
    }
}
