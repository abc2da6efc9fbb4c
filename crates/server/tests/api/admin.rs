//! The admin API over HTTP, against the real PostgreSQL: logging in and out, changes by
//! permitted callers, refusals of everyone else, revisions, events; and that a change is in
//! force for the very next token request.

use std::future::Future;

use argon2::{Argon2, PasswordHasher};
use cardgate_store::testing::{Fixture, fresh_database_url};
use cardgate_store::{PoolSettings, Store};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

use crate::cards::seeded;
use crate::cards::{access, spawn_on, token};
use crate::description;
use crate::{Sent, basic_get};

pub(crate) struct Api {
    pub(crate) base: String,
    client: Client,
    pub(crate) f: Fixture,
}

impl Api {
    /// acme (owner olivia, maintainer mark) with image acme/web, globex (owner gina), a plain
    /// user; everyone's password is `<name>-password`.
    pub(crate) async fn new() -> Api {
        let url = fresh_database_url().await;
        let f = Fixture::on(Store::connect_lazy(&url, &PoolSettings::default()).unwrap()).await;
        let acme = f.org("acme").await;
        let globex = f.org("globex").await;
        for (name, org, role) in [
            ("olivia", Some(&acme), "owner"),
            ("mark", Some(&acme), "maintainer"),
            ("gina", Some(&globex), "owner"),
            ("plain", None, ""),
        ] {
            let user = f.user(name, &["user-default"]).await;
            let hash = Argon2::default()
                .hash_password(format!("{name}-password").as_bytes())
                .unwrap()
                .to_string();
            f.store.set_password(&f.admin, &user, &hash).await.unwrap();
            if let Some(org) = org {
                f.member(org, &user, role).await;
            }
        }
        let hash = Argon2::default()
            .hash_password(b"admin-password")
            .unwrap()
            .to_string();
        f.store
            .set_password(&f.admin, &f.admin, &hash)
            .await
            .unwrap();
        f.image("acme/web", &["org-acme"], false).await;
        let base = spawn_on(&url, true).await;
        Api {
            base,
            client: Client::new(),
            f,
        }
    }

    pub(crate) async fn login(&self, name: &str) -> String {
        let response = self
            .call(
                Method::POST,
                "/v1/admin/login",
                None,
                Some(json!({"username": name, "password": format!("{name}-password")})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "login {name}");
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.sent().await
    }

    /// GETs `path` and returns the status with the JSON body (Null when empty).
    pub(crate) async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.status(Method::GET, path, token, None).await
    }

