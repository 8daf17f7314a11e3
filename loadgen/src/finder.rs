//! `feedbench find`'s search: the largest client count (or event rate) a transport
//! sustains within a latency SLO with no event missed, bracketed and bisected within a
//! budget of runs and time.
//!
//! Three layers, each testable alone:
//! - [`Bracket`] is the pure search: geometric growth from a start while probes pass
//!   (geometric shrinking while they fail), then geometric bisection between the last pass
//!   and the first fail until they are within the resolution. Every probe it asks for lies
//!   strictly inside the current bracket, so the bracket only ever narrows.
//! - [`search`] drives a [`Prober`] through a bracket under the budget: a probe is `repeats`
//!   runs of one value and passes only if every run passes (the worse decides; a failing run
//!   ends the probe early), and no probe starts that could overrun the runs or time left.
//! - [`run_find`] is the prober against a real server: every run a scenario of the load
//!   generator ([`run_scenario`]), on a fresh server when one is swapped in, every run kept
//!   in one results file whose `capacity` field (and a `capacity.json` beside it) is
//!   rewritten atomically after every probe.
//!
//! Noise: a value near the boundary may pass once and fail once. Requiring every one of
//! `repeats` runs to pass makes the answer the value that passes consistently, and the
//! stated uncertainty is the bracket `[last_pass, first_fail)`; repeated searches agree when
//! their brackets overlap.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;

use crate::client::Target;
use crate::clock::rfc3339;
use crate::limits;
use crate::progress::Progress;
use crate::results::{write_json_atomic, CpuSets, Results, ScenarioResult, Status};
use crate::runner::ServerSwap;
use crate::scenario::{run_scenario, RunSignals, ScenarioError, ScenarioSpec, Transport};
use feedbench_results::{
    Budget, Capacity, Confirmed, FailReason, Method, Mixed, Percentile, Probe, SloTerm, Stop,
    Summary, TransportCapacity, Vary,
};

/// Where a search starts, how far it may go, and when it is done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// The first value probed.
    pub start: u64,
    /// The largest value probed.
    pub max: u64,
    /// Growth (and shrink) factor while bracketing, above 1.
    pub growth: f64,
    /// Bisection stops when `first_fail ≤ last_pass × (1 + resolution)`.
    pub resolution: f64,
}

/// The search's state: the largest pass below the smallest fail.
#[derive(Debug, Clone, PartialEq)]
pub struct Bracket {
    cfg: SearchConfig,
    last_pass: Option<u64>,
    first_fail: Option<u64>,
}

impl Bracket {
    /// An empty bracket.
    pub fn new(cfg: SearchConfig) -> Self {
        Self {
            cfg,
            last_pass: None,
            first_fail: None,
        }
    }

    /// The largest value that passed (below `first_fail`).
    pub fn last_pass(&self) -> Option<u64> {
        self.last_pass
    }

    /// The smallest value that failed.
    pub fn first_fail(&self) -> Option<u64> {
        self.first_fail
    }

    /// The next value to probe, or why the search is done.
    pub fn next(&self) -> Result<u64, Stop> {
        let SearchConfig {
            start,
            max,
            growth,
            resolution,
        } = self.cfg;
        match (self.last_pass, self.first_fail) {
            (None, None) => Ok(start.clamp(1, max.max(1))),
            (Some(p), None) if p >= max => Err(Stop::MaxReached),
            (Some(p), None) => Ok(((p as f64 * growth).ceil() as u64).max(p + 1).min(max)),
            (None, Some(f)) if f <= 1 => Err(Stop::FailsAtMinimum),
            (None, Some(f)) => Ok(((f as f64 / growth).floor() as u64).clamp(1, f - 1)),
            (Some(p), Some(f)) => {
                if f <= p + 1 || f as f64 <= p as f64 * (1.0 + resolution) {
                    return Err(Stop::Converged);
                }
                // Geometric middle: capacities span decades, so halve the ratio.
                let mid = ((p as f64) * (f as f64)).sqrt().round() as u64;
                Ok(mid.clamp(p + 1, f - 1))
            }
        }
    }

    /// Records a probe's verdict.
    pub fn record(&mut self, value: u64, pass: bool) {
        if pass {
            self.last_pass = Some(self.last_pass.map_or(value, |p| p.max(value)));
        } else {
            self.first_fail = Some(self.first_fail.map_or(value, |f| f.min(value)));
        }
    }
}

/// One run of a probe, judged.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// Its index in the results' scenarios, if it ran.
    pub scenario: Option<u64>,
    /// Why it failed; empty: it passed.
    pub reasons: Vec<FailReason>,
    /// Its p99 delivery latency, µs, if it delivered anything.
    pub p99_us: Option<u64>,
    /// Missed deliveries.
    pub missed: u64,
    /// Wall-clock time it took (server swap included).
    pub took: Duration,
    /// The run was interrupted or the server failed: the search ends here.
    pub aborted: bool,
}

/// What the search runs: one run of one value.
pub trait Prober {
    /// Runs `value` once (the `repeat`-th run of its probe) and judges it.
    fn run(&mut self, value: u64, repeat: u32) -> impl Future<Output = RunOutcome>;
    /// A first estimate of one run's wall-clock time at `value`, before any was measured.
    fn estimate(&self, value: u64) -> Duration;
}

/// What a search may spend on one transport.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Allowance {
    /// Runs per probe; every one must pass.
    pub repeats: u32,
    /// Runs each end of the answer needs, all with the same outcome, once the bisection has
    /// converged (see [`Confirmed`]); 0: no confirmation, the bracket is the answer.
    pub confirm: u32,
    /// Most runs.
    pub max_runs: u64,
    /// Most wall-clock time.
    pub max_time: Duration,
}

/// One transport's search, finished.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchOutcome {
    /// The bracket at the end.
    pub last_pass: Option<u64>,
    /// See `last_pass`.
    pub first_fail: Option<u64>,
    /// Why `first_fail` failed.
    pub first_fail_reasons: Vec<FailReason>,
    /// Why the search stopped.
    pub stop: Stop,
    /// The load generator's limit that stopped it, if one did.
    pub client_limit: Option<String>,
    /// Runs made.
    pub runs: u64,
    /// Time the runs took.
    pub time_used: Duration,
    /// Every probe, in order.
    pub probes: Vec<Probe>,
    /// The confirmed ends, when the allowance asked for confirmation and the bisection
    /// converged.
    pub confirmed: Option<Confirmed>,
}

/// What a probe's runs are expected to show; the first run that does not ends the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Every run passes (the bisection's probes, and confirming a pass).
    Pass,
    /// Every run fails (confirming a fail).
    Fail,
}

/// A search in progress: the prober, what it may spend, and what it has found.
struct Driver<'p, P> {
    prober: &'p mut P,
    allowance: Allowance,
    out: SearchOutcome,
    /// Measured time per run over the prober's estimate, so later estimates learn from
    /// earlier runs (big client counts take longer to connect and close than estimated).
    slowdown: f64,
}

