//! The raft listener: accepts peers' connections and answers their calls
//! through the [`Registry`](super::Registry).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::server::seats::{Admission, Held, Seats};

use super::{Frame, GROUP_FORMING_WAIT, GroupId, Kind, MALFORMED, Rpc, Transport};

/// Most inbound connections served at once (peers hold one each). A
/// connection arriving when that many are open takes the seat of one that
/// has sent no frame for a second since it connected, or none for ten
/// seconds since its last (see [`crate::server::seats`]), else it is closed:
/// connections that are not peers' cannot keep a peer out. A peer whose
/// idle connection gave way connects again at its next call.
pub(super) const MAX_CONNECTIONS: usize = 256;
/// Most calls of one connection being answered at once; the connection is
/// not read further while they run.
const MAX_IN_FLIGHT: usize = 256;

/// Serves `listener` until the returned task is aborted (which closes its
/// connections too): every connection is read frame by frame. Its first
/// frame must be a [`hello`](super::hello) this node accepts; a refused
/// hello is answered with the reason, then the connection is closed. A
/// malformed frame or a frame that is not a request closes it.
pub fn serve(listener: TcpListener, transport: Arc<Transport>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let seats = Seats::new(MAX_CONNECTIONS);
        let mut connections = tokio::task::JoinSet::new();
        let accept_failed = crate::throttle::Throttle::new(Duration::from_secs(10));
        let full = crate::throttle::Throttle::new(Duration::from_secs(10));
        loop {
            while connections.try_join_next().is_some() {}
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let seat = match seats.admit(peer.ip()) {
                        Admission::Free(seat) | Admission::TakenOver(seat) => seat,
                        Admission::Full | Admission::AddressFull => {
                            if let Some(held_back) = full.allow() {
                                tracing::warn!(%peer, max = MAX_CONNECTIONS, held_back, "raft listener: every connection busy; closing a new one");
                            }
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    crate::tcp::apply(&stream, peer.ip(), transport.tcp_congestion());
                    let transport = Arc::clone(&transport);
                    connections.spawn(async move {
                        if let Err(e) = connection(stream, transport, seat).await {
                            // At most one line a second: stray connections
                            // reset by the thousand must not fill the log.
                            static CLOSED: crate::throttle::Throttle =
                                crate::throttle::Throttle::new(Duration::from_secs(1));
                            match CLOSED.allow() {
                                Some(held_back) => tracing::info!(%peer, error = %e, held_back, "raft connection closed"),
                                None => tracing::debug!(%peer, error = %e, "raft connection closed"),
                            }
                        }
                    });
                }
                Err(e) => {
                    if let Some(held_back) = accept_failed.allow() {
                        tracing::warn!(error = %e, held_back, "raft listener: accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    })
}

async fn connection(
    stream: TcpStream,
    transport: Arc<Transport>,
    seat: Held,
) -> std::io::Result<()> {
    let peer = stream.peer_addr().ok();
    let (mut read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let writer = tokio::spawn(async move {
        // Answers already queued go out together ([`super::coalesce`]).
        while let Some(first) = rx.recv().await {
            let answers = super::coalesce::drain(first, &mut rx);
            if super::coalesce::write_all(&mut write, answers)
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    // Set by a call whose request broke the layout: read no further.
    let malformed = Arc::new(tokio::sync::Notify::new());
    let mut answered_then_closed = false;
    let mut greeted = false;
    // Where this connection's calls are noted (the hello's caller).
    let mut caller: Option<Arc<std::sync::atomic::AtomicU64>> = None;
    let mut buf = BytesMut::with_capacity(64 << 10);
    let result = loop {
        match Frame::decode(&mut buf) {
            Ok(Some(frame)) => {
                if frame.kind != Kind::Request {
                    break Err(std::io::Error::other("a peer sent a non-request frame"));
                }
                if !seat.serving() {
                    break Err(displaced());
                }
                seat.served();
                if !greeted || frame.rpc == Rpc::Hello {
                    // A second hello is refused like a missing one.
                    let checked = if greeted {
                        Err("a second hello on one connection".to_owned())
                    } else {
                        transport.hello_check(&frame)
                    };
                    let (kind, body) = match &checked {
                        Ok(_) => (
                            Kind::Response,
                            super::hello::answer_body(transport.spoken_version()),
                        ),
                        Err(why) => (
                            Kind::Error,
                            Bytes::from(postcard::to_allocvec(why).unwrap_or_default()),
                        ),
                    };
                    let _ = tx.send(encode_answer(
                        kind,
                        (frame.rpc, frame.group, frame.request_id),
                        body,
                    ));
                    let from = match checked {
                        Ok(from) => from,
                        Err(why) => {
                            static REFUSED: crate::throttle::Throttle =
                                crate::throttle::Throttle::new(Duration::from_secs(10));
                            if let Some(held_back) = REFUSED.allow() {
                                tracing::warn!(?peer, reason = %why, held_back, "raft listener: refused a connection");
                            }
                            // Said above: closed without another line.
                            answered_then_closed = true;
                            break Ok(());
                        }
                    };
                    greeted = true;
                    caller = Some(transport.calls_of(from));
                    continue;
                }
                // A build before the pre-vote knows no rpc 6 and closes the
                // connection on it; a node speaking as one does the same.
                if frame.rpc == Rpc::PreVote && transport.spoken_version() == 0 {
                    break Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "rpc 6 from a peer while speaking protocol version 0",
                    ));
                }
                if let Some(slot) = &caller {
                    Transport::note_call(slot);
                }
                if frame.rpc == Rpc::Ping {
                    // A build before the ping closes the connection on it.
                    if transport.spoken_version() < super::hello::PING_FROM {
                        break Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "rpc 7 from a peer while speaking protocol version 1 or 0",
                        ));
                    }
                    // Answered here, at once: what it asks is whether this
                    // process reads its connections.
                    let _ = tx.send(encode_answer(
                        Kind::Response,
                        (frame.rpc, frame.group, frame.request_id),
                        Bytes::new(),
                    ));
                    continue;
                }
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    break Ok(());
                };
                let transport_for_call = Arc::clone(&transport);
                let tx = tx.clone();
                let local = transport.local();
                let malformed = Arc::clone(&malformed);
                tokio::spawn(async move {
                    let wait = if matches!(frame.rpc, Rpc::Vote | Rpc::PreVote) {
                        GROUP_FORMING_WAIT
                    } else {
                        Duration::ZERO
                    };
                    let request = (frame.rpc, frame.group, frame.request_id);
                    let handler = transport_for_call
                        .registry
                        .get_or_wait(frame.group, wait)
                        .await;
                    let answer = match handler {
                        Some(h) => h.handle(frame.rpc, frame.body, frame.payload).await,
                        None => Err(format!("node {local} holds no {} group", frame.group)),
                    };
                    let broken = matches!(&answer, Err(m) if m.starts_with(MALFORMED));
                    let (kind, body) = match answer {
                        Ok(body) => (Kind::Response, body),
                        Err(message) => (
                            Kind::Error,
                            Bytes::from(postcard::to_allocvec(&message).unwrap_or_default()),
                        ),
                    };
                    let _ = tx.send(encode_answer(kind, request, body));
                    if broken {
                        malformed.notify_one();
                    }
                    drop(permit);
                });
                continue;
            }
            Ok(None) => {}
            Err(e) => break Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        }
        buf.reserve(64 << 10);
        if !seat.waiting(tokio::time::Instant::now()) {
            break Err(displaced());
        }
        tokio::select! {
            r = read.read_buf(&mut buf) => match r {
                Ok(0) => break Ok(()),
                Ok(_) => {}
                Err(e) => break Err(e),
            },
            () = seat.given_up() => break Err(displaced()),
            () = malformed.notified() => {
                answered_then_closed = true;
                break Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "a peer sent a malformed request",
                ));
            }
        }
    };
    drop(tx);
    if result.is_err() && !answered_then_closed {
        // A peer breaking the layout gets nothing more.
        writer.abort();
    } else {
        // Answers already computed still go out before the socket closes.
        let _ = tokio::time::timeout(Duration::from_secs(1), writer).await;
    }
    result
}

/// The encoded answer of `kind` with `body` to the request `(rpc, group,
/// request_id)`.
fn encode_answer(kind: Kind, request: (Rpc, GroupId, u64), body: Bytes) -> Bytes {
    let (rpc, group, request_id) = request;
    let mut out = BytesMut::new();
    Frame {
        kind,
        rpc,
        group,
        request_id,
        body,
        payload: BytesMut::new(),
    }
    .encode(&mut out);
    out.freeze()
}

/// Why a connection that gave its seat to a newcomer was closed.
fn displaced() -> std::io::Error {
    std::io::Error::other("silent while every connection was taken; closed for a new one")
}
