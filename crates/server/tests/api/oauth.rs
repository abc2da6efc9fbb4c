//! The OAuth2 form (POST to the realm) and refresh tokens, on the card plugins against a real
//! PostgreSQL, and on the static plugins.

use argon2::{Argon2, PasswordHasher};
use cardgate_store::testing::Fixture;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cards::seeded;
use crate::cards::{access, spawn_on};
use crate::description;
use crate::{Sent, basic_get};
use crate::{raw_request, spawn_app};

const FORM: &str = "application/x-www-form-urlencoded";

/// Form fields, in order.
type Form<'a> = &'a [(&'a str, &'a str)];
const SERVICE: &str = "registry.test";

/// The card store app: acme with alice (developer, password `wonderland`), `acme/web` private
/// and `acme/base` public.
struct App {
    base: String,
    f: Fixture,
}

async fn cards_app() -> App {
    let (url, _store, f) = seeded(None).await;
    let base = spawn_on(&url, true).await;
    App { base, f }
}

fn encode(form: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

async fn post_as(base: &str, path: &str, content_type: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("Content-Type", content_type)
        .body(body)
        .sent()
        .await
}

async fn post(base: &str, form: &[(&str, &str)]) -> reqwest::Response {
    post_as(base, "/v1/registry", FORM, encode(form)).await
}

/// A successful answer: its shape checked, the body returned.
async fn ok(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["cache-control"].to_str().unwrap(),
        "no-store"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["token"].is_string(), "{body}");
    assert_eq!(body["access_token"], body["token"]);
    assert!(body["expires_in"].as_u64().unwrap() >= 60, "{body}");
    assert!(body["issued_at"].is_string(), "{body}");
    assert!(body["scope"].is_string(), "{body}");
    body
}

/// An OAuth2 error answer with `status` and `error`.
async fn oauth_error(response: reqwest::Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    assert!(body.get("token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    body
}

fn password_grant<'a>(scopes: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", "password"),
        ("service", SERVICE),
        ("client_id", "containerd-client"),
        ("username", "alice"),
        ("password", "wonderland"),
    ];
    form.extend(scopes.iter().map(|s| ("scope", *s)));
    form
}

fn refresh_grant<'a>(
    token: &'a str,
    client_id: &'a str,
    service: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("service", service),
        ("client_id", client_id),
        ("scope", "repository:acme/web:pull repository:acme/web:push"),
    ]
}

/// docker login: `GET ?account=alice&client_id=docker&offline_token=true&service=..` with
/// Basic credentials; returns the refresh token.
async fn docker_login(base: &str, user: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .get(format!(
            "{base}/v1/registry?account={user}&client_id=docker&offline_token=true&service={SERVICE}"
        ))
        .basic_auth(user, Some(password))
        .sent().await;
    let body = ok(response).await;
    assert_eq!(access(&body), json!([]));
    assert_eq!(body["scope"], "");
    body["refresh_token"].as_str().unwrap().to_owned()
}

