//! `sluice consume TOPIC --group G`: consume as a member of a group, which
//! shares the topic's partitions among its members (cooperative-sticky by
//! default).
//!
//! Positions are committed only after the records before them were written
//! to stdout: every `--commit-interval-ms`, when partitions are revoked in
//! a rebalance (inside the next poll, after the previous records were
//! flushed), and on exit (SIGINT, SIGTERM, `--count`, `--timeout-ms`),
//! after which the member leaves the group so the others take over at
//! once. Delivery is at least once: a member killed without exiting leaves
//! its records since the last commit to be read again by its successor.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use sluice_client::group::{
    AssignorKind, GroupConfig, GroupConsumer, Positions, RebalanceListener,
};
use sluice_client::{ClientError, ConsumerConfig, ConsumerRecord, OffsetReset, SeekTo};
use sluice_protocol::wire::ErrorCode;

use crate::consume::{
    ConsumeArgs, Ending, FailedPoll, MAX_WAIT, Unresolved, output_error, quiet_if_broken_pipe,
    stop_on_signal, unread,
};
use crate::format::Format;
use crate::{Outcome, cannot_connect, connect_admin, describe, missing_topic_error};

/// How long a consumer that failed waits for its leave to be answered.
const LEAVE_AFTER_ERROR: Duration = Duration::from_secs(5);

/// How long past `--timeout-ms` a poll may take before it is given up: more
/// than a fetch's wait (`MAX_WAIT`) and an answer's way back.
const POLL_GRACE: Duration = Duration::from_secs(2);

/// How long `consume` (with or without `--group`) keeps retrying a broker
/// it cannot reach.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(60);

/// Group membership options of `sluice consume --group`.
#[derive(Debug, Args)]
pub(crate) struct MembershipArgs {
    /// Static member id: a restart within the session timeout gets the same
    /// partitions back without a rebalance (no leave on exit)
    #[arg(long, value_name = "ID", requires = "group")]
    group_instance_id: Option<String>,
    /// The coordinator removes the member after this long without a
    /// heartbeat [default: 10000]
    #[arg(long, value_name = "MS", requires = "group", value_parser = clap::value_parser!(u64).range(1..))]
    session_timeout_ms: Option<u64>,
    /// Heartbeat period, below the session timeout [default: 250, or a
    /// third of a session timeout under 750]
    #[arg(long, value_name = "MS", requires = "group", value_parser = clap::value_parser!(u64).range(1..))]
    heartbeat_interval_ms: Option<u64>,
    /// Commit positions this often [default: 5000]
    #[arg(long, value_name = "MS", requires = "group", value_parser = clap::value_parser!(u64).range(1..))]
    commit_interval_ms: Option<u64>,
    /// Assignors offered, most preferred first: cooperative-sticky, range,
    /// roundrobin [default: cooperative-sticky]
    #[arg(long, value_name = "NAME", value_delimiter = ',', requires = "group", value_parser = parse_assignor)]
    assignor: Vec<AssignorKind>,
    /// Print the member's rebalances on stderr
    #[arg(long, requires = "group")]
    verbose: bool,
}

fn parse_assignor(s: &str) -> Result<AssignorKind, String> {
    AssignorKind::from_name(s)
        .ok_or_else(|| format!("unknown assignor {s:?} (cooperative-sticky, range, roundrobin)"))
}

/// Prints rebalance callbacks on stderr (with `--verbose`).
struct PrintRebalances;

fn list(p: &Positions) -> String {
    p.iter()
        .map(|(tp, pos)| format!("{}-{}@{pos}", tp.topic, tp.partition))
        .collect::<Vec<_>>()
        .join(" ")
}

impl RebalanceListener for PrintRebalances {
    fn on_partitions_revoked(&mut self, p: &Positions) {
        eprintln!("group: revoked {}", list(p));
    }
    fn on_partitions_assigned(&mut self, p: &Positions) {
        eprintln!("group: assigned {}", list(p));
    }
    fn on_partitions_lost(&mut self, p: &Positions) {
        eprintln!("group: lost {}", list(p));
    }
}