    /// POSTs `body` and returns the status with the JSON body (Null when empty).
    pub(crate) async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.status(Method::POST, path, token, Some(body)).await
    }

    /// Calls and returns the status with the JSON body (Null when empty).
    pub(crate) async fn status(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let response = self.call(method, path, Some(token), body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn logging_in_gives_a_bearer_token_that_logging_out_revokes() {
    let api = Api::new().await;
    let bad = api
        .call(
            Method::POST,
            "/v1/admin/login",
            None,
            Some(json!({"username": "olivia", "password": "nope"})),
        )
        .await;
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    let body: Value = bad.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");

    let token = api.login("olivia").await;
    let (status, who) = api
        .status(Method::GET, "/v1/admin/whoami", &token, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(who["user"], "user-olivia");
    assert_eq!(
        who["memberships"],
        json!([{"org": "org-acme", "role": "owner"}])
    );

    for bad_token in ["", "garbage", "00000000-0000-0000-0000-000000000000.00"] {
        let (status, _) = api
            .status(Method::GET, "/v1/admin/whoami", bad_token, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{bad_token:?}");
    }
    let no_token = api.call(Method::GET, "/v1/admin/whoami", None, None).await;
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);

    let (status, _) = api
        .status(Method::POST, "/v1/admin/logout", &token, None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = api
        .status(Method::GET, "/v1/admin/whoami", &token, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_owner_grants_a_robot_push_in_force_at_the_next_token_request_and_revokes_it() {
    let api = Api::new().await;
    let olivia = api.login("olivia").await;
    let (status, robot) = api
        .post(
            "/v1/admin/orgs/acme/robots",
            &olivia,
            json!({"name": "ci-bot"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{robot}");
    let (status, _) = api
        .status(
            Method::PUT,
            "/v1/admin/users/ci-bot/password",
            &olivia,
            Some(json!({"password": "ci-bot-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let push = |api: &Api| {
        let base = api.base.clone();
        async move {
            let response = token(
                &base,
                Some(("ci-bot", "ci-bot-password")),
                "repository:acme/web:pull,push",
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
            access(&response.json().await.unwrap())[0]["actions"].clone()
        }
    };
    assert_eq!(push(&api).await, json!([]));
    let (status, _) = api
        .post(
            "/v1/admin/grants",
            &olivia,
            json!({"holder": "user-ci-bot", "repository": "acme/web", "actions": ["pull", "push"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(push(&api).await, json!(["pull", "push"]));
    let (status, _) = api
        .status(
            Method::DELETE,
            "/v1/admin/grants?holder=user-ci-bot&repository=acme/web",
            &olivia,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(push(&api).await, json!([]));

    // The events show both changes with the owner as actor; globex's owner sees none of them.
    let web = api.f.image_of("acme/web").await;
    let (status, events) = api
        .get(&format!("/v1/admin/events?target={}", web.id), &olivia)
        .await;
    assert_eq!(status, StatusCode::OK);
    let olivia_id = api.f.card_by_slug("user-olivia").await.id;
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["actor"] == olivia_id.to_string())
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unlink@1.0.0", "link@1.0.0"]);
    let gina = api.login("gina").await;
    let (_, hidden) = api
        .get(&format!("/v1/admin/events?target={}", web.id), &gina)
        .await;
    assert_eq!(hidden["events"], json!([]));
}

#[tokio::test]
async fn everyone_else_is_refused_with_403_and_nothing_changes() {
    let api = Api::new().await;
    let gina = api.login("gina").await;
    let mark = api.login("mark").await;
    let plain = api.login("plain").await;
    let refusals: Vec<(&str, Method, &str, Option<Value>)> = vec![
        (
            &gina,
            Method::POST,
            "/v1/admin/orgs/acme/robots",
            Some(json!({"name": "evil"})),
        ),
        (
            &gina,
            Method::POST,
            "/v1/admin/orgs/acme/members",
            Some(json!({"user": "gina", "role": "owner"})),
        ),
        (
            &gina,
            Method::POST,
            "/v1/admin/grants",
            Some(json!({"holder": "user-gina", "repository": "acme/web", "actions": ["push"]})),
        ),
        (
            &gina,
            Method::POST,
            "/v1/admin/images",
            Some(json!({"repository": "acme/evil", "public": true})),
        ),
        (
            &mark,
            Method::POST,
            "/v1/admin/orgs/acme/members",
            Some(json!({"user": "plain", "role": "viewer"})),
        ),
        (
            &mark,
            Method::DELETE,
            "/v1/admin/orgs/acme/members/olivia",
            None,
        ),
        (
            &plain,
            Method::POST,
            "/v1/admin/orgs",
            Some(json!({"name": "mine"})),
        ),
        (
            &plain,
            Method::POST,
            "/v1/admin/users",
            Some(json!({"name": "boss", "roles": ["platform-admin"]})),
        ),
        (
            &plain,
            Method::PUT,
            "/v1/admin/users/olivia/password",
            Some(json!({"password": "taken-over"})),
        ),
        (&plain, Method::DELETE, "/v1/admin/users/olivia", None),
    ];
    for (token, method, path, body) in refusals {
        let (status, answer) = api.status(method.clone(), path, token, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "forbidden");
    }
    assert!(!api.f.has_card("user-evil").await);
    assert!(!api.f.has_card("org-mine").await);
    assert!(!api.f.has_image("acme/evil").await);
    // Olivia's password still works.
    api.login("olivia").await;
}

#[tokio::test]
async fn updates_carry_the_revision_and_malformed_requests_name_the_problem() {
    let api = Api::new().await;
    let admin = api.login("admin").await;
    let created = api
        .call(
            Method::POST,
            "/v1/admin/orgs",
            Some(&admin),
            Some(json!({"name": "initech"})),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.headers()["etag"], "\"1\"");

    let olivia = api.login("olivia").await;
    let web = api.f.image_of("acme/web").await;
    let open = |revision: Option<i64>| {
        let mut request = api
            .client
            .patch(format!("{}/v1/admin/images", api.base))
            .bearer_auth(&olivia)
            .json(&json!({"repository": "acme/web", "public": true}));
        if let Some(revision) = revision {
            request = request.header("If-Match", format!("\"{revision}\""));
        }
        request.send()
    };
    assert_eq!(open(None).await.unwrap().status(), StatusCode::BAD_REQUEST);
    let opened = open(Some(web.revision)).await.unwrap();
    assert_eq!(opened.status(), StatusCode::OK);
    assert_eq!(
        opened.headers()["etag"],
        format!("\"{}\"", web.revision + 1)
    );
    let stale = open(Some(web.revision)).await.unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let body: Value = stale.json().await.unwrap();
    assert_eq!(body["error"], "precondition_failed");

    for (path, body, expected) in [
        ("/v1/admin/orgs", json!({"nom": "x"}), "name"),
        ("/v1/admin/orgs", json!({"name": "Bad Name"}), "name:"),
        (
            "/v1/admin/images",
            json!({"repository": "ACME/web"}),
            "repository:",
        ),
        (
            "/v1/admin/grants",
            json!({"holder": "user-olivia", "repository": "acme/web"}),
            "actions",
        ),
    ] {
        let (status, answer) = api.status(Method::POST, path, &admin, Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(description(&answer).contains(expected), "{path}: {answer}");
    }
    let (status, _) = api
        .status(
            Method::DELETE,
            "/v1/admin/orgs/acme/members/nobody",
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn robot_tokens_are_shown_once_listed_without_secrets_and_revoked_at_once() {
    let api = Api::new().await;
    let olivia = api.login("olivia").await;
    let (status, _) = api
        .post(
            "/v1/admin/orgs/acme/robots",
            &olivia,
            json!({"name": "ci-bot"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .post(
            "/v1/admin/grants",
            &olivia,
            json!({"holder": "user-ci-bot", "repository": "acme/web", "actions": ["pull"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, issued) = api
        .post(
            "/v1/admin/users/ci-bot/tokens",
            &olivia,
            json!({"expires_in_seconds": 3600}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    let robot_token = issued["token"].as_str().unwrap().to_owned();
    let pull = token(
        &api.base,
        Some(("ci-bot", &robot_token)),
        "repository:acme/web:pull",
    )
    .await;
    assert_eq!(pull.status(), StatusCode::OK);
    assert_eq!(
        access(&pull.json().await.unwrap())[0]["actions"],
        json!(["pull"])
    );

    let (status, listed) = api.get("/v1/admin/users/ci-bot/sessions", &olivia).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0]["id"], issued["id"]);
    let secret = robot_token.split_once('.').unwrap().1;
    assert!(!listed.to_string().contains(secret));
    assert!(
        !listed
            .to_string()
            .contains(&cardgate_store::hash_session_secret(secret))
    );

    // Another org's owner can neither list nor revoke it; the owner revokes it at once.
    let gina = api.login("gina").await;
    let path = format!("/v1/admin/sessions/{}", issued["id"].as_str().unwrap());
    let (status, _) = api
        .status(Method::GET, "/v1/admin/users/ci-bot/sessions", &gina, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.status(Method::DELETE, &path, &gina, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .status(Method::POST, "/v1/admin/users/ci-bot/tokens", &gina, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.status(Method::DELETE, &path, &olivia, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let refused = token(
        &api.base,
        Some(("ci-bot", &robot_token)),
        "repository:acme/web:pull",
    )
    .await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = api.status(Method::DELETE, &path, &olivia, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn explain_says_per_action_what_decided_and_what_is_missing() {
    let api = Api::new().await;
    let olivia = api.login("olivia").await;
    let (status, answer) = api
        .get(
            "/v1/admin/explain?account=mark&scope=repository:acme/web:pull,push,*",
            &olivia,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["actor"], "user-mark");
    let actions = answer["actions"].as_array().unwrap();
    let verdict = |name: &str| {
        actions
            .iter()
            .find(|a| a["action"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(verdict("pull")["granted"], true);
    assert_eq!(verdict("push")["granted"], true);
    assert!(
        verdict("push")["reasons"][0]
            .as_str()
            .unwrap()
            .contains("maintainer of org-acme")
    );
    // Asking `*`, a maintainer gets pull, push and delete, which the token carries as `*`.
    assert_eq!(verdict("*")["granted"], true);
    assert_eq!(answer["facts"]["membership"], "maintainer");

    let (_, answer) = api
        .get(
            "/v1/admin/explain?account=gina&scope=repository:acme/web:push",
            &olivia,
        )
        .await;
    let reasons = answer["actions"][0]["reasons"].as_array().unwrap();
    assert_eq!(answer["actions"][0]["granted"], false);
    let text = serde_json::to_string(reasons).unwrap();
    assert!(text.contains("not a member of org-acme"), "{text}");
    assert!(text.contains("no explicit grant gives push"), "{text}");
    assert!(text.contains("markers"), "{text}");

    // Anonymous requests can be explained too.
    let (_, anonymous) = api
        .get("/v1/admin/explain?scope=repository:acme/web:pull", &olivia)
        .await;
    assert_eq!(anonymous["actor"], "user-guest");
    assert_eq!(anonymous["actions"][0]["granted"], false);
    assert!(
        serde_json::to_string(&anonymous)
            .unwrap()
            .contains("not public")
    );

    // Owners explain only their org's repositories; others not at all.
    let gina = api.login("gina").await;
    let (status, _) = api
        .get(
            "/v1/admin/explain?account=mark&scope=repository:acme/web:pull",
            &gina,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mark = api.login("mark").await;
    let (status, _) = api
        .get(
            "/v1/admin/explain?account=mark&scope=repository:acme/web:pull",
            &mark,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api
        .get(
            "/v1/admin/explain?account=mark&scope=registry:catalog:*",
            &olivia,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = api.login("admin").await;
    let (status, catalog) = api
        .get(
            "/v1/admin/explain?account=mark&scope=registry:catalog:*",
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(catalog["actions"][0]["granted"], false);
    let (status, answer) = api
        .get("/v1/admin/explain?account=mark&scope=Bad", &admin)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(description(&answer).starts_with("scope:"));
    let (status, _) = api
        .get(
            "/v1/admin/explain?account=nobody&scope=repository:acme/web:pull",
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn parallel_conflicting_updates_let_exactly_one_win_per_revision() {
    let api = Api::new().await;
    let olivia = api.login("olivia").await;
    let web = api.f.image_of("acme/web").await;
    for (round, revision) in (web.revision..web.revision + 3).enumerate() {
        let requests = (0..12).map(|i| {
            api.client
                .patch(format!("{}/v1/admin/images", api.base))
                .bearer_auth(&olivia)
                .header("If-Match", format!("\"{revision}\""))
                .json(&json!({"repository": "acme/web", "public": (i + round) % 2 == 0}))
                .send()
        });
        let responses = send_all(requests).await;
        let won: Vec<_> = responses.iter().filter(|s| **s == StatusCode::OK).collect();
        let stale = responses
            .iter()
            .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
            .count();
        assert_eq!(won.len(), 1, "round {round}: {responses:?}");
        assert_eq!(stale, 11, "round {round}: {responses:?}");
    }
    let updates = api
        .f
        .store
        .events(&cardgate_store::EventFilter {
            target: Some(web.id),
            ..Default::default()
        })
        .await
        .unwrap()
        .iter()
        .filter(|e| e.base_type() == "update")
        .count();
    assert_eq!(updates, 3, "one event per applied change");
    assert_eq!(
        api.f
            .store
            .card_by_id(web.id)
            .await
            .unwrap()
            .unwrap()
            .revision,
        web.revision + 3
    );
}

/// Sends all requests at once and returns their statuses.
async fn send_all<F>(requests: impl Iterator<Item = F>) -> Vec<StatusCode>
where
    F: Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    let mut statuses = Vec::new();
    for handle in handles {
        statuses.push(handle.await.unwrap().unwrap().status());
    }
    statuses
}

#[tokio::test]
async fn refresh_tokens_show_in_the_session_listing_and_are_revoked_there() {
    let api = Api::new().await;
    let url = format!(
        "{}/v1/registry?account=olivia&client_id=docker&offline_token=true&service=registry.test",
        api.base
    );
    let offline = basic_get(&api.client, &url, "olivia", "olivia-password").await;
    assert_eq!(offline.status(), StatusCode::OK);
    let body: Value = offline.json().await.unwrap();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    let refresh_grant = || {
        api.client
            .post(format!("{}/v1/registry", api.base))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                ("service", "registry.test"),
                ("client_id", "docker"),
                ("scope", "repository:acme/web:pull"),
            ])
            .send()
    };
    assert_eq!(refresh_grant().await.unwrap().status(), StatusCode::OK);

    let olivia = api.login("olivia").await;
    let (status, listed) = api.get("/v1/admin/users/olivia/sessions", &olivia).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = listed["sessions"].as_array().unwrap();
    let entry = sessions
        .iter()
        .find(|s| s["kind"] == "refresh")
        .expect("the refresh token is listed");
    assert_eq!(entry["client_id"], "docker");
    assert_eq!(entry["service"], "registry.test");
    assert!(
        !listed
            .to_string()
            .contains(refresh.split_once('.').unwrap().1)
    );
    let (status, _) = api
        .status(
            Method::DELETE,
            &format!("/v1/admin/sessions/{}", entry["id"].as_str().unwrap()),
            &olivia,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let refused = refresh_grant().await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

/// Every route of the admin API, as `METHOD /path`.
const ROUTES: [&str; 38] = [
    "POST /v1/admin/login",
    "POST /v1/admin/logout",
    "GET /v1/admin/whoami",
    "GET /v1/admin/orgs",
    "POST /v1/admin/orgs",
    "GET /v1/admin/orgs/{org}/members",
    "POST /v1/admin/orgs/{org}/members",
    "PUT /v1/admin/orgs/{org}/members/{user}",
    "DELETE /v1/admin/orgs/{org}/members/{user}",
    "GET /v1/admin/orgs/{org}/robots",
    "POST /v1/admin/orgs/{org}/robots",
    "GET /v1/admin/orgs/{org}/images",
    "GET /v1/admin/users",
    "POST /v1/admin/users",
    "GET /v1/admin/users/{user}",
    "DELETE /v1/admin/users/{user}",
    "PUT /v1/admin/users/{user}/roles",
    "PUT /v1/admin/users/{user}/password",
    "POST /v1/admin/users/{user}/tokens",
    "GET /v1/admin/users/{user}/sessions",
    "DELETE /v1/admin/sessions/{id}",
    "POST /v1/admin/images",
    "PATCH /v1/admin/images",
    "DELETE /v1/admin/images",
    "GET /v1/admin/grants",
    "POST /v1/admin/grants",
    "DELETE /v1/admin/grants",
    "GET /v1/admin/roles",
    "POST /v1/admin/roles",
    "PUT /v1/admin/roles/{role}",
    "DELETE /v1/admin/roles/{role}",
    "GET /v1/admin/events",
    "GET /v1/admin/explain",
    "GET /v1/admin/openapi.json",
    "GET /v1/admin/images/contents",
    "GET /v1/admin/registry/activity",
    "GET /v1/admin/orgs/{org}/storage",
    "PUT /v1/admin/orgs/{org}/quota",
];

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_listed_route_is_served() {
    let api = Api::new().await;
    let response = api
        .call(Method::GET, "/v1/admin/openapi.json", None, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let document: Value = response.json().await.unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    let mut listed: Vec<String> = document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| format!("{} {path}", method.to_uppercase()))
        })
        .collect();
    listed.sort();
    let mut expected: Vec<String> = ROUTES.iter().map(|r| r.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert!(
        document["components"]["schemas"]
            .as_object()
            .unwrap()
            .contains_key("ErrorBody")
    );
    let user_parameters: Vec<&str> = document["paths"]["/v1/admin/users"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(user_parameters, ["after", "limit"]);

    // Each listed route is served: without credentials it answers anything but the server's
    // "no such endpoint", which a route the document does not list does get.
    let served = |method: &str, path: &str| {
        let api = &api;
        let (method, path) = (method.parse::<Method>().unwrap(), path.to_owned());
        async move {
            let concrete = path
                .replace("{id}", "00000000-0000-0000-0000-000000000000")
                .replace(['{', '}'], "");
            let response = api.call(method, &concrete, None, None).await;
            let body: Value = response.json().await.unwrap_or(Value::Null);
            body["error_description"] != "no such endpoint"
        }
    };
    for route in ROUTES {
        let (method, path) = route.split_once(' ').unwrap();
        assert!(served(method, path).await, "{route} is not served");
    }
    assert!(!served("PUT", "/v1/admin/orgs").await);
    assert!(!served("GET", "/v1/admin/nothing").await);
}

#[tokio::test]
async fn listings_show_each_caller_only_what_its_role_lets_it_see() {
    let api = Api::new().await;
    let (olivia, mark, gina, admin) = (
        api.login("olivia").await,
        api.login("mark").await,
        api.login("gina").await,
        api.login("admin").await,
    );
    let slugs = |body: &Value, list: &str, field: &str| -> Vec<String> {
        body[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[field].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, body) = api
        .status(Method::GET, "/v1/admin/orgs", &olivia, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slugs(&body, "cards", "slug"), ["org-acme"]);
    let (_, body) = api
        .status(Method::GET, "/v1/admin/orgs", &admin, None)
        .await;
    assert_eq!(slugs(&body, "cards", "slug"), ["org-acme", "org-globex"]);

    let (status, body) = api
        .status(Method::GET, "/v1/admin/orgs/acme/members", &mark, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["members"],
        json!([{"user": "user-mark", "role": "maintainer"}, {"user": "user-olivia", "role": "owner"}])
    );
    let (status, _) = api
        .status(Method::GET, "/v1/admin/orgs/acme/members", &gina, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = api
        .status(Method::GET, "/v1/admin/orgs/acme/images", &mark, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slugs(&body, "cards", "name"), ["acme/web"]);
    let (status, _) = api
        .status(Method::GET, "/v1/admin/orgs/acme/images", &gina, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = api
        .post(
            "/v1/admin/orgs/acme/robots",
            &olivia,
            json!({"name": "ci-bot"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = api
        .status(Method::GET, "/v1/admin/orgs/acme/robots", &olivia, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(slugs(&body, "cards", "slug"), ["user-ci-bot"]);
    let (status, _) = api
        .status(Method::GET, "/v1/admin/orgs/acme/robots", &mark, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = api
        .post(
            "/v1/admin/grants",
            &olivia,
            json!({"holder": "user-ci-bot", "repository": "acme/web", "actions": ["push", "pull"]}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api
        .get("/v1/admin/grants?repository=acme/web", &olivia)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["grants"],
        json!([{"holder": "user-ci-bot", "actions": ["push", "pull"]}])
    );
    for caller in [&mark, &gina] {
        let (status, _) = api
            .get("/v1/admin/grants?repository=acme/web", caller)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }

    // All users: platform admins only, paged by slug.
    let (status, _) = api
        .status(Method::GET, "/v1/admin/users", &olivia, None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, all) = api
        .status(Method::GET, "/v1/admin/users", &admin, None)
        .await;
    let all = slugs(&all, "cards", "slug");
    assert!(all.contains(&"user-olivia".to_owned()) && all.contains(&"user-ci-bot".to_owned()));
    let (_, first) = api
        .status(Method::GET, "/v1/admin/users?limit=2", &admin, None)
        .await;
    let first = slugs(&first, "cards", "slug");
    assert_eq!(first, all[..2]);
    let (_, next) = api
        .get(
            &format!("/v1/admin/users?limit=2&after={}", first[1]),
            &admin,
        )
        .await;
    assert_eq!(slugs(&next, "cards", "slug"), all[2..4]);
    let (status, body) = api
        .status(Method::GET, "/v1/admin/users?limit=x", &admin, None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn membership_roles_change_inside_the_owners_org_and_count_at_the_next_token_request() {
    let api = Api::new().await;
    let (olivia, mark, gina) = (
        api.login("olivia").await,
        api.login("mark").await,
        api.login("gina").await,
    );
    let actions = |api: &Api| {
        let base = api.base.clone();
        async move {
            let response = token(
                &base,
                Some(("plain", "plain-password")),
                "repository:acme/web:pull,push",
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
            access(&response.json().await.unwrap())[0]["actions"].clone()
        }
    };
    let (status, body) = api
        .status(
            Method::PUT,
            "/v1/admin/orgs/acme/members/plain",
            &olivia,
            Some(json!({"role": "developer"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not a member yet: {body}");
    let (status, _) = api
        .post(
            "/v1/admin/orgs/acme/members",
            &olivia,
            json!({"user": "plain", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(actions(&api).await, json!(["pull"]));

    for (caller, expected) in [
        (&mark, StatusCode::FORBIDDEN),
        (&gina, StatusCode::FORBIDDEN),
    ] {
        let (status, _) = api
            .status(
                Method::PUT,
                "/v1/admin/orgs/acme/members/plain",
                caller,
                Some(json!({"role": "developer"})),
            )
            .await;
        assert_eq!(status, expected);
    }
    let (status, body) = api
        .status(
            Method::PUT,
            "/v1/admin/orgs/acme/members/plain",
            &olivia,
            Some(json!({"role": "emperor"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(description(&body).contains("role"), "{body}");
    assert_eq!(actions(&api).await, json!(["pull"]));

    let (status, _) = api
        .status(
            Method::PUT,
            "/v1/admin/orgs/acme/members/plain",
            &olivia,
            Some(json!({"role": "developer"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(actions(&api).await, json!(["pull", "push"]));

    // The change is audited with the previous role.
    let acme = api.f.card_by_slug("org-acme").await;
    let (_, events) = api
        .get(
            &format!("/v1/admin/events?target={}&limit=1", acme.id),
            &olivia,
        )
        .await;
    let latest = &events["events"][0]["data"]["payload"];
    assert_eq!(latest["data"], json!({"role": "developer"}), "{events}");
    assert_eq!(latest["previous"], json!({"role": "viewer"}));
}

#[tokio::test]
async fn platform_roles_and_role_cards_are_platform_admins_alone_and_in_force_at_once() {
    let api = Api::new().await;
    let (olivia, admin) = (api.login("olivia").await, api.login("admin").await);
    let pull = |api: &Api| {
        let base = api.base.clone();
        async move {
            let response = token(
                &base,
                Some(("mark", "mark-password")),
                "repository:acme/web:pull",
            )
            .await;
            assert_eq!(response.status(), StatusCode::OK);
            access(&response.json().await.unwrap())[0]["actions"].clone()
        }
    };
    assert_eq!(pull(&api).await, json!(["pull"]));
    let api_only =
        json!({"properties": {"data": {"properties": {"repository": {"pattern": "^acme/api"}}}}});

    // Owners are refused everything platform-wide.
    for (method, path, body) in [
        (Method::GET, "/v1/admin/roles", None),
        (
            Method::POST,
            "/v1/admin/roles",
            Some(json!({"name": "api-only", "read": api_only})),
        ),
        (
            Method::PUT,
            "/v1/admin/users/mark/roles",
            Some(json!({"roles": ["api-only"]})),
        ),
        (
            Method::PUT,
            "/v1/admin/roles/user-default",
            Some(json!({"read": false})),
        ),
        (Method::DELETE, "/v1/admin/roles/user-default", None),
        (Method::GET, "/v1/admin/users/gina", None),
    ] {
        let response = api
            .client
            .request(method.clone(), format!("{}{path}", api.base))
            .bearer_auth(&olivia)
            .header("If-Match", "\"1\"")
            .json(&body)
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }

    let (status, body) = api
        .post(
            "/v1/admin/roles",
            &admin,
            json!({"name": "broken", "read": {"type": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(description(&body).contains("data/read"), "{body}");
    let (status, role) = api
        .post(
            "/v1/admin/roles",
            &admin,
            json!({"name": "api-only", "read": api_only}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{role}");

    // Mark's roles: read the revision, then replace them; a stale revision changes nothing.
    let response = api
        .call(Method::GET, "/v1/admin/users/mark", Some(&admin), None)
        .await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let set_roles = |revision: String, roles: Value| {
        let api = &api;
        let admin = admin.clone();
        async move {
            api.client
                .put(format!("{}/v1/admin/users/mark/roles", api.base))
                .bearer_auth(admin)
                .header("If-Match", revision)
                .json(&json!({"roles": roles}))
                .sent()
                .await
        }
    };
    let changed = set_roles(etag.clone(), json!(["api-only"])).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(
        pull(&api).await,
        json!([]),
        "acme/web is no longer readable"
    );
    let stale = set_roles(etag, json!(["user-default"])).await;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    assert_eq!(pull(&api).await, json!([]));

    // Widening the role's read schema is in force at once; deactivating the role too.
    let revision = role["revision"].to_string();
    let response = api
        .client
        .put(format!("{}/v1/admin/roles/api-only", api.base))
        .bearer_auth(&admin)
        .header("If-Match", format!("\"{revision}\""))
        .json(&json!({"read": true}))
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(pull(&api).await, json!(["pull"]));
    let (status, listed) = api
        .status(Method::GET, "/v1/admin/roles", &admin, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listed["cards"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["slug"] == "role-api-only" && r["data"]["read"] == json!(true))
    );
    let response = api
        .client
        .delete(format!("{}/v1/admin/roles/api-only", api.base))
        .bearer_auth(&admin)
        .header("If-Match", etag)
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(pull(&api).await, json!([]));
}

#[tokio::test]
async fn the_audit_trail_of_one_tenant_is_invisible_to_another() {
    let api = Api::new().await;
    let olivia = api.login("olivia").await;
    let (status, _) = api
        .post(
            "/v1/admin/orgs/acme/members",
            &olivia,
            json!({"user": "plain", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let acme = api.f.card_by_slug("org-acme").await;
    let (_, mine) = api
        .get(&format!("/v1/admin/events?target={}", acme.id), &olivia)
        .await;
    assert!(!mine["events"].as_array().unwrap().is_empty(), "{mine}");

    // gina (globex), plain (now a viewer of acme) and everyone see only what their markers reach.
    let gina = api.login("gina").await;
    for path in [
        "/v1/admin/events?limit=1000".to_owned(),
        format!("/v1/admin/events?target={}", acme.id),
    ] {
        let (status, seen) = api.status(Method::GET, &path, &gina, None).await;
        assert_eq!(status, StatusCode::OK);
        for event in seen["events"].as_array().unwrap() {
            let markers: Vec<&str> = event["markers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap())
                .collect();
            assert!(
                !markers.is_empty()
                    && markers.iter().all(|m| m
                        .split('+')
                        .any(|p| ["user-gina", "org-globex"].contains(&p))),
                "gina sees {event}"
            );
            assert_ne!(event["target"], "org-acme", "gina sees {event}");
        }
    }
    // Users', roles' and other orgs' histories are not public either.
    let plain = api.login("plain").await;
    let (_, seen) = api
        .status(Method::GET, "/v1/admin/events?limit=1000", &plain, None)
        .await;
    let targets: Vec<&str> = seen["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["target"].as_str())
        .collect();
    assert!(
        targets.iter().all(|t| ![
            "user-olivia",
            "user-gina",
            "org-globex",
            "role-user-default"
        ]
        .contains(t)),
        "{targets:?}"
    );
    assert!(
        targets.contains(&"org-acme"),
        "plain's own org: {targets:?}"
    );
}

#[tokio::test]
async fn only_password_logins_are_admin_credentials_and_a_new_password_ends_them() {
    let api = Api::new().await;
    let olivia = api.login("olivia").await;
    // A token (for CI) of olivia's own is not an admin credential.
    let (status, issued) = api
        .status(Method::POST, "/v1/admin/users/olivia/tokens", &olivia, None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let ci_token = issued["token"].as_str().unwrap();
    let (status, _) = api
        .status(Method::GET, "/v1/admin/whoami", ci_token, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A robot that logs in manages nothing, itself included.
    let (status, _) = api
        .post(
            "/v1/admin/orgs/acme/robots",
            &olivia,
            json!({"name": "ci-bot"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .status(
            Method::PUT,
            "/v1/admin/users/ci-bot/password",
            &olivia,
            Some(json!({"password": "ci-bot-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let robot = api.login("ci-bot").await;
    for (method, path, body) in [
        (
            Method::PUT,
            "/v1/admin/users/ci-bot/password",
            Some(json!({"password": "taken-over-robot"})),
        ),
        (Method::POST, "/v1/admin/users/ci-bot/tokens", None),
        (Method::GET, "/v1/admin/users/ci-bot/sessions", None),
    ] {
        let (status, _) = api.status(method.clone(), path, &robot, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
    }

    // A new password ends every login session of the user, the one that set it too.
    let mark = api.login("mark").await;
    let other = api.login("mark").await;
    let (status, _) = api
        .status(
            Method::PUT,
            "/v1/admin/users/mark/password",
            &mark,
            Some(json!({"password": "mark-new-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for token in [&mark, &other] {
        let (status, _) = api
            .status(Method::GET, "/v1/admin/whoami", token, None)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn owners_cannot_touch_people_and_cannot_tell_unknown_users_from_others() {
    let api = Api::new().await;
    let (olivia, mark, gina) = (
        api.login("olivia").await,
        api.login("mark").await,
        api.login("gina").await,
    );
    let web = api.f.image_of("acme/web").await;
    let revision = format!("\"{}\"", web.revision);
    let refusals: Vec<(&str, Method, &str, Option<Value>)> = vec![
        (
            &olivia,
            Method::PUT,
            "/v1/admin/users/mark/password",
            Some(json!({"password": "taken-over"})),
        ),
        (&olivia, Method::POST, "/v1/admin/users/mark/tokens", None),
        (&olivia, Method::DELETE, "/v1/admin/users/mark", None),
        (&olivia, Method::GET, "/v1/admin/users/mark/sessions", None),
        (&olivia, Method::GET, "/v1/admin/users/mark", None),
        (&olivia, Method::GET, "/v1/admin/users/nobody", None),
        (
            &olivia,
            Method::GET,
            "/v1/admin/users/nobody/sessions",
            None,
        ),
        (
            &gina,
            Method::PATCH,
            "/v1/admin/images",
            Some(json!({"repository": "acme/web", "public": true})),
        ),
        (
            &gina,
            Method::DELETE,
            "/v1/admin/images?repository=acme/web",
            None,
        ),
        (
            &mark,
            Method::PATCH,
            "/v1/admin/images",
            Some(json!({"repository": "acme/web", "public": true})),
        ),
        (
            &mark,
            Method::DELETE,
            "/v1/admin/images?repository=acme/web",
            None,
        ),
        (
            &mark,
            Method::POST,
            "/v1/admin/images",
            Some(json!({"repository": "acme/new", "public": false})),
        ),
        (
            &gina,
            Method::DELETE,
            "/v1/admin/grants?holder=user-gina&repository=acme/web",
            None,
        ),
    ];
    for (token, method, path, body) in refusals {
        let mut request = api
            .client
            .request(method.clone(), format!("{}{path}", api.base))
            .bearer_auth(token)
            .header("If-Match", &revision);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.sent().await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
    // Nothing changed: mark still logs in with his password, acme/web is still private.
    api.login("mark").await;
    let web = api.f.image_of("acme/web").await;
    assert_eq!(web.data["public"], json!(false));
}

#[tokio::test]
async fn duplicates_are_409_malformed_queries_400_naming_the_parameter_and_events_filter() {
    let api = Api::new().await;
    let (olivia, admin) = (api.login("olivia").await, api.login("admin").await);
    let before = time::OffsetDateTime::now_utc();
    for (token, path, body) in [
        (&admin, "/v1/admin/orgs", json!({"name": "acme"})),
        (
            &olivia,
            "/v1/admin/orgs/acme/members",
            json!({"user": "mark", "role": "viewer"}),
        ),
        (
            &olivia,
            "/v1/admin/images",
            json!({"repository": "acme/web", "public": false}),
        ),
    ] {
        let (status, answer) = api.status(Method::POST, path, token, Some(body)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}: {answer}");
        assert_eq!(answer["error"], "conflict");
    }
    for (path, parameter) in [
        ("/v1/admin/users?limit=x", "limit"),
        ("/v1/admin/events?since=yesterday", "since"),
        ("/v1/admin/events?actor=me", "actor"),
        ("/v1/admin/events?colour=red", "colour"),
    ] {
        let (status, answer) = api.status(Method::GET, path, &admin, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(answer["error"], "invalid_request");
        assert!(description(&answer).contains(parameter), "{path}: {answer}");
    }
    let (status, answer) = api
        .status(
            Method::DELETE,
            "/v1/admin/sessions/not-a-uuid",
            &admin,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    // Events by actor and time: olivia's password change and token, with no secret in them.
    let (status, issued) = api
        .status(Method::POST, "/v1/admin/users/olivia/tokens", &olivia, None)
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .status(
            Method::PUT,
            "/v1/admin/users/olivia/password",
            &olivia,
            Some(json!({"password": "olivia-second-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let olivia_id = api.f.card_by_slug("user-olivia").await.id;
    let since = before
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let (status, events) = api
        .get(
            &format!("/v1/admin/events?actor={olivia_id}&since={since}&limit=1000"),
            &admin,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let events = events["events"].as_array().unwrap();
    assert!(events.iter().all(|e| e["actor"] == "user-olivia"));
    let text = serde_json::to_string(events).unwrap();
    let secret = issued["token"].as_str().unwrap().split_once('.').unwrap().1;
    assert!(!text.contains(secret) && !text.contains("olivia-second-password"));
    assert!(!text.contains("$argon2id$"), "no hash in events");
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"create@1.0.0") && kinds.contains(&"deactivate@1.0.0"),
        "{kinds:?}"
    );
    let (_, none) = api
        .get(
            &format!("/v1/admin/events?actor={olivia_id}&until={since}"),
            &admin,
        )
        .await;
    assert!(
        none["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["data"]["timestamp"].as_str().unwrap() < since.as_str()),
        "{none}"
    );
}

#[tokio::test]
async fn built_in_cards_cannot_be_broken_and_names_cannot_shadow_orgs() {
    let api = Api::new().await;
    api.f.image("acme/public", &["org-acme"], true).await;
    let admin = api.login("admin").await;
    let if_match = |method: Method, path: &str, revision: i64, body: Value| {
        api.client
            .request(method, format!("{}{path}", api.base))
            .bearer_auth(&admin)
            .header("If-Match", format!("\"{revision}\""))
            .json(&body)
            .send()
    };
    let revision = |slug: &'static str| {
        let store = api.f.store.clone();
        async move { store.card_by_slug(slug).await.unwrap().unwrap().revision }
    };
    for (method, path, body, why) in [
        (
            Method::DELETE,
            "/v1/admin/users/guest",
            None,
            "user-guest is built in",
        ),
        (
            Method::DELETE,
            "/v1/admin/users/admin",
            None,
            "user-admin is built in",
        ),
        (
            Method::PUT,
            "/v1/admin/users/admin/password",
            Some(json!({"password": "taken-over-admin"})),
            "cardgate set-password",
        ),
    ] {
        let (status, answer) = api.status(method.clone(), path, &admin, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
        assert_eq!(answer["error"], "forbidden");
        assert!(
            description(&answer).contains(why),
            "{method} {path}: {answer}"
        );
    }
    for (method, path, slug, body) in [
        (
            Method::PUT,
            "/v1/admin/users/guest/roles",
            "user-guest",
            json!({"roles": ["user-default"]}),
        ),
        (
            Method::PUT,
            "/v1/admin/roles/user-guest",
            "role-user-guest",
            json!({"read": true}),
        ),
        (
            Method::DELETE,
            "/v1/admin/roles/user-default",
            "role-user-default",
            Value::Null,
        ),
        (
            Method::DELETE,
            "/v1/admin/roles/user-guest",
            "role-user-guest",
            Value::Null,
        ),
    ] {
        let response = if_match(method.clone(), path, revision(slug).await, body)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
        let answer: Value = response.json().await.unwrap();
        assert!(
            description(&answer).contains(&format!("{slug} is built in")),
            "{method} {path}: {answer}"
        );
    }
    // Anonymous pulls of public images, and user-admin's login, still work.
    let response = token(&api.base, None, "repository:acme/public:pull").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        access(&response.json().await.unwrap())[0]["actions"],
        json!(["pull"])
    );
    api.login("admin").await;

    // A robot named like another org, or an org named like a user or a built-in user: 409.
    let olivia = api.login("olivia").await;
    let (status, answer) = api
        .post(
            "/v1/admin/orgs/acme/robots",
            &olivia,
            json!({"name": "globex"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"], "conflict");
    assert!(
        description(&answer).starts_with("name: `globex`"),
        "{answer}"
    );
    for name in ["plain", "guest", "admin"] {
        let (status, answer) = api
            .post("/v1/admin/orgs", &admin, json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {answer}");
        assert!(description(&answer).starts_with("name:"), "{answer}");
    }
}

#[tokio::test]
async fn a_start_reactivates_built_in_users_deactivated_before() {
    let (url, store, f) = seeded(Some("admin-password")).await;
    // As a release that let platform admins deactivate them left the store.
    for slug in ["user-guest", "user-admin", "role-user-guest"] {
        let card = store.card_by_slug(slug).await.unwrap().unwrap();
        store.deactivate(&f.admin, card.id, None).await.unwrap();
    }
    let base = spawn_on(&url, true).await;
    let response = token(&base, None, "repository:acme/base:pull").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        access(&response.json().await.unwrap())[0]["actions"],
        json!(["pull"])
    );
    let login = Client::new()
        .post(format!("{base}/v1/admin/login"))
        .json(&json!({"username": "admin", "password": "admin-password"}))
        .sent()
        .await;
    assert_eq!(login.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_account_gets_429_with_retry_after_beyond_its_hourly_tokens_and_others_are_unaffected() {
    let api = Api::new().await;
    let plain = api.login("plain").await;
    let path = "/v1/admin/users/plain/tokens";
    // The default allowance: 100 an hour.
    for i in 0..100 {
        let (status, body) = api
            .status(Method::POST, path, &plain, Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::CREATED, "token {i}: {body}");
    }
    let response = api
        .call(Method::POST, path, Some(&plain), Some(json!({})))
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("100 an hour"),
        "{body}"
    );
    // The refused request wrote nothing: the login session and the 100 tokens.
    let (_, sessions) = api
        .status(Method::GET, "/v1/admin/users/plain/sessions", &plain, None)
        .await;
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(101),
        "{sessions}"
    );
    let olivia = api.login("olivia").await;
    let (status, _) = api
        .status(
            Method::POST,
            "/v1/admin/users/olivia/tokens",
            &olivia,
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
}
