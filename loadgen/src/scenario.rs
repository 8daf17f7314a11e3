//! One scenario: phases, measurement, and the numbers that come out.
//!
//! Phases: *connect* (clients start spread over the ramp), *warm-up* (nothing recorded),
//! *measure* (the [`Window`] is fixed just before it opens, so no client meets an event of
//! the window while it is still unset; server and load-generator figures are taken at its
//! start and end and sampled in between), *drain* (the window's events are read from the
//! server's feed, then a bounded wait until every client has received the last of them),
//! *disconnect* (clients close politely so both sides count the same bytes). One `/stats` snapshot taken just before the connect
//! phase is the zero of the server's byte counters and the RSS baseline of memory per
//! connection. After the disconnect the server's byte counters are compared with the
//! clients' counts. Ctrl-C or a dead server cuts the phases short; what was measured is
//! still turned into a result, with the matching status.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::accounting::{totals, unreceived, unreceived_seqs, window_range};
use crate::client::{
    goodbye_timeout, ClientCtx, ClientParams, ClientState, GroupStats, LiveStats, Target,
    GROUP_SIZE,
};
use crate::client_io::TlsClient;
use crate::clock::{rfc3339, unix_nanos};
use crate::clock_sync::{self, ClockError, SyncOptions};
use crate::counting::Window;
use crate::feed::{FeedReader, FeedWindow};
use crate::net::{self, ClientNet};
use crate::receive_loop::ReceiveLoops;
use crate::results::{
    is_loopback_target, rss_per_connection_bytes, ByteFigures, ClockFigures, Connections, Events,
    Loadgen, Params, ProcessCounts, Requests, RttProbe, ScenarioResult, ServerFigures,
    ServerSample, ShardInfo, StackFigures, Status, Summary, WindowTimes, MAX_UNRECEIVED_SEQS,
    WINDOW_FROM_CLIENTS, WINDOW_FROM_FEED,
};
use crate::shard::{Shard, StartAt};
use crate::stack::{HttpVersion, StackSpec};
use crate::stats::{ServerStats, StatsClient};
use crate::{limits, long_poll, progress::Progress, short_poll, sse, sysinfo, ws};
use feedbench_netem::{NetCounters, NetSpec};

/// Connects in flight at once.
const CONNECTS_IN_FLIGHT: usize = 256;
/// How long after the ramp the connect phase waits for stragglers.
const CONNECT_GRACE: Duration = Duration::from_secs(10);
/// How long the clients may take to disconnect beyond their own goodbye bound.
const DISCONNECT_SLACK: Duration = Duration::from_secs(4);
/// How long the server's byte counters may take to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(3);
/// Consecutive failed `/stats` fetches after which the server is taken for dead.
const STATS_FAILURES_FATAL: u32 = 3;
/// Load-generator CPU utilisation above which figures are flagged.
const LOADGEN_BOUND_UTIL: f64 = 0.85;
/// With `--start-at`, how long after the ramp the clients have to connect before the
/// warm-up starts for everyone; stragglers connect later and are flagged.
pub const ALIGNED_CONNECT_SLOT: Duration = Duration::from_secs(2);
/// How long before an aligned window opens the server readings are taken.
const ALIGNED_LEAD: Duration = Duration::from_millis(300);
/// Without a start time, how far ahead of its start the window is fixed ([`fix_window`]),
/// after the server readings: only the few instructions between reading the clock and
/// fixing the window must fit in it (a task preempted right there is flagged). Short,
/// because the server's counters are read before it: at 20 ms the span they cover grew
/// enough to take in one more of the load generator's own `/stats` samples in some runs,
/// +9% server allocations per event at 50 short-poll clients (`scripts/ci-regression.sh`).
const WINDOW_FIXED_AHEAD: Duration = Duration::from_millis(1);
/// How far in the past a start time may lie before the scenario is refused.
const START_AT_LATE: Duration = Duration::from_secs(1);
/// How far in the future a start time may lie.
const START_AT_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// How long the head read at the window's start may take.
const FEED_HEAD_TIMEOUT: Duration = Duration::from_secs(2);

/// The transport enum lives in a leaf module of the results crate; re-exported here so
/// `scenario::Transport` keeps naming it.
pub use feedbench_results::Transport;

/// Everything that defines one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSpec {
    /// Transport.
    pub transport: Transport,
    /// Concurrent clients.
    pub n_clients: usize,
    /// Feed rate, events/s.
    pub rate_hz: f64,
    /// Event `data` length.
    pub payload_bytes: usize,
    /// Short-poll interval (ignored by other transports).
    pub poll_interval: Duration,
    /// Measure window.
    pub duration: Duration,
    /// Warm-up.
    pub warmup: Duration,
    /// Time over which clients connect (0: as fast as the connect limit allows).
    pub ramp: Duration,
    /// Keep-alive between polls.
    pub keepalive: bool,
    /// Seed for short-poll phases.
    pub seed: u64,
    /// Set the feed with `PUT /control/feed` first.
    pub control: bool,
    /// The block of clients this process runs when the scenario is split into shards
    /// (`None`: all of them).
    pub shard: Option<Shard>,
    /// The wall-clock instant every shard starts connecting at; the window then opens at
    /// [`ScenarioSpec::aligned_window_start`] (`None`: phases follow each other at once).
    pub start_at: Option<StartAt>,
    /// The emulated link between the clients and the server (`None`: no emulation, the
    /// clients connect over loopback or the host's own network). Needs a target made with
    /// [`crate::net::ClientNet`].
    pub net: Option<NetSpec>,
    /// The protocol stack: TLS (must match the target's scheme), HTTP version, streams per
    /// HTTP/2 connection, TLS session resumption.
    pub stack: StackSpec,
}

impl ScenarioSpec {
    /// The group key, e.g. `ws-c100-r10-s64` or `short-poll-c100-r10-s64-i1000`
    /// (`-noka` when keep-alive is off).
    pub fn name(&self) -> String {
        let mut name = format!(
            "{}-c{}-r{}-s{}",
            self.transport,
            self.n_clients,
            format_rate(self.rate_hz),
            self.payload_bytes
        );
        if self.transport == Transport::ShortPoll {
            name.push_str(&format!("-i{}", self.poll_interval.as_millis()));
        }
        if !self.keepalive && self.transport == Transport::ShortPoll {
            name.push_str("-noka");
        }
        name.push_str(&self.stack.name_suffix());
        if let Some(net) = &self.net {
            name.push('@');
            name.push_str(&net.to_string());
        }
        name
    }

    /// The client indices this process runs.
    pub fn local_clients(&self) -> std::ops::Range<usize> {
        match self.shard {
            Some(shard) => shard.clients(self.n_clients),
            None => 0..self.n_clients,
        }
    }

    /// With a start time, the instant (Unix ns) every shard opens its window at: the start,
    /// the ramp, [`ALIGNED_CONNECT_SLOT`] for connecting, then the warm-up.
    pub fn aligned_window_start(&self) -> Option<u64> {
        let at = self.start_at?;
        Some(at.unix_ns() + (self.ramp + ALIGNED_CONNECT_SLOT + self.warmup).as_nanos() as u64)
    }

