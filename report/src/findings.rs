//! Findings, warnings and notes: what the data says, in plain sentences.
//!
//! Findings compare transports at each load point (bytes, latency, server CPU) and sum up
//! polling waste, memory (peak, and per connection), the server's request paths, protocol
//! stacks ([`crate::stack_findings`]) and event accounting. Warnings collect whatever the runs carried that makes their figures less
//! trustworthy: the load generator's own warnings, missed, unreceived or duplicated events,
//! errors, failed connections, scenarios that did not complete. Notes are the load
//! generator's informational remarks, which are not problems. Every number is the median
//! over repeats unless a sentence says otherwise.
//!
//! Clock uncertainty: where the load generator and the server ran on different hosts, a
//! latency sentence names how far the figures may be off (`clock ± …`, the largest over the
//! repeats), and a repeat group whose uncertainty exceeds a tenth of its median p50 carries
//! one warning. That warning replaces the per-repeat copies a newer load generator wrote,
//! so a group is warned once, by the same rule, whichever wrote the file.

use crate::format;
use crate::group::{Dataset, Group, Load, Stack, Variant};
use feedbench_results::{is_clock_uncertainty_warning, ScenarioResult, Status};

/// The findings for one dataset, grouped under a heading per load point.
#[derive(Debug, Clone, PartialEq)]
pub struct Findings {
    /// Sentences about the whole run.
    pub overall: Vec<String>,
    /// `(load described, sentences)` for each load point with two or more variants.
    pub per_load: Vec<(String, Vec<String>)>,
}

/// Computes the findings for a dataset.
pub fn findings(dataset: &Dataset) -> Findings {
    let loopback = dataset.target_is_loopback();
    let mut loads: Vec<Load> = dataset.groups.iter().map(|g| g.key.load).collect();
    loads.sort();
    loads.dedup();
    let per_load = loads
        .iter()
        .filter_map(|load| {
            let groups: Vec<&Group> = dataset
                .groups
                .iter()
                .filter(|g| g.key.load == *load)
                .collect();
            let sentences = load_findings(load, &groups, loopback);
            (!sentences.is_empty()).then(|| (load.describe(), sentences))
        })
        .collect();
    let mut overall = Vec::new();
    overall.extend(polling_findings(dataset));
    overall.extend(memory_finding(dataset));
    overall.extend(memory_per_connection_finding(dataset));
    overall.extend(request_path_finding(dataset));
    overall.extend(crate::stack_findings::stack_findings(dataset));
    overall.extend(loss_findings(dataset));
    overall.push(accounting_finding(dataset));
    Findings { overall, per_load }
}

/// For each group over a lossy single-class link whose loss-free twin (same transport and
/// load, a link of the same round trip without loss) is in the dataset: how much its p99
/// rose, and why.
fn loss_findings(dataset: &Dataset) -> Vec<String> {
    let p99 = |g: &Group| {
        g.spread(|s| Some(s.latency_us.p99 as f64))
            .map(|sp| sp.median)
    };
    let mut out = Vec::new();
    for lossy in &dataset.groups {
        let Some(link) = lossy.key.load.link.filter(|l| l.loss_ppm > 0) else {
            continue;
        };
        let Some(rtt_us) = link.rtt_us else { continue };
        let twin = dataset.groups.iter().find(|g| {
            let mut key = g.key;
            key.load.link = lossy.key.load.link;
            key == lossy.key
                && g.key
                    .load
                    .link
                    .is_some_and(|l| l.loss_ppm == 0 && l.rtt_us == Some(rtt_us))
        });
        let (Some(twin), Some(with), Some(without)) = (twin, p99(lossy), twin.and_then(p99)) else {
            continue;
        };
        let twin_spec = twin
            .key
            .load
            .link
            .map_or_else(String::new, |l| l.spec().to_string());
        let change = if with >= without { "rose" } else { "fell" };
        out.push(format!(
            "With loss={} ({}), {} p99 {change} by {} over the loss-free run of the same link \
             ({}: {} → {}): a lost segment stalls the stream until TCP retransmits it (at \
             least one RTT, {}, usually a 200 ms timeout).",
            format::percent(link.loss_ppm as f64 / 1e6),
            link.spec(),
            lossy.key.variant,
            format::micros((with - without).abs()),
            twin_spec,
            format::micros(without),
            format::micros(with),
            format::micros(rtt_us as f64)
        ));
    }
    out
}

