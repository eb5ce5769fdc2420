//! Compression of a batch's records section: bounded decompression for every codec Kafka
//! clients write, and compression for producers and recompressing brokers.
//!
//! The formats (written down in `docs/record-batch.md`): gzip streams (several members
//! allowed), snappy either raw or in the xerial framing Java clients write, the LZ4 frame
//! format, and zstd frames. Decompression never holds more than the caller's limit of
//! output: streaming decoders are read in steps into a buffer that grows to at most
//! `limit + 1` bytes, and a declared size (raw snappy) is checked against the limit
//! before anything is allocated for it.

use std::io::{Read, Write};

use bytes::BytesMut;

use super::attributes::COMPRESSION_MASK;
use super::header::crc_of;
use super::{BatchError, BatchHeader, CRC_START, Compression, HEADER_LEN, LOG_OVERHEAD};

/// The 8-byte magic that starts a xerial-framed snappy stream.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Length of the xerial header: magic, version (i32), compatible version (i32).
pub const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial block that [`compress`] writes (the Java client's
/// default block size).
pub const XERIAL_BLOCK_LEN: usize = 32 << 10;

/// The decompressed size [`super::RecordBatch::records`] accepts for one batch: twice
/// the broker's default largest frame (64 MiB).
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: usize = 128 << 20;

/// Smallest zstd window (as a power of two) a frame may declare whatever the limit:
/// 4 MiB, what streaming encoders at levels up to about 10 declare.
pub const ZSTD_MIN_WINDOW_LOG: u32 = 22;

/// Growth step of the output buffer while a stream decoder is read.
const STEP: usize = 64 << 10;

/// A codec and, where the codec has one, a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Codec {
    /// The codec.
    pub compression: Compression,
    /// gzip 0-9 (default 6), zstd 1-22 (default 3), negative zstd levels allowed;
    /// ignored by snappy, lz4 and none. `None`: the codec's default.
    pub level: Option<i32>,
}

impl Codec {
    /// `compression` at its default level.
    pub fn new(compression: Compression) -> Codec {
        Codec {
            compression,
            level: None,
        }
    }
}

/// Decompresses `src` (the records section of a batch compressed with `codec`) into
/// `out`, which is cleared first.
///
/// Errors: [`BatchError::DecompressedTooLarge`] as soon as the output would exceed `limit`
/// bytes (at most `limit + 1` bytes are ever held), [`BatchError::BadCompressedData`] for
/// a stream that is truncated, corrupt, or followed by bytes that are not part of it.
/// `Compression::None` copies `src` (subject to the same limit). Never panics.
pub fn decompress(
    codec: Compression,
    src: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    out.clear();
    let bad = |reason: String| BatchError::BadCompressedData { codec, reason };
    match codec {
        Compression::None => {
            if src.len() > limit {
                return Err(BatchError::DecompressedTooLarge { codec, limit });
            }
            out.extend_from_slice(src);
            Ok(())
        }
        Compression::Gzip => {
            read_bounded(flate2::read::MultiGzDecoder::new(src), codec, limit, out)
        }
        Compression::Snappy => snappy_decompress(src, limit, out).map_err(|e| match e {
            SnappyError::TooLarge => BatchError::DecompressedTooLarge { codec, limit },
            SnappyError::Bad(reason) => bad(reason),
        }),
        Compression::Lz4 => {
            // The frame decoder takes a stream cut at a block boundary for its end;
            // walk the framing first so that truncation is an error.
            lz4_frames_complete(src).map_err(|r| bad(r.into()))?;
            read_bounded(lz4_flex::frame::FrameDecoder::new(src), codec, limit, out)
        }
        Compression::Zstd => {
            // A first frame that declares more than the limit is refused
            // before any work (a one-shot bomb of a few KiB says what it
            // decompresses to); a frame that declares nothing, or less, is
            // bounded as it is read.
            if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(src) {
                if size > limit as u64 {
                    return Err(BatchError::DecompressedTooLarge { codec, limit });
                }
            }
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(src).map_err(|e| bad(e.to_string()))?;
            // A frame may ask for a window of up to 2^31 bytes, which the decoder
            // allocates up front. Allow what the output limit needs, and at least the
            // 4 MiB that streaming encoders at the common levels declare whatever the
            // input size; never more than zstd's default cap of 2^27.
            let window_log = usize::BITS - limit.max(1).leading_zeros();
            decoder
                .window_log_max(window_log.clamp(ZSTD_MIN_WINDOW_LOG, 27))
                .map_err(|e| bad(e.to_string()))?;
            read_bounded(decoder, codec, limit, out)
        }
    }
}

