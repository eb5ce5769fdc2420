//! The HTTP endpoint: `GET /metrics` (OpenMetrics text), `GET /health/live`
//! and `GET /health/ready`, and in cluster mode `GET /cluster` (JSON: node id, controller leader, metadata). Built on hyper's HTTP/1 server on the broker's
//! tokio runtime: a small, well-kept implementation, so the broker parses no
//! HTTP itself.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Most HTTP connections served at once. A connection arriving when that
/// many are open takes the place of one of them, closed at once: the
/// oldest that is not in the middle of answering a request (it is between
/// requests, has sent only part of one, or nothing, or its answer is being
/// written), else the oldest. The accept loop never waits for a place, so
/// connections that send nothing or a byte at a time, or keep their
/// keep-alive connection open, cannot keep a scraper (or a health probe)
/// out, however fast they come.
const MAX_CONNECTIONS: usize = 64;

/// A connection that sends no request headers within this long is closed.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// One open connection: its task, and whether it is answering a request
/// (from its head until the handler's response).
struct Seat {
    task: tokio::task::AbortHandle,
    answering: Arc<AtomicBool>,
}

/// The connections open, by id (oldest first), and the ids of tasks that
/// ended before their seat was recorded.
#[derive(Default)]
struct Seats {
    open: BTreeMap<u64, Seat>,
    ended: std::collections::HashSet<u64>,
}

type Open = Arc<parking_lot::Mutex<Seats>>;

/// Takes connection `id` out of the open ones when its task ends, however
/// it ends (aborted included); a task that ends before its seat was
/// recorded leaves word, so the seat is never recorded. The lock is never
/// held while a task is spawned (a runtime shutting down drops a new task
/// on the spawning thread).
struct Leave {
    open: Open,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let mut seats = self.open.lock();
        if seats.open.remove(&self.id).is_none() {
            seats.ended.insert(self.id);
        }
    }
}

impl Seats {
    /// Makes room for one more connection: closes the oldest connection
    /// not answering a request, else the oldest.
    fn make_room(&mut self) {
        if self.open.len() < MAX_CONNECTIONS {
            return;
        }
        let victim = self
            .open
            .iter()
            .find(|(_, s)| !s.answering.load(Ordering::Acquire))
            .or_else(|| self.open.iter().next())
            .map(|(id, _)| *id);
        if let Some(seat) = victim.and_then(|id| self.open.remove(&id)) {
            seat.task.abort();
        }
    }

    /// Records connection `id`'s seat, unless its task already ended.
    fn seat(&mut self, id: u64, seat: Seat) {
        if !self.ended.remove(&id) {
            self.open.insert(id, seat);
        }
    }
}

/// Serves the endpoint on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, health: Arc<Health>, mut stop: watch::Receiver<bool>) {
    let registry = Arc::new(Exposition::new(super::collector::registry(Arc::clone(
        &health,
    ))));
    let open: Open = Arc::default();
    let mut next_id = 0u64;
    let mut connections = JoinSet::new();
    let accept_failed = crate::throttle::Throttle::new(Duration::from_secs(10));
    loop {
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
        let id = next_id;
        next_id += 1;
        let answering = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&answering);
        let leave = Leave {
            open: Arc::clone(&open),
            id,
        };
        open.lock().make_room();
        let task = connections.spawn(async move {
            let _leave = leave;
            let service = service_fn(move |req| {
                let (registry, health, flag) = (
                    Arc::clone(&registry),
                    Arc::clone(&health),
                    Arc::clone(&flag),
                );
                async move {
                    flag.store(true, Ordering::Release);
                    let r = handle(req, registry, health).await;
                    flag.store(false, Ordering::Release);
                    r
                }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "metrics connection ended");
            }
        });
        open.lock().seat(id, Seat { task, answering });
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

/// The metrics registry and its last rendering. Renders one at a time, and
/// a scrape that arrived before the last render started gets that one's
/// bytes: what it answers is never older than the scrape. So clients that
/// ask and hang up at once cannot start render after render on the
/// blocking pool the broker's flushes and cold reads use (a render reads
/// every partition's state): one runs at a time, and the scrapes that came
/// meanwhile share the next.
pub(crate) struct Exposition {
    registry: Registry,
    last: Arc<tokio::sync::Mutex<Rendered>>,
}

