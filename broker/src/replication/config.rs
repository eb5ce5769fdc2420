//! The cluster file and this node's place in it.
//!
//! ```toml
//! cluster_id = "orders-eu"    # optional: see `ClusterConfig::cluster_id`
//!
//! [[node]]
//! id = 1
//! listen = "127.0.0.1:9292"   # native client listener
//! raft = "127.0.0.1:9500"     # node-to-node Raft RPC
//! kafka = "127.0.0.1:9092"    # optional: Kafka listener
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One node of the cluster file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Node id: unique, at least 1 (0 names a broker without `--cluster`).
    pub id: u64,
    /// Native client listener.
    pub listen: SocketAddr,
    /// Node-to-node Raft RPC address (peers dial it: never port 0).
    pub raft: SocketAddr,
    /// Kafka listener, if the node has one.
    #[serde(default)]
    pub kafka: Option<SocketAddr>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    #[serde(default)]
    cluster_id: Option<String>,
    #[serde(default)]
    node: Vec<NodeEntry>,
}

/// Longest cluster id accepted.
pub const MAX_CLUSTER_ID_LEN: usize = 64;

/// Why a cluster file or a node id was refused.
#[derive(Debug, thiserror::Error)]
pub enum ClusterConfigError {
    /// The file could not be read.
    #[error("cannot read cluster file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape (unknown or missing fields).
    #[error("cluster file: {0}")]
    Parse(String),
    /// No `[[node]]` entries.
    #[error("cluster file lists no [[node]] entries")]
    Empty,
    /// A `cluster_id` that is empty, too long or has other characters than
    /// letters, digits, `.`, `_` and `-`.
    #[error(
        "cluster file: cluster_id {0:?} must be 1 to {MAX_CLUSTER_ID_LEN} letters, digits, '.', '_' or '-'"
    )]
    BadClusterId(String),
    /// An entry with id 0.
    #[error("cluster file: node ids start at 1 (0 names a broker without --cluster)")]
    ZeroId,
    /// An id Kafka's clients cannot carry (their node ids are i32).
    #[error("cluster file: node id {0} is above {max}, the largest Kafka node id", max = i32::MAX)]
    IdTooLarge(u64),
    /// Two entries with one id.
    #[error("cluster file: node id {0} is listed twice")]
    DuplicateId(u64),
    /// Two entries (or two roles of one entry) with one address.
    #[error("cluster file: address {0} is used twice")]
    DuplicateAddress(SocketAddr),
    /// A raft address with port 0 (peers could not dial it).
    #[error("cluster file: node {0} has a raft address with port 0; peers must be able to dial it")]
    RaftPortZero(u64),
    /// `--node-id` names no entry.
    #[error("--node-id {id} is not in the cluster file (ids: {known:?})")]
    UnknownNode {
        /// The id given.
        id: u64,
        /// The ids of the file.
        known: Vec<u64>,
    },
    /// The data directory belongs to another node.
    #[error("data directory {dir} belongs to node {found}, not --node-id {id}")]
    WrongNode {
        /// `<data_dir>/cluster`.
        dir: PathBuf,
        /// The id stored there.
        found: u64,
        /// The id given.
        id: u64,
    },
    /// The data directory belongs to another cluster than the one the
    /// cluster file names.
    #[error(
        "data directory {dir} belongs to cluster {found:?}, but the cluster file says cluster_id = {configured:?}"
    )]
    WrongCluster {
        /// `<data_dir>/cluster`.
        dir: PathBuf,
        /// The id stored there.
        found: String,
        /// The id of the cluster file.
        configured: String,
    },
    /// The node id or cluster id file could not be read or written.
    #[error("{path}: {message}")]
    NodeIdFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// A validated cluster: every node, and which one this process is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// The file's `cluster_id`, if it has one (see
    /// [`ClusterConfig::cluster_id`]).
    pub named_id: Option<String>,
    /// Every node, in file order.
    pub nodes: Vec<NodeEntry>,
    /// This node's id (an entry of `nodes`).
    pub local: u64,
}

