//! The emulator's counters: atomics the forwarder thread bumps, and [`NetCounters`], the
//! `Copy` snapshot a caller reads at any time and subtracts for a window's deltas.
//!
//! Packet and byte figures are IP-level: the IP total length, headers included, ACKs
//! included, i.e. what the sender put on the wire. `packets`/`bytes` count what entered
//! the emulator in a direction (before loss and queue decisions), `delivered_*` what it
//! wrote out. IPv4 only: other packets (the kernel's IPv6 chatter on the TUN devices) are
//! dropped and counted apart in `non_ipv4_drops`.

use std::ops::Sub;
use std::sync::atomic::{AtomicU64, Ordering};

/// One direction's figures in a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirCounters {
    /// IPv4 packets that entered the emulator.
    pub packets: u64,
    /// Their bytes (IP total length).
    pub bytes: u64,
    /// Packets written out to the other side.
    pub delivered_packets: u64,
    /// Their bytes.
    pub delivered_bytes: u64,
    /// Packets dropped by the random loss.
    pub drops_loss: u64,
    /// Packets dropped by a full queue (access link or bottleneck).
    pub drops_queue: u64,
    /// Packets dropped because the emulator held too many (its memory bound).
    pub drops_overflow: u64,
    /// TCP segments that carry payload, SYN or FIN.
    pub tcp_segments: u64,
    /// Of those, retransmissions: the end sequence is not beyond the highest end seen
    /// before on the same flow and direction (32-bit serial arithmetic), counted at
    /// ingress, before the loss decision. Keepalives and window probes count too.
    pub tcp_retransmits: u64,
}

/// A snapshot of every counter; subtract two for a window (`later - earlier`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    /// Host → client.
    pub down: DirCounters,
    /// Client → host.
    pub up: DirCounters,
    /// Non-IPv4 packets dropped (not counted in `down`/`up`).
    pub non_ipv4_drops: u64,
    /// Writes to a TUN device that failed (the packet is lost; not in `delivered_*`).
    pub write_errors: u64,
    /// Times the TCP flow table hit its bound and was cleared.
    pub flow_table_resets: u64,
    /// Packets written more than 1 ms after their departure time.
    pub late_packets: u64,
    /// The largest lateness seen since the emulator started or since the last
    /// `NetEnv::take_late_max_us`, µs (a subtraction keeps the later snapshot's value: it is
    /// a running maximum, not a count).
    pub late_max_us: u64,
    /// CPU time the forwarder thread used.
    pub thread_cpu_ns: u64,
    /// Wall time since the forwarder started.
    pub wall_ns: u64,
}

impl DirCounters {
    fn minus(self, o: DirCounters) -> DirCounters {
        DirCounters {
            packets: self.packets.saturating_sub(o.packets),
            bytes: self.bytes.saturating_sub(o.bytes),
            delivered_packets: self.delivered_packets.saturating_sub(o.delivered_packets),
            delivered_bytes: self.delivered_bytes.saturating_sub(o.delivered_bytes),
            drops_loss: self.drops_loss.saturating_sub(o.drops_loss),
            drops_queue: self.drops_queue.saturating_sub(o.drops_queue),
            drops_overflow: self.drops_overflow.saturating_sub(o.drops_overflow),
            tcp_segments: self.tcp_segments.saturating_sub(o.tcp_segments),
            tcp_retransmits: self.tcp_retransmits.saturating_sub(o.tcp_retransmits),
        }
    }
}

impl Sub for NetCounters {
    type Output = NetCounters;

    fn sub(self, o: NetCounters) -> NetCounters {
        NetCounters {
            down: self.down.minus(o.down),
            up: self.up.minus(o.up),
            non_ipv4_drops: self.non_ipv4_drops.saturating_sub(o.non_ipv4_drops),
            write_errors: self.write_errors.saturating_sub(o.write_errors),
            flow_table_resets: self.flow_table_resets.saturating_sub(o.flow_table_resets),
            late_packets: self.late_packets.saturating_sub(o.late_packets),
            late_max_us: self.late_max_us,
            thread_cpu_ns: self.thread_cpu_ns.saturating_sub(o.thread_cpu_ns),
            wall_ns: self.wall_ns.saturating_sub(o.wall_ns),
        }
    }
}

