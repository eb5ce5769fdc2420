//! Preferred leader elections (Kafka's ElectLeaders): each partition's
//! leadership moved to its preferred replica, the first of its replica
//! list, where that replica is in sync.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;

use super::Service;
use super::admin::proposed;
use crate::replication::controller::{Cluster, Command};

/// How a preferred election of one partition ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Election {
    /// Its preferred replica leads it now.
    Elected,
    /// Its preferred replica led it already (always so on a broker alone).
    NotNeeded,
    /// Its preferred replica is not in sync with the leader (or the
    /// partition has no leader): electing it would lose records or fail.
    PreferredNotInSync,
    /// No such topic or partition.
    Unknown,
    /// An unclean election was asked for a partition without a leader: a
    /// partition group elects only a replica that holds every committed
    /// record, so none is eligible beyond those Raft would elect anyway.
    NoEligibleLeader,
    /// The election was called but its result was not seen within the
    /// time allowed (it may still come).
    TimedOut,
    /// The election could not be asked for (the controller refused or did
    /// not answer): the error and why.
    Failed(ErrorCode, String),
}

/// One partition's preferred election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionOutcome {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: u32,
    /// How it ended.
    pub outcome: Election,
}

/// The longest an election request waits for its elections, whatever the
/// client asked: a partition's election is tried for ten seconds
/// ([`crate::replication::manager`]).
const ELECTION_WAIT_MAX: Duration = Duration::from_secs(15);

impl Service {
    /// Moves the leadership of each partition of `asked` (`None`: every
    /// partition of every topic) to its preferred replica, and waits up to
    /// `wait` (at most 15 s) for the partitions' leaders to report it. A
    /// partition a preferred replica leads already is
    /// [`Election::NotNeeded`]; one whose preferred replica the leader last
    /// reported out of sync is [`Election::PreferredNotInSync`]. The others
    /// are asked for through the controller ([`Command::ElectPreferred`]);
    /// each preferred replica calls an election once it holds all its
    /// leader sent.
    ///
    /// A broker alone leads every partition it has: each is `NotNeeded`.
    pub async fn elect_preferred_leaders(
        self: &Arc<Self>,
        asked: Option<Vec<(String, u32)>>,
        wait: Duration,
    ) -> Vec<ElectionOutcome> {
        let Some(cluster) = self.cluster.get() else {
            return self.elect_alone(asked);
        };
        let asked = asked.unwrap_or_else(|| {
            cluster.with_metadata(|m| {
                m.topics
                    .values()
                    .flat_map(|t| (0..t.replicas.len() as u32).map(|p| (t.name.clone(), p)))
                    .collect()
            })
        });
        // Per asked partition: its (topic id, preferred replica), or how it
        // ended already.
        let looked: Vec<Result<(u64, u64), Election>> = cluster.with_metadata(|m| {
            asked
                .iter()
                .map(|(topic, partition)| {
                    let t = m.topics.get(topic).ok_or(Election::Unknown)?;
                    let replicas = t
                        .replicas
                        .get(*partition as usize)
                        .ok_or(Election::Unknown)?;
                    let preferred = *replicas.first().ok_or(Election::Unknown)?;
                    match m.leaders.get(&t.topic_id).and_then(|l| l.get(partition)) {
                        Some(r) if r.leader == preferred => Err(Election::NotNeeded),
                        Some(r) if r.isr.contains(&preferred) => Ok((t.topic_id, preferred)),
                        _ => Err(Election::PreferredNotInSync),
                    }
                })
                .collect()
        });
        // (topic id, partition, preferred replica) of each election to call.
        let wanted: Vec<(u64, u32, u64)> = looked
            .iter()
            .zip(&asked)
            .filter_map(|(l, (_, p))| l.as_ref().ok().map(|&(id, preferred)| (id, *p, preferred)))
            .collect();
        let mut failed = None;
        if !wanted.is_empty() {
            let asked_at_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            let command = Command::ElectPreferred {
                partitions: wanted.iter().map(|&(id, p, _)| (id, p)).collect(),
                asked_at_ms,
            };
            if let Err((code, message)) = proposed(cluster.propose(command).await) {
                tracing::warn!(%code, %message, "could not ask for preferred leader elections");
                failed = Some((code, message));
            }
        }
        let led = match failed {
            Some(_) => BTreeSet::new(),
            None => wait_for_preferred(cluster, &wanted, wait.min(ELECTION_WAIT_MAX)).await,
        };
        asked
            .into_iter()
            .zip(looked)
            .map(|((topic, partition), l)| {
                let outcome = match (l, &failed) {
                    (Err(done), _) => done,
                    (Ok(_), Some((code, why))) => Election::Failed(*code, why.clone()),
                    (Ok((id, _)), None) if led.contains(&(id, partition)) => Election::Elected,
                    (Ok(_), None) => Election::TimedOut,
                };
                ElectionOutcome {
                    topic,
                    partition,
                    outcome,
                }
            })
            .collect()
    }

