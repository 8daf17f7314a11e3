//! feedbench-results: the results file, the one contract between the load generator that
//! writes it and the report, compare and validate stages that read it.
//!
//! The serde types ([`Results`] and its [`ScenarioResult`]s), the JSON Schema they follow
//! ([`schema::SCHEMA_JSON`], `results/schema.json`) and its check ([`schema::validate`])
//! live here together, so the writer and every reader agree by construction rather than by
//! two copies kept in step.
//!
//! Code map: [`transport`] is the leaf enum every crate names a transport with; [`run`]
//! holds the file's top level, [`scenario`] one scenario's figures, [`summary`] a latency
//! histogram's summary, [`p99_limit`] the answer to "where does p99 cross the suite's
//! limit", [`capacity`] the answer of `feedbench find` (of which those steps are a special case); [`figures`] derives ratios from the recorded figures; [`clock`] says when the
//! clock comparison bounds delivery latency and when that earns a warning; [`merge`]
//! combines the files of a run's shards into one, histograms added exactly; [`net`] holds
//! the emulated link's block, [`stack`] the protocol stack (TLS, HTTP version) and the bytes
//! split by layer, and [`model`] the analytic latency and byte models a scenario
//! is checked against; [`file`] reads
//! (with the version rules) and writes files; [`schema`] validates documents.
//!
//! Architecture invariant: this crate knows nothing of how the figures are measured or
//! shown. It depends on no other feedbench crate, and data types never import logic: the
//! load generator computes `p99_limit`, this crate only says what it looks like. The one
//! sentence here, [`clock_uncertainty_warning`], is data both sides write (into a file's
//! warnings, and into a report's), kept here so the rule behind it exists once; [`units`]
//! spells its numbers, and the report spells every figure with the same functions.
//!
//! Versions: this crate writes schema [`SCHEMA_VERSION`] (2) and reads schemas
//! [`OLDEST_SCHEMA_VERSION`] (1) to [`SCHEMA_VERSION`]. Fields added in schema 2 have serde
//! defaults that say what a schema-1 writer meant, so old files read as what they measured.

pub mod capacity;
pub mod clock;
pub mod counts;
pub mod figures;
pub mod file;
pub mod merge;
pub mod model;
pub mod net;
pub mod p99_limit;
pub mod run;
pub mod scenario;
pub mod schema;
pub mod stack;
pub mod summary;
pub mod transport;
pub mod units;

pub use capacity::{
    Budget, Capacity, Confirmed, FailReason, Method, Mixed, Percentile, Probe, SloTerm, Stop,
    TransportCapacity, Vary,
};
pub use clock::{
    clock_uncertainty_warning, is_clock_uncertainty_warning, is_loopback_target,
    CLOCK_UNCERTAINTY_WARN_SHARE,
};
pub use counts::{counter_delta, ProcessCounts};
pub use file::{is_supported_version, write_json_atomic, LoadError};
pub use merge::{merge, MergeError, Merged, WINDOW_TOLERANCE_NS};
pub use net::{EmulatorFigures, NetClass, NetDirection, NetFigures, RttProbe};
pub use p99_limit::{P99Limit, Series, Step};
pub use run::{CpuSets, Host, Results, Status, Tool};
pub use scenario::{
    rss_per_connection_bytes, ByteFigures, ClockFigures, Connections, Events, Loadgen, Params,
    Requests, RequestsByPath, ScenarioResult, ServerFigures, ServerSample, ShardInfo, WindowTimes,
    MAX_UNRECEIVED_SEQS, WINDOW_FROM_CLIENTS, WINDOW_FROM_FEED,
};
pub use schema::{validate, Violation};
pub use stack::{
    ByteLayers, ByteSplit, LayersPer, StackFigures, TlsLayers, TlsRun, HTTP_1_1, HTTP_2,
};
pub use summary::{decode_hdr, HdrError, Summary};
pub use transport::Transport;

/// The schema version this crate writes.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest schema version this crate reads.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;
