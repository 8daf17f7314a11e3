//! feedbench-report: turns results files into charts, an HTML page and Markdown, and
//! judges a candidate run against a baseline for CI.
//!
//! The results JSON (schema 1, [`results`]) is this crate's only contract with the load
//! generator. Nothing here touches the network: reports are built from files on disk and
//! written to a directory, with every chart as SVG and PNG and an `index.html` that opens
//! offline.
//!
//! Code map: [`results`] parses files; [`group`] groups repeats by [`ScenarioKey`] and
//! summarises them as [`Spread`]s; [`charts`] plans and draws the six charts; [`findings`],
//! [`table`], [`summary`] and [`html`] write the prose, tables and pages; [`report`] ties
//! them into a directory; [`compare`] and [`compare_output`] are the CI gate.

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
pub mod results;
pub mod summary;
pub mod table;

pub use compare::{compare, CompareOptions, Comparison, Verdict};
pub use error::ReportError;
pub use group::{Dataset, Group, ScenarioKey, Spread, Variant};
pub use report::{write_report, ReportInput, ReportOutput};
pub use results::{Results, Transport};
