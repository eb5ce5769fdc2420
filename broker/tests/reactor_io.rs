//! Disk I/O never runs on the reactor: while one partition's append is stuck
//! inside its `pwrite`, a broker with a single reactor thread still answers
//! other connections — ApiVersions, Metadata for the stuck topic (which must
//! not wait for the partition's lock), and produces to other partitions —
//! and the stuck produce completes once the disk moves again.

#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::{Condvar, Mutex};
use sluice_broker::config::{BrokerConfig, DiskIo};
use sluice_broker::log::io::{FileSystem, LogFile, OpenMode, StdFs};
use sluice_broker::server::{Broker, run};
use sluice_client::Connection;
use sluice_protocol::batch::{BatchBuilder, NewRecord};
use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::create_topics::NewTopic;
use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;

/// Holds writes to segment files of directories named `slow-*` while closed.
#[derive(Debug, Default)]
struct Gate {
    state: Mutex<(bool, u32)>, // (closed, writers waiting)
    changed: Condvar,
}

impl Gate {
    fn set_closed(&self, closed: bool) {
        self.state.lock().0 = closed;
        self.changed.notify_all();
    }
    fn pass(&self) {
        let mut s = self.state.lock();
        s.1 += 1;
        self.changed.notify_all();
        while s.0 {
            self.changed.wait(&mut s);
        }
        s.1 -= 1;
    }
    /// Waits until a writer is held at the gate (or 10 s pass).
    fn wait_for_writer(&self) -> bool {
        let mut s = self.state.lock();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while s.1 == 0 {
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                return false;
            }
        }
        true
    }
}

#[derive(Debug)]
struct GatedFs {
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct GatedFile {
    inner: Arc<dyn LogFile>,
    gate: Option<Arc<Gate>>,
}

impl LogFile for GatedFile {
    fn write_at(&self, buf: &[u8], position: u64) -> io::Result<usize> {
        if let Some(g) = &self.gate {
            g.pass();
        }
        self.inner.write_at(buf, position)
    }
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.inner.read_at(buf, position)
    }
    fn sync_data(&self) -> io::Result<()> {
        self.inner.sync_data()
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }
    fn preallocate(&self, position: u64, len: u64) -> io::Result<()> {
        self.inner.preallocate(position, len)
    }
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }
    fn os_file(&self) -> &std::fs::File {
        self.inner.os_file()
    }
}