impl NetCounters {
    /// The forwarder thread's CPU time as a fraction of wall time (0 when no time passed).
    pub fn busy_fraction(&self) -> f64 {
        if self.wall_ns == 0 {
            return 0.0;
        }
        self.thread_cpu_ns as f64 / self.wall_ns as f64
    }

    /// Whether the emulator could not keep up in this window, so its figures are suspect.
    ///
    /// The rule: more than 1% of delivered packets were late by more than 1 ms, or any
    /// packet was dropped for the memory bound, or the forwarder thread was busy more
    /// than 90% of the wall time.
    pub fn saturated(&self) -> bool {
        let delivered = self.down.delivered_packets + self.up.delivered_packets;
        self.late_packets * 100 > delivered || self.saturated_cpu()
    }

    /// The part of [`NetCounters::saturated`] that does not depend on what lateness the
    /// measurement can bear: a packet dropped for the memory bound or a full device ring,
    /// or the forwarder thread busy more than 90% of the wall time.
    pub fn saturated_cpu(&self) -> bool {
        self.down.drops_overflow + self.up.drops_overflow > 0 || self.busy_fraction() > 0.9
    }
}

/// One direction's atomics.
#[derive(Debug, Default)]
pub(crate) struct AtomicDir {
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub delivered_packets: AtomicU64,
    pub delivered_bytes: AtomicU64,
    pub drops_loss: AtomicU64,
    pub drops_queue: AtomicU64,
    pub drops_overflow: AtomicU64,
    pub tcp_segments: AtomicU64,
    pub tcp_retransmits: AtomicU64,
}

/// The live counters; only the forwarder thread writes them (relaxed: each is a
/// monotonic tally, and a snapshot need not be a consistent cut across fields).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub down: AtomicDir,
    pub up: AtomicDir,
    pub non_ipv4_drops: AtomicU64,
    pub write_errors: AtomicU64,
    pub flow_table_resets: AtomicU64,
    pub late_packets: AtomicU64,
    pub late_max_us: AtomicU64,
}

/// Adds `n` to a counter.
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

impl AtomicDir {
    fn snapshot(&self) -> DirCounters {
        DirCounters {
            packets: get(&self.packets),
            bytes: get(&self.bytes),
            delivered_packets: get(&self.delivered_packets),
            delivered_bytes: get(&self.delivered_bytes),
            drops_loss: get(&self.drops_loss),
            drops_queue: get(&self.drops_queue),
            drops_overflow: get(&self.drops_overflow),
            tcp_segments: get(&self.tcp_segments),
            tcp_retransmits: get(&self.tcp_retransmits),
        }
    }
}

impl Counters {
    /// A snapshot; the caller fills in the thread's CPU and wall time.
    pub fn snapshot(&self) -> NetCounters {
        NetCounters {
            down: self.down.snapshot(),
            up: self.up.snapshot(),
            non_ipv4_drops: get(&self.non_ipv4_drops),
            write_errors: get(&self.write_errors),
            flow_table_resets: get(&self.flow_table_resets),
            late_packets: get(&self.late_packets),
            late_max_us: get(&self.late_max_us),
            thread_cpu_ns: 0,
            wall_ns: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtraction_gives_window_deltas_and_keeps_the_running_max() {
        let mut a = NetCounters::default();
        a.down.packets = 10;
        a.late_max_us = 7;
        a.wall_ns = 1_000;
        let mut b = a;
        b.down.packets = 25;
        b.late_max_us = 9;
        b.wall_ns = 3_000;
        b.thread_cpu_ns = 1_900;
        let d = b - a;
        assert_eq!(d.down.packets, 15);
        assert_eq!(d.late_max_us, 9);
        assert_eq!(d.wall_ns, 2_000);
        assert!((d.busy_fraction() - 0.95).abs() < 1e-9);
        assert!(d.saturated(), "95% busy is saturated");
    }

    #[test]
    fn one_percent_late_is_the_saturation_line() {
        let mut c = NetCounters::default();
        c.down.delivered_packets = 1_000;
        c.late_packets = 10;
        assert!(!c.saturated());
        c.late_packets = 11;
        assert!(c.saturated());
    }
}
