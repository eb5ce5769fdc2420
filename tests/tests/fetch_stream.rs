//! FetchStream against a real broker: one request, then a frame per
//! append; heartbeats; the ways a stream ends (the client's next request,
//! a partition's error, the client closing), each leaving the broker and,
//! where it stays open, the connection serving.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::time::{Duration, Instant};

use sluice_client::{ClientError, FetchStream, StreamFrame};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchPartition;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_of, create_topic, decode_records};

fn at(topic: &str, partition: u32, offset: u64) -> FetchPartition {
    FetchPartition {
        topic: topic.into(),
        partition,
        offset,
        max_bytes: 1 << 20,
    }
}

/// The values of a frame's partition `i`, records below `from` skipped.
fn values(frame: &StreamFrame, i: usize, from: u64) -> Vec<(u64, String)> {
    decode_records(&frame.partitions[i].records, from)
        .into_iter()
        .map(|(o, v)| (o, String::from_utf8(v.to_vec()).unwrap()))
        .collect()
}

const FRAME_LIMIT: Duration = Duration::from_secs(10);

/// The stream's next frame, within [`FRAME_LIMIT`].
async fn next_frame(stream: &mut FetchStream<'_>, why: &str) -> StreamFrame {
    tokio::time::timeout(FRAME_LIMIT, stream.next())
        .await
        .expect(why)
        .unwrap()
}

#[tokio::test]
async fn each_append_arrives_without_another_request() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "s", 2, TopicConfig::default()).await;
    let mut producer = broker.connect().await;
    producer
        .produce(Acks::Leader, 1000, &[("s", 0, &batch_of(&["a", "b"]))])
        .await
        .unwrap();

    let mut conn = broker.connect().await;
    let mut stream = conn
        .fetch_stream(10_000, 1, 1 << 20, vec![at("s", 0, 1), at("s", 1, 0)])
        .await
        .unwrap();
    // What is there already comes at once, from the offset asked for.
    let first = next_frame(&mut stream, "a frame in time").await;
    assert!(!first.last);
    assert_eq!(first.partitions.len(), 2);
    assert_eq!(values(&first, 0, 1), [(1, "b".to_owned())]);
    assert_eq!(first.partitions[0].high_watermark, 2);
    assert!(first.partitions[1].records.is_empty());

    // Each later append, to either partition, arrives as its own frame,
    // and nothing is sent twice.
    let mut seen: Vec<(u32, u64, String)> = Vec::new();
    for (i, partition) in [0u32, 1, 0, 1, 1].into_iter().enumerate() {
        let value = format!("v{i}");
        producer
            .produce(
                Acks::Leader,
                1000,
                &[("s", partition, &batch_of(&[value.as_str()]))],
            )
            .await
            .unwrap();
        let frame = next_frame(&mut stream, "the append reaches the stream").await;
        assert!(!frame.last);
        for (idx, p) in frame.partitions.iter().enumerate() {
            for (o, v) in values(&frame, idx, 0) {
                seen.push((p.partition, o, v));
            }
        }
        assert_eq!(
            seen.last(),
            Some(&(partition, seen.last().unwrap().1, value))
        );
    }
    let on = |part: u32| -> Vec<u64> {
        seen.iter()
            .filter(|(p, ..)| *p == part)
            .map(|(_, o, _)| *o)
            .collect()
    };
    assert_eq!(on(0), [2, 3]);
    assert_eq!(on(1), [0, 1, 2]);

    // Ending it gives the connection back.
    stream.end().await.unwrap();
    let r = conn
        .fetch(0, 0, 1 << 20, vec![at("s", 1, 2)])
        .await
        .unwrap();
    assert_eq!(decode_records(&r[0].records, 2).len(), 1);
}

#[tokio::test]
async fn a_quiet_stream_sends_heartbeats_with_the_watermark() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "quiet", 1, TopicConfig::default()).await;
    let mut conn = broker.connect().await;
    // A max_wait of 0 is raised to the broker's floor (100 ms): no spinning.
    let mut stream = conn
        .fetch_stream(0, 1, 1 << 20, vec![at("quiet", 0, 0)])
        .await
        .unwrap();
    let t = Instant::now();
    for _ in 0..3 {
        let frame = next_frame(&mut stream, "a frame in time").await;
        assert!(!frame.last);
        assert!(frame.partitions[0].records.is_empty());
        assert_eq!(frame.partitions[0].error_code, ErrorCode::None);
        assert_eq!(frame.partitions[0].high_watermark, 0);
    }
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(280), "{took:?}");
}

