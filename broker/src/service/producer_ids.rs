//! InitProducerId: a fresh producer id for an idempotent producer.

use std::sync::Arc;

use sluice_protocol::wire::ErrorCode;

use super::{Refused, Service, blocking};

impl Service {
    /// A producer id never handed out before by this data directory (in a
    /// cluster: by any node, see [`cluster_producer_id`]), with epoch 0.
    /// Reserving a new block of ids writes and syncs a small file (on the
    /// blocking pool).
    pub async fn init_producer_id(self: &Arc<Self>) -> Result<(i64, i16), Refused> {
        let svc = Arc::clone(self);
        let node = self.leadership.local_node();
        let allocated = blocking(move || {
            svc.producer_ids
                .allocate_after(|| svc.highest_held_local_producer_id(node))
        })
        .await
        .and_then(|r| r);
        match allocated {
            Ok(id) => match self.leadership.local_node() {
                0 => Ok((id, 0)),
                node => cluster_producer_id(id, node).map(|id| (id, 0)),
            },
            Err(e) => Err(Refused {
                code: ErrorCode::StorageError,
                message: format!("could not allocate a producer id: {e}"),
            }),
        }
    }
}

impl Service {
    /// The highest allocator id (`local`, before [`cluster_producer_id`]
    /// in a cluster) among the producer ids this broker's partitions hold
    /// that node `node` (0: a broker alone) hands out. Walks every hosted
    /// partition's producer table (blocking: takes their locks).
    fn highest_held_local_producer_id(&self, node: u64) -> Option<i64> {
        // A cluster node's local ids end at 2^32 (`cluster_producer_id`):
        // a made-up id past half of that is not followed, so it cannot use
        // up the node's ids.
        let plausible = match node {
            0 => 0..crate::producer::ids::PLAUSIBLE_IDS,
            _ => 0..1 << 31,
        };
        let local_of = |pid: i64| {
            match node {
                0 => Some(pid),
                n => (pid & ((1 << 31) - 1) == n as i64).then_some(pid >> 31),
            }
            .filter(|l| plausible.contains(l))
        };
        self.topics
            .list()
            .iter()
            .flat_map(|t| t.hosted().map(|(_, p)| p.log.max_producer_id(local_of)))
            .flatten()
            .max()
    }
}

/// Node `node`'s `local`-th producer id in a cluster: `local << 31 | node`
/// (node ids are below 2^31), so no two nodes hand out the same id and
/// every partition keeps one producer's sequences apart from another's.
/// Refused once `local` reaches 2^32.
pub fn cluster_producer_id(local: i64, node: u64) -> Result<i64, Refused> {
    u32::try_from(local)
        .ok()
        .zip(u32::try_from(node).ok().filter(|&n| n < 1 << 31))
        .map(|(l, n)| i64::from(l) << 31 | i64::from(n))
        .ok_or_else(|| Refused {
            code: ErrorCode::StorageError,
            message: format!("no producer id left for node {node} (local id {local})"),
        })
}

#[cfg(test)]
mod tests {
    use super::cluster_producer_id;

    #[test]
    fn cluster_producer_ids_differ_between_nodes() {
        let ids: Vec<i64> = [(0, 1), (0, 2), (1, 1), (1, 2)]
            .iter()
            .map(|&(l, n)| cluster_producer_id(l, n).unwrap())
            .collect();
        assert_eq!(ids, [1, 2, (1 << 31) | 1, (1 << 31) | 2]);
        let top = cluster_producer_id(i64::from(u32::MAX), (1 << 31) - 1).unwrap();
        assert!(top > 0);
        assert!(cluster_producer_id(1 << 32, 1).is_err());
        assert!(cluster_producer_id(-1, 1).is_err());
        assert!(cluster_producer_id(0, 1 << 31).is_err());
    }
}
