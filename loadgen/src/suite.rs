//! Suite files: a TOML matrix of scenarios, validated before anything runs.
//!
//! ```toml
//! name = "quick"            # optional, defaults to the file name
//! repeat = 3                # runs of each scenario, interleaved (default 3)
//! duration = "3s"           # measure window
//! warmup = "1s"
//! ramp = "0s"               # optional, time over which clients connect
//! seed = 1                  # optional, short-poll phases
//! keepalive = true          # optional, short-poll keep-alive
//! control = true            # optional, set the feed with PUT /control/feed
//! p99_limit = "100ms"       # optional, report where p99 crosses it as clients grow
//!
//! [matrix]
//! transports = ["short-poll", "long-poll", "ws", "sse"]
//! clients = [50]
//! rate_hz = [20]
//! payload_bytes = [64]
//! poll_interval = ["500ms"] # required with short-poll, refused without it; "0s" polls
//!                           # back to back (a throughput test)
//! net = ["rtt=100ms", "4g"] # optional: emulated links (root only), "none" for loopback;
//!                           # see netem/PROFILES.md for the grammar and the profiles
//! tls = ["off", "on"]       # optional (default off): https/wss; `feedbench run` starts its
//!                           # server with --tls and trusts the certificate it writes
//! http = ["1.1", "2"]       # optional (default 1.1): HTTP/2 for the polling transports and
//!                           # SSE (by ALPN over TLS, h2c in plaintext); ws cells with 2 are
//!                           # dropped with a note while the load generator has no RFC 8441
//! tls_resumption = ["on"]   # optional (default on): TLS session resumption (tls = on only)
//! streams_per_connection = [1] # optional (default 1): clients per HTTP/2 connection
//!
//! [[extra_matrix]]          # optional, any number: more scenarios, expanded like `matrix`
//! transports = ["short-poll"] # with the same settings; each may set its own `keepalive`
//! keepalive = false
//! # ... the same keys as `matrix`
//! ```
//!
//! Unknown keys and wrong types are refused by serde (`deny_unknown_fields`); bad values
//! and impossible combinations by [`validate`]. Every message names the file and the key.
//! Repeats are interleaved: all scenarios once, then all again, so slow drift of the
//! machine spreads over every scenario instead of biasing one.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use feedbench_netem::NetSpec;

use crate::scenario::{ScenarioSpec, Transport};
use crate::stack::{HttpVersion, StackSpec, WS_OVER_H2};

/// The built-in `quick` suite.
pub const QUICK: &str = include_str!("../../suites/quick.toml");
/// The built-in `standard` suite.
pub const STANDARD: &str = include_str!("../../suites/standard.toml");
/// The built-in `connections` suite.
pub const CONNECTIONS: &str = include_str!("../../suites/connections.toml");
/// The built-in `wan` suite (an emulated link; needs root).
pub const WAN: &str = include_str!("../../suites/wan.toml");
/// The built-in `mobile` suite (emulated access links; needs root).
pub const MOBILE: &str = include_str!("../../suites/mobile.toml");
/// The built-in `stacks` suite (every transport over plaintext HTTP/1.1, TLS HTTP/1.1 and
/// TLS HTTP/2, and the TLS handshake per poll).
pub const STACKS: &str = include_str!("../../suites/stacks.toml");
/// The built-in `websocket-org` suite (the websocket.org table, measured; needs root).
pub const WEBSOCKET_ORG: &str = include_str!("../../suites/websocket-org.toml");

const MAX_CLIENTS: usize = 100_000;
const MAX_RATE_HZ: f64 = 1_000_000.0;
const MAX_PAYLOAD_BYTES: usize = 1 << 20;
const MAX_REPEAT: u32 = 100;
const MAX_STREAMS_PER_CONNECTION: u32 = 1_000;

