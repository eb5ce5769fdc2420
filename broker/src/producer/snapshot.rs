//! The producer-state snapshot file `<offset:020>.snapshot` of a partition
//! directory: the producer table as of `offset` (the log end when it was
//! written), so recovery rebuilds only from the batches after it. Layout:
//! `docs/storage-format.md` ("Producer state snapshots").

use super::state::{BatchMeta, ProducerEntry, ProducerStates, WINDOW};

/// File name suffix of a snapshot.
pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
/// Bytes of the header.
pub const HEADER_LEN: usize = 24;
/// Bytes of one batch record in the body.
const BATCH_LEN: usize = 34;
/// Bytes before a producer's batches in the body.
const PRODUCER_LEN: usize = 11;
const MAGIC: [u8; 4] = *b"SLPS";
const VERSION: u16 = 1;

/// The name of the snapshot covering the log up to `offset`.
pub fn file_name(offset: u64) -> String {
    format!("{offset:020}{SNAPSHOT_SUFFIX}")
}

/// The offset in a snapshot file name, if `name` is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SNAPSHOT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Encodes the table as of `offset`. Producers are written in id order, so
/// equal tables give equal bytes.
pub fn encode(offset: u64, states: &ProducerStates) -> Vec<u8> {
    let mut ids: Vec<(&i64, &ProducerEntry)> = states.iter().collect();
    ids.sort_by_key(|(pid, _)| **pid);
    let mut body = Vec::with_capacity(ids.len() * (PRODUCER_LEN + BATCH_LEN));
    for (pid, e) in &ids {
        body.extend_from_slice(&pid.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        // At most WINDOW (5) batches: fits a byte.
        body.push(e.batches.len().min(WINDOW) as u8);
        for b in e.batches.iter().take(WINDOW) {
            body.extend_from_slice(&b.epoch.to_be_bytes());
            body.extend_from_slice(&b.first_seq.to_be_bytes());
            body.extend_from_slice(&b.last_seq.to_be_bytes());
            body.extend_from_slice(&b.first_offset.to_be_bytes());
            body.extend_from_slice(&b.last_offset.to_be_bytes());
            body.extend_from_slice(&b.timestamp.to_be_bytes());
        }
    }
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&offset.to_be_bytes());
    // A partition holds far fewer than 2^32 producers (bounded by config).
    out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out);
    crc.update(&body);
    out.extend_from_slice(&crc.finalize().to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// A bounds-checked big-endian reader.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let bytes = self
            .buf
            .get(self.at..self.at + N)
            .ok_or_else(|| format!("truncated at byte {}: need {N}", self.at))?;
        self.at += N;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }
}

