//! Who leads what: the one seam through which the service layer, the
//! native Metadata answer and the Kafka front-end learn about the cluster.
//!
//! A broker without `--cluster` uses [`SingleNode`]: it is node 0, the only
//! broker, and leads every partition it holds. The replication layer
//! provides the cluster's implementation of [`Leadership`].

use std::sync::OnceLock;

use sluice_protocol::wire::ErrorCode;

/// One broker of the cluster, as clients should reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Node id (0 for a broker without `--cluster`).
    pub id: u64,
    /// Native listener, `host:port`.
    pub listen: String,
    /// Kafka listener, `host:port`, if the broker has one.
    pub kafka: Option<String>,
}

/// The leadership of one replicated partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLeadership {
    /// Node id of the leader; `None` while there is none (an election).
    pub leader: Option<u64>,
    /// The leader's epoch (its Raft term).
    pub leader_epoch: u64,
    /// Node ids of every replica.
    pub replicas: Vec<u64>,
    /// Node ids of the replicas in sync with the leader.
    pub isr: Vec<u64>,
}

/// Node ids are u64 everywhere.
pub trait Leadership: std::fmt::Debug + Send + Sync {
    /// This broker's node id (0 for a broker without `--cluster`).
    fn local_node(&self) -> u64;
    /// Every broker of the cluster, for Metadata (just this one without
    /// `--cluster`).
    fn brokers(&self) -> Vec<BrokerInfo>;
    /// The brokers of [`Leadership::brokers`] this one has not been able
    /// to reach for a while (see
    /// [`crate::replication::controller::BROKER_SESSION_TIMEOUT`]): Kafka
    /// clients are not told of them. Never this broker.
    fn unreachable(&self) -> Vec<u64> {
        Vec::new()
    }
    /// The cluster's id, for Kafka's Metadata answers; `None`
    /// without `--cluster`.
    fn cluster_id(&self) -> Option<String> {
        None
    }
    /// Leader, replicas, in-sync replicas and leader epoch of a partition;
    /// `None` means "not replicated: this broker holds it and leads it"
    /// (single-broker mode).
    fn partition(&self, topic: &str, partition: u32) -> Option<PartitionLeadership>;
    /// Only the leader of [`Leadership::partition`]: `None` when the
    /// partition is not replicated, `Some(None)` when it has no leader now.
    /// What produce and fetch check per partition; implementations
    /// override it to skip building the replica and ISR lists.
    fn leader(&self, topic: &str, partition: u32) -> Option<Option<u64>> {
        self.partition(topic, partition).map(|p| p.leader)
    }
    /// Every topic of the cluster, including those with no replica on this
    /// broker; `None` when this broker's own topic store is the whole
    /// truth (single-broker mode).
    fn topics(&self) -> Option<Vec<ClusterTopic>> {
        None
    }
}

/// A topic as the cluster metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTopic {
    /// Name.
    pub name: String,
    /// Id, the same on every node ([`crate::topics::TopicId::derived`]
    /// from the name and the controller's topic number).
    pub id: crate::topics::TopicId,
    /// Partition count.
    pub partitions: u32,
    /// Settings (as given at creation; defaults not filled in).
    pub config: sluice_protocol::wire::topic_config::TopicConfig,
}

/// Why this broker may not serve a partition's produce, fetch or offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotServed {
    /// Another node leads it.
    LedBy(u64),
    /// Another node leads it, one this broker has not been able to reach
    /// for a while ([`Leadership::unreachable`]): a node that is down, or
    /// cut off.
    LedByUnreachable(u64),
    /// No node leads it right now.
    NoLeader,
}

impl NotServed {
    /// The wire error code: `NotLeaderForPartition` or `LeaderNotAvailable`.
    pub fn code(self) -> ErrorCode {
        match self {
            NotServed::LedBy(_) | NotServed::LedByUnreachable(_) => {
                ErrorCode::NotLeaderForPartition
            }
            NotServed::NoLeader => ErrorCode::LeaderNotAvailable,
        }
    }

