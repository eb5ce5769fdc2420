//! Tests of [`super`]: round trips, limits, and hostile streams for every codec.
#![allow(clippy::indexing_slicing, clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;
use crate::batch::{BatchBuilder, NewRecord, RecordBatch, validate, validate_decompressing};

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn packed(codec: Compression, src: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    compress(Codec::new(codec), src, &mut out).unwrap();
    out
}

fn text(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("{{\"id\":{i},\"name\":\"user-{}\"}}", i % 97).into_bytes())
        .take(n)
        .collect()
}

fn batch(n: usize) -> BytesMut {
    let values: Vec<Vec<u8>> = (0..n).map(|i| text(50 + i)).collect();
    let mut b = BatchBuilder::new();
    for (i, v) in values.iter().enumerate() {
        b.push(&NewRecord {
            timestamp: 1000 + i as i64,
            key: Some(b"k"),
            value: Some(v),
            headers: &[("h", Some(b"x"))],
        });
    }
    b.finish()
}

#[test]
fn every_codec_round_trips_and_compresses_text() {
    let src = text(200_000);
    for codec in CODECS {
        let packed = packed(codec, &src);
        assert!(packed.len() < src.len() / 3, "{codec}: {}", packed.len());
        let mut out = Vec::new();
        decompress(codec, &packed, src.len(), &mut out).unwrap();
        assert_eq!(out, src, "{codec}");
        // One byte under the size: refused, and never more than limit + 1 held.
        let limit = src.len() - 1;
        let mut out = Vec::new();
        assert_eq!(
            decompress(codec, &packed, limit, &mut out),
            Err(BatchError::DecompressedTooLarge { codec, limit })
        );
        assert!(
            out.capacity() <= limit + 1 || codec == Compression::Snappy,
            "{codec}"
        );
    }
}

#[test]
fn zip_bombs_stop_at_the_limit() {
    let zeros = vec![0u8; 64 << 20];
    for codec in CODECS {
        let bomb = packed(codec, &zeros);
        let mut out = Vec::new();
        let limit = 1 << 20;
        assert_eq!(
            decompress(codec, &bomb, limit, &mut out),
            Err(BatchError::DecompressedTooLarge { codec, limit }),
            "{codec}"
        );
        assert!(out.capacity() <= 2 * limit, "{codec}: {}", out.capacity());
    }
}

