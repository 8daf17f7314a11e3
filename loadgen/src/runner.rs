//! Running a list of scenarios against one target and keeping the results file current.
//!
//! The results file is rewritten atomically after every scenario, so a run that is killed
//! outright still leaves the scenarios it finished; Ctrl-C and a dead server end the run
//! with status `interrupted` or `failed` and a final write.

use std::fmt::Write as _;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

use crate::client::Target;
use crate::clock::rfc3339;
use crate::progress::Progress;
use crate::results::{
    write_json_atomic, CpuSets, Params, Results, ScenarioResult, Status, SCHEMA_VERSION,
};
use crate::scenario::{run_scenario, RunSignals, ScenarioError, ScenarioSpec};
use crate::shard_run::ShardPlan;
use crate::{crossing, limits, sysinfo};
use feedbench_results::model;

/// What to run and where to write it.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The `suite` field (`load` for a single scenario).
    pub suite: String,
    /// Scenario runs in order, each with its repeat index.
    pub runs: Vec<(ScenarioSpec, u32)>,
    /// The server.
    pub target: Target,
    /// The results file.
    pub results_path: PathBuf,
    /// Whether the server was started by feedbench.
    pub embedded_server: bool,
    /// CPU sets, when pinned.
    pub cpu_sets: Option<CpuSets>,
    /// A suite's p99 limit: scenarios over it get a warning, and the results say where
    /// each series of client counts crosses it.
    pub p99_limit: Option<Duration>,
    /// Run each scenario as local shard processes, merged (`feedbench run --shards N`).
    pub shards: Option<ShardPlan>,
}

/// Replaces the server between scenario runs (a suite's `fresh_server`, or a scenario whose
/// `tls` differs from the server's): implemented by whoever started the server, which for
/// feedbench is `feedbench run`'s embedded server.
pub trait ServerSwap: Send {
    /// Whether every scenario run gets a new server (`fresh_server`); otherwise only a
    /// change of `tls` does.
    fn fresh_each(&self) -> bool {
        true
    }

    /// Stops the server in use and starts a new one, speaking TLS when `tls`; returns the
    /// new target.
    fn next_server(
        &mut self,
        tls: bool,
    ) -> Pin<Box<dyn Future<Output = Result<Target, String>> + Send + '_>>;
}

/// An empty, complete results file of `suite` against `target`, started now: what `run`
/// and `find` write before their first scenario and fill as they go.
pub(crate) fn new_results(
    suite: String,
    target: &Target,
    embedded_server: bool,
    cpu_sets: Option<CpuSets>,
) -> Results {
    let sources = target.source_addrs.resolve(target.addr);
    Results {
        schema_version: SCHEMA_VERSION,
        status: Status::Complete,
        status_message: None,
        tool: sysinfo::tool(),
        host: sysinfo::host(),
        suite,
        started_at: rfc3339(SystemTime::now()),
        finished_at: rfc3339(SystemTime::now()),
        target: target.url(),
        embedded_server,
        cpu_sets,
        source_addrs: sources.iter().map(ToString::to_string).collect(),
        p99_limit: None,
        capacity: None,
        scenarios: Vec::new(),
    }
}

/// Runs every scenario of `cfg`, writing results after each. Errors only for problems
/// found before anything ran (capacity) or when the results file cannot be written; a
/// failed or interrupted run is an `Ok` with that status.
pub async fn run(cfg: &RunConfig, signals: &RunSignals) -> anyhow::Result<Results> {
    run_with(cfg, signals, None).await
}

