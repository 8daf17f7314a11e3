//! Server configuration: the feed's initial settings and every limit the server enforces.
//!
//! All limits have defaults that suit a single benchmark host; `validate` refuses
//! combinations that could never work (a WebSocket queue longer than the ring it reads
//! from, a zero-sized ring, a feed the ring's byte bound cannot hold) and an open control
//! endpoint on a non-loopback address, before anything binds.
//!
//! The memory rule: the ring keeps at most `retain` events and at most `retain_bytes` of
//! them ([`event_cost`] each), and a feed may produce at most `retain_bytes` of events per
//! second (`rate_hz × event_cost(payload_bytes) ≤ retain_bytes`). The allocator returns
//! freed pages within about a second, so the feed's share of the server's memory stays
//! under twice `retain_bytes` whatever feed is accepted.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::ServerError;

/// Largest `payload_bytes` the feed accepts (1 MiB).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Highest feed rate the feed accepts, in events per second.
pub const MAX_RATE_HZ: f64 = 1_000_000.0;
/// Lowest non-zero feed rate, in events per second (one event every 1,000 s); anything
/// between 0 and this is refused rather than rounded, so the schedule's arithmetic stays
/// far from `Duration`'s limits.
pub const MIN_RATE_HZ: f64 = 0.001;
/// Default byte bound of the ring (512 MiB): with the allocator's one-second decay the feed
/// costs at most about 1 GiB of memory, comfortable on a 24 GiB benchmark host, while a
/// 1 MHz feed of 64-byte events or a 255 Hz feed of 1 MiB events is still accepted.
pub const DEFAULT_RETAIN_BYTES: usize = 512 << 20;
/// Smallest `retain_bytes`: room for one event of the largest payload.
pub const MIN_RETAIN_BYTES: usize = 2 * MAX_PAYLOAD_BYTES + EVENT_OVERHEAD_BYTES;
/// What a retained event costs beyond twice its payload (JSON and SSE framing with a
/// 20-digit seq and ts, and the event's own struct and allocations), in bytes: 289.
pub const EVENT_OVERHEAD_BYTES: usize =
    crate::event::MAX_FRAMING_BYTES + crate::event::STRUCT_BYTES;

/// The most memory one retained event of `payload_bytes` may take: its JSON and its SSE
/// frame (each the payload plus framing) and [`EVENT_OVERHEAD_BYTES`].
pub const fn event_cost(payload_bytes: usize) -> usize {
    2 * payload_bytes + EVENT_OVERHEAD_BYTES
}

/// The highest rate a feed of `payload_bytes` may have within a ring of `retain_bytes`.
pub fn max_rate_hz(payload_bytes: usize, retain_bytes: usize) -> f64 {
    (retain_bytes as f64 / event_cost(payload_bytes) as f64).min(MAX_RATE_HZ)
}
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
    /// The most bytes of events the ring keeps ([`event_cost`] each); the oldest go first
    /// when either bound is reached.
    pub retain_bytes: usize,
    /// How many events a WebSocket or SSE consumer may fall behind the head before it is
    /// closed as a slow consumer.
    pub ws_queue: usize,
    /// Open connections above which new ones are refused at once.
    pub max_connections: usize,
    /// When set, `PUT /control/feed` needs `Authorization: Bearer TOKEN`.
    pub control_token: Option<String>,
    /// Serve `PUT /control/feed` without a token on a non-loopback address (refused
    /// otherwise, because anyone who can reach the port could change the feed).
    pub control_open: bool,
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
    /// Serve TLS (https, wss) with these settings instead of plaintext.
    pub tls: Option<crate::tls::TlsSettings>,
    /// How long a TLS client may take from connecting to finishing its handshake.
    pub tls_handshake_timeout: Duration,
    /// The publisher writes new events itself to caught-up plain WebSocket and SSE sockets
    /// and answers parked plain long-polls (`crate::fanout`); `false` leaves every write
    /// to the stream's task.
    pub publisher_writes: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rate_hz: 10.0,
            payload_bytes: 64,
            retain: 100_000,
            retain_bytes: DEFAULT_RETAIN_BYTES,
            ws_queue: 4_096,
            max_connections: 19_800,
            control_token: None,
            control_open: false,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_body_bytes: 64 * 1024,
            max_frame_bytes: 64 * 1024,
            shutdown_grace: Duration::from_millis(1_500),
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
            publisher_writes: true,
        }
    }
}

