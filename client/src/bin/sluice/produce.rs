//! `sluice produce`: one record per input line.
//!
//! Records are handed to the [`Producer`] as fast as it buffers them; their
//! delivery futures wait in input order, so `--print-offsets` prints one
//! line per input line, in input order, as soon as that record's fate is
//! known.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, ValueEnum};
use futures::future::{Either, Ready, ready};
use futures::stream::{FuturesOrdered, StreamExt};
use sluice_client::{
    Acks, ClientError, Compression, DeliveryFuture, Producer, ProducerConfig, ProducerRecord,
    RecordMetadata,
};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::{Outcome, connect_admin, describe, is_broken_pipe, missing_topic_error};

/// Arguments of `sluice produce`.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// Topic to send to
    topic: String,
    /// When the broker acknowledges a record
    #[arg(long, value_enum, default_value_t = AcksArg::Leader)]
    acks: AcksArg,
    /// Split each line into key and value at the first occurrence of S;
    /// lines without S have no key
    #[arg(long, value_name = "S", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    key_separator: Option<String>,
    /// Send every record to this partition (default: by key hash, or
    /// sticky for records without a key)
    #[arg(long, value_name = "P")]
    partition: Option<u32>,
    /// Add this header to every record: NAME=VALUE, or NAME alone for a
    /// null value; repeat for more (kept in the order given)
    #[arg(long = "header", value_name = "NAME[=VALUE]", value_parser = parse_header)]
    headers: Vec<String>,
    /// Print `PARTITION OFFSET` (or `error REASON`) per line, in input order
    #[arg(long)]
    print_offsets: bool,
    /// Read lines from this file instead of stdin
    #[arg(long, value_name = "PATH")]
    file: Option<PathBuf>,
    /// Compress each batch with this codec
    #[arg(long, value_enum, default_value_t = CompressionArg::None)]
    compression: CompressionArg,
    /// Compression level (gzip 0-9, zstd 1-22; default: the codec's);
    /// lz4 and snappy have none
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    compression_level: Option<i32>,
    /// Turn idempotence off: a retry after a lost acknowledgement may then
    /// store a record twice (by default each record is stored once)
    #[arg(long)]
    no_idempotence: bool,
    /// Fail a record not acknowledged this many milliseconds after it was
    /// read, retries included (Kafka's `delivery.timeout.ms`; a broker
    /// refusing every append, on a full disk, is retried until then)
    #[arg(long, value_name = "MS", default_value_t = 120_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    delivery_timeout_ms: u64,
}

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompressionArg {
    /// Records as they are
    None,
    /// gzip stream
    Gzip,
    /// snappy, xerial framing
    Snappy,
    /// LZ4 frame
    Lz4,
    /// zstd frame
    Zstd,
}

impl From<CompressionArg> for Compression {
    fn from(c: CompressionArg) -> Compression {
        match c {
            CompressionArg::None => Compression::None,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::Snappy => Compression::Snappy,
            CompressionArg::Lz4 => Compression::Lz4,
            CompressionArg::Zstd => Compression::Zstd,
        }
    }
}

/// `--acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum AcksArg {
    /// Do not wait for the broker (offsets are not known)
    None,
    /// The broker appended the record
    Leader,
    /// The broker appended the record and it is durable
    All,
}

impl From<AcksArg> for Acks {
    fn from(a: AcksArg) -> Acks {
        match a {
            AcksArg::None => Acks::None,
            AcksArg::Leader => Acks::Leader,
            AcksArg::All => Acks::All,
        }
    }
}

/// Refuses, before anything is sent, a `--compression-level` with a codec
/// that has no levels (lz4, snappy, none) or that the codec does not take.
fn check_compression_level(args: &ProduceArgs) -> anyhow::Result<()> {
    let Some(level) = args.compression_level else {
        return Ok(());
    };
    if !matches!(
        args.compression,
        CompressionArg::Gzip | CompressionArg::Zstd
    ) {
        let name = args
            .compression
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned());
        anyhow::bail!(
            "--compression-level {level}: only gzip (0-9) and zstd (1-22) take a level, \
             and --compression is {name}"
        );
    }
    let codec = sluice_protocol::batch::compression::Codec {
        compression: Compression::from(args.compression),
        level: Some(level),
    };
    sluice_protocol::batch::compression::compress(codec, b"", &mut Vec::new())
        .map_err(|e| anyhow::anyhow!("--compression-level {level}: {e}"))?;
    Ok(())
}

/// A delivery, or a record that failed before it was buffered.
type Delivery = Either<DeliveryFuture, Ready<Result<RecordMetadata, ClientError>>>;

/// Runs `sluice produce`.
pub(crate) async fn run(broker: &str, args: ProduceArgs) -> anyhow::Result<Outcome> {
    check_compression_level(&args)?;
    // Check the topic (and the broker) before reading any input; a broker
    // that creates topics on first use creates it, as the producer would.
    let meta = connect_admin(broker)
        .await?
        .describe_topic_creating(&args.topic)
        .await
        .map_err(|e| missing_topic_error(&args.topic, e))?;
    if let Some(p) = args.partition {
        let count = meta.partitions.len();
        anyhow::ensure!(
            (p as usize) < count,
            "topic {:?} has {}; there is no partition {p}",
            args.topic,
            crate::partitions(count)
        );
    }
    let source: Box<dyn AsyncRead + Unpin> = match &args.file {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => Box::new(tokio::io::stdin()),
    };
    let input = BufReader::with_capacity(1 << 16, source);
    let mut config = ProducerConfig::new(broker);
    config.acks = args.acks.into();
    config.compression = args.compression.into();
    config.compression_level = args.compression_level;
    config.idempotence = !args.no_idempotence;
    config.delivery_timeout = std::time::Duration::from_millis(args.delivery_timeout_ms);
    let producer = Producer::new(config);
    let result = send_lines(&producer, &args, input).await;
    producer.close().await;
    result
}