#[test]
fn raw_snappy_declaring_a_huge_length_is_refused_before_allocating() {
    // Varint 0xffffffff (4 GiB - 1) then a literal; and 127 MiB, within the limit but
    // far more than 7 bytes can stand for: nothing of either size is allocated.
    for (raw, limit) in [
        ([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, b'a'], 1 << 20),
        ([0x80, 0x80, 0x80, 0x3f, 0x00, b'a', b'b'], 128 << 20),
    ] {
        let mut out = Vec::new();
        match decompress(Compression::Snappy, &raw, limit, &mut out) {
            Err(BatchError::BadCompressedData {
                codec: Compression::Snappy,
                reason,
            }) => assert!(reason.contains("more than it can hold"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(out.capacity() < 1 << 20);
    }
}

#[test]
fn raw_snappy_at_its_densest_is_read() {
    // Zeros compress to runs of 3-byte copies of 64 bytes: the most a block can
    // stand for per byte.
    let zeros = vec![0u8; 4 << 20];
    let raw = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
    assert!(raw.len() * 21 < zeros.len(), "{} bytes", raw.len());
    let mut out = Vec::new();
    decompress(Compression::Snappy, &raw, zeros.len(), &mut out).unwrap();
    assert_eq!(out, zeros);
}

#[test]
fn raw_snappy_is_read_too() {
    let src = text(100_000);
    let raw = snap::raw::Encoder::new().compress_vec(&src).unwrap();
    let mut out = Vec::new();
    decompress(Compression::Snappy, &raw, src.len(), &mut out).unwrap();
    assert_eq!(out, src);
}

#[test]
fn xerial_layout() {
    let framed = packed(Compression::Snappy, b"hello");
    assert_eq!(&framed[..8], &XERIAL_MAGIC);
    assert_eq!(&framed[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
    let block = snap::raw::Encoder::new().compress_vec(b"hello").unwrap();
    assert_eq!(&framed[16..20], &(block.len() as i32).to_be_bytes());
    assert_eq!(&framed[20..], &block[..]);
    // Blocks of 32 KiB: 70 000 bytes make three blocks.
    let src = text(70_000);
    let framed = packed(Compression::Snappy, &src);
    let mut blocks = 0;
    let mut at = XERIAL_HEADER_LEN;
    while at < framed.len() {
        let len = i32::from_be_bytes(framed[at..at + 4].try_into().unwrap()) as usize;
        at += 4 + len;
        blocks += 1;
    }
    assert_eq!((blocks, at), (3, framed.len()));
}

#[test]
fn truncated_and_trailing_garbage_streams_are_errors() {
    let src = text(50_000);
    for codec in CODECS {
        let packed = packed(codec, &src);
        let mut out = Vec::new();
        for cut in [1, 7, packed.len() / 2, packed.len() - 1] {
            let r = decompress(codec, &packed[..cut], 1 << 20, &mut out);
            assert!(
                matches!(r, Err(BatchError::BadCompressedData { .. })),
                "{codec} cut {cut}: {r:?}"
            );
        }
        let mut extra = packed.clone();
        extra.extend_from_slice(b"garbage!");
        let r = decompress(codec, &extra, 1 << 20, &mut out);
        assert!(
            matches!(r, Err(BatchError::BadCompressedData { .. })),
            "{codec} trailing: {r:?}"
        );
    }
}

#[test]
fn wrong_codec_is_an_error() {
    let src = text(10_000);
    for from in CODECS {
        for to in CODECS.into_iter().filter(|&c| c != from) {
            let mut out = Vec::new();
            let r = decompress(to, &packed(from, &src), 1 << 20, &mut out);
            assert!(r.is_err(), "{from} read as {to}");
        }
    }
}

#[test]
fn levels_are_checked() {
    let mut out = Vec::new();
    for (codec, level) in [(Compression::Gzip, 10), (Compression::Zstd, 1000)] {
        let codec = Codec {
            compression: codec,
            level: Some(level),
        };
        assert!(compress(codec, b"x", &mut out).is_err());
    }
    let gz9 = Codec {
        compression: Compression::Gzip,
        level: Some(9),
    };
    compress(gz9, b"x", &mut out).unwrap();
}

#[test]
fn compressed_batches_validate_and_iterate_like_the_uncompressed_one() {
    let plain = batch(20);
    let want: Vec<_> = RecordBatch::new(plain.clone().freeze())
        .unwrap()
        .records()
        .map(Result::unwrap)
        .collect();
    for codec in CODECS {
        let packed = compress_batch(&plain, Codec::new(codec)).unwrap();
        let header = validate(&packed).unwrap();
        assert_eq!(header.compression(), codec);
        let mut scratch = Vec::new();
        assert_eq!(
            validate_decompressing(&packed, 1 << 20, &mut scratch),
            Ok(header)
        );
        assert_eq!(scratch, plain[HEADER_LEN..]);
        let batch = RecordBatch::new(packed.freeze()).unwrap();
        let got: Vec<_> = batch.records().map(Result::unwrap).collect();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                (g.offset, g.timestamp, &g.key, &g.value),
                (w.offset, w.timestamp, &w.key, &w.value)
            );
        }
        // Too small a limit: the iterator reports it.
        let first = batch.records_limited(100).next().unwrap();
        assert!(matches!(
            first,
            Err(BatchError::DecompressedTooLarge { .. })
        ));
    }
}

#[test]
fn decompressed_records_are_walked_like_uncompressed_ones() {
    let plain = batch(3);
    let header = BatchHeader::parse(&plain).unwrap();
    let records = &plain[HEADER_LEN..];
    let mut scratch = Vec::new();
    for codec in CODECS {
        let c = Codec::new(codec);
        // Claims four records but holds three.
        let lying = BatchHeader {
            record_count: 4,
            last_offset_delta: 3,
            ..header
        };
        let b = build_compressed(&lying, records, c).unwrap();
        assert!(validate(&b).is_ok(), "the header alone looks fine");
        assert_eq!(
            validate_decompressing(&b, 1 << 20, &mut scratch),
            Err(BatchError::RecordCountMismatch {
                header: 4,
                actual: 3
            })
        );
        // Garbage after the last record, inside the compressed stream.
        let mut more = records.to_vec();
        more.push(0x01);
        let b = build_compressed(&header, &more, c).unwrap();
        assert!(matches!(
            validate_decompressing(&b, 1 << 20, &mut scratch),
            Err(BatchError::TrailingBytes { .. })
        ));
        // Not records at all.
        let b = build_compressed(&header, &[0xff; 40], c).unwrap();
        assert!(matches!(
            validate_decompressing(&b, 1 << 20, &mut scratch),
            Err(BatchError::BadRecord { index: 0, .. })
        ));
        // Stream corrupted after compression (CRC fixed up): an error, not a panic.
        let mut b = build_compressed(&header, records, c).unwrap().to_vec();
        let mid = HEADER_LEN + (b.len() - HEADER_LEN) / 2;
        b[mid] ^= 0x5a;
        crate::batch::testutil::fix_crc(&mut b);
        let _ = validate_decompressing(&b, 1 << 20, &mut scratch);
    }
}

#[test]
fn recompress_changes_every_batch_to_the_codec_and_keeps_the_records() {
    let plain = batch(10);
    let mut mixed = plain.to_vec();
    mixed.extend_from_slice(&compress_batch(&plain, Codec::new(Compression::Lz4)).unwrap());
    mixed.extend_from_slice(&compress_batch(&plain, Codec::new(Compression::Zstd)).unwrap());
    let want: Vec<_> = RecordBatch::new(plain.clone().freeze())
        .unwrap()
        .records()
        .map(|r| r.unwrap().value)
        .collect();
    for target in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let out = recompress(&mixed, Codec::new(target), 1 << 20)
            .unwrap()
            .expect("some batch changes");
        let mut bytes = bytes::Bytes::from(out);
        let mut n = 0;
        while !bytes.is_empty() {
            let b = RecordBatch::split_first(&mut bytes).unwrap();
            assert_eq!(b.header().compression(), target);
            assert_eq!(b.header().record_count, 10);
            let got: Vec<_> = b.records().map(|r| r.unwrap().value).collect();
            assert_eq!(got, want);
            n += 1;
        }
        assert_eq!(n, 3);
    }
    // All already in the codec: nothing to do.
    let zstd = compress_batch(&plain, Codec::new(Compression::Zstd)).unwrap();
    assert_eq!(
        recompress(&zstd, Codec::new(Compression::Zstd), 1 << 20),
        Ok(None)
    );
    // A bad batch is refused at its position.
    let mut bad = plain.to_vec();
    let at = bad.len();
    bad.extend_from_slice(&plain[..HEADER_LEN + 3]);
    assert!(matches!(
        recompress(&bad, Codec::new(Compression::Gzip), 1 << 20),
        Err((p, BatchError::Truncated { .. })) if p == at
    ));
}

proptest! {
    #[test]
    fn any_bytes_round_trip_through_every_codec(src in proptest::collection::vec(any::<u8>(), 0..100_000)) {
        for codec in CODECS {
            let packed = packed(codec, &src);
            let mut out = Vec::new();
            decompress(codec, &packed, src.len(), &mut out).unwrap();
            prop_assert_eq!(&out, &src);
        }
    }

    #[test]
    fn xerial_frames_any_block_split(src in proptest::collection::vec(any::<u8>(), 0..100_000), cut in 1usize..40_000) {
        // Hand-framed with an arbitrary block size: the reader takes any split.
        let mut framed = XERIAL_MAGIC.to_vec();
        framed.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1]);
        for chunk in src.chunks(cut) {
            let block = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
            framed.extend_from_slice(&(block.len() as i32).to_be_bytes());
            framed.extend_from_slice(&block);
        }
        let mut out = Vec::new();
        decompress(Compression::Snappy, &framed, src.len(), &mut out).unwrap();
        prop_assert_eq!(&out, &src);
    }

    #[test]
    fn arbitrary_input_never_panics(codec in 1u8..=4, data in proptest::collection::vec(any::<u8>(), 0..2_000)) {
        let codec = Compression::from_code(codec).unwrap();
        let mut out = Vec::new();
        let _ = decompress(codec, &data, 1 << 16, &mut out);
        prop_assert!(out.len() <= 1 << 16);
    }
}

