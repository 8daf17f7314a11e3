//! Groups a results file's scenarios into repeat sets and summarises repeats.
//!
//! A [`ScenarioKey`] is everything that defines what was measured (transport and
//! parameters) apart from the repeat index, so it is what charts aggregate over and what
//! `compare` matches on. A [`Variant`] is one legend entry (a transport, with the poll
//! interval for short-poll); a [`Load`] is one point on a chart's axis (clients, rate,
//! payload, link, protocol stack). Repeats are summarised as a [`Spread`]: median with min
//! and max. A group's
//! clock uncertainty ([`Group::clock_uncertainty_us`]) is the largest of its repeats', and
//! only where the load generator and the server had different clocks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::format;
use feedbench_results::{
    clock_uncertainty_warning, is_loopback_target, Params, Results, ScenarioResult, Status,
    Transport,
};

/// A rate in milli-events per second, so that keys can be compared exactly.
fn rate_mhz(rate_hz: f64) -> u64 {
    (rate_hz * 1_000.0).round().max(0.0) as u64
}

/// A duration in ms, so that keys can be compared exactly.
fn secs_to_ms(secs: f64) -> u64 {
    (secs * 1_000.0).round().max(0.0) as u64
}

/// One legend entry: a transport, with its poll interval and connection policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Variant {
    /// The transport.
    pub transport: Transport,
    /// Short-poll interval; `None` for the other transports.
    pub poll_interval_ms: Option<u64>,
    /// Whether polling clients reused their connection.
    pub keepalive: bool,
}

