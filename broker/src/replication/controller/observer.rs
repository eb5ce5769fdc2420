//! The topic store follows the cluster metadata: a node creates a topic's
//! local directories when it holds at least one replica of the topic, and
//! deletes them when the topic is deleted.
//!
//! The granularity is the topic: until partitions are replicated one by
//! one, a node holding a replica of any partition of a topic holds all of
//! its partition directories.

use std::sync::Weak;

use sluice_protocol::wire::ErrorCode;

use super::{MetadataEvent, MetadataObserver};
use crate::service::Service;

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
            MetadataEvent::TopicCreated(t) => {
                if !t.hosted_on(local) {
                    return;
                }
                match svc
                    .topics
                    .create(&t.name, t.replicas.len() as u32, &t.config)
                {
                    Ok(()) => {
                        tracing::info!(topic = %t.name, topic_id = t.topic_id, "created hosted topic")
                    }
                    Err(e) if e.code() == ErrorCode::TopicAlreadyExists => {}
                    Err(e) => {
                        tracing::error!(topic = %t.name, error = %e, "could not create a hosted topic")
                    }
                }
            }
            MetadataEvent::TopicDeleted(t) => match svc.topics.delete(&t.name) {
                Ok(()) => {
                    if let Err(e) = svc.offsets.forget_topics(|n| n != t.name.as_str()) {
                        tracing::warn!(topic = %t.name, error = %e, "could not forget committed offsets of deleted topic");
                    }
                }
                Err(e) if e.code() == ErrorCode::UnknownTopicOrPartition => {}
                Err(e) => {
                    tracing::error!(topic = %t.name, error = %e, "could not delete a topic")
                }
            },
        }
    }
}
