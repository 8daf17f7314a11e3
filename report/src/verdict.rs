//! The verdict: for the measured grid, which transport wins each criterion, by how much,
//! and where the winner changes.
//!
//! Criteria, each lower-is-better and judged on the median over repeats ([`Spread`]) at
//! each operating point (a [`Load`]: clients, rate, payload, link, protocol stack): p50 delivery latency
//! (p99 named beside it), socket bytes per delivered event, IP bytes per delivered event
//! (only over an emulated link), server CPU per 1,000 events and server memory per
//! connection (only where measured). At a point the transports whose median is within
//! [`TIE_SHARE`] of the best one's, or whose min–max range over repeats overlaps the best
//! one's, tie with it; a point with one leader has a winner.
//!
//! When one transport wins at every point, its sentence names the point with the median
//! ratio to the runner-up and the range of that ratio. Otherwise the winner changes: a
//! [`Crossover`] is two neighbouring points along one axis (clients, rate, payload or the
//! link's round trip, the other parameters equal) whose leaders differ, and its sentence
//! names both values. Every number comes from the dataset; nothing here is canned text
//! with numbers in it. A suite's `p99_limit` and the model check of runs over a link add
//! one sentence each.

use std::collections::BTreeMap;

use feedbench_results::model::checks;
use feedbench_results::{P99Limit, ScenarioResult, Transport};

use crate::format;
use crate::group::{Dataset, Group, Load, Spread, Variant};

/// Two medians closer than this share of the smaller one are a tie.
pub const TIE_SHARE: f64 = 0.05;

/// Most crossover sentences for one criterion; further ones are counted, not spelled.
const MAX_CROSSOVER_SENTENCES: usize = 2;

/// The verdict's sentences, in order: latency, bytes, CPU, memory, then the model check.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// One sentence each, complete with its final period.
    pub sentences: Vec<String>,
}

/// A figure of one repeat, `None` where the file lacks it.
pub type Metric = fn(&ScenarioResult) -> Option<f64>;

/// What the verdict judges on: a figure of a scenario, lower is better.
#[derive(Clone, Copy)]
pub struct Criterion {
    /// What is compared, for a sentence: `p50 delivery latency`.
    pub name: &'static str,
    /// What the leader does, after its name: `is fastest`.
    leads: &'static str,
    /// Put before a value: `p50 ` for latency.
    prefix: &'static str,
    /// The figure of one repeat.
    pub metric: Metric,
    /// The figure with its unit.
    show: fn(f64) -> String,
    /// A second figure named beside a winner's (p99 beside p50): its name and metric.
    beside: Option<(&'static str, Metric)>,
}

fn ms(x: f64) -> String {
    format!("{} ms", format::sig3(x))
}

/// p50 delivery latency, with p99 beside it.
pub const LATENCY: Criterion = Criterion {
    name: "p50 delivery latency",
    leads: "is fastest",
    prefix: "p50 ",
    metric: |s| Some(s.latency_us.p50 as f64),
    show: format::micros,
    beside: Some(("p99", |s| Some(s.latency_us.p99 as f64))),
};

/// Socket bytes, both directions, per delivered event.
pub const SOCKET_BYTES: Criterion = Criterion {
    name: "bytes per event",
    leads: "has the fewest bytes per event on the socket",
    prefix: "",
    metric: |s| Some(s.bytes.per_event).filter(|b| *b > 0.0),
    show: format::bytes,
    beside: None,
};

/// IP bytes, both directions, per delivered event (runs over an emulated link).
pub const IP_BYTES: Criterion = Criterion {
    name: "IP bytes per event",
    leads: "has the fewest IP bytes per event (headers and ACKs included)",
    prefix: "",
    metric: ScenarioResult::ip_bytes_per_event,
    show: format::bytes,
    beside: None,
};

/// Server CPU per 1,000 delivered events.
pub const CPU: Criterion = Criterion {
    name: "server CPU per 1,000 events",
    leads: "costs the server the least CPU per 1,000 events",
    prefix: "",
    metric: ScenarioResult::server_cpu_ms_per_1k_events,
    show: ms,
    beside: None,
};

/// Server memory per connection, where the file has it.
pub const MEMORY: Criterion = Criterion {
    name: "server memory per connection",
    leads: "costs the server the least memory per connection",
    prefix: "",
    metric: ScenarioResult::server_memory_per_connection,
    show: format::bytes,
    beside: None,
};

/// Every criterion, in the verdict's order.
pub const CRITERIA: [Criterion; 5] = [LATENCY, SOCKET_BYTES, IP_BYTES, CPU, MEMORY];

/// One transport's figure at a point.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    /// Its repeats.
    pub group: &'a Group,
    /// The criterion's figure over them.
    pub spread: Spread,
}

/// A criterion at one point: every variant that has the figure, best first.
#[derive(Debug, Clone)]
pub struct Standing<'a> {
    /// The point.
    pub load: Load,
    /// By median, lowest first.
    pub ranked: Vec<Entry<'a>>,
    /// How many of `ranked`, from the first, lead: the best and those tying with it.
    pub leaders: usize,
}

