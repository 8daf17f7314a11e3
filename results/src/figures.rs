//! Figures derived from a scenario's recorded ones, defined once for every reader.
//!
//! Each is a ratio of fields in the file (or one field in the unit readers show) and `None`
//! where its denominator is zero or the file lacks what it needs, so a report shows "no
//! figure" rather than a made-up one.

use crate::clock::clock_uncertainty_warning;
use crate::scenario::ScenarioResult;
use crate::stack::{ByteLayers, LayersPer};

impl ScenarioResult {
    /// Payload bytes per delivered event, or `None` when nothing was delivered.
    pub fn payload_per_event(&self) -> Option<f64> {
        (self.events.delivered > 0)
            .then(|| self.bytes.payload as f64 / self.events.delivered as f64)
    }

    /// Setup bytes (both directions) per opened connection.
    pub fn setup_bytes_per_connection(&self) -> Option<f64> {
        let total = self.bytes.setup_up + self.bytes.setup_down;
        (self.connections.opened > 0).then(|| total as f64 / self.connections.opened as f64)
    }

    /// Server CPU milliseconds per 1,000 delivered events.
    pub fn server_cpu_ms_per_1k_events(&self) -> Option<f64> {
        let server = self.server.as_ref()?;
        (self.events.delivered > 0)
            .then(|| server.cpu_s * 1_000.0 * 1_000.0 / self.events.delivered as f64)
    }

    /// A server counter of the window ([`ProcessCounts`](crate::ProcessCounts)) per
    /// delivered event, e.g. `s.server_count_per_event(|c| c.allocations)`; `None` when the
    /// server does not report it or nothing was delivered.
    pub fn server_count_per_event(
        &self,
        field: fn(&crate::ProcessCounts) -> Option<u64>,
    ) -> Option<f64> {
        let count = field(self.server.as_ref()?.counts.as_ref()?)?;
        (self.events.delivered > 0).then(|| count as f64 / self.events.delivered as f64)
    }

    /// A load-generator counter of the window per delivered event; `None` when not
    /// reported or nothing was delivered.
    pub fn loadgen_count_per_event(
        &self,
        field: fn(&crate::ProcessCounts) -> Option<u64>,
    ) -> Option<f64> {
        let count = field(self.loadgen.counts.as_ref()?)?;
        (self.events.delivered > 0).then(|| count as f64 / self.events.delivered as f64)
    }

    /// Server memory per connected client in bytes (see
    /// [`ServerFigures::rss_per_connection_bytes`](crate::ServerFigures::rss_per_connection_bytes));
    /// `None` when the file does not say.
    pub fn server_memory_per_connection(&self) -> Option<f64> {
        self.server.as_ref()?.rss_per_connection_bytes
    }

    /// Share of polls that came back empty, 0..1; `None` when no request was sent.
    pub fn empty_poll_share(&self) -> Option<f64> {
        (self.requests.sent > 0).then(|| self.requests.empty as f64 / self.requests.sent as f64)
    }

    /// Steady-state bandwidth received by all clients, bits per second, over the nominal
    /// measure window (`params.duration_s`).
    pub fn bits_per_s_down(&self) -> Option<f64> {
        (self.params.duration_s > 0.0)
            .then(|| self.bytes.down as f64 * 8.0 / self.params.duration_s)
    }

    /// Steady-state bandwidth sent by all clients, bits per second, over the nominal
    /// measure window (`params.duration_s`).
    pub fn bits_per_s_up(&self) -> Option<f64> {
        (self.params.duration_s > 0.0).then(|| self.bytes.up as f64 * 8.0 / self.params.duration_s)
    }

    /// Share of the server's requests answered on its direct fast path, 0..1; `None` when
    /// the server does not report it or answered none.
    pub fn direct_path_share(&self) -> Option<f64> {
        let by_path = self.server.as_ref()?.requests_by_path?;
        let total = by_path.direct + by_path.hyper;
        (total > 0).then(|| by_path.direct as f64 / total as f64)
    }

    /// How far the delivery latency may be off because the load generator's clock could only
    /// be compared with the server's so well, µs: the clock estimate's `uncertainty_ns`.
    /// `None` when the scenario has no estimate (a server without `GET /time`, files before
    /// schema 2), and when `target_is_loopback` (see
    /// [`is_loopback_target`](crate::is_loopback_target)): on one host both read the same
    /// clock, so the latency is exact whatever the estimate says.
    pub fn clock_uncertainty_us(&self, target_is_loopback: bool) -> Option<f64> {
        if target_is_loopback {
            return None;
        }
        Some(self.clock?.uncertainty_ns as f64 / 1_000.0)
    }