    /// The bounded drain wait: long enough for the slowest transport to fetch the window's
    /// last event.
    pub fn drain_limit(&self) -> Duration {
        let base = match self.transport {
            Transport::ShortPoll => (self.poll_interval * 2).max(Duration::from_secs(2)),
            _ => Duration::from_secs(2),
        };
        base + self.net.as_ref().map_or(Duration::ZERO, net::drain_slack)
    }

    /// A rough wall-clock estimate of one run of this scenario.
    pub fn estimated_duration(&self) -> Duration {
        let drain = match self.transport {
            Transport::ShortPoll => self.poll_interval,
            _ => Duration::from_millis(100),
        };
        // Through a link: the RTT probe and the last event's trip, a few RTTs.
        let link = self
            .net
            .as_ref()
            .map_or(Duration::ZERO, |n| net::max_rtt(n) * 4);
        // Connecting, settling byte counters and writing results: about half a second.
        self.ramp + self.warmup + self.duration + drain + link + Duration::from_millis(500)
    }

    fn params(&self) -> Params {
        Params {
            clients: self.n_clients as u64,
            rate_hz: self.rate_hz,
            payload_bytes: self.payload_bytes as u64,
            poll_interval_ms: (self.transport == Transport::ShortPoll)
                .then_some(self.poll_interval.as_millis() as u64),
            duration_s: self.duration.as_secs_f64(),
            warmup_s: self.warmup.as_secs_f64(),
            keepalive: self.keepalive,
            ramp_s: self.ramp.as_secs_f64(),
            seed: self.seed,
            net: self.net.as_ref().map(|n| n.to_string()),
            tls: self.stack.tls,
            http: self.stack.http.as_str().into(),
            streams_per_connection: self.stack.streams_per_connection,
            tls_resumption: self.stack.tls.then_some(self.stack.tls_resumption),
        }
    }
}

fn format_rate(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{}", rate as u64)
    } else {
        format!("{rate}")
    }
}

/// Why a scenario could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The clients would not fit (descriptors, ports).
    #[error("{0}")]
    Capacity(String),
    /// The shard processes of a sharded run could not be run or merged.
    #[error("{0}")]
    Shards(String),
    /// `--start-at` is too far in the past or the future.
    #[error("{0}")]
    StartAt(String),
    /// The emulated link could not be set up or reached.
    #[error("{0}")]
    Net(String),
    /// The scenario's stack cannot be set up against this target (TLS trust, a stack the
    /// target does not speak).
    #[error("{0}")]
    Stack(String),
    /// The WebSocket receive loops could not be started.
    #[error("cannot start the websocket receive threads: {0}")]
    Receiver(String),
    /// `PUT /control/feed` failed.
    #[error("cannot set the feed with PUT /control/feed (use --no-control for a server you don't control): {0}")]
    Control(String),
}

/// Signals shared by a whole run: Ctrl-C and server failure.
#[derive(Debug, Default)]
pub struct RunSignals {
    /// Cancelled on Ctrl-C / SIGTERM.
    pub interrupt: CancellationToken,
    failed: CancellationToken,
    failure: Mutex<Option<String>>,
}

impl RunSignals {
    /// Fresh signals.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the run failed with `message` (the first message wins).
    pub fn fail(&self, message: impl Into<String>) {
        let mut f = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(message.into());
        }
        self.failed.cancel();
    }

    /// The failure message, if the run failed.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Resolves when the run is interrupted or failed.
    pub async fn aborted(&self) {
        tokio::select! {
            _ = self.interrupt.cancelled() => {}
            _ = self.failed.cancelled() => {}
        }
    }

    /// The status the run has so far.
    pub fn status(&self) -> Status {
        if self.failed.is_cancelled() {
            Status::Failed
        } else if self.interrupt.is_cancelled() {
            Status::Interrupted
        } else {
            Status::Complete
        }
    }
}

/// Server and load-generator readings at the window's edges.
#[derive(Debug, Default)]
struct Readings {
    window_start: Option<(u64, Instant)>,
    window_end_ns: Option<u64>,
    server_start: Option<ServerStats>,
    server_end: Option<ServerStats>,
    /// Clients connected (ready) when `server_start` was taken.
    ready_at_start: u64,
    cpu_start: f64,
    cpu_end: f64,
    /// The load generator's own counters at the window's edges.
    counts_start: Option<ProcessCounts>,
    counts_end: Option<ProcessCounts>,
    drain_missing: Option<(usize, u64)>,
    /// How long after its start the window was fixed, if it was fixed late.
    window_fixed_late_ns: Option<u64>,
    /// The feed's head seq read just before the window opened.
    feed_head_at_start: Option<u64>,
    /// The window's events as the feed has them, read after the window.
    feed_window: Option<FeedWindow>,
    /// Why the feed could not be read, if it could not.
    feed_error: Option<String>,
    /// The emulated link's counters when the window opened and closed.
    net_start: Option<NetCounters>,
    /// See `net_start`.
    net_end: Option<NetCounters>,
}

/// The TLS client of a scenario: `None` in plaintext; an error when the scenario's `tls`
/// and the target's scheme differ or trust is missing.
fn scenario_tls(target: &Target, spec: &ScenarioSpec) -> Result<Option<TlsClient>, ScenarioError> {
    if spec.stack.tls != target.tls {
        return Err(ScenarioError::Stack(format!(
            "scenario {} has tls={} but the target {} is {}",
            spec.name(),
            if spec.stack.tls { "on" } else { "off" },
            target.url(),
            if target.tls { "https" } else { "http" }
        )));
    }
    target
        .tls_client(
            spec.stack.http,
            spec.stack.tls_resumption,
            spec.local_clients().len(),
        )
        .map_err(|e| ScenarioError::Stack(e.to_string()))
}

