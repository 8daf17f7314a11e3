//! The report crate's error type: reading inputs, decoding histograms, drawing, writing.

use std::path::PathBuf;

/// Everything that can stop a report or a comparison.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A results directory could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A results file could not be loaded: unreadable, not results JSON, or of a schema
    /// version this feedbench does not read.
    #[error(transparent)]
    Load(#[from] feedbench_results::LoadError),
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
