//! What every client shares: its context, connection helper, and per-group statistics.
//!
//! Clients run in groups: one tokio task drives up to [`GROUP_SIZE`] client futures and
//! owns one [`GroupStats`] (histograms and counters) that those futures record into, so a
//! thousand clients cost a few dozen histograms rather than thousands. The lock around a
//! group's stats is never contended across threads (one task polls all its futures) and
//! never held across an `.await`. Groups hand their stats back when they end and the
//! scenario merges them.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::accounting::SeqSet;
use crate::client_io::{ClientIo, Negotiated, TlsClient};
use crate::clock::LocalClock;
use crate::counting::{ByteCounts, CountingStream, Window};
use crate::event::EventHead;
use crate::http::io_error_kind;
use crate::net::ClientNet;
use crate::scenario::Transport;
use crate::source::{connect_from, SourceAddrs};
use crate::stack::{HttpVersion, StackSpec};
use crate::tls::{self, TlsOptions, TlsSetupError, Trust};

/// Clients driven by one task.
pub const GROUP_SIZE: usize = 32;

/// At most this many latencies wait in a group before going to the live histogram.
const RECENT_MAX: usize = 256;
/// Highest value the histograms track: 60 s in µs.
pub const HIST_MAX_US: u64 = 60_000_000;
/// How long a TCP connect may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The goodbye bound for one connection closing alone.
const GOODBYE_BASE: Duration = Duration::from_secs(1);
/// What each client of a scenario adds to the goodbye bound: at the disconnect phase every
/// connection closes at once, and server and load generator each handle the closes one
/// after another on their one core. With a flat 1 s, about 5,700 of 19,000 ws clients gave up
/// before the server's close frame arrived, and the byte counts disagreed.
const GOODBYE_PER_CLIENT: Duration = Duration::from_micros(200);

/// How long one connection's goodbye (close handshake, half-close and drain) may take when
/// all `n_clients` close together: long enough that both sides count the same bytes.
pub fn goodbye_timeout(n_clients: usize) -> Duration {
    GOODBYE_BASE + GOODBYE_PER_CLIENT * n_clients.min(1_000_000) as u32
}

/// A latency histogram in µs, 1 µs to 60 s, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts (low >= 1, high >= 2 * low,
    // sigfig <= 5), so this cannot fail.
    Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("valid histogram bounds")
}

/// Where the clients connect.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resolved socket address.
    pub addr: SocketAddr,
    /// The `host[:port]` for `Host` headers and WebSocket URLs.
    pub host: String,
    /// Bearer token for `PUT /control/feed`, if the server wants one.
    pub control_token: Option<String>,
    /// Local addresses the clients connect from (`auto` unless told otherwise).
    pub source_addrs: SourceAddrs,
    /// This process's clock (the host's, unless a test injects a skew).
    pub clock: LocalClock,
    /// The emulated link the clients reach the server through, when the run has one
    /// (`addr` then stays the harness's way in, which does not cross the link).
    pub net: Option<ClientNet>,
    /// `https`: the clients and the harness's own requests speak TLS.
    pub tls: bool,
    /// Where trust in the server's certificate comes from (`--ca`, `--insecure`); must be
    /// set for an `https` target before anything connects.
    pub tls_trust: Option<Trust>,
}