/// A label and a median for each group that has the metric.
fn medians<'a>(
    groups: &[&'a Group],
    metric: impl Fn(&ScenarioResult) -> Option<f64>,
) -> Vec<(&'a Group, f64)> {
    let mut v: Vec<(&Group, f64)> = groups
        .iter()
        .filter_map(|g| g.spread(&metric).map(|s| (*g, s.median)))
        .filter(|(_, m)| m.is_finite())
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1));
    v
}

/// "N× fewer" for a ratio, with one decimal below 10.
fn times(ratio: f64) -> String {
    if ratio >= 10.0 {
        format!("{}×", format::thousands(ratio.round() as u64))
    } else {
        format!("{:.1}×", ratio)
    }
}

/// Short phrase for a load: `100 clients and 10 events/s`, and ` over TLS·h2` for a
/// protocol stack other than plaintext HTTP/1.1.
fn at(load: &Load) -> String {
    let over = if load.stack.is_plain() {
        String::new()
    } else {
        format!(" over {}", load.stack.label())
    };
    format!(
        "{} clients and {}{over}",
        format::thousands(load.clients),
        format::rate(load.rate_hz())
    )
}

/// A group's latency in a sentence: `p50 2 ms, p99 3.1 ms`, and `, clock ± 30 µs` where the
/// two clocks could only be compared that well.
fn latency_phrase(group: &Group, p50_us: f64, loopback: bool) -> String {
    let p99_us = group
        .spread(|s| Some(s.latency_us.p99 as f64))
        .map(|s| s.median)
        .unwrap_or(f64::NAN);
    let mut phrase = format!(
        "p50 {}, p99 {}",
        format::micros(p50_us),
        format::micros(p99_us)
    );
    if let Some(clock_us) = group.clock_uncertainty_us(loopback) {
        phrase.push_str(&format!(", clock ± {}", format::micros(clock_us)));
    }
    phrase
}

/// Bytes, latency and CPU comparisons at one load point.
fn load_findings(load: &Load, groups: &[&Group], loopback: bool) -> Vec<String> {
    let mut out = Vec::new();
    if groups.len() < 2 {
        return out;
    }
    let bytes = medians(groups, |s| Some(s.bytes.per_event).filter(|b| *b > 0.0));
    if let (Some((best, b)), Some((worst, w))) = (bytes.first(), bytes.last()) {
        if w / b >= 1.05 {
            out.push(format!(
                "At {}, {} used {} fewer bytes per event than {} ({} vs {}).",
                at(load),
                best.key.variant,
                times(w / b),
                worst.key.variant,
                format::bytes(*b),
                format::bytes(*w)
            ));
        } else {
            out.push(format!(
                "At {}, all transports used about the same bytes per event ({}).",
                at(load),
                format::bytes(*b)
            ));
        }
    }
    let p50 = medians(groups, |s| Some(s.latency_us.p50 as f64));
    if let (Some((fast, f)), Some((slow, s))) = (p50.first(), p50.last()) {
        out.push(format!(
            "{} delivered fastest ({}); {} slowest ({}).",
            fast.key.variant,
            latency_phrase(fast, *f, loopback),
            slow.key.variant,
            latency_phrase(slow, *s, loopback)
        ));
    }
    let cpu = medians(groups, ScenarioResult::server_cpu_ms_per_1k_events);
    if let (Some((cheap, c)), Some((dear, d))) = (cpu.first(), cpu.last()) {
        if d / c.max(f64::MIN_POSITIVE) >= 1.2 {
            out.push(format!(
                "The server spent {} ms of CPU per 1,000 events for {} and {} ms for {} ({} as much).",
                format::sig3(*c),
                cheap.key.variant,
                format::sig3(*d),
                dear.key.variant,
                times(d / c.max(f64::MIN_POSITIVE))
            ));
        }
    }
    out
}

/// Requests per event and empty polls at each polling variant's worst load, per protocol
/// stack.
fn polling_findings(dataset: &Dataset) -> Vec<String> {
    let mut variants: Vec<(Variant, Stack)> = dataset
        .groups
        .iter()
        .map(|g| (g.key.variant, g.key.load.stack))
        .filter(|(v, _)| v.transport.is_polling())
        .collect();
    variants.sort();
    variants.dedup();
    variants
        .iter()
        .filter_map(|(variant, stack)| {
            let groups: Vec<&Group> = dataset
                .groups
                .iter()
                .filter(|g| g.key.variant == *variant && g.key.load.stack == *stack)
                .collect();
            let worst = medians(&groups, |s| Some(s.requests.per_event)).pop()?;
            let (group, per_event) = worst;
            let empty = group
                .spread(ScenarioResult::empty_poll_share)
                .map(|s| s.median)
                .unwrap_or(0.0);
            let noun = if format::sig3(per_event) == "1" {
                "request"
            } else {
                "requests"
            };
            Some(format!(
                "{} sent up to {} {noun} per delivered event (at {}), {} of them empty.",
                variant,
                format::sig3(per_event),
                at(&group.key.load),
                format::percent(empty)
            ))
        })
        .collect()
}

