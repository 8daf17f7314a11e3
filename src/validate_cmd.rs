//! `feedbench validate`: checks results files against the results schema, and optionally
//! against what CI expects of a fresh run.
//!
//! A thin layer over `feedbench_results::validate`: read each file, parse it, check the
//! schema (which carries the version rules: schema 1 or 2, and schema 2's own fields), then
//! the requirements the options ask for. One line per file when it passes, one line per
//! problem (`FILE: /json/pointer: message`) when it does not, all on stdout.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use feedbench_results::{Results, Status, Transport, Violation};

/// Check results files against the results schema (schemas 1 and 2) and, with the
/// `--require-*` options, against what a complete run must show. Prints
/// `FILE: ok (schema 2, 12 scenarios, complete)` for each file that passes, or one line per
/// problem, `FILE: /json/pointer: message`.
///
/// Exit codes: 0 every file valid and every requirement met; 1 every file valid but a
/// requirement unmet; 2 a file unreadable, not JSON, or against the schema (or a usage
/// error).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit codes: 0 all files valid (and requirements met), 1 valid but a --require-* check failed, 2 a file unreadable, not JSON or against the schema (or a usage error)."
)]
pub struct ValidateArgs {
    /// Results files to check
    #[arg(required = true, value_name = "RESULTS.json")]
    pub files: Vec<PathBuf>,
    /// Require the run and every scenario in it to be complete
    #[arg(long)]
    pub require_complete: bool,
    /// Require at least one scenario of each of these transports (comma-separated, e.g.
    /// short-poll,long-poll,ws,sse)
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub require_transports: Vec<Transport>,
    /// Require every scenario to have delivered at least one event
    #[arg(long)]
    pub require_delivered: bool,
    /// Require this schema version (e.g. 2 for a file the current feedbench just wrote)
    #[arg(long, value_name = "N")]
    pub require_version: Option<u32>,
}

/// What a file must show beyond being valid.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Requirements {
    /// The run and every scenario complete.
    pub complete: bool,
    /// At least one scenario of each.
    pub transports: Vec<Transport>,
    /// Every scenario delivered at least one event.
    pub delivered: bool,
    /// The file's schema version.
    pub version: Option<u32>,
}

/// The verdict on one file.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Valid, and every requirement met.
    Ok {
        /// The file's schema version.
        version: u32,
        /// Its scenarios.
        scenarios: usize,
        /// The run's status.
        status: Status,
    },
    /// Valid, but these requirements are unmet.
    Unmet(Vec<Violation>),
    /// Against the schema (or, were they ever to drift apart, not readable as the types).
    Invalid(Vec<Violation>),
    /// The file cannot be read or is not JSON.
    Unreadable(String),
}

impl Verdict {
    /// The exit code this verdict alone would give.
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Ok { .. } => 0,
            Verdict::Unmet(_) => 1,
            Verdict::Invalid(_) | Verdict::Unreadable(_) => 2,
        }
    }

    /// The lines to print for `file`.
    pub fn render(&self, file: &Path) -> String {
        let name = file.display();
        match self {
            Verdict::Ok {
                version,
                scenarios,
                status,
            } => {
                let noun = if *scenarios == 1 {
                    "scenario"
                } else {
                    "scenarios"
                };
                format!(
                    "{name}: ok (schema {version}, {scenarios} {noun}, {})\n",
                    status.as_str()
                )
            }
            Verdict::Unmet(problems) | Verdict::Invalid(problems) => {
                let mut out = String::new();
                for p in problems {
                    // Writing to a String cannot fail.
                    let _ = writeln!(out, "{name}: {p}");
                }
                out
            }
            Verdict::Unreadable(why) => format!("{name}: {why}\n"),
        }
    }
}

/// Checks one file.
pub fn check_file(path: &Path, req: &Requirements) -> Verdict {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => return Verdict::Unreadable(format!("cannot read: {e}")),
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(e) => return Verdict::Unreadable(format!("not JSON: {e}")),
    };
    let violations = feedbench_results::validate(&value);
    if !violations.is_empty() {
        return Verdict::Invalid(violations);
    }
    // The schema and the types describe the same file (the results crate tests that), so
    // this only fails if they have drifted apart; say so rather than pass the file.
    let results: Results = match serde_json::from_value(value) {
        Ok(results) => results,
        Err(e) => {
            return Verdict::Invalid(vec![Violation {
                pointer: String::new(),
                message: format!("valid against the schema but not readable as results: {e}"),
            }])
        }
    };
    let unmet = unmet(&results, req);
    if unmet.is_empty() {
        Verdict::Ok {
            version: results.schema_version,
            scenarios: results.scenarios.len(),
            status: results.status,
        }
    } else {
        Verdict::Unmet(unmet)
    }
}

