//! Bootstrap lists: the broker addresses a client may connect to, and which
//! one answered last.
//!
//! A list is written `host1:port,host2:port` (a single `host:port` is a list
//! of one). Host names resolve through the system resolver. [`Bootstrap::connect`]
//! tries the addresses in order, starting at the one that answered last,
//! each within [`CONNECT_TIMEOUT`]; the first that accepts the connection
//! is remembered. When none answers, the error names every address with its
//! failure. After a connection breaks (or a retriable error ends it),
//! [`Bootstrap::failed`] moves the starting point to the next address.
//!
//! Clones share the remembered address, so every connection of one
//! producer or consumer through the list follows the broker together.
//! Partition leaders are not found here: the producer and the consumer
//! route each partition through a [`MetadataCache`](crate::MetadataCache),
//! which asks the list first. [`Bootstrap::find_leader`] and
//! [`Bootstrap::follow`] remain for callers holding a single connection:
//! look a leader up through the list, and make the next
//! [`Bootstrap::connect`] try its address first.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::connection::Connection;
use crate::error::ClientError;

/// How long one address of a list may take to resolve and accept a
/// connection before the next is tried.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A list of broker addresses with the index of the one that answered last.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    addrs: Vec<String>,
    current: AtomicUsize,
    connect_timeout: Duration,
    /// A leader's address learnt from Metadata, tried before the list.
    followed: Mutex<Option<String>>,
}

/// Joins addresses into the comma-separated form the configs hold.
pub fn join<I, S>(addrs: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = String::new();
    for a in addrs {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(a.as_ref().trim());
    }
    out
}

impl Bootstrap {
    /// Parses a comma-separated list; blanks around entries and empty
    /// entries are ignored. An empty list fails at [`connect`](Self::connect).
    pub fn parse(list: &str) -> Self {
        Self::new(list.split(','))
    }

