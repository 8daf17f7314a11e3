//! `feedbench load`: one scenario against a running server, results to a JSON file.
//!
//! A thin layer over `feedbench_loadgen`: parse and check the flags, build a runtime, run
//! the scenario with Ctrl-C/SIGTERM wired to "stop and save", print the summary.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use feedbench_loadgen::net::ClientNet;
use feedbench_loadgen::runner::{exit_code, summary_table};
use feedbench_loadgen::shard::{Shard, StartAt};
use feedbench_loadgen::source::SourceAddrs;
use feedbench_loadgen::stack::{HttpVersion, StackSpec, WS_OVER_H2};
use feedbench_loadgen::tls::{load_ca, Trust};
use feedbench_loadgen::{RunConfig, RunSignals, ScenarioSpec, Target, Transport};
use feedbench_netem::{NetEnv, NetOptions, NetSpec};

/// Run one scenario against a running server and write its results file.
///
/// Exit codes: 0 complete; 1 the run failed (server died, feed could not be set) or was
/// interrupted (results are saved either way, with that status); 2 usage or input error.
#[derive(clap::Args, Debug)]
pub struct LoadArgs {
    /// The server, e.g. http://127.0.0.1:8080, or https://127.0.0.1:8443 for TLS (then
    /// --ca or --insecure).
    #[arg(long)]
    pub target: String,
    /// Transport: short-poll, long-poll, ws or sse.
    #[arg(long)]
    pub transport: Transport,
    /// Concurrent clients.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Feed rate in events per second (set on the server unless --no-control).
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Length of each event's data filler in bytes (set on the server unless --no-control).
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
    /// Measure window, e.g. 30s.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up before measuring (not recorded), e.g. 2s.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Short-poll interval, e.g. 1s or 100ms (short-poll only). 0 is back-to-back mode, a
    /// throughput test: each client sends its next poll as soon as the answer is in.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
    /// Open a new connection for every short poll.
    #[arg(long)]
    pub no_keepalive: bool,
    /// Don't set the feed with PUT /control/feed (a server whose feed you don't control);
    /// --rate and --payload-bytes then only label the results.
    #[arg(long)]
    pub no_control: bool,
    /// Bearer token for PUT /control/feed.
    #[arg(long, env = "FEEDBENCH_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
    /// Seed for the short-poll clients' phases.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Time over which the clients connect, e.g. 5s (0: as fast as possible).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,
    /// Local addresses the clients connect from, round-robin: `auto` (127.0.0.1-127.0.0.8
    /// for a loopback target, else the kernel's choice) or a list such as
    /// 127.0.0.1-127.0.0.16,127.0.1.1. More addresses, more local ports.
    #[arg(long, default_value = "auto")]
    pub source_addrs: SourceAddrs,
    /// Run shard I of N (0-based) of the scenario: the contiguous block of client indices
    /// [clients·I/N, clients·(I+1)/N), with exactly the seeds, poll phases and ramp slots
    /// one process would give them. `feedbench merge` puts the shards' files together.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Start connecting at this instant of the server's clock (Unix seconds, or RFC 3339
    /// such as 2026-11-30T18:00:00Z; this host's clock is corrected by the offset estimated
    /// over GET /time); the measure window then opens at start + ramp + 2s + warm-up, the
    /// same instant for every shard given the same start.
    #[arg(long, value_name = "TIME")]
    pub start_at: Option<StartAt>,
    /// Threads of the load generator's runtime [default: the CPUs it may run on].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Put an emulated link between the clients and the target: a profile (lan, cable,
    /// dsl, 4g, 3g, 2g, satellite) or keys such as rtt=100ms,down=2mbit,loss=1%. The clients
    /// then connect to the target's port on 198.19.0.1 (the link's host side), so the server
    /// must listen there or on all addresses; the load generator's own requests (/stats,
    /// /control) still go to --target directly. Needs root; see netem/PROFILES.md.
    #[arg(long, value_name = "SPEC")]
    pub net: Option<NetSpec>,
    /// The protocol stack (TLS trust, HTTP version, resumption).
    #[command(flatten)]
    pub stack: StackArgs,
    /// Results file (JSON, schema 2), written atomically.
    #[arg(long)]
    pub out: PathBuf,
}

/// `on` or `off`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnOff {
    /// On.
    On,
    /// Off.
    Off,
}

/// The protocol stack flags `load` and `run` share.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StackArgs {
    /// Trust the server's certificate if it is, or is signed by, a certificate in this PEM
    /// file (https targets; `feedbench serve --tls --cert-out FILE` writes one).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Accept any server certificate (https targets): no protection against another
    /// server answering; only for measuring.
    #[arg(long)]
    pub insecure: bool,
    /// HTTP version of the clients: 1.1 or 2 (short-poll, long-poll, sse; over https by
    /// ALPN, over http as h2c with prior knowledge) [default: 1.1].
    #[arg(long, value_name = "VERSION")]
    pub http: Option<HttpVersion>,
    /// Clients multiplexed on one HTTP/2 connection (--http 2 only): 1 gives every client
    /// its own connection, as separate users have; N > 1 puts clients i..i+N on one, as a
    /// browser's tabs or an edge proxy do [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub streams_per_connection: Option<u32>,
    /// TLS session resumption (https targets): one session store for all clients, so a
    /// reconnecting client (every poll with --no-keepalive) resumes; off: a full handshake
    /// every time [default: on].
    #[arg(long, value_name = "on|off")]
    pub tls_resumption: Option<OnOff>,
}

