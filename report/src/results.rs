//! Serde types for the results JSON, schema 1 (`bench-results/schema.json`).
//!
//! This is the report crate's only contract with the load generator: it never links
//! `feedbench-loadgen`. Every type ignores fields it does not know, so a newer load
//! generator that adds fields still produces readable files; fields the schema allows to be
//! null are `Option`s, and collections the report can live without default to empty.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::error::ReportError;

/// The schema version this crate reads.
pub const SCHEMA_VERSION: u64 = 1;

/// One results file: a suite run, or a single `feedbench load` scenario.
#[derive(Debug, Clone, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA_VERSION`]; checked by [`Results::from_json`].
    pub schema_version: u64,
    /// Whether the run finished, was interrupted (Ctrl-C) or failed.
    pub status: RunStatus,
    /// Why the run is not `complete`, when it is not.
    #[serde(default)]
    pub status_message: Option<String>,
    /// The binary that produced the file.
    pub tool: Tool,
    /// The machine the load generator ran on.
    pub host: Host,
    /// Suite name (`quick`, `standard`, a path) or `load` for a single scenario.
    pub suite: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC.
    pub finished_at: String,
    /// Base URL of the server under test.
    pub target: String,
    /// Whether `feedbench run` started its own server on this machine.
    pub embedded_server: bool,
    /// Every measured scenario, repeats included (they share `name`).
    pub scenarios: Vec<Scenario>,
}

/// Status of a run or of one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Ran to the end.
    Complete,
    /// Stopped by Ctrl-C; figures cover what was measured.
    Interrupted,
    /// Ended by an error, such as the server dying.
    Failed,
}

impl RunStatus {
    /// The spelling used in the JSON and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Complete => "complete",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Failed => "failed",
        }
    }
}

/// The binary that wrote the file.
#[derive(Debug, Clone, Deserialize)]
pub struct Tool {
    /// Always `feedbench`.
    pub name: String,
    /// Crate version.
    pub version: String,
    /// Git commit the binary was built from, when known.
    #[serde(default)]
    pub git_sha: Option<String>,
}

/// The load generator's machine.
#[derive(Debug, Clone, Deserialize)]
pub struct Host {
    /// Operating system name.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model string.
    pub cpu_model: String,
    /// Logical cores.
    pub cores: u64,
    /// Physical memory.
    pub memory_bytes: u64,
}

/// A transport, spelled for users as in the CLI and the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum Transport {
    /// `GET /poll` on a fixed schedule.
    #[serde(rename = "short-poll")]
    ShortPoll,
    /// `GET /longpoll`, re-sent as soon as each response arrives.
    #[serde(rename = "long-poll")]
    LongPoll,
    /// One WebSocket per client.
    #[serde(rename = "ws")]
    Ws,
    /// One `GET /sse` stream per client.
    #[serde(rename = "sse")]
    Sse,
}

impl Transport {
    /// All transports in the order reports list them.
    pub const ALL: [Transport; 4] = [
        Transport::ShortPoll,
        Transport::LongPoll,
        Transport::Ws,
        Transport::Sse,
    ];

