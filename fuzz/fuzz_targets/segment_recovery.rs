//! Fuzz target: opening a partition whose segment, offset index and time
//! index files hold arbitrary bytes — after a crash (rescan) or with a
//! clean-shutdown marker (indexes trusted after their sanity check) — must
//! never panic, and every read of the recovered log must return whole,
//! valid batches.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_broker::log::{LogConfig, PartitionLog};
use sluice_protocol::batch::BatchIter;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let split = |b: &[u8], n: usize| -> (Vec<u8>, Vec<u8>) {
        let n = n.min(b.len());
        (b[..n].to_vec(), b[n..].to_vec())
    };
    let idx_len = usize::from(flags & 0x3f) * 8;
    let (index, rest) = split(rest, idx_len);
    let (timeindex, log) = split(&rest, usize::from(flags & 0x0f) * 12);
    let Ok(dir) = tempfile::tempdir() else { return };
    let p = dir.path().join("t-0");
    if std::fs::create_dir_all(&p).is_err() {
        return;
    }
    let name = format!("{:020}", 0);
    let _ = std::fs::write(p.join(format!("{name}.log")), &log);
    let _ = std::fs::write(p.join(format!("{name}.index")), &index);
    let _ = std::fs::write(p.join(format!("{name}.timeindex")), &timeindex);
    if flags & 0x80 != 0 {
        let _ = std::fs::write(p.join(".clean-shutdown"), b"");
    }
    let config = LogConfig {
        index_interval_bytes: 64,
        ..LogConfig::default()
    };
    let Ok((log, _)) = PartitionLog::open(&p, config) else {
        return;
    };
    let mut offset = log.log_start_offset();
    while let Ok(slice) = log.read(offset, 1 << 16) {
        if slice.len == 0 {
            break;
        }
        let Some(file) = slice.file.as_ref() else {
            break;
        };
        let mut buf = vec![0u8; slice.len as usize];
        let Ok(n) = sluice_broker::log::io::read_full_at(&**file, &mut buf, slice.position) else {
            break;
        };
        buf.truncate(n);
        let mut whole = 0;
        for b in BatchIter::new(&buf) {
            let (_, bytes) = b.expect("recovered log serves only whole batches");
            sluice_protocol::batch::verify_crc(bytes)
                .expect("recovered log serves only valid batches");
            whole += bytes.len();
        }
        assert_eq!(whole, buf.len(), "slice ends at a batch boundary");
        assert!(slice.next_offset > offset);
        offset = slice.next_offset;
    }
    let _ = log.offset_for_timestamp(0);
    let _ = log.max_timestamp_record();
});
