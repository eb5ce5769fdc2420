//! InitProducerId: a fresh producer id for an idempotent producer.

use std::sync::Arc;

use sluice_protocol::wire::ErrorCode;

use super::{Refused, Service, blocking};

impl Service {
    /// A producer id never handed out before by this data directory, with
    /// epoch 0. Reserving a new block of ids writes and syncs a small file
    /// (on the blocking pool).
    pub async fn init_producer_id(self: &Arc<Self>) -> Result<(i64, i16), Refused> {
        let svc = Arc::clone(self);
        let allocated = blocking(move || svc.producer_ids.allocate())
            .await
            .and_then(|r| r);
        match allocated {
            Ok(id) => Ok((id, 0)),
            Err(e) => Err(Refused {
                code: ErrorCode::StorageError,
                message: format!("could not allocate a producer id: {e}"),
            }),
        }
    }
}