/// A suite file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The file could not be read.
    #[error("cannot read suite file {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid suite.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong, naming the key.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    name: Option<String>,
    repeat: Option<u32>,
    duration: String,
    warmup: String,
    ramp: Option<String>,
    seed: Option<u64>,
    keepalive: Option<bool>,
    control: Option<bool>,
    p99_limit: Option<String>,
    fresh_server: Option<bool>,
    matrix: Matrix,
    #[serde(default)]
    extra_matrix: Vec<Matrix>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Matrix {
    transports: Vec<Transport>,
    clients: Vec<usize>,
    rate_hz: Vec<f64>,
    payload_bytes: Vec<usize>,
    poll_interval: Option<Vec<String>>,
    net: Option<Vec<String>>,
    /// Overrides the suite's `keepalive` for this matrix.
    keepalive: Option<bool>,
    tls: Option<Vec<String>>,
    http: Option<Vec<String>>,
    tls_resumption: Option<Vec<String>>,
    streams_per_connection: Option<Vec<u32>>,
}

/// Stopping one embedded server and starting the next, roughly.
const FRESH_SERVER_RESTART: Duration = Duration::from_millis(250);

/// A validated suite.
#[derive(Debug, Clone)]
pub struct Suite {
    /// Suite name (results directory prefix and the `suite` field).
    pub name: String,
    /// Where it came from (a path, or `builtin:NAME`).
    pub source: String,
    /// Runs of each scenario.
    pub repeat: u32,
    /// The scenarios, in matrix order.
    pub scenarios: Vec<ScenarioSpec>,
    /// Report, per series of client counts, where p99 delivery latency crosses this.
    pub p99_limit: Option<Duration>,
    /// Start a new embedded server for every scenario run (`fresh_server`, default true),
    /// so no run inherits the memory, sockets or counters of the one before (and server
    /// memory per connection can be measured). Only applies when feedbench starts the
    /// server itself.
    pub fresh_server: bool,
    /// What the expansion left out and why (e.g. ws over HTTP/2 cells), for the user.
    pub notes: Vec<String>,
}

