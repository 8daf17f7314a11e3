//! The results' `p99_limit` field: where p99 delivery latency crosses a suite's limit as
//! the number of clients grows.
//!
//! Data only. The load generator's `crossing` module computes it from a run's scenarios;
//! these types say what the computation's answer looks like in the file.

use serde::{Deserialize, Serialize};

use crate::transport::Transport;

/// The limit and every series measured against it (the results' `p99_limit` field).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct P99Limit {
    /// The limit, µs.
    pub limit_us: u64,
    /// One series per scenario group without its client count, in first-run order.
    pub series: Vec<Series>,
}

/// Scenarios that differ only in the number of clients.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The scenario name without `-cN`, e.g. `ws-r1-s64`.
    pub group: String,
    /// Transport.
    pub transport: Transport,
    /// The limit this series is judged against, µs: the suite's, plus the poll interval
    /// for short-poll.
    pub limit_us: u64,
    /// Complete steps, by clients ascending.
    pub steps: Vec<Step>,
    /// The fewest clients whose p99 is over the limit; null if no step crossed it.
    pub crossed_at_clients: Option<u64>,
    /// The most clients below the first crossing whose p99 stayed within the limit.
    pub highest_within_clients: Option<u64>,
}

/// One client count of a series: medians over its complete repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// Clients.
    pub clients: u64,
    /// Complete repeats the medians are over.
    pub repeats: u64,
    /// p99 delivery latency, µs.
    pub p99_us: u64,
    /// Server CPU seconds in the measure window (null without `/stats`).
    pub server_cpu_s: Option<f64>,
    /// Server peak RSS in the window, bytes (null without `/stats`).
    pub server_rss_peak_bytes: Option<u64>,
}
