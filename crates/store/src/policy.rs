//! Policy schemas: the JSON Schemas written into cards to say which cards something reaches (a
//! role's `data.read`, a session's `data.scope`). Any user may give a token of their own a
//! scope, and the authorizer evaluates it on every token request, so a policy schema is
//! untrusted input whose cost must not depend on its author's intent:
//!
//! - patterns (`pattern`, `patternProperties`) run on the `regex` crate's engine, linear in the
//!   text matched: no backreferences, each compiled program at most [`REGEX_SIZE_LIMIT`] bytes
//!   and its lazy DFA at most [`REGEX_DFA_SIZE_LIMIT`];
//! - at most [`MAX_POLICY_SCHEMA_BYTES`] bytes of JSON, nested at most
//!   [`MAX_POLICY_SCHEMA_DEPTH`] levels, with at most [`MAX_POLICY_SCHEMA_PATTERNS`] patterns;
//! - no references (`$ref`, `$dynamicRef`, `$recursiveRef`, under any key): a few of them can
//!   make a small schema evaluate a subschema exponentially often, and a card's schema needs
//!   nothing outside itself. Remote documents are never fetched.
//!
//! Without references, evaluating a schema visits each of its subschemas at most once per
//! value of the card, so these bounds make every evaluation take microseconds. The same
//! [`PolicySchema::compile`] checks a card when it is written (the error names the field) and
//! compiles it when it is evaluated (a card written around the store admits nothing).

use jsonschema::{PatternOptions, Validator};
use serde_json::Value;

/// The most bytes of a policy schema, as compact JSON.
pub const MAX_POLICY_SCHEMA_BYTES: usize = 16 * 1024;
/// The deepest nesting of objects and arrays in a policy schema.
pub const MAX_POLICY_SCHEMA_DEPTH: usize = 32;
/// The most regular expressions in a policy schema: `pattern` values and `patternProperties`
/// keys.
pub const MAX_POLICY_SCHEMA_PATTERNS: usize = 16;
/// The most bytes one compiled pattern may take.
pub const REGEX_SIZE_LIMIT: usize = 32 * 1024;
/// The most bytes of transitions one pattern's lazy DFA keeps (beyond, it matches more slowly,
/// still in linear time).
pub const REGEX_DFA_SIZE_LIMIT: usize = 64 * 1024;

/// Keywords that refer to other schemas.
const REFERENCES: [&str; 3] = ["$ref", "$dynamicRef", "$recursiveRef"];

/// A compiled policy schema, within the bounds above.
#[derive(Debug)]
pub struct PolicySchema {
    validator: Validator,
    admits_everything: bool,
}

impl PolicySchema {
    /// Checks `schema` against the bounds and compiles it. The error says what is wrong, for a
    /// message that the caller prefixes with the field.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        check_size(schema)?;
        let mut patterns = 0;
        walk(schema, 0, &mut patterns)?;
        if patterns > MAX_POLICY_SCHEMA_PATTERNS {
            return Err(format!(
                "{patterns} patterns, more than the {MAX_POLICY_SCHEMA_PATTERNS} a policy schema may hold"
            ));
        }
        let validator = jsonschema::options()
            .with_pattern_options(
                PatternOptions::regex()
                    .size_limit(REGEX_SIZE_LIMIT)
                    .dfa_size_limit(REGEX_DFA_SIZE_LIMIT),
            )
            .build(schema)
            .map_err(|e| {
                format!(
                    "not a valid JSON Schema with linear-time patterns (no backreferences): {e}"
                )
            })?;
        let admits_everything =
            *schema == Value::Bool(true) || schema.as_object().is_some_and(|o| o.is_empty());
        Ok(PolicySchema {
            validator,
            admits_everything,
        })
    }

    /// Whether the schema admits `card` (a card as [`crate::Card::to_json`] shows it).
    pub fn admits(&self, card: &Value) -> bool {
        self.validator.is_valid(card)
    }

    /// Whether the schema is `true` or `{}`: it admits every card, whatever the store holds.
    pub fn admits_everything(&self) -> bool {
        self.admits_everything
    }
}

/// Counts bytes written and refuses more than [`MAX_POLICY_SCHEMA_BYTES`], so that sizing a
/// huge value stops early.
struct Budget(usize);

