//! Fault injection for the node-to-node transport (feature `raft-faults`).
//!
//! When the environment variable `SLUICE_RAFT_FAULTS` names a file, it is
//! re-read every 100 ms; each line is one rule about this node's outbound
//! calls to one peer (`#` starts a comment, a missing file means no rules):
//!
//! ```text
//! partition PEER       every call to PEER fails at once, as if the link were cut
//! drop PEER PERCENT    that share of calls to PEER is lost (the caller times out)
//! delay PEER MS        calls to PEER wait MS milliseconds before they are sent
//! version N            speak node-to-node protocol version N, as an earlier
//!                      build would: hellos and their answers say N (0: say
//!                      none), and at 0 a pre-vote request (rpc 6) closes the
//!                      connection (this node's own elections are unchanged);
//!                      read at start and for each new connection
//! ```
//!
//! Writing rules on every side of a cut (each node dropping its calls to
//! the others) partitions the cluster symmetrically, without root.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;

use super::CallError;

/// The environment variable naming the rules file.
pub const ENV: &str = "SLUICE_RAFT_FAULTS";
/// How often the rules file is re-read.
pub const REREAD: Duration = Duration::from_millis(100);

/// The rules about calls to one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerRules {
    /// Calls fail at once.
    pub partition: bool,
    /// Percent of calls lost.
    pub drop_percent: u8,
    /// Wait before sending.
    pub delay: Duration,
}

/// Every rule of a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// By peer id.
    pub peers: HashMap<u64, PeerRules>,
    /// The protocol version to speak (`None`: this build's).
    pub version: Option<u32>,
}

/// Parses a rules file; bad lines are skipped with a warning.
pub fn parse(text: &str) -> Rules {
    let mut rules = Rules::default();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
        match (words.first().copied(), num(1), num(2)) {
            (Some("partition"), Some(id), _) => rules.peers.entry(id).or_default().partition = true,
            (Some("drop"), Some(id), Some(p)) => {
                rules.peers.entry(id).or_default().drop_percent = p.min(100) as u8
            }
            (Some("delay"), Some(id), Some(ms)) => {
                rules.peers.entry(id).or_default().delay = Duration::from_millis(ms)
            }
            (Some("version"), Some(v), _) if v <= u64::from(u32::MAX) => {
                rules.version = Some(v as u32)
            }
            _ => tracing::warn!(line, "{ENV}: ignoring a malformed rule"),
        }
    }
    rules
}

/// The rules in force, refreshed from the file in the background.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Arc<RwLock<Rules>>,
    calls: AtomicU64,
}

impl Faults {
    /// Rules from the file named by [`ENV`] (none if it is unset). Starts
    /// the re-reading task when called inside a tokio runtime.
    pub fn from_env() -> Self {
        let faults = Faults::default();
        if let Some(path) = std::env::var_os(ENV).map(PathBuf::from) {
            tracing::warn!(path = %path.display(), "raft fault injection is on");
            // Read once now: the first hellos go out before the task runs.
            *faults.rules.write() = parse(&std::fs::read_to_string(&path).unwrap_or_default());
            let rules = Arc::clone(&faults.rules);
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    loop {
                        let text = tokio::fs::read_to_string(&path).await.unwrap_or_default();
                        *rules.write() = parse(&text);
                        tokio::time::sleep(REREAD).await;
                    }
                });
            }
        }
        faults
    }

    /// The protocol version a rule has this node speak, if one does.
    pub fn version(&self) -> Option<u32> {
        self.rules.read().version
    }

    /// Applies the rules to one call to `target`: waits out a delay, fails
    /// a cut link at once, and loses a dropped call after `timeout`.
    pub async fn before_call(&self, target: u64, timeout: Duration) -> Result<(), CallError> {
        let Some(r) = self.rules.read().peers.get(&target).copied() else {
            return Ok(());
        };
        if r.partition {
            return Err(CallError::Unreachable(target, "cut by a fault rule".into()));
        }
        if r.drop_percent > 0 {
            // A deterministic spread: n-th call dropped when its slot is low.
            let n = self.calls.fetch_add(1, Ordering::Relaxed);
            if (n.wrapping_mul(37) % 100) < u64::from(r.drop_percent) {
                tokio::time::sleep(timeout).await;
                return Err(CallError::Timeout(target, timeout));
            }
        }
        if !r.delay.is_zero() {
            tokio::time::sleep(r.delay).await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse() {
        let r = parse("partition 2\ndrop 3 50 # half\ndelay 3 20\nbogus\ndrop x 1\nversion 0\n");
        assert!(r.peers[&2].partition);
        assert_eq!(r.peers[&3].drop_percent, 50);
        assert_eq!(r.peers[&3].delay, Duration::from_millis(20));
        assert_eq!(r.peers.len(), 2);
        assert_eq!(r.version, Some(0));
        assert_eq!(parse("version 99999999999").version, None);
    }

    #[tokio::test]
    async fn a_cut_link_fails_at_once_and_a_full_drop_times_out() {
        let f = Faults::default();
        *f.rules.write() = parse("partition 2\ndrop 3 100");
        assert!(matches!(
            f.before_call(2, Duration::from_secs(60)).await,
            Err(CallError::Unreachable(2, _))
        ));
        assert!(matches!(
            f.before_call(3, Duration::from_millis(1)).await,
            Err(CallError::Timeout(3, _))
        ));
        assert!(f.before_call(4, Duration::from_secs(60)).await.is_ok());
    }
}
