//! `sluice consume`: records of a topic to stdout.
//!
//! With `--group`, positions are committed after the records before them
//! were written to stdout (every few seconds and on exit), so a record is
//! never committed unprinted: delivery is at least once. When `--count`
//! stops in the middle of a fetch, the partitions are moved back to the
//! first unprinted record before the commit.

use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use sluice_client::{
    Admin, ClientError, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, SeekTo,
};

use crate::consume_group::RETRY_FOR;
use crate::format::Format;
use crate::{
    Outcome, cannot_connect, connect_admin, describe, is_broken_pipe, missing_topic_error,
};

/// How often a group's positions are committed while consuming.
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

/// How often a consumer of every partition of a topic looks for
/// partitions added to it meanwhile.
const PARTITION_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Longest a single fetch waits for records (bounds Ctrl-C latency).
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(500);

/// Arguments of `sluice consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Topic to read
    pub(crate) topic: String,
    /// Start at the earliest record of each partition
    #[arg(long, conflicts_with_all = ["offset", "from_time"])]
    pub(crate) from_beginning: bool,
    /// Start at this offset in each partition
    #[arg(long, value_name = "N", conflicts_with = "from_time")]
    offset: Option<u64>,
    /// Start at the first record with a timestamp at or after T (ms since
    /// the epoch) in each partition
    #[arg(long, value_name = "T")]
    from_time: Option<i64>,
    /// Consumer group to join: its members share the topic's partitions,
    /// each starting at the group's committed offsets (or, without one, as
    /// --from-beginning says), and commit their positions
    #[arg(long, value_name = "G", conflicts_with_all = ["partition", "offset", "from_time"])]
    pub(crate) group: Option<String>,
    #[command(flatten)]
    pub(crate) membership: crate::consume_group::MembershipArgs,
    /// Exit after N records
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Read only this partition (default: every partition, and those
    /// added to the topic while it runs, from their first record)
    #[arg(long, value_name = "P")]
    partition: Option<u32>,
    /// Output per record: %k key, %v value, %K %V their lengths (-1: null),
    /// %h headers (name=value,...), %o offset, %p partition, %T timestamp,
    /// %t topic, %% percent, \n \t \\ escapes; a newline is added unless FMT
    /// ends with one [default: %v]
    #[arg(long, value_name = "FMT", value_parser = Format::parse)]
    pub(crate) format: Option<Format>,
    /// Exit when no record arrived for this many milliseconds
    #[arg(long, value_name = "MS")]
    pub(crate) timeout_ms: Option<u64>,
    /// Read with one FetchStream request per leader (the broker sends
    /// records as they are appended) instead of a Fetch per read
    #[arg(long)]
    pub(crate) fetch_stream: bool,
}

impl ConsumeArgs {
    /// Where to move every partition after assignment, if anywhere.
    fn start(&self) -> Option<SeekTo> {
        if self.from_beginning {
            Some(SeekTo::Earliest)
        } else if let Some(o) = self.offset {
            Some(SeekTo::Offset(o))
        } else {
            self.from_time.map(SeekTo::Timestamp)
        }
    }
}