/// [`run`], with a new server from `fresh` before every scenario run after the first (the
/// first runs against `cfg.target`) when it is [`ServerSwap::fresh_each`], and before any
/// scenario whose `tls` the server in use does not speak. A server that cannot be started
/// fails the run.
pub async fn run_with(
    cfg: &RunConfig,
    signals: &RunSignals,
    mut fresh: Option<&mut dyn ServerSwap>,
) -> anyhow::Result<Results> {
    let most_clients = cfg.runs.iter().map(|(s, _)| s.n_clients).max().unwrap_or(0);
    cfg.target
        .source_addrs
        .check(cfg.target.addr)
        .map_err(anyhow::Error::msg)?;
    let sources = cfg.target.source_addrs.resolve(cfg.target.addr);
    // Shard processes each check their own block (descriptors are per process).
    let per_process = match &cfg.shards {
        Some(plan) => most_clients.div_ceil(plan.count.max(1) as usize),
        None => most_clients,
    };
    limits::check_capacity(per_process as u64, &sources, cfg.target.addr)
        .map_err(anyhow::Error::msg)?;
    let mut results = new_results(
        cfg.suite.clone(),
        &cfg.target,
        cfg.embedded_server,
        cfg.cpu_sets.clone(),
    );
    write(&cfg.results_path, &mut results)?;
    let progress = Progress::new(cfg.runs.len());
    let mut target = cfg.target.clone();
    for (i, (spec, repeat)) in cfg.runs.iter().enumerate() {
        if signals.status() != Status::Complete {
            break;
        }
        let swap = fresh
            .as_deref_mut()
            .filter(|s| (i > 0 && s.fresh_each()) || target.tls != spec.stack.tls);
        if let Some(swap) = swap {
            match swap.next_server(spec.stack.tls).await {
                Ok(t) => target = t,
                Err(e) => {
                    signals.fail(format!(
                        "cannot start a fresh server for scenario {} #{repeat}: {e}",
                        spec.name()
                    ));
                    break;
                }
            }
        }
        let outcome = match &cfg.shards {
            Some(plan) => {
                progress.phase("shards");
                crate::shard_run::run(plan, &target, spec, *repeat, signals)
                    .await
                    .map_err(ScenarioError::Shards)
            }
            None => run_scenario(&target, spec, *repeat, signals, &progress).await,
        };
        match outcome {
            Ok(mut result) => {
                if let Some(limit) = cfg.p99_limit {
                    warn_over_limit(&mut result, limit);
                }
                warn_off_model(&mut result, &results.scenarios);
                results.scenarios.push(result);
                results.p99_limit = cfg
                    .p99_limit
                    .map(|l| crossing::evaluate(l.as_micros() as u64, &results.scenarios));
            }
            Err(e @ ScenarioError::Control(_)) => {
                signals.fail(format!("scenario {} #{repeat}: {e}", spec.name()));
            }
            Err(
                e @ (ScenarioError::Capacity(_)
                | ScenarioError::StartAt(_)
                | ScenarioError::Shards(_)
                | ScenarioError::Net(_)
                | ScenarioError::Stack(_)
                | ScenarioError::Receiver(_)),
            ) => {
                signals.fail(format!("scenario {} #{repeat}: {e}", spec.name()));
            }
        }
        write(&cfg.results_path, &mut results)?;
    }
    progress.finish();
    results.status = signals.status();
    results.status_message = match results.status {
        Status::Complete => None,
        Status::Interrupted => Some("interrupted by signal".into()),
        Status::Failed => signals.failure(),
    };
    write(&cfg.results_path, &mut results)?;
    Ok(results)
}

/// Checks a scenario over a link against the analytic model (`MODEL.md`) and warns when it
/// is off by more than the model's tolerance. The model's base latency L0 (what the
/// scenario costs with no network: the server's fan-out, the clients' parsing) is the
/// median over the loopback runs of the same scenario done so far of what each gives
/// ([`model::base_latency_ms`]; a suite lists `none`
/// among its links for this; it runs first in each repeat); without one it is 0, which
/// the checks' 2 ms floor covers only for small fan-outs, so the warning then says so.
fn warn_off_model(result: &mut ScenarioResult, done: &[ScenarioResult]) {
    if result.net.is_none() {
        return;
    }
    let mut p50_ms: Vec<f64> = done
        .iter()
        .filter(|s| s.net.is_none() && s.transport == result.transport)
        .filter(|s| {
            Params {
                net: None,
                ..s.params.clone()
            } == Params {
                net: None,
                ..result.params.clone()
            }
        })
        .filter(|s| s.status == Status::Complete)
        .filter_map(model::base_latency_ms)
        .collect();
    p50_ms.sort_by(f64::total_cmp);
    let base_ms = p50_ms.get(p50_ms.len().saturating_sub(1) / 2).copied();
    for check in model::checks(result, base_ms.unwrap_or(0.0)) {
        if check.within {
            continue;
        }
        let sentence = match base_ms {
            Some(_) => check.sentence,
            None => format!(
                "{} (no loopback run of this scenario gave the model its base latency: \
                 add \"none\" to the suite's `matrix.net`)",
                check.sentence
            ),
        };
        result.warnings.push(sentence);
    }
}

