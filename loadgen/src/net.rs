//! The load generator's side of an emulated network: clients connect through the link,
//! the link's RTT is probed before the clients start, and the window's packet counts
//! become the scenario's `net` block.
//!
//! The emulator itself (namespaces, TUN devices, the forwarder) is `feedbench-netem`. A
//! [`ClientNet`] holds one live link for a whole run; every scenario with a `net` spec sets
//! the link's parameters first. Client sockets are made inside the clients' namespace and
//! bound to one address per client (so each client has its own access link); everything the
//! harness itself sends (`/stats`, `/control`, `/time`, the feed reads) leaves from this
//! namespace and reaches the server without crossing the link, so the link's counters hold
//! the clients' traffic only.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use feedbench_netem::spec::Classes;
use feedbench_netem::{NetCounters, NetEnv, NetSpec, POOL_SIZE};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use crate::results::{EmulatorFigures, NetClass, NetDirection, NetFigures, RttProbe};

/// TCP connects the RTT probe makes through the link before the clients start.
const PROBE_CONNECTS: usize = 10;
/// How long the whole probe may take: ten connects over a lossy 10 s RTT link do not fit,
/// and then the probe says what it got.
const PROBE_LIMIT: Duration = Duration::from_secs(30);

/// A live emulated link, shared by every scenario of a run.
#[derive(Clone)]
pub struct ClientNet {
    env: Arc<NetEnv>,
}

impl std::fmt::Debug for ClientNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientNet")
            .field("ns", &self.env.ns_name())
            .field("host_ip", &self.env.host_ip())
            .finish()
    }
}

impl ClientNet {
    /// Wraps a live link.
    pub fn new(env: Arc<NetEnv>) -> Self {
        Self { env }
    }

    /// The link.
    pub fn env(&self) -> &NetEnv {
        &self.env
    }

    /// The server's address on the far side of the link, on `port`.
    pub fn server_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.env.host_ip()), port)
    }

    /// Client `index`'s source address (one per client: its own access link). Beyond the
    /// pool's [`POOL_SIZE`] addresses, clients share them (and their links) in turn.
    pub fn client_ip(&self, index: usize) -> IpAddr {
        IpAddr::V4(self.env.client_ip(index % POOL_SIZE))
    }

    /// Applies a scenario's link spec (new per-client links, queues empty).
    pub fn configure(&self, spec: &NetSpec, seed: u64) -> Result<(), String> {
        self.env
            .set_spec(spec.clone(), seed)
            .map_err(|e| format!("cannot set the link to {spec}: {e}"))
    }

    /// The link's counters now.
    pub fn counters(&self) -> NetCounters {
        self.env.counters()
    }

    /// The counters when a window opens; the emulator's lateness maximum starts anew.
    pub fn open_window(&self) -> NetCounters {
        self.env.take_late_max_us();
        self.env.counters()
    }

    /// The counters when a window closes, with the lateness maximum of the window alone.
    pub fn close_window(&self) -> NetCounters {
        let mut c = self.env.counters();
        c.late_max_us = self.env.take_late_max_us();
        c
    }

    /// Connects from `source` (inside the clients' namespace) to `server`.
    pub async fn connect(&self, source: IpAddr, server: SocketAddr) -> std::io::Result<TcpStream> {
        let fd = self.env.tcp_socket_v4()?;
        let socket = TcpSocket::from_std_stream(std::net::TcpStream::from(fd));
        crate::source::bind_address_no_port(&socket);
        socket.bind(SocketAddr::new(source, 0))?;
        socket.connect(server).await
    }

    /// Times [`PROBE_CONNECTS`] TCP connects, all at once, from client 0's address to
    /// `server`: each is one round trip through the link (SYN up, SYN-ACK down). Together
    /// they take one RTT rather than ten; their few packets never queue on a link the probe
    /// does not fill.
    pub async fn probe_rtt(&self, server: SocketAddr) -> Result<RttProbe, String> {
        let source = self.client_ip(0);
        let one = |_| async move {
            let started = Instant::now();
            let stream = self.connect(source, server).await?;
            let ms = started.elapsed().as_secs_f64() * 1e3;
            drop(stream);
            Ok::<f64, std::io::Error>(ms)
        };
        let all = futures_util::future::join_all((0..PROBE_CONNECTS).map(one));
        let results = tokio::time::timeout(PROBE_LIMIT, all).await.map_err(|_| {
            format!("no TCP connect to {server} through the link finished within {PROBE_LIMIT:?}")
        })?;
        let mut ms = Vec::with_capacity(PROBE_CONNECTS);
        for r in results {
            match r {
                Ok(v) => ms.push(v),
                Err(e) => {
                    return Err(format!(
                        "cannot connect to {server} through the link: {e} (the server must \
                         listen on {} or on all addresses)",
                        self.env.host_ip()
                    ))
                }
            }
        }
        probe_summary(&mut ms)
            .ok_or_else(|| format!("no TCP connect to {server} through the link succeeded"))
    }
}

