//! Responses whose records lie outside the hot tail are sent from a thread
//! of their own, off the reactor.
//!
//! A lagging consumer's fetch moves megabytes per response, and on loopback
//! each `sendfile` call also runs the receiver's TCP input: measured during
//! W7, the cold reader's `sendfile` took over half of a runtime thread. On
//! the reactor that time is taken turn by turn from the tailing
//! connections that share the thread (cooperative scheduling); on a thread
//! of its own the kernel shares the CPUs between them preemptively, and the
//! reactor stays free for the tail. A range that is not resident is read in
//! on the same thread first (see [`super::page_cache::read_in`]).
//!
//! The thread works on its own duplicate of the socket's descriptor, so the
//! connection closing (or its task being dropped) never leaves it writing
//! to a reused descriptor; it waits for writability with `poll(2)` and gives
//! up at once when the send is abandoned (the caller's future dropped, as on
//! a write timeout): the socket then closes when the thread lets go of it.
//! Byte chunks (response and partition headers, a few hundred bytes) are
//! copied for the thread; record bytes still go by `sendfile` only.
//!
//! Each send has a thread of its own (at most [`MAX_IN_FLIGHT`] at once).
//! Once it has to read a range in from the disk, the thread lowers its own
//! CPU priority ([`COLD_NICE`]) for the rest of its life: a reader that far
//! behind then gets the CPU the tailing connections and producers leave,
//! instead of taking half of it from them on a small machine.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::MsgFlags;
use tokio::net::TcpStream;

use super::{MAX_SENDFILE, page_cache};
use crate::service::fetch::{Chunk, FileRange};
use crate::service::stats::Stats;

/// A response with at least this many record bytes outside the hot tail is
/// sent off the reactor; smaller ones are not worth the thread hand-off.
pub(super) const MIN_COLD_BYTES: u64 = 256 << 10;

/// How often a thread waiting for a full socket checks whether its send was
/// abandoned.
const POLL_SLICE_MS: u16 = 50;

/// Most responses sent from their own threads at once (in this process).
/// Each holds a thread until its last byte is in the socket, however slowly
/// the client reads; the cap bounds the threads slow catch-up readers can
/// hold. Over it, responses are sent on the reactor as before.
pub(super) const MAX_IN_FLIGHT: usize = 64;

/// The nice value a send thread takes once it reads a range in from disk
/// (see the module docs). It never goes back: the thread ends with its send.
const COLD_NICE: libc::c_int = 10;

/// Responses being sent from their own threads now.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// One of the [`MAX_IN_FLIGHT`] places, held until the thread is done.
#[derive(Debug)]
pub(super) struct Slot(&'static AtomicUsize);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Slot {
    /// A place counted in `in_flight`, if fewer than `max` are taken.
    fn take(in_flight: &'static AtomicUsize, max: usize) -> Option<Slot> {
        in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(in_flight))
    }
}