/// `validate_measuring` finds the largest record timestamp (not the
/// header's claim) in a plain and in every compressed batch, and
/// `set_max_timestamp` rewrites the claim with a CRC that still holds.
#[test]
fn the_largest_record_timestamp_is_measured_and_can_be_stored() {
    use crate::batch::{set_max_timestamp, validate_measuring, verify_crc};
    let mut b = BatchBuilder::new();
    for ts in [5_000i64, 9_000, 7_000] {
        b.push(&NewRecord {
            timestamp: ts,
            key: None,
            value: Some(b"v"),
            headers: &[],
        });
    }
    let plain = b.finish();
    for codec in std::iter::once(Compression::None).chain(CODECS) {
        let mut packed = if codec == Compression::None {
            plain.clone()
        } else {
            compress_batch(&plain, Codec::new(codec)).unwrap()
        };
        set_max_timestamp(&mut packed, -1).unwrap();
        assert_eq!(verify_crc(&packed).unwrap().max_timestamp, -1, "{codec:?}");
        let mut scratch = Vec::new();
        let v = validate_measuring(&packed, 1 << 20, &mut scratch).unwrap();
        assert_eq!(v.header.max_timestamp, -1);
        assert_eq!(v.max_record_timestamp, Some(9_000), "{codec:?}");
        set_max_timestamp(&mut packed, 9_000).unwrap();
        assert_eq!(verify_crc(&packed).unwrap().max_timestamp, 9_000);
        // A buffer cut short is refused and left as it was.
        let mut short = packed[..packed.len() - 1].to_vec();
        let before = short.clone();
        assert!(set_max_timestamp(&mut short, 1).is_err());
        assert_eq!(short, before);
    }
}

