//! JSON Schemas for each card type's `data` and each link verb's `data`, evaluated with the
//! `jsonschema` crate.

use std::collections::HashMap;
use std::sync::LazyLock;

use jsonschema::Validator;
use serde_json::{Value, json};

use crate::model::{CardType, LinkVerb};
use crate::policy::PolicySchema;

const REPOSITORY_PATTERN: &str =
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$";
const NAME_PATTERN: &str = "^[a-z0-9-]+$";

fn card_schema(card_type: CardType) -> Value {
    match card_type {
        CardType::User => json!({
            "type": "object",
            "required": ["roles"],
            "properties": {
                "roles": {"type": "array", "items": {"type": "string", "pattern": NAME_PATTERN}},
                "email": {"type": "string"},
                "robot": {"type": "boolean"},
            },
        }),
        CardType::Org => json!({"type": "object"}),
        CardType::Role => json!({
            "type": "object",
            "required": ["read"],
            "properties": {
                "read": {"type": ["object", "boolean"]},
                "catalog": {"type": "boolean"},
            },
            "additionalProperties": false,
        }),
        CardType::Session => json!({
            "type": "object",
            "required": ["actor", "expiration", "token"],
            "properties": {
                "actor": {"type": "string", "format": "uuid"},
                "expiration": {"type": "string", "format": "date-time"},
                "scope": {"type": ["object", "boolean"]},
                // `refresh`: an OAuth2 refresh token, never a Basic password. `login`: an admin
                // API login, ended by a password change. Absent or `session`: an ordinary
                // session (a token).
                "kind": {"enum": ["session", "login", "refresh"]},
                "client_id": {"type": "string"},
                // The service a refresh token was issued for.
                "service": {"type": "string"},
                // The user's active password card when a refresh token was issued (or null).
                "password": {"type": ["string", "null"], "format": "uuid"},
                "token": {
                    "type": "object",
                    "required": ["authentication"],
                    "properties": {
                        "authentication": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                    },
                    "additionalProperties": false,
                },
            },
            "if": {"properties": {"kind": {"const": "refresh"}}, "required": ["kind"]},
            "then": {"required": ["client_id", "service", "password"]},
        }),
        CardType::AuthenticationPassword => json!({
            "type": "object",
            "required": ["actor", "hash"],
            "properties": {
                "actor": {"type": "string", "format": "uuid"},
                "hash": {"type": "string", "pattern": r"^\$argon2id\$"},
            },
            "additionalProperties": false,
        }),
        CardType::CreateEvent
        | CardType::UpdateEvent
        | CardType::LinkEvent
        | CardType::UnlinkEvent
        | CardType::DeactivateEvent => event_schema(),
        CardType::Image => json!({
            "type": "object",
            "required": ["repository", "public"],
            "properties": {
                "repository": {"type": "string", "pattern": REPOSITORY_PATTERN, "maxLength": 255},
                "public": {"type": "boolean"},
            },
        }),
    }
}

fn event_schema() -> Value {
    json!({
        "type": "object",
        "required": ["timestamp", "actor", "target", "payload"],
        "properties": {
            "timestamp": {"type": "string", "format": "date-time"},
            "actor": {"type": "string", "format": "uuid"},
            "target": {"type": "string", "format": "uuid"},
            "payload": {},
        },
        "additionalProperties": false,
    })
}

fn link_schema(verb: LinkVerb) -> Value {
    match verb {
        LinkVerb::HasMember => json!({
            "type": "object",
            "required": ["role"],
            "properties": {
                "role": {"enum": ["owner", "maintainer", "developer", "viewer"]},
            },
            "additionalProperties": false,
        }),
        LinkVerb::HasAccessTo => json!({
            "type": "object",
            "required": ["actions"],
            "properties": {
                "actions": {
                    "type": "array",
                    "items": {"enum": ["pull", "push", "delete"]},
                    "uniqueItems": true,
                },
            },
            "additionalProperties": false,
        }),
    }
}

fn compile(schema: &Value) -> Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| unreachable!("built-in schema is invalid: {e}"))
}

static CARD_VALIDATORS: LazyLock<HashMap<CardType, Validator>> = LazyLock::new(|| {
    CardType::ALL
        .into_iter()
        .map(|t| (t, compile(&card_schema(t))))
        .collect()
});

static LINK_VALIDATORS: LazyLock<HashMap<&'static str, Validator>> = LazyLock::new(|| {
    [LinkVerb::HasMember, LinkVerb::HasAccessTo]
        .into_iter()
        .map(|v| (v.name(), compile(&link_schema(v))))
        .collect()
});

