//! A focused JSON Schema validator for the subset `bench-results/schema.json` uses.
//!
//! Keywords: `type` (a name or a list), `const`, `enum`, `required`, `properties`,
//! `additionalProperties` (bool or schema), `items`, `minimum`, `oneOf`. Annotations
//! (`$schema`, `title`, `description`, …) are ignored; any other keyword is reported as
//! unsupported so the validator can never silently pass a schema it does not understand.
//! It exists so tests and tools can check results files offline without a large
//! dependency.

use serde_json::Value;

const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "$comment",
    "default",
    "examples",
];

/// Validates `instance` against `schema`; returns every violation as `path: problem`.
pub fn validate(instance: &Value, schema: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(instance, schema, "$", &mut errors);
    errors
}

fn type_matches(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn check(value: &Value, schema: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(schema) = schema.as_object() else {
        if schema == &Value::Bool(false) {
            errors.push(format!("{path}: not allowed"));
        }
        return;
    };
    for (key, rule) in schema {
        match key.as_str() {
            "type" => {
                let names: Vec<&str> = match rule {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => vec![],
                };
                if !names.iter().any(|n| type_matches(value, n)) {
                    errors.push(format!(
                        "{path}: expected type {}, got {value}",
                        names.join(" or ")
                    ));
                }
            }
            "const" if value != rule => {
                errors.push(format!("{path}: expected {rule}, got {value}"))
            }
            "enum" if !rule.as_array().is_some_and(|a| a.contains(value)) => {
                errors.push(format!("{path}: {value} is not one of {rule}"))
            }
            "minimum" => {
                if let (Some(v), Some(min)) = (value.as_f64(), rule.as_f64()) {
                    if v < min {
                        errors.push(format!("{path}: {v} is below the minimum {min}"));
                    }
                }
            }
            "required" => {
                if let (Some(obj), Some(names)) = (value.as_object(), rule.as_array()) {
                    for name in names.iter().filter_map(Value::as_str) {
                        if !obj.contains_key(name) {
                            errors.push(format!("{path}: missing required field {name:?}"));
                        }
                    }
                }
            }
            "properties" => check_properties(
                value,
                rule,
                schema.get("additionalProperties"),
                path,
                errors,
            ),
            "additionalProperties" if !schema.contains_key("properties") => check_properties(
                value,
                &Value::Object(Default::default()),
                Some(rule),
                path,
                errors,
            ),
            "items" => {
                if let Some(items) = value.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        check(item, rule, &format!("{path}[{i}]"), errors);
                    }
                }
            }
            "oneOf" => {
                let branches = rule.as_array().map_or(&[][..], Vec::as_slice);
                let matching = branches
                    .iter()
                    .filter(|b| validate(value, b).is_empty())
                    .count();
                if matching != 1 {
                    errors.push(format!(
                        "{path}: matches {matching} of the oneOf branches instead of exactly one"
                    ));
                }
            }
            "const" | "enum" | "additionalProperties" => {}
            k if ANNOTATIONS.contains(&k) => {}
            k => errors.push(format!("{path}: unsupported schema keyword {k:?}")),
        }
    }
}

fn check_properties(
    value: &Value,
    properties: &Value,
    additional: Option<&Value>,
    path: &str,
    errors: &mut Vec<String>,
) {
    let (Some(obj), Some(props)) = (value.as_object(), properties.as_object()) else {
        return;
    };
    for (name, v) in obj {
        let child = format!("{path}.{name}");
        match (props.get(name), additional) {
            (Some(s), _) => check(v, s, &child, errors),
            (None, Some(Value::Bool(false))) => errors.push(format!("{child}: unexpected field")),
            (None, Some(s @ Value::Object(_))) => check(v, s, &child, errors),
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checks_the_supported_keywords() {
        let schema = json!({
            "type": "object", "required": ["a", "b"],
            "properties": {
                "a": {"type": "integer", "minimum": 1},
                "b": {"enum": ["x", "y"]},
                "c": {"type": ["string", "null"]},
                "d": {"type": "array", "items": {"const": 1}},
                "e": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["k"]}]},
                "f": {"type": "object", "additionalProperties": {"type": "integer"}}
            },
            "additionalProperties": true
        });
        let good = json!({"a": 2, "b": "x", "c": null, "d": [1, 1], "e": {"k": 0}, "f": {"z": 3}, "other": 1});
        assert!(
            validate(&good, &schema).is_empty(),
            "{:?}",
            validate(&good, &schema)
        );
        let bad = json!({"a": 0.5, "b": "z", "c": 3, "d": [2], "e": {}, "f": {"z": "no"}});
        let errors = validate(&bad, &schema);
        for needle in [
            "$.a: expected type integer",
            "$.a: 0.5 is below",
            "$.b:",
            "$.c:",
            "$.d[0]:",
            "$.e: matches 0",
            "$.f.z:",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(needle)),
                "{needle} not in {errors:?}"
            );
        }
        let missing = validate(&json!({}), &schema);
        assert_eq!(missing.len(), 2);
        assert!(!validate(&json!(1), &json!({"pattern": "x"})).is_empty());
    }
}