impl Standing<'_> {
    /// The leading variants, best first.
    pub fn leader_variants(&self) -> Vec<Variant> {
        self.ranked[..self.leaders]
            .iter()
            .map(|e| e.group.key.variant)
            .collect()
    }

    /// The leading variants as a set (sorted), to compare points by.
    fn leader_set(&self) -> Vec<Variant> {
        let mut v = self.leader_variants();
        v.sort();
        v
    }

    /// The best over the runner-up (for a sole winner) or over the last leader (for a tie).
    fn ratio(&self) -> f64 {
        let i = if self.leaders == 1 {
            1
        } else {
            self.leaders - 1
        };
        ratio(self.ranked[i].spread.median, self.ranked[0].spread.median)
    }
}

/// `a / b`, with a zero `b` taken as the smallest positive number.
fn ratio(a: f64, b: f64) -> f64 {
    a / b.max(f64::MIN_POSITIVE)
}

/// Whether `other` ties with `best` (the lower median): within [`TIE_SHARE`] of it, or
/// their ranges over repeats overlap.
pub fn ties(best: &Spread, other: &Spread) -> bool {
    other.median - best.median <= TIE_SHARE * best.median.abs() || other.min <= best.max
}

/// The criterion at every point where two or more variants have the figure, by load.
pub fn standings<'a>(dataset: &'a Dataset, criterion: &Criterion) -> Vec<Standing<'a>> {
    let mut by_load: BTreeMap<Load, Vec<Entry<'a>>> = BTreeMap::new();
    for g in &dataset.groups {
        let Some(spread) = g.spread(criterion.metric) else {
            continue;
        };
        let entries = by_load.entry(g.key.load).or_default();
        // A variant measured twice at a point (two windows) counts once: its first group.
        if entries.iter().all(|e| e.group.key.variant != g.key.variant) {
            entries.push(Entry { group: g, spread });
        }
    }
    by_load
        .into_iter()
        .filter(|(_, entries)| entries.len() >= 2)
        .map(|(load, mut ranked)| {
            ranked.sort_by(|a, b| a.spread.median.total_cmp(&b.spread.median));
            let best = ranked[0].spread;
            let leaders = 1 + ranked[1..]
                .iter()
                .take_while(|e| ties(&best, &e.spread))
                .count();
            Standing {
                load,
                ranked,
                leaders,
            }
        })
        .collect()
}

/// An axis of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    /// Concurrent clients.
    Clients,
    /// Events per second.
    Rate,
    /// Payload size.
    Payload,
    /// The emulated link's round trip (single-class links only).
    Rtt,
}

impl Axis {
    /// Every axis, in the order crossovers are looked for.
    pub const ALL: [Axis; 4] = [Axis::Clients, Axis::Rate, Axis::Payload, Axis::Rtt];

    /// The axis in a sentence.
    fn name(self) -> &'static str {
        match self {
            Axis::Clients => "clients",
            Axis::Rate => "event rate",
            Axis::Payload => "payload",
            Axis::Rtt => "the link's round trip",
        }
    }

    /// A point's value on the axis, to sort by; `None` off the axis (no single-class link).
    pub fn value(self, load: &Load) -> Option<f64> {
        match self {
            Axis::Clients => Some(load.clients as f64),
            Axis::Rate => Some(load.rate_hz()),
            Axis::Payload => Some(load.payload_bytes as f64),
            Axis::Rtt => load.link.and_then(|l| l.rtt_ms()),
        }
    }

    /// A value on the axis in a sentence: `10,000 clients`, `4 events/s`, `64 B`, `200 ms`.
    fn show(self, value: f64) -> String {
        match self {
            Axis::Clients => format!("{} clients", format::thousands(value as u64)),
            Axis::Rate => format::rate(value),
            Axis::Payload => format!("{value} B"),
            // A link's RTT is written in ms as its spec writes it: `rtt=0ms` is "0 ms".
            Axis::Rtt if value == 0.0 => "0 ms".to_string(),
            Axis::Rtt => format::micros(value * 1e3),
        }
    }

    /// What the points of one line along this axis share, in words; equal for two points
    /// exactly when they differ only on this axis.
    pub fn line(self, load: &Load) -> Option<String> {
        let clients = format!("{} clients", format::thousands(load.clients));
        let rate = format::rate(load.rate_hz());
        let payload = format!("{} B payload", load.payload_bytes);
        let link = load
            .link
            .map(|l| format!("link {}", l.spec()))
            .unwrap_or_else(|| "loopback".to_string());
        let mut parts = match self {
            Axis::Clients => vec![rate, payload, link],
            Axis::Rate => vec![clients, payload, link],
            Axis::Payload => vec![clients, rate, link],
            Axis::Rtt => {
                load.link?.rtt_us?;
                let mut parts = vec![clients, rate, payload];
                // The rest of the spec (jitter, loss, ...) must match too; a profile name
                // names a whole link, so two profiles never share a line.
                let rest = link_without_rtt(load.link?.spec());
                if !rest.is_empty() {
                    parts.push(format!("link {rest}"));
                }
                parts
            }
        };
        // A line never runs across protocol stacks; plaintext HTTP/1.1 goes unnamed, as in
        // files written before stacks were a parameter.
        if !load.stack.is_plain() {
            parts.push(load.stack.label());
        }
        Some(parts.join(", "))
    }
}

/// A link spec without its `rtt=` part: `jitter=5ms,loss=1%` for
/// `rtt=100ms,jitter=5ms,loss=1%`.
fn link_without_rtt(spec: &str) -> String {
    spec.split(',')
        .filter(|part| !part.trim_start().starts_with("rtt="))
        .collect::<Vec<_>>()
        .join(",")
}