/// Runs one scenario against `target`.
pub async fn run_scenario(
    target: &Target,
    spec: &ScenarioSpec,
    repeat: u32,
    signals: &RunSignals,
    progress: &Progress,
) -> Result<ScenarioResult, ScenarioError> {
    let tls = scenario_tls(target, spec)?;
    let link = scenario_link(target, spec)?;
    let client_addr = match &link {
        Some(l) => l.server_addr(target.addr.port()),
        None => target.addr,
    };
    let sources = match &link {
        // One address per client, each on its own access link: ports are no constraint.
        Some(l) => (0..spec.local_clients().len().min(64))
            .map(|i| l.client_ip(i))
            .collect(),
        None => target.source_addrs.resolve(target.addr),
    };
    limits::check_capacity(spec.local_clients().len() as u64, &sources, client_addr)
        .map_err(ScenarioError::Capacity)?;
    // Before the feed is set and the server's counters are read: the probe's connections
    // carry no request and are closed before any figure is taken.
    let rtt_probe = match &link {
        Some(l) => Some(l.probe_rtt(client_addr).await.map_err(ScenarioError::Net)?),
        None => None,
    };
    let clock = estimate_clock(target).await;
    let start_delay = start_delay(spec, clock.to_server_ns)?;
    let started_at = rfc3339(SystemTime::now());
    let mut stats = StatsClient::new(target);
    // In a sharded run only shard 0 sets the feed: every change starts a new schedule.
    if spec.control && spec.shard.is_none_or(|s| s.index == 0) {
        stats
            .set_feed(spec.rate_hz, spec.payload_bytes)
            .await
            .map_err(|e| ScenarioError::Control(e.to_string()))?;
    }
    // Taken after the feed is set and before any client exists: the byte counters' zero
    // and the RSS baseline for memory per connection.
    let server_before = stats.fetch().await.ok();
    if let Some(delay) = start_delay {
        progress.phase("waiting for the start time");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = signals.aborted() => {}
        }
    }

    let window = Arc::new(Window::new());
    let stop = CancellationToken::new();
    let live = Arc::new(LiveStats::new(spec.n_clients));
    let receive_loops = match lends_to_receive_loops(spec, tls.is_some()) {
        true => Some(
            ReceiveLoops::start(
                tokio::runtime::Handle::current().metrics().num_workers(),
                &window,
                &live,
                clock.to_server_ns,
                &stop,
            )
            .map_err(|e| ScenarioError::Receiver(e.to_string()))?,
        ),
        false => None,
    };
    let ctx = Arc::new(ClientCtx {
        target: target.clone(),
        params: ClientParams {
            transport: spec.transport,
            poll_interval: spec.poll_interval,
            keepalive: spec.keepalive,
            seed: spec.seed,
            stack: spec.stack,
            payload_bytes: spec.payload_bytes,
        },
        window,
        stop,
        live,
        connect_limit: Semaphore::new(CONNECTS_IN_FLIGHT),
        epoch: Instant::now(),
        sources: if link.is_some() { Vec::new() } else { sources },
        link,
        client_addr,
        h2: (spec.stack.http == HttpVersion::Http2).then(|| {
            crate::h2::H2Pool::new(spec.n_clients, spec.stack.streams_per_connection as usize)
        }),
        to_server_ns: clock.to_server_ns,
        tls,
        receive_loops,
    });
    let n_local = spec.local_clients().len();
    progress.start_scenario(&spec.name(), repeat, n_local, ctx.live.clone());
    let groups = spawn_groups(&ctx, spec);

    let mut readings = Readings::default();
    let mut samples = Vec::new();
    let mut monitor = StatsClient::new(target);
    let mut feed = FeedReader::new(target, spec.transport, spec.payload_bytes);
    let mut phases = Phases {
        stats: &mut stats,
        feed: &mut feed,
        readings: &mut readings,
    };
    tokio::select! {
        _ = run_phases(&ctx, spec, &mut phases, progress) => {}
        _ = monitor_server(&mut monitor, &ctx, server_before.is_some(), &mut samples, signals) => {}
        _ = signals.aborted() => {}
    }
    let aborted = signals.status() != Status::Complete;
    if aborted {
        finish_cut_short(&ctx, &mut stats, &mut readings, signals.status()).await;
    }

    progress.phase("disconnect");
    ctx.stop.cancel();
    let disconnect_limit = goodbye_timeout(n_local) + DISCONNECT_SLACK;
    let (mut group, lost_groups) = join_groups(groups, disconnect_limit).await;
    if let Some(receivers) = &ctx.receive_loops {
        group.merge(receivers.finish().await);
    }
    let status = signals.status();
    let mut server_after = None;
    // A shard's clients are only part of what the server counts: nothing to settle on.
    if server_before.is_some() && status == Status::Complete && spec.shard.is_none() {
        server_after =
            settle_server_bytes(&mut stats, spec.transport, server_before.as_ref(), &group).await;
    }
    let mut result = build_result(spec, repeat, started_at, &ctx, &readings, &group, samples);
    add_net_figures(&mut result, spec, rtt_probe, &readings);
    result.clock = clock.figures;
    result.warnings.extend(clock_warning(target, &result));
    result.notes.extend(clock.note);
    result.warnings.extend(clock.warning);
    result.status = status;
    result.status_message = match status {
        Status::Complete => None,
        Status::Interrupted => Some("interrupted".into()),
        Status::Failed => signals.failure(),
    };
    add_server_figures(
        &mut result,
        spec,
        &readings,
        server_before.as_ref(),
        server_after.as_ref(),
        &group,
    );
    if lost_groups > 0 {
        result.warnings.push(format!(
            "{lost_groups} client groups did not stop in time; their numbers are missing"
        ));
    }
    progress.finish_scenario(&result);
    Ok(result)
}

/// The link a scenario's clients go through, set to the scenario's spec; `None` without one.
fn scenario_link(target: &Target, spec: &ScenarioSpec) -> Result<Option<ClientNet>, ScenarioError> {
    let Some(net) = &spec.net else {
        return Ok(None);
    };
    let Some(link) = &target.net else {
        return Err(ScenarioError::Net(format!(
            "scenario {} has an emulated link ({net}) but the run has none (it needs --net or \
             a suite with `matrix.net`, as root)",
            spec.name()
        )));
    };
    link.configure(net, spec.seed).map_err(ScenarioError::Net)?;
    Ok(Some(link.clone()))
}

/// Puts the link's window figures and its warnings into the result (the runner adds the
/// model check, which needs the loopback runs).
fn add_net_figures(
    result: &mut ScenarioResult,
    spec: &ScenarioSpec,
    probe: Option<RttProbe>,
    readings: &Readings,
) {
    let (Some(net), Some(start), Some(end)) = (&spec.net, &readings.net_start, &readings.net_end)
    else {
        return;
    };
    let figures = net::figures(net, spec.n_clients, probe, start, end);
    result.warnings.extend(net::warnings(&figures));
    result.net = Some(figures);
}

/// How many `GET /time` exchanges the clock estimate takes.
const CLOCK_SAMPLES: usize = 16;
/// How long the whole estimate may take.
const CLOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// This process's clock against the server's, and what the results say about it.
struct ClockState {
    /// Add to a raw receive time to get the server's clock.
    to_server_ns: i64,
    figures: Option<ClockFigures>,
    note: Option<String>,
    warning: Option<String>,
}

/// Estimates the server's clock offset (`GET /time`). The offset is applied only when it
/// is further from 0 than its own uncertainty: otherwise 0 is as good an estimate, and
/// exactly right when both run on one host.
async fn estimate_clock(target: &Target) -> ClockState {
    let skew = target.clock.skew_ns;
    let opts = SyncOptions {
        samples: CLOCK_SAMPLES,
        clock: target.clock,
        ..SyncOptions::default()
    };
    let mut state = ClockState {
        to_server_ns: skew,
        figures: None,
        note: None,
        warning: None,
    };
    match tokio::time::timeout(CLOCK_TIMEOUT, clock_sync::estimate(target, &opts)).await {
        Ok(Ok(est)) => {
            let applied = est.offset_ns.unsigned_abs() > est.uncertainty_ns;
            if applied {
                state.to_server_ns = skew.saturating_add(est.offset_ns);
            }
            state.figures = Some(ClockFigures {
                offset_ns: est.offset_ns,
                uncertainty_ns: est.uncertainty_ns,
                min_rtt_ns: est.min_rtt_ns,
                samples: est.samples,
                applied,
            });
        }
        Ok(Err(ClockError::Unsupported)) => {
            state.note = Some(
                "the server has no GET /time: its clock is taken to agree with this host's \
                 (true on one host; across hosts latency is only as good as their clock sync)"
                    .into(),
            );
        }
        Ok(Err(e)) => {
            state.warning = Some(format!(
                "no clock offset to the server ({e}): its clock is taken to agree with this host's"
            ));
        }
        Err(_) => {
            state.warning = Some(format!(
                "no clock offset to the server within {CLOCK_TIMEOUT:?}: its clock is taken to \
                 agree with this host's"
            ));
        }
    }
    state
}

