//! The `feedbench` command line: a thin layer over the server, load generator and report
//! crates. Each subcommand lives in its own module and returns the process exit code.
//!
//! Exit codes: 0 success; 1 a run that failed or was interrupted, a merge of shards one of
//! which is missing, failed or interrupted, a regression found by `compare`, or a results
//! file that `validate` found valid but short of a `--require-*` check; 2 a usage or input
//! error, including an invalid results file and shard files `merge` refuses (the message
//! goes to stderr, prefixed `feedbench: `, except `validate`'s per-file verdicts, which go
//! to stdout).

mod compare_cmd;
mod find_cmd;
mod load_cmd;
mod merge_cmd;
mod net_cmd;
mod report_cmd;
mod run_cmd;
mod serve_cmd;
mod validate_cmd;

use clap::{Parser, Subcommand};

/// jemalloc touches only the pages an allocation actually uses, which keeps an idle
/// connection's resident cost low: with 10,000 idle connections per kind, glibc malloc
/// cost 12.1–15.1 KiB per parked long-poll, SSE stream or idle keep-alive where jemalloc
/// cost 7.5–10.6 KiB (`scripts/conn-memory.sh` measures the current figures). The
/// counting wrapper feeds `/stats`' `process.allocations` and `allocated_bytes` (its cost is
/// measured in `server/src/alloc_count.rs`).
#[global_allocator]
static GLOBAL: feedbench_server::alloc_count::CountingAlloc<tikv_jemallocator::Jemalloc> =
    feedbench_server::alloc_count::CountingAlloc(tikv_jemallocator::Jemalloc);

/// jemalloc's options, read once at start-up through this symbol: a background thread
/// returns freed pages to the kernel within about a second. Without it, pages are only
/// purged when the process allocates again, so after 10,000 long-poll clients left an idle
/// server it stayed at 76 MiB; with it, it fell back to 11 MiB (7 MiB before they came),
/// which is what "RSS returns to its baseline" measurements need.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

/// Compare what short-polling, long-polling, WebSocket and SSE cost for one data feed, and
/// how fast each delivers.
#[derive(Parser, Debug)]
#[command(
    name = "feedbench",
    version,
    about,
    long_about = None,
    after_help = "Exit codes: 0 success; 1 run failed or interrupted, merge had a missing, failed or interrupted shard, compare found a regression, or validate found a --require-* check unmet; 2 usage or input error (validate: an invalid results file; merge: files refused)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Exit codes of `load` and `run`.
const RUN_EXIT_CODES: &str = "Exit codes: 0 every scenario complete; 1 the run failed (e.g. the server died) or was interrupted (results are saved with that status); 2 usage or input error (nothing ran).";

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the data feed over every transport.
    Serve(serve_cmd::ServeArgs),
    /// Run one scenario against a running server and write its results file.
    #[command(after_help = RUN_EXIT_CODES)]
    Load(load_cmd::LoadArgs),
    /// Run a benchmark suite (quick, standard or a TOML file) and write results and a report.
    #[command(after_help = RUN_EXIT_CODES)]
    Run(run_cmd::RunArgs),
    /// Merge the results files of a run's shards into one; exit 2 if they do not belong together.
    Merge(merge_cmd::MergeArgs),
    /// Turn results files into charts, an HTML page and a Markdown summary.
    Report(report_cmd::ReportArgs),
    /// Compare a candidate's results with a baseline's; exit 1 on a regression.
    Compare(compare_cmd::CompareArgs),
    /// Check results files against the results schema; exit 2 if one is invalid.
    Validate(validate_cmd::ValidateArgs),
    /// Find the largest client count (or event rate) each transport sustains within a latency SLO.
    #[command(
        after_help = "Exit codes: 0 search finished (whatever the capacity); 1 interrupted or the server failed (results are saved); 2 usage or input error (nothing ran)."
    )]
    Find(find_cmd::FindArgs),
    /// Run a command on the client side of an emulated link (RTT, bandwidth, loss); needs root.
    Net(net_cmd::NetArgs),
}

fn main() {
    init_tracing();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let result = match cli.command {
        Command::Serve(args) => serve_cmd::execute(args),
        Command::Load(args) => load_cmd::execute(args),
        Command::Run(args) => run_cmd::execute(args),
        Command::Merge(args) => merge_cmd::execute(args),
        Command::Report(args) => report_cmd::execute(args),
        Command::Compare(args) => compare_cmd::execute(args),
        Command::Validate(args) => validate_cmd::execute(args),
        Command::Find(args) => find_cmd::execute(args),
        Command::Net(args) => net_cmd::execute(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("feedbench: {err:#}");
            std::process::exit(2);
        }
    }
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