/// One rendering, in both formats, and when it started.
#[derive(Default)]
struct Rendered {
    started: Option<tokio::time::Instant>,
    openmetrics: Bytes,
    text: Bytes,
}

impl Exposition {
    fn new(registry: Registry) -> Self {
        Exposition {
            registry,
            last: Arc::default(),
        }
    }

    /// The exposition in OpenMetrics or Prometheus text.
    async fn body(self: &Arc<Self>, openmetrics: bool) -> Bytes {
        let me = Arc::clone(self);
        Self::shared(&self.last, openmetrics, move || {
            let om = super::collector::render(&me.registry);
            let text = super::collector::to_prometheus_text(&om);
            (Bytes::from(om), Bytes::from(text))
        })
        .await
    }

    /// What `render` makes (OpenMetrics, text), or what a render that
    /// started after this call made; never two renders at once. The lock
    /// goes with the render onto the blocking pool: a client gone
    /// meanwhile leaves it running and holding the lock, and the scrapes
    /// after it wait for its bytes rather than start their own.
    async fn shared(
        last: &Arc<tokio::sync::Mutex<Rendered>>,
        openmetrics: bool,
        render: impl FnOnce() -> (Bytes, Bytes) + Send + 'static,
    ) -> Bytes {
        let pick = move |r: &Rendered| {
            if openmetrics {
                r.openmetrics.clone()
            } else {
                r.text.clone()
            }
        };
        let asked = tokio::time::Instant::now();
        let mut guard = Arc::clone(last).lock_owned().await;
        if guard.started.is_some_and(|at| at >= asked) {
            return pick(&guard);
        }
        tokio::task::spawn_blocking(move || {
            let started = tokio::time::Instant::now();
            let (om, text) = render();
            *guard = Rendered {
                started: Some(started),
                openmetrics: om,
                text,
            };
            pick(&guard)
        })
        .await
        .unwrap_or_default()
    }
}

async fn handle(
    req: Request<Incoming>,
    registry: Arc<Exposition>,
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
            // Reading sizes and segment counts takes partition locks: off
            // the runtime, one render at a time.
            let body = registry.body(openmetrics).await;
            let mut r = Response::new(Full::new(body));
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scrapes_share_a_render_that_started_after_they_came_and_never_run_two_at_once() {
        use std::sync::atomic::AtomicBool;
        let last: Arc<tokio::sync::Mutex<Rendered>> = Arc::default();
        let renders = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        // The first render runs until the test lets it end.
        let release = Arc::new(AtomicBool::new(false));
        let scrape = |openmetrics| {
            let (last, renders, running, release) = (
                Arc::clone(&last),
                Arc::clone(&renders),
                Arc::clone(&running),
                Arc::clone(&release),
            );
            tokio::spawn(async move {
                Exposition::shared(&last, openmetrics, move || {
                    assert_eq!(running.fetch_add(1, Ordering::SeqCst), 0, "two at once");
                    let n = renders.fetch_add(1, Ordering::SeqCst);
                    while n == 0 && !release.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                    running.fetch_sub(1, Ordering::SeqCst);
                    (
                        Bytes::from(format!("om {n}")),
                        Bytes::from(format!("text {n}")),
                    )
                })
                .await
            })
        };
        let first = scrape(true);
        while renders.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Thirty scrapes come while it runs, ten of whose clients hang up.
        for g in (0..10).map(|_| scrape(true)).collect::<Vec<_>>() {
            g.abort();
        }
        let waiting: Vec<_> = (0..20).map(|i| scrape(i % 2 == 0)).collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        release.store(true, Ordering::SeqCst);
        assert_eq!(first.await.unwrap(), "om 0");
        for (i, s) in waiting.into_iter().enumerate() {
            let body = s.await.unwrap();
            let (format, n) = std::str::from_utf8(&body).unwrap().split_once(' ').unwrap();
            assert_eq!(format, if i % 2 == 0 { "om" } else { "text" });
            // Never the render that was running when it came.
            assert_ne!(n, "0", "an answer older than the scrape");
        }
        // They shared the render after the first (one more if a scrape's
        // task came late), not one each.
        let n = renders.load(Ordering::SeqCst);
        assert!((2..=3).contains(&n), "{n} renders for 31 scrapes");
    }
}
