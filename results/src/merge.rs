//! Merging shards' results files into one, as if one process had run every client.
//!
//! `feedbench load --shard I/N` splits a scenario's clients into N contiguous blocks, one
//! process (or pod) each, all opening their measure window at the same instant of the
//! server's clock. [`merge`] checks that the files belong together and combines them:
//!
//! - Histograms are merged exactly: each shard's HdrHistogram is decoded and added, and the
//!   sum is summarised again ([`Summary::of`]); percentiles are never averaged.
//! - Counts (events, bytes, requests, connections, errors, load-generator CPU) are summed and
//!   the ratios derived from them recomputed the way the load generator computes them.
//! - The window's events (`published`, its seq range, where it came from) are the feed's and
//!   must be the same in every complete shard; an event is unreceived overall iff no client
//!   of any shard received it, i.e. iff it is in every shard's `unreceived_seqs`.
//! - The server's figures describe the shared window and are taken once, from the lowest
//!   shard index present, never summed.
//! - The link block (`net`) describes the one link all shards share: every shard that has
//!   one must carry the same block, which is taken once; different blocks are refused.
//! - The stack (`stack`): its byte split and handshake counts are summed; what was
//!   negotiated (HTTP version, TLS version, cipher suite, ALPN) must be the same in every
//!   shard that negotiated anything, and the stack parameters (`params.tls`, `http`,
//!   `streams_per_connection`, `tls_resumption`) the same in every shard, like every other
//!   parameter.
//!
//! Architecture invariant: files that do not belong together are refused ([`MergeError`],
//! naming the files and the reason), while a run that is merely incomplete (a shard without
//! a file, a shard that failed or stopped early) is merged with what there is and marked
//! `failed` or `interrupted`, naming the shards: nothing is dropped silently.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use crate::net::NetFigures;
use crate::run::{Results, Status};
use crate::scenario::{
    ByteFigures, ClockFigures, Connections, Events, Loadgen, Requests, ScenarioResult,
    MAX_UNRECEIVED_SEQS,
};
use crate::stack::{StackFigures, TlsRun};
use crate::summary::{HdrError, Summary};
use crate::SCHEMA_VERSION;

/// How far apart two shards' window edges may lie on the server's clock, ns (1 ms).
pub const WINDOW_TOLERANCE_NS: u64 = 1_000_000;

/// The merged file and what the merge found about the shards.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged results: schema 2, no `shard` blocks; its status is the worst of the
    /// shards', or `failed` when shards are missing.
    pub results: Results,
    /// Shards the run was split into.
    pub shard_count: u32,
    /// Shard indices that had a file with scenarios, ascending.
    pub present: Vec<u32>,
    /// Shard indices without one, ascending.
    pub missing: Vec<u32>,
    /// The suite's p99 limit (µs) when the shard files carry one. The merge cannot evaluate
    /// it (that is the load generator's `crossing` logic), so `results.p99_limit` is `None`
    /// and the caller recomputes it over the merged scenarios.
    pub p99_limit_us: Option<u64>,
}

/// Why files cannot be merged: they do not come from the shards of one run.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// No files were given.
    #[error("no shard files to merge")]
    NoFiles,
    /// No file has a scenario, so none says which shard it is.
    #[error("nothing to merge: {files} hold no scenarios")]
    NoScenarios {
        /// The files, comma-separated.
        files: String,
    },
    /// A file is not one shard's file.
    #[error("{file} is not a shard's results file: {reason}")]
    NotAShard {
        /// The file.
        file: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two files split the run into different numbers of shards.
    #[error("{a} and {b} split the run differently: {a} is one of {count_a} shards, {b} one of {count_b}")]
    ShardCount {
        /// One file.
        a: String,
        /// The other.
        b: String,
        /// Shards according to `a`.
        count_a: u32,
        /// Shards according to `b`.
        count_b: u32,
    },
    /// Two files are the same shard.
    #[error("{a} and {b} are both shard {index} of {count}")]
    DuplicateShard {
        /// One file.
        a: String,
        /// The other.
        b: String,
        /// The shard.
        index: u32,
        /// Shards in the run.
        count: u32,
    },
    /// Two files differ in something every shard of a run shares.
    #[error("{a} and {b} are not from the same run: {what} {value_a:?} vs {value_b:?}")]
    Run {
        /// One file.
        a: String,
        /// The other.
        b: String,
        /// What differs (`suite`, `target`).
        what: &'static str,
        /// Its value in `a`.
        value_a: String,
        /// Its value in `b`.
        value_b: String,
    },
    /// Two files ran different scenarios.
    #[error("{a} and {b} ran different scenarios: {detail}")]
    Scenarios {
        /// One file.
        a: String,
        /// The other.
        b: String,
        /// Which scenario and what differs.
        detail: String,
    },
    /// Two shards' measure windows do not line up (or a complete shard has none).
    #[error("scenario {scenario}: {detail}")]
    Window {
        /// The scenario, `name #repeat`.
        scenario: String,
        /// Which shards (`shard I (file)`) and how their windows differ.
        detail: String,
    },
    /// Two complete shards read different events for the window from the feed.
    #[error("scenario {scenario}: {a} and {b} disagree on the window's events ({detail}); a merge needs the same events in every shard's window")]
    Feed {
        /// The scenario, `name #repeat`.
        scenario: String,
        /// One shard.
        a: String,
        /// The other.
        b: String,
        /// Both shards' figures.
        detail: String,
    },
    /// Two shards carry different link blocks, though shards of one run share one link.
    #[error("scenario {scenario}: {a} and {b} carry different net blocks ({detail}); shards of one run share one link and record the same block")]
    Net {
        /// The scenario, `name #repeat`.
        scenario: String,
        /// One shard.
        a: String,
        /// The other.
        b: String,
        /// What differs.
        detail: String,
    },
    /// Two shards negotiated different stacks, though shards of one run use the same one.
    #[error("scenario {scenario}: {a} and {b} ran over different stacks: {detail}")]
    Stack {
        /// The scenario, `name #repeat`.
        scenario: String,
        /// One shard.
        a: String,
        /// The other.
        b: String,
        /// What differs (`http`, `tls_version`, `cipher_suite`, `alpn`) and both values.
        detail: String,
    },
    /// A histogram does not decode or cannot be added.
    #[error("scenario {scenario}: {shard}'s {field} histogram: {detail}")]
    Histogram {
        /// The scenario, `name #repeat`.
        scenario: String,
        /// The shard, `shard I (file)`.
        shard: String,
        /// `latency_us`, `request_latency_us` or `connections.connect_us`.
        field: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// One shard's file, identified.
struct Shard<'a> {
    /// The name messages use for the file.
    name: &'a str,
    index: u32,
    results: &'a Results,
}

impl Shard<'_> {
    /// `shard I (file)`, as messages name a shard.
    fn label(&self) -> String {
        format!("shard {} ({})", self.index, self.name)
    }
}