/// Where the leaders change between two neighbouring points of one line.
#[derive(Debug, Clone)]
pub struct Crossover<'a> {
    /// The axis the line runs along.
    pub axis: Axis,
    /// What the line's points share, in words.
    pub line: String,
    /// The values on the axis where the earlier leaders lead, ascending (a run ending at
    /// the change).
    pub before_values: Vec<f64>,
    /// The values where the later leaders lead, ascending (a run starting at the change).
    pub after_values: Vec<f64>,
    /// Whether the run before the change starts at the line's first point.
    pub before_opens: bool,
    /// Whether the run after the change ends at the line's last point.
    pub after_closes: bool,
    /// The point just before the change.
    pub before: Standing<'a>,
    /// The point just after it.
    pub after: Standing<'a>,
}

impl Crossover<'_> {
    /// The last value before the change.
    pub fn last_before(&self) -> f64 {
        *self.before_values.last().unwrap_or(&f64::NAN)
    }

    /// The first value after the change.
    pub fn first_after(&self) -> f64 {
        *self.after_values.first().unwrap_or(&f64::NAN)
    }
}

/// Every change of leaders along every axis, axis by axis, each line by its first point.
pub fn crossovers<'a>(standings: &[Standing<'a>]) -> Vec<Crossover<'a>> {
    let mut out = Vec::new();
    for axis in Axis::ALL {
        let mut lines: BTreeMap<String, Vec<(f64, &Standing<'a>)>> = BTreeMap::new();
        for s in standings {
            if let (Some(line), Some(v)) = (axis.line(&s.load), axis.value(&s.load)) {
                lines.entry(line).or_default().push((v, s));
            }
        }
        for (line, mut points) in lines {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            out.extend(line_crossovers(axis, &line, &points));
        }
    }
    out
}

/// The changes along one line, sorted by value.
fn line_crossovers<'a>(
    axis: Axis,
    line: &str,
    points: &[(f64, &Standing<'a>)],
) -> Vec<Crossover<'a>> {
    // Runs of neighbouring points with the same leaders: (first index, last index).
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for i in 0..points.len() {
        match runs.last_mut() {
            Some((_, end)) if points[*end].1.leader_set() == points[i].1.leader_set() => *end = i,
            _ => runs.push((i, i)),
        }
    }
    runs.windows(2)
        .map(|pair| {
            let ((a0, a1), (b0, b1)) = (pair[0], pair[1]);
            Crossover {
                axis,
                line: line.to_string(),
                before_values: points[a0..=a1].iter().map(|p| p.0).collect(),
                after_values: points[b0..=b1].iter().map(|p| p.0).collect(),
                before_opens: a0 == 0,
                after_closes: b1 == points.len() - 1,
                before: points[a1].1.clone(),
                after: points[b0].1.clone(),
            }
        })
        .collect()
}

/// Where the leaders of `criterion` change along `axis` among the points `in_slice`
/// accepts, as chart marks labelled with who leads after the change (`→ sse`, or
/// `→ sse ≈ ws` for a tie): midway between the two points that bracket the change (their
/// geometric mean on a `log` axis).
pub fn crossover_marks(
    dataset: &Dataset,
    criterion: &Criterion,
    axis: Axis,
    in_slice: &dyn Fn(&Load) -> bool,
    log: bool,
) -> Vec<(f64, String)> {
    let standings: Vec<Standing> = standings(dataset, criterion)
        .into_iter()
        .filter(|s| in_slice(&s.load))
        .collect();
    crossovers(&standings)
        .iter()
        .filter(|x| x.axis == axis)
        .map(|x| {
            let after: Vec<String> = x
                .after
                .leader_variants()
                .iter()
                .map(Variant::label)
                .collect();
            (
                midway(x.last_before(), x.first_after(), log),
                format!("→ {}", after.join(" ≈ ")),
            )
        })
        .collect()
}

/// Where the p50 latency leaders change along `axis`: [`crossover_marks`] of [`LATENCY`].
pub fn latency_marks(
    dataset: &Dataset,
    axis: Axis,
    in_slice: &dyn Fn(&Load) -> bool,
    log: bool,
) -> Vec<(f64, String)> {
    crossover_marks(dataset, &LATENCY, axis, in_slice, log)
}

/// Where each series of the suite's p99 limit breaks, among the groups `in_slice` accepts,
/// as chart marks over clients: midway (geometric mean) between the most clients within
/// the limit and the fewest over it, labelled `ws: p99 > 100 ms`. A series belongs to the
/// slice when one of its groups does (its name without `-cN` is the series' group).
pub fn p99_limit_marks(dataset: &Dataset, in_slice: &dyn Fn(&Load) -> bool) -> Vec<(f64, String)> {
    let Some(limit) = dataset.results.p99_limit.as_ref() else {
        return Vec::new();
    };
    let in_this_slice = |series: &str| {
        dataset.groups.iter().any(|g| {
            let without_clients = g.name.replace(&format!("-c{}-", g.key.load.clients), "-");
            in_slice(&g.key.load) && without_clients == series
        })
    };
    limit
        .series
        .iter()
        .filter(|s| in_this_slice(&s.group))
        .filter_map(|s| {
            let (within, over) = (s.highest_within_clients?, s.crossed_at_clients?);
            Some((
                midway(within as f64, over as f64, true),
                format!(
                    "{}: p99 > {}",
                    s.transport,
                    format::micros(s.limit_us as f64)
                ),
            ))
        })
        .collect()
}

