//! The client finds a group's coordinator with FindCoordinator only when
//! the broker lists it in ApiVersions: in front of a real broker, a proxy
//! that hides API key 20 (an older broker) sees no FindCoordinator and the
//! group's connection stays on it; the same proxy showing key 20 sees one.
//! A commit answered `CoordinatorNotAvailable` (a coordinator moving or
//! loading the group) is made again until it is taken, or until the
//! consumer's request timeout, when the error is the caller's.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sluice_client::{Bootstrap, ClientError, Consumer, ConsumerConfig};
use sluice_protocol::wire::api_versions::ApiVersionsResponse;
use sluice_protocol::wire::offset_commit::OffsetCommitResponse;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_protocol::wire::{ApiKey, ErrorCode, RequestHeader};
use sluice_tests::fake::{self, read_frame};
use sluice_tests::{TestBroker, batch_of, create_topic};
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

/// A proxy to `real` whose first `refused` OffsetCommit answers say
/// `CoordinatorNotAvailable` for every partition (the broker behind it did
/// commit); counts the OffsetCommit requests. It hides FindCoordinator, so
/// the group's calls stay on it.
async fn refusing_commits(real: SocketAddr, refused: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let commits = Arc::new(AtomicUsize::new(0));
    let shared = Arc::clone(&commits);
    let addr = fake::spawn(move |mut client: TcpStream, _own| {
        let commits = Arc::clone(&shared);
        async move {
            let mut upstream = TcpStream::connect(real).await?;
            loop {
                let frame = read_frame(&mut client).await?;
                let (h, _) = RequestHeader::decode(&frame).unwrap();
                upstream.write_all(&frame).await?;
                let response = read_frame(&mut upstream).await?;
                if h.api_key == ApiKey::ApiVersions as u16 {
                    let edited = fake::edited_response(&response, |v: &mut ApiVersionsResponse| {
                        v.apis
                            .retain(|a| a.api_key != ApiKey::FindCoordinator as u16);
                    });
                    client.write_all(&edited).await?;
                    continue;
                }
                let is_commit = h.api_key == ApiKey::OffsetCommit as u16;
                if !is_commit || commits.fetch_add(1, Ordering::SeqCst) >= refused {
                    client.write_all(&response).await?;
                    continue;
                }
                let edited = fake::edited_response(&response, |r: &mut OffsetCommitResponse| {
                    for p in &mut r.partitions {
                        p.error_code = ErrorCode::CoordinatorNotAvailable;
                    }
                });
                client.write_all(&edited).await?;
            }
        }
    })
    .await;
    (addr, commits)
}

/// A consumer of group `group` through `addr` that has read the three
/// records of partition 0 of `c`.
async fn read_three(addr: SocketAddr, group: &str, timeout: Duration) -> Consumer {
    let mut consumer = Consumer::connect(ConsumerConfig {
        group: Some(group.into()),
        request_timeout: timeout,
        ..ConsumerConfig::new(addr.to_string())
    })
    .await
    .unwrap();
    consumer.assign(vec![("c".into(), 0)]).await.unwrap();
    let mut read = 0;
    while read < 3 {
        read += consumer.poll().await.unwrap().len();
    }
    consumer
}

#[tokio::test]
async fn a_commit_is_made_again_while_the_coordinator_is_not_available() {
    let broker = TestBroker::start();
    let mut c = broker.connect().await;
    create_topic(&mut c, "c", 1, TopicConfig::default()).await;
    c.produce(Acks::Leader, 5000, &[("c", 0, &batch_of(&["a", "b", "c"]))])
        .await
        .unwrap()
        .unwrap();

    let (addr, commits) = refusing_commits(broker.addr, 2).await;
    let mut consumer = read_three(addr, "g1", Duration::from_secs(10)).await;
    consumer.commit().await.unwrap();
    assert_eq!(commits.load(Ordering::SeqCst), 3);
    assert_eq!(consumer.committed("c", 0).await.unwrap(), Some(3));

    // Refused for longer than the request timeout: the error is the
    // caller's, after about that long.
    let (addr, commits) = refusing_commits(broker.addr, usize::MAX).await;
    let limit = Duration::from_secs(1);
    let mut consumer = read_three(addr, "g2", limit).await;
    let started = Instant::now();
    let e = consumer.commit().await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(
            e,
            ClientError::Broker {
                code: ErrorCode::CoordinatorNotAvailable,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(limit <= took && took < limit * 3, "{took:?}");
    assert!(commits.load(Ordering::SeqCst) >= 2);
}