/// n, min, median (the lower middle of an even count) and max of the probe's times.
fn probe_summary(ms: &mut [f64]) -> Option<RttProbe> {
    ms.sort_by(f64::total_cmp);
    Some(RttProbe {
        n: ms.len() as u64,
        min: *ms.first()?,
        p50: ms[(ms.len() - 1) / 2],
        max: *ms.last()?,
    })
}

/// The `net` block of a scenario: the link as configured, the probe, and the window's
/// counts (`end − start`).
pub fn figures(
    spec: &NetSpec,
    n_clients: usize,
    probe: Option<RttProbe>,
    start: &NetCounters,
    end: &NetCounters,
) -> NetFigures {
    let delta = *end - *start;
    let table = spec.class_table();
    let mut per_class = vec![0u64; spec.class_count()];
    for i in 0..n_clients {
        per_class[table[i % table.len()]] += 1;
    }
    let weights = class_weights(spec);
    NetFigures {
        spec: spec.to_string(),
        classes: (0..spec.class_count())
            .map(|c| {
                let link = spec.class_params(c);
                NetClass {
                    weight: weights[c],
                    clients: per_class[c],
                    rtt_ms: link.rtt.as_secs_f64() * 1e3,
                    jitter_ms: link.jitter.as_secs_f64() * 1e3,
                    down_bps: link.down_bps,
                    up_bps: link.up_bps,
                    loss: f64::from(link.loss_ppm) / 1e6,
                    queue_bytes: link.queue_bytes,
                }
            })
            .collect(),
        shared_bps: spec.shared.map(|s| s.rate_bps),
        rtt_measured_ms: probe,
        down: direction(&delta.down),
        up: direction(&delta.up),
        emulator: EmulatorFigures {
            cpu_s: delta.thread_cpu_ns as f64 / 1e9,
            wall_s: delta.wall_ns as f64 / 1e9,
            late_packets: delta.late_packets,
            late_max_us: end.late_max_us,
            saturated: material_lateness(spec, &delta, end.late_max_us) || delta.saturated_cpu(),
        },
    }
}

/// Whether the emulator's lateness in a window matters to what the window measured: more
/// than 1% of the packets left over 1 ms late, and the latest by more than 1 ms and more
/// than 5% of the link's shortest one-way delay (the model's own tolerance). Bursts of
/// packets due at once (one event to every client) leave one after another on a CPU the
/// emulator shares with the load generator, so a few packets of every fan-out are a
/// millisecond or two late; over a 100 ms path that is within what the comparison
/// tolerates, over a 1 ms path it is not.
fn material_lateness(spec: &NetSpec, delta: &NetCounters, late_max_us: u64) -> bool {
    let delivered = delta.down.delivered_packets + delta.up.delivered_packets;
    let one_way_us = (0..spec.class_count())
        .map(|c| spec.class_params(c).rtt.as_micros() as u64 / 2)
        .min()
        .unwrap_or(0);
    let limit_us = (one_way_us / 20).max(1_000);
    delta.late_packets * 100 > delivered && late_max_us > limit_us
}

/// Each class's share of the clients, 0–1.
fn class_weights(spec: &NetSpec) -> Vec<f64> {
    match &spec.classes {
        Classes::Single(_) => vec![1.0],
        Classes::Mix(v) => v.iter().map(|(w, _)| f64::from(*w) / 100.0).collect(),
    }
}

/// The longest RTT of any class.
pub fn max_rtt(spec: &NetSpec) -> Duration {
    (0..spec.class_count())
        .map(|c| spec.class_params(c).rtt)
        .max()
        .unwrap_or_default()
}

/// The widest jitter of any class.
fn max_jitter(spec: &NetSpec) -> Duration {
    (0..spec.class_count())
        .map(|c| spec.class_params(c).jitter)
        .max()
        .unwrap_or_default()
}

/// Whether any class loses packets.
fn lossy(spec: &NetSpec) -> bool {
    (0..spec.class_count()).any(|c| spec.class_params(c).loss_ppm > 0)
}

fn direction(d: &feedbench_netem::DirCounters) -> NetDirection {
    NetDirection {
        packets: d.packets,
        bytes: d.bytes,
        delivered_packets: d.delivered_packets,
        delivered_bytes: d.delivered_bytes,
        tcp_retransmits: d.tcp_retransmits,
        drops_loss: d.drops_loss,
        drops_queue: d.drops_queue,
        drops_overflow: d.drops_overflow,
    }
}