/// Runs `sluice consume`.
pub(crate) async fn run(broker: &str, args: ConsumeArgs) -> anyhow::Result<Outcome> {
    if args.group.is_some() {
        return crate::consume_group::run(broker, args).await;
    }
    let topic = args.topic.as_str();
    let meta = connect_admin(broker)
        .await?
        .describe_topic(topic)
        .await
        .map_err(|e| missing_topic_error(topic, e))?;
    let count = meta.partitions.len() as u32;
    let partitions: Vec<(String, u32)> = match args.partition {
        Some(p) if p >= count => {
            anyhow::bail!(
                "topic {topic:?} has {}; there is no partition {p}",
                crate::partitions(count)
            )
        }
        Some(p) => vec![(topic.to_owned(), p)],
        None => (0..count).map(|p| (topic.to_owned(), p)).collect(),
    };

    let mut config = ConsumerConfig::new(broker);
    config.group = args.group.clone();
    // Like Kafka's console consumer: without a start option (or a committed
    // offset), only records produced from now on.
    config.offset_reset = if args.from_beginning {
        OffsetReset::Earliest
    } else {
        OffsetReset::Latest
    };
    config.max_wait = args
        .timeout_ms
        .map_or(MAX_WAIT, |t| Duration::from_millis(t).min(MAX_WAIT));
    // Committed here, after the output is flushed.
    config.auto_commit = None;
    config.fetch_stream = args.fetch_stream;
    let mut consumer = Consumer::connect(config)
        .await
        .map_err(|e| cannot_connect(broker, &e))?;
    // From the log start or a time: each partition starts there as it is
    // assigned, so one whose leader is out of reach holds up no other.
    let assigned = match args.start() {
        Some(to @ (SeekTo::Earliest | SeekTo::Latest | SeekTo::Timestamp(_))) => {
            consumer.assign_at(partitions.clone(), to).await
        }
        _ => consumer.assign(partitions.clone()).await,
    };
    assigned.map_err(|e| anyhow::anyhow!("cannot start consuming {topic:?}: {}", describe(&e)))?;
    if let Some(SeekTo::Offset(o)) = args.start() {
        for (t, p) in &partitions {
            let to = SeekTo::Offset(within_log(&mut consumer, t, *p, o).await?);
            consumer
                .seek(t, *p, to)
                .await
                .map_err(|e| anyhow::anyhow!("cannot seek {t}-{p}: {}", describe(&e)))?;
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(stop_on_signal(Arc::clone(&stop)));
    let format = match args.format.clone() {
        Some(f) => f,
        None => Format::parse("%v").map_err(anyhow::Error::msg)?,
    };
    let mut session = Session {
        consumer,
        out: BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
        format,
        group: args.group.clone(),
        printed: 0,
        last_commit: Instant::now(),
        told_unresolved: Unresolved::default(),
        added: args.partition.is_none().then(|| AddedPartitions {
            broker: broker.to_owned(),
            admin: None,
            count,
            next_check: Instant::now() + PARTITION_CHECK_INTERVAL,
        }),
    };
    match session.consume(&args, &stop).await? {
        Ending::Done => {
            session.out.flush().or_else(quiet_if_broken_pipe)?;
            session.commit().await?;
        }
        // The reader left: keep the last commit, which covers only output
        // that was written.
        Ending::OutputClosed => {}
    }
    Ok(Outcome::Success)
}

/// `offset` of `topic`-`partition` if the partition has it, else the
/// nearest offset it has, with a note on stderr: below the log start
/// (records deleted by retention or DeleteRecords) reading starts at the
/// log start, past the end it starts at the end. Without this a fetch out
/// of range would silently move to the end.
async fn within_log(
    consumer: &mut Consumer,
    topic: &str,
    partition: u32,
    offset: u64,
) -> anyhow::Result<u64> {
    let mut bound = async |to| {
        consumer
            .seek(topic, partition, to)
            .await
            .map_err(|e| anyhow::anyhow!("cannot seek {topic}-{partition}: {}", describe(&e)))?;
        Ok::<_, anyhow::Error>(consumer.position(topic, partition).unwrap_or(0))
    };
    let start = bound(SeekTo::Earliest).await?;
    if offset < start {
        eprintln!(
            "{topic}-{partition}: offset {offset} is below the log start {start} \
             (older records were deleted); reading from {start}"
        );
        return Ok(start);
    }
    let end = bound(SeekTo::Latest).await?;
    if offset > end {
        eprintln!("{topic}-{partition}: offset {offset} is past the end {end}; reading from {end}");
        return Ok(end);
    }
    Ok(offset)
}

/// The partitions said on stderr to wait for a leader that cannot be
/// reached, and not yet said to be read.
#[derive(Default)]
pub(crate) struct Unresolved(std::collections::BTreeSet<(String, u32)>);

impl Unresolved {
    /// Says on stderr, once each, which of the assigned partitions are not
    /// read for now because their leader cannot be reached (`now`: the
    /// consumer's `unresolved()`; the others are read meanwhile), and when
    /// such a partition is read after all.
    pub(crate) fn tell<'a>(&mut self, now: impl Iterator<Item = (&'a str, u32, &'a str)>) {
        let mut now = now.peekable();
        if self.0.is_empty() && now.peek().is_none() {
            return;
        }
        let mut still = std::collections::BTreeSet::new();
        for (topic, partition, why) in now {
            let key = (topic.to_owned(), partition);
            if !self.0.contains(&key) {
                eprintln!(
                    "{topic}-{partition}: not read for now: {why}; reading the other \
                     partitions and trying this one again"
                );
            }
            still.insert(key);
        }
        for (topic, partition) in self.0.difference(&still) {
            eprintln!("{topic}-{partition}: its leader answered; reading it");
        }
        self.0 = still;
    }
}

/// Why some assigned partitions were not read at all (`unresolved`: the
/// consumer's; their leader never answered), if any were not.
pub(crate) fn unread<'a>(
    unresolved: impl Iterator<Item = (&'a str, u32, &'a str)>,
) -> Option<String> {
    let unread: Vec<String> = unresolved
        .map(|(t, p, why)| format!("{t}-{p}: {why}"))
        .collect();
    match unread.len() {
        0 => None,
        1 => Some(format!("a partition was not read: {}", unread.join(""))),
        n => Some(format!(
            "{n} partitions were not read: {}",
            unread.join("; ")
        )),
    }
}