/// The point between `a` and `b` where a mark goes: their geometric mean on a log axis,
/// else their mean.
fn midway(a: f64, b: f64, log: bool) -> f64 {
    if log {
        (a * b).sqrt()
    } else {
        (a + b) / 2.0
    }
}

/// Computes the verdict: for the only dataset, or for the candidate (the second) of a
/// baseline and a candidate, saying so; for more, the first.
pub fn verdict(datasets: &[Dataset]) -> Verdict {
    let mut sentences = Vec::new();
    let dataset = match datasets {
        [] => return Verdict::default(),
        [baseline, candidate] => {
            sentences.push(format!(
                "This verdict is the candidate's, {}, not the baseline's, {}.",
                candidate.label, baseline.label
            ));
            candidate
        }
        [first, ..] => first,
    };
    for criterion in &CRITERIA {
        let standings = standings(dataset, criterion);
        sentences.extend(criterion_sentences(criterion, &standings));
        if criterion.name == LATENCY.name {
            sentences.extend(
                dataset
                    .results
                    .p99_limit
                    .as_ref()
                    .and_then(p99_limit_sentence),
            );
        }
    }
    sentences.extend(polling_sentences(dataset));
    sentences.extend(model_sentence(dataset));
    if sentences.len() == usize::from(datasets.len() == 2) {
        sentences.clear();
    }
    Verdict { sentences }
}

/// The sentences of one criterion: an overall winner or tie, else its crossovers, else how
/// often each leads; none with no point to compare at.
fn criterion_sentences(c: &Criterion, standings: &[Standing]) -> Vec<String> {
    let Some(first) = standings.first() else {
        return Vec::new();
    };
    let leaders = first.leader_set();
    if standings.iter().all(|s| s.leader_set() == leaders) {
        return vec![overall_sentence(c, standings)];
    }
    let found = crossovers(standings);
    if found.is_empty() {
        return vec![tally_sentence(c, standings)];
    }
    let mut out: Vec<String> = found
        .iter()
        .take(MAX_CROSSOVER_SENTENCES)
        .map(|x| crossover_sentence(c, x))
        .collect();
    let more = found.len().saturating_sub(MAX_CROSSOVER_SENTENCES);
    if more > 0 {
        if let Some(last) = out.last_mut() {
            last.pop();
            let places = if more == 1 { "place" } else { "places" };
            last.push_str(&format!(
                "; the leaders change at {more} more {places} (see the findings per point)."
            ));
        }
    }
    out
}

/// The same leaders at every point: the point with the median ratio, and the ratio's range.
fn overall_sentence(c: &Criterion, standings: &[Standing]) -> String {
    let mut by_ratio: Vec<&Standing> = standings.iter().collect();
    by_ratio.sort_by(|a, b| a.ratio().total_cmp(&b.ratio()));
    let median = by_ratio[(by_ratio.len() - 1) / 2];
    let (lo, hi) = (by_ratio[0].ratio(), by_ratio[by_ratio.len() - 1].ratio());
    let n = standings.len();
    let ratio = format!("{}×", format::sig3(median.ratio()));
    let range = if n == 1 {
        String::new()
    } else if format::sig3(lo) == format::sig3(hi) {
        "; the same ratio at every point".to_string()
    } else {
        format!(
            ", the median ratio; {}× to {}× over the grid",
            format::sig3(lo),
            format::sig3(hi)
        )
    };
    let at_every = if n == 1 {
        format!("at the one measured point ({})", median.load.describe())
    } else {
        format!("at all {n} measured points")
    };
    let at_point = if n == 1 {
        String::new()
    } else {
        format!(" at {}", median.load.describe())
    };
    if median.leaders == 1 {
        let (w, r) = (&median.ranked[0], &median.ranked[1]);
        let runner_up = if n == 1 { "" } else { ", the runner-up," };
        format!(
            "{} {} {at_every}: {}{} against {} for {}{}{runner_up}{at_point} ({ratio}{range}).",
            w.group.key.variant,
            c.leads,
            c.prefix,
            (c.show)(w.spread.median),
            (c.show)(r.spread.median),
            r.group.key.variant,
            beside(c, w.group, r.group, " (", ")"),
        )
    } else {
        let tied = &median.ranked[..median.leaders];
        format!(
            "{} on {} {at_every}, within {} or the repeats' spread: {}{}{at_point} ({ratio} \
             apart{range}).",
            tie_names(tied),
            c.name,
            format::percent(TIE_SHARE),
            c.prefix,
            values(c, tied),
        )
    }
}