    /// IP bytes (headers, retransmissions and pure ACKs included) per delivered event, in
    /// both directions: `(net.down.bytes + net.up.bytes) / bytes.events`. `None` without a
    /// link block or without events. Harness traffic never crosses the link, so every byte
    /// counted is the measured transport's: nothing is subtracted.
    pub fn ip_bytes_per_event(&self) -> Option<f64> {
        let net = self.net.as_ref()?;
        self.per_event(net.down.bytes + net.up.bytes)
    }

    /// IP bytes server → clients per delivered event (see [`Self::ip_bytes_per_event`]).
    pub fn ip_bytes_per_event_down(&self) -> Option<f64> {
        self.per_event(self.net.as_ref()?.down.bytes)
    }

    /// IP bytes clients → server per delivered event (see [`Self::ip_bytes_per_event`]).
    pub fn ip_bytes_per_event_up(&self) -> Option<f64> {
        self.per_event(self.net.as_ref()?.up.bytes)
    }

    /// IP packets, both directions, per delivered event.
    pub fn ip_packets_per_event(&self) -> Option<f64> {
        let net = self.net.as_ref()?;
        self.per_event(net.down.packets + net.up.packets)
    }

    /// IP bytes over socket bytes in the window, both directions: what TCP/IP adds (headers,
    /// ACKs, retransmissions) as a factor, e.g. 1.4. `None` without a link block or socket
    /// bytes.
    pub fn ip_overhead_factor(&self) -> Option<f64> {
        let net = self.net.as_ref()?;
        let socket = self.bytes.up + self.bytes.down;
        (socket > 0).then(|| (net.down.bytes + net.up.bytes) as f64 / socket as f64)
    }

    /// IP-level bit rate server → clients over the nominal window (`params.duration_s`).
    pub fn ip_bits_per_s_down(&self) -> Option<f64> {
        let net = self.net.as_ref()?;
        (self.params.duration_s > 0.0).then(|| net.down.bytes as f64 * 8.0 / self.params.duration_s)
    }

    /// IP-level bit rate clients → server over the nominal window (`params.duration_s`).
    pub fn ip_bits_per_s_up(&self) -> Option<f64> {
        let net = self.net.as_ref()?;
        (self.params.duration_s > 0.0).then(|| net.up.bytes as f64 * 8.0 / self.params.duration_s)
    }

    /// TCP retransmissions seen on the link, both directions.
    pub fn tcp_retransmits(&self) -> Option<u64> {
        let net = self.net.as_ref()?;
        Some(net.down.tcp_retransmits + net.up.tcp_retransmits)
    }

    /// Window bytes of both directions per event read, by layer (payload, framing, h2, tls,
    /// handshake); they sum to [`ByteFigures::per_event`](crate::ByteFigures::per_event).
    /// `None` without a stack block or without events.
    pub fn split_per_event(&self) -> Option<LayersPer> {
        self.layers_per_event(self.stack.as_ref()?.split.both())
    }

    /// Window bytes clients → server per event read, by layer (see
    /// [`Self::split_per_event`]).
    pub fn split_per_event_up(&self) -> Option<LayersPer> {
        self.layers_per_event(self.stack.as_ref()?.split.up)
    }

    /// Window bytes server → clients per event read, by layer (see
    /// [`Self::split_per_event`]).
    pub fn split_per_event_down(&self) -> Option<LayersPer> {
        self.layers_per_event(self.stack.as_ref()?.split.down)
    }

    /// TLS handshakes completed in the window per event read; `None` without a stack block
    /// or events.
    pub fn handshakes_per_event(&self) -> Option<f64> {
        self.per_event(self.stack.as_ref()?.handshakes)
    }

    /// TLS handshakes completed in the window per request sent (a short-poll without
    /// keep-alive over TLS: 1); `None` without a stack block or requests.
    pub fn handshakes_per_request(&self) -> Option<f64> {
        let stack = self.stack.as_ref()?;
        (self.requests.sent > 0).then(|| stack.handshakes as f64 / self.requests.sent as f64)
    }

    /// Handshake-layer bytes of the window (both directions) per handshake completed in
    /// it; `None` without a stack block or handshakes.
    pub fn handshake_bytes_per_handshake(&self) -> Option<f64> {
        let stack = self.stack.as_ref()?;
        let bytes = stack.split.up.handshake + stack.split.down.handshake;
        (stack.handshakes > 0).then(|| bytes as f64 / stack.handshakes as f64)
    }

    /// Handshake-layer bytes of the window (both directions) per request sent; `None`
    /// without a stack block or requests.
    pub fn handshake_bytes_per_request(&self) -> Option<f64> {
        let stack = self.stack.as_ref()?;
        let bytes = stack.split.up.handshake + stack.split.down.handshake;
        (self.requests.sent > 0).then(|| bytes as f64 / self.requests.sent as f64)
    }

