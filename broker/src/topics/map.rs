//! The hosted topics by name, with their names by id beside them, so that
//! a request naming topics by id (Kafka's Fetch from v13, Metadata v12,
//! DeleteTopics v6) looks each up in O(1) instead of walking every topic.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Topic, TopicId};

/// Topics by name (read through `Deref`), and by id. Changed only through
/// [`TopicMap::insert`] and [`TopicMap::remove`], which keep the two in
/// step.
#[derive(Debug, Default)]
pub(super) struct TopicMap {
    by_name: BTreeMap<String, Arc<Topic>>,
    names: HashMap<TopicId, String>,
}

impl TopicMap {
    /// Puts `topic` under its name, in place of any topic of that name.
    pub(super) fn insert(&mut self, topic: Arc<Topic>) {
        if let Some(old) = self.by_name.insert(topic.name.clone(), Arc::clone(&topic))
            && old.id != topic.id
        {
            self.names.remove(&old.id);
        }
        self.names.insert(topic.id, topic.name.clone());
    }

    /// Takes out the topic named `name`.
    pub(super) fn remove(&mut self, name: &str) -> Option<Arc<Topic>> {
        let topic = self.by_name.remove(name)?;
        self.names.remove(&topic.id);
        Some(topic)
    }

    /// The name of the topic whose id is `id`.
    pub(super) fn name_of(&self, id: &TopicId) -> Option<&str> {
        self.names.get(id).map(String::as_str)
    }
}

impl std::ops::Deref for TopicMap {
    type Target = BTreeMap<String, Arc<Topic>>;

    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, id: u8) -> Arc<Topic> {
        Arc::new(Topic {
            name: name.into(),
            id: TopicId([id; 16]),
            config: Default::default(),
            partitions: Vec::new(),
        })
    }

    #[test]
    fn ids_follow_the_topics_they_name() {
        let mut m = TopicMap::default();
        m.insert(topic("a", 1));
        m.insert(topic("b", 2));
        assert_eq!(m.name_of(&TopicId([1; 16])), Some("a"));
        assert_eq!(m.name_of(&TopicId([2; 16])), Some("b"));
        // Settings changed: the same topic put back under its name.
        m.insert(topic("a", 1));
        assert_eq!(m.name_of(&TopicId([1; 16])), Some("a"));
        // Another topic under the same name: the old id names nothing.
        m.insert(topic("a", 3));
        assert_eq!(m.name_of(&TopicId([1; 16])), None);
        assert_eq!(m.name_of(&TopicId([3; 16])), Some("a"));
        assert_eq!(m.remove("a").map(|t| t.id), Some(TopicId([3; 16])));
        assert_eq!(m.name_of(&TopicId([3; 16])), None);
        assert!(m.remove("a").is_none());
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b"]);
    }
}