/// `ws ties with sse` or `ws ties with sse and long-poll`.
fn tie_names(tied: &[Entry]) -> String {
    let rest: Vec<String> = tied[1..]
        .iter()
        .map(|e| e.group.key.variant.label())
        .collect();
    format!(
        "{} ties with {}",
        tied[0].group.key.variant,
        and_list(&rest)
    )
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The figures of tied entries: `934 µs and 942 µs`.
fn values(c: &Criterion, entries: &[Entry]) -> String {
    let shown: Vec<String> = entries.iter().map(|e| (c.show)(e.spread.median)).collect();
    and_list(&shown)
}

/// The second figure of a winner and a runner-up, `p99 3.98 ms against 5.83 ms`, between
/// `open` and `close`; empty without one.
fn beside(c: &Criterion, winner: &Group, runner_up: &Group, open: &str, close: &str) -> String {
    let Some((name, metric)) = c.beside else {
        return String::new();
    };
    let median = |g: &Group| g.spread(metric).map(|s| s.median);
    match (median(winner), median(runner_up)) {
        (Some(w), Some(r)) => format!(
            "{open}{name} {} against {}{close}",
            (c.show)(w),
            (c.show)(r)
        ),
        _ => String::new(),
    }
}

/// Who leads at a point, for a crossover sentence: `ws is fastest (p50 201 ms against
/// 390 ms for long-poll)` or `long-poll ties with ws (p50 101 ms and 101 ms)`.
fn outcome(c: &Criterion, s: &Standing) -> String {
    if s.leaders == 1 {
        let (w, r) = (&s.ranked[0], &s.ranked[1]);
        format!(
            "{} {} ({}{} against {} for {}{})",
            w.group.key.variant,
            c.leads,
            c.prefix,
            (c.show)(w.spread.median),
            (c.show)(r.spread.median),
            r.group.key.variant,
            beside(c, w.group, r.group, "; ", "")
        )
    } else {
        let tied = &s.ranked[..s.leaders];
        format!("{} ({}{})", tie_names(tied), c.prefix, values(c, tied))
    }
}

/// Where a run of values lies on its line: `up to 200 ms`, `at 300 ms`, `from 300 ms`, or
/// `from 100 ms to 200 ms`; `opens`/`closes` say whether the run reaches the line's ends.
fn span(axis: Axis, values: &[f64], opens: bool, closes: bool) -> String {
    let (first, last) = (values[0], values[values.len() - 1]);
    if values.len() == 1 {
        format!("at {}", axis.show(first))
    } else if opens {
        format!("up to {}", axis.show(last))
    } else if closes {
        format!("from {}", axis.show(first))
    } else {
        format!("from {} to {}", axis.show(first), axis.show(last))
    }
}

/// One crossover: both sides, with the values that bracket the change.
fn crossover_sentence(c: &Criterion, x: &Crossover) -> String {
    let before = span(x.axis, &x.before_values, x.before_opens, false);
    let after = span(x.axis, &x.after_values, false, x.after_closes);
    format!(
        "On {} along {} ({}), the leader changes between {} and {}: {} {before}; {} {after}.",
        c.name,
        x.axis.name(),
        x.line,
        x.axis.show(x.last_before()),
        x.axis.show(x.first_after()),
        outcome(c, &x.before),
        outcome(c, &x.after),
    )
}

/// Leaders differ between points that differ in more than one parameter: how often each
/// leads.
fn tally_sentence(c: &Criterion, standings: &[Standing]) -> String {
    let mut tally: Vec<(String, usize)> = Vec::new();
    for s in standings {
        let who = if s.leaders == 1 {
            s.ranked[0].group.key.variant.label()
        } else {
            "a tie".to_string()
        };
        match tally.iter_mut().find(|(w, _)| *w == who) {
            Some((_, n)) => *n += 1,
            None => tally.push((who, 1)),
        }
    }
    tally.sort_by_key(|t| std::cmp::Reverse(t.1));
    let parts: Vec<String> = tally
        .iter()
        .map(|(who, n)| format!("{who} at {n}"))
        .collect();
    format!(
        "On {} no transport leads at every point, and no two points with different leaders \
         differ in one parameter only: {} of {} points.",
        c.name,
        and_list(&parts),
        standings.len()
    )
}

/// Where p99 crosses the suite's limit, per series: between which client counts.
fn p99_limit_sentence(limit: &P99Limit) -> Option<String> {
    let name = |i: usize| {
        let t = limit.series[i].transport;
        let unique = limit.series.iter().filter(|s| s.transport == t).count() == 1;
        if unique {
            t.to_string()
        } else {
            limit.series[i].group.clone()
        }
    };
    let parts: Vec<String> = limit
        .series
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.steps.is_empty())
        .map(|(i, s)| {
            let clients = |n: u64| format!("{} clients", format::thousands(n));
            match (s.crossed_at_clients, s.highest_within_clients) {
                (Some(over), Some(within)) => format!(
                    "for {} between {} and {}",
                    name(i),
                    format::thousands(within),
                    clients(over)
                ),
                (Some(over), None) => format!("for {} already at {}", name(i), clients(over)),
                (None, _) => {
                    let most = s.steps.iter().map(|st| st.clients).max().unwrap_or(0);
                    format!("not for {} up to {}", name(i), clients(most))
                }
            }
        })
        .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "The suite's p99 limit of {} breaks {}.",
            format::micros(limit.limit_us as f64),
            and_list(&parts)
        )
    })
}

/// Share of a long-poll's requests per event below which it counts as batching.
const BATCHING_BELOW: f64 = 0.95;
/// Share of a short-poll's polls above which its empty polls are worth a sentence.
const EMPTY_ABOVE: f64 = 0.01;

