//! The results schema check the report's tests use: the load generator's validator (the
//! one `feedbench` itself relies on), with the argument order these tests were written in.

use serde_json::Value;

/// Validates `value` against `schema`; returns every violation as `path: message`.
pub fn validate(schema: &Value, value: &Value) -> Vec<String> {
    feedbench_loadgen::schema::validate(value, schema)
}
