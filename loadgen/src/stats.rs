//! A client for the server's `GET /stats` and `PUT /control/feed`.
//!
//! It keeps one keep-alive connection (the server counts it in class `other`) and reconnects
//! once per call if that connection broke. Every field is optional on the wire, so a
//! bring-your-own server with a partial `/stats` still gets what it offers.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::client::Target;
use crate::client_io::ClientIo;
use crate::http::{HttpConn, HttpError};

/// How long one stats or control exchange may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a stats or control exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The server could not be reached or the exchange broke.
    #[error("{0}")]
    Http(#[from] HttpError),
    /// The exchange took too long.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server answered with an unexpected status.
    #[error("status {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The body, truncated.
        body: String,
    },
    /// The body is not the expected JSON.
    #[error("unexpected body: {0}")]
    Body(#[from] serde_json::Error),
}

/// A `/stats` snapshot (only the fields the load generator uses).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServerStats {
    /// Highest seq published.
    pub head_seq: u64,
    /// Events published since start.
    pub events_published: u64,
    /// Connection counters.
    pub connections: Connections,
    /// Socket-level bytes by transport class.
    pub bytes: BTreeMap<String, InOut>,
    /// Process accounting.
    pub process: Process,
    /// Requests answered by each of feedbench's code paths (absent on other servers).
    pub requests_by_path: Option<RequestsByPath>,
    /// Completed socket reads and writes (absent on other servers).
    pub socket_calls: Option<SocketCalls>,
}

/// Completed socket reads and writes, every class.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SocketCalls {
    /// Reads that completed.
    pub reads: u64,
    /// Writes that completed.
    pub writes: u64,
}

/// Requests answered on the fast path and through hyper.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct RequestsByPath {
    /// Answered without hyper.
    pub direct: u64,
    /// Answered by hyper.
    pub hyper: u64,
}

/// Connection counters.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Connections {
    /// Open connections by kind; `total` is all of them.
    pub open: BTreeMap<String, u64>,
    /// Connections accepted since start.
    pub accepted: u64,
    /// Connections refused since start.
    pub refused: u64,
    /// Consumers closed for falling behind, by transport.
    pub slow_consumer_closed: BTreeMap<String, u64>,
}

/// Bytes read and written.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct InOut {
    /// Bytes the server read.
    #[serde(rename = "in")]
    pub bytes_in: u64,
    /// Bytes the server wrote.
    #[serde(rename = "out")]
    pub bytes_out: u64,
}

/// Process accounting.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(default)]
pub struct Process {
    /// User CPU seconds.
    pub cpu_user_s: f64,
    /// System CPU seconds.
    pub cpu_sys_s: f64,
    /// Resident set size.
    pub rss_bytes: u64,
    /// Peak resident set size.
    pub rss_peak_bytes: u64,
    /// Voluntary context switches (absent on other servers).
    pub ctx_switches_voluntary: Option<u64>,
    /// Involuntary context switches (absent on other servers).
    pub ctx_switches_involuntary: Option<u64>,
    /// Heap allocations since start (absent where the server does not count them).
    pub allocations: Option<u64>,
    /// Bytes those allocations asked for.
    pub allocated_bytes: Option<u64>,
}

impl ServerStats {
    /// User plus system CPU seconds.
    pub fn cpu_s(&self) -> f64 {
        self.process.cpu_user_s + self.process.cpu_sys_s
    }

    /// The byte counters of `class`.
    pub fn class_bytes(&self, class: &str) -> InOut {
        self.bytes.get(class).copied().unwrap_or_default()
    }

    /// The counters the regression gate judges as near-exact, as they stand now (totals
    /// since the server started; the window's figures are differences of two).
    pub fn counts(&self) -> crate::results::ProcessCounts {
        let p = &self.process;
        crate::results::ProcessCounts {
            socket_reads: self.socket_calls.map(|c| c.reads),
            socket_writes: self.socket_calls.map(|c| c.writes),
            context_switches: p
                .ctx_switches_voluntary
                .zip(p.ctx_switches_involuntary)
                .map(|(v, i)| v + i),
            allocations: p.allocations,
            allocated_bytes: p.allocated_bytes,
        }
    }

    /// Open connections in total.
    pub fn open_total(&self) -> u64 {
        self.connections.open.get("total").copied().unwrap_or(0)
    }
}

/// A keep-alive connection to the server's `/stats` and `/control` endpoints.
#[derive(Debug)]
pub struct StatsClient {
    target: Target,
    conn: Option<HttpConn<ClientIo>>,
}

impl StatsClient {
    /// A client for `target`; connects on first use.
    pub fn new(target: &Target) -> Self {
        Self {
            target: target.clone(),
            conn: None,
        }
    }

    /// Fetches `/stats`.
    pub async fn fetch(&mut self) -> Result<ServerStats, StatsError> {
        let body = self.exchange("GET", "/stats", "", &[]).await?;
        Ok(serde_json::from_slice(&body)?)
    }