impl ServerConfig {
    /// Checks every field and the combinations between them.
    pub fn validate(&self) -> Result<(), ServerError> {
        let bad = |msg: String| Err(ServerError::Config(msg));
        if self.retain_bytes < MIN_RETAIN_BYTES {
            return bad(format!(
                "retain-bytes must be at least {MIN_RETAIN_BYTES} (one event of the largest \
                 payload), got {}",
                self.retain_bytes
            ));
        }
        validate_feed(self.rate_hz, self.payload_bytes, self.retain_bytes)
            .map_err(ServerError::Config)?;
        if self.control_token.is_none() && !self.control_open && !self.addr.ip().is_loopback() {
            return bad(format!(
                "refusing to serve PUT /control/feed on {} (not a loopback address) without a \
                 token: set --control-token or FEEDBENCH_CONTROL_TOKEN, or pass --control-open \
                 to let anyone who can reach the port change the feed",
                self.addr
            ));
        }
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

/// Checks a feed setting against the limits and the ring's byte bound; the message names
/// the field and the allowed range.
pub fn validate_feed(
    rate_hz: f64,
    payload_bytes: usize,
    retain_bytes: usize,
) -> Result<(), String> {
    let in_range = rate_hz == 0.0 || (MIN_RATE_HZ..=MAX_RATE_HZ).contains(&rate_hz);
    if !rate_hz.is_finite() || !in_range {
        return Err(format!(
            "rate_hz must be 0 (paused) or a number in {MIN_RATE_HZ}..={MAX_RATE_HZ}, got {rate_hz}"
        ));
    }
    if payload_bytes > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "payload_bytes must be 0..={MAX_PAYLOAD_BYTES}, got {payload_bytes}"
        ));
    }
    let max_rate = max_rate_hz(payload_bytes, retain_bytes);
    if rate_hz > max_rate {
        return Err(format!(
            "rate_hz {rate_hz} with payload_bytes {payload_bytes} would produce more than the \
             ring's byte bound ({retain_bytes} bytes, retain-bytes) per second: at this payload \
             rate_hz may be at most {:.3} (each retained event costs up to {} bytes)",
            (max_rate * 1000.0).floor() / 1000.0,
            event_cost(payload_bytes)
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
        let b = DEFAULT_RETAIN_BYTES;
        assert!(validate_feed(f64::NAN, 1, b).is_err());
        assert!(validate_feed(-1.0, 1, b).is_err());
        assert!(validate_feed(1.0, MAX_PAYLOAD_BYTES + 1, b).is_err());
        assert!(validate_feed(0.0, 0, b).is_ok());
        assert!(validate_feed(MIN_RATE_HZ, 0, b).is_ok());
        for tiny in [1e-300, 5e-324, 1e-19, MIN_RATE_HZ / 2.0] {
            let err = validate_feed(tiny, 64, b).unwrap_err();
            assert!(
                err.contains("0 (paused) or a number in 0.001..=1000000"),
                "{err}"
            );
        }
    }

    #[test]
    fn feed_must_fit_the_ring_byte_bound_per_second() {
        let b = DEFAULT_RETAIN_BYTES;
        assert_eq!(event_cost(MAX_PAYLOAD_BYTES), 2_097_441);
        // 512 MiB / 2,097,441 B = 255.964 events per second of 1 MiB events; the issue's
        // 2,000 Hz is refused.
        assert!(validate_feed(255.0, MAX_PAYLOAD_BYTES, b).is_ok());
        let err = validate_feed(256.0, MAX_PAYLOAD_BYTES, b).unwrap_err();
        assert!(err.contains("may be at most 255.964"), "{err}");
        assert!(validate_feed(2000.0, MAX_PAYLOAD_BYTES, b).is_err());
        // The fastest feed of small events still passes by default, not with a small ring.
        assert!(validate_feed(MAX_RATE_HZ, 64, b).is_ok());
        assert!(validate_feed(MAX_RATE_HZ, 64, 64 << 20).is_err());
    }

    #[test]
    fn control_on_a_non_loopback_address_needs_a_token_or_an_explicit_opt_in() {
        let open = ServerConfig {
            addr: "0.0.0.0:0".parse().unwrap(),
            ..ServerConfig::default()
        };
        let err = open.validate().unwrap_err().to_string();
        assert!(err.contains("without a token"), "{err}");
        let v6 = ServerConfig {
            addr: "[::]:0".parse().unwrap(),
            ..ServerConfig::default()
        };
        assert!(v6.validate().is_err());
        ServerConfig {
            control_token: Some("t".into()),
            ..open.clone()
        }
        .validate()
        .unwrap();
        ServerConfig {
            control_open: true,
            ..open
        }
        .validate()
        .unwrap();
        ServerConfig {
            addr: "[::1]:0".parse().unwrap(),
            ..ServerConfig::default()
        }
        .validate()
        .unwrap();
    }
}
