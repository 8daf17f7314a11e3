//! One scenario's figures: parameters, latency, sequence, byte, request and connection
//! accounting, the server's and the load generator's own cost.
//!
//! Fields schema 1 did not require carry serde defaults (documented on each), so every file
//! schema 1 accepts deserializes; fields schema 2 added default to what a schema-1 writer
//! meant, so old files read as what they measured.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::counts::ProcessCounts;
use crate::net::NetFigures;
use crate::run::Status;
use crate::stack::{StackFigures, HTTP_1_1};
use crate::summary::Summary;
use crate::transport::Transport;

/// One scenario run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    /// Group key without the repeat, e.g. `ws-c100-r10-s64`; repeats share it.
    pub name: String,
    /// Transport.
    pub transport: Transport,
    /// Repeat index, from 0.
    pub repeat: u32,
    /// How this scenario ended.
    pub status: Status,
    /// Why it did not complete, if it did not.
    #[serde(default)]
    pub status_message: Option<String>,
    /// RFC 3339 UTC; empty in files that lack it (schema 1 did not require it).
    #[serde(default)]
    pub started_at: String,
    /// Parameters.
    pub params: Params,
    /// Length of the measure window actually run (shorter than `duration_s` if cut short);
    /// 0 in files that lack it (schema 1 did not require it).
    #[serde(default)]
    pub measured_s: f64,
    /// Delivery latency of events whose `ts` falls in the window, µs.
    pub latency_us: Summary,
    /// Request latency (polling transports), µs; short-poll is corrected for coordinated
    /// omission. Null for push transports.
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
    #[serde(default)]
    pub errors: BTreeMap<String, u64>,
    /// Anything that makes the figures less trustworthy, in plain sentences.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Informational notes that are not problems, in plain sentences (e.g. that the server
    /// reports no byte counters, so bytes were not cross-checked). Schema 2; empty in
    /// older files.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The block of clients this file covers, when the run was split into shards and this
    /// is one shard's file (a merged file has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// The measure window on the server's clock, when it was opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowTimes>,
    /// The clock-offset estimate, when the server offers `GET /time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockFigures>,
    /// The emulated link between clients and server and what crossed it, when the scenario
    /// ran through the link emulator; absent on loopback (no emulation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<NetFigures>,
    /// The protocol stack the connections used (TLS version, cipher suite, ALPN, HTTP
    /// version), the TLS handshakes and the window's bytes split by layer; absent in files
    /// written before the stack was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<StackFigures>,
}

/// Scenario parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Time over which clients connect; 0 in files that lack it.
    #[serde(default)]
    pub ramp_s: f64,
    /// Seed of short-poll phases; 0 in files that lack it.
    #[serde(default)]
    pub seed: u64,
    /// The emulated link's canonical spec (`rtt=100ms,loss=1%`, or a profile name); absent
    /// for loopback, no emulation. Part of what defines a scenario, so shards and repeats
    /// agree on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net: Option<String>,
    /// Whether the clients spoke TLS (`https`, `wss`). Absent (false) for plaintext, so
    /// plaintext scenarios serialize as they did before TLS existed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls: bool,
    /// HTTP version of the clients: [`HTTP_1_1`] (the default, then absent) or
    /// [`HTTP_2`](crate::stack::HTTP_2) (over TLS by ALPN, in plaintext as h2c with prior
    /// knowledge).
    #[serde(default = "http_1_1", skip_serializing_if = "is_http_1_1")]
    pub http: String,
    /// Clients multiplexed on one HTTP/2 connection (1, the default and then absent: every
    /// client its own connection).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub streams_per_connection: u32,
    /// Whether TLS session resumption was on; present only when `tls` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_resumption: Option<bool>,
}

/// The default of [`Params::http`].
fn http_1_1() -> String {
    HTTP_1_1.into()
}

/// Whether [`Params::http`] is its default, so it is left out.
fn is_http_1_1(http: &str) -> bool {
    http == HTTP_1_1
}

