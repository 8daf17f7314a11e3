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
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .strip_prefix("feedbench listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim()
        .to_string();
    assert!(!addr.ends_with(":0"), "real port expected, got {addr}");
    (child, addr)
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
    // timeout): the parked long-poll an empty answer, the SSE stream its terminal chunk,
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
    let longpoll = text(&rest[0]);
    assert!(longpoll.starts_with("HTTP/1.1 200 OK\r\n"), "{longpoll:?}");
    assert!(longpoll.contains(r#"{"events":[],"next":"#), "{longpoll:?}");
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
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("feedbench listening on http://")
        .expect("first line")
        .to_string();
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
