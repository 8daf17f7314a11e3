//! `feedbench run`: a whole suite, against a given server or one started for the run.
//!
//! Without `--target` it starts `feedbench serve --addr 127.0.0.1:0` (this same binary) as
//! a child, pinned apart from the load generator on machines with two or more CPUs: a new
//! one for every scenario run unless the suite says `fresh_server = false`, and stops it at
//! the end. Results go to `DIR/results.json`; `bench-results/latest` points at
//! the newest run; then the report is written next to the results.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context as _;
use feedbench_loadgen::clock::compact_utc;
use feedbench_loadgen::embedded::{EmbeddedOptions, EmbeddedServer};
use feedbench_loadgen::net::ClientNet;
use feedbench_loadgen::results::CpuSets;
use feedbench_loadgen::runner::{exit_code, summary_table, update_latest_link};
use feedbench_loadgen::shard_run::ShardPlan;
use feedbench_loadgen::source::SourceAddrs;
use feedbench_loadgen::sysinfo::{allowed_cpus, format_cpu_list, pin_current_thread, split_cpus};
use feedbench_loadgen::tls::Trust;
use feedbench_loadgen::{RunConfig, RunSignals, ServerSwap, Suite, Target};

use crate::load_cmd::{check_stack, OnOff, StackArgs};
use feedbench_netem::{NetEnv, NetOptions, NetSpec};

/// Where results go by default.
const RESULTS_ROOT: &str = "bench-results";

/// Run a benchmark suite and write its results and report.
///
/// Without --target, feedbench starts its own server (`feedbench serve`) on a free loopback
/// port, a fresh one for every scenario run (unless the suite sets fresh_server = false),
/// pins server and load generator to separate CPUs (unless --no-pin), and stops the server
/// at the end. Ctrl-C stops the run and saves what was measured.
///
/// Exit codes: 0 complete; 1 the run failed (e.g. the server died) or was interrupted
/// (results are saved either way, with that status); 2 usage or input error (e.g. an
/// invalid suite file).
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Suite: quick, standard, connections, stacks, wan, mobile, websocket-org (the last three need
    /// root: emulated links), or the path of a suite TOML file.
    #[arg(long, default_value = "quick")]
    pub suite: String,
    /// Measure this server (e.g. http://127.0.0.1:8080, or https://... with --ca or
    /// --insecure) instead of starting one; its scheme sets every scenario's `tls`.
    #[arg(long)]
    pub target: Option<String>,
    /// Output directory [default: bench-results/SUITE-UTCTIMESTAMP].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Don't write the report after the results.
    #[arg(long)]
    pub no_report: bool,
    /// Don't pin the embedded server and the load generator to separate CPUs.
    #[arg(long)]
    pub no_pin: bool,
    /// Local addresses the clients connect from, round-robin: `auto` (127.0.0.1-127.0.0.8
    /// for a loopback target, else the kernel's choice) or a list such as
    /// 127.0.0.1-127.0.0.16,127.0.1.1. More addresses, more local ports.
    #[arg(long, default_value = "auto")]
    pub source_addrs: SourceAddrs,
    /// Run every scenario as N local shard processes (`feedbench load --shard I/N`, each
    /// with its own descriptors and ports, on the load generator's CPUs in turn), started
    /// for one instant and merged exactly; their files go to DIR/shards.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub shards: Option<u32>,
    /// Bearer token for PUT /control/feed on the target.
    #[arg(long, env = "FEEDBENCH_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
    /// Put an emulated link between the clients and the server for every scenario (it
    /// replaces the suite's `matrix.net`): a profile (lan, cable, dsl, 4g, 3g, 2g,
    /// satellite) or keys such as rtt=100ms,jitter=10ms,down=2mbit,up=512kbit,loss=1%,queue=64kb.
    /// Needs root (network namespaces and TUN devices); see netem/PROFILES.md.
    #[arg(long, value_name = "SPEC")]
    pub net: Option<NetSpec>,
    /// The protocol stack: --http, --streams-per-connection and --tls-resumption replace
    /// the suite's values for every scenario; --ca or --insecure is the trust for an https
    /// --target (the embedded server's own certificate is trusted without them).
    #[command(flatten)]
    pub stack: StackArgs,
}

