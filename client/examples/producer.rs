//! Sends a few keyed records to a local broker and prints where each one
//! was stored.
//!
//! Start a broker (`cargo run -p sluice-broker`), then:
//!
//! ```text
//! cargo run -p sluice-client --example producer
//! ```
//!
//! Set `SLUICE_BROKER=host:port` for a broker elsewhere. Read the records
//! back with the `consumer` example.

use std::time::Duration;

use sluice_client::{Acks, Admin, Producer, ProducerConfig, TopicConfig};

/// The topic both examples use.
const TOPIC: &str = "greetings";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let broker = std::env::var("SLUICE_BROKER").unwrap_or_else(|_| "127.0.0.1:9292".into());

    // Create the topic, with three partitions, unless it exists.
    let mut admin = Admin::connect(&broker).await?;
    let topics = admin.list_topics().await?;
    if !topics.iter().any(|t| t.name == TOPIC) {
        admin.create_topic(TOPIC, 3, TopicConfig::default()).await?;
        println!("created topic {TOPIC}");
    }

    // A producer batches records per partition and sends them from a
    // background task. Acks::All: a record is acknowledged once it is on
    // disk (fdatasync), not just in the broker's page cache.
    let mut config = ProducerConfig::new(broker.as_str());
    config.acks = Acks::All;
    config.linger = Duration::from_millis(10);
    let producer = Producer::new(config);

    // `send` returns as soon as the record is buffered, with a future of its
    // delivery: send everything first, then wait. Records with the same key
    // go to the same partition, in send order.
    let mut deliveries = Vec::new();
    for i in 0..10 {
        let key = format!("user-{}", i % 3);
        let value = format!("hello number {i}");
        let delivery = producer
            .send(TOPIC, Some(key.as_bytes()), value.as_bytes())
            .await?;
        deliveries.push((key, delivery));
    }
    for (key, delivery) in deliveries {
        // Fails if the record could not be stored, even after retries.
        let stored = delivery.await?;
        let offset = stored.offset.unwrap_or_default(); // None only with Acks::None
        println!("{key}: partition {} offset {offset}", stored.partition);
    }

    // Sends what is still buffered, waits for it, and stops the producer.
    producer.close().await;
    Ok(())
}
