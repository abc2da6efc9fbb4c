//! HTTP tests: the application on port 0 with `config/test.toml`, tokens decoded and verified
//! against the certificate.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin;
mod caches;
mod cards;
mod faults;
mod fleet;
mod keys;
mod limits;
mod listings;
mod logs;
mod oauth;
mod odd_bytes;
mod ranges;
mod registry_events;
mod schemas;
mod slow;
mod throttle;
mod timing;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use cardgate_server::{Application, Settings, SettingsSource};
use cardgate_token::{Claims, SigningAlgorithm};
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;
use x509_cert::Certificate;
use x509_cert::der::DecodePem;

pub const ISSUER: &str = "cardgate-test";
const SERVICE: &str = "registry.test";

struct TestApp {
    base: String,
    client: reqwest::Client,
    decoding_key: DecodingKey,
    kid: String,
}

fn config_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config"))
}

pub fn test_settings(extra_env: &[(&str, &str)]) -> (Settings, cardgate_token::GeneratedKey) {
    try_test_settings(extra_env).unwrap()
}

/// The test settings on the card plugins and the database at `url`, with `extra_env` on top.
pub fn cards_settings(url: &str, extra_env: &[(&str, &str)]) -> Settings {
    let mut env = vec![
        ("CARDGATE__AUTHN__CHAIN", "cards"),
        ("CARDGATE__AUTHZ__CHAIN", "cards"),
        ("CARDGATE__DATABASE__URL", url),
    ];
    env.extend_from_slice(extra_env);
    test_settings(&env).0
}

/// The argon2id hash of `password`, as the card store keeps it.
pub fn argon2id(password: &str) -> String {
    use argon2::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .unwrap()
        .to_string()
}

/// The test settings with `extra_env`, or why they do not load.
pub fn try_test_settings(
    extra_env: &[(&str, &str)],
) -> Result<(Settings, cardgate_token::GeneratedKey), cardgate_server::SettingsError> {
    let generated = cardgate_token::generate(
        SigningAlgorithm::ES256,
        ISSUER,
        time::OffsetDateTime::now_utc(),
        1,
    )
    .unwrap();
    let mut env: HashMap<String, String> = HashMap::from([
        ("CARDGATE__TOKEN__KEY".into(), generated.key_pem.clone()),
        (
            "CARDGATE__TOKEN__CERTIFICATE".into(),
            generated.certificate_pem.clone(),
        ),
    ]);
    env.extend(extra_env.iter().map(|(k, v)| ((*k).into(), (*v).into())));
    let settings = Settings::load(&SettingsSource {
        config_dir: config_dir(),
        profile: Some("test".into()),
        env,
    })?;
    Ok((settings, generated))
}

async fn spawn_app() -> TestApp {
    let (settings, generated) = test_settings(&[]);
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let cert = Certificate::from_pem(generated.certificate_pem.as_bytes()).unwrap();
    let public = cert
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    TestApp {
        base,
        client: reqwest::Client::new(),
        decoding_key: DecodingKey::from_ec_der(&public),
        kid: generated.kid.as_str().to_owned(),
    }
}

impl TestApp {
    async fn get(&self, path_and_query: &str, user: Option<(&str, &str)>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path_and_query}", self.base));
        if let Some((u, p)) = user {
            request = request.basic_auth(u, Some(p));
        }
        request.sent().await
    }

    async fn get_with_header(
        &self,
        path_and_query: &str,
        authorization: &str,
    ) -> reqwest::Response {
        self.client
            .get(format!("{}{path_and_query}", self.base))
            .header("Authorization", authorization)
            .sent()
            .await
    }

    /// Verifies signature, issuer, audience and expiry, and returns the claims.
    fn verify(&self, token: &str) -> Claims {
        let header = jsonwebtoken::decode_header(token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(self.kid.as_str()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[SERVICE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding_key, &validation)
            .unwrap()
            .claims
    }

    /// A successful token request: checks the body's shape and returns the verified claims.
    async fn token(&self, query: &str, user: Option<(&str, &str)>) -> Claims {
        let response = self.get(&format!("/v1/registry?{query}"), user).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["cache-control"].to_str().unwrap(),
            "no-store"
        );
        let body: Value = response.json().await.unwrap();
        let token = body["token"].as_str().unwrap();
        assert_eq!(body["access_token"], token);
        let claims = self.verify(token);
        assert_eq!(body["expires_in"], claims.exp - claims.iat);
        assert!(body["expires_in"].as_u64().unwrap() >= 60);
        let issued_at = body["issued_at"].as_str().unwrap();
        assert!(
            issued_at.ends_with('Z') && issued_at.contains('T'),
            "{issued_at}"
        );
        claims
    }
}