impl Target {
    /// Parses an `http://host:port` or `https://host:port` URL (a trailing `/` is allowed;
    /// nothing else).
    pub fn parse(url: &str) -> Result<Self, String> {
        let (tls, rest, default_port) = if let Some(rest) = url.strip_prefix("http://") {
            (false, rest, 80)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (true, rest, 443)
        } else {
            return Err(format!(
                "target {url:?} must start with http:// or https://"
            ));
        };
        let host = rest.trim_end_matches('/');
        if host.is_empty() || host.contains('/') {
            return Err(format!(
                "target {url:?} must be http(s)://HOST:PORT without a path"
            ));
        }
        let with_port = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_string()
        } else {
            format!("{host}:{default_port}")
        };
        use std::net::ToSocketAddrs;
        let addr = with_port
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve target {url:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("target {url:?} resolves to no address"))?;
        Ok(Self {
            addr,
            host: host.to_string(),
            control_token: None,
            source_addrs: SourceAddrs::Auto,
            clock: LocalClock::default(),
            net: None,
            tls,
            tls_trust: None,
        })
    }

    /// The target as a URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host)
    }

    /// The TLS client for connections to this target (`None` for `http`): its trust, ALPN
    /// for `http`, resumption as asked, a session store for `n_clients`.
    pub fn tls_client(
        &self,
        http: HttpVersion,
        resumption: bool,
        n_clients: usize,
    ) -> Result<Option<TlsClient>, TlsSetupError> {
        if !self.tls {
            return Ok(None);
        }
        let trust = self.tls_trust.clone().ok_or(TlsSetupError::NoTrust)?;
        let opts = TlsOptions { trust, resumption };
        Ok(Some(TlsClient {
            config: tls::client_config(&opts, http.alpn(), n_clients)?,
            name: tls::server_name(&self.host).map_err(TlsSetupError::Name)?,
        }))
    }

    /// A connection for the harness's own requests (`/stats`, `/control`, `/time`, the
    /// feed): plain TCP, or HTTP/1.1 over TLS to an `https` target; counted against a window
    /// of its own, Nagle off so a request leaves at once.
    pub async fn connect_harness(&self) -> std::io::Result<ClientIo> {
        let stream = tokio::net::TcpStream::connect(self.addr).await?;
        // Only removes a doubt about a request leaving at once: failing is no reason to stop.
        let _ = stream.set_nodelay(true);
        let window = Arc::new(Window::new());
        let Some(tls) = self
            .tls_client(HttpVersion::Http1, false, 1)
            .map_err(std::io::Error::other)?
        else {
            return Ok(ClientIo::Plain(CountingStream::new(stream, window)));
        };
        let (io, _) = ClientIo::tls_connect(&tls, stream, window, true).await?;
        Ok(io)
    }
}

/// Per-client settings.
#[derive(Debug, Clone)]
pub struct ClientParams {
    /// The transport.
    pub transport: Transport,
    /// Short-poll interval.
    pub poll_interval: Duration,
    /// Keep connections alive between polls.
    pub keepalive: bool,
    /// Seed for short-poll phases.
    pub seed: u64,
    /// The protocol stack (TLS, HTTP version, streams per HTTP/2 connection).
    pub stack: StackSpec,
    /// The feed's payload size, bytes: sizes the WebSocket client's read buffer.
    pub payload_bytes: usize,
}

/// What every client of a scenario shares.
#[derive(Debug)]
pub struct ClientCtx {
    /// Where to connect.
    pub target: Target,
    /// Client settings.
    pub params: ClientParams,
    /// The measure window.
    pub window: Arc<Window>,
    /// Cancelled to end the clients (disconnect phase).
    pub stop: CancellationToken,
    /// Live counters for the controller and progress display.
    pub live: Arc<LiveStats>,
    /// Bounds connects in flight, so a burst does not overflow the server's backlog.
    pub connect_limit: Semaphore,
    /// Origin of the short-poll schedules.
    pub epoch: Instant,
    /// Source addresses, client *i* on `sources[i % len]`; empty: the kernel's choice.
    pub sources: Vec<IpAddr>,
    /// The link the clients connect through, when the scenario emulates one: client *i*
    /// connects from the link's address *i* to `client_addr`.
    pub link: Option<ClientNet>,
    /// Where the clients connect: the target, or its port on the far side of the link.
    pub client_addr: SocketAddr,
    /// The HTTP/2 clients' shared connections; `None` when the clients speak HTTP/1.1.
    pub h2: Option<crate::h2::H2Pool>,
    /// Add to a raw receive time ([`crate::clock::unix_nanos`]) to get the server's clock:
    /// the target clock's skew plus the applied clock offset; 0 on one host.
    pub to_server_ns: i64,
    /// The TLS client every connection shares (`None`: plaintext).
    pub tls: Option<TlsClient>,
    /// The receive loops plain WebSocket and long-poll clients lend their sockets to
    /// (`None`: each client reads its own).
    pub receive_loops: Option<crate::receive_loop::ReceiveLoops>,
}