    /// A list of the given addresses, in order of preference.
    pub fn new<I, S>(addrs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let addrs = addrs
            .into_iter()
            .map(|a| a.as_ref().trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        Bootstrap {
            inner: Arc::new(Inner {
                addrs,
                current: AtomicUsize::new(0),
                connect_timeout: CONNECT_TIMEOUT,
                followed: Mutex::new(None),
            }),
        }
    }

    /// The same list with another per-address connect timeout (not shared
    /// with existing clones).
    pub fn with_connect_timeout(self, timeout: Duration) -> Self {
        Bootstrap {
            inner: Arc::new(Inner {
                addrs: self.inner.addrs.clone(),
                current: AtomicUsize::new(self.inner.current.load(Ordering::Relaxed)),
                connect_timeout: timeout,
                followed: Mutex::new(self.followed()),
            }),
        }
    }

    /// The addresses, in order.
    pub fn addresses(&self) -> &[String] {
        &self.inner.addrs
    }

    /// The address tried first by the next [`connect`](Self::connect): the
    /// one that answered last (the first of the list before any did).
    pub fn current(&self) -> Option<&str> {
        let i = self.inner.current.load(Ordering::Acquire);
        self.inner.addrs.get(i).map(String::as_str)
    }

    /// The leader's address being followed, if any.
    pub fn followed(&self) -> Option<String> {
        self.inner
            .followed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Makes the next [`connect`](Self::connect) (of every clone) try
    /// `addr` first: the address of a partition's leader, learnt from
    /// Metadata. It is dropped when it fails to connect or
    /// [`failed`](Self::failed) is called.
    pub fn follow(&self, addr: String) {
        *self
            .inner
            .followed
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(addr);
    }

    /// Asks a broker of the list (never the followed address) for
    /// Metadata of `topic` and returns the native address of the leader of
    /// `partition`: `None` when the partition has no leader right now (or
    /// the topic or partition is unknown there).
    pub async fn find_leader(
        &self,
        topic: &str,
        partition: u32,
    ) -> Result<Option<String>, ClientError> {
        let mut conn = self.connect_list().await?;
        let meta = conn.metadata(Some(vec![topic.to_owned()])).await?;
        Ok(match meta.leader(topic, partition) {
            Some(Some(id)) => meta.broker_address(id).map(str::to_owned),
            _ => None,
        })
    }

    /// Connects to the coordinator of `group`: asks a broker of the list
    /// (FindCoordinator) which node coordinates it and connects there. A
    /// broker without FindCoordinator (older, running alone) or one that
    /// names no address: the connection to that broker, as before
    /// coordinators existed.
    pub async fn connect_coordinator(&self, group: &str) -> Result<Connection, ClientError> {
        let mut conn = self.connect_list().await?;
        let found = match conn.find_coordinator(group).await {
            Ok(found) => found,
            Err(ClientError::Unsupported(_)) => return Ok(conn),
            Err(e) => {
                self.failed();
                return Err(e);
            }
        };
        if found.address.is_empty() || found.address == conn.peer() {
            return Ok(conn);
        }
        let addr = crate::metadata::reachable(&found.address, conn.peer()).unwrap_or(found.address);
        drop(conn);
        tokio::time::timeout(self.inner.connect_timeout, Connection::connect(&addr))
            .await
            .map_err(|_| {
                ClientError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "the coordinator of group {group:?} ({addr}) did not answer within {:?}",
                        self.inner.connect_timeout
                    ),
                ))
            })?
    }

    /// Connects to the followed leader's address if there is one (dropping
    /// it when it does not answer), else as [`connect_list`](Self::connect_list).
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        if let Some(addr) = self.followed() {
            let tried =
                tokio::time::timeout(self.inner.connect_timeout, Connection::connect(&addr)).await;
            if let Ok(Ok(conn)) = tried {
                return Ok(conn);
            }
            let mut followed = self
                .inner
                .followed
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if followed.as_deref() == Some(addr.as_str()) {
                *followed = None;
            }
        }
        self.connect_list().await
    }

    /// Connects to the first address of the list that answers, starting at
    /// [`current`](Self::current) and wrapping around the list once. The
    /// address that answered becomes the current one. When none answers,
    /// returns [`ClientError::Io`] whose message names every address and
    /// why it failed (a list of one returns that address's own error).
    pub async fn connect_list(&self) -> Result<Connection, ClientError> {
        let addrs = &self.inner.addrs;
        if addrs.is_empty() {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "no broker address given",
            )));
        }
        let start = self.inner.current.load(Ordering::Acquire) % addrs.len();
        let mut failures: Vec<String> = Vec::with_capacity(addrs.len());
        let mut kind = std::io::ErrorKind::ConnectionRefused;
        let mut last = None;
        for step in 0..addrs.len() {
            let i = (start + step) % addrs.len();
            let addr = addrs[i].as_str();
            let tried =
                tokio::time::timeout(self.inner.connect_timeout, Connection::connect(addr)).await;
            match tried {
                Ok(Ok(conn)) => {
                    self.inner.current.store(i, Ordering::Release);
                    return Ok(conn);
                }
                Ok(Err(ClientError::Io(e))) => {
                    kind = e.kind();
                    failures.push(format!("{addr}: {e}"));
                    last = Some(ClientError::Io(e));
                }
                Ok(Err(e)) => {
                    kind = std::io::ErrorKind::Other;
                    failures.push(format!("{addr}: {e}"));
                    last = Some(e);
                }
                Err(_) => {
                    kind = std::io::ErrorKind::TimedOut;
                    let e = format!("no answer within {:?}", self.inner.connect_timeout);
                    failures.push(format!("{addr}: {e}"));
                    last = Some(ClientError::Io(std::io::Error::new(kind, e)));
                }
            }
        }
        if addrs.len() == 1 {
            // One address: its own error, as callers print it with the address.
            return Err(last.unwrap_or(ClientError::Closed));
        }
        let message = format!("no broker of the list answered ({})", failures.join("; "));
        Err(ClientError::Io(std::io::Error::new(kind, message)))
    }

    /// Says the current address failed (its connection broke, or it
    /// answered with a retriable error): a followed leader's address is
    /// dropped, or else the next connect starts at the following address of
    /// the list. A no-op when another clone already moved on.
    pub fn failed(&self) {
        if self
            .inner
            .followed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
        {
            return;
        }
        let n = self.inner.addrs.len();
        if n > 1 {
            let i = self.inner.current.load(Ordering::Acquire);
            let _ = self.inner.current.compare_exchange(
                i,
                (i + 1) % n,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
}

impl From<&str> for Bootstrap {
    fn from(list: &str) -> Self {
        Bootstrap::parse(list)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_trims_and_drops_empty_entries() {
        let b = Bootstrap::parse(" a:1, ,b:2,");
        assert_eq!(b.addresses(), ["a:1", "b:2"]);
        assert_eq!(b.current(), Some("a:1"));
        assert_eq!(join(["a:1", " b:2"]), "a:1,b:2");
        assert_eq!(Bootstrap::parse(&join(["x:1", "y:2"])).addresses().len(), 2);
    }

    #[test]
    fn failed_moves_to_the_next_and_wraps() {
        let b = Bootstrap::parse("a:1,b:2");
        let c = b.clone();
        b.failed();
        assert_eq!(c.current(), Some("b:2"));
        c.failed();
        assert_eq!(b.current(), Some("a:1"));
    }

    /// A port nothing listens on.
    fn dead_addr() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = l.local_addr().unwrap().to_string();
        drop(l);
        a
    }

    #[tokio::test]
    async fn connects_past_dead_entries_by_host_name_and_remembers() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            for _ in 0..2 {
                held.push(listener.accept().await.unwrap().0);
            }
            held
        });
        let (d1, d2) = (dead_addr(), dead_addr());
        let b = Bootstrap::new([d1.as_str(), d2.as_str(), &format!("localhost:{port}")]);
        b.connect().await.unwrap();
        assert_eq!(b.current(), Some(format!("localhost:{port}").as_str()));
        // Remembered: the next connect starts there.
        b.connect().await.unwrap();
        assert_eq!(accept.await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_followed_address_goes_first_until_it_fails() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let leader = listener.local_addr().unwrap().to_string();
        let dead = dead_addr();
        let b = Bootstrap::new([dead.as_str()]);
        assert!(b.connect().await.is_err());
        b.follow(leader.clone());
        let c = b.clone();
        let conn = c.connect().await.unwrap();
        assert_eq!(conn.peer(), leader);
        assert_eq!(b.followed(), Some(leader.clone()));
        // `failed` drops it: back to the list.
        b.failed();
        assert_eq!(c.followed(), None);
        assert!(c.connect().await.is_err());
        // A followed address that does not answer is dropped too.
        b.follow(dead_addr());
        assert!(b.connect().await.is_err());
        assert_eq!(b.followed(), None);
        drop(listener);
    }

    #[tokio::test]
    async fn an_all_dead_list_names_every_address() {
        let (d1, d2) = (dead_addr(), dead_addr());
        let b = Bootstrap::new([d1.as_str(), d2.as_str(), "no-such-host.invalid:1"]);
        let started = std::time::Instant::now();
        let e = b.connect().await.unwrap_err().to_string();
        assert!(started.elapsed() < Duration::from_secs(5), "{e}");
        for a in [&d1, &d2, "no-such-host.invalid:1"] {
            assert!(e.contains(a), "{e}");
        }
        assert!(e.contains("no broker of the list answered"), "{e}");
        let empty = Bootstrap::parse(" , ").connect().await.unwrap_err();
        assert!(empty.to_string().contains("no broker address given"));
    }
}
