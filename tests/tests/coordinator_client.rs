//! The client finds a group's coordinator with FindCoordinator only when
//! the broker lists it in ApiVersions: in front of a real broker, a proxy
//! that hides API key 20 (an older broker) sees no FindCoordinator and the
//! group's connection stays on it; the same proxy showing key 20 sees one.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sluice_client::Bootstrap;
use sluice_protocol::wire::api_versions::ApiVersionsResponse;
use sluice_protocol::wire::{ApiKey, ErrorCode, RequestHeader};
use sluice_tests::TestBroker;
use sluice_tests::fake::{self, read_frame};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A proxy to `real` that drops key 20 from ApiVersions when `old`; counts
/// the FindCoordinator requests it passes on.
async fn proxy(real: SocketAddr, old: bool) -> (SocketAddr, Arc<AtomicUsize>) {
    let found = Arc::new(AtomicUsize::new(0));
    let shared = Arc::clone(&found);
    let addr = fake::spawn(move |mut client: TcpStream, _own| {
        let found = Arc::clone(&shared);
        async move {
            let mut upstream = TcpStream::connect(real).await?;
            loop {
                let frame = read_frame(&mut client).await?;
                let (h, _) = RequestHeader::decode(&frame).unwrap();
                if h.api_key == ApiKey::FindCoordinator as u16 {
                    found.fetch_add(1, Ordering::SeqCst);
                }
                upstream.write_all(&frame).await?;
                let response = read_frame(&mut upstream).await?;
                if h.api_key != ApiKey::ApiVersions as u16 || !old {
                    client.write_all(&response).await?;
                    continue;
                }
                let edited = fake::edited_response(&response, |v: &mut ApiVersionsResponse| {
                    v.apis
                        .retain(|a| a.api_key != ApiKey::FindCoordinator as u16);
                });
                client.write_all(&edited).await?;
            }
        }
    })
    .await;
    (addr, found)
}

#[tokio::test]
async fn a_broker_without_find_coordinator_is_the_groups_broker_as_before() {
    let broker = TestBroker::start();
    let (old, asked_old) = proxy(broker.addr, true).await;
    let mut conn = Bootstrap::parse(&old.to_string())
        .connect_coordinator("g")
        .await
        .unwrap();
    assert_eq!(conn.peer(), old.to_string());
    assert_eq!(
        asked_old.load(Ordering::SeqCst),
        0,
        "no FindCoordinator sent"
    );
    // The group's calls work there.
    let hb = conn.heartbeat("g", 0, "m", None).await.unwrap();
    assert_eq!(hb.error_code, ErrorCode::UnknownMemberId);

    // A broker with it is asked, and names itself (node 0) when alone.
    let (new, asked_new) = proxy(broker.addr, false).await;
    let mut conn = Bootstrap::parse(&new.to_string())
        .connect_coordinator("g")
        .await
        .unwrap();
    assert_eq!(asked_new.load(Ordering::SeqCst), 1);
    let found = conn.find_coordinator("g").await.unwrap();
    assert_eq!(found.node_id, 0);
    assert_eq!(found.address, broker.addr.to_string());
}
