//! Server configuration: the feed's initial settings and every limit the server enforces.
//!
//! All limits have defaults that suit a single benchmark host; `validate` refuses
//! combinations that could never work (a WebSocket queue longer than the ring it reads
//! from, a zero-sized ring) before anything binds.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::ServerError;

/// Largest `payload_bytes` the feed accepts (1 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Highest feed rate the feed accepts, in events per second.
pub const MAX_RATE_HZ: f64 = 1_000_000.0;
/// Largest `retain` (ring capacity in events).
pub const MAX_RETAIN: usize = 10_000_000;

/// Everything needed to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind; port 0 picks a free port (read it back from `ServerHandle::local_addr`).
    pub addr: SocketAddr,
    /// Initial feed rate in events per second; 0 pauses the feed.
    pub rate_hz: f64,
    /// Initial length of each event's `data` filler, in bytes.
    pub payload_bytes: usize,
    /// How many recent events the ring keeps for polling cursors and replay.
    pub retain: usize,
    /// How many events a WebSocket or SSE consumer may fall behind the head before it is
    /// closed as a slow consumer.
    pub ws_queue: usize,
    /// Open connections above which new ones are refused at once.
    pub max_connections: usize,
    /// When set, `PUT /control/feed` needs `Authorization: Bearer TOKEN`.
    pub control_token: Option<String>,
    /// How long a client may take to send a complete request head.
    pub header_timeout: Duration,
    /// Largest request head (request line plus headers) in bytes.
    pub max_header_bytes: usize,
    /// Largest request body (only `PUT /control/feed` takes one) in bytes.
    pub max_body_bytes: usize,
    /// Largest WebSocket frame (and message) a client may send, in bytes.
    pub max_frame_bytes: usize,
    /// How long shutdown waits for connections to finish before dropping them.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rate_hz: 10.0,
            payload_bytes: 64,
            retain: 100_000,
            ws_queue: 4_096,
            max_connections: 19_800,
            control_token: None,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            max_frame_bytes: 64 * 1024,
            shutdown_grace: Duration::from_millis(1_500),
        }
    }
}

impl ServerConfig {
    /// Checks every field and the combinations between them.
    pub fn validate(&self) -> Result<(), ServerError> {
        validate_feed(self.rate_hz, self.payload_bytes).map_err(ServerError::Config)?;
        let bad = |msg: String| Err(ServerError::Config(msg));
        if self.retain == 0 || self.retain > MAX_RETAIN {
            return bad(format!(
                "retain must be 1..={MAX_RETAIN}, got {}",
                self.retain
            ));
        }
        if self.ws_queue == 0 || self.ws_queue > self.retain {
            return bad(format!(
                "ws-queue must be 1..=retain ({}), got {}",
                self.retain, self.ws_queue
            ));
        }
        if self.max_connections == 0 {
            return bad("max-connections must be at least 1".into());
        }
        if self.header_timeout.is_zero() {
            return bad("header timeout must be above 0".into());
        }
        if self.max_header_bytes < 1024 {
            return bad(format!(
                "max header bytes must be at least 1024, got {}",
                self.max_header_bytes
            ));
        }
        if self.max_frame_bytes < 125 {
            return bad(format!(
                "max-frame must be at least 125 bytes, got {}",
                self.max_frame_bytes
            ));
        }
        Ok(())
    }
}

/// Checks a feed setting; the message names the field and the allowed range.
pub fn validate_feed(rate_hz: f64, payload_bytes: usize) -> Result<(), String> {
    if !rate_hz.is_finite() || !(0.0..=MAX_RATE_HZ).contains(&rate_hz) {
        return Err(format!(
            "rate_hz must be a number in 0..={MAX_RATE_HZ}, got {rate_hz}"
        ));
    }
    if payload_bytes > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "payload_bytes must be 0..={MAX_PAYLOAD_BYTES}, got {payload_bytes}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        ServerConfig::default().validate().unwrap();
    }

    #[test]
    fn refuses_queue_longer_than_ring() {
        let cfg = ServerConfig {
            retain: 10,
            ws_queue: 11,
            ..ServerConfig::default()
        };
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("ws-queue"), "{err}");
    }

    #[test]
    fn refuses_bad_feed() {
        assert!(validate_feed(f64::NAN, 1).is_err());
        assert!(validate_feed(-1.0, 1).is_err());
        assert!(validate_feed(1.0, MAX_PAYLOAD_BYTES + 1).is_err());
        assert!(validate_feed(0.0, 0).is_ok());
    }
}