#[tokio::test]
async fn a_partition_error_ends_the_stream_and_the_connection_goes_on() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "known", 1, TopicConfig::default()).await;
    let mut conn = broker.connect().await;
    let mut stream = conn
        .fetch_stream(
            10_000,
            1,
            1 << 20,
            vec![at("known", 0, 0), at("unknown", 0, 0)],
        )
        .await
        .unwrap();
    let frame = next_frame(&mut stream, "a frame in time").await;
    assert!(frame.last);
    assert_eq!(frame.partitions[0].error_code, ErrorCode::None);
    assert_eq!(
        frame.partitions[1].error_code,
        ErrorCode::UnknownTopicOrPartition
    );
    assert!(stream.is_ended());
    assert!(matches!(stream.next().await, Err(ClientError::Closed)));
    stream.end().await.unwrap();
    let md = conn.metadata(Some(vec!["known".into()])).await.unwrap();
    assert_eq!(md.topics.len(), 1);

    // No partitions at all: one last frame at once.
    let mut stream = conn.fetch_stream(10_000, 1, 1 << 20, vec![]).await.unwrap();
    let frame = next_frame(&mut stream, "a frame in time").await;
    assert!(frame.last && frame.partitions.is_empty());

    // A request refused as a whole is an error answer, which ends it too.
    let twice = vec![at("known", 0, 0), at("known", 0, 5)];
    let mut stream = conn.fetch_stream(10_000, 1, 1 << 20, twice).await.unwrap();
    match stream.next().await {
        Err(ClientError::Broker { code, .. }) => assert_eq!(code, ErrorCode::DuplicatePartition),
        other => panic!("{other:?}"),
    }
    assert!(stream.is_ended());
    let md = conn.metadata(None).await.unwrap();
    assert_eq!(md.topics.len(), 1);
}

#[tokio::test]
async fn deleting_the_topic_ends_a_waiting_stream() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "doomed", 1, TopicConfig::default()).await;
    let mut conn = broker.connect().await;
    let mut stream = conn
        .fetch_stream(30_000, 1, 1 << 20, vec![at("doomed", 0, 0)])
        .await
        .unwrap();
    let deleter = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        admin.delete_topics(vec!["doomed".into()]).await.unwrap();
    });
    let frame = next_frame(
        &mut stream,
        "the deletion ends the wait well before max_wait",
    )
    .await;
    deleter.await.unwrap();
    assert!(frame.last, "{frame:?}");
    assert_eq!(
        frame.partitions[0].error_code,
        ErrorCode::UnknownTopicOrPartition
    );
}

#[tokio::test]
async fn a_stream_ended_by_the_client_stops_at_once_and_closing_frees_it() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "e", 1, TopicConfig::default()).await;
    let mut conn = broker.connect().await;
    let stream = conn
        .fetch_stream(30_000, 1, 1 << 20, vec![at("e", 0, 0)])
        .await
        .unwrap();
    // Ended while it waits: the broker answers the next request at once,
    // not after the 30 s wait.
    let t = Instant::now();
    tokio::time::timeout(FRAME_LIMIT, stream.end())
        .await
        .unwrap()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

    // A client that closes its streaming connection leaves nothing behind.
    let open_before = admin
        .stats()
        .await
        .unwrap()
        .get("connections_open")
        .unwrap();
    let mut other = broker.connect().await;
    let stream = other
        .fetch_stream(30_000, 1, 1 << 20, vec![at("e", 0, 0)])
        .await
        .unwrap();
    assert!(!stream.is_ended());
    drop(other);
    let deadline = Instant::now() + FRAME_LIMIT;
    loop {
        let open = admin
            .stats()
            .await
            .unwrap()
            .get("connections_open")
            .unwrap();
        if open == open_before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} open, {open_before} before"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    admin
        .produce(Acks::Leader, 1000, &[("e", 0, &batch_of(&["after"]))])
        .await
        .unwrap();
    let r = conn
        .fetch(0, 0, 1 << 20, vec![at("e", 0, 0)])
        .await
        .unwrap();
    assert_eq!(decode_records(&r[0].records, 0).len(), 1);
}

