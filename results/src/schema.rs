//! `schema.json` and the check of a results document against it.
//!
//! The schema is embedded, so every binary validates against the schema of the types it was
//! built with; it is compiled once per process by the `jsonschema` crate (JSON Schema
//! 2020-12, no remote references). The version rules are part of the schema itself:
//! `schema_version` must be 1 or 2, and a file that says 2 must carry schema 2's fields.

use std::fmt;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::Value;

/// The JSON Schema of the results file (`results/schema.json`), schemas 1 and 2.
pub const SCHEMA_JSON: &str = include_str!("../schema.json");

/// Instance values longer than this (as JSON) are left out of violation messages: a whole
/// scenario or a base64 histogram would bury the message.
const MAX_QUOTED_VALUE: usize = 80;

/// One way a document breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON Pointer (RFC 6901) to the offending value, e.g. `/scenarios/0/transport`; empty
    /// for the document itself.
    pub pointer: String,
    /// What is wrong there, e.g. `"missed" is a required property`.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.pointer.is_empty() {
            "(document)"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

/// The parsed schema.
pub fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        // The schema is embedded at build time and the test
        // `the_embedded_schema_compiles` parses it, so this cannot fail at run time.
        serde_json::from_str(SCHEMA_JSON).expect("results/schema.json is valid JSON")
    })
}

fn validator() -> &'static Validator {
    static VALIDATOR: OnceLock<Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        // As above: the embedded schema is tested to compile, and it references nothing
        // outside itself, so building it needs no I/O that could fail.
        jsonschema::draft202012::new(schema()).expect("results/schema.json compiles")
    })
}

/// Validates a results document; returns every violation, in document order as the
/// validator finds them (empty when the document is valid).
pub fn validate(document: &Value) -> Vec<Violation> {
    validator()
        .iter_errors(document)
        .map(|e| {
            let quoted = e.instance().to_string().len();
            let message = if quoted > MAX_QUOTED_VALUE {
                e.masked_with("the value").to_string()
            } else {
                e.to_string()
            };
            Violation {
                pointer: e.instance_path().as_str().to_owned(),
                message,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_embedded_schema_compiles() {
        assert!(schema().is_object());
        let _ = validator();
        assert!(jsonschema::meta::is_valid(schema()), "a valid JSON Schema");
    }

    #[test]
    fn violations_carry_a_pointer_and_a_short_message() {
        let errors = validate(&json!({"schema_version": 3, "status": "done"}));
        let at = |p: &str| errors.iter().filter(|v| v.pointer == p).count();
        assert_eq!(at("/schema_version"), 1, "{errors:?}");
        assert_eq!(at("/status"), 1, "{errors:?}");
        assert!(
            errors
                .iter()
                .any(|v| v.pointer.is_empty() && v.message == r#""tool" is a required property"#),
            "{errors:?}"
        );
        let document = errors.iter().find(|v| v.pointer.is_empty()).unwrap();
        assert!(document.to_string().starts_with("(document): "));

        let long = "x".repeat(200);
        let errors = validate(&json!({"scenarios": long}));
        let scenarios = errors.iter().find(|v| v.pointer == "/scenarios").unwrap();
        assert!(!scenarios.message.contains(&long), "{scenarios}");
    }
}