impl Variant {
    /// The legend label: `ws`, `short-poll (1 s)`, `short-poll (1 s, no keep-alive)`.
    pub fn label(&self) -> String {
        let mut extras = Vec::new();
        if let Some(ms) = self.poll_interval_ms {
            extras.push(format::interval_ms(ms));
        }
        if !self.keepalive && self.transport.is_polling() {
            extras.push("no keep-alive".to_string());
        }
        if extras.is_empty() {
            self.transport.as_str().to_string()
        } else {
            format!("{} ({})", self.transport, extras.join(", "))
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Longest link spec a [`Link`] keeps verbatim; longer ones are cut and marked `…`.
const LINK_SPEC_MAX: usize = 62;

/// The emulated link a scenario ran over, as part of its key: its round trip and loss (for
/// ordering rows and charts) and its spec text.
///
/// The spec is held inline rather than as a `String` so that keys stay `Copy`, as every
/// chart and table passes them by value; specs are short (`rtt=100ms,jitter=5ms,loss=1%`),
/// and one longer than [`LINK_SPEC_MAX`] bytes is cut (ending in `…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    /// Round trip of a single-class link, µs; `None` for a mix or without a link block.
    pub rtt_us: Option<u64>,
    /// Loss of a single-class link, parts per million.
    pub loss_ppm: u64,
    /// The spec's bytes, `spec_len` of them.
    spec: [u8; LINK_SPEC_MAX + 2],
    spec_len: u8,
}

impl Link {
    /// The link of a scenario: its `params.net` (or its link block's spec) with the round
    /// trip and loss of the block's only class; `None` on loopback.
    pub fn of(scenario: &ScenarioResult) -> Option<Link> {
        let spec = scenario
            .params
            .net
            .as_deref()
            .or(scenario.net.as_ref().map(|n| n.spec.as_str()))?;
        let class = scenario.net.as_ref().and_then(|n| n.single_class());
        let mut text = spec.to_string();
        if text.len() > LINK_SPEC_MAX {
            let mut cut = LINK_SPEC_MAX - '…'.len_utf8();
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        let mut bytes = [0u8; LINK_SPEC_MAX + 2];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Link {
            rtt_us: class.map(|c| (c.rtt_ms * 1_000.0).round().max(0.0) as u64),
            loss_ppm: class.map_or(0, |c| (c.loss * 1e6).round().max(0.0) as u64),
            spec: bytes,
            spec_len: text.len() as u8,
        })
    }

    /// The spec as given (cut if very long).
    pub fn spec(&self) -> &str {
        // Built from a `&str` cut on a character boundary, so this is valid UTF-8.
        std::str::from_utf8(&self.spec[..usize::from(self.spec_len)]).unwrap_or("?")
    }

    /// Round trip in ms, when known.
    pub fn rtt_ms(&self) -> Option<f64> {
        self.rtt_us.map(|us| us as f64 / 1_000.0)
    }

    /// A file-name fragment: `rtt-100ms-loss-1` for `rtt=100ms,loss=1%`.
    pub fn slug(&self) -> String {
        let mut out = String::new();
        for c in self.spec().chars() {
            if c.is_ascii_alphanumeric() || c == '.' {
                out.push(c.to_ascii_lowercase());
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        out.trim_matches('-').to_string()
    }
}

/// The HTTP version a scenario asked for (`params.http`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum HttpVersion {
    /// HTTP/1.1, what every file written before issue 12 measured.
    #[default]
    Http1,
    /// HTTP/2: negotiated by ALPN over TLS, with prior knowledge (h2c) in plaintext.
    Http2,
}

/// The protocol stack a scenario ran over, as part of its key: TLS or plaintext, the HTTP
/// version, how many clients share an HTTP/2 connection, and whether TLS sessions resume.
///
/// The default is plaintext HTTP/1.1 with one connection per client, which is what a file
/// without these parameters measured; it sorts first and adds nothing to labels, so such
/// files key, sort and read exactly as before. Keep-alive is the [`Variant`]'s, since it
/// has always been part of the legend entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Stack {
    /// TLS on.
    pub tls: bool,
    /// The HTTP version.
    pub http: HttpVersion,
    /// Clients multiplexed on one HTTP/2 connection (1 = each its own).
    pub streams_per_connection: u32,
    /// TLS session resumption; `None` without TLS.
    pub tls_resumption: Option<bool>,
}

impl Default for Stack {
    fn default() -> Stack {
        Stack {
            tls: false,
            http: HttpVersion::Http1,
            streams_per_connection: 1,
            tls_resumption: None,
        }
    }
}

/// Stacks sort plaintext before TLS, HTTP/1.1 before HTTP/2, fewer streams per connection
/// first, and resuming TLS sessions (the default) before not resuming.
impl Ord for Stack {
    fn cmp(&self, other: &Stack) -> std::cmp::Ordering {
        self.sort_key().cmp(&other.sort_key())
    }
}

impl PartialOrd for Stack {
    fn partial_cmp(&self, other: &Stack) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Stack {
    /// What stacks sort by; distinct for distinct stacks, so the order agrees with `Eq`.
    fn sort_key(&self) -> (bool, HttpVersion, u32, u8) {
        let resumption = match self.tls_resumption {
            None => 0,
            Some(true) => 1,
            Some(false) => 2,
        };
        (self.tls, self.http, self.streams_per_connection, resumption)
    }

    /// The stack a scenario's parameters ask for.
    pub fn of(params: &Params) -> Stack {
        Stack {
            tls: params.tls,
            // The load generator accepts `1.1` and `2` only; anything else was HTTP/1.1.
            http: if params.http == feedbench_results::HTTP_2 {
                HttpVersion::Http2
            } else {
                HttpVersion::Http1
            },
            streams_per_connection: params.streams_per_connection.max(1),
            tls_resumption: params.tls.then_some(params.tls_resumption).flatten(),
        }
    }

    /// Plaintext HTTP/1.1, one connection per client: what every older file measured.
    pub fn is_plain(&self) -> bool {
        *self == Stack::default()
    }

    /// The stack's name: `TLS·h2`, `TLS·h1.1`, `h2c`, `h1.1`, with `·8 streams/conn` when
    /// clients share HTTP/2 connections and `·no resumption` when TLS sessions do not resume.
    pub fn label(&self) -> String {
        let http = match (self.tls, self.http) {
            (true, HttpVersion::Http2) => "TLS·h2",
            (true, HttpVersion::Http1) => "TLS·h1.1",
            (false, HttpVersion::Http2) => "h2c",
            (false, HttpVersion::Http1) => "h1.1",
        };
        let mut label = http.to_string();
        if self.streams_per_connection > 1 {
            label.push_str(&format!("·{} streams/conn", self.streams_per_connection));
        }
        if self.tls_resumption == Some(false) {
            label.push_str("·no resumption");
        }
        label
    }

    /// A file-name fragment: `tls-h2`, `tls-h1.1`, `h2c`, `h1.1`, then `-m8` for 8 streams
    /// per connection and `-noresume`.
    pub fn slug(&self) -> String {
        let mut slug = match (self.tls, self.http) {
            (true, HttpVersion::Http2) => "tls-h2",
            (true, HttpVersion::Http1) => "tls-h1.1",
            (false, HttpVersion::Http2) => "h2c",
            (false, HttpVersion::Http1) => "h1.1",
        }
        .to_string();
        if self.streams_per_connection > 1 {
            slug.push_str(&format!("-m{}", self.streams_per_connection));
        }
        if self.tls_resumption == Some(false) {
            slug.push_str("-noresume");
        }
        slug
    }
}

/// `, TLS·h2` for a stack other than plaintext HTTP/1.1, nothing for that one.
pub fn stack_phrase(stack: Stack) -> String {
    if stack.is_plain() {
        String::new()
    } else {
        format!(", {}", stack.label())
    }
}

/// `-tls-h2` for a stack other than plaintext HTTP/1.1, nothing for that one.
pub fn stack_slug(stack: Stack) -> String {
    if stack.is_plain() {
        String::new()
    } else {
        format!("-{}", stack.slug())
    }
}

/// One load point: how many clients, how fast, how big, over which link and protocol stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Load {
    /// Concurrent clients.
    pub clients: u64,
    /// Events per second × 1,000.
    pub rate_mhz: u64,
    /// Event payload size.
    pub payload_bytes: u64,
    /// The emulated link; `None` on loopback (after the figures above, so loopback keys
    /// sort as before).
    pub link: Option<Link>,
    /// The protocol stack (last, so plaintext HTTP/1.1 keys sort as before).
    pub stack: Stack,
}

impl Load {
    /// Events per second.
    pub fn rate_hz(&self) -> f64 {
        self.rate_mhz as f64 / 1_000.0
    }

    /// A phrase naming the load: `100 clients, 10 events/s, 64 B payload`, with
    /// `, link rtt=100ms` over an emulated link and `, TLS·h2` over a stack other than
    /// plaintext HTTP/1.1.
    pub fn describe(&self) -> String {
        format!(
            "{} clients, {}, {} B payload{}{}",
            format::thousands(self.clients),
            format::rate(self.rate_hz()),
            self.payload_bytes,
            link_phrase(self.link),
            stack_phrase(self.stack)
        )
    }

    /// A file-name fragment: `c100-r10-s64`, with `-net-rtt-100ms` over an emulated link
    /// and `-tls-h2` over a stack other than plaintext HTTP/1.1.
    pub fn slug(&self) -> String {
        format!(
            "c{}-r{}-s{}{}{}",
            self.clients,
            slug_number(self.rate_hz()),
            self.payload_bytes,
            link_slug(self.link),
            stack_slug(self.stack)
        )
    }

    /// The same point over plaintext HTTP/1.1: what charts that set stacks side by side
    /// slice by.
    pub fn without_stack(&self) -> Load {
        Load {
            stack: Stack::default(),
            ..*self
        }
    }
}

/// A variant over a stack: `ws`, or `ws over TLS·h2` for a stack other than plaintext
/// HTTP/1.1.
pub fn variant_over(variant: &Variant, stack: Stack) -> String {
    if stack.is_plain() {
        variant.label()
    } else {
        format!("{} over {}", variant.label(), stack.label())
    }
}

/// `, link SPEC` for a link, nothing on loopback.
pub fn link_phrase(link: Option<Link>) -> String {
    link.map_or_else(String::new, |l| format!(", link {}", l.spec()))
}

/// `-net-SLUG` for a link, nothing on loopback.
pub fn link_slug(link: Option<Link>) -> String {
    link.map_or_else(String::new, |l| format!("-net-{}", l.slug()))
}

/// Spells a number for a file name: `10`, `0.5`.
pub fn slug_number(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// What a scenario measured, apart from its repeat index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScenarioKey {
    /// The legend entry.
    pub variant: Variant,
    /// The load point.
    pub load: Load,
    /// Measure window, ms.
    pub duration_ms: u64,
    /// Warm-up, ms.
    pub warmup_ms: u64,
}

impl ScenarioKey {
    /// The key of a scenario: its parameters and its link.
    pub fn of_scenario(scenario: &ScenarioResult) -> ScenarioKey {
        let mut key = ScenarioKey::of(scenario.transport, &scenario.params);
        key.load.link = Link::of(scenario);
        key
    }

    /// The key of a scenario's parameters alone, without its link
    /// ([`ScenarioKey::of_scenario`] adds it).
    pub fn of(transport: Transport, params: &Params) -> ScenarioKey {
        ScenarioKey {
            variant: Variant {
                transport,
                poll_interval_ms: params.poll_interval_ms,
                keepalive: params.keepalive,
            },
            load: Load {
                clients: params.clients,
                rate_mhz: rate_mhz(params.rate_hz),
                payload_bytes: params.payload_bytes,
                link: None,
                stack: Stack::of(params),
            },
            duration_ms: secs_to_ms(params.duration_s),
            warmup_ms: secs_to_ms(params.warmup_s),
        }
    }

    /// The legend entry with its stack: `ws`, or `ws over TLS·h2` for a stack other than
    /// plaintext HTTP/1.1.
    pub fn label(&self) -> String {
        variant_over(&self.variant, self.load.stack)
    }

    /// A readable name: `ws at 100 clients, 10 events/s, 64 B payload`.
    pub fn describe(&self) -> String {
        format!("{} at {}", self.variant.label(), self.load.describe())
    }

    /// A compact, stable name: `ws-c100-r10-s64`, `short-poll-c100-r10-s64-i1000`.
    ///
    /// It follows the load generator's scenario names, and adds the window only when it is
    /// needed to tell keys apart (see [`Dataset::short_name`]).
    pub fn slug(&self) -> String {
        let mut s = format!("{}-{}", self.variant.transport, self.load.slug());
        if let Some(ms) = self.variant.poll_interval_ms {
            s.push_str(&format!("-i{ms}"));
        }
        if !self.variant.keepalive && self.variant.transport.is_polling() {
            s.push_str("-nokeepalive");
        }
        s.push_str(&link_slug(self.load.link));
        s
    }
}

/// Median, min and max of one metric over a scenario's repeats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median (mean of the middle two for an even count).
    pub median: f64,
    /// The smallest repeat.
    pub min: f64,
    /// The largest repeat.
    pub max: f64,
    /// How many repeats.
    pub n: usize,
}

impl Spread {
    /// Summarises values, ignoring non-finite ones; `None` when none is left.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }

