//! The results file, schema 1: the contract with `report`, `compare` and CI.
//!
//! These types serialize to exactly what `bench-results/schema.json` describes; fields
//! beyond the schema's required ones are additions the schema allows. Everything is also
//! `Deserialize`, so a results file can be read back (and a run's partial file extended).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::crossing::P99Limit;
use crate::scenario::Transport;

/// The schema version these types write.
pub const SCHEMA_VERSION: u32 = 1;

/// How a run or scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Ran to the end.
    Complete,
    /// Stopped by Ctrl-C (or SIGTERM); what was measured is kept.
    Interrupted,
    /// The server died or a setup step failed.
    Failed,
}

impl Status {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
        }
    }
}

/// A whole results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// How the run ended.
    pub status: Status,
    /// Why the run is not complete, if it is not.
    pub status_message: Option<String>,
    /// The tool that wrote the file.
    pub tool: Tool,
    /// The machine the load generator ran on.
    pub host: Host,
    /// Suite name (`load` for a single `feedbench load` scenario).
    pub suite: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC (the time of writing while the run is in progress).
    pub finished_at: String,
    /// The server's URL.
    pub target: String,
    /// Whether `feedbench run` started the server itself.
    pub embedded_server: bool,
    /// CPU sets of server and load generator when pinned, else null.
    pub cpu_sets: Option<CpuSets>,
    /// Local addresses the clients connected from, round-robin; empty: the kernel's choice.
    #[serde(default)]
    pub source_addrs: Vec<String>,
    /// Where p99 delivery latency crosses the suite's `p99_limit`, per series of client
    /// counts; absent when the suite sets no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_limit: Option<P99Limit>,
    /// One entry per scenario run, in run order.
    pub scenarios: Vec<ScenarioResult>,
}

/// The tool that wrote the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    /// Always `feedbench`.
    pub name: String,
    /// The crate version.
    pub version: String,
    /// `git rev-parse HEAD` where the tool ran, if available.
    pub git_sha: Option<String>,
}

/// The machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    /// Distribution name (`PRETTY_NAME` of os-release) or `linux`.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Online cores.
    pub cores: u64,
    /// Physical memory.
    pub memory_bytes: u64,
}

/// CPU affinity lists, e.g. `"0"` and `"1"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CpuSets {
    /// CPUs of the server process.
    pub server: Option<String>,
    /// CPUs of the load generator.
    pub loadgen: Option<String>,
}

/// One scenario run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Group key without the repeat, e.g. `ws-c100-r10-s64`.
    pub name: String,
    /// Transport.
    pub transport: Transport,
    /// Repeat index, from 0.
    pub repeat: u32,
    /// How this scenario ended.
    pub status: Status,
    /// Why it did not complete, if it did not.
    pub status_message: Option<String>,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// Parameters.
    pub params: Params,
    /// Length of the measure window actually run (shorter than `duration_s` if cut short).
    pub measured_s: f64,
    /// Delivery latency of events whose `ts` falls in the window, µs.
    pub latency_us: Summary,
    /// Request latency (polling transports), µs; short-poll is corrected for coordinated
    /// omission.
    pub request_latency_us: Option<Summary>,
    /// Sequence accounting.
    pub events: Events,
    /// Byte accounting.
    pub bytes: ByteFigures,
    /// Request accounting.
    pub requests: Requests,
    /// Connection accounting.
    pub connections: Connections,
    /// Server figures from `/stats`, null if unavailable.
    pub server: Option<ServerFigures>,
    /// The load generator's own cost.
    pub loadgen: Loadgen,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
    /// Anything that makes the figures less trustworthy.
    pub warnings: Vec<String>,
}

/// Scenario parameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Params {
    /// Concurrent clients.
    pub clients: u64,
    /// Feed rate, events per second.
    pub rate_hz: f64,
    /// Event `data` length.
    pub payload_bytes: u64,
    /// Short-poll interval; null for the other transports.
    pub poll_interval_ms: Option<u64>,
    /// Measure window.
    pub duration_s: f64,
    /// Warm-up.
    pub warmup_s: f64,
    /// Keep-alive between polls.
    pub keepalive: bool,
    /// Time over which clients connect.
    pub ramp_s: f64,
    /// Seed of short-poll phases.
    pub seed: u64,
}

/// A histogram summary in µs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// HdrHistogram V2 + deflate, standard base64 with padding.
    pub hdr: String,
}

impl Summary {
    /// Summarizes `h`.
    pub fn of(h: &Histogram<u64>) -> Self {
        let mut raw = Vec::new();
        // Serializing into a Vec only fails on counts the V2 format cannot hold (more
        // than i64::MAX samples); an empty `hdr` would then be the honest result.
        let _ = V2DeflateSerializer::new().serialize(h, &mut raw);
        let hdr = base64::engine::general_purpose::STANDARD.encode(&raw);
        if h.is_empty() {
            return Self {
                count: 0,
                min: 0,
                mean: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                max: 0,
                hdr,
            };
        }
        Self {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            hdr,
        }
    }

