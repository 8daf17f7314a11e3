//! `feedbench find`: the largest client count (or event rate) each transport sustains
//! within a latency SLO with no event missed, bracketed and bisected within a budget.
//!
//! A thin layer over `feedbench_loadgen::finder`: parse and check the flags, start the
//! embedded server (a fresh one for every run, pinned apart from the load generator, as
//! `feedbench run` does) unless `--target` names one, run the search, print the answer
//! and write the report. Results go to `DIR/results.json` (every run a scenario, the answer
//! in its `capacity` field) and `DIR/capacity.json` (the answer alone).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use feedbench_loadgen::clock::compact_utc;
use feedbench_loadgen::finder::{self, FindConfig, SearchConfig};
use feedbench_loadgen::results::{CpuSets, SloTerm, Vary};
use feedbench_loadgen::runner::{exit_code, update_latest_link};
use feedbench_loadgen::source::SourceAddrs;
use feedbench_loadgen::stack::StackSpec;
use feedbench_loadgen::sysinfo::format_cpu_list;
use feedbench_loadgen::{RunSignals, ScenarioSpec, ServerSwap, Target, Transport};

use crate::run_cmd::{interrupt_on_signal, pinned_runtime_builder, CpuSplit, Embedded};

/// Where results go by default.
const RESULTS_ROOT: &str = "bench-results";
/// The highest rate the server accepts, events/s.
const MAX_RATE_HZ: u64 = 1_000_000;

/// What varies: clients or rate.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaryArg {
    /// Concurrent clients, at a fixed --rate.
    Clients,
    /// Events per second (whole numbers), at a fixed --clients.
    Rate,
}

/// Find the largest client count (or event rate) each transport sustains within a latency
/// SLO with no event missed.
///
/// Probes grow geometrically from --start (by --growth) while they pass, shrink while they
/// fail, then bisect between the last pass and the first fail until the two are within
/// --resolution; every probe is --repeats runs and passes only if every run passes (the
/// worse decides). The search stops by itself: converged, at --max, at 1, or when the next
/// probe would exceed --max-runs (per transport) or --max-time (the whole search).
///
/// Near its capacity a server passes some runs and fails others, so one bracket lands
/// wherever its few runs fell. Once the bisection converges, each end is confirmed by
/// --confirm runs that must all agree: down from the last pass, in steps of --resolution,
/// to a value where every run passes, and up from the first fail to one where every run
/// fails; values whose runs disagree are listed as mixed. The answer is [every run passes,
/// every run fails), which holds the noisy band, so repeated searches agree (--confirm 0:
/// the bracket [last pass, first fail) is the answer).
/// Short-poll is judged on each SLO term plus its poll interval (its clients wait up to one
/// interval by design). Every run is kept in DIR/results.json; the answer is its `capacity`
/// field and DIR/capacity.json.
///
/// Exit codes: 0 search finished (whatever the capacity); 1 interrupted or the server failed
/// (results saved); 2 usage or input error (nothing ran).
#[derive(clap::Args, Debug)]
pub struct FindArgs {
    /// Transports to search, comma-separated or repeated: short-poll, long-poll, ws, sse, or all.
    #[arg(long, required = true, value_delimiter = ',')]
    pub transport: Vec<String>,
    /// The latency SLO: PERCENTILE=DURATION terms (p50, p90, p99, p999, max), comma-separated
    /// or repeated, e.g. p99=100ms or p50=10ms,p99=100ms. No missed event is always required.
    #[arg(long, required = true)]
    pub slo: Vec<String>,
    /// What to vary.
    #[arg(long, value_enum, default_value = "clients")]
    pub vary: VaryArg,
    /// The first value probed [default: 1000 clients, or 10 events/s].
    #[arg(long)]
    pub start: Option<u64>,
    /// The largest value probed [default: 19000 clients, lowered to what the load generator's
    /// descriptors and ports allow; or 100000 events/s].
    #[arg(long)]
    pub max: Option<u64>,
    /// Factor by which probes grow while they pass (and shrink while they fail).
    #[arg(long, default_value_t = 2.0)]
    pub growth: f64,
    /// Stop bisecting when the first fail is within this much of the last pass, e.g. 10% or 0.1.
    #[arg(long, default_value = "10%", value_parser = parse_share)]
    pub resolution: f64,
    /// Runs per probe; a probe passes only if every run passes.
    #[arg(long, default_value_t = 2)]
    pub repeats: u32,
    /// Runs each end of the answer needs, all alike (0: none, the bracket is the answer).
    /// Once the bisection converges, the search steps down from the last pass (by
    /// --resolution) to a value where every one of these runs passes, and up from the first
    /// fail to one where every run fails; the answer [every run passes, every run fails)
    /// holds the band where runs disagree (listed as mixed), so repeated searches agree.
    #[arg(long, default_value_t = 5)]
    pub confirm: u32,
    /// Most runs per transport.
    #[arg(long, default_value_t = 40)]
    pub max_runs: u64,
    /// Most wall-clock time for the whole search, every transport (each gets an equal share
    /// of what is left when its turn comes), e.g. 10m.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub max_time: Duration,
    /// Concurrent clients when --vary rate.
    #[arg(long, default_value_t = 1000)]
    pub clients: u64,
    /// Feed rate in events/s when --vary clients.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Event payload, bytes.
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
    /// Short-poll interval (its SLO terms get it on top).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// Measure window of every run.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up of every run.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Time over which clients connect: `auto` (4,000 clients per second) or a duration.
    #[arg(long, default_value = "auto")]
    pub ramp: String,
    /// Seed for the short-poll clients' phases.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Measure this server (plaintext http://) instead of starting one; the feed is set on
    /// it with PUT /control/feed.
    #[arg(long)]
    pub target: Option<String>,
    /// Bearer token for PUT /control/feed on the target.
    #[arg(long, env = "FEEDBENCH_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
    /// Output directory [default: bench-results/find-UTCTIMESTAMP].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Don't write the report after the results.
    #[arg(long)]
    pub no_report: bool,
    /// Don't pin the embedded server and the load generator to separate CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Local addresses the clients connect from (see `feedbench run --help`).
    #[arg(long, default_value = "auto")]
    pub source_addrs: SourceAddrs,
}

