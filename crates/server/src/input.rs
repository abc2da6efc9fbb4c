//! The parsers of request input, as pure functions: what the fuzz targets (`fuzz/`) drive.
//! The handlers call exactly these.
//!
//! Whatever a client names (a user, an account, a client, a card, a page cursor) is parsed into
//! a [`Name`] here, and whatever JSON it sends is bounded in depth ([`check_json_depth`]) and,
//! when stored, parsed into a [`Document`]: inner code never receives a string PostgreSQL
//! cannot store, nor a document too deep to read back.

use serde::Deserialize;
use serde_json::Value;

pub use crate::admin::bearer_session;
pub use crate::routes::{
    FORM_PARAMETERS, MAX_FORM_BYTES, MAX_USERNAME_LEN, Params, basic_credentials,
};

/// The longest name a client may send, in characters: no user, account, client id or slug is
/// longer.
pub const MAX_NAME_LEN: usize = 256;

/// The deepest nesting of arrays and objects a JSON body may have, the body itself counting
/// as the first level. Policy documents (JSON Schemas) need a handful.
pub const MAX_JSON_DEPTH: usize = 32;

/// A name a client sends: a user name, an account, a client id, a slug or a slug cursor. At
/// most [`MAX_NAME_LEN`] characters, none of them a control character (PostgreSQL cannot
/// store a NUL, and the others have no place in a name or a log line). May be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Name(String);

/// Why a [`Name`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("holds a control character (U+{0:04X})")]
    ControlCharacter(u32),
}

impl Name {
    pub fn parse(value: impl Into<String>) -> Result<Name, NameError> {
        let value = value.into();
        if value.chars().count() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(NameError::ControlCharacter(c.into()));
        }
        Ok(Name(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Name::parse(value)
    }
}

/// A JSON document a client sends to be stored, such as a JSON Schema: no string and no
/// member name in it holds a NUL character, which PostgreSQL's `jsonb` cannot store.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "Value")]
pub struct Document(Value);

/// Why a [`Document`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("holds a NUL character (\\u0000), which cannot be stored")]
pub struct NulInDocument;

impl Document {
    pub fn into_value(self) -> Value {
        self.0
    }
}

impl TryFrom<Value> for Document {
    type Error = NulInDocument;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        let mut pending = vec![&value];
        while let Some(next) = pending.pop() {
            match next {
                Value::String(s) if s.contains('\0') => return Err(NulInDocument),
                Value::Array(items) => pending.extend(items),
                Value::Object(members) => {
                    if members.keys().any(|k| k.contains('\0')) {
                        return Err(NulInDocument);
                    }
                    pending.extend(members.values());
                }
                _ => {}
            }
        }
        Ok(Document(value))
    }
}

/// A JSON body nests deeper than [`MAX_JSON_DEPTH`]; `field` is the top-level member the
/// nesting is in (`body` when the body is not an object).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: nested deeper than {MAX_JSON_DEPTH} levels")]
pub struct TooDeep {
    pub field: String,
}

/// Refuses a JSON body nesting arrays and objects deeper than [`MAX_JSON_DEPTH`], before it is
/// parsed: one pass over the bytes, whatever they hold (malformed JSON is left to the parser).
pub fn check_json_depth(body: &[u8]) -> Result<(), TooDeep> {
    let is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut string_start = 0;
    // The last string closed directly in the top-level object: the member name a nested value
    // belongs to.
    let mut member: &[u8] = b"";
    for (i, &byte) in body.iter().enumerate() {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
                if depth == 1 {
                    member = &body[string_start..i];
                }
            }
            continue;
        }
        match byte {
            b'"' => {
                in_string = true;
                string_start = i + 1;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(TooDeep {
                        field: member_name(is_object, member),
                    });
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The member name to report: a plain field name as sent, else `body`.
fn member_name(is_object: bool, member: &[u8]) -> String {
    let plain = !member.is_empty()
        && member.len() <= 64
        && member
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
    match std::str::from_utf8(member) {
        Ok(name) if is_object && plain => name.to_owned(),
        _ => "body".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn names_refuse_control_characters_and_excess_length_only() {
        for good in [
            "",
            "alice",
            "user-alice",
            "Émile Zola",
            "a b",
            &"x".repeat(256),
        ] {
            assert_eq!(Name::parse(good).unwrap().as_str(), good);
        }
        assert_eq!(Name::parse("bob\0"), Err(NameError::ControlCharacter(0)));
        assert_eq!(Name::parse("a\nb"), Err(NameError::ControlCharacter(10)));
        assert_eq!(
            Name::parse("a\u{7f}"),
            Err(NameError::ControlCharacter(0x7f))
        );
        assert_eq!(
            Name::parse("a\u{85}"),
            Err(NameError::ControlCharacter(0x85))
        );
        assert_eq!(Name::parse("x".repeat(257)), Err(NameError::TooLong));
        assert_eq!(
            NameError::ControlCharacter(0).to_string(),
            "holds a control character (U+0000)"
        );
    }

    #[test]
    fn documents_refuse_a_nul_in_any_string_or_member_name() {
        let good = json!({"type": "object", "properties": {"a": {"enum": ["x\u{1}", 1]}}});
        assert_eq!(Document::try_from(good.clone()).unwrap().into_value(), good);
        for bad in [
            json!("a\u{0}"),
            json!({"a": ["b", {"c": "d\u{0}"}]}),
            json!({"a\u{0}": 1}),
        ] {
            assert_eq!(Document::try_from(bad), Err(NulInDocument));
        }
    }

    #[test]
    fn json_deeper_than_the_bound_is_refused_naming_its_member() {
        let at_bound = format!(r#"{{"scope": {}}}"#, nested(MAX_JSON_DEPTH - 1));
        assert_eq!(check_json_depth(at_bound.as_bytes()), Ok(()));
        let over = format!(r#"{{"name": "x", "scope": {}}}"#, nested(MAX_JSON_DEPTH));
        let err = check_json_depth(over.as_bytes()).unwrap_err();
        assert_eq!(err.field, "scope");
        assert_eq!(err.to_string(), "scope: nested deeper than 32 levels");
        let huge = format!(r#"{{"read": {}}}"#, nested(10_000));
        assert_eq!(check_json_depth(huge.as_bytes()).unwrap_err().field, "read");
        assert_eq!(
            check_json_depth(nested(100).as_bytes()).unwrap_err().field,
            "body"
        );
    }

    #[test]
    fn brackets_inside_strings_do_not_count() {
        let body = format!(
            r#"{{"a": "{}", "b\"[": "\\\"{}"}}"#,
            "[".repeat(100),
            "{".repeat(100)
        );
        assert_eq!(check_json_depth(body.as_bytes()), Ok(()));
        // Whatever the bytes, the scan ends without a panic.
        assert!(check_json_depth(b"\"\\").is_ok());
        assert!(check_json_depth(b"]]]}}}").is_ok());
    }
}
