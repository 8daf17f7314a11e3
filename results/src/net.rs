//! The emulated network link of a scenario: what it was asked to be and what crossed it.
//!
//! When clients and server are joined by the user-space link emulator (`netem/`), the load
//! generator records a [`NetFigures`] block per scenario: the canonical link spec, one
//! [`NetClass`] per kind of client link (one for a plain spec, several for a mix), the
//! round trip measured through the link before the window ([`RttProbe`]), the IP-level
//! packet and byte counters of each direction over the measure window ([`NetDirection`]),
//! and the emulator's own cost and health ([`EmulatorFigures`]).
//!
//! Architecture invariant: the counters describe the link only. Harness traffic (control,
//! `/stats`, the feed read after the window, `GET /time`) never goes through the link, so
//! IP figures need no subtraction: every packet counted belongs to the measured transport.
//! Shards of one run share one link, so every shard file carries the same block and a merge
//! takes it once.
//!
//! Absent block (`ScenarioResult::net` is `None`): loopback, no emulation. The block is an
//! additive optional field of schema 2.

use serde::{Deserialize, Serialize};

/// The emulated link of one scenario and what crossed it in the measure window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetFigures {
    /// The canonical link spec as given, e.g. `rtt=100ms,loss=1%` or a profile name.
    pub spec: String,
    /// One class per kind of client link: one for a plain spec, several for a mix.
    pub classes: Vec<NetClass>,
    /// A bottleneck shared by all clients on the server's side, bits per second, if any.
    #[serde(default)]
    pub shared_bps: Option<u64>,
    /// TCP connect times through the link before the window, ms; `None` if not probed.
    #[serde(default)]
    pub rtt_measured_ms: Option<RttProbe>,
    /// Server → clients over the window.
    pub down: NetDirection,
    /// Clients → server over the window.
    pub up: NetDirection,
    /// The emulator's own cost and timeliness over the window.
    pub emulator: EmulatorFigures,
}

impl NetFigures {
    /// The only class of a plain (single-class) spec; `None` for a mix.
    pub fn single_class(&self) -> Option<&NetClass> {
        match self.classes.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }
}

/// One kind of client link within a spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetClass {
    /// Share of the clients this class was meant to get, 0..=1.
    pub weight: f64,
    /// Clients that got this class.
    pub clients: u64,
    /// Round-trip time the link adds, ms (each direction adds half).
    pub rtt_ms: f64,
    /// Jitter, ms: each packet's delay varies uniformly within ± this.
    pub jitter_ms: f64,
    /// Bandwidth towards the client, bits per second; `None` for unlimited.
    #[serde(default)]
    pub down_bps: Option<u64>,
    /// Bandwidth from the client, bits per second; `None` for unlimited.
    #[serde(default)]
    pub up_bps: Option<u64>,
    /// Share of packets dropped at random, 0..=1, each direction.
    pub loss: f64,
    /// Queue limit of the link, bytes; `None` for the emulator's default.
    #[serde(default)]
    pub queue_bytes: Option<u64>,
}

/// Connect times through the link: n probes, min, median and max, ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RttProbe {
    /// Probes made.
    pub n: u64,
    /// Shortest, ms.
    pub min: f64,
    /// Median, ms.
    pub p50: f64,
    /// Longest, ms.
    pub max: f64,
}

/// IP-level counters of one direction of the link over the measure window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetDirection {
    /// IP packets offered to the link.
    pub packets: u64,
    /// IP bytes offered to the link (headers included).
    pub bytes: u64,
    /// IP packets delivered to the other side.
    pub delivered_packets: u64,
    /// IP bytes delivered to the other side.
    pub delivered_bytes: u64,
    /// TCP segments seen again (same sequence range): retransmissions by the sender.
    pub tcp_retransmits: u64,
    /// Packets dropped by the random loss.
    pub drops_loss: u64,
    /// Packets dropped because the link's queue was full.
    pub drops_queue: u64,
    /// Packets dropped because the emulator could not keep up (its own buffers overflowed).
    pub drops_overflow: u64,
}

/// The emulator's own cost and timeliness over the window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmulatorFigures {
    /// CPU seconds the emulator used.
    pub cpu_s: f64,
    /// Wall seconds the figures cover.
    pub wall_s: f64,
    /// Packets released later than scheduled by more than the emulator's tolerance.
    pub late_packets: u64,
    /// The latest release, µs behind schedule.
    pub late_max_us: u64,
    /// Whether the emulator was saturated (figures then describe the emulator, not the link).
    pub saturated: bool,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A one-class block: 100 ms RTT, 1% loss.
    pub(crate) fn block() -> NetFigures {
        NetFigures {
            spec: "rtt=100ms,loss=1%".into(),
            classes: vec![NetClass {
                weight: 1.0,
                clients: 10,
                rtt_ms: 100.0,
                jitter_ms: 0.0,
                down_bps: None,
                up_bps: None,
                loss: 0.01,
                queue_bytes: None,
            }],
            shared_bps: None,
            rtt_measured_ms: Some(RttProbe {
                n: 8,
                min: 100.2,
                p50: 100.4,
                max: 101.0,
            }),
            down: NetDirection {
                packets: 600,
                bytes: 600 * 161,
                delivered_packets: 594,
                delivered_bytes: 594 * 161,
                tcp_retransmits: 6,
                drops_loss: 6,
                drops_queue: 0,
                drops_overflow: 0,
            },
            up: NetDirection {
                packets: 600,
                bytes: 600 * 52,
                delivered_packets: 600,
                delivered_bytes: 600 * 52,
                tcp_retransmits: 0,
                drops_loss: 0,
                drops_queue: 0,
                drops_overflow: 0,
            },
            emulator: EmulatorFigures {
                cpu_s: 0.12,
                wall_s: 3.0,
                late_packets: 0,
                late_max_us: 40,
                saturated: false,
            },
        }
    }

    #[test]
    fn round_trips_and_names_its_single_class() {
        let b = block();
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["classes"][0]["rtt_ms"], 100.0);
        assert_eq!(v["down"]["bytes"], 96_600);
        assert_eq!(v["rtt_measured_ms"]["p50"], 100.4);
        let back: NetFigures = serde_json::from_value(v).unwrap();
        assert_eq!(back, b);
        assert_eq!(b.single_class().map(|c| c.rtt_ms), Some(100.0));
        let mut mix = b.clone();
        mix.classes.push(mix.classes[0].clone());
        assert_eq!(mix.single_class(), None);
    }
}