    /// Share of the window's handshakes that resumed a session, 0..1; `None` without
    /// handshakes.
    pub fn resumed_share(&self) -> Option<f64> {
        let stack = self.stack.as_ref()?;
        (stack.handshakes > 0).then(|| stack.resumed as f64 / stack.handshakes as f64)
    }

    /// `layers / bytes.events`, `None` without events.
    fn layers_per_event(&self, layers: ByteLayers) -> Option<LayersPer> {
        LayersPer::of(&layers, self.bytes.events)
    }

    /// `count / bytes.events`, `None` without events.
    fn per_event(&self, count: u64) -> Option<f64> {
        (self.bytes.events > 0).then(|| count as f64 / self.bytes.events as f64)
    }

    /// The warning that this scenario's delivery latency is only known to within its clock
    /// uncertainty, when that exceeds
    /// [`CLOCK_UNCERTAINTY_WARN_SHARE`](crate::CLOCK_UNCERTAINTY_WARN_SHARE) of its p50
    /// (see [`clock_uncertainty_warning`]).
    pub fn clock_warning(&self, target_is_loopback: bool) -> Option<String> {
        let uncertainty_us = self.clock_uncertainty_us(target_is_loopback)?;
        clock_uncertainty_warning(uncertainty_us, self.latency_us.p50 as f64)
    }
}

#[cfg(test)]
mod tests {
    use crate::{ClockFigures, RequestsByPath, ScenarioResult};

    fn scenario() -> ScenarioResult {
        serde_json::from_str(include_str!("../tests/data/scenario-v1.json")).unwrap()
    }

    #[test]
    fn ratios_of_the_recorded_figures() {
        let mut s = scenario();
        s.events.delivered = 3_000;
        s.bytes.payload = 3_000 * 108;
        s.bytes.down = 600_000;
        s.bytes.up = 0;
        s.params.duration_s = 3.0;
        s.connections.opened = 50;
        s.bytes.setup_up = 50 * 180;
        s.bytes.setup_down = 50 * 129;
        s.server.as_mut().unwrap().cpu_s = 0.06;
        assert_eq!(s.payload_per_event(), Some(108.0));
        assert_eq!(s.setup_bytes_per_connection(), Some(309.0));
        assert_eq!(s.server_cpu_ms_per_1k_events(), Some(20.0));
        assert_eq!(s.bits_per_s_down(), Some(1_600_000.0));
        assert_eq!(s.bits_per_s_up(), Some(0.0));
        assert_eq!(
            s.empty_poll_share(),
            None,
            "push transports send no requests"
        );
        s.requests.sent = 200;
        s.requests.empty = 50;
        assert_eq!(s.empty_poll_share(), Some(0.25));
    }

    #[test]
    fn counts_per_delivered_event() {
        let mut s = scenario();
        assert_eq!(s.server_count_per_event(|c| c.allocations), None);
        let delivered = s.events.delivered;
        s.server.as_mut().unwrap().counts = Some(crate::ProcessCounts {
            allocations: Some(delivered * 13 / 2),
            socket_writes: Some(delivered),
            ..crate::ProcessCounts::default()
        });
        s.loadgen.counts = Some(crate::ProcessCounts {
            context_switches: Some(delivered / 4),
            ..crate::ProcessCounts::default()
        });
        assert_eq!(s.server_count_per_event(|c| c.allocations), Some(6.5));
        assert_eq!(s.server_count_per_event(|c| c.socket_writes), Some(1.0));
        assert_eq!(s.server_count_per_event(|c| c.socket_reads), None);
        assert_eq!(
            s.loadgen_count_per_event(|c| c.context_switches),
            Some(0.25)
        );
        s.events.delivered = 0;
        assert_eq!(s.server_count_per_event(|c| c.socket_writes), None);
    }

    #[test]
    fn no_figure_without_its_inputs() {
        let mut s = scenario();
        s.events.delivered = 0;
        s.params.duration_s = 0.0;
        s.connections.opened = 0;
        assert_eq!(s.payload_per_event(), None);
        assert_eq!(s.server_cpu_ms_per_1k_events(), None);
        assert_eq!(s.bits_per_s_down(), None);
        assert_eq!(s.setup_bytes_per_connection(), None);
        assert_eq!(s.direct_path_share(), None);
        s.server.as_mut().unwrap().requests_by_path = Some(RequestsByPath {
            direct: 0,
            hyper: 0,
        });
        assert_eq!(s.direct_path_share(), None);
        s.server.as_mut().unwrap().requests_by_path = Some(RequestsByPath {
            direct: 90,
            hyper: 10,
        });
        assert_eq!(s.direct_path_share(), Some(0.9));
        s.server = None;
        assert_eq!(s.server_memory_per_connection(), None);
    }

