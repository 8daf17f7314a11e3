//! `feedbench compare`: the regression gate CI runs.
//!
//! A thin layer over `feedbench_report::compare`: parse the options, load both sides,
//! print the Markdown table, write the optional JSON outputs, return the exit code.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use feedbench_report::compare::{load_side, parse_percent};
use feedbench_report::compare_output::{bencher_bmf, github_action_benchmark, markdown};
use feedbench_report::{compare, CompareOptions};

/// Judge a candidate run against a baseline, scenario by scenario (matched by transport
/// and parameters). Exact metrics (bytes per event each way, requests per event, missed
/// events) fail beyond a tight tolerance; noisy ones (p50 and p99 latency, server CPU per
/// event, peak RSS) only beyond the noise of the repeats plus a minimum effect, and are
/// `inconclusive` with fewer than 2 repeats a side. Prints a Markdown table to stdout.
///
/// Exit codes: 0 no regression; 1 regression (or inconclusive with --strict); 2 usage or
/// input error.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 no regression, 1 regression (or inconclusive with --strict), 2 usage or input error."
)]
pub struct CompareArgs {
    /// Baseline results file, or a directory of runs pooled as repeats
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// Candidate results file, or a directory of runs pooled as repeats
    #[arg(value_name = "CANDIDATE")]
    pub candidate: PathBuf,
    /// Also write the Markdown table to FILE (e.g. for a pull-request comment)
    #[arg(long, value_name = "FILE")]
    pub md: Option<PathBuf>,
    /// Write github-action-benchmark `customSmallerIsBetter` JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write Bencher Metric Format (BMF) JSON to FILE
    #[arg(long, value_name = "FILE")]
    pub bmf: Option<PathBuf>,
    /// Fail (exit 1) on inconclusive verdicts too
    #[arg(long)]
    pub strict: bool,
    /// Tolerance for exact metrics
    #[arg(long, value_name = "PERCENT", default_value = "1%", value_parser = parse_percent)]
    pub exact_tolerance: f64,
    /// Minimum effect for p50 latency, server CPU and RSS, on top of the repeats' noise
    #[arg(long, value_name = "PERCENT", default_value = "10%", value_parser = parse_percent)]
    pub min_effect_median: f64,
    /// Minimum effect for p99 latency, on top of the repeats' noise
    #[arg(long, value_name = "PERCENT", default_value = "25%", value_parser = parse_percent)]
    pub min_effect_p99: f64,
}

/// Runs `feedbench compare`; returns 0 (no regression) or 1 (regression).
pub fn execute(args: CompareArgs) -> anyhow::Result<i32> {
    let baseline = load_side(&args.baseline).context("cannot read the baseline")?;
    let candidate = load_side(&args.candidate).context("cannot read the candidate")?;
    let options = CompareOptions {
        exact_tolerance: args.exact_tolerance,
        min_effect_median: args.min_effect_median,
        min_effect_p99: args.min_effect_p99,
        strict: args.strict,
        ..CompareOptions::default()
    };
    let comparison = compare(&baseline, &candidate, &options)?;
    let md = markdown(&comparison);
    print!("{md}");
    if let Some(path) = &args.md {
        write(path, &md)?;
    }
    if let Some(path) = &args.json {
        write(path, &pretty(&github_action_benchmark(&comparison))?)?;
    }
    if let Some(path) = &args.bmf {
        write(path, &pretty(&bencher_bmf(&comparison))?)?;
    }
    Ok(comparison.exit_code())
}

fn pretty(value: &serde_json::Value) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