    /// The range relative to the median, (max − min) / median; 0 for a zero median.
    pub fn relative_range(&self) -> f64 {
        if self.median == 0.0 {
            0.0
        } else {
            (self.max - self.min) / self.median.abs()
        }
    }
}

/// The repeats of one scenario key.
#[derive(Debug, Clone)]
pub struct Group {
    /// What they measured.
    pub key: ScenarioKey,
    /// The load generator's scenario name (from the first repeat).
    pub name: String,
    /// Every repeat, in file order, whatever its status.
    pub repeats: Vec<ScenarioResult>,
}

impl Group {
    /// Repeats that can be charted: not failed and with something delivered.
    pub fn usable(&self) -> impl Iterator<Item = &ScenarioResult> {
        self.repeats
            .iter()
            .filter(|s| s.status != Status::Failed && s.events.delivered > 0)
    }

    /// Repeats that ran to the end; the only ones `compare` judges.
    pub fn complete(&self) -> impl Iterator<Item = &ScenarioResult> {
        self.repeats.iter().filter(|s| s.status == Status::Complete)
    }

    /// The spread of a metric over the usable repeats.
    pub fn spread(&self, metric: impl Fn(&ScenarioResult) -> Option<f64>) -> Option<Spread> {
        Spread::of(self.usable().filter_map(metric))
    }