/// The broker's request count (the Stats call itself included).
async fn requests(conn: &mut sluice_client::Connection) -> u64 {
    conn.stats().await.unwrap().get("requests").unwrap()
}

#[tokio::test]
async fn a_consumer_with_fetch_stream_tails_without_a_request_per_read() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "cs", 2, TopicConfig::default()).await;
    let mut producer = broker.connect().await;
    let mut consumer = sluice_client::Consumer::connect(sluice_client::ConsumerConfig {
        fetch_stream: true,
        max_wait: Duration::from_millis(200),
        ..sluice_client::ConsumerConfig::new(broker.addr.to_string())
    })
    .await
    .unwrap();
    consumer.assign(vec![("cs".to_owned(), 0)]).await.unwrap();

    // Warm up: the stream is open once the first record came through it.
    let mut got: Vec<(u32, u64, String)> = Vec::new();
    let poll_until = async |consumer: &mut sluice_client::Consumer,
                            got: &mut Vec<(u32, u64, String)>,
                            n: usize| {
        let deadline = Instant::now() + FRAME_LIMIT;
        while got.len() < n {
            assert!(Instant::now() < deadline, "only {got:?}");
            for r in consumer.poll().await.unwrap() {
                let v = String::from_utf8(r.value().to_vec()).unwrap();
                got.push((r.partition, r.offset(), v));
            }
        }
    };
    producer
        .produce(Acks::Leader, 1000, &[("cs", 0, &batch_of(&["w"]))])
        .await
        .unwrap();
    poll_until(&mut consumer, &mut got, 1).await;

    // Twenty appends, each polled: the broker serves the produces, its
    // Stats and the consumer's stream — not a Fetch per record.
    let before = requests(&mut admin).await;
    for i in 0..20 {
        let v = format!("r{i}");
        producer
            .produce(Acks::Leader, 1000, &[("cs", 0, &batch_of(&[v.as_str()]))])
            .await
            .unwrap();
        poll_until(&mut consumer, &mut got, 2 + i).await;
    }
    let served = requests(&mut admin).await - before;
    assert!(served <= 20 + 1 + 3, "{served} requests for 20 records");
    let offsets: Vec<u64> = got.iter().map(|g| g.1).collect();
    assert_eq!(offsets, (0..21).collect::<Vec<u64>>());

    // A seek reads again from there (on a new stream).
    consumer
        .seek("cs", 0, sluice_client::SeekTo::Offset(18))
        .await
        .unwrap();
    got.clear();
    poll_until(&mut consumer, &mut got, 3).await;
    assert_eq!(
        got.iter().map(|g| g.1).collect::<Vec<_>>(),
        [18, 19, 20],
        "{got:?}"
    );

    // A partition added to the assignment joins (the stream is reopened
    // with both), and records of both arrive.
    consumer
        .assign(vec![("cs".to_owned(), 0), ("cs".to_owned(), 1)])
        .await
        .unwrap();
    producer
        .produce(Acks::Leader, 1000, &[("cs", 1, &batch_of(&["p1"]))])
        .await
        .unwrap();
    producer
        .produce(Acks::Leader, 1000, &[("cs", 0, &batch_of(&["p0"]))])
        .await
        .unwrap();
    // (An assignment starts each partition afresh: partition 0 is read
    // from its start again.)
    got.clear();
    poll_until(&mut consumer, &mut got, 23).await;
    assert_eq!(got.len(), 23, "{got:?}");
    assert!(got.contains(&(1, 0, "p1".to_owned())), "{got:?}");
    assert!(got.contains(&(0, 21, "p0".to_owned())), "{got:?}");
    assert_eq!(consumer.fetch_connections(), 1);
}