/// Decodes and verifies a snapshot: the offset it covers to and the table.
/// Any damage (length, magic, version, CRC, reserved bytes, an impossible
/// field) is an error; the caller then rebuilds from the log.
pub fn decode(buf: &[u8]) -> Result<(u64, ProducerStates), String> {
    if buf.len() < HEADER_LEN {
        return Err(format!(
            "snapshot of {} bytes is shorter than its header",
            buf.len()
        ));
    }
    let mut r = Reader { buf, at: 0 };
    if r.take::<4>()? != MAGIC {
        return Err("snapshot magic is not \"SLPS\"".into());
    }
    let version = u16::from_be_bytes(r.take()?);
    if version != VERSION {
        return Err(format!("snapshot version {version} is not supported"));
    }
    if r.take::<2>()? != [0, 0] {
        return Err("snapshot reserved bytes are not zero".into());
    }
    let offset = u64::from_be_bytes(r.take()?);
    let count = u32::from_be_bytes(r.take()?) as usize;
    let stored = u32::from_be_bytes(r.take()?);
    let mut crc = crc32fast::Hasher::new();
    crc.update(buf.get(..20).unwrap_or_default());
    crc.update(buf.get(HEADER_LEN..).unwrap_or_default());
    let computed = crc.finalize();
    if stored != computed {
        return Err(format!(
            "snapshot CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let mut states = ProducerStates::new();
    for _ in 0..count {
        let pid = i64::from_be_bytes(r.take()?);
        let epoch = i16::from_be_bytes(r.take()?);
        let [n] = r.take::<1>()?;
        if pid < 0 || epoch < 0 || n == 0 || usize::from(n) > WINDOW {
            return Err(format!(
                "producer {pid} entry is invalid (epoch {epoch}, {n} batches)"
            ));
        }
        let mut entry = ProducerEntry {
            epoch,
            batches: Default::default(),
        };
        for _ in 0..n {
            let b = BatchMeta {
                epoch: i16::from_be_bytes(r.take()?),
                first_seq: i32::from_be_bytes(r.take()?),
                last_seq: i32::from_be_bytes(r.take()?),
                first_offset: u64::from_be_bytes(r.take()?),
                last_offset: u64::from_be_bytes(r.take()?),
                timestamp: i64::from_be_bytes(r.take()?),
            };
            if b.first_offset > b.last_offset || b.last_offset >= offset || b.epoch > epoch {
                return Err(format!("producer {pid} has an invalid batch {b:?}"));
            }
            entry.batches.push_back(b);
        }
        if states.get(pid).is_some() {
            return Err(format!("producer {pid} appears twice"));
        }
        states.insert(pid, entry);
    }
    if r.at != buf.len() {
        return Err(format!(
            "{} bytes after the last producer",
            buf.len() - r.at
        ));
    }
    Ok((offset, states))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::producer::state::ProducerLimits;

    fn meta(epoch: i16, seq: i32, offset: u64) -> BatchMeta {
        BatchMeta {
            epoch,
            first_seq: seq,
            last_seq: seq + 1,
            first_offset: offset,
            last_offset: offset + 1,
            timestamp: 1_700_000_000_000,
        }
    }

    const LIMITS: ProducerLimits = ProducerLimits {
        expiration_ms: i64::MAX,
        max_ids: 1000,
    };

    #[test]
    fn known_bytes_and_round_trip() {
        let mut t = ProducerStates::new();
        t.record(5, meta(1, 0, 10), &LIMITS);
        let bytes = encode(12, &t);
        assert_eq!(bytes.len(), HEADER_LEN + PRODUCER_LEN + BATCH_LEN);
        assert_eq!(
            &bytes[..20],
            b"SLPS\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0c\x00\x00\x00\x01"
        );
        assert_eq!(&bytes[24..35], &[0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 1]);
        assert_eq!(decode(&bytes).unwrap(), (12, t));
        assert_eq!(file_name(12), "00000000000000000012.snapshot");
        assert_eq!(parse_file_name("00000000000000000012.snapshot"), Some(12));
        assert_eq!(parse_file_name("12.snapshot"), None);
        assert_eq!(parse_file_name("00000000000000000012.snapshot.tmp"), None);
    }

    #[test]
    fn every_truncation_and_every_flipped_byte_is_refused() {
        let mut t = ProducerStates::new();
        t.record(5, meta(1, 0, 10), &LIMITS);
        t.record(6, meta(0, 0, 12), &LIMITS);
        let bytes = encode(14, &t);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(decode(&bad).is_err(), "flip at {at}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
    }

    fn states() -> impl Strategy<Value = (u64, ProducerStates)> {
        let batch = (
            0i16..3,
            0i32..i32::MAX,
            0u64..1 << 40,
            0u64..100,
            any::<i64>(),
        );
        let producer = (0i64..i64::MAX, prop::collection::vec(batch, 1..=WINDOW));
        prop::collection::vec(producer, 0..20).prop_map(|ps| {
            let mut t = ProducerStates::new();
            let mut end = 0;
            for (pid, batches) in ps {
                let mut entry = ProducerEntry {
                    epoch: 0,
                    batches: Default::default(),
                };
                for (epoch, seq, first, len, ts) in batches {
                    entry.epoch = entry.epoch.max(epoch);
                    end = end.max(first + len + 1);
                    entry.batches.push_back(BatchMeta {
                        epoch,
                        first_seq: seq,
                        last_seq: seq.wrapping_add(len as i32),
                        first_offset: first,
                        last_offset: first + len,
                        timestamp: ts,
                    });
                }
                t.insert(pid, entry);
            }
            (end, t)
        })
    }

    proptest! {
        #[test]
        fn any_table_round_trips((offset, t) in states()) {
            let bytes = encode(offset, &t);
            prop_assert_eq!(decode(&bytes).unwrap(), (offset, t));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}
