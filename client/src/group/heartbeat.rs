//! The heartbeat task: keeps a member's session alive on its own
//! connection and tells the consumer what the coordinator answered.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_protocol::wire::ErrorCode;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::bootstrap::Bootstrap;
use crate::connection::Connection;

/// Which generation of which member to heartbeat for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) group: String,
    pub(crate) generation_id: i32,
    pub(crate) member_id: String,
    pub(crate) group_instance_id: Option<String>,
}

/// What a heartbeat answer asks of the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// The group is rebalancing: rejoin, keeping the partitions.
    Rejoin,
    /// The member or its generation is gone: its partitions are lost.
    Lost(ErrorCode),
    /// Another instance took this static member's place.
    Fenced,
}

#[derive(Debug)]
struct State {
    target: Option<Target>,
    event: Option<Event>,
    /// When the last heartbeat that the coordinator accepted was *sent*:
    /// the session cannot have expired before this plus the session
    /// timeout.
    last_ok: Instant,
}

/// Shared between the consumer and its heartbeat task.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    state: Mutex<State>,
    /// Woken when an event is set.
    pub(crate) notify: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Heartbeat {
    /// Starts the task, heartbeating every `interval` to a broker of
    /// `brokers` while a target is set. Finding the coordinator, or a
    /// heartbeat, not answered within `timeout` counts as a broken
    /// connection: the next heartbeat goes on a new one.
    pub(crate) fn start(
        brokers: Bootstrap,
        interval: Duration,
        timeout: Duration,
    ) -> Arc<Heartbeat> {
        let hb = Arc::new(Heartbeat {
            state: Mutex::new(State {
                target: None,
                event: None,
                last_ok: Instant::now(),
            }),
            notify: Notify::new(),
            task: Mutex::new(None),
        });
        let weak = Arc::downgrade(&hb);
        let task = tokio::spawn(async move {
            let mut conn: Option<Connection> = None;
            // A zero period (a caller's setting) would make `interval`
            // panic: at least a millisecond.
            let mut tick = tokio::time::interval(interval.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(hb) = weak.upgrade() else { return };
                let Some(target) = hb.target() else { continue };
                if conn.is_none() {
                    let found = brokers.connect_coordinator(&target.group);
                    conn = crate::consumer::within(timeout, "FindCoordinator", found)
                        .await
                        .ok();
                }
                let Some(c) = conn.as_mut() else { continue };
                let sent = Instant::now();
                match crate::consumer::within(timeout, "Heartbeat", send(c, &target)).await {
                    Ok(code) => hb.record(&target, sent, code),
                    Err(_) => {
                        brokers.failed();
                        conn = None;
                    }
                }
            }
        });
        if let Ok(mut t) = hb.task.lock() {
            *t = Some(task);
        }
        hb
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn target(&self) -> Option<Target> {
        self.lock().target.clone()
    }

    /// Heartbeats for `target` from now on (`None`: pause, while joining).
    /// A new target counts as just confirmed and clears pending events.
    pub(crate) fn set_target(&self, target: Option<Target>) {
        let mut s = self.lock();
        s.target = target;
        s.event = None;
        s.last_ok = Instant::now();
    }

    /// Takes the pending event, if any.
    pub(crate) fn take_event(&self) -> Option<Event> {
        self.lock().event.take()
    }

    /// Whether the coordinator may have expired the session: no heartbeat
    /// sent within `session_timeout` was accepted.
    pub(crate) fn maybe_expired(&self, session_timeout: Duration) -> bool {
        self.lock().last_ok.elapsed() >= session_timeout
    }

    /// Applies the coordinator's answer to a heartbeat for `target` sent
    /// at `sent` (ignored if the target changed meanwhile).
    pub(crate) fn record(&self, target: &Target, sent: Instant, code: ErrorCode) {
        let mut s = self.lock();
        if s.target.as_ref() != Some(target) {
            return;
        }
        let event = match code {
            ErrorCode::None => {
                s.last_ok = s.last_ok.max(sent);
                None
            }
            ErrorCode::RebalanceInProgress => Some(Event::Rejoin),
            ErrorCode::UnknownMemberId | ErrorCode::IllegalGeneration => Some(Event::Lost(code)),
            ErrorCode::FencedInstanceId => Some(Event::Fenced),
            _ => None,
        };
        if let Some(e) = event {
            // A loss outranks a rejoin; a fence outranks both.
            let rank = |e: &Event| match e {
                Event::Rejoin => 0,
                Event::Lost(_) => 1,
                Event::Fenced => 2,
            };
            if s.event.as_ref().is_none_or(|old| rank(old) <= rank(&e)) {
                s.event = Some(e);
            }
            drop(s);
            self.notify.notify_one();
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        if let Ok(mut t) = self.task.lock() {
            if let Some(t) = t.take() {
                t.abort();
            }
        }
    }
}

/// Sends one heartbeat for `target` and returns the coordinator's code.
pub(crate) async fn send(
    conn: &mut Connection,
    target: &Target,
) -> Result<ErrorCode, crate::ClientError> {
    let resp = conn
        .heartbeat(
            &target.group,
            target.generation_id,
            &target.member_id,
            target.group_instance_id.as_deref(),
        )
        .await?;
    Ok(resp.error_code)
}
