//! Findings about protocol stacks: what HTTP/2 saves against HTTP/1.1, what TLS costs
//! against plaintext and what its records add per event, what TLS handshakes cost per
//! poll with and without resumption, and what one handshake costs in CPU on each side.
//!
//! Every sentence compares groups of one dataset that differ in their stack alone (same
//! transport, load and window), or describes one group; every number is a median over
//! repeats of a figure the results file holds. A file without stacks gets none.

use feedbench_results::ScenarioResult;

use crate::format;
use crate::group::{link_phrase, Dataset, Group, HttpVersion, Load, Stack};
use crate::stacks::{layers_per_event, median};

/// Every stack finding of a dataset: HTTP/2 against HTTP/1.1, TLS against plaintext, TLS
/// records, then handshakes.
pub fn stack_findings(dataset: &Dataset) -> Vec<String> {
    let mut out = http2_findings(dataset);
    out.extend(tls_findings(dataset));
    out.extend(tls_record_findings(dataset));
    out.extend(handshake_findings(dataset));
    out.extend(handshake_cpu_findings(dataset));
    out
}

/// `100 clients and 10 events/s`, with `, link SPEC` over an emulated link; the stack is
/// named by the sentence.
fn at(load: &Load) -> String {
    format!(
        "{} clients and {}{}",
        format::thousands(load.clients),
        format::rate(load.rate_hz()),
        link_phrase(load.link)
    )
}

/// The group measured like `group` but over `stack`, if the dataset has one.
fn twin<'a>(dataset: &'a Dataset, group: &Group, stack: Stack) -> Option<&'a Group> {
    let mut key = group.key;
    key.load.stack = stack;
    dataset.group(&key)
}

/// Socket bytes of both directions per request sent (a poll and its answer).
fn bytes_per_request(s: &ScenarioResult) -> Option<f64> {
    (s.requests.sent > 0).then(|| (s.bytes.up + s.bytes.down) as f64 / s.requests.sent as f64)
}

/// Framing and HTTP/2 frames per event: what the protocols add around the payload below
/// TLS.
fn framing_per_event(group: &Group) -> Option<f64> {
    layers_per_event(group).map(|(l, _)| l.framing + l.h2)
}

/// For each group over HTTP/2 whose HTTP/1.1 twin (same TLS and resumption, one client
/// per connection) is in the dataset: bytes per poll (polling transports) and per event,
/// and where the split has them, framing with HTTP/2 frames on both sides.
fn http2_findings(dataset: &Dataset) -> Vec<String> {
    let mut out = Vec::new();
    for h2 in &dataset.groups {
        let s2 = h2.key.load.stack;
        if s2.http != HttpVersion::Http2 {
            continue;
        }
        let s1 = Stack {
            http: HttpVersion::Http1,
            streams_per_connection: 1,
            ..s2
        };
        let Some(h1) = twin(dataset, h2, s1) else {
            continue;
        };
        let per_event = |g: &Group| median(g, |s| Some(s.bytes.per_event));
        let (Some(e1), Some(e2)) = (per_event(h1), per_event(h2)) else {
            continue;
        };
        let variant = h2.key.variant;
        let (l1, l2) = (s1.label(), s2.label());
        let mut sentence = match (median(h1, bytes_per_request), median(h2, bytes_per_request)) {
            (Some(p1), Some(p2)) if variant.transport.is_polling() && p1 > 0.0 => {
                let verdict = if p2 <= p1 {
                    format!(
                        "HTTP/2 saved {} per poll ({})",
                        format::bytes(p1 - p2),
                        format::percent((p1 - p2) / p1)
                    )
                } else {
                    format!(
                        "HTTP/2 cost {} more per poll ({})",
                        format::bytes(p2 - p1),
                        format::change((p2 - p1) / p1)
                    )
                };
                format!(
                    "At {}, {variant} over {l2} sent and received {} per poll against {} over \
                     {l1}: {verdict}. Per delivered event: {} against {}",
                    at(&h2.key.load),
                    format::bytes(p2),
                    format::bytes(p1),
                    format::bytes(e2),
                    format::bytes(e1)
                )
            }
            _ => format!(
                "At {}, {variant} over {l2} used {} per delivered event against {} over {l1} \
                 ({})",
                at(&h2.key.load),
                format::bytes(e2),
                format::bytes(e1),
                format::change((e2 - e1) / e1.max(f64::MIN_POSITIVE))
            ),
        };
        if let (Some(f1), Some(f2)) = (framing_per_event(h1), framing_per_event(h2)) {
            sentence.push_str(&format!(
                ", of which framing and HTTP/2 frames {} against {}",
                format::bytes(f2),
                format::bytes(f1)
            ));
        }
        sentence.push('.');
        out.push(sentence);
    }
    out
}

