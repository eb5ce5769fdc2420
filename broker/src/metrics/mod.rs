//! Operability: the Prometheus metrics exposition and the health checks,
//! served over HTTP on `metrics_listen` (default `127.0.0.1:9393`).
//!
//! # Layout
//!
//! - [`histogram`]: a fixed-bucket latency histogram that observes with
//!   relaxed atomics only (request and fsync latencies are observed on the
//!   hot path).
//! - [`collector`]: turns the counters the broker already keeps (service
//!   stats, per-partition counters, partition logs, committed offsets) into
//!   Prometheus series at scrape time, with `prometheus-client`.
//! - [`process`]: resident memory, open file descriptors, threads and CPU
//!   time of the broker process, read from `/proc/self`.
//! - [`http`]: the HTTP server (hyper): `/metrics`, `/health/live`,
//!   `/health/ready`.
//!
//! Nothing here runs per request or per record: the hot path only bumps
//! atomics that live in the structures it already touches.

pub mod collector;
pub mod histogram;
pub mod http;
pub mod process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::server::Broker;
use histogram::Histogram;

/// Latency of every segment-file `fdatasync` of partition logs (and of the
/// committed-offsets log) in this process, failed ones included.
pub static FSYNC_LATENCY: Histogram = Histogram::new();

/// What the health endpoints and the exposition read: the broker once its
/// data directory is open (recovery done), and whether its listeners are up.
/// The HTTP endpoint starts before recovery, so `/health/live` answers (and
/// `/health/ready` says "not ready") while a large data directory recovers.
#[derive(Debug)]
pub struct Health {
    broker: OnceLock<Arc<Broker>>,
    listeners_up: AtomicBool,
    started: Instant,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            broker: OnceLock::new(),
            listeners_up: AtomicBool::new(false),
            started: Instant::now(),
        }
    }
}

impl Health {
    /// Records that recovery is done: `broker` is open.
    pub fn set_broker(&self, broker: Arc<Broker>) {
        let _ = self.broker.set(broker);
    }

    /// Records that the client listeners accept connections.
    pub fn set_listeners_up(&self) {
        self.listeners_up.store(true, Ordering::Release);
    }

    /// The broker, once open.
    pub fn broker(&self) -> Option<&Arc<Broker>> {
        self.broker.get()
    }

    /// When the process started serving (for uptime).
    pub fn started(&self) -> Instant {
        self.started
    }

    /// `Ok` when the broker is ready for traffic: recovery done, listeners
    /// up, in a cluster the controller core running and its metadata caught
    /// up after a restart, no partition offline;
    /// otherwise why not. Lock-free (reads each partition's offline flag).
    pub fn ready(&self) -> Result<(), String> {
        let Some(broker) = self.broker.get() else {
            return Err("recovering the data directory".to_owned());
        };
        if !self.listeners_up.load(Ordering::Acquire) {
            return Err("listeners not up yet".to_owned());
        }
        if let Some(why) = broker.cluster.get().and_then(|c| c.core_stopped()) {
            return Err(format!(
                "the controller's Raft core is not running ({why}): this node applies no \
                 metadata change; restart it"
            ));
        }
        if broker.cluster.get().is_some_and(|c| !c.has_caught_up()) {
            return Err("catching up with the controller's metadata".to_owned());
        }
        let mut offline = Vec::new();
        for t in broker.topics.list() {
            for (i, p) in t.hosted() {
                if p.is_offline() {
                    offline.push(format!("{}-{i}", t.name));
                }
            }
        }
        if !offline.is_empty() {
            return Err(format!(
                "{} partition(s) offline: {}",
                offline.len(),
                offline.join(", ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BrokerConfig;

    #[test]
    fn ready_only_after_recovery_and_listeners() {
        let dir = tempfile::tempdir().unwrap();
        let health = Health::default();
        let why = health.ready().unwrap_err();
        assert!(why.contains("recovering"), "{why}");
        let broker = Broker::open(BrokerConfig {
            data_dir: dir.path().join("data"),
            ..BrokerConfig::default()
        })
        .unwrap();
        health.set_broker(Arc::clone(&broker));
        let why = health.ready().unwrap_err();
        assert!(why.contains("listeners"), "{why}");
        health.set_listeners_up();
        assert_eq!(health.ready(), Ok(()));
        broker.shutdown();
    }

    struct NoObserver;

    impl crate::replication::controller::MetadataObserver for NoObserver {
        fn changed(&self, _: u64, _: &crate::replication::controller::MetadataEvent) {}
    }

    /// A cluster node whose controller core stopped says it is not ready.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn not_ready_once_the_controller_core_stopped() {
        use crate::replication::config::ClusterConfig;
        use crate::replication::controller::Cluster;

        let dir = tempfile::tempdir().unwrap();
        let port = |_| {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let [listen, raft] = [0, 1].map(port);
        let config = ClusterConfig::parse(
            &format!(
                "[[node]]\nid = 1\nlisten = \"127.0.0.1:{listen}\"\nraft = \"127.0.0.1:{raft}\"\n"
            ),
            1,
        )
        .unwrap();
        let data_dir = dir.path().join("data");
        let broker = Broker::open(BrokerConfig {
            data_dir: data_dir.clone(),
            ..BrokerConfig::default()
        })
        .unwrap();
        let cluster = Cluster::start(
            config,
            &data_dir,
            Arc::new(NoObserver),
            std::time::Duration::from_secs(5),
            Default::default(),
        )
        .await
        .unwrap();
        let _ = broker.cluster.set(Arc::clone(&cluster));
        let health = Health::default();
        health.set_broker(Arc::clone(&broker));
        health.set_listeners_up();
        // Ready once the node leads its controller group (a moment after
        // the start).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while health.ready().is_err() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(health.ready(), Ok(()));
        assert_eq!(cluster.core_stopped(), None);
        cluster.raft.shutdown().await.unwrap();
        let why = health.ready().unwrap_err();
        assert!(
            why.contains("controller's Raft core is not running"),
            "{why}"
        );
        broker.shutdown();
    }
}
