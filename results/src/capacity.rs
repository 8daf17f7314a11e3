//! The results' `capacity` field: the largest client count (or event rate) each transport
//! sustains within a latency SLO, with the bracket that bounds it.
//!
//! Data only. `feedbench find` (the load generator's `finder` module) fills it from a
//! search of probes, each probe one or more scenario runs kept in the same file; a suite's
//! `p99_limit` steps (the connections suite) read as the same type through
//! [`Capacity::from_p99_limit`], where the steps are the probes and the SLO is p99 alone.
//!
//! Invariant: a transport's answer is a bracket. `last_pass` passed (every run of its
//! probe within every SLO term, and nothing missed where `no_missed`), `first_fail`
//! failed, and `last_pass < first_fail`; the capacity lies in `[last_pass, first_fail)`.
//! Either end may be absent: no pass (failed at the smallest value tried) or no fail
//! (passed at the largest value tried, or stopped by a budget first).

use serde::{Deserialize, Serialize};

use crate::p99_limit::P99Limit;
use crate::transport::Transport;

/// What a capacity search varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Vary {
    /// Concurrent clients, at a fixed event rate.
    Clients,
    /// Events per second (whole numbers), at a fixed client count.
    Rate,
}

impl Vary {
    /// The user's spelling: `clients` or `rate`.
    pub fn as_str(self) -> &'static str {
        match self {
            Vary::Clients => "clients",
            Vary::Rate => "rate",
        }
    }

    /// The unit a value is counted in: `clients` or `events/s`.
    pub fn unit(self) -> &'static str {
        match self {
            Vary::Clients => "clients",
            Vary::Rate => "events/s",
        }
    }
}

/// How the probes were chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// `feedbench find`: geometric bracketing from a start, then bisection.
    Search,
    /// A suite's fixed steps (its `p99_limit`), each a probe.
    Steps,
}

/// A latency percentile an SLO can bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Percentile {
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 99th percentile.
    P99,
    /// 99.9th percentile.
    P999,
    /// Largest sample.
    Max,
}

impl Percentile {
    /// Every percentile, in order.
    pub const ALL: [Percentile; 5] = [
        Percentile::P50,
        Percentile::P90,
        Percentile::P99,
        Percentile::P999,
        Percentile::Max,
    ];

    /// The spelling in SLOs and files: `p50`, `p90`, `p99`, `p999`, `max`.
    pub fn as_str(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P90 => "p90",
            Percentile::P99 => "p99",
            Percentile::P999 => "p999",
            Percentile::Max => "max",
        }
    }
}

/// One SLO term: delivery latency at `percentile` must not exceed `limit_us`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SloTerm {
    /// The percentile bounded.
    pub percentile: Percentile,
    /// Its limit, µs (a transport's `slack_us` is added to it).
    pub limit_us: u64,
}

/// What a search was allowed to spend, and what it spent (all transports together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Most scenario runs per transport.
    pub max_runs: u64,
    /// Most wall-clock seconds for the whole search, every transport.
    pub max_time_s: f64,
    /// Scenario runs made.
    pub runs_used: u64,
    /// Wall-clock seconds spent.
    pub time_used_s: f64,
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailReason {
    /// A latency percentile over its limit (in the worst run of the probe).
    Latency {
        /// The percentile.
        percentile: Percentile,
        /// Measured, µs.
        measured_us: u64,
        /// The limit it was judged against (the SLO term plus the transport's slack), µs.
        limit_us: u64,
    },
    /// Events missed (summed over the probe's runs).
    Missed {
        /// Missed deliveries (event × client).
        events: u64,
    },
    /// A run did not complete, or delivered nothing to measure.
    Incomplete {
        /// What happened.
        message: String,
    },
    /// The load generator could not run that many clients (descriptors, ephemeral
    /// ports): a limit of the client side, not of the server.
    ClientLimit {
        /// The load generator's explanation.
        message: String,
    },
}

impl FailReason {
    /// Whether this is a limit of the client side rather than a measurement.
    pub fn is_client_limit(&self) -> bool {
        matches!(self, FailReason::ClientLimit { .. })
    }

    /// A short phrase, e.g. `p99 142.0 ms > 100.0 ms` or `3 events missed`.
    pub fn describe(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        match self {
            FailReason::Latency {
                percentile,
                measured_us,
                limit_us,
            } => {
                // One decimal of a millisecond, unless that would print a fail as
                // `100.0 ms > 100.0 ms`; then to the microsecond.
                let digits =
                    if format!("{:.1}", ms(*measured_us)) == format!("{:.1}", ms(*limit_us)) {
                        3
                    } else {
                        1
                    };
                format!(
                    "{} {:.digits$} ms > {:.digits$} ms",
                    percentile.as_str(),
                    ms(*measured_us),
                    ms(*limit_us)
                )
            }
            FailReason::Missed { events } => format!("{events} events missed"),
            FailReason::Incomplete { message } => format!("incomplete: {message}"),
            FailReason::ClientLimit { message } => format!("client-side limit: {message}"),
        }
    }
}