    /// Decodes `hdr` back into a histogram.
    pub fn histogram(&self) -> Result<Histogram<u64>, String> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(&self.hdr)
            .map_err(|e| e.to_string())?;
        hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut raw.as_slice())
            .map_err(|e| format!("{e:?}"))
    }
}

/// Sequence accounting over the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Events {
    /// Events whose `ts` falls in the window.
    pub published: u64,
    /// `published` × clients.
    pub expected: u64,
    /// Distinct in-window events received, over all clients.
    pub delivered: u64,
    /// `expected − delivered`: gaps, server-reported misses, clients that died.
    pub missed: u64,
    /// In-window events received again.
    pub duplicates: u64,
    /// In-window events received after a later one.
    pub out_of_order: u64,
    /// Sum of the `missed` fields of poll answers (part of `missed`).
    pub server_missed: u64,
    /// Seq range of the window, if any event was seen.
    pub first_seq: Option<u64>,
    /// See `first_seq`.
    pub last_seq: Option<u64>,
}

/// Byte accounting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ByteFigures {
    /// Steady-state bytes written during the window.
    pub up: u64,
    /// Steady-state bytes read during the window.
    pub down: u64,
    /// Setup bytes written (connect, handshake, first poll), whole run.
    pub setup_up: u64,
    /// Setup bytes read, whole run.
    pub setup_down: u64,
    /// Event JSON bytes read during the window.
    pub payload: u64,
    /// Events read during the window: the denominator of the per-event figures.
    pub events: u64,
    /// `(up + down) / events`.
    pub per_event: f64,
    /// `up / events`.
    pub per_event_up: f64,
    /// `down / events`.
    pub per_event_down: f64,
    /// `(up + down − payload) / payload`.
    pub overhead_ratio: f64,
    /// All bytes written, any phase, setup included.
    pub total_up: u64,
    /// All bytes read, any phase, setup included.
    pub total_down: u64,
}

/// Request accounting (polling transports; zeros for push).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Requests {
    /// Requests sent during the window.
    pub sent: u64,
    /// In-window answers without events.
    pub empty: u64,
    /// `sent / bytes.events`.
    pub per_event: f64,
    /// Short-poll ticks skipped because an answer came after the next tick.
    pub missed_ticks: u64,
    /// Requests sent over the whole run.
    pub total: u64,
    /// 99th percentile of short-poll timer lateness, µs.
    pub schedule_lag_p99_us: u64,
}

/// Connection accounting.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connections {
    /// Clients.
    pub target: u64,
    /// Connections established (reconnects and per-poll connections included).
    pub opened: u64,
    /// Most open at once.
    pub peak_open: u64,
    /// Connection attempts that failed.
    pub failed: u64,
    /// Time until a connection was usable: TCP connect, plus the upgrade for ws and the
    /// response head for sse, µs.
    pub connect_us: Summary,
}

/// Server figures from `/stats`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerFigures {
    /// CPU seconds (user + system) during the window.
    pub cpu_s: f64,
    /// RSS at the start of the window, in bytes.
    pub rss_start_bytes: u64,
    /// RSS at the end of the window, in bytes.
    pub rss_end_bytes: u64,
    /// Highest RSS sampled during the window, in bytes.
    pub rss_peak_bytes: u64,
    /// The server's RSS (`/stats` `process.rss_bytes`) once just before this scenario's
    /// clients started connecting, in bytes: the baseline of
    /// [`rss_per_connection_bytes`](Self::rss_per_connection_bytes). 0 when that sample
    /// failed (and in files written before the field existed).
    #[serde(default)]
    pub rss_before_connect_bytes: u64,
    /// Server memory per connected client, in bytes:
    /// `(rss_start_bytes − rss_before_connect_bytes) / clients`, where `clients` is how many
    /// clients had connected (were ready) when the window started, not the target. The
    /// difference also holds whatever else the server allocated over the connect phase and
    /// warm-up (the event ring filling, allocator caches). It is negative when the server's
    /// RSS shrank in between (memory returned to the OS); the sign is kept, not clamped.
    /// `None` when either RSS sample is missing, when fewer than 1,000 clients had
    /// connected (the fixed growth is then not small next to theirs), or when the server
    /// had served other clients before (their freed memory is reused; a warning says so).
    #[serde(default)]
    pub rss_per_connection_bytes: Option<f64>,
    /// Bytes the server read in this transport's class over the whole scenario.
    pub bytes_in: u64,
    /// Bytes the server wrote in this transport's class over the whole scenario.
    pub bytes_out: u64,
    /// The server's class name for this transport (`short_poll`, `long_poll`, `ws`, `sse`).
    pub class: String,
    /// Consumers the server closed for falling behind during the scenario.
    pub slow_consumer_closed: u64,
    /// Samples during the window.
    pub samples: Vec<ServerSample>,
}