/// The server `feedbench run` (and `feedbench find`) started, and the task that fails the
/// run if it dies.
pub(crate) struct Embedded {
    exe: PathBuf,
    opts: EmbeddedOptions,
    /// Where a TLS server writes the certificate its clients trust.
    cert_file: PathBuf,
    /// Whether every scenario run gets a new server (the suite's `fresh_server`).
    fresh_each: bool,
    net: Option<ClientNet>,
    signals: Arc<RunSignals>,
    source_addrs: SourceAddrs,
    server: Option<EmbeddedServer>,
    watch: Option<tokio::task::JoinHandle<()>>,
}

impl Embedded {
    /// A plaintext loopback server on `cpus`, a fresh one for every run, not yet started.
    pub(crate) fn loopback(
        cpus: Option<Vec<usize>>,
        cert_file: PathBuf,
        signals: Arc<RunSignals>,
        source_addrs: SourceAddrs,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("cannot find the feedbench executable")?,
            opts: EmbeddedOptions::loopback(cpus),
            cert_file,
            fresh_each: true,
            net: None,
            signals,
            source_addrs,
            server: None,
            watch: None,
        })
    }

    /// Starts a server (speaking TLS when `tls`) and its watch; returns its target.
    pub(crate) async fn launch(&mut self, tls: bool) -> anyhow::Result<Target> {
        self.opts.tls_cert_out = tls.then(|| self.cert_file.clone());
        let server = EmbeddedServer::start(&self.exe, self.opts.clone()).await?;
        let mut t = Target::parse(&server.url).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            t.tls == tls,
            "the embedded server announced {} where {} was asked for",
            server.url,
            if tls { "https" } else { "http" }
        );
        t.tls_trust = tls.then(|| Trust::Ca(self.cert_file.clone()));
        t.source_addrs = self.source_addrs.clone();
        t.control_token = self.opts.control_token.clone();
        t.net = self.net.clone();
        let (exited, status, pid, signals) = (
            server.exited.clone(),
            server.status_handle(),
            server.pid,
            self.signals.clone(),
        );
        self.watch = Some(tokio::spawn(async move {
            exited.cancelled().await;
            let how = status
                .lock()
                .ok()
                .and_then(|s| *s)
                .map_or("unknown status".to_string(), |s| s.to_string());
            signals.fail(format!(
                "the embedded server (pid {pid}) exited unexpectedly ({how})"
            ));
        }));
        self.server = Some(server);
        Ok(t)
    }

    /// Stops the server; the watch goes first, so a deliberate stop is not a failure.
    pub(crate) async fn stop(&mut self) {
        if let Some(w) = self.watch.take() {
            w.abort();
        }
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}

impl ServerSwap for Embedded {
    fn fresh_each(&self) -> bool {
        self.fresh_each
    }

    fn next_server(
        &mut self,
        tls: bool,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Target, String>> + Send + '_>>
    {
        Box::pin(async move {
            self.stop().await;
            self.launch(tls).await.map_err(|e| format!("{e:#}"))
        })
    }
}

/// Cancels `signals.interrupt` on Ctrl-C (SIGINT) or SIGTERM.
pub async fn interrupt_on_signal(signals: Arc<RunSignals>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
    }
    signals.interrupt.cancel();
}