/// For each group over TLS whose plaintext twin (same HTTP version and streams per
/// connection) is in the dataset: bytes per event, and where both have them, server CPU per
/// 1,000 events and server memory per connection, over TLS against plaintext.
fn tls_findings(dataset: &Dataset) -> Vec<String> {
    let mut out = Vec::new();
    for tls in &dataset.groups {
        let stack = tls.key.load.stack;
        if !stack.tls {
            continue;
        }
        let plain_stack = Stack {
            tls: false,
            tls_resumption: None,
            ..stack
        };
        let Some(plain) = twin(dataset, tls, plain_stack) else {
            continue;
        };
        let per_event = |g: &Group| median(g, |s| Some(s.bytes.per_event));
        let (Some(e_tls), Some(e_plain)) = (per_event(tls), per_event(plain)) else {
            continue;
        };
        let mut sentence = format!(
            "At {}, {} over {} used {} per delivered event against {} over {} ({})",
            at(&tls.key.load),
            tls.key.variant,
            stack.label(),
            format::bytes(e_tls),
            format::bytes(e_plain),
            plain_stack.label(),
            format::change((e_tls - e_plain) / e_plain.max(f64::MIN_POSITIVE))
        );
        let both = |metric: fn(&ScenarioResult) -> Option<f64>| {
            Some((median(tls, metric)?, median(plain, metric)?))
        };
        if let Some((c_tls, c_plain)) = both(ScenarioResult::server_cpu_ms_per_1k_events) {
            sentence.push_str(&format!(
                "; server CPU {} ms against {} ms per 1,000 events",
                format::sig3(c_tls),
                format::sig3(c_plain)
            ));
        }
        if let Some((m_tls, m_plain)) = both(ScenarioResult::server_memory_per_connection) {
            sentence.push_str(&format!(
                "; server memory {} against {} per connection",
                format::bytes(m_tls),
                format::bytes(m_plain)
            ));
        }
        sentence.push('.');
        out.push(sentence);
    }
    out
}

/// For each load over TLS: what TLS record headers and tags cost each transport per event,
/// and their share of its bytes per event.
fn tls_record_findings(dataset: &Dataset) -> Vec<String> {
    let mut loads: Vec<Load> = dataset
        .groups
        .iter()
        .map(|g| g.key.load)
        .filter(|l| l.stack.tls)
        .collect();
    loads.sort();
    loads.dedup();
    loads
        .iter()
        .filter_map(|load| {
            let parts: Vec<String> = dataset
                .groups
                .iter()
                .filter(|g| g.key.load == *load)
                .filter_map(|g| {
                    let (layers, total) = layers_per_event(g)?;
                    let share = layers.tls / total.median.max(f64::MIN_POSITIVE);
                    Some(format!(
                        "{} {} ({} of its {})",
                        g.key.variant,
                        format::bytes(layers.tls),
                        format::percent(share),
                        format::bytes(total.median)
                    ))
                })
                .collect();
            (!parts.is_empty()).then(|| {
                format!(
                    "Over {} at {}, TLS record headers and tags cost per delivered event: {}.",
                    load.stack.label(),
                    at(load),
                    and_list(&parts)
                )
            })
        })
        .collect()
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// What one unit of a group's work is for handshake figures: a poll for polling
/// transports that sent requests, else a delivered event.
struct Unit {
    /// `poll` or `event`.
    name: &'static str,
    /// Handshakes completed in the window per unit.
    handshakes: fn(&ScenarioResult) -> Option<f64>,
    /// Handshake-layer bytes (both directions) per unit.
    bytes: fn(&ScenarioResult) -> Option<f64>,
}

/// Per poll.
const PER_POLL: Unit = Unit {
    name: "poll",
    handshakes: ScenarioResult::handshakes_per_request,
    bytes: ScenarioResult::handshake_bytes_per_request,
};

/// Per delivered event.
const PER_EVENT: Unit = Unit {
    name: "event",
    handshakes: ScenarioResult::handshakes_per_event,
    bytes: |s| s.split_per_event().map(|l| l.handshake),
};

/// The unit of a group's handshake figures.
fn unit(group: &Group) -> &'static Unit {
    let polls = group.usable().any(|s| s.requests.sent > 0);
    if group.key.variant.transport.is_polling() && polls {
        &PER_POLL
    } else {
        &PER_EVENT
    }
}

