//! The report crate's error type: reading inputs, decoding histograms, drawing, writing.

use std::path::PathBuf;

/// Everything that can stop a report or a comparison.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A results file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A results file is not valid results JSON.
    #[error("{} is not a valid results file", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What serde found.
        #[source]
        source: serde_json::Error,
    },
    /// A results file uses a schema this crate does not read.
    #[error("{} has schema_version {found}; this feedbench reads schema 1", path.display())]
    SchemaVersion {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: u64,
    },
    /// A scenario's `hdr` field does not decode.
    #[error("scenario {scenario}: cannot decode its latency histogram: {reason}")]
    Histogram {
        /// The scenario's name and repeat.
        scenario: String,
        /// What went wrong.
        reason: String,
    },
    /// plotters failed to draw or encode a chart.
    #[error("cannot draw chart {chart}: {reason}")]
    Chart {
        /// The chart's file stem.
        chart: String,
        /// plotters' message.
        reason: String,
    },
    /// An output file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The inputs cannot be compared or reported at all.
    #[error("{0}")]
    Input(String),
}