impl std::io::Write for Budget {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        if self.0 > MAX_POLICY_SCHEMA_BYTES {
            return Err(std::io::Error::other("over budget"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_size(schema: &Value) -> Result<(), String> {
    serde_json::to_writer(Budget(0), schema).map_err(|_| {
        format!("larger than the {MAX_POLICY_SCHEMA_BYTES} bytes a policy schema may take")
    })
}

/// Refuses nesting beyond [`MAX_POLICY_SCHEMA_DEPTH`] and references; counts patterns.
fn walk(value: &Value, depth: usize, patterns: &mut usize) -> Result<(), String> {
    if depth > MAX_POLICY_SCHEMA_DEPTH {
        return Err(format!(
            "nested deeper than the {MAX_POLICY_SCHEMA_DEPTH} levels a policy schema may take"
        ));
    }
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                if REFERENCES.contains(&key.as_str()) {
                    return Err(format!(
                        "`{key}`: a policy schema may not refer to other schemas"
                    ));
                }
                match (key.as_str(), value) {
                    ("pattern", Value::String(_)) => *patterns += 1,
                    ("patternProperties", Value::Object(keys)) => *patterns += keys.len(),
                    _ => {}
                }
                walk(value, depth + 1, patterns)?;
            }
        }
        Value::Array(items) => {
            for item in items {
                walk(item, depth + 1, patterns)?;
            }
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    /// 63 properties each with a backtracking pattern: seconds of CPU per card for a
    /// backtracking engine.
    fn backtracking_schema(patterns: usize) -> Value {
        let properties: serde_json::Map<String, Value> = (0..patterns)
            .map(|i| (format!("p{i}"), json!({"pattern": r"(a|a)*\1b"})))
            .collect();
        json!({"properties": {"data": {"properties": properties}}})
    }

    #[test]
    fn ordinary_schemas_compile_and_decide() {
        let schema = PolicySchema::compile(&json!({
            "properties": {"data": {"properties": {"repository": {"pattern": "^acme/"}}}}
        }))
        .unwrap();
        assert!(schema.admits(&json!({"data": {"repository": "acme/web"}})));
        assert!(!schema.admits(&json!({"data": {"repository": "globex/site"}})));
        assert!(!schema.admits_everything());
        for everything in [json!(true), json!({})] {
            assert!(
                PolicySchema::compile(&everything)
                    .unwrap()
                    .admits_everything()
            );
        }
        assert!(
            !PolicySchema::compile(&json!(false))
                .unwrap()
                .admits(&json!({}))
        );
    }

    #[test]
    fn backreferences_are_refused_and_nothing_backtracks() {
        let err = PolicySchema::compile(&backtracking_schema(1)).unwrap_err();
        assert!(err.contains("linear-time"), "{err}");
        // Patterns the regex engine accepts match in linear time, however they nest.
        let properties: serde_json::Map<String, Value> = (0..MAX_POLICY_SCHEMA_PATTERNS)
            .map(|i| (format!("p{i}"), json!({"pattern": "^(a|a)*(a*)*b$"})))
            .collect();
        let schema = PolicySchema::compile(&json!({"properties": properties})).unwrap();
        let card: serde_json::Map<String, Value> = (0..MAX_POLICY_SCHEMA_PATTERNS)
            .map(|i| (format!("p{i}"), json!("a".repeat(10_000))))
            .collect();
        let card = Value::Object(card);
        let started = Instant::now();
        assert!(!schema.admits(&card));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn over_limit_schemas_are_refused_with_the_limit_named() {
        let deep = (0..=MAX_POLICY_SCHEMA_DEPTH).fold(json!({}), |inner, _| json!({"not": inner}));
        let large = json!({"enum": ["x".repeat(MAX_POLICY_SCHEMA_BYTES)]});
        let properties: serde_json::Map<String, Value> = (0..=MAX_POLICY_SCHEMA_PATTERNS)
            .map(|i| (format!("p{i}"), json!({"pattern": "^a"})))
            .collect();
        let many = json!({"properties": properties});
        let many_keys: serde_json::Map<String, Value> = (0..=MAX_POLICY_SCHEMA_PATTERNS)
            .map(|i| (format!("^p{i}"), json!(true)))
            .collect();
        let many_keys = json!({"patternProperties": many_keys});
        let referring = json!({"$defs": {"a": true}, "allOf": [{"$ref": "#/$defs/a"}]});
        let dynamic = json!({"anyOf": [{"$dynamicRef": "#x"}]});
        for (schema, says) in [
            (deep, "nested deeper"),
            (large, "bytes"),
            (many, "patterns"),
            (many_keys, "patterns"),
            (referring, "$ref"),
            (dynamic, "$dynamicRef"),
            (json!({"type": "nonsense"}), "not a valid JSON Schema"),
        ] {
            let err = PolicySchema::compile(&schema).unwrap_err();
            assert!(err.contains(says), "{err} should say {says}");
        }
    }

    #[test]
    fn a_pattern_over_the_size_limit_is_refused_at_compile() {
        let schema = json!({"pattern": "(\\w{100}){8}"});
        // Valid for the engine without our limit.
        jsonschema::options()
            .with_pattern_options(PatternOptions::regex())
            .build(&schema)
            .unwrap();
        let err = PolicySchema::compile(&schema).unwrap_err();
        assert!(err.contains("not a valid JSON Schema"), "{err}");
    }
}
