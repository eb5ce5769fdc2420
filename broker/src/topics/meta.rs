//! `topics.meta`, the list of topics and the commit point of creating and
//! deleting them: its bytes (layout in `docs/storage-format.md`) and its
//! atomic rewrite.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sluice_protocol::wire::topic_config::{TopicConfig, TopicConfigV0, without_max_message_bytes};

use super::space_reserve::SpaceReserve;
use super::{Hosting, TOPICS_FILE, TopicId};
use crate::error::BrokerError;
use crate::log::LogError;
use crate::log::io::{FileSystem, write_file_atomically};

const MAGIC: [u8; 4] = *b"SLTM";
/// Version 5 adds each topic's `max_message_bytes`; version 4 added its
/// id, version 3 its hosted partitions, version 2 its `compression`.
/// Versions 1 to 4 are still read (and rewritten as version 5 by the next
/// create, change or delete).
const VERSION: u16 = 5;

/// A topic as version 5 of `topics.meta` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TopicRecord {
    pub(super) name: String,
    pub(super) partitions: u32,
    pub(super) config: TopicConfig,
    /// The hosted partitions, ascending; `None` for all of them.
    pub(super) hosted: Option<Vec<u32>>,
    /// The topic's id ([`TopicId`]).
    pub(super) id: [u8; 16],
}

/// A topic as version 4 of `topics.meta` records it (settings without
/// `max_message_bytes`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TopicRecordV4 {
    pub(super) name: String,
    pub(super) partitions: u32,
    #[serde(with = "without_max_message_bytes")]
    pub(super) config: TopicConfig,
    pub(super) hosted: Option<Vec<u32>>,
    pub(super) id: [u8; 16],
}

/// A topic as version 3 of `topics.meta` records it (no id).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TopicRecordV3 {
    pub(super) name: String,
    pub(super) partitions: u32,
    #[serde(with = "without_max_message_bytes")]
    pub(super) config: TopicConfig,
    pub(super) hosted: Option<Vec<u32>>,
}

impl TopicRecord {
    /// The record of a topic listed by a file older than version 4: its id
    /// is derived from its name, so it stays the same at every start until
    /// the next rewrite keeps it.
    fn without_id(
        name: String,
        partitions: u32,
        config: TopicConfig,
        hosted: Option<Vec<u32>>,
    ) -> TopicRecord {
        let id = TopicId::derived(&name, 0).0;
        TopicRecord {
            name,
            partitions,
            config,
            hosted,
            id,
        }
    }

    pub(super) fn hosting(&self) -> Hosting<'_> {
        match &self.hosted {
            None => Hosting::All,
            Some(set) => Hosting::Only(set),
        }
    }
}

/// A topic as version 2 of `topics.meta` records it (every partition
/// hosted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TopicRecordV2 {
    pub(super) name: String,
    pub(super) partitions: u32,
    #[serde(with = "without_max_message_bytes")]
    pub(super) config: TopicConfig,
}

/// A topic as version 1 of `topics.meta` records it (no `compression`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct TopicRecordV1 {
    pub(super) name: String,
    pub(super) partitions: u32,
    pub(super) config: TopicConfigV0,
}

/// Writes `topics.meta` atomically. For a deletion (`deleting` is the
/// reserve), a write that finds the disk full releases the space reserve
/// (if held) and tries once more, then removes the files of the topics
/// being deleted ([`super::dirs::empty_marked_dirs`]) and tries again: the
/// way out of a full disk stays open. Any other write (a creation, a
/// change) leaves the reserve alone, so it cannot use up the space a later
/// deletion needs.
pub(super) fn write_meta_file(
    fs: &dyn FileSystem,
    data_dir: &Path,
    deleting: Option<&SpaceReserve>,
    records: &[TopicRecord],
) -> Result<(), BrokerError> {
    let bytes = encode_meta(records);
    let write = || write_file_atomically(fs, data_dir, TOPICS_FILE, &bytes);
    let full = |r: &std::io::Result<()>| r.as_ref().is_err_and(crate::log::io::is_disk_full);
    let mut written = write();
    if let Some(reserve) = deleting {
        if full(&written) && reserve.release(fs) {
            written = write();
        }
        if full(&written) && super::dirs::empty_marked_dirs(fs, data_dir) {
            written = write();
        }
    }
    written.map_err(|e| LogError::io("write", data_dir.join(TOPICS_FILE), e).into())
}

/// Decodes the bytes of a `topics.meta` file and returns how many topics it
/// lists, or why it is damaged. Never panics (fuzzed by `fuzz/`).
pub fn check_topics_file(bytes: &[u8]) -> Result<usize, String> {
    decode_meta(bytes).map(|topics| topics.len())
}

/// `SLTM | u16 version | u16 0 | u32 body_len | body (postcard) | u32 crc32`.
pub(super) fn encode_meta(records: &[TopicRecord]) -> Vec<u8> {
    let body = postcard::to_stdvec(records).unwrap_or_default();
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

pub(super) fn decode_meta(buf: &[u8]) -> Result<Vec<TopicRecord>, String> {
    let crc_at = buf
        .len()
        .checked_sub(4)
        .filter(|&n| n >= 12)
        .ok_or_else(|| format!("{} bytes is too short", buf.len()))?;
    let (content, crc) = buf.split_at(crc_at);
    let stored = u32::from_be_bytes(crc.try_into().map_err(|_| "bad crc field")?);
    let computed = crc32fast::hash(content);
    if stored != computed {
        return Err(format!(
            "CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    if content.get(0..4) != Some(&MAGIC[..]) {
        return Err("bad magic".into());
    }
    let version = u16::from_be_bytes([content[4], content[5]]);
    if !(1..=VERSION).contains(&version) {
        return Err(format!("unsupported version {version}"));
    }
    let len = u32::from_be_bytes([content[8], content[9], content[10], content[11]]) as usize;
    let body = content
        .get(12..)
        .filter(|b| b.len() == len)
        .ok_or("body length mismatch")?;
    let records: Vec<TopicRecord> = match version {
        1 => decode_whole::<Vec<TopicRecordV1>>(body)?
            .into_iter()
            .map(|r| TopicRecord::without_id(r.name, r.partitions, r.config.into(), None))
            .collect(),
        2 => decode_whole::<Vec<TopicRecordV2>>(body)?
            .into_iter()
            .map(|r| TopicRecord::without_id(r.name, r.partitions, r.config, None))
            .collect(),
        3 => decode_whole::<Vec<TopicRecordV3>>(body)?
            .into_iter()
            .map(|r| TopicRecord::without_id(r.name, r.partitions, r.config, r.hosted))
            .collect(),
        4 => decode_whole::<Vec<TopicRecordV4>>(body)?
            .into_iter()
            .map(|r| TopicRecord {
                name: r.name,
                partitions: r.partitions,
                config: r.config,
                hosted: r.hosted,
                id: r.id,
            })
            .collect(),
        _ => decode_whole(body)?,
    };
    for r in &records {
        if let Some(set) = &r.hosted {
            if set.windows(2).any(|w| w[0] >= w[1])
                || set.last().is_some_and(|&l| l >= r.partitions)
            {
                return Err(format!(
                    "topic {:?}: hosted partitions {set:?} are not ascending below {}",
                    r.name, r.partitions
                ));
            }
        }
    }
    Ok(records)
}

/// Decodes a postcard body that must span all of `body`.
fn decode_whole<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let (value, rest) =
        postcard::take_from_bytes(body).map_err(|e| format!("malformed body: {e}"))?;
    if !rest.is_empty() {
        return Err(format!("{} unexpected bytes after the body", rest.len()));
    }
    Ok(value)
}