/// Runs `sluice consume TOPIC --group G`.
pub(crate) async fn run(broker: &str, args: ConsumeArgs) -> anyhow::Result<Outcome> {
    let topic = args.topic.as_str();
    let group = args.group.clone().unwrap_or_default();
    let m = &args.membership;
    let defaults = GroupConfig::new(Vec::new());
    let session_ms = m
        .session_timeout_ms
        .unwrap_or(defaults.session_timeout.as_millis() as u64);
    // Unset, the heartbeat keeps to a third of a short session at most.
    let heartbeat_ms = m
        .heartbeat_interval_ms
        .unwrap_or((session_ms / 3).clamp(1, defaults.heartbeat_interval.as_millis() as u64));
    if heartbeat_ms >= session_ms {
        anyhow::bail!(
            "--heartbeat-interval-ms ({heartbeat_ms}) must be below --session-timeout-ms \
             ({session_ms}): the coordinator would remove the member between two heartbeats"
        );
    }
    // Fail early and clearly on an unknown topic.
    connect_admin(broker)
        .await?
        .describe_topic(topic)
        .await
        .map_err(|e| missing_topic_error(topic, e))?;
    let mut config = ConsumerConfig::new(broker);
    config.group = Some(group.clone());
    config.offset_reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    config.max_wait = args
        .timeout_ms
        .map_or(MAX_WAIT, |t| Duration::from_millis(t).min(MAX_WAIT));
    // Committed inside poll, after the previous records were flushed.
    config.auto_commit = Some(Duration::from_millis(m.commit_interval_ms.unwrap_or(5000)));
    config.fetch_stream = args.fetch_stream;
    let mut membership = GroupConfig::new(vec![topic.to_owned()]);
    membership.group_instance_id = m.group_instance_id.clone();
    membership.client_id = "sluice-cli".into();
    membership.session_timeout = Duration::from_millis(session_ms);
    membership.heartbeat_interval = Duration::from_millis(heartbeat_ms);
    if !m.assignor.is_empty() {
        membership.assignors = m.assignor.clone();
    }
    let mut consumer = GroupConsumer::connect(config, membership)
        .await
        .map_err(|e| cannot_connect(broker, &e))?;
    if m.verbose {
        consumer.set_listener(Box::new(PrintRebalances));
    }

    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(stop_on_signal(Arc::clone(&stop)));
    let format = match args.format.clone() {
        Some(f) => f,
        None => Format::parse("%v").map_err(anyhow::Error::msg)?,
    };
    let mut session = GroupSession {
        consumer,
        out: BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
        format,
        printed: 0,
        verbose: m.verbose,
        generation: -1,
        broker: broker.to_owned(),
        held_up: false,
        told_unresolved: Unresolved::default(),
    };
    let ending = match session.consume(&args, &stop).await {
        Ok(ending) => ending,
        Err(e) => {
            // Leave (committing nothing more), so that the group need not
            // wait out the session timeout to give the partitions to
            // another member; a broker that does not answer is not waited
            // for long.
            let GroupSession { consumer, .. } = session;
            let _ = tokio::time::timeout(LEAVE_AFTER_ERROR, consumer.close_without_commit()).await;
            return Err(e);
        }
    };
    if let Ending::Done = ending {
        session.out.flush().or_else(quiet_if_broken_pipe)?;
    }
    // Leave. Commit only when every record polled was written: after a
    // broken pipe the positions are past records never printed (those
    // after it in the batch, and those the buffer held), and the group
    // keeps its last commit, made inside `poll` after a flush.
    let GroupSession {
        consumer, held_up, ..
    } = session;
    let left = match ending {
        // A poll given up may have left a call unanswered: the leave is not
        // waited for long either.
        Ending::Done if held_up => {
            let _ = tokio::time::timeout(LEAVE_AFTER_ERROR, consumer.close()).await;
            Ok(())
        }
        Ending::Done => consumer.close().await,
        Ending::OutputClosed => consumer.close_without_commit().await,
    };
    left.map_err(|e| anyhow::anyhow!("leaving group {group:?}: {}", describe(&e)))?;
    Ok(Outcome::Success)
}

struct GroupSession {
    consumer: GroupConsumer,
    out: BufWriter<std::io::StdoutLock<'static>>,
    format: Format,
    printed: u64,
    verbose: bool,
    generation: i32,
    /// The broker named on the command line.
    broker: String,
    /// A poll was given up at `--timeout-ms` with the broker reachable.
    held_up: bool,
    /// Partitions said on stderr to wait for a leader that cannot be
    /// reached.
    told_unresolved: Unresolved,
}

impl GroupSession {
    /// Commits what was printed (every record returned so far), before an
    /// exit that says some partitions were not read: the others' progress
    /// is kept. Bounded; a failure is left to the next run.
    async fn commit_printed(&mut self) {
        if self.out.flush().is_ok() {
            let _ = tokio::time::timeout(LEAVE_AFTER_ERROR, self.consumer.commit()).await;
        }
    }

