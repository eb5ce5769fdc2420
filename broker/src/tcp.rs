//! Socket settings of client connections: the TCP congestion control
//! algorithm (`tcp_congestion`).
//!
//! On a loopback connection there is no network path for a congestion
//! controller to model, and one that paces its sends (`bbr`, which paces
//! from TCP's own timers when the device has no `fq` queue discipline, as
//! loopback never has) caps the broker's fetch responses at a fraction of
//! what the machine can move and spends CPU on the pacing timers. With the
//! default `auto`, loopback connections therefore use [`LOOPBACK_ALGORITHM`];
//! connections from other hosts keep the system's default
//! (`net.ipv4.tcp_congestion_control`). Figures in docs/benchmarks.md.

use std::ffi::OsString;
use std::net::IpAddr;
use std::os::fd::AsFd;

use nix::sys::socket::{getsockopt, setsockopt, sockopt};
use serde::{Deserialize, Serialize};

/// The algorithm `auto` gives loopback connections: a loss-based one that
/// does not pace, and is built into every Linux kernel that has TCP.
pub const LOOPBACK_ALGORITHM: &str = "cubic";

/// Longest algorithm name the kernel takes (`TCP_CA_NAME_MAX` less its NUL).
const NAME_MAX: usize = 15;

/// The congestion control of the broker's client connections (native and
/// Kafka listeners).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(try_from = "String", into = "String")]
pub enum TcpCongestion {
    /// Loopback connections use [`LOOPBACK_ALGORITHM`]; others keep the
    /// system default.
    #[default]
    Auto,
    /// Every connection keeps the system default.
    System,
    /// Every connection uses this algorithm (a name the kernel knows, such
    /// as `cubic`, `reno` or `bbr`; it must be listed in
    /// `net.ipv4.tcp_allowed_congestion_control` unless the broker has
    /// `CAP_NET_ADMIN`). Checked when the listeners are bound.
    Named(String),
}

impl TcpCongestion {
    /// The algorithm a connection from `peer` is given, if any (`None`:
    /// the system default stays).
    pub fn algorithm_for(&self, peer: IpAddr) -> Option<&str> {
        match self {
            TcpCongestion::Auto if peer.to_canonical().is_loopback() => Some(LOOPBACK_ALGORITHM),
            TcpCongestion::Auto | TcpCongestion::System => None,
            TcpCongestion::Named(name) => Some(name),
        }
    }
}

impl std::str::FromStr for TcpCongestion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(TcpCongestion::Auto),
            "system" => Ok(TcpCongestion::System),
            name if !name.is_empty()
                && name.len() <= NAME_MAX
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') =>
            {
                Ok(TcpCongestion::Named(name.to_owned()))
            }
            other => Err(format!(
                "tcp_congestion must be auto, system or an algorithm name \
                 (letters, digits, '_' or '-', at most {NAME_MAX}), not {other:?}"
            )),
        }
    }
}

impl TryFrom<String> for TcpCongestion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<TcpCongestion> for String {
    fn from(c: TcpCongestion) -> String {
        match c {
            TcpCongestion::Auto => "auto".to_owned(),
            TcpCongestion::System => "system".to_owned(),
            TcpCongestion::Named(name) => name,
        }
    }
}

/// Sets `algorithm` as the congestion control of `socket`.
pub fn set_algorithm(socket: &impl AsFd, algorithm: &str) -> std::io::Result<()> {
    setsockopt(socket, sockopt::TcpCongestion, &OsString::from(algorithm))
        .map_err(std::io::Error::from)
}

/// The congestion control algorithm `socket` uses.
pub fn algorithm(socket: &impl AsFd) -> std::io::Result<String> {
    let name = getsockopt(socket, sockopt::TcpCongestion).map_err(std::io::Error::from)?;
    Ok(name.to_string_lossy().trim_end_matches('\0').to_owned())
}

/// Checks at start-up that a named algorithm can be set, on `listener`
/// (connections accepted from it inherit it). `auto` and `system` always
/// pass: `auto` falls back to the system default where it cannot set
/// [`LOOPBACK_ALGORITHM`].
pub fn check(listener: &impl AsFd, setting: &TcpCongestion) -> Result<(), String> {
    match setting {
        TcpCongestion::Named(name) => set_algorithm(listener, name).map_err(|e| {
            format!(
                "tcp_congestion = {name:?}: {e} (see net.ipv4.tcp_available_congestion_control \
                 and net.ipv4.tcp_allowed_congestion_control)"
            )
        }),
        TcpCongestion::Auto | TcpCongestion::System => Ok(()),
    }
}

