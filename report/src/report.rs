//! Writes a report directory: every chart as SVG and PNG, `summary.md` and `index.html`.

use std::path::{Path, PathBuf};

use crate::charts::{self, RenderedChart};
use crate::compare::{self, CompareOptions};
use crate::compare_output;
use crate::error::ReportError;
use crate::group::{default_label, Dataset};
use feedbench_results::Results;

/// One results file to report on.
#[derive(Debug, Clone)]
pub struct ReportInput {
    /// The results file.
    pub path: PathBuf,
    /// Its label in headings and legends; derived from the path when `None`.
    pub label: Option<String>,
}

/// What a report wrote.
#[derive(Debug, Clone)]
pub struct ReportOutput {
    /// `DIR/index.html`.
    pub index_html: PathBuf,
    /// `DIR/summary.md`.
    pub summary_md: PathBuf,
    /// Every chart drawn.
    pub charts: Vec<RenderedChart>,
}

/// Loads the inputs as datasets with distinct labels.
pub fn load_datasets(inputs: &[ReportInput]) -> Result<Vec<Dataset>, ReportError> {
    let mut datasets: Vec<Dataset> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let results = Results::load(&input.path)?;
        let mut label = input
            .label
            .clone()
            .unwrap_or_else(|| default_label(&input.path));
        // Two files with the same default label (e.g. two `results.json` in `latest/`)
        // would be indistinguishable side by side.
        if datasets.iter().any(|d| d.label == label) {
            label = format!("{label} ({})", datasets.len() + 1);
        }
        datasets.push(Dataset::new(label, results));
    }
    Ok(datasets)
}

/// The report's title for these datasets.
fn title(datasets: &[Dataset]) -> String {
    match datasets {
        [one] => format!("feedbench report: {}", one.label),
        [base, cand] => format!("feedbench report: {} vs {}", cand.label, base.label),
        many => format!("feedbench report: {} runs", many.len()),
    }
}

/// Writes the report for the inputs into `out_dir` (created if missing).
///
/// With two inputs the first is the baseline and the second the candidate: charts show
/// them side by side, and both pages carry the compare table.
pub fn write_report(inputs: &[ReportInput], out_dir: &Path) -> Result<ReportOutput, ReportError> {
    if inputs.is_empty() {
        return Err(ReportError::Input("no results file given".to_string()));
    }
    let datasets = load_datasets(inputs)?;
    write_report_for(&datasets, out_dir)
}

/// Writes the report for already-loaded datasets.
pub fn write_report_for(datasets: &[Dataset], out_dir: &Path) -> Result<ReportOutput, ReportError> {
    std::fs::create_dir_all(out_dir).map_err(|source| ReportError::Write {
        path: out_dir.to_path_buf(),
        source,
    })?;
    let charts = charts::plan(datasets)?
        .iter()
        .map(|figure| charts::render(figure, out_dir))
        .collect::<Result<Vec<_>, _>>()?;
    let comparison = match datasets {
        [base, cand] => compare::compare(base, cand, &CompareOptions::default()).ok(),
        _ => None,
    };
    let title = title(datasets);
    let md = crate::summary::render(
        &title,
        datasets,
        &charts,
        comparison.as_ref().map(compare_output::markdown).as_deref(),
    );
    let summary_md = out_dir.join("summary.md");
    write(&summary_md, &md)?;
    let page = crate::html::render(
        &title,
        datasets,
        &charts,
        comparison.as_ref().map(compare_output::html).as_deref(),
    );
    let index_html = out_dir.join("index.html");
    write(&index_html, &page)?;
    Ok(ReportOutput {
        index_html,
        summary_md,
        charts,
    })
}

fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}
