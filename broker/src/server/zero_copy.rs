//! Writing fetched record bytes to a socket: `sendfile(2)` from the segment
//! file (the default, zero copy) or `pread` + `write` (the comparison path).
//!
//! Header and records leave in the same packets: the header is sent with
//! `MSG_MORE`, so the kernel holds it until the file data follows. Sending is driven by socket readiness
//! (`writable()` + `try_io`), looping over partial sends and `EAGAIN`, and
//! yields to other tasks every few MiB. A range older than the hot tail of the
//! log is checked with `mincore(2)`; if it is not in the page cache, a
//! blocking-pool thread reads it in first and waits until every page is
//! resident (`madvise(MADV_POPULATE_READ)`, or `pread` where the kernel lacks
//! it), so the `sendfile` that follows finds the pages cached. Two gaps
//! remain: a page evicted between the read-in and the send is read on the
//! reactor thread, and ranges inside the hot tail (`hot_tail_bytes`) are
//! assumed cached without a check, which is false right after a reboot.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use super::stats::Stats;
use crate::config::{BrokerConfig, FetchPath};
use crate::log::{LogFile, LogSlice};

/// Give other tasks a turn after this many bytes of one response.
const YIELD_EVERY: u64 = 4 << 20;
/// Largest single `sendfile` call.
const MAX_SENDFILE: u64 = 16 << 20;
/// Buffer size of the copy path.
const COPY_CHUNK: usize = 1 << 20;

/// Writes `head` (encoded response header and body) and then every slice's
/// file range to `stream`.
pub(super) async fn send_response(
    stream: &mut TcpStream,
    head: &[u8],
    slices: &[LogSlice],
    config: &BrokerConfig,
    stats: &Stats,
) -> io::Result<()> {
    let payload = slices.iter().any(|s| s.len > 0);
    if payload && config.fetch_path == FetchPath::Sendfile {
        send_more(stream, head).await?;
    } else {
        stream.write_all(head).await?;
    }
    let mut sent = 0u64;
    for slice in slices {
        let Some(file) = slice.file.as_ref().filter(|_| slice.len > 0) else {
            continue;
        };
        match config.fetch_path {
            FetchPath::Sendfile => {
                let hot = slice.bytes_after.saturating_add(slice.len) <= config.hot_tail_bytes;
                sendfile_all(
                    stream,
                    file,
                    slice.position,
                    slice.len,
                    hot,
                    &mut sent,
                    stats,
                )
                .await?
            }
            FetchPath::Copy => copy_all(stream, &**file, slice.position, slice.len, stats).await?,
        }
    }
    Ok(())
}

/// Writes `buf` with `MSG_MORE`: the kernel may hold it back to fill a
/// packet with what is sent next.
async fn send_more(stream: &TcpStream, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        stream.writable().await?;
        let result = stream.try_io(Interest::WRITABLE, || {
            nix::sys::socket::send(
                stream.as_raw_fd(),
                buf,
                nix::sys::socket::MsgFlags::from_bits_retain(libc::MSG_MORE),
            )
            .map_err(io::Error::from)
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

async fn sendfile_all(
    stream: &TcpStream,
    file: &Arc<dyn LogFile>,
    mut position: u64,
    mut len: u64,
    hot: bool,
    sent: &mut u64,
    stats: &Stats,
) -> io::Result<()> {
    if !hot && !page_cache::is_resident(file.os_file(), position, len) {
        Stats::add(&stats.cold_reads, 1);
        let file = Arc::clone(file);
        tokio::task::spawn_blocking(move || page_cache::read_in(file.os_file(), position, len))
            .await
            .map_err(io::Error::other)??;
    }
    let in_fd = file.os_file();
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
                *sent += n;
                Stats::add(&stats.fetch_bytes_sendfile, n);
                if *sent >= YIELD_EVERY {
                    *sent = 0;
                    tokio::task::yield_now().await;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn copy_all(
    stream: &mut TcpStream,
    file: &dyn LogFile,
    mut position: u64,
    mut len: u64,
    stats: &Stats,
) -> io::Result<()> {
    let mut buf = vec![0u8; (len as usize).min(COPY_CHUNK)];
    while len > 0 {
        let want = (len as usize).min(buf.len());
        let chunk = buf.get_mut(..want).unwrap_or_default();
        let n = crate::log::io::read_full_at(file, chunk, position)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "segment file ended early",
            ));
        }
        stream.write_all(chunk.get(..n).unwrap_or_default()).await?;
        position += n as u64;
        len -= n as u64;
        Stats::add(&stats.fetch_bytes_copy, n as u64);
    }
    Ok(())
}

/// Page-cache residency: the only raw system calls of the fetch path.
#[allow(unsafe_code)]
mod page_cache {
    use super::*;

    fn page_size() -> u64 {
        // SAFETY: sysconf has no memory-safety preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 { size as u64 } else { 4096 }
    }

    /// Whether every page of `file[position..position + len]` is in the page
    /// cache (`mincore(2)` on a mapping that is never touched). On any error
    /// answers `true`: the send then simply proceeds.
    pub(super) fn is_resident(file: &File, position: u64, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        let page = page_size();
        let start = position / page * page;
        let map_len = (position + len - start) as usize;
        // SAFETY: a private read-only mapping of a range inside the file
        // (fetch slices end at or before the end of written data). The
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
    pub(super) fn read_in(file: &File, position: u64, len: u64) -> io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        let page = page_size();
        let start = position / page * page;
        let map_len = (position + len - start) as usize;
        // SAFETY: a private read-only mapping of a range inside the file
        // (fetch slices end at or before the end of written data, and the
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