    async fn consume(&mut self, args: &ConsumeArgs, stop: &AtomicBool) -> anyhow::Result<Ending> {
        let timeout = args.timeout_ms.map(Duration::from_millis);
        let mut last_record = Instant::now();
        let mut failing_since: Option<Instant> = None;
        let mut failing = FailedPoll::default();
        while Some(self.printed) != args.count && !stop.load(Ordering::Acquire) {
            self.told_unresolved.tell(self.consumer.unresolved());
            // With an idle timeout, a poll held up past it (a rebalance
            // retrying a coordinator that died, up to its rebalance and
            // session timeouts; a commit to a broker that stopped
            // answering) is given up: no record came in that time. A fetch
            // waits at most `MAX_WAIT`, so a poll that fetches is never cut.
            let polled = match timeout {
                Some(t) => {
                    let limit = t.saturating_sub(last_record.elapsed()) + POLL_GRACE;
                    match tokio::time::timeout(limit, self.consumer.poll()).await {
                        Ok(polled) => polled,
                        // Idle, as a poll that returned nothing, if the
                        // broker is there (a rebalance waiting for slow
                        // members, a coordinator moving); else why not.
                        Err(_) => match tokio::time::timeout(POLL_GRACE, async {
                            connect_admin(&self.broker)
                                .await?
                                .broker_status()
                                .await
                                .map_err(|e| anyhow::anyhow!("{}", describe(&e)))
                        })
                        .await
                        {
                            Ok(Ok(_)) => {
                                if let Some(why) = unread(self.consumer.unresolved()) {
                                    self.commit_printed().await;
                                    anyhow::bail!("consuming {:?} in a group: {why}", args.topic);
                                }
                                self.held_up = true;
                                break;
                            }
                            Ok(Err(e)) => anyhow::bail!(
                                "consuming {:?} in a group: no records within --timeout-ms \
                                 ({} ms), and {e:#}",
                                args.topic,
                                t.as_millis()
                            ),
                            Err(_) => anyhow::bail!(
                                "consuming {:?} in a group: no records within --timeout-ms \
                                 ({} ms), and no answer from {} within {} s",
                                args.topic,
                                t.as_millis(),
                                self.broker,
                                POLL_GRACE.as_secs()
                            ),
                        },
                    }
                }
                None => self.consumer.poll().await,
            };
            let records = match polled {
                Ok(r) => {
                    failing_since = None;
                    failing.polled(&r, self.consumer.last_fetch_answer());
                    r
                }
                // The broker restarting, say: keep trying for a while,
                // counted from the last fetch answer.
                Err(e)
                    if e.is_retriable()
                        && failing_since.is_none_or(|t| t.elapsed() < RETRY_FOR) =>
                {
                    failing_since.get_or_insert(self.consumer.last_fetch_answer());
                    failing.failed(&e);
                    // Failing, not idle, when the idle timeout ran out and
                    // no broker answered (a refusal for now, such as a
                    // coordinator moving, is retried).
                    if timeout.is_some_and(|t| last_record.elapsed() >= t)
                        && !matches!(e, ClientError::Broker { .. })
                    {
                        anyhow::bail!("consuming {:?} in a group: {}", args.topic, describe(&e))
                    }
                    if self.verbose {
                        eprintln!("group: {}; retrying", describe(&e));
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => anyhow::bail!(
                    "consuming {:?} in a group: {}{}",
                    args.topic,
                    describe(&e),
                    refusal_hint(&e)
                ),
            };
            if self.verbose && self.consumer.generation_id() != self.generation {
                self.generation = self.consumer.generation_id();
                eprintln!(
                    "group: generation {} member {}",
                    self.generation,
                    self.consumer.member_id()
                );
            }
            if records.is_empty() {
                if timeout.is_some_and(|t| last_record.elapsed() >= t) {
                    if let Some(why) = unread(self.consumer.unresolved()) {
                        self.commit_printed().await;
                        anyhow::bail!(
                            "consuming {:?} in a group: {why} (the other partitions were read \
                             to their end)",
                            args.topic
                        );
                    }
                    if let Some(why) = failing.unanswered(self.consumer.last_fetch_answer()) {
                        anyhow::bail!("consuming {:?} in a group: {why}", args.topic)
                    }
                    break;
                }
                // A paused broker answers nothing yet closes nothing.
                let silent = self.consumer.last_fetch_answer().elapsed();
                if silent >= RETRY_FOR {
                    anyhow::bail!(
                        "consuming {:?} in a group: no answer from the broker for {} s",
                        args.topic,
                        silent.as_secs()
                    );
                }
                if crate::consume::output_gone() {
                    return Ok(Ending::OutputClosed);
                }
            } else {
                last_record = Instant::now();
            }
            for (i, r) in records.iter().enumerate() {
                if Some(self.printed) == args.count {
                    self.rewind(records.get(i..).unwrap_or_default()).await?;
                    break;
                }
                if let Err(e) = self.format.write(&mut self.out, r) {
                    return output_error(e);
                }
                self.printed += 1;
            }
            if let Err(e) = self.out.flush() {
                return output_error(e);
            }
        }
        Ok(Ending::Done)
    }

    /// Moves each partition back to its first record in `unprinted`.
    async fn rewind(&mut self, unprinted: &[ConsumerRecord]) -> anyhow::Result<()> {
        let mut done: Vec<(&str, u32)> = Vec::new();
        for r in unprinted {
            if !done.contains(&(&*r.topic, r.partition)) {
                done.push((&r.topic, r.partition));
                self.consumer
                    .seek(&r.topic, r.partition, SeekTo::Offset(r.offset()))
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot seek: {}", describe(&e)))?;
            }
        }
        Ok(())
    }
}

/// What to change after the coordinator refused the member's settings or
/// name (empty for other errors).
fn refusal_hint(e: &ClientError) -> &'static str {
    match e {
        ClientError::Broker {
            code: ErrorCode::InvalidSessionTimeout,
            ..
        } => {
            " (--session-timeout-ms must lie within the broker's \
             group_min_session_timeout_ms and group_max_session_timeout_ms, 1000 and 1800000 \
             by default)"
        }
        ClientError::Broker {
            code: ErrorCode::InvalidGroupName,
            ..
        } => " (a group name is 1 to 1024 bytes without control characters)",
        _ => "",
    }
}