/// Peak server RSS across variants at the largest client count.
fn memory_finding(dataset: &Dataset) -> Option<String> {
    let clients = dataset.groups.iter().map(|g| g.key.load.clients).max()?;
    let groups: Vec<&Group> = dataset
        .groups
        .iter()
        .filter(|g| g.key.load.clients == clients)
        .collect();
    // One figure per variant: its highest median RSS over the loads at this client count.
    let mut per_variant: Vec<(String, f64)> = Vec::new();
    for (g, rss) in medians(&groups, |s| {
        s.server.as_ref().map(|v| v.rss_peak_bytes as f64)
    }) {
        let label = g.key.label();
        match per_variant.iter_mut().find(|(l, _)| *l == label) {
            Some((_, r)) => *r = r.max(rss),
            None => per_variant.push((label, rss)),
        }
    }
    per_variant.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (low, high) = (per_variant.first()?, per_variant.last()?);
    if per_variant.len() < 2 {
        return None;
    }
    Some(format!(
        "With {} clients connected, the server's peak memory ranged from {} ({}) to {} ({}).",
        format::thousands(clients),
        format::bytes(low.1),
        low.0,
        format::bytes(high.1),
        high.0
    ))
}

/// Server memory per connected client for each variant, at the largest client count that
/// has the figure: medians over repeats, the highest of them where a variant ran several
/// rates or payloads at that count. Lowest first.
fn memory_per_connection_finding(dataset: &Dataset) -> Option<String> {
    let measured = |g: &&Group| {
        g.spread(ScenarioResult::server_memory_per_connection)
            .is_some()
    };
    let clients = dataset
        .groups
        .iter()
        .filter(measured)
        .map(|g| g.key.load.clients)
        .max()?;
    let groups: Vec<&Group> = dataset
        .groups
        .iter()
        .filter(|g| g.key.load.clients == clients)
        .collect();
    // (variant over its stack, figure, how many loads it was the highest of)
    let mut per_variant: Vec<(String, f64, usize)> = Vec::new();
    for (g, bytes) in medians(&groups, ScenarioResult::server_memory_per_connection) {
        let label = g.key.label();
        match per_variant.iter_mut().find(|(v, _, _)| *v == label) {
            Some((_, b, n)) => {
                *b = b.max(bytes);
                *n += 1;
            }
            None => per_variant.push((label, bytes, 1)),
        }
    }
    per_variant.sort_by(|a, b| a.1.total_cmp(&b.1));
    let figures: Vec<String> = per_variant
        .iter()
        .map(|(v, b, _)| format!("{v} {}", format::bytes(*b)))
        .collect();
    let highest = if per_variant.iter().any(|(_, _, n)| *n > 1) {
        ", the highest over the rates and payloads run"
    } else {
        ""
    };
    let mut sentence = format!(
        "Server memory per open connection at {} clients: {} (RSS growth from before the \
         clients connected to the start of the measure window, per connected client; medians \
         over repeats{highest}).",
        format::thousands(clients),
        figures.join(", ")
    );
    if per_variant.iter().any(|(_, b, _)| *b < 0.0) {
        sentence.push_str(
            " A negative figure means the server's RSS shrank meanwhile: it returned more memory \
             to the OS than the connections took.",
        );
    }
    Some(sentence)
}