impl ClusterConfig {
    /// Reads and validates `path` for node `local`.
    pub fn load(path: &Path, local: u64) -> Result<Self, ClusterConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, local)
    }

    /// Parses and validates a cluster file's text for node `local`: ids
    /// unique, non-zero and at most `i32::MAX` (Kafka's node ids), every address used once, raft ports fixed,
    /// `local` listed.
    pub fn parse(text: &str, local: u64) -> Result<Self, ClusterConfigError> {
        let file: ClusterFile =
            toml::from_str(text).map_err(|e| ClusterConfigError::Parse(e.message().to_owned()))?;
        if let Some(id) = &file.cluster_id
            && !valid_cluster_id(id)
        {
            return Err(ClusterConfigError::BadClusterId(id.clone()));
        }
        if file.node.is_empty() {
            return Err(ClusterConfigError::Empty);
        }
        let mut ids = HashSet::new();
        let mut addrs = HashSet::new();
        for n in &file.node {
            if n.id == 0 {
                return Err(ClusterConfigError::ZeroId);
            }
            if i32::try_from(n.id).is_err() {
                return Err(ClusterConfigError::IdTooLarge(n.id));
            }
            if !ids.insert(n.id) {
                return Err(ClusterConfigError::DuplicateId(n.id));
            }
            if n.raft.port() == 0 {
                return Err(ClusterConfigError::RaftPortZero(n.id));
            }
            for a in [Some(n.listen), Some(n.raft), n.kafka]
                .into_iter()
                .flatten()
            {
                if a.port() != 0 && !addrs.insert(a) {
                    return Err(ClusterConfigError::DuplicateAddress(a));
                }
            }
        }
        if !ids.contains(&local) {
            return Err(ClusterConfigError::UnknownNode {
                id: local,
                known: file.node.iter().map(|n| n.id).collect(),
            });
        }
        Ok(ClusterConfig {
            named_id: file.cluster_id,
            nodes: file.node,
            local,
        })
    }

    /// The id this file gives its cluster: its `cluster_id`, or else one
    /// derived from its members, `m` and 16 hex digits of the FNV-1a
    /// 64-bit hash of every node's `id=raft;` in id order (for example
    /// `1=127.0.0.1:9500;2=127.0.0.1:9501;`). Two clusters whose nodes
    /// listen on different raft addresses get different ids without
    /// anyone naming them; the other addresses are left out, so moving a
    /// client listener changes nothing. A node stores the id in its data
    /// directory at its first start and keeps it ([`claim_data_dir`]), and
    /// every node-to-node connection says it: a node refuses connections
    /// from nodes of another cluster.
    pub fn cluster_id(&self) -> String {
        if let Some(id) = &self.named_id {
            return id.clone();
        }
        let mut members: Vec<(u64, SocketAddr)> =
            self.nodes.iter().map(|n| (n.id, n.raft)).collect();
        members.sort_unstable();
        let mut text = String::new();
        for (id, raft) in members {
            text.push_str(&format!("{id}={raft};"));
        }
        format!("m{:016x}", fnv1a64(text.as_bytes()))
    }

    /// This node's entry.
    pub fn local_node(&self) -> &NodeEntry {
        self.node(self.local)
            .unwrap_or_else(|| unreachable!("parse checked that the local id is listed"))
    }

    /// The entry of node `id`.
    pub fn node(&self, id: u64) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Every node id, in file order.
    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }
}

/// The directory of a node's cluster state: `<data_dir>/cluster`.
pub fn cluster_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cluster")
}