/// Server memory per connected client, in bytes: `(start − before) / clients`, the
/// definition of [`ServerFigures::rss_per_connection_bytes`].
///
/// `before` is the RSS just before the clients connected, `start` the RSS at the window's
/// start, `clients` how many clients were connected then. `None` when a sample is missing
/// or `clients` is 0. Negative when RSS shrank in between; the sign is kept on purpose, so
/// a report shows the measurement rather than a made-up zero.
pub fn rss_per_connection_bytes(
    before: Option<u64>,
    start: Option<u64>,
    clients: u64,
) -> Option<f64> {
    let (before, start) = (before?, start?);
    if clients == 0 {
        return None;
    }
    // i128 holds any difference of two u64s; RSS is far below 2^53, so the f64 is exact.
    let growth = i128::from(start) - i128::from(before);
    Some(growth as f64 / clients as f64)
}

/// One `/stats` sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerSample {
    /// Seconds since the window started.
    pub t_s: f64,
    /// Server CPU seconds since the window started.
    pub cpu_s: f64,
    /// RSS.
    pub rss_bytes: u64,
    /// Open connections.
    pub open_connections: u64,
}

/// The load generator's own cost during the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Loadgen {
    /// CPU seconds (user + system) of the load generator process.
    pub cpu_s: f64,
    /// `cpu_s / (window × cores)`.
    pub cpu_util: f64,
    /// Cores the load generator may run on.
    pub cores: u64,
}

/// Writes `value` as pretty JSON to `path` atomically: a temporary file in the same
/// directory, synced, then renamed over `path`.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results.json".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        serde_json::to_writer_pretty(&mut f, value)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_round_trips_the_histogram() {
        let mut h = crate::client::new_histogram();
        for v in [1u64, 10, 100, 1000, 10_000, 100_000] {
            h.record_n(v, 3).unwrap();
        }
        let s = Summary::of(&h);
        assert_eq!((s.count, s.min, s.max), (18, 1, h.max()));
        assert_eq!(s.p50, h.value_at_quantile(0.5));
        assert!(s.hdr.ends_with('=') || s.hdr.len() % 4 == 0);
        let back = s.histogram().unwrap();
        assert_eq!(back, h);
        let empty = Summary::of(&crate::client::new_histogram());
        assert_eq!((empty.count, empty.max), (0, 0));
        assert!(empty.histogram().unwrap().is_empty());
    }

    #[test]
    fn writes_atomically() {
        let dir = std::env::temp_dir().join(format!("fb-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("r.json");
        write_json_atomic(&path, &serde_json::json!({"a": 1})).unwrap();
        write_json_atomic(&path, &serde_json::json!({"a": 2})).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["a"], 2);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left behind"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rss_per_connection_is_growth_over_connected_clients() {
        assert_eq!(
            rss_per_connection_bytes(Some(10_000_000), Some(40_000_000), 10_000),
            Some(3_000.0)
        );
        assert_eq!(
            rss_per_connection_bytes(Some(8_000_000), Some(8_001_000), 3),
            Some(1_000.0 / 3.0)
        );
        // RSS that shrank (memory returned to the OS) keeps its sign.
        assert_eq!(
            rss_per_connection_bytes(Some(40_000_000), Some(39_000_000), 500),
            Some(-2_000.0)
        );
        assert_eq!(
            rss_per_connection_bytes(None, Some(40_000_000), 10_000),
            None
        );
        assert_eq!(
            rss_per_connection_bytes(Some(10_000_000), None, 10_000),
            None
        );
        assert_eq!(
            rss_per_connection_bytes(Some(10_000_000), Some(40_000_000), 0),
            None
        );
        assert_eq!(
            rss_per_connection_bytes(Some(0), Some(u64::MAX), 1),
            Some(u64::MAX as f64)
        );
    }

    #[test]
    fn server_figures_without_the_memory_baseline_still_parse() {
        // A scenario written before `rss_before_connect_bytes` and
        // `rss_per_connection_bytes` existed.
        let old: ScenarioResult =
            serde_json::from_str(include_str!("../../results/tests/data/scenario-v1.json")).unwrap();
        let server = old.server.expect("server figures");
        assert_eq!(server.rss_start_bytes, 8_126_464);
        assert_eq!(server.rss_before_connect_bytes, 0);
        assert_eq!(server.rss_per_connection_bytes, None);
    }
}