/// How long to wait for `spec.start_at` (an instant on the server's clock, which is this
/// host's raw clock plus `to_server_ns`); refuses one too far in the past or future.
fn start_delay(spec: &ScenarioSpec, to_server_ns: i64) -> Result<Option<Duration>, ScenarioError> {
    let Some(at) = spec.start_at else {
        return Ok(None);
    };
    let local = at.unix_ns().saturating_add_signed(-to_server_ns);
    let now = UNIX_EPOCH + Duration::from_nanos(unix_nanos());
    match (UNIX_EPOCH + Duration::from_nanos(local)).duration_since(now) {
        Ok(ahead) if ahead > START_AT_AHEAD => Err(ScenarioError::StartAt(format!(
            "the start time is {} ahead (at most {} allowed)",
            humantime::format_duration(Duration::from_secs(ahead.as_secs())),
            humantime::format_duration(START_AT_AHEAD)
        ))),
        Ok(ahead) => Ok(Some(ahead)),
        Err(e) if e.duration() > START_AT_LATE => Err(ScenarioError::StartAt(format!(
            "the start time passed {:.1} s ago: give every shard a start time far enough \
             ahead for all of them to get ready",
            e.duration().as_secs_f64()
        ))),
        Err(_) => Ok(Some(Duration::ZERO)),
    }
}

/// Set to anything but `0` or empty: plain WebSocket, SSE and long-poll clients read their
/// own sockets (through tungstenite, or the HTTP client), as TLS and HTTP/2 clients always do,
/// instead of lending them to the receive loops ([`ReceiveLoops`]). For measuring one
/// against the other.
pub const TASK_READS_ENV: &str = "FEEDBENCH_TASK_READS";

/// Whether the scenario's clients lend their sockets to receive loops: plain (`tls` false)
/// WebSocket, SSE or long-poll over HTTP/1.1, unless [`TASK_READS_ENV`] says otherwise.
fn lends_to_receive_loops(spec: &ScenarioSpec, tls: bool) -> bool {
    let task_reads = std::env::var_os(TASK_READS_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    lends_sockets(spec, tls, task_reads)
}

/// [`lends_to_receive_loops`] with the switch read.
fn lends_sockets(spec: &ScenarioSpec, tls: bool, task_reads: bool) -> bool {
    matches!(
        spec.transport,
        Transport::Ws | Transport::LongPoll | Transport::Sse
    ) && !tls
        && spec.stack.http == HttpVersion::Http1
        && !task_reads
}

fn spawn_groups(ctx: &Arc<ClientCtx>, spec: &ScenarioSpec) -> Vec<JoinHandle<GroupStats>> {
    let n = spec.n_clients;
    let local = spec.local_clients();
    local
        .clone()
        .step_by(GROUP_SIZE)
        .map(|first| {
            let ctx = ctx.clone();
            let ramp = spec.ramp;
            let end = (first + GROUP_SIZE).min(local.end);
            tokio::spawn(async move { run_group(&ctx, first..end, ramp, n).await })
        })
        .collect()
}

async fn run_group(
    ctx: &ClientCtx,
    clients: std::ops::Range<usize>,
    ramp: Duration,
    n_clients: usize,
) -> GroupStats {
    let stats = Mutex::new(GroupStats::new());
    let futures = clients.map(|index| {
        let stats = &stats;
        async move {
            let start_at = ctx.epoch + ramp.mul_f64(index as f64 / n_clients as f64);
            let mut st = ClientState::new(index, ctx, stats);
            tokio::select! {
                _ = ctx.stop.cancelled() => {}
                _ = tokio::time::sleep_until(start_at) => run_client(&mut st).await,
            }
            st.finish();
        }
    });
    futures_util::future::join_all(futures).await;
    stats.into_inner().unwrap_or_else(|p| p.into_inner())
}

async fn run_client(st: &mut ClientState<'_>) {
    match st.ctx().params.transport {
        Transport::ShortPoll => short_poll::run(st).await,
        Transport::LongPoll => long_poll::run(st).await,
        Transport::Ws => ws::run(st).await,
        Transport::Sse => sse::run(st).await,
    }
}

/// What the phases read the server with, and where they put what they read.
struct Phases<'a> {
    stats: &'a mut StatsClient,
    feed: &'a mut FeedReader,
    readings: &'a mut Readings,
}

