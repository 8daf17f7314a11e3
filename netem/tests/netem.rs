//! Integration tests of the emulator with real namespaces, TUN devices and TCP.
//!
//! They need root. Without it each test checks that `NetEnv::create` says so (a real
//! check of the error path, not a skip). The tests of this one binary run one at a time
//! behind `SERIAL`, because only one emulated link may exist per machine (the lock).
//! Every wait is bounded by a timeout.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use feedbench_netem::{cleanup_stale, probe_rtt, NetEnv, NetError, NetOptions, NetSpec};

static SERIAL: Mutex<()> = Mutex::new(());

/// Takes the test lock, even if an earlier test panicked while holding it.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// An env for `spec` as root; `None` after checking the not-root error otherwise.
fn env(spec: &str) -> Option<NetEnv> {
    let opts = NetOptions {
        spec: spec.parse().unwrap(),
        seed: 1,
    };
    let is_root = unsafe { libc::geteuid() } == 0;
    match NetEnv::create(opts) {
        Ok(env) if is_root => Some(env),
        Err(NetError::NotRoot) if !is_root => None,
        Ok(_) => panic!("created an env without root"),
        Err(e) => panic!("create failed: {e}"),
    }
}

fn listener(env: &NetEnv) -> (TcpListener, SocketAddrV4) {
    let l = TcpListener::bind((env.host_ip(), 0)).unwrap();
    let port = l.local_addr().unwrap().port();
    (l, SocketAddrV4::new(env.host_ip(), port))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Serves `data` to the first connection on `l`, sends its FIN and hands the stream back
/// for [`abort`].
fn serve_once(l: TcpListener, data: Vec<u8>) -> thread::JoinHandle<TcpStream> {
    thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
        s.write_all(&data).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        s
    })
}

/// Closes a host-side stream with a reset (SO_LINGER 0), so the host keeps no state for
/// it (no TIME_WAIT, no retransmissions) that could send packets into a later test's env,
/// whose counters are checked exactly. Client-side state dies with the namespace.
fn abort(s: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}

#[test]
fn connect_takes_one_rtt_and_counters_are_exact() {
    let _g = serial();
    let Some(env) = env("rtt=100ms") else { return };
    let (l, addr) = listener(&env);
    let mut times = Vec::new();
    let mut open = Vec::new();
    for i in 0..10 {
        let before = env.counters();
        let start = Instant::now();
        let stream = env.connect_tcp(0, addr, Duration::from_secs(5)).unwrap();
        times.push(start.elapsed());
        // The server sees the connection once the client's ACK came through.
        let (server, peer) = l.accept().unwrap();
        assert_eq!(peer.ip(), std::net::IpAddr::V4(env.client_ip(0)));
        let d = env.counters() - before;
        // SYN (60 B: MSS, SACK, timestamps, window scale) and ACK (52 B: timestamps) up,
        // SYN-ACK (60 B) down, nothing lost.
        assert_eq!(
            (d.up.packets, d.up.bytes),
            (2, 112),
            "connection {i}: {d:?}"
        );
        assert_eq!((d.up.delivered_packets, d.up.delivered_bytes), (2, 112));
        assert_eq!((d.down.packets, d.down.bytes), (1, 60));
        assert_eq!((d.down.delivered_packets, d.down.delivered_bytes), (1, 60));
        assert_eq!(
            d.up.tcp_segments + d.down.tcp_segments,
            2,
            "SYN and SYN-ACK"
        );
        assert_eq!(d.up.tcp_retransmits + d.down.tcp_retransmits, 0);
        open.push((stream, server));
    }
    let m = median(times);
    let target = Duration::from_millis(100);
    assert!(
        m.abs_diff(target) < Duration::from_micros(1500),
        "median connect {m:?}"
    );

    // Reconfiguring takes effect for the next packets.
    env.set_spec("rtt=40ms".parse().unwrap(), 2).unwrap();
    let m = median(probe_rtt(&env, addr.port(), 5).unwrap());
    let target = Duration::from_millis(40);
    assert!(
        m.abs_diff(target) < Duration::from_micros(1500),
        "median after set_spec {m:?}"
    );
    for (client, server) in open {
        abort(server);
        drop(client);
    }
    // The probes' connections were never accepted: closing the listener resets them.
    drop(l);
    env.close().unwrap();
}

