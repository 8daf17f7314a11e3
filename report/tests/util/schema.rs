//! A JSON Schema validator for exactly the keywords `bench-results/schema.json` uses.
//!
//! A full validator crate would add dozens of dependencies for a few keywords. This one
//! refuses any keyword it does not implement, so a schema that grows a new keyword makes
//! the test fail loudly instead of checking less than it claims.

use serde_json::Value;

/// Keywords that only annotate and never constrain.
const ANNOTATIONS: [&str; 4] = ["$schema", "$id", "title", "description"];

/// Validates `value` against `schema`; returns every violation as `path: message`.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(schema, value, "$", &mut errors);
    errors
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => {
            value.is_u64() || value.is_i64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn check(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(obj) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{path}: not allowed"));
        }
        return;
    };
    for (keyword, arg) in obj {
        match keyword.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "type" => {
                let names: Vec<&str> = match arg {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if !names.iter().any(|n| type_matches(n, value)) {
                    errors.push(format!("{path}: expected type {names:?}, found {value}"));
                }
            }
            "const" => {
                if arg != value {
                    errors.push(format!("{path}: expected {arg}, found {value}"));
                }
            }
            "enum" => {
                if !arg.as_array().is_some_and(|a| a.contains(value)) {
                    errors.push(format!("{path}: {value} is not one of {arg}"));
                }
            }
            "minimum" => {
                if let (Some(min), Some(x)) = (arg.as_f64(), value.as_f64()) {
                    if x < min {
                        errors.push(format!("{path}: {x} is below the minimum {min}"));
                    }
                }
            }
            "required" => {
                if let Some(o) = value.as_object() {
                    for name in arg
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                    {
                        if !o.contains_key(name) {
                            errors.push(format!("{path}: missing required field {name}"));
                        }
                    }
                }
            }
            "properties" => {
                if let (Some(props), Some(o)) = (arg.as_object(), value.as_object()) {
                    for (name, sub) in props {
                        if let Some(v) = o.get(name) {
                            check(sub, v, &format!("{path}.{name}"), errors);
                        }
                    }
                }
            }
            "additionalProperties" => {
                let known: Vec<&String> = obj
                    .get("properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().collect())
                    .unwrap_or_default();
                if let Some(o) = value.as_object() {
                    for (name, v) in o.iter().filter(|(k, _)| !known.contains(k)) {
                        check(arg, v, &format!("{path}.{name}"), errors);
                    }
                }
            }
            "items" => {
                if let Some(a) = value.as_array() {
                    for (i, v) in a.iter().enumerate() {
                        check(arg, v, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            "oneOf" => {
                let passing = arg
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|sub| validate(sub, value).is_empty())
                    .count();
                if passing != 1 {
                    errors.push(format!(
                        "{path}: matches {passing} of oneOf's schemas, not exactly 1"
                    ));
                }
            }
            other => errors.push(format!(
                "{path}: schema keyword {other} is not implemented by this validator"
            )),
        }
    }
}

#[test]
fn validator_catches_what_it_claims() {
    let schema = serde_json::json!({
        "type": "object", "required": ["a"],
        "properties": {"a": {"type": "integer", "minimum": 1}, "b": {"enum": ["x"]}},
        "additionalProperties": {"type": "string"}
    });
    assert!(validate(&schema, &serde_json::json!({"a": 1, "b": "x", "c": "s"})).is_empty());
    assert_eq!(
        validate(&schema, &serde_json::json!({"a": 0, "b": "y", "c": 1})).len(),
        3
    );
    assert_eq!(validate(&schema, &serde_json::json!({})).len(), 1);
}
