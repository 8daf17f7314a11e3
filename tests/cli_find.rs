//! End-to-end tests of `feedbench find` through the built binary against its embedded
//! server: the search's structure and accounting with a tiny budget (which probes, how many
//! runs each, which scenario is which, what stopped it), the files it keeps, and bad flags
//! refused with exit code 2. The SLOs are chosen so every verdict is certain on any
//! machine (p99 within 30 s always holds; a p50 of 1 µs never does): no timing is asserted.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_feedbench");

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("feedbench-find-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `feedbench find` with small, fast runs and `args`.
fn find(out: &Path, args: &[&str]) -> Output {
    Command::new(EXE)
        .args(["find", "--no-pin", "--duration", "1s", "--warmup", "0s"])
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn values(probes: &Value) -> Vec<u64> {
    probes
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_u64().unwrap())
        .collect()
}

#[test]
fn passes_grow_until_the_runs_budget_and_every_run_is_kept() {
    let dir = scratch("budget");
    let out = dir.join("out");
    // Probes 2 and 4 pass with 2 runs each; the next (8) would need runs 5 and 6 of 4.
    let o = find(
        &out,
        &[
            "--transport",
            "ws",
            "--slo",
            "p99=30s",
            "--start",
            "2",
            "--max",
            "64",
            "--repeats",
            "2",
            "--max-runs",
            "4",
            "--max-time",
            "5m",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("ws: capacity ≥ 4 clients (run_budget after 4 runs)"),
        "{stdout}"
    );
    let results = read(&out.join("results.json"));
    let capacity = &results["capacity"];
    assert_eq!(read(&out.join("capacity.json")), *capacity);
    assert_eq!(capacity["method"], "search");
    assert_eq!(capacity["repeats"], 2);
    assert_eq!(capacity["budget"]["runs_used"], 4);
    let ws = &capacity["transports"][0];
    assert_eq!(ws["transport"], "ws");
    assert_eq!(values(&ws["probes"]), [2, 4]);
    assert_eq!(ws["probes"][0]["scenarios"], serde_json::json!([0, 1]));
    assert_eq!(ws["probes"][1]["scenarios"], serde_json::json!([2, 3]));
    assert_eq!(
        (ws["last_pass"].as_u64(), ws["first_fail"].as_u64()),
        (Some(4), None)
    );
    assert_eq!(
        (ws["stop"].as_str(), ws["runs"].as_u64()),
        (Some("run_budget"), Some(4))
    );
    // Each probe's runs are scenarios of its client count, repeats 0 and 1, fully measured.
    let scenarios = results["scenarios"].as_array().unwrap();
    let shape: Vec<(u64, u64)> = scenarios
        .iter()
        .map(|s| {
            (
                s["params"]["clients"].as_u64().unwrap(),
                s["repeat"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shape, [(2, 0), (2, 1), (4, 0), (4, 1)]);
    for s in scenarios {
        assert_eq!(s["status"], "complete");
        assert_eq!(s["events"]["missed"], 0, "{}", s["name"]);
        assert!(s["events"]["delivered"].as_u64().unwrap() > 0);
    }
    // The file is valid, and the report draws the capacity.
    let v = Command::new(EXE)
        .arg("validate")
        .arg(out.join("results.json"))
        .output()
        .unwrap();
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    assert!(out.join("capacity-clients.svg").is_file());
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("| ws | 4 | – | – | – | run_budget | 2 | 4 |"),
        "{md}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn fails_shrink_to_the_minimum_and_a_failing_run_ends_its_probe() {
    let dir = scratch("fail");
    let out = dir.join("out");
    // p50 within 1 µs never holds: 4, 2 and 1 fail, each after its first run.
    let o = find(
        &out,
        &[
            "--transport",
            "sse",
            "--slo",
            "p50=1us",
            "--start",
            "4",
            "--repeats",
            "2",
            "--max-runs",
            "10",
            "--no-report",
        ],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let results = read(&out.join("results.json"));
    let sse = &results["capacity"]["transports"][0];
    assert_eq!(values(&sse["probes"]), [4, 2, 1]);
    assert_eq!(sse["last_pass"], Value::Null);
    assert_eq!(sse["first_fail"], 1);
    assert_eq!(sse["stop"], "fails_at_minimum");
    assert_eq!(sse["runs"], 3, "one run per failing probe");
    let reason = &sse["first_fail_reasons"][0];
    assert_eq!(
        (
            reason["kind"].as_str(),
            reason["percentile"].as_str(),
            reason["limit_us"].as_u64()
        ),
        (Some("latency"), Some("p50"), Some(1))
    );
    assert!(reason["measured_us"].as_u64().unwrap() > 1);
    assert_eq!(results["scenarios"].as_array().unwrap().len(), 3);
    assert!(!out.join("index.html").exists(), "--no-report");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_flags_exit_2_naming_the_problem() {
    let dir = scratch("bad");
    let out = dir.join("out");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--transport", "ws", "--slo", "p95=100ms"],
            "unknown percentile \"p95\"",
        ),
        (
            &["--transport", "ws", "--slo", "p99"],
            "is not PERCENTILE=DURATION",
        ),
        (
            &["--transport", "ws", "--slo", "p99=soon"],
            "\"soon\" is not a duration",
        ),
        (
            &["--transport", "ws", "--slo", "p99=1ms", "--slo", "p99=2ms"],
            "gives p99 twice",
        ),
        (
            &["--transport", "websocket", "--slo", "p99=1ms"],
            "unknown transport \"websocket\"",
        ),
        (
            &[
                "--transport",
                "ws",
                "--slo",
                "p99=1ms",
                "--start",
                "100",
                "--max",
                "10",
            ],
            "--max (10) must be at least --start (100)",
        ),
        (
            &["--transport", "ws", "--slo", "p99=1ms", "--growth", "1"],
            "--growth must be above 1",
        ),
        (
            &["--transport", "ws", "--slo", "p99=1ms", "--repeats", "0"],
            "--repeats must be at least 1",
        ),
        (
            &["--transport", "ws", "--slo", "p99=1ms", "--confirm", "101"],
            "--confirm must be at most 100 runs (it is 101)",
        ),
        (
            &[
                "--transport",
                "ws",
                "--slo",
                "p99=1ms",
                "--repeats",
                "3",
                "--max-runs",
                "2",
            ],
            "--max-runs (2) must allow one probe",
        ),
        (
            &[
                "--transport",
                "ws",
                "--slo",
                "p99=1ms",
                "--vary",
                "rate",
                "--max",
                "2000000",
            ],
            "over the server's highest rate",
        ),
        (
            &["--transport", "ws", "--slo", "p99=1ms", "--ramp", "slowly"],
            "--ramp: \"slowly\" is not auto",
        ),
        (
            &[
                "--transport",
                "ws",
                "--slo",
                "p99=1ms",
                "--target",
                "https://127.0.0.1:1",
            ],
            "plaintext http:// targets",
        ),
        (
            &[
                "--transport",
                "all",
                "--slo",
                "p99=1ms",
                "--poll-interval",
                "1s",
                "--duration",
                "1s",
            ],
            "at least twice --poll-interval",
        ),
        (
            &["--transport", "ws", "--slo", "p99=1ms", "--resolution=-5%"],
            "must be 0 or more",
        ),
        (&["--transport", "ws"], "--slo"),
    ];
    for (args, expected) in cases {
        let o = Command::new(EXE)
            .arg("find")
            .args(*args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!out.exists(), "{args:?}: nothing is written");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