/// A share: `10%` or `0.1`.
fn parse_share(text: &str) -> Result<f64, String> {
    let value = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| format!("{text:?} is not a share like 10% or 0.1"))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("{text:?} must be 0 or more"));
    }
    Ok(value)
}

/// The transports named: a list, or `all`.
fn parse_transports(names: &[String]) -> anyhow::Result<Vec<Transport>> {
    let mut out: Vec<Transport> = Vec::new();
    for name in names.iter().map(|n| n.trim()) {
        let add: Vec<Transport> = if name == "all" {
            Transport::ALL.to_vec()
        } else {
            vec![name
                .parse::<Transport>()
                .map_err(|e| anyhow::anyhow!("--transport: {e}, or all"))?]
        };
        for t in add {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// Checks the flags and builds everything but the target.
fn plan(args: &FindArgs) -> anyhow::Result<Plan> {
    let transports = parse_transports(&args.transport)?;
    let slo = finder::parse_slo(&args.slo.join(",")).map_err(|e| anyhow::anyhow!("--slo: {e}"))?;
    let vary = match args.vary {
        VaryArg::Clients => Vary::Clients,
        VaryArg::Rate => Vary::Rate,
    };
    let (default_start, default_max) = match vary {
        Vary::Clients => (1000, 19_000),
        Vary::Rate => (10, 100_000),
    };
    let start = args.start.unwrap_or(default_start);
    let max = args.max.unwrap_or(default_max);
    anyhow::ensure!(start >= 1, "--start must be at least 1");
    anyhow::ensure!(
        max >= start,
        "--max ({max}) must be at least --start ({start})"
    );
    if vary == Vary::Rate {
        anyhow::ensure!(
            max <= MAX_RATE_HZ,
            "--max {max} events/s is over the server's highest rate, {MAX_RATE_HZ}"
        );
    }
    anyhow::ensure!(
        args.growth.is_finite() && args.growth > 1.0,
        "--growth must be above 1 (it is the factor probes grow by)"
    );
    anyhow::ensure!(args.repeats >= 1, "--repeats must be at least 1");
    anyhow::ensure!(
        args.confirm <= 100,
        "--confirm must be at most 100 runs (it is {})",
        args.confirm
    );
    anyhow::ensure!(
        args.max_runs >= u64::from(args.repeats),
        "--max-runs ({}) must allow one probe of --repeats ({}) runs",
        args.max_runs,
        args.repeats
    );
    anyhow::ensure!(
        !args.max_time.is_zero(),
        "--max-time must be longer than 0s"
    );
    anyhow::ensure!(
        !args.duration.is_zero(),
        "--duration must be longer than 0s"
    );
    anyhow::ensure!(args.clients >= 1, "--clients must be at least 1");
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be above 0 (a paused feed has nothing to measure)"
    );
    if transports.contains(&Transport::ShortPoll) {
        anyhow::ensure!(
            args.poll_interval >= Duration::from_millis(1),
            "--poll-interval must be at least 1ms (find needs a schedule to judge short-poll against)"
        );
        anyhow::ensure!(
            args.duration >= args.poll_interval * 2,
            "--duration ({}) must be at least twice --poll-interval ({}) so every client polls in the window",
            humantime::format_duration(args.duration),
            humantime::format_duration(args.poll_interval)
        );
    }
    let (auto_ramp, ramp) = match args.ramp.as_str() {
        "auto" => (true, Duration::ZERO),
        text => (
            false,
            humantime::parse_duration(text).map_err(|e| {
                anyhow::anyhow!("--ramp: {text:?} is not auto or a duration like 4s: {e}")
            })?,
        ),
    };
    let template = ScenarioSpec {
        transport: transports[0],
        n_clients: args.clients as usize,
        rate_hz: args.rate,
        payload_bytes: args.payload_bytes,
        poll_interval: args.poll_interval,
        duration: args.duration,
        warmup: args.warmup,
        ramp,
        keepalive: true,
        seed: args.seed,
        control: true,
        shard: None,
        start_at: None,
        net: None,
        stack: StackSpec::default(),
    };
    let search = SearchConfig {
        start,
        max,
        growth: args.growth,
        resolution: args.resolution,
    };
    Ok(Plan {
        transports,
        vary,
        search,
        template,
        auto_ramp,
        slo,
    })
}

/// Runs `feedbench find`; returns the exit code.
pub fn execute(args: FindArgs) -> anyhow::Result<i32> {
    let plan = plan(&args)?;
    let target = match &args.target {
        Some(url) => {
            let mut t = Target::parse(url).map_err(anyhow::Error::msg)?;
            anyhow::ensure!(
                !t.tls,
                "--target {url}: find measures plaintext http:// targets (use feedbench run for TLS)"
            );
            t.control_token = args.control_token.clone();
            t.source_addrs = args.source_addrs.clone();
            Some(t)
        }
        None => None,
    };
    let default_out = args.out.is_none();
    let out_dir = args.out.clone().unwrap_or_else(|| {
        Path::new(RESULTS_ROOT).join(format!("find-{}", compact_utc(SystemTime::now())))
    });
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let (cpus, mut builder) = pinned_runtime_builder(target.is_none() && !args.no_pin)?;
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(find(args, plan, target, out_dir, default_out, cpus))
}

/// The checked flags.
struct Plan {
    transports: Vec<Transport>,
    vary: Vary,
    search: SearchConfig,
    template: ScenarioSpec,
    auto_ramp: bool,
    slo: Vec<SloTerm>,
}

async fn find(
    args: FindArgs,
    plan: Plan,
    target: Option<Target>,
    out_dir: PathBuf,
    default_out: bool,
    cpus: CpuSplit,
) -> anyhow::Result<i32> {
    let signals = Arc::new(RunSignals::new());
    let interrupts = tokio::spawn(interrupt_on_signal(signals.clone()));
    let (target, mut embedded) = match target {
        Some(t) => (t, None),
        None => {
            let mut e = Embedded::loopback(
                cpus.as_ref().map(|c| c.0.clone()),
                out_dir.join("server-cert.pem"),
                signals.clone(),
                args.source_addrs.clone(),
            )?;
            let t = e.launch(false).await?;
            (t, Some(e))
        }
    };
    let cfg = FindConfig {
        transports: plan.transports,
        vary: plan.vary,
        template: plan.template,
        auto_ramp: plan.auto_ramp,
        slo: plan.slo,
        search: plan.search,
        repeats: args.repeats,
        confirm: args.confirm,
        max_runs: args.max_runs,
        max_time: args.max_time,
        embedded_server: embedded.is_some(),
        target,
        results_path: out_dir.join("results.json"),
        capacity_path: out_dir.join("capacity.json"),
        cpu_sets: cpus.as_ref().map(|(s, l)| CpuSets {
            server: Some(format_cpu_list(s)),
            loadgen: Some(format_cpu_list(l)),
        }),
    };
    eprintln!(
        "feedbench: find {} capacity of {} within {}: at most {} runs per transport and {} in all; results in {}",
        cfg.vary.as_str(),
        cfg.transports
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        args.slo.join(","),
        cfg.max_runs,
        humantime::format_duration(cfg.max_time),
        out_dir.display()
    );
    let swap = embedded.as_mut().map(|e| e as &mut dyn ServerSwap);
    let results = finder::run_find(&cfg, &signals, swap).await;
    if let Some(e) = embedded.as_mut() {
        e.stop().await;
    }
    interrupts.abort();
    let results = results?;
    if default_out {
        let link = out_dir.parent().unwrap_or(Path::new(".")).join("latest");
        if let Err(e) = update_latest_link(&link, &out_dir) {
            tracing::warn!("cannot update {}: {e}", link.display());
        }
    }
    if let Some(c) = &results.capacity {
        print!("{}", finder::summary(c));
    }
    eprintln!("results: {}", cfg.results_path.display());
    eprintln!("capacity: {}", cfg.capacity_path.display());
    let mut code = exit_code(results.status);
    if !args.no_report {
        match crate::report_cmd::write_report_for_run(&cfg.results_path, &out_dir) {
            Ok(report) => eprintln!("report: {}", report.display()),
            Err(e) => {
                eprintln!("feedbench: cannot write the report: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_and_transport_lists() {
        assert_eq!(parse_share("10%"), Ok(0.1));
        assert_eq!(parse_share("0.25"), Ok(0.25));
        assert!(parse_share("-1%").is_err());
        assert!(parse_share("ten").unwrap_err().contains("not a share"));
        let all = parse_transports(&["all".into()]).unwrap();
        assert_eq!(all, Transport::ALL.to_vec());
        let two = parse_transports(&["ws".into(), "sse".into(), "ws".into()]).unwrap();
        assert_eq!(two, [Transport::Ws, Transport::Sse]);
        let e = parse_transports(&["websocket".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown transport \"websocket\""), "{e}");
    }
}