#[tokio::test]
async fn a_catching_up_stream_crosses_segments_and_a_bad_frame_after_it_is_refused() {
    let broker = TestBroker::start();
    let mut admin = broker.connect().await;
    // Small segments: the stream's positions cross many of them.
    let config = TopicConfig {
        segment_bytes: Some(65536),
        ..TopicConfig::default()
    };
    create_topic(&mut admin, "roll", 1, config).await;
    let value = "x".repeat(1000);
    for i in 0..300 {
        let v = format!("{i}:{value}");
        admin
            .produce(Acks::Leader, 1000, &[("roll", 0, &batch_of(&[v.as_str()]))])
            .await
            .unwrap();
    }
    let mut conn = broker.connect().await;
    let mut stream = conn
        .fetch_stream(10_000, 1, 1 << 20, vec![at("roll", 0, 0)])
        .await
        .unwrap();
    let mut offsets = Vec::new();
    while offsets.len() < 300 {
        let frame = next_frame(&mut stream, "the stream keeps up until the log end").await;
        assert!(!frame.last);
        for (o, v) in values(&frame, 0, offsets.len() as u64) {
            assert!(v.starts_with(&format!("{o}:")), "{o}: {v}");
            offsets.push(o);
        }
    }
    assert_eq!(offsets, (0..300).collect::<Vec<u64>>());

    // Garbage after the stream: the stream ends, the garbage is refused
    // and the connection closed; the broker serves others.
    let (mut reader, mut writer) = {
        let raw = tokio::net::TcpStream::connect(broker.addr).await.unwrap();
        raw.into_split()
    };
    let req = sluice_protocol::wire::fetch::FetchRequest {
        max_wait_ms: 10_000,
        min_bytes: 1,
        max_bytes: 1 << 20,
        partitions: vec![at("roll", 0, 300)],
    };
    let mut body = Vec::new();
    let body_len = sluice_protocol::wire::encode_body(&req, &mut body);
    let header = sluice_protocol::wire::RequestHeader {
        api_key: sluice_protocol::wire::ApiKey::FetchStream as u16,
        api_version: 0,
        correlation_id: 9,
        body_len: body_len as u32,
    }
    .encode(0)
    .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    writer
        .write_all(&[&header[..], &body].concat())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A frame shorter than any request header: it cannot be framed.
    writer.write_all(&[0, 0, 0, 2, 1, 2]).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(FRAME_LIMIT, reader.read_to_end(&mut answer))
        .await
        .expect("the broker answers and closes")
        .unwrap();
    // The stream's last frame (correlation id 9), then the refusal.
    let be32 = |b: &[u8]| u32::from_be_bytes(b.try_into().unwrap()) as usize;
    let len = be32(&answer[0..4]);
    assert_eq!(be32(&answer[4..8]), 9);
    let body_len = be32(&answer[10..14]);
    let last: sluice_protocol::wire::fetch_stream::FetchStreamResponse =
        sluice_protocol::wire::decode_body(&answer[14..14 + body_len]).unwrap();
    assert!(last.last && last.partitions.is_empty(), "{last:?}");
    let refusal = &answer[4 + len..];
    let code = u16::from_be_bytes(refusal[8..10].try_into().unwrap());
    assert_eq!(
        sluice_protocol::wire::ErrorCode::from_u16(code),
        ErrorCode::InvalidRequest
    );
    let md = admin.metadata(Some(vec!["roll".into()])).await.unwrap();
    assert_eq!(md.topics[0].partitions[0].high_watermark, 300);
}

#[tokio::test]
async fn a_broker_shutting_down_ends_its_streams_with_a_last_frame() {
    let mut broker = TestBroker::start();
    let mut admin = broker.connect().await;
    create_topic(&mut admin, "bye", 1, TopicConfig::default()).await;
    let mut conn = broker.connect().await;
    let mut stream = conn
        .fetch_stream(30_000, 1, 1 << 20, vec![at("bye", 0, 0)])
        .await
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(broker.pid() as i32);
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    });
    let t = Instant::now();
    let frame = next_frame(&mut stream, "shutting down ends the wait at once").await;
    stopper.await.unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(frame.last, "{frame:?}");
    assert_eq!(frame.partitions.len(), 1);
    assert!(frame.partitions[0].records.is_empty());
    assert!(stream.is_ended());
    drop(conn);
    drop(admin);
    // And the broker exits cleanly with the stream gone.
    broker.stop();
}
