//! Housekeeping of partition directories in the data directory: setting
//! one aside under a marked name, and removing those marked for deletion.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::BrokerError;
use crate::log::io::FileSystem;
use crate::log::names::{DELETE_SUFFIX, parse_set_aside_dir_name, set_aside_dir_name};
use crate::log::{LogError, TopicPartition};

/// Renames the directory of `tp` to a fresh set-aside name with `suffix`
/// and returns the new path. The caller syncs the data directory.
pub(super) fn set_aside(
    fs: &dyn FileSystem,
    data_dir: &Path,
    tp: &TopicPartition,
    suffix: &str,
) -> Result<PathBuf, BrokerError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let from = data_dir.join(tp.dir_name());
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let id = nanos
            .rotate_left(17)
            .wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed))
            ^ u64::from(std::process::id());
        let to = data_dir.join(set_aside_dir_name(&tp.dir_name(), id, suffix));
        if fs.exists(&to) {
            continue;
        }
        fs.rename(&from, &to)
            .map_err(|e| LogError::io("rename", &from, e))?;
        return Ok(to);
    }
}

/// Whether the partition directory `dir` holds no records: every segment
/// file (`*.log`) in it is empty, and everything else is what a partition
/// keeps beside its segments (indexes, producer snapshots, checkpoints,
/// the clean-shutdown marker, files being written, its Raft directory). A
/// directory with anything else in it, or that cannot be read, counts as
/// holding records.
pub(super) fn holds_no_records(fs: &dyn FileSystem, dir: &Path) -> bool {
    use crate::log::format::{
        CHECKPOINT_FILE, CLEAN_SHUTDOWN_FILE, INDEX_SUFFIX, LOG_START_FILE, LOG_SUFFIX,
        TIME_INDEX_SUFFIX, TMP_SUFFIX,
    };
    let Ok(names) = fs.list_dir(dir) else {
        return false;
    };
    names.iter().all(|name| {
        if name.ends_with(LOG_SUFFIX) {
            return fs
                .open(&dir.join(name), crate::log::io::OpenMode::Existing)
                .and_then(|f| f.len())
                .is_ok_and(|len| len == 0);
        }
        name == crate::replication::partition::RAFT_DIR
            || name == CHECKPOINT_FILE
            || name == LOG_START_FILE
            || name == CLEAN_SHUTDOWN_FILE
            || name.ends_with(INDEX_SUFFIX)
            || name.ends_with(TIME_INDEX_SUFFIX)
            || name.ends_with(crate::producer::snapshot::SNAPSHOT_SUFFIX)
            || name.ends_with(TMP_SUFFIX)
    })
}

pub(super) fn mark_for_deletion(
    fs: &dyn FileSystem,
    data_dir: &Path,
    tp: &TopicPartition,
) -> Result<(), BrokerError> {
    set_aside(fs, data_dir, tp, DELETE_SUFFIX).map(|_| ())
}

/// Removes every directory of `data_dir` that carries the delete marker,
/// and nothing else.
/// Removes the files inside every directory marked for deletion, keeping
/// the directories themselves (the markers that a deletion is under way):
/// frees a deleted topic's space before `topics.meta` is rewritten without
/// it, when that write found the disk full. Crash-safe: a start that finds
/// the topic still listed and its marked directories (empty or not)
/// finishes the deletion. Returns whether any file was removed.
pub(super) fn empty_marked_dirs(fs: &dyn FileSystem, data_dir: &Path) -> bool {
    let Ok(names) = fs.list_dir(data_dir) else {
        return false;
    };
    let mut removed = false;
    for name in names {
        if parse_set_aside_dir_name(&name, DELETE_SUFFIX).is_none() {
            continue;
        }
        let dir = data_dir.join(&name);
        for file in fs.list_dir(&dir).unwrap_or_default() {
            removed |= fs.remove_file(&dir.join(file)).is_ok();
        }
    }
    if removed {
        tracing::warn!(data_dir = %data_dir.display(), "disk full: removed the files of topics being deleted before recording the deletion");
    }
    removed
}

pub(super) fn remove_marked_dirs(fs: &dyn FileSystem, data_dir: &Path) -> Result<(), BrokerError> {
    let names = fs
        .list_dir(data_dir)
        .map_err(|e| LogError::io("list", data_dir, e))?;
    for name in names {
        if parse_set_aside_dir_name(&name, DELETE_SUFFIX).is_some() {
            let path = data_dir.join(&name);
            tracing::info!(dir = %path.display(), "removing directory marked for deletion");
            fs.remove_dir_all(&path)
                .map_err(|e| LogError::io("remove", &path, e))?;
        }
    }
    Ok(())
}
