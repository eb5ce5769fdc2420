//! The cluster file and this node's place in it.
//!
//! ```toml
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
    node: Vec<NodeEntry>,
}

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
    /// The node id file could not be read or written.
    #[error("node id file {path}: {message}")]
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
            nodes: file.node,
            local,
        })
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

/// Name of the file (in [`cluster_dir`]) holding the node id, as decimal
/// text and a newline.
pub const NODE_ID_FILE: &str = "node_id";

/// Creates `<data_dir>/cluster/` if needed and checks that it belongs to
/// node `id`: the first start writes the id (temp file, fsync, rename,
/// directory fsync); later starts refuse another id. Blocking.
pub fn claim_data_dir(data_dir: &Path, id: u64) -> Result<(), ClusterConfigError> {
    let dir = cluster_dir(data_dir);
    let path = dir.join(NODE_ID_FILE);
    let fail = |message: String| ClusterConfigError::NodeIdFile {
        path: path.clone(),
        message,
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string()))?;
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let found: u64 = text
                .trim()
                .parse()
                .map_err(|_| fail(format!("not a node id: {:?}", text.trim())))?;
            if found != id {
                return Err(ClusterConfigError::WrongNode { dir, found, id });
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            super::controller::files::write_atomically(&path, format!("{id}\n").as_bytes())
                .map_err(|e| fail(e.to_string()))
        }
        Err(e) => Err(fail(e.to_string())),
    }
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
        claim_data_dir(dir.path(), 2).unwrap();
        claim_data_dir(dir.path(), 2).unwrap();
        let e = claim_data_dir(dir.path(), 3).unwrap_err().to_string();
        assert!(e.contains("belongs to node 2, not --node-id 3"), "{e}");
    }
}