impl Suite {
    /// Resolves `--suite`: `quick`, `standard`, `connections`, `wan`, `mobile`, `stacks`
    /// and `websocket-org` are built in, anything
    /// else is a path.
    pub fn load(arg: &str) -> Result<Suite, SuiteError> {
        match arg {
            "quick" => Suite::parse(QUICK, "builtin:quick", "quick"),
            "standard" => Suite::parse(STANDARD, "builtin:standard", "standard"),
            "connections" => Suite::parse(CONNECTIONS, "builtin:connections", "connections"),
            "wan" => Suite::parse(WAN, "builtin:wan", "wan"),
            "mobile" => Suite::parse(MOBILE, "builtin:mobile", "mobile"),
            "stacks" => Suite::parse(STACKS, "builtin:stacks", "stacks"),
            "websocket-org" => {
                Suite::parse(WEBSOCKET_ORG, "builtin:websocket-org", "websocket-org")
            }
            path => {
                let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Read {
                    file: path.to_string(),
                    source,
                })?;
                let stem = Path::new(path)
                    .file_stem()
                    .map_or("suite".into(), |s| s.to_string_lossy().into_owned());
                Suite::parse(&text, path, &stem)
            }
        }
    }

    /// Parses and validates suite text; `file` names it in messages.
    pub fn parse(text: &str, file: &str, default_name: &str) -> Result<Suite, SuiteError> {
        let invalid = |message: String| SuiteError::Invalid {
            file: file.to_string(),
            message,
        };
        let raw: SuiteFile =
            toml::from_str(text).map_err(|e| invalid(e.to_string().trim_end().to_string()))?;
        validate(raw, default_name).map_err(invalid).map(|mut s| {
            s.source = file.to_string();
            s
        })
    }

    /// Puts every scenario on `net` (`--net` replaces the suite's `matrix.net`): one
    /// scenario per combination of the other keys, as if `matrix.net = [net]`.
    pub fn set_net(&mut self, net: &NetSpec) {
        let mut seen = std::collections::BTreeSet::new();
        self.scenarios.retain_mut(|s| {
            s.net = Some(net.clone());
            seen.insert(s.name())
        });
    }

    /// Sets what the command line says of the stack on every scenario (`--http`,
    /// `--streams-per-connection`, `--tls-resumption` on `feedbench run`, and the target's
    /// scheme with `--target`), keeping one scenario per name. ws scenarios are not put on
    /// HTTP/2 unless the load generator speaks it (RFC 8441); a note says so.
    pub fn set_stack(
        &mut self,
        tls: Option<bool>,
        http: Option<HttpVersion>,
        streams_per_connection: Option<u32>,
        tls_resumption: Option<bool>,
    ) {
        let mut seen = std::collections::BTreeSet::new();
        let mut ws_kept_on_http1 = false;
        self.scenarios.retain_mut(|s| {
            let st = &mut s.stack;
            if let Some(tls) = tls {
                st.tls = tls;
            }
            if let Some(http) = http {
                if s.transport == Transport::Ws && http == HttpVersion::Http2 && !WS_OVER_H2 {
                    ws_kept_on_http1 = true;
                } else {
                    st.http = http;
                }
            }
            if let Some(n) = streams_per_connection {
                st.streams_per_connection = n;
            }
            if st.http != HttpVersion::Http2 {
                st.streams_per_connection = 1;
            }
            if let Some(on) = tls_resumption {
                st.tls_resumption = on;
            }
            if !st.tls {
                st.tls_resumption = true;
            }
            seen.insert(s.name())
        });
        if ws_kept_on_http1 {
            self.notes.push(
                "ws stays on HTTP/1.1: the load generator has no RFC 8441 WebSocket over HTTP/2"
                    .into(),
            );
        }
    }

    /// Whether any scenario speaks TLS.
    pub fn any_tls(&self) -> bool {
        self.scenarios.iter().any(|s| s.stack.tls)
    }

    /// Every run in order: repeat 0 of every scenario, then repeat 1, and so on.
    pub fn runs(&self) -> Vec<(ScenarioSpec, u32)> {
        (0..self.repeat)
            .flat_map(|r| self.scenarios.iter().map(move |s| (s.clone(), r)))
            .collect()
    }

    /// A rough wall-clock estimate of the whole suite.
    pub fn estimated_duration(&self) -> Duration {
        let restart = if self.fresh_server {
            FRESH_SERVER_RESTART
        } else {
            Duration::ZERO
        };
        self.scenarios
            .iter()
            .map(|s| s.estimated_duration() + restart)
            .sum::<Duration>()
            * self.repeat
    }
}

fn duration(key: &str, text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| {
        format!("key `{key}`: {text:?} is not a duration like \"500ms\" or \"30s\": {e}")
    })
}

fn check_unique<T: PartialEq + std::fmt::Debug>(key: &str, values: &[T]) -> Result<(), String> {
    if values.is_empty() {
        return Err(format!("key `{key}`: needs at least one value"));
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].contains(v) {
            return Err(format!("key `{key}`: {v:?} is listed twice"));
        }
    }
    Ok(())
}