/// `set_create_time` turns a log-append-time batch into a create-time one
/// with the given `maxTimestamp`, its records and every other header field
/// unchanged, its CRC valid; readers then see each record's own timestamp.
#[test]
fn a_log_append_time_batch_is_stored_as_create_time() {
    use crate::batch::{RecordBatch, TimestampType, set_create_time, verify_crc};
    let mut b = BatchBuilder::new();
    for ts in [5_000i64, 9_000] {
        b.push(&NewRecord {
            timestamp: ts,
            key: None,
            value: Some(b"v"),
            headers: &[],
        });
    }
    let plain = b.finish();
    for codec in std::iter::once(Compression::None).chain(CODECS) {
        let mut packed = if codec == Compression::None {
            plain.to_vec()
        } else {
            compress_batch(&plain, Codec::new(codec)).unwrap().to_vec()
        };
        // As a client would send it: bit 3 set, CRC matching.
        packed[22] |= 0x08;
        let crc = crc32c::crc32c(&packed[21..]);
        packed[17..21].copy_from_slice(&crc.to_be_bytes());
        let before = verify_crc(&packed).unwrap();
        assert_eq!(before.timestamp_type(), TimestampType::LogAppendTime);
        let read = |p: &[u8]| -> Vec<i64> {
            RecordBatch::new(p.to_vec().into())
                .unwrap()
                .records()
                .map(|r| r.unwrap().timestamp)
                .collect()
        };
        assert_eq!(
            read(&packed),
            [9_000, 9_000],
            "{codec:?}: read as the batch's"
        );
        set_create_time(&mut packed, 9_000).unwrap();
        let after = verify_crc(&packed).unwrap();
        assert_eq!(after.timestamp_type(), TimestampType::CreateTime);
        assert_eq!(after.compression(), codec);
        assert_eq!(after.max_timestamp, 9_000);
        assert_eq!(
            (
                after.attributes | 0x08,
                after.record_count,
                after.base_timestamp
            ),
            (
                before.attributes,
                before.record_count,
                before.base_timestamp
            )
        );
        assert_eq!(read(&packed), [5_000, 9_000], "{codec:?}");
        let mut short = packed[..packed.len() - 1].to_vec();
        let kept = short.clone();
        assert!(set_create_time(&mut short, 1).is_err());
        assert_eq!(short, kept);
    }
}