/// Sends `chunks` with `Transfer-Encoding: chunked` and no `Content-Length` over a raw
/// connection; returns the status and the body.
async fn post_chunked(base: &str, content_type: &str, chunks: Vec<Vec<u8>>) -> (u16, String) {
    let address = base.trim_start_matches("http://");
    let mut request = format!(
        "POST /v1/registry HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in &chunks {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    raw_request(base, request).await
}

#[tokio::test]
async fn the_password_grant_takes_space_separated_and_repeated_scopes_and_answers_the_granted_ones()
{
    let app = cards_app().await;
    let body = ok(post(
        &app.base,
        &password_grant(&[
            "repository:acme/web:pull,push,delete repository:acme/base:pull",
            "repository:globex/site:pull",
            "repository:acme/web:pull",
        ]),
    )
    .await)
    .await;
    assert_eq!(
        access(&body),
        json!([
            {"type": "repository", "name": "acme/web", "actions": ["pull", "push"]},
            {"type": "repository", "name": "acme/base", "actions": ["pull"]},
            {"type": "repository", "name": "globex/site", "actions": []},
        ])
    );
    assert_eq!(
        body["scope"],
        "repository:acme/web:pull,push repository:acme/base:pull"
    );
    // No offline access asked: no refresh token.
    assert!(body.get("refresh_token").is_none(), "{body}");

    // The Jellyfish alias takes the form too, and so does a charset parameter.
    let response = post_as(
        &app.base,
        "/api/v2/registry",
        "application/x-www-form-urlencoded; charset=utf-8",
        encode(&password_grant(&["repository:acme/web:push"])),
    )
    .await;
    let body = ok(response).await;
    assert_eq!(body["scope"], "repository:acme/web:push");
}

#[tokio::test]
async fn a_chunked_form_without_a_length_is_read_and_one_over_64_kib_is_413() {
    let app = cards_app().await;
    let form = encode(&password_grant(&["repository:acme/web:pull"])).into_bytes();
    let (first, rest) = form.split_at(form.len() / 2);
    let (status, body) = post_chunked(
        &app.base,
        "application/x-www-form-urlencoded;charset=UTF-8",
        vec![first.to_vec(), rest.to_vec()],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["scope"], "repository:acme/web:pull");

    let mut big = form.clone();
    big.extend_from_slice(b"&padding=");
    big.resize(70 * 1024, b'x');
    let (status, _) = post_chunked(
        &app.base,
        FORM,
        big.chunks(8192).map(<[u8]>::to_vec).collect(),
    )
    .await;
    assert_eq!(status, 413);
    let response = post_as(
        &app.base,
        "/v1/registry",
        FORM,
        String::from_utf8(big).unwrap(),
    )
    .await;
    oauth_error(response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
}

#[tokio::test]
async fn missing_fields_and_other_grant_types_are_oauth2_errors() {
    let app = cards_app().await;
    let cases: [(Form, &str, &str); 8] = [
        (
            &[("username", "alice"), ("password", "wonderland")],
            "invalid_request",
            "`grant_type`",
        ),
        (
            &[("grant_type", "password"), ("password", "wonderland")],
            "invalid_request",
            "`username`",
        ),
        (
            &[("grant_type", "password"), ("username", "alice")],
            "invalid_request",
            "`password`",
        ),
        (
            &[("grant_type", "refresh_token"), ("client_id", "docker")],
            "invalid_request",
            "`refresh_token`",
        ),
        (
            &[("grant_type", "refresh_token"), ("refresh_token", "x.y")],
            "invalid_request",
            "`client_id`",
        ),
        (
            &[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", "wonderland"),
                ("scope", "repository:Acme:pull"),
            ],
            "invalid_request",
            "repository:Acme:pull",
        ),
        (
            &[("grant_type", "password"), ("grant_type", "refresh_token")],
            "invalid_request",
            "`grant_type`",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "docker"),
            ],
            "unsupported_grant_type",
            "client_credentials",
        ),
    ];
    for (form, error, named) in cases {
        let body = oauth_error(post(&app.base, form).await, StatusCode::BAD_REQUEST, error).await;
        let description = description(&body);
        assert!(description.contains(named), "{form:?}: {description}");
    }
    // The form must be a form.
    let response = post_as(
        &app.base,
        "/v1/registry",
        "application/json",
        json!({"grant_type": "password"}).to_string(),
    )
    .await;
    oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    let response = post_as(
        &app.base,
        "/v1/registry",
        "application/x-www-form-urlencoded; charset=latin-7",
        encode(&password_grant(&[])),
    )
    .await;
    oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    // Another service is a malformed request on the password grant.
    let mut form = password_grant(&[]);
    form[1] = ("service", "other.registry");
    oauth_error(
        post(&app.base, &form).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn a_wrong_password_or_an_unknown_user_is_invalid_grant_on_post_and_401_on_get() {
    let app = cards_app().await;
    for (user, password) in [
        ("alice", "not-wonderland"),
        ("mallory", "wonderland"),
        ("alice", ""),
    ] {
        let mut form = password_grant(&["repository:acme/base:pull"]);
        form[3] = ("username", user);
        form[4] = ("password", password);
        form.push(("access_type", "offline"));
        let response = post(&app.base, &form).await;
        assert!(response.headers().get("www-authenticate").is_none());
        oauth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    let url = format!("{}/v1/registry?service={SERVICE}", app.base);
    let response = basic_get(&reqwest::Client::new(), &url, "alice", "not-wonderland").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn dockers_login_then_refresh_flow_gets_tokens_with_the_right_access_and_is_not_rotated() {
    let app = cards_app().await;
    let refresh_token = docker_login(&app.base, "alice", "wonderland").await;
    let (id, secret) = refresh_token.split_once('.').unwrap();
    assert_eq!(secret.len(), 64);

    // The daemon keeps using the first refresh token.
    for _ in 0..3 {
        let body =
            ok(post(&app.base, &refresh_grant(&refresh_token, "docker", SERVICE)).await).await;
        assert_eq!(
            access(&body),
            json!([{"type": "repository", "name": "acme/web", "actions": ["pull", "push"]}])
        );
        assert_eq!(body["scope"], "repository:acme/web:pull,push");
        assert!(body.get("refresh_token").is_none(), "{body}");
    }

    // The password grant with offline access (docker's own POST) gives one too, that works.
    let mut form = password_grant(&["repository:acme/base:pull"]);
    form.push(("access_type", "offline"));
    let body = ok(post(&app.base, &form).await).await;
    let second = body["refresh_token"].as_str().unwrap();
    assert_ne!(second, refresh_token);
    let mut grant = refresh_grant(second, "containerd-client", SERVICE);
    grant.pop();
    grant.push(("scope", "repository:acme/base:pull"));
    let body = ok(post(&app.base, &grant).await).await;
    assert_eq!(body["scope"], "repository:acme/base:pull");

    // The refresh session is a session card of kind refresh, bound to the password card.
    let card = app.f.card_by_id(id).await;
    assert_eq!(card.base_type(), "session");
    assert_eq!(card.data["kind"], "refresh");
    assert_eq!(card.data["client_id"], "docker");
    assert_eq!(card.data["service"], SERVICE);
    assert!(card.data["password"].is_string(), "{}", card.data);
}

#[tokio::test]
async fn a_refresh_token_for_another_client_or_service_or_forged_is_invalid_grant() {
    let app = cards_app().await;
    let refresh_token = docker_login(&app.base, "alice", "wonderland").await;
    let (id, _) = refresh_token.split_once('.').unwrap();
    let forged = format!("{id}.{}", "0".repeat(64));
    for form in [
        refresh_grant(&refresh_token, "podman", SERVICE),
        refresh_grant(&refresh_token, "docker", "other.registry"),
        refresh_grant(&forged, "docker", SERVICE),
        refresh_grant("wonderland", "docker", SERVICE),
    ] {
        let body = oauth_error(
            post(&app.base, &form).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        assert!(!body.to_string().contains(&refresh_token), "{body}");
    }
    // Still good for its own client and service.
    ok(post(&app.base, &refresh_grant(&refresh_token, "docker", SERVICE)).await).await;
}

#[tokio::test]
async fn revoking_the_refresh_session_deactivating_the_user_or_a_new_password_ends_refresh_tokens()
{
    let app = cards_app().await;
    let f = &app.f;
    let alice = f.card_by_slug("user-alice").await;
    let works = |token: String| {
        let base = app.base.clone();
        async move {
            post(&base, &refresh_grant(&token, "docker", SERVICE))
                .await
                .status()
        }
    };

    // Revoked: the refresh session deactivated.
    let revoked = docker_login(&app.base, "alice", "wonderland").await;
    let kept = docker_login(&app.base, "alice", "wonderland").await;
    assert_eq!(works(revoked.clone()).await, StatusCode::OK);
    let (id, _) = revoked.split_once('.').unwrap();
    f.store
        .deactivate(&f.admin, id.parse().unwrap(), None)
        .await
        .unwrap();
    oauth_error(
        post(&app.base, &refresh_grant(&revoked, "docker", SERVICE)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(works(kept.clone()).await, StatusCode::OK);

    // A new password ends every refresh token issued before it.
    let hash = Argon2::default()
        .hash_password(b"looking-glass")
        .unwrap()
        .to_string();
    f.store.set_password(&f.admin, &alice, &hash).await.unwrap();
    oauth_error(
        post(&app.base, &refresh_grant(&kept, "docker", SERVICE)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // A deactivated user's refresh tokens end with it.
    let last = docker_login(&app.base, "alice", "looking-glass").await;
    assert_eq!(works(last.clone()).await, StatusCode::OK);
    f.deactivate(&alice).await;
    oauth_error(
        post(&app.base, &refresh_grant(&last, "docker", SERVICE)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_refresh_token_is_not_a_basic_password_and_a_session_is_not_a_refresh_token() {
    let app = cards_app().await;
    let refresh_token = docker_login(&app.base, "alice", "wonderland").await;
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/registry?service={SERVICE}&scope=repository:acme/web:pull",
            app.base
        ))
        .basic_auth("alice", Some(&refresh_token))
        .sent()
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let mut form = password_grant(&[]);
    form[4] = ("password", &refresh_token);
    oauth_error(
        post(&app.base, &form).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;

    // An ordinary session works as a Basic password, never as a refresh token, and a session's
    // holder gets no refresh token (it would outlive and widen the session).
    let alice = app.f.card_by_slug("user-alice").await;
    let _now = time::OffsetDateTime::now_utc();
    let session = app.f.session(&alice, time::Duration::hours(1), None).await;
    let session = secrecy::ExposeSecret::expose_secret(&session.token).to_owned();
    oauth_error(
        post(&app.base, &refresh_grant(&session, "docker", SERVICE)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/registry?client_id=docker&offline_token=true&service={SERVICE}",
            app.base
        ))
        .basic_auth("alice", Some(&session))
        .sent()
        .await;
    let body = ok(response).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn anonymous_requests_never_get_a_refresh_token() {
    let app = cards_app().await;
    let response = reqwest::Client::new()
        .get(format!(
            "{}/v1/registry?client_id=docker&offline_token=true&service={SERVICE}&scope=repository:acme/base:pull",
            app.base
        ))
        .sent().await;
    let body = ok(response).await;
    assert_eq!(body["scope"], "repository:acme/base:pull");
    assert!(body.get("refresh_token").is_none(), "{body}");
    // Offline access without a client_id gives none either.
    let url = format!(
        "{}/v1/registry?offline_token=true&service={SERVICE}",
        app.base
    );
    let response = basic_get(&reqwest::Client::new(), &url, "alice", "wonderland").await;
    let body = ok(response).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn the_static_plugins_answer_offline_requests_without_a_refresh_token() {
    let app = spawn_app().await;
    let response = app
        .get(
            "/v1/registry?account=alice&client_id=docker&offline_token=true&service=registry.test",
            crate::ALICE,
        )
        .await;
    let body = ok(response).await;
    assert!(body.get("refresh_token").is_none(), "{body}");

    let form = [
        ("grant_type", "password"),
        ("service", SERVICE),
        ("client_id", "docker"),
        ("access_type", "offline"),
        ("username", "alice"),
        ("password", "alice-test-password"),
        ("scope", "repository:acme/web:pull,push"),
    ];
    let body = ok(post(&app.base, &form).await).await;
    assert_eq!(body["scope"], "repository:acme/web:pull,push");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let claims = app.verify(body["token"].as_str().unwrap());
    assert_eq!(claims.sub, "alice");

    let mut wrong = form;
    wrong[5] = ("password", "bob-test-password");
    oauth_error(
        post(&app.base, &wrong).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    oauth_error(
        post(&app.base, &refresh_grant("x.y", "docker", SERVICE)).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_parameter_given_twice_is_invalid_request_even_with_equal_values_but_scope() {
    let app = spawn_app().await;
    let form = [
        ("grant_type", "password"),
        ("service", SERVICE),
        ("client_id", "docker"),
        ("access_type", "offline"),
        ("username", "alice"),
        ("password", "alice-test-password"),
        ("scope", "repository:acme/web:pull"),
    ];
    // RFC 6749, section 3.1: no parameter may be sent twice, whatever its value.
    for (name, value) in &form[..6] {
        let mut twice = form.to_vec();
        twice.push((name, value));
        let body = oauth_error(
            post(&app.base, &twice).await,
            StatusCode::BAD_REQUEST,
            "invalid_request",
        )
        .await;
        let description = description(&body);
        assert!(description.contains(&format!("`{name}`")), "{description}");
    }
    // Only `scope` repeats.
    let mut scopes = form.to_vec();
    scopes.push(("scope", "repository:acme/web:pull"));
    let body = ok(post(&app.base, &scopes).await).await;
    assert_eq!(body["scope"], "repository:acme/web:pull");
    // The GET query string is read the same way.
    let response = app
        .get(
            "/v1/registry?service=registry.test&service=registry.test",
            crate::ALICE,
        )
        .await;
    oauth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}
