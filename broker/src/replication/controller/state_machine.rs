//! The controller's state machine: [`Metadata`] in memory, its snapshot in
//! `snapshot` (layout in [`super::files`]), and the observer told of every
//! change on this node.

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use sluice_protocol::wire::ErrorCode;
use tokio::sync::watch;

use super::files::{self, OBSERVED_MAGIC, SNAPSHOT_MAGIC};
use super::state::{Metadata, MetadataEvent, Outcome};
use super::{MetadataObserver, TypeConfig};

/// What the snapshot file holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSnapshot {
    /// openraft's description of it.
    pub meta: SnapshotMeta<u64, BasicNode>,
    /// postcard [`Metadata`].
    pub data: Vec<u8>,
}

struct Applied {
    last: Option<LogId<u64>>,
    membership: StoredMembership<u64, BasicNode>,
    snapshot: Option<StoredSnapshot>,
    snapshots_built: u64,
}

/// The state machine; clones share it.
#[derive(Clone)]
pub struct StateMachine {
    dir: PathBuf,
    applied: Arc<Mutex<Applied>>,
    /// The metadata, readable by anyone.
    pub metadata: Arc<RwLock<Metadata>>,
    observer: Arc<dyn MetadataObserver>,
    local: u64,
    applied_index: Arc<watch::Sender<u64>>,
    /// The last log index whose changes the observer has made (durably,
    /// in file `observed`): entries replayed at a restart up to it are not
    /// told again, so a replayed deletion never removes a topic created
    /// again later under the same name.
    observed: Arc<std::sync::atomic::AtomicU64>,
}

