//! Two transports in one process, over loopback.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};

use super::*;

/// Answers with the body reversed, after `delay_ms` read from the body's
/// first byte (so answers can come back out of order).
struct Echo;

impl GroupHandler for Echo {
    fn handle(&self, _rpc: Rpc, body: Bytes, _payload: BytesMut) -> HandlerFuture {
        Box::pin(async move {
            let delay = u64::from(body.first().copied().unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let mut v = body.to_vec();
            v.reverse();
            Ok(Bytes::from(v))
        })
    }
}

const T: Duration = Duration::from_secs(10);

async fn pair() -> (
    Arc<Transport>,
    Arc<Transport>,
    tokio::task::JoinHandle<()>,
    SocketAddr,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Transport::new("test", 2, HashMap::from([(1, ([127, 0, 0, 1], 9).into())]));
    server
        .registry
        .register(GroupId::Controller, Arc::new(Echo));
    let task = serve(listener, Arc::clone(&server));
    let client = Transport::new("test", 1, HashMap::from([(2, addr)]));
    (client, server, task, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_calls_get_their_own_answers() {
    let (client, _server, _task, _) = pair().await;
    // The slowest call first: answers come back out of order, each to its
    // own caller.
    let calls = (0..20u8).map(|i| {
        let client = Arc::clone(&client);
        async move {
            let body = vec![100 - i * 5, i];
            let r = client
                .call(2, GroupId::Controller, Rpc::Vote, body, T)
                .await;
            (i, r)
        }
    });
    for (i, r) in futures::future::join_all(calls).await {
        assert_eq!(r.unwrap(), Bytes::from(vec![i, 100 - i * 5]));
    }
    let counts = client.counters.snapshot();
    assert!(counts.contains(&("vote", "ok", 20)), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_the_peer_does_not_hold_is_an_error() {
    let (client, _server, _task, _) = pair().await;
    let group = GroupId::Partition {
        topic_id: 9,
        partition: 1,
    };
    let r = client.call(2, group, Rpc::AppendEntries, vec![0], T).await;
    match r {
        Err(CallError::Remote(2, m)) => assert!(m.contains("topic 9 partition 1"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Unknown node ids never dial anything.
    assert!(matches!(
        client
            .call(7, GroupId::Controller, Rpc::Vote, vec![0], T)
            .await,
        Err(CallError::Unreachable(7, _))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_times_out_and_the_connection_reconnects_after_a_restart() {
    let (client, server, task, addr) = pair().await;
    let slow = client
        .call(
            2,
            GroupId::Controller,
            Rpc::Vote,
            vec![200],
            Duration::from_millis(50),
        )
        .await;
    assert!(matches!(slow, Err(CallError::Timeout(2, _))), "{slow:?}");
    // The peer goes away: calls fail as unreachable, without hanging.
    task.abort();
    let _ = task.await;
    drop(server);
    let mut unreachable = false;
    for _ in 0..100 {
        match client
            .call(2, GroupId::Controller, Rpc::Vote, vec![0], T)
            .await
        {
            Err(CallError::Unreachable(..)) => {
                unreachable = true;
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    assert!(unreachable);
    // It comes back on the same address: calls succeed again once the
    // backoff has passed.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let server = Transport::new("test", 2, HashMap::from([(1, ([127, 0, 0, 1], 9).into())]));
    server
        .registry
        .register(GroupId::Controller, Arc::new(Echo));
    let _task = serve(listener, Arc::clone(&server));
    let deadline = std::time::Instant::now() + T;
    loop {
        match client
            .call(2, GroupId::Controller, Rpc::Vote, vec![0, 1], T)
            .await
        {
            Ok(b) => {
                assert_eq!(b, Bytes::from_static(&[1, 0]));
                break;
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Answers with the payload it received.
struct PayloadEcho;

impl GroupHandler for PayloadEcho {
    fn handle(&self, _rpc: Rpc, _body: Bytes, payload: BytesMut) -> HandlerFuture {
        Box::pin(async move { Ok(payload.freeze()) })
    }
}

/// Refuses every call as malformed.
struct Broken;

impl GroupHandler for Broken {
    fn handle(&self, _rpc: Rpc, _body: Bytes, _payload: BytesMut) -> HandlerFuture {
        Box::pin(async move { Err(format!("{MALFORMED}: on purpose")) })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_ranges_arrive_as_the_payload_section() {
    use std::io::Write;

    let (client, server, _task, _) = pair().await;
    let group = GroupId::Partition {
        topic_id: 1,
        partition: 0,
    };
    server.registry.register(group, Arc::new(PayloadEcho));
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(&content).unwrap();
    let file: Arc<dyn crate::log::LogFile> = Arc::new(crate::log::io::StdFile::new(f));
    let range = |position: u64, len: u64| raw::RawRange {
        file: Arc::clone(&file),
        position,
        len,
    };
    let files = vec![range(10, 1000), range(1010, 200_000), range(5, 3)];
    let answer = client
        .call_with_files(2, group, Rpc::AppendEntries, vec![7], files, T)
        .await
        .unwrap();
    let mut expected = content[10..201_010].to_vec();
    expected.extend_from_slice(&content[5..8]);
    assert_eq!(answer.len(), expected.len());
    assert!(answer[..] == expected[..]);
    // The sender counts a range after its `sendfile` returns, which can be
    // after the peer's answer arrived: wait for the count to settle.
    let counted = || {
        client
            .sendfile_stats
            .fetch_bytes_sendfile
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while counted() < expected.len() as u64 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(counted(), expected.len() as u64);
    // A range past the file's end cuts the connection: the call fails, and
    // the next one goes out on a new connection.
    let r = client
        .call_with_files(
            2,
            group,
            Rpc::AppendEntries,
            vec![],
            vec![range(299_000, 5_000)],
            T,
        )
        .await;
    assert!(matches!(r, Err(CallError::Unreachable(..))), "{r:?}");
    let deadline = std::time::Instant::now() + T;
    loop {
        match client
            .call_with_files(2, group, Rpc::AppendEntries, vec![], vec![range(0, 4)], T)
            .await
        {
            Ok(b) => {
                assert_eq!(b[..], content[..4]);
                break;
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_is_answered_then_its_connection_closed() {
    let (_client, server, _task, addr) = pair().await;
    let group = GroupId::Partition {
        topic_id: 3,
        partition: 0,
    };
    server.registry.register(group, Arc::new(Broken));
    let mut out = BytesMut::from(&greeting("test", 1, 2)[..]);
    Frame {
        kind: Kind::Request,
        rpc: Rpc::AppendEntries,
        group,
        request_id: 5,
        body: Bytes::from_static(b"x"),
        payload: BytesMut::from(&b"yz"[..]),
    }
    .encode(&mut out);
    let answers: Vec<(Kind, u64)> = answers_to(addr, &out)
        .await
        .iter()
        .map(|f| (f.kind, f.request_id))
        .collect();
    assert_eq!(answers, [(Kind::Response, 0), (Kind::Error, 5)]);
}

/// The encoded hello of node `from` of `cluster` to node `to`.
fn greeting(cluster: &str, from: u64, to: u64) -> Bytes {
    hello::Hello {
        cluster_id: cluster.into(),
        from,
        to,
    }
    .encode(hello::PROTOCOL_VERSION)
}

/// What the listener at `addr` sends back, up to its close, to `bytes`.
async fn answers_to(addr: SocketAddr, bytes: &[u8]) -> Vec<Frame> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(T, s.read_to_end(&mut got))
        .await
        .expect("closed, not left open")
        .unwrap();
    let mut got = BytesMut::from(&got[..]);
    let mut frames = Vec::new();
    while let Some(f) = Frame::decode(&mut got).unwrap() {
        frames.push(f);
    }
    assert!(got.is_empty());
    frames
}

/// A node of another cluster, a caller that means another node, and a
/// connection that does not begin with a hello are refused with the
/// reason, and nothing sent after the refused first frame is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_are_refused_and_not_served() {
    let (client, _server, _task, addr) = pair().await;
    let vote = {
        let mut out = BytesMut::new();
        Frame {
            kind: Kind::Request,
            rpc: Rpc::Vote,
            group: GroupId::Controller,
            request_id: 9,
            body: Bytes::from_static(&[0, 1]),
            payload: BytesMut::new(),
        }
        .encode(&mut out);
        out.freeze()
    };
    let cases: [(Bytes, &str); 5] = [
        (greeting("other", 1, 2), "belongs to cluster \"test\""),
        (greeting("test", 1, 3), "this is node 2, not node 3"),
        (greeting("test", 4, 2), "node 4 is not a peer"),
        (Bytes::new(), "must be a hello"),
        (
            [&greeting("test", 1, 2)[..], &greeting("test", 1, 2)[..]]
                .concat()
                .into(),
            "a second hello",
        ),
    ];
    for (first, why) in cases {
        let frames = answers_to(addr, &[&first[..], &vote[..]].concat()).await;
        let refusal = frames.last().expect("an answer");
        assert_eq!(refusal.kind, Kind::Error, "{why}");
        let message: String = postcard::from_bytes(&refusal.body).unwrap();
        assert!(message.contains(why), "{message}");
        // The vote was not served (only refused, when it came first).
        assert!(
            !frames
                .iter()
                .any(|f| f.kind == Kind::Response && f.request_id == 9),
            "{why}: {frames:?}"
        );
    }
    // The right hello is welcomed and the vote behind it answered.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&[&greeting("test", 1, 2)[..], &vote[..]].concat())
            .await
            .unwrap();
        let mut got = BytesMut::new();
        let mut frames = Vec::new();
        while frames.len() < 2 {
            match Frame::decode(&mut got).unwrap() {
                Some(f) => frames.push((f.kind, f.request_id, f.body)),
                None => {
                    let n = tokio::time::timeout(T, s.read_buf(&mut got))
                        .await
                        .unwrap()
                        .unwrap();
                    assert!(n > 0, "closed after {frames:?}");
                }
            }
        }
        assert_eq!(
            frames[0],
            (
                Kind::Response,
                0,
                hello::answer_body(hello::PROTOCOL_VERSION)
            )
        );
        assert_eq!(frames[1], (Kind::Response, 9, Bytes::from_static(&[1, 0])));
    }
    let r = client
        .call(2, GroupId::Controller, Rpc::Vote, vec![0, 1], T)
        .await;
    assert_eq!(r.unwrap(), Bytes::from_static(&[1, 0]));
    assert!(client.connected(2));
}

/// A refused caller that goes on sending, and reads only after the
/// listener has closed, still reads the refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_reaches_a_caller_that_goes_on_sending() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (_client, _server, _task, addr) = pair().await;
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut read, mut write) = s.into_split();
    write.write_all(&greeting("other", 1, 2)).await.unwrap();
    let sender = tokio::spawn(async move {
        let filler = vec![0u8; 64 << 10];
        for _ in 0..32 {
            if write.write_all(&filler).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    // Read only once the listener has had time to close.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got = BytesMut::new();
    let frame = loop {
        if let Some(f) = Frame::decode(&mut got).unwrap() {
            break f;
        }
        let n = tokio::time::timeout(T, read.read_buf(&mut got))
            .await
            .unwrap()
            .expect("the refusal, not a reset");
        assert!(n > 0, "closed without an answer");
    };
    assert_eq!((frame.kind, frame.request_id), (Kind::Error, 0));
    let message: String = postcard::from_bytes(&frame.body).unwrap();
    assert!(message.contains("belongs to cluster"), "{message}");
    sender.abort();
}

/// A node's calls to a peer of another cluster fail as unreachable, with
/// the peer's reason, and are retried with the reconnect backoff; the
/// peer is reported unreachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_node_of_another_cluster_fail_with_its_reason() {
    let (_client, _server, _task, addr) = pair().await;
    let stranger = Transport::new("other", 1, HashMap::from([(2, addr)]));
    let mut reasons = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        match stranger
            .call(2, GroupId::Controller, Rpc::Vote, vec![0, 1], T)
            .await
        {
            Ok(b) => panic!("a stranger was answered: {b:?}"),
            Err(CallError::Unreachable(2, why)) => reasons.push(why),
            Err(e) => panic!("{e}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        reasons.iter().any(|r| r.contains("it refused this node")
            && r.contains("belongs to cluster \"test\", the caller (node 1) to cluster \"other\"")),
        "{reasons:?}"
    );
    // Between refusals the backoff holds: far fewer connects than calls.
    let refusals = reasons.iter().filter(|r| r.contains("refused")).count();
    assert!(refusals <= 12, "{refusals} connects in 3 s: {reasons:?}");
    assert_eq!(stranger.unreachable(Duration::from_secs(1)), [2]);
    assert!(!stranger.connected(2));
}

/// A socket bound to a port and connected to that same port connects to
/// itself (TCP simultaneous open): such a connection is refused, and one
/// to a real listener is kept.
#[tokio::test]
async fn a_connection_to_itself_is_refused() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let stream = socket.connect(addr).await.unwrap();
    assert_eq!(stream.local_addr().unwrap(), stream.peer_addr().unwrap());
    let err = refuse_self_connection(stream).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    assert!(refuse_self_connection(other).is_ok());
}

/// A call for a group the peer forms a moment later is answered by it
/// (the peer waits up to `GROUP_FORMING_WAIT`); one for a group it never
/// forms is an error once that wait is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_for_a_group_being_formed_waits_for_it() {
    let (client, server, _task, _) = pair().await;
    let group = GroupId::Partition {
        topic_id: 9,
        partition: 4,
    };
    let late = {
        let server = Arc::clone(&server);
        tokio::spawn(async move {
            tokio::time::sleep(GROUP_FORMING_WAIT / 4).await;
            server.registry.register(group, Arc::new(Echo));
        })
    };
    let answer = client.call(2, group, Rpc::Vote, vec![0, 1, 2], T).await;
    assert_eq!(answer.unwrap(), Bytes::from_static(&[2, 1, 0]));
    late.await.unwrap();

    let started = std::time::Instant::now();
    let never = GroupId::Partition {
        topic_id: 9,
        partition: 5,
    };
    let err = client
        .call(2, never, Rpc::Vote, vec![0], T)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Remote(2, m) if m.contains("holds no")),
        "{err:?}"
    );
    assert!(
        started.elapsed() >= GROUP_FORMING_WAIT,
        "{:?}",
        started.elapsed()
    );
}

/// Connections that are not a peer's — opened and left silent — holding
/// every seat of the raft listener do not keep a peer out: past their grace
/// the peer's connection takes the seat of one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_do_not_keep_a_peer_out() {
    let (client, _server, _task, addr) = pair().await;
    let mut silent = Vec::new();
    for _ in 0..server::MAX_CONNECTIONS {
        silent.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(crate::server::seats::FIRST_REQUEST_GRACE + Duration::from_millis(200))
        .await;
    let r = client
        .call(
            2,
            GroupId::Controller,
            Rpc::Vote,
            vec![0, 7],
            Duration::from_secs(3),
        )
        .await;
    assert_eq!(r.unwrap(), Bytes::from(vec![7, 0]));
    drop(silent);
}

/// A peer that stops reading (a stalled process, its socket full): calls
/// to it time out, and their frames still queued behind the full socket
/// are never sent, so when it reads again it gets only the few that were
/// already on their way, not every request nobody waits for any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_of_calls_given_up_are_not_sent() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = Transport::new("test", 1, HashMap::from([(2, addr)]));
    const CALLS: usize = 48;
    const BODY: usize = 1 << 20;
    let calls = (0..CALLS).map(|_| {
        let client = Arc::clone(&client);
        async move {
            client
                .call(
                    2,
                    GroupId::Controller,
                    Rpc::AppendEntries,
                    vec![7; BODY],
                    Duration::from_millis(300),
                )
                .await
        }
    });
    // The peer accepts but reads nothing until every call has timed out.
    let accepted = tokio::spawn(async move {
        let stream = listener.accept().await.unwrap().0;
        (stream, listener)
    });
    // One call first opens the connection the others then share.
    let first = client
        .call(
            2,
            GroupId::Controller,
            Rpc::Vote,
            vec![0],
            Duration::from_millis(100),
        )
        .await;
    assert!(matches!(first, Err(CallError::Timeout(2, _))), "{first:?}");
    for r in futures::future::join_all(calls).await {
        assert!(matches!(r, Err(CallError::Timeout(2, _))), "{r:?}");
    }
    let (mut peer, _listener) = accepted.await.unwrap();
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    while let Ok(Ok(n)) =
        tokio::time::timeout(Duration::from_millis(500), peer.read(&mut buf)).await
    {
        if n == 0 {
            break;
        }
        received += n;
    }
    // What the sockets held when the calls gave up, at most: far less
    // than the 48 MiB asked.
    assert!(
        received < CALLS * BODY / 3,
        "{received} bytes of {} sent to a peer after its callers gave up",
        CALLS * BODY
    );
}

/// A peer whose answer to one of this node's calls came too late is
/// unreachable once that lasts, until it answers a call again or calls
/// this node: a node whose groups all follow leaders on that peer may
/// have nothing to call it for, and the peer's own calls show it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_calls_this_node_is_not_unreachable() {
    let a_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (a_addr, b_addr) = (
        a_listener.local_addr().unwrap(),
        b_listener.local_addr().unwrap(),
    );
    let a = Transport::new("test", 1, HashMap::from([(2, b_addr)]));
    let b = Transport::new("test", 2, HashMap::from([(1, a_addr)]));
    for t in [&a, &b] {
        t.registry.register(GroupId::Controller, Arc::new(Echo));
    }
    let _a_task = serve(a_listener, Arc::clone(&a));
    let _b_task = serve(b_listener, Arc::clone(&b));
    let limit = Duration::from_millis(300);
    // Answered after 200 ms, given up after 50.
    let late = a
        .call(
            2,
            GroupId::Controller,
            Rpc::Vote,
            vec![200, 1],
            Duration::from_millis(50),
        )
        .await;
    assert!(matches!(late, Err(CallError::Timeout(..))), "{late:?}");
    tokio::time::sleep(limit + Duration::from_millis(50)).await;
    assert_eq!(a.unreachable(limit), [2]);
    b.call(1, GroupId::Controller, Rpc::Vote, vec![0, 1], T)
        .await
        .unwrap();
    assert_eq!(
        a.unreachable(limit),
        Vec::<u64>::new(),
        "node 2 called node 1"
    );
    tokio::time::sleep(limit + Duration::from_millis(50)).await;
    assert_eq!(a.unreachable(limit), [2], "no call either way since");
    a.call(2, GroupId::Controller, Rpc::Vote, vec![0, 1], T)
        .await
        .unwrap();
    assert_eq!(a.unreachable(limit), Vec::<u64>::new());
}

/// A peer that accepts and keeps every connection, reading and answering
/// nothing: its address, and how many connections it accepted.
async fn silent_peer() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let counted = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            held.push(stream);
        }
    });
    (addr, accepted)
}

/// Many callers that find no connection to a peer at once (every Raft
/// group calls it, at a reconnect) share one connect: the peer sees one
/// connection, not one per caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_find_no_connection_share_one_connect() {
    let (addr, accepted) = silent_peer().await;
    let client = Transport::new("test", 1, HashMap::from([(2, addr)]));
    let calls = (0..32u8).map(|i| {
        let client = Arc::clone(&client);
        async move {
            client
                .call(
                    2,
                    GroupId::Controller,
                    Rpc::Vote,
                    vec![i],
                    Duration::from_millis(300),
                )
                .await
        }
    });
    for r in futures::future::join_all(calls).await {
        assert!(matches!(r, Err(CallError::Timeout(2, _))), "{r:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "connections accepted");
}

/// A call its caller drops before the answer (openraft's own timeout fires
/// first: it wraps each call in one as long as the call's, started
/// earlier) leaves no waiter behind, so that its frame is not sent later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_by_its_caller_leaves_no_waiter() {
    let (addr, _) = silent_peer().await;
    let client = Transport::new("test", 1, HashMap::from([(2, addr)]));
    for i in 0..5u8 {
        let call = client.call(2, GroupId::Controller, Rpc::Vote, vec![i], T);
        let given_up = tokio::time::timeout(Duration::from_millis(50), call).await;
        assert!(given_up.is_err(), "the peer answered nothing");
    }
    let waiters = {
        let state = client.state.lock();
        let conn = state[&2].conn.as_ref().expect("the connection");
        conn.pending.lock().len()
    };
    assert_eq!(waiters, 0, "waiters of calls dropped by their callers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_side_learns_the_others_protocol_version_from_the_hello() {
    let (client, server, _task, addr) = pair().await;
    assert_eq!(client.peer_version(2), None, "nothing said yet");
    assert_eq!(client.peer_version(7), None, "not a peer");
    client
        .call(2, GroupId::Controller, Rpc::Vote, vec![1], T)
        .await
        .unwrap();
    // The caller from the answer to its hello, the listener from the hello.
    assert_eq!(client.peer_version(2), Some(hello::PROTOCOL_VERSION));
    assert_eq!(server.peer_version(1), Some(hello::PROTOCOL_VERSION));

    // A hello of a build before the version (it ends at the node ids): the
    // listener takes the caller for version 0, and answers with its own.
    let old = hello::Hello {
        cluster_id: "test".into(),
        from: 1,
        to: 2,
    }
    .encode(0);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&old).await.unwrap();
    let mut got = BytesMut::new();
    let answer = loop {
        if let Some(f) = Frame::decode(&mut got).unwrap() {
            break f;
        }
        assert!(
            tokio::time::timeout(T, s.read_buf(&mut got))
                .await
                .unwrap()
                .unwrap()
                > 0
        );
    };
    assert_eq!(answer.kind, Kind::Response);
    assert_eq!(
        hello::answered_version(&answer.body),
        hello::PROTOCOL_VERSION
    );
    assert_eq!(server.peer_version(1), Some(0));
}

/// A ping is answered at once by the connection's reader, with an empty
/// body, not by the group's handler (which would echo the body) and also
/// for a group the peer does not hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_is_answered_by_the_reader_itself() {
    let (client, _server, _task, _) = pair().await;
    let echoed = client
        .call(2, GroupId::Controller, Rpc::Vote, vec![1, 9], T)
        .await
        .unwrap();
    assert_eq!(echoed, Bytes::from(vec![9, 1]), "the handler answers calls");
    for group in [
        GroupId::Controller,
        GroupId::Partition {
            topic_id: 9,
            partition: 1,
        },
    ] {
        let answer = client.call(2, group, Rpc::Ping, vec![1, 9], T).await;
        assert_eq!(answer.unwrap(), Bytes::new(), "{group}");
    }
    let counts = client.counters.snapshot();
    assert!(counts.contains(&("ping", "ok", 2)), "{counts:?}");
}
