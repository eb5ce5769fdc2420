//! The first frame of every node-to-node connection: the caller says which
//! cluster it belongs to, which node it is and which node it means to
//! reach, and the listener answers before it serves anything else
//! (docs/replication.md, "Cluster identity").
//!
//! A node of another cluster (one whose file names a reused address, or a
//! data directory of another cluster) would otherwise be taken as a member
//! of every group it calls: its votes counted, its entries appended. A
//! cluster file that gives a node another node's raft address would have
//! one node answer calls meant for the other. Both are refused here, with
//! the reason, and the connection is closed.
//!
//! The frame is a request with rpc 5 ([`Rpc::Hello`]), group controller and
//! request id 0 (calls count from 1); its body is the postcard [`Hello`],
//! then the caller's [`PROTOCOL_VERSION`] (a varint). The answer is a
//! response whose body is the listener's version (a varint), or an error
//! frame with the reason, after which the listener closes the connection.
//!
//! Builds before the version existed send and answer neither: their hello
//! ends after the node ids and their answer is empty, which reads as
//! version 0. Such a build may not know the pre-vote (rpc 6) and closes
//! the connection on it; a build that knows a peer is at version 0 does
//! not ask it for pre-votes ([`crate::replication::election`]), so nodes
//! can be upgraded one at a time. Builds at version 1 know no ping (rpc 7)
//! and close the connection on it: only peers at [`PING_FROM`] or later
//! are pinged.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::{Frame, GroupId, Kind, Rpc};

/// The request id of the hello and its answer.
pub const HELLO_REQUEST_ID: u64 = 0;
/// Largest hello body accepted (a cluster id is at most 64 bytes).
pub const MAX_HELLO_BODY: usize = 128;
/// This build's node-to-node protocol version, said in its hellos and its
/// answers to them. 0: a build that says none (it may lack the pre-vote);
/// 1: the rpcs 1 to 6, the pre-vote included; 2: also the ping (rpc 7).
pub const PROTOCOL_VERSION: u32 = 2;

/// The first protocol version that answers a ping ([`Rpc::Ping`]).
pub const PING_FROM: u32 = 2;

/// The version an answer to a hello says: its body's varint, 0 when the
/// body is empty (a build before the version) or does not decode.
pub fn answered_version(body: &[u8]) -> u32 {
    postcard::from_bytes(body).unwrap_or(0)
}

/// The body of an answer that accepts a hello: `version`, or nothing for
/// version 0 (as builds before the version answer).
pub fn answer_body(version: u32) -> Bytes {
    match version {
        0 => Bytes::new(),
        v => Bytes::from(postcard::to_allocvec(&v).unwrap_or_default()),
    }
}

/// Who calls, and whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The caller's cluster id (`ClusterConfig::cluster_id`, as stored in
    /// its data directory).
    pub cluster_id: String,
    /// The caller's node id.
    pub from: u64,
    /// The node id the caller means to reach at this address.
    pub to: u64,
}

impl Hello {
    /// The whole frame, from a caller at protocol `version` (0: none said,
    /// as builds before the version).
    pub fn encode(&self, version: u32) -> Bytes {
        let mut body = postcard::to_allocvec(self).unwrap_or_default();
        if version != 0 {
            body.extend_from_slice(&postcard::to_allocvec(&version).unwrap_or_default());
        }
        let mut out = BytesMut::new();
        Frame {
            kind: Kind::Request,
            rpc: Rpc::Hello,
            group: GroupId::Controller,
            request_id: HELLO_REQUEST_ID,
            body: body.into(),
            payload: BytesMut::new(),
        }
        .encode(&mut out);
        out.freeze()
    }