/// Why consuming stopped.
pub(crate) enum Ending {
    /// `--count`, `--timeout-ms` or a signal.
    Done,
    /// Stdout was closed.
    OutputClosed,
}

/// Treats a broken pipe as a quiet end of output.
pub(crate) fn quiet_if_broken_pipe(e: std::io::Error) -> std::io::Result<()> {
    if is_broken_pipe(&e) { Ok(()) } else { Err(e) }
}

struct Session {
    consumer: Consumer,
    out: BufWriter<std::io::StdoutLock<'static>>,
    format: Format,
    group: Option<String>,
    printed: u64,
    last_commit: Instant,
    /// Partitions said on stderr to wait for a leader that cannot be
    /// reached.
    told_unresolved: Unresolved,
    /// Without `--partition`: the partitions the topic gains are read too.
    added: Option<AddedPartitions>,
}

/// Watches a topic's partition count while every partition is consumed.
struct AddedPartitions {
    broker: String,
    /// Kept between checks; dropped after a failure, to reconnect.
    admin: Option<Admin>,
    /// Partitions consumed so far (0 to `count - 1`).
    count: u32,
    next_check: Instant,
}

impl AddedPartitions {
    /// The topic's partition count now, if it is due to be checked and the
    /// check succeeds (a failure waits for the next one).
    async fn check(&mut self, topic: &str) -> Option<u32> {
        if Instant::now() < self.next_check {
            return None;
        }
        self.next_check = Instant::now() + PARTITION_CHECK_INTERVAL;
        let asked = async {
            if self.admin.is_none() {
                self.admin = Admin::connect(&self.broker).await.ok();
            }
            self.admin.as_mut()?.describe_topic(topic).await.ok()
        };
        match tokio::time::timeout(MAX_WAIT, asked).await {
            Ok(Some(t)) => Some(t.partitions.len() as u32),
            _ => {
                self.admin = None;
                None
            }
        }
    }
}

/// The last poll that failed, while no broker has answered since: what
/// tells a consumer whose idle timeout ran out because its reads failed
/// from one whose partitions were idle.
#[derive(Default)]
pub(crate) struct FailedPoll(Option<(String, Instant)>);

impl FailedPoll {
    /// A poll failed with `e`.
    pub(crate) fn failed(&mut self, e: &ClientError) {
        self.0 = Some((describe(e), Instant::now()));
    }

    /// A poll returned `records`; `last_answer` is when a broker last
    /// answered a fetch. A poll after a failed one can return nothing
    /// without any broker answering it (every partition waiting for its
    /// leader to be found again): the failure stands until a broker
    /// answers or records come.
    pub(crate) fn polled(&mut self, records: &[ConsumerRecord], last_answer: Instant) {
        if !records.is_empty() || self.0.as_ref().is_some_and(|(_, at)| last_answer > *at) {
            self.0 = None;
        }
    }

    /// The failure, if no broker answered since it.
    pub(crate) fn unanswered(&self, last_answer: Instant) -> Option<&str> {
        match &self.0 {
            Some((why, at)) if last_answer <= *at => Some(why),
            _ => None,
        }
    }
}

