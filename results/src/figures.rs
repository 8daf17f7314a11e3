//! Figures derived from a scenario's recorded ones, defined once for every reader.
//!
//! Each is a ratio of fields in the file and `None` where its denominator is zero or the
//! file lacks what it needs, so a report shows "no figure" rather than a made-up one.

use crate::scenario::ScenarioResult;

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
}

#[cfg(test)]
mod tests {
    use crate::{RequestsByPath, ScenarioResult};

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
}
