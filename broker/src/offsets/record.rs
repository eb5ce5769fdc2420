//! The records of the offsets log: their keys and values, byte for byte
//! (layouts in `docs/storage-format.md`), encoded and decoded.

/// A committed offset's key: `(group, topic, partition)`.
pub(crate) type Key = (String, String, u32);
/// A committed offset's value: `(offset, metadata, committed_ms)`, the last
/// the wall-clock time of the commit in milliseconds since the Unix epoch,
/// or 0 where it is not known (a value written before commit times were
/// stored).
pub(crate) type Value = (u64, String, i64);

/// Key type of an offset commit record (big-endian `u16` at the start of
/// the key). Type 0 is never used: legacy keys are told apart by their
/// nonzero first byte.
pub const KEY_OFFSET_COMMIT: u16 = 1;
/// Key type of a group metadata record: the key is this `u16` BE, then the
/// postcard group name; the value is opaque here (the group coordinator's
/// versioned [`crate::group::record::GroupRecord`]).
pub const KEY_GROUP_METADATA: u16 = 2;
/// Key type of a checkpoint marker (group-state topic of a cluster only):
/// the key is this `u16` BE alone; the value is a [`CheckpointMarker`]. It
/// starts each batch of a checkpoint, which restates the live state of a
/// group-state partition (`replication::group_checkpoint`).
pub const KEY_CHECKPOINT: u16 = 3;
/// Version of the checkpoint marker value layout, and the first version of
/// the offset commit value layout (big-endian `u16` at the start of the
/// value): `(offset, metadata)` without the commit time, still read.
pub const VALUE_VERSION: u16 = 1;
/// Version of the offset commit value layout written now: version 1's
/// postcard `(offset, metadata)`, then the commit time as an `i64` BE of
/// milliseconds since the Unix epoch.
pub const OFFSET_VALUE_VERSION: u16 = 2;

/// Encodes the log record key of an offset commit: `u16` BE
/// [`KEY_OFFSET_COMMIT`], then postcard `(group, topic, partition)`.
pub fn encode_key(group: &str, topic: &str, partition: u32) -> Vec<u8> {
    let out = KEY_OFFSET_COMMIT.to_be_bytes().to_vec();
    // Encoding strings and integers into a Vec cannot fail.
    postcard::to_extend(&(group, topic, partition), out).unwrap_or_default()
}

/// Encodes the log record value of an offset commit: `u16` BE
/// [`OFFSET_VALUE_VERSION`], postcard `(offset, metadata)`, then
/// `committed_ms` as `i64` BE.
pub fn encode_value(offset: u64, metadata: &str, committed_ms: i64) -> Vec<u8> {
    let out = OFFSET_VALUE_VERSION.to_be_bytes().to_vec();
    let mut out = postcard::to_extend(&(offset, metadata), out).unwrap_or_default();
    out.extend_from_slice(&committed_ms.to_be_bytes());
    out
}

/// Decodes an offset commit value after its version bytes.
fn decode_value(version: u16, rest: &[u8]) -> Result<Value, String> {
    let ((offset, metadata), tail) = postcard::take_from_bytes::<(u64, String)>(rest)
        .map_err(|e| format!("offset commit value: {e}"))?;
    match (version, tail) {
        // Version 1 was read with whatever followed ignored, and still is.
        (VALUE_VERSION, _) => Ok((offset, metadata, 0)),
        (OFFSET_VALUE_VERSION, tail) => {
            let at: [u8; 8] = tail.try_into().map_err(|_| {
                format!(
                    "offset commit value: {} bytes after the metadata, not 8",
                    tail.len()
                )
            })?;
            Ok((offset, metadata, i64::from_be_bytes(at)))
        }
        (version, _) => Err(format!("offset commit value version {version}")),
    }
}

/// Encodes the log record key of a group's metadata: `u16` BE
/// [`KEY_GROUP_METADATA`], then postcard `group`.
pub fn encode_group_key(group: &str) -> Vec<u8> {
    let out = KEY_GROUP_METADATA.to_be_bytes().to_vec();
    postcard::to_extend(&group, out).unwrap_or_default()
}

/// The value of a checkpoint marker record (key type [`KEY_CHECKPOINT`]):
/// which checkpoint its batch belongs to, and which part of it the batch
/// is. A checkpoint is complete once parts `0..parts` of one `(term,
/// started_at)` were all read, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointMarker {
    /// Raft term (leader epoch) of the coordinator that wrote it.
    pub term: u64,
    /// The partition's high watermark when the checkpoint was started.
    pub started_at: u64,
    /// This batch's part number, from 0.
    pub part: u32,
    /// Number of parts (batches) of the checkpoint, at least 1.
    pub parts: u32,
}