/// Live per-client state the controller reads.
#[derive(Debug, Default)]
pub struct ClientLive {
    /// Highest seq received (0: none yet).
    pub highest: AtomicU64,
    /// 1 once the client has connected at least once.
    pub ready: AtomicU64,
}

/// Counters shared by all clients, read by the controller and the progress display.
#[derive(Debug)]
pub struct LiveStats {
    /// Connections open now.
    pub open: AtomicU64,
    /// Most connections open at once.
    pub peak_open: AtomicU64,
    /// Clients that have connected at least once.
    pub ready: AtomicU64,
    /// Events received in the window so far.
    pub delivered: AtomicU64,
    /// Errors so far.
    pub errors: AtomicU64,
    /// Recent in-window latencies, merged in batches by the groups.
    pub latency: Mutex<Histogram<u64>>,
    /// One entry per client.
    pub clients: Vec<ClientLive>,
}

impl LiveStats {
    /// Live stats for `n_clients` clients.
    pub fn new(n_clients: usize) -> Self {
        Self {
            open: AtomicU64::new(0),
            peak_open: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Mutex::new(new_histogram()),
            clients: (0..n_clients).map(|_| ClientLive::default()).collect(),
        }
    }

    /// How many clients have received seq `target` or later.
    pub fn caught_up(&self, target: u64) -> usize {
        self.clients
            .iter()
            .filter(|c| c.highest.load(Ordering::Relaxed) >= target)
            .count()
    }
}

/// Marks a connection open for as long as it lives.
#[derive(Debug)]
pub struct OpenGuard<'a>(&'a LiveStats);

impl<'a> OpenGuard<'a> {
    fn new(live: &'a LiveStats) -> Self {
        let now = live.open.fetch_add(1, Ordering::Relaxed) + 1;
        live.peak_open.fetch_max(now, Ordering::Relaxed);
        Self(live)
    }
}

impl Drop for OpenGuard<'_> {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Statistics of one group of clients (merged over groups for the scenario).
#[derive(Debug)]
pub struct GroupStats {
    /// Delivery latency of in-window events, µs.
    pub latency: Histogram<u64>,
    /// Request latency of in-window polls, µs.
    pub request_latency: Histogram<u64>,
    /// Time to connect, µs.
    pub connect: Histogram<u64>,
    /// Short-poll lateness of timer wake-ups against the schedule, µs.
    pub schedule_lag: Histogram<u64>,
    /// Latencies (µs) not yet recorded into the live histogram; at most [`RECENT_MAX`].
    recent: Vec<u64>,
    recent_since: Instant,
    /// Event JSON bytes received during the window.
    pub payload_bytes: u64,
    /// Events received during the window (the byte figures' denominator).
    pub window_events: u64,
    /// In-window events received again.
    pub duplicates: u64,
    /// In-window events received after a later seq.
    pub out_of_order: u64,
    /// Sum of the server's `missed` fields.
    pub server_missed: u64,
    /// Requests sent during the window.
    pub requests_sent: u64,
    /// Requests sent overall.
    pub requests_total: u64,
    /// In-window responses without events.
    pub empty: u64,
    /// Short-poll ticks skipped because a response came late.
    pub missed_ticks: u64,
    /// Connections established.
    pub opened: u64,
    /// Connection attempts that failed.
    pub failed: u64,
    /// Bytes of all connections that ended.
    pub bytes: ByteCounts,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Per-client seqs received in the window.
    pub seqs: Vec<SeqSet>,
    /// What the first TLS handshake of the group agreed on (`None` in plaintext or before
    /// any handshake completed).
    pub negotiated: Option<Negotiated>,
}

impl GroupStats {
    /// Empty stats.
    pub fn new() -> Self {
        Self {
            latency: new_histogram(),
            request_latency: new_histogram(),
            connect: new_histogram(),
            schedule_lag: new_histogram(),
            recent: Vec::new(),
            recent_since: Instant::now(),
            payload_bytes: 0,
            window_events: 0,
            duplicates: 0,
            out_of_order: 0,
            server_missed: 0,
            requests_sent: 0,
            requests_total: 0,
            empty: 0,
            missed_ticks: 0,
            opened: 0,
            failed: 0,
            bytes: ByteCounts::default(),
            errors: BTreeMap::new(),
            seqs: Vec::new(),
            negotiated: None,
        }
    }

