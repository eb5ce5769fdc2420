//! A broker server run in-process over a chosen file system, shared by the
//! fault-injection and power-cut tests.

use std::sync::Arc;

use sluice_broker::config::BrokerConfig;
use sluice_broker::log::FileSystem;
use sluice_broker::server::{Broker, run};
use tokio::sync::oneshot;

/// A running server: its address, and how to stop it.
pub(crate) struct Server {
    pub(crate) addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Opens a broker with `config` over `fs` (the real file system if `None`)
/// and serves it on a free loopback port.
pub(crate) async fn start(config: BrokerConfig, fs: Option<Arc<dyn FileSystem>>) -> Server {
    let broker = tokio::task::spawn_blocking(move || match fs {
        Some(fs) => Broker::open_with(config, fs),
        None => Broker::open(config),
    })
    .await
    .unwrap()
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        run(listener, broker, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        stop: Some(tx),
        task,
    }
}

impl Server {
    /// Shuts the server down cleanly and waits for it.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }
}