    /// How far the delivery latency may be off because of the clock comparison, µs: the
    /// largest [`ScenarioResult::clock_uncertainty_us`] among the usable repeats, so the
    /// figure bounds every repeat the medians come from. `None` when no repeat has one, and
    /// always on a loopback target (one host, one clock).
    pub fn clock_uncertainty_us(&self, target_is_loopback: bool) -> Option<f64> {
        self.usable()
            .filter_map(|s| s.clock_uncertainty_us(target_is_loopback))
            .max_by(f64::total_cmp)
    }

    /// The warning that the group's latency is only known to within that uncertainty, when
    /// it exceeds a tenth of the median p50 delivery latency (the rule of
    /// [`clock_uncertainty_warning`]).
    pub fn clock_warning(&self, target_is_loopback: bool) -> Option<String> {
        let uncertainty_us = self.clock_uncertainty_us(target_is_loopback)?;
        let p50_us = self.spread(|s| Some(s.latency_us.p50 as f64))?.median;
        clock_uncertainty_warning(uncertainty_us, p50_us)
    }
}

/// One results file with its scenarios grouped, as reports and compare use it.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// A short label for legends and headings: `baseline`, a run directory's name.
    pub label: String,
    /// The parsed file.
    pub results: Results,
    /// Repeat groups, sorted by key.
    pub groups: Vec<Group>,
}