    /// Merges `other` into `self`.
    pub fn merge(&mut self, other: GroupStats) {
        // `add` fails only when the source holds values beyond our bounds; all histograms
        // share the same bounds and every value was clamped on record.
        let _ = self.latency.add(&other.latency);
        let _ = self.request_latency.add(&other.request_latency);
        let _ = self.connect.add(&other.connect);
        let _ = self.schedule_lag.add(&other.schedule_lag);
        self.payload_bytes += other.payload_bytes;
        self.window_events += other.window_events;
        self.duplicates += other.duplicates;
        self.out_of_order += other.out_of_order;
        self.server_missed += other.server_missed;
        self.requests_sent += other.requests_sent;
        self.requests_total += other.requests_total;
        self.empty += other.empty;
        self.missed_ticks += other.missed_ticks;
        self.opened += other.opened;
        self.failed += other.failed;
        self.bytes.add(&other.bytes);
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.seqs.extend(other.seqs);
        if self.negotiated.is_none() {
            self.negotiated = other.negotiated;
        }
    }

    /// Records the buffered latencies into the live histogram. They are kept as values,
    /// not as a second histogram: merging a histogram walks (and resetting one clears) all
    /// of its ~17,000 counters, which at 10,000 clients (313 groups, each flushing 4 times
    /// a second) cost more CPU than receiving the events (profiled with `perf record` on
    /// `feedbench load --transport ws --clients 10000 --rate 1`: `Histogram::add` 5.4% of
    /// the load generator's samples).
    pub(crate) fn flush_recent(&mut self, live: &LiveStats) {
        if self.recent.is_empty() {
            return;
        }
        if let Ok(mut h) = live.latency.lock() {
            for &us in &self.recent {
                record_us(&mut h, us);
            }
        }
        self.recent.clear();
        self.recent_since = Instant::now();
    }
}

impl Default for GroupStats {
    fn default() -> Self {
        Self::new()
    }
}

/// Records into `h`, clamping to the histogram's range.
pub fn record_us(h: &mut Histogram<u64>, us: u64) {
    h.saturating_record(us.clamp(1, HIST_MAX_US));
}

/// A client's sequence accounting: the seqs it received in the window, and the highest
/// seq received at all (its cursor).
#[derive(Debug, Default)]
pub(crate) struct Seqs {
    seen: SeqSet,
    highest: u64,
}

#[cfg(test)]
impl Seqs {
    /// The highest seq received (0: none).
    pub(crate) fn highest(&self) -> u64 {
        self.highest
    }
}

/// What one received event adds to its group's stats (see [`receive`]).
#[derive(Debug)]
pub(crate) struct Receipt {
    /// Received inside the window: its bytes count.
    in_window: bool,
    json_len: usize,
    /// Published inside the window and new: its delivery latency.
    latency_us: Option<u64>,
    duplicate: bool,
    out_of_order: bool,
}

/// Accounts one event of client `index` (`json_len` bytes of event JSON read at
/// `recv_ns`, this host's clock) against its sequence state and the live per-client cursor;
/// returns what the group's stats must add, or `None` when the event adds nothing there
/// (outside the window, and not a duplicate). The window is on this host's clock, `ts` on
/// the server's, `to_server_ns` apart.
#[allow(clippy::too_many_arguments)]
pub(crate) fn receive(
    window: &Window,
    live: &LiveStats,
    to_server_ns: i64,
    index: usize,
    seqs: &mut Seqs,
    ev: EventHead,
    json_len: usize,
    recv_ns: u64,
) -> Option<Receipt> {
    let in_window = window.contains(recv_ns);
    let mut latency_us = None;
    let (mut duplicate, mut out_of_order) = (false, false);
    if window.contains(ev.ts.saturating_add_signed(-to_server_ns)) {
        match seqs.seen.insert(ev.seq) {
            Some(false) => duplicate = true,
            _ => {
                out_of_order = ev.seq < seqs.highest;
                let recv_server_ns = recv_ns.saturating_add_signed(to_server_ns);
                latency_us = Some(recv_server_ns.saturating_sub(ev.ts) / 1000);
            }
        }
    }
    if ev.seq > seqs.highest {
        seqs.highest = ev.seq;
        live.clients[index].highest.store(ev.seq, Ordering::Relaxed);
    }
    if !in_window && latency_us.is_none() && !duplicate {
        return None;
    }
    Some(Receipt {
        in_window,
        json_len,
        latency_us,
        duplicate,
        out_of_order,
    })
}