impl FileSystem for GatedFs {
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Arc<dyn LogFile>> {
        let inner = StdFs.open(path, mode)?;
        let slow = path.extension().is_some_and(|e| e == "log")
            && path
                .parent()
                .and_then(|d| d.file_name())
                .is_some_and(|n| n.to_string_lossy().starts_with("slow-"));
        Ok(Arc::new(GatedFile {
            inner,
            gate: slow.then(|| Arc::clone(&self.gate)),
        }))
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.create_dir_all(path)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        StdFs.remove_dir_all(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdFs.rename(from, to)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        StdFs.sync_dir(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<String>> {
        StdFs.list_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        StdFs.exists(path)
    }
}

/// Opens the gate when dropped, so a failing test does not leave a broker
/// thread held forever.
struct OpenOnDrop(Arc<Gate>);

impl Drop for OpenOnDrop {
    fn drop(&mut self) {
        self.0.set_closed(false);
    }
}

fn batch(n: usize) -> BytesMut {
    let mut b = BatchBuilder::new();
    for _ in 0..n {
        b.push(&NewRecord {
            timestamp: 1,
            key: None,
            value: Some(b"value"),
            headers: &[],
        });
    }
    b.finish()
}

#[test]
fn a_write_stuck_on_disk_stalls_no_other_connection() {
    stuck_write(DiskIo::BlockingPool, 3);
}

/// With the default `small-inline`, appends above
/// `DiskIo::SMALL_APPEND_BYTES` run on the blocking pool.
#[test]
fn a_large_write_stuck_on_disk_stalls_no_other_connection() {
    assert_eq!(BrokerConfig::default().disk_io, DiskIo::SmallInline);
    let records = DiskIo::SMALL_APPEND_BYTES / 5 + 1;
    assert!(batch(records).len() > DiskIo::SMALL_APPEND_BYTES);
    stuck_write(DiskIo::SmallInline, records);
}

fn stuck_write(disk_io: DiskIo, records: usize) {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::default());
    let config = BrokerConfig {
        data_dir: dir.path().to_owned(),
        disk_io,
        ..BrokerConfig::default()
    };
    let broker = Broker::open_with(
        config,
        Arc::new(GatedFs {
            gate: Arc::clone(&gate),
        }),
    )
    .unwrap();
    // The broker: one reactor thread (and the blocking pool).
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = server_rt.spawn(run(listener, broker, async {
        let _ = stop_rx.await;
    }));

    // The clients run on a runtime of their own, so a stalled broker thread
    // cannot stall their timers.
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // Declared after the runtimes: dropped (opening the gate) before them.
    let _open = OpenOnDrop(Arc::clone(&gate));
    client_rt.block_on(async {
        let mut admin = Connection::connect(addr).await.unwrap();
        let topics = ["slow", "fast"]
            .iter()
            .map(|n| NewTopic {
                name: (*n).into(),
                partitions: 1,
                config: TopicConfig::default(),
                replication_factor: None,
            })
            .collect();
        let r = admin.create_topics(topics).await.unwrap();
        assert!(
            r.results.iter().all(|t| t.error_code == ErrorCode::None),
            "{r:?}"
        );

        gate.set_closed(true);
        let stuck = tokio::spawn(async move {
            let mut c = Connection::connect(addr).await.unwrap();
            c.produce(Acks::Leader, 30_000, &[("slow", 0, &batch(records)[..])])
                .await
                .unwrap()
                .unwrap()
        });
        let g = Arc::clone(&gate);
        assert!(
            tokio::task::spawn_blocking(move || g.wait_for_writer())
                .await
                .unwrap(),
            "the produce never reached the disk"
        );

        // The append is now inside its pwrite. Everything else goes on.
        let limit = Duration::from_secs(5);
        let mut other = tokio::time::timeout(limit, Connection::connect(addr))
            .await
            .expect("connect stalled")
            .unwrap();
        let meta = tokio::time::timeout(limit, other.metadata(Some(vec!["slow".into()])))
            .await
            .expect("metadata stalled behind a write")
            .unwrap();
        assert_eq!(meta.topics[0].error_code, ErrorCode::None);
        assert_eq!(meta.topics[0].partitions[0].high_watermark, 0);
        let fast = tokio::time::timeout(
            limit,
            other.produce(Acks::Leader, 5000, &[("fast", 0, &batch(2)[..])]),
        )
        .await
        .expect("produce to another partition stalled")
        .unwrap()
        .unwrap();
        assert_eq!(fast.partitions[0].error_code, ErrorCode::None);
        assert!(!stuck.is_finished(), "the gated write is still held");

        // A small append to the same partition publishes after the stuck
        // one, so it waits for it: off the reactor, which keeps serving.
        let waiting = tokio::spawn(async move {
            let mut c = Connection::connect(addr).await.unwrap();
            c.produce(Acks::Leader, 30_000, &[("slow", 0, &batch(2)[..])])
                .await
                .unwrap()
                .unwrap()
        });
        // Let it reach the broker (if it does not, the check below is moot,
        // not wrong).
        tokio::time::sleep(Duration::from_millis(200)).await;
        let meta = tokio::time::timeout(limit, other.metadata(Some(vec!["fast".into()])))
            .await
            .expect("metadata stalled behind an append waiting for an earlier one")
            .unwrap();
        assert_eq!(meta.topics[0].error_code, ErrorCode::None);
        assert!(!waiting.is_finished(), "the small append waits its turn");

        gate.set_closed(false);
        let done = tokio::time::timeout(limit, stuck)
            .await
            .expect("the stuck produce did not finish")
            .unwrap();
        assert_eq!(
            (
                done.partitions[0].error_code,
                done.partitions[0].base_offset
            ),
            (ErrorCode::None, 0)
        );
        let after = tokio::time::timeout(limit, waiting)
            .await
            .expect("the waiting produce did not finish")
            .unwrap();
        assert_eq!(
            (
                after.partitions[0].error_code,
                after.partitions[0].base_offset
            ),
            (ErrorCode::None, records as u64)
        );
    });
    let _ = stop_tx.send(());
    server_rt.block_on(server).unwrap().unwrap();
}
