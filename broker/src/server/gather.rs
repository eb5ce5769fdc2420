//! The gather writer: sends any interleaving of encoded bytes and segment
//! file ranges (`[bytes][file range][bytes][file range]…`) to a socket, as a
//! Kafka-style response with per-partition headers around the records needs.
//!
//! - Byte chunks go out with `send(MSG_MORE)` whenever something follows, so
//!   the kernel holds them until the next chunk fills the packet.
//! - File ranges go out with `sendfile(2)` (the default, zero copy) or, with
//!   `fetch_path = "copy"`, `pread` + `send` (a comparison path only: its
//!   reads run on the reactor).
//! - Sending is driven by socket readiness (`writable()` + `try_io`), looping
//!   over partial sends and `EAGAIN`, and yields to other tasks every few MiB.
//! - A range not marked hot (older than `hot_tail_bytes` of its partition)
//!   is probed for page-cache residency — `cachestat(2)` where the kernel has
//!   it (Linux 6.5+), else `mincore(2)` — and, if any page is missing, read in
//!   on a blocking-pool thread that waits for every page
//!   (`MADV_POPULATE_READ`, or `pread` where that is missing) before the
//!   `sendfile`. A page evicted between the read-in and the send is still
//!   read on the reactor; hot ranges are not probed.
//! - A response with at least [`offload::MIN_COLD_BYTES`] of records outside
//!   the hot tail, while another client connection is open, is sent from a
//!   thread of its own instead ([`offload`], at most
//!   [`offload::MAX_IN_FLIGHT`] at once): a catch-up reader then
//!   shares the CPUs with the tailing connections by the kernel's
//!   scheduler, not by taking turns on their reactor.

use std::io;
use std::os::fd::AsRawFd;

use tokio::io::Interest;
use tokio::net::TcpStream;

mod offload;

use crate::config::FetchPath;
use crate::service::fetch::{Chunk, FileRange};
use crate::service::stats::Stats;

/// Give other tasks a turn after this many bytes of one response.
const YIELD_EVERY: u64 = 4 << 20;
/// Largest single `sendfile` call.
const MAX_SENDFILE: u64 = 16 << 20;
/// Buffer size of the copy path.
const COPY_CHUNK: usize = 1 << 20;

/// Sends every chunk in order. Record bytes count into
/// `fetch_bytes_sendfile` or `fetch_bytes_copy`, cold ranges into
/// `cold_reads`. On error the connection must be closed: the response is
/// cut somewhere in the middle.
pub async fn send(
    stream: &TcpStream,
    chunks: &[Chunk<'_>],
    path: FetchPath,
    stats: &Stats,
) -> io::Result<()> {
    if matches!(path, FetchPath::Sendfile) {
        if let Some(slot) = offload::slot_for(chunks, stats) {
            if let Some(sent) = offload::send(stream, chunks, stats, slot).await {
                return sent;
            }
        }
    }
    let mut since_yield = 0u64;
    let mut copy_buf = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let more = chunks.get(i + 1..).is_some_and(|rest| {
            rest.iter().any(|c| match c {
                Chunk::Bytes(b) => !b.is_empty(),
                Chunk::File(f) => f.len > 0,
            })
        });
        match chunk {
            Chunk::Bytes(b) => send_bytes(stream, b, more).await?,
            Chunk::File(range) if range.len == 0 => {}
            Chunk::File(range) => match path {
                FetchPath::Sendfile => {
                    make_resident(range, stats).await?;
                    sendfile_range(stream, range, &mut since_yield, stats).await?;
                }
                FetchPath::Copy => {
                    copy_range(stream, range, more, &mut copy_buf, stats).await?;
                }
            },
        }
    }
    Ok(())
}