impl Receipt {
    /// Adds the event to `g`, and its latency to the live figures in batches.
    pub(crate) fn record(self, g: &mut GroupStats, live: &LiveStats) {
        if self.in_window {
            g.payload_bytes += self.json_len as u64;
            g.window_events += 1;
        }
        g.duplicates += self.duplicate as u64;
        g.out_of_order += self.out_of_order as u64;
        if let Some(us) = self.latency_us {
            record_us(&mut g.latency, us);
            g.recent.push(us);
            live.delivered.fetch_add(1, Ordering::Relaxed);
            if g.recent.len() >= RECENT_MAX || g.recent_since.elapsed() > Duration::from_millis(250)
            {
                g.flush_recent(live);
            }
        }
    }
}

/// One client's own state plus a handle to its group's stats.
#[derive(Debug)]
pub struct ClientState<'g> {
    /// Index of the client in the scenario.
    pub index: usize,
    group: &'g Mutex<GroupStats>,
    ctx: &'g ClientCtx,
    seqs: Seqs,
}

impl<'g> ClientState<'g> {
    /// State for client `index`.
    pub fn new(index: usize, ctx: &'g ClientCtx, group: &'g Mutex<GroupStats>) -> Self {
        Self {
            index,
            group,
            ctx,
            seqs: Seqs::default(),
        }
    }

    /// The highest seq received so far (the cursor), 0 if none.
    pub fn highest(&self) -> u64 {
        self.seqs.highest
    }

