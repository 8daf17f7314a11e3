//! feedbench-server: one data feed, published from one in-memory hub, served over HTTP
//! short-polling (`/poll`), long-polling (`/longpoll`), WebSocket (`/ws`) and Server-Sent
//! Events (`/sse`), so that the only thing that differs between transports is the transport.
//!
//! `start` binds, spawns the accept loop on the current tokio runtime and the publisher on
//! its own thread, and returns a [`ServerHandle`] to read the address from and to stop the
//! server with. PROTOCOL.md at the repository root is the wire contract.

pub mod alloc_count;
mod app;
mod config;
mod control;
mod direct;
mod error;
pub mod event;
pub mod fanout;
pub mod follow;
mod http2;
pub mod hub;
mod hyper_errors;
#[cfg(feature = "inject")]
pub mod inject;
mod listener;
mod observe;
pub mod poll;
mod poll_direct;
pub mod proc_counters;
pub mod process;
mod publisher;
pub mod query;
mod respond;
mod routes;
mod sse;
mod sse_direct;
pub mod stats;
pub mod tls;
mod ws;
mod ws_direct;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use config::{
    event_cost, max_rate_hz, ServerConfig, DEFAULT_RETAIN_BYTES, MAX_PAYLOAD_BYTES, MAX_RATE_HZ,
    MAX_RETAIN, MIN_RATE_HZ, MIN_RETAIN_BYTES,
};
pub use error::ServerError;
pub use hub::{FeedConfig, Hub};
pub use tls::{TlsError, TlsSettings};

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    app: Arc<app::App>,
    publisher: Option<std::thread::JoinHandle<()>>,
    /// Keeps the kernel stamping received packets ([`fanout::keep_stamping`]).
    _stamping: Option<std::os::fd::OwnedFd>,
}

impl ServerHandle {
    /// The address the server listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The hub, for tests and benches that publish by hand or read the feed.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.app.hub
    }

    /// The server's `/stats` document, read in-process.
    pub fn stats(&self) -> serde_json::Value {
        observe::stats_json(&self.app)
    }

    /// Resolves, with the reason, if the publisher thread dies: the feed has stopped for
    /// good, so the server should be stopped too (`/healthz` already answers 503).
    pub async fn failed(&self) -> String {
        self.app.hub.publisher_failed().await
    }

    /// Starts a graceful shutdown: close the listener, then answer parked long-polls,
    /// close WebSockets with 1001, end SSE streams, send HTTP/2 GOAWAY, and let
    /// connections finish.
    pub fn shutdown(&self) {
        self.app.stop_accepting.cancel();
    }

    /// A token that is cancelled when the server begins to shut down; cancelling it shuts
    /// the server down as [`ServerHandle::shutdown`] does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.app.stop_accepting.clone()
    }

    /// Waits until every connection and task has ended (call `shutdown` first) and the
    /// publisher thread has stopped.
    pub async fn wait(mut self) {
        self.app.shutdown.cancelled().await;
        self.app.tracker.close();
        self.app.tracker.wait().await;
        self.app.hub.stop_publishing();
        if let Some(p) = self.publisher.take() {
            // Joining a thread blocks; it only has to notice the stop flag, which is quick.
            let _ = tokio::task::spawn_blocking(move || p.join()).await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.app.stop_accepting.cancel();
        self.app.shutdown.cancel();
        self.app.hub.stop_publishing();
    }
}

/// Binds `config.addr` and starts serving on the current tokio runtime.
pub async fn start(config: ServerConfig) -> Result<ServerHandle, ServerError> {
    config.validate()?;
    if let Err(e) = process::raise_nofile_limit() {
        tracing::warn!("cannot raise the open-file limit: {e}");
    }
    let listener = bind(config.addr)?;
    let addr = listener.local_addr().map_err(|source| ServerError::Io {
        context: "cannot read the bound address",
        source,
    })?;
    let hub = Arc::new(Hub::bounded(
        FeedConfig {
            rate_hz: config.rate_hz,
            payload_bytes: config.payload_bytes,
        },
        config.retain,
        config.retain_bytes,
    ));
    let app = Arc::new(app::App::new(config, hub.clone()));
    // Held for the server's life: lent long-polls' requests are stamped from the first.
    let stamping = fanout::keep_stamping();
    let publisher = publisher::spawn(hub).map_err(|source| ServerError::Io {
        context: "cannot start the publisher thread",
        source,
    })?;
    app.tracker
        .spawn(listener::accept_loop(app.clone(), listener));
    tracing::info!(%addr, "listening");
    Ok(ServerHandle {
        addr,
        app,
        publisher: Some(publisher),
        _stamping: stamping,
    })
}

fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, ServerError> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    };
    let bind_err = |source| ServerError::Bind { addr, source };
    let socket = socket.map_err(bind_err)?;
    socket.set_reuseaddr(true).map_err(bind_err)?;
    socket.bind(addr).map_err(bind_err)?;
    // A deep backlog so a burst of thousands of connects is not dropped by the kernel.
    socket.listen(4096).map_err(bind_err)
}
