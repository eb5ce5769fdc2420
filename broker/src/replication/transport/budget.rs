//! How many bytes one peer's AppendEntries calls of more than one entry may
//! carry, adapted to how fast the peer answers.
//!
//! openraft 0.9 gives an AppendEntries call one heartbeat interval to be
//! answered, and a follower answers after its write *and* its `fdatasync`.
//! A follower catching up takes full calls; on a disk whose flush of a full
//! call takes longer than the heartbeat interval, every call would time out
//! (the follower still stores the entries, but the leader never learns it
//! and sends them again). So a call that got no answer halves the budget of
//! the next ones, and answers that come quickly let it grow back.

use std::time::Duration;

use super::raft::APPEND_BUDGET_BYTES;

/// The least the budget shrinks to. A single entry always goes, whatever
/// its size.
pub const MIN_APPEND_BUDGET_BYTES: usize = 256 << 10;

/// One peer's budget (see the module documentation). Not shared: openraft
/// keeps one call in flight per peer and stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendBudget {
    bytes: usize,
    /// A call was started and its outcome not recorded: it timed out, or
    /// openraft dropped it at its own timeout.
    unanswered: bool,
}

impl Default for AppendBudget {
    fn default() -> Self {
        AppendBudget {
            bytes: APPEND_BUDGET_BYTES,
            unanswered: false,
        }
    }
}

impl AppendBudget {
    /// The budget now.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Before a call of more than one entry: the budget for it, halved
    /// first (down to [`MIN_APPEND_BUDGET_BYTES`]) if the call before it
    /// went unanswered.
    pub fn start(&mut self) -> usize {
        if self.unanswered {
            self.bytes = (self.bytes / 2).max(MIN_APPEND_BUDGET_BYTES);
        }
        self.unanswered = true;
        self.bytes
    }

    /// The call was refused before it was sent (over the budget): it was
    /// never in flight.
    pub fn not_sent(&mut self) {
        self.unanswered = false;
    }

    /// The call got an answer (or failed other than by timing out) after
    /// `elapsed` of the `timeout` it had. An answer within a quarter of it
    /// doubles the budget (up to [`APPEND_BUDGET_BYTES`]): a call twice as
    /// large would still be answered in about half the time allowed.
    pub fn answered(&mut self, elapsed: Duration, timeout: Duration) {
        self.unanswered = false;
        if elapsed.saturating_mul(4) <= timeout {
            self.bytes = self.bytes.saturating_mul(2).min(APPEND_BUDGET_BYTES);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEARTBEAT: Duration = Duration::from_millis(50);

    #[test]
    fn unanswered_calls_halve_it_down_to_the_floor() {
        let mut b = AppendBudget::default();
        assert_eq!(b.start(), APPEND_BUDGET_BYTES);
        // No outcome recorded: the next call gets half.
        assert_eq!(b.start(), APPEND_BUDGET_BYTES / 2);
        for _ in 0..20 {
            b.start();
        }
        assert_eq!(b.bytes(), MIN_APPEND_BUDGET_BYTES);
    }

    #[test]
    fn quick_answers_grow_it_back_slow_ones_keep_it() {
        let mut b = AppendBudget::default();
        b.start();
        b.start();
        b.start();
        assert_eq!(b.bytes(), APPEND_BUDGET_BYTES / 4);
        // Answered in 30 of 50 ms: kept (twice as much would not fit).
        b.answered(Duration::from_millis(30), HEARTBEAT);
        assert_eq!(b.start(), APPEND_BUDGET_BYTES / 4);
        // Answered quickly: doubled, and never above the ceiling.
        b.answered(Duration::from_millis(5), HEARTBEAT);
        assert_eq!(b.start(), APPEND_BUDGET_BYTES / 2);
        for _ in 0..5 {
            b.answered(Duration::from_millis(1), HEARTBEAT);
            b.start();
        }
        assert_eq!(b.bytes(), APPEND_BUDGET_BYTES);
    }

    #[test]
    fn a_call_refused_before_sending_does_not_count_as_unanswered() {
        let mut b = AppendBudget::default();
        b.start();
        b.not_sent();
        assert_eq!(b.start(), APPEND_BUDGET_BYTES);
    }
}
