//! `feedbench report`: charts, `index.html` and `summary.md` from results files.
//!
//! A thin layer over `feedbench_report::report`; `feedbench run` calls
//! [`write_report_for_run`] at its end.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use feedbench_report::{write_report, ReportInput};

/// Write a report: every chart as SVG and PNG, index.html (self-contained, opens from disk
/// offline) and summary.md. With two results files the first is the baseline and the
/// second the candidate: charts show them side by side and both pages carry the
/// comparison.
///
/// Exit codes: 0 report written; 2 usage or input error (unreadable or invalid results).
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit codes: 0 report written, 2 usage or input error.")]
pub struct ReportArgs {
    /// Results files written by `feedbench run` or `feedbench load` (schema 1 or 2)
    #[arg(required = true, value_name = "RESULTS.json")]
    pub results: Vec<PathBuf>,
    /// Directory to write the report into (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Name of each results file in headings and charts, in order (repeat the flag);
    /// default: the run directory's name, or the file name
    #[arg(long = "label", value_name = "NAME")]
    pub labels: Vec<String>,
}

/// Runs `feedbench report`; returns the exit code.
pub fn execute(args: ReportArgs) -> anyhow::Result<i32> {
    if args.labels.len() > args.results.len() {
        anyhow::bail!(
            "{} labels given for {} results files",
            args.labels.len(),
            args.results.len()
        );
    }
    let inputs: Vec<ReportInput> = args
        .results
        .iter()
        .enumerate()
        .map(|(i, path)| ReportInput {
            path: path.clone(),
            label: args.labels.get(i).cloned(),
        })
        .collect();
    let out = write_report(&inputs, &args.out)
        .with_context(|| format!("cannot write the report into {}", args.out.display()))?;
    println!("report: {}", out.index_html.display());
    println!("summary: {}", out.summary_md.display());
    Ok(0)
}

/// Writes the report for one run's results file into `out_dir`; returns the path of its
/// `index.html`.
pub fn write_report_for_run(results_path: &Path, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let input = ReportInput {
        path: results_path.to_path_buf(),
        label: None,
    };
    let out = write_report(&[input], out_dir)
        .with_context(|| format!("cannot write the report for {}", results_path.display()))?;
    Ok(out.index_html)
}