/// Reads `reader` to its end into `out`, growing `out` to at most `limit + 1` bytes.
///
/// Linear in what is read: `out` grows in doubling steps (from [`STEP`]), each new
/// step zero-filled once, and `filled` counts the bytes read into it; it is cut to
/// `filled` at the end. Zero-filling all the spare room before every `read` instead
/// made a decoder that returns one block per call (lz4's frames give at most 64 KiB)
/// quadratic in the decompressed size, and a reused buffer with a large capacity
/// cost that capacity on every call.
fn read_bounded(
    mut reader: impl Read,
    codec: Compression,
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    let cap = limit.saturating_add(1);
    let mut filled = out.len();
    let result = loop {
        if filled == out.len() {
            let grow_to = out.len().saturating_mul(2).max(STEP).min(cap);
            if grow_to <= filled {
                break Err(BatchError::DecompressedTooLarge { codec, limit });
            }
            // Exact: the buffer never holds more than `limit + 1` bytes.
            out.reserve_exact(grow_to - out.len());
            out.resize(grow_to, 0);
        }
        let got = match reader.read(out.get_mut(filled..).unwrap_or_default()) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                break Err(BatchError::BadCompressedData {
                    codec,
                    reason: e.to_string(),
                });
            }
        };
        filled += got;
        if filled > limit {
            break Err(BatchError::DecompressedTooLarge { codec, limit });
        }
        // The slice read into was not empty: 0 is the end.
        if got == 0 {
            break Ok(());
        }
    };
    out.truncate(filled);
    result
}

/// The codec of the first compressed batch among the batches back to back in `buf`,
/// reading only their framing (length and attributes); `None` if every whole batch is
/// uncompressed. Stops, answering `None`, at the first bytes that are not a batch
/// header (validation reports those).
pub fn first_compressed(buf: &[u8]) -> Option<Compression> {
    codecs(buf).find(|&c| c != Compression::None)
}

/// The codec of each batch back to back in `buf`, in order, reading only their
/// framing (length and attributes); ends at the first bytes that are not a batch
/// header (validation reports those).
pub fn codecs(buf: &[u8]) -> impl Iterator<Item = Compression> + '_ {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let rest = buf.get(at..).filter(|r| r.len() >= HEADER_LEN)?;
        let header = BatchHeader::parse_framing(rest).ok()?;
        at = at.checked_add(header.total_len())?;
        Some(header.compression())
    })
}

/// Re-encodes the batches back to back in `batches` so that each is compressed with
/// `codec` (`Compression::None`: uncompressed), for a broker whose topic fixes the codec.
///
/// Each batch is first checked as [`super::validate_decompressing`] does (with `limit`);
/// then a batch already in `codec` is copied as it is, any other gets its records
/// section (decompressed if need be) compressed with `codec`, all other header fields
/// kept and the CRC recomputed. Returns `None` when every batch is already in `codec`
/// (nothing to do), else the new bytes. The error names the byte position of the batch
/// that failed, as an append would.
pub fn recompress(
    batches: &[u8],
    codec: Codec,
    limit: usize,
) -> Result<Option<Vec<u8>>, (usize, BatchError)> {
    if first_other_codec(batches, codec.compression).is_none() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(batches.len());
    let mut scratch = Vec::new();
    let mut at = 0usize;
    while let Some(rest) = batches.get(at..).filter(|r| !r.is_empty()) {
        let header =
            super::validate_decompressing(rest, limit, &mut scratch).map_err(|e| (at, e))?;
        let batch = rest.get(..header.total_len()).unwrap_or_default();
        if header.compression() == codec.compression {
            out.extend_from_slice(batch);
        } else {
            let records = match header.compression() {
                Compression::None => batch.get(HEADER_LEN..).unwrap_or_default(),
                _ => &scratch[..],
            };
            out.extend_from_slice(&build_compressed(&header, records, codec).map_err(|e| (at, e))?);
        }
        at += header.total_len();
    }
    Ok(Some(out))
}

/// The position of the first batch (by framing) whose codec is not `codec`.
fn first_other_codec(buf: &[u8], codec: Compression) -> Option<usize> {
    let mut at = 0usize;
    while let Some(rest) = buf.get(at..).filter(|r| !r.is_empty()) {
        match BatchHeader::parse_framing(rest) {
            Ok(h) if h.compression() == codec => at = at.checked_add(h.total_len())?,
            // A different codec, or bytes validation will refuse.
            _ => return Some(at),
        }
    }
    None
}

/// Magic number of an LZ4 frame (little-endian on the wire).
const LZ4_MAGIC: u32 = 0x184D_2204;

