//! The types and the schema agree, on a committed schema-1 quick run and on what the
//! types write as schema 2.

use std::path::PathBuf;

use feedbench_results::{
    validate, Results, Status, Transport, OLDEST_SCHEMA_VERSION, SCHEMA_VERSION,
    WINDOW_FROM_CLIENTS,
};
use serde_json::Value;

/// The quick suite's baseline run of schema 1 (committed as the baseline until the quick
/// suite grew curves): 12 scenarios.
fn baseline_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/quick-schema1.json")
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

/// A link block as the load generator writes it: 100 ms, 1% loss, one class.
fn net_block() -> Value {
    let direction = serde_json::json!({
        "packets": 600, "bytes": 96_600, "delivered_packets": 594, "delivered_bytes": 95_634,
        "tcp_retransmits": 6, "drops_loss": 6, "drops_queue": 0, "drops_overflow": 0
    });
    serde_json::json!({
        "spec": "rtt=100ms,loss=1%",
        "classes": [{
            "weight": 1.0, "clients": 10, "rtt_ms": 100.0, "jitter_ms": 0.0,
            "down_bps": null, "up_bps": null, "loss": 0.01, "queue_bytes": null
        }],
        "shared_bps": null,
        "rtt_measured_ms": {"n": 8, "min": 100.2, "p50": 100.4, "max": 101.0},
        "down": direction,
        "up": direction,
        "emulator": {"cpu_s": 0.12, "wall_s": 3.0, "late_packets": 0, "late_max_us": 40, "saturated": false}
    })
}

#[test]
fn the_optional_link_block_is_schema_2_and_checked() {
    let mut results = Results::load(&baseline_path()).unwrap();
    results.schema_version = SCHEMA_VERSION;
    let mut value = serde_json::to_value(&results).unwrap();
    assert!(
        value["scenarios"][0].get("net").is_none(),
        "absent on loopback: not written"
    );
    value["scenarios"][0]["net"] = net_block();
    value["scenarios"][0]["params"]["net"] = Value::from("rtt=100ms,loss=1%");
    assert!(validate(&value).is_empty(), "{:?}", validate(&value));
    // The types read it back and write the same block.
    let read: Results = serde_json::from_value(value.clone()).unwrap();
    let net = read.scenarios[0].net.as_ref().unwrap();
    assert_eq!((net.down.bytes, net.classes[0].rtt_ms), (96_600, 100.0));
    assert_eq!(
        read.scenarios[0].params.net.as_deref(),
        Some("rtt=100ms,loss=1%")
    );
    assert_eq!(
        serde_json::to_value(&read).unwrap()["scenarios"][0]["net"],
        net_block()
    );

    value["scenarios"][0]["net"]["classes"][0]["loss"] = Value::from(1.5);
    value["scenarios"][0]["net"]
        .as_object_mut()
        .unwrap()
        .remove("down");
    value["scenarios"][0]["net"]["classes"] = Value::Array(Vec::new());
    value["scenarios"][0]["params"]["net"] = Value::from("");
    let pointers: Vec<String> = validate(&value).iter().map(|v| v.pointer.clone()).collect();
    assert_eq!(
        pointers,
        [
            "/scenarios/0/params/net",
            "/scenarios/0/net",
            "/scenarios/0/net/classes"
        ],
        "{:?}",
        validate(&value)
    );
}

#[test]
fn an_old_file_loads_without_a_stack_and_round_trips_byte_for_byte() {
    let results = Results::load(&baseline_path()).unwrap();
    for s in &results.scenarios {
        assert!(!s.params.tls);
        assert_eq!(s.params.http, feedbench_results::HTTP_1_1);
        assert_eq!(s.params.streams_per_connection, 1);
        assert_eq!(s.params.tls_resumption, None);
        assert!(s.stack.is_none());
        assert_eq!(s.split_per_event(), None);
    }
    // The stack parameters at their defaults are left out: the scenarios, read and written
    // again, are the file's own, value for value.
    let written = serde_json::to_value(&results).unwrap();
    let original = baseline_value();
    for (old, new) in original["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .zip(written["scenarios"].as_array().unwrap())
    {
        assert_eq!(old["params"], new["params"]);
        assert!(new.get("stack").is_none());
    }
}

#[test]
fn a_tls_scenario_writes_its_stack_and_validates() {
    use feedbench_results::{ByteLayers, ByteSplit, StackFigures, HTTP_2};
    let mut results = Results::load(&baseline_path()).unwrap();
    results.schema_version = SCHEMA_VERSION;
    let s = &mut results.scenarios[0];
    s.params.tls = true;
    s.params.http = HTTP_2.into();
    s.params.streams_per_connection = 4;
    s.params.tls_resumption = Some(false);
    let down = s.bytes.down;
    s.stack = Some(StackFigures {
        tls_version: Some("TLSv1.3".into()),
        cipher_suite: Some("TLS13_AES_128_GCM_SHA256".into()),
        alpn: Some("h2".into()),
        http: HTTP_2.into(),
        handshakes: 0,
        resumed: 0,
        handshakes_total: 3,
        split: ByteSplit {
            up: ByteLayers {
                framing: s.bytes.up,
                ..ByteLayers::default()
            },
            down: ByteLayers {
                payload: s.bytes.payload,
                framing: down - s.bytes.payload,
                ..ByteLayers::default()
            },
        },
        run_tls: Some(feedbench_results::TlsRun {
            up: feedbench_results::TlsLayers {
                plaintext: s.bytes.up,
                tls: 0,
                handshake: 0,
            },
            down: feedbench_results::TlsLayers {
                plaintext: down,
                tls: 0,
                handshake: 0,
            },
        }),
    });
    let value = serde_json::to_value(&results).unwrap();
    let errors = validate(&value);
    assert!(errors.is_empty(), "{errors:?}");
    let params = &value["scenarios"][0]["params"];
    assert_eq!(params["tls"], true);
    assert_eq!(params["http"], "2");
    assert_eq!(params["streams_per_connection"], 4);
    assert_eq!(params["tls_resumption"], false);
    assert_eq!(value["scenarios"][0]["stack"]["split"]["down"]["h2"], 0);
    let back: Results = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(back.scenarios[0].stack, results.scenarios[0].stack);
    assert_eq!(back.scenarios[0].params, results.scenarios[0].params);

    // The schema checks the new fields.
    let mut bad = value;
    bad["scenarios"][0]["params"]["http"] = "3".into();
    bad["scenarios"][0]["stack"]["split"]["up"]["tls"] = (-1).into();
    let errors = validate(&bad);
    assert_eq!(errors.len(), 2, "{errors:?}");
}