/// Runs `feedbench run`; returns the exit code.
pub fn execute(args: RunArgs) -> anyhow::Result<i32> {
    let mut suite = Suite::load(&args.suite)?;
    if let Some(net) = &args.net {
        suite.set_net(net);
    }
    let needs_net = suite.scenarios.iter().any(|s| s.net.is_some());
    anyhow::ensure!(
        !(needs_net && args.shards.is_some_and(|n| n >= 2)),
        "--shards cannot be combined with an emulated link (--net or `matrix.net`): the link \
         lives in this process and shard processes would bypass it"
    );
    let target = match &args.target {
        Some(url) => {
            let mut t = Target::parse(url).map_err(anyhow::Error::msg)?;
            t.tls_trust = args.stack.trust(t.tls)?;
            t.control_token = args.control_token.clone();
            Some(t)
        }
        None => {
            anyhow::ensure!(
                args.stack.ca.is_none() && !args.stack.insecure,
                "--ca and --insecure apply to an https --target; the embedded server's own \
                 certificate is trusted without them"
            );
            None
        }
    };
    suite.set_stack(
        target.as_ref().map(|t| t.tls),
        args.stack.http,
        args.stack.streams_per_connection,
        args.stack.tls_resumption.map(|r| r == OnOff::On),
    );
    for s in &suite.scenarios {
        check_stack(s.stack.http, s.stack.streams_per_connection, s.transport)
            .with_context(|| format!("scenario {}", s.name()))?;
    }
    for note in &suite.notes {
        eprintln!("feedbench: {note}");
    }
    let target = target.map(|mut t| {
        t.source_addrs = args.source_addrs.clone();
        t
    });
    let default_out = args.out.is_none();
    let out_dir = args.out.clone().unwrap_or_else(|| {
        Path::new(RESULTS_ROOT).join(format!("{}-{}", suite.name, compact_utc(SystemTime::now())))
    });
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;

    let (cpus, mut builder) = pinned_runtime_builder(target.is_none() && !args.no_pin)?;
    // After pinning: the emulator's thread shares the load generator's CPUs, never the
    // server's. Dropped after the runtime, which removes the namespace and the devices.
    let net = match needs_net {
        true => Some(ClientNet::new(Arc::new(open_link(&suite)?))),
        false => None,
    };
    let target = target.map(|mut t| {
        t.net = net.clone();
        t
    });
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_suite(
        args,
        suite,
        target,
        out_dir,
        default_out,
        cpus,
        net,
    ))
}

/// Opens the emulated link for a suite, set to its first scenario's spec (each scenario sets
/// its own before it runs).
fn open_link(suite: &Suite) -> anyhow::Result<NetEnv> {
    let first = suite
        .scenarios
        .iter()
        .find_map(|s| s.net.clone())
        .context("no scenario has a link spec")?;
    let env = NetEnv::create(NetOptions {
        spec: first,
        seed: 1,
    })
    .context("cannot create the emulated link")?;
    eprintln!(
        "feedbench: emulated link up: clients in network namespace {}, server side {}",
        env.ns_name(),
        env.host_ip()
    );
    Ok(env)
}

/// A fresh random token for the embedded server's control endpoint, when it listens on the
/// link's address rather than loopback.
fn random_token() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a control token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