fn validate(raw: SuiteFile, default_name: &str) -> Result<Suite, String> {
    let name = raw.name.unwrap_or_else(|| default_name.to_string());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(format!(
            "key `name`: {name:?} must be non-empty letters, digits, '-' or '_'"
        ));
    }
    let repeat = raw.repeat.unwrap_or(3);
    if !(1..=MAX_REPEAT).contains(&repeat) {
        return Err(format!(
            "key `repeat`: {repeat} must be between 1 and {MAX_REPEAT}"
        ));
    }
    let measure = duration("duration", &raw.duration)?;
    if measure.is_zero() {
        return Err("key `duration`: must be longer than 0s".into());
    }
    let warmup = duration("warmup", &raw.warmup)?;
    let ramp = raw
        .ramp
        .as_deref()
        .map(|r| duration("ramp", r))
        .transpose()?
        .unwrap_or(Duration::ZERO);
    let p99_limit = raw
        .p99_limit
        .as_deref()
        .map(|t| duration("p99_limit", t))
        .transpose()?;
    if p99_limit.is_some_and(|l| l.is_zero()) {
        return Err("key `p99_limit`: must be longer than 0s".into());
    }
    let base = ScenarioSpec {
        transport: Transport::Ws,
        n_clients: 1,
        rate_hz: 1.0,
        payload_bytes: 0,
        poll_interval: Duration::from_secs(1),
        duration: measure,
        warmup,
        ramp,
        keepalive: raw.keepalive.unwrap_or(true),
        seed: raw.seed.unwrap_or(1),
        control: raw.control.unwrap_or(true),
        shard: None,
        start_at: None,
        net: None,
        stack: StackSpec::default(),
    };
    let mut scenarios: Vec<ScenarioSpec> = Vec::new();
    let mut notes = Vec::new();
    let matrices = std::iter::once(("matrix".to_string(), raw.matrix)).chain(
        raw.extra_matrix
            .into_iter()
            .enumerate()
            .map(|(i, m)| (format!("extra_matrix[{i}]"), m)),
    );
    for (key, m) in matrices {
        for spec in expand(&key, m, &base, &mut notes)? {
            if scenarios.iter().any(|s| s.name() == spec.name()) {
                return Err(format!(
                    "key `{key}`: scenario {} is already in the suite",
                    spec.name()
                ));
            }
            scenarios.push(spec);
        }
    }
    Ok(Suite {
        name,
        source: String::new(),
        repeat,
        scenarios,
        p99_limit,
        fresh_server: raw.fresh_server.unwrap_or(true),
        notes,
    })
}

/// Parses a list of `off`/`on` under `key`.
fn on_off(key: &str, list: Option<Vec<String>>, default: bool) -> Result<Vec<bool>, String> {
    let Some(list) = list else {
        return Ok(vec![default]);
    };
    check_unique(key, &list)?;
    list.iter()
        .map(|v| match v.as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            other => Err(format!("key `{key}`: {other:?} is not \"on\" or \"off\"")),
        })
        .collect()
}