impl StackArgs {
    /// The trust for a target that speaks TLS when `tls`: --ca (read now, so a bad file is
    /// a usage error naming it) or --insecure, and neither for a plaintext target.
    pub fn trust(&self, tls: bool) -> anyhow::Result<Option<Trust>> {
        if !tls {
            anyhow::ensure!(
                self.ca.is_none() && !self.insecure,
                "--ca and --insecure apply to https targets only"
            );
            anyhow::ensure!(
                self.tls_resumption.is_none(),
                "--tls-resumption applies to https targets only"
            );
            return Ok(None);
        }
        match (&self.ca, self.insecure) {
            (Some(path), _) => {
                load_ca(path)?;
                Ok(Some(Trust::Ca(path.clone())))
            }
            (None, true) => Ok(Some(Trust::Insecure)),
            (None, false) => anyhow::bail!(
                "an https target needs --ca FILE (the server's certificate or its CA, PEM) or \
                 --insecure (accept any certificate)"
            ),
        }
    }

    /// The stack of `transport` over a target that speaks TLS when `tls`.
    pub fn stack(&self, tls: bool, transport: Transport) -> anyhow::Result<StackSpec> {
        let http = self.http.unwrap_or_default();
        let streams_per_connection = self.streams_per_connection.unwrap_or(1);
        check_stack(http, streams_per_connection, transport)?;
        Ok(StackSpec {
            tls,
            http,
            streams_per_connection,
            tls_resumption: self.tls_resumption != Some(OnOff::Off),
        })
    }
}

/// What a stack must satisfy for a transport.
pub fn check_stack(http: HttpVersion, streams: u32, transport: Transport) -> anyhow::Result<()> {
    anyhow::ensure!(
        streams <= 1 || http == HttpVersion::Http2,
        "--streams-per-connection {streams} needs --http 2 (HTTP/1.1 carries one request per connection at a time)"
    );
    anyhow::ensure!(
        !(http == HttpVersion::Http2 && transport == Transport::Ws && !WS_OVER_H2),
        "--http 2 with --transport ws: the load generator does not speak WebSocket over HTTP/2 \
         (RFC 8441 extended CONNECT); ws runs over HTTP/1.1"
    );
    Ok(())
}

/// Checks flag values that clap cannot.
fn spec_from(args: &LoadArgs) -> anyhow::Result<ScenarioSpec> {
    anyhow::ensure!(args.clients >= 1, "--clients must be at least 1");
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be above 0 (a paused feed has nothing to measure)"
    );
    anyhow::ensure!(
        !args.duration.is_zero(),
        "--duration must be longer than 0s"
    );
    if let Some(at) = args.start_at {
        let late = std::time::SystemTime::now().duration_since(at.0).ok();
        anyhow::ensure!(
            late.is_none_or(|l| l < Duration::from_secs(1)),
            "--start-at lies {:.1} s in the past: give every shard a start time far enough ahead",
            late.map_or(0.0, |l| l.as_secs_f64())
        );
    }
    if args.transport == Transport::ShortPoll {
        anyhow::ensure!(
            args.poll_interval.is_zero() || args.poll_interval >= Duration::from_millis(1),
            "--poll-interval must be 0 (back to back) or at least 1ms"
        );
        anyhow::ensure!(
            args.duration >= args.poll_interval * 2,
            "--duration ({}) must be at least twice --poll-interval ({}) so every client polls in the window",
            humantime::format_duration(args.duration),
            humantime::format_duration(args.poll_interval)
        );
    }
    Ok(ScenarioSpec {
        transport: args.transport,
        n_clients: args.clients,
        rate_hz: args.rate,
        payload_bytes: args.payload_bytes,
        poll_interval: args.poll_interval,
        duration: args.duration,
        warmup: args.warmup,
        ramp: args.ramp,
        keepalive: !args.no_keepalive,
        seed: args.seed,
        control: !args.no_control,
        shard: args.shard,
        start_at: args.start_at,
        net: args.net.clone(),
        stack: args
            .stack
            .stack(args.target.starts_with("https://"), args.transport)?,
    })
}

/// Runs `feedbench load`; returns the exit code.
pub fn execute(args: LoadArgs) -> anyhow::Result<i32> {
    let spec = spec_from(&args)?;
    let mut target = Target::parse(&args.target).map_err(anyhow::Error::msg)?;
    target.tls_trust = args.stack.trust(target.tls)?;
    target.control_token = args.control_token.clone();
    target.source_addrs = args.source_addrs.clone();
    anyhow::ensure!(args.threads != Some(0), "--threads must be at least 1");
    anyhow::ensure!(
        !(args.net.is_some() && args.shard.is_some()),
        "--net cannot be combined with --shard: the link lives in one process"
    );
    // Dropped after the runtime, which removes the namespace and the devices.
    let _net = match &args.net {
        Some(spec) => {
            let env = NetEnv::create(NetOptions {
                spec: spec.clone(),
                seed: args.seed,
            })
            .context("cannot create the emulated link")?;
            let net = ClientNet::new(Arc::new(env));
            target.net = Some(net.clone());
            Some(net)
        }
        None => None,
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n);
    }
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let signals = Arc::new(RunSignals::new());
        let watcher = tokio::spawn(crate::run_cmd::interrupt_on_signal(signals.clone()));
        let cfg = RunConfig {
            suite: "load".into(),
            runs: vec![(spec, 0)],
            target,
            results_path: args.out.clone(),
            embedded_server: false,
            cpu_sets: None,
            p99_limit: None,
            shards: None,
        };
        let results = feedbench_loadgen::run(&cfg, &signals).await;
        watcher.abort();
        let results = results?;
        print!("{}", summary_table(&results));
        eprintln!("results: {}", args.out.display());
        Ok(exit_code(results.status))
    })
}