impl<P: Prober> Driver<'_, P> {
    /// Whether `runs` more runs of `value` fit the budget; the budget's stop if not.
    fn affords(&self, value: u64, runs: u32) -> Result<(), Stop> {
        if self.out.runs + u64::from(runs) > self.allowance.max_runs {
            return Err(Stop::RunBudget);
        }
        let expected = self.prober.estimate(value).mul_f64(self.slowdown) * runs;
        if self.out.time_used + expected > self.allowance.max_time {
            return Err(Stop::TimeBudget);
        }
        Ok(())
    }

    /// Up to `runs` runs of `value`, ending at the first that breaks `expect`; the probe is
    /// kept in `out.probes`. `Err` when the search must end: the run was aborted, or the
    /// load generator cannot run `value` (its limit noted in `out.client_limit`).
    async fn probe(
        &mut self,
        value: u64,
        runs: u32,
        expect: Expect,
        confirm: bool,
    ) -> Result<Probe, Stop> {
        let mut probe = Probe {
            value,
            pass: true,
            scenarios: Vec::new(),
            p99_us: None,
            missed: 0,
            reasons: Vec::new(),
            runs_passed: Some(0),
            confirm,
        };
        let mut aborted = false;
        // Repeats are numbered over every run of the value, so no two share a number.
        let made_before = self.tally(value).1;
        for i in 0..runs.max(1) {
            let repeat = made_before + i;
            let run = self.prober.run(value, repeat).await;
            self.out.time_used += run.took;
            if let Some(n) = run.scenario {
                self.out.runs += 1;
                probe.scenarios.push(n);
                let estimate = self.prober.estimate(value).as_secs_f64();
                if estimate > 0.0 {
                    let ratio = run.took.as_secs_f64() / estimate;
                    self.slowdown = self.slowdown.max(ratio.min(10.0));
                }
            }
            probe.p99_us = match (probe.p99_us, run.p99_us) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            probe.missed += run.missed;
            let passed = run.reasons.is_empty();
            if passed {
                probe.runs_passed = probe.runs_passed.map(|n| n + 1);
            } else {
                probe.pass = false;
                if probe.reasons.is_empty() {
                    probe.reasons = run.reasons;
                }
            }
            if run.aborted {
                aborted = true;
                probe.pass = false;
                break;
            }
            if passed != (expect == Expect::Pass) {
                break;
            }
        }
        let client_limit = probe.reasons.iter().find_map(|r| match r {
            FailReason::ClientLimit { message } => Some(message.clone()),
            _ => None,
        });
        self.out.probes.push(probe.clone());
        if aborted {
            return Err(Stop::Aborted);
        }
        if let Some(message) = client_limit {
            // Not a verdict on the server: the answer keeps its ends.
            self.out.client_limit = Some(message);
            return Err(Stop::ClientLimit);
        }
        Ok(probe)
    }

    /// Runs passed and runs made at `value`, over every probe so far.
    fn tally(&self, value: u64) -> (u32, u32) {
        self.out
            .probes
            .iter()
            .filter(|p| p.value == value)
            .fold((0, 0), |(passed, runs), p| {
                (
                    passed + p.runs_passed.unwrap_or(0),
                    runs + p.scenarios.len() as u32,
                )
            })
    }

    /// Whether `value`'s runs are unanimous (all pass for `Expect::Pass`, all fail for
    /// `Expect::Fail`) over `k` runs, making the runs still missing; `Ok(false)` as soon as
    /// one disagrees.
    async fn unanimous(&mut self, value: u64, k: u32, expect: Expect) -> Result<bool, Stop> {
        let agrees = |(passed, runs): (u32, u32)| match expect {
            Expect::Pass => passed == runs,
            Expect::Fail => passed == 0,
        };
        let (passed, runs) = self.tally(value);
        if !agrees((passed, runs)) {
            return Ok(false);
        }
        if runs < k {
            self.affords(value, k - runs)?;
            self.probe(value, k - runs, expect, true).await?;
        }
        let (passed, runs) = self.tally(value);
        Ok(agrees((passed, runs)) && runs >= k)
    }
}

/// Searches with `prober` within `allowance`; `on_probe` sees the outcome so far after
/// every probe (to keep a results file current).
pub async fn search<P: Prober>(
    cfg: SearchConfig,
    allowance: Allowance,
    prober: &mut P,
    mut on_probe: impl FnMut(&SearchOutcome),
) -> SearchOutcome {
    let mut bracket = Bracket::new(cfg);
    let mut d = Driver {
        prober,
        allowance,
        out: SearchOutcome {
            last_pass: None,
            first_fail: None,
            first_fail_reasons: Vec::new(),
            stop: Stop::Converged,
            client_limit: None,
            runs: 0,
            time_used: Duration::ZERO,
            probes: Vec::new(),
            confirmed: None,
        },
        slowdown: 1.0,
    };
    d.out.stop = loop {
        let value = match bracket.next() {
            Ok(v) => v,
            Err(stop) => break stop,
        };
        let repeats = allowance.repeats.max(1);
        if let Err(stop) = d.affords(value, repeats) {
            break stop;
        }
        let probe = match d.probe(value, repeats, Expect::Pass, false).await {
            Ok(p) => p,
            Err(stop) => {
                on_probe(&d.out);
                break stop;
            }
        };
        bracket.record(value, probe.pass);
        d.out.last_pass = bracket.last_pass();
        if d.out.first_fail != bracket.first_fail() {
            d.out.first_fail = bracket.first_fail();
            d.out.first_fail_reasons = probe.reasons.clone();
        }
        on_probe(&d.out);
    };
    if d.out.stop == Stop::Converged && allowance.confirm > 0 {
        confirm(&mut d, cfg, &mut on_probe).await;
    }
    d.out
}

/// Confirms a converged bracket's ends (see [`Confirmed`]): down from the last pass, in
/// steps of the resolution, to a value whose `confirm` runs all pass; up from the first
/// fail to one whose runs all fail. Values whose runs disagree are noted as mixed.
async fn confirm<P: Prober>(
    d: &mut Driver<'_, P>,
    cfg: SearchConfig,
    on_probe: &mut impl FnMut(&SearchOutcome),
) {
    let (Some(low), Some(high)) = (d.out.last_pass, d.out.first_fail) else {
        return;
    };
    let k = d.allowance.confirm;
    let step = 1.0 + cfg.resolution;
    d.out.confirmed = Some(Confirmed {
        runs: k,
        pass: None,
        fail: None,
        mixed: Vec::new(),
        stop: Stop::Converged,
    });
    // Down from the last pass; `None` below 1: no value passes every run.
    let down = |v: u64| (v > 1).then(|| ((v as f64 / step).floor() as u64).clamp(1, v - 1));
    let mut stop = confirm_end(d, low, Expect::Pass, down, on_probe).await;
    // The fail end is worth confirming even when no pass was: it bounds the answer.
    if !matches!(stop, Some(Stop::Aborted | Stop::ClientLimit)) {
        let max = cfg.max;
        let up = |v: u64| (v < max).then(|| ((v as f64 * step).ceil() as u64).max(v + 1).min(max));
        stop = stop.or(confirm_end(d, high, Expect::Fail, up, on_probe).await);
    }
    set_confirmed(d, |c| {
        c.stop = stop.unwrap_or(Stop::Converged);
        c.mixed.sort_by_key(|m| m.value);
    });
    on_probe(&d.out);
}