    #[test]
    fn ip_figures_of_the_link_block() {
        let mut s = scenario();
        assert_eq!(s.ip_bytes_per_event(), None, "no link, no IP figures");
        s.net = Some(crate::net::tests::block());
        s.bytes.events = 600;
        s.bytes.down = 600 * 109;
        s.bytes.up = 0;
        s.params.duration_s = 3.0;
        assert_eq!(s.ip_bytes_per_event_down(), Some(161.0));
        assert_eq!(s.ip_bytes_per_event_up(), Some(52.0));
        assert_eq!(s.ip_bytes_per_event(), Some(213.0));
        assert_eq!(s.ip_packets_per_event(), Some(2.0));
        assert_eq!(s.ip_overhead_factor(), Some(213.0 / 109.0));
        assert_eq!(s.ip_bits_per_s_down(), Some(96_600.0 * 8.0 / 3.0));
        assert_eq!(s.ip_bits_per_s_up(), Some(600.0 * 52.0 * 8.0 / 3.0));
        assert_eq!(s.tcp_retransmits(), Some(6));
        s.bytes.events = 0;
        assert_eq!(s.ip_bytes_per_event(), None);
    }

    #[test]
    fn split_and_handshakes_per_event() {
        use crate::stack::{ByteLayers, ByteSplit, StackFigures};
        let mut s = scenario();
        assert_eq!(s.split_per_event(), None, "no stack block in old files");
        assert_eq!(s.handshakes_per_request(), None);
        // 100 short-polls without keep-alive over TLS, 50 events of 107 B JSON.
        s.bytes.events = 50;
        s.requests.sent = 100;
        s.stack = Some(StackFigures {
            tls_version: Some("TLSv1.3".into()),
            cipher_suite: Some("TLS13_AES_128_GCM_SHA256".into()),
            alpn: Some("http/1.1".into()),
            http: "1.1".into(),
            handshakes: 100,
            resumed: 75,
            handshakes_total: 102,
            split: ByteSplit {
                up: ByteLayers {
                    payload: 0,
                    framing: 100 * 90,
                    h2: 0,
                    tls: 100 * 22,
                    handshake: 100 * 500,
                },
                down: ByteLayers {
                    payload: 50 * 107,
                    framing: 100 * 150,
                    h2: 0,
                    tls: 100 * 22,
                    handshake: 100 * 2_500,
                },
            },
            run_tls: None,
        });
        let down = s.split_per_event_down().unwrap();
        assert_eq!(down.payload, 107.0);
        assert_eq!(down.framing, 300.0);
        assert_eq!(down.tls, 44.0);
        assert_eq!(down.handshake, 5_000.0);
        assert_eq!(s.split_per_event_up().unwrap().handshake, 1_000.0);
        assert_eq!(s.split_per_event().unwrap().handshake, 6_000.0);
        assert_eq!(
            s.split_per_event().unwrap().sum(),
            107.0 + 480.0 + 88.0 + 6_000.0
        );
        assert_eq!(s.handshakes_per_event(), Some(2.0));
        assert_eq!(s.handshakes_per_request(), Some(1.0));
        assert_eq!(s.handshake_bytes_per_handshake(), Some(3_000.0));
        assert_eq!(s.handshake_bytes_per_request(), Some(3_000.0));
        assert_eq!(s.resumed_share(), Some(0.75));
        s.bytes.events = 0;
        s.requests.sent = 0;
        assert_eq!(s.split_per_event(), None);
        assert_eq!(s.handshakes_per_request(), None);
    }

    fn clock(uncertainty_ns: u64) -> ClockFigures {
        ClockFigures {
            offset_ns: 1_200_000,
            uncertainty_ns,
            min_rtt_ns: 2 * uncertainty_ns,
            samples: 16,
            applied: true,
        }
    }

    #[test]
    fn clock_uncertainty_only_across_hosts() {
        let mut s = scenario();
        s.latency_us.p50 = 2_000;
        assert_eq!(s.clock_uncertainty_us(false), None, "no estimate");
        assert_eq!(s.clock_warning(false), None);
        s.clock = Some(clock(30_000));
        assert_eq!(s.clock_uncertainty_us(false), Some(30.0));
        assert_eq!(s.clock_warning(false), None, "1.5% of the p50");
        assert_eq!(s.clock_uncertainty_us(true), None, "one host, one clock");
        s.clock = Some(clock(500_000));
        assert_eq!(s.clock_uncertainty_us(false), Some(500.0));
        let w = s.clock_warning(false).expect("25% of the p50");
        assert!(
            w.starts_with("delivery latency is only known to ± 500 µs (25% of its p50 of 2 ms)"),
            "{w}"
        );
        assert_eq!(s.clock_warning(true), None);
    }
}
