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
//! request id 0 (calls count from 1); its body is the postcard [`Hello`].
//! The answer is a response with an empty body, or an error frame with the
//! reason, after which the listener closes the connection.

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::{Frame, GroupId, Kind, Rpc};

/// The request id of the hello and its answer.
pub const HELLO_REQUEST_ID: u64 = 0;
/// Largest hello body accepted (a cluster id is at most 64 bytes).
pub const MAX_HELLO_BODY: usize = 128;

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
    /// The whole frame.
    pub fn encode(&self) -> Bytes {
        let body = postcard::to_allocvec(self).unwrap_or_default();
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

    /// Why node `local` of cluster `cluster_id`, whose peers are `peers`,
    /// refuses the connection whose first frame is `frame`; `None` to
    /// serve it.
    pub fn refusal(
        frame: &Frame,
        cluster_id: &str,
        local: u64,
        is_peer: impl Fn(u64) -> bool,
    ) -> Option<String> {
        if frame.rpc != Rpc::Hello || frame.request_id != HELLO_REQUEST_ID {
            return Some(format!(
                "the first frame of a connection must be a hello (rpc 5, request id 0), not {} #{}",
                frame.rpc.name(),
                frame.request_id
            ));
        }
        if frame.body.len() > MAX_HELLO_BODY || !frame.payload.is_empty() {
            return Some(format!(
                "a hello of {} body and {} payload bytes (at most {MAX_HELLO_BODY} and 0)",
                frame.body.len(),
                frame.payload.len()
            ));
        }
        let hello: Hello = match postcard::from_bytes(&frame.body) {
            Ok(h) => h,
            Err(e) => return Some(format!("malformed hello: {e}")),
        };
        if hello.cluster_id != cluster_id {
            return Some(format!(
                "node {local} belongs to cluster {cluster_id:?}, the caller (node {}) to cluster {:?}; \
                 nodes of different clusters do not talk (a node meant for this cluster takes \
                 its id from cluster_id = {cluster_id:?} in its cluster file)",
                hello.from, hello.cluster_id
            ));
        }
        if hello.to != local {
            return Some(format!(
                "this is node {local}, not node {}: the caller's cluster file (node {}) gives node {} \
                 this node's raft address",
                hello.to, hello.from, hello.to
            ));
        }
        if hello.from == local || !is_peer(hello.from) {
            return Some(format!(
                "node {} is not a peer in node {local}'s cluster file",
                hello.from
            ));
        }
        None
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
        let bytes = hello().encode();
        let expected: Vec<u8> = [
            &[0, 0, 0, 0x2c][..],
            &[1, 0, 5, 0],
            &[0; 8],
            &[0; 4],
            &[0; 8],
            &[0, 0, 0, 12],
            &[0, 0, 0, 0],
            &[9],
            b"orders-eu",
            &[1, 2],
        ]
        .concat();
        assert_eq!(&bytes[..], &expected[..]);
        let frame = Frame::decode(&mut BytesMut::from(&bytes[..]))
            .unwrap()
            .unwrap();
        assert_eq!(postcard::from_bytes::<Hello>(&frame.body).unwrap(), hello());
        assert_eq!(Hello::refusal(&frame, "orders-eu", 2, |id| id == 1), None);
    }

    #[test]
    fn strangers_are_refused_with_the_reason() {
        let refused = |h: Hello, cluster: &str, local: u64| {
            let frame = Frame::decode(&mut BytesMut::from(&h.encode()[..]))
                .unwrap()
                .unwrap();
            Hello::refusal(&frame, cluster, local, |id| id == 1 || id == 3).unwrap_or_default()
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
        let m = Hello::refusal(&call, "orders-eu", 2, |_| true).unwrap();
        assert!(m.contains("must be a hello"), "{m}");
        for body in [vec![0xff; 200], vec![0xff; 3]] {
            let frame = Frame {
                rpc: Rpc::Hello,
                request_id: 0,
                body: body.into(),
                ..call.clone()
            };
            assert!(Hello::refusal(&frame, "orders-eu", 2, |_| true).is_some());
        }
    }
}