/// What changes along the event rate for a polling variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollingKind {
    /// Short-poll's share of empty polls falls to [`EMPTY_ABOVE`] or below: from here on
    /// an event waits at the server for every poll.
    EmptyPollsEnd,
    /// Long-poll's requests per event fall below [`BATCHING_BELOW`]: events come faster
    /// than its request cycle, and one answer carries several.
    BatchingStarts,
    /// Short-poll's requests per event fall to long-poll's or below: its polls carry
    /// more than one event each, where long-poll's answers carry about one.
    FewerRequestsThanLongPoll,
}

/// Where a polling variant's behaviour changes between two neighbouring rates of one line
/// (the other parameters equal), at the medians over repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct PollingChange {
    /// The variant.
    pub variant: Variant,
    /// What changes.
    pub kind: PollingKind,
    /// What the line's points share, in words (as [`Axis::line`] has it for the rate).
    pub line: String,
    /// The rate before the change and the figure there (share of empty polls, or requests
    /// per event).
    pub before: (f64, f64),
    /// The rate after it and the figure there.
    pub after: (f64, f64),
    /// For [`PollingKind::FewerRequestsThanLongPoll`]: long-poll's requests per event at
    /// the rate before and the rate after.
    pub long_poll: Option<(f64, f64)>,
}

/// A polling variant's points: (the point, requests per event, share of empty polls),
/// medians over repeats.
fn polling_points(dataset: &Dataset, v: Variant) -> Vec<(&Load, f64, f64)> {
    dataset
        .groups
        .iter()
        .filter(|g| g.key.variant == v)
        .filter_map(|g| {
            let req = g.spread(|s| Some(s.requests.per_event))?.median;
            let empty = g.spread(ScenarioResult::empty_poll_share)?.median;
            Some((&g.key.load, req, empty))
        })
        .collect()
}

/// The polling variants of a dataset, in legend order.
fn polling_variants(dataset: &Dataset) -> Vec<Variant> {
    let mut variants: Vec<Variant> = dataset
        .groups
        .iter()
        .map(|g| g.key.variant)
        .filter(|v| matches!(v.transport, Transport::LongPoll | Transport::ShortPoll))
        .collect();
    variants.sort();
    variants.dedup();
    variants
}

/// A point of a polling line: (rate, requests per event, share of empty polls, long-poll's
/// requests per event at the same point).
type PollingPoint = (f64, f64, f64, Option<f64>);