/// The default of [`Params::streams_per_connection`].
fn one() -> u32 {
    1
}

/// Whether [`Params::streams_per_connection`] is its default, so it is left out.
fn is_one(n: &u32) -> bool {
    *n == 1
}

/// Whether a flag is its default (false), so it is left out.
fn is_false(b: &bool) -> bool {
    !*b
}

/// [`Events::window_source`] when the window's seqs were read from the server's feed.
pub const WINDOW_FROM_FEED: &str = "feed";

/// [`Events::window_source`] when the window's range is the union of what the clients saw.
pub const WINDOW_FROM_CLIENTS: &str = "clients";

/// The default of [`Events::window_source`]: what every schema-1 file did.
fn window_from_clients() -> String {
    WINDOW_FROM_CLIENTS.into()
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
    /// `expected − delivered`: gaps, server-reported misses, clients that died, and
    /// `unreceived` × clients.
    pub missed: u64,
    /// In-window events received again.
    pub duplicates: u64,
    /// In-window events received after a later one.
    pub out_of_order: u64,
    /// Sum of the `missed` fields of poll answers (part of `missed`); 0 in files that lack
    /// it.
    #[serde(default)]
    pub server_missed: u64,
    /// Seq range of the window, if known.
    #[serde(default)]
    pub first_seq: Option<u64>,
    /// See `first_seq`.
    #[serde(default)]
    pub last_seq: Option<u64>,
    /// How the window's seq range was established: [`WINDOW_FROM_FEED`] (read from the
    /// server's feed after the window: exactly the seqs whose `ts` falls in it, whether or
    /// not any client received them) or [`WINDOW_FROM_CLIENTS`] (the fallback: the union of
    /// what the clients saw, which cannot count an event no client received). The schema
    /// allows only these two. Schema 2; `clients` for older files, which were all accounted
    /// that way.
    #[serde(default = "window_from_clients")]
    pub window_source: String,
    /// Events in the window that no client received; each is counted missed for every
    /// client (so `missed ≥ unreceived × clients`). Always 0 when `window_source` is
    /// `clients`, which cannot see such events. Schema 2; 0 for older files.
    #[serde(default)]
    pub unreceived: u64,
    /// The seqs of those events, at most [`MAX_UNRECEIVED_SEQS`] of them (the first ones),
    /// so a merge of shards can tell which events no client of *any* shard received.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreceived_seqs: Vec<u64>,
}

/// Most seqs listed in [`Events::unreceived_seqs`].
pub const MAX_UNRECEIVED_SEQS: usize = 10_000;

/// Which block of a scenario's clients a shard ran (`feedbench load --shard I/N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// This shard, `0..count`.
    pub index: u32,
    /// Shards in the run.
    pub count: u32,
    /// Index of this shard's first client in the whole scenario.
    pub first_client: u64,
    /// Clients this shard ran.
    pub clients: u64,
}

/// The measure window on the server's clock, Unix ns: `[start_ns, end_ns)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowTimes {
    /// Opening instant.
    pub start_ns: u64,
    /// Closing instant.
    pub end_ns: u64,
}