/// Warnings about the link: an emulator that could not keep up shaped the figures, not
/// the network it emulates.
pub fn warnings(net: &NetFigures) -> Vec<String> {
    let mut w = Vec::new();
    let e = &net.emulator;
    let busy = e.cpu_s / e.wall_s.max(1e-9);
    let delivered = net.down.delivered_packets + net.up.delivered_packets;
    let overflow = net.down.drops_overflow + net.up.drops_overflow;
    if busy > 0.9 {
        w.push(format!(
            "the network emulator was saturated: its thread used {:.0}% of a core, so the \
             link was slower than specified and latency includes the emulator's own queueing",
            100.0 * busy
        ));
    } else if e.saturated && overflow == 0 {
        w.push(format!(
            "the network emulator delivered {} of {delivered} packets ({:.1}%) more than 1 ms \
             after their time, the latest {:.1} ms late, more than 5% of the link's one-way \
             delay (packets due at once, such as one event to every client, leave one after \
             another, on a CPU shared with the load generator): latency here includes up to \
             that much of the emulator's own delay",
            e.late_packets,
            100.0 * e.late_packets as f64 / delivered.max(1) as f64,
            e.late_max_us as f64 / 1e3
        ));
    }
    if overflow > 0 {
        w.push(format!(
            "the network emulator dropped {overflow} packets because its holding queue was \
             full (not the link's queue): the load exceeds what the emulator can hold in flight"
        ));
    }
    w
}

/// What a link adds to the drain wait: the last event's trip (two RTTs with jitter, for a
/// long-poll that must re-request first), and under loss the retransmission timeouts that
/// may stall a stream (TCP's first RTO is at least 200 ms and doubles; three of them).
pub fn drain_slack(spec: &NetSpec) -> Duration {
    let trip = (max_rtt(spec) + max_jitter(spec) * 2) * 2;
    let rto = if lossy(spec) {
        (max_rtt(spec) + Duration::from_millis(200)) * 7
    } else {
        Duration::ZERO
    };
    trip + rto
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(late: u64, delivered: u64) -> NetCounters {
        let mut c = NetCounters::default();
        c.down.delivered_packets = delivered;
        c.late_packets = late;
        c
    }

    #[test]
    fn a_mix_gives_each_class_its_share_of_the_clients() {
        let spec: NetSpec = "mix(30%:rtt=20ms|50%:4g|20%:satellite),shared=50mbit"
            .parse()
            .unwrap();
        let f = figures(&spec, 10, None, &NetCounters::default(), &counters(0, 0));
        let clients: Vec<u64> = f.classes.iter().map(|c| c.clients).collect();
        assert_eq!(clients, [3, 5, 2]);
        let weights: Vec<f64> = f.classes.iter().map(|c| c.weight).collect();
        assert_eq!(weights, [0.3, 0.5, 0.2]);
        assert_eq!(f.classes[1].rtt_ms, 170.0);
        assert_eq!(f.classes[1].down_bps, Some(9_000_000));
        assert_eq!(f.shared_bps, Some(50_000_000));
        assert_eq!(max_rtt(&spec), Duration::from_millis(600));
    }

    #[test]
    fn lateness_matters_only_beyond_a_twentieth_of_the_transit() {
        let spec: NetSpec = "rtt=200ms".parse().unwrap();
        // 2% of packets late, the latest 4 ms: within 5% of 100 ms one way.
        assert!(!material_lateness(&spec, &counters(20, 1000), 4_000));
        // The latest 6 ms: beyond it.
        assert!(material_lateness(&spec, &counters(20, 1000), 6_000));
        // Under 1% late: never.
        assert!(!material_lateness(&spec, &counters(9, 1000), 60_000));
        // Over a 0 ms link the floor is 1 ms.
        let zero: NetSpec = "rtt=0ms".parse().unwrap();
        assert!(material_lateness(&zero, &counters(20, 1000), 1_001));
        assert!(!material_lateness(&zero, &counters(20, 1000), 1_000));
    }

    #[test]
    fn the_drain_waits_longer_on_long_and_lossy_links() {
        let plain: NetSpec = "rtt=100ms".parse().unwrap();
        assert_eq!(drain_slack(&plain), Duration::from_millis(200));
        let lossy: NetSpec = "rtt=100ms,jitter=10ms,loss=1%".parse().unwrap();
        // Two trips of 120 ms, and seven of (RTT + 200 ms).
        assert_eq!(drain_slack(&lossy), Duration::from_millis(240 + 2100));
    }

    #[test]
    fn the_probe_summary_is_n_min_median_max() {
        let mut ms = [40.2, 40.1, 41.0, 40.4];
        let p = probe_summary(&mut ms).unwrap();
        assert_eq!((p.n, p.min, p.p50, p.max), (4, 40.1, 40.2, 41.0));
        assert!(probe_summary(&mut []).is_none());
    }
}