fn sm_err(e: impl std::fmt::Display) -> StorageError<u64> {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

impl StateMachine {
    /// Loads the snapshot in `dir`, if any, and tells `observer` about its
    /// topics (they may be new to this node's topic store). Blocking.
    pub fn open(
        dir: PathBuf,
        local: u64,
        observer: Arc<dyn MetadataObserver>,
    ) -> std::io::Result<Self> {
        let snapshot: Option<StoredSnapshot> =
            files::read_single(&dir.join("snapshot"), SNAPSHOT_MAGIC)?
                .map(|p| postcard::from_bytes(&p).map_err(std::io::Error::other))
                .transpose()?;
        let (metadata, last, membership) = match &snapshot {
            Some(s) => (
                Metadata::decode(&s.data).map_err(std::io::Error::other)?,
                s.meta.last_log_id,
                s.meta.last_membership.clone(),
            ),
            None => (Metadata::default(), None, StoredMembership::default()),
        };
        let observed = files::read_single(&dir.join("observed"), OBSERVED_MAGIC)?
            .and_then(|p| p.try_into().ok())
            .map_or(0, u64::from_be_bytes);
        // A snapshot beyond what the topic store has followed (not written
        // by this node's own applies): make its topics exist. Otherwise the
        // topic store is already past it, and entries after it may have
        // deleted some of its topics.
        if last.is_some_and(|l| l.index > observed) {
            for e in Metadata::default().diff(&metadata) {
                observer.changed(local, &e);
            }
        }
        let (tx, _) = watch::channel(last.map_or(0, |l| l.index));
        Ok(StateMachine {
            dir,
            applied: Arc::new(Mutex::new(Applied {
                last,
                membership,
                snapshot,
                snapshots_built: 0,
            })),
            metadata: Arc::new(RwLock::new(metadata)),
            observer,
            local,
            applied_index: Arc::new(tx),
            observed: Arc::new(observed.into()),
        })
    }

    /// The index of the last entry the stored snapshot covers, if any.
    pub fn snapshot_index(&self) -> Option<u64> {
        self.applied
            .lock()
            .snapshot
            .as_ref()
            .and_then(|s| s.meta.last_log_id)
            .map(|l| l.index)
    }

    /// Follows the index of the last applied entry.
    pub fn applied_index(&self) -> watch::Receiver<u64> {
        self.applied_index.subscribe()
    }

    /// The last log index whose changes the topic store has made (see the
    /// field): until the applied index reaches it again after a restart,
    /// the metadata is older than the topic store.
    pub fn observed_index(&self) -> Arc<std::sync::atomic::AtomicU64> {
        Arc::clone(&self.observed)
    }

    /// Tells the observer, on the blocking pool, and waits for it; then
    /// records `up_to` as observed.
    async fn tell(&self, events: Vec<MetadataEvent>, up_to: Option<u64>) {
        if events.is_empty() {
            return;
        }
        let observer = Arc::clone(&self.observer);
        let local = self.local;
        let path = self.dir.join("observed");
        let r = tokio::task::spawn_blocking(move || {
            for e in &events {
                observer.changed(local, e);
            }
            if let Some(i) = up_to {
                if let Err(e) = files::write_single(&path, OBSERVED_MAGIC, &i.to_be_bytes()) {
                    tracing::warn!(error = %e, "could not record the observed controller index");
                }
            }
        })
        .await;
        if let Some(i) = up_to {
            self.observed
                .fetch_max(i, std::sync::atomic::Ordering::Relaxed);
        }
        if let Err(e) = r {
            tracing::error!(error = %e, "metadata observer failed");
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<u64>> {
        let data = postcard::to_allocvec(&*self.metadata.read()).map_err(sm_err)?;
        let (meta, payload) = {
            let mut a = self.applied.lock();
            a.snapshots_built += 1;
            let meta = SnapshotMeta {
                last_log_id: a.last,
                last_membership: a.membership.clone(),
                snapshot_id: format!("{}-{}", a.last.map_or(0, |l| l.index), a.snapshots_built),
            };
            let stored = StoredSnapshot {
                meta: meta.clone(),
                data: data.clone(),
            };
            (meta, postcard::to_allocvec(&stored).map_err(sm_err)?)
        };
        let path = self.dir.join("snapshot");
        tokio::task::spawn_blocking(move || files::write_single(&path, SNAPSHOT_MAGIC, &payload))
            .await
            .map_err(sm_err)?
            .map_err(sm_err)?;
        self.applied.lock().snapshot = Some(StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        });
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, StoredMembership<u64, BasicNode>), StorageError<u64>> {
        let a = self.applied.lock();
        Ok((a.last, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Outcome>, StorageError<u64>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut outcomes = Vec::new();
        let mut events = Vec::new();
        let mut last_index = None;
        let observed = self.observed.load(std::sync::atomic::Ordering::Relaxed);
        {
            let mut a = self.applied.lock();
            let mut m = self.metadata.write();
            for e in entries {
                a.last = Some(e.log_id);
                last_index = Some(e.log_id.index);
                let none = Outcome {
                    code: ErrorCode::None,
                    message: None,
                };
                match e.payload {
                    EntryPayload::Blank => outcomes.push(none),
                    EntryPayload::Normal(cmd) => {
                        let (o, ev) = m.apply(&cmd);
                        if e.log_id.index > observed {
                            events.extend(ev);
                        }
                        outcomes.push(o);
                    }
                    EntryPayload::Membership(mem) => {
                        let mut nodes: Vec<u64> = mem.voter_ids().collect();
                        nodes.sort_unstable();
                        m.nodes = nodes;
                        a.membership = StoredMembership::new(Some(e.log_id), mem);
                        outcomes.push(none);
                    }
                }
            }
        }
        // The topic store follows before anyone is told the entry applied.
        self.tell(events, last_index).await;
        if let Some(i) = last_index {
            self.applied_index.send_replace(i);
        }
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> StateMachine {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<u64, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let new = Metadata::decode(&data).map_err(sm_err)?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data,
        };
        let payload = postcard::to_allocvec(&stored).map_err(sm_err)?;
        let path = self.dir.join("snapshot");
        tokio::task::spawn_blocking(move || files::write_single(&path, SNAPSHOT_MAGIC, &payload))
            .await
            .map_err(sm_err)?
            .map_err(sm_err)?;
        let events = {
            let mut a = self.applied.lock();
            let mut m = self.metadata.write();
            let events = m.diff(&new);
            *m = new;
            a.last = meta.last_log_id;
            a.membership = meta.last_membership.clone();
            a.snapshot = Some(stored);
            events
        };
        self.tell(events, meta.last_log_id.map(|l| l.index)).await;
        self.applied_index
            .send_replace(meta.last_log_id.map_or(0, |l| l.index));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<u64>> {
        Ok(self.applied.lock().snapshot.clone().map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use openraft::{CommittedLeaderId, Membership};

    use super::*;
    use crate::replication::controller::Command;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl MetadataObserver for Recorder {
        fn changed(&self, _local: u64, event: &MetadataEvent) {
            self.0.lock().push(match event {
                MetadataEvent::TopicCreated(t) => format!("+{}", t.name),
                MetadataEvent::TopicDeleted(t) => format!("-{}", t.name),
                MetadataEvent::PartitionsAdded(t, _) => format!("{}:{}", t.name, t.replicas.len()),
                MetadataEvent::TopicConfigChanged(t) => format!("~{}", t.name),
                MetadataEvent::PreferredElection { partitions, .. } => {
                    format!("elect {partitions:?}")
                }
            });
        }
    }

    fn entry(index: u64, payload: EntryPayload<TypeConfig>) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload,
        }
    }

    fn log() -> Vec<Entry<TypeConfig>> {
        let members = Membership::new(
            vec![BTreeSet::from([1])],
            BTreeMap::from([(1, BasicNode::default())]),
        );
        vec![
            entry(1, EntryPayload::Membership(members)),
            entry(
                2,
                EntryPayload::Normal(Command::CreateTopic {
                    name: "a".into(),
                    partitions: 1,
                    replication_factor: 1,
                    config: Default::default(),
                }),
            ),
            entry(
                3,
                EntryPayload::Normal(Command::DeleteTopic { name: "a".into() }),
            ),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_does_not_repeat_changes_already_made() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let mut sm = StateMachine::open(dir.path().to_owned(), 1, rec.clone()).unwrap();
        let mut entries = log();
        let delete = entries.pop().unwrap();
        sm.apply(entries).await.unwrap();
        sm.build_snapshot().await.unwrap();
        sm.apply([delete]).await.unwrap();
        assert_eq!(*rec.0.lock(), ["+a", "-a"]);

        // Restart: the snapshot still lists `a`, and openraft replays the
        // deletion after it; neither reaches the topic store again.
        let rec = Arc::new(Recorder::default());
        let mut sm = StateMachine::open(dir.path().to_owned(), 1, rec.clone()).unwrap();
        assert!(sm.metadata.read().topics.contains_key("a"));
        sm.apply(log().into_iter().skip(2)).await.unwrap();
        assert!(rec.0.lock().is_empty(), "{:?}", rec.0.lock());
        assert!(sm.metadata.read().topics.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_snapshot_beyond_the_followed_changes_makes_its_topics_exist() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Arc::new(Recorder::default());
        let mut sm = StateMachine::open(dir.path().to_owned(), 1, rec.clone()).unwrap();
        let mut entries = log();
        entries.pop();
        sm.apply(entries).await.unwrap();
        sm.build_snapshot().await.unwrap();
        // The node crashed before it recorded what it followed.
        std::fs::remove_file(dir.path().join("observed")).unwrap();
        let rec = Arc::new(Recorder::default());
        StateMachine::open(dir.path().to_owned(), 1, rec.clone()).unwrap();
        assert_eq!(*rec.0.lock(), ["+a"]);
    }
}
