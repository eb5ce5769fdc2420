//! Request frames captured from real clients, replayed and then mutated
//! (bit flips, boundary integers over fields, truncation, inserted bytes,
//! huge varints, another API version, a length prefix that lies) against
//! both listeners of one broker. The broker must answer or close each
//! connection, never panic (a panic in its log fails the test, even one it
//! survived), keep its memory bounded, and afterwards still serve a
//! well-behaved client its earlier records and new ones.
//!
//! The seeds are `tests/fixtures/requests/{kafka,native}.hex`; the mutations
//! come from a fixed-seed generator, so a failure replays exactly. The
//! decoders have fuzz targets of their own (`fuzz/`); this drives the
//! handlers behind them, on real topics, groups and partitions.
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sluice_protocol::wire::produce::Acks;
use sluice_protocol::wire::topic_config::TopicConfig;
use sluice_tests::{TestBroker, batch_of, create_topic, read_partition};

/// Mutated frames sent per listener.
const MUTATIONS: usize = 20_000;
/// Connections sending them at once, per listener.
const SENDERS: u64 = 4;

fn seeds(name: &str) -> Vec<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/requests")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let hex = l.split_whitespace().nth(2).unwrap();
            (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// xorshift64*: a fixed, dependency-free sequence.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const INTS: [i32; 12] = [
    0,
    1,
    -1,
    2,
    127,
    128,
    255,
    0x7fff,
    0x1_0000,
    1 << 20,
    i32::MAX,
    i32::MIN,
];

/// One to four mutations of `frame` (API key and version at bytes 0..4 in
/// both protocols' request headers, after the length prefix).
fn mutate(rng: &mut Rng, frame: &[u8]) -> Vec<u8> {
    let mut b = frame.to_vec();
    for _ in 0..=rng.below(4) {
        if b.len() < 8 {
            b.extend((0..8).map(|_| rng.next() as u8));
        }
        let at = rng.below(b.len());
        match rng.below(10) {
            0..=2 => b[at] ^= 1 << rng.below(8),
            3 => b[at] = [0x00, 0xff, 0x7f, 0x80, 0x01][rng.below(5)],
            4 if at + 4 <= b.len() => {
                b[at..at + 4].copy_from_slice(&INTS[rng.below(INTS.len())].to_be_bytes());
            }
            5 if at + 2 <= b.len() => {
                let v = [0i16, -1, i16::MAX, i16::MIN, 1, 2][rng.below(6)];
                b[at..at + 2].copy_from_slice(&v.to_be_bytes());
            }
            6 => b.truncate(at),
            7 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                b.splice(at..at, bytes);
            }
            8 if b.len() >= 4 => {
                b[2..4].copy_from_slice(&(rng.below(21) as i16).to_be_bytes());
            }
            _ => {
                let varint: &[u8] = [
                    &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
                    &[0x80, 0x80, 0x80, 0x80, 0x80],
                    &[0xfe, 0xff, 0xff, 0xff, 0x07],
                    &[0x00],
                ][rng.below(4)];
                b.splice(at..(at + 1).min(b.len()), varint.iter().copied());
            }
        }
    }
    b
}

/// Sends `frames` on one connection (each with its length prefix, one in
/// twenty with a prefix that lies), closes the sending side and reads until
/// the broker closes or stays `silence` long silent. Returns whether any
/// answer came back.
fn send(addr: SocketAddr, rng: &mut Rng, frames: &[Vec<u8>], silence: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return false;
    };
    s.set_read_timeout(Some(silence)).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    for f in frames {
        let len = if rng.below(20) == 0 {
            [0u32, u32::MAX, f.len() as u32 + 5, i32::MAX as u32][rng.below(4)]
        } else {
            f.len() as u32
        };
        if s.write_all(&len.to_be_bytes()).is_err() || s.write_all(f).is_err() {
            break;
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut buf = [0u8; 65536];
    let mut answered = false;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        answered = true;
    }
    answered
}

