//! The protocol stack a scenario ran over (TLS, HTTP version) and its window bytes split by
//! the layer that sent them.
//!
//! Invariant: in every [`ByteLayers`] the five layers sum to the socket bytes of its
//! direction exactly (`bytes.up`, `bytes.down`): the split divides what the socket counted,
//! it never estimates bytes of its own.

use serde::{Deserialize, Serialize};

/// [`StackFigures::http`] and [`Params::http`](crate::Params::http) for HTTP/1.1 (and the
/// WebSocket upgrade that starts from it).
pub const HTTP_1_1: &str = "1.1";

/// [`StackFigures::http`] and [`Params::http`](crate::Params::http) for HTTP/2.
pub const HTTP_2: &str = "2";

/// The stack one scenario's connections used and what each layer cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackFigures {
    /// Negotiated TLS version (`TLSv1.3`), null without TLS or when no handshake completed.
    #[serde(default)]
    pub tls_version: Option<String>,
    /// Negotiated cipher suite (`TLS13_AES_128_GCM_SHA256`), null without TLS or when no
    /// handshake completed.
    #[serde(default)]
    pub cipher_suite: Option<String>,
    /// Protocol agreed by ALPN (`h2`, `http/1.1`), null when none was (plaintext, or a
    /// server that ignores ALPN).
    #[serde(default)]
    pub alpn: Option<String>,
    /// HTTP version the clients spoke: [`HTTP_1_1`] or [`HTTP_2`].
    pub http: String,
    /// TLS handshakes completed inside the measure window.
    pub handshakes: u64,
    /// Of those, handshakes that resumed a session (⊆ `handshakes`).
    pub resumed: u64,
    /// TLS handshakes completed over the whole run, setup included.
    pub handshakes_total: u64,
    /// The window's socket bytes by layer.
    pub split: ByteSplit,
    /// The whole run's TLS totals (setup and every phase, the window's included), by
    /// direction: what a packet capture of the run sees (`scripts/verify-tls-pcap.sh`
    /// checks them). Absent without TLS and in files written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_tls: Option<TlsRun>,
}

/// The whole run's socket bytes of a TLS scenario, both directions, by TLS layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsRun {
    /// Client → server; sums to `bytes.total_up`.
    pub up: TlsLayers,
    /// Server → client; sums to `bytes.total_down`.
    pub down: TlsLayers,
}

/// One direction's whole-run socket bytes by TLS layer; the three sum to the socket bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsLayers {
    /// Application data: the plaintext above TLS.
    pub plaintext: u64,
    /// Record headers, content types and AEAD tags of application-data records.
    pub tls: u64,
    /// Every record that is not application data (handshake flights, session tickets,
    /// alerts), whole.
    pub handshake: u64,
}

impl TlsLayers {
    /// The three together: the socket bytes of this direction.
    pub fn sum(&self) -> u64 {
        self.plaintext + self.tls + self.handshake
    }
}

impl TlsRun {
    /// Direction by direction, layer by layer sum of `self` and `other` (shards).
    pub fn add(&mut self, other: &TlsRun) {
        for (mine, theirs) in [(&mut self.up, &other.up), (&mut self.down, &other.down)] {
            mine.plaintext += theirs.plaintext;
            mine.tls += theirs.tls;
            mine.handshake += theirs.handshake;
        }
    }
}

/// The window's socket bytes of both directions by layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteSplit {
    /// Client → server; sums to `bytes.up`.
    pub up: ByteLayers,
    /// Server → client; sums to `bytes.down`.
    pub down: ByteLayers,
}

/// One direction's window bytes by the layer that sent them. The five sum to the socket
/// bytes exactly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteLayers {
    /// Event JSON bytes (0 up).
    pub payload: u64,
    /// The transport's own framing: HTTP/1.1 heads, chunked framing and the poll JSON
    /// envelope, ws frame headers, SSE field names; over HTTP/2 the DATA payload minus the
    /// event JSON.
    pub framing: u64,
    /// HTTP/2 frame headers, HPACK header blocks and control frames: the plaintext above TLS
    /// minus the DATA payload; 0 over HTTP/1.1.
    pub h2: u64,
    /// TLS record headers, content types and AEAD tags of application-data records (TLS 1.3
    /// with AES-GCM: 22 bytes per record); 0 without TLS.
    pub tls: u64,
    /// TLS handshake flights and every other record that is not application data (session
    /// tickets, alerts such as close_notify); 0 without TLS.
    pub handshake: u64,
}

impl ByteLayers {
    /// The five layers together: the socket bytes of this direction.
    pub fn sum(&self) -> u64 {
        self.payload + self.framing + self.h2 + self.tls + self.handshake
    }

    /// Layer by layer sum of `self` and `other` (shards, clients).
    pub fn add(&mut self, other: &ByteLayers) {
        self.payload += other.payload;
        self.framing += other.framing;
        self.h2 += other.h2;
        self.tls += other.tls;
        self.handshake += other.handshake;
    }
}

impl ByteSplit {
    /// Direction by direction sum of `self` and `other`.
    pub fn add(&mut self, other: &ByteSplit) {
        self.up.add(&other.up);
        self.down.add(&other.down);
    }

    /// Both directions together, layer by layer.
    pub fn both(&self) -> ByteLayers {
        let mut both = self.up;
        both.add(&self.down);
        both
    }
}

/// A [`ByteLayers`] divided by a count (events, requests): each layer's bytes per unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LayersPer {
    /// Event JSON bytes per unit.
    pub payload: f64,
    /// Transport framing bytes per unit.
    pub framing: f64,
    /// HTTP/2 framing and HPACK bytes per unit.
    pub h2: f64,
    /// TLS record overhead bytes per unit.
    pub tls: f64,
    /// TLS handshake (and other non-application record) bytes per unit.
    pub handshake: f64,
}

impl LayersPer {
    /// `layers / count`, `None` when `count` is 0.
    pub fn of(layers: &ByteLayers, count: u64) -> Option<LayersPer> {
        let per = |x: u64| x as f64 / count as f64;
        (count > 0).then(|| LayersPer {
            payload: per(layers.payload),
            framing: per(layers.framing),
            h2: per(layers.h2),
            tls: per(layers.tls),
            handshake: per(layers.handshake),
        })
    }

    /// The five together.
    pub fn sum(&self) -> f64 {
        self.payload + self.framing + self.h2 + self.tls + self.handshake
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_sum_and_add() {
        let mut a = ByteLayers {
            payload: 107,
            framing: 2,
            h2: 0,
            tls: 22,
            handshake: 0,
        };
        assert_eq!(a.sum(), 131);
        a.add(&ByteLayers {
            payload: 0,
            framing: 1,
            h2: 3,
            tls: 22,
            handshake: 4_000,
        });
        assert_eq!(a.sum(), 131 + 4_026);
        assert_eq!((a.framing, a.tls, a.handshake), (3, 44, 4_000));
        let split = ByteSplit {
            up: ByteLayers {
                framing: 100,
                ..ByteLayers::default()
            },
            down: a,
        };
        assert_eq!(split.both().sum(), 100 + 131 + 4_026);
        let per = LayersPer::of(&split.down, 2).unwrap();
        assert_eq!(per.tls, 22.0);
        assert_eq!(per.sum(), (131.0 + 4_026.0) / 2.0);
        assert_eq!(LayersPer::of(&split.down, 0), None);
    }
}
