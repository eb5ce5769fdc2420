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
//! A table may also bound the seats of one client address
//! ([`Seats::with_per_address`], `max_connections_per_ip`, Kafka's
//! `max.connections.per.ip`): a connection from an address holding that
//! many takes the seat of one of that address's own connections by the
//! rules above, else it is closed at once ([`Admission::AddressFull`]). So
//! one client cannot take every seat with connections that are all being
//! served (long polls): the others keep theirs.
//!
//! Guarantees: a client whose connection has just been served keeps it for
//! at least [`SERVED_GRACE`] of silence even under a flood; silent
//! connections cannot keep a new client out for longer than
//! [`FIRST_REQUEST_GRACE`] unless they are re-opened faster than the seats
//! turn over (more than `max_connections` per [`FIRST_REQUEST_GRACE`]).

use std::collections::HashMap;
use std::net::IpAddr;
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
    taken: Mutex<Taken>,
    /// Seats one address may hold; 0: no bound.
    per_address: usize,
    epoch: Instant,
}

/// The seats in use, and how many each address holds.
#[derive(Debug, Default)]
struct Taken {
    seats: Vec<Option<Arc<Seat>>>,
    per_address: HashMap<IpAddr, usize>,
}

/// One connection's seat: its state, as the connection reports it, and how
/// it is told to leave.
#[derive(Debug)]
pub(crate) struct Seat {
    /// The client's address.
    address: IpAddr,
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
    /// The address holds its share of seats, none of them to give way:
    /// close the new connection.
    AddressFull,
}

