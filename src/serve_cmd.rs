//! `feedbench serve`: run the feed server until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use feedbench_server::{ServerConfig, TlsSettings};

/// Serve one data feed over short-poll, long-poll, WebSocket and SSE.
///
/// The first line on stdout is exactly `feedbench listening on http://ADDR` (with TLS,
/// `https://ADDR`) with the real port; with TLS the second is `feedbench tls sha256
/// FINGERPRINT` (the certificate's SHA-256, colon-separated hex). A certificate or key
/// that is missing, does not parse or does not match exits 2 naming the file. SIGINT or SIGTERM stops it gracefully (exit 0 within about 2 s). If the publisher
/// dies the feed has stopped for good: the server shuts down and exits 1. A setting the
/// server refuses (a feed its ring cannot hold, an open control endpoint on a non-loopback
/// address) exits 2 before anything listens.
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
    /// Most bytes of events kept in the ring (e.g. 512MiB, 64MiB, 1GiB or plain bytes). A
    /// feed may produce at most this many bytes of events per second (each event costs
    /// 2 × payload + 289 bytes), so the feed takes at most about twice this in memory.
    #[arg(long, default_value = "512MiB", value_parser = parse_bytes)]
    pub retain_bytes: usize,
    /// Events a WebSocket or SSE consumer may fall behind before it is closed.
    #[arg(long, default_value_t = 4_096)]
    pub ws_queue: usize,
    /// Open connections above which new ones are refused.
    #[arg(long, default_value_t = 19_800)]
    pub max_connections: usize,
    /// When set, PUT /control/feed needs `Authorization: Bearer TOKEN`. Prefer the
    /// environment variable: a command line is visible to every local user in `ps`. Needed
    /// on a non-loopback --addr unless --control-open is given.
    #[arg(long, env = "FEEDBENCH_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
    /// Serve PUT /control/feed without a token on a non-loopback --addr, so that anyone who
    /// can reach the port can change the feed (refused otherwise).
    #[arg(long)]
    pub control_open: bool,
    /// How long a client may take to send a request head (e.g. 10s).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_timeout: Duration,
    /// Largest WebSocket frame or message a client may send, in bytes.
    #[arg(long, default_value_t = 65_536)]
    pub max_frame: usize,
    /// Tokio worker threads (default: the number of cores this process may run on).
    #[arg(long)]
    pub worker_threads: Option<usize>,
    /// Serve TLS (https, wss; ALPN h2 and http/1.1) with a self-signed certificate made at
    /// start for localhost, 127.0.0.1, ::1 and the --addr IP (see --cert-out).
    #[arg(long)]
    pub tls: bool,
    /// Serve TLS with this PEM certificate (chain); needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Write the certificate clients should trust (PEM) to FILE, atomically, before the
    /// first line is printed; needs --tls or --cert.
    #[arg(long, value_name = "FILE")]
    pub cert_out: Option<PathBuf>,
    /// How long a TLS client may take from connecting to the end of its handshake.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub tls_handshake_timeout: Duration,
    /// Leave every event write to its stream's task. By default the publisher writes new
    /// events itself to plain WebSocket and SSE sockets that are caught up, and answers
    /// parked plain long-polls (one `send` each, no task wake-up); this flag is for
    /// comparing the two.
    #[arg(long)]
    pub task_writes: bool,
}

/// Runs the server until a signal; returns the exit code.
pub fn execute(args: ServeArgs) -> anyhow::Result<i32> {
    let threads = args
        .worker_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    anyhow::ensure!(threads >= 1, "--worker-threads must be at least 1");
    let tls = tls_settings(&args)?;
    let config = ServerConfig {
        addr: args.addr,
        rate_hz: args.rate,
        payload_bytes: args.payload_bytes,
        retain: args.retain,
        retain_bytes: args.retain_bytes,
        ws_queue: args.ws_queue,
        max_connections: args.max_connections,
        control_token: args.control_token.filter(|t| !t.is_empty()),
        control_open: args.control_open,
        header_timeout: args.header_timeout,
        max_frame_bytes: args.max_frame,
        tls,
        tls_handshake_timeout: args.tls_handshake_timeout,
        publisher_writes: !args.task_writes,
        ..ServerConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config))
}

/// The TLS settings the flags ask for (`None` for plaintext), with the certificate
/// written to `--cert-out`.
fn tls_settings(args: &ServeArgs) -> anyhow::Result<Option<TlsSettings>> {
    let settings = match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => TlsSettings::from_files(cert, key)?,
        _ if args.tls => TlsSettings::self_signed(args.addr)?,
        _ => {
            anyhow::ensure!(
                args.cert_out.is_none(),
                "--cert-out needs --tls or --cert (the server speaks plaintext without them)"
            );
            return Ok(None);
        }
    };
    if let Some(path) = &args.cert_out {
        write_atomically(path, settings.cert_pem.as_bytes())
            .with_context(|| format!("cannot write the certificate to {}", path.display()))?;
    }
    Ok(Some(settings))
}

/// Writes `bytes` to a temporary file beside `path`, then renames it into place, so a
/// reader never sees half a certificate.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Parses a byte count: plain digits, or digits followed by `KiB`, `MiB` or `GiB`.
fn parse_bytes(s: &str) -> Result<usize, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => s.split_at(at),
        None => (s, ""),
    };
    let shift = match unit {
        "" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        other => return Err(format!("unknown unit '{other}' (use KiB, MiB or GiB)")),
    };
    digits
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("'{s}' is not a byte count"))
}

/// Serves until a signal (exit code 0) or the publisher's death (exit code 1).
async fn serve(config: ServerConfig) -> anyhow::Result<i32> {
    let fingerprint = config.tls.as_ref().map(|t| t.fingerprint.clone());
    // The handlers are installed before the listening line is printed: a supervisor (or a
    // test) that sends SIGTERM as soon as it reads that line must get a clean exit 0, not
    // the default action's death by signal (a CI run saw exactly that on a busy machine).
    let signals = Signals::install()?;
    let server = feedbench_server::start(config).await?;
    {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let scheme = if fingerprint.is_some() {
            "https"
        } else {
            "http"
        };
        writeln!(
            out,
            "feedbench listening on {scheme}://{}",
            server.local_addr()
        )
        .context("cannot write to stdout")?;
        if let Some(fp) = fingerprint {
            writeln!(out, "feedbench tls sha256 {fp}").context("cannot write to stdout")?;
        }
        out.flush().context("cannot write to stdout")?;
    }
    let code = tokio::select! {
        () = signals.recv() => {
            tracing::info!("shutting down");
            0
        }
        why = server.failed() => {
            eprintln!("feedbench: {why}; the feed has stopped, shutting down");
            1
        }
    };
    server.shutdown();
    // Connections get a 1.5 s grace inside the server; this bound is the backstop that
    // keeps the promise of exiting within 2 s.
    if tokio::time::timeout(Duration::from_millis(1_900), server.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish in time; exiting anyway");
    }
    Ok(code)
}

/// SIGTERM and SIGINT, caught from the moment [`Signals::install`] returns.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?,
        })
    }

    /// Waits for either signal.
    async fn recv(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_take_binary_units() {
        assert_eq!(parse_bytes("123"), Ok(123));
        assert_eq!(parse_bytes("64KiB"), Ok(64 << 10));
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert!(parse_bytes("1MB")
            .unwrap_err()
            .contains("unknown unit 'MB'"));
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("99999999999999999999GiB").is_err());
    }
}
