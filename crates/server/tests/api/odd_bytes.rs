//! Odd input at the edge: control characters in names, NUL characters and deep nesting in
//! JSON. Each is a `400` naming the field, with no database text, and changes nothing; never a
//! `500`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cardgate_server::Application;
use cardgate_store::Store;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::cards::seeded;
use crate::cards_settings;
use crate::description;
use crate::error_body;
use crate::{Sent, basic_get};

/// Words of PostgreSQL's own messages that must never reach a client.
const DATABASE_WORDS: [&str; 5] = [
    "database",
    "escape sequence",
    "byte sequence",
    "decoding column",
    "recursion",
];

/// The card store app (acme with alice, password `wonderland`; `admin-password` for the
/// admin) with `env` on top.
struct Odd {
    base: String,
    client: Client,
    store: Store,
}

impl Odd {
    /// An admin login whose user name holds a NUL is refused naming `username`.
    async fn refuses_a_nul_in_the_admin_login(&self) {
        let login = json!({"username": "bo\u{0}b", "password": "x"});
        refused(self.admin_login(login).await, "username", "admin login").await;
    }

    async fn new(env: &[(&str, &str)]) -> Odd {
        let (url, store, _f) = seeded(Some("admin-password")).await;
        let settings = cards_settings(&url, env);
        let app = Application::build(&settings).await.unwrap();
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Odd {
            base,
            client: Client::new(),
            store,
        }
    }