/// Gives an accepted connection from `peer` the algorithm `setting` asks
/// for. A failure leaves the system default and is logged at debug level
/// (the connection is served either way).
pub fn apply(socket: &impl AsFd, peer: IpAddr, setting: &TcpCongestion) {
    if let Some(name) = setting.algorithm_for(peer) {
        if let Err(e) = set_algorithm(socket, name) {
            tracing::debug!(%peer, algorithm = name, error = %e, "setting the TCP congestion control failed");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly on purpose
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};

    use super::*;

    fn system_default() -> String {
        std::fs::read_to_string("/proc/sys/net/ipv4/tcp_congestion_control")
            .unwrap()
            .trim()
            .to_owned()
    }

    /// What `auto` gives a loopback connection here: the loopback
    /// algorithm where this process may set it, the system default where
    /// the kernel refuses (`apply` keeps it then).
    fn auto_loopback_expected() -> String {
        match sluice_client::tcp::may_set(LOOPBACK_ALGORITHM) {
            true => LOOPBACK_ALGORITHM.to_owned(),
            false => system_default(),
        }
    }

    #[test]
    fn settings_parse_and_print_back() {
        for s in ["auto", "system", "cubic", "bbr", "reno", "h_tcp-2"] {
            let c: TcpCongestion = s.parse().unwrap();
            assert_eq!(String::from(c), s);
        }
        assert_eq!("auto".parse(), Ok(TcpCongestion::Auto));
        assert_eq!("cubic".parse(), Ok(TcpCongestion::Named("cubic".into())));
        for bad in [
            "",
            "a b",
            "../x",
            "cubic\0",
            "sixteen-letters!",
            "abcdefghijklmnop",
        ] {
            assert!(bad.parse::<TcpCongestion>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn auto_changes_only_loopback_peers() {
        let auto = TcpCongestion::Auto;
        assert_eq!(
            auto.algorithm_for(Ipv4Addr::LOCALHOST.into()),
            Some(LOOPBACK_ALGORITHM)
        );
        assert_eq!(
            auto.algorithm_for(Ipv4Addr::new(127, 3, 2, 1).into()),
            Some(LOOPBACK_ALGORITHM)
        );
        assert_eq!(
            auto.algorithm_for(Ipv6Addr::LOCALHOST.into()),
            Some(LOOPBACK_ALGORITHM)
        );
        let mapped = Ipv4Addr::LOCALHOST.to_ipv6_mapped();
        assert_eq!(auto.algorithm_for(mapped.into()), Some(LOOPBACK_ALGORITHM));
        assert_eq!(auto.algorithm_for(Ipv4Addr::new(10, 0, 0, 7).into()), None);
        assert_eq!(
            TcpCongestion::System.algorithm_for(Ipv4Addr::LOCALHOST.into()),
            None
        );
        let reno = TcpCongestion::Named("reno".into());
        assert_eq!(
            reno.algorithm_for(Ipv4Addr::new(10, 0, 0, 7).into()),
            Some("reno")
        );
    }

    #[test]
    fn apply_sets_the_algorithm_on_a_real_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, peer) = listener.accept().unwrap();
        assert_eq!(algorithm(&server).unwrap(), system_default());
        apply(&server, peer.ip(), &TcpCongestion::System);
        assert_eq!(algorithm(&server).unwrap(), system_default());
        apply(&server, peer.ip(), &TcpCongestion::Auto);
        assert_eq!(algorithm(&server).unwrap(), auto_loopback_expected());
        apply(&server, peer.ip(), &TcpCongestion::Named("reno".into()));
        assert_eq!(algorithm(&server).unwrap(), "reno");
        drop(client);
    }

    #[test]
    fn a_named_algorithm_is_checked_on_the_listener_and_inherited() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        check(&listener, &TcpCongestion::Named("reno".into())).unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        assert_eq!(algorithm(&server).unwrap(), "reno");
        let err = check(&listener, &TcpCongestion::Named("nosuchalgo".into())).unwrap_err();
        assert!(
            err.contains("nosuchalgo") && err.contains("tcp_available_congestion_control"),
            "{err}"
        );
        assert!(check(&listener, &TcpCongestion::Auto).is_ok());
    }
}
