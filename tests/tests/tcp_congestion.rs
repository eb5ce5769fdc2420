//! The TCP congestion control a broker process gives its client
//! connections (`tcp_congestion`), read from the kernel's view of the
//! broker's own end of each connection with `ss` (iproute2).
#![allow(clippy::unwrap_used)] // tests fail loudly on purpose

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_tests::{TestBroker, sluice_ok, workspace_binary};

/// The congestion control of the broker's end of the established
/// connection from `client` to `server`, as `ss -ti` shows it.
fn broker_side_algorithm(server: SocketAddr, client: SocketAddr) -> Option<String> {
    algorithm_of(&format!(
        "( sport = :{} and dport = :{} )",
        server.port(),
        client.port()
    ))
}

/// The congestion control of the one established socket `filter` (an `ss`
/// filter) matches.
fn algorithm_of(filter: &str) -> Option<String> {
    let out = Command::new("ss")
        .args(["-tinH", "state", "established", filter])
        .output()
        .expect("running ss (iproute2), which these tests need");
    assert!(out.status.success(), "ss failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    // The info line names the algorithm just before `wscale:`.
    let tokens: Vec<&str> = text.split_whitespace().collect();
    tokens
        .windows(2)
        .find(|w| w[1].starts_with("wscale:"))
        .map(|w| w[0].to_owned())
}

/// Connects to `server` and waits (up to 5 s) until the broker's end of
/// the connection uses `want`; returns what it used last.
fn connect_and_read(server: SocketAddr, want: &str) -> String {
    let client = TcpStream::connect(server).unwrap();
    let local = client.local_addr().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = broker_side_algorithm(server, local);
        if seen.as_deref() == Some(want) || Instant::now() > deadline {
            return seen.unwrap_or_else(|| "(connection not found)".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn system_default() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
        .unwrap()
        .trim()
        .to_owned()
}

/// What a loopback connection ends up with when `cubic` is asked for (the
/// broker's `auto`, the client library): `cubic` where this process may set
/// it, the system default where the kernel refuses.
fn loopback_expected() -> String {
    match sluice_client::tcp::may_set("cubic") {
        true => "cubic".to_owned(),
        false => system_default(),
    }
}

fn broker_with(setting: &str) -> (tempfile::TempDir, Result<TestBroker, String>) {
    let cfg = tempfile::tempdir().unwrap();
    let path = cfg.path().join("broker.toml");
    std::fs::write(&path, format!("tcp_congestion = \"{setting}\"\n")).unwrap();
    let broker = TestBroker::try_start_with_env(&["--config", path.to_str().unwrap()], &[]);
    (cfg, broker)
}

#[test]
fn by_default_loopback_clients_get_cubic_on_both_listeners() {
    let broker = TestBroker::start();
    let want = loopback_expected();
    assert_eq!(connect_and_read(broker.addr, &want), want);
    let kafka = broker.kafka_addr.expect("kafka listener");
    assert_eq!(connect_and_read(kafka, &want), want);
}

#[test]
fn a_named_algorithm_applies_to_both_listeners() {
    let (_cfg, broker) = broker_with("reno");
    let broker = broker.unwrap();
    assert_eq!(connect_and_read(broker.addr, "reno"), "reno");
    let kafka = broker.kafka_addr.expect("kafka listener");
    assert_eq!(connect_and_read(kafka, "reno"), "reno");
}

#[test]
fn system_keeps_the_kernel_default() {
    let (_cfg, broker) = broker_with("system");
    let broker = broker.unwrap();
    let default = system_default();
    assert_eq!(connect_and_read(broker.addr, &default), default);
}

#[test]
fn an_unknown_algorithm_stops_the_broker_at_start_with_a_clear_error() {
    let (_cfg, broker) = broker_with("nosuchalgo");
    let Err(err) = broker else {
        panic!("the broker must not start")
    };
    assert!(
        err.contains("tcp_congestion") && err.contains("nosuchalgo"),
        "{err}"
    );
}

#[test]
fn a_malformed_name_is_a_config_error() {
    let (_cfg, broker) = broker_with("../cubic");
    let Err(err) = broker else {
        panic!("the broker must not start")
    };
    assert!(err.contains("tcp_congestion must be"), "{err}");
}

#[tokio::test]
async fn the_client_library_uses_cubic_to_a_broker_on_this_host() {
    // The broker keeps the kernel's default on its end; the client's end
    // (the socket whose destination is the broker's port) is the client
    // library's choice.
    let (_cfg, broker) = broker_with("system");
    let broker = broker.unwrap();
    let _conn = broker.connect().await;
    let filter = format!("( dport = :{} )", broker.addr.port());
    assert_eq!(algorithm_of(&filter), Some(loopback_expected()));
}

/// Runs `sluice consume` (which stays connected, waiting for records)
/// against `broker` with `SLUICE_LOOPBACK_TCP_CONGESTION=value`, and
/// returns the algorithm of the CLI's end of its connection once it is
/// `want` (or what it was after 10 s).
fn cli_algorithm_with(broker: &TestBroker, value: &str, want: &str) -> String {
    let addr = broker.addr.to_string();
    if !sluice_ok(&addr, &["topic", "list"]).contains("cc") {
        sluice_ok(&addr, &["topic", "create", "cc", "--partitions", "1"]);
    }
    let mut child = Command::new(workspace_binary(
        "sluice-client",
        "sluice",
        "SLUICE_CLI_BIN",
    ))
    .args(["--broker", &addr, "consume", "cc"])
    .env("SLUICE_LOOPBACK_TCP_CONGESTION", value)
    .env_remove("SLUICE_BROKER")
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let filter = format!("( dport = :{} )", broker.addr.port());
    let deadline = Instant::now() + Duration::from_secs(10);
    let seen = loop {
        let seen = algorithm_of(&filter);
        if seen.as_deref() == Some(want) || Instant::now() > deadline {
            break seen.unwrap_or_else(|| "(connection not found)".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    seen
}

#[test]
fn the_client_library_takes_its_loopback_algorithm_from_the_environment() {
    let (_cfg, broker) = broker_with("system");
    let broker = broker.unwrap();
    // `reno` is always allowed, so this tells the setting apart from both
    // `cubic` and any system default other than `reno`.
    assert_eq!(cli_algorithm_with(&broker, "reno", "reno"), "reno");
    let default = system_default();
    assert_eq!(cli_algorithm_with(&broker, "system", &default), default);
}
