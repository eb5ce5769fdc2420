//! BrokerStatus across versions: a broker that speaks version 1 names its
//! Kafka listener and node id; in front of a proxy that lists version 0
//! only in ApiVersions (an older broker), the client asks version 0 and
//! gets the same status without them, where asking version 1 would be
//! refused by such a broker.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use sluice_protocol::wire::api_versions::ApiVersionsResponse;
use sluice_protocol::wire::{ApiKey, RequestHeader};
use sluice_tests::TestBroker;
use sluice_tests::fake::{self, read_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A proxy to `real` that lists BrokerStatus at version 0 only; keeps the
/// version of the last BrokerStatus request it passed on.
async fn proxy(real: SocketAddr) -> (SocketAddr, Arc<AtomicU16>) {
    let asked = Arc::new(AtomicU16::new(u16::MAX));
    let shared = Arc::clone(&asked);
    let addr = fake::spawn(move |mut client: TcpStream, _own| {
        let asked = Arc::clone(&shared);
        async move {
            let mut upstream = TcpStream::connect(real).await?;
            loop {
                let frame = read_frame(&mut client).await?;
                let (h, _) = RequestHeader::decode(&frame).unwrap();
                if h.api_key == ApiKey::BrokerStatus as u16 {
                    asked.store(h.api_version, Ordering::SeqCst);
                }
                upstream.write_all(&frame).await?;
                let response = read_frame(&mut upstream).await?;
                if h.api_key != ApiKey::ApiVersions as u16 {
                    client.write_all(&response).await?;
                    continue;
                }
                let edited = fake::edited_response(&response, |v: &mut ApiVersionsResponse| {
                    for a in &mut v.apis {
                        if a.api_key == ApiKey::BrokerStatus as u16 {
                            a.max_version = 0;
                        }
                    }
                });
                client.write_all(&edited).await?;
            }
        }
    })
    .await;
    (addr, asked)
}

#[tokio::test]
async fn an_older_broker_is_asked_version_0() {
    let broker = TestBroker::start();
    let kafka = broker.kafka_addr.unwrap().to_string();
    let new = broker.connect().await.broker_status().await.unwrap();
    assert_eq!(new.kafka_listen, kafka);
    assert_eq!(new.node_id, None);
    assert_eq!(new.v0.listen, broker.addr.to_string());

    let (old, asked) = proxy(broker.addr).await;
    let mut conn = sluice_client::Connection::connect(old).await.unwrap();
    let s = conn.broker_status().await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    assert_eq!(s.kafka_listen, "");
    assert_eq!(s.node_id, None);
    assert_eq!(s.v0.listen, broker.addr.to_string());
    assert_eq!(s.v0.version, new.v0.version);
}