/// Counts and reports delivery outcomes, in input order.
struct Report {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    print: bool,
    /// Stdout went away: stop printing, keep producing.
    closed: bool,
    failed: u64,
    first_error: Option<(u64, String)>,
    settled: u64,
}

impl Report {
    fn record(&mut self, outcome: Result<RecordMetadata, ClientError>) {
        let line = self.settled + 1;
        self.settled += 1;
        let printed = match outcome {
            Ok(meta) => match meta.offset {
                Some(o) => self.print_line(format_args!("{} {o}", meta.partition)),
                None => self.print_line(format_args!("{} -", meta.partition)),
            },
            Err(e) => {
                let reason = describe(&e);
                self.failed += 1;
                let printed = self.print_line(format_args!("error {reason}"));
                self.first_error.get_or_insert((line, reason));
                printed
            }
        };
        if let Err(e) = printed {
            if !is_broken_pipe(&e) {
                eprintln!("error: writing to stdout: {e}");
            }
            self.closed = true;
        }
    }

    fn print_line(&mut self, args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
        if self.print && !self.closed {
            writeln!(self.out, "{args}")?;
        }
        Ok(())
    }

    fn flush(&mut self) {
        if self.print && !self.closed && self.out.flush().is_err() {
            self.closed = true;
        }
    }
}

async fn send_lines(
    producer: &Producer,
    args: &ProduceArgs,
    mut input: BufReader<Box<dyn AsyncRead + Unpin>>,
) -> anyhow::Result<Outcome> {
    let separator = args.key_separator.as_deref().map(str::as_bytes);
    let headers: Vec<(&str, Option<&[u8]>)> = args
        .headers
        .iter()
        .map(|h| match h.split_once('=') {
            Some((name, value)) => (name, Some(value.as_bytes())),
            None => (h.as_str(), None),
        })
        .collect();
    let mut pending: FuturesOrdered<Delivery> = FuturesOrdered::new();
    let mut report = Report {
        out: std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
        print: args.print_offsets,
        closed: false,
        failed: 0,
        first_error: None,
        settled: 0,
    };
    let mut line = Vec::new();
    loop {
        tokio::select! {
            biased;
            Some(outcome) = pending.next(), if !pending.is_empty() => {
                report.record(outcome);
                if input.buffer().is_empty() {
                    // Input may block next: show what is known so far.
                    report.flush();
                }
            }
            // Cancel safe: a partly read line stays in `line`, and the next
            // call goes on with it.
            read = input.read_until(b'\n', &mut line) => {
                if read.context("reading input")? == 0 {
                    break;
                }
                if line.last() == Some(&b'\n') {
                    line.pop();
                    // A CRLF line ending (a file written on Windows) ends
                    // the line too, as for Kafka's console producer.
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                let (key, value) = split(&line, separator);
                let record = ProducerRecord {
                    topic: &args.topic,
                    partition: args.partition,
                    key,
                    value: Some(value),
                    headers: &headers,
                    ..Default::default()
                };
                let delivery = match producer.send_record(record).await {
                    Ok(d) => Either::Left(d),
                    Err(e) => Either::Right(ready(Err(e))),
                };
                pending.push_back(delivery);
                line.clear();
            }
        }
    }
    producer.flush().await;
    while let Some(outcome) = pending.next().await {
        report.record(outcome);
    }
    report.flush();
    if let Some((line, reason)) = &report.first_error {
        eprintln!(
            "error: {} of {} records were not acknowledged; the first, line {line}: {reason}",
            report.failed, report.settled
        );
        return Ok(Outcome::Failed);
    }
    Ok(Outcome::Success)
}

/// `--header`: NAME=VALUE or NAME, with a name.
fn parse_header(s: &str) -> Result<String, String> {
    match s.split_once('=').map_or(s, |(name, _)| name) {
        "" => Err("a header needs a name: NAME=VALUE, or NAME alone for a null value".into()),
        _ => Ok(s.to_owned()),
    }
}

/// Splits a line at the first separator into key and value.
fn split<'a>(line: &'a [u8], separator: Option<&[u8]>) -> (Option<&'a [u8]>, &'a [u8]) {
    let Some(sep) = separator.filter(|s| !s.is_empty()) else {
        return (None, line);
    };
    match line.windows(sep.len()).position(|w| w == sep) {
        Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
        None => (None, line),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_header, split};

    #[test]
    fn a_header_needs_a_name() {
        assert!(parse_header("").is_err());
        assert!(parse_header("=v").is_err());
        assert_eq!(parse_header("n=").unwrap(), "n=");
        assert_eq!(parse_header("n").unwrap(), "n");
    }

    #[test]
    fn splits_at_the_first_separator() {
        let sep = Some(&b"::"[..]);
        assert_eq!(split(b"k::v::w", sep), (Some(&b"k"[..]), &b"v::w"[..]));
        assert_eq!(split(b"::v", sep), (Some(&b""[..]), &b"v"[..]));
        assert_eq!(split(b"no key", sep), (None, &b"no key"[..]));
        assert_eq!(split(b"k::v", None), (None, &b"k::v"[..]));
        assert_eq!(split(b"", sep), (None, &b""[..]));
    }
}