/// Every requirement `results` does not meet, pointing at the value that fails it.
pub fn unmet(results: &Results, req: &Requirements) -> Vec<Violation> {
    let mut out = Vec::new();
    let at = |pointer: String, message: String| Violation { pointer, message };
    if let Some(want) = req.version.filter(|v| *v != results.schema_version) {
        out.push(at(
            "/schema_version".into(),
            format!(
                "schema {}, not {want} (--require-version)",
                results.schema_version
            ),
        ));
    }
    if req.complete && results.status != Status::Complete {
        out.push(at(
            "/status".into(),
            format!("run {} (--require-complete)", results.status.as_str()),
        ));
    }
    for (i, s) in results.scenarios.iter().enumerate() {
        let who = format!("{} repeat {}", s.name, s.repeat);
        if req.complete && s.status != Status::Complete {
            out.push(at(
                format!("/scenarios/{i}/status"),
                format!("{who} {} (--require-complete)", s.status.as_str()),
            ));
        }
        if req.delivered && s.events.delivered == 0 {
            out.push(at(
                format!("/scenarios/{i}/events/delivered"),
                format!("{who} delivered no event (--require-delivered)"),
            ));
        }
    }
    for t in &req.transports {
        if !results.scenarios.iter().any(|s| s.transport == *t) {
            out.push(at(
                "/scenarios".into(),
                format!("no {t} scenario (--require-transports)"),
            ));
        }
    }
    out
}

/// Runs `feedbench validate`; returns the exit code: the worst over the files.
pub fn execute(args: ValidateArgs) -> anyhow::Result<i32> {
    let req = Requirements {
        complete: args.require_complete,
        transports: args.require_transports,
        delivered: args.require_delivered,
        version: args.require_version,
    };
    let mut code = 0;
    for file in &args.files {
        let verdict = check_file(file, &req);
        print!("{}", verdict.render(file));
        code = code.max(verdict.exit_code());
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn baseline() -> Results {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/results/tests/fixtures/quick-schema1.json"
        );
        Results::load(Path::new(path)).unwrap()
    }

    fn messages(v: &[Violation]) -> Vec<String> {
        v.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_baseline_meets_what_ci_asks_of_a_quick_run() {
        let req = Requirements {
            complete: true,
            transports: Transport::ALL.to_vec(),
            delivered: true,
            version: Some(1),
        };
        assert!(unmet(&baseline(), &req).is_empty());
    }

    #[test]
    fn each_requirement_points_at_what_fails_it() {
        let mut r = baseline();
        r.scenarios.retain(|s| s.transport != Transport::Sse);
        r.status = Status::Interrupted;
        r.scenarios[2].status = Status::Failed;
        r.scenarios[4].events.delivered = 0;
        let req = Requirements {
            complete: true,
            transports: vec![Transport::Ws, Transport::Sse],
            delivered: true,
            version: Some(2),
        };
        let name = |i: usize| format!("{} repeat {}", r.scenarios[i].name, r.scenarios[i].repeat);
        assert_eq!(
            messages(&unmet(&r, &req)),
            [
                "/schema_version: schema 1, not 2 (--require-version)".to_string(),
                "/status: run interrupted (--require-complete)".to_string(),
                format!(
                    "/scenarios/2/status: {} failed (--require-complete)",
                    name(2)
                ),
                format!(
                    "/scenarios/4/events/delivered: {} delivered no event (--require-delivered)",
                    name(4)
                ),
                "/scenarios: no sse scenario (--require-transports)".to_string(),
            ]
        );
        assert!(unmet(&r, &Requirements::default()).is_empty());
    }

    #[test]
    fn verdicts_render_one_line_per_file_or_per_problem() {
        let ok = Verdict::Ok {
            version: 2,
            scenarios: 12,
            status: Status::Complete,
        };
        assert_eq!(
            ok.render(Path::new("r.json")),
            "r.json: ok (schema 2, 12 scenarios, complete)\n"
        );
        let bad = Verdict::Invalid(vec![
            Violation {
                pointer: "/a".into(),
                message: "no".into(),
            },
            Violation {
                pointer: String::new(),
                message: "\"tool\" is a required property".into(),
            },
        ]);
        assert_eq!(
            bad.render(Path::new("r.json")),
            "r.json: /a: no\nr.json: (document): \"tool\" is a required property\n"
        );
        let unreadable = Verdict::Unreadable("not JSON: EOF".into());
        assert_eq!(
            unreadable.render(Path::new("r.json")),
            "r.json: not JSON: EOF\n"
        );
        assert_eq!(
            [ok, Verdict::Unmet(vec![]), bad, unreadable].map(|v| v.exit_code()),
            [0, 1, 2, 2]
        );
    }
}