/// Every [`PollingChange`] among the points `in_slice` accepts: for each polling variant
/// and each line along the rate, each pair of neighbouring rates where short-poll's empty
/// polls end, where its requests per event fall to long-poll's, or where long-poll starts
/// batching.
pub fn polling_changes(dataset: &Dataset, in_slice: &dyn Fn(&Load) -> bool) -> Vec<PollingChange> {
    let variants = polling_variants(dataset);
    // Long-poll's requests per event by point (its first variant), to compare short-poll with.
    let long_poll: BTreeMap<Load, f64> = variants
        .iter()
        .find(|v| v.transport == Transport::LongPoll)
        .map(|v| {
            polling_points(dataset, *v)
                .into_iter()
                .map(|(load, req, _)| (*load, req))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for v in variants {
        let mut lines: BTreeMap<String, Vec<PollingPoint>> = BTreeMap::new();
        for (load, req, empty) in polling_points(dataset, v) {
            if let (true, Some(line)) = (in_slice(load), Axis::Rate.line(load)) {
                lines.entry(line).or_default().push((
                    load.rate_hz(),
                    req,
                    empty,
                    long_poll.get(load).copied(),
                ));
            }
        }
        for (line, mut points) in lines {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            for pair in points.windows(2) {
                for (kind, before, after, long_poll) in pair_changes(v.transport, pair[0], pair[1])
                {
                    out.push(PollingChange {
                        variant: v,
                        kind,
                        line: line.clone(),
                        before: (pair[0].0, before),
                        after: (pair[1].0, after),
                        long_poll,
                    });
                }
            }
        }
    }
    out
}

/// A change between two points: its kind, the figure before and after, and long-poll's
/// requests per event before and after where they are compared.
type PairChange = (PollingKind, f64, f64, Option<(f64, f64)>);

/// What changes between two neighbouring points of a polling line.
fn pair_changes(transport: Transport, a: PollingPoint, b: PollingPoint) -> Vec<PairChange> {
    let mut out = Vec::new();
    match transport {
        Transport::ShortPoll => {
            if a.2 > EMPTY_ABOVE && b.2 <= EMPTY_ABOVE {
                out.push((PollingKind::EmptyPollsEnd, a.2, b.2, None));
            }
            if let (Some(la), Some(lb)) = (a.3, b.3) {
                if a.1 > la && b.1 <= lb {
                    out.push((
                        PollingKind::FewerRequestsThanLongPoll,
                        a.1,
                        b.1,
                        Some((la, lb)),
                    ));
                }
            }
        }
        Transport::LongPoll if a.1 >= BATCHING_BELOW && b.1 < BATCHING_BELOW => {
            out.push((PollingKind::BatchingStarts, a.1, b.1, None));
        }
        _ => {}
    }
    out
}

/// The polling changes of these kinds as chart marks over the rate (the panel of requests
/// per event takes `BatchingStarts` and `FewerRequestsThanLongPoll`, that of empty polls
/// `EmptyPollsEnd`), labelled with the variant: where the two requests lines cross, else
/// midway between the two rates (geometric mean).
pub fn polling_marks(
    dataset: &Dataset,
    kinds: &[PollingKind],
    in_slice: &dyn Fn(&Load) -> bool,
) -> Vec<(f64, String)> {
    polling_changes(dataset, in_slice)
        .into_iter()
        .filter(|c| kinds.contains(&c.kind))
        .map(|c| {
            let what = match c.kind {
                PollingKind::EmptyPollsEnd => "empty polls end",
                PollingKind::BatchingStarts => "batching starts",
                PollingKind::FewerRequestsThanLongPoll => "fewer requests than long-poll",
            };
            (mark_at(&c), format!("{}: {what}", c.variant))
        })
        .collect()
}

/// What polling costs per event, per polling variant: where along the rate short-poll's
/// empty polls end or long-poll starts batching ([`polling_changes`]); with no such change,
/// whether long-poll sent one request per event everywhere or batched somewhere (events
/// faster than its request cycle), and whether short-poll's polls came back empty (events
/// further apart than its interval), at the medians over repeats.
fn polling_sentences(dataset: &Dataset) -> Vec<String> {
    let changes = polling_changes(dataset, &|_| true);
    polling_variants(dataset)
        .into_iter()
        .flat_map(|v| {
            let mine: Vec<String> = changes
                .iter()
                .filter(|c| c.variant == v)
                .take(MAX_CROSSOVER_SENTENCES)
                .map(polling_change_sentence)
                .collect();
            if mine.is_empty() {
                polling_sentence(v, &polling_points(dataset, v))
                    .into_iter()
                    .collect()
            } else {
                mine
            }
        })
        .collect()
}

/// Where a polling change's mark goes on the log rate axis: where short-poll's and
/// long-poll's requests per event cross, the two lines drawn straight on log-log axes
/// between the rates; else midway between the rates (geometric mean).
fn mark_at(c: &PollingChange) -> f64 {
    let (a, b) = (c.before.0, c.after.0);
    let Some((la, lb)) = c.long_poll else {
        return midway(a, b, true);
    };
    let gap_a = (c.before.1 / la).ln();
    let gap_b = (c.after.1 / lb).ln();
    let t = gap_a / (gap_a - gap_b);
    if t.is_finite() && (0.0..=1.0).contains(&t) {
        (a.ln() + t * (b.ln() - a.ln())).exp()
    } else {
        midway(a, b, true)
    }
}

/// One polling change in words, with the rate the variant's poll interval predicts for the
/// end of empty polls (one event per interval).
fn polling_change_sentence(c: &PollingChange) -> String {
    let (a, b) = (format::rate(c.before.0), format::rate(c.after.0));
    match c.kind {
        PollingKind::EmptyPollsEnd => {
            let predicted = c
                .variant
                .poll_interval_ms
                .filter(|ms| *ms > 0)
                .map(|ms| {
                    format!(
                        "; one event per {} poll interval is {}",
                        format::micros(ms as f64 * 1e3),
                        format::rate(1_000.0 / ms as f64)
                    )
                })
                .unwrap_or_default();
            format!(
                "{} stops coming back empty between {a} and {b} ({}): {} of its polls were \
                 empty at {a} and {} at {b}{predicted}.",
                c.variant,
                c.line,
                format::percent(c.before.1),
                format::percent(c.after.1),
            )
        }
        PollingKind::FewerRequestsThanLongPoll => {
            let (la, lb) = c.long_poll.unwrap_or((f64::NAN, f64::NAN));
            let predicted = c
                .variant
                .poll_interval_ms
                .filter(|ms| *ms > 0)
                .map(|ms| {
                    format!(
                        "; at one event per poll interval ({}) each sends about one",
                        format::rate(1_000.0 / ms as f64)
                    )
                })
                .unwrap_or_default();
            format!(
                "{}'s requests per event fall to long-poll's between {a} and {b} ({}): {} \
                 per event against long-poll's {} at {a}, {} against {} at {b}{predicted}.",
                c.variant,
                c.line,
                requests(c.before.1),
                format::sig3(la),
                format::sig3(c.after.1),
                format::sig3(lb),
            )
        }
        PollingKind::BatchingStarts => format!(
            "{} starts batching events between {a} and {b} ({}): {} per event at {a}, {} at \
             {b}, as events come faster than its request cycle (an answer, then a new \
             request).",
            c.variant,
            c.line,
            requests(c.before.1),
            requests(c.after.1),
        ),
    }
}

/// `1 request`, `0.62 requests`.
fn requests(n: f64) -> String {
    let shown = format::sig3(n);
    let noun = if shown == "1" { "request" } else { "requests" };
    format!("{shown} {noun}")
}

/// The sentence for one polling variant over its points.
fn polling_sentence(v: Variant, points: &[(&Load, f64, f64)]) -> Option<String> {
    let n = points.len();
    let rates = || points.iter().map(|p| p.0.rate_hz());
    let top = rates().fold(f64::NAN, f64::max);
    let up_to = if rates().any(|r| r != top) {
        format!(" (up to {})", format::rate(top))
    } else {
        String::new()
    };
    let at_all = match n {
        1 => "at the one measured point".to_string(),
        _ => format!("at all {n} measured points{up_to}"),
    };
    let label = v.label();
    match v.transport {
        Transport::LongPoll => {
            let batched: Vec<_> = points.iter().filter(|p| p.1 < BATCHING_BELOW).collect();
            let Some(least) = batched.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else {
                return Some(format!(
                    "{label} sent one request per delivered event {at_all}: every event \
                     found a request parked at the server."
                ));
            };
            Some(format!(
                "{label} batched events at {} of {n} measured points (under {BATCHING_BELOW} \
                 requests per event), down to {} requests per event at {}: events came \
                 faster than its request cycle (an answer, then a new request).",
                batched.len(),
                format::sig3(least.1),
                least.0.describe()
            ))
        }
        Transport::ShortPoll => {
            let empty: Vec<_> = points.iter().filter(|p| p.2 > EMPTY_ABOVE).collect();
            let Some(most) = empty.iter().max_by(|a, b| a.2.total_cmp(&b.2)) else {
                return Some(format!(
                    "{label} found an event on every poll {at_all}: no empty polls."
                ));
            };
            Some(format!(
                "{label} came back empty on up to {} of its polls ({}), with empty polls at {} \
                 of {n} measured points: where events are further apart than the poll \
                 interval, most polls find nothing.",
                format::percent(most.2),
                most.0.describe(),
                empty.len()
            ))
        }
        Transport::Ws | Transport::Sse => None,
    }
}

/// Whether the runs over an emulated link agree with the model (`MODEL.md`): how many lie
/// within its tolerance, and the largest deviation.
fn model_sentence(dataset: &Dataset) -> Option<String> {
    // (run, its checks), for every usable repeat the model has a check for.
    let mut runs = 0usize;
    let mut outside = 0usize;
    let mut largest: Option<(f64, String)> = None;
    for g in &dataset.groups {
        let base_latency_ms = dataset.model_base_latency_ms(&g.key).unwrap_or(0.0);
        for s in g.usable() {
            let found = checks(s, base_latency_ms);
            if found.is_empty() {
                continue;
            }
            runs += 1;
            outside += usize::from(found.iter().any(|c| !c.within));
            for c in &found {
                if largest
                    .as_ref()
                    .is_none_or(|(d, _)| c.deviation_ratio.abs() > d.abs())
                {
                    let at = g
                        .key
                        .load
                        .link
                        .map_or_else(String::new, |l| format!(" over {}", l.spec()));
                    let what = format!(
                        "{}'s {} at {} clients{at}, {}",
                        g.key.variant,
                        c.metric,
                        format::thousands(g.key.load.clients),
                        format::change(c.deviation_ratio)
                    );
                    largest = Some((c.deviation_ratio, what));
                }
            }
        }
    }
    let (_, what) = largest?;
    let runs_word = if runs == 1 { "run" } else { "runs" };
    let head = if outside == 0 {
        format!("All {runs} {runs_word} over an emulated link lie within the model's tolerance")
    } else {
        format!(
            "{outside} of {runs} {runs_word} over an emulated link lie outside the model's \
             tolerance"
        )
    };
    Some(format!(
        "{head} (latency and IP bytes per event, MODEL.md); the largest deviation is {what}."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(rate_hz: f64) -> Load {
        Load {
            clients: 100,
            rate_mhz: (rate_hz * 1_000.0) as u64,
            payload_bytes: 64,
            link: None,
            stack: crate::group::Stack::default(),
        }
    }

    fn variant(transport: Transport, poll_interval_ms: Option<u64>) -> Variant {
        Variant {
            transport,
            poll_interval_ms,
            keepalive: true,
        }
    }

    #[test]
    fn long_poll_batching_is_named_with_its_lowest_point() {
        let (slow, fast) = (load(4.0), load(100.0));
        let lp = variant(Transport::LongPoll, None);
        assert_eq!(
            polling_sentence(lp, &[(&slow, 1.0, 0.0), (&fast, 0.62, 0.0)]).unwrap(),
            "long-poll batched events at 1 of 2 measured points (under 0.95 requests per \
             event), down to 0.62 requests per event at 100 clients, 100 events/s, 64 B \
             payload: events came faster than its request cycle (an answer, then a new \
             request)."
        );
        assert_eq!(
            polling_sentence(lp, &[(&slow, 1.0, 0.0)]).unwrap(),
            "long-poll sent one request per delivered event at the one measured point: every \
             event found a request parked at the server."
        );
    }

    #[test]
    fn short_poll_empty_polls_are_named_where_most() {
        let (slow, fast) = (load(1.0), load(20.0));
        let sp = variant(Transport::ShortPoll, Some(500));
        assert_eq!(
            polling_sentence(sp, &[(&slow, 2.0, 0.61), (&fast, 0.1, 0.0)]).unwrap(),
            "short-poll (500 ms) came back empty on up to 61% of its polls (100 clients, \
             1 event/s, 64 B payload), with empty polls at 1 of 2 measured points: where \
             events are further apart than the poll interval, most polls find nothing."
        );
        assert_eq!(
            polling_sentence(sp, &[(&fast, 0.1, 0.0)]).unwrap(),
            "short-poll (500 ms) found an event on every poll at the one measured point: no \
             empty polls."
        );
        assert!(polling_sentence(variant(Transport::Ws, None), &[(&fast, 0.0, 0.0)]).is_none());
    }
}