/// Steps from `value` with `next` until a value's `k` runs are unanimous for `expect`, and
/// files it as the confirmed pass or fail; values on the way are noted as mixed. Returns
/// why it stopped short: the budget, an abort, or `next` running out (`fails_at_minimum`
/// going down, `max_reached` going up).
async fn confirm_end<P: Prober>(
    d: &mut Driver<'_, P>,
    mut value: u64,
    expect: Expect,
    next: impl Fn(u64) -> Option<u64>,
    on_probe: &mut impl FnMut(&SearchOutcome),
) -> Option<Stop> {
    let k = d.allowance.confirm;
    let stop = loop {
        match d.unanimous(value, k, expect).await {
            Ok(true) => {
                set_confirmed(d, |c| match expect {
                    Expect::Pass => c.pass = Some(value),
                    Expect::Fail => c.fail = Some(value),
                });
                break None;
            }
            Ok(false) => {
                note_mixed(d, value);
                match next(value) {
                    Some(v) => value = v,
                    None if expect == Expect::Pass => break Some(Stop::FailsAtMinimum),
                    None => break Some(Stop::MaxReached),
                }
            }
            Err(stop) => break Some(stop),
        }
        on_probe(&d.out);
    };
    on_probe(&d.out);
    stop
}

fn set_confirmed<P>(d: &mut Driver<'_, P>, f: impl FnOnce(&mut Confirmed)) {
    if let Some(c) = d.out.confirmed.as_mut() {
        f(c);
    }
}

/// Notes `value` as mixed with its tally so far.
fn note_mixed<P: Prober>(d: &mut Driver<'_, P>, value: u64) {
    let (passed, runs) = d.tally(value);
    set_confirmed(d, |c| {
        c.mixed.retain(|m| m.value != value);
        c.mixed.push(Mixed {
            value,
            passed,
            runs,
        });
    });
}

/// Parses an SLO: terms such as `p99=100ms`, comma-separated (`p50=5ms,p99=100ms`); each
/// percentile at most once. Errors name the problem.
pub fn parse_slo(text: &str) -> Result<Vec<SloTerm>, String> {
    let mut terms: Vec<SloTerm> = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("SLO {text:?} has an empty term"));
        }
        let Some((name, value)) = part.split_once('=') else {
            return Err(format!(
                "SLO term {part:?} is not PERCENTILE=DURATION, e.g. p99=100ms"
            ));
        };
        let percentile = Percentile::ALL
            .into_iter()
            .find(|p| p.as_str() == name.trim())
            .ok_or_else(|| {
                format!(
                    "SLO term {part:?}: unknown percentile {:?} (use p50, p90, p99, p999 or max)",
                    name.trim()
                )
            })?;
        let limit = humantime::parse_duration(value.trim()).map_err(|e| {
            format!(
                "SLO term {part:?}: {:?} is not a duration like 100ms: {e}",
                value.trim()
            )
        })?;
        let limit_us = limit.as_micros() as u64;
        if limit_us == 0 {
            return Err(format!("SLO term {part:?}: the limit must be at least 1us"));
        }
        if terms.iter().any(|t| t.percentile == percentile) {
            return Err(format!("SLO {text:?} gives {} twice", percentile.as_str()));
        }
        terms.push(SloTerm {
            percentile,
            limit_us,
        });
    }
    terms.sort_by_key(|t| t.percentile);
    Ok(terms)
}

/// A percentile of a latency summary, µs.
pub fn percentile_of(s: &Summary, p: Percentile) -> u64 {
    match p {
        Percentile::P50 => s.p50,
        Percentile::P90 => s.p90,
        Percentile::P99 => s.p99,
        Percentile::P999 => s.p999,
        Percentile::Max => s.max,
    }
}

/// Why a run fails the SLO (every term plus `slack_us`, and no event missed when
/// `no_missed`); empty when it passes. A run that did not complete, or delivered nothing,
/// fails as incomplete.
pub fn judge(
    r: &ScenarioResult,
    slo: &[SloTerm],
    slack_us: u64,
    no_missed: bool,
) -> Vec<FailReason> {
    if r.status != Status::Complete {
        let message = r
            .status_message
            .clone()
            .unwrap_or_else(|| format!("status {}", r.status.as_str()));
        return vec![FailReason::Incomplete { message }];
    }
    if r.latency_us.count == 0 {
        return vec![FailReason::Incomplete {
            message: "no event was delivered in the measure window".into(),
        }];
    }
    let mut reasons: Vec<FailReason> = slo
        .iter()
        .filter_map(|t| {
            let measured_us = percentile_of(&r.latency_us, t.percentile);
            let limit_us = t.limit_us + slack_us;
            (measured_us > limit_us).then_some(FailReason::Latency {
                percentile: t.percentile,
                measured_us,
                limit_us,
            })
        })
        .collect();
    if no_missed && r.events.missed > 0 {
        reasons.push(FailReason::Missed {
            events: r.events.missed,
        });
    }
    reasons
}

/// Clients per second the automatic ramp connects (the connections suite's pace: 19,000
/// over 4 s, within the server's listen backlog with the connect limit in flight).
pub const AUTO_RAMP_CLIENTS_PER_S: u64 = 4_000;

/// Everything `feedbench find` runs.
#[derive(Debug, Clone)]
pub struct FindConfig {
    /// Transports, searched one after another.
    pub transports: Vec<Transport>,
    /// What varies.
    pub vary: Vary,
    /// Every other parameter of a run (its transport, clients or rate are set per probe).
    pub template: ScenarioSpec,
    /// Connect over `clients / AUTO_RAMP_CLIENTS_PER_S` seconds rather than the template's
    /// ramp.
    pub auto_ramp: bool,
    /// The SLO.
    pub slo: Vec<SloTerm>,
    /// Start, growth and resolution; `max` is lowered per transport to what the load
    /// generator can run (descriptors, ports) when the clients vary.
    pub search: SearchConfig,
    /// Runs per probe.
    pub repeats: u32,
    /// Runs each end of a converged answer needs, all alike; 0: none (see [`Confirmed`]).
    pub confirm: u32,
    /// Most runs per transport.
    pub max_runs: u64,
    /// Most wall-clock time for the whole search.
    pub max_time: Duration,
    /// The server (the first run's; a swap replaces it before every later run).
    pub target: Target,
    /// The results file.
    pub results_path: PathBuf,
    /// The capacity summary written beside it.
    pub capacity_path: PathBuf,
    /// Whether feedbench started the server.
    pub embedded_server: bool,
    /// CPU sets, when pinned.
    pub cpu_sets: Option<CpuSets>,
}

