//! `feedbench run --shards N`: each scenario run as N local shard processes, merged.
//!
//! The single-machine case of the distributed mechanism: every shard is its own
//! `feedbench load --shard I/N --start-at T` process (its own descriptors and ports, its
//! own CPU where there are enough), all started for one wall-clock instant, and their
//! results files are merged exactly (`feedbench_results::merge`) into the scenario's one
//! result. The control token reaches the children through the environment, never their
//! command lines. Ctrl-C is passed on to the children, which save what they measured.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use tokio::process::{Child, Command};

use crate::client::Target;
use crate::results::{Results, ScenarioResult};
use crate::scenario::{RunSignals, ScenarioSpec, Transport};
use crate::shard::{Shard, StartAt};
use crate::tls::Trust;

/// How far ahead of now the shards' common start lies: long enough for N processes to
/// start, estimate their clock offset and get ready.
const START_LEAD: Duration = Duration::from_millis(2500);
/// How long the shards may take beyond the scenario's own estimate.
const FINISH_SLACK: Duration = Duration::from_secs(60);
/// How long interrupted shards get to save their results before they are killed.
const INTERRUPT_GRACE: Duration = Duration::from_secs(15);

/// How a suite's scenario runs are split into local shard processes.
#[derive(Debug, Clone)]
pub struct ShardPlan {
    /// The `feedbench` executable the shards run.
    pub exe: PathBuf,
    /// Shards per scenario run.
    pub count: u32,
    /// Where the shards' results files and logs go.
    pub dir: PathBuf,
    /// CPUs the shards may use, handed out round-robin (empty: no pinning).
    pub cpus: Vec<usize>,
}

/// The `feedbench load` arguments of shard `shard` of `spec` (no secrets).
pub fn shard_args(
    target: &Target,
    spec: &ScenarioSpec,
    shard: Shard,
    start: StartAt,
    out: &Path,
) -> Vec<String> {
    let d = |d: Duration| format!("{}ms", d.as_millis());
    let mut args = vec![
        "load".to_string(),
        "--target".into(),
        target.url(),
        "--transport".into(),
        spec.transport.as_str().into(),
        "--clients".into(),
        spec.n_clients.to_string(),
        "--rate".into(),
        spec.rate_hz.to_string(),
        "--payload-bytes".into(),
        spec.payload_bytes.to_string(),
        "--duration".into(),
        d(spec.duration),
        "--warmup".into(),
        d(spec.warmup),
        "--ramp".into(),
        d(spec.ramp),
        "--seed".into(),
        spec.seed.to_string(),
        "--source-addrs".into(),
        target.source_addrs.to_string(),
        "--shard".into(),
        shard.to_string(),
        "--start-at".into(),
        format!(
            "{}.{:09}",
            start.unix_ns() / 1_000_000_000,
            start.unix_ns() % 1_000_000_000
        ),
        "--threads".into(),
        "1".into(),
        "--out".into(),
        out.display().to_string(),
    ];
    if spec.transport == Transport::ShortPoll {
        args.extend(["--poll-interval".into(), d(spec.poll_interval)]);
    }
    if !spec.keepalive {
        args.push("--no-keepalive".into());
    }
    if !spec.control {
        args.push("--no-control".into());
    }
    // The stack: HTTP version and streams always, so a shard's scenario is the parent's;
    // trust and resumption only over TLS (the target's https says TLS).
    args.extend([
        "--http".into(),
        spec.stack.http.as_str().into(),
        "--streams-per-connection".into(),
        spec.stack.streams_per_connection.to_string(),
    ]);
    if target.tls {
        match &target.tls_trust {
            Some(Trust::Ca(path)) => args.extend(["--ca".into(), path.display().to_string()]),
            Some(Trust::Insecure) => args.push("--insecure".into()),
            None => {}
        }
        let on = if spec.stack.tls_resumption {
            "on"
        } else {
            "off"
        };
        args.extend(["--tls-resumption".into(), on.into()]);
    }
    args
}

/// Runs one scenario run as `plan.count` shard processes and merges their files.
pub async fn run(
    plan: &ShardPlan,
    target: &Target,
    spec: &ScenarioSpec,
    repeat: u32,
    signals: &RunSignals,
) -> Result<ScenarioResult, String> {
    let start = StartAt(SystemTime::now() + START_LEAD);
    let stem = format!("{}-r{repeat}", spec.name());
    let mut children = Vec::new();
    let mut files = Vec::new();
    for index in 0..plan.count {
        let shard = Shard {
            index,
            count: plan.count,
        };
        let out = plan.dir.join(format!("{stem}-shard{index}.json"));
        let log = plan.dir.join(format!("{stem}-shard{index}.log"));
        let child = spawn(plan, target, spec, shard, start, &out, &log)?;
        children.push(child);
        files.push(out);
    }
    let bound = START_LEAD + spec.estimated_duration() + FINISH_SLACK;
    wait_all(&mut children, bound, signals).await;
    let mut loaded = Vec::new();
    let mut missing = Vec::new();
    for (i, f) in files.iter().enumerate() {
        match Results::load(f) {
            Ok(r) => loaded.push((f.display().to_string(), r)),
            Err(e) => missing.push(format!("shard {i}: {e}")),
        }
    }
    let merged = feedbench_results::merge(&loaded).map_err(|e| e.to_string())?;
    let mut scenario = merged
        .results
        .scenarios
        .into_iter()
        .next()
        .ok_or_else(|| "no shard wrote a result".to_string())?;
    for m in missing {
        scenario.warnings.push(format!("no results from {m}"));
    }
    // A shard that failed (its server died, say) fails the run as a single process would.
    if scenario.status == crate::results::Status::Failed {
        signals.fail(
            scenario
                .status_message
                .clone()
                .unwrap_or_else(|| format!("a shard of {} failed", spec.name())),
        );
    }
    Ok(scenario)
}