    /// Runs `f` on the group's stats.
    pub fn with_stats<R>(&self, f: impl FnOnce(&mut GroupStats) -> R) -> R {
        // A poisoned lock means another client future panicked while recording; its
        // numbers are lost either way, so keep recording into what is there.
        let mut g = self.group.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// Accounts one received event: `json_len` bytes of event JSON read at `recv_ns`.
    pub fn on_event(&mut self, ev: EventHead, json_len: usize, recv_ns: u64) {
        let ctx = self.ctx;
        let receipt = receive(
            ctx.window.as_ref(),
            &ctx.live,
            ctx.to_server_ns,
            self.index,
            &mut self.seqs,
            ev,
            json_len,
            recv_ns,
        );
        if let Some(r) = receipt {
            self.with_stats(|g| r.record(g, &ctx.live));
        }
    }

    /// Lends the client's sequence state to whoever receives its events for a while (the
    /// WebSocket receive loop); [`ClientState::restore_seqs`] takes it back.
    pub(crate) fn lend_seqs(&mut self) -> Seqs {
        std::mem::take(&mut self.seqs)
    }

    /// Takes back the sequence state lent with [`ClientState::lend_seqs`].
    pub(crate) fn restore_seqs(&mut self, seqs: Seqs) {
        self.seqs = seqs;
    }

    /// Counts an error of `kind`.
    pub fn error(&self, kind: &str) {
        self.ctx.live.errors.fetch_add(1, Ordering::Relaxed);
        self.with_stats(|g| *g.errors.entry(kind.to_string()).or_default() += 1);
    }

    /// Adds the bytes of a finished connection.
    pub fn add_bytes(&self, counts: &ByteCounts) {
        self.with_stats(|g| g.bytes.add(counts));
    }

    /// Marks the client ready (connected at least once).
    pub fn mark_ready(&self) {
        let me = &self.ctx.live.clients[self.index];
        if me.ready.swap(1, Ordering::Relaxed) == 0 {
            self.ctx.live.ready.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Opens a TCP connection to the target, counting it; `None` (error counted) on failure.
    pub async fn connect(&self) -> Option<(CountingStream<TcpStream>, OpenGuard<'g>, Instant)> {
        let ctx = self.ctx;
        // The semaphore is never closed, so acquire cannot fail.
        let _permit = ctx.connect_limit.acquire().await.ok()?;
        let started = Instant::now();
        let result = match &ctx.link {
            Some(link) => {
                let source = link.client_ip(self.index);
                let connect = link.connect(source, ctx.client_addr);
                tokio::time::timeout(CONNECT_TIMEOUT, connect).await
            }
            None => {
                let source =
                    (!ctx.sources.is_empty()).then(|| ctx.sources[self.index % ctx.sources.len()]);
                let connect = connect_from(source, ctx.client_addr);
                tokio::time::timeout(CONNECT_TIMEOUT, connect).await
            }
        };
        let stream = match result {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                self.connect_failed(match io_error_kind(&e) {
                    "connect_refused" => "connect_refused",
                    "addr_not_available" => "connect_no_local_port",
                    _ => "connect_other",
                });
                return None;
            }
            Err(_) => {
                self.connect_failed("connect_timeout");
                return None;
            }
        };
        // Events are small and latency-critical: never let Nagle hold a request back.
        let _ = stream.set_nodelay(true);
        self.with_stats(|g| g.opened += 1);
        let guard = OpenGuard::new(&ctx.live);
        Some((
            CountingStream::new(stream, ctx.window.clone()),
            guard,
            started,
        ))
    }

    /// Opens a connection to the target as the scenario's stack says: a counted TCP socket,
    /// or TLS over one (the handshake done, ALPN as `--http` asks). `setup` says whether
    /// the connection's first bytes (the TLS handshake included) are setup (a client's
    /// first connection, a reconnect) or steady state (a poll's own connection without
    /// keep-alive, which pays its handshake every time). `None` (error counted, as a failed
    /// connection) on failure.
    pub async fn connect_io(&self, setup: bool) -> Option<(ClientIo, OpenGuard<'g>, Instant)> {
        let (stream, guard, started) = self.connect().await?;
        let Some(tls) = &self.ctx.tls else {
            if !setup {
                stream.end_setup();
            }
            return Some((ClientIo::Plain(stream), guard, started));
        };
        // The TLS socket is counted afresh (record mode): the TCP connect wrote nothing.
        let window = self.ctx.window.clone();
        let tcp = stream.into_inner();
        match ClientIo::tls_handshake(tls, tcp, window, setup).await {
            Ok((io, negotiated)) => {
                self.with_stats(|g| {
                    if g.negotiated.is_none() {
                        g.negotiated = Some(negotiated);
                    }
                });
                Some((io, guard, started))
            }
            Err((kind, counts)) => {
                // The TCP connection was opened (and is counted so); its handshake's bytes
                // crossed the socket and are counted too.
                self.add_bytes(&counts);
                self.connect_failed(&kind);
                None
            }
        }
    }

    /// Records a connect time measured from `started` (TCP plus the transport's handshake).
    pub fn connected(&self, started: Instant) {
        let us = started.elapsed().as_micros() as u64;
        self.with_stats(|g| record_us(&mut g.connect, us));
        self.mark_ready();
    }

    fn connect_failed(&self, kind: &str) {
        self.with_stats(|g| g.failed += 1);
        self.error(kind);
    }

    /// Hands the client's seq set to the group when it ends.
    pub fn finish(self) {
        let seen = self.seqs.seen;
        let group = self.group;
        let mut g = group.lock().unwrap_or_else(|p| p.into_inner());
        g.seqs.push(seen);
        g.flush_recent(&self.ctx.live);
    }

    /// The shared context.
    pub fn ctx(&self) -> &'g ClientCtx {
        self.ctx
    }

    /// How long this client's goodbye may take (see [`goodbye_timeout`]).
    pub fn goodbye_timeout(&self) -> Duration {
        goodbye_timeout(self.ctx.live.clients.len())
    }
}

/// `fut`'s output, or `None` if the run stops first: one step of a read loop.
///
/// `stop` is `ctx.stop.cancelled()`, made and pinned once per connection: made per message
/// it would join and leave the token's waiter list (a lock and two list links into other
/// clients' state) on every event. `fut` is polled first, so `stop` is polled (and its lock
/// taken) only when there is nothing to read; the flag check bounds how long a client that
/// always has something to read takes to stop.
pub(crate) async fn unless_stopped<F: std::future::Future>(
    ctx: &ClientCtx,
    stop: std::pin::Pin<&mut tokio_util::sync::WaitForCancellationFuture<'_>>,
    fut: F,
) -> Option<F::Output> {
    if ctx.stop.is_cancelled() {
        return None;
    }
    tokio::select! {
        biased;
        out = fut => Some(out),
        _ = stop => None,
    }
}

/// Sleeps for a reconnect back-off after `failures` consecutive failures; returns `false`
/// if the client was stopped meanwhile.
pub async fn backoff(ctx: &ClientCtx, failures: u32) -> bool {
    let ms = (50u64 << failures.min(5)).min(1000);
    tokio::select! {
        _ = ctx.stop.cancelled() => false,
        _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets() {
        let t = Target::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.url(), "http://127.0.0.1:8080");
        let t = Target::parse("https://127.0.0.1:8443").unwrap();
        assert!(t.tls);
        assert_eq!(t.url(), "https://127.0.0.1:8443");
        assert_eq!(Target::parse("https://127.0.0.1").unwrap().addr.port(), 443);
        assert!(Target::parse("ftp://x:1")
            .unwrap_err()
            .contains("must start with http:// or https://"));
        assert!(!Target::parse("http://127.0.0.1:1").unwrap().tls);
        // An https target without trust cannot make a TLS client.
        let e = t
            .tls_client(crate::stack::HttpVersion::Http1, true, 1)
            .unwrap_err();
        assert!(e.to_string().contains("--ca FILE"), "{e}");
        assert!(Target::parse("http://127.0.0.1:1/x")
            .unwrap_err()
            .contains("without a path"));
        assert_eq!(Target::parse("http://127.0.0.1").unwrap().addr.port(), 80);
    }

    /// Every in-window latency reaches the live histogram: in batches of [`RECENT_MAX`]
    /// while the client runs, the rest when it finishes; out-of-window events and
    /// duplicates do not.
    #[test]
    fn live_latency_gets_every_in_window_event_once() {
        let target = Target::parse("http://127.0.0.1:1").unwrap();
        let ctx = ClientCtx {
            client_addr: target.addr,
            target,
            params: ClientParams {
                transport: crate::scenario::Transport::Ws,
                poll_interval: Duration::from_millis(20),
                keepalive: true,
                seed: 1,
                stack: crate::stack::StackSpec::default(),
                payload_bytes: 64,
            },
            window: Arc::new(Window::new()),
            stop: CancellationToken::new(),
            live: Arc::new(LiveStats::new(1)),
            connect_limit: Semaphore::new(1),
            epoch: Instant::now(),
            sources: Vec::new(),
            link: None,
            h2: None,
            to_server_ns: 0,
            tls: None,
            receive_loops: None,
        };
        ctx.window.set(1_000_000, 10_000_000_000);
        let group = Mutex::new(GroupStats::new());
        let mut st = ClientState::new(0, &ctx, &group);
        let live_count = || ctx.live.latency.lock().unwrap().len();
        // Before the window: not recorded anywhere.
        st.on_event(EventHead { seq: 1, ts: 10 }, 100, 500);
        let n = 2 * RECENT_MAX as u64 + 7;
        for seq in 2..2 + n {
            // Published at `seq` ms, received 250 µs later.
            let ts = seq * 1_000_000;
            st.on_event(EventHead { seq, ts }, 100, ts + 250_000);
        }
        // A duplicate adds nothing.
        st.on_event(
            EventHead {
                seq: 5,
                ts: 5_000_000,
            },
            100,
            5_900_000,
        );
        // At least the two full batches went live (a slow machine may flush more on the
        // 250 ms timer), and what waits is bounded.
        assert!(live_count() >= 2 * RECENT_MAX as u64, "{}", live_count());
        assert!(group.lock().unwrap().recent.len() < RECENT_MAX);
        st.finish();
        assert_eq!(live_count(), n);
        let live = ctx.live.latency.lock().unwrap();
        assert_eq!((live.min(), live.max()), (250, 250));
        let g = group.lock().unwrap();
        assert_eq!((g.latency.len(), g.duplicates), (n, 1));
        assert_eq!(ctx.live.delivered.load(Ordering::Relaxed), n);
    }
}
