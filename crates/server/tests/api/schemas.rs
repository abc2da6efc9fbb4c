//! Schemas anyone may write (a token's scope) or platform admins write (a role's read schema)
//! cannot make the server spend seconds: refused at write with a 400 naming the field, and
//! admitting nothing, quickly, when one is already in the store.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::Api;
use crate::cards::{access, token};
use crate::description;

/// 63 backtracking patterns on the repository name: tens of seconds of CPU per request for a
/// backtracking engine.
fn backtracking_schema() -> Value {
    let patterns: Vec<Value> = (0..63)
        .map(|i| json!({"pattern": format!(r"(a|a)*\1bx{i}")}))
        .collect();
    json!({"properties": {"data": {"properties": {"repository": {"anyOf": patterns}}}}})
}

/// Valid patterns, one more than a schema may hold.
fn too_many_patterns() -> Value {
    let patterns: Vec<Value> = (0..=cardgate_store::MAX_POLICY_SCHEMA_PATTERNS)
        .map(|i| json!({"pattern": format!("^acme/{i}")}))
        .collect();
    json!({"anyOf": patterns})
}

#[tokio::test]
async fn costly_scopes_and_read_schemas_are_refused_at_write_naming_the_field() {
    let api = Api::new().await;
    let (olivia, admin) = (api.login("olivia").await, api.login("admin").await);
    for (schema, says) in [
        (backtracking_schema(), "patterns"),
        (json!({"pattern": r"(a|a)*\1b"}), "linear-time"),
        (too_many_patterns(), "patterns"),
        (
            json!({"$defs": {"a": true}, "allOf": [{"$ref": "#/$defs/a"}]}),
            "$ref",
        ),
    ] {
        for (path, caller, body, field) in [
            (
                "/v1/admin/users/olivia/tokens",
                &olivia,
                json!({"scope": schema}),
                "scope",
            ),
            (
                "/v1/admin/roles",
                &admin,
                json!({"name": "slow", "read": schema}),
                "read",
            ),
        ] {
            let (status, body) = api.status(Method::POST, path, caller, Some(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            let said = description(&body);
            assert!(said.contains(field) && said.contains(says), "{said}");
        }
    }
    // Nothing was written.
    let (_, sessions) = api.get("/v1/admin/users/olivia/sessions", &olivia).await;
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );
    assert!(!api.f.has_card("role-slow").await);
}

#[tokio::test]
async fn a_costly_scope_already_in_the_store_admits_nothing_and_answers_quickly() {
    let api = Api::new().await;
    let olivia = api.login("olivia").await;
    let long: Vec<String> = (0..8)
        .map(|i| format!("acme/{}{i}", "a".repeat(200)))
        .collect();
    for repository in &long {
        api.f.image(repository, &["org-acme"], false).await;
    }
    let (status, issued) = api
        .post(
            "/v1/admin/users/olivia/tokens",
            &olivia,
            json!({"scope": true}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let ci_token = issued["token"].as_str().unwrap().to_owned();
    let session = api
        .f
        .store
        .card_by_id(issued["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    // Written past the API, as an older version could have.
    api.f
        .write_unchecked(&session, "scope", &backtracking_schema())
        .await;
    let scopes: Vec<String> = long
        .iter()
        .map(|r| format!("repository:{r}:pull,push"))
        .collect();
    let started = Instant::now();
    let response = token(
        &api.base,
        Some(("olivia", &ci_token)),
        &scopes.join("&scope="),
    )
    .await;
    let took = started.elapsed();
    assert_eq!(response.status(), StatusCode::OK);
    let granted = access(&response.json().await.unwrap());
    assert!(
        granted
            .as_array()
            .unwrap()
            .iter()
            .all(|entry| entry["actions"] == json!([])),
        "{granted}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    // Olivia's own password still reaches them.
    let response = token(&api.base, Some(("olivia", "olivia-password")), &scopes[0]).await;
    assert_eq!(
        access(&response.json().await.unwrap())[0]["actions"],
        json!(["pull", "push"])
    );
}
