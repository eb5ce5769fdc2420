//! A loopback cluster of `sluice-broker` processes started by the harness:
//! a cluster file with fixed ports, one data directory per node, nodes
//! SIGKILLed and restarted by id, CPU summed over the nodes, and partition
//! leaders read from native Metadata.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sluice_client::Connection;
use sluice_protocol::wire::metadata::PartitionMetadata;

use super::broker_proc::{CpuTimes, broker_binary, cpu_times};

/// One node of the cluster.
#[derive(Debug)]
struct Node {
    id: u64,
    listen: SocketAddr,
    data_dir: PathBuf,
    child: Option<Child>,
}

/// A running cluster; every node is SIGKILLed when it is dropped (its data
/// lives in a temporary directory).
#[derive(Debug)]
pub struct ClusterProc {
    nodes: Vec<Node>,
    cluster_file: PathBuf,
    config_file: PathBuf,
}

impl ClusterProc {
    /// Starts `n` nodes (ids 1..=n) under `dir`, each with the broker
    /// settings `extra_toml` and `default_replication_factor = n`.
    pub fn start(dir: &Path, n: u64, extra_toml: &str) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut text = String::new();
        let mut nodes = Vec::new();
        for id in 1..=n {
            let listen = SocketAddr::from(([127, 0, 0, 1], fixed_port()));
            text.push_str(&format!(
                "[[node]]\nid = {id}\nlisten = \"{listen}\"\nraft = \"127.0.0.1:{}\"\n\n",
                fixed_port()
            ));
            nodes.push(Node {
                id,
                listen,
                data_dir: dir.join(format!("node-{id}")),
                child: None,
            });
        }
        let cluster_file = dir.join("cluster.toml");
        std::fs::write(&cluster_file, text)?;
        let config_file = dir.join("broker.toml");
        std::fs::write(
            &config_file,
            format!("default_replication_factor = {n}\n{extra_toml}\n"),
        )?;
        let mut c = ClusterProc {
            nodes,
            cluster_file,
            config_file,
        };
        for id in 1..=n {
            c.spawn(id)?;
        }
        Ok(c)
    }

    fn node(&self, id: u64) -> anyhow::Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .with_context(|| format!("no node {id}"))
    }

    fn spawn(&mut self, id: u64) -> anyhow::Result<()> {
        let (cluster_file, config_file) = (self.cluster_file.clone(), self.config_file.clone());
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.id == id)
            .with_context(|| format!("no node {id}"))?;
        std::fs::create_dir_all(&node.data_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.data_dir.with_extension("log"))?;
        let mut child = Command::new(broker_binary()?)
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args(["--node-id", &id.to_string()])
            .arg("--cluster")
            .arg(&cluster_file)
            .arg("--config")
            .arg(&config_file)
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--kafka-listen", "127.0.0.1:0"])
            .env("SLUICE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting sluice-broker")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("sluice-broker listening on") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(120)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "node {id} did not start; see {}",
                node.data_dir.with_extension("log").display()
            );
        }
        node.child = Some(child);
        Ok(())
    }

    /// Every node's native address, node 1 first.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.listen).collect()
    }

    /// Node `id`'s native address.
    pub fn addr(&self, id: u64) -> anyhow::Result<SocketAddr> {
        Ok(self.node(id)?.listen)
    }

    /// Ids of the nodes running.
    pub fn live(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    /// SIGKILLs node `id` and waits for it to end.
    pub fn kill(&mut self, id: u64) -> anyhow::Result<()> {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.id == id)
            .with_context(|| format!("no node {id}"))?;
        if let Some(mut c) = node.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Starts node `id` again on its data directory and ports.
    pub fn restart(&mut self, id: u64) -> anyhow::Result<()> {
        self.spawn(id)
    }

    /// CPU used so far by every running node together.
    pub fn cpu(&self) -> CpuTimes {
        let mut sum = CpuTimes::default();
        for c in self.nodes.iter().filter_map(|n| n.child.as_ref()) {
            let t = cpu_times(c.id()).unwrap_or_default();
            sum.user += t.user;
            sum.sys += t.sys;
        }
        sum
    }

    /// Stops every node with SIGTERM and waits.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(c.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                c.wait()?;
            }
        }
        Ok(())
    }

    /// Partition `partition` of `topic` as node `id` describes it, if it
    /// answers and knows the topic.
    pub async fn partition_seen_by(
        &self,
        id: u64,
        topic: &str,
        partition: u32,
    ) -> Option<PartitionMetadata> {
        let addr = self.node(id).ok()?.listen;
        partition_at(addr, topic, partition).await
    }

    /// Waits until every live node names the same live leader of the
    /// partition, the leader counts every node in sync, and it is still so after
    /// `settle`; returns the leader's node id.
    pub async fn wait_for_stable_leader(
        &self,
        topic: &str,
        partition: u32,
        settle: Duration,
        timeout: Duration,
    ) -> anyhow::Result<u64> {
        let deadline = Instant::now() + timeout;
        let mut held: Option<(u64, u64, Instant)> = None;
        loop {
            let live = self.live();
            let mut seen = Vec::new();
            for &id in &live {
                seen.push(self.partition_seen_by(id, topic, partition).await);
            }
            // Only the leader knows who is in sync.
            let agreed = seen.first().and_then(|p| p.as_ref()).and_then(|p| {
                let l = p.leader?;
                let all = seen.iter().all(|s| {
                    s.as_ref()
                        .is_some_and(|s| s.leader == Some(l) && s.leader_epoch == p.leader_epoch)
                });
                let in_sync = live
                    .iter()
                    .position(|id| *id == l)
                    .and_then(|i| seen[i].as_ref())
                    .is_some_and(|s| s.isr.len() == self.nodes.len());
                (all && in_sync).then_some((l, p.leader_epoch))
            });
            match (agreed, held) {
                (Some((l, e)), Some((hl, he, since))) if (l, e) == (hl, he) => {
                    if since.elapsed() >= settle {
                        return Ok(l);
                    }
                }
                (Some((l, e)), _) => held = Some((l, e, Instant::now())),
                (None, _) => held = None,
            }
            if Instant::now() > deadline {
                bail!("no stable leader of {topic}/{partition} within {timeout:?}: {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ClusterProc {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// Partition `partition` of `topic` by the Metadata of the broker at
/// `addr`, if it answers and knows the topic.
pub async fn partition_at(
    addr: SocketAddr,
    topic: &str,
    partition: u32,
) -> Option<PartitionMetadata> {
    let ask = async {
        let mut c = Connection::connect(addr).await.ok()?;
        let m = c.metadata(Some(vec![topic.to_owned()])).await.ok()?;
        m.topics
            .into_iter()
            .find(|t| t.name == topic)?
            .partitions
            .into_iter()
            .find(|p| p.partition == partition)
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// A loopback port free now, from 20000..32000: below Linux's ephemeral
/// range, so no outgoing connection takes it before the node binds it.
fn fixed_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + (seed.wrapping_add(n.wrapping_mul(104_729)) % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
