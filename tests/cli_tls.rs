//! The stack flags of `feedbench load` and `feedbench run` through the built binary: bad
//! combinations exit 2 naming the problem before anything connects, and a suite with
//! `tls = ["off", "on"]` runs against an embedded server started with `--tls`, whose
//! certificate the clients trust.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const EXE: &str = env!("CARGO_BIN_EXE_feedbench");

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("feedbench-cli-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load(args: &[&str]) -> Output {
    Command::new(EXE)
        .arg("load")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Exit code 2 and a stderr that contains `what`.
fn assert_usage_error(out: &Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(what), "{stderr}");
}

#[test]
fn bad_stack_flags_exit_2_naming_the_problem() {
    let dir = scratch("flags");
    let out = dir.join("r.json");
    let out = out.to_str().unwrap();
    // Port 9 (discard) is never contacted: every check comes first.
    let https = ["--target", "https://127.0.0.1:9", "--out", out];
    assert_usage_error(
        &load(&[&https[..], &["--transport", "ws"]].concat()),
        "an https target needs --ca FILE (the server's certificate or its CA, PEM) or --insecure",
    );
    assert_usage_error(
        &load(
            &[
                &https[..],
                &["--transport", "ws", "--ca", "/nonexistent/ca.pem"],
            ]
            .concat(),
        ),
        "--ca /nonexistent/ca.pem: cannot read it",
    );
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    assert_usage_error(
        &load(
            &[
                &https[..],
                &["--transport", "sse", "--ca", not_pem.to_str().unwrap()],
            ]
            .concat(),
        ),
        &format!("--ca {}: holds no PEM certificate", not_pem.display()),
    );
    assert_usage_error(
        &load(
            &[
                &https[..],
                &["--transport", "ws", "--insecure", "--http", "2"],
            ]
            .concat(),
        ),
        "RFC 8441",
    );
    assert_usage_error(
        &load(
            &[
                &https[..],
                &[
                    "--transport",
                    "sse",
                    "--insecure",
                    "--streams-per-connection",
                    "4",
                ],
            ]
            .concat(),
        ),
        "--streams-per-connection 4 needs --http 2",
    );
    let http = [
        "--target",
        "http://127.0.0.1:9",
        "--out",
        out,
        "--transport",
        "sse",
    ];
    assert_usage_error(
        &load(&[&http[..], &["--insecure"]].concat()),
        "--ca and --insecure apply to https targets only",
    );
    assert_usage_error(
        &load(&[&http[..], &["--tls-resumption", "off"]].concat()),
        "--tls-resumption applies to https targets only",
    );
    assert_usage_error(&load(&[&http[..], &["--http", "3"]].concat()), "--http");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_suite_with_tls_runs_against_an_embedded_tls_server() {
    let dir = scratch("suite");
    let suite = dir.join("tls.toml");
    std::fs::write(
        &suite,
        r#"
name = "tls"
repeat = 1
duration = "1s"
warmup = "500ms"
[matrix]
transports = ["ws"]
clients = [2]
rate_hz = [20]
payload_bytes = [64]
tls = ["off", "on"]
"#,
    )
    .unwrap();
    let out_dir = dir.join("out");
    let out = Command::new(EXE)
        .args(["run", "--no-report", "--no-pin", "--suite"])
        .arg(&suite)
        .arg("--out")
        .arg(&out_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = std::fs::read_to_string(out_dir.join("results.json")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&text).unwrap();
    let scenarios = results["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 2);
    let (plain, tls) = (&scenarios[0], &scenarios[1]);
    assert_eq!(plain["name"], "ws-c2-r20-s64");
    assert!(
        plain["params"].get("tls").is_none(),
        "plaintext params as before"
    );
    assert_eq!(plain["stack"]["tls_version"], serde_json::Value::Null);
    assert_eq!(tls["name"], "ws-c2-r20-s64-tls");
    assert_eq!(tls["params"]["tls"], true);
    assert_eq!(tls["params"]["tls_resumption"], true);
    assert_eq!(tls["stack"]["tls_version"], "TLSv1.3");
    assert_eq!(tls["stack"]["alpn"], "http/1.1");
    assert_eq!(tls["status"], "complete");
    let events = tls["bytes"]["events"].as_u64().unwrap();
    assert!(events > 0);
    assert_eq!(
        tls["stack"]["split"]["down"]["tls"].as_u64(),
        Some(22 * events)
    );
    assert!(out_dir.join("server-cert.pem").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
