//! The committed fixtures: they validate against `results/schema.json`, carry real
//! HdrHistograms, and are exactly what `tests/util/fixtures.rs` generates.
//!
//! Regenerate them after changing the generator with
//! `FEEDBENCH_REGENERATE_FIXTURES=1 cargo test -p feedbench-report --test fixtures`.

mod util;

use feedbench_results::validate;
use serde_json::Value;
use util::{fixture_path, fixtures};

/// The committed fixtures and the generator that makes each.
fn committed() -> [(&'static str, Value); 2] {
    [
        ("baseline.json", fixtures::baseline()),
        ("candidate.json", fixtures::candidate()),
    ]
}

/// The value with every object's keys sorted, so the committed bytes do not depend on
/// whether serde_json's `preserve_order` feature is on in this build.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[test]
fn committed_fixtures_match_their_generator() {
    let regenerate = std::env::var_os("FEEDBENCH_REGENERATE_FIXTURES").is_some();
    for (name, generated) in committed() {
        let path = fixture_path(name);
        let text =
            serde_json::to_string_pretty(&sorted(generated)).expect("serialise fixture") + "\n";
        if regenerate {
            std::fs::write(&path, &text).expect("write fixture");
            continue;
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == text,
            "{} is stale: run FEEDBENCH_REGENERATE_FIXTURES=1 cargo test -p feedbench-report --test fixtures",
            path.display()
        );
    }
}

#[test]
fn fixtures_validate_against_the_results_schema() {
    for (name, generated) in committed() {
        let errors = validate(&generated);
        assert!(
            errors.is_empty(),
            "{name} violates schema.json:\n{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn fixtures_carry_real_histograms_matching_their_summaries() {
    for (name, generated) in committed() {
        let results = util::parse(&generated);
        for s in &results.scenarios {
            let hist = s
                .latency_us
                .histogram()
                .unwrap_or_else(|e| panic!("{name} {} repeat {}: {e}", s.name, s.repeat));
            assert_eq!(hist.len(), s.latency_us.count, "{name} {}", s.name);
            if name == "baseline.json" {
                assert_eq!(
                    hist.value_at_quantile(0.99),
                    s.latency_us.p99,
                    "{name} {}",
                    s.name
                );
            }
        }
    }
}

#[test]
fn the_results_schema_rejects_a_broken_file() {
    let mut broken = fixtures::baseline();
    broken["scenarios"][0]["transport"] = Value::from("carrier-pigeon");
    broken["scenarios"][1]["events"]
        .as_object_mut()
        .expect("events object")
        .remove("missed");
    let errors = validate(&broken);
    assert_eq!(errors.len(), 2, "{errors:?}");
}