/// Checks that `src` is whole LZ4 frames (skippable frames allowed) and nothing else:
/// each header, every block length, the end mark and the checksums present. Does not
/// decompress or check the checksums (the decoder does).
fn lz4_frames_complete(mut src: &[u8]) -> Result<(), &'static str> {
    const TRUNCATED: &str = "lz4 frame truncated";
    let u32_at = |b: &[u8], at: usize| -> Result<u32, &'static str> {
        b.get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or(TRUNCATED)
    };
    if src.is_empty() {
        return Err("empty lz4 stream");
    }
    while !src.is_empty() {
        let magic = u32_at(src, 0)?;
        let mut pos;
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            pos = 8usize.saturating_add(u32_at(src, 4)? as usize);
        } else if magic == LZ4_MAGIC {
            let flg = *src.get(4).ok_or(TRUNCATED)?;
            if flg >> 6 != 1 {
                return Err("lz4 frame version is not 01");
            }
            let block_checksum = if flg & 0x10 != 0 { 4 } else { 0 };
            pos = 7 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 };
            loop {
                let size = u32_at(src, pos)?;
                pos += 4;
                if size == 0 {
                    break;
                }
                pos = pos
                    .saturating_add((size & 0x7FFF_FFFF) as usize)
                    .saturating_add(block_checksum);
            }
            if flg & 0x04 != 0 {
                pos += 4;
            }
        } else {
            return Err("not an lz4 frame (bad magic number)");
        }
        src = src.get(pos..).ok_or(TRUNCATED)?;
    }
    Ok(())
}

enum SnappyError {
    TooLarge,
    Bad(String),
}

/// Raw snappy, or xerial framing when `src` starts with [`XERIAL_MAGIC`].
fn snappy_decompress(src: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), SnappyError> {
    match src.strip_prefix(&XERIAL_MAGIC[..]) {
        None => snappy_block(src, limit, out),
        Some(rest) => {
            // Version and compatible version: the Java client writes 1 and 1 and reads
            // any version whose compatible version is 1.
            let compat = rest
                .get(4..8)
                .ok_or_else(|| SnappyError::Bad("xerial header truncated".into()))?;
            if compat != [0, 0, 0, 1] {
                return Err(SnappyError::Bad(format!(
                    "xerial compatible version {compat:?} is not 1"
                )));
            }
            let mut blocks = rest.get(8..).unwrap_or_default();
            while !blocks.is_empty() {
                let (len, tail) = blocks
                    .split_first_chunk::<4>()
                    .ok_or_else(|| SnappyError::Bad("xerial block length truncated".into()))?;
                let len = i32::from_be_bytes(*len);
                let len = usize::try_from(len)
                    .map_err(|_| SnappyError::Bad(format!("negative xerial block length {len}")))?;
                let block = tail
                    .get(..len)
                    .ok_or_else(|| SnappyError::Bad("xerial block truncated".into()))?;
                snappy_block(block, limit, out)?;
                blocks = tail.get(len..).unwrap_or_default();
            }
            Ok(())
        }
    }
}

/// Most bytes one byte of a snappy block can stand for: its densest element, a 3-byte
/// copy, stands for 64 bytes (literals stand for fewer than they take).
const SNAPPY_MAX_EXPANSION: usize = 22;

/// Appends one raw snappy block to `out`; its declared length is checked against what a
/// block of its size can hold and against the room left under `limit` before anything
/// is allocated (the length is the sender's claim: a few bytes claiming 100 MiB would
/// otherwise cost 100 MiB zeroed before the decoder finds nothing behind it).
fn snappy_block(block: &[u8], limit: usize, out: &mut Vec<u8>) -> Result<(), SnappyError> {
    let n = snap::raw::decompress_len(block).map_err(|e| SnappyError::Bad(e.to_string()))?;
    if n > block.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
        return Err(SnappyError::Bad(format!(
            "snappy block of {} bytes declares {n} bytes, more than it can hold",
            block.len()
        )));
    }
    if n > limit.saturating_sub(out.len()) {
        return Err(SnappyError::TooLarge);
    }
    let start = out.len();
    out.resize(start + n, 0);
    let dst = out.get_mut(start..).unwrap_or_default();
    match snap::raw::Decoder::new().decompress(block, dst) {
        Ok(written) if written == n => Ok(()),
        Ok(written) => Err(SnappyError::Bad(format!(
            "snappy block declares {n} bytes but holds {written}"
        ))),
        Err(e) => Err(SnappyError::Bad(e.to_string())),
    }
}

