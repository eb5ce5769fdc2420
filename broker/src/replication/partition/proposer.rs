//! Group commit of a partition group's appends: produce requests queue up
//! per partition, and one proposer task merges those waiting into one Raft
//! entry (docs/replication.md, "Group commit").
//!
//! The proposer takes the first queued request and every other one already
//! waiting, up to [`MERGE_BYTES`], proposes them as one entry of several
//! [`Part`]s, and proposes the next entry only once the leader's local
//! append of this one is done and fewer than [`MAX_UNCOMMITTED`] entries
//! wait for their commit: while entries are appended and replicated, the
//! next accumulates. A lone request is proposed at once (no timer).

use std::sync::Arc;

use bytes::BytesMut;
use openraft::Raft;
use openraft::error::ClientWriteError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::PartitionRaft;
use super::facade::ReplicationError;
use super::payload::{Origin, Part, Records, Request, Response};
use super::store::Shared;
use crate::log::LogError;
use crate::partition::Acks;

/// The most record bytes merged into one entry. A request larger than this
/// is proposed alone.
pub const MERGE_BYTES: usize = 1 << 20;

/// The most entries of one partition proposed and not yet committed: the
/// next waits for the oldest to commit.
///
/// openraft 0.9's core appends each proposed entry to the leader's log and
/// waits for its flush before it reads its next message, and it reads
/// proposals in runs of many before it looks at its followers' answers. A
/// proposer that proposed again as soon as the local write was done kept a
/// proposal waiting at every turn: with acks=leader (answered at that
/// write) the core went from flush to flush for hundreds of milliseconds at
/// a time while the followers' answers, and with them the commit and what
/// consumers see, waited (docs/replication.md, "Uncommitted entries in
/// flight"). With this bound the core finds no proposal waiting after at
/// most this many flushes. Entries still merge every request that queued
/// meanwhile, up to [`MERGE_BYTES`] each.
pub(crate) const MAX_UNCOMMITTED: usize = 4;

/// The most requests queued per partition (then appenders wait).
pub const QUEUE_REQUESTS: usize = 4096;

/// The most record bytes queued or being appended per partition (then
/// appenders wait). A request larger than this counts as this much.
pub const QUEUE_BYTES: usize = 64 << 20;

/// What an appender waits for.
type Reply = oneshot::Sender<Result<Response, ReplicationError>>;

/// One queued produce request.
struct Queued {
    records: BytesMut,
    acks: Acks,
    reply: Reply,
    /// Its share of [`QUEUE_BYTES`], given back once appended locally.
    _bytes: OwnedSemaphorePermit,
}

/// The queue of one partition group (held by its `ReplicatedPartition`;
/// dropping it ends the proposer once the queue is drained).
#[derive(Debug)]
pub(crate) struct Proposer {
    queue: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
}

impl Proposer {
    /// Starts the proposer task of `raft` (this is node `node_id`).
    pub(crate) fn start(raft: Raft<PartitionRaft>, shared: Arc<Shared>, node_id: u64) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE_REQUESTS);
        let task = Task {
            raft,
            shared,
            node_id,
            next_seq: 0,
            uncommitted: Arc::new(Semaphore::new(MAX_UNCOMMITTED)),
        };
        tokio::spawn(task.run(rx));
        Proposer {
            queue,
            bytes: Arc::new(Semaphore::new(QUEUE_BYTES)),
        }
    }

    /// Queues `records` (waiting while the queue is full) and waits for the
    /// answer `acks` asks for.
    pub(crate) async fn append(
        &self,
        records: BytesMut,
        acks: Acks,
    ) -> Result<Response, ReplicationError> {
        let share = u32::try_from(records.len().min(QUEUE_BYTES)).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.bytes)
            .acquire_many_owned(share)
            .await
            .map_err(|_| ReplicationError::Shutdown)?;
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Queued {
                records,
                acks,
                reply,
                _bytes: permit,
            })
            .await
            .map_err(|_| ReplicationError::Shutdown)?;
        answer.await.unwrap_or(Err(ReplicationError::Shutdown))
    }
}

/// Why an entry did not commit, for every part of it.
#[derive(Clone)]
enum Failure {
    NotLeader(Option<u64>),
    Shutdown,
    Raft(String),
}

impl Failure {
    fn error(&self) -> ReplicationError {
        match self {
            Failure::NotLeader(leader) => ReplicationError::NotLeader { leader: *leader },
            Failure::Shutdown => ReplicationError::Shutdown,
            Failure::Raft(m) => ReplicationError::Raft(m.clone()),
        }
    }
}

type CommitResult = Result<
    Result<
        openraft::raft::ClientWriteResponse<PartitionRaft>,
        ClientWriteError<u64, openraft::BasicNode>,
    >,
    oneshot::error::RecvError,
>;

fn commit_failure(r: &CommitResult) -> Option<Failure> {
    match r {
        Ok(Ok(_)) => None,
        Ok(Err(ClientWriteError::ForwardToLeader(f))) => Some(Failure::NotLeader(f.leader_id)),
        Ok(Err(e)) => Some(Failure::Raft(e.to_string())),
        Err(_) => Some(Failure::Shutdown),
    }
}

