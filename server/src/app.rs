//! The state every connection and handler shares.

use std::sync::Arc;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::stats::Stats;

/// Shared server state.
#[derive(Debug)]
pub struct App {
    /// The feed.
    pub hub: Arc<Hub>,
    /// Counters for `/stats` and `/metrics`.
    pub stats: Arc<Stats>,
    /// The configuration the server started with.
    pub config: ServerConfig,
    /// Cancelled to begin shutting down: the accept loop stops and closes the listener,
    /// then cancels [`App::shutdown`].
    pub stop_accepting: CancellationToken,
    /// Cancelled once the listener is closed: every connection now drains (parked polls
    /// answered, WebSockets closed with 1001, HTTP/2 told GOAWAY). In this order a client
    /// told to go away cannot reconnect to the server it is leaving.
    pub shutdown: CancellationToken,
    /// Every task the server spawns (connections, WebSockets, SSE feeders).
    pub tracker: TaskTracker,
    /// Per-connection WebSocket limits and buffer sizes.
    pub ws_config: WebSocketConfig,
    /// When the server started, for `uptime_s`.
    pub started: std::time::Instant,
}

impl App {
    /// State for a server with `config` publishing into `hub`.
    pub fn new(config: ServerConfig, hub: Arc<Hub>) -> App {
        App {
            hub,
            stats: Arc::new(Stats::default()),
            ws_config: ws_config(config.max_frame_bytes),
            config,
            stop_accepting: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            started: std::time::Instant::now(),
        }
    }
}

/// WebSocket settings with small, explicit buffers: tungstenite's defaults allocate
/// 128 KiB read buffers per connection, which would dominate the cost of an idle socket.
/// Tungstenite zero-fills its whole read buffer before the first read, so the buffer is
/// resident from the start: 1 KiB (instead of 4 KiB) takes an idle WebSocket from 6.5 to
/// 3.5 KiB (scripts/conn-memory.sh). Clients here send only control frames; a larger
/// frame still arrives whole, in more reads, and the buffer grows to hold it.
pub fn ws_config(max_frame_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(max_frame_bytes))
        .max_frame_size(Some(max_frame_bytes))
        .accept_unmasked_frames(false)
}
