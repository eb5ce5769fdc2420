//! The connections being served (one seat each, at most `max_connections`),
//! and which of them gives way when a new one arrives with every seat taken.
//!
//! Without this, clients that open connections and send nothing hold their
//! seats until `idle_timeout_ms` (ten minutes by default): a thousand silent
//! sockets locked every other client out for that long. The client
//! listeners (native and Kafka, one table for both) and the raft listener
//! (a table of its own, where a request frame is a peer's call) use it.
//!
//! A seat is *waiting* while its connection waits for (the rest of) a request
//! frame, and *serving* while a request is being served or its answer sent —
//! a long-poll fetch or a fetch stream is serving. A new connection that
//! finds every seat taken takes the seat of the waiting connection that
//! - has not had a request served yet and has waited at least
//!   [`FIRST_REQUEST_GRACE`], the longest-waiting first; or else
//! - has waited at least [`SERVED_GRACE`] since its last request, the
//!   longest-waiting first.
//!
//! That connection is closed (between requests, or with its partial frame
//! dropped: nothing it asked for is left half done). A serving connection
//! never gives way. With no such seat the new connection is closed at once,
//! as before.
//!
//! Guarantees: a client whose connection has just been served keeps it for
//! at least [`SERVED_GRACE`] of silence even under a flood; silent
//! connections cannot keep a new client out for longer than
//! [`FIRST_REQUEST_GRACE`] unless they are re-opened faster than the seats
//! turn over (more than `max_connections` per [`FIRST_REQUEST_GRACE`]).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// How long a connection that has had no request served may wait before a
/// newcomer may take its seat. Clients send their first request as soon as
/// they connect.
pub(crate) const FIRST_REQUEST_GRACE: Duration = Duration::from_secs(1);

/// How long a connection may be silent after a request before a newcomer
/// may take its seat.
pub(crate) const SERVED_GRACE: Duration = Duration::from_secs(10);

const SERVING: u8 = 0;
const WAITING: u8 = 1;
const GIVEN_UP: u8 = 2;

/// Every seat, and the permits that bound their number.
#[derive(Debug)]
pub(crate) struct Seats {
    limit: Arc<Semaphore>,
    taken: Mutex<Vec<Option<Arc<Seat>>>>,
    epoch: Instant,
}

