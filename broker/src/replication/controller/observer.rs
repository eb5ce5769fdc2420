//! The topic store follows the cluster metadata: a node lists a topic when
//! it holds at least one replica of it, creates the directories of only
//! the partitions it holds a replica of (also of partitions added later),
//! and deletes them when the topic is deleted.

use std::sync::Weak;

use sluice_protocol::wire::ErrorCode;

use super::{MetadataEvent, MetadataObserver, TopicMeta};
use crate::service::Service;
use crate::topics::Hosting;

/// Applies metadata changes to a service's topic store.
#[derive(Debug)]
pub struct TopicStoreObserver {
    service: Weak<Service>,
}

impl TopicStoreObserver {
    /// Follows the metadata into `service`'s topics.
    pub fn new(service: Weak<Service>) -> Self {
        TopicStoreObserver { service }
    }
}

impl MetadataObserver for TopicStoreObserver {
    fn changed(&self, local: u64, event: &MetadataEvent) {
        let Some(svc) = self.service.upgrade() else {
            return;
        };
        match event {
            MetadataEvent::TopicCreated(t)
            | MetadataEvent::PartitionsAdded(t, _)
            | MetadataEvent::TopicConfigChanged(t) => {
                hold(&svc, local, t);
            }
            // Leadership only: nothing for the topic store.
            MetadataEvent::PreferredElection { .. } => {}
            MetadataEvent::TopicDeleted(t) => {
                match svc.topics.delete(&t.name) {
                    Ok(()) => {}
                    Err(e) if e.code() == ErrorCode::UnknownTopicOrPartition => {}
                    Err(e) => {
                        tracing::error!(topic = %t.name, error = %e, "could not delete a topic")
                    }
                }
                // Every node, hosting the topic or not: the groups it
                // coordinates may hold offsets of it. Their tombstones are
                // replicated writes that may wait for a commit, so they do
                // not hold up the controller's apply.
                let name = t.name.clone();
                let forget = move || {
                    if let Err(e) = svc.offsets.forget_topics(|n| n != name.as_str()) {
                        tracing::warn!(topic = %name, error = %e, "could not forget committed offsets of deleted topic");
                    }
                };
                match tokio::runtime::Handle::try_current() {
                    Ok(rt) => drop(rt.spawn_blocking(forget)),
                    Err(_) => forget(),
                }
            }
        }
    }
}

/// Makes `svc`'s topic store hold `t` as the metadata has it, when this
/// node holds a replica of it: created with the partitions hosted here;
/// or, held with fewer partitions (partitions were added, maybe while this
/// node was away), raised to its count; and held with other settings, given
/// its settings. Held as it is: nothing to do. A failure is logged; the
/// replica manager calls this again when it opens the topic's groups (at
/// each start), so a node that could not follow (full disk, a limit since
/// raised) catches up then. Blocking.
pub(crate) fn hold(svc: &Service, local: u64, t: &TopicMeta) {
    if !t.hosted_on(local) {
        return;
    }
    let hosted = t.partitions_on(local);
    let count = t.replicas.len() as u32;
    let Some(held) = svc.topics.topic(&t.name) else {
        let r = svc.topics.create_hosting(
            &t.name,
            t.kafka_id(),
            count,
            Hosting::Only(&hosted),
            &t.config,
        );
        return followed(t, "created hosted topic", r);
    };
    if held.partition_count() < count {
        let r = svc
            .topics
            .add_partitions(&t.name, count, Hosting::Only(&hosted), false);
        // The manager's catch-up and this observer may both follow one
        // change: the one that comes second finds the partitions added.
        let raced = r.is_err()
            && svc
                .topics
                .topic(&t.name)
                .is_some_and(|now| now.partition_count() >= count);
        if !raced {
            followed(t, "added hosted partitions", r);
        }
    }
    if held.config != t.config {
        let r = svc
            .topics
            .alter_config(&t.name, |_| Ok(t.config.clone()), false);
        followed(t, "changed the settings of a hosted topic", r);
    }
}

fn followed(t: &TopicMeta, what: &str, r: Result<(), crate::error::BrokerError>) {
    match r {
        Ok(()) => tracing::info!(topic = %t.name, topic_id = t.topic_id, "{what}"),
        Err(e) if e.code() == ErrorCode::TopicAlreadyExists => {}
        Err(e) => {
            tracing::error!(topic = %t.name, error = %e, "could not follow the metadata of a hosted topic")
        }
    }
}