    /// A message for the client, naming the leader if there is one.
    pub fn message(self, topic: &str, partition: u32) -> String {
        match self {
            NotServed::LedBy(node) => format!(
                "partition {partition} of topic {topic:?} is led by node {node}, not this broker"
            ),
            NotServed::LedByUnreachable(node) => format!(
                "partition {partition} of topic {topic:?} is led by node {node}, which this \
                 broker has not been able to reach for a while (down, or cut off)"
            ),
            NotServed::NoLeader => {
                format!("partition {partition} of topic {topic:?} has no leader right now")
            }
        }
    }
}

/// Whether this broker may serve reads and writes of a partition: `Ok`
/// when it leads it (or it is not replicated). No allocation when
/// `leadership` answers `None` (single-broker mode).
pub fn check_leader(
    leadership: &dyn Leadership,
    topic: &str,
    partition: u32,
) -> Result<(), NotServed> {
    match leadership.leader(topic, partition) {
        None => Ok(()),
        Some(Some(node)) if node == leadership.local_node() => Ok(()),
        Some(Some(node)) if leadership.unreachable().contains(&node) => {
            Err(NotServed::LedByUnreachable(node))
        }
        Some(Some(node)) => Err(NotServed::LedBy(node)),
        Some(None) => Err(NotServed::NoLeader),
    }
}

/// The leadership of a partition as Metadata reports it: what
/// `leadership` says, or, for a partition it does not replicate, this
/// broker alone (leader, only replica, epoch 0).
pub fn describe(leadership: &dyn Leadership, topic: &str, partition: u32) -> PartitionLeadership {
    leadership.partition(topic, partition).unwrap_or_else(|| {
        let me = leadership.local_node();
        PartitionLeadership {
            leader: Some(me),
            leader_epoch: 0,
            replicas: vec![me],
            isr: vec![me],
        }
    })
}

/// A broker running alone: node 0, the only broker, leader of everything
/// it holds. Its addresses are known once its listeners are bound.
#[derive(Debug, Default)]
pub struct SingleNode {
    listen: OnceLock<String>,
    kafka: OnceLock<String>,
}

impl SingleNode {
    /// Records the native listener's bound address (first call wins).
    pub fn set_listen(&self, addr: String) {
        let _ = self.listen.set(addr);
    }

    /// Records the Kafka listener's advertised address (first call wins).
    pub fn set_kafka(&self, addr: String) {
        let _ = self.kafka.set(addr);
    }
}

impl Leadership for SingleNode {
    fn local_node(&self) -> u64 {
        0
    }

    /// This broker, with the addresses recorded so far (an empty `listen`
    /// before the listener is bound).
    fn brokers(&self) -> Vec<BrokerInfo> {
        vec![BrokerInfo {
            id: 0,
            listen: self.listen.get().cloned().unwrap_or_default(),
            kafka: self.kafka.get().cloned(),
        }]
    }

    fn partition(&self, _topic: &str, _partition: u32) -> Option<PartitionLeadership> {
        None
    }
}

/// The service's leadership: [`SingleNode`] until a cluster's view is
/// installed (once, before the listeners serve), that view afterwards.
#[derive(Debug)]
pub struct Installable {
    single: std::sync::Arc<SingleNode>,
    cluster: OnceLock<std::sync::Arc<dyn Leadership>>,
}

impl Installable {
    /// Answers as `single` until [`Installable::install`].
    pub fn new(single: std::sync::Arc<SingleNode>) -> Self {
        Installable {
            single,
            cluster: OnceLock::new(),
        }
    }

    /// Answers as `cluster` from now on (first call wins).
    pub fn install(&self, cluster: std::sync::Arc<dyn Leadership>) {
        let _ = self.cluster.set(cluster);
    }

    fn current(&self) -> &dyn Leadership {
        match self.cluster.get() {
            Some(c) => c.as_ref(),
            None => self.single.as_ref(),
        }
    }
}