/// The load generator's clock against the server's (`GET /time`, see PROTOCOL.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockFigures {
    /// Estimated server clock minus load-generator clock, ns.
    pub offset_ns: i64,
    /// The offset is exact to within ± this (half the best exchange's round trip).
    pub uncertainty_ns: u64,
    /// That exchange's round trip, ns.
    pub min_rtt_ns: u64,
    /// Exchanges the estimate took (after one warm-up).
    pub samples: u32,
    /// Whether receive times were corrected by `offset_ns`. An offset within its own
    /// uncertainty of 0 is not applied: 0 is then as good an estimate, and exact on one
    /// host.
    pub applied: bool,
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
    /// Events read during the window: the denominator of the per-event figures; 0 in files
    /// that lack it.
    #[serde(default)]
    pub events: u64,
    /// `(up + down) / events`.
    pub per_event: f64,
    /// `up / events`.
    pub per_event_up: f64,
    /// `down / events`.
    pub per_event_down: f64,
    /// `(up + down − payload) / payload`.
    pub overhead_ratio: f64,
    /// All bytes written, any phase, setup included; 0 in files that lack it.
    #[serde(default)]
    pub total_up: u64,
    /// All bytes read, any phase, setup included; 0 in files that lack it.
    #[serde(default)]
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
    /// Requests sent over the whole run; 0 in files that lack it.
    #[serde(default)]
    pub total: u64,
    /// 99th percentile of short-poll timer lateness, µs; 0 in files that lack it.
    #[serde(default)]
    pub schedule_lag_p99_us: u64,
    /// Largest short-poll timer lateness, µs (an event can wait one interval plus this
    /// plus its poll's answer); 0 in files that lack it.
    #[serde(default)]
    pub schedule_lag_max_us: u64,
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
    /// The server's class name for this transport (`short_poll`, `long_poll`, `ws`, `sse`);
    /// empty in files that lack it.
    #[serde(default)]
    pub class: String,
    /// Consumers the server closed for falling behind during the scenario; 0 in files that
    /// lack it.
    #[serde(default)]
    pub slow_consumer_closed: u64,
    /// Samples during the window; empty in files that lack them.
    #[serde(default)]
    pub samples: Vec<ServerSample>,
    /// Requests the server answered on its fast path and through hyper during the
    /// scenario; null when the server does not report them (and in older files).
    /// Schema 2.
    #[serde(default)]
    pub requests_by_path: Option<RequestsByPath>,
    /// The server process's socket calls, context switches and allocations during the
    /// window; absent when its `/stats` reports none of them (another server, older files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<ProcessCounts>,
}

/// Requests a server answered, by the code path that answered them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestsByPath {
    /// Answered on the server's direct fast path (parsed and written without hyper).
    pub direct: u64,
    /// Answered through hyper.
    pub hyper: u64,
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
    /// Cores the load generator may run on; 0 in files that lack it.
    #[serde(default)]
    pub cores: u64,
    /// The load generator's own context switches during the window;
    /// absent in files that lack them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<ProcessCounts>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_schema_1_scenario_reads_with_the_schema_2_defaults() {
        // Written before `rss_before_connect_bytes`, `rss_per_connection_bytes` and every
        // schema-2 field existed.
        let old: ScenarioResult =
            serde_json::from_str(include_str!("../tests/data/scenario-v1.json")).unwrap();
        let server = old.server.expect("server figures");
        assert_eq!(server.rss_start_bytes, 8_126_464);
        assert_eq!(server.rss_before_connect_bytes, 0);
        assert_eq!(server.rss_per_connection_bytes, None);
        assert_eq!(server.requests_by_path, None);
        assert_eq!(old.events.window_source, WINDOW_FROM_CLIENTS);
        assert_eq!(old.events.unreceived, 0);
        assert!(old.notes.is_empty());
    }

    #[test]
    fn schema_2_fields_serialize_as_documented() {
        let mut s: ScenarioResult =
            serde_json::from_str(include_str!("../tests/data/scenario-v1.json")).unwrap();
        s.events.window_source = WINDOW_FROM_FEED.into();
        s.events.unreceived = 3;
        s.notes.push("a note".into());
        s.server.as_mut().unwrap().requests_by_path = Some(RequestsByPath {
            direct: 40,
            hyper: 2,
        });
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["events"]["window_source"], "feed");
        assert_eq!(v["events"]["unreceived"], 3);
        assert_eq!(v["notes"], serde_json::json!(["a note"]));
        assert_eq!(
            v["server"]["requests_by_path"],
            serde_json::json!({"direct": 40, "hyper": 2})
        );
        s.server.as_mut().unwrap().requests_by_path = None;
        let v = serde_json::to_value(&s).unwrap();
        assert!(v["server"]["requests_by_path"].is_null());
    }
}
