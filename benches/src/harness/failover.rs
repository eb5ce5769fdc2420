//! `--workload failover`: partition failover time on a 3-node loopback
//! cluster. An acks=all producer of the client library sends one record at
//! a time to a replication-factor-3 partition; the harness SIGKILLs the
//! partition's leader, measures the time from the kill to the first record
//! acknowledged afterwards (necessarily by a new leader), restarts the
//! killed node, waits for it to be back in sync, and does it again.
//!
//! Each failover is split into **election** (kill → a surviving broker's
//! Metadata names a new leader, polled every millisecond) and **client
//! discovery** (that moment → the first acknowledgement).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use sluice_client::{Acks, Admin, Producer, ProducerConfig, ProducerRecord, TopicConfig};

use super::cluster::{ClusterProc, partition_at};

/// What one kill cost.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Failover {
    /// Node killed.
    pub killed: u64,
    /// Kill → first acknowledgement after it, in ms.
    pub total_ms: f64,
    /// Kill → a survivor's Metadata names a new leader, in ms.
    pub election_ms: f64,
    /// New leader named → first acknowledgement, in ms.
    pub discovery_ms: f64,
}

/// Settings of a failover run.
#[derive(Debug, Clone)]
pub struct FailoverSpec {
    /// Leader kills.
    pub kills: u32,
    /// Bytes per record value.
    pub value_len: usize,
    /// Extra broker settings (`raft_*` timing, for instance).
    pub extra_toml: String,
}

/// Runs the failover workload under `dir` and prints each kill and the
/// summary; returns every kill's figures.
pub async fn run(dir: &std::path::Path, spec: &FailoverSpec) -> anyhow::Result<Vec<Failover>> {
    let mut cluster = ClusterProc::start(dir, 3, &spec.extra_toml)?;
    let topic = "failover";
    create(&cluster, topic).await?;
    let settle = Duration::from_millis(500);
    cluster
        .wait_for_stable_leader(topic, 0, settle, Duration::from_secs(60))
        .await?;

    let brokers: Vec<String> = cluster.addrs().iter().map(|a| a.to_string()).collect();
    let producer = Arc::new(Producer::new(ProducerConfig {
        acks: Acks::All,
        linger: Duration::ZERO,
        delivery_timeout: Duration::from_secs(120),
        ..ProducerConfig::with_brokers(&brokers)
    }));
    // (sent, acknowledged) instants of each record, in order.
    let acks: Arc<Mutex<Vec<(Instant, Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let (producer, acks, stop) = (Arc::clone(&producer), Arc::clone(&acks), Arc::clone(&stop));
        let value = vec![b'x'; spec.value_len];
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let sent = Instant::now();
                let d = producer
                    .send_record(ProducerRecord {
                        topic,
                        partition: Some(0),
                        value: Some(&value),
                        ..Default::default()
                    })
                    .await?;
                d.await?;
                let acked = Instant::now();
                acks.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((sent, acked));
            }
            anyhow::Ok(())
        })
    };

    let mut out = Vec::new();
    for k in 0..spec.kills {
        let leader = cluster
            .wait_for_stable_leader(topic, 0, settle, Duration::from_secs(60))
            .await?;
        let old_epoch = cluster
            .partition_seen_by(leader, topic, 0)
            .await
            .context("leader's metadata")?
            .leader_epoch;
        // Writes flow before the kill.
        acks.lock().unwrap_or_else(|e| e.into_inner()).clear();
        wait_for(Duration::from_secs(30), || {
            acks.lock().unwrap_or_else(|e| e.into_inner()).len() > 10
        })
        .await
        .context("the producer makes no progress")?;
        let killed_at = Instant::now();
        cluster.kill(leader)?;
        // The old leader is gone: an answer it wrote before may still be
        // read after this, but none to a record sent after it.
        let reaped_at = Instant::now();
        let survivors: Vec<_> = cluster
            .live()
            .into_iter()
            .filter_map(|id| cluster.addr(id).ok())
            .collect();
        // Election: poll the survivors' Metadata.
        let elected_at = loop {
            let mut named = false;
            for a in &survivors {
                if let Some(p) = partition_at(*a, topic, 0).await
                    && p.leader.is_some_and(|l| l != leader)
                    && p.leader_epoch > old_epoch
                {
                    named = true;
                }
            }
            if named {
                break Instant::now();
            }
            if killed_at.elapsed() > Duration::from_secs(60) {
                bail!("no new leader within 60 s of killing node {leader}");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        // The first acknowledgement from the new leader: of a record sent
        // after the old one was dead, or one that came after a survivor
        // named the new leader (an old answer is read long before that).
        let by_new_leader = |(sent, acked): &(Instant, Instant)| {
            *acked > killed_at && (*sent >= reaped_at || *acked >= elected_at)
        };
        wait_for(Duration::from_secs(60), || {
            acks.lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .rev()
                .any(by_new_leader)
        })
        .await
        .context("no write acknowledged after the kill")?;
        let acked_at = {
            let a = acks.lock().unwrap_or_else(|e| e.into_inner());
            a.iter()
                .find(|r| by_new_leader(r))
                .context("an ack after the kill")?
                .1
        };
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let f = Failover {
            killed: leader,
            total_ms: ms(acked_at - killed_at),
            election_ms: ms(elected_at - killed_at),
            discovery_ms: ms(acked_at.saturating_duration_since(elected_at)),
        };
        eprintln!(
            "kill {}/{}: node {leader}: failover {:.0} ms (election {:.0} ms, client discovery {:.0} ms)",
            k + 1,
            spec.kills,
            f.total_ms,
            f.election_ms,
            f.discovery_ms
        );
        out.push(f);
        cluster.restart(leader)?;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = sender.await.context("producer task")?;
    sent?;
    producer.close().await;
    cluster.stop()?;
    Ok(out)
}

/// Creates `topic` (one partition, replication factor 3) through any node,
/// retrying while the controller is being elected.
async fn create(cluster: &ClusterProc, topic: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut last = None;
        for a in cluster.addrs() {
            match Admin::connect(&a.to_string()).await {
                Ok(mut admin) => match admin
                    .create_replicated_topic(topic, 1, Some(3), TopicConfig::default())
                    .await
                {
                    Ok(()) => return Ok(()),
                    Err(e) => last = Some(e.to_string()),
                },
                Err(e) => last = Some(e.to_string()),
            }
        }
        if Instant::now() > deadline {
            bail!("creating {topic}: {last:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// Median, 90th percentile and largest of `v` (nearest rank).
pub fn summary(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let rank = |q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    (rank(0.5), rank(0.9), s[s.len() - 1])
}

/// Prints the per-kill summary table.
pub fn print(results: &[Failover]) {
    println!(
        "{:<26} {:>10} {:>10} {:>10}",
        "failover (ms), 3 nodes", "median", "p90", "max"
    );
    for (name, pick) in [
        (
            "kill -> first ack",
            (|f: &Failover| f.total_ms) as fn(&Failover) -> f64,
        ),
        ("  election", |f: &Failover| f.election_ms),
        ("  client discovery", |f: &Failover| f.discovery_ms),
    ] {
        let v: Vec<f64> = results.iter().map(pick).collect();
        let (m, p90, max) = summary(&v);
        println!("{name:<26} {m:>10.0} {p90:>10.0} {max:>10.0}");
    }
    println!("kills: {}", results.len());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_is_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(summary(&v), (5.0, 9.0, 10.0));
        assert_eq!(summary(&[7.0]), (7.0, 7.0, 7.0));
        assert_eq!(summary(&[]), (0.0, 0.0, 0.0));
    }
}
