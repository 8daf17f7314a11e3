//! `feedbench merge`: the shards' results files of one run, merged into one.
//!
//! A thin layer over `feedbench_results::merge`: load the files, merge them, recompute the
//! suite's p99-limit crossing over the merged scenarios (the load generator's logic), check
//! the result against the schema, write it atomically, print the summary.

use std::path::PathBuf;

use anyhow::Context as _;
use feedbench_loadgen::crossing;
use feedbench_loadgen::runner::summary_table;
use feedbench_results::{merge, write_json_atomic, Merged, Results, Status};

/// Merge the results files of a run's shards (`feedbench load --shard I/N`) into one, as
/// if one process had run every client. Histograms are added exactly (never averaged
/// percentiles), counts summed, unreceived events redone over all clients, the server's
/// figures taken once for the shared window. Files that do not belong together (not shard
/// files, different shard counts, a shard given twice, different suite, target, scenarios
/// or parameters, windows more than 1 ms apart, different events in the window) are
/// refused with the files and the reason. Missing shards, and shards that failed or were
/// interrupted, are merged with what there is and the merged run marked failed (or
/// interrupted), naming them. Prints the merged summary to stdout.
///
/// Exit codes: 0 every shard present and complete; 1 merged, but a shard is missing,
/// failed or was interrupted (the file is written with that status); 2 a file unreadable
/// or the files refused (nothing written), or a usage error.
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 merged, every shard present and complete; 1 merged, but a shard is missing, failed or interrupted (written with that status); 2 a file unreadable or the files refused (nothing written), or a usage error."
)]
pub struct MergeArgs {
    /// The shards' results files (any order)
    #[arg(required = true, value_name = "SHARD.json")]
    pub files: Vec<PathBuf>,
    /// The merged results file (JSON, schema 2), written atomically
    #[arg(long, value_name = "MERGED.json")]
    pub out: PathBuf,
}

/// Runs `feedbench merge`; returns 0 (complete) or 1 (merged, but failed or partial).
pub fn execute(args: MergeArgs) -> anyhow::Result<i32> {
    let mut files = Vec::with_capacity(args.files.len());
    for path in &args.files {
        let results = Results::load(path)?;
        files.push((path.display().to_string(), results));
    }
    let Merged {
        mut results,
        shard_count,
        present,
        p99_limit_us,
        ..
    } = merge(&files).context("cannot merge the shards")?;
    results.p99_limit = p99_limit_us.map(|limit| crossing::evaluate(limit, &results.scenarios));
    let value = serde_json::to_value(&results).context("cannot serialize the merged results")?;
    let violations = feedbench_results::validate(&value);
    // The merge writes the same types the load generator does, so this is a bug if it fires;
    // a file that breaks the contract is not written.
    anyhow::ensure!(
        violations.is_empty(),
        "the merged results break the schema: {}",
        violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_json_atomic(&args.out, &results)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    print!("{}", summary_table(&results));
    eprintln!(
        "merged {} of {shard_count} shards: {}",
        present.len(),
        args.out.display()
    );
    Ok(match results.status {
        Status::Complete => 0,
        Status::Interrupted | Status::Failed => 1,
    })
}