impl Session {
    async fn consume(&mut self, args: &ConsumeArgs, stop: &AtomicBool) -> anyhow::Result<Ending> {
        let timeout = args.timeout_ms.map(Duration::from_millis);
        let mut last_record = Instant::now();
        let mut failing_since: Option<Instant> = None;
        let mut failing = FailedPoll::default();
        while Some(self.printed) != args.count && !stop.load(Ordering::Acquire) {
            self.told_unresolved.tell(self.consumer.unresolved());
            // A poll waits no longer than what is left of the idle timeout,
            // nor past RETRY_FOR of silence from the brokers (a paused
            // broker answers nothing yet closes nothing). Cut short, it
            // loses nothing: records it took come with the next poll.
            let silent = self.consumer.last_fetch_answer().elapsed();
            let mut limit = RETRY_FOR.saturating_sub(silent);
            if let Some(t) = timeout {
                limit = limit.min(t.saturating_sub(last_record.elapsed()));
            }
            let polled = tokio::time::timeout(limit, self.consumer.poll()).await;
            let cut_short = polled.is_err();
            let records = match polled.unwrap_or(Ok(Vec::new())) {
                Ok(r) => {
                    failing_since = None;
                    if !cut_short {
                        failing.polled(&r, self.consumer.last_fetch_answer());
                    }
                    r
                }
                // The broker restarting, say: keep trying for a while (the
                // consumer resumes at its positions), counted from the
                // last answer.
                Err(e)
                    if e.is_retriable()
                        && failing_since.is_none_or(|t| t.elapsed() < RETRY_FOR) =>
                {
                    failing_since.get_or_insert(self.consumer.last_fetch_answer());
                    failing.failed(&e);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                Err(e) => {
                    anyhow::bail!("fetching from {:?}: {}", args.topic, describe(&e))
                }
            };
            if records.is_empty() {
                if timeout.is_some_and(|t| last_record.elapsed() >= t) {
                    if let Some(why) = unread(self.consumer.unresolved()) {
                        anyhow::bail!("{why} (the other partitions were read to their end)")
                    }
                    if let Some(why) = failing.unanswered(self.consumer.last_fetch_answer()) {
                        // The idle timeout came after a failed poll, and no
                        // broker answered since: the partitions were
                        // failing, not idle.
                        anyhow::bail!("fetching from {:?}: {why}", args.topic)
                    }
                    break;
                }
                let silent = self.consumer.last_fetch_answer().elapsed();
                if silent >= RETRY_FOR {
                    if let Some(why) = unread(self.consumer.unresolved()) {
                        anyhow::bail!("{why}");
                    }
                    anyhow::bail!(
                        "fetching from {:?}: no answer from the broker for {} s",
                        args.topic,
                        silent.as_secs()
                    );
                }
                if output_gone() {
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
            if self.last_commit.elapsed() >= COMMIT_INTERVAL {
                self.commit().await?;
            }
            self.read_added_partitions(&args.topic).await;
        }
        Ok(Ending::Done)
    }

    /// Adds the partitions the topic gained since the last check, each
    /// read from its first record (all of them came after this consumer
    /// started), with a note on stderr.
    async fn read_added_partitions(&mut self, topic: &str) {
        let Some(added) = self.added.as_mut() else {
            return;
        };
        let Some(now) = added.check(topic).await else {
            return;
        };
        if now <= added.count {
            return;
        }
        let from = added.count;
        let new: Vec<(String, u32)> = (from..now).map(|p| (topic.to_owned(), p)).collect();
        // A partition just added may have no leader yet: tried again at
        // the next check.
        if let Err(e) = self.consumer.assign_more(new, SeekTo::Earliest).await {
            eprintln!(
                "{topic}: {now} partitions now; cannot read the new ones yet ({}); trying again",
                describe(&e)
            );
            return;
        }
        added.count = now;
        eprintln!(
            "{topic}: {now} partitions now; reading partitions {from} to {} from their first record",
            now - 1
        );
    }

    /// Moves each partition back to its first record in `unprinted`.
    async fn rewind(&mut self, unprinted: &[ConsumerRecord]) -> anyhow::Result<()> {
        let mut done: Vec<u32> = Vec::new();
        for r in unprinted {
            if !done.contains(&r.partition) {
                done.push(r.partition);
                self.consumer
                    .seek(&r.topic, r.partition, SeekTo::Offset(r.offset()))
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot seek: {}", describe(&e)))?;
            }
        }
        Ok(())
    }

    /// Commits the positions, with a group.
    async fn commit(&mut self) -> anyhow::Result<()> {
        if let Some(group) = &self.group {
            self.consumer.commit().await.map_err(|e| {
                anyhow::anyhow!("cannot commit offsets of group {group:?}: {}", describe(&e))
            })?;
        }
        self.last_commit = Instant::now();
        Ok(())
    }
}

/// Whether standard output is a pipe whose reader has gone (`| head` that
/// has printed its lines): checked while no record comes, so a caught-up
/// consumer exits then instead of at the next record's write.
pub(crate) fn output_gone() -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let stdout = std::io::stdout();
    let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::empty())];
    poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| {
        n > 0
            && fds[0]
                .revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP))
    })
}

/// A write to stdout failed: quietly done if the reader left.
pub(crate) fn output_error(e: std::io::Error) -> anyhow::Result<Ending> {
    if is_broken_pipe(&e) {
        Ok(Ending::OutputClosed)
    } else {
        Err(anyhow::Error::new(e).context("writing to stdout"))
    }
}

/// Sets `stop` on the first SIGINT or SIGTERM; exits at once on a second.
pub(crate) async fn stop_on_signal(stop: Arc<AtomicBool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    for _ in 0..2 {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        if stop.swap(true, Ordering::AcqRel) {
            std::process::exit(130);
        }
    }
}
