//! feedbench-report: turns results files into charts, an HTML page and Markdown, and
//! judges a candidate run against a baseline for CI.
//!
//! The results file (the `feedbench-results` crate: its types, schema and loading, schemas 1
//! and 2) is this crate's only contract with the load generator, which it never links.
//! Nothing here touches the network: reports are built from files on disk and
//! written to a directory, with every chart as SVG and PNG and an `index.html` that opens
//! offline.
//!
//! Code map: [`group`] groups repeats by [`ScenarioKey`] and
//! summarises them as [`Spread`]s, keyed apart by emulated link and protocol stack;
//! [`charts`] plans and draws the charts; [`verdict`] names the winner of each criterion
//! over the grid and where it changes; [`findings`], [`table`], [`summary`] and [`html`]
//! write the prose, tables and pages, with [`stacks`] (the layer split and the "Protocol
//! stacks" table) and [`stack_findings`] for runs over TLS and HTTP/2; [`report`] ties them
//! into a directory; [`capacity`] reads a `feedbench find` answer (or a suite's p99-limit
//! steps) for the capacity chart and table; [`compare`] and [`compare_output`] are the CI gate.

pub mod capacity;
pub mod charts;
pub mod compare;
pub mod compare_output;
pub mod error;
pub mod findings;
pub mod format;
pub mod group;
pub mod hdr;
pub mod html;
pub mod report;
pub mod stack_findings;
pub mod stacks;
pub mod summary;
pub mod table;
pub mod verdict;

pub use compare::{compare, CompareOptions, Comparison, Verdict};
pub use error::ReportError;
pub use feedbench_results::{Results, Transport};
pub use group::{Dataset, Group, ScenarioKey, Spread, Variant};
pub use report::{write_report, ReportInput, ReportOutput};