/// One scenario as one shard ran it.
type Part<'a, 'b> = (&'b Shard<'a>, &'a ScenarioResult);

/// Merges shards' results files (each with the name messages should use for it, e.g. its
/// path) into one results file; see the module documentation for the rules.
pub fn merge(files: &[(String, Results)]) -> Result<Merged, MergeError> {
    if files.is_empty() {
        return Err(MergeError::NoFiles);
    }
    let (shards, empty) = identify(files)?;
    let count = shard_count(&shards)?;
    check_run(&shards)?;
    let plan = scenario_plan(&shards)?;
    let present: Vec<u32> = shards.iter().map(|s| s.index).collect();
    let missing: Vec<u32> = (0..count).filter(|i| !present.contains(i)).collect();
    let mut scenarios = Vec::with_capacity(plan.len());
    for position in 0..plan.len() {
        let parts: Vec<Part<'_, '_>> = shards
            .iter()
            .filter_map(|s| s.results.scenarios.get(position).map(|r| (s, r)))
            .collect();
        scenarios.push(merge_scenario(&parts, count, &shards)?);
    }
    let results = merge_run(&shards, &empty, count, &missing, scenarios);
    Ok(Merged {
        results,
        shard_count: count,
        present,
        missing,
        p99_limit_us: shards[0].results.p99_limit.as_ref().map(|l| l.limit_us),
    })
}

/// The shard files sorted by index, and the names of files without scenarios (a shard
/// killed before its first scenario ended leaves such a file; it cannot say which shard it
/// was, so its index shows up as missing).
fn identify(files: &[(String, Results)]) -> Result<(Vec<Shard<'_>>, Vec<&str>), MergeError> {
    let mut shards: Vec<Shard<'_>> = Vec::new();
    let mut empty = Vec::new();
    for (name, results) in files {
        let Some(first) = results.scenarios.first() else {
            empty.push(name.as_str());
            continue;
        };
        let not_a_shard = |reason: String| MergeError::NotAShard {
            file: name.clone(),
            reason,
        };
        let Some(info) = first.shard else {
            return Err(not_a_shard(format!(
                "scenario {} has no shard block (written without --shard, or already merged)",
                scenario_label(first)
            )));
        };
        for s in &results.scenarios {
            match s.shard {
                Some(other) if (other.index, other.count) == (info.index, info.count) => {}
                other => {
                    return Err(not_a_shard(format!(
                        "its first scenario is shard {}/{}, scenario {} is {}",
                        info.index,
                        info.count,
                        scenario_label(s),
                        other.map_or("not a shard".into(), |o| format!(
                            "shard {}/{}",
                            o.index, o.count
                        ))
                    )))
                }
            }
            check_block(s)
                .map_err(|why| not_a_shard(format!("scenario {}: {why}", scenario_label(s))))?;
        }
        if let Some(other) = shards.iter().find(|s| s.index == info.index) {
            return Err(MergeError::DuplicateShard {
                a: other.name.to_owned(),
                b: name.clone(),
                index: info.index,
                count: info.count,
            });
        }
        shards.push(Shard {
            name,
            index: info.index,
            results,
        });
    }
    if shards.is_empty() {
        return Err(MergeError::NoScenarios {
            files: empty.join(", "),
        });
    }
    shards.sort_by_key(|s| s.index);
    Ok((shards, empty))
}

/// Checks that a scenario's shard block is the block `--shard I/N` gives of its clients:
/// `[n·I/N, n·(I+1)/N)`.
fn check_block(s: &ScenarioResult) -> Result<(), String> {
    // `identify` only calls this for scenarios with a shard block.
    let Some(info) = s.shard else { return Ok(()) };
    if info.count == 0 || info.index >= info.count {
        return Err(format!(
            "shard {}/{} is not a shard",
            info.index, info.count
        ));
    }
    let n = u128::from(s.params.clients);
    let at = |i: u32| (n * u128::from(i) / u128::from(info.count)) as u64;
    let (start, end) = (at(info.index), at(info.index + 1));
    if (info.first_client, info.clients) != (start, end - start) {
        return Err(format!(
            "its clients [{}, {}) are not shard {}/{} of {} clients, [{start}, {end})",
            info.first_client,
            info.first_client + info.clients,
            info.index,
            info.count,
            s.params.clients
        ));
    }
    Ok(())
}

/// The number of shards every file agrees on.
fn shard_count(shards: &[Shard<'_>]) -> Result<u32, MergeError> {
    let count = |s: &Shard<'_>| s.results.scenarios[0].shard.map_or(0, |i| i.count);
    let first = &shards[0];
    for s in &shards[1..] {
        if count(s) != count(first) {
            return Err(MergeError::ShardCount {
                a: first.name.to_owned(),
                b: s.name.to_owned(),
                count_a: count(first),
                count_b: count(s),
            });
        }
    }
    Ok(count(first))
}

/// Checks what every shard of one run shares: the suite and the target.
fn check_run(shards: &[Shard<'_>]) -> Result<(), MergeError> {
    let first = &shards[0];
    for s in &shards[1..] {
        let fields: [(&'static str, &String, &String); 2] = [
            ("suite", &first.results.suite, &s.results.suite),
            ("target", &first.results.target, &s.results.target),
        ];
        for (what, a, b) in fields {
            if a != b {
                return Err(MergeError::Run {
                    a: first.name.to_owned(),
                    b: s.name.to_owned(),
                    what,
                    value_a: a.clone(),
                    value_b: b.clone(),
                });
            }
        }
    }
    Ok(())
}

/// The scenario list of the run: the longest shard's. Every other shard's list must be a
/// prefix of it (a shard that stopped early ran fewer), scenario by scenario the same name,
/// repeat, transport and parameters.
fn scenario_plan<'a>(shards: &[Shard<'a>]) -> Result<&'a [ScenarioResult], MergeError> {
    let longest = shards
        .iter()
        .max_by_key(|s| (s.results.scenarios.len(), std::cmp::Reverse(s.index)))
        .unwrap_or(&shards[0]);
    for s in shards {
        for (position, (a, b)) in longest
            .results
            .scenarios
            .iter()
            .zip(&s.results.scenarios)
            .enumerate()
        {
            if let Some(detail) = scenario_difference(a, b) {
                return Err(MergeError::Scenarios {
                    a: longest.name.to_owned(),
                    b: s.name.to_owned(),
                    detail: format!("scenario {} of the run: {detail}", position + 1),
                });
            }
        }
    }
    Ok(&longest.results.scenarios)
}

/// How two shards' versions of a scenario differ in what defines it, if they do.
fn scenario_difference(a: &ScenarioResult, b: &ScenarioResult) -> Option<String> {
    if (&a.name, a.repeat, a.transport) != (&b.name, b.repeat, b.transport) {
        return Some(format!(
            "{} ({}) vs {} ({})",
            scenario_label(a),
            a.transport,
            scenario_label(b),
            b.transport
        ));
    }
    if a.params == b.params {
        return None;
    }
    // Name each differing parameter; the params serialize to a flat object.
    let (pa, pb) = (
        serde_json::to_value(&a.params).unwrap_or_default(),
        serde_json::to_value(&b.params).unwrap_or_default(),
    );
    // Parameters left out at their default (the stack's, `net`) are in one object only:
    // the keys of both are compared, an absent one shown as null.
    let mut keys: Vec<&String> = pa
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
        .collect();
    for (k, _) in pb.as_object().into_iter().flatten() {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let null = serde_json::Value::Null;
    let differing: Vec<String> = keys
        .into_iter()
        .map(|k| {
            (
                k,
                pa.get(k.as_str()).unwrap_or(&null),
                pb.get(k.as_str()).unwrap_or(&null),
            )
        })
        .filter(|(_, a, b)| a != b)
        .map(|(k, a, b)| format!("{k} {a} vs {b}"))
        .collect();
    Some(format!(
        "{} with different parameters: {}",
        scenario_label(a),
        differing.join(", ")
    ))
}

/// `name #repeat`.
fn scenario_label(s: &ScenarioResult) -> String {
    format!("{} #{}", s.name, s.repeat)
}

/// The worse of two statuses: failed over interrupted over complete.
fn worse(a: Status, b: Status) -> Status {
    let rank = |s: Status| match s {
        Status::Complete => 0,
        Status::Interrupted => 1,
        Status::Failed => 2,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

/// `1, 3` for a list of shard indices.
fn index_list(indices: &[u32]) -> String {
    indices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Merges one scenario from the shards that ran it (`parts`, by shard index).
fn merge_scenario(
    parts: &[Part<'_, '_>],
    count: u32,
    shards: &[Shard<'_>],
) -> Result<ScenarioResult, MergeError> {
    // The reference: the lowest-index shard that completed the scenario, else the lowest.
    let reference = parts
        .iter()
        .find(|(_, r)| r.status == Status::Complete)
        .unwrap_or(&parts[0]);
    check_windows(reference, parts)?;
    check_feed(reference, parts)?;
    let net = merge_net(reference, parts)?;
    let stack = merge_stack(reference, parts)?;
    let ref_result = reference.1;
    let label = scenario_label(ref_result);
    let histogram = |field: &'static str, get: fn(&ScenarioResult) -> Option<&Summary>| {
        merge_histograms(parts, &label, field, get)
    };
    let latency_us =
        histogram("latency_us", |r| Some(&r.latency_us))?.unwrap_or_else(empty_summary);
    let request_latency_us = histogram("request_latency_us", |r| r.request_latency_us.as_ref())?;
    let connect_us = histogram("connections.connect_us", |r| {
        Some(&r.connections.connect_us)
    })?
    .unwrap_or_else(empty_summary);

    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    let events = merge_events(reference, parts, &mut warnings);
    let bytes = merge_bytes(parts);
    let requests = merge_requests(parts, bytes.events);
    let measured_s = ref_result.measured_s;
    let loadgen = merge_loadgen(parts, measured_s);
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    for (_, r) in parts {
        for (kind, n) in &r.errors {
            *errors.entry(kind.clone()).or_default() += n;
        }
    }
    for (s, r) in parts {
        warnings.extend(r.warnings.iter().map(|w| format!("shard {}: {w}", s.index)));
        for note in &r.notes {
            if !notes.contains(note) {
                notes.push(note.clone());
            }
        }
    }
    let clock = merge_clock(parts, &mut notes);
    notes.extend(host_note(shards));
    if parts.len() > 1 {
        let lag = if ref_result.params.poll_interval_ms.is_some() {
            " and requests.schedule_lag_p99_us the largest shard's p99 (an upper bound: the \
             lag histogram is not in the files)"
        } else {
            ""
        };
        notes.push(format!(
            "merged from {} shards: connections.peak_open is the sum of the shards' peaks (an \
             upper bound){lag}",
            parts.len()
        ));
    }

    // Status: the worst of the shards'; failed when a shard has no result for it.
    let mut status = Status::Complete;
    let mut why = Vec::new();
    for (s, r) in parts {
        status = worse(status, r.status);
        if r.status != Status::Complete {
            let message = r.status_message.as_deref().unwrap_or("no reason given");
            why.push(format!("{} {}: {message}", s.label(), r.status.as_str()));
        }
    }
    let absent: Vec<u32> = (0..count)
        .filter(|i| parts.iter().all(|(s, _)| s.index != *i))
        .collect();
    if !absent.is_empty() {
        status = Status::Failed;
        why.push(format!(
            "no result from shard{} {} of {count}: {} of {} clients are missing",
            if absent.len() == 1 { "" } else { "s" },
            index_list(&absent),
            ref_result
                .params
                .clients
                .saturating_sub(connections_target(parts)),
            ref_result.params.clients
        ));
    }
    Ok(ScenarioResult {
        name: ref_result.name.clone(),
        transport: ref_result.transport,
        repeat: ref_result.repeat,
        status,
        status_message: (!why.is_empty()).then(|| why.join("; ")),
        started_at: parts
            .iter()
            .map(|(_, r)| r.started_at.as_str())
            .filter(|t| !t.is_empty())
            .min()
            .unwrap_or_default()
            .to_owned(),
        params: ref_result.params.clone(),
        measured_s,
        latency_us,
        request_latency_us,
        events,
        bytes,
        requests,
        connections: Connections {
            target: connections_target(parts),
            opened: sum(parts, |r| r.connections.opened),
            peak_open: sum(parts, |r| r.connections.peak_open),
            failed: sum(parts, |r| r.connections.failed),
            connect_us,
        },
        // The server's figures cover the shared window, whoever read them: taken once.
        server: ref_result
            .server
            .clone()
            .or_else(|| parts.iter().find_map(|(_, r)| r.server.clone())),
        loadgen,
        errors,
        warnings,
        notes,
        shard: None,
        window: ref_result.window,
        clock,
        net,
        stack,
    })
}

/// The stack of the merged scenario: byte split and handshake counts summed; what was
/// negotiated taken from the shards that negotiated it, which must agree (a shard whose
/// handshakes all failed has no TLS version and does not contradict the others).
fn merge_stack(
    reference: &Part<'_, '_>,
    parts: &[Part<'_, '_>],
) -> Result<Option<StackFigures>, MergeError> {
    let with: Vec<(&Shard<'_>, &StackFigures)> = parts
        .iter()
        .filter_map(|(s, r)| r.stack.as_ref().map(|st| (*s, st)))
        .collect();
    let Some((first_shard, first)) = with.first().copied() else {
        return Ok(None);
    };
    let mut merged = StackFigures {
        handshakes: 0,
        resumed: 0,
        handshakes_total: 0,
        split: Default::default(),
        run_tls: None,
        ..first.clone()
    };
    // The shard that first negotiated each figure, for the message naming both sides.
    let mut from = [first_shard; 3];
    for &(s, st) in &with {
        if st.http != merged.http {
            return Err(stack_error(
                reference,
                first_shard,
                s,
                "http",
                &merged.http,
                &st.http,
            ));
        }
        let negotiated: [(&'static str, &mut Option<String>, &Option<String>); 3] = [
            ("tls_version", &mut merged.tls_version, &st.tls_version),
            ("cipher_suite", &mut merged.cipher_suite, &st.cipher_suite),
            ("alpn", &mut merged.alpn, &st.alpn),
        ];
        for (i, (what, have, theirs)) in negotiated.into_iter().enumerate() {
            match (have.as_ref(), theirs) {
                (None, Some(_)) => {
                    *have = theirs.clone();
                    from[i] = s;
                }
                (Some(a), Some(b)) if a != b => {
                    return Err(stack_error(reference, from[i], s, what, a, b));
                }
                _ => {}
            }
        }
        merged.handshakes += st.handshakes;
        merged.resumed += st.resumed;
        merged.handshakes_total += st.handshakes_total;
        merged.split.add(&st.split);
        if let Some(run) = &st.run_tls {
            merged.run_tls.get_or_insert_with(TlsRun::default).add(run);
        }
    }
    Ok(Some(merged))
}

/// A [`MergeError::Stack`] for one differing figure.
fn stack_error(
    reference: &Part<'_, '_>,
    a: &Shard<'_>,
    b: &Shard<'_>,
    what: &'static str,
    value_a: &str,
    value_b: &str,
) -> MergeError {
    MergeError::Stack {
        scenario: scenario_label(reference.1),
        a: a.label(),
        b: b.label(),
        detail: format!("{what} {value_a:?} vs {value_b:?}"),
    }
}

/// The link block of the merged scenario: shards share one link, so every shard that has a
/// block must carry the same one (the load generator writes the link's counters into each
/// shard's file), and it is taken once. A shard without a block (e.g. one that failed before
/// reading the counters) does not contradict the others.
fn merge_net(
    reference: &Part<'_, '_>,
    parts: &[Part<'_, '_>],
) -> Result<Option<NetFigures>, MergeError> {
    let Some((first_shard, first)) = parts
        .iter()
        .find_map(|(s, r)| r.net.as_ref().map(|n| (s, n)))
    else {
        return Ok(None);
    };
    for (s, r) in parts {
        let Some(net) = &r.net else { continue };
        if net != first {
            let detail = if net.spec == first.spec {
                format!("both {:?}, different figures", net.spec)
            } else {
                format!("{:?} vs {:?}", first.spec, net.spec)
            };
            return Err(MergeError::Net {
                scenario: scenario_label(reference.1),
                a: first_shard.label(),
                b: s.label(),
                detail,
            });
        }
    }
    Ok(Some(first.clone()))
}

/// An empty histogram's summary: what a field no shard recorded merges to (which cannot
/// happen, as every merged scenario has at least one shard's result).
fn empty_summary() -> Summary {
    // 3 significant digits are within hdrhistogram's range (0 to 5): this cannot fail.
    Summary::of(&Histogram::new(3).expect("3 significant digits are valid"))
}

/// Sum of one count over the parts.
fn sum(parts: &[Part<'_, '_>], get: impl Fn(&ScenarioResult) -> u64) -> u64 {
    parts.iter().map(|(_, r)| get(r)).sum()
}

/// Clients the present shards ran.
fn connections_target(parts: &[Part<'_, '_>]) -> u64 {
    sum(parts, |r| r.connections.target)
}

/// Checks the shards' windows against the reference's: complete shards' edges within
/// [`WINDOW_TOLERANCE_NS`]; a shard that stopped early may close its window early, but must
/// have opened it with the others.
fn check_windows(reference: &Part<'_, '_>, parts: &[Part<'_, '_>]) -> Result<(), MergeError> {
    let (ref_shard, ref_result) = *reference;
    let complete = ref_result.status == Status::Complete;
    let error = |detail: String| MergeError::Window {
        scenario: scenario_label(ref_result),
        detail,
    };
    let Some(rw) = ref_result.window else {
        if complete {
            return Err(error(format!(
                "the measure window of {} is unknown: a complete shard has one on the server's \
                 clock",
                ref_shard.label()
            )));
        }
        return Ok(());
    };
    for (s, r) in parts {
        let both = format!(
            "the measure windows of {} and {}",
            ref_shard.label(),
            s.label()
        );
        // Only complete shards must close together: one cut short closes when it stopped.
        let both_complete = complete && r.status == Status::Complete;
        let Some(w) = r.window else {
            if both_complete {
                return Err(error(format!("{both} differ: {} has none", s.label())));
            }
            continue;
        };
        if w.end_ns <= rw.start_ns || rw.end_ns <= w.start_ns {
            return Err(error(format!(
                "{both} do not overlap: [{}, {}) vs [{}, {}) ns on the server's clock",
                rw.start_ns, rw.end_ns, w.start_ns, w.end_ns
            )));
        }
        let start = signed_diff(w.start_ns, rw.start_ns);
        let end = signed_diff(w.end_ns, rw.end_ns);
        let tolerance = u128::from(WINDOW_TOLERANCE_NS);
        if start.unsigned_abs() > tolerance || (both_complete && end.unsigned_abs() > tolerance) {
            return Err(error(format!(
                "{both} differ by more than {} ms: {} opens {} and closes {} than {}",
                ms(i128::from(WINDOW_TOLERANCE_NS)),
                s.label(),
                relative(start, "later", "earlier"),
                relative(end, "later", "earlier"),
                ref_shard.label()
            )));
        }
    }
    Ok(())
}

/// `a − b` without overflow.
fn signed_diff(a: u64, b: u64) -> i128 {
    i128::from(a) - i128::from(b)
}

/// Milliseconds with up to three decimals.
fn ms(ns: i128) -> String {
    format!("{}", ns as f64 / 1e6)
}

/// `3.2 ms later` / `0.5 ms earlier` / `0 ms later`.
fn relative(ns: i128, later: &str, earlier: &str) -> String {
    if ns < 0 {
        format!("{} ms {earlier}", ms(-ns))
    } else {
        format!("{} ms {later}", ms(ns))
    }
}

/// Checks that every complete shard read the same events for the window from the feed.
fn check_feed(reference: &Part<'_, '_>, parts: &[Part<'_, '_>]) -> Result<(), MergeError> {
    let (ref_shard, ref_result) = *reference;
    let figures = |e: &Events| {
        (
            e.published,
            e.first_seq,
            e.last_seq,
            e.window_source.clone(),
        )
    };
    let describe = |e: &Events| {
        let range = match (e.first_seq, e.last_seq) {
            (Some(a), Some(b)) => format!("seqs {a}..={b}"),
            _ => "no seq range".into(),
        };
        format!(
            "{} published, {range}, window from {}",
            e.published, e.window_source
        )
    };
    for (s, r) in parts.iter().filter(|(_, r)| r.status == Status::Complete) {
        if figures(&r.events) != figures(&ref_result.events) {
            return Err(MergeError::Feed {
                scenario: scenario_label(ref_result),
                a: ref_shard.label(),
                b: s.label(),
                detail: format!(
                    "{} vs {}",
                    describe(&ref_result.events),
                    describe(&r.events)
                ),
            });
        }
    }
    Ok(())
}

/// Decodes `get` of every part and adds them up; `None` when no part has the field.
fn merge_histograms(
    parts: &[Part<'_, '_>],
    scenario: &str,
    field: &'static str,
    get: fn(&ScenarioResult) -> Option<&Summary>,
) -> Result<Option<Summary>, MergeError> {
    let mut total: Option<Histogram<u64>> = None;
    for (s, r) in parts {
        let Some(summary) = get(r) else { continue };
        let error = |detail: String| MergeError::Histogram {
            scenario: scenario.to_owned(),
            shard: s.label(),
            field,
            detail,
        };
        let h = summary
            .histogram()
            .map_err(|e: HdrError| error(e.to_string()))?;
        if h.len() != summary.count {
            return Err(error(format!(
                "holds {} samples where the summary says {}",
                h.len(),
                summary.count
            )));
        }
        match total.as_mut() {
            None => {
                let mut first = h;
                // A shard with a larger maximum than the first one's range still adds.
                first.auto(true);
                total = Some(first);
            }
            Some(t) => t.add(&h).map_err(|e| error(format!("{e:?}")))?,
        }
    }
    Ok(total.map(|h| Summary::of(&h)))
}

/// Events: the window's from the reference, counts summed, unreceived over all clients.
fn merge_events(
    reference: &Part<'_, '_>,
    parts: &[Part<'_, '_>],
    warnings: &mut Vec<String>,
) -> Events {
    let e = &reference.1.events;
    let (unreceived, unreceived_seqs) = merge_unreceived(e, parts, warnings);
    Events {
        published: e.published,
        expected: sum(parts, |r| r.events.expected),
        delivered: sum(parts, |r| r.events.delivered),
        missed: sum(parts, |r| r.events.missed),
        duplicates: sum(parts, |r| r.events.duplicates),
        out_of_order: sum(parts, |r| r.events.out_of_order),
        server_missed: sum(parts, |r| r.events.server_missed),
        first_seq: e.first_seq,
        last_seq: e.last_seq,
        window_source: e.window_source.clone(),
        unreceived,
        unreceived_seqs,
    }
}

/// The window's events no client of any shard received: those in every shard's
/// `unreceived_seqs`. A list cut at [`MAX_UNRECEIVED_SEQS`] is exact only up to its last
/// seq, so beyond the earliest such cut the count is a lower bound, and a warning gives the
/// bounds. Shards whose seq range differs from the reference's (one that stopped early) are
/// left out, with a warning.
fn merge_unreceived(
    reference: &Events,
    parts: &[Part<'_, '_>],
    warnings: &mut Vec<String>,
) -> (u64, Vec<u64>) {
    let range = |e: &Events| (e.first_seq, e.last_seq);
    let (full, partial): (Vec<&Part<'_, '_>>, Vec<&Part<'_, '_>>) = parts
        .iter()
        .partition(|(_, r)| range(&r.events) == range(reference));
    if !partial.is_empty() {
        let indices: Vec<u32> = partial.iter().map(|(s, _)| s.index).collect();
        warnings.push(format!(
            "unreceived events are counted over the shards that covered the whole window: \
             shard{} {} covered other seqs",
            if indices.len() == 1 { "" } else { "s" },
            index_list(&indices)
        ));
    }
    let truncated = |e: &Events| e.unreceived > e.unreceived_seqs.len() as u64;
    // Every list is exact up to `cutoff`: the earliest last seq of a cut list.
    let cutoff = full
        .iter()
        .filter(|(_, r)| truncated(&r.events))
        .map(|(_, r)| r.events.unreceived_seqs.last().copied().unwrap_or(0))
        .min();
    let known = |seq: u64| cutoff.is_none_or(|c| seq <= c);
    let Some(((_, first), rest)) = full.split_first() else {
        return (0, Vec::new());
    };
    let common: Vec<u64> = first
        .events
        .unreceived_seqs
        .iter()
        .copied()
        .filter(|&seq| known(seq))
        .filter(|seq| {
            rest.iter()
                .all(|(_, r)| r.events.unreceived_seqs.binary_search(seq).is_ok())
        })
        .collect();
    let unreceived = common.len() as u64;
    if let Some(c) = cutoff {
        // Beyond the cut, an event unreceived overall is unreceived in every shard: at most
        // the fewest any shard has there.
        let beyond = full
            .iter()
            .map(|(_, r)| {
                let listed = r.events.unreceived_seqs.iter().filter(|&&s| s <= c).count();
                r.events.unreceived.saturating_sub(listed as u64)
            })
            .min()
            .unwrap_or(0);
        let cut: Vec<u32> = full
            .iter()
            .filter(|(_, r)| truncated(&r.events))
            .map(|(s, _)| s.index)
            .collect();
        warnings.push(format!(
            "shard{} {} listed only the first {MAX_UNRECEIVED_SEQS} of their unreceived seqs: \
             unreceived ({unreceived}) counts the events up to seq {c} that no client of any \
             shard received; with the rest the true count is between {unreceived} and {}",
            if cut.len() == 1 { "" } else { "s" },
            index_list(&cut),
            unreceived + beyond
        ));
    }
    let seqs = common.into_iter().take(MAX_UNRECEIVED_SEQS).collect();
    (unreceived, seqs)
}

/// Bytes: the counts summed, the per-event figures recomputed from them as the load
/// generator computes them (over `events`, the events read in the window).
fn merge_bytes(parts: &[Part<'_, '_>]) -> ByteFigures {
    let up = sum(parts, |r| r.bytes.up);
    let down = sum(parts, |r| r.bytes.down);
    let payload = sum(parts, |r| r.bytes.payload);
    let events = sum(parts, |r| r.bytes.events);
    let per = |x: u64| per_event(x, events);
    ByteFigures {
        up,
        down,
        setup_up: sum(parts, |r| r.bytes.setup_up),
        setup_down: sum(parts, |r| r.bytes.setup_down),
        payload,
        events,
        per_event: per(up + down),
        per_event_up: per(up),
        per_event_down: per(down),
        overhead_ratio: if payload > 0 {
            (up + down) as f64 / payload as f64 - 1.0
        } else {
            0.0
        },
        total_up: sum(parts, |r| r.bytes.total_up),
        total_down: sum(parts, |r| r.bytes.total_down),
    }
}

/// `x / events`, 0 without events.
fn per_event(x: u64, events: u64) -> f64 {
    if events > 0 {
        x as f64 / events as f64
    } else {
        0.0
    }
}

/// Requests: counts summed, per event recomputed; the schedule lag's p99 is the largest
/// shard's, an upper bound of the p99 over all clients.
fn merge_requests(parts: &[Part<'_, '_>], events: u64) -> Requests {
    let sent = sum(parts, |r| r.requests.sent);
    Requests {
        sent,
        empty: sum(parts, |r| r.requests.empty),
        per_event: per_event(sent, events),
        missed_ticks: sum(parts, |r| r.requests.missed_ticks),
        total: sum(parts, |r| r.requests.total),
        schedule_lag_p99_us: parts
            .iter()
            .map(|(_, r)| r.requests.schedule_lag_p99_us)
            .max()
            .unwrap_or(0),
        // The largest of the shards' maxima is the whole run's maximum, exactly.
        schedule_lag_max_us: parts
            .iter()
            .map(|(_, r)| r.requests.schedule_lag_max_us)
            .max()
            .unwrap_or(0),
    }
}

/// The load generators together: CPU seconds and cores summed, utilisation over the window.
fn merge_loadgen(parts: &[Part<'_, '_>], measured_s: f64) -> Loadgen {
    let cpu_s: f64 = parts.iter().map(|(_, r)| r.loadgen.cpu_s).sum();
    let cores = sum(parts, |r| r.loadgen.cores);
    Loadgen {
        cpu_s,
        cpu_util: if measured_s > 0.0 && cores > 0 {
            cpu_s / (measured_s * cores as f64)
        } else {
            0.0
        },
        cores,
        counts: merge_counts(parts.iter().map(|(_, r)| r.loadgen.counts)),
    }
}

/// Counts of several processes added field by field; a field is kept only when every
/// process reports it, so a sum never silently covers part of the load.
fn merge_counts(
    counts: impl Iterator<Item = Option<crate::ProcessCounts>>,
) -> Option<crate::ProcessCounts> {
    let all: Vec<crate::ProcessCounts> = counts.collect::<Option<_>>()?;
    let field =
        |get: fn(&crate::ProcessCounts) -> Option<u64>| all.iter().map(get).sum::<Option<u64>>();
    let merged = crate::ProcessCounts {
        socket_reads: field(|c| c.socket_reads),
        socket_writes: field(|c| c.socket_writes),
        context_switches: field(|c| c.context_switches),
        allocations: field(|c| c.allocations),
        allocated_bytes: field(|c| c.allocated_bytes),
    };
    (!merged.is_empty()).then_some(merged)
}

/// The worst (largest-uncertainty) clock estimate, with a note listing every shard's.
fn merge_clock(parts: &[Part<'_, '_>], notes: &mut Vec<String>) -> Option<ClockFigures> {
    let worst = parts
        .iter()
        .filter_map(|(s, r)| r.clock.map(|c| (s.index, c)))
        .max_by_key(|(index, c)| (c.uncertainty_ns, std::cmp::Reverse(*index)))?;
    let each: Vec<String> = parts
        .iter()
        .map(|(s, r)| match r.clock {
            Some(c) => format!(
                "shard {} {:+.3} ms ± {:.3} ms{}",
                s.index,
                c.offset_ns as f64 / 1e6,
                c.uncertainty_ns as f64 / 1e6,
                if c.applied { " (applied)" } else { "" }
            ),
            None => format!("shard {} none", s.index),
        })
        .collect();
    notes.push(format!(
        "clock offsets to the server (server minus load generator): {}; clock is shard {}'s, \
         the largest uncertainty",
        each.join(", "),
        worst.0
    ));
    Some(worst.1)
}

/// A note when the shards ran on different hosts (the merged `host` is the first shard's).
fn host_note(shards: &[Shard<'_>]) -> Option<String> {
    let first = &shards[0].results.host;
    let describe = |s: &Shard<'_>| {
        let h = &s.results.host;
        format!(
            "shard {}: {} cores, {}, {}",
            s.index, h.cores, h.cpu_model, h.kernel
        )
    };
    let same = |s: &&Shard<'_>| {
        let h = &s.results.host;
        (&h.os, &h.kernel, &h.cpu_model, h.cores, h.memory_bytes)
            == (
                &first.os,
                &first.kernel,
                &first.cpu_model,
                first.cores,
                first.memory_bytes,
            )
    };
    if shards.iter().all(|s| same(&s)) {
        return None;
    }
    Some(format!(
        "the shards ran on different hosts; host is shard {}'s ({})",
        shards[0].index,
        shards.iter().map(describe).collect::<Vec<_>>().join("; ")
    ))
}

/// The run level: the first shard's tool, host and target; the earliest start, the latest
/// finish; the worst status, with every reason.
fn merge_run(
    shards: &[Shard<'_>],
    empty: &[&str],
    count: u32,
    missing: &[u32],
    scenarios: Vec<ScenarioResult>,
) -> Results {
    let first = shards[0].results;
    let mut status = Status::Complete;
    let mut why = Vec::new();
    if !missing.is_empty() {
        status = Status::Failed;
        why.push(format!(
            "no results file from shard{} {} of {count}",
            if missing.len() == 1 { "" } else { "s" },
            index_list(missing)
        ));
    }
    for name in empty {
        why.push(format!("{name} holds no scenarios"));
    }
    let planned = scenarios.len();
    for s in shards {
        status = worse(status, s.results.status);
        if s.results.status != Status::Complete {
            let message = s
                .results
                .status_message
                .as_deref()
                .unwrap_or("no reason given");
            why.push(format!(
                "{} {}: {message}",
                s.label(),
                s.results.status.as_str()
            ));
        }
        let ran = s.results.scenarios.len();
        if ran < planned {
            status = Status::Failed;
            why.push(format!(
                "{} has {ran} of the {planned} scenarios",
                s.label()
            ));
        }
    }
    for s in &scenarios {
        status = worse(status, s.status);
    }
    let mut source_addrs: Vec<String> = Vec::new();
    for s in shards {
        for a in &s.results.source_addrs {
            if !source_addrs.contains(a) {
                source_addrs.push(a.clone());
            }
        }
    }
    Results {
        schema_version: SCHEMA_VERSION,
        status,
        // A complete run needs no reason; an incomplete one always has at least one
        // scenario's, if not the run's own.
        status_message: match status {
            Status::Complete => None,
            _ if why.is_empty() => {
                Some("a scenario did not complete (see its status_message)".into())
            }
            _ => Some(why.join("; ")),
        },
        tool: first.tool.clone(),
        host: first.host.clone(),
        suite: first.suite.clone(),
        started_at: shards
            .iter()
            .map(|s| s.results.started_at.as_str())
            .min()
            .unwrap_or_default()
            .to_owned(),
        finished_at: shards
            .iter()
            .map(|s| s.results.finished_at.as_str())
            .max()
            .unwrap_or_default()
            .to_owned(),
        target: first.target.clone(),
        embedded_server: first.embedded_server,
        cpu_sets: first.cpu_sets.clone(),
        source_addrs,
        p99_limit: None,
        capacity: None,
        scenarios,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_add_up_only_where_every_shard_reports_them() {
        let c = |writes, allocations| {
            Some(crate::ProcessCounts {
                socket_writes: writes,
                allocations,
                ..crate::ProcessCounts::default()
            })
        };
        assert_eq!(
            super::merge_counts([c(Some(10), Some(5)), c(Some(7), None)].into_iter()),
            c(Some(17), None)
        );
        assert_eq!(
            super::merge_counts([c(Some(1), None), None].into_iter()),
            None
        );
        assert_eq!(super::merge_counts([c(None, None)].into_iter()), None);
    }

    use super::*;
    use crate::{decode_hdr, validate, Host, ShardInfo, Tool, WindowTimes, WINDOW_FROM_FEED};

    /// Clients of the test scenario, split 2, 3, 2, 3 over four shards.
    const CLIENTS: u64 = 10;
    /// Shards.
    const COUNT: u32 = 4;
    /// Events in the window, seqs 101..=160.
    const PUBLISHED: u64 = 60;
    /// Event JSON length; a ws frame adds 2 bytes.
    const JSON_BYTES: u64 = 107;
    const WINDOW: WindowTimes = WindowTimes {
        start_ns: 1_764_500_000_000_000_000,
        end_ns: 1_764_500_003_000_000_000,
    };

    fn histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
    }

    /// The latency samples shard `index` records: every shard its own spread.
    fn latencies(index: u32, clients: u64) -> impl Iterator<Item = u64> {
        (0..PUBLISHED * clients).map(move |i| 300 + (i * 37) % 5_000 + u64::from(index) * 1_500)
    }

    fn connect_times(index: u32, clients: u64) -> impl Iterator<Item = u64> {
        (0..clients).map(move |i| 120 + i * 9 + u64::from(index) * 40)
    }

    fn summary_of(values: impl Iterator<Item = u64>) -> Summary {
        let mut h = histogram();
        for v in values {
            h.record(v).unwrap();
        }
        Summary::of(&h)
    }

    /// Shard `index` of `count` of a lossless ws scenario of [`CLIENTS`] clients.
    fn scenario(index: u32, count: u32) -> ScenarioResult {
        let mut s: ScenarioResult =
            serde_json::from_str(include_str!("../tests/data/scenario-v1.json")).unwrap();
        let at = |i: u32| CLIENTS * u64::from(i) / u64::from(count);
        let clients = at(index + 1) - at(index);
        let events = PUBLISHED * clients;
        s.name = "ws-c10-r20-s64".into();
        s.params.clients = CLIENTS;
        s.shard = Some(ShardInfo {
            index,
            count,
            first_client: at(index),
            clients,
        });
        s.window = Some(WINDOW);
        s.events = Events {
            published: PUBLISHED,
            expected: events,
            delivered: events,
            missed: 0,
            duplicates: u64::from(index),
            out_of_order: 1,
            server_missed: 0,
            first_seq: Some(101),
            last_seq: Some(160),
            window_source: WINDOW_FROM_FEED.into(),
            unreceived: 0,
            unreceived_seqs: Vec::new(),
        };
        s.latency_us = summary_of(latencies(index, clients));
        s.connections = Connections {
            target: clients,
            opened: clients,
            peak_open: clients,
            failed: 0,
            connect_us: summary_of(connect_times(index, clients)),
        };
        let down = events * (JSON_BYTES + 2);
        s.bytes = ByteFigures {
            up: 0,
            down,
            setup_up: clients * 180,
            setup_down: clients * 129,
            payload: events * JSON_BYTES,
            events,
            per_event: (JSON_BYTES + 2) as f64,
            per_event_up: 0.0,
            per_event_down: (JSON_BYTES + 2) as f64,
            overhead_ratio: 2.0 / JSON_BYTES as f64,
            total_up: clients * 186,
            total_down: down + clients * 133,
        };
        s.loadgen = Loadgen {
            cpu_s: 0.25 * f64::from(index + 1),
            cpu_util: 0.25 * f64::from(index + 1) / (3.0 * 2.0),
            cores: 2,
            counts: None,
        };
        s.server.as_mut().unwrap().cpu_s = 1.0 + f64::from(index);
        s.clock = Some(ClockFigures {
            offset_ns: 1_000 * i64::from(index),
            // Shard 1 has the largest uncertainty.
            uncertainty_ns: if index == 1 { 90_000 } else { 20_000 },
            min_rtt_ns: 40_000,
            samples: 16,
            applied: false,
        });
        s.notes = vec!["the same note in every shard".into()];
        if index == 1 {
            s.warnings = vec!["a warning of shard 1".into()];
        }
        if index == 2 {
            s.errors.insert("ws_closed".into(), 1);
        }
        s.started_at = format!("2026-11-22T02:21:0{index}.000Z");
        s
    }

    fn file(index: u32, scenarios: Vec<ScenarioResult>) -> (String, Results) {
        let results = Results {
            schema_version: 2,
            status: Status::Complete,
            status_message: None,
            tool: Tool {
                name: "feedbench".into(),
                version: "0.1.0".into(),
                git_sha: None,
            },
            host: Host {
                os: "linux".into(),
                kernel: "6.1".into(),
                cpu_model: "test cpu".into(),
                cores: 2,
                memory_bytes: 1 << 33,
            },
            suite: "load".into(),
            started_at: format!("2026-11-22T02:21:0{index}.000Z"),
            finished_at: format!("2026-11-22T02:22:0{index}.000Z"),
            target: "http://10.0.0.1:8080".into(),
            embedded_server: false,
            cpu_sets: None,
            source_addrs: Vec::new(),
            p99_limit: None,
            capacity: None,
            scenarios,
        };
        (format!("shard-{index}.json"), results)
    }

    fn shards(indices: &[u32]) -> Vec<(String, Results)> {
        indices
            .iter()
            .map(|&i| file(i, vec![scenario(i, COUNT)]))
            .collect()
    }

    fn refusal(files: &[(String, Results)]) -> String {
        match merge(files) {
            Ok(m) => panic!("merged: {:?}", m.results.status_message),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn four_shards_merge_into_one_run_of_every_client() {
        let files = shards(&[0, 1, 2, 3]);
        let m = merge(&files).unwrap();
        assert_eq!((m.shard_count, m.present.len()), (4, 4));
        assert!(m.missing.is_empty());
        let r = &m.results;
        assert_eq!(
            (r.status, r.status_message.as_deref()),
            (Status::Complete, None)
        );
        assert_eq!(r.started_at, "2026-11-22T02:21:00.000Z");
        assert_eq!(r.finished_at, "2026-11-22T02:22:03.000Z");
        assert!(validate(&serde_json::to_value(r).unwrap()).is_empty());
        let s = &r.scenarios[0];
        assert_eq!(s.shard, None);
        assert_eq!(s.window, Some(WINDOW));
        assert_eq!(s.status, Status::Complete);

        let e = &s.events;
        assert_eq!(e.published, PUBLISHED);
        assert_eq!((e.expected, e.delivered, e.missed), (600, 600, 0));
        assert_eq!(e.expected, e.published * s.params.clients);
        assert_eq!((e.duplicates, e.out_of_order), (6, 4));
        assert_eq!((e.first_seq, e.last_seq), (Some(101), Some(160)));
        assert_eq!(s.connections.target, s.params.clients);
        assert_eq!(s.connections.opened, 10);

        let b = &s.bytes;
        assert_eq!((b.events, b.down, b.payload), (600, 600 * 109, 600 * 107));
        assert_eq!(b.per_event, 109.0);
        assert_eq!(b.per_event_down, 109.0);
        assert_eq!(b.overhead_ratio, 109.0 / 107.0 - 1.0);
        assert_eq!(b.setup_up, 1_800);
        assert_eq!(s.errors.get("ws_closed"), Some(&1));

        assert_eq!(s.loadgen.cores, 8);
        assert_eq!(s.loadgen.cpu_s, 0.25 + 0.5 + 0.75 + 1.0);
        assert_eq!(s.loadgen.cpu_util, 2.5 / (3.0 * 8.0));
        // Taken once, from shard 0: not summed.
        assert_eq!(s.server.as_ref().unwrap().cpu_s, 1.0);
        assert_eq!(s.clock.unwrap().uncertainty_ns, 90_000);
        assert_eq!(s.clock.unwrap().offset_ns, 1_000);
        assert_eq!(s.warnings, ["shard 1: a warning of shard 1"]);
        assert_eq!(
            s.notes
                .iter()
                .filter(|n| *n == "the same note in every shard")
                .count(),
            1
        );
        let clock_note = s
            .notes
            .iter()
            .find(|n| n.starts_with("clock offsets"))
            .unwrap();
        assert!(
            clock_note.contains("shard 3 +0.003 ms ± 0.020 ms"),
            "{clock_note}"
        );
        assert!(clock_note.contains("clock is shard 1's"), "{clock_note}");

        // The files' order does not matter.
        let mut reversed = files.clone();
        reversed.reverse();
        let again = merge(&reversed).unwrap();
        assert_eq!(
            serde_json::to_value(&again.results).unwrap(),
            serde_json::to_value(r).unwrap()
        );
    }

    #[test]
    fn merged_histograms_are_the_sum_of_the_shards() {
        let files = shards(&[0, 1, 2, 3]);
        let m = merge(&files).unwrap();
        let s = &m.results.scenarios[0];
        // The truth: one histogram that recorded every shard's samples.
        let (mut latency, mut connect) = (histogram(), histogram());
        // The shards' histograms, decoded independently of the merge and added.
        let (mut latency_sum, mut connect_sum) = (histogram(), histogram());
        for (_, f) in &files {
            let shard = &f.scenarios[0];
            let clients = shard.shard.unwrap().clients;
            let index = shard.shard.unwrap().index;
            for v in latencies(index, clients) {
                latency.record(v).unwrap();
            }
            for v in connect_times(index, clients) {
                connect.record(v).unwrap();
            }
            latency_sum
                .add(decode_hdr(&shard.latency_us.hdr).unwrap())
                .unwrap();
            connect_sum
                .add(decode_hdr(&shard.connections.connect_us.hdr).unwrap())
                .unwrap();
        }
        let merged = decode_hdr(&s.latency_us.hdr).unwrap();
        assert_eq!(merged, latency_sum);
        assert_eq!(merged, latency);
        assert_eq!(
            decode_hdr(&s.connections.connect_us.hdr).unwrap(),
            connect_sum
        );
        assert_eq!(s.latency_us, Summary::of(&latency));
        assert_eq!(s.connections.connect_us, Summary::of(&connect));
        let counts: u64 = files
            .iter()
            .map(|(_, f)| f.scenarios[0].latency_us.count)
            .sum();
        assert_eq!(s.latency_us.count, counts);
        // Not the mean of the shards' medians, which differ by 1.5 ms per shard.
        let mean_p50 = files
            .iter()
            .map(|(_, f)| f.scenarios[0].latency_us.p50)
            .sum::<u64>()
            / 4;
        assert_eq!(s.latency_us.p50, latency.value_at_quantile(0.5));
        assert_ne!(s.latency_us.p50, mean_p50);
        assert_eq!(s.request_latency_us, None);
    }

    /// Sets a shard's unreceived seqs (and how many there are, when the list was cut).
    fn set_unreceived(f: &mut (String, Results), seqs: &[u64], total: u64) {
        let s = &mut f.1.scenarios[0];
        let clients = s.connections.target;
        let e = &mut s.events;
        e.unreceived_seqs = seqs.to_vec();
        e.unreceived = total;
        e.missed = total * clients;
        e.delivered = e.expected - e.missed;
    }

    #[test]
    fn an_event_is_unreceived_only_if_no_shard_received_it() {
        let mut files = shards(&[0, 1, 2, 3]);
        set_unreceived(&mut files[0], &[105, 110, 120], 3);
        set_unreceived(&mut files[1], &[105, 120, 130], 3);
        set_unreceived(&mut files[2], &[105, 120], 2);
        set_unreceived(&mut files[3], &[101, 105, 120, 150], 4);
        let s = &merge(&files).unwrap().results.scenarios[0];
        assert_eq!(s.events.unreceived_seqs, [105, 120]);
        assert_eq!(s.events.unreceived, 2);
        assert!(s.events.missed >= s.events.unreceived * s.params.clients);
        assert_eq!(
            s.warnings,
            ["shard 1: a warning of shard 1"],
            "no merge warning"
        );

        // Shard 0's list was cut after seq 120: beyond it only bounds are known.
        set_unreceived(&mut files[0], &[105, 110, 120], 5);
        set_unreceived(&mut files[1], &[105, 120, 130, 140], 4);
        set_unreceived(&mut files[2], &[105, 120, 130], 3);
        set_unreceived(&mut files[3], &[105, 120, 130, 150], 4);
        let s = &merge(&files).unwrap().results.scenarios[0];
        assert_eq!(s.events.unreceived_seqs, [105, 120]);
        assert_eq!(s.events.unreceived, 2);
        let w = s
            .warnings
            .iter()
            .find(|w| w.contains("listed only"))
            .unwrap();
        assert!(w.starts_with("shard 0 listed only the first 10000"), "{w}");
        assert!(w.contains("up to seq 120"), "{w}");
        assert!(w.contains("between 2 and 3"), "{w}");
    }

    #[test]
    fn a_missing_shard_fails_the_merge_and_is_named() {
        let m = merge(&shards(&[0, 1, 3])).unwrap();
        assert_eq!(m.missing, [2]);
        let r = &m.results;
        assert_eq!(r.status, Status::Failed);
        assert_eq!(
            r.status_message.as_deref(),
            Some("no results file from shard 2 of 4")
        );
        let s = &r.scenarios[0];
        assert_eq!(s.status, Status::Failed);
        assert_eq!(
            s.status_message.as_deref(),
            Some("no result from shard 2 of 4: 2 of 10 clients are missing")
        );
        // What there is, is merged: 8 clients' figures.
        assert_eq!(s.connections.target, 8);
        assert_eq!(s.events.delivered, 8 * PUBLISHED);
        assert!(validate(&serde_json::to_value(r).unwrap()).is_empty());

        let m = merge(&shards(&[1, 3])).unwrap();
        assert_eq!(m.missing, [0, 2]);
        assert_eq!(
            m.results.status_message.as_deref(),
            Some("no results file from shards 0, 2 of 4")
        );
        // Shard 0 is gone: the server figures are the lowest index's present.
        assert_eq!(m.results.scenarios[0].server.as_ref().unwrap().cpu_s, 2.0);
    }

    #[test]
    fn a_failed_or_interrupted_shard_gives_the_merge_its_status() {
        let mut files = shards(&[0, 1, 2, 3]);
        {
            let r = &mut files[1].1;
            r.status = Status::Failed;
            r.status_message = Some("the server stopped answering /stats".into());
            let s = &mut r.scenarios[0];
            s.status = Status::Failed;
            s.status_message = Some("the server stopped answering /stats".into());
            // Cut short a second early: fewer events, its own seq range.
            s.window.as_mut().unwrap().end_ns -= 1_000_000_000;
            s.events.published = 40;
            s.events.last_seq = Some(140);
        }
        let m = merge(&files).unwrap();
        let r = &m.results;
        assert_eq!(r.status, Status::Failed);
        assert_eq!(
            r.status_message.as_deref(),
            Some("shard 1 (shard-1.json) failed: the server stopped answering /stats")
        );
        let s = &r.scenarios[0];
        assert_eq!(s.status, Status::Failed);
        assert!(s
            .status_message
            .as_deref()
            .unwrap()
            .contains("shard 1 (shard-1.json) failed"));
        // The complete shards' window and events.
        assert_eq!((s.events.published, s.events.last_seq), (60, Some(160)));
        assert!(s
            .warnings
            .iter()
            .any(|w| w.contains("shard 1 covered other seqs")));

        let mut files = shards(&[0, 1, 2, 3]);
        files[3].1.status = Status::Interrupted;
        files[3].1.status_message = Some("interrupted by signal".into());
        files[3].1.scenarios[0].status = Status::Interrupted;
        let r = merge(&files).unwrap().results;
        assert_eq!(r.status, Status::Interrupted);
        assert_eq!(r.scenarios[0].status, Status::Interrupted);
        assert_eq!(
            r.status_message.as_deref(),
            Some("shard 3 (shard-3.json) interrupted: interrupted by signal")
        );

        // Every shard interrupted, each closing its window when it stopped: merged, as
        // long as they opened together.
        let mut files = shards(&[0, 1, 2, 3]);
        for (i, f) in files.iter_mut().enumerate() {
            f.1.status = Status::Interrupted;
            let s = &mut f.1.scenarios[0];
            s.status = Status::Interrupted;
            s.window.as_mut().unwrap().end_ns -= 500_000_000 * (3 - i as u64);
        }
        assert_eq!(merge(&files).unwrap().results.status, Status::Interrupted);
        files[2].1.scenarios[0].window.as_mut().unwrap().start_ns += 5_000_000;
        assert!(refusal(&files).contains("shard 2 (shard-2.json) opens 5 ms later"));
    }

    #[test]
    fn a_shard_that_stopped_early_is_missing_from_its_later_scenarios() {
        let two = |i: u32| {
            let mut second = scenario(i, COUNT);
            second.repeat = 1;
            vec![scenario(i, COUNT), second]
        };
        let mut files: Vec<_> = (0..4).map(|i| file(i, two(i))).collect();
        files[3].1.scenarios.truncate(1);
        // A shard killed before its first scenario ended wrote a file without scenarios.
        let killed = file(9, Vec::new());
        files.push(("killed.json".into(), killed.1));
        let m = merge(&files).unwrap();
        let r = &m.results;
        assert_eq!(r.status, Status::Failed);
        assert_eq!(
            r.status_message.as_deref(),
            Some("killed.json holds no scenarios; shard 3 (shard-3.json) has 1 of the 2 scenarios")
        );
        assert_eq!(r.scenarios[0].status, Status::Complete);
        assert_eq!(r.scenarios[1].status, Status::Failed);
        assert_eq!(
            r.scenarios[1].status_message.as_deref(),
            Some("no result from shard 3 of 4: 3 of 10 clients are missing")
        );
    }

    #[test]
    fn files_that_do_not_belong_together_are_refused_with_the_reason() {
        assert!(matches!(merge(&[]), Err(MergeError::NoFiles)));
        let empty = file(0, Vec::new());
        assert_eq!(
            refusal(&[empty]),
            "nothing to merge: shard-0.json hold no scenarios"
        );

        let mut files = shards(&[0, 1]);
        files[1].1.scenarios[0].shard = None;
        let e = refusal(&files);
        assert!(e.starts_with("shard-1.json is not a shard's results file: scenario ws-c10-r20-s64 #0 has no shard block"), "{e}");

        let mut files = shards(&[0, 1]);
        files[1].1.scenarios[0].shard.as_mut().unwrap().first_client = 3;
        let e = refusal(&files);
        assert!(
            e.contains("its clients [3, 6) are not shard 1/4 of 10 clients, [2, 5)"),
            "{e}"
        );

        let mut files = shards(&[0]);
        files.push(file(1, vec![scenario(1, 3)]));
        assert_eq!(
            refusal(&files),
            "shard-0.json and shard-1.json split the run differently: shard-0.json is one of 4 shards, shard-1.json one of 3"
        );

        let mut files = shards(&[0, 2]);
        files.push(("again.json".into(), file(2, vec![scenario(2, COUNT)]).1));
        assert_eq!(
            refusal(&files),
            "shard-2.json and again.json are both shard 2 of 4"
        );

        let mut files = shards(&[0, 1]);
        files[1].1.target = "http://10.0.0.2:8080".into();
        assert_eq!(
            refusal(&files),
            r#"shard-0.json and shard-1.json are not from the same run: target "http://10.0.0.1:8080" vs "http://10.0.0.2:8080""#
        );
        let mut files = shards(&[0, 1]);
        files[1].1.suite = "quick".into();
        assert!(refusal(&files).contains(r#"suite "load" vs "quick""#));

        let mut files = shards(&[0, 1]);
        files[1].1.scenarios[0].name = "sse-c10-r20-s64".into();
        files[1].1.scenarios[0].transport = crate::Transport::Sse;
        assert_eq!(
            refusal(&files),
            "shard-0.json and shard-1.json ran different scenarios: scenario 1 of the run: ws-c10-r20-s64 #0 (ws) vs sse-c10-r20-s64 #0 (sse)"
        );
        let mut files = shards(&[0, 1]);
        files[1].1.scenarios[0].params.rate_hz = 40.0;
        let e = refusal(&files);
        assert!(
            e.ends_with("ws-c10-r20-s64 #0 with different parameters: rate_hz 20.0 vs 40.0"),
            "{e}"
        );
        let mut files = shards(&[0, 1]);
        files[1].1.scenarios[0].repeat = 1;
        assert!(refusal(&files).contains("ws-c10-r20-s64 #0 (ws) vs ws-c10-r20-s64 #1 (ws)"));
    }

    #[test]
    fn windows_must_line_up_within_a_millisecond() {
        let shift = |files: &mut Vec<(String, Results)>, i: usize, start: i64, end: i64| {
            let w = files[i].1.scenarios[0].window.as_mut().unwrap();
            w.start_ns = w.start_ns.saturating_add_signed(start);
            w.end_ns = w.end_ns.saturating_add_signed(end);
        };
        let mut files = shards(&[0, 1, 2, 3]);
        shift(&mut files, 2, 900_000, -900_000);
        assert!(merge(&files).is_ok(), "within the tolerance");

        let mut files = shards(&[0, 1, 2, 3]);
        shift(&mut files, 2, 3_200_000, 3_100_000);
        assert_eq!(
            refusal(&files),
            "scenario ws-c10-r20-s64 #0: the measure windows of shard 0 (shard-0.json) and shard 2 (shard-2.json) differ by more than 1 ms: shard 2 (shard-2.json) opens 3.2 ms later and closes 3.1 ms later than shard 0 (shard-0.json)"
        );

        let mut files = shards(&[0, 1, 2, 3]);
        shift(&mut files, 3, -5_000_000_000, -5_000_000_000);
        let e = refusal(&files);
        assert!(e.contains("shard 3 (shard-3.json) do not overlap: [1764500000000000000, 1764500003000000000) vs [1764499995000000000, 1764499998000000000) ns"), "{e}");

        let mut files = shards(&[0, 1]);
        files[1].1.scenarios[0].window = None;
        assert!(refusal(&files).contains("differ: shard 1 (shard-1.json) has none"));
    }

    #[test]
    fn complete_shards_must_read_the_same_events() {
        let mut files = shards(&[0, 1]);
        files[1].1.scenarios[0].events.published = 61;
        files[1].1.scenarios[0].events.last_seq = Some(161);
        assert_eq!(
            refusal(&files),
            "scenario ws-c10-r20-s64 #0: shard 0 (shard-0.json) and shard 1 (shard-1.json) disagree on the window's events (60 published, seqs 101..=160, window from feed vs 61 published, seqs 101..=161, window from feed); a merge needs the same events in every shard's window"
        );
    }

    #[test]
    fn a_broken_histogram_is_refused() {
        let mut files = shards(&[0, 1]);
        files[1].1.scenarios[0].latency_us.hdr = "not base64!".into();
        let e = refusal(&files);
        assert!(e.starts_with("scenario ws-c10-r20-s64 #0: shard 1 (shard-1.json)'s latency_us histogram: hdr is not base64"), "{e}");
        let mut files = shards(&[0, 1]);
        files[1].1.scenarios[0].latency_us.count += 1;
        assert!(refusal(&files).contains("holds 180 samples where the summary says 181"));
    }

    #[test]
    fn one_link_block_is_taken_once_and_different_ones_are_refused() {
        let mut files = shards(&[0, 1, 2, 3]);
        for (_, r) in &mut files {
            r.scenarios[0].net = Some(crate::net::tests::block());
        }
        let m = merge(&files).unwrap();
        let net = m.results.scenarios[0].net.as_ref().unwrap();
        // Taken once: the counters are the link's, not summed over the 4 shards.
        assert_eq!(net.down.packets, 600);
        assert_eq!(net.down.bytes, 96_600);
        assert_eq!(net.emulator.cpu_s, 0.12);
        assert!(validate(&serde_json::to_value(&m.results).unwrap()).is_empty());

        files[2].1.scenarios[0].net.as_mut().unwrap().down.packets = 601;
        assert_eq!(
            refusal(&files),
            "scenario ws-c10-r20-s64 #0: shard 0 (shard-0.json) and shard 2 (shard-2.json) carry different net blocks (both \"rtt=100ms,loss=1%\", different figures); shards of one run share one link and record the same block"
        );
        files[2].1.scenarios[0].net.as_mut().unwrap().spec = "rtt=50ms".into();
        assert!(refusal(&files).contains(r#"("rtt=100ms,loss=1%" vs "rtt=50ms")"#));

        // Without any block the merged scenario has none.
        let m = merge(&shards(&[0, 1])).unwrap();
        assert_eq!(m.results.scenarios[0].net, None);
    }

    /// A TLS HTTP/1.1 stack of one shard: `events` ws events of 107 B JSON, one 22 B record
    /// each, and one handshake per client.
    fn tls_stack(clients: u64, events: u64) -> StackFigures {
        use crate::stack::{ByteLayers, ByteSplit, HTTP_1_1};
        StackFigures {
            tls_version: Some("TLSv1.3".into()),
            cipher_suite: Some("TLS13_AES_128_GCM_SHA256".into()),
            alpn: Some("http/1.1".into()),
            http: HTTP_1_1.into(),
            handshakes: clients,
            resumed: clients / 2,
            handshakes_total: clients,
            split: ByteSplit {
                up: ByteLayers {
                    handshake: clients * 600,
                    ..ByteLayers::default()
                },
                down: ByteLayers {
                    payload: events * JSON_BYTES,
                    framing: events * 2,
                    h2: 0,
                    tls: events * 22,
                    handshake: clients * 3_000,
                },
            },
            run_tls: Some(crate::stack::TlsRun {
                up: crate::stack::TlsLayers {
                    plaintext: clients * 200,
                    tls: clients * 22,
                    handshake: clients * 600,
                },
                down: crate::stack::TlsLayers {
                    plaintext: events * (JSON_BYTES + 2),
                    tls: events * 22,
                    handshake: clients * 3_000,
                },
            }),
        }
    }

    #[test]
    fn the_stack_is_summed_and_must_be_the_same_in_every_shard() {
        let mut files = shards(&[0, 1, 2, 3]);
        for (_, r) in &mut files {
            let s = &mut r.scenarios[0];
            s.params.tls = true;
            s.params.tls_resumption = Some(true);
            s.stack = Some(tls_stack(s.connections.target, s.bytes.events));
        }
        let m = merge(&files).unwrap();
        let s = &m.results.scenarios[0];
        let stack = s.stack.as_ref().unwrap();
        let events = PUBLISHED * CLIENTS;
        assert_eq!(stack.handshakes, CLIENTS);
        assert_eq!(stack.resumed, 4, "2/2 + 3/2 + 2/2 + 3/2, each rounded down");
        assert_eq!(stack.handshakes_total, CLIENTS);
        assert_eq!(stack.split.down.tls, events * 22);
        assert_eq!(stack.split.down.payload, s.bytes.payload);
        assert_eq!(stack.split.up.handshake, CLIENTS * 600);
        let run = stack.run_tls.unwrap();
        assert_eq!(run.up.plaintext, CLIENTS * 200);
        assert_eq!(run.down.tls, events * 22);
        assert_eq!(run.down.handshake, CLIENTS * 3_000);
        assert_eq!(stack.tls_version.as_deref(), Some("TLSv1.3"));
        assert_eq!(s.params.tls_resumption, Some(true));
        assert!(validate(&serde_json::to_value(&m.results).unwrap()).is_empty());

        // A shard that negotiated nothing (every handshake failed) does not contradict.
        let mut partial = files.clone();
        let st = partial[1].1.scenarios[0].stack.as_mut().unwrap();
        (st.tls_version, st.cipher_suite, st.alpn) = (None, None, None);
        let m = merge(&partial).unwrap();
        let merged = m.results.scenarios[0].stack.clone().unwrap();
        assert_eq!(
            merged.cipher_suite.as_deref(),
            Some("TLS13_AES_128_GCM_SHA256")
        );

        let mut other_suite = files.clone();
        other_suite[3].1.scenarios[0]
            .stack
            .as_mut()
            .unwrap()
            .cipher_suite = Some("TLS13_CHACHA20_POLY1305_SHA256".into());
        assert_eq!(
            refusal(&other_suite),
            "scenario ws-c10-r20-s64 #0: shard 0 (shard-0.json) and shard 3 (shard-3.json) ran over different stacks: cipher_suite \"TLS13_AES_128_GCM_SHA256\" vs \"TLS13_CHACHA20_POLY1305_SHA256\""
        );
        let mut other_http = files.clone();
        other_http[2].1.scenarios[0].stack.as_mut().unwrap().http = "2".into();
        assert!(refusal(&other_http).contains("http \"1.1\" vs \"2\""));

        // Stack parameters are parameters: shards must agree on them.
        let mut other_params = files.clone();
        other_params[1].1.scenarios[0].params.tls_resumption = Some(false);
        assert!(
            refusal(&other_params).contains("different parameters: tls_resumption true vs false"),
            "{}",
            refusal(&other_params)
        );
        // A parameter at its default is absent from one file's params, and still named.
        other_params[1].1.scenarios[0].params.tls_resumption = Some(true);
        other_params[0].1.scenarios[0].params.http = "2".into();
        assert!(
            refusal(&other_params).contains("different parameters: http \"2\" vs null"),
            "{}",
            refusal(&other_params)
        );
    }

    #[test]
    fn different_hosts_are_noted() {
        let mut files = shards(&[0, 1]);
        files[1].1.host.cores = 16;
        let s = &merge(&files).unwrap().results.scenarios[0];
        let note = s
            .notes
            .iter()
            .find(|n| n.contains("different hosts"))
            .unwrap();
        assert!(note.contains("host is shard 0's"), "{note}");
        assert!(note.contains("shard 1: 16 cores"), "{note}");
    }
}
