//! A produce that wakes a waiting fetch: the broker sends the fetch's
//! records before it writes the produce's answer, since the tailing
//! consumer waits for the records and the producer only for a free slot.
//!
//! Needs `strace` (installed by `.ci/run`). Without it the test is skipped
//! with a message, unless `SLUICE_REQUIRE_STRACE` is set.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use sluice_client::Connection;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::strace::{CallTrace, strace_available};
use sluice_tests::{TestBroker, batch_of, create_topic, decode_records};

const ROUNDS: u64 = 12;

/// The file descriptor a traced call was made on (`sendto(12<TCP:...>`).
fn fd_of(line: &str) -> Option<&str> {
    let args = line.split_once('(')?.1;
    args.split(['<', ',']).next()
}

/// Waits until the broker has read `n` requests in all, counting the stats
/// requests made here (each counts itself).
async fn wait_for_requests(admin: &mut Connection, n: u64) {
    loop {
        let seen = admin.stats().await.unwrap().get("requests").unwrap();
        if seen >= n {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// Runs `ROUNDS` rounds of "a fetch waits, a produce wakes it" on a
/// broker with `threads` runtime threads, with `strace` tracing `sendto` and
/// `sendfile`; returns the traced lines and the file
/// descriptors of the admin and consumer connections.
async fn traced_tail_rounds(threads: u32) -> Option<(Vec<String>, String, String)> {
    if !strace_available() {
        return None;
    }
    let mut config = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(
        &mut config,
        format!("runtime_threads = {threads}\n").as_bytes(),
    )
    .unwrap();
    let path = config.path().to_str().unwrap().to_owned();
    let broker = TestBroker::start_with_args(&["--config", &path]);
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "tail", 1, TopicConfig::default()).await;
    let mut producer = broker.connect().await;
    let mut consumer = broker.connect().await;

    let trace = CallTrace::attach(broker.pid(), "trace=sendto,sendfile").await;
    // The first answer traced goes to the admin connection.
    admin.stats().await.unwrap();
    for i in 0..ROUNDS {
        let requests = admin.stats().await.unwrap().get("requests").unwrap();
        let fetch = tokio::spawn(async move {
            let at = vec![FetchPartition {
                topic: "tail".into(),
                partition: 0,
                offset: i,
                max_bytes: 1 << 20,
            }];
            let r = consumer.fetch(10_000, 1, 1 << 20, at).await.unwrap();
            (consumer, r)
        });
        // The fetch request was read. One thread: it subscribed before the
        // stats request that saw it was served. Two: it is given a moment
        // to reach its long poll.
        wait_for_requests(&mut admin, requests + 2).await;
        if threads > 1 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let value = format!("r{i}");
        producer
            .produce(Acks::Leader, 5000, &[("tail", 0, &batch_of(&[&value]))])
            .await
            .unwrap()
            .unwrap();
        let (c, r) = fetch.await.unwrap();
        consumer = c;
        let recs = decode_records(&r[0].records, i);
        assert_eq!(recs.len(), 1);
        assert_eq!(&recs[0].1[..], value.as_bytes());
    }
    let lines = trace.finish().await;
    let sends = |l: &&String| l.contains("sendto(") || l.contains("sendfile(");
    let admin_fd = lines
        .iter()
        .filter(sends)
        .find_map(|l| fd_of(l))
        .unwrap()
        .to_owned();
    let consumer_fd = lines
        .iter()
        .find(|l| l.contains("sendfile("))
        .and_then(|l| fd_of(l))
        .unwrap()
        .to_owned();
    Some((lines, admin_fd, consumer_fd))
}

/// One runtime thread: the produce and the fetch it wakes are served by
/// the same thread, so the order of their sends is the broker's choice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn woken_fetch_is_answered_before_the_produce() {
    let Some((lines, admin_fd, consumer_fd)) = traced_tail_rounds(1).await else {
        return;
    };
    check_fetch_first(&lines, &admin_fd, &consumer_fd);
}

/// Two runtime threads (the default on this machine's kind): the produce
/// waits for the fetch it woke to resolve, so the fetch's records still go
/// first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn woken_fetch_is_answered_before_the_produce_on_two_threads() {
    let Some((lines, admin_fd, consumer_fd)) = traced_tail_rounds(2).await else {
        return;
    };
    check_fetch_first(&lines, &admin_fd, &consumer_fd);
}

/// Requires most rounds to send the consumer's header before the
/// producer's answer.
fn check_fetch_first(lines: &[String], admin_fd: &str, consumer_fd: &str) {
    // The sends to the consumer (header `C`, records `F`) and to the
    // producer (`P`), in order.
    let order: String = lines
        .iter()
        .filter(|l| l.contains("sendto(") || l.contains("sendfile("))
        .filter_map(|l| {
            let fd = fd_of(l)?;
            if fd == admin_fd {
                None
            } else if fd == consumer_fd {
                Some(if l.contains("sendfile(") { 'F' } else { 'C' })
            } else {
                Some('P')
            }
        })
        .collect();
    assert_eq!(order.len(), 3 * ROUNDS as usize, "{lines:#?}");
    eprintln!("send order (C consumer header, F records, P produce answer): {order}");
    // A round is "fetch first" when its consumer header went out before its
    // produce answer. The woken fetch runs first when it is ready on the
    // produce's thread; a fetch that first hops to another thread (a cold
    // page check on the blocking pool) may lose that race, so most rounds,
    // not all, must show it. Before the change none did (0 of 12).
    let (mut headers, mut answers, mut fetch_first) = (0, 0, 0);
    for c in order.chars() {
        match c {
            'C' => headers += 1,
            'P' => {
                answers += 1;
                if headers >= answers {
                    fetch_first += 1;
                }
            }
            _ => {}
        }
    }
    assert!(
        fetch_first * 2 >= ROUNDS,
        "{fetch_first} of {ROUNDS} rounds answered the fetch first: {order}\n{lines:#?}"
    );
}