/// Whether `chunks` should be sent with [`send`]: enough record bytes
/// outside the hot tail, and another client connection open that the
/// reactor serves. With a single connection there is nothing to keep the
/// reactor free for, and the hand-off cost a lone catch-up reader (W2)
/// about a sixth of its throughput on the 2-vCPU machine measured
/// (`docs/benchmarks.md`).
/// Returns the place to send it with, if one of the [`MAX_IN_FLIGHT`] is
/// free.
pub(super) fn slot_for(chunks: &[Chunk<'_>], stats: &Stats) -> Option<Slot> {
    if stats.connections_open.load(Ordering::Relaxed) < 2 {
        return None;
    }
    let cold: u64 = chunks
        .iter()
        .map(|c| match c {
            Chunk::File(r) if !r.hot => r.len,
            _ => 0,
        })
        .sum();
    if cold < MIN_COLD_BYTES {
        return None;
    }
    Slot::take(&IN_FLIGHT, MAX_IN_FLIGHT)
}

/// One piece the thread sends.
enum Piece {
    Bytes(Vec<u8>),
    File(FileRange),
}

/// What the thread did, for the counters.
#[derive(Debug, Default)]
struct Sent {
    sendfile_bytes: u64,
    cold_reads: u64,
    cold_bytes: u64,
}

/// Sets the flag when the send's future is dropped before the thread ended.
struct AbandonOnDrop(Arc<AtomicBool>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Sends every chunk in order from a thread of its own; returns when it
/// is all written (to the socket buffer). On error the connection must be
/// closed, as with [`super::send`]. `None`, with nothing sent, when no
/// thread could be started: the caller sends on the reactor instead.
pub(super) async fn send(
    stream: &TcpStream,
    chunks: &[Chunk<'_>],
    stats: &Stats,
    slot: Slot,
) -> Option<io::Result<()>> {
    let fd = match stream.as_fd().try_clone_to_owned() {
        Ok(fd) => fd,
        Err(e) => return Some(Err(e)),
    };
    let pieces: Vec<Piece> = chunks
        .iter()
        .filter_map(|c| match c {
            Chunk::Bytes([]) => None,
            Chunk::Bytes(b) => Some(Piece::Bytes(b.to_vec())),
            Chunk::File(r) if r.len == 0 => None,
            Chunk::File(r) => Some(Piece::File(r.clone())),
        })
        .collect();
    let abandoned = Arc::new(AtomicBool::new(false));
    let _abandon = AbandonOnDrop(Arc::clone(&abandoned));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let started = std::thread::Builder::new()
        .name("sluice-catch-up".into())
        .spawn(move || {
            let _slot = slot;
            let _ = tx.send(send_pieces(&fd, &pieces, &abandoned));
        });
    if let Err(e) = started {
        tracing::debug!(error = %e, "no thread for a catch-up send; sending on the reactor");
        return None;
    }
    let sent = match rx.await {
        Ok(Ok(sent)) => sent,
        Ok(Err(e)) => return Some(Err(e)),
        Err(_) => {
            return Some(Err(io::Error::other(
                "the send thread ended without an answer",
            )));
        }
    };
    Stats::add(&stats.offloaded_sends, 1);
    Stats::add(&stats.fetch_bytes_sendfile, sent.sendfile_bytes);
    Stats::add(&stats.cold_reads, sent.cold_reads);
    Stats::add(&stats.cold_bytes, sent.cold_bytes);
    Some(Ok(()))
}

/// The thread's part. Blocking.
fn send_pieces(fd: &OwnedFd, pieces: &[Piece], abandoned: &AtomicBool) -> io::Result<Sent> {
    let mut sent = Sent::default();
    for (i, piece) in pieces.iter().enumerate() {
        let more = i + 1 < pieces.len();
        match piece {
            Piece::Bytes(b) => send_bytes(fd, b, more, abandoned)?,
            Piece::File(r) => {
                if !r.hot && !page_cache::is_resident(r.file.os_file(), r.position, r.len) {
                    if sent.cold_reads == 0 {
                        page_cache::lower_thread_priority(COLD_NICE);
                    }
                    sent.cold_reads += 1;
                    sent.cold_bytes += r.len;
                    page_cache::read_in(r.file.os_file(), r.position, r.len)?;
                }
                sendfile_range(fd, r, abandoned)?;
                sent.sendfile_bytes += r.len;
            }
        }
    }
    Ok(sent)
}

fn send_bytes(fd: &OwnedFd, mut buf: &[u8], more: bool, abandoned: &AtomicBool) -> io::Result<()> {
    let flags = if more {
        MsgFlags::from_bits_retain(libc::MSG_MORE)
    } else {
        MsgFlags::empty()
    };
    while !buf.is_empty() {
        check(abandoned)?;
        match nix::sys::socket::send(fd.as_raw_fd(), buf, flags) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(Errno::EAGAIN) => wait_writable(fd, abandoned)?,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn sendfile_range(fd: &OwnedFd, range: &FileRange, abandoned: &AtomicBool) -> io::Result<()> {
    let (mut position, mut len) = (range.position, range.len);
    while len > 0 {
        check(abandoned)?;
        let mut offset = position as libc::off_t;
        let count = len.min(MAX_SENDFILE) as usize;
        match nix::sys::sendfile::sendfile(fd, range.file.os_file(), Some(&mut offset), count) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("segment file ended at {position} with {len} bytes left to send"),
                ));
            }
            Ok(n) => {
                position += n as u64;
                len -= n as u64;
            }
            Err(Errno::EAGAIN) => wait_writable(fd, abandoned)?,
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Fails once the send was abandoned: checked before every system call, so
/// the thread stops within one call (or one [`POLL_SLICE_MS`] wait).
fn check(abandoned: &AtomicBool) -> io::Result<()> {
    if abandoned.load(Ordering::Relaxed) {
        return Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "send abandoned before the socket took the whole response",
        ));
    }
    Ok(())
}

/// Waits until the socket takes more bytes, or fails if the send was
/// abandoned or the socket failed.
fn wait_writable(fd: &OwnedFd, abandoned: &AtomicBool) -> io::Result<()> {
    loop {
        check(abandoned)?;
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
        match poll(&mut fds, PollTimeout::from(POLL_SLICE_MS)) {
            Ok(0) | Err(Errno::EINTR) => {}
            // Writable, or an error (POLLERR, POLLHUP) that the next send
            // reports.
            Ok(_) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Duration;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::log::LogFile;
    use crate::log::io::StdFile;

    fn file_of(len: usize) -> (tempfile::NamedTempFile, Arc<dyn LogFile>, Vec<u8>) {
        let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&bytes).unwrap();
        let file: Arc<dyn LogFile> = Arc::new(StdFile::new(tmp.reopen().unwrap()));
        (tmp, file, bytes)
    }

    fn range(file: &Arc<dyn LogFile>, position: u64, len: u64, hot: bool) -> FileRange {
        FileRange {
            file: Arc::clone(file),
            position,
            len,
            hot,
        }
    }

    /// A place of a counter of the test's own.
    fn test_slot() -> Slot {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        Slot::take(&COUNT, usize::MAX).unwrap()
    }

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.unwrap(), server.unwrap().0)
    }

    #[test]
    fn only_large_cold_responses_with_company_go_off_the_reactor() {
        let (_t, f, _) = file_of(16);
        let stats = Stats::default();
        let big_cold = [Chunk::File(range(&f, 0, MIN_COLD_BYTES, false))];
        let big_hot = [Chunk::File(range(&f, 0, MIN_COLD_BYTES, true))];
        let split = [
            Chunk::File(range(&f, 0, MIN_COLD_BYTES / 2, false)),
            Chunk::Bytes(b"header"),
            Chunk::File(range(&f, 0, MIN_COLD_BYTES / 2, false)),
        ];
        let small = [Chunk::File(range(&f, 0, MIN_COLD_BYTES - 1, false))];
        let worth_it = |chunks: &[Chunk<'_>]| slot_for(chunks, &stats).is_some();
        // One connection: nothing to keep the reactor free for.
        Stats::add(&stats.connections_open, 1);
        assert!(!worth_it(&big_cold));
        Stats::add(&stats.connections_open, 1);
        assert!(worth_it(&big_cold));
        assert!(worth_it(&split));
        assert!(!worth_it(&big_hot));
        assert!(!worth_it(&small));
    }

    #[test]
    fn places_are_capped_and_given_back() {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let mut held: Vec<Slot> = (0..3).map_while(|_| Slot::take(&COUNT, 3)).collect();
        assert_eq!(held.len(), 3);
        assert!(Slot::take(&COUNT, 3).is_none(), "a fourth place");
        held.pop();
        assert_eq!(COUNT.load(Ordering::Acquire), 2);
        held.push(Slot::take(&COUNT, 3).expect("a place given back"));
        drop(held);
        assert_eq!(COUNT.load(Ordering::Acquire), 0);
    }

    /// Bytes and ranges arrive whole and in order through a tiny send
    /// buffer and a slow reader (the thread meets a full socket again and
    /// again), and the counters count the records.
    #[tokio::test]
    async fn a_response_sent_from_the_thread_arrives_in_order() {
        let (_t, f, bytes) = file_of(600_000);
        let (sender, mut receiver) = pair().await;
        nix::sys::socket::setsockopt(&sender, nix::sys::socket::sockopt::SndBuf, &4096).unwrap();
        let heads = [vec![0xAA; 40], vec![0xBB; 3000], vec![0xCC; 2]];
        let chunks = [
            Chunk::Bytes(&heads[0]),
            Chunk::File(range(&f, 7, 300_000, false)),
            Chunk::Bytes(&heads[1]),
            Chunk::File(range(&f, 0, 0, false)),
            Chunk::File(range(&f, 300_007, 299_993, true)),
            Chunk::Bytes(&heads[2]),
        ];
        let mut want = heads[0].clone();
        want.extend_from_slice(&bytes[7..300_007]);
        want.extend_from_slice(&heads[1]);
        want.extend_from_slice(&bytes[300_007..]);
        want.extend_from_slice(&heads[2]);
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 1500];
            loop {
                let n = receiver.read(&mut buf).await.unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&buf[..n]);
                tokio::task::yield_now().await;
            }
        });
        let stats = Stats::default();
        send(&sender, &chunks, &stats, test_slot())
            .await
            .expect("a thread for the send")
            .unwrap();
        drop(sender);
        let got = reader.await.unwrap();
        assert!(got == want, "{} bytes vs {}", got.len(), want.len());
        assert_eq!(
            stats.fetch_bytes_sendfile.load(Ordering::Relaxed),
            300_000 + 299_993
        );
        assert_eq!(stats.offloaded_sends.load(Ordering::Relaxed), 1);
    }

    /// A send abandoned while the peer reads nothing (the caller's write
    /// timeout) ends the thread's part: the socket closes once the
    /// connection drops its own end, and the peer sees the end of stream
    /// rather than a socket some thread still holds open.
    #[tokio::test]
    async fn an_abandoned_send_lets_the_socket_close() {
        let (_t, f, _) = file_of(8 << 20);
        let (sender, mut receiver) = pair().await;
        let chunks = [Chunk::File(range(&f, 0, 8 << 20, false))];
        let stats = Stats::default();
        let timed_out = tokio::time::timeout(
            Duration::from_millis(200),
            send(&sender, &chunks, &stats, test_slot()),
        )
        .await;
        assert!(timed_out.is_err(), "8 MiB fit in the socket buffers unread");
        drop(sender);
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0usize;
            loop {
                match receiver.read(&mut buf).await {
                    Ok(0) => return Ok(total),
                    Ok(n) => total += n,
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .expect("the socket stayed open after the send was abandoned");
        // Cut short: the peer got part of the response (or a reset), never all of it.
        if let Ok(total) = drained {
            assert!(total < 8 << 20, "{total} bytes");
        }
    }
}