/// A part's answer from its local append result.
fn local_answer(local: Result<Response, LogError>) -> Result<Response, ReplicationError> {
    local.map_err(ReplicationError::Log)
}

/// The proposer task.
struct Task {
    raft: Raft<PartitionRaft>,
    shared: Arc<Shared>,
    node_id: u64,
    next_seq: u64,
    /// [`MAX_UNCOMMITTED`] slots, each held from a proposal to its commit.
    uncommitted: Arc<Semaphore>,
}

impl Task {
    async fn run(mut self, mut rx: mpsc::Receiver<Queued>) {
        let mut carry: Option<Queued> = None;
        loop {
            let first = match carry.take() {
                Some(q) => q,
                None => match rx.recv().await {
                    Some(q) => q,
                    None => return,
                },
            };
            let mut bytes = first.records.len();
            let mut group = vec![first];
            while bytes < MERGE_BYTES {
                match rx.try_recv() {
                    Ok(q) if bytes + q.records.len() <= MERGE_BYTES => {
                        bytes += q.records.len();
                        group.push(q);
                    }
                    Ok(q) => {
                        carry = Some(q);
                        break;
                    }
                    Err(_) => break,
                }
            }
            self.propose(group, bytes).await;
        }
    }

    /// Proposes `group` (`bytes` record bytes in all) as one entry, once
    /// fewer than [`MAX_UNCOMMITTED`] entries wait for their commit, and
    /// returns once the leader's local append of it is done (or it failed):
    /// acks=leader/none parts are answered then, acks=all parts at the
    /// commit, by a task of their own that also frees the entry's slot.
    async fn propose(&mut self, group: Vec<Queued>, bytes: usize) {
        // Never closed; a closed semaphore would only lift the bound.
        let slot = Arc::clone(&self.uncommitted).acquire_owned().await.ok();
        let n = group.len();
        let mut parts = Vec::with_capacity(n);
        let mut locals = Vec::with_capacity(n);
        let mut waiting = Vec::with_capacity(n);
        let mut merged = if n == 1 {
            BytesMut::new()
        } else {
            BytesMut::with_capacity(bytes)
        };
        let mut seqs = Vec::with_capacity(n);
        {
            let mut waiters = self.shared.waiters.lock();
            for q in group {
                let seq = self.next_seq;
                self.next_seq += 1;
                let (tx, rx) = oneshot::channel();
                waiters.insert(seq, tx);
                seqs.push(seq);
                locals.push(rx);
                parts.push(Part {
                    len: q.records.len() as u64,
                    origin: Some(Origin {
                        node: self.node_id,
                        seq,
                    }),
                });
                if n == 1 {
                    // A lone request: its buffer is the entry, no copy.
                    merged = q.records;
                } else {
                    merged.extend_from_slice(&q.records);
                }
                waiting.push((q.acks, q.reply, q._bytes));
            }
        }
        let request = Request {
            records: Records::Inline(merged.freeze()),
            parts,
        };
        let forget = |seqs: &[u64]| {
            let mut waiters = self.shared.waiters.lock();
            for s in seqs {
                waiters.remove(s);
            }
        };
        let mut commit = match self.raft.client_write_ff(request).await {
            Ok(rx) => rx,
            Err(_) => {
                forget(&seqs);
                for (_, reply, _) in waiting {
                    let _ = reply.send(Err(ReplicationError::Shutdown));
                }
                return;
            }
        };
        // Every part's local result comes from one storage write.
        let all_local = futures::future::join_all(locals);
        tokio::pin!(all_local);
        let results = tokio::select! {
            biased;
            results = &mut all_local => results,
            r = &mut commit => {
                // Answered before it was appended here: the entry failed
                // (not the leader, shut down), or the local results were
                // lost, and then the entry's own answer stands for each.
                forget(&seqs);
                let failure = commit_failure(&r);
                for (_, reply, _) in waiting {
                    let answer = match (&failure, &r) {
                        (Some(f), _) => Err(f.error()),
                        (None, Ok(Ok(resp))) if !resp.data.rejected => Ok(resp.data),
                        _ => Err(ReplicationError::Raft(
                            "the log refused the records".to_owned(),
                        )),
                    };
                    let _ = reply.send(answer);
                }
                return;
            }
        };
        let mut at_commit = Vec::new();
        for (result, (acks, reply, permit)) in results.into_iter().zip(waiting) {
            drop(permit);
            let local = result.unwrap_or_else(|_| {
                Err(LogError::Io {
                    op: "append",
                    path: self.shared.partition.log.dir().to_owned(),
                    source: std::io::Error::other("the local append was not reported"),
                })
            });
            if acks == Acks::All {
                at_commit.push((local, reply));
            } else {
                let _ = reply.send(local_answer(local));
            }
        }
        tokio::spawn(async move {
            // Awaited even with nothing to answer: the slot is freed at the
            // commit (or its failure), and openraft warns of every answer
            // whose receiver is gone.
            let r = commit.await;
            drop(slot);
            let failure = commit_failure(&r);
            for (local, reply) in at_commit {
                let answer = match &failure {
                    None => local_answer(local),
                    Some(f) => Err(f.error()),
                };
                let _ = reply.send(answer);
            }
        });
    }
}
