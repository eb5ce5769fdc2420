//! [`Throttle`]: a warning that can repeat many times a second (an accept
//! loop out of file descriptors, a flood of connections over the limit) is
//! logged at most once per interval, with the count of the ones held back,
//! so the log stays readable and its disk is not filled.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lets an event through at most once per interval.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    /// When an event was last let through, and how many were held back
    /// since.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Throttle {
    /// A throttle letting one event through per `every`.
    pub const fn new(every: Duration) -> Self {
        Throttle {
            every,
            state: Mutex::new((None, 0)),
        }
    }

    /// Whether this event goes through: `Some(n)` with the number of events
    /// held back since the last one that did, `None` to hold it back.
    pub fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match state.0 {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                state.1 += 1;
                None
            }
            _ => {
                let held = state.1;
                *state = (Some(now), 0);
                Some(held)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_per_interval_goes_through_with_the_count_held_back() {
        let t = Throttle::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(t.allow_at(start), Some(0));
        for i in 1..=5 {
            assert_eq!(t.allow_at(start + Duration::from_secs(i)), None);
        }
        assert_eq!(t.allow_at(start + Duration::from_secs(10)), Some(5));
        assert_eq!(t.allow_at(start + Duration::from_secs(11)), None);
        assert_eq!(t.allow_at(start + Duration::from_secs(25)), Some(1));
    }
}