/// Connect, warm-up, measure, drain. Returns when the drain is over.
async fn run_phases(ctx: &ClientCtx, spec: &ScenarioSpec, p: &mut Phases<'_>, progress: &Progress) {
    let (stats, readings) = (&mut *p.stats, &mut *p.readings);
    progress.phase("connect");
    let grace = match spec.start_at {
        Some(_) => ALIGNED_CONNECT_SLOT,
        None => CONNECT_GRACE,
    };
    let connect_deadline = Instant::now() + spec.ramp + grace;
    let n = spec.local_clients().len() as u64;
    while ctx.live.ready.load(Ordering::Relaxed) < n && Instant::now() < connect_deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    progress.phase("warm-up");
    // The aligned window opens at an instant of the server's clock; this host's is off by
    // `to_server_ns`.
    let aligned_open = spec
        .aligned_window_start()
        .map(|ns| ns.saturating_add_signed(-ctx.to_server_ns));
    match aligned_open {
        // Every shard opens its window at the same instant: wait until just before it, and
        // fix it then, ahead of its start.
        Some(open_ns) => {
            sleep_until_unix(open_ns.saturating_sub(ALIGNED_LEAD.as_nanos() as u64)).await;
            readings.window_fixed_late_ns = fix_window(&ctx.window, open_ns, spec.duration);
        }
        None => tokio::time::sleep(spec.warmup).await,
    }

    progress.phase("measure");
    readings.server_start = stats.fetch().await.ok();
    // Every event up to this head was published before the window opens.
    match tokio::time::timeout(FEED_HEAD_TIMEOUT, p.feed.head()).await {
        Ok(Ok(head)) => readings.feed_head_at_start = Some(head),
        Ok(Err(e)) => readings.feed_error = Some(e.to_string()),
        Err(_) => readings.feed_error = Some(format!("no answer within {FEED_HEAD_TIMEOUT:?}")),
    }
    let start_ns = match aligned_open {
        Some(open_ns) => open_ns,
        None => {
            let open_ns = unix_nanos() + WINDOW_FIXED_AHEAD.as_nanos() as u64;
            readings.window_fixed_late_ns = fix_window(&ctx.window, open_ns, spec.duration);
            open_ns
        }
    };
    sleep_until_unix(start_ns).await;
    readings.ready_at_start = ctx.live.ready.load(Ordering::Relaxed);
    readings.cpu_start = sysinfo::process_cpu_s();
    readings.counts_start = Some(sysinfo::own_counts());
    let start = Instant::now();
    let end_ns = start_ns + spec.duration.as_nanos() as u64;
    readings.net_start = ctx.link.as_ref().map(|l| l.open_window());
    readings.window_start = Some((start_ns, start));
    tokio::time::sleep_until(start + spec.duration).await;
    readings.net_end = ctx.link.as_ref().map(|l| l.close_window());
    readings.cpu_end = sysinfo::process_cpu_s();
    readings.counts_end = Some(sysinfo::own_counts());
    readings.window_end_ns = Some(end_ns);
    readings.server_end = stats.fetch().await.ok();

    progress.phase("drain");
    read_feed_window(ctx, spec, p.feed, readings).await;
    // The last event of the window as the feed has it; without the feed, the head right
    // after the window (it is at most that), and without /stats, the highest seq any
    // client has seen.
    let target_seq = match (&readings.feed_window, &readings.server_end) {
        (Some(f), _) => f.range.map_or(0, |r| r.1),
        (None, Some(s)) => s.head_seq,
        (None, None) => ctx
            .live
            .clients
            .iter()
            .map(|c| c.highest.load(Ordering::Relaxed))
            .max()
            .unwrap_or(0),
    };
    let ready = ctx.live.ready.load(Ordering::Relaxed) as usize;
    let drain_deadline = Instant::now() + spec.drain_limit();
    loop {
        let caught_up = ctx.live.caught_up(target_seq);
        if caught_up >= ready {
            break;
        }
        if Instant::now() >= drain_deadline {
            readings.drain_missing = Some((ready - caught_up, target_seq));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Fixes `window` to open at `open_ns` (this host's clock) for `duration`, before it opens:
/// an event stamped in the window may reach a client (a receive loop's thread, or a task on
/// the other worker) at once, and a client that meets it while the window is still unset
/// does not count it, so the event would read as missed. Returns how late the window was
/// fixed if it had already opened.
fn fix_window(window: &Window, open_ns: u64, duration: Duration) -> Option<u64> {
    window.set(open_ns, open_ns + duration.as_nanos() as u64);
    let now = unix_nanos();
    (now >= open_ns).then(|| now - open_ns)
}

/// Sleeps until the wall clock reads `unix_ns` (at once if it already does).
async fn sleep_until_unix(unix_ns: u64) {
    let now = unix_nanos();
    if unix_ns > now {
        tokio::time::sleep(Duration::from_nanos(unix_ns - now)).await;
    }
}

/// How long the feed may take to publish its first event stamped after the window: three
/// event intervals, at least 2 s, at most 30 s.
fn feed_edge_wait(rate_hz: f64) -> Duration {
    if rate_hz > 0.0 {
        Duration::from_secs_f64((3.0 / rate_hz).clamp(2.0, 30.0))
    } else {
        Duration::from_secs(2)
    }
}

/// Reads which events the window holds from the server's feed (see `feed.rs`).
async fn read_feed_window(
    ctx: &ClientCtx,
    spec: &ScenarioSpec,
    feed: &mut FeedReader,
    readings: &mut Readings,
) {
    let Some(head) = readings.feed_head_at_start else {
        return;
    };
    let deadline = Instant::now() + feed_edge_wait(spec.rate_hz);
    // Each page is bounded by the reader's exchange timeout; the whole read by the pages'
    // count, and past the deadline by this outer bound.
    let bound = feed_edge_wait(spec.rate_hz) + Duration::from_secs(30);
    let read = feed.window_seqs(&ctx.window, ctx.to_server_ns, head, spec.rate_hz, deadline);
    match tokio::time::timeout(bound, read).await {
        Ok(Ok(w)) => readings.feed_window = Some(w),
        Ok(Err(e)) => readings.feed_error = Some(e.to_string()),
        Err(_) => readings.feed_error = Some(format!("no end within {bound:?}")),
    }
}

/// Closes the window at the moment of interruption and takes the end readings.
async fn finish_cut_short(
    ctx: &ClientCtx,
    stats: &mut StatsClient,
    readings: &mut Readings,
    status: Status,
) {
    if readings.window_start.is_some() && readings.window_end_ns.is_none() {
        let now = unix_nanos();
        ctx.window.close_at(now);
        readings.window_end_ns = Some(now);
        readings.cpu_end = sysinfo::process_cpu_s();
        readings.counts_end = Some(sysinfo::own_counts());
        if status != Status::Failed {
            readings.server_end = tokio::time::timeout(Duration::from_secs(1), stats.fetch())
                .await
                .ok()
                .and_then(Result::ok);
        }
    }
}

/// Samples `/stats` every half second (recording samples during the window) and fails the
/// run when the server stops answering. Never returns unless the server is gone.
async fn monitor_server(
    monitor: &mut StatsClient,
    ctx: &ClientCtx,
    has_stats: bool,
    samples: &mut Vec<(u64, ServerStats)>,
    signals: &RunSignals,
) {
    if !has_stats {
        return std::future::pending().await;
    }
    let mut failures = 0u32;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tick.tick().await;
        match monitor.fetch().await {
            Ok(s) => {
                failures = 0;
                let now = unix_nanos();
                if ctx.window.contains(now) {
                    samples.push((now, s));
                }
            }
            Err(e) => {
                failures += 1;
                if failures >= STATS_FAILURES_FATAL {
                    signals.fail(format!("the server stopped answering /stats: {e}"));
                    return;
                }
            }
        }
    }
}

/// Waits for the groups to end; returns their merged stats and how many did not end.
async fn join_groups(groups: Vec<JoinHandle<GroupStats>>, limit: Duration) -> (GroupStats, usize) {
    let mut merged = GroupStats::new();
    let mut lost = 0;
    let deadline = Instant::now() + limit;
    for mut handle in groups {
        match tokio::time::timeout_at(deadline, &mut handle).await {
            Ok(Ok(g)) => merged.merge(g),
            Ok(Err(_)) => lost += 1,
            Err(_) => {
                handle.abort();
                lost += 1;
            }
        }
    }
    (merged, lost)
}

/// Polls `/stats` until the server's counters for the transport's class (since
/// `before`) equal the clients' totals, or stop changing; returns the last snapshot.
async fn settle_server_bytes(
    stats: &mut StatsClient,
    transport: Transport,
    before: Option<&ServerStats>,
    group: &GroupStats,
) -> Option<ServerStats> {
    let before = before?;
    if !before.bytes.contains_key(transport.stats_class()) {
        // Nothing to wait for: the server counts no bytes for this class.
        return stats.fetch().await.ok();
    }
    let before = before.class_bytes(transport.stats_class());
    let want = (group.bytes.total_up(), group.bytes.total_down());
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last: Option<ServerStats> = None;
    let mut unchanged = 0;
    loop {
        let now = stats.fetch().await.ok()?;
        let b = now.class_bytes(transport.stats_class());
        let got = (
            b.bytes_in - before.bytes_in.min(b.bytes_in),
            b.bytes_out - before.bytes_out.min(b.bytes_out),
        );
        if got == want {
            return Some(now);
        }
        let same = last
            .as_ref()
            .is_some_and(|l| l.class_bytes(transport.stats_class()) == b);
        unchanged = if same { unchanged + 1 } else { 0 };
        // Connections land in the counters when the server finishes them; a second of no
        // change with everything closed means they have all landed.
        if unchanged >= 10 || Instant::now() >= deadline {
            return Some(now);
        }
        last = Some(now);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The stack block: what TLS agreed on, the handshakes, the window's bytes by layer.
fn stack_figures(spec: &ScenarioSpec, g: &GroupStats) -> StackFigures {
    let negotiated = g.negotiated.as_ref();
    StackFigures {
        tls_version: negotiated.map(|n| n.tls_version.clone()),
        cipher_suite: negotiated.map(|n| n.cipher_suite.clone()),
        alpn: negotiated.and_then(|n| n.alpn.clone()),
        http: spec.stack.http.as_str().into(),
        handshakes: g.bytes.window_handshakes(),
        resumed: g.bytes.window_resumed(),
        handshakes_total: g.bytes.handshakes_total(),
        split: g
            .bytes
            .split(g.payload_bytes, spec.stack.http == HttpVersion::Http2),
        run_tls: spec.stack.tls.then(|| g.bytes.run_tls()),
    }
}

fn build_result(
    spec: &ScenarioSpec,
    repeat: u32,
    started_at: String,
    ctx: &ClientCtx,
    readings: &Readings,
    g: &GroupStats,
    samples: Vec<(u64, ServerStats)>,
) -> ScenarioResult {
    let (range, source) = window_seq_range(readings, g);
    let t = totals(range, spec.local_clients().len() as u64, &g.seqs);
    let measured_s = match (readings.window_start, readings.window_end_ns) {
        (Some((start, _)), Some(end)) => end.saturating_sub(start) as f64 / 1e9,
        _ => 0.0,
    };
    let up = g.bytes.up[1];
    let down = g.bytes.down[1];
    let per = |x: u64| {
        if g.window_events > 0 {
            x as f64 / g.window_events as f64
        } else {
            0.0
        }
    };
    let overhead_ratio = if g.payload_bytes > 0 {
        (up + down) as f64 / g.payload_bytes as f64 - 1.0
    } else {
        0.0
    };
    let polling = matches!(spec.transport, Transport::ShortPoll | Transport::LongPoll);
    let cores = sysinfo::allowed_cpus().len().max(1) as u64;
    let cpu_s = (readings.cpu_end - readings.cpu_start).max(0.0);
    let cpu_util = if measured_s > 0.0 {
        cpu_s / (measured_s * cores as f64)
    } else {
        0.0
    };
    let mut result = ScenarioResult {
        name: spec.name(),
        transport: spec.transport,
        repeat,
        status: Status::Complete,
        status_message: None,
        started_at,
        params: spec.params(),
        measured_s,
        latency_us: Summary::of(&g.latency),
        request_latency_us: polling.then(|| Summary::of(&g.request_latency)),
        events: Events {
            published: t.published,
            expected: t.expected,
            delivered: t.delivered,
            missed: t.missed,
            duplicates: g.duplicates,
            out_of_order: g.out_of_order,
            server_missed: g.server_missed,
            first_seq: range.map(|r| r.0),
            last_seq: range.map(|r| r.1),
            window_source: source.into(),
            unreceived: unreceived(range, &g.seqs),
            unreceived_seqs: unreceived_seqs(range, &g.seqs, MAX_UNRECEIVED_SEQS),
        },
        bytes: ByteFigures {
            up,
            down,
            setup_up: g.bytes.setup_up,
            setup_down: g.bytes.setup_down,
            payload: g.payload_bytes,
            events: g.window_events,
            per_event: per(up + down),
            per_event_up: per(up),
            per_event_down: per(down),
            overhead_ratio,
            total_up: g.bytes.total_up(),
            total_down: g.bytes.total_down(),
        },
        requests: Requests {
            sent: g.requests_sent,
            empty: g.empty,
            per_event: per(g.requests_sent),
            missed_ticks: g.missed_ticks,
            total: g.requests_total,
            schedule_lag_p99_us: if g.schedule_lag.is_empty() {
                0
            } else {
                g.schedule_lag.value_at_quantile(0.99)
            },
            schedule_lag_max_us: g.schedule_lag.max(),
        },
        connections: Connections {
            target: spec.local_clients().len() as u64,
            opened: g.opened,
            peak_open: ctx.live.peak_open.load(Ordering::Relaxed),
            failed: g.failed,
            connect_us: Summary::of(&g.connect),
        },
        server: None,
        loadgen: Loadgen {
            cpu_s,
            cpu_util,
            cores,
            counts: match (&readings.counts_start, &readings.counts_end) {
                (Some(a), Some(b)) => ProcessCounts::delta(a, b),
                _ => None,
            },
        },
        errors: g.errors.clone(),
        warnings: Vec::new(),
        notes: Vec::new(),
        shard: spec.shard.map(|shard| {
            let block = shard.clients(spec.n_clients);
            ShardInfo {
                index: shard.index,
                count: shard.count,
                first_client: block.start as u64,
                clients: block.len() as u64,
            }
        }),
        window: match (readings.window_start, readings.window_end_ns) {
            (Some((start, _)), Some(end)) => Some(WindowTimes {
                start_ns: start.saturating_add_signed(ctx.to_server_ns),
                end_ns: end.saturating_add_signed(ctx.to_server_ns),
            }),
            _ => None,
        },
        clock: None,
        net: None,
        stack: Some(stack_figures(spec, g)),
    };
    result.warnings = warnings(spec, ctx, readings, g, &result);
    if let Some((start_ns, _)) = readings.window_start {
        result.server = Some(ServerFigures {
            cpu_s: 0.0,
            rss_start_bytes: 0,
            rss_end_bytes: 0,
            rss_peak_bytes: 0,
            rss_before_connect_bytes: 0,
            rss_per_connection_bytes: None,
            bytes_in: 0,
            bytes_out: 0,
            class: spec.transport.stats_class().into(),
            slow_consumer_closed: 0,
            samples: server_samples(start_ns, readings.server_start.as_ref(), &samples),
            requests_by_path: None,
            counts: None,
        });
    }
    result
}

/// The window's seq range and where it came from: the feed when it could be read, else
/// the union of what the clients saw. A feed read that could not confirm an edge (the ring
/// had lost the window's first events, or nothing was published past its end in time) is
/// widened by what the clients saw, so no event a client received is left out.
fn window_seq_range(readings: &Readings, g: &GroupStats) -> (Option<(u64, u64)>, &'static str) {
    let clients = window_range(&g.seqs);
    match &readings.feed_window {
        Some(f) if f.start_confirmed && f.end_confirmed => (f.range, WINDOW_FROM_FEED),
        Some(f) => {
            let widened = match (f.range, clients) {
                (Some(a), Some(b)) => Some((a.0.min(b.0), a.1.max(b.1))),
                (a, b) => a.or(b),
            };
            (widened, WINDOW_FROM_FEED)
        }
        None => (clients, WINDOW_FROM_CLIENTS),
    }
}

fn server_samples(
    start_ns: u64,
    first: Option<&ServerStats>,
    samples: &[(u64, ServerStats)],
) -> Vec<ServerSample> {
    let Some(first) = first else {
        return Vec::new();
    };
    samples
        .iter()
        .map(|(t, s)| ServerSample {
            t_s: t.saturating_sub(start_ns) as f64 / 1e9,
            cpu_s: (s.cpu_s() - first.cpu_s()).max(0.0),
            rss_bytes: s.process.rss_bytes,
            open_connections: s.open_total(),
        })
        .collect()
}

fn warnings(
    spec: &ScenarioSpec,
    ctx: &ClientCtx,
    readings: &Readings,
    g: &GroupStats,
    r: &ScenarioResult,
) -> Vec<String> {
    let mut w = Vec::new();
    let bound = "figures are load-generator bound and understate the server";
    if r.loadgen.cpu_util > LOADGEN_BOUND_UTIL {
        w.push(format!(
            "load generator used {:.0}% of its {} cores: {bound}",
            r.loadgen.cpu_util * 100.0,
            r.loadgen.cores
        ));
    }
    if spec.transport == Transport::ShortPoll {
        let limit_us = (spec.poll_interval.as_micros() as u64 / 10).max(10_000);
        if r.requests.schedule_lag_p99_us > limit_us {
            w.push(format!(
                "clients fell behind their poll schedule (p99 timer lateness {} µs): {bound}",
                r.requests.schedule_lag_p99_us
            ));
        }
    }
    let ready = ctx.live.ready.load(Ordering::Relaxed);
    let n_local = spec.local_clients().len() as u64;
    if ready < n_local {
        w.push(format!("only {ready} of {n_local} clients ever connected"));
    }
    if readings.window_start.is_some() {
        w.extend(late_clients_warning(
            ready,
            readings.ready_at_start,
            n_local,
        ));
    }
    if let Some(late) = readings.window_fixed_late_ns {
        w.push(format!(
            "the measure window was fixed {:.1} ms after it opened: events of its first \
             moments that clients received before then count as missed",
            late as f64 / 1e6
        ));
    }
    if let Some((missing, seq)) = readings.drain_missing {
        w.push(format!(
            "drain timed out after {:?}: {missing} clients had not received seq {seq}",
            spec.drain_limit()
        ));
    }
    if readings.server_start.is_none() {
        w.push("server /stats unavailable: no server CPU, memory or byte figures".into());
    }
    feed_warnings(readings, &mut w);
    if g.window_events == 0 && r.measured_s > 0.0 {
        w.push("no events were received during the measure window".into());
    }
    w
}

/// The warning for clients that first connected after the measure window opened (`ready`
/// clients at the end, `ready_at_start` when it opened): each subscribed from the head it
/// found, so the window's events before that count as missed for it.
fn late_clients_warning(ready: u64, ready_at_start: u64, n_local: u64) -> Option<String> {
    let late = ready.saturating_sub(ready_at_start);
    (late > 0).then(|| {
        format!(
            "{late} of {n_local} clients connected only after the measure window opened: the \
             window's events published before each subscribed count as missed for it"
        )
    })
}

/// The warning that the scenario's delivery latency is only known to within the clock
/// estimate's uncertainty, when that exceeds a tenth of its p50. Never for a loopback target
/// or the host side of this process's own emulated link: one host, one clock. It needs
/// `r.clock`, so it runs once that is set, after [`warnings`]; the rule is the results
/// crate's, the one the report applies to each repeat group.
fn clock_warning(target: &Target, r: &ScenarioResult) -> Option<String> {
    let on_this_host = is_loopback_target(&target.url())
        || target
            .net
            .as_ref()
            .is_some_and(|n| n.server_addr(target.addr.port()) == target.addr);
    r.clock_warning(on_this_host)
}

/// What the feed read could not establish, if anything.
fn feed_warnings(readings: &Readings, w: &mut Vec<String>) {
    if readings.window_start.is_none() || readings.window_end_ns.is_none() {
        return;
    }
    match (&readings.feed_window, &readings.feed_error) {
        (Some(f), _) => {
            if !f.start_confirmed {
                w.push(format!(
                    "the feed no longer held the events just before the window ({} had left \
                     the server's ring): its first events are taken from what the clients saw",
                    f.ring_missed
                ));
            }
            if !f.end_confirmed {
                w.push(
                    "the feed published no event past the window's end in time: the window's \
                     last events are those published by then"
                        .into(),
                );
            }
        }
        (None, Some(e)) => w.push(format!(
            "could not read the window's events from the feed ({e}): the window is what the \
             clients saw, so an event no client received is not counted"
        )),
        (None, None) => {}
    }
}

/// Most connections a server may have accepted before a scenario and still count as
/// fresh for the memory-per-connection figure: the load generator's own `/stats` and
/// control connections.
const FRESH_SERVER_ACCEPTED: u64 = 16;

/// Fewest connected clients for the memory-per-connection figure.
pub const MEMORY_MIN_CLIENTS: u64 = 1_000;

fn add_server_figures(
    result: &mut ScenarioResult,
    spec: &ScenarioSpec,
    readings: &Readings,
    before: Option<&ServerStats>,
    after: Option<&ServerStats>,
    g: &GroupStats,
) {
    let (Some(start), Some(fig)) = (readings.server_start.as_ref(), result.server.as_mut()) else {
        result.server = None;
        return;
    };
    let transport = spec.transport;
    let end = readings.server_end.as_ref().unwrap_or(start);
    fig.cpu_s = (end.cpu_s() - start.cpu_s()).max(0.0);
    // Only with a real end sample: `end` falls back to `start`, which would read as zero.
    if let Some(end) = readings.server_end.as_ref() {
        fig.counts = ProcessCounts::delta(&start.counts(), &end.counts());
    }
    // The window's requests by code path; they include the load generator's own /stats
    // samples (two a second, through hyper on feedbench's server).
    if let (Some(a), Some(b)) = (start.requests_by_path, end.requests_by_path) {
        fig.requests_by_path = Some(crate::results::RequestsByPath {
            direct: b.direct.saturating_sub(a.direct),
            hyper: b.hyper.saturating_sub(a.hyper),
        });
    }
    fig.rss_start_bytes = start.process.rss_bytes;
    fig.rss_end_bytes = end.process.rss_bytes;
    fig.rss_peak_bytes = fig
        .samples
        .iter()
        .map(|s| s.rss_bytes)
        .chain([start.process.rss_bytes, end.process.rss_bytes])
        .max()
        .unwrap_or(0);
    // A server whose /stats has no `process.rss_bytes` reads as 0: no sample, not 0 bytes.
    let rss = |s: &ServerStats| Some(s.process.rss_bytes).filter(|&b| b > 0);
    let rss_before = before.and_then(rss);
    fig.rss_before_connect_bytes = rss_before.unwrap_or(0);
    // Memory that earlier clients freed stays in RSS and is reused by this scenario's, so
    // growth over a server that has served others understates (measured: 3.6 KiB per ws
    // connection on a fresh server, 0.7 KiB right after an sse run on the same one). The
    // figure is only taken from a server that has served little more than this tool's
    // own /stats and control requests.
    let served_before = before.map_or(0, |b| b.connections.accepted);
    if spec.shard.is_some() {
        result.notes.push(
            "a shard: the server's byte counters and memory cover every shard's clients, so \
             they are neither compared with nor divided by this shard's"
                .into(),
        );
    } else if served_before <= FRESH_SERVER_ACCEPTED {
        // Below MEMORY_MIN_CLIENTS the server's fixed growth (runtime slabs, allocator
        // caches, the ring filling up) is not small next to the clients' share: at 50
        // clients the quick suite read 2.8-5.8 KiB for what is 1.9-3.4 KiB at 1,000+.
        if readings.ready_at_start >= MEMORY_MIN_CLIENTS {
            fig.rss_per_connection_bytes =
                rss_per_connection_bytes(rss_before, rss(start), readings.ready_at_start);
        }
    } else {
        result.warnings.push(format!(
            "no server memory per connection: the server had already served {served_before} \
             connections, whose freed memory this scenario reuses (a fresh server per \
             scenario, the suite default `fresh_server = true`, measures it)"
        ));
    }
    let class = transport.stats_class();
    let closed = |s: &ServerStats| {
        s.connections
            .slow_consumer_closed
            .get(class)
            .copied()
            .unwrap_or(0)
    };
    let counts_bytes = |s: &ServerStats| s.bytes.contains_key(class);
    if let (Some(b), Some(a)) = (before, after) {
        fig.slow_consumer_closed = closed(a).saturating_sub(closed(b));
    }
    if spec.shard.is_some() {
        // Said in the note above: the server counts every shard's bytes.
    } else if before.is_some_and(|b| !counts_bytes(b)) {
        result.notes.push(format!(
            "the server reports no byte counters for {class} in /stats: the clients' byte \
             counts are not cross-checked against the server's"
        ));
    } else if let (Some(b), Some(a)) = (before, after) {
        let (bb, ab) = (b.class_bytes(class), a.class_bytes(class));
        fig.bytes_in = ab.bytes_in.saturating_sub(bb.bytes_in);
        fig.bytes_out = ab.bytes_out.saturating_sub(bb.bytes_out);
        let (up, down) = (g.bytes.total_up(), g.bytes.total_down());
        if (fig.bytes_in, fig.bytes_out) != (up, down) {
            result.warnings.push(format!(
                "server byte counters ({class}) disagree with the clients: server read {} / wrote {}, clients wrote {up} / read {down}",
                fig.bytes_in, fig.bytes_out
            ));
        }
    } else {
        result
            .warnings
            .push("server byte counters unavailable after the run: not compared".into());
    }
    if fig.slow_consumer_closed > 0 {
        result.warnings.push(format!(
            "the server closed {} slow consumers",
            fig.slow_consumer_closed
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_that_first_connect_after_the_window_opened_are_flagged() {
        assert_eq!(late_clients_warning(40, 40, 40), None);
        // Never connected: the other warning's.
        assert_eq!(late_clients_warning(38, 38, 40), None);
        let w = late_clients_warning(40, 37, 40).unwrap();
        assert!(w.starts_with("3 of 40 clients connected only after"), "{w}");
    }

    #[test]
    fn the_window_is_fixed_before_it_opens_or_flagged() {
        let window = Window::new();
        let open = unix_nanos() + 5_000_000_000;
        assert_eq!(fix_window(&window, open, Duration::from_secs(2)), None);
        // An event stamped at the start, met at once, is the window's.
        assert!(window.contains(open));
        assert!(!window.contains(open - 1));
        assert!(window.contains(open + 1_999_999_999));
        assert!(!window.contains(open + 2_000_000_000));
        // Fixed after its start: how late, for the warning.
        let open = unix_nanos() - 3_000_000;
        let late = fix_window(&window, open, Duration::from_secs(1)).unwrap();
        assert!((3_000_000..1_000_000_000).contains(&late), "{late}");
    }

    fn spec(transport: Transport) -> ScenarioSpec {
        ScenarioSpec {
            transport,
            n_clients: 100,
            rate_hz: 10.0,
            payload_bytes: 64,
            poll_interval: Duration::from_secs(1),
            duration: Duration::from_secs(10),
            warmup: Duration::from_secs(2),
            ramp: Duration::ZERO,
            keepalive: true,
            seed: 1,
            control: true,
            shard: None,
            start_at: None,
            net: None,
            stack: StackSpec::default(),
        }
    }

    #[test]
    fn only_plain_push_and_long_poll_clients_over_http1_lend_their_sockets() {
        let ws = spec(Transport::Ws);
        assert!(lends_sockets(&ws, false, false));
        // TLS, HTTP/2 and the switch keep tasks reading.
        assert!(!lends_sockets(&ws, true, false));
        assert!(!lends_sockets(&ws, false, true));
        let mut h2 = spec(Transport::Ws);
        h2.stack.http = HttpVersion::Http2;
        assert!(!lends_sockets(&h2, false, false));
        assert!(lends_sockets(&spec(Transport::LongPoll), false, false));
        assert!(lends_sockets(&spec(Transport::Sse), false, false));
        assert!(!lends_sockets(&spec(Transport::Sse), true, false));
        assert!(!lends_sockets(&spec(Transport::ShortPoll), false, false));
    }

    fn result_with_clock(p50_us: u64, uncertainty_ns: u64) -> ScenarioResult {
        let text = include_str!("../../results/tests/data/scenario-v1.json");
        let mut r: ScenarioResult = serde_json::from_str(text).unwrap();
        r.latency_us.p50 = p50_us;
        r.clock = Some(ClockFigures {
            offset_ns: -4_000_000,
            uncertainty_ns,
            min_rtt_ns: 2 * uncertainty_ns,
            samples: 16,
            applied: true,
        });
        r
    }

    #[test]
    fn clock_warning_above_a_tenth_of_p50_and_only_across_hosts() {
        // IP literals: parsing resolves nothing over the network.
        let remote = Target::parse("http://10.0.0.5:8080").unwrap();
        let local = Target::parse("http://127.0.0.1:8080").unwrap();
        let small = result_with_clock(2_000, 30_000);
        assert_eq!(clock_warning(&remote, &small), None, "30 µs of 2 ms");
        let big = result_with_clock(2_000, 500_000);
        let w = clock_warning(&remote, &big).expect("500 µs of 2 ms");
        assert!(
            w.starts_with("delivery latency is only known to ± 500 µs (25% of its p50 of 2 ms)"),
            "{w}"
        );
        assert_eq!(clock_warning(&local, &big), None, "one host, one clock");
        let mut none = big;
        none.clock = None;
        assert_eq!(clock_warning(&remote, &none), None, "no GET /time");
    }

    #[test]
    fn names_scenarios() {
        assert_eq!(spec(Transport::Ws).name(), "ws-c100-r10-s64");
        assert_eq!(
            spec(Transport::ShortPoll).name(),
            "short-poll-c100-r10-s64-i1000"
        );
        let mut s = spec(Transport::ShortPoll);
        s.keepalive = false;
        s.rate_hz = 0.5;
        assert_eq!(s.name(), "short-poll-c100-r0.5-s64-i1000-noka");
        assert_eq!(spec(Transport::Sse).params().poll_interval_ms, None);
        assert_eq!(
            spec(Transport::ShortPoll).params().poll_interval_ms,
            Some(1000)
        );
        assert_eq!("long-poll".parse::<Transport>(), Ok(Transport::LongPoll));
        assert!("websocket".parse::<Transport>().is_err());
    }
}
