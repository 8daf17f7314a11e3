//! feedbench's load generator: drives short-poll, long-poll, WebSocket and SSE clients
//! against a feed server and measures what each transport costs.
//!
//! Bird's-eye view: a [`scenario`] spawns client tasks ([`short_poll`], [`long_poll`],
//! [`ws`], [`sse`]) in groups that own their histograms ([`client`]); plain WebSocket
//! and long-poll clients lend their sockets to [`receive_loop`]'s epoll loops after setup; every socket is a
//! [`counting::CountingStream`], every event goes through sequence [`accounting`]; the
//! scenario samples the server's `/stats` ([`stats`]) and the process's own CPU
//! ([`sysinfo`]) and turns it all into a [`results::ScenarioResult`]. A [`runner`] runs a
//! list of scenarios (from a [`suite`] file or one `feedbench load`) and keeps the results
//! file current; [`embedded`] starts the server as a child process for `feedbench run`.
//! [`source`] spreads clients over several local addresses (so 19,000 of them never run
//! out of ports), [`limits`] checks descriptors and ports first, [`crossing`] finds
//! where p99 crosses a suite's limit as the client count steps up, and [`finder`] brackets
//! and bisects the largest client count (or rate) within an SLO for `feedbench find`.
//!
//! Invariants: receive timestamps are taken when bytes are read, before parsing; bytes
//! are counted at the socket API, never reconstructed; a failed request is data (counted
//! by kind), only setup errors abort.

pub mod accounting;
pub mod client;
pub mod client_io;
pub mod clock;
pub mod clock_sync;
pub mod counting;
pub mod crossing;
pub mod embedded;
pub mod event;
pub mod feed;
pub mod finder;
pub mod h2;
pub mod http;
pub mod limits;
pub mod long_poll;
pub mod net;
pub mod polling;
pub mod progress;
pub mod receive_loop;
pub mod results;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod shard;
pub mod shard_run;
pub mod short_poll;
pub mod source;
pub mod sse;
pub mod sse_parser;
pub mod stack;
pub mod stats;
pub mod suite;
pub mod sysinfo;
pub mod tls;
pub mod ws;

pub use client::Target;
pub use results::{Results, ScenarioResult, Status};
pub use runner::{run, run_with, RunConfig, ServerSwap};
pub use scenario::{run_scenario, RunSignals, ScenarioSpec, Transport};
pub use suite::Suite;