/// The stacks of a matrix: every combination of its `tls`, `http`, `tls_resumption` and
/// `streams_per_connection` that means something (resumption only with TLS, more than one
/// stream only with HTTP/2).
fn stacks(key: &str, m: &mut Matrix) -> Result<Vec<StackSpec>, String> {
    let tls = on_off(&format!("{key}.tls"), m.tls.take(), false)?;
    let resumption = on_off(
        &format!("{key}.tls_resumption"),
        m.tls_resumption.take(),
        true,
    )?;
    let http = match m.http.take() {
        None => vec![HttpVersion::Http1],
        Some(list) => {
            check_unique(&format!("{key}.http"), &list)?;
            list.iter()
                .map(|v| v.parse().map_err(|e| format!("key `{key}.http`: {e}")))
                .collect::<Result<Vec<HttpVersion>, String>>()?
        }
    };
    let spc = m.streams_per_connection.take().unwrap_or_else(|| vec![1]);
    check_unique(&format!("{key}.streams_per_connection"), &spc)?;
    if let Some(&n) = spc
        .iter()
        .find(|&&n| n == 0 || n > MAX_STREAMS_PER_CONNECTION)
    {
        return Err(format!(
            "key `{key}.streams_per_connection`: {n} must be between 1 and {MAX_STREAMS_PER_CONNECTION}"
        ));
    }
    if spc.iter().any(|&n| n > 1) && !http.contains(&HttpVersion::Http2) {
        return Err(format!(
            "key `{key}.streams_per_connection`: more than 1 needs http = \"2\" (HTTP/1.1 has one request per connection at a time)"
        ));
    }
    if resumption.contains(&false) && !tls.contains(&true) {
        return Err(format!(
            "key `{key}.tls_resumption`: only applies with tls = \"on\""
        ));
    }
    let mut out = Vec::new();
    for &tls in &tls {
        for &http in &http {
            for &streams_per_connection in &spc {
                if streams_per_connection > 1 && http != HttpVersion::Http2 {
                    continue;
                }
                for &tls_resumption in &resumption {
                    if !tls && !tls_resumption {
                        continue;
                    }
                    out.push(StackSpec {
                        tls,
                        http,
                        streams_per_connection,
                        tls_resumption: tls_resumption || !tls,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Expands one matrix (`key` names it in messages) over `base`'s settings.
fn expand(
    key: &str,
    mut m: Matrix,
    base: &ScenarioSpec,
    notes: &mut Vec<String>,
) -> Result<Vec<ScenarioSpec>, String> {
    check_unique(&format!("{key}.transports"), &m.transports)?;
    check_unique(&format!("{key}.clients"), &m.clients)?;
    check_unique(&format!("{key}.rate_hz"), &m.rate_hz)?;
    check_unique(&format!("{key}.payload_bytes"), &m.payload_bytes)?;
    if let Some(&c) = m.clients.iter().find(|&&c| c == 0 || c > MAX_CLIENTS) {
        return Err(format!(
            "key `{key}.clients`: {c} must be between 1 and {MAX_CLIENTS}"
        ));
    }
    if let Some(&r) = m.rate_hz.iter().find(|&&r| !(r > 0.0 && r <= MAX_RATE_HZ)) {
        return Err(format!("key `{key}.rate_hz`: {r} must be above 0 and at most {MAX_RATE_HZ} (a paused feed has nothing to measure)"));
    }
    if let Some(&p) = m.payload_bytes.iter().find(|&&p| p > MAX_PAYLOAD_BYTES) {
        return Err(format!(
            "key `{key}.payload_bytes`: {p} is above the limit of {MAX_PAYLOAD_BYTES}"
        ));
    }
    let measure = base.duration;
    let has_short_poll = m.transports.contains(&Transport::ShortPoll);
    let intervals = match (m.poll_interval.take(), has_short_poll) {
        (None, true) => return Err(format!("key `{key}.poll_interval`: required when `{key}.transports` has short-poll")),
        (Some(_), false) => {
            return Err(format!("key `{key}.poll_interval`: only applies to short-poll, which `{key}.transports` does not list"))
        }
        (None, false) => Vec::new(),
        (Some(list), true) => {
            check_unique(&format!("{key}.poll_interval"), &list)?;
            list.iter().map(|t| duration(&format!("{key}.poll_interval"), t)).collect::<Result<Vec<_>, _>>()?
        }
    };
    for &p in &intervals {
        if !p.is_zero() && p < Duration::from_millis(1) {
            return Err(format!(
                "key `{key}.poll_interval`: {p:?} must be 0 (back to back) or at least 1ms"
            ));
        }
        if measure < p * 2 {
            return Err(format!(
                "key `{key}.poll_interval`: {} is more than half of `duration` ({}); every client must poll at least twice in the window",
                humantime::format_duration(p),
                humantime::format_duration(measure)
            ));
        }
    }
    let nets = match m.net.take() {
        None => vec![None],
        Some(list) => parse_nets(&format!("{key}.net"), &list)?,
    };
    let stacks = stacks(key, &mut m)?;
    let keepalive = m.keepalive.unwrap_or(base.keepalive);
    let mut scenarios = Vec::new();
    for &transport in &m.transports {
        for stack in &stacks {
            if transport == Transport::Ws && stack.http == HttpVersion::Http2 && !WS_OVER_H2 {
                let note = format!(
                    "ws over HTTP/2 is left out ({key}): the load generator has no RFC 8441 WebSocket over HTTP/2"
                );
                if !notes.contains(&note) {
                    notes.push(note);
                }
                continue;
            }
            for &n_clients in &m.clients {
                for &rate_hz in &m.rate_hz {
                    for &payload_bytes in &m.payload_bytes {
                        let spec = ScenarioSpec {
                            transport,
                            n_clients,
                            rate_hz,
                            payload_bytes,
                            keepalive,
                            stack: *stack,
                            ..base.clone()
                        };
                        let per_interval: Vec<ScenarioSpec> = if transport == Transport::ShortPoll {
                            intervals
                                .iter()
                                .map(|&poll_interval| ScenarioSpec {
                                    poll_interval,
                                    ..spec.clone()
                                })
                                .collect()
                        } else {
                            vec![spec]
                        };
                        for s in per_interval {
                            scenarios.extend(nets.iter().map(|net| ScenarioSpec {
                                net: net.clone(),
                                ..s.clone()
                            }));
                        }
                    }
                }
            }
        }
    }
    Ok(scenarios)
}

/// Parses `matrix.net`: link specs, or `none` for no emulation (clients on loopback).
fn parse_nets(key: &str, list: &[String]) -> Result<Vec<Option<NetSpec>>, String> {
    check_unique(key, list)?;
    if list.is_empty() {
        return Err(format!(
            "key `{key}`: give at least one link spec (or leave the key out)"
        ));
    }
    list.iter()
        .map(|text| match text.as_str() {
            "none" => Ok(None),
            _ => text
                .parse::<NetSpec>()
                .map(Some)
                .map_err(|e| format!("key `{key}`: {text:?}: {e}")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
repeat = 2
duration = "4s"
warmup = "1s"
[matrix]
transports = ["short-poll", "ws"]
clients = [10, 20]
rate_hz = [5]
payload_bytes = [64]
poll_interval = ["1s", "500ms"]
"#;

    fn err(text: &str) -> String {
        Suite::parse(text, "s.toml", "s").unwrap_err().to_string()
    }

    #[test]
    fn expands_and_interleaves() {
        let s = Suite::parse(GOOD, "s.toml", "mysuite").unwrap();
        assert_eq!(s.name, "mysuite");
        // short-poll: 2 clients × 2 intervals; ws: 2 clients.
        assert_eq!(s.scenarios.len(), 6);
        let runs = s.runs();
        assert_eq!(runs.len(), 12);
        assert_eq!((runs[0].1, runs[6].1), (0, 1));
        assert_eq!(runs[0].0, runs[6].0);
        assert_eq!(runs[0].0.name(), "short-poll-c10-r5-s64-i1000");
        assert!(s.estimated_duration() > Duration::from_secs(60));
        assert!(s.fresh_server);
        let shared = Suite::parse(&format!("fresh_server = false\n{GOOD}"), "s.toml", "s").unwrap();
        assert!(!shared.fresh_server);
        let e = err(&format!("fresh_server = \"yes\"\n{GOOD}"));
        assert!(e.contains("fresh_server"), "{e}");
    }

    #[test]
    fn refuses_bad_files_naming_file_and_key() {
        let e = err(&GOOD.replace("repeat = 2", "repeat = 2\nrepeats = 3"));
        assert!(
            e.starts_with("s.toml: ") && e.contains("unknown field `repeats`"),
            "{e}"
        );
        let e = err(&GOOD.replace("clients = [10, 20]", "clients = [10, 20]\nclient = [1]"));
        assert!(e.contains("unknown field `client`"), "{e}");
        let e = err(&GOOD.replace("\"ws\"", "\"websocket\""));
        assert!(e.contains("unknown variant `websocket`"), "{e}");
        let e = err(&GOOD.replace("[10, 20]", "[0]"));
        assert!(
            e.contains("key `matrix.clients`: 0 must be between 1"),
            "{e}"
        );
        let e = err(&GOOD.replace("[10, 20]", "[10, 10]"));
        assert!(
            e.contains("key `matrix.clients`: 10 is listed twice"),
            "{e}"
        );
        let e = err(&GOOD.replace("rate_hz = [5]", "rate_hz = [0]"));
        assert!(e.contains("key `matrix.rate_hz`"), "{e}");
        let e = err(&GOOD.replace("\"4s\"", "\"4 parsecs\""));
        assert!(e.contains("key `duration`"), "{e}");
        let e = err(&GOOD.replace("\"1s\", \"500ms\"", "\"3s\""));
        assert!(
            e.contains("key `matrix.poll_interval`") && e.contains("more than half of `duration`"),
            "{e}"
        );
        let e = err(&GOOD.replace("poll_interval = [\"1s\", \"500ms\"]", ""));
        assert!(e.contains("key `matrix.poll_interval`: required"), "{e}");
        let e = err(&GOOD.replace("\"short-poll\", ", ""));
        assert!(e.contains("only applies to short-poll"), "{e}");
        let e = err(&GOOD.replace("repeat = 2", "repeat = 0"));
        assert!(e.contains("key `repeat`"), "{e}");
        let e = err(&GOOD.replace("clients = [10, 20]", "clients = \"many\""));
        assert!(e.contains("clients"), "{e}");
        let e = err(&GOOD.replace("duration = \"4s\"\n", ""));
        assert!(e.contains("missing field `duration`"), "{e}");
        let e = Suite::load("/nonexistent/suite.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cannot read suite file /nonexistent/suite.toml"),
            "{e}"
        );
    }

    #[test]
    fn builtin_suites_are_valid_and_quick_is_quick() {
        let quick = Suite::load("quick").unwrap();
        let transports: std::collections::BTreeSet<_> =
            quick.scenarios.iter().map(|s| s.transport).collect();
        assert_eq!(transports.len(), 4);
        // The estimate quick.toml's comment states (it runs in about two minutes).
        let secs = quick.estimated_duration().as_secs_f64();
        assert!((secs - 138.0).abs() < 0.5, "{secs}");
        // Curves: three client counts and three rates, every transport at each point.
        let points = |f: fn(&ScenarioSpec) -> u64| {
            quick
                .scenarios
                .iter()
                .map(f)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        };
        assert_eq!(points(|s| s.n_clients as u64), 3);
        assert_eq!(points(|s| (s.rate_hz * 1e3) as u64), 3);
        assert_eq!(quick.scenarios.len(), 5 * 4);
        let standard = Suite::load("standard").unwrap();
        assert_eq!(standard.repeat, 3);
        // clients 4 × rates 3 × payloads 2 × (2 short-poll intervals + 3 other transports).
        assert_eq!(standard.scenarios.len(), 4 * 3 * 2 * 5);
        // The duration the comment at the top of standard.toml states.
        let secs = standard.estimated_duration().as_secs_f64();
        assert!((secs - 7570.8).abs() < 1.0, "{secs}");
        let connections = Suite::load("connections").unwrap();
        assert_eq!(connections.scenarios.len(), 4 * 5);
        assert_eq!(connections.p99_limit, Some(Duration::from_millis(100)));
        assert!(connections.fresh_server && quick.fresh_server);
        let most = connections.scenarios.iter().map(|s| s.n_clients).max();
        assert_eq!(most, Some(19_000));
        assert!(connections.estimated_duration() <= Duration::from_secs(300));
    }

    #[test]
    fn reads_the_p99_limit_and_back_to_back_polls() {
        let s = Suite::parse(
            &GOOD
                .replace("repeat = 2", "repeat = 2\np99_limit = \"50ms\"")
                .replace("\"1s\", \"500ms\"", "\"0s\""),
            "s.toml",
            "s",
        )
        .unwrap();
        assert_eq!(s.p99_limit, Some(Duration::from_millis(50)));
        assert_eq!(s.scenarios[0].name(), "short-poll-c10-r5-s64-i0");
        let e = err(&GOOD.replace("repeat = 2", "repeat = 2\np99_limit = \"soon\""));
        assert!(e.contains("key `p99_limit`"), "{e}");
        let e = err(&GOOD.replace("\"1s\", \"500ms\"", "\"500us\""));
        assert!(
            e.contains("must be 0 (back to back) or at least 1ms"),
            "{e}"
        );
    }

    #[test]
    fn stack_keys_expand_and_are_checked() {
        let text = r#"
repeat = 1
duration = "2s"
warmup = "1s"
[matrix]
transports = ["ws", "sse"]
clients = [5]
rate_hz = [10]
payload_bytes = [64]
tls = ["off", "on"]
http = ["1.1", "2"]

[[extra_matrix]]
transports = ["short-poll"]
clients = [5]
rate_hz = [10]
payload_bytes = [64]
poll_interval = ["500ms"]
keepalive = false
tls = ["on"]
tls_resumption = ["on", "off"]
"#;
        let s = Suite::parse(text, "s.toml", "s").unwrap();
        let mut names: Vec<String> = s.scenarios.iter().map(|s| s.name()).collect();
        if WS_OVER_H2 {
            // ws over HTTP/2 is spoken: its cells stay, and no note is needed.
            assert!(s.notes.is_empty(), "{:?}", s.notes);
            for n in ["ws-c5-r10-s64-h2", "ws-c5-r10-s64-tls-h2"] {
                let at = names.iter().position(|x| x == n).unwrap();
                names.remove(at);
            }
        } else {
            assert_eq!(s.notes.len(), 1);
            assert!(s.notes[0].contains("RFC 8441"), "{:?}", s.notes);
        }
        assert_eq!(
            names,
            [
                "ws-c5-r10-s64",
                "ws-c5-r10-s64-tls",
                "sse-c5-r10-s64",
                "sse-c5-r10-s64-h2",
                "sse-c5-r10-s64-tls",
                "sse-c5-r10-s64-tls-h2",
                "short-poll-c5-r10-s64-i500-noka-tls",
                "short-poll-c5-r10-s64-i500-noka-tls-nores",
            ]
        );
        let noka = s.scenarios.iter().filter(|s| !s.keepalive).count();
        assert_eq!(noka, 2);
        assert!(!s.scenarios.last().unwrap().stack.tls_resumption);

        let bad = |k: &str| err(&GOOD.replace("[matrix]", &format!("[matrix]\n{k}")));
        assert!(bad(r#"tls = ["maybe"]"#).contains("key `matrix.tls`: \"maybe\" is not"));
        assert!(bad(r#"http = ["3"]"#).contains("key `matrix.http`"));
        assert!(bad(r#"tls_resumption = ["off"]"#).contains("only applies with tls"));
        assert!(bad("streams_per_connection = [4]").contains("needs http = \"2\""));
        let e = err(&format!("{GOOD}\n[[extra_matrix]]\ntransports = [\"ws\"]\nclients = [10]\nrate_hz = [5]\npayload_bytes = [64]\n"));
        assert!(
            e.contains("key `extra_matrix[0]`: scenario ws-c10-r5-s64 is already in the suite"),
            "{e}"
        );
    }

    #[test]
    fn the_stacks_suite_has_every_transport_on_three_stacks_and_the_handshake_pair() {
        let s = Suite::load("stacks").unwrap();
        let names: Vec<String> = s.scenarios.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), 14, "{names:?}");
        for t in [
            "short-poll-c50-r20-s64-i500",
            "long-poll-c50-r20-s64",
            "sse-c50-r20-s64",
        ] {
            for stack in ["", "-tls", "-tls-h2"] {
                assert!(
                    names.contains(&format!("{t}{stack}")),
                    "{t}{stack}: {names:?}"
                );
            }
        }
        assert!(names.contains(&"ws-c50-r20-s64-tls".to_string()));
        assert_eq!(
            names.iter().any(|n| n == "ws-c50-r20-s64-tls-h2"),
            WS_OVER_H2,
            "ws over HTTP/2 exactly when RFC 8441 is spoken"
        );
        assert!(names.contains(&"short-poll-c50-r20-s64-i500-noka-tls".to_string()));
        assert!(names.contains(&"short-poll-c50-r20-s64-i500-noka-tls-nores".to_string()));
        assert!(
            s.estimated_duration() < Duration::from_secs(200),
            "{:?}",
            s.estimated_duration()
        );
    }
}