    /// The user spelling: `short-poll`, `long-poll`, `ws`, `sse`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::ShortPoll => "short-poll",
            Transport::LongPoll => "long-poll",
            Transport::Ws => "ws",
            Transport::Sse => "sse",
        }
    }

    /// Whether clients send requests to receive events (short-poll and long-poll).
    pub fn is_polling(self) -> bool {
        matches!(self, Transport::ShortPoll | Transport::LongPoll)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One measured scenario (one repeat of one parameter set).
#[derive(Debug, Clone, Deserialize)]
pub struct Scenario {
    /// Group key without the repeat, e.g. `ws-c100-r10-s64`; repeats share it.
    pub name: String,
    /// Which transport the clients used.
    pub transport: Transport,
    /// Zero-based repeat index within the run.
    pub repeat: u64,
    /// Whether this scenario ran to the end.
    pub status: RunStatus,
    /// The scenario's parameters.
    pub params: Params,
    /// The measure window as it actually lasted, when the file says (not in schema 1's
    /// required set); bandwidth divides by it rather than the nominal `duration_s`.
    #[serde(default)]
    pub measured_s: Option<f64>,
    /// Delivery latency (publish `ts` to receive), µs.
    pub latency_us: LatencySummary,
    /// Request latency for the polling transports, µs; null for push transports.
    #[serde(default)]
    pub request_latency_us: Option<LatencySummary>,
    /// Event accounting.
    pub events: Events,
    /// Bytes on the wire, counted at the client sockets.
    pub bytes: Bytes,
    /// Requests sent by polling clients.
    pub requests: Requests,
    /// Connection accounting.
    pub connections: Connections,
    /// The server's own figures from `/stats`; null when they could not be read.
    #[serde(default)]
    pub server: Option<ServerStats>,
    /// The load generator's own CPU use.
    pub loadgen: Loadgen,
    /// Failed operations by kind.
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    /// Problems with this scenario's figures, in plain sentences.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// A scenario's parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Params {
    /// Concurrent clients.
    pub clients: u64,
    /// Events published per second.
    pub rate_hz: f64,
    /// Payload size of each event.
    pub payload_bytes: u64,
    /// Short-poll interval; null for long-poll and the push transports.
    #[serde(default)]
    pub poll_interval_ms: Option<u64>,
    /// Measure window.
    pub duration_s: f64,
    /// Warm-up before the measure window.
    pub warmup_s: f64,
    /// Whether polling clients reuse their connection.
    pub keepalive: bool,
}

/// A latency histogram's summary and the histogram itself.
#[derive(Debug, Clone, Deserialize)]
pub struct LatencySummary {
    /// Recorded values.
    pub count: u64,
    /// Smallest value, µs.
    pub min: f64,
    /// Mean, µs.
    pub mean: f64,
    /// Median, µs.
    pub p50: f64,
    /// 90th percentile, µs.
    pub p90: f64,
    /// 99th percentile, µs.
    pub p99: f64,
    /// 99.9th percentile, µs.
    pub p999: f64,
    /// Largest value, µs.
    pub max: f64,
    /// HdrHistogram V2 + deflate, standard base64; decode with [`crate::hdr::decode`].
    pub hdr: String,
}

/// Event accounting across all clients.
#[derive(Debug, Clone, Deserialize)]
pub struct Events {
    /// Events the server published in the measure window.
    pub published: u64,
    /// Deliveries expected (published × clients connected).
    pub expected: u64,
    /// Deliveries that arrived.
    pub delivered: u64,
    /// Deliveries that never arrived (gaps and the server's `missed`).
    pub missed: u64,
    /// Events received more than once.
    pub duplicates: u64,
    /// Events received after a later one.
    pub out_of_order: u64,
}

/// Bytes counted at the client sockets.
#[derive(Debug, Clone, Deserialize)]
pub struct Bytes {
    /// Steady-state bytes sent during the measure window.
    pub up: u64,
    /// Steady-state bytes received during the measure window.
    pub down: u64,
    /// Setup bytes sent (connect, handshakes, first poll).
    pub setup_up: u64,
    /// Setup bytes received.
    pub setup_down: u64,
    /// Event JSON delivered.
    pub payload: u64,
    /// (up + down) / delivered.
    pub per_event: f64,
    /// up / delivered.
    pub per_event_up: f64,
    /// down / delivered.
    pub per_event_down: f64,
    /// (wire − payload) / payload.
    pub overhead_ratio: f64,
}

/// Requests sent by polling clients (zero for push transports).
#[derive(Debug, Clone, Deserialize)]
pub struct Requests {
    /// Requests sent in the measure window.
    pub sent: u64,
    /// Responses that carried no event.
    pub empty: u64,
    /// sent / delivered.
    pub per_event: f64,
    /// Short-poll ticks skipped because a response was late.
    pub missed_ticks: u64,
}

/// Connection accounting.
#[derive(Debug, Clone, Deserialize)]
pub struct Connections {
    /// Connections the scenario wanted.
    pub target: u64,
    /// Connections opened.
    pub opened: u64,
    /// Most connections open at once.
    pub peak_open: u64,
    /// Connections that failed.
    pub failed: u64,
}

/// The server's own figures.
#[derive(Debug, Clone, Deserialize)]
pub struct ServerStats {
    /// CPU seconds used in the measure window.
    pub cpu_s: f64,
    /// RSS at the start of the window.
    pub rss_start_bytes: u64,
    /// RSS at the end of the window.
    pub rss_end_bytes: u64,
    /// Highest RSS sampled.
    pub rss_peak_bytes: u64,
    /// RSS sampled once just before the clients connected, bytes; 0 when that sample
    /// failed, `None` in files written before the field existed.
    #[serde(default)]
    pub rss_before_connect_bytes: Option<u64>,
    /// Server memory per connected client, bytes: RSS growth from before the clients
    /// connected to the start of the window, divided by the clients connected then. May be
    /// negative (RSS shrank in between); `None` when unknown or in older files.
    #[serde(default)]
    pub rss_per_connection_bytes: Option<f64>,
    /// Bytes the server read.
    pub bytes_in: u64,
    /// Bytes the server wrote.
    pub bytes_out: u64,
}

/// The load generator's own CPU use.
#[derive(Debug, Clone, Deserialize)]
pub struct Loadgen {
    /// CPU seconds.
    pub cpu_s: f64,
    /// Fraction of its cores, 0..1.
    pub cpu_util: f64,
}

impl Results {
    /// Parses a results document and checks its schema version.
    pub fn from_json(text: &str) -> Result<Results, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Reads and parses a results file.
    pub fn load(path: &Path) -> Result<Results, ReportError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        // Check the version first: a future schema may not parse as this one, and "schema 2
        // is not supported" says more than a missing-field error.
        let version = serde_json::from_str::<VersionProbe>(&text)
            .map_err(|source| ReportError::Parse {
                path: path.to_path_buf(),
                source,
            })?
            .schema_version;
        if version != SCHEMA_VERSION {
            return Err(ReportError::SchemaVersion {
                path: path.to_path_buf(),
                found: version,
            });
        }
        Results::from_json(&text).map_err(|source| ReportError::Parse {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Just enough of a results file to read its schema version.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u64,
}

impl Scenario {
    /// Payload bytes per delivered event, or `None` when nothing was delivered.
    pub fn payload_per_event(&self) -> Option<f64> {
        (self.events.delivered > 0)
            .then(|| self.bytes.payload as f64 / self.events.delivered as f64)
    }

    /// Setup bytes (both directions) per opened connection.
    pub fn setup_bytes_per_connection(&self) -> Option<f64> {
        let total = self.bytes.setup_up + self.bytes.setup_down;
        (self.connections.opened > 0).then(|| total as f64 / self.connections.opened as f64)
    }

    /// Server CPU milliseconds per 1,000 delivered events.
    pub fn server_cpu_ms_per_1k_events(&self) -> Option<f64> {
        let server = self.server.as_ref()?;
        (self.events.delivered > 0)
            .then(|| server.cpu_s * 1_000.0 * 1_000.0 / self.events.delivered as f64)
    }

    /// Server memory per connected client in bytes (see
    /// [`ServerStats::rss_per_connection_bytes`]); `None` when the file does not say.
    pub fn server_memory_per_connection(&self) -> Option<f64> {
        self.server.as_ref()?.rss_per_connection_bytes
    }

    /// Share of polls that came back empty, 0..1; `None` when no request was sent.
    pub fn empty_poll_share(&self) -> Option<f64> {
        (self.requests.sent > 0).then(|| self.requests.empty as f64 / self.requests.sent as f64)
    }

    /// Steady-state bandwidth received by all clients, bits per second.
    pub fn bits_per_s_down(&self) -> Option<f64> {
        (self.params.duration_s > 0.0)
            .then(|| self.bytes.down as f64 * 8.0 / self.params.duration_s)
    }

    /// Steady-state bandwidth sent by all clients, bits per second.
    pub fn bits_per_s_up(&self) -> Option<f64> {
        (self.params.duration_s > 0.0).then(|| self.bytes.up as f64 * 8.0 / self.params.duration_s)
    }
}