impl Dataset {
    /// Groups a file's scenarios by key.
    pub fn new(label: impl Into<String>, results: Results) -> Dataset {
        let mut by_key: BTreeMap<ScenarioKey, Group> = BTreeMap::new();
        for scenario in &results.scenarios {
            let key = ScenarioKey::of_scenario(scenario);
            by_key
                .entry(key)
                .or_insert_with(|| Group {
                    key,
                    name: scenario.name.clone(),
                    repeats: Vec::new(),
                })
                .repeats
                .push(scenario.clone());
        }
        Dataset {
            label: label.into(),
            results,
            groups: by_key.into_values().collect(),
        }
    }

    /// Adds another file's scenarios as further repeats (e.g. interleaved CI rounds).
    pub fn merge(&mut self, other: Results) {
        let mut all = std::mem::take(&mut self.results.scenarios);
        all.extend(other.scenarios);
        self.results.scenarios = all;
        *self = Dataset::new(std::mem::take(&mut self.label), self.results.clone());
    }

    /// Whether the file's target is a loopback address, so the load generator and the
    /// server read one clock and latency carries no clock uncertainty.
    pub fn target_is_loopback(&self) -> bool {
        is_loopback_target(&self.results.target)
    }

    /// The group for a key, if this file measured it.
    pub fn group(&self, key: &ScenarioKey) -> Option<&Group> {
        self.groups
            .binary_search_by(|g| g.key.cmp(key))
            .ok()
            .map(|i| &self.groups[i])
    }

    /// The base latency L0 of the model for a scenario over a link, ms: the median over the
    /// loopback group with the same transport and parameters, when the file has one, of
    /// what each run gives (`model::base_latency_ms`: its p50, or for short-poll its mean
    /// less half the interval).
    pub fn model_base_latency_ms(&self, key: &ScenarioKey) -> Option<f64> {
        let mut loopback = *key;
        loopback.load.link = None;
        let base = self
            .group(&loopback)?
            .spread(feedbench_results::model::base_latency_ms)?;
        Some(base.median)
    }

    /// A short name for a group: the key's slug, plus the window when two keys differ
    /// only by it.
    pub fn short_name(&self, key: &ScenarioKey) -> String {
        let clash = self
            .groups
            .iter()
            .filter(|g| g.key.variant == key.variant && g.key.load == key.load)
            .count()
            > 1;
        if clash {
            format!(
                "{}-d{}",
                key.slug(),
                slug_number(key.duration_ms as f64 / 1e3)
            )
        } else {
            key.slug()
        }
    }
}

