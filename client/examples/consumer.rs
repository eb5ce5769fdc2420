//! Reads the `greetings` topic written by the `producer` example as
//! consumer group `greeters`, and commits how far it got: run it twice and
//! the second run prints only what was produced in between.
//!
//! ```text
//! cargo run -p sluice-client --example consumer              # all partitions
//! cargo run -p sluice-client --example consumer -- 2         # partition 2 only
//! cargo run -p sluice-client --example consumer -- 2 --from-beginning
//! ```
//!
//! Set `SLUICE_BROKER=host:port` for a broker elsewhere.

use std::time::Duration;

use sluice_client::{Consumer, ConsumerConfig, OffsetReset, SeekTo};

/// The topic both examples use.
const TOPIC: &str = "greetings";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = std::env::var("SLUICE_BROKER").unwrap_or_else(|_| "127.0.0.1:9292".into());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let partition: Option<u32> = args.iter().find_map(|a| a.parse().ok());
    let from_beginning = args.iter().any(|a| a == "--from-beginning");

    // With a group, each partition starts at the group's committed offset;
    // a partition the group never committed starts at the earliest record.
    let mut config = ConsumerConfig::new(broker.as_str());
    config.group = Some("greeters".into());
    config.offset_reset = OffsetReset::Earliest;
    config.auto_commit = Some(Duration::from_secs(1)); // also commit while polling
    let mut consumer = Consumer::connect(config).await?;

    // Either every partition of the topic, or an explicit list.
    match partition {
        None => consumer.subscribe(TOPIC).await?,
        Some(p) => consumer.assign(vec![(TOPIC.to_owned(), p)]).await?,
    }

    // Ignore the committed offset and start over.
    if let (true, Some(p)) = (from_beginning, partition) {
        consumer.seek(TOPIC, p, SeekTo::Earliest).await?;
    }

    // `poll` waits up to `max_wait` (500 ms) for records; stop after two
    // seconds without any.
    let mut idle_polls = 0;
    while idle_polls < 4 {
        let records = consumer.poll().await?;
        if records.is_empty() {
            idle_polls += 1;
            continue;
        }
        idle_polls = 0;
        for record in &records {
            // Key and value are slices of the fetched buffer: no copy.
            let key = String::from_utf8_lossy(record.key().unwrap_or_default());
            let value = String::from_utf8_lossy(record.value());
            println!(
                "{}-{} offset {}: {key} = {value}",
                record.topic,
                record.partition,
                record.offset()
            );
        }
    }

    // Store the positions (the offsets after the last records returned).
    consumer.commit().await?;
    Ok(())
}