async fn run_suite(
    args: RunArgs,
    suite: Suite,
    target: Option<Target>,
    out_dir: PathBuf,
    default_out: bool,
    cpus: CpuSplit,
    net: Option<ClientNet>,
) -> anyhow::Result<i32> {
    let signals = Arc::new(RunSignals::new());
    let interrupts = tokio::spawn(interrupt_on_signal(signals.clone()));
    let (target, mut embedded) = match target {
        Some(t) => {
            if suite.fresh_server {
                eprintln!(
                    "feedbench: suite {} asks for a fresh server per scenario; with --target every scenario runs against {}",
                    suite.name,
                    t.url()
                );
            }
            (t, None)
        }
        None => {
            let exe = std::env::current_exe().context("cannot find the feedbench executable")?;
            let server_cpus = cpus.as_ref().map(|c| c.0.clone());
            // With a link the server listens on its host side (clients reach it through the
            // link, the harness directly); that address is not loopback, so control needs a
            // token, which the child gets in its environment.
            let opts = match &net {
                Some(n) => EmbeddedOptions {
                    cpus: server_cpus,
                    addr: n.server_addr(0),
                    control_token: Some(random_token()?),
                    tls_cert_out: None,
                },
                None => EmbeddedOptions::loopback(server_cpus),
            };
            let mut e = Embedded {
                exe,
                opts,
                cert_file: out_dir.join("server-cert.pem"),
                fresh_each: suite.fresh_server,
                net: net.clone(),
                signals: signals.clone(),
                source_addrs: args.source_addrs.clone(),
                server: None,
                watch: None,
            };
            let first_tls = suite.scenarios.first().is_some_and(|s| s.stack.tls);
            let t = e.launch(first_tls).await?;
            (t, Some(e))
        }
    };
    let results_path = out_dir.join("results.json");
    let cfg = RunConfig {
        suite: suite.name.clone(),
        runs: suite.runs(),
        target,
        results_path: results_path.clone(),
        embedded_server: embedded.is_some(),
        cpu_sets: cpus.as_ref().map(|(s, l)| CpuSets {
            server: Some(format_cpu_list(s)),
            loadgen: Some(format_cpu_list(l)),
        }),
        p99_limit: suite.p99_limit,
        shards: match args.shards {
            Some(count) if count >= 2 => Some(ShardPlan {
                exe: std::env::current_exe().context("cannot find the feedbench executable")?,
                count,
                dir: out_dir.join("shards"),
                cpus: cpus.as_ref().map(|c| c.1.clone()).unwrap_or_default(),
            }),
            _ => None,
        },
    };
    if let Some(plan) = &cfg.shards {
        std::fs::create_dir_all(&plan.dir)
            .with_context(|| format!("cannot create {}", plan.dir.display()))?;
    }
    eprintln!(
        "feedbench: suite {} ({}): {} runs, about {}; results in {}",
        suite.name,
        suite.source,
        cfg.runs.len(),
        humantime::format_duration(std::time::Duration::from_secs(
            suite.estimated_duration().as_secs()
        )),
        out_dir.display()
    );
    // The embedded server is swapped for every run (`fresh_server`) or for a change of
    // `tls` only; an external target is never swapped.
    let fresh = embedded.as_mut().map(|e| e as &mut dyn ServerSwap);
    let results = feedbench_loadgen::run_with(&cfg, &signals, fresh).await;
    if let Some(e) = embedded.as_mut() {
        e.stop().await;
    }
    interrupts.abort();
    let results = results?;
    if default_out || out_dir.parent().is_some_and(|p| p.ends_with(RESULTS_ROOT)) {
        let link = out_dir.parent().unwrap_or(Path::new(".")).join("latest");
        if let Err(e) = update_latest_link(&link, &out_dir) {
            tracing::warn!("cannot update {}: {e}", link.display());
        }
    }
    print!("{}", summary_table(&results));
    eprintln!("results: {}", results_path.display());
    let mut code = exit_code(results.status);
    if !args.no_report {
        // The results are safe on disk; a report that cannot be written fails the run
        // (exit 1) rather than counting as a usage error.
        match crate::report_cmd::write_report_for_run(&results_path, &out_dir) {
            Ok(report) => eprintln!("report: {}", report.display()),
            Err(e) => {
                eprintln!("feedbench: cannot write the report: {e:#}");
                code = 1;
            }
        }
    }
    Ok(code)
}

/// The CPUs split between an embedded server (`.0`) and the load generator (`.1`), when
/// `pin` and the machine has CPUs to split.
pub(crate) type CpuSplit = Option<(Vec<usize>, Vec<usize>)>;

/// Splits the allowed CPUs (only when `pin`) and pins this thread to the load generator's
/// share before the runtime exists, so every runtime thread inherits that set; the embedded
/// server child gets its own set in its pre-exec hook. Returns the split and a runtime
/// builder with one worker per load-generator CPU.
pub(crate) fn pinned_runtime_builder(
    pin: bool,
) -> anyhow::Result<(CpuSplit, tokio::runtime::Builder)> {
    let cpus = if pin {
        split_cpus(&allowed_cpus())
    } else {
        None
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some((_, loadgen_cpus)) = &cpus {
        pin_current_thread(loadgen_cpus).context("cannot pin the load generator")?;
        builder.worker_threads(loadgen_cpus.len());
    }
    Ok((cpus, builder))
}