/// `1 TLS handshake`, `0.5 TLS handshakes`.
fn handshakes_phrase(n: f64) -> String {
    let shown = format::sig3(n);
    let noun = if shown == "1" {
        "handshake"
    } else {
        "handshakes"
    };
    format!("{shown} TLS {noun}")
}

/// For each group over TLS that completed handshakes inside the window: handshakes and
/// handshake bytes per poll (or per event), with resumption against without where the
/// dataset has both, else on their own.
fn handshake_findings(dataset: &Dataset) -> Vec<String> {
    let mut out = Vec::new();
    for g in &dataset.groups {
        let stack = g.key.load.stack;
        if !stack.tls || !median(g, ScenarioResult::handshakes_per_event).is_some_and(|h| h > 0.0) {
            continue;
        }
        let resumes = stack.tls_resumption != Some(false);
        let other = Stack {
            tls_resumption: Some(!resumes),
            ..stack
        };
        let other = twin(dataset, g, other)
            .filter(|o| median(o, ScenarioResult::handshakes_per_event).is_some_and(|h| h > 0.0));
        match (resumes, other) {
            (true, Some(off)) => out.extend(resumption_sentence(g, off)),
            // Said in the sentence of the twin that resumes.
            (false, Some(_)) => {}
            (_, None) => out.extend(handshake_sentence(g)),
        }
    }
    out
}

/// One group's handshakes per unit and their bytes, with the share resumed.
fn handshake_sentence(g: &Group) -> Option<String> {
    let u = unit(g);
    let n = median(g, u.handshakes)?;
    let bytes = median(g, u.bytes)?;
    let resumed = median(g, ScenarioResult::resumed_share).unwrap_or(0.0);
    Some(format!(
        "At {} over {}, {} made {} per {}, {} of handshake per {} ({} of them resumed).",
        at(&g.key.load),
        g.key.load.stack.label(),
        g.key.variant,
        handshakes_phrase(n),
        u.name,
        format::bytes(bytes),
        u.name,
        format::percent(resumed)
    ))
}

/// A group with session resumption against its twin without: handshakes and handshake
/// bytes per unit, server CPU per 1,000 events and p50 latency.
fn resumption_sentence(on: &Group, off: &Group) -> Option<String> {
    let u = unit(on);
    let (n_on, n_off) = (median(on, u.handshakes)?, median(off, u.handshakes)?);
    let (b_on, b_off) = (median(on, u.bytes)?, median(off, u.bytes)?);
    let resumed = median(on, ScenarioResult::resumed_share).unwrap_or(0.0);
    let saving = if b_on <= b_off {
        format!(
            "{} less with it",
            format::percent((b_off - b_on) / b_off.max(f64::MIN_POSITIVE))
        )
    } else {
        format!(
            "{} more with it",
            format::percent((b_on - b_off) / b_off.max(f64::MIN_POSITIVE))
        )
    };
    let mut sentence = format!(
        "At {} over {}, {} made {} per {} with session resumption and {} without: {} of \
         handshake per {} with it ({} resumed) against {} without ({saving})",
        at(&on.key.load),
        on.key.load.stack.label(),
        on.key.variant,
        handshakes_phrase(n_on),
        u.name,
        format::sig3(n_off),
        format::bytes(b_on),
        u.name,
        format::percent(resumed),
        format::bytes(b_off)
    );
    let cpu = |g: &Group| median(g, ScenarioResult::server_cpu_ms_per_1k_events);
    if let (Some(c_on), Some(c_off)) = (cpu(on), cpu(off)) {
        sentence.push_str(&format!(
            "; server CPU {} ms against {} ms per 1,000 events",
            format::sig3(c_on),
            format::sig3(c_off)
        ));
    }
    let p50 = |g: &Group| median(g, |s| Some(s.latency_us.p50 as f64));
    if let (Some(l_on), Some(l_off)) = (p50(on), p50(off)) {
        sentence.push_str(&format!(
            ", p50 {} against {}",
            format::micros(l_on),
            format::micros(l_off)
        ));
    }
    sentence.push('.');
    Some(sentence)
}

/// CPU seconds of one side in a scenario's window.
type CpuOf = fn(&ScenarioResult) -> Option<f64>;

/// The server's CPU seconds in the window (`None` without `/stats`).
const SERVER_CPU: CpuOf = |s| s.server.as_ref().map(|v| v.cpu_s);
/// The load generator's CPU seconds in the window.
const LOADGEN_CPU: CpuOf = |s| Some(s.loadgen.cpu_s);