    /// [`Service::elect_preferred_leaders`] on a broker alone.
    fn elect_alone(&self, asked: Option<Vec<(String, u32)>>) -> Vec<ElectionOutcome> {
        self.each_partition(asked, |_, _| Election::NotNeeded)
    }

    /// Unclean elections (Kafka's ElectLeaders, type 1) are never run: a
    /// partition group elects only a replica that holds every committed
    /// record. Each partition of `asked` (`None`: every partition) with a
    /// leader is [`Election::NotNeeded`], one without is
    /// [`Election::NoEligibleLeader`].
    pub fn elect_unclean_leaders(&self, asked: Option<Vec<(String, u32)>>) -> Vec<ElectionOutcome> {
        self.each_partition(asked, |topic, partition| {
            match self.leadership.leader(topic, partition) {
                None | Some(Some(_)) => Election::NotNeeded,
                Some(None) => Election::NoEligibleLeader,
            }
        })
    }

    /// `outcome` of each partition of `asked` (`None`: every partition the
    /// topic store lists) that exists, [`Election::Unknown`] for the others.
    fn each_partition(
        &self,
        asked: Option<Vec<(String, u32)>>,
        outcome: impl Fn(&str, u32) -> Election,
    ) -> Vec<ElectionOutcome> {
        let asked = asked.unwrap_or_else(|| {
            self.topics
                .list()
                .iter()
                .flat_map(|t| (0..t.partition_count()).map(|p| (t.name.clone(), p)))
                .collect()
        });
        asked
            .into_iter()
            .map(|(topic, partition)| {
                let outcome = match self.topics.has_partition(&topic, partition) {
                    true => outcome(&topic, partition),
                    false => Election::Unknown,
                };
                ElectionOutcome {
                    topic,
                    partition,
                    outcome,
                }
            })
            .collect()
    }
}

/// Waits up to `wait` until the leaders reported to the controller of
/// `wanted`'s partitions (topic id, partition, preferred replica) are their
/// preferred replicas; returns those whose are at the end. Looks again at
/// each applied controller entry (leaders report through it).
async fn wait_for_preferred(
    cluster: &Cluster,
    wanted: &[(u64, u32, u64)],
    wait: Duration,
) -> BTreeSet<(u64, u32)> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut applied = cluster.applied();
    loop {
        let led: BTreeSet<(u64, u32)> = cluster.with_metadata(|m| {
            wanted
                .iter()
                .filter(|&&(id, p, preferred)| {
                    m.leaders
                        .get(&id)
                        .and_then(|l| l.get(&p))
                        .is_some_and(|r| r.leader == preferred)
                })
                .map(|&(id, p, _)| (id, p))
                .collect()
        });
        if led.len() == wanted.len() {
            return led;
        }
        match tokio::time::timeout_at(deadline, applied.changed()).await {
            Ok(Ok(())) => {}
            _ => return led,
        }
    }
}