/// How the server answered requests, per variant: the share on its direct fast path, the
/// rest through hyper, summed over every repeat and load that reports it. `None` when no
/// scenario does (servers that do not report it, and files written before schema 2).
fn request_path_finding(dataset: &Dataset) -> Option<String> {
    // (variant over its stack, direct, total)
    let mut per_variant: Vec<(String, u64, u64)> = Vec::new();
    for g in &dataset.groups {
        let label = g.key.label();
        for s in g.usable() {
            let Some(by_path) = s.server.as_ref().and_then(|f| f.requests_by_path) else {
                continue;
            };
            let total = by_path.direct + by_path.hyper;
            match per_variant.iter_mut().find(|(v, ..)| *v == label) {
                Some((_, d, t)) => {
                    *d += by_path.direct;
                    *t += total;
                }
                None => per_variant.push((label.clone(), by_path.direct, total)),
            }
        }
    }
    per_variant.retain(|(.., total)| *total > 0);
    if per_variant.is_empty() {
        return None;
    }
    let figures: Vec<String> = per_variant
        .iter()
        .map(|(v, direct, total)| {
            format!(
                "{v} {} ({} of {})",
                format::percent(*direct as f64 / *total as f64),
                format::thousands(*direct),
                format::thousands(*total)
            )
        })
        .collect();
    Some(format!(
        "Requests the server answered on its direct fast path, the rest through hyper: {} \
         (sums over every repeat and load).",
        figures.join(", ")
    ))
}

/// Whether every event arrived exactly once and in order.
fn accounting_finding(dataset: &Dataset) -> String {
    let all = dataset.groups.iter().flat_map(|g| g.repeats.iter());
    let (mut missed, mut dup, mut ooo, mut delivered) = (0u64, 0u64, 0u64, 0u64);
    for s in all {
        missed += s.events.missed;
        dup += s.events.duplicates;
        ooo += s.events.out_of_order;
        delivered += s.events.delivered;
    }
    if missed + dup + ooo == 0 {
        format!(
            "All {} deliveries arrived exactly once and in order: no event was missed, duplicated or reordered.",
            format::thousands(delivered)
        )
    } else {
        format!(
            "Of {} deliveries, {} events were missed, {} duplicated and {} out of order (see warnings).",
            format::thousands(delivered),
            format::thousands(missed),
            format::thousands(dup),
            format::thousands(ooo)
        )
    }
}

/// Every warning the run carried, one sentence each, prefixed with the scenario; then one
/// per repeat group whose latency the clock comparison leaves too uncertain.
pub fn warnings(dataset: &Dataset) -> Vec<String> {
    let r = &dataset.results;
    let mut out = Vec::new();
    if r.status != Status::Complete {
        let why = r.status_message.as_deref().unwrap_or("no reason given");
        out.push(format!("The run is {}: {why}.", r.status.as_str()));
    }
    for s in &r.scenarios {
        let who = format!("{} repeat {}", s.name, s.repeat);
        if s.status != Status::Complete {
            out.push(format!("{who}: scenario {}.", s.status.as_str()));
        }
        // The clock warning is the group's, below, by the same rule.
        for w in s
            .warnings
            .iter()
            .filter(|w| !is_clock_uncertainty_warning(w))
        {
            out.push(format!("{who}: {w}"));
        }
        let e = &s.events;
        if e.missed > 0 {
            out.push(format!(
                "{who}: {} of {} deliveries missed.",
                format::thousands(e.missed),
                format::thousands(e.expected)
            ));
        }
        if e.unreceived > 0 {
            out.push(format!(
                "{who}: {} events in the window reached no client (each counted missed for every client).",
                format::thousands(e.unreceived)
            ));
        }
        if e.duplicates > 0 || e.out_of_order > 0 {
            out.push(format!(
                "{who}: {} duplicated and {} out-of-order deliveries.",
                e.duplicates, e.out_of_order
            ));
        }
        if s.connections.failed > 0 {
            out.push(format!(
                "{who}: {} of {} connections failed.",
                s.connections.failed, s.connections.target
            ));
        }
        let errors: u64 = s.errors.values().sum();
        if errors > 0 {
            let kinds: Vec<String> = s.errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
            out.push(format!("{who}: {errors} errors ({}).", kinds.join(", ")));
        }
    }
    let loopback = dataset.target_is_loopback();
    for g in &dataset.groups {
        if let Some(w) = g.clock_warning(loopback) {
            let n = g.usable().count();
            let repeats = if n == 1 { "repeat" } else { "repeats" };
            out.push(format!("{} ({n} {repeats}): {w}.", g.name));
        }
    }
    out
}

/// Every note the run carried, one sentence each, prefixed with the scenario: remarks that
/// are not problems, shown apart from the warnings.
pub fn notes(dataset: &Dataset) -> Vec<String> {
    dataset
        .results
        .scenarios
        .iter()
        .flat_map(|s| {
            s.notes
                .iter()
                .map(move |n| format!("{} repeat {}: {n}", s.name, s.repeat))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_rounds_sensibly() {
        assert_eq!(times(2.345), "2.3×");
        assert_eq!(times(23.4), "23×");
    }
}
