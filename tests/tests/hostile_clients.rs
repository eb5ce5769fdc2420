//! Clients that misbehave at scale: a connection flood past the cap, clients
//! that never read their responses, and many long polls with huge waits.
//! The broker closes or bounds them and keeps serving a well-behaved client
//! with normal latency.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_client::Connection;
use sluice_protocol::wire::ApiKey;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::fetch::FetchRequest;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_sized, create_topic, read_partition};
use tokio::io::AsyncReadExt;

fn config_file(text: &str) -> String {
    let path = std::env::temp_dir().join(format!("sluice-hostile-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// Round-trip time of a small metadata request.
async fn rtt(conn: &mut Connection) -> Duration {
    let t = Instant::now();
    conn.metadata(None).await.unwrap();
    t.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_stalled_readers_and_long_polls_do_not_hurt_others() {
    let config =
        config_file("max_connections = 40\nwrite_timeout_ms = 1000\nmax_fetch_wait_ms = 60000\n");
    let broker = TestBroker::start_with_args(&["--config", &config]);
    let mut good = broker.connect().await;
    create_topic(&mut good, "t", 1, TopicConfig::default()).await;
    for i in 0..16 {
        good.produce(
            Acks::Leader,
            5000,
            &[("t", 0, &batch_sized(&format!("b{i}"), 256, 1000))],
        )
        .await
        .unwrap();
    }
    let baseline = rtt(&mut good).await;

    // 20 long polls at the end of the log with a huge wait.
    let mut pollers = Vec::new();
    for _ in 0..20 {
        let mut c = broker.connect().await;
        let req = FetchRequest {
            max_wait_ms: u32::MAX,
            min_bytes: u32::MAX,
            max_bytes: 1 << 20,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                partition: 0,
                offset: 4096,
                max_bytes: 1 << 20,
            }],
        };
        c.send(ApiKey::Fetch, &req, &[]).await.unwrap();
        pollers.push(c);
    }
    // 10 clients ask for 4 MiB fetches and never read the answers.
    let mut stalled = Vec::new();
    for _ in 0..10 {
        let mut c = broker.connect().await;
        let req = FetchRequest {
            max_wait_ms: 0,
            min_bytes: 0,
            max_bytes: 8 << 20,
            partitions: vec![FetchPartition {
                topic: "t".into(),
                partition: 0,
                offset: 0,
                max_bytes: 8 << 20,
            }],
        };
        for _ in 0..4 {
            c.send(ApiKey::Fetch, &req, &[]).await.unwrap();
        }
        stalled.push(c);
    }
    // A flood of raw connections past the cap: the extra ones are closed.
    let mut flood = Vec::new();
    for _ in 0..60 {
        if let Ok(s) = tokio::net::TcpStream::connect(broker.addr).await {
            flood.push(s);
        }
    }
    let mut closed = 0;
    for s in &mut flood {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(200), s.read(&mut b)).await {
            closed += 1;
        }
    }
    assert!(
        closed >= 20,
        "connections past the cap are closed ({closed} of {})",
        flood.len()
    );
    drop(flood);

    // The well-behaved client is still served, quickly, and reads everything.
    tokio::time::sleep(Duration::from_millis(1500)).await; // stalled writers time out
    let mut worst = Duration::ZERO;
    for _ in 0..20 {
        worst = worst.max(rtt(&mut good).await);
    }
    assert!(
        worst < baseline * 20 + Duration::from_millis(100),
        "latency {worst:?} vs baseline {baseline:?}"
    );
    assert_eq!(read_partition(&mut good, "t", 0, 0).await.len(), 16 * 256);
    let stats = good.stats().await.unwrap();
    assert!(stats.get("connections_rejected").unwrap() >= 20);
    // The stalled readers were disconnected by the write timeout.
    for c in &mut stalled {
        let r = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                if c.recv_raw().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(
            r.is_ok(),
            "a client that stopped reading is eventually disconnected"
        );
    }
    drop(pollers);
}
