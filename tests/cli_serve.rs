//! `feedbench serve` through the built binary: the first-line contract, live traffic, and a
//! graceful exit 0 within 2 s of SIGTERM or SIGINT with clients attached.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn spawn_server() -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedbench"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--rate",
            "50",
            "--payload-bytes",
            "10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn feedbench serve");
    let addr = listening_address(&mut child);
    (child, addr)
}

/// The address from a server's first line, `feedbench listening on http://ADDR`.
fn listening_address(child: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("feedbench listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(!addr.ends_with(":0"), "real port expected, got {addr}");
    addr
}

fn wait_exit(child: &mut Child, bound: Duration) -> Option<std::process::ExitStatus> {
    let t0 = Instant::now();
    while t0.elapsed() < bound {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

fn open_clients(addr: &str) -> Vec<TcpStream> {
    let requests = [
        "GET /longpoll?timeout_ms=120000 HTTP/1.1\r\nhost: t\r\n\r\n".to_string(),
        "GET /sse HTTP/1.1\r\nhost: t\r\n\r\n".to_string(),
        "GET /ws HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n".to_string(),
    ];
    requests
        .iter()
        .map(|r| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(r.as_bytes()).unwrap();
            s
        })
        .collect()
}

fn stop_with(sig: &str) {
    let (mut child, addr) = spawn_server();
    let mut clients = open_clients(&addr);
    // Let the requests reach their handlers.
    let mut first = [0u8; 12];
    clients[1].read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let t0 = Instant::now();
    signal(&child, sig);
    let status = wait_exit(&mut child, Duration::from_secs(5)).expect("server did not exit");
    let took = t0.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(2), "took {took:?} to exit");
    // Every client got its goodbye and then the end of its connection (EOF, not the read
    // timeout): the parked long-poll its answer, the SSE stream its terminal chunk,
    // the WebSocket a close frame with 1001.
    let mut rest: Vec<Vec<u8>> = Vec::new();
    for mut c in clients {
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut bytes = Vec::new();
        c.read_to_end(&mut bytes)
            .unwrap_or_else(|e| panic!("connection did not end: {e}"));
        rest.push(bytes);
    }
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    // The parked long-poll is answered: with no events at shutdown, or with the feed's next
    // event if one was published first (the feed runs at 50/s).
    let longpoll = text(&rest[0]);
    assert!(longpoll.starts_with("HTTP/1.1 200 OK\r\n"), "{longpoll:?}");
    assert!(longpoll.contains(r#"{"events":["#), "{longpoll:?}");
    assert!(longpoll.ends_with(r#""missed":0}"#), "{longpoll:?}");
    assert!(rest[1].ends_with(b"\r\n0\r\n\r\n"), "{:?}", text(&rest[1]));
    let ws = &rest[2];
    assert!(text(ws).starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
    // FIN + close, 22-byte payload: the code 1001 and "server shutting down".
    let mut close = vec![0x88u8, 22, 0x03, 0xE9];
    close.extend_from_slice(b"server shutting down");
    assert!(ws.ends_with(&close), "{:?}", text(ws));
}

#[test]
fn sigterm_exits_zero_within_two_seconds() {
    stop_with("-TERM");
}

#[test]
fn sigint_exits_zero_within_two_seconds() {
    stop_with("-INT");
}

#[test]
fn bad_flags_exit_two_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_feedbench"))
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--retain",
            "10",
            "--ws-queue",
            "20",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("feedbench: invalid configuration: ws-queue"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_feedbench"))
        .args(["serve", "--rate", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn out_of_descriptors_backs_off_logs_once_and_recovers() {
    // A hard limit of 64 descriptors: the server cannot raise it, and runs out after a few
    // dozen connections.
    let mut child = Command::new("bash")
        .args([
            "-c",
            &format!(
                "ulimit -n 64 && exec {} serve --addr 127.0.0.1:0 --rate 0",
                env!("CARGO_BIN_EXE_feedbench")
            ),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn bash");
    let addr = listening_address(&mut child);
    // The kernel completes handshakes into the listen backlog even when accept() fails.
    let mut clients: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    for c in &mut clients {
        c.write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n")
            .unwrap();
    }
    // Give the accept loop a second of exhaustion to spin in, if it were going to.
    std::thread::sleep(Duration::from_secs(1));
    drop(clients);
    // Recovers: a new client is served (bounded wait while the backlog drains).
    let t0 = Instant::now();
    let stats = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "server did not recover"
        );
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        s.write_all(b"GET /stats HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut resp = String::new();
        if s.read_to_string(&mut resp).is_ok() && resp.starts_with("HTTP/1.1 200") {
            let body = resp.split("\r\n\r\n").nth(1).unwrap().to_string();
            break serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let errors = stats["connections"]["accept_errors"].as_u64().unwrap();
    assert!(errors >= 1, "no accept errors recorded: {stats}");
    // Backing off 50 ms per failure: a second of exhaustion is at most ~20 failures, not
    // the millions a spinning loop would rack up, and little CPU.
    assert!(errors <= 60, "accept loop spun: {errors} errors");
    let cpu = stats["process"]["cpu_user_s"].as_f64().unwrap()
        + stats["process"]["cpu_sys_s"].as_f64().unwrap();
    assert!(cpu < 0.5, "server used {cpu} s of CPU");
    signal(&child, "-TERM");
    assert!(wait_exit(&mut child, Duration::from_secs(5))
        .expect("exit")
        .success());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(err.matches("accept failed").count(), 1, "stderr: {err}");
    assert!(err.contains("(backing off)"), "{err}");
}

/// Sends one request with `connection: close` and returns the status and body.
fn request(addr: &str, method: &str, path: &str, extra: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\n{extra}content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp[9..12].parse().unwrap();
    let body = resp.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

fn stats(addr: &str) -> serde_json::Value {
    let (status, body) = request(addr, "GET", "/stats", "", "");
    assert_eq!(status, 200);
    serde_json::from_str(&body).unwrap()
}

/// A server child that is killed if a test fails before stopping it, so no server
/// outlives its test.
struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_with(args: &[&str], env: &[(&str, &str)]) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_feedbench"))
        .arg("serve")
        .args(args)
        .envs(env.iter().copied())
        .env_remove(if env.is_empty() {
            "FEEDBENCH_CONTROL_TOKEN"
        } else {
            "FEEDBENCH_UNUSED"
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn feedbench serve");
    let addr = listening_address(&mut child);
    (Server(Some(child)), addr)
}

fn stop(mut server: Server) {
    let mut child = server.0.take().expect("a running server");
    signal(&child, "-TERM");
    let status = wait_exit(&mut child, Duration::from_secs(5)).expect("server did not exit");
    assert!(status.success(), "exit status {status:?}");
}

fn refused(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_feedbench"))
        .arg("serve")
        .args(args)
        .env_remove("FEEDBENCH_CONTROL_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?} started listening");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn settings_that_cannot_be_served_safely_exit_two_before_listening() {
    for rate in ["1e-300", "5e-324", "1e-19"] {
        let err = refused(&["--addr", "127.0.0.1:0", "--rate", rate]);
        assert!(
            err.starts_with("feedbench: invalid configuration: rate_hz must be 0 (paused) or a number in 0.001..=1000000"),
            "{err}"
        );
    }
    // The issue's runaway feed: 2,000 events of 1 MiB per second against a 512 MiB ring.
    let err = refused(&[
        "--addr",
        "127.0.0.1:0",
        "--rate",
        "2000",
        "--payload-bytes",
        "1048576",
    ]);
    assert!(
        err.contains("at this payload rate_hz may be at most 255.964"),
        "{err}"
    );
    // Control on a non-loopback address needs a token or --control-open; refused before
    // anything binds.
    let err = refused(&["--addr", "0.0.0.0:0"]);
    assert!(
        err.contains("refusing to serve PUT /control/feed on 0.0.0.0:0 (not a loopback address) without a token"),
        "{err}"
    );
    let err = refused(&["--addr", "127.0.0.1:0", "--retain-bytes", "1KiB"]);
    assert!(
        err.contains("retain-bytes must be at least 2097441"),
        "{err}"
    );
}

#[test]
fn control_token_is_taken_from_the_environment() {
    let (child, addr) = spawn_with(
        &["--addr", "127.0.0.1:0", "--rate", "0"],
        &[("FEEDBENCH_CONTROL_TOKEN", "s3cret")],
    );
    let body = r#"{"rate_hz":0}"#;
    let (status, _) = request(&addr, "PUT", "/control/feed", "", body);
    assert_eq!(status, 401);
    let (status, _) = request(
        &addr,
        "PUT",
        "/control/feed",
        "authorization: Bearer s3cret\r\n",
        body,
    );
    assert_eq!(status, 200);
    stop(child);
}

/// The heaviest feed the server accepts, run on a ring of 64 MiB: its memory stays within
/// the stated bound (twice `--retain-bytes` above what the idle server took), where a ring
/// bounded by count alone would hold every event published here (over 3 × 64 MiB).
#[test]
fn rss_stays_within_the_stated_bound_under_the_heaviest_accepted_feed() {
    const BOUND: u64 = 64 << 20;
    let (child, addr) = spawn_with(
        &[
            "--addr",
            "127.0.0.1:0",
            "--rate",
            "0",
            "--retain-bytes",
            "64MiB",
        ],
        &[],
    );
    let baseline = stats(&addr)["process"]["rss_bytes"].as_u64().unwrap();
    let payload = 1u64 << 20;
    let cost = 2 * payload + 289;
    // The rule: rate × cost ≤ retain-bytes. Just above the highest rate is refused.
    let max_rate = (BOUND as f64 / cost as f64 * 1000.0).floor() / 1000.0;
    let put = |rate: f64| {
        let body = format!(r#"{{"rate_hz":{rate},"payload_bytes":{payload}}}"#);
        request(&addr, "PUT", "/control/feed", "", &body)
    };
    let (status, body) = put(max_rate + 0.01);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(&format!("may be at most {max_rate} ")),
        "{body}"
    );
    assert_eq!(put(max_rate).0, 200);
    let t0 = Instant::now();
    let mut max_ring = 0;
    let st = loop {
        let st = stats(&addr);
        max_ring = max_ring.max(st["feed"]["ring_bytes"].as_u64().unwrap());
        let published = st["events_published"].as_u64().unwrap();
        if published * cost > 3 * BOUND || t0.elapsed() > Duration::from_secs(30) {
            break st;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let published = st["events_published"].as_u64().unwrap();
    assert!(
        published * cost > 3 * BOUND,
        "only {published} events in 30 s"
    );
    assert!(max_ring <= BOUND, "ring held {max_ring} bytes");
    let peak = st["process"]["rss_peak_bytes"].as_u64().unwrap();
    eprintln!(
        "baseline {baseline} B, peak {peak} B (+{} MiB) after {published} events",
        (peak - baseline) >> 20
    );
    assert!(
        peak < baseline + 2 * BOUND,
        "peak RSS {peak} B above baseline {baseline} B + 2 × {BOUND} B"
    );
    stop(child);
}