/// One connection's seat: its state, as the connection reports it, and how
/// it is told to leave.
#[derive(Debug)]
pub(crate) struct Seat {
    state: AtomicU8,
    /// When the current wait began, in milliseconds since [`Seats::epoch`].
    since_ms: AtomicU64,
    /// Whether a request of this connection has been served.
    served: AtomicBool,
    leave: Notify,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

/// A connection's hold on its seat; the seat is freed when it is dropped.
#[derive(Debug)]
pub(crate) struct Held {
    seats: Arc<Seats>,
    index: usize,
    seat: Arc<Seat>,
}

/// How a new connection got in.
#[derive(Debug)]
pub(crate) enum Admission {
    /// A free seat.
    Free(Held),
    /// The seat of a waiting connection, which has been told to leave.
    TakenOver(Held),
    /// Every seat taken, none to give way: close the new connection.
    Full,
}

impl Seats {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Seats {
            limit: Arc::new(Semaphore::new(max)),
            taken: Mutex::new(Vec::new()),
            epoch: Instant::now(),
        })
    }

    /// A seat for a connection arriving now (see the module doc).
    pub(crate) fn admit(self: &Arc<Self>) -> Admission {
        if let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() {
            return Admission::Free(self.seat(permit));
        }
        let now = self.now_ms();
        let first = FIRST_REQUEST_GRACE.as_millis() as u64;
        let served = SERVED_GRACE.as_millis() as u64;
        let victim = {
            let taken = lock(&self.taken);
            taken
                .iter()
                .flatten()
                .filter(|s| s.state.load(Ordering::Acquire) == WAITING)
                .filter_map(|s| {
                    let waited = now.saturating_sub(s.since_ms.load(Ordering::Acquire));
                    let was_served = s.served.load(Ordering::Acquire);
                    let grace = if was_served { served } else { first };
                    (waited >= grace).then_some(((was_served, u64::MAX - waited), s))
                })
                .min_by_key(|(key, _)| *key)
                .map(|(_, s)| Arc::clone(s))
        };
        let Some(victim) = victim else {
            return Admission::Full;
        };
        // It may have started a request since: then it keeps its seat.
        if victim
            .state
            .compare_exchange(WAITING, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Admission::Full;
        }
        let permit = lock(&victim.permit).take();
        victim.leave.notify_one();
        match permit {
            Some(permit) => Admission::TakenOver(self.seat(permit)),
            None => Admission::Full,
        }
    }

    fn seat(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Held {
        let seat = Arc::new(Seat {
            state: AtomicU8::new(SERVING),
            since_ms: AtomicU64::new(self.now_ms()),
            served: AtomicBool::new(false),
            leave: Notify::new(),
            permit: Mutex::new(Some(permit)),
        });
        let mut taken = lock(&self.taken);
        let index = match taken.iter().position(Option::is_none) {
            Some(i) => {
                taken[i] = Some(Arc::clone(&seat));
                i
            }
            None => {
                taken.push(Some(Arc::clone(&seat)));
                taken.len() - 1
            }
        };
        Held {
            seats: Arc::clone(self),
            index,
            seat,
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

impl Held {
    /// The connection waits for bytes of a request frame from `at` on.
    /// Called before each wait; only the first wait after a request (or
    /// after connecting) starts the clock: a frame's bytes arriving do not
    /// restart it, so a connection trickling a frame it never completes is
    /// as silent as one sending nothing (otherwise one byte every few
    /// seconds kept a seat until the frame timeout, a minute). Returns
    /// `false` if the seat has been given to another connection: it must
    /// close.
    pub(crate) fn waiting(&self, at: Instant) -> bool {
        let state = self.seat.state.load(Ordering::Acquire);
        if state == GIVEN_UP {
            return false;
        }
        if state == SERVING {
            let ms = at.saturating_duration_since(self.seats.epoch).as_millis() as u64;
            self.seat.since_ms.store(ms, Ordering::Release);
        }
        state == WAITING
            || self
                .seat
                .state
                .compare_exchange(SERVING, WAITING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// The connection has bytes of a request (or a whole one) to serve.
    /// Returns `false` if its seat has been given to another connection.
    pub(crate) fn serving(&self) -> bool {
        self.seat
            .state
            .compare_exchange(WAITING, SERVING, Ordering::AcqRel, Ordering::Acquire)
            .map_or_else(|s| s == SERVING, |_| true)
    }

    /// A request of this connection has been served.
    pub(crate) fn served(&self) {
        if !self.seat.served.load(Ordering::Relaxed) {
            self.seat.served.store(true, Ordering::Release);
        }
    }

    /// Completes when the seat has been given to another connection.
    pub(crate) async fn given_up(&self) {
        self.seat.leave.notified().await;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut taken = lock(&self.seats.taken);
        if let Some(slot) = taken.get_mut(self.index) {
            *slot = None;
        }
        while matches!(taken.last(), Some(None)) {
            taken.pop();
        }
        // The permit (if still here) is released after the seat is gone from
        // the table.
        drop(taken);
        lock(&self.seat.permit).take();
    }
}

/// Locks a mutex whose holder never panics while holding it; a poisoned
/// lock still guards consistent data (every update is a single store).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(a: Admission) -> Held {
        match a {
            Admission::Free(h) | Admission::TakenOver(h) => h,
            Admission::Full => panic!("no seat"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_newcomer_takes_the_seat_of_the_longest_silent_connection() {
        let seats = Seats::new(3);
        let served_early = held(seats.admit());
        let silent_old = held(seats.admit());
        let silent_new = held(seats.admit());
        served_early.served();
        assert!(served_early.waiting(Instant::now()));
        assert!(silent_old.waiting(Instant::now()));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(silent_new.waiting(Instant::now()));
        // Nobody has waited long enough yet.
        assert!(matches!(seats.admit(), Admission::Full));
        tokio::time::advance(Duration::from_millis(600)).await;
        // The silent connection that waited longest gives way first; the
        // served one, silent longer still, is kept for SERVED_GRACE.
        let a = held(seats.admit());
        assert!(!silent_old.serving(), "told to leave");
        assert!(silent_new.serving());
        // The one that started a request is not taken; nobody else is due.
        assert!(matches!(seats.admit(), Admission::Full));
        tokio::time::advance(SERVED_GRACE).await;
        // Past SERVED_GRACE the served connection gives way too.
        let b = held(seats.admit());
        assert!(!served_early.waiting(Instant::now()), "told to leave");
        assert!(matches!(seats.admit(), Admission::Full));
        // Seats given up free nothing when dropped; the others do.
        drop((silent_old, served_early));
        assert!(matches!(seats.admit(), Admission::Full));
        drop(a);
        let _c = held(seats.admit());
        drop(b);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_of_a_frame_that_never_completes_do_not_restart_the_clock() {
        let seats = Seats::new(2);
        let trickler = held(seats.admit());
        let silent = held(seats.admit());
        trickler.served();
        assert!(silent.waiting(Instant::now()));
        tokio::time::advance(Duration::from_secs(5)).await;
        // The trickler's last request ended 5 s after the silent one's wait
        // began; then a byte of its next frame every second.
        assert!(trickler.waiting(Instant::now()));
        for _ in 0..SERVED_GRACE.as_secs() {
            tokio::time::advance(Duration::from_secs(1)).await;
            assert!(trickler.waiting(Instant::now()));
            assert!(silent.waiting(Instant::now()));
        }
        // The never-served one goes first; then the trickler, its frame
        // still incomplete SERVED_GRACE after its last request.
        let _a = held(seats.admit());
        assert!(!silent.serving());
        let _b = held(seats.admit());
        assert!(!trickler.serving());
        assert!(matches!(seats.admit(), Admission::Full));
    }

    #[tokio::test(start_paused = true)]
    async fn a_seat_given_up_wakes_its_connection_and_frees_once() {
        let seats = Seats::new(1);
        let first = held(seats.admit());
        assert!(first.waiting(Instant::now()));
        tokio::time::advance(FIRST_REQUEST_GRACE).await;
        let second = held(seats.admit());
        tokio::time::timeout(Duration::from_secs(1), first.given_up())
            .await
            .expect("woken");
        // Dropping the one that gave way frees no second seat.
        drop(first);
        assert!(matches!(seats.admit(), Admission::Full));
        drop(second);
        let _third = held(seats.admit());
        assert!(lock(&seats.taken).len() == 1);
    }
}