/// Why a transport's search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// A pass and a fail as close as the resolution asks (or neighbouring steps).
    Converged,
    /// Passed at the largest value allowed (`--max`, or the last step).
    MaxReached,
    /// Failed at the smallest value (1, or the first step).
    FailsAtMinimum,
    /// The next probe would exceed the runs budget.
    RunBudget,
    /// The next probe would exceed the time budget.
    TimeBudget,
    /// The load generator cannot run the next value (descriptors, ports).
    ClientLimit,
    /// The run was interrupted or the server failed.
    Aborted,
}

impl Stop {
    /// The spelling in files and tables, e.g. `max_reached`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Converged => "converged",
            Stop::MaxReached => "max_reached",
            Stop::FailsAtMinimum => "fails_at_minimum",
            Stop::RunBudget => "run_budget",
            Stop::TimeBudget => "time_budget",
            Stop::ClientLimit => "client_limit",
            Stop::Aborted => "aborted",
        }
    }
}

/// One probe: a value tried, and how its runs went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Probe {
    /// The value tried (clients, or events/s).
    pub value: u64,
    /// Whether every run of it passed.
    pub pass: bool,
    /// Indices into the file's `scenarios` of its runs (empty for a suite's steps, whose
    /// scenarios are found by their name).
    pub scenarios: Vec<u64>,
    /// The worst p99 delivery latency over its runs, µs (null if none delivered).
    pub p99_us: Option<u64>,
    /// Missed deliveries summed over its runs.
    pub missed: u64,
    /// Why it failed; empty when it passed.
    pub reasons: Vec<FailReason>,
    /// How many of its runs passed (a probe stops at its first failing run, or, when
    /// confirming a failure, at its first passing one); null for a suite's steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs_passed: Option<u32>,
    /// Made after the bisection, to confirm an end of the answer (see [`Confirmed`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm: bool,
}

/// A value inside the noise band around the capacity: tried while confirming an end, its
/// runs were not unanimous for that end. Below the last pass at least one of its runs
/// failed; above the first fail at least one passed, which may be its only run (the search
/// steps on at the first run that disagrees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mixed {
    /// The value.
    pub value: u64,
    /// Runs that passed.
    pub passed: u32,
    /// Runs made.
    pub runs: u32,
}

/// The answer with the measurement's noise in it, from `feedbench find --confirm N`.
///
/// Near its capacity a server passes the SLO in some runs and fails it in others, so a
/// bisection's bracket lands wherever its few runs happened to fall, and two searches'
/// brackets can miss each other. Confirmation re-runs the bracket's ends until each is
/// unanimous: `pass` is the largest value found where all `runs` runs passed, stepping
/// down by the resolution from the last pass while runs disagree, and `fail` the smallest
/// where all `runs` runs failed, stepping up from the first fail. The capacity lies in
/// `[pass, fail)`, and every value whose pass rate is neither near 1 nor near 0 lies
/// inside it: a value that passes half its runs survives `runs` = 5 unanimous runs with
/// probability 1/32, at either end. So two confirmed answers overlap where two brackets
/// need not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirmed {
    /// Runs an end needs, every one with the same outcome.
    pub runs: u32,
    /// The largest value where every one of `runs` runs passed; null if none was found
    /// (down to 1, or within the budget).
    pub pass: Option<u64>,
    /// The smallest value above `pass` where every one of `runs` runs failed; null if none
    /// was found (up to the maximum, or within the budget).
    pub fail: Option<u64>,
    /// Values tried in between whose runs disagreed, ascending.
    pub mixed: Vec<Mixed>,
    /// Why confirmation ended: `converged` when both ends are unanimous; otherwise
    /// `fails_at_minimum` (no unanimous pass down to 1), `max_reached` (no unanimous fail
    /// up to the maximum), `run_budget`, `time_budget`, `client_limit` or `aborted`.
    pub stop: Stop,
}

