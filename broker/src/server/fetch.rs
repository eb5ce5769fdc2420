//! Fetch: resolve each partition's offset to a segment file range, wait
//! (long poll) until `min_bytes` are available or `max_wait` passes, then
//! send the response header followed by the file ranges with zero copy.

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::{FetchPartitionResponse, FetchRequest, FetchResponse};
use tokio::sync::watch;
use tokio::time::Instant;

use super::connection::{Conn, ConnError};
use super::handlers::check_partition_list;
use super::stats::Stats;
use super::zero_copy::send_response;
use crate::error::log_error_code;
use crate::log::LogSlice;
use crate::topics::Partition;

struct Resolved {
    responses: Vec<FetchPartitionResponse>,
    slices: Vec<LogSlice>,
    total: u64,
    any_error: bool,
}

/// Resolves every partition to a file range. The ranges total at most
/// `max_response` bytes, except that the first non-empty range holds at least
/// one whole record batch even if that is larger (so a consumer always
/// progresses); a later range that would go past `max_response` is left for
/// the next fetch. The request's own `max_bytes` limits are approximate as
/// before: each partition read may end with one whole batch past them.
fn resolve(
    req: &FetchRequest,
    parts: &[Result<Arc<Partition>, ErrorCode>],
    max_response: u32,
) -> Resolved {
    let mut out = Resolved {
        responses: Vec::with_capacity(parts.len()),
        slices: Vec::with_capacity(parts.len()),
        total: 0,
        any_error: false,
    };
    let mut budget = u64::from(req.max_bytes.min(max_response));
    let mut clamp_left = u64::from(max_response);
    for (p, part) in req.partitions.iter().zip(parts) {
        let mut resp = FetchPartitionResponse {
            topic: p.topic.clone(),
            partition: p.partition,
            error_code: ErrorCode::None,
            high_watermark: 0,
            log_start_offset: 0,
            records_len: 0,
        };
        match part {
            Err(code) => {
                resp.error_code = *code;
                out.any_error = true;
            }
            Ok(part) => {
                resp.high_watermark = part.log.high_watermark();
                resp.log_start_offset = part.log.log_start_offset();
                let max = u64::from(p.max_bytes).min(budget);
                if max > 0 || out.total == 0 {
                    match part.log.read(p.offset, max.max(1)) {
                        Ok(slice) if out.total > 0 && slice.len > clamp_left => {
                            // Past the broker's response limit: the
                            // partition's records come in a later fetch.
                            resp.high_watermark = slice.high_watermark;
                            resp.log_start_offset = slice.log_start_offset;
                        }
                        Ok(slice) if u32::try_from(slice.len).is_err() => {
                            // Cannot be described in a response; never
                            // happens with batches under the frame limit.
                            resp.error_code = ErrorCode::MessageTooLarge;
                            out.any_error = true;
                        }
                        Ok(slice) => {
                            resp.high_watermark = slice.high_watermark;
                            resp.log_start_offset = slice.log_start_offset;
                            resp.records_len = slice.len as u32;
                            out.total += slice.len;
                            budget = budget.saturating_sub(slice.len);
                            clamp_left = clamp_left.saturating_sub(slice.len);
                            if slice.len > 0 {
                                out.slices.push(slice);
                            }
                        }
                        Err(e) => {
                            resp.error_code = log_error_code(&e);
                            out.any_error = true;
                        }
                    }
                }
            }
        }
        out.responses.push(resp);
    }
    out
}

pub(super) async fn fetch(conn: &mut Conn, id: u32, req: FetchRequest) -> Result<(), ConnError> {
    let broker = Arc::clone(&conn.broker);
    let entries = req
        .partitions
        .iter()
        .map(|p| (p.topic.as_str(), p.partition));
    if let Err((code, msg)) =
        check_partition_list(entries, broker.config.max_partitions_per_request)
    {
        Stats::add(&broker.stats.bad_requests, 1);
        return conn.write_error(id, code, &msg).await;
    }
    let max_response = broker.config.max_fetch_response_bytes;
    let parts: Vec<_> = req
        .partitions
        .iter()
        .map(|p| broker.topics.partition(&p.topic, p.partition))
        .collect();
    // Subscribe before resolving, so an append in between is not missed.
    let mut watchers: Vec<watch::Receiver<u64>> =
        parts.iter().flatten().map(|p| p.subscribe()).collect();
    let wait = req.max_wait_ms.min(broker.config.max_fetch_wait_ms);
    let deadline = Instant::now() + Duration::from_millis(u64::from(wait));
    let mut stop = conn.stop.clone();
    let resolved = loop {
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let r = resolve(&req, &parts, max_response);
        if r.total >= u64::from(req.min_bytes)
            || r.any_error
            || watchers.is_empty()
            || Instant::now() >= deadline
            || *stop.borrow()
        {
            break r;
        }
        let changed =
            futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        let gone = tokio::select! {
            (result, _, _) = changed => result.is_err(),
            () = tokio::time::sleep_until(deadline) => false,
            _ = stop.changed() => false,
        };
        if gone {
            // A partition was deleted meanwhile: answer with what there is.
            break resolve(&req, &parts, max_response);
        }
    };
    let tail_len = resolved.total as usize;
    let encoded = conn.encode_response(
        id,
        ErrorCode::None,
        &FetchResponse {
            partitions: resolved.responses,
        },
        tail_len,
    );
    if let Err(e) = encoded {
        let msg = format!("fetch response too large: {e}");
        return conn.write_error(id, ErrorCode::MessageTooLarge, &msg).await;
    }
    let timeout = Duration::from_millis(broker.config.write_timeout_ms);
    let send = send_response(
        &mut conn.stream,
        &conn.out,
        &resolved.slices,
        &broker.config,
        &broker.stats,
    );
    match tokio::time::timeout(timeout, send).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ConnError::WriteTimeout(timeout)),
    }
}