fn spawn(
    plan: &ShardPlan,
    target: &Target,
    spec: &ScenarioSpec,
    shard: Shard,
    start: StartAt,
    out: &Path,
    log: &Path,
) -> Result<Child, String> {
    let log_file =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut cmd = Command::new(&plan.exe);
    cmd.args(shard_args(target, spec, shard, start, out))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .kill_on_drop(true);
    match &target.control_token {
        Some(token) => cmd.env("FEEDBENCH_CONTROL_TOKEN", token),
        None => cmd.env_remove("FEEDBENCH_CONTROL_TOKEN"),
    };
    if !plan.cpus.is_empty() {
        let cpu = plan.cpus[shard.index as usize % plan.cpus.len()];
        let set = crate::sysinfo::cpu_set(&[cpu]);
        // SAFETY: runs in the forked child before exec; one raw system call on a set
        // prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                rustix::thread::sched_setaffinity(None, &set)?;
                Ok(())
            });
        }
    }
    cmd.spawn()
        .map_err(|e| format!("cannot start shard {shard} ({}): {e}", plan.exe.display()))
}

/// Waits for every child, at most `bound`; on an interrupt, passes SIGINT on and gives them
/// [`INTERRUPT_GRACE`] to save; kills whatever is left.
async fn wait_all(children: &mut [Child], bound: Duration, signals: &RunSignals) {
    let all = async {
        for c in children.iter_mut() {
            let _ = c.wait().await;
        }
    };
    let interrupted = tokio::select! {
        _ = all => return,
        _ = tokio::time::sleep(bound) => false,
        _ = signals.aborted() => true,
    };
    if interrupted {
        for c in children.iter() {
            if let Some(pid) = c
                .id()
                .and_then(|p| rustix::process::Pid::from_raw(p as i32))
            {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
            }
        }
        let grace = async {
            for c in children.iter_mut() {
                let _ = c.wait().await;
            }
        };
        if tokio::time::timeout(INTERRUPT_GRACE, grace).await.is_ok() {
            return;
        }
    }
    for c in children.iter_mut() {
        let _ = c.kill().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_arguments_reproduce_the_scenario() {
        let target = Target::parse("http://127.0.0.1:8080").unwrap();
        let spec = ScenarioSpec {
            transport: Transport::ShortPoll,
            n_clients: 1000,
            rate_hz: 2.5,
            payload_bytes: 64,
            poll_interval: Duration::from_millis(500),
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            ramp: Duration::ZERO,
            keepalive: false,
            seed: 9,
            control: true,
            shard: None,
            start_at: None,
            net: None,
            stack: crate::stack::StackSpec::default(),
        };
        let start = StartAt(SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_500_000_250));
        let args = shard_args(
            &target,
            &spec,
            Shard { index: 2, count: 4 },
            start,
            Path::new("/x/o.json"),
        );
        let joined = args.join(" ");
        assert_eq!(
            joined,
            "load --target http://127.0.0.1:8080 --transport short-poll --clients 1000 --rate 2.5 \
             --payload-bytes 64 --duration 5000ms --warmup 1000ms --ramp 0ms --seed 9 \
             --source-addrs auto --shard 2/4 --start-at 1764500000.250000000 --threads 1 \
             --out /x/o.json --poll-interval 500ms --no-keepalive --http 1.1 \
             --streams-per-connection 1"
        );
        assert!(!joined.contains("token"));

        // Over TLS: trust and resumption go along.
        let mut tls_target = Target::parse("https://127.0.0.1:8443").unwrap();
        tls_target.tls_trust = Some(Trust::Ca("/x/cert.pem".into()));
        let mut tls_spec = spec.clone();
        tls_spec.stack.tls = true;
        tls_spec.stack.tls_resumption = false;
        let args = shard_args(
            &tls_target,
            &tls_spec,
            Shard { index: 0, count: 2 },
            start,
            Path::new("/x/o.json"),
        );
        assert!(args
            .join(" ")
            .starts_with("load --target https://127.0.0.1:8443 "));
        assert!(args.join(" ").ends_with(
            "--http 1.1 --streams-per-connection 1 --ca /x/cert.pem --tls-resumption off"
        ));
    }
}
