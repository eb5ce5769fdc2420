//! The group consumer library against a real broker, where timing must be
//! controlled from inside the process: a member whose session expired while
//! it did not poll (its commit is refused, it returns no stale records), a
//! static member fenced by a newer instance, and a rebalance when a
//! subscribed topic appears. The CLI scenarios are in `groups.rs`.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_client::group::{GroupConfig, GroupConsumer, Positions, RebalanceListener};
use sluice_client::{ClientError, Connection, ConsumerConfig, OffsetReset};
use sluice_protocol::wire::ErrorCode;
use sluice_tests::TestBroker;

const TOPIC: &str = "events";
const PARTITIONS: u32 = 6;

/// Runs the `sluice` CLI of this build and asserts success.
fn sluice(addr: &str, args: &[&str], stdin: &[u8]) {
    let out = sluice_tests::sluice_with_input(addr, args, stdin);
    assert!(
        out.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Appends `n` records to every partition.
fn produce(addr: &str, n: usize) {
    let lines: String = (0..n).map(|i| format!("r{i}\n")).collect();
    for p in 0..PARTITIONS {
        sluice(
            addr,
            &["produce", TOPIC, "--partition", &p.to_string()],
            lines.as_bytes(),
        );
    }
}

fn setup() -> (TestBroker, String) {
    let broker = TestBroker::start();
    let addr = broker.addr.to_string();
    sluice(
        &addr,
        &[
            "topic",
            "create",
            TOPIC,
            "--partitions",
            &PARTITIONS.to_string(),
        ],
        b"",
    );
    (broker, addr)
}

fn member_config(addr: &str, topic: &str) -> (ConsumerConfig, GroupConfig) {
    let mut config = ConsumerConfig::new(addr);
    config.group = Some("g".into());
    config.offset_reset = OffsetReset::Earliest;
    (config, GroupConfig::new(vec![topic.into()]))
}

/// A member whose session expired while it did not poll: its commit is
/// refused (it would overwrite its successor's), its partitions are lost,
/// and the next poll rejoins it.
#[tokio::test]
async fn an_expired_members_commit_is_refused_and_it_rejoins() {
    struct Lost(Arc<Mutex<usize>>);
    impl RebalanceListener for Lost {
        fn on_partitions_lost(&mut self, p: &Positions) {
            *self.0.lock().unwrap() += p.len();
        }
    }

    let (_broker, addr) = setup();
    produce(&addr, 5);
    let mut config = ConsumerConfig::new(addr.clone());
    config.group = Some("g".into());
    config.offset_reset = OffsetReset::Earliest;
    let mut membership = GroupConfig::new(vec![TOPIC.into()]);
    membership.session_timeout = Duration::from_millis(1000);
    // No heartbeat within the test: the session runs out while idle.
    membership.heartbeat_interval = Duration::from_secs(3600);
    let mut consumer = GroupConsumer::connect(config, membership).await.unwrap();
    let lost = Arc::new(Mutex::new(0));
    consumer.set_listener(Box::new(Lost(Arc::clone(&lost))));
    let mut read = 0;
    while read < 30 {
        read += consumer.poll().await.unwrap().len();
    }
    let first_member = consumer.member_id().to_owned();

    let mut conn = Connection::connect(addr.as_str()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let d = conn.describe_groups(vec!["g".into()]).await.unwrap();
        if d.groups[0].members.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the member never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    match consumer.commit().await {
        Err(ClientError::Broker { code, .. }) => assert!(
            matches!(
                code,
                ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration
            ),
            "{code}"
        ),
        other => panic!("an expired member's commit was not refused: {other:?}"),
    }
    assert!(consumer.assignment().is_empty(), "it still owns partitions");
    assert_eq!(
        *lost.lock().unwrap(),
        6,
        "on_partitions_lost not called for all six"
    );
    // The next poll rejoins; the commit of its first run never happened, so
    // it reads everything again.
    let mut again = 0;
    while again < 30 {
        again += consumer.poll().await.unwrap().len();
    }
    assert_ne!(consumer.member_id(), first_member);
    assert_eq!(consumer.assignment().len(), 6);
    consumer.commit().await.unwrap();
    consumer.close().await.unwrap();
}

/// A member that did not poll (nor heartbeat) for longer than its session
/// — a long pause — must not return records fetched for partitions it no
/// longer owns: its next poll finds out, drops them, and rejoins first.
#[tokio::test]
async fn a_paused_member_returns_no_records_of_its_old_generation() {
    let (_broker, addr) = setup();
    produce(&addr, 5);
    let mut config = ConsumerConfig::new(addr.clone());
    config.group = Some("g".into());
    config.offset_reset = OffsetReset::Earliest;
    let mut membership = GroupConfig::new(vec![TOPIC.into()]);
    membership.session_timeout = Duration::from_millis(1000);
    membership.heartbeat_interval = Duration::from_secs(3600);
    let mut consumer = GroupConsumer::connect(config, membership).await.unwrap();
    let mut read = 0;
    while read < 30 {
        read += consumer.poll().await.unwrap().len();
    }
    let (first_member, first_generation) =
        (consumer.member_id().to_owned(), consumer.generation_id());

    let mut conn = Connection::connect(addr.as_str()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !conn.describe_groups(vec!["g".into()]).await.unwrap().groups[0]
        .members
        .is_empty()
    {
        assert!(Instant::now() < deadline, "the member never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    produce(&addr, 5);
    loop {
        let records = consumer.poll().await.unwrap();
        if records.is_empty() {
            continue;
        }
        assert_ne!(
            (consumer.member_id(), consumer.generation_id()),
            (first_member.as_str(), first_generation),
            "records returned to an expired member"
        );
        break;
    }
}

/// A second process with the same `group_instance_id` takes the static
/// member's place; the first one's next poll fails with `FencedInstanceId`.
#[tokio::test]
async fn a_static_member_replaced_by_a_newer_instance_is_fenced() {
    let (_broker, addr) = setup();
    let (config, mut membership) = member_config(&addr, TOPIC);
    membership.group_instance_id = Some("worker-1".into());
    membership.heartbeat_interval = Duration::from_millis(100);
    let mut old = GroupConsumer::connect(config.clone(), membership.clone())
        .await
        .unwrap();
    while old.assignment().is_empty() {
        old.poll().await.unwrap();
    }
    let mut new = GroupConsumer::connect(config, membership).await.unwrap();
    while new.assignment().is_empty() {
        new.poll().await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        match old.poll().await {
            Ok(_) => assert!(
                Instant::now() < deadline,
                "the old instance was never fenced"
            ),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(
            err,
            ClientError::Broker {
                code: ErrorCode::FencedInstanceId,
                ..
            }
        ),
        "{err}"
    );
    assert!(old.assignment().is_empty());
    // Fatal: it does not rejoin and take the identity back.
    assert!(matches!(
        old.poll().await,
        Err(ClientError::Broker {
            code: ErrorCode::FencedInstanceId,
            ..
        })
    ));
    assert!(matches!(
        old.commit().await,
        Err(ClientError::Broker {
            code: ErrorCode::FencedInstanceId,
            ..
        })
    ));
    for _ in 0..3 {
        new.poll().await.unwrap();
    }
    assert_eq!(new.assignment().len(), PARTITIONS as usize);
}

/// The leader notices a subscribed topic's partition count change (here:
/// the topic appears) and rebalances, so its partitions are assigned.
#[tokio::test]
async fn a_topic_created_after_joining_gets_assigned() {
    let (_broker, addr) = setup();
    let (config, mut membership) = member_config(&addr, "later");
    membership.metadata_refresh = Duration::from_millis(200);
    let mut consumer = GroupConsumer::connect(config, membership).await.unwrap();
    for _ in 0..2 {
        consumer.poll().await.unwrap();
    }
    assert!(consumer.assignment().is_empty());
    sluice(
        &addr,
        &["topic", "create", "later", "--partitions", "3"],
        b"",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while consumer.assignment().len() != 3 {
        assert!(
            Instant::now() < deadline,
            "the new topic was never assigned"
        );
        consumer.poll().await.unwrap();
    }
}

/// A coordinator that stops answering without closing its connections
/// (here SIGSTOPped) cannot hang a member: its commit fails as timed out
/// within the consumer's `request_timeout` (plus one retry on a new
/// connection), and once the broker answers again the member commits.
#[tokio::test]
async fn a_commit_to_a_silent_coordinator_times_out() {
    let (broker, addr) = setup();
    produce(&addr, 5);
    let (mut config, membership) = member_config(&addr, TOPIC);
    config.request_timeout = Duration::from_millis(500);
    let mut consumer = GroupConsumer::connect(config, membership).await.unwrap();
    let mut read = 0;
    while read < 30 {
        read += consumer.poll().await.unwrap().len();
    }
    consumer.commit().await.unwrap();

    broker.pause();
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(30), consumer.commit())
        .await
        .expect("the commit hung");
    let took = started.elapsed();
    broker.resume();
    match r {
        Err(ClientError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match consumer.commit().await {
            Ok(()) => break,
            Err(e) => {
                assert!(Instant::now() < deadline, "no commit after the resume: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = consumer.poll().await;
            }
        }
    }
}