/// One transport's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransportCapacity {
    /// Transport.
    pub transport: Transport,
    /// Its series: `ws`, or the suite's group name (`ws-r1-s64`).
    pub label: String,
    /// Short-poll interval, ms (null for the other transports).
    pub poll_interval_ms: Option<u64>,
    /// The fixed client count when the rate varies.
    pub clients: Option<u64>,
    /// The fixed event rate when the clients vary, events/s.
    pub rate_hz: Option<f64>,
    /// Event payload, bytes.
    pub payload_bytes: u64,
    /// Added to every SLO term for this transport, µs: a short-poll client waits up to one
    /// interval for an event by design, so it is judged on what load adds on top.
    pub slack_us: u64,
    /// The largest value that passed below `first_fail`.
    pub last_pass: Option<u64>,
    /// The smallest value that failed.
    pub first_fail: Option<u64>,
    /// Why `first_fail` failed.
    pub first_fail_reasons: Vec<FailReason>,
    /// Why the search stopped.
    pub stop: Stop,
    /// The load generator's own limit (descriptors, ports) that stopped the search, when
    /// one did: the server was not judged beyond it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_limit: Option<String>,
    /// Scenario runs made for this transport.
    pub runs: u64,
    /// Every probe, in the order tried.
    pub probes: Vec<Probe>,
    /// The bracket's ends confirmed by repeated runs, when the search was asked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed: Option<Confirmed>,
}

impl TransportCapacity {
    /// The answer's interval: the confirmed ends when the search confirmed them, else the
    /// bracket's.
    pub fn interval(&self) -> (Option<u64>, Option<u64>) {
        match &self.confirmed {
            Some(c) => (c.pass, c.fail),
            None => (self.last_pass, self.first_fail),
        }
    }

    /// The interval's relative width, `high / low − 1`, when both ends exist.
    pub fn relative_uncertainty(&self) -> Option<f64> {
        match self.interval() {
            (Some(p), Some(f)) if p > 0 => Some(f as f64 / p as f64 - 1.0),
            _ => None,
        }
    }
}

/// The results' `capacity` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// What varied.
    pub vary: Vary,
    /// How the probes were chosen.
    pub method: Method,
    /// Every term must hold in every run of a probe.
    pub slo: Vec<SloTerm>,
    /// Whether a missed event fails a probe.
    pub no_missed: bool,
    /// Runs per probe; a probe passes only if every one passes (the worse decides).
    pub repeats: u32,
    /// The search stops bisecting when `first_fail ≤ last_pass × (1 + resolution)` (or
    /// they are neighbours); null for steps.
    pub resolution: Option<f64>,
    /// What the search could spend and spent; null for steps.
    pub budget: Option<Budget>,
    /// One answer per transport, in the order searched.
    pub transports: Vec<TransportCapacity>,
}

impl Capacity {
    /// A suite's p99-limit steps as a capacity: each series a transport, each step a
    /// probe (judged by the median p99 over its repeats), the SLO p99 alone, missed events
    /// not judged (the suite did not).
    pub fn from_p99_limit(limit: &P99Limit) -> Capacity {
        let transports = limit
            .series
            .iter()
            .map(|s| {
                let probes: Vec<Probe> = s
                    .steps
                    .iter()
                    .map(|step| {
                        let pass = step.p99_us <= s.limit_us;
                        Probe {
                            value: step.clients,
                            pass,
                            scenarios: Vec::new(),
                            p99_us: Some(step.p99_us),
                            missed: 0,
                            reasons: if pass {
                                Vec::new()
                            } else {
                                vec![FailReason::Latency {
                                    percentile: Percentile::P99,
                                    measured_us: step.p99_us,
                                    limit_us: s.limit_us,
                                }]
                            },
                            runs_passed: None,
                            confirm: false,
                        }
                    })
                    .collect();
                let first_fail_reasons = s
                    .crossed_at_clients
                    .and_then(|n| probes.iter().find(|p| p.value == n))
                    .map(|p| p.reasons.clone())
                    .unwrap_or_default();
                let stop = match (s.crossed_at_clients, s.highest_within_clients) {
                    (Some(_), Some(_)) => Stop::Converged,
                    (Some(_), None) => Stop::FailsAtMinimum,
                    (None, _) => Stop::MaxReached,
                };
                let interval = poll_interval_of(&s.group);
                TransportCapacity {
                    transport: s.transport,
                    label: s.group.clone(),
                    poll_interval_ms: interval,
                    clients: None,
                    rate_hz: None,
                    payload_bytes: 0,
                    slack_us: s.limit_us.saturating_sub(limit.limit_us),
                    last_pass: s.highest_within_clients,
                    first_fail: s.crossed_at_clients,
                    first_fail_reasons,
                    stop,
                    client_limit: None,
                    runs: s.steps.iter().map(|x| x.repeats).sum(),
                    probes,
                    confirmed: None,
                }
            })
            .collect();
        Capacity {
            vary: Vary::Clients,
            method: Method::Steps,
            slo: vec![SloTerm {
                percentile: Percentile::P99,
                limit_us: limit.limit_us,
            }],
            no_missed: false,
            repeats: 1,
            resolution: None,
            budget: None,
            transports,
        }
    }

