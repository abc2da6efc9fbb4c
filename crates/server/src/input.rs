//! The parsers of request input, as pure functions: what the fuzz targets (`fuzz/`) drive.
//! The handlers call exactly these.
//!
//! Whatever a client names (a user, an account, a client, a card, a page cursor) is parsed into
//! a [`Name`] here, and whatever JSON it sends is bounded in depth ([`check_json_depth`]) and,
//! when stored, parsed into a [`Document`]: inner code never receives a string PostgreSQL
//! cannot store, nor a document too deep to read back.

pub use cardgate_admin::api::{Document, MAX_NAME_LEN, Name, NameError, NulInDocument};

pub use crate::admin::bearer_session;
pub use crate::token::{
    FORM_PARAMETERS, MAX_FORM_BYTES, MAX_USERNAME_LEN, Params, basic_credentials,
};

/// The deepest nesting of arrays and objects a JSON body may have, the body itself counting
/// as the first level. Policy documents (JSON Schemas) need a handful.
pub const MAX_JSON_DEPTH: usize = 32;

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

    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
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
