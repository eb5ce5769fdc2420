//! The optional listeners' settings (`metrics_listen`, `kafka_listen`) and
//! advertised addresses.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{DEFAULT_KAFKA_LISTEN, DEFAULT_METRICS_LISTEN};

/// Where the metrics and health endpoint listens: an address, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MetricsListen {
    /// No metrics endpoint.
    Off,
    /// Serve `/metrics`, `/health/live` and `/health/ready` on this address.
    On(SocketAddr),
}

impl Default for MetricsListen {
    fn default() -> Self {
        MetricsListen::On(
            DEFAULT_METRICS_LISTEN
                .parse()
                .unwrap_or_else(|_| unreachable!("valid literal")),
        )
    }
}

impl std::str::FromStr for MetricsListen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(MetricsListen::Off);
        }
        listen_addr(s)
            .map(MetricsListen::On)
            .map_err(|e| format!("metrics listen address must be HOST:PORT or none: {e}"))
    }
}

impl TryFrom<String> for MetricsListen {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<MetricsListen> for String {
    fn from(m: MetricsListen) -> String {
        match m {
            MetricsListen::Off => "none".to_owned(),
            MetricsListen::On(addr) => addr.to_string(),
        }
    }
}

/// Where the Kafka-protocol listener listens: an address, or `none`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KafkaListen {
    /// No Kafka listener.
    Off,
    /// Serve the Kafka protocol on this address.
    On(SocketAddr),
}

impl Default for KafkaListen {
    fn default() -> Self {
        KafkaListen::On(
            DEFAULT_KAFKA_LISTEN
                .parse()
                .unwrap_or_else(|_| unreachable!("valid literal")),
        )
    }
}

impl std::str::FromStr for KafkaListen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "none" {
            return Ok(KafkaListen::Off);
        }
        listen_addr(s)
            .map(KafkaListen::On)
            .map_err(|e| format!("Kafka listen address must be HOST:PORT or none: {e}"))
    }
}

impl TryFrom<String> for KafkaListen {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<KafkaListen> for String {
    fn from(m: KafkaListen) -> String {
        match m {
            KafkaListen::Off => "none".to_owned(),
            KafkaListen::On(addr) => addr.to_string(),
        }
    }
}

/// A listen address: `IP:PORT`, or `NAME:PORT` resolved now (its first
/// address; `localhost:9292`, say).
pub fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse() {
        return Ok(addr);
    }
    use std::net::ToSocketAddrs;
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{s:?} resolves to no address")),
        Err(e) => Err(format!("{s:?} is not HOST:PORT: {e}")),
    }
}

/// Splits an advertised `HOST:PORT` (the host may be a name, an IPv4
/// address or a bracketed IPv6 address).
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// Reads a listen address from the config file with [`listen_addr`], so a
/// host name is taken there as on the command line.
pub(super) fn deserialize_listen_addr<'de, D>(d: D) -> Result<SocketAddr, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let s = String::deserialize(d)?;
    listen_addr(&s).map_err(serde::de::Error::custom)
}