/// Length of an encoded [`CheckpointMarker`] value.
pub const CHECKPOINT_VALUE_LEN: usize = 26;

impl CheckpointMarker {
    /// The record key: `u16` BE [`KEY_CHECKPOINT`].
    pub fn key() -> Vec<u8> {
        KEY_CHECKPOINT.to_be_bytes().to_vec()
    }

    /// The record value, [`CHECKPOINT_VALUE_LEN`] bytes, big-endian: `u16`
    /// version 1, `u64` term, `u64` started_at, `u32` part, `u32` parts.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CHECKPOINT_VALUE_LEN);
        out.extend_from_slice(&VALUE_VERSION.to_be_bytes());
        out.extend_from_slice(&self.term.to_be_bytes());
        out.extend_from_slice(&self.started_at.to_be_bytes());
        out.extend_from_slice(&self.part.to_be_bytes());
        out.extend_from_slice(&self.parts.to_be_bytes());
        out
    }

    /// Decodes a value written by [`CheckpointMarker::encode`].
    pub fn decode(value: &[u8]) -> Result<CheckpointMarker, String> {
        let v: &[u8; CHECKPOINT_VALUE_LEN] = value
            .try_into()
            .map_err(|_| format!("checkpoint marker value of {} bytes", value.len()))?;
        let (version, rest) = v.split_at(2);
        if version != VALUE_VERSION.to_be_bytes() {
            return Err(format!("checkpoint marker version {version:?}"));
        }
        let (term, rest) = rest.split_at(8);
        let (started_at, rest) = rest.split_at(8);
        let (part, parts) = rest.split_at(4);
        let be64 = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or_default());
        let be32 = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap_or_default());
        let marker = CheckpointMarker {
            term: be64(term),
            started_at: be64(started_at),
            part: be32(part),
            parts: be32(parts),
        };
        if marker.parts == 0 || marker.part >= marker.parts {
            return Err(format!(
                "checkpoint marker part {} of {}",
                marker.part, marker.parts
            ));
        }
        Ok(marker)
    }
}

/// What one offsets-log record means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetRecord {
    /// The key's latest value (`None`: a tombstone, the key is forgotten).
    Commit(Key, Option<Value>),
    /// A group's metadata value (opaque here), or `None`: the group was
    /// deleted.
    Group(String, Option<Vec<u8>>),
    /// A checkpoint marker: the records after it in its batch restate the
    /// live state (replaying changes nothing).
    Checkpoint(CheckpointMarker),
    /// A key type this build does not know (written by a newer broker):
    /// skipped.
    Unknown(u16),
}

/// Decodes a log record (key, value) written by [`encode_key`] and
/// [`encode_value`] or by the unversioned format before them.
pub fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<OffsetRecord, String> {
    let (key, value) = match key {
        [0, t0, rest @ ..] => {
            let kind = u16::from_be_bytes([0, *t0]);
            if kind == KEY_CHECKPOINT {
                if !rest.is_empty() {
                    return Err(format!("checkpoint key of {} bytes", key.len()));
                }
                let value = value.ok_or("checkpoint marker without a value")?;
                return CheckpointMarker::decode(value).map(OffsetRecord::Checkpoint);
            }
            if kind == KEY_GROUP_METADATA {
                let group: String =
                    postcard::from_bytes(rest).map_err(|e| format!("group metadata key: {e}"))?;
                return Ok(OffsetRecord::Group(group, value.map(<[u8]>::to_vec)));
            }
            if kind != KEY_OFFSET_COMMIT {
                return Ok(OffsetRecord::Unknown(kind));
            }
            let key: Key =
                postcard::from_bytes(rest).map_err(|e| format!("offset commit key: {e}"))?;
            let value = match value {
                None => None,
                Some([v0, v1, rest @ ..]) => {
                    Some(decode_value(u16::from_be_bytes([*v0, *v1]), rest)?)
                }
                Some(v) => return Err(format!("offset commit value of {} bytes", v.len())),
            };
            (key, value)
        }
        [0, ..] | [] => return Err(format!("offset record key of {} bytes", key.len())),
        legacy => {
            let key: Key = postcard::from_bytes(legacy).map_err(|e| format!("legacy key: {e}"))?;
            let value = value
                .map(postcard::from_bytes::<(u64, String)>)
                .transpose()
                .map_err(|e| format!("legacy value: {e}"))?
                .map(|(offset, metadata)| (offset, metadata, 0));
            (key, value)
        }
    };
    Ok(OffsetRecord::Commit(key, value))
}