/// A reader that hands out `data` 7 bytes at a time, failing with
/// `Interrupted` before each read (which the old loop took for the end).
struct Choppy<'a> {
    data: &'a [u8],
    interrupt: bool,
}

impl Read for Choppy<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(self.data.len()).min(7);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn interrupted_reads_are_retried_and_small_reads_fill_a_reused_buffer() {
    let src = text(300_000);
    // A buffer reused from a larger batch: its capacity stays, its length
    // is what was read, and the limit still holds.
    let mut out = Vec::with_capacity(1 << 20);
    let reader = Choppy {
        data: &src,
        interrupt: false,
    };
    read_bounded(reader, Compression::Lz4, src.len(), &mut out).unwrap();
    assert_eq!(out, src);
    let mut out = Vec::new();
    let reader = Choppy {
        data: &src,
        interrupt: false,
    };
    assert_eq!(
        read_bounded(reader, Compression::Lz4, src.len() - 1, &mut out),
        Err(BatchError::DecompressedTooLarge {
            codec: Compression::Lz4,
            limit: src.len() - 1
        })
    );
    assert!(
        out.len() <= src.len() && out.capacity() <= src.len(),
        "{}",
        out.capacity()
    );
}

/// A zstd frame that declares more than the limit is refused before anything
/// is decompressed (no output buffer is even allocated); one that declares
/// nothing is refused at the limit as it is read.
#[test]
fn a_zstd_frame_declaring_more_than_the_limit_is_refused_unread() {
    let zeros = vec![0u8; 4 << 20];
    let declared = zstd::bulk::compress(&zeros, 3).unwrap();
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&declared).unwrap(),
        Some(4 << 20)
    );
    let mut out = Vec::new();
    let r = decompress(Compression::Zstd, &declared, 1 << 20, &mut out);
    assert!(
        matches!(r, Err(BatchError::DecompressedTooLarge { .. })),
        "{r:?}"
    );
    assert_eq!(out.capacity(), 0, "nothing decompressed");
    // Streamed without a declared size: bounded as read.
    let mut undeclared = Vec::new();
    {
        let mut enc = zstd::stream::write::Encoder::new(&mut undeclared, 3).unwrap();
        enc.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut enc, &zeros).unwrap();
        enc.finish().unwrap();
    }
    assert_eq!(
        zstd::zstd_safe::get_frame_content_size(&undeclared).unwrap(),
        None
    );
    let r = decompress(Compression::Zstd, &undeclared, 1 << 20, &mut out);
    assert!(
        matches!(r, Err(BatchError::DecompressedTooLarge { .. })),
        "{r:?}"
    );
    // Within the limit, both read back.
    decompress(Compression::Zstd, &declared, 8 << 20, &mut out).unwrap();
    assert_eq!(out, zeros);
}