impl FindConfig {
    /// The scenario of one run: `transport` at `value`.
    pub fn spec(&self, transport: Transport, value: u64) -> ScenarioSpec {
        let mut spec = self.template.clone();
        spec.transport = transport;
        match self.vary {
            Vary::Clients => spec.n_clients = value as usize,
            Vary::Rate => spec.rate_hz = value as f64,
        }
        if self.auto_ramp {
            spec.ramp =
                Duration::from_secs_f64(spec.n_clients as f64 / AUTO_RAMP_CLIENTS_PER_S as f64);
        }
        spec
    }

    /// What each transport's latency terms get on top: the poll interval for short-poll.
    pub fn slack_us(&self, transport: Transport) -> u64 {
        match transport {
            Transport::ShortPoll => self.template.poll_interval.as_micros() as u64,
            _ => 0,
        }
    }
}

/// The largest client count the load generator can run against `target` (descriptors and
/// ephemeral ports, as checked before every scenario), at most `max`, and why it cannot
/// run one more when that is below `max`.
pub fn client_ceiling(target: &Target, max: u64) -> (u64, Option<String>) {
    let sources = target.source_addrs.resolve(target.addr);
    let fits = |n: u64| limits::check_capacity(n, &sources, target.addr);
    if fits(max).is_ok() {
        return (max, None);
    }
    // Largest n that fits, by bisection: the check is monotone in n.
    let (mut lo, mut hi) = (0u64, max);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid).is_ok() {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    (lo, fits(lo + 1).err())
}

/// The real prober: scenario runs against a (fresh) server, kept in `results`.
struct ServerProber<'a, 's> {
    cfg: &'a FindConfig,
    transport: Transport,
    target: &'a mut Target,
    swap: Option<&'a mut (dyn ServerSwap + 's)>,
    signals: &'a RunSignals,
    progress: &'a Progress,
    results: &'a mut Results,
    /// Whether a run was made on the current server (the first run uses the one given).
    used: &'a mut bool,
}

impl Prober for ServerProber<'_, '_> {
    async fn run(&mut self, value: u64, repeat: u32) -> RunOutcome {
        let started = Instant::now();
        let spec = self.cfg.spec(self.transport, value);
        let mut outcome = RunOutcome {
            scenario: None,
            reasons: Vec::new(),
            p99_us: None,
            missed: 0,
            took: Duration::ZERO,
            aborted: false,
        };
        if self.signals.status() != Status::Complete {
            outcome.aborted = true;
            outcome.reasons = vec![FailReason::Incomplete {
                message: "the search was interrupted".into(),
            }];
            return outcome;
        }
        if *self.used {
            if let Some(swap) = self.swap.as_deref_mut() {
                match swap.next_server(spec.stack.tls).await {
                    Ok(t) => *self.target = t,
                    Err(e) => {
                        self.signals.fail(format!(
                            "cannot start a fresh server for {}: {e}",
                            spec.name()
                        ));
                    }
                }
            }
        }
        *self.used = true;
        if let Some(message) = self.signals.failure() {
            outcome.aborted = true;
            outcome.reasons = vec![FailReason::Incomplete { message }];
            outcome.took = started.elapsed();
            return outcome;
        }
        match run_scenario(self.target, &spec, repeat, self.signals, self.progress).await {
            Ok(result) => {
                let slack = self.cfg.slack_us(self.transport);
                outcome.reasons = judge(&result, &self.cfg.slo, slack, true);
                outcome.p99_us = (result.latency_us.count > 0).then_some(result.latency_us.p99);
                outcome.missed = result.events.missed;
                outcome.scenario = Some(self.results.scenarios.len() as u64);
                outcome.aborted = self.signals.status() != Status::Complete;
                self.results.scenarios.push(result);
                // Every run is kept on disk as soon as it is measured.
                if let Err(e) = write_files(self.cfg, self.results) {
                    self.signals.fail(format!("{e:#}"));
                    outcome.aborted = true;
                }
            }
            Err(ScenarioError::Capacity(message)) => {
                outcome.reasons = vec![FailReason::ClientLimit { message }];
            }
            Err(e) => {
                self.signals
                    .fail(format!("scenario {} #{repeat}: {e}", spec.name()));
                outcome.aborted = true;
                outcome.reasons = vec![FailReason::Incomplete {
                    message: e.to_string(),
                }];
            }
        }
        outcome.took = started.elapsed();
        outcome
    }

    fn estimate(&self, value: u64) -> Duration {
        // Server swap, clock estimate and feed set-up on top of the scenario's own phases.
        self.cfg.spec(self.transport, value).estimated_duration() + Duration::from_millis(750)
    }
}

/// The capacity entry of a transport's search so far.
fn transport_capacity(
    cfg: &FindConfig,
    transport: Transport,
    s: &SearchOutcome,
) -> TransportCapacity {
    let spec = cfg.spec(transport, cfg.search.start);
    TransportCapacity {
        transport,
        label: transport.as_str().to_string(),
        poll_interval_ms: (transport == Transport::ShortPoll)
            .then_some(cfg.template.poll_interval.as_millis() as u64),
        clients: (cfg.vary == Vary::Rate).then_some(spec.n_clients as u64),
        rate_hz: (cfg.vary == Vary::Clients).then_some(spec.rate_hz),
        payload_bytes: spec.payload_bytes as u64,
        slack_us: cfg.slack_us(transport),
        last_pass: s.last_pass,
        first_fail: s.first_fail,
        first_fail_reasons: s.first_fail_reasons.clone(),
        stop: s.stop,
        client_limit: s.client_limit.clone(),
        runs: s.runs,
        probes: s.probes.clone(),
        confirmed: s.confirmed.clone(),
    }
}

/// Writes the results file and the capacity summary beside it, both atomically.
fn write_files(cfg: &FindConfig, results: &mut Results) -> anyhow::Result<()> {
    results.finished_at = rfc3339(SystemTime::now());
    write_json_atomic(&cfg.results_path, results)
        .with_context(|| format!("cannot write results to {}", cfg.results_path.display()))?;
    if let Some(capacity) = &results.capacity {
        write_json_atomic(&cfg.capacity_path, capacity).with_context(|| {
            format!(
                "cannot write the capacity to {}",
                cfg.capacity_path.display()
            )
        })?;
    }
    Ok(())
}