/// TLS handshakes completed in the window.
fn window_handshakes(s: &ScenarioResult) -> Option<f64> {
    s.stack.as_ref().map(|st| st.handshakes as f64)
}

/// The keep-alive twin of a polling group without keep-alive: same transport, interval,
/// load and stack, keep-alive on; or, if the dataset has none, the same with the other
/// resumption setting (which a kept-alive connection never uses in the window). Only a
/// twin without handshakes in its window counts.
fn keepalive_twin<'a>(dataset: &'a Dataset, g: &Group) -> Option<&'a Group> {
    let mut key = g.key;
    key.variant.keepalive = true;
    let stack = key.load.stack;
    let flipped = Stack {
        tls_resumption: stack.tls_resumption.map(|r| !r),
        ..stack
    };
    [stack, flipped]
        .into_iter()
        .filter_map(|st| {
            key.load.stack = st;
            dataset.group(&key)
        })
        .find(|t| median(t, window_handshakes) == Some(0.0))
}

/// CPU seconds per handshake on one side: the CPU of `nk` (a handshake per poll) minus that
/// of its keep-alive twin `ka`, over the handshakes of `nk`'s window; medians over repeats.
fn cpu_per_handshake(nk: &Group, ka: &Group, cpu: CpuOf) -> Option<f64> {
    let handshakes = median(nk, window_handshakes).filter(|&h| h > 0.0)?;
    Some((median(nk, cpu)? - median(ka, cpu)?) / handshakes)
}

/// `41 µs` of CPU per handshake, or that the difference was not above zero.
fn cpu_phrase(seconds: f64) -> String {
    if seconds > 0.0 {
        format::micros(seconds * 1e6)
    } else {
        "no more than with keep-alive".to_string()
    }
}

/// For each polling group over TLS without keep-alive whose keep-alive twin is in the
/// dataset: the CPU one TLS handshake costs the server and the load generator, the
/// no-keep-alive run's CPU minus its twin's over its handshakes, with session resumption
/// and without where the dataset has both.
fn handshake_cpu_findings(dataset: &Dataset) -> Vec<String> {
    let mut out = Vec::new();
    for g in &dataset.groups {
        let stack = g.key.load.stack;
        if !stack.tls || g.key.variant.keepalive || stack.tls_resumption == Some(false) {
            continue;
        }
        let off = Stack {
            tls_resumption: Some(false),
            ..stack
        };
        let runs: Vec<(&str, &Group)> = [
            ("with session resumption", Some(g)),
            ("without", twin(dataset, g, off)),
        ]
        .into_iter()
        .filter_map(|(label, nk)| Some((label, nk?)))
        .collect();
        out.extend(handshake_cpu_sentence(dataset, &runs));
    }
    // Groups without resumption whose twin with it is absent are described alone.
    for g in &dataset.groups {
        let stack = g.key.load.stack;
        let on = Stack {
            tls_resumption: Some(true),
            ..stack
        };
        if stack.tls
            && !g.key.variant.keepalive
            && stack.tls_resumption == Some(false)
            && twin(dataset, g, on).is_none()
        {
            out.extend(handshake_cpu_sentence(
                dataset,
                &[("without session resumption", g)],
            ));
        }
    }
    out
}

/// One sentence over the groups of one load (`label`, no-keep-alive group): the CPU per
/// handshake on each side for each that has a keep-alive twin.
fn handshake_cpu_sentence(dataset: &Dataset, runs: &[(&str, &Group)]) -> Option<String> {
    let parts: Vec<String> = runs
        .iter()
        .filter_map(|(label, nk)| {
            let ka = keepalive_twin(dataset, nk)?;
            let server = cpu_per_handshake(nk, ka, SERVER_CPU);
            let loadgen = cpu_per_handshake(nk, ka, LOADGEN_CPU)?;
            let server = server.map_or("not measured".to_string(), cpu_phrase);
            Some(format!(
                "{server} on the server and {} on the load generator {label}",
                cpu_phrase(loadgen)
            ))
        })
        .collect();
    let (_, first) = runs.first()?;
    (!parts.is_empty()).then(|| {
        format!(
            "At {} over {}, one TLS handshake of {} cost {} (the run's CPU minus that of its \
             keep-alive twin, over its handshakes).",
            at(&first.key.load),
            first.key.load.stack.label(),
            first.key.variant,
            and_list(&parts)
        )
    })
}
