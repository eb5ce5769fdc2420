//! A broker process started by the harness: a fresh data directory, a free
//! loopback port, CPU time read from `/proc`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

/// CPU seconds a process has used.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuTimes {
    /// User-mode seconds.
    pub user: f64,
    /// Kernel-mode seconds.
    pub sys: f64,
}

impl CpuTimes {
    /// `self - earlier`.
    pub fn since(self, earlier: CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user - earlier.user,
            sys: self.sys - earlier.sys,
        }
    }
    /// User plus system seconds.
    pub fn total(self) -> f64 {
        self.user + self.sys
    }
}

/// CPU times of process `pid` (all its threads), from `/proc/<pid>/stat`.
pub fn cpu_times(pid: u32) -> anyhow::Result<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<f64> {
        Ok(fields.get(i).context("short stat")?.parse::<f64>()? / clock_ticks())
    };
    Ok(CpuTimes {
        user: ticks(11)?,
        sys: ticks(12)?,
    })
}

fn clock_ticks() -> f64 {
    // sysconf(_SC_CLK_TCK) is 100 on Linux in practice.
    100.0
}

/// The `sluice-broker` binary beside this executable.
pub fn broker_binary() -> anyhow::Result<PathBuf> {
    if let Ok(p) = std::env::var("SLUICE_BROKER_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let bin = exe.parent().context("exe dir")?.join("sluice-broker");
    if !bin.exists() {
        bail!(
            "{} not found: build it first (cargo build --release -p sluice-broker) or set SLUICE_BROKER_BIN",
            bin.display()
        );
    }
    Ok(bin)
}

/// A running broker. Stopped with SIGTERM when dropped.
#[derive(Debug)]
pub struct BrokerProc {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Where its Kafka listener listens.
    pub kafka_addr: Option<SocketAddr>,
}

impl BrokerProc {
    /// Starts a broker on `data_dir` with the given fetch path and extra
    /// TOML settings.
    pub fn start(data_dir: &Path, fetch_path: &str, extra_toml: &str) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        std::fs::create_dir_all(data_dir)?;
        let config = data_dir.with_extension("toml");
        std::fs::write(&config, extra_toml)?;
        let log = std::fs::File::create(data_dir.with_extension("log"))?;
        let mut child = Command::new(broker_binary()?)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--listen")
            .arg(addr.to_string())
            // The metrics endpoint stays on (its cost is part of the
            // broker's), on a port of its own so runs never collide.
            .args(["--metrics-listen", "127.0.0.1:0"])
            // Nor on Kafka's default port.
            .args(["--kafka-listen", "127.0.0.1:0"])
            .arg("--fetch-path")
            .arg(fetch_path)
            .arg("--config")
            .arg(&config)
            .env("SLUICE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting sluice-broker")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut kafka = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(a) = line.strip_prefix("sluice-broker kafka listening on ") {
                    kafka = a.trim().parse::<SocketAddr>().ok();
                }
                if line.starts_with("sluice-broker listening on") {
                    let _ = tx.send(kafka);
                }
            }
        });
        let Ok(kafka_addr) = rx.recv_timeout(Duration::from_secs(120)) else {
            let _ = child.kill();
            bail!(
                "broker did not start; see {}",
                data_dir.with_extension("log").display()
            );
        };
        Ok(BrokerProc {
            child,
            addr,
            kafka_addr,
        })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU used so far.
    pub fn cpu(&self) -> CpuTimes {
        cpu_times(self.pid()).unwrap_or_default()
    }

    /// Stops the broker cleanly (SIGTERM) and waits.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.terminate()
    }

    fn terminate(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            )?;
            self.child.wait()?;
        }
        Ok(())
    }
}

impl Drop for BrokerProc {
    fn drop(&mut self) {
        let _ = self.terminate();
    }
}

/// The broker a run talks to: one the harness started, or one already
/// running (`--broker`), whose CPU is measured only if its pid is known.
#[derive(Debug)]
pub enum Target {
    /// Started by the harness.
    Spawned(BrokerProc),
    /// A loopback cluster started by the harness (`--cluster N`): its
    /// address is node 1's, its CPU the sum of its nodes'.
    Cluster(super::cluster::ClusterProc),
    /// Given on the command line.
    External {
        /// Its address.
        addr: SocketAddr,
        /// Its process id, if known.
        pid: Option<u32>,
    },
}

impl Target {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Spawned(b) => b.addr,
            Target::Cluster(c) => c.addrs()[0],
            Target::External { addr, .. } => *addr,
        }
    }

    /// CPU used so far (zero when unknown).
    pub fn cpu(&self) -> CpuTimes {
        match self {
            Target::Spawned(b) => b.cpu(),
            Target::Cluster(c) => c.cpu(),
            Target::External { pid: Some(pid), .. } => cpu_times(*pid).unwrap_or_default(),
            Target::External { pid: None, .. } => CpuTimes::default(),
        }
    }

    /// Stops a spawned broker; leaves an external one running.
    pub fn stop(self) -> anyhow::Result<()> {
        match self {
            Target::Spawned(b) => b.stop(),
            Target::Cluster(mut c) => c.stop(),
            Target::External { .. } => Ok(()),
        }
    }
}