    async fn admin_token(&self) -> String {
        let response = self
            .admin_login(json!({"username": "admin", "password": "admin-password"}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    async fn admin_login(&self, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/admin/login", self.base))
            .json(&body)
            .sent()
            .await
    }

    async fn basic(&self, user: &str, password: &str) -> reqwest::Response {
        let credentials = STANDARD.encode(format!("{user}:{password}"));
        self.client
            .get(format!(
                "{}/v1/registry?service=registry.test&scope=repository:acme/web:pull",
                self.base
            ))
            .header("Authorization", format!("Basic {credentials}"))
            .sent()
            .await
    }

    async fn form(&self, form: &str) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/registry", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .sent()
            .await
    }

    async fn admin(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<String>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("If-Match", "\"1\"");
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json")
                .body(body);
        }
        request.sent().await
    }

    /// How many cards and links the store holds.
    async fn rows(&self) -> (i64, i64) {
        let (cards,): (i64,) = sqlx::query_as("SELECT count(*) FROM cards")
            .fetch_one(self.store.pool())
            .await
            .unwrap();
        let (links,): (i64,) = sqlx::query_as("SELECT count(*) FROM links")
            .fetch_one(self.store.pool())
            .await
            .unwrap();
        (cards, links)
    }
}

/// A 400 whose description names `field` and says nothing of the database.
async fn refused(response: reqwest::Response, field: &str, case: &str) {
    let status = response.status();
    let body = response.text().await.unwrap();
    check_refused(status, &body, field, case);
}

fn check_refused(status: StatusCode, body: &str, field: &str, case: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {body}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"], "invalid_request", "{case}: {body}");
    let description = description(&body);
    assert!(description.contains(field), "{case}: {description}");
    for word in DATABASE_WORDS {
        assert!(
            !description.to_lowercase().contains(word),
            "{case}: {description}"
        );
    }
}

#[tokio::test]
async fn control_characters_in_names_are_400_naming_the_field_at_every_entry_point() {
    let odd = Odd::new(&[]).await;
    let token = odd.admin_token().await;
    let before = odd.rows().await;

    // The token endpoint: the Basic user name, the form's username and client_id.
    for user in ["bo\0b", "bo\u{7}b"] {
        refused(odd.basic(user, "x").await, "user name", "Basic").await;
    }
    refused(
        odd.form("grant_type=password&username=bo%00b&password=x")
            .await,
        "`username`",
        "form username",
    )
    .await;
    // The password is right: the client id is refused before it would be stored.
    refused(
        odd.form(
            "grant_type=password&username=alice&password=wonderland&service=registry.test\
             &access_type=offline&client_id=a%00b",
        )
        .await,
        "`client_id`",
        "form client_id",
    )
    .await;
    let url = format!(
        "{}/v1/registry?service=registry.test&offline_token=true&client_id=a%00b",
        odd.base
    );
    let response = basic_get(&odd.client, &url, "alice", "wonderland").await;
    refused(response, "`client_id`", "query client_id").await;
    let alice = odd.store.card_by_slug("user-alice").await.unwrap().unwrap();
    assert!(odd.store.sessions_of(alice.id).await.unwrap().is_empty());

    // The admin API: the login, path segments, bodies, queries and cursors.
    odd.refuses_a_nul_in_the_admin_login().await;
    let cases: Vec<(Method, &str, Option<Value>, &str)> = vec![
        (Method::GET, "/v1/admin/users/bob%00", None, "user"),
        (Method::DELETE, "/v1/admin/users/bob%0A", None, "user"),
        (
            Method::POST,
            "/v1/admin/users/bob%00/tokens",
            Some(json!({})),
            "user",
        ),
        (Method::GET, "/v1/admin/orgs/acme%00/members", None, "org"),
        (
            Method::PUT,
            "/v1/admin/orgs/acme/members/bob%00",
            Some(json!({"role": "viewer"})),
            "user",
        ),
        (
            Method::DELETE,
            "/v1/admin/orgs/acme%07/members/bob",
            None,
            "org",
        ),
        (Method::DELETE, "/v1/admin/roles/x%00", None, "role"),
        (
            Method::POST,
            "/v1/admin/orgs/acme/members",
            Some(json!({"user": "b\u{0}", "role": "viewer"})),
            "user",
        ),
        (
            Method::POST,
            "/v1/admin/grants",
            Some(json!({"holder": "user-b\u{0}", "repository": "acme/web", "actions": ["pull"]})),
            "holder",
        ),
        (
            Method::DELETE,
            "/v1/admin/grants?holder=user-a%00&repository=acme/web",
            None,
            "holder",
        ),
        (
            Method::GET,
            "/v1/admin/explain?account=a%00&scope=repository:acme/web:pull",
            None,
            "account",
        ),
        (Method::GET, "/v1/admin/users?after=a%00", None, "after"),
        (Method::GET, "/v1/admin/orgs?after=a%00", None, "after"),
        (Method::GET, "/v1/admin/roles?after=a%00", None, "after"),
        (
            Method::GET,
            "/v1/admin/orgs/acme/images?after=a%00",
            None,
            "after",
        ),
        (
            Method::GET,
            "/v1/admin/orgs/acme/robots?after=a%00",
            None,
            "after",
        ),
        (
            Method::POST,
            "/v1/admin/users/alice/tokens",
            Some(json!({"scope": {"description": "a\u{0}"}})),
            "scope",
        ),
        (
            Method::POST,
            "/v1/admin/roles",
            Some(json!({"name": "odd", "read": {"properties": {"a\u{0}": true}}})),
            "read",
        ),
    ];
    for (method, path, body, field) in cases {
        let case = format!("{method} {path}");
        let body = body.map(|b| b.to_string());
        refused(odd.admin(method, path, &token, body).await, field, &case).await;
    }
    assert_eq!(odd.rows().await, before, "nothing was written");
    assert!(odd.store.sessions_of(alice.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn malformed_user_names_count_as_failed_logins() {
    let odd = Odd::new(&[
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "100"),
        ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "3"),
    ])
    .await;
    refused(odd.basic("bo\0b", "x").await, "user name", "Basic").await;
    refused(
        odd.form("grant_type=password&username=bo%00b&password=x")
            .await,
        "`username`",
        "form",
    )
    .await;
    odd.refuses_a_nul_in_the_admin_login().await;
    // Three failures from this address: every login from it is locked now.
    let response = odd.basic("alice", "wonderland").await;
    let body = error_body(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["error"], "too_many_requests");
    let response = odd.basic("bo\0b", "x").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn json_with_a_nul_or_nested_too_deep_is_400_without_database_text_and_changes_nothing() {
    let odd = Odd::new(&[]).await;
    let token = odd.admin_token().await;
    let before = odd.rows().await;
    let deep = |levels: usize| format!("{}{}", "[".repeat(levels), "]".repeat(levels));
    let nested =
        |levels: usize| format!("{}true{}", r#"{"not":"#.repeat(levels), "}".repeat(levels));
    let cases: Vec<(Method, &str, String, &str, &str)> = vec![
        (
            Method::POST,
            "/v1/admin/users/alice/tokens",
            r#"{"scope": {"description": "a\u0000b"}}"#.to_owned(),
            "scope",
            "holds a NUL character",
        ),
        (
            Method::POST,
            "/v1/admin/users/alice/tokens",
            format!(r#"{{"scope": {}}}"#, deep(10_000)),
            "scope",
            "nested deeper than 32 levels",
        ),
        (
            Method::POST,
            "/v1/admin/users/alice/tokens",
            format!(
                r#"{{"expires_in_seconds": 3600, "scope": {}}}"#,
                nested(100)
            ),
            "scope",
            "nested deeper than 32 levels",
        ),
        (
            Method::POST,
            "/v1/admin/roles",
            r#"{"name": "odd", "read": {"const": "\u0000"}}"#.to_owned(),
            "read",
            "holds a NUL character",
        ),
        (
            Method::POST,
            "/v1/admin/roles",
            format!(r#"{{"name": "odd", "read": {}}}"#, deep(10_000)),
            "read",
            "nested deeper than 32 levels",
        ),
        (
            Method::POST,
            "/v1/admin/roles",
            format!(r#"{{"name": "odd", "read": {}}}"#, nested(100)),
            "read",
            "nested deeper than 32 levels",
        ),
        (
            Method::PUT,
            "/v1/admin/roles/user-default",
            format!(r#"{{"read": {}}}"#, nested(100)),
            "read",
            "nested deeper than 32 levels",
        ),
    ];
    for (method, path, body, field, problem) in cases {
        let case = format!(
            "{method} {path} {}",
            body.chars().take(60).collect::<String>()
        );
        let response = odd.admin(method, path, &token, Some(body)).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(text.contains(problem), "{case}: {text}");
        check_refused(status, &text, field, &case);
    }
    assert_eq!(odd.rows().await, before);
    // Shallow documents still pass.
    let response = odd
        .admin(
            Method::POST,
            "/v1/admin/users/alice/tokens",
            &token,
            Some(format!(r#"{{"scope": {}}}"#, nested(20))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