/// Replays every seed once as captured, then [`MUTATIONS`] mutated ones in
/// connections of one to five frames, from [`SENDERS`] threads. Returns
/// how many seeds were answered, and how many of the connections with
/// mutated frames.
fn barrage(addr: SocketAddr, seeds: &[Vec<u8>], seed: u64) -> (usize, usize, usize) {
    let answered_seeds = seeds
        .iter()
        .filter(|f| {
            let silence = Duration::from_millis(500);
            send(addr, &mut Rng(seed), std::slice::from_ref(*f), silence)
        })
        .count();
    let threads: Vec<_> = (0..SENDERS)
        .map(|t| {
            let seeds = seeds.to_vec();
            std::thread::spawn(move || {
                let mut rng = Rng(seed.wrapping_mul(31).wrapping_add(t + 1));
                let (mut sent, mut connections, mut answered) = (0, 0, 0);
                while sent < MUTATIONS / SENDERS as usize {
                    let n = 1 + rng.below(5);
                    let frames: Vec<Vec<u8>> = (0..n)
                        .map(|_| {
                            let s = seeds[rng.below(seeds.len())].clone();
                            mutate(&mut rng, &s)
                        })
                        .collect();
                    let silence = Duration::from_millis(200);
                    answered += usize::from(send(addr, &mut rng, &frames, silence));
                    connections += 1;
                    sent += n;
                }
                (connections, answered)
            })
        })
        .collect();
    let (mut connections, mut answered) = (0, 0);
    for t in threads {
        let (c, a) = t.join().unwrap();
        connections += c;
        answered += a;
    }
    (answered_seeds, connections, answered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_client_requests_leave_the_broker_serving() {
    // Creating topics on first use too: mutated Metadata requests reach
    // topic creation.
    let b = TestBroker::start_with_args(&["--auto-create-topics"]);
    let mut c = b.connect().await;
    // The topics the captured frames name, so the mutations reach real
    // partitions, groups and records.
    for (name, partitions) in [
        ("ct1", 3),
        ("ct2", 1),
        ("kp1", 2),
        ("aio1", 1),
        ("kc1", 1),
        ("k3a", 3),
        ("k3b", 1),
        ("lc1", 3),
        ("nt1", 3),
    ] {
        create_topic(&mut c, name, partitions, TopicConfig::default()).await;
    }
    create_topic(&mut c, "kept", 1, TopicConfig::default()).await;
    c.produce(Acks::All, 5000, &[("kept", 0, &batch_of(&["before"]))])
        .await
        .unwrap();

    let started = Instant::now();
    let kafka = b.kafka_addr.unwrap();
    let native = b.addr;
    let k = std::thread::spawn(move || barrage(kafka, &seeds("kafka.hex"), 1));
    let n = std::thread::spawn(move || barrage(native, &seeds("native.hex"), 2));
    let (k, n) = (k.join().unwrap(), n.join().unwrap());
    eprintln!(
        "in {:?}: kafka {k:?}, native {n:?} (seeds answered, connections, connections answered)",
        started.elapsed()
    );
    // The seeds are real requests (a few wait longer than the 200 ms read:
    // long polls, acks=0; they get 500 ms, mutations 200 ms), and a mutation often leaves a request valid or
    // gets an error answer (the Kafka listener closes on a request it cannot
    // decode, as Kafka does; the native one answers InvalidRequest): a
    // barrage that got no answers would have tested nothing past the
    // framing.
    for (name, (seeds_answered, connections, answered), total) in [
        ("kafka", k, seeds("kafka.hex").len()),
        ("native", n, seeds("native.hex").len()),
    ] {
        assert!(
            seeds_answered * 5 >= total * 4,
            "{name}: {seeds_answered} of {total} seeds answered"
        );
        assert!(
            answered * 10 >= connections,
            "{name}: {answered} of {connections} answered"
        );
    }

    // Still serving, what it held before and what comes now.
    let mut c = b.connect().await;
    c.produce(Acks::All, 5000, &[("kept", 0, &batch_of(&["after"]))])
        .await
        .unwrap();
    let values: Vec<_> = read_partition(&mut c, "kept", 0, 0)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, [&b"before"[..], &b"after"[..]]);
    let topics = c.metadata(None).await.unwrap().topics.len();
    eprintln!("{topics} topics afterwards (10 before)");
    // And on the Kafka listener: an ApiVersions v0 request is answered.
    let mut s = TcpStream::connect(kafka).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(&[0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 7, 0xff, 0xff])
        .unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!(
        &body[..6],
        &[0, 0, 0, 7, 0, 0],
        "correlation id 7, no error"
    );

    // No request may make the broker hold memory in proportion to a
    // count or length it claims.
    let rss = b.peak_rss();
    assert!(rss < 512 << 20, "peak RSS {rss} bytes");
}
