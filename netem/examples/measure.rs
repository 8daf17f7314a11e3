//! Measures the emulator's accuracy and capacity on this machine; the figures go into
//! `PROFILES.md`. Needs root. Runs about 20 s:
//!
//! ```text
//! cargo run --release -p feedbench-netem --example measure
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use feedbench_netem::{probe_rtt, NetCounters, NetEnv, NetError, NetOptions};

fn env(spec: &str) -> Result<NetEnv, NetError> {
    NetEnv::create(NetOptions {
        spec: spec.parse()?,
        seed: 1,
    })
}

fn listener(env: &NetEnv) -> (TcpListener, SocketAddrV4) {
    let l = TcpListener::bind((env.host_ip(), 0)).expect("bind the host address");
    let port = l
        .local_addr()
        .expect("a bound listener has an address")
        .port();
    (l, SocketAddrV4::new(env.host_ip(), port))
}

fn rtt(target_ms: u64) -> Result<(), Box<dyn std::error::Error>> {
    let env = env(&format!("rtt={target_ms}ms"))?;
    let (_l, addr) = listener(&env);
    let mut t = probe_rtt(&env, addr.port(), 10)?;
    t.sort();
    let target = Duration::from_millis(target_ms);
    let us = |d: Duration| d.as_micros() as i64 - target.as_micros() as i64;
    println!(
        "rtt={target_ms}ms: connect time minus RTT over 10: min {:+} us, median {:+} us, max {:+} us",
        us(t[0]),
        us(t[5]),
        us(t[9])
    );
    env.close()?;
    Ok(())
}

/// Sends `bytes` host → client over `streams` connections; returns the counter window
/// and its duration.
fn bulk(env: &NetEnv, bytes: usize, streams: usize) -> (NetCounters, Duration) {
    let (l, addr) = listener(env);
    let server = thread::spawn(move || {
        let mut handles = Vec::new();
        for _ in 0..streams {
            let (mut s, _) = l.accept().expect("accept");
            handles.push(thread::spawn(move || {
                let chunk = vec![7u8; 65536];
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(chunk.len());
                    s.write_all(&chunk[..n]).expect("write");
                    left -= n;
                }
            }));
        }
        handles.into_iter().for_each(|h| h.join().expect("writer"));
    });
    let before = env.counters();
    let start = Instant::now();
    let readers: Vec<_> = (0..streams)
        .map(|i| {
            let mut s = env
                .connect_tcp(i, addr, Duration::from_secs(5))
                .expect("connect");
            thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while let Ok(1..) = s.read(&mut buf) {}
            })
        })
        .collect();
    readers.into_iter().for_each(|h| h.join().expect("reader"));
    let window = (env.counters() - before, start.elapsed());
    server.join().expect("server");
    window
}

fn bandwidth() -> Result<(), Box<dyn std::error::Error>> {
    let env = env("down=10mbit")?;
    let (c, dt) = bulk(&env, 3_000_000, 1);
    let rate = c.down.delivered_bytes as f64 * 8.0 / dt.as_secs_f64();
    println!(
        "down=10mbit: 3 MB in {:.3} s incl. handshake and slow start = {:.3} Mbit/s at IP level ({} queue drops)",
        dt.as_secs_f64(),
        rate / 1e6,
        c.down.drops_queue
    );
    env.close()?;
    Ok(())
}

fn capacity() -> Result<(), Box<dyn std::error::Error>> {
    let env = env("rtt=0ms")?;
    let (c, dt) = bulk(&env, 150_000_000, 4);
    let pps = (c.down.delivered_packets + c.up.delivered_packets) as f64 / dt.as_secs_f64();
    let bps = c.down.delivered_bytes as f64 * 8.0 / dt.as_secs_f64();
    println!(
        "capacity rtt=0ms, 4 TCP streams: {:.0} packets/s delivered (both directions), {:.0} Mbit/s down, forwarder busy {:.0}%, late {} (max {} us), overflow drops {}, saturated {}",
        pps,
        bps / 1e6,
        c.busy_fraction() * 100.0,
        c.late_packets,
        c.late_max_us,
        c.down.drops_overflow + c.up.drops_overflow,
        c.saturated()
    );
    env.close()?;
    Ok(())
}

fn setns_cost() -> Result<(), Box<dyn std::error::Error>> {
    let env = env("rtt=0ms")?;
    let n = 2000;
    let start = Instant::now();
    for _ in 0..n {
        drop(env.tcp_socket_v4()?);
    }
    let in_ns = start.elapsed() / n;
    let start = Instant::now();
    for _ in 0..n {
        drop(std::net::TcpListener::bind("127.0.0.1:0")?);
    }
    let plain = start.elapsed() / n;
    println!(
        "tcp_socket_v4 (setns in, socket, setns back): {:.1} us per socket; for scale, a bound std listener in the host namespace: {:.1} us",
        in_ns.as_secs_f64() * 1e6,
        plain.as_secs_f64() * 1e6
    );
    env.close()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for ms in [20, 100, 400] {
        rtt(ms)?;
    }
    bandwidth()?;
    setns_cost()?;
    capacity()?;
    Ok(())
}