fn access(claims: &Claims) -> Vec<(String, String, Vec<String>)> {
    claims
        .access
        .iter()
        .map(|a| {
            (
                a.resource_type.clone(),
                a.name.clone(),
                a.actions.names().iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect()
}

fn entry(t: &str, n: &str, actions: &[&str]) -> (String, String, Vec<String>) {
    (
        t.into(),
        n.into(),
        actions.iter().map(|s| (*s).to_owned()).collect(),
    )
}

type User = Option<(&'static str, &'static str)>;

const ALICE: User = Some(("alice", "alice-test-password"));
const BOB: User = Some(("bob", "bob-test-password"));

/// Sends a request and waits for its answer; a transport error fails the test.
trait Sent {
    async fn sent(self) -> reqwest::Response;
}

impl Sent for reqwest::RequestBuilder {
    async fn sent(self) -> reqwest::Response {
        self.send().await.unwrap()
    }
}

/// Waits until `base`'s `/metrics` has the line `line` (a feed connected, say).
async fn metric_reaches(base: &str, line: &str) {
    let started = std::time::Instant::now();
    loop {
        let body = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body.lines().any(|l| l == line) {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{base}: no `{line}` in its metrics"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Splits a raw HTTP answer into its status and body.
pub fn parse_answer(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sends `request` as it is on a fresh connection and returns the status and the body.
pub async fn raw_request(base: &str, request: Vec<u8>) -> (u16, String) {
    let address = base.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        // The server may answer, and close, before reading everything.
        let _ = stream.write_all(&request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        parse_answer(&answer)
    })
    .await
    .unwrap()
}

/// `GET url` with Basic credentials.
async fn basic_get(
    client: &reqwest::Client,
    url: &str,
    user: &str,
    password: &str,
) -> reqwest::Response {
    client
        .get(url)
        .basic_auth(user, Some(password))
        .sent()
        .await
}

async fn error_body(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

/// The `error_description` of a JSON error body.
fn description(body: &Value) -> &str {
    body["error_description"].as_str().unwrap()
}

/// Checks a `400` JSON error whose description says `says`, and returns its body.
async fn bad_request_saying(response: reqwest::Response, says: &str) -> Value {
    let body = error_body(response, StatusCode::BAD_REQUEST).await;
    assert!(description(&body).contains(says), "{body}");
    body
}

#[tokio::test]
async fn a_user_gets_exactly_the_actions_the_acl_allows() {
    let app = spawn_app().await;
    let claims = app
        .token(
            "service=registry.test&scope=repository:acme/web:pull,push&scope=repository:other/web:pull",
            BOB,
        )
        .await;
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.aud, SERVICE);
    assert_eq!(claims.sub, "bob");
    assert_eq!(claims.nbf, claims.iat);
    assert_eq!(claims.jti.len(), 32);
    assert_eq!(
        access(&claims),
        [
            entry("repository", "acme/web", &["pull"]),
            entry("repository", "other/web", &[]),
        ]
    );
}

#[tokio::test]
async fn token_ids_are_unique() {
    let app = spawn_app().await;
    let a = app.token("service=registry.test", ALICE).await;
    let b = app.token("service=registry.test", ALICE).await;
    assert_ne!(a.jti, b.jti);
}

#[tokio::test]
async fn placeholders_stars_deletes_and_the_catalog_are_decided_by_the_acl() {
    let app = spawn_app().await;
    let claims = app
        .token(
            "scope=repository:alice/tools/x:*&scope=repository:acme/web:*&scope=registry:catalog:*&scope=repository:bob/x:pull",
            ALICE,
        )
        .await;
    assert_eq!(
        access(&claims),
        [
            entry("repository", "alice/tools/x", &["*"]),
            entry("repository", "acme/web", &["*"]),
            entry("registry", "catalog", &["*"]),
            entry("repository", "bob/x", &[]),
        ]
    );
    let claims = app
        .token("scope=repository:acme/web:*&scope=registry:catalog:*", BOB)
        .await;
    assert_eq!(
        access(&claims),
        [
            entry("repository", "acme/web", &["pull"]),
            entry("registry", "catalog", &[]),
        ]
    );
}

#[tokio::test]
async fn repeated_and_space_separated_scopes_are_merged() {
    let app = spawn_app().await;
    let claims = app
        .token(
            "scope=repository:acme/web:pull%20repository:acme/api:push&scope=repository:acme/web:push&scope=repository:acme/web:pull",
            ALICE,
        )
        .await;
    assert_eq!(
        access(&claims),
        [
            entry("repository", "acme/web", &["pull", "push"]),
            entry("repository", "acme/api", &["push"]),
        ]
    );
}

#[tokio::test]
async fn a_resource_class_comes_back_with_the_scope() {
    let app = spawn_app().await;
    let claims = app
        .token("scope=repository(plugin):acme/web:pull", ALICE)
        .await;
    assert_eq!(claims.access[0].class.as_deref(), Some("plugin"));
    assert_eq!(claims.access[0].resource_type, "repository");
}

#[tokio::test]
async fn anonymous_requests_get_public_pulls_and_an_empty_subject() {
    let app = spawn_app().await;
    let claims = app
        .token(
            "service=registry.test&scope=repository:public/base:pull,push&scope=repository:acme/web:pull",
            None,
        )
        .await;
    assert_eq!(claims.sub, "");
    assert_eq!(
        access(&claims),
        [
            entry("repository", "public/base", &["pull"]),
            entry("repository", "acme/web", &[]),
        ]
    );
}

#[tokio::test]
async fn docker_login_without_scopes_gets_a_token_with_no_access() {
    let app = spawn_app().await;
    let claims = app
        .token(
            "account=alice&client_id=docker&offline_token=true&service=registry.test",
            ALICE,
        )
        .await;
    assert_eq!(claims.sub, "alice");
    assert!(claims.access.is_empty());
}

#[tokio::test]
async fn the_jellyfish_path_is_an_alias() {
    let app = spawn_app().await;
    let response = app
        .get("/api/v2/registry?service=registry.test", ALICE)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_401_never_a_token() {
    let app = spawn_app().await;
    for user in [
        Some(("alice", "bob-test-password")),
        Some(("mallory", "alice-test-password")),
        Some(("alice", "")),
        Some(("", "")),
    ] {
        let response = app
            .get(
                "/v1/registry?service=registry.test&scope=repository:public/base:pull",
                user,
            )
            .await;
        let www = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(www.starts_with("Basic realm="), "{www}");
        let body = error_body(response, StatusCode::UNAUTHORIZED).await;
        assert!(body.get("token").is_none());
    }
}

#[tokio::test]
async fn malformed_requests_get_400_naming_the_problem() {
    let app = spawn_app().await;
    let cases: [(&str, User, &str); 6] = [
        (
            "service=other.registry",
            ALICE,
            "unknown service `other.registry`",
        ),
        ("service=registry.test&account=bob", ALICE, "`account`"),
        (
            "scope=repository:Acme/Web:pull",
            ALICE,
            "repository:Acme/Web:pull",
        ),
        (
            "scope=repository:acme/web:pull%20nonsense",
            ALICE,
            "`nonsense`",
        ),
        (
            "scope=repository:acme//web:pull",
            None,
            "repository:acme//web:pull",
        ),
        ("service=registry.test&service=other", None, "`service`"),
    ];
    for (query, user, expected) in cases {
        let response = app.get(&format!("/v1/registry?{query}"), user).await;
        let body = error_body(response, StatusCode::BAD_REQUEST).await;
        assert!(description(&body).contains(expected), "{query}: {body}");
        assert_eq!(body["error"], "invalid_request");
    }
}

#[tokio::test]
async fn malformed_authorization_headers_get_400() {
    let app = spawn_app().await;
    for header in [
        "Bearer abc.def.ghi",
        "Basic !!!not-base64!!!",
        "Basic YWxpY2U=", // "alice" without a colon
        "Basic",
        "Digest username=alice",
    ] {
        let response = app
            .get_with_header("/v1/registry?service=registry.test", header)
            .await;
        error_body(response, StatusCode::BAD_REQUEST).await;
    }
}

#[tokio::test]
async fn the_basic_scheme_name_is_case_insensitive() {
    let app = spawn_app().await;
    let encoded = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        "alice:alice-test-password",
    );
    for scheme in ["basic", "BASIC", "bAsIc"] {
        let response = app
            .get_with_header(
                "/v1/registry?service=registry.test",
                &format!("{scheme} {encoded}"),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "{scheme}");
    }
}

#[tokio::test]
async fn too_many_scopes_are_refused() {
    let app = spawn_app().await;
    let query: Vec<String> = (0..65)
        .map(|i| format!("scope=repository:r{i}:pull"))
        .collect();
    let response = app
        .get(&format!("/v1/registry?{}", query.join("&")), ALICE)
        .await;
    bad_request_saying(response, "too many scopes").await;
}

#[tokio::test]
async fn the_jwks_publishes_the_signing_key_under_its_libtrust_kid() {
    let app = spawn_app().await;
    let response = app.get("/.well-known/jwks.json", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], app.kid.as_str());
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["alg"], "ES256");
    assert!(keys[0].get("d").is_none());
    // The JWK verifies the tokens the server issues.
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(keys[0].clone()).unwrap();
    let key = DecodingKey::from_jwk(&jwk).unwrap();
    let body: Value = app
        .get("/v1/registry?service=registry.test", ALICE)
        .await
        .json()
        .await
        .unwrap();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[SERVICE]);
    jsonwebtoken::decode::<Claims>(body["token"].as_str().unwrap(), &key, &validation).unwrap();
}

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.status(), StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), StatusCode::OK);
    let unknown = app.get("/nope", None).await;
    error_body(unknown, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn start_up_fails_naming_the_setting_when_the_kid_is_wrong() {
    let (settings, _) = test_settings(&[(
        "CARDGATE__TOKEN__KID",
        "AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA",
    )]);
    let err = Application::build(&settings).await.unwrap_err().to_string();
    assert!(err.contains("token.kid"), "{err}");
    assert!(err.contains("REGISTRY_TOKEN_AUTH_CERT_KID"), "{err}");
}

#[tokio::test]
async fn start_up_fails_naming_the_setting_when_the_certificate_is_not_the_keys() {
    let other = cardgate_token::generate(
        SigningAlgorithm::ES256,
        "other",
        time::OffsetDateTime::now_utc(),
        1,
    )
    .unwrap();
    let (settings, _) = test_settings(&[("CARDGATE__TOKEN__CERTIFICATE", &other.certificate_pem)]);
    let err = Application::build(&settings).await.unwrap_err().to_string();
    assert!(err.contains("token.certificate"), "{err}");
    assert!(err.contains("REGISTRY_TOKEN_AUTH_CERT"), "{err}");
}

#[tokio::test]
async fn start_up_fails_naming_the_setting_when_the_realm_has_no_path() {
    let (settings, _) = test_settings(&[("REGISTRY_TOKEN_AUTH_REALM", "http://auth.example.com")]);
    let err = Application::build(&settings).await.unwrap_err().to_string();
    assert!(err.contains("server.realm"), "{err}");
}

#[tokio::test]
async fn the_realm_path_of_the_seed_variable_is_the_route() {
    let (settings, _) = test_settings(&[(
        "REGISTRY_TOKEN_AUTH_REALM",
        "http://api.ly.fish.local/auth/token",
    )]);
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let url = format!("{base}/auth/token?service=registry.test");
    let ok = basic_get(&client, &url, "alice", "alice-test-password").await;
    assert_eq!(ok.status(), StatusCode::OK);
    let old = client
        .get(format!("{base}/v1/registry?service=registry.test"))
        .sent()
        .await;
    assert_eq!(old.status(), StatusCode::NOT_FOUND);
}