/// The first violation of `validator` by `data`, as `data/<path>: <message>`.
fn first_error(validator: &Validator, data: &Value) -> Option<String> {
    validator.iter_errors(data).next().map(|e| {
        let path = e.instance_path().to_string();
        format!("data{path}: {e}")
    })
}

/// The field of a card type's `data` that holds a policy schema: a role's `read`, a
/// session's `scope`.
fn policy_field(card_type: CardType) -> Option<&'static str> {
    match card_type {
        CardType::Role => Some("read"),
        CardType::Session => Some("scope"),
        _ => None,
    }
}

/// Checks a card's `data` against its type's schema. A role's `read` and a session's `scope`
/// must be [`PolicySchema`]s: valid JSON Schemas within the bounds that keep evaluating them
/// cheap.
pub fn check_card(card_type: CardType, data: &Value) -> Result<(), String> {
    let validator = CARD_VALIDATORS
        .get(&card_type)
        .ok_or_else(|| format!("no schema for {}", card_type.name()))?;
    if let Some(error) = first_error(validator, data) {
        return Err(error);
    }
    if let Some(field) = policy_field(card_type)
        && let Some(schema) = data.get(field)
    {
        PolicySchema::compile(schema).map_err(|e| format!("data/{field}: {e}"))?;
    }
    Ok(())
}

/// Checks a link's `data` against its verb's schema.
pub fn check_link(verb: LinkVerb, data: &Value) -> Result<(), String> {
    let validator = LINK_VALIDATORS
        .get(verb.name())
        .ok_or_else(|| format!("no schema for `{}`", verb.name()))?;
    first_error(validator, data).map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The data of a valid session, with `extra` fields added.
    fn session(extra: Value) -> Value {
        let mut data = json!({
            "actor": "5f0c6a48-4d8e-4f9a-9a55-2f4b0e1f8c11",
            "expiration": "2030-01-01T00:00:00Z",
            "token": {"authentication": "a".repeat(64)},
        });
        if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
            data.extend(extra);
        }
        data
    }

    #[test]
    fn valid_data_passes() {
        for (t, data) in [
            (
                CardType::User,
                json!({"roles": ["user-default"], "robot": true}),
            ),
            (CardType::Org, json!({})),
            (
                CardType::Role,
                json!({"read": {"type": "object"}, "catalog": true}),
            ),
            (
                CardType::Image,
                json!({"repository": "acme/team/web", "public": false}),
            ),
            (CardType::Session, session(json!({}))),
            (
                CardType::Session,
                session(json!({
                    "kind": "refresh",
                    "client_id": "docker",
                    "service": "registry.example.com",
                    "password": "0b8c0d8e-4d8e-4f9a-9a55-2f4b0e1f8c11",
                })),
            ),
        ] {
            assert_eq!(check_card(t, &data), Ok(()), "{t:?}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        for (t, data, field) in [
            (CardType::User, json!({"roles": ["Admin"]}), "data/roles/0"),
            (CardType::User, json!({}), "roles"),
            (
                CardType::Image,
                json!({"repository": "Acme/Web", "public": false}),
                "data/repository",
            ),
            (
                CardType::Image,
                json!({"repository": "acme/web", "public": "yes"}),
                "data/public",
            ),
            (CardType::Role, json!({"read": 3}), "data/read"),
            (
                CardType::Role,
                json!({"read": {"type": "nonsense"}}),
                "data/read",
            ),
            (
                CardType::Session,
                session(json!({"actor": "not-a-uuid"})),
                "data/actor",
            ),
            (
                CardType::AuthenticationPassword,
                json!({"actor": "5f0c6a48-4d8e-4f9a-9a55-2f4b0e1f8c11", "hash": "plaintext"}),
                "data/hash",
            ),
            (
                CardType::Session,
                session(json!({"kind": "forever"})),
                "data/kind",
            ),
            (
                CardType::Session,
                session(json!({"kind": "refresh", "client_id": "docker", "password": null})),
                "service",
            ),
        ] {
            let err = check_card(t, &data).unwrap_err();
            assert!(err.contains(field), "{t:?}: {err} should name {field}");
        }
    }

    #[test]
    fn link_data_is_checked() {
        assert!(check_link(LinkVerb::HasMember, &json!({"role": "owner"})).is_ok());
        assert!(
            check_link(LinkVerb::HasMember, &json!({"role": "emperor"}))
                .unwrap_err()
                .contains("data/role")
        );
        assert!(check_link(LinkVerb::HasAccessTo, &json!({"actions": ["push"]})).is_ok());
        assert!(
            check_link(LinkVerb::HasAccessTo, &json!({"actions": ["*"]}))
                .unwrap_err()
                .contains("data/actions/0")
        );
    }
}
