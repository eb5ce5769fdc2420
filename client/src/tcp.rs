//! The TCP congestion control of the client library's connections to a
//! broker on the same host.
//!
//! A pacing system default such as `bbr` paces loopback sends from TCP's
//! own timers (loopback has no `fq` queue discipline) and held produce and
//! fetch throughput well below the machine's rate (docs/benchmarks.md, "TCP
//! congestion control on loopback"). So a connection to a loopback address
//! uses [`DEFAULT_LOOPBACK_ALGORITHM`], as the broker's end of it does with
//! its default `tcp_congestion = "auto"`. Connections to other hosts always
//! keep the system default (`net.ipv4.tcp_congestion_control`).
//!
//! The choice for loopback connections, from first to last found:
//! [`set_loopback_tcp_congestion`] in this process; the environment
//! variable [`ENV_VAR`] (`system`, or an algorithm name); `cubic`. A kernel
//! that refuses the algorithm (not built, or not in
//! `net.ipv4.tcp_allowed_congestion_control` for a process without
//! `CAP_NET_ADMIN`) leaves the system default; the connection is made
//! either way.

use std::net::SocketAddr;
use std::sync::Mutex;

/// The algorithm loopback connections get unless told otherwise: loss
/// based, no pacing, built into every Linux kernel with TCP.
pub const DEFAULT_LOOPBACK_ALGORITHM: &str = "cubic";

/// Environment variable read at each connection when
/// [`set_loopback_tcp_congestion`] was not called: `system` keeps the
/// system default on loopback connections; any other non-empty value is the
/// algorithm to use.
pub const ENV_VAR: &str = "SLUICE_LOOPBACK_TCP_CONGESTION";

/// What this process chose with [`set_loopback_tcp_congestion`], if it did:
/// `Some(None)` keeps the system default.
static CHOSEN: Mutex<Option<Option<String>>> = Mutex::new(None);

/// Sets the congestion control of this process's later connections to a
/// broker at a loopback address: `Some(name)` an algorithm, `None` the
/// system default. Overrides [`ENV_VAR`]; connections already made keep
/// theirs.
pub fn set_loopback_tcp_congestion(algorithm: Option<&str>) {
    let mut chosen = CHOSEN.lock().unwrap_or_else(|e| e.into_inner());
    *chosen = Some(algorithm.map(str::to_owned));
}

/// The algorithm for loopback connections now (`None`: the system default).
pub fn loopback_tcp_congestion() -> Option<String> {
    let chosen = CHOSEN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    chosen.unwrap_or_else(|| from_env(std::env::var(ENV_VAR).ok().as_deref()))
}

/// [`ENV_VAR`]'s meaning: unset or empty is the default algorithm.
fn from_env(value: Option<&str>) -> Option<String> {
    match value.map(str::trim) {
        None | Some("") => Some(DEFAULT_LOOPBACK_ALGORITHM.to_owned()),
        Some("system") => None,
        Some(name) => Some(name.to_owned()),
    }
}

/// Whether this process may give its sockets `algorithm`: the kernel
/// lists it in `net.ipv4.tcp_allowed_congestion_control`, or this process
/// runs as root (`CAP_NET_ADMIN`) and the kernel offers it
/// (`tcp_available_congestion_control`). Where it may not, setting it
/// fails and the system default stays. `false` off Linux.
pub fn may_set(algorithm: &str) -> bool {
    #[cfg(target_os = "linux")]
    {
        let listed = |sysctl: &str| {
            std::fs::read_to_string(format!("/proc/sys/net/ipv4/{sysctl}"))
                .is_ok_and(|list| list.split_whitespace().any(|a| a == algorithm))
        };
        listed("tcp_allowed_congestion_control")
            || (nix::unistd::geteuid().is_root() && listed("tcp_available_congestion_control"))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = algorithm;
        false
    }
}

/// Gives `stream`, connected to `peer`, the loopback algorithm if `peer` is
/// on this host: what every connection of the client library gets. Best
/// effort (see the module docs).
pub fn apply(stream: &tokio::net::TcpStream, peer: SocketAddr) {
    #[cfg(target_os = "linux")]
    if peer.ip().to_canonical().is_loopback() {
        if let Some(name) = loopback_tcp_congestion() {
            let name = std::ffi::OsString::from(name);
            let _ = nix::sys::socket::setsockopt(
                stream,
                nix::sys::socket::sockopt::TcpCongestion,
                &name,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (stream, peer);
}

#[cfg(test)]
mod tests {
    use super::from_env;

    #[test]
    fn the_environment_variable_reads_as_documented() {
        assert_eq!(from_env(None).as_deref(), Some("cubic"));
        assert_eq!(from_env(Some("")).as_deref(), Some("cubic"));
        assert_eq!(from_env(Some("system")), None);
        assert_eq!(from_env(Some(" reno\n")).as_deref(), Some("reno"));
    }
}
