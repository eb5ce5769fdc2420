//! Reads the `greetings` topic written by the `producer` example as a
//! member of consumer group `greeting-workers`: start it in two or three
//! terminals and the members share the topic's partitions; stop one
//! (Ctrl-C) and the others take its partitions over from its last commit.
//!
//! ```text
//! cargo run -p sluice-client --example group_consumer
//! ```
//!
//! Set `SLUICE_BROKER=host:port` for a broker elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sluice_client::group::{GroupConfig, GroupConsumer, Positions, RebalanceListener};
use sluice_client::{ConsumerConfig, OffsetReset};

/// The topic the examples use.
const TOPIC: &str = "greetings";

/// Prints what the group gives and takes.
struct Announce;

impl RebalanceListener for Announce {
    fn on_partitions_assigned(&mut self, partitions: &Positions) {
        for (tp, position) in partitions {
            println!(
                "assigned {}-{} from offset {position}",
                tp.topic, tp.partition
            );
        }
    }
    fn on_partitions_revoked(&mut self, partitions: &Positions) {
        // Their positions are committed right after this returns.
        for (tp, position) in partitions {
            println!("revoked {}-{} at offset {position}", tp.topic, tp.partition);
        }
    }
    fn on_partitions_lost(&mut self, partitions: &Positions) {
        // Another member may already own them: nothing is committed.
        println!("lost {} partitions", partitions.len());
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = std::env::var("SLUICE_BROKER").unwrap_or_else(|_| "127.0.0.1:9292".into());
    let mut config = ConsumerConfig::new(broker.as_str());
    config.group = Some("greeting-workers".into());
    config.offset_reset = OffsetReset::Earliest;
    config.auto_commit = Some(Duration::from_secs(1));
    let mut membership = GroupConfig::new(vec![TOPIC.into()]);
    membership.session_timeout = Duration::from_secs(10);
    let mut consumer = GroupConsumer::connect(config, membership).await?;
    consumer.set_listener(Box::new(Announce));

    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        flag.store(true, Ordering::Release);
    });
    while !stop.load(Ordering::Acquire) {
        // Joins, rebalances and commits happen inside `poll`.
        for record in consumer.poll().await? {
            let value = String::from_utf8_lossy(record.value());
            println!(
                "{}-{}@{}: {value}",
                record.topic,
                record.partition,
                record.offset()
            );
        }
    }
    // Commits the positions and leaves: the others take over at once.
    consumer.close().await?;
    Ok(())
}