impl Leadership for Installable {
    fn local_node(&self) -> u64 {
        self.current().local_node()
    }
    fn brokers(&self) -> Vec<BrokerInfo> {
        self.current().brokers()
    }
    fn unreachable(&self) -> Vec<u64> {
        self.current().unreachable()
    }
    fn cluster_id(&self) -> Option<String> {
        self.current().cluster_id()
    }
    fn partition(&self, topic: &str, partition: u32) -> Option<PartitionLeadership> {
        self.current().partition(topic, partition)
    }
    fn leader(&self, topic: &str, partition: u32) -> Option<Option<u64>> {
        self.current().leader(topic, partition)
    }
    fn topics(&self) -> Option<Vec<ClusterTopic>> {
        self.current().topics()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A scripted cluster view for tests: node `local` of a cluster where
    /// every partition is led by `leader`.
    #[derive(Debug)]
    pub(crate) struct Scripted {
        pub(crate) local: u64,
        pub(crate) leader: Option<u64>,
    }

    impl Leadership for Scripted {
        fn local_node(&self) -> u64 {
            self.local
        }
        fn brokers(&self) -> Vec<BrokerInfo> {
            [1, 2, 3]
                .map(|id| BrokerInfo {
                    id,
                    listen: format!("127.0.0.1:{}", 9290 + id),
                    kafka: None,
                })
                .to_vec()
        }
        fn partition(&self, _topic: &str, _partition: u32) -> Option<PartitionLeadership> {
            Some(PartitionLeadership {
                leader: self.leader,
                leader_epoch: 4,
                replicas: vec![1, 2, 3],
                isr: vec![1, 2],
            })
        }
    }

    #[test]
    fn single_node_leads_everything_and_lists_itself() {
        let s = SingleNode::default();
        assert_eq!(check_leader(&s, "t", 0), Ok(()));
        assert_eq!(s.local_node(), 0);
        assert_eq!(s.brokers()[0].listen, "");
        s.set_listen("127.0.0.1:1".into());
        s.set_listen("127.0.0.1:2".into());
        s.set_kafka("h:3".into());
        assert_eq!(
            s.brokers(),
            [BrokerInfo {
                id: 0,
                listen: "127.0.0.1:1".into(),
                kafka: Some("h:3".into())
            }]
        );
    }

    #[test]
    fn check_leader_names_the_leader_or_its_absence() {
        let me = Scripted {
            local: 1,
            leader: Some(1),
        };
        assert_eq!(check_leader(&me, "t", 0), Ok(()));
        let other = Scripted {
            local: 1,
            leader: Some(3),
        };
        let e = check_leader(&other, "t", 0).unwrap_err();
        assert_eq!(e, NotServed::LedBy(3));
        assert_eq!(e.code(), ErrorCode::NotLeaderForPartition);
        assert!(e.message("t", 0).contains("node 3"));
        let none = Scripted {
            local: 1,
            leader: None,
        };
        let e = check_leader(&none, "t", 0).unwrap_err();
        assert_eq!(e.code(), ErrorCode::LeaderNotAvailable);
        // A leader this broker cannot reach is named as such.
        #[derive(Debug)]
        struct CutOff(Scripted);
        impl Leadership for CutOff {
            fn local_node(&self) -> u64 {
                self.0.local_node()
            }
            fn brokers(&self) -> Vec<BrokerInfo> {
                self.0.brokers()
            }
            fn unreachable(&self) -> Vec<u64> {
                vec![3]
            }
            fn partition(&self, topic: &str, partition: u32) -> Option<PartitionLeadership> {
                self.0.partition(topic, partition)
            }
        }
        let cut_off = CutOff(Scripted {
            local: 1,
            leader: Some(3),
        });
        let e = check_leader(&cut_off, "t", 0).unwrap_err();
        assert_eq!(e, NotServed::LedByUnreachable(3));
        assert_eq!(e.code(), ErrorCode::NotLeaderForPartition);
        assert!(
            e.message("t", 0)
                .contains("led by node 3, which this broker has not been able to reach")
        );
    }
}
