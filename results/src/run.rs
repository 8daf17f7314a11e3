//! The whole results file: one run of a suite (or one `feedbench load` scenario), the tool
//! and machine that produced it, and its scenarios.

use serde::{Deserialize, Serialize};

use crate::capacity::Capacity;
use crate::p99_limit::P99Limit;
use crate::scenario::ScenarioResult;

/// How a run or scenario ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Ran to the end.
    Complete,
    /// Stopped by Ctrl-C (or SIGTERM); what was measured is kept.
    Interrupted,
    /// The server died or a setup step failed.
    Failed,
}

impl Status {
    /// The lowercase name, as in the JSON and in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Complete => "complete",
            Status::Interrupted => "interrupted",
            Status::Failed => "failed",
        }
    }
}

/// A whole results file.
///
/// Fields that schema 1 did not require carry serde defaults, so every file schema 1
/// accepts deserializes; unknown fields are ignored, so a newer writer's additions do not
/// stop an older reader.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Results {
    /// The schema the file follows: [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) when this
    /// crate writes it; readers accept [`OLDEST_SCHEMA_VERSION`](crate::OLDEST_SCHEMA_VERSION)
    /// up to it.
    pub schema_version: u32,
    /// How the run ended.
    pub status: Status,
    /// Why the run is not complete, if it is not.
    #[serde(default)]
    pub status_message: Option<String>,
    /// The tool that wrote the file.
    pub tool: Tool,
    /// The machine the load generator ran on.
    pub host: Host,
    /// Suite name (`quick`, `standard`, a path), or `load` for a single `feedbench load`
    /// scenario.
    pub suite: String,
    /// RFC 3339 UTC.
    pub started_at: String,
    /// RFC 3339 UTC (the time of writing while the run is in progress).
    pub finished_at: String,
    /// The server's URL.
    pub target: String,
    /// Whether `feedbench run` started the server itself.
    pub embedded_server: bool,
    /// CPU sets of server and load generator when pinned, else null.
    #[serde(default)]
    pub cpu_sets: Option<CpuSets>,
    /// Local addresses the clients connected from, round-robin; empty: the kernel's choice.
    #[serde(default)]
    pub source_addrs: Vec<String>,
    /// Where p99 delivery latency crosses the suite's `p99_limit`, per series of client
    /// counts; absent when the suite sets no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_limit: Option<P99Limit>,
    /// The largest client count or event rate each transport sustains within an SLO, as
    /// `feedbench find` bracketed it; the scenarios are its probes' runs. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
    /// One entry per scenario run, in run order; repeats share a `name`.
    pub scenarios: Vec<ScenarioResult>,
}

/// The tool that wrote the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tool {
    /// Always `feedbench`.
    pub name: String,
    /// The crate version.
    pub version: String,
    /// `git rev-parse HEAD` where the tool ran, if available.
    #[serde(default)]
    pub git_sha: Option<String>,
}

/// The machine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Host {
    /// Distribution name (`PRETTY_NAME` of os-release) or `linux`.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU model name.
    pub cpu_model: String,
    /// Online cores.
    pub cores: u64,
    /// Physical memory.
    pub memory_bytes: u64,
}

/// CPU affinity lists, e.g. `"0"` and `"1"`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CpuSets {
    /// CPUs of the server process.
    pub server: Option<String>,
    /// CPUs of the load generator.
    pub loadgen: Option<String>,
}
