//! `sluice`: the command-line client of a Sluice broker.
//!
//! # Layout
//!
//! - `main.rs`: arguments, the runtime, error reporting and exit codes.
//! - `topic.rs`: `sluice topic create|list|describe|delete`.
//! - `broker.rs`: `sluice broker status`.
//! - `produce.rs`: `sluice produce`, lines from stdin or a file to a topic.
//! - `consume.rs`: `sluice consume`, records of a topic to stdout.
//! - `consume_group.rs`: `sluice consume --group`, as a member of a group.
//! - `group.rs`: `sluice group list|describe|reset-offsets|delete`.
//! - `format.rs`: the `--format` template of `consume`.
//!
//! Errors print one line, `error: ...`, on stderr and exit with status 1;
//! usage errors exit with status 2.

mod broker;
mod cluster;
mod consume;
mod consume_group;
mod format;
mod group;
mod produce;
mod topic;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use sluice_client::{Admin, ClientError};
use sluice_protocol::wire::ErrorCode;

/// Command-line client of a Sluice broker.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about = "Sluice command-line client")]
struct Cli {
    /// Bootstrap list, HOST:PORT[,HOST:PORT...]: the first broker that
    /// answers is used
    #[arg(
        long,
        global = true,
        env = "SLUICE_BROKER",
        default_value = "127.0.0.1:9292"
    )]
    broker: String,
    /// Give up a topic, group, broker or cluster command that has not
    /// finished after this many milliseconds (a broker that stops
    /// answering without closing its connections would otherwise hang it);
    /// 0: never. Produce and consume have their own limits.
    #[arg(long, global = true, value_name = "MS", default_value_t = 60_000)]
    command_timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, describe, change or delete topics, or delete their first records
    #[command(subcommand)]
    Topic(topic::TopicCommand),
    /// Send lines from stdin (or a file) to a topic, one record per line
    Produce(produce::ProduceArgs),
    /// Print the records of a topic to stdout
    Consume(consume::ConsumeArgs),
    /// Show the broker's state
    #[command(subcommand)]
    Broker(broker::BrokerCommand),
    /// List, describe, reset the offsets of, or delete consumer groups
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Show the cluster's brokers
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
}

/// How a listing or description is printed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Aligned text for people.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// How a command ended without an error worth a message.
enum Outcome {
    /// Everything worked.
    Success,
    /// Failed; the command already said why on stderr or stdout.
    Failed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for background tasks (a producer's sender after an error).
    runtime.shutdown_background();
    match result {
        Ok(Outcome::Success) => ExitCode::SUCCESS,
        Ok(Outcome::Failed) => ExitCode::FAILURE,
        // The reader of the output went away (`| head`): what it wanted
        // was written.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(is_broken_pipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let limit = std::time::Duration::from_millis(cli.command_timeout_ms);
    let broker = cli.broker.as_str();
    match cli.command {
        Command::Produce(args) => produce::run(broker, args).await,
        Command::Consume(args) => consume::run(broker, args).await,
        Command::Topic(cmd) => within(limit, topic::run(broker, cmd)).await,
        Command::Broker(cmd) => within(limit, broker::run(broker, cmd)).await,
        Command::Group(cmd) => within(limit, group::run(broker, cmd)).await,
        Command::Cluster(cmd) => within(limit, cluster::run(broker, cmd)).await,
    }
}

/// `command`, or an error once `limit` (zero: none) has passed.
async fn within(
    limit: std::time::Duration,
    command: impl std::future::Future<Output = anyhow::Result<Outcome>>,
) -> anyhow::Result<Outcome> {
    if limit.is_zero() {
        return command.await;
    }
    tokio::time::timeout(limit, command)
        .await
        .unwrap_or_else(|_| {
            Err(anyhow::anyhow!(
                "the broker did not answer within {} ms (--command-timeout-ms); \
                 a change asked for may still be made",
                limit.as_millis()
            ))
        })
}

/// Connects an [`Admin`], saying which address failed.
async fn connect_admin(broker: &str) -> anyhow::Result<Admin> {
    Admin::connect(broker)
        .await
        .map_err(|e| cannot_connect(broker, &e))
}

/// The error for a failed connection attempt.
fn cannot_connect(broker: &str, e: &ClientError) -> anyhow::Error {
    match e {
        ClientError::Io(io) => anyhow::anyhow!("cannot connect to {broker}: {io}"),
        other => anyhow::anyhow!("cannot connect to {broker}: {}", describe(other)),
    }
}

/// One line for a client error: the broker's refusals without the wrapper
/// text, everything else as the library says it.
fn describe(e: &ClientError) -> String {
    match e {
        ClientError::Broker { code, message } if message.is_empty() => code.to_string(),
        ClientError::Broker { code, message } => format!("{code}: {message}"),
        other => other.to_string(),
    }
}

/// The error for a topic the broker does not know (saying how to see the
/// topics there are), or any other failure to look it up.
fn topic_error(name: &str, e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Broker {
            code: ErrorCode::InvalidTopicName | ErrorCode::UnknownTopicOrPartition,
            ..
        } if sluice_protocol::topic_name::is_reserved(name) => anyhow::anyhow!(
            "{name:?} is reserved for the broker's own use (docs/operations.md, \"Topic names\")"
        ),
        ClientError::Broker {
            code: ErrorCode::UnknownTopicOrPartition,
            ..
        } => anyhow::anyhow!(
            "unknown topic {name:?} (`sluice topic list` names the topics there are)"
        ),
        ClientError::Broker {
            code: ErrorCode::InvalidTopicName,
            ..
        } => anyhow::anyhow!(
            "{name:?} is not a topic name: a topic name is 1 to {} ASCII letters, digits, \
             '.', '_' and '-' (not `.` or `..`)",
            sluice_protocol::topic_name::MAX_TOPIC_NAME_LEN
        ),
        other => anyhow::anyhow!("topic {name:?}: {}", describe(&other)),
    }
}

/// [`topic_error`] for a command that reads or writes the topic: an
/// unknown one is to be created first, and the error says how.
fn missing_topic_error(name: &str, e: ClientError) -> anyhow::Error {
    match e {
        ClientError::Broker {
            code: ErrorCode::UnknownTopicOrPartition,
            ..
        } if could_be_created(name) => anyhow::anyhow!(
            "unknown topic {name:?}: create it first (`sluice topic create {name} --partitions N`), \
             or see `sluice topic list` for the topics there are"
        ),
        other => topic_error(name, other),
    }
}

/// Whether `sluice topic create` would take `name`: a topic name (so it
/// can be shown in a command line as it is) the broker does not keep for
/// itself.
fn could_be_created(name: &str) -> bool {
    use sluice_protocol::topic_name::{check_topic_name, is_reserved};
    check_topic_name(name).is_ok() && !is_reserved(name)
}

/// `n` partitions, in words: "1 partition", "3 partitions".
fn partitions(n: impl std::fmt::Display) -> String {
    let n = n.to_string();
    let s = if n == "1" { "" } else { "s" };
    format!("{n} partition{s}")
}

/// Whether an I/O error means the reader of our output went away.
fn is_broken_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}