/// Runs the whole search, transport after transport, against `cfg.target` and the servers
/// `swap` starts (a fresh one before every run after the first). Errors only when a file
/// cannot be written; an interrupted or failed search is an `Ok` with that status and the
/// transports searched so far.
pub async fn run_find(
    cfg: &FindConfig,
    signals: &RunSignals,
    mut swap: Option<&mut dyn ServerSwap>,
) -> anyhow::Result<Results> {
    let started = Instant::now();
    let mut results = crate::runner::new_results(
        "find".into(),
        &cfg.target,
        cfg.embedded_server,
        cfg.cpu_sets.clone(),
    );
    results.capacity = Some(Capacity {
        vary: cfg.vary,
        method: Method::Search,
        slo: cfg.slo.clone(),
        no_missed: true,
        repeats: cfg.repeats,
        resolution: Some(cfg.search.resolution),
        budget: Some(Budget {
            max_runs: cfg.max_runs,
            max_time_s: cfg.max_time.as_secs_f64(),
            runs_used: 0,
            time_used_s: 0.0,
        }),
        transports: Vec::new(),
    });
    write_files(cfg, &mut results)?;
    let progress = Progress::new(cfg.transports.len() * cfg.max_runs as usize);
    let mut target = cfg.target.clone();
    let mut used = false;
    for (i, &transport) in cfg.transports.iter().enumerate() {
        if signals.status() != Status::Complete {
            break;
        }
        // Each transport gets an equal share of the time left, so one that stops early
        // leaves more to the rest.
        let left = cfg.max_time.saturating_sub(started.elapsed());
        let share = left / (cfg.transports.len() - i) as u32;
        let mut search_cfg = cfg.search;
        let mut ceiling_note = None;
        if cfg.vary == Vary::Clients {
            let (ceiling, why) = client_ceiling(&target, search_cfg.max);
            search_cfg.max = ceiling.max(1);
            ceiling_note = why;
        }
        let allowance = Allowance {
            repeats: cfg.repeats,
            confirm: cfg.confirm,
            max_runs: cfg.max_runs,
            max_time: share,
        };
        let before = results.scenarios.len();
        let mut outcome = {
            let mut prober = ServerProber {
                cfg,
                transport,
                target: &mut target,
                swap: swap.as_deref_mut(),
                signals,
                progress: &progress,
                results: &mut results,
                used: &mut used,
            };
            // The prober holds the results mutably; the callback only counts probes.
            search(search_cfg, allowance, &mut prober, |_| {}).await
        };
        // Passed at a maximum the load generator imposed: the client side stopped it.
        if outcome.stop == Stop::MaxReached {
            if let Some(why) = ceiling_note {
                outcome.stop = Stop::ClientLimit;
                outcome.client_limit = Some(why);
            }
        }
        let entry = transport_capacity(cfg, transport, &outcome);
        eprintln!("feedbench: {}", describe_transport(cfg.vary, &entry));
        if let Some(c) = results.capacity.as_mut() {
            c.transports.push(entry);
            if let Some(b) = c.budget.as_mut() {
                b.runs_used += (results.scenarios.len() - before) as u64;
                b.time_used_s = started.elapsed().as_secs_f64();
            }
        }
        write_files(cfg, &mut results)?;
    }
    progress.finish();
    results.status = signals.status();
    results.status_message = match results.status {
        Status::Complete => None,
        Status::Interrupted => Some("interrupted by signal".into()),
        Status::Failed => signals.failure(),
    };
    if let Some(b) = results.capacity.as_mut().and_then(|c| c.budget.as_mut()) {
        b.time_used_s = started.elapsed().as_secs_f64();
    }
    write_files(cfg, &mut results)?;
    Ok(results)
}

/// One line for a transport's answer, e.g. `ws: 4,000 ≤ capacity < 5,657 clients
/// (first fail: p99 142.0 ms > 100.0 ms; converged after 7 runs)`, or with confirmed ends
/// `ws: 4,000 ≤ capacity < 6,727 clients (all 5 runs pass at 4,000 and fail at 6,727;
/// mixed: 4,757 passed 3 of 5; bisection 4,757–5,657, first fail: …; converged after 23
/// runs)`.
pub fn describe_transport(vary: Vary, t: &TransportCapacity) -> String {
    let n = |v: u64| feedbench_results::units::thousands(v);
    let unit = vary.unit();
    let answer = match t.interval() {
        (Some(p), Some(f)) => format!("{} ≤ capacity < {} {unit}", n(p), n(f)),
        (Some(p), None) => format!("capacity ≥ {} {unit}", n(p)),
        (None, Some(f)) => format!("capacity < {} {unit}", n(f)),
        (None, None) => "no answer".to_string(),
    };
    let mut why = Vec::new();
    if let Some(c) = &t.confirmed {
        let k = c.runs;
        let ends = match (c.pass, c.fail) {
            (Some(p), Some(f)) => format!("all {k} runs pass at {} and fail at {}", n(p), n(f)),
            (Some(p), None) => format!("all {k} runs pass at {}; no unanimous fail", n(p)),
            (None, Some(f)) => format!("no unanimous pass; all {k} runs fail at {}", n(f)),
            (None, None) => "neither end unanimous".to_string(),
        };
        why.push(ends);
        if !c.mixed.is_empty() {
            let mixed: Vec<String> = c
                .mixed
                .iter()
                .map(|m| format!("{} passed {} of {}", n(m.value), m.passed, m.runs))
                .collect();
            why.push(format!("mixed: {}", mixed.join(", ")));
        }
        if c.stop != Stop::Converged {
            why.push(format!("confirmation stopped: {}", c.stop.as_str()));
        }
        if let (Some(p), Some(f)) = (t.last_pass, t.first_fail) {
            why.push(format!("bisection {}–{}", n(p), n(f)));
        }
    }
    if !t.first_fail_reasons.is_empty() {
        let reasons: Vec<String> = t
            .first_fail_reasons
            .iter()
            .map(FailReason::describe)
            .collect();
        why.push(format!("first fail: {}", reasons.join(", ")));
    }
    if let Some(limit) = &t.client_limit {
        why.push(format!("client-side limit: {limit}"));
    }
    why.push(format!("{} after {} runs", t.stop.as_str(), t.runs));
    format!("{}: {answer} ({})", t.label, why.join("; "))
}

