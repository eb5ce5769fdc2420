//! FetchStream: one request, answered by a frame each time records arrive
//! (see `sluice_protocol::wire::fetch_stream`). Each round is an ordinary
//! long-poll fetch from the positions the previous frame left; the stream
//! watches the socket meanwhile, and ends at the client's next request
//! (with a `last` frame, then that request is served), at its close, at a
//! partition's error, or at shutdown.
//!
//! A tailing consumer on a stream costs the broker one wake-up per append
//! (the produce's), where a consumer that polls adds its next Fetch's.

use std::sync::Arc;
use std::time::Duration;

use sluice_protocol::wire::ErrorCode;
use sluice_protocol::wire::fetch::FetchRequest;
use sluice_protocol::wire::fetch_stream::FetchStreamResponse;
use tokio::time::Instant;

use super::connection::{Conn, ConnError};
use super::{partition_responses, refuse_fetch, send_records, service_fetch};

/// The shortest silence after which a stream sends a frame without
/// records: a `max_wait_ms` below it would spin on empty frames.
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

/// Serves a FetchStream request until it ends (see the module docs).
pub(super) async fn fetch_stream(
    conn: &mut Conn,
    id: u32,
    req: FetchRequest,
) -> Result<(), ConnError> {
    let broker = Arc::clone(&conn.broker);
    // A stream is one request for as long as it lasts: never "slow".
    conn.wait_allowance = Duration::from_secs(u64::from(u32::MAX));
    let mut req = service_fetch(req);
    // Every frame waits for at least one byte of records, or its heartbeat.
    req.min_bytes = req.min_bytes.max(1);
    req.max_wait = req.max_wait.max(MIN_HEARTBEAT);
    // Shared with each round's fetch, which lets go of it when it returns:
    // the offsets move in place, without a copy of the request per frame.
    let mut req = Arc::new(req);
    let mut probe = [0u8; 1];
    loop {
        if conn.request_started() {
            // The client's next request is here: end the stream first.
            return end(conn, id).await;
        }
        let started = Instant::now();
        let round = {
            let fetch = broker.service.fetch_timed(
                Arc::clone(&req),
                conn.stop.clone(),
                conn.fetch_timer.as_mut(),
            );
            tokio::select! {
                biased;
                spoke = conn.stream.peek(&mut probe) => match spoke? {
                    // Closed by the client: the connection's reader sees it.
                    0 => return Ok(()),
                    // Its next request: left unread for the connection.
                    _ => None,
                },
                r = fetch => Some(r),
            }
        };
        let Some(round) = round else {
            return end(conn, id).await;
        };
        let mut result = match round {
            Ok(r) => r,
            Err(refused) => return refuse_fetch(conn, id, refused).await,
        };
        let last = req.partitions.is_empty()
            || result.partitions.iter().any(|p| !p.error_code.is_ok())
            || *conn.stop.borrow();
        if result.total == 0 && !last && started.elapsed() < MIN_HEARTBEAT {
            // The broker's `max_fetch_wait_ms` cut the wait short: no
            // heartbeat before its time, and no spinning on empty rounds.
            let rest = MIN_HEARTBEAT.saturating_sub(started.elapsed());
            tokio::select! {
                biased;
                spoke = conn.stream.peek(&mut probe) => if spoke? == 0 {
                    return Ok(());
                },
                () = tokio::time::sleep(rest) => {}
            }
            continue;
        }
        for (p, got) in Arc::make_mut(&mut req)
            .partitions
            .iter_mut()
            .zip(&result.partitions)
        {
            p.offset = got.next_offset;
        }
        let partitions = partition_responses(&mut result);
        send_records(conn, id, &FetchStreamResponse { last, partitions }, &result).await?;
        if last {
            return Ok(());
        }
    }
}

/// The last frame of a stream the client ended: it lists no partitions.
async fn end(conn: &mut Conn, id: u32) -> Result<(), ConnError> {
    let last = FetchStreamResponse {
        last: true,
        partitions: Vec::new(),
    };
    conn.encode_response(id, ErrorCode::None, &last, 0)?;
    conn.flush().await
}