    /// The SLO as written: `p99=100ms` or `p50=5ms,p99=100ms`, plus `, no event missed`.
    pub fn slo_text(&self) -> String {
        let terms: Vec<String> = self
            .slo
            .iter()
            .map(|t| {
                format!(
                    "{}={}",
                    t.percentile.as_str(),
                    crate::units::micros(t.limit_us as f64)
                )
            })
            .collect();
        let mut text = terms.join(", ");
        if self.no_missed {
            text.push_str(", no event missed");
        }
        text
    }
}

/// The short-poll interval a suite's group name carries (`short-poll-r1-s64-i1000`).
fn poll_interval_of(group: &str) -> Option<u64> {
    group
        .split('-')
        .find_map(|part| part.strip_prefix('i').and_then(|n| n.parse().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::p99_limit::{Series, Step};

    fn step(clients: u64, p99_us: u64) -> Step {
        Step {
            clients,
            repeats: 1,
            p99_us,
            server_cpu_s: None,
            server_rss_peak_bytes: None,
        }
    }

    #[test]
    fn p99_limit_steps_read_as_a_capacity() {
        let limit = P99Limit {
            limit_us: 100_000,
            series: vec![
                Series {
                    group: "ws-r1-s64".into(),
                    transport: Transport::Ws,
                    limit_us: 100_000,
                    steps: vec![
                        step(1000, 22_000),
                        step(5000, 114_000),
                        step(10000, 205_000),
                    ],
                    crossed_at_clients: Some(5000),
                    highest_within_clients: Some(1000),
                },
                Series {
                    group: "short-poll-r1-s64-i1000".into(),
                    transport: Transport::ShortPoll,
                    limit_us: 1_100_000,
                    steps: vec![step(1000, 987_000), step(19000, 991_000)],
                    crossed_at_clients: None,
                    highest_within_clients: Some(19000),
                },
                Series {
                    group: "sse-r1-s64".into(),
                    transport: Transport::Sse,
                    limit_us: 100_000,
                    steps: vec![step(1000, 120_000)],
                    crossed_at_clients: Some(1000),
                    highest_within_clients: None,
                },
            ],
        };
        let c = Capacity::from_p99_limit(&limit);
        assert_eq!(
            (c.vary, c.method, c.repeats),
            (Vary::Clients, Method::Steps, 1)
        );
        assert_eq!(c.slo_text(), "p99=100 ms");
        let ws = &c.transports[0];
        assert_eq!(
            (ws.last_pass, ws.first_fail, ws.stop),
            (Some(1000), Some(5000), Stop::Converged)
        );
        assert_eq!(
            ws.first_fail_reasons,
            vec![FailReason::Latency {
                percentile: Percentile::P99,
                measured_us: 114_000,
                limit_us: 100_000
            }]
        );
        assert_eq!(
            ws.first_fail_reasons[0].describe(),
            "p99 114.0 ms > 100.0 ms"
        );
        // A fail by a few microseconds is not printed as equal to its limit.
        let close = FailReason::Latency {
            percentile: Percentile::P99,
            measured_us: 100_004,
            limit_us: 100_000,
        };
        assert_eq!(close.describe(), "p99 100.004 ms > 100.000 ms");
        assert_eq!(ws.relative_uncertainty(), Some(4.0));
        let pass: Vec<bool> = ws.probes.iter().map(|p| p.pass).collect();
        assert_eq!(pass, [true, false, false]);
        let sp = &c.transports[1];
        assert_eq!((sp.slack_us, sp.poll_interval_ms), (1_000_000, Some(1000)));
        assert_eq!(
            (sp.last_pass, sp.first_fail, sp.stop),
            (Some(19000), None, Stop::MaxReached)
        );
        let sse = &c.transports[2];
        assert_eq!((sse.last_pass, sse.stop), (None, Stop::FailsAtMinimum));
    }

    #[test]
    fn fail_reasons_serialize_tagged() {
        let r = FailReason::ClientLimit {
            message: "fds".into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"kind":"client_limit","message":"fds"}"#
        );
        assert!(r.is_client_limit());
        let m = FailReason::Missed { events: 3 };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"kind":"missed","events":3}"#
        );
        assert_eq!(m.describe(), "3 events missed");
    }
}