    /// The hello and the caller's protocol version that `frame` carries,
    /// if node `local` of cluster `cluster_id`, whose peers are those
    /// `is_peer` knows, serves the connection it opens; else why not.
    pub fn check(
        frame: &Frame,
        cluster_id: &str,
        local: u64,
        is_peer: impl Fn(u64) -> bool,
    ) -> Result<(Hello, u32), String> {
        if frame.rpc != Rpc::Hello || frame.request_id != HELLO_REQUEST_ID {
            return Err(format!(
                "the first frame of a connection must be a hello (rpc 5, request id 0), not {} #{}",
                frame.rpc.name(),
                frame.request_id
            ));
        }
        if frame.body.len() > MAX_HELLO_BODY || !frame.payload.is_empty() {
            return Err(format!(
                "a hello of {} body and {} payload bytes (at most {MAX_HELLO_BODY} and 0)",
                frame.body.len(),
                frame.payload.len()
            ));
        }
        let (hello, rest) = match postcard::take_from_bytes::<Hello>(&frame.body) {
            Ok(decoded) => decoded,
            Err(e) => return Err(format!("malformed hello: {e}")),
        };
        // Nothing after the ids: a build before the version. Later
        // versions may append more after theirs.
        let version = match rest {
            [] => 0,
            rest => postcard::from_bytes::<u32>(rest)
                .map_err(|e| format!("malformed hello version: {e}"))?,
        };
        if hello.cluster_id != cluster_id {
            return Err(format!(
                "node {local} belongs to cluster {cluster_id:?}, the caller (node {}) to cluster {:?}; \
                 nodes of different clusters do not talk (a node meant for this cluster takes \
                 its id from cluster_id = {cluster_id:?} in its cluster file)",
                hello.from, hello.cluster_id
            ));
        }
        if hello.to != local {
            return Err(format!(
                "this is node {local}, not node {}: the caller's cluster file (node {}) gives node {} \
                 this node's raft address",
                hello.to, hello.from, hello.to
            ));
        }
        if hello.from == local || !is_peer(hello.from) {
            return Err(format!(
                "node {} is not a peer in node {local}'s cluster file",
                hello.from
            ));
        }
        Ok((hello, version))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            cluster_id: "orders-eu".into(),
            from: 1,
            to: 2,
        }
    }

    /// The worked example of docs/replication.md ("Cluster identity").
    #[test]
    fn the_documented_bytes() {
        let bytes = hello().encode(2);
        let expected: Vec<u8> = [
            &[0, 0, 0, 0x2d][..],
            &[1, 0, 5, 0],
            &[0; 8],
            &[0; 4],
            &[0; 8],
            &[0, 0, 0, 13],
            &[0, 0, 0, 0],
            &[9],
            b"orders-eu",
            &[1, 2],
            &[2],
        ]
        .concat();
        assert_eq!(&bytes[..], &expected[..]);
        let frame = Frame::decode(&mut BytesMut::from(&bytes[..]))
            .unwrap()
            .unwrap();
        assert_eq!(
            Hello::check(&frame, "orders-eu", 2, |id| id == 1),
            Ok((hello(), 2))
        );
        // The answer says the listener's version; builds before it, none.
        assert_eq!(&answer_body(2)[..], &[2]);
        assert_eq!(PROTOCOL_VERSION, 2);
        assert_eq!(
            answered_version(&answer_body(PROTOCOL_VERSION)),
            PROTOCOL_VERSION
        );
        assert_eq!(answered_version(&answer_body(0)), 0);
    }

    /// A build before the version reads this build's hello (its decoder
    /// leaves the bytes after the ids alone), and this build reads its
    /// hello, which ends at the ids, as version 0.
    #[test]
    fn builds_before_the_version_and_after_it_read_each_other() {
        let decode = |bytes: Bytes| {
            Frame::decode(&mut BytesMut::from(&bytes[..]))
                .unwrap()
                .unwrap()
        };
        let ours = decode(hello().encode(PROTOCOL_VERSION));
        assert_eq!(postcard::from_bytes::<Hello>(&ours.body).unwrap(), hello());
        let theirs = decode(hello().encode(0));
        assert_eq!(
            &theirs.body[..],
            &postcard::to_allocvec(&hello()).unwrap()[..]
        );
        assert_eq!(
            Hello::check(&theirs, "orders-eu", 2, |id| id == 1),
            Ok((hello(), 0))
        );
        // A later version may say more after its version.
        let mut later = decode(hello().encode(7));
        later.body = [&later.body[..], &[0xaa, 0xbb]].concat().into();
        assert_eq!(
            Hello::check(&later, "orders-eu", 2, |id| id == 1),
            Ok((hello(), 7))
        );
        // A version that does not decode is refused.
        let mut broken = decode(hello().encode(0));
        broken.body = [&broken.body[..], &[0xff]].concat().into();
        let m = Hello::check(&broken, "orders-eu", 2, |id| id == 1).unwrap_err();
        assert!(m.contains("malformed hello version"), "{m}");
    }

    #[test]
    fn strangers_are_refused_with_the_reason() {
        let refused = |h: Hello, cluster: &str, local: u64| {
            let frame = Frame::decode(&mut BytesMut::from(&h.encode(PROTOCOL_VERSION)[..]))
                .unwrap()
                .unwrap();
            Hello::check(&frame, cluster, local, |id| id == 1 || id == 3).unwrap_err()
        };
        let m = refused(hello(), "orders-us", 2);
        assert!(m.contains("belongs to cluster \"orders-us\""), "{m}");
        assert!(m.contains("(node 1) to cluster \"orders-eu\""), "{m}");
        let m = refused(hello(), "orders-eu", 3);
        assert!(m.contains("this is node 3, not node 2"), "{m}");
        let m = refused(Hello { from: 7, ..hello() }, "orders-eu", 2);
        assert!(m.contains("node 7 is not a peer"), "{m}");
        let m = refused(Hello { from: 2, ..hello() }, "orders-eu", 2);
        assert!(m.contains("node 2 is not a peer"), "{m}");
        // Another call first, an oversized or broken body.
        let call = Frame {
            kind: Kind::Request,
            rpc: Rpc::Vote,
            group: GroupId::Controller,
            request_id: 1,
            body: Bytes::new(),
            payload: BytesMut::new(),
        };
        let m = Hello::check(&call, "orders-eu", 2, |_| true).unwrap_err();
        assert!(m.contains("must be a hello"), "{m}");
        for body in [vec![0xff; 200], vec![0xff; 3]] {
            let frame = Frame {
                rpc: Rpc::Hello,
                request_id: 0,
                body: body.into(),
                ..call.clone()
            };
            assert!(Hello::check(&frame, "orders-eu", 2, |_| true).is_err());
        }
    }
}