/// Writes `buf` with `send(2)`, adding `MSG_MORE` when `more` follows.
async fn send_bytes(stream: &TcpStream, mut buf: &[u8], more: bool) -> io::Result<()> {
    let flags = if more {
        nix::sys::socket::MsgFlags::from_bits_retain(libc::MSG_MORE)
    } else {
        nix::sys::socket::MsgFlags::empty()
    };
    while !buf.is_empty() {
        stream.writable().await?;
        let result = stream.try_io(Interest::WRITABLE, || {
            nix::sys::socket::send(stream.as_raw_fd(), buf, flags).map_err(io::Error::from)
        });
        match result {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
            Ok(n) => buf = buf.get(n..).unwrap_or_default(),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads a cold range into the page cache on the blocking pool; hot ranges
/// and resident ranges return at once.
async fn make_resident(range: &FileRange, stats: &Stats) -> io::Result<()> {
    if range.hot || page_cache::is_resident(range.file.os_file(), range.position, range.len) {
        return Ok(());
    }
    Stats::add(&stats.cold_reads, 1);
    Stats::add(&stats.cold_bytes, range.len);
    let file = std::sync::Arc::clone(&range.file);
    let (position, len) = (range.position, range.len);
    tokio::task::spawn_blocking(move || page_cache::read_in(file.os_file(), position, len))
        .await
        .map_err(io::Error::other)?
}

async fn sendfile_range(
    stream: &TcpStream,
    range: &FileRange,
    since_yield: &mut u64,
    stats: &Stats,
) -> io::Result<()> {
    let in_fd = range.file.os_file();
    let (mut position, mut len) = (range.position, range.len);
    while len > 0 {
        stream.writable().await?;
        let result = stream.try_io(Interest::WRITABLE, || {
            let mut offset = position as libc::off_t;
            let count = len.min(MAX_SENDFILE) as usize;
            nix::sys::sendfile::sendfile(stream, in_fd, Some(&mut offset), count)
                .map_err(io::Error::from)
        });
        match result {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("segment file ended at {position} with {len} bytes left to send"),
                ));
            }
            Ok(n) => {
                let n = n as u64;
                position += n;
                len -= n;
                Stats::add(&stats.fetch_bytes_sendfile, n);
                *since_yield += n;
                if *since_yield >= YIELD_EVERY {
                    *since_yield = 0;
                    tokio::task::yield_now().await;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn copy_range(
    stream: &TcpStream,
    range: &FileRange,
    more_after: bool,
    buf: &mut Vec<u8>,
    stats: &Stats,
) -> io::Result<()> {
    let (mut position, mut len) = (range.position, range.len);
    if buf.is_empty() {
        buf.resize((len as usize).min(COPY_CHUNK), 0);
    }
    while len > 0 {
        let want = (len as usize).min(buf.len());
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = crate::log::io::read_full_at(&*range.file, chunk, position)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment file ended early",
            ));
        }
        position += n as u64;
        len -= n as u64;
        send_bytes(
            stream,
            chunk.get(..n).unwrap_or_default(),
            more_after || len > 0,
        )
        .await?;
        Stats::add(&stats.fetch_bytes_copy, n as u64);
    }
    Ok(())
}

/// Page-cache residency, and the priority of the thread that reads cold
/// ranges in: the only raw system calls of the fetch path.
#[allow(unsafe_code)]
pub(crate) mod page_cache {
    use std::fs::File;
    use std::io;
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// `cachestat(2)`'s system call number (the same on every architecture
    /// that has it; Linux 6.5+).
    const SYS_CACHESTAT: libc::c_long = 451;

    /// Set once `cachestat` answered `ENOSYS` (or is otherwise unusable):
    /// `mincore` from then on.
    static NO_CACHESTAT: AtomicBool = AtomicBool::new(false);

    #[repr(C)]
    struct CachestatRange {
        off: u64,
        len: u64,
    }

    #[repr(C)]
    #[derive(Default)]
    struct Cachestat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }

    /// Sets the calling thread's nice value to `nice` (Linux keeps one per
    /// thread). An unprivileged thread cannot lower it again, so only a
    /// thread that ends with its task may call this. Best effort.
    pub(crate) fn lower_thread_priority(nice: libc::c_int) {
        let tid = nix::unistd::gettid().as_raw();
        let Ok(who) = libc::id_t::try_from(tid) else {
            return;
        };
        // SAFETY: setpriority(2) takes plain integers and changes only the
        // scheduling weight of the thread `who` (this one); no memory is
        // passed.
        let r = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, nice) };
        if r != 0 {
            tracing::debug!(error = %io::Error::last_os_error(), "could not lower a catch-up sender's priority");
        }
    }

    fn page_size() -> u64 {
        // SAFETY: sysconf has no memory-safety preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 { size as u64 } else { 4096 }
    }

    /// Whether every page of `file[position..position + len]` is in the page
    /// cache: `cachestat(2)` where available, else `mincore(2)`. On any error
    /// answers `true`: the send then simply proceeds.
    pub(crate) fn is_resident(file: &File, position: u64, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        if !NO_CACHESTAT.load(Ordering::Relaxed) {
            match cachestat_resident(file, position, len) {
                Some(r) => return r,
                None => NO_CACHESTAT.store(true, Ordering::Relaxed),
            }
        }
        mincore_resident(file, position, len)
    }

    /// `Some(resident)` from `cachestat(2)`, `None` if the kernel lacks it.
    pub(crate) fn cachestat_resident(file: &File, position: u64, len: u64) -> Option<bool> {
        let page = page_size();
        let first = position / page;
        let last = (position + len - 1) / page;
        let range = CachestatRange { off: position, len };
        let mut stat = Cachestat::default();
        // SAFETY: cachestat(fd, *const range, *mut stat, flags) reads one
        // `struct cachestat_range` and writes one `struct cachestat`, both
        // `#[repr(C)]` with the kernel's layout (two and five u64), alive
        // on this stack frame for the call. The fd is open for the call.
        let rc = unsafe {
            libc::syscall(
                SYS_CACHESTAT,
                file.as_raw_fd() as libc::c_uint,
                &range as *const CachestatRange,
                &mut stat as *mut Cachestat,
                0 as libc::c_uint,
            )
        };
        if rc != 0 {
            let err = io::Error::last_os_error();
            return match err.raw_os_error() {
                Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EOPNOTSUPP) => None,
                // Anything else (a bad range): do not probe, just send.
                _ => Some(true),
            };
        }
        Some(stat.nr_cache > last - first)
    }

    /// Residency by `mincore(2)` on a mapping that is never touched.
    pub(crate) fn mincore_resident(file: &File, position: u64, len: u64) -> bool {
        let page = page_size();
        let start = position / page * page;
        let map_len = (position + len - start) as usize;
        // SAFETY: a private read-only mapping of a range inside the file
        // (fetch ranges end at or before the end of written data). The
        // mapping is never read or written through; it only gives mincore an
        // address range, and it is unmapped when `map` drops.
        let map = match unsafe {
            memmap2::MmapOptions::new()
                .offset(start)
                .len(map_len)
                .map(file)
        } {
            Ok(m) => m,
            Err(_) => return true,
        };
        let pages = map_len.div_ceil(page as usize);
        let mut vec = vec![0u8; pages];
        // SAFETY: the pointer and length describe the live mapping above,
        // which is page-aligned; `vec` has one byte per page of it.
        let rc =
            unsafe { libc::mincore(map.as_ptr() as *mut libc::c_void, map_len, vec.as_mut_ptr()) };
        rc != 0 || vec.iter().all(|b| b & 1 == 1)
    }

    /// Reads the range into the page cache and returns once every page of it
    /// is resident. Blocking: call it on a blocking-pool thread.
    ///
    /// `readahead(2)` is not enough: it only submits the I/O and returns, so
    /// the `sendfile` that follows would still wait for the disk. This maps
    /// the range and asks the kernel to populate it (`MADV_POPULATE_READ`,
    /// Linux 5.14+), which waits for each page; on older kernels it reads the
    /// range with `pread` into a small scratch buffer instead.
    pub(crate) fn read_in(file: &File, position: u64, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let page = page_size();
        let start = position / page * page;
        let map_len = (position + len - start) as usize;
        // SAFETY: a private read-only mapping of a range inside the file
        // (fetch ranges end at or before the end of written data, and the
        // broker truncates segment files only below a range it will no
        // longer serve). It is never read through here: the kernel
        // populates it, and it is unmapped when `map` drops.
        let map = unsafe {
            memmap2::MmapOptions::new()
                .offset(start)
                .len(map_len)
                .map(file)
        };
        if map.is_ok_and(|m| m.advise(memmap2::Advice::PopulateRead).is_ok()) {
            return Ok(());
        }
        read_through(file, position, len)
    }

    /// Reads `file[position..position + len]` and discards the bytes: the
    /// fallback that waits for the pages where `MADV_POPULATE_READ` is missing.
    fn read_through(file: &File, mut position: u64, mut len: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; (len as usize).min(256 << 10)];
        while len > 0 {
            let want = (len as usize).min(buf.len());
            let chunk = buf.get_mut(..want).unwrap_or_default();
            let n = file.read_at(chunk, position)?;
            if n == 0 {
                break;
            }
            position += n as u64;
            len -= n as u64;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::log::LogFile;
    use crate::log::io::StdFile;

    /// The calling thread's nice value, from `/proc/thread-self/stat`.
    fn thread_nice() -> i64 {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let rest = stat.rsplit_once(')').unwrap().1;
        // Field 19 of the file; field 3 (the state) comes first after `)`.
        rest.split_whitespace().nth(16).unwrap().parse().unwrap()
    }

    #[test]
    fn a_catch_up_sender_lowers_its_own_priority_only() {
        let before = thread_nice();
        let lowered = std::thread::spawn(|| {
            page_cache::lower_thread_priority(10);
            thread_nice()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, 10);
        assert_eq!(thread_nice(), before, "the calling thread keeps its own");
    }

    /// A file of `len` distinct bytes, synced.
    fn file_of(len: usize, seed: u8) -> (tempfile::NamedTempFile, Arc<dyn LogFile>, Vec<u8>) {
        let bytes: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&bytes).unwrap();
        tmp.as_file().sync_all().unwrap();
        let file: Arc<dyn LogFile> = Arc::new(StdFile::new(tmp.reopen().unwrap()));
        (tmp, file, bytes)
    }

    /// Sends `chunks` from one end of a loopback connection (with a tiny
    /// send buffer when `tiny`) while a slow reader drains the other end;
    /// returns what arrived.
    async fn round_trip(
        chunks: &[Chunk<'_>],
        path: FetchPath,
        tiny: bool,
        stats: &Stats,
    ) -> Vec<u8> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = vec![0u8; 1500];
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return got;
                }
                got.extend_from_slice(&buf[..n]);
                // A slow reader: the sender keeps meeting a full buffer.
                tokio::task::yield_now().await;
            }
        });
        let stream = TcpStream::connect(addr).await.unwrap();
        if tiny {
            nix::sys::socket::setsockopt(&stream, nix::sys::socket::sockopt::SndBuf, &2048)
                .unwrap();
        }
        send(&stream, chunks, path, stats).await.unwrap();
        drop(stream);
        reader.await.unwrap()
    }

    fn mixed<'a>(
        heads: &'a [Vec<u8>; 3],
        files: &[(Arc<dyn LogFile>, Vec<u8>)],
        hot: bool,
    ) -> (Vec<Chunk<'a>>, Vec<u8>) {
        // [bytes][file 100..300_100][bytes][file (all)][empty file range][bytes]
        let (f1, b1) = &files[0];
        let (f2, b2) = &files[1];
        let chunks = vec![
            Chunk::Bytes(&heads[0]),
            Chunk::File(FileRange {
                file: Arc::clone(f1),
                position: 100,
                len: 300_000,
                hot,
            }),
            Chunk::Bytes(&heads[1]),
            Chunk::File(FileRange {
                file: Arc::clone(f2),
                position: 0,
                len: b2.len() as u64,
                hot,
            }),
            Chunk::File(FileRange {
                file: Arc::clone(f2),
                position: 5,
                len: 0,
                hot,
            }),
            Chunk::Bytes(&heads[2]),
        ];
        let mut want = heads[0].clone();
        want.extend_from_slice(&b1[100..300_100]);
        want.extend_from_slice(&heads[1]);
        want.extend_from_slice(b2);
        want.extend_from_slice(&heads[2]);
        (chunks, want)
    }

    #[tokio::test]
    async fn interleaved_bytes_and_file_ranges_arrive_in_order() {
        let (_t1, f1, b1) = file_of(400_000, 1);
        let (_t2, f2, b2) = file_of(70_001, 7);
        let files = [(f1, b1), (f2, b2)];
        let heads = [vec![0xAA; 37], vec![0xBB; 5000], vec![0xCC; 3]];
        for path in [FetchPath::Sendfile, FetchPath::Copy] {
            for tiny in [false, true] {
                for hot in [true, false] {
                    let stats = Stats::default();
                    let (chunks, want) = mixed(&heads, &files, hot);
                    let got = round_trip(&chunks, path, tiny, &stats).await;
                    assert!(
                        got == want,
                        "{path:?} tiny={tiny} hot={hot}: {} bytes vs {}",
                        got.len(),
                        want.len()
                    );
                    let records = 300_000 + 70_001;
                    let (sf, cp) = (
                        stats
                            .fetch_bytes_sendfile
                            .load(std::sync::atomic::Ordering::Relaxed),
                        stats
                            .fetch_bytes_copy
                            .load(std::sync::atomic::Ordering::Relaxed),
                    );
                    match path {
                        FetchPath::Sendfile => assert_eq!((sf, cp), (records, 0)),
                        FetchPath::Copy => assert_eq!((sf, cp), (0, records)),
                    }
                }
            }
        }
    }

    #[tokio::test]
    async fn only_byte_chunks_and_empty_plans_are_sent() {
        let stats = Stats::default();
        let a = vec![1u8; 10];
        let b = vec![2u8; 200_000];
        let got = round_trip(
            &[Chunk::Bytes(&a), Chunk::Bytes(&b)],
            FetchPath::Sendfile,
            true,
            &stats,
        )
        .await;
        assert_eq!(got.len(), 200_010);
        assert!(got[..10] == a[..] && got[10..] == b[..]);
        assert!(
            round_trip(&[], FetchPath::Sendfile, false, &stats)
                .await
                .is_empty()
        );
    }

    #[test]
    fn probes_agree_that_a_just_read_file_is_resident() {
        let (_t, f, bytes) = file_of(64 << 10, 3);
        let mut back = vec![0u8; bytes.len()];
        crate::log::io::read_full_at(&*f, &mut back, 0).unwrap();
        let os = f.os_file();
        assert!(page_cache::mincore_resident(os, 10, 60_000));
        if let Some(r) = page_cache::cachestat_resident(os, 10, 60_000) {
            assert!(r, "cachestat disagrees with mincore");
        }
        assert!(page_cache::is_resident(os, 0, bytes.len() as u64));
    }

    /// A range dropped from the page cache is found cold, read in off the
    /// reactor (counted), and is resident afterwards. Where the file system
    /// cannot drop pages (tmpfs), only the bytes are checked.
    #[tokio::test]
    async fn a_cold_range_is_read_in_before_it_is_sent() {
        let (_t, f, bytes) = file_of(256 << 10, 9);
        let os = f.os_file();
        nix::fcntl::posix_fadvise(
            os.as_raw_fd(),
            0,
            0,
            nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )
        .unwrap();
        let cold = !page_cache::is_resident(os, 0, bytes.len() as u64);
        if let Some(r) = page_cache::cachestat_resident(os, 0, bytes.len() as u64) {
            assert_eq!(r, page_cache::mincore_resident(os, 0, bytes.len() as u64));
        }
        let stats = Stats::default();
        let range = FileRange {
            file: Arc::clone(&f),
            position: 0,
            len: bytes.len() as u64,
            hot: false,
        };
        let got = round_trip(&[Chunk::File(range)], FetchPath::Sendfile, false, &stats).await;
        assert!(got == bytes);
        let counted = stats.cold_reads.load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(counted, u64::from(cold));
        assert!(page_cache::is_resident(os, 0, bytes.len() as u64));
    }
}
