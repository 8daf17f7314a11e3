//! `feedbench serve`: run the feed server until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use feedbench_server::ServerConfig;

/// Serve one data feed over short-poll, long-poll, WebSocket and SSE.
///
/// The first line on stdout is exactly `feedbench listening on http://ADDR` with the real
/// port. SIGINT or SIGTERM stops it gracefully (exit 0 within about 2 s).
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Initial feed rate in events per second (0 pauses the feed).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Initial length of each event's data filler, in bytes.
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
    /// Events kept in the ring for polling cursors and replay.
    #[arg(long, default_value_t = 100_000)]
    pub retain: usize,
    /// Events a WebSocket or SSE consumer may fall behind before it is closed.
    #[arg(long, default_value_t = 4_096)]
    pub ws_queue: usize,
    /// Open connections above which new ones are refused.
    #[arg(long, default_value_t = 19_800)]
    pub max_connections: usize,
    /// When set, PUT /control/feed needs `Authorization: Bearer TOKEN`.
    #[arg(long, env = "FEEDBENCH_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
    /// How long a client may take to send a request head (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Largest WebSocket frame or message a client may send, in bytes.
    #[arg(long, default_value_t = 65_536)]
    pub max_frame: usize,
    /// Tokio worker threads (default: the number of cores this process may run on).
    #[arg(long)]
    pub worker_threads: Option<usize>,
}

/// Runs the server until a signal; returns the exit code.
pub fn execute(args: ServeArgs) -> anyhow::Result<i32> {
    let threads = args
        .worker_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(threads >= 1, "--worker-threads must be at least 1");
    let config = ServerConfig {
        addr: args.addr,
        rate_hz: args.rate,
        payload_bytes: args.payload_bytes,
        retain: args.retain,
        ws_queue: args.ws_queue,
        max_connections: args.max_connections,
        control_token: args.control_token.filter(|t| !t.is_empty()),
        header_timeout: args.header_timeout,
        max_frame_bytes: args.max_frame,
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config))?;
    Ok(0)
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let server = feedbench_server::start(config).await?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "feedbench listening on http://{}", server.local_addr())
            .context("cannot write to stdout")?;
        out.flush().context("cannot write to stdout")?;
    }
    wait_for_signal().await?;
    tracing::info!("shutting down");
    server.shutdown();
    // Connections get a 1.5 s grace inside the server; this bound is the backstop that
    // keeps the promise of exiting within 2 s.
    if tokio::time::timeout(Duration::from_millis(1_900), server.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish in time; exiting anyway");
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
