//! End-to-end tests of emulated links through the built binary: `feedbench net` runs a
//! command behind a link with the RTT it was given and counts its packets, `feedbench run`
//! measures a suite through a link (latency shifted by one transit, socket bytes unchanged,
//! the `net` block filled), bad specs are refused with exit 2, and nothing is left behind.
//!
//! Creating a link needs root. As an ordinary user each test that needs one checks instead
//! that the refusal is the clear "needs root" error with exit 2 and nothing created: the
//! behaviour an ordinary user gets.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_feedbench");

/// One link per machine at a time (the emulator holds a lock): tests that make one take
/// this first.
static LINK: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("feedbench-net-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn feedbench(args: &[&str]) -> Output {
    Command::new(EXE).args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Namespaces and TUN devices the emulator made (`fbnet-*`, `fbh*`) that still exist.
fn leftovers() -> Vec<String> {
    let mut left = Vec::new();
    if let Ok(o) = Command::new("ip").args(["netns", "list"]).output() {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        left.extend(
            text.lines()
                .filter(|l| l.starts_with("fbnet-"))
                .map(str::to_string),
        );
    }
    if let Ok(o) = Command::new("ip").args(["-o", "link"]).output() {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        left.extend(
            text.lines()
                .filter(|l| l.contains(": fbh"))
                .map(str::to_string),
        );
    }
    left
}

/// As an ordinary user: exit 2, the message says root is needed, nothing was created.
fn assert_refused_without_root(o: &Output) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(stderr(o).contains("needs root"), "{}", stderr(o));
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[test]
fn bad_link_specs_are_refused_with_exit_2_naming_the_problem() {
    for (spec, says) in [
        ("rtt=20s", "rtt"),
        ("loss=60%", "loss"),
        ("rtt=abc", "abc"),
        ("mars", "mars"),
        ("down=0mbit", "down"),
    ] {
        let o = feedbench(&["net", "--link", spec, "--", "true"]);
        assert_eq!(o.status.code(), Some(2), "{spec}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{spec}: {}", stderr(&o));
        let o = feedbench(&["run", "--net", spec, "--no-report"]);
        assert_eq!(o.status.code(), Some(2), "{spec}: {}", stderr(&o));
    }
    let dir = scratch("badsuite");
    let suite = dir.join("s.toml");
    std::fs::write(
        &suite,
        "duration = \"2s\"\nwarmup = \"0s\"\n[matrix]\ntransports = [\"ws\"]\nclients = [1]\n\
         rate_hz = [1]\npayload_bytes = [8]\nnet = [\"rtt=11s\"]\n",
    )
    .unwrap();
    let o = feedbench(&["run", "--no-report", "--suite", suite.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("matrix.net"), "{}", stderr(&o));
}

/// A small bash client (bash 5's `$EPOCHREALTIME` times without forking): connects 5
/// times to $FEEDBENCH_NET_HOST:$1 and prints each connect time in ms, then sends $2 zero
/// bytes on a sixth connection.
const PROBE: &str = r#"
for i in 1 2 3 4 5; do
  t0=${EPOCHREALTIME/./}
  exec 3<>"/dev/tcp/$FEEDBENCH_NET_HOST/$1" || exit 3
  t1=${EPOCHREALTIME/./}
  exec 3>&-
  echo "$(( (t1 - t0) / 1000 )).$(( (t1 - t0) % 1000 / 100 ))"
done
exec 3<>"/dev/tcp/$FEEDBENCH_NET_HOST/$1" || exit 3
head -c "$2" /dev/zero >&3
exec 3>&-
"#;

#[test]
fn net_runs_a_command_behind_the_link_with_its_rtt_and_counts_its_packets() {
    let _one = LINK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("cmd");
    let counts = dir.join("counts.json");
    // A server on this side of the link; the command reaches it at $FEEDBENCH_NET_HOST.
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = std::thread::spawn(move || {
        let mut received = 0usize;
        for _ in 0..6 {
            let Ok((mut s, _)) = listener.accept() else {
                break;
            };
            // A close lost with the link must fail the test, not hang it.
            s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            received += std::io::copy(&mut s, &mut std::io::sink()).unwrap_or(0) as usize;
        }
        received
    });
    let o = feedbench(&[
        "net",
        "--link",
        "rtt=60ms",
        "--counts-out",
        counts.to_str().unwrap(),
        "--",
        "bash",
        "-c",
        PROBE,
        "probe",
        &port.to_string(),
        "100000",
    ]);
    if !is_root() {
        assert_refused_without_root(&o);
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut ms: Vec<f64> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    ms.sort_by(f64::total_cmp);
    assert_eq!(ms.len(), 5);
    // A connect is one round trip: 60 ms through the link, plus under a millisecond of the
    // two kernels' and the emulator's own work (a few on a busy machine).
    assert!(
        ms[0] >= 59.9 && ms[0] <= 62.0,
        "fastest connect {} ms",
        ms[0]
    );
    assert!(ms[2] <= 65.0, "median connect {} ms", ms[2]);
    assert_eq!(sink.join().unwrap(), 100_000);
    let c: Value = serde_json::from_slice(&std::fs::read(&counts).unwrap()).unwrap();
    // The 100,000 bytes went up as TCP segments: their IP bytes are the payload plus at
    // least 40 bytes of headers per packet; the handshakes and ACKs came down.
    let up_bytes = c["up"]["bytes"].as_u64().unwrap();
    let up_packets = c["up"]["packets"].as_u64().unwrap();
    assert!(up_bytes >= 100_000 + 40 * up_packets, "{c}");
    assert!(c["down"]["packets"].as_u64().unwrap() >= 6 * 2, "{c}");
    assert_eq!(c["up"]["drops_loss"], 0);
    assert_eq!(c["up"]["packets"], c["up"]["delivered_packets"]);
    assert_eq!(c["down"]["bytes"], c["down"]["delivered_bytes"]);
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

fn suite_through_link(dir: &Path) -> PathBuf {
    let path = dir.join("wan-tiny.toml");
    std::fs::write(
        &path,
        r#"
name = "wan-tiny"
repeat = 1
duration = "3s"
warmup = "1s"
[matrix]
transports = ["long-poll", "ws"]
clients = [5]
rate_hz = [4]
payload_bytes = [64]
net = ["none", "rtt=40ms"]
"#,
    )
    .unwrap();
    path
}

#[test]
fn run_through_a_link_adds_one_transit_and_leaves_socket_bytes_alone() {
    let _one = LINK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("run");
    let suite = suite_through_link(&dir);
    let out = dir.join("out");
    let o = feedbench(&[
        "run",
        "--no-report",
        "--no-pin",
        "--suite",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    if !is_root() {
        assert_refused_without_root(&o);
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let scenarios = r["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 4);
    for transport in ["long-poll", "ws"] {
        let of = |linked: bool| {
            scenarios
                .iter()
                .find(|s| s["transport"] == transport && s.get("net").is_some() == linked)
                .unwrap_or_else(|| panic!("{transport} linked={linked}"))
        };
        let (plain, linked) = (of(false), of(true));
        for s in [plain, linked] {
            assert_eq!(s["status"], "complete", "{s}");
            assert_eq!(s["events"]["missed"], 0, "{s}");
        }
        let net = &linked["net"];
        assert_eq!(linked["params"]["net"], "rtt=40ms");
        // The fastest of the probe's connects: never below the configured RTT, and its
        // median rises with a busy CPU (the emulator of a debug build shares two cores with
        // every other test; a clean CI run saw 42.1 ms, a busy machine 47.4 ms). The upper
        // bound still fails a delay applied twice or not at all; the emulator's accuracy in
        // a release build is measured by scripts/net-accuracy.sh.
        let probe = net["rtt_measured_ms"]["min"].as_f64().unwrap();
        assert!((39.9..=50.0).contains(&probe), "probe {probe}");
        // Events 250 ms apart, RTT 40 ms: long-poll has a request parked for every event,
        // so both deliver in one transit, 20 ms, plus the loopback latency. No delivery can
        // beat the transit (a delay skipped fails), and the median stays well short of two
        // transits (40 ms: a delay applied twice, or a long-poll request not parked, fails).
        // The bound is not on the shift from the plain run: its p50 is a debug build's on a
        // busy machine, 0.7 ms clean and 3.0 ms with two CPU hogs, which moved a CI run's
        // shift to 17.7 ms.
        let lat_ms = |s: &Value, q: &str| s["latency_us"][q].as_f64().unwrap() / 1e3;
        let (min, p50) = (lat_ms(linked, "min"), lat_ms(linked, "p50"));
        assert!(min >= 19.9, "{transport}: fastest delivery {min} ms");
        assert!(p50 <= 35.0, "{transport}: p50 {p50} ms");
        assert!(
            lat_ms(plain, "p50") < 19.0,
            "{transport}: plain p50 {} ms",
            lat_ms(plain, "p50")
        );
        // The link changes packets, not the bytes each side writes: framing per event is
        // the same with and without it.
        let framing = |s: &Value| {
            let b = &s["bytes"];
            (b["down"].as_f64().unwrap() - b["payload"].as_f64().unwrap())
                / b["events"].as_f64().unwrap()
        };
        assert!(
            (framing(linked) - framing(plain)).abs() < 0.5,
            "{transport}: framing {} vs {}",
            framing(linked),
            framing(plain)
        );
        let ip_down = net["down"]["bytes"].as_u64().unwrap();
        let socket_down = linked["bytes"]["down"].as_u64().unwrap();
        assert!(
            ip_down > socket_down,
            "{transport}: IP {ip_down} ≤ socket {socket_down}"
        );
        assert_eq!(net["down"]["drops_loss"], 0);
        // A debug build's emulator on a busy machine may fall behind; if it did, the
        // results must say so.
        let warned = linked["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("network emulator"));
        assert_eq!(
            net["emulator"]["saturated"].as_bool(),
            Some(warned),
            "{linked}"
        );
    }
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[test]
fn an_ordinary_user_is_refused_clearly_and_nothing_is_made() {
    let _one = LINK.lock().unwrap_or_else(|e| e.into_inner());
    let as_user = |args: &[&str]| match is_root() {
        // Root checks the ordinary user's path too, as `nobody`.
        true => Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", EXE])
            .args(args)
            .output()
            .unwrap(),
        false => feedbench(args),
    };
    assert_refused_without_root(&as_user(&["net", "--link", "rtt=10ms", "--", "true"]));
    let dir = scratch("user");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let suite = suite_through_link(&dir);
    let out = dir.join("out");
    let o = as_user(&[
        "run",
        "--no-report",
        "--suite",
        suite.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_refused_without_root(&o);
    assert!(!out.join("results.json").exists());
}

/// Starts `feedbench serve --addr ADDR` with a control token in its environment; returns
/// the child and its port.
fn serve(addr: &str, token: &str) -> (std::process::Child, u16) {
    use std::io::BufRead as _;
    let mut child = Command::new(EXE)
        .args(["serve", "--addr", addr])
        .env("FEEDBENCH_CONTROL_TOKEN", token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    (child, port)
}

#[test]
fn load_through_a_link_reaches_a_server_on_all_addresses_and_names_one_that_is_not() {
    let _one = LINK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = scratch("load");
    let load_over = |net: &str, port: u16, out: &str| {
        Command::new(EXE)
            .args(["load", "--target", &format!("http://127.0.0.1:{port}")])
            .args(["--transport", "ws", "--clients", "4", "--rate", "10"])
            .args(["--duration", "2s", "--warmup", "1s", "--net", net])
            .arg("--out")
            .arg(dir.join(out))
            .env("FEEDBENCH_CONTROL_TOKEN", "t0ken")
            .output()
            .unwrap()
    };
    let load = |port: u16, out: &str| load_over("rtt=30ms", port, out);
    // Listening on all addresses: the clients reach it at 198.19.0.1 through the link, the
    // load generator's own requests at 127.0.0.1.
    let (mut all, port) = serve("0.0.0.0:0", "t0ken");
    let o = load(port, "all.json");
    // Per-client links: clients 0 and 2 on a 20 ms path, 1 and 3 on a 200 ms one.
    let mixed = load_over("mix(50%:rtt=20ms|50%:rtt=200ms)", port, "mix.json");
    let _ = all.kill();
    let _ = all.wait();
    if !is_root() {
        assert_refused_without_root(&o);
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&std::fs::read(dir.join("all.json")).unwrap()).unwrap();
    let s = &r["scenarios"][0];
    assert_eq!(s["events"]["missed"], 0, "{s}");
    let p50_ms = s["latency_us"]["p50"].as_f64().unwrap() / 1e3;
    assert!(
        (15.0..=22.0).contains(&p50_ms),
        "p50 {p50_ms} ms over rtt=30ms"
    );
    assert!(s["net"]["up"]["packets"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(mixed.status.code(), Some(0), "{}", stderr(&mixed));
    let r: Value = serde_json::from_slice(&std::fs::read(dir.join("mix.json")).unwrap()).unwrap();
    let s = &r["scenarios"][0];
    let classes: Vec<u64> = s["net"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clients"].as_u64().unwrap())
        .collect();
    assert_eq!(classes, [2, 2]);
    // Half the deliveries take one 10 ms transit, half one 100 ms transit: the fastest is
    // on the short path, the 90th percentile on the long one.
    let ms = |k: &str| s["latency_us"][k].as_f64().unwrap() / 1e3;
    assert!((9.5..=15.0).contains(&ms("min")), "min {} ms", ms("min"));
    assert!((99.5..=108.0).contains(&ms("p90")), "p90 {} ms", ms("p90"));
    // On loopback only: the link cannot reach it, and the run says where it must listen.
    let (mut lo, port) = serve("127.0.0.1:0", "t0ken");
    let o = load(port, "lo.json");
    let _ = lo.kill();
    let _ = lo.wait();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&std::fs::read(dir.join("lo.json")).unwrap()).unwrap();
    let message = r["status_message"].as_str().unwrap_or_default();
    assert!(message.contains("198.19.0.1"), "{message}");
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}

#[test]
fn ctrl_c_removes_the_link_and_a_killed_runs_leftovers_go_with_the_next_run() {
    let _one = LINK.lock().unwrap_or_else(|e| e.into_inner());
    if !is_root() {
        assert_refused_without_root(&feedbench(&["net", "--link", "rtt=1ms", "--", "true"]));
        return;
    }
    let behind_link = |signal: rustix::process::Signal| {
        let child = Command::new(EXE)
            .args(["net", "--link", "rtt=10ms", "--", "sleep", "30"])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ns = format!("fbnet-{}", child.id());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !leftovers().iter().any(|l| l.starts_with(&ns)) {
            assert!(std::time::Instant::now() < deadline, "no {ns} appeared");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        child
    };
    // Ctrl-C: the command is stopped and everything the link made is removed.
    let out = behind_link(rustix::process::Signal::INT)
        .wait_with_output()
        .unwrap();
    assert_eq!(out.status.code(), Some(128 + 15), "sleep ended by SIGTERM");
    assert!(leftovers().is_empty(), "{:?}", leftovers());
    // Killed outright: the namespace stays behind until the next link is made.
    let mut killed = behind_link(rustix::process::Signal::KILL);
    killed.wait().unwrap();
    assert!(!leftovers().is_empty());
    let o = feedbench(&["net", "--link", "rtt=1ms", "--", "true"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(leftovers().is_empty(), "{:?}", leftovers());
}