/// Compresses `src` with `codec`, appending to `out`: a gzip stream, xerial-framed snappy
/// (what the Java client writes, and every Kafka client reads), an LZ4 frame
/// (independent 64 KiB blocks, as Kafka's own writer), or a zstd frame.
/// `Compression::None` copies. Errors only for a level the codec refuses.
pub fn compress(codec: Codec, src: &[u8], out: &mut Vec<u8>) -> Result<(), BatchError> {
    let bad = |reason: String| BatchError::BadCompressedData {
        codec: codec.compression,
        reason,
    };
    match codec.compression {
        Compression::None => out.extend_from_slice(src),
        Compression::Gzip => {
            let level = match codec.level {
                None => flate2::Compression::default(),
                Some(l @ 0..=9) => flate2::Compression::new(l.unsigned_abs()),
                Some(l) => {
                    return Err(BatchError::BadCompressionLevel {
                        codec: Compression::Gzip,
                        level: l,
                        range: "0 to 9".into(),
                    });
                }
            };
            let mut enc = flate2::write::GzEncoder::new(out, level);
            enc.write_all(src).map_err(|e| bad(e.to_string()))?;
            enc.finish().map_err(|e| bad(e.to_string()))?;
        }
        Compression::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            for chunk in src.chunks(XERIAL_BLOCK_LEN) {
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                let start = out.len();
                out.resize(start + snap::raw::max_compress_len(chunk.len()), 0);
                let n = enc
                    .compress(chunk, out.get_mut(start..).unwrap_or_default())
                    .map_err(|e| bad(e.to_string()))?;
                out.truncate(start + n);
                let len = i32::try_from(n).map_err(|e| bad(e.to_string()))?;
                if let Some(slot) = out.get_mut(at..start) {
                    slot.copy_from_slice(&len.to_be_bytes());
                }
            }
        }
        Compression::Lz4 => {
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, out);
            enc.write_all(src).map_err(|e| bad(e.to_string()))?;
            enc.finish().map_err(|e| bad(e.to_string()))?;
        }
        Compression::Zstd => {
            let level = codec.level.unwrap_or(zstd::DEFAULT_COMPRESSION_LEVEL);
            let range = zstd::compression_level_range();
            if !range.contains(&level) {
                return Err(BatchError::BadCompressionLevel {
                    codec: Compression::Zstd,
                    level,
                    range: format!("{} to {}", range.start(), range.end()),
                });
            }
            let mut enc =
                zstd::stream::write::Encoder::new(out, level).map_err(|e| bad(e.to_string()))?;
            enc.write_all(src).map_err(|e| bad(e.to_string()))?;
            enc.finish().map_err(|e| bad(e.to_string()))?;
        }
    }
    Ok(())
}

/// Turns the uncompressed, valid batch `batch` (exactly one batch) into the same batch
/// with its records section compressed with `codec`: same header fields, the codec bits
/// set in `attributes`, `batchLength` and the CRC recomputed.
pub fn compress_batch(batch: &[u8], codec: Codec) -> Result<BytesMut, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let records = batch
        .get(HEADER_LEN..header.total_len())
        .unwrap_or_default();
    build_compressed(&header, records, codec)
}

/// The batch with `header`'s fields (base offset, epoch, count, deltas, timestamps,
/// producer fields, timestamp type and flags) and the uncompressed records section
/// `records` compressed with `codec`; `batchLength`, the codec bits and the CRC are
/// computed. `records` must hold exactly `header.record_count` records.
pub fn build_compressed(
    header: &BatchHeader,
    records: &[u8],
    codec: Codec,
) -> Result<BytesMut, BatchError> {
    let mut out = Vec::with_capacity(HEADER_LEN + records.len() / 2 + 64);
    out.resize(HEADER_LEN, 0);
    compress(codec, records, &mut out)?;
    let mut h = *header;
    h.batch_length =
        i32::try_from(out.len() - LOG_OVERHEAD).map_err(|_| BatchError::BadCompressedData {
            codec: codec.compression,
            reason: "compressed batch larger than i32::MAX bytes".into(),
        })?;
    h.attributes = (header.attributes & !COMPRESSION_MASK) | i16::from(codec.compression.code());
    if let Some(dst) = out.get_mut(..HEADER_LEN) {
        dst.copy_from_slice(&h.encode());
    }
    let crc = crc_of(&out);
    if let Some(dst) = out.get_mut(17..CRC_START) {
        dst.copy_from_slice(&crc.to_be_bytes());
    }
    // Takes over the vector's buffer (unique, so no second copy of the batch).
    Ok(bytes::Bytes::from(out)
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..])))
}

#[cfg(test)]
#[path = "compression_tests.rs"]
mod tests;