/// Whether `id` may be a cluster id: 1 to [`MAX_CLUSTER_ID_LEN`] ASCII
/// letters, digits, `.`, `_` and `-`.
pub fn valid_cluster_id(id: &str) -> bool {
    (1..=MAX_CLUSTER_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// FNV-1a, 64 bits: a hash whose value is fixed by its definition (the
/// derived cluster id must be the same in every build and on every node).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Name of the file (in [`cluster_dir`]) holding the node id, as decimal
/// text and a newline.
pub const NODE_ID_FILE: &str = "node_id";

/// Name of the file (in [`cluster_dir`]) holding the cluster id, as text
/// and a newline.
pub const CLUSTER_ID_FILE: &str = "cluster_id";

/// Creates `<data_dir>/cluster/` if needed, checks that it belongs to
/// node `config.local` and returns the cluster id this node speaks for.
///
/// The first start writes the node id and [`ClusterConfig::cluster_id`]
/// (each: temp file, fsync, rename, directory fsync). Later starts refuse
/// another node id, and a cluster file whose `cluster_id` differs from
/// the stored one; when the file names no id, the stored one is kept even
/// if the file's members have changed since (a node moved to a new raft
/// address keeps its cluster). A data directory from before cluster ids
/// gets the file's id at its next start. Blocking.
pub fn claim_data_dir(
    data_dir: &Path,
    config: &ClusterConfig,
) -> Result<String, ClusterConfigError> {
    let dir = cluster_dir(data_dir);
    let id = config.local;
    let node_path = dir.join(NODE_ID_FILE);
    let fail = |path: &Path, message: String| ClusterConfigError::NodeIdFile {
        path: path.to_owned(),
        message,
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(&dir, e.to_string()))?;
    match read_stored(&node_path).map_err(|e| fail(&node_path, e))? {
        Some(text) => {
            let found: u64 = text
                .parse()
                .map_err(|_| fail(&node_path, format!("not a node id: {text:?}")))?;
            if found != id {
                return Err(ClusterConfigError::WrongNode { dir, found, id });
            }
        }
        None => write_stored(&node_path, &id.to_string()).map_err(|e| fail(&node_path, e))?,
    }
    let cluster_path = dir.join(CLUSTER_ID_FILE);
    let from_file = config.cluster_id();
    match read_stored(&cluster_path).map_err(|e| fail(&cluster_path, e))? {
        Some(found) => {
            if !valid_cluster_id(&found) {
                return Err(fail(&cluster_path, format!("not a cluster id: {found:?}")));
            }
            if found != from_file {
                if config.named_id.is_some() {
                    return Err(ClusterConfigError::WrongCluster {
                        dir,
                        found,
                        configured: from_file,
                    });
                }
                tracing::info!(
                    cluster_id = %found,
                    from_members = %from_file,
                    "the cluster file's nodes changed since this data directory joined its cluster; keeping its cluster id"
                );
            }
            Ok(found)
        }
        None => {
            write_stored(&cluster_path, &from_file).map_err(|e| fail(&cluster_path, e))?;
            Ok(from_file)
        }
    }
}

/// The trimmed text of `path`, or `None` if there is no such file.
fn read_stored(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes `value` and a newline to `path`, atomically and durably.
fn write_stored(path: &Path, value: &str) -> Result<(), String> {
    super::controller::files::write_atomically(path, format!("{value}\n").as_bytes())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[node]]
id = 1
listen = "127.0.0.1:9292"
raft = "127.0.0.1:9500"
kafka = "127.0.0.1:9092"

[[node]]
id = 2
listen = "127.0.0.1:9293"
raft = "127.0.0.1:9501"
"#;

    #[test]
    fn a_good_file_parses() {
        let c = ClusterConfig::parse(GOOD, 2).unwrap();
        assert_eq!(c.ids(), [1, 2]);
        assert_eq!(c.local_node().raft, "127.0.0.1:9501".parse().unwrap());
        assert_eq!(
            c.node(1).unwrap().kafka,
            Some("127.0.0.1:9092".parse().unwrap())
        );
        assert_eq!(c.node(2).unwrap().kafka, None);
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let err = |text: &str, id| ClusterConfig::parse(text, id).unwrap_err().to_string();
        assert!(err(GOOD, 3).contains("--node-id 3 is not in the cluster file"));
        assert!(err("", 1).contains("no [[node]]"));
        assert!(err(&GOOD.replace("id = 2", "id = 1"), 1).contains("node id 1 is listed twice"));
        assert!(err(&GOOD.replace("9501", "9500"), 1).contains("127.0.0.1:9500 is used twice"));
        assert!(err(&GOOD.replace("id = 2", "id = 0"), 1).contains("start at 1"));
        assert!(
            err(&GOOD.replace("id = 2", "id = 2147483648"), 1).contains("largest Kafka node id")
        );
        assert!(ClusterConfig::parse(&GOOD.replace("id = 2", "id = 2147483647"), 1).is_ok());
        assert!(err(&GOOD.replace("9501", "0"), 1).contains("port 0"));
        let missing = err(&GOOD.replace("raft = \"127.0.0.1:9501\"\n", ""), 1);
        assert!(missing.contains("raft"), "{missing}");
        assert!(err(&GOOD.replace("kafka", "kafak"), 1).contains("kafak"));
        assert!(err("[[node]]\nid = \"x\"", 1).contains("cluster file"));
    }

    #[test]
    fn a_data_dir_keeps_its_node_id() {
        let dir = tempfile::tempdir().unwrap();
        let config = |id| ClusterConfig::parse(GOOD, id).unwrap();
        claim_data_dir(dir.path(), &config(2)).unwrap();
        claim_data_dir(dir.path(), &config(2)).unwrap();
        let e = claim_data_dir(dir.path(), &config(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("belongs to node 2, not --node-id 1"), "{e}");
    }

    /// The documented example of the derived id (docs/replication.md,
    /// "Cluster identity").
    #[test]
    fn the_cluster_id_is_named_or_derived_from_the_members() {
        let c = ClusterConfig::parse(GOOD, 1).unwrap();
        assert_eq!(
            c.cluster_id(),
            format!("m{:016x}", fnv1a64(b"1=127.0.0.1:9500;2=127.0.0.1:9501;"))
        );
        assert_eq!(c.cluster_id(), "m83abd3c55ab3b3b1");
        // File order and client listeners do not matter; raft addresses do.
        let reordered = format!(
            "{}\n{}",
            &GOOD[GOOD.find("[[node]]\nid = 2").unwrap()..],
            &GOOD[..GOOD.find("[[node]]\nid = 2").unwrap()]
        );
        assert_eq!(
            ClusterConfig::parse(&reordered, 1).unwrap().cluster_id(),
            c.cluster_id()
        );
        let moved = GOOD.replace("9293", "9393");
        assert_eq!(
            ClusterConfig::parse(&moved, 1).unwrap().cluster_id(),
            c.cluster_id()
        );
        let other = GOOD.replace("9501", "9601");
        assert_ne!(
            ClusterConfig::parse(&other, 1).unwrap().cluster_id(),
            c.cluster_id()
        );
        let named = format!("cluster_id = \"orders-eu.2\"\n{GOOD}");
        assert_eq!(
            ClusterConfig::parse(&named, 1).unwrap().cluster_id(),
            "orders-eu.2"
        );
        for bad in ["", "a b", "x/y", &"x".repeat(65)] {
            let e = ClusterConfig::parse(&format!("cluster_id = {bad:?}\n{GOOD}"), 1)
                .unwrap_err()
                .to_string();
            assert!(e.contains("must be 1 to 64"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn a_data_dir_keeps_its_cluster_id() {
        let dir = tempfile::tempdir().unwrap();
        let derived = ClusterConfig::parse(GOOD, 1).unwrap();
        let first = claim_data_dir(dir.path(), &derived).unwrap();
        assert_eq!(first, derived.cluster_id());
        let stored = std::fs::read_to_string(dir.path().join("cluster").join(CLUSTER_ID_FILE));
        assert_eq!(stored.unwrap(), format!("{first}\n"));
        // A node moved to another raft address: the cluster keeps its id.
        let moved = ClusterConfig::parse(&GOOD.replace("9501", "9601"), 1).unwrap();
        assert_eq!(claim_data_dir(dir.path(), &moved).unwrap(), first);
        // Naming the stored id is accepted; naming another is refused.
        let named =
            |id: &str| ClusterConfig::parse(&format!("cluster_id = {id:?}\n{GOOD}"), 1).unwrap();
        assert_eq!(claim_data_dir(dir.path(), &named(&first)).unwrap(), first);
        let e = claim_data_dir(dir.path(), &named("other"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("belongs to cluster {first:?}")), "{e}");
        assert!(e.contains("cluster_id = \"other\""), "{e}");
        // A data directory from before cluster ids takes the file's.
        std::fs::remove_file(dir.path().join("cluster").join(CLUSTER_ID_FILE)).unwrap();
        assert_eq!(
            claim_data_dir(dir.path(), &named("other")).unwrap(),
            "other"
        );
    }
}
