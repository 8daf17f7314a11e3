//! `feedbench validate` through the built binary: valid schema 2 and schema 1 files, a
//! schema violation with its pointer, bad JSON, a missing file, unmet requirements, and the
//! exit code of a mix.

use std::path::{Path, PathBuf};
use std::process::Command;

use feedbench_results::{Results, Status, SCHEMA_VERSION};
use serde_json::Value;

const EXE: &str = env!("CARGO_BIN_EXE_feedbench");

/// A committed schema-1 quick run (the baseline before the quick suite grew curves): 12
/// scenarios, every transport, complete.
fn baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("results/tests/fixtures/quick-schema1.json")
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("feedbench-validate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `feedbench validate ARGS`; returns (exit code, stdout, stderr).
fn validate(args: &[&str], files: &[&Path]) -> (i32, String, String) {
    let out = Command::new(EXE)
        .arg("validate")
        .args(args)
        .args(files)
        .output()
        .unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The baseline as the current load generator would write it: schema 2.
fn write_v2(dir: &Path, edit: impl FnOnce(&mut Results)) -> PathBuf {
    let mut results = Results::load(&baseline()).unwrap();
    results.schema_version = SCHEMA_VERSION;
    edit(&mut results);
    let path = dir.join("v2.json");
    feedbench_results::write_json_atomic(&path, &results).unwrap();
    path
}

const CI: [&str; 4] = [
    "--require-complete",
    "--require-delivered",
    "--require-transports",
    "short-poll,long-poll,ws,sse",
];

#[test]
fn a_schema_2_file_and_the_schema_1_baseline_are_valid() {
    let dir = scratch("valid");
    let v2 = write_v2(&dir, |_| {});
    let v1 = baseline();
    let (code, stdout, stderr) = validate(&CI, &[&v2, &v1]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "{}: ok (schema 2, 12 scenarios, complete)\n{}: ok (schema 1, 12 scenarios, complete)\n",
            v2.display(),
            v1.display()
        )
    );
    assert!(stderr.is_empty(), "{stderr}");
    // What CI asks of a file the current feedbench just wrote.
    let (code, _, _) = validate(&["--require-version", "2"], &[&v2]);
    assert_eq!(code, 0);
    let (code, stdout, _) = validate(&["--require-version", "2"], &[&v1]);
    assert_eq!(code, 1);
    assert!(stdout.ends_with(": /schema_version: schema 1, not 2 (--require-version)\n"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_schema_violation_exits_2_with_its_pointer() {
    let dir = scratch("violation");
    let mut value: Value =
        serde_json::from_str(&std::fs::read_to_string(baseline()).unwrap()).unwrap();
    value["scenarios"][3]["transport"] = Value::from("carrier-pigeon");
    value["scenarios"][5]["events"]
        .as_object_mut()
        .unwrap()
        .remove("missed");
    let path = dir.join("broken.json");
    std::fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
    let (code, stdout, _) = validate(&[], &[&path]);
    assert_eq!(code, 2, "{stdout}");
    let name = path.display().to_string();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(
        lines[0].starts_with(&format!(
            "{name}: /scenarios/3/transport: \"carrier-pigeon\" is not one of"
        )),
        "{stdout}"
    );
    assert_eq!(
        lines[1],
        format!("{name}: /scenarios/5/events: \"missed\" is a required property")
    );

    // A file that says schema 2 must carry schema 2's fields.
    value = serde_json::from_str(&std::fs::read_to_string(baseline()).unwrap()).unwrap();
    value["schema_version"] = Value::from(2);
    std::fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
    let (code, stdout, _) = validate(&[], &[&path]);
    assert_eq!(code, 2);
    assert!(stdout.contains(&format!(
        "{name}: /scenarios/0/events: \"window_source\" is a required property\n"
    )));
    // And a schema this feedbench does not know is refused by the same rule.
    value["schema_version"] = Value::from(3);
    std::fs::write(&path, serde_json::to_string(&value).unwrap()).unwrap();
    let (code, stdout, _) = validate(&[], &[&path]);
    assert_eq!(code, 2);
    assert!(stdout.starts_with(&format!("{name}: /schema_version: 3 is not one of")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_json_and_a_missing_file_exit_2() {
    let dir = scratch("unreadable");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"schema_version\": 2,").unwrap();
    let missing = dir.join("missing.json");
    let (code, stdout, _) = validate(&[], &[&bad, &missing, &baseline()]);
    assert_eq!(code, 2, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with(&format!("{}: not JSON: ", bad.display())),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with(&format!("{}: cannot read: ", missing.display())),
        "{stdout}"
    );
    assert!(lines[2].ends_with(": ok (schema 1, 12 scenarios, complete)"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_incomplete_run_is_valid_but_fails_require_complete_with_exit_1() {
    let dir = scratch("incomplete");
    let path = write_v2(&dir, |r| {
        r.status = Status::Interrupted;
        r.scenarios[11].status = Status::Interrupted;
        r.scenarios[11].events.delivered = 0;
    });
    let (code, stdout, _) = validate(&[], &[&path]);
    assert_eq!(code, 0, "valid without requirements: {stdout}");
    assert!(stdout.ends_with(": ok (schema 2, 12 scenarios, interrupted)\n"));
    let (code, stdout, _) = validate(&CI, &[&path]);
    assert_eq!(code, 1, "{stdout}");
    let name = path.display();
    assert_eq!(
        stdout,
        format!(
            "{name}: /status: run interrupted (--require-complete)\n\
             {name}: /scenarios/11/status: sse-c50-r20-s64 repeat 2 interrupted (--require-complete)\n\
             {name}: /scenarios/11/events/delivered: sse-c50-r20-s64 repeat 2 delivered no event (--require-delivered)\n"
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, stderr) = validate(&["--require-transports", "pigeon"], &[&baseline()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown transport \"pigeon\""), "{stderr}");
    let (code, _, stderr) = validate(&[], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("RESULTS.json"), "{stderr}");
}