    /// `GET path` and the body of its 200 answer.
    pub async fn get(&mut self, path: &str) -> Result<bytes::Bytes, StatsError> {
        self.exchange("GET", path, "", &[]).await
    }

    /// Sets the feed with `PUT /control/feed`.
    pub async fn set_feed(&mut self, rate_hz: f64, payload_bytes: usize) -> Result<(), StatsError> {
        let body =
            serde_json::json!({ "rate_hz": rate_hz, "payload_bytes": payload_bytes }).to_string();
        let mut headers = String::from("Content-Type: application/json\r\n");
        if let Some(token) = &self.target.control_token {
            headers.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        self.exchange("PUT", "/control/feed", &headers, body.as_bytes())
            .await?;
        Ok(())
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<bytes::Bytes, StatsError> {
        // A kept-alive connection may have been closed by the server meanwhile; one retry
        // on a fresh connection tells that apart from a server that is gone.
        let reused = self.conn.is_some();
        match self.try_exchange(method, path, headers, body).await {
            Err(StatsError::Http(_)) if reused => {
                self.try_exchange(method, path, headers, body).await
            }
            other => other,
        }
    }

    async fn try_exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<bytes::Bytes, StatsError> {
        let result = tokio::time::timeout(
            EXCHANGE_TIMEOUT,
            self.exchange_once(method, path, headers, body),
        )
        .await;
        let result = result.unwrap_or(Err(StatsError::Timeout(EXCHANGE_TIMEOUT)));
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn exchange_once(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<bytes::Bytes, StatsError> {
        if self.conn.is_none() {
            let io = self.target.connect_harness().await.map_err(HttpError::Io)?;
            self.conn = Some(HttpConn::new(io, &self.target.host));
        }
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("connection was just set")
        };
        conn.send(method, path, headers, body).await?;
        let resp = conn.read_response().await?;
        if !resp.head.keep_alive {
            self.conn = None;
        }
        if resp.head.status != 200 {
            let text = String::from_utf8_lossy(&resp.body);
            return Err(StatsError::Status {
                status: resp.head.status,
                body: text.chars().take(200).collect(),
            });
        }
        Ok(resp.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_gate_counters_and_leaves_out_what_is_missing() {
        let json = r#"{"socket_calls":{"reads":40,"writes":900},
 "process":{"ctx_switches_voluntary":70,"ctx_switches_involuntary":5,"allocations":6000,"allocated_bytes":800000}}"#;
        let st: ServerStats = serde_json::from_str(json).unwrap();
        assert_eq!(
            st.counts(),
            crate::results::ProcessCounts {
                socket_reads: Some(40),
                socket_writes: Some(900),
                context_switches: Some(75),
                allocations: Some(6000),
                allocated_bytes: Some(800_000),
            }
        );
        // Another server's /stats without them: nothing reported, nothing guessed.
        let other: ServerStats = serde_json::from_str(r#"{"process":{"rss_bytes":1}}"#).unwrap();
        assert!(other.counts().is_empty());
    }

    #[test]
    fn decodes_the_documented_stats() {
        let json = r#"{"feed":{"rate_hz":10.0,"payload_bytes":64,"retain":100000},"head_seq":123,"events_published":123,"uptime_s":12.5,
 "connections":{"open":{"ws":0,"sse":0,"long_poll_parked":0,"http_idle":0,"http_active":1,"total":1},"accepted":5,"refused":0,"closed":4,"slow_consumer_closed":{"ws":0,"sse":0}},
 "bytes":{"short_poll":{"in":10,"out":20},"long_poll":{"in":0,"out":0},"ws":{"in":0,"out":0},"sse":{"in":0,"out":0},"other":{"in":0,"out":0},"total":{"in":0,"out":0}},
 "requests":{"poll":0,"longpoll":0,"ws":0,"sse":0,"control":0,"stats":1,"metrics":0,"healthz":0,"other":0},
 "process":{"cpu_user_s":0.1,"cpu_sys_s":0.05,"rss_bytes":1234567,"rss_peak_bytes":2345678,"threads":3,"open_fds":12}}"#;
        let s: ServerStats = serde_json::from_str(json).unwrap();
        assert_eq!(s.head_seq, 123);
        assert_eq!(
            s.class_bytes("short_poll"),
            InOut {
                bytes_in: 10,
                bytes_out: 20
            }
        );
        assert_eq!(s.class_bytes("nope"), InOut::default());
        assert!((s.cpu_s() - 0.15).abs() < 1e-9);
        assert_eq!(s.open_total(), 1);
        assert_eq!(s.process.rss_bytes, 1_234_567);
        assert_eq!(s.requests_by_path, None);
        let partial: ServerStats = serde_json::from_str(r#"{"head_seq":5}"#).unwrap();
        assert_eq!(partial.head_seq, 5);
        let paths: ServerStats =
            serde_json::from_str(r#"{"requests_by_path":{"direct":7,"hyper":2}}"#).unwrap();
        assert_eq!(
            paths.requests_by_path,
            Some(RequestsByPath {
                direct: 7,
                hyper: 2
            })
        );
    }
}