#[test]
fn lossy_link_still_delivers_a_megabyte_intact() {
    let _g = serial();
    let Some(env) = env("rtt=2ms,loss=20%") else {
        return;
    };
    let (l, addr) = listener(&env);
    let data = pattern(1_000_000);
    let server = serve_once(l, data.clone());
    let mut s = env.connect_tcp(1, addr, Duration::from_secs(30)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    abort(server.join().unwrap());
    assert!(got == data, "received {} bytes, not the pattern", got.len());
    let c = env.counters();
    let drops = c.down.drops_loss + c.up.drops_loss;
    let sent = c.down.packets + c.up.packets;
    // 20% of the packets +- 5 sigma.
    let sigma = (sent as f64 * 0.16).sqrt();
    assert!(
        (drops as f64 - sent as f64 * 0.2).abs() < 5.0 * sigma,
        "{drops} of {sent}"
    );
    assert!(c.down.tcp_retransmits > 0, "{c:?}");
    // Every packet is delivered or dropped, bar the few still held (the last ACKs).
    let accounted = c.down.delivered_packets + c.down.drops_loss;
    assert!(
        accounted <= c.down.packets && accounted + 3 >= c.down.packets,
        "{c:?}"
    );
    env.close().unwrap();
}

#[test]
fn rate_limit_delivers_10_mbit_per_second() {
    let _g = serial();
    let Some(env) = env("down=10mbit") else {
        return;
    };
    let (l, addr) = listener(&env);
    let server = serve_once(l, pattern(2_500_000));
    let mut s = env.connect_tcp(2, addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 65536];
    let (mut total, mut mark) = (0usize, None);
    let mut window = None;
    while let Ok(n @ 1..) = s.read(&mut buf) {
        total += n;
        // Measure between 0.25 MB and 2.25 MB received, away from slow start and the end.
        if total >= 250_000 && mark.is_none() {
            mark = Some((Instant::now(), env.counters()));
        }
        if let (true, None, Some((t0, c0))) = (total >= 2_250_000, window, mark) {
            window = Some((t0.elapsed(), env.counters() - c0));
        }
    }
    abort(server.join().unwrap());
    assert_eq!(total, 2_500_000);
    let (dt, d) = window.unwrap();
    let rate = d.down.delivered_bytes as f64 * 8.0 / dt.as_secs_f64();
    assert!((rate / 10e6 - 1.0).abs() < 0.03, "{rate} bit/s over {dt:?}");
    env.close().unwrap();
}

fn netns_list() -> String {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn links() -> String {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn close_leaves_nothing_and_stale_leftovers_are_removed() {
    let _g = serial();
    let Some(env) = env("lan") else { return };
    let ns = env.ns_name().to_string();
    let host_link = format!("fbh{}", std::process::id());
    assert!(netns_list().contains(&ns));
    assert!(links().contains(&host_link));

    // A second env while this one lives: the lock names its holder.
    let opts = NetOptions {
        spec: "lan".parse::<NetSpec>().unwrap(),
        seed: 0,
    };
    match NetEnv::create(opts) {
        Err(NetError::LockHeld { pid, .. }) => assert_eq!(pid, std::process::id()),
        other => panic!("expected LockHeld, got {:?}", other.map(|_| ())),
    }

    // Commands run in the namespace with the documented environment.
    let out = env
        .command("sh")
        .args([
            "-c",
            "ip -o -4 addr; echo $FEEDBENCH_NET_HOST $FEEDBENCH_NET_CLIENT_ADDRS",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("198.19.0.2/32"), "{text}");
    assert!(
        text.contains("198.19.0.1 198.19.128.1-198.19.255.254"),
        "{text}"
    );

    drop(env);
    assert!(!netns_list().contains("fbnet-"), "{}", netns_list());
    assert!(!links().contains(&host_link), "{}", links());

    // A killed process's leftover namespace.
    assert_ne!(unsafe { libc::kill(999_999, 0) }, 0, "pid 999999 is alive");
    let st = Command::new("ip")
        .args(["netns", "add", "fbnet-999999"])
        .status()
        .unwrap();
    assert!(st.success());
    let removed = cleanup_stale().unwrap();
    assert_eq!(removed, vec!["netns fbnet-999999".to_string()]);
    assert!(!netns_list().contains("fbnet-"));
    assert_eq!(cleanup_stale().unwrap(), Vec::<String>::new(), "idempotent");
}
