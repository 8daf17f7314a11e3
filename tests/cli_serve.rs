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
    // Every client saw its connection end.
    for mut c in clients {
        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
    }
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