/// The stdout summary of a find: the SLO and one line per transport.
pub fn summary(capacity: &Capacity) -> String {
    let confirmed = capacity
        .transports
        .iter()
        .find_map(|t| t.confirmed.as_ref())
        .map_or(String::new(), |c| {
            format!("; each end confirmed by {} runs alike", c.runs)
        });
    let mut out = format!(
        "capacity within {} ({} per probe, every one must pass{confirmed}):\n",
        capacity.slo_text(),
        match capacity.repeats {
            1 => "1 run".to_string(),
            n => format!("{n} runs"),
        }
    );
    for t in &capacity.transports {
        out.push_str("  ");
        out.push_str(&describe_transport(capacity.vary, t));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(start: u64, max: u64) -> SearchConfig {
        SearchConfig {
            start,
            max,
            growth: 2.0,
            resolution: 0.1,
        }
    }

    /// A synthetic server: a value passes iff it is at most `capacity`; every run takes
    /// `run_s` seconds; values at or above `client_limit` cannot be run at all.
    struct Synthetic {
        capacity: u64,
        run_s: u64,
        client_limit: u64,
        calls: Vec<(u64, u32)>,
        /// Values whose runs fail only from this repeat on (noise near the boundary).
        flaky: Option<(u64, u32)>,
    }

    impl Synthetic {
        fn new(capacity: u64) -> Self {
            Self {
                capacity,
                run_s: 10,
                client_limit: u64::MAX,
                calls: Vec::new(),
                flaky: None,
            }
        }
    }

    impl Prober for Synthetic {
        async fn run(&mut self, value: u64, repeat: u32) -> RunOutcome {
            self.calls.push((value, repeat));
            if value >= self.client_limit {
                return RunOutcome {
                    scenario: None,
                    reasons: vec![FailReason::ClientLimit {
                        message: format!("{value} clients need too many descriptors"),
                    }],
                    p99_us: None,
                    missed: 0,
                    took: Duration::ZERO,
                    aborted: false,
                };
            }
            let flaky_fail = self.flaky.is_some_and(|(v, r)| v == value && repeat >= r);
            let pass = value <= self.capacity && !flaky_fail;
            // p99 grows with the value: 100 ms exactly at the capacity.
            let p99_us = value * 100_000 / self.capacity.max(1);
            RunOutcome {
                scenario: Some(self.calls.len() as u64 - 1),
                reasons: if pass {
                    Vec::new()
                } else {
                    vec![FailReason::Latency {
                        percentile: Percentile::P99,
                        measured_us: p99_us,
                        limit_us: 100_000,
                    }]
                },
                p99_us: Some(p99_us),
                missed: 0,
                took: Duration::from_secs(self.run_s),
                aborted: false,
            }
        }

        fn estimate(&self, _value: u64) -> Duration {
            Duration::from_secs(self.run_s)
        }
    }

    fn allowance(repeats: u32, max_runs: u64, max_time_s: u64) -> Allowance {
        Allowance {
            repeats,
            confirm: 0,
            max_runs,
            max_time: Duration::from_secs(max_time_s),
        }
    }

    /// A bracket's ends after a probe.
    type Ends = (Option<u64>, Option<u64>);

    fn run<P: Prober>(c: SearchConfig, a: Allowance, p: &mut P) -> (SearchOutcome, Vec<Ends>) {
        let mut brackets = Vec::new();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let out = rt.block_on(search(c, a, p, |o| {
            brackets.push((o.last_pass, o.first_fail))
        }));
        (out, brackets)
    }

    #[test]
    fn finds_the_capacity_within_the_bracket() {
        let mut p = Synthetic::new(5_000);
        let (out, brackets) = run(cfg(1000, 19_000), allowance(1, 100, 10_000), &mut p);
        // 1000, 2000, 4000 pass; 8000 fails; bisection at geometric middles: 5657 f,
        // 4757 p, 5188 f: 5188 ≤ 4757 × 1.1, converged.
        let values: Vec<u64> = out.probes.iter().map(|p| p.value).collect();
        assert_eq!(values, [1000, 2000, 4000, 8000, 5657, 4757, 5188]);
        assert_eq!(out.stop, Stop::Converged);
        assert_eq!((out.last_pass, out.first_fail), (Some(4757), Some(5188)));
        assert!(out.last_pass.unwrap() <= 5_000 && 5_000 < out.first_fail.unwrap());
        assert_eq!(out.runs, 7);
        assert_eq!(out.time_used, Duration::from_secs(70));
        assert_eq!(
            out.first_fail_reasons,
            vec![FailReason::Latency {
                percentile: Percentile::P99,
                measured_us: 103_760,
                limit_us: 100_000
            }]
        );
        // The bracket only narrows: passes rise, fails fall, pass < fail throughout.
        for w in brackets.windows(2) {
            let ((p0, f0), (p1, f1)) = (w[0], w[1]);
            assert!(p1 >= p0, "{brackets:?}");
            assert!(f0.is_none() || (f1.is_some() && f1 <= f0), "{brackets:?}");
        }
        assert!(brackets.iter().all(|(p, f)| match (p, f) {
            (Some(p), Some(f)) => p < f,
            _ => true,
        }));
    }

    #[test]
    fn respects_the_runs_budget_counting_repeats() {
        let mut p = Synthetic::new(5_000);
        // Each probe needs 2 runs; 7 runs allow 3 probes (a 4th would need runs 7 and 8).
        let (out, _) = run(cfg(1000, 19_000), allowance(2, 7, 10_000), &mut p);
        assert_eq!(out.stop, Stop::RunBudget);
        assert_eq!(out.runs, 6);
        assert_eq!(p.calls.len(), 6);
        assert_eq!((out.last_pass, out.first_fail), (Some(4000), None));
        assert!(out.probes.iter().all(|p| p.scenarios.len() == 2));
    }

    #[test]
    fn respects_the_time_budget_before_starting_a_probe() {
        let mut p = Synthetic::new(5_000);
        // 10 s per run, 2 runs per probe: 45 s allow 2 probes (40 s); the third would end at 60 s.
        let (out, _) = run(cfg(1000, 19_000), allowance(2, 100, 45), &mut p);
        assert_eq!(out.stop, Stop::TimeBudget);
        assert_eq!(out.probes.len(), 2);
        assert_eq!(out.time_used, Duration::from_secs(40));
        assert!(out.time_used <= Duration::from_secs(45));
    }

    #[test]
    fn fails_at_the_start_then_shrinks_to_a_pass_or_the_minimum() {
        let mut p = Synthetic::new(300);
        let (out, _) = run(cfg(1000, 19_000), allowance(1, 100, 10_000), &mut p);
        let values: Vec<u64> = out.probes.iter().map(|p| p.value).collect();
        // 1000 f, 500 f, 250 p, then bisection 354 f, 297 p, 324 f: 324 ≤ 297 × 1.1.
        assert_eq!(values, [1000, 500, 250, 354, 297, 324]);
        assert_eq!(
            (out.last_pass, out.first_fail, out.stop),
            (Some(297), Some(324), Stop::Converged)
        );

        let mut none = Synthetic::new(0);
        let (out, _) = run(cfg(4, 100), allowance(1, 100, 10_000), &mut none);
        let values: Vec<u64> = out.probes.iter().map(|p| p.value).collect();
        assert_eq!(values, [4, 2, 1]);
        assert_eq!(
            (out.last_pass, out.first_fail, out.stop),
            (None, Some(1), Stop::FailsAtMinimum)
        );
    }

    #[test]
    fn passes_at_max_and_stops_there() {
        let mut p = Synthetic::new(1_000_000);
        let (out, _) = run(cfg(1000, 6000), allowance(1, 100, 10_000), &mut p);
        let values: Vec<u64> = out.probes.iter().map(|p| p.value).collect();
        assert_eq!(values, [1000, 2000, 4000, 6000]);
        assert_eq!(
            (out.last_pass, out.first_fail, out.stop),
            (Some(6000), None, Stop::MaxReached)
        );
        // A start above max is clamped to it.
        let mut q = Synthetic::new(1_000_000);
        let (out, _) = run(cfg(9000, 6000), allowance(1, 100, 10_000), &mut q);
        assert_eq!(out.probes.len(), 1);
        assert_eq!((out.last_pass, out.stop), (Some(6000), Stop::MaxReached));
    }

    #[test]
    fn the_worse_repeat_decides_and_a_fail_ends_the_probe() {
        let mut p = Synthetic::new(5_000);
        // 4000 passes its first run and fails its second: the probe fails.
        p.flaky = Some((4000, 1));
        let (out, _) = run(cfg(1000, 19_000), allowance(3, 100, 10_000), &mut p);
        let probe = out.probes.iter().find(|p| p.value == 4000).unwrap();
        assert!(!probe.pass);
        assert_eq!(probe.scenarios.len(), 2, "the third run is not made");
        assert!(p.calls.contains(&(4000, 1)) && !p.calls.contains(&(4000, 2)));
        assert!(out.first_fail.unwrap() <= 4000);
        // A passing probe made all three runs.
        assert_eq!(out.probes[0].scenarios.len(), 3);
    }

    #[test]
    fn a_client_limit_stops_without_judging_the_server() {
        let mut p = Synthetic::new(1_000_000);
        p.client_limit = 7000;
        let (out, _) = run(cfg(1000, 19_000), allowance(1, 100, 10_000), &mut p);
        assert_eq!(out.stop, Stop::ClientLimit);
        assert_eq!((out.last_pass, out.first_fail), (Some(4000), None));
        assert_eq!(
            out.client_limit.as_deref(),
            Some("8000 clients need too many descriptors")
        );
        assert_eq!(out.runs, 3, "the refused probe made no run");
    }

    #[test]
    fn later_estimates_learn_from_slow_runs() {
        /// Estimates 1 s but takes 10 s per run.
        struct Slow(Synthetic);
        impl Prober for Slow {
            async fn run(&mut self, v: u64, r: u32) -> RunOutcome {
                self.0.run(v, r).await
            }
            fn estimate(&self, _: u64) -> Duration {
                Duration::from_secs(1)
            }
        }
        let mut p = Slow(Synthetic::new(5_000));
        // After the first run (10 s), a probe is expected to take 10 s: at 25 s the third
        // would end at 30 s, so only two are made.
        let (out, _) = run(cfg(1000, 19_000), allowance(1, 100, 25), &mut p);
        assert_eq!((out.probes.len(), out.stop), (2, Stop::TimeBudget));
    }

    /// A server whose SLO verdict is noisy near its capacity: a value at or below `lo`
    /// always passes, at or above `hi` always fails, and in between passes with probability
    /// `(hi − v) / (hi − lo)` (so half its runs pass at the middle of the band). Seeded.
    struct Noisy {
        lo: u64,
        hi: u64,
        rng: crate::rng::SplitMix64,
    }

    impl Noisy {
        fn new(lo: u64, hi: u64, seed: u64) -> Self {
            Self {
                lo,
                hi,
                rng: crate::rng::SplitMix64::new(seed),
            }
        }
    }

    impl Prober for Noisy {
        async fn run(&mut self, value: u64, _repeat: u32) -> RunOutcome {
            let p_pass =
                (self.hi.saturating_sub(value) as f64 / (self.hi - self.lo) as f64).clamp(0.0, 1.0);
            let pass = self.rng.next_f64() < p_pass;
            RunOutcome {
                scenario: Some(0),
                reasons: if pass {
                    Vec::new()
                } else {
                    vec![FailReason::Missed { events: 1 }]
                },
                p99_us: None,
                missed: u64::from(!pass),
                took: Duration::from_secs(5),
                aborted: false,
            }
        }

        fn estimate(&self, _value: u64) -> Duration {
            Duration::from_secs(5)
        }
    }

    /// A ws entry of a search's outcome, as `run_find` would file it.
    fn ws_capacity(out: SearchOutcome) -> TransportCapacity {
        TransportCapacity {
            transport: Transport::Ws,
            label: "ws".into(),
            poll_interval_ms: None,
            clients: None,
            rate_hz: Some(1.0),
            payload_bytes: 64,
            slack_us: 0,
            last_pass: out.last_pass,
            first_fail: out.first_fail,
            first_fail_reasons: out.first_fail_reasons,
            stop: out.stop,
            client_limit: out.client_limit,
            runs: out.runs,
            probes: out.probes,
            confirmed: out.confirmed,
        }
    }

    /// The answer's interval of one search of a noisy server, and the runs it took.
    fn noisy_search(seed: u64, repeats: u32, confirm: u32) -> ((u64, u64), u64) {
        let mut p = Noisy::new(4_000, 6_000, seed);
        let a = Allowance {
            confirm,
            ..allowance(repeats, 200, 100_000)
        };
        let (out, _) = run(cfg(1000, 19_000), a, &mut p);
        let runs = out.runs;
        let t = ws_capacity(out);
        let (Some(lo), Some(hi)) = t.interval() else {
            panic!("seed {seed}: no interval: {t:?}");
        };
        ((lo, hi), runs)
    }

    #[test]
    fn confirmed_answers_of_a_noisy_server_overlap_where_brackets_miss() {
        // 200 pairs of searches of a server whose runs pass or fail at random between
        // 4,000 and 6,000. A pair agrees when its intervals [low, high) overlap.
        let overlap = |a: (u64, u64), b: (u64, u64)| a.0.max(b.0) < a.1.min(b.1);
        let pairs = 200u64;
        let (mut bracket_agree, mut confirmed_agree) = (0, 0);
        let (mut bracket_runs, mut confirmed_runs) = (0, 0);
        let mut median_inside = 0;
        for i in 0..pairs {
            let (a, ra) = noisy_search(2 * i + 1, 2, 0);
            let (b, rb) = noisy_search(2 * i + 2, 2, 0);
            bracket_agree += u64::from(overlap(a, b));
            bracket_runs += ra + rb;
            let (a, ra) = noisy_search(2 * i + 1, 2, 5);
            let (b, rb) = noisy_search(2 * i + 2, 2, 5);
            confirmed_agree += u64::from(overlap(a, b));
            confirmed_runs += ra + rb;
            median_inside += u64::from(a.0 <= 5_000 && 5_000 < a.1);
            median_inside += u64::from(b.0 <= 5_000 && 5_000 < b.1);
        }
        eprintln!(
            "brackets agree {bracket_agree}/{pairs} ({:.1} runs a search); confirmed \
             {confirmed_agree}/{pairs} ({:.1} runs); the band's middle inside {median_inside}/{}",
            bracket_runs as f64 / (2 * pairs) as f64,
            confirmed_runs as f64 / (2 * pairs) as f64,
            2 * pairs
        );
        // The problem: plain brackets (2 runs a probe, every one must pass) often miss.
        assert!(bracket_agree < pairs * 3 / 4, "{bracket_agree}");
        // The fix: confirmed intervals nearly always overlap and hold the band's middle.
        assert!(confirmed_agree >= pairs * 97 / 100, "{confirmed_agree}");
        assert!(median_inside >= 2 * pairs * 95 / 100, "{median_inside}");
    }

    /// A search from 1,000 to 19,000 of 1 run per probe, each end confirmed by 5 runs.
    fn confirmed_search(p: &mut Synthetic, max_runs: u64) -> SearchOutcome {
        let a = Allowance {
            confirm: 5,
            ..allowance(1, max_runs, 10_000)
        };
        run(cfg(1000, 19_000), a, p).0
    }

    #[test]
    fn a_sharp_capacity_confirms_the_bracket_itself() {
        let mut p = Synthetic::new(5_000);
        let out = confirmed_search(&mut p, 100);
        assert_eq!((out.last_pass, out.first_fail), (Some(4757), Some(5188)));
        let c = out.confirmed.clone().unwrap();
        assert_eq!(
            (c.pass, c.fail, c.stop, c.mixed.len()),
            (Some(4757), Some(5188), Stop::Converged, 0)
        );
        // 7 bisection runs, then 4 more at each end (each had 1 already).
        assert_eq!(out.runs, 7 + 4 + 4);
        let confirms: Vec<(u64, usize, Option<u32>)> = out
            .probes
            .iter()
            .filter(|p| p.confirm)
            .map(|p| (p.value, p.scenarios.len(), p.runs_passed))
            .collect();
        assert_eq!(confirms, [(4757, 4, Some(4)), (5188, 4, Some(0))]);
        // Repeats are numbered over all of a value's runs.
        assert!(p.calls.contains(&(4757, 4)) && !p.calls.contains(&(4757, 5)));
    }

    #[test]
    fn a_flaky_end_steps_out_and_is_noted_as_mixed() {
        // 4757 passes its bisection run, then fails from its third run on: the pass end
        // steps down by the resolution to 4324, which passes all 5. Runs: 7 to converge,
        // 2 more at 4757, 5 at 4324, 4 more at 5188.
        let mut p = Synthetic::new(5_000);
        p.flaky = Some((4757, 2));
        let out = confirmed_search(&mut p, 100);
        let c = out.confirmed.clone().unwrap();
        assert_eq!(
            (c.pass, c.fail, c.stop),
            (Some(4324), Some(5188), Stop::Converged)
        );
        assert_eq!(
            c.mixed,
            vec![Mixed {
                value: 4757,
                passed: 2,
                runs: 3
            }]
        );
        let t = ws_capacity(out);
        assert_eq!(t.interval(), (Some(4324), Some(5188)));
        assert_eq!(
            describe_transport(Vary::Clients, &t),
            "ws: 4,324 ≤ capacity < 5,188 clients (all 5 runs pass at 4,324 and fail at \
             5,188; mixed: 4,757 passed 2 of 3; bisection 4,757–5,188; first fail: p99 103.8 ms > \
             100.0 ms; converged after 18 runs)"
        );
    }

    #[test]
    fn confirmation_stops_within_the_budget_and_says_so() {
        let mut p = Synthetic::new(5_000);
        // 7 bisection runs leave 5: enough for the pass end's 4, not the fail end's 4.
        let out = confirmed_search(&mut p, 12);
        assert_eq!(out.stop, Stop::Converged);
        let c = out.confirmed.unwrap();
        assert_eq!(
            (c.pass, c.fail, c.stop),
            (Some(4757), None, Stop::RunBudget)
        );
        assert_eq!(out.runs, 11);
        assert!(out.runs <= 12);
    }

    #[test]
    fn slo_grammar() {
        let t = parse_slo("p99=100ms").unwrap();
        assert_eq!(
            t,
            [SloTerm {
                percentile: Percentile::P99,
                limit_us: 100_000
            }]
        );
        let t = parse_slo("max=1s, p50=5ms,p999=250ms").unwrap();
        let got: Vec<(Percentile, u64)> = t.iter().map(|t| (t.percentile, t.limit_us)).collect();
        assert_eq!(
            got,
            [
                (Percentile::P50, 5_000),
                (Percentile::P999, 250_000),
                (Percentile::Max, 1_000_000)
            ]
        );
        let e = parse_slo("p95=100ms").unwrap_err();
        assert!(e.contains("unknown percentile \"p95\""), "{e}");
        let e = parse_slo("p99").unwrap_err();
        assert!(e.contains("is not PERCENTILE=DURATION"), "{e}");
        let e = parse_slo("p99=fast").unwrap_err();
        assert!(e.contains("\"fast\" is not a duration"), "{e}");
        let e = parse_slo("p99=0ms").unwrap_err();
        assert!(e.contains("at least 1us"), "{e}");
        let e = parse_slo("p99=1ms,p99=2ms").unwrap_err();
        assert!(e.contains("gives p99 twice"), "{e}");
        let e = parse_slo("p99=1ms,").unwrap_err();
        assert!(e.contains("empty term"), "{e}");
    }

    #[test]
    fn judges_every_term_missed_events_and_incomplete_runs() {
        let text = include_str!("../../results/tests/data/scenario-v1.json");
        let mut r: ScenarioResult = serde_json::from_str(text).unwrap();
        r.status = Status::Complete;
        r.latency_us.count = 100;
        r.latency_us.p50 = 2_000;
        r.latency_us.p99 = 120_000;
        r.latency_us.max = 300_000;
        r.events.missed = 0;
        let slo = parse_slo("p50=5ms,p99=100ms").unwrap();
        assert_eq!(
            judge(&r, &slo, 0, true),
            vec![FailReason::Latency {
                percentile: Percentile::P99,
                measured_us: 120_000,
                limit_us: 100_000
            }]
        );
        // Short-poll's slack moves every limit.
        assert!(judge(&r, &slo, 20_000, true).is_empty());
        r.events.missed = 4;
        assert_eq!(
            judge(&r, &slo, 20_000, true),
            vec![FailReason::Missed { events: 4 }]
        );
        assert!(judge(&r, &slo, 20_000, false).is_empty());
        r.latency_us.count = 0;
        assert!(matches!(
            judge(&r, &slo, 0, true)[..],
            [FailReason::Incomplete { .. }]
        ));
        r.status = Status::Failed;
        r.status_message = Some("server died".into());
        assert_eq!(
            judge(&r, &slo, 0, true),
            vec![FailReason::Incomplete {
                message: "server died".into()
            }]
        );
    }

    #[test]
    fn describes_an_answer_with_its_bracket() {
        let t = ws_capacity(SearchOutcome {
            last_pass: Some(4000),
            first_fail: Some(5657),
            first_fail_reasons: vec![FailReason::Missed { events: 12 }],
            stop: Stop::RunBudget,
            client_limit: None,
            runs: 8,
            time_used: Duration::ZERO,
            probes: Vec::new(),
            confirmed: None,
        });
        assert_eq!(
            describe_transport(Vary::Clients, &t),
            "ws: 4,000 ≤ capacity < 5,657 clients (first fail: 12 events missed; run_budget after 8 runs)"
        );
    }
}
