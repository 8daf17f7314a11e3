//! The types and the schema agree, on the committed schema-1 baseline and on what the
//! types write as schema 2.

use std::path::PathBuf;

use feedbench_results::{
    validate, Results, Status, Transport, OLDEST_SCHEMA_VERSION, SCHEMA_VERSION,
    WINDOW_FROM_CLIENTS,
};
use serde_json::Value;

/// The committed baseline run: 12 scenarios, written by schema 1.
fn baseline_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bench-results/baseline-quick/results.json")
}

fn baseline_value() -> Value {
    serde_json::from_str(&std::fs::read_to_string(baseline_path()).unwrap()).unwrap()
}

#[test]
fn the_schema_1_baseline_validates_and_loads() {
    let value = baseline_value();
    assert_eq!(value["schema_version"], OLDEST_SCHEMA_VERSION);
    let errors = validate(&value);
    assert!(errors.is_empty(), "{errors:?}");

    let results = Results::load(&baseline_path()).unwrap();
    assert_eq!(results.schema_version, 1);
    assert_eq!(results.status, Status::Complete);
    assert_eq!(results.scenarios.len(), 12);
    for t in Transport::ALL {
        assert!(results.scenarios.iter().any(|s| s.transport == t), "{t}");
    }
    for s in &results.scenarios {
        // What schema 1 meant: the window's range came from what the clients saw.
        assert_eq!(s.events.window_source, WINDOW_FROM_CLIENTS);
        assert_eq!(s.events.unreceived, 0);
        assert!(s.notes.is_empty());
        assert!(s.server.as_ref().unwrap().requests_by_path.is_none());
        assert!(s.events.delivered > 0);
        assert_eq!(s.latency_us.histogram().unwrap().len(), s.latency_us.count);
    }
}

#[test]
fn what_the_types_write_is_valid_schema_2() {
    let mut results = Results::load(&baseline_path()).unwrap();
    results.schema_version = SCHEMA_VERSION;
    let written = serde_json::to_value(&results).unwrap();
    let errors = validate(&written);
    assert!(errors.is_empty(), "{errors:?}");
    // Every recorded figure of the schema-1 file survives the round trip unchanged.
    let original = baseline_value();
    for (old, new) in original["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .zip(written["scenarios"].as_array().unwrap())
    {
        for (key, value) in old.as_object().unwrap() {
            if let Value::Object(fields) = value {
                for (field, v) in fields {
                    assert_eq!(&new[key][field], v, "{key}.{field}");
                }
            } else {
                assert_eq!(&new[key], value, "{key}");
            }
        }
    }
}

#[test]
fn schema_2_requires_its_fields() {
    let mut value = baseline_value();
    value["schema_version"] = Value::from(2);
    let errors = validate(&value);
    let first: Vec<String> = errors
        .iter()
        .filter(|v| v.pointer.starts_with("/scenarios/0"))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        first,
        [
            r#"/scenarios/0: "notes" is a required property"#,
            r#"/scenarios/0/events: "window_source" is a required property"#,
            r#"/scenarios/0/events: "unreceived" is a required property"#,
            r#"/scenarios/0/server: "requests_by_path" is a required property"#,
        ],
        "{errors:?}"
    );
    // 12 scenarios × the 4 missing fields, nothing else.
    assert_eq!(errors.len(), 48, "{errors:?}");
}

#[test]
fn violations_point_at_the_value() {
    let mut value = baseline_value();
    value["scenarios"][3]["transport"] = Value::from("carrier-pigeon");
    value["scenarios"][5]["events"]
        .as_object_mut()
        .unwrap()
        .remove("missed");
    value["scenarios"][7]["latency_us"]["p99"] = Value::from(12.5);
    let errors = validate(&value);
    let pointers: Vec<&str> = errors.iter().map(|v| v.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/scenarios/3/transport",
            "/scenarios/5/events",
            "/scenarios/7/latency_us/p99"
        ],
        "{errors:?}"
    );
    assert!(errors[1].message.contains("\"missed\""), "{}", errors[1]);
    assert!(errors[2].message.contains("integer"), "{}", errors[2]);
}
