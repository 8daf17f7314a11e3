//! `feedbench merge` through the built binary: its exit codes, what it writes, and that a
//! refusal writes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use feedbench_results::{validate, Results, ShardInfo, Status, WindowTimes, SCHEMA_VERSION};

const EXE: &str = env!("CARGO_BIN_EXE_feedbench");

/// A committed quick run (schema 1, no shards).
fn baseline() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("results/tests/fixtures/quick-schema1.json")
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("feedbench-merge-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The baseline's first scenario as shard 0 of `count`, written to `dir/shard-0.json`.
fn first_shard(dir: &Path, count: u32) -> PathBuf {
    let mut r = Results::load(&baseline()).unwrap();
    r.schema_version = SCHEMA_VERSION;
    r.scenarios.truncate(1);
    let s = &mut r.scenarios[0];
    let clients = s.params.clients;
    s.shard = Some(ShardInfo {
        index: 0,
        count,
        first_client: 0,
        clients: clients / u64::from(count),
    });
    s.window = Some(WindowTimes {
        start_ns: 1_764_500_000_000_000_000,
        end_ns: 1_764_500_003_000_000_000,
    });
    let path = dir.join("shard-0.json");
    feedbench_results::write_json_atomic(&path, &r).unwrap();
    path
}

/// Runs `feedbench merge FILES --out OUT`; returns (exit code, stderr).
fn merge(files: &[&Path], out: &Path) -> (i32, String) {
    let o = Command::new(EXE)
        .arg("merge")
        .args(files)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        o.status.code().unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn exit_codes_say_complete_partial_or_refused() {
    let dir = scratch("codes");
    let out = dir.join("merged.json");

    // One shard of one: complete.
    let (code, err) = merge(&[&first_shard(&dir, 1)], &out);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("merged 1 of 1 shards"), "{err}");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(validate(&value).is_empty());
    let merged = Results::load(&out).unwrap();
    assert_eq!(merged.status, Status::Complete);
    assert_eq!(merged.scenarios[0].shard, None);

    // Shard 0 of 2 alone: merged, written, but failed, naming shard 1.
    let (code, err) = merge(&[&first_shard(&dir, 2)], &out);
    assert_eq!(code, 1, "{err}");
    let merged = Results::load(&out).unwrap();
    assert_eq!(merged.status, Status::Failed);
    assert_eq!(
        merged.status_message.as_deref(),
        Some("no results file from shard 1 of 2")
    );

    // Not a shard file: refused, nothing written.
    std::fs::remove_file(&out).unwrap();
    let (code, err) = merge(&[&baseline()], &out);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("feedbench: cannot merge the shards: ")
            && err.contains("is not a shard's results file"),
        "{err}"
    );
    assert!(!out.exists());

    // Unreadable: refused.
    let (code, err) = merge(&[&dir.join("missing.json")], &out);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
