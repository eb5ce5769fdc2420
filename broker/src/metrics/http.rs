//! The HTTP endpoint: `GET /metrics` (OpenMetrics text), `GET /health/live`
//! and `GET /health/ready`, and in cluster mode `GET /cluster` (JSON: node id, controller leader, metadata). Built on hyper's HTTP/1 server on the broker's
//! tokio runtime: a small, well-kept implementation, so the broker parses no
//! HTTP itself.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::Health;

/// The content type of the exposition for scrapers that accept OpenMetrics
/// (Prometheus does).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the exposition for the others (Prometheus text 0.0.4).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Most HTTP connections served at once; more wait in the accept queue.
const MAX_CONNECTIONS: usize = 64;

/// A connection that sends no request headers within this long is closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the endpoint on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, health: Arc<Health>, mut stop: watch::Receiver<bool>) {
    let registry = Arc::new(super::collector::registry(Arc::clone(&health)));
    let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let accept_failed = crate::throttle::Throttle::new(Duration::from_secs(10));
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&limit).acquire_owned() => p,
            _ = stop.changed() => break,
        };
        let Ok(permit) = permit else { break };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if let Some(held_back) = accept_failed.allow() {
                    tracing::warn!(error = %e, held_back, "metrics endpoint: accept failed");
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let registry = Arc::clone(&registry);
        let health = Arc::clone(&health);
        connections.spawn(async move {
            let service =
                service_fn(move |req| handle(req, Arc::clone(&registry), Arc::clone(&health)));
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "metrics connection ended");
            }
            drop(permit);
        });
        while connections.try_join_next().is_some() {}
    }
    connections.abort_all();
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn handle(
    req: Request<Incoming>,
    registry: Arc<Registry>,
    health: Arc<Health>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n"));
    }
    Ok(match req.uri().path() {
        "/cluster" => match health.broker().and_then(|b| b.cluster.get()) {
            Some(c) => {
                let mut r = text(
                    StatusCode::OK,
                    serde_json::to_vec(&c.status()).unwrap_or_default(),
                );
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                r
            }
            None => text(StatusCode::NOT_FOUND, "not in cluster mode\n"),
        },
        "/metrics" => {
            let openmetrics = req
                .headers()
                .get_all(header::ACCEPT)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.contains("application/openmetrics-text"));
            // Reading sizes and segment counts takes partition locks.
            let body = tokio::task::spawn_blocking(move || {
                let om = super::collector::render(&registry);
                if openmetrics {
                    om
                } else {
                    super::collector::to_prometheus_text(&om)
                }
            })
            .await
            .unwrap_or_default();
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(if openmetrics {
                    OPENMETRICS_CONTENT_TYPE
                } else {
                    TEXT_CONTENT_TYPE
                }),
            );
            r
        }
        "/health/live" => text(StatusCode::OK, "live\n"),
        "/health/ready" => match health.ready() {
            Ok(()) => text(StatusCode::OK, "ready\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found; try /metrics, /health/live or /health/ready\n",
        ),
    })
}