impl Seats {
    /// `max` seats, any number of them for one address.
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Seats::with_per_address(max, 0)
    }

    /// `max` seats, at most `per_address` of them (0: any number) for one
    /// client address.
    pub(crate) fn with_per_address(max: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Seats {
            limit: Arc::new(Semaphore::new(max)),
            taken: Mutex::new(Taken::default()),
            per_address,
            epoch: Instant::now(),
        })
    }

    /// A seat for a connection from `address` arriving now (see the module
    /// doc). An IPv4 address mapped into IPv6 (a dual-stack listener's
    /// `::ffff:a.b.c.d`) counts as that IPv4 address.
    pub(crate) fn admit(self: &Arc<Self>, address: IpAddr) -> Admission {
        let address = address.to_canonical();
        if self.per_address > 0 {
            let held = lock(&self.taken)
                .per_address
                .get(&address)
                .copied()
                .unwrap_or(0);
            if held >= self.per_address {
                return match self.take_over(address, |s| s.address == address) {
                    Some(held) => Admission::TakenOver(held),
                    None => Admission::AddressFull,
                };
            }
        }
        if let Ok(permit) = Arc::clone(&self.limit).try_acquire_owned() {
            return Admission::Free(self.seat(address, permit));
        }
        match self.take_over(address, |_| true) {
            Some(held) => Admission::TakenOver(held),
            None => Admission::Full,
        }
    }

    /// The seat of the waiting connection among those `eligible` that gives
    /// way first, if any is past its grace, for a connection from `address`.
    fn take_over(
        self: &Arc<Self>,
        address: IpAddr,
        eligible: impl Fn(&Seat) -> bool,
    ) -> Option<Held> {
        let now = self.now_ms();
        let first = FIRST_REQUEST_GRACE.as_millis() as u64;
        let served = SERVED_GRACE.as_millis() as u64;
        let victim = {
            let taken = lock(&self.taken);
            taken
                .seats
                .iter()
                .flatten()
                .filter(|s| eligible(s) && s.state.load(Ordering::Acquire) == WAITING)
                .filter_map(|s| {
                    let waited = now.saturating_sub(s.since_ms.load(Ordering::Acquire));
                    let was_served = s.served.load(Ordering::Acquire);
                    let grace = if was_served { served } else { first };
                    (waited >= grace).then_some(((was_served, u64::MAX - waited), s))
                })
                .min_by_key(|(key, _)| *key)
                .map(|(_, s)| Arc::clone(s))
        }?;
        // It may have started a request since: then it keeps its seat.
        victim
            .state
            .compare_exchange(WAITING, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let permit = lock(&victim.permit).take();
        victim.leave.notify_one();
        permit.map(|permit| self.seat(address, permit))
    }

    fn seat(self: &Arc<Self>, address: IpAddr, permit: OwnedSemaphorePermit) -> Held {
        let seat = Arc::new(Seat {
            address,
            state: AtomicU8::new(SERVING),
            since_ms: AtomicU64::new(self.now_ms()),
            served: AtomicBool::new(false),
            leave: Notify::new(),
            permit: Mutex::new(Some(permit)),
        });
        let mut taken = lock(&self.taken);
        *taken.per_address.entry(address).or_insert(0) += 1;
        let index = match taken.seats.iter().position(Option::is_none) {
            Some(i) => {
                taken.seats[i] = Some(Arc::clone(&seat));
                i
            }
            None => {
                taken.seats.push(Some(Arc::clone(&seat)));
                taken.seats.len() - 1
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
        if let Some(slot) = taken.seats.get_mut(self.index) {
            *slot = None;
        }
        while matches!(taken.seats.last(), Some(None)) {
            taken.seats.pop();
        }
        let address = self.seat.address;
        if let Some(n) = taken.per_address.get_mut(&address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                taken.per_address.remove(&address);
            }
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

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    fn held(a: Admission) -> Held {
        match a {
            Admission::Free(h) | Admission::TakenOver(h) => h,
            Admission::Full | Admission::AddressFull => panic!("no seat"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_newcomer_takes_the_seat_of_the_longest_silent_connection() {
        let seats = Seats::new(3);
        let served_early = held(seats.admit(A));
        let silent_old = held(seats.admit(A));
        let silent_new = held(seats.admit(A));
        served_early.served();
        assert!(served_early.waiting(Instant::now()));
        assert!(silent_old.waiting(Instant::now()));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(silent_new.waiting(Instant::now()));
        // Nobody has waited long enough yet.
        assert!(matches!(seats.admit(A), Admission::Full));
        tokio::time::advance(Duration::from_millis(600)).await;
        // The silent connection that waited longest gives way first; the
        // served one, silent longer still, is kept for SERVED_GRACE.
        let a = held(seats.admit(A));
        assert!(!silent_old.serving(), "told to leave");
        assert!(silent_new.serving());
        // The one that started a request is not taken; nobody else is due.
        assert!(matches!(seats.admit(A), Admission::Full));
        tokio::time::advance(SERVED_GRACE).await;
        // Past SERVED_GRACE the served connection gives way too.
        let b = held(seats.admit(A));
        assert!(!served_early.waiting(Instant::now()), "told to leave");
        assert!(matches!(seats.admit(A), Admission::Full));
        // Seats given up free nothing when dropped; the others do.
        drop((silent_old, served_early));
        assert!(matches!(seats.admit(A), Admission::Full));
        drop(a);
        let _c = held(seats.admit(A));
        drop(b);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_of_a_frame_that_never_completes_do_not_restart_the_clock() {
        let seats = Seats::new(2);
        let trickler = held(seats.admit(A));
        let silent = held(seats.admit(A));
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
        let _a = held(seats.admit(A));
        assert!(!silent.serving());
        let _b = held(seats.admit(A));
        assert!(!trickler.serving());
        assert!(matches!(seats.admit(A), Admission::Full));
    }

    #[tokio::test(start_paused = true)]
    async fn a_seat_given_up_wakes_its_connection_and_frees_once() {
        let seats = Seats::new(1);
        let first = held(seats.admit(A));
        assert!(first.waiting(Instant::now()));
        tokio::time::advance(FIRST_REQUEST_GRACE).await;
        let second = held(seats.admit(A));
        tokio::time::timeout(Duration::from_secs(1), first.given_up())
            .await
            .expect("woken");
        // Dropping the one that gave way frees no second seat.
        drop(first);
        assert!(matches!(seats.admit(A), Admission::Full));
        drop(second);
        let _third = held(seats.admit(A));
        assert!(lock(&seats.taken).seats.len() == 1);
    }

    #[tokio::test(start_paused = true)]
    async fn an_address_holding_its_share_gives_way_only_among_its_own() {
        let seats = Seats::with_per_address(4, 2);
        let a1 = held(seats.admit(A));
        let a2 = held(seats.admit(A));
        // Both serving (long polls, say): a third from A is closed, while
        // another address still gets in.
        assert!(matches!(seats.admit(A), Admission::AddressFull));
        let b1 = held(seats.admit(B));
        // A silent connection of A's past its grace gives its seat to A's
        // newcomer; B's silent one is not touched for A.
        assert!(a1.waiting(Instant::now()));
        assert!(b1.waiting(Instant::now()));
        tokio::time::advance(FIRST_REQUEST_GRACE).await;
        let a3 = held(seats.admit(A));
        assert!(!a1.serving(), "told to leave");
        assert!(b1.serving());
        // A still holds two (a2, a3; a1's seat is counted until it closes).
        drop(a1);
        assert!(matches!(seats.admit(A), Admission::AddressFull));
        // Closing one frees a seat for A again.
        drop(a2);
        let _a4 = held(seats.admit(A));
        assert!(matches!(seats.admit(A), Admission::AddressFull));
        drop((a3, b1));
        assert_eq!(lock(&seats.taken).per_address.get(&A), Some(&1));
        assert_eq!(lock(&seats.taken).per_address.get(&B), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv4_address_mapped_into_ipv6_counts_as_itself() {
        let seats = Seats::with_per_address(4, 1);
        let IpAddr::V4(v4) = A else {
            panic!("A is IPv4")
        };
        let _a = held(seats.admit(A));
        assert!(matches!(
            seats.admit(IpAddr::V6(v4.to_ipv6_mapped())),
            Admission::AddressFull
        ));
    }
}
