//! End-to-end tests of `feedbench run` and `feedbench load` through the built binary:
//! Ctrl-C saves an `interrupted` results file, a killed server fails the run, `load`
//! measures a `feedbench serve` process, and bad suites are refused with exit code 2.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_feedbench");

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("feedbench-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A one-scenario suite long enough to be interrupted mid-measurement.
fn long_suite(dir: &Path) -> PathBuf {
    let path = dir.join("long.toml");
    std::fs::write(
        &path,
        r#"
name = "long"
repeat = 1
duration = "60s"
warmup = "0s"
[matrix]
transports = ["ws"]
clients = [3]
rate_hz = [20]
payload_bytes = [64]
"#,
    )
    .unwrap();
    path
}

fn spawn_run(suite: &Path, out: &Path) -> Child {
    Command::new(EXE)
        .args(["run", "--no-report", "--no-pin", "--suite"])
        .arg(suite)
        .arg("--out")
        .arg(out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls `cond` every 20 ms until it holds; panics after `limit`.
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("feedbench did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The child processes of `pid`.
fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Sockets open in process `pid`.
fn sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Starts `feedbench run` on the long suite and waits until the embedded server has its
/// listener, the load generator's three own connections (/stats, the monitor, the feed
/// reader that opens once every client is ready) and the three clients; returns (run,
/// server pid). Seven sockets cannot be reached with fewer than three clients: the clock
/// estimate's connection is closed before any client starts, and the feed reader only
/// connects after all of them.
fn start_long_run(dir: &Path, out: &Path) -> (Child, u32) {
    let suite = long_suite(dir);
    let run = spawn_run(&suite, out);
    let mut server = 0;
    wait_until(
        "the embedded server and its clients",
        Duration::from_secs(20),
        || {
            server = children(run.id()).first().copied().unwrap_or(0);
            server != 0 && sockets(server) >= 1 + 3 + 3
        },
    );
    (run, server)
}

fn read_results(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let errors = feedbench_results::validate(&value);
    assert!(errors.is_empty(), "{errors:#?}");
    value
}

#[test]
fn ctrl_c_saves_an_interrupted_run() {
    let dir = scratch("interrupt");
    let out = dir.join("bench-results").join("run1");
    let (mut run, server) = start_long_run(&dir, &out);
    signal(run.id(), "-INT");
    let status = wait_exit(&mut run, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
    let results = read_results(&out.join("results.json"));
    assert_eq!(results["status"], "interrupted");
    assert_eq!(results["embedded_server"], true);
    let scenario = &results["scenarios"][0];
    assert_eq!(scenario["status"], "interrupted");
    assert!(scenario["measured_s"].as_f64().unwrap() < 60.0);
    assert_eq!(scenario["connections"]["opened"], 3);
    // The embedded server was stopped with the run.
    wait_until("the server to exit", Duration::from_secs(10), || {
        !Path::new(&format!("/proc/{server}")).exists()
    });
    let latest = std::fs::read_link(dir.join("bench-results").join("latest")).unwrap();
    assert_eq!(latest, PathBuf::from("run1"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn killing_the_server_fails_the_run() {
    let dir = scratch("kill");
    let out = dir.join("out");
    let (mut run, server) = start_long_run(&dir, &out);
    signal(server, "-KILL");
    let status = wait_exit(&mut run, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
    let results = read_results(&out.join("results.json"));
    assert_eq!(results["status"], "failed");
    let message = results["status_message"].as_str().unwrap();
    assert!(message.contains("server"), "{message}");
    let scenario = &results["scenarios"][0];
    assert_eq!(scenario["status"], "failed");
    assert!(
        !scenario["errors"].as_object().unwrap().is_empty(),
        "{}",
        scenario["errors"]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn load_measures_a_served_feed() {
    let dir = scratch("load");
    let mut serve = Command::new(EXE)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(serve.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("feedbench listening on ")
        .unwrap()
        .to_string();
    let out = dir.join("sse.json");
    let load = Command::new(EXE)
        .args([
            "load",
            "--target",
            &url,
            "--transport",
            "sse",
            "--clients",
            "2",
            "--rate",
            "20",
        ])
        .args(["--duration", "1s", "--warmup", "200ms", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    signal(serve.id(), "-TERM");
    assert_eq!(
        wait_exit(&mut serve, Duration::from_secs(10)).code(),
        Some(0)
    );
    assert_eq!(
        load.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let stdout = String::from_utf8_lossy(&load.stdout);
    assert!(
        stdout.contains("sse-c2-r20-s64") && stdout.contains("status: complete"),
        "{stdout}"
    );
    let results = read_results(&out);
    assert_eq!(results["suite"], "load");
    let s = &results["scenarios"][0];
    assert_eq!(s["events"]["missed"], 0);
    assert_eq!(s["events"]["delivered"], s["events"]["expected"]);
    assert!(s["events"]["delivered"].as_u64().unwrap() >= 2 * 15);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_exits_2_naming_the_problem() {
    let dir = scratch("bad");
    let suite = dir.join("bad.toml");
    std::fs::write(&suite, "duration = \"1s\"\nwarmup = \"0s\"\n[matrix]\ntransports = [\"ws\"]\nclients = [0]\nrate_hz = [1]\npayload_bytes = [64]\n").unwrap();
    let out = Command::new(EXE)
        .args(["run", "--no-report", "--suite"])
        .arg(&suite)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("feedbench: ")
            && stderr.contains("bad.toml")
            && stderr.contains("matrix.clients"),
        "{stderr}"
    );
    let out = Command::new(EXE)
        .args([
            "load",
            "--target",
            "ftp://x",
            "--transport",
            "ws",
            "--out",
            "/dev/null",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs a two-repeat suite (fresh server per run or not) and returns, per scenario run,
/// the window's first and last seq and whether it warns that the server was not fresh
/// enough to measure memory per connection.
fn seq_windows(name: &str, fresh: bool) -> Vec<(u64, u64, bool)> {
    let dir = scratch(name);
    let suite = dir.join("s.toml");
    std::fs::write(
        &suite,
        format!(
            r#"
name = "fresh"
repeat = 2
duration = "2s"
warmup = "200ms"
fresh_server = {fresh}
[matrix]
transports = ["ws"]
clients = [20]
rate_hz = [20]
payload_bytes = [16]
"#
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let mut child = spawn_run(&suite, &out);
    assert!(wait_exit(&mut child, Duration::from_secs(60)).success());
    let results = read_results(&out.join("results.json"));
    assert_eq!(results["status"], "complete");
    let windows = results["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["events"]["missed"], 0);
            let seq = |k: &str| s["events"][k].as_u64().unwrap();
            let warned = s["warnings"].as_array().unwrap().iter().any(|w| {
                w.as_str()
                    .unwrap()
                    .starts_with("no server memory per connection")
            });
            // 20 clients are too few for the figure (under MEMORY_MIN_CLIENTS): never set.
            assert!(s["server"]["rss_per_connection_bytes"].is_null(), "{s}");
            (seq("first_seq"), seq("last_seq"), warned)
        })
        .collect();
    let _ = std::fs::remove_dir_all(&dir);
    windows
}

#[test]
fn fresh_server_restarts_the_feed_for_every_run() {
    // One server: the second run's window starts after the first one's ends.
    let shared = seq_windows("shared", false);
    assert_eq!(shared.len(), 2);
    assert!(shared[1].0 > shared[0].1, "{shared:?}");
    // Memory per connection only from a server that served nobody before: the second run
    // finds the first run's 20 clients in the server's `accepted` and says why it has none.
    assert!(!shared[0].2 && shared[1].2, "{shared:?}");
    // A fresh server per run: the feed starts again from seq 1, so the second window's
    // seqs are as young as the first's (about 20/s × the warm-up), far below where the
    // first run ended (20/s × 2.2 s and more).
    let fresh = seq_windows("fresh", true);
    assert_eq!(fresh.len(), 2);
    assert!(fresh[1].0 < fresh[0].1, "{fresh:?}");
    assert!(fresh[0].1 >= 40 && fresh[1].0 < 30, "{fresh:?}");
    assert!(!fresh[0].2 && !fresh[1].2, "{fresh:?}");
}

#[test]
fn memory_per_connection_is_measured_at_a_thousand_clients() {
    let dir = scratch("memory");
    let suite = dir.join("m.toml");
    std::fs::write(
        &suite,
        r#"
name = "memory"
repeat = 1
duration = "1s"
warmup = "200ms"
ramp = "500ms"
[matrix]
transports = ["sse"]
clients = [1000]
rate_hz = [5]
payload_bytes = [16]
"#,
    )
    .unwrap();
    let out = dir.join("out");
    let mut child = spawn_run(&suite, &out);
    assert!(wait_exit(&mut child, Duration::from_secs(90)).success());
    let results = read_results(&out.join("results.json"));
    let s = &results["scenarios"][0];
    assert_eq!(s["status"], "complete");
    assert_eq!(s["connections"]["peak_open"], 1000);
    // An idle SSE stream costs the server about 3 KiB (scripts/conn-memory.sh); anything
    // from 1 to 16 KiB per connection is a measurement, outside it something is wrong.
    let per_conn = s["server"]["rss_per_connection_bytes"].as_f64().unwrap();
    assert!((1024.0..16384.0).contains(&per_conn), "{per_conn}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shards_run_as_processes_and_merge_into_one_result() {
    let dir = scratch("shards");
    let suite = dir.join("shards.toml");
    std::fs::write(
        &suite,
        r#"
name = "shards"
repeat = 1
duration = "2s"
warmup = "1s"
[matrix]
transports = ["ws", "short-poll"]
clients = [30]
rate_hz = [20]
payload_bytes = [64]
poll_interval = ["500ms"]
"#,
    )
    .unwrap();
    let out = dir.join("out");
    let status = Command::new(EXE)
        .args(["run", "--no-report", "--shards", "3", "--suite"])
        .arg(&suite)
        .arg("--out")
        .arg(&out)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let r = read_results(&out.join("results.json"));
    assert_eq!(r["status"], "complete");
    for s in r["scenarios"].as_array().unwrap() {
        let e = &s["events"];
        let published = e["published"].as_u64().unwrap();
        // Every client of every shard, accounted once: 30 clients in blocks of 10.
        assert!(published > 0, "{e}");
        assert_eq!(e["expected"].as_u64(), Some(published * 30), "{e}");
        assert_eq!(e["delivered"], e["expected"], "{e}");
        assert_eq!(e["missed"], 0, "{e}");
        assert_eq!(s["connections"]["target"], 30);
        assert!(s["shard"].is_null(), "a merged scenario is no shard: {s}");
        assert_eq!(s["latency_us"]["count"].as_u64(), Some(published * 30));
        // Three shard processes per scenario, each with its own file and a third of the
        // clients.
        let name = s["name"].as_str().unwrap();
        for i in 0..3 {
            let f = out.join("shards").join(format!("{name}-r0-shard{i}.json"));
            let shard = read_results(&f);
            let block = &shard["scenarios"][0]["shard"];
            assert_eq!(block["index"], i, "{block}");
            assert_eq!(block["clients"], 10, "{block}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