/// Warns when p99 is over the suite's limit (plus the poll interval for short-poll, see
/// [`crossing`]).
fn warn_over_limit(result: &mut ScenarioResult, limit: Duration) {
    let p99_us = result.latency_us.p99;
    let limit_us = crossing::limit_for(limit.as_micros() as u64, result);
    if result.latency_us.count > 0 && p99_us > limit_us {
        result.warnings.push(format!(
            "p99 delivery latency {:.1} ms is over the limit of {:.0} ms (the suite's p99_limit{})",
            p99_us as f64 / 1000.0,
            limit_us as f64 / 1000.0,
            if result.params.poll_interval_ms.is_some() {
                " plus the poll interval"
            } else {
                ""
            }
        ));
    }
}

fn write(path: &Path, results: &mut Results) -> anyhow::Result<()> {
    results.finished_at = rfc3339(SystemTime::now());
    write_json_atomic(path, results)
        .with_context(|| format!("cannot write results to {}", path.display()))
}

/// The process exit code for a run's status: 0 complete, 1 interrupted or failed.
pub fn exit_code(status: Status) -> i32 {
    match status {
        Status::Complete => 0,
        Status::Interrupted | Status::Failed => 1,
    }
}

/// Points `link` (e.g. `bench-results/latest`) at `dir`, replacing it atomically. The link
/// is relative when `dir` is a sibling of it.
pub fn update_latest_link(link: &Path, dir: &Path) -> std::io::Result<()> {
    let target = match (link.parent(), dir.parent(), dir.file_name()) {
        (Some(a), Some(b), Some(name)) if a == b => PathBuf::from(name),
        _ => std::path::absolute(dir)?,
    };
    let tmp = link.with_file_name(format!(".latest.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// A short table of the results for stdout.
pub fn summary_table(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<36} {:>3} {:<11} {:>9} {:>9} {:>9} {:>8} {:>9} {:>8} {:>7} {:>7} {:>7}",
        "scenario",
        "rep",
        "status",
        "p50 ms",
        "p99 ms",
        "delivered",
        "missed",
        "B/event",
        "req/ev",
        "srv cpu",
        "srv MiB",
        "lg cpu"
    );
    for s in &results.scenarios {
        let _ = writeln!(
            out,
            "{:<36} {:>3} {:<11} {:>9.2} {:>9.2} {:>9} {:>8} {:>9.1} {:>8.2} {:>6.2}s {:>7.1} {:>6.0}%",
            s.name,
            s.repeat,
            s.status.as_str(),
            s.latency_us.p50 as f64 / 1000.0,
            s.latency_us.p99 as f64 / 1000.0,
            s.events.delivered,
            s.events.missed,
            s.bytes.per_event,
            s.requests.per_event,
            s.server.as_ref().map_or(0.0, |v| v.cpu_s),
            s.server
                .as_ref()
                .map_or(0.0, |v| v.rss_peak_bytes as f64 / (1024.0 * 1024.0)),
            s.loadgen.cpu_util * 100.0,
        );
    }
    if let Some(limit) = &results.p99_limit {
        out.push_str(&crossing::describe(limit));
    }
    let warnings: usize = results.scenarios.iter().map(|s| s.warnings.len()).sum();
    let _ = write!(out, "status: {}", results.status.as_str());
    if let Some(m) = &results.status_message {
        let _ = write!(out, " ({m})");
    }
    if warnings > 0 {
        let _ = write!(out, "; {warnings} warnings in the results file");
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_link_is_replaced() {
        let root = std::env::temp_dir().join(format!("fb-latest-{}", std::process::id()));
        let (a, b) = (root.join("run-a"), root.join("run-b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let link = root.join("latest");
        update_latest_link(&link, &a).unwrap();
        update_latest_link(&link, &b).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), PathBuf::from("run-b"));
        assert_eq!(
            std::fs::canonicalize(&link).unwrap(),
            std::fs::canonicalize(&b).unwrap()
        );
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(
            (exit_code(Status::Complete), exit_code(Status::Failed)),
            (0, 1)
        );
    }
}