/// A default label for a results file: its run directory's name when the file is
/// `results.json`, else the file stem.
pub fn default_label(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".to_string());
    if stem == "results" {
        if let Some(dir) = path.parent().and_then(Path::file_name) {
            return dir.to_string_lossy().into_owned();
        }
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_median_min_max() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (2.0, 1.0, 3.0, 3));
        let s = Spread::of([4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Spread::of([f64::NAN]).is_none());
    }

    #[test]
    fn variant_labels_use_user_spellings() {
        let v = Variant {
            transport: Transport::ShortPoll,
            poll_interval_ms: Some(1_000),
            keepalive: true,
        };
        assert_eq!(v.label(), "short-poll (1 s)");
        let v = Variant {
            transport: Transport::ShortPoll,
            poll_interval_ms: Some(100),
            keepalive: false,
        };
        assert_eq!(v.label(), "short-poll (100 ms, no keep-alive)");
        let v = Variant {
            transport: Transport::Ws,
            poll_interval_ms: None,
            keepalive: true,
        };
        assert_eq!(v.label(), "ws");
    }

    /// Parameters as a file spells them, with the stack fields given.
    fn params(stack: serde_json::Value) -> Params {
        let mut p = serde_json::json!({
            "clients": 10, "rate_hz": 1.0, "payload_bytes": 64, "poll_interval_ms": null,
            "duration_s": 10.0, "warmup_s": 1.0, "keepalive": true
        });
        if let (Some(p), Some(extra)) = (p.as_object_mut(), stack.as_object()) {
            p.extend(extra.clone());
        }
        serde_json::from_value(p).unwrap()
    }

    #[test]
    fn stacks_come_from_the_parameters_and_old_files_are_plain() {
        let old = Stack::of(&params(serde_json::json!({})));
        assert!(old.is_plain());
        assert_eq!(
            (old.label(), stack_phrase(old), stack_slug(old)),
            ("h1.1".into(), String::new(), String::new())
        );
        let tls_h2 = Stack::of(&params(
            serde_json::json!({"tls": true, "http": "2", "tls_resumption": true}),
        ));
        assert_eq!(tls_h2.label(), "TLS·h2");
        assert_eq!(stack_phrase(tls_h2), ", TLS·h2");
        assert_eq!(stack_slug(tls_h2), "-tls-h2");
        let h2c = Stack::of(&params(
            serde_json::json!({"http": "2", "streams_per_connection": 8}),
        ));
        assert_eq!(
            (h2c.label(), h2c.slug()),
            ("h2c·8 streams/conn".into(), "h2c-m8".into())
        );
        let cold = Stack::of(&params(
            serde_json::json!({"tls": true, "tls_resumption": false}),
        ));
        assert_eq!(
            (cold.label(), cold.slug()),
            ("TLS·h1.1·no resumption".into(), "tls-h1.1-noresume".into())
        );
        // Plaintext first, HTTP/1.1 before HTTP/2, resuming before not.
        let mut all = [
            cold,
            tls_h2,
            h2c,
            old,
            Stack::of(&params(
                serde_json::json!({"tls": true, "tls_resumption": true}),
            )),
        ];
        all.sort();
        let labels: Vec<String> = all.iter().map(Stack::label).collect();
        assert_eq!(
            labels,
            [
                "h1.1",
                "h2c·8 streams/conn",
                "TLS·h1.1",
                "TLS·h1.1·no resumption",
                "TLS·h2"
            ]
        );
        let key = ScenarioKey::of(
            Transport::Ws,
            &params(serde_json::json!({"tls": true, "http": "2"})),
        );
        assert_eq!(key.label(), "ws over TLS·h2");
        assert_eq!(key.slug(), "ws-c10-r1-s64-tls-h2");
        assert_eq!(
            key.load.describe(),
            "10 clients, 1 event/s, 64 B payload, TLS·h2"
        );
    }

    #[test]
    fn default_label_prefers_the_run_directory() {
        assert_eq!(
            default_label(Path::new("bench-results/quick-2025/results.json")),
            "quick-2025"
        );
        assert_eq!(default_label(Path::new("/tmp/baseline.json")), "baseline");
    }
}
