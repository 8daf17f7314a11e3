//! `feedbench net`: run any command on the client side of an emulated link.
//!
//! The link joins a new network namespace (where the command runs) to the namespace
//! `feedbench net` was started in (the host side), through the same packet-level emulator
//! `load --net` and `run --net` use. A server already running here and listening on all
//! addresses is reachable from the command at `$FEEDBENCH_NET_HOST` (198.19.0.1). At the
//! end the link's counts go to stderr (and as JSON to `--counts-out`), and the namespace
//! and devices are removed, also on Ctrl-C; a killed run's leftovers are removed by the
//! next one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use feedbench_loadgen::net::{figures, ClientNet};
use feedbench_netem::{NetEnv, NetOptions, NetSpec};

/// How long the command may take to exit after it was sent SIGTERM on Ctrl-C.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// What the drain waits beyond two RTTs for the last packets (the forwarder's own delay,
/// the peer's answer to a FIN).
const DRAIN_SLACK: Duration = Duration::from_millis(200);
/// The longest drain, whatever the RTT.
const DRAIN_LIMIT: Duration = Duration::from_secs(25);

/// Run a command on the client side of an emulated link.
///
/// The command runs in a new network namespace whose only way out is the emulated link to
/// this namespace; `FEEDBENCH_NET_HOST` (198.19.0.1) is this side's address, and
/// `FEEDBENCH_NET_CLIENT_ADDRS` the range of client addresses the command may bind to (each
/// gets its own access link; with a `mix(...)` spec, its class). Needs root.
///
/// Exit codes: the command's own (128 + N if it died of signal N); 2 a usage error, a bad
/// spec, or a link that could not be created (not root, no /dev/net/tun), with nothing
/// left behind.
#[derive(clap::Args, Debug)]
pub struct NetArgs {
    /// The link: a profile (lan, cable, dsl, 4g, 3g, 2g, satellite) or keys such as
    /// rtt=100ms,jitter=10ms,down=2mbit,up=512kbit,loss=1%,queue=64kb; see netem/PROFILES.md.
    #[arg(long, value_name = "SPEC")]
    pub link: NetSpec,
    /// Seed of the link's random loss and jitter.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the link's counts as JSON (the results' `net` block) to this file.
    #[arg(long, value_name = "FILE")]
    pub counts_out: Option<PathBuf>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Runs `feedbench net`; returns the command's exit code.
pub fn execute(args: NetArgs) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args))
}

/// Watches Ctrl-C and SIGTERM before the link exists, so a signal during set-up still
/// ends in the orderly way (the command stopped, the link removed), then runs the command.
async fn run(args: NetArgs) -> anyhow::Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let stop = Stop {
        int: signal(SignalKind::interrupt()).context("cannot watch SIGINT")?,
        term: signal(SignalKind::terminate()).context("cannot watch SIGTERM")?,
    };
    let env = NetEnv::create(NetOptions {
        spec: args.link.clone(),
        seed: args.seed,
    })
    .context("cannot create the emulated link")?;
    let net = ClientNet::new(Arc::new(env));
    eprintln!(
        "feedbench net: link {} up; {} runs in namespace {}; FEEDBENCH_NET_HOST={}",
        args.link,
        args.command[0],
        net.env().ns_name(),
        net.env().host_ip()
    );
    let start = net.counters();
    let code = run_command(&net, &args.command, stop).await?;
    drain(&net, &args.link).await;
    let end = net.counters();
    let block = figures(&args.link, 1, None, &start, &end);
    eprintln!(
        "feedbench net: down {} packets / {} bytes, up {} packets / {} bytes; TCP retransmits \
         down {} up {}; drops by loss {}, by queue {}; emulator CPU {:.2} s",
        block.down.packets,
        block.down.bytes,
        block.up.packets,
        block.up.bytes,
        block.down.tcp_retransmits,
        block.up.tcp_retransmits,
        block.down.drops_loss + block.up.drops_loss,
        block.down.drops_queue + block.up.drops_queue,
        block.emulator.cpu_s
    );
    if let Some(path) = &args.counts_out {
        feedbench_results::file::write_json_atomic(path, &block)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(code)
}

/// The signals that stop the command.
struct Stop {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

/// Runs the command in the link's namespace until it exits; on Ctrl-C or SIGTERM it is sent
/// SIGTERM, then killed after [`STOP_GRACE`].
async fn run_command(net: &ClientNet, command: &[String], mut stop: Stop) -> anyhow::Result<i32> {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = net.env().command(&command[0]);
    cmd.args(&command[1..]);
    // SAFETY: the closure runs in the forked child before exec and makes one raw system
    // call (prctl through rustix: no allocation, no locks). If this process is killed
    // outright, the command gets SIGTERM rather than running on behind a removed link.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))
                .map_err(std::io::Error::from)
        });
    }
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", command[0]))?;
    let status = tokio::select! {
        status = child.wait() => status,
        _ = stop.int.recv() => stop_child(&mut child).await,
        _ = stop.term.recv() => stop_child(&mut child).await,
    }
    .with_context(|| format!("cannot wait for {}", command[0]))?;
    use std::os::unix::process::ExitStatusExt as _;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Keeps the link up until every packet it holds has been delivered (or dropped), so the
/// command's last segments (a FIN, the final ACKs) reach the other side before the
/// namespace goes: without this, a peer here would wait forever for a close that died
/// with the link. Bounded by two RTTs of the slowest class plus [`DRAIN_SLACK`].
async fn drain(net: &ClientNet, spec: &NetSpec) {
    let deadline = std::time::Instant::now()
        + (feedbench_loadgen::net::max_rtt(spec) * 2 + DRAIN_SLACK).min(DRAIN_LIMIT);
    let mut idle_checks = 0;
    while std::time::Instant::now() < deadline && idle_checks < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let c = net.counters();
        let held = |d: &feedbench_netem::DirCounters| {
            d.packets.saturating_sub(
                d.delivered_packets + d.drops_loss + d.drops_queue + d.drops_overflow,
            )
        };
        idle_checks = if held(&c.down) + held(&c.up) == 0 {
            idle_checks + 1
        } else {
            0
        };
    }
}

/// Sends SIGTERM, waits [`STOP_GRACE`], then kills.
async fn stop_child(
    child: &mut tokio::process::Child,
) -> std::io::Result<std::process::ExitStatus> {
    if let Some(pid) = child
        .id()
        .and_then(|p| rustix::process::Pid::from_raw(p as i32))
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            child.kill().await?;
            child.wait().await
        }
    }
}
