//! The token endpoint on the card plugins, against a real PostgreSQL.

use std::time::{Duration, Instant};

use cardgate_server::Application;
use cardgate_store::embedded::EmbeddedPostgres;
use cardgate_store::testing::{Fixture, fresh_database_url};
use cardgate_store::{PoolSettings, Store};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::Sent;
use crate::argon2id;
use crate::cards_settings;

pub(crate) async fn spawn_on(database_url: &str, migrate: bool) -> String {
    let migrate = migrate.to_string();
    let settings = cards_settings(database_url, &[("CARDGATE__DATABASE__MIGRATE", &migrate)]);
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

/// acme with alice (developer, password `wonderland`), a private and a public image.
pub(crate) async fn seed(store: &Store) -> Fixture {
    let f = Fixture::on(store.clone()).await;
    let acme = f.org("acme").await;
    let alice = f.user("alice", &["user-default"]).await;
    store
        .set_password(&f.admin, &alice, &argon2id("wonderland"))
        .await
        .unwrap();
    f.member(&acme, &alice, "developer").await;
    f.image("acme/web", &["org-acme"], false).await;
    f.image("acme/base", &["org-acme"], true).await;
    f
}

/// A fresh database seeded by [`seed`], a store on it and the fixture; with `admin_password`,
/// the admin's password.
pub(crate) async fn seeded(admin_password: Option<&str>) -> (String, Store, Fixture) {
    let url = fresh_database_url().await;
    let store = Store::connect_lazy(&url, &PoolSettings::default()).unwrap();
    let f = seed(&store).await;
    if let Some(password) = admin_password {
        store
            .set_password(&f.admin, &f.admin, &argon2id(password))
            .await
            .unwrap();
    }
    (url, store, f)
}

pub(crate) fn access(body: &Value) -> Value {
    let payload = body["token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    claims["access"].clone()
}

/// alice of the seeded card store, with her password.
pub(crate) const CARD_ALICE: Option<(&str, &str)> = Some(("alice", "wonderland"));

pub(crate) async fn token(
    base: &str,
    user: Option<(&str, &str)>,
    scope: &str,
) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!(
        "{base}/v1/registry?service=registry.test&scope={scope}"
    ));
    if let Some((u, p)) = user {
        request = request.basic_auth(u, Some(p));
    }
    request.sent().await
}

#[tokio::test]
async fn passwords_sessions_and_the_guest_are_decided_by_the_card_store() {
    let (url, store, f) = seeded(None).await;
    let base = spawn_on(&url, true).await;

    let response = token(&base, CARD_ALICE, "repository:acme/web:pull,push,delete").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        access(&response.json().await.unwrap()),
        json!([{"type": "repository", "name": "acme/web", "actions": ["pull", "push"]}])
    );

    let alice = store.card_by_slug("user-alice").await.unwrap().unwrap();
    let session = f.session(&alice, time::Duration::hours(1), None).await;
    let secret = session.token.expose_secret().to_owned();
    let response = token(
        &base,
        Some(("user-alice", &secret)),
        "repository:acme/web:push",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);

    // Expired and deactivated sessions, and wrong passwords, are 401, never the guest.
    let expired = f.session(&alice, -time::Duration::seconds(5), None).await;
    for password in [expired.token.expose_secret(), "not-wonderland"] {
        let response = token(
            &base,
            Some(("alice", password)),
            "repository:acme/base:pull",
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    store
        .deactivate(&f.admin, session.card.id, None)
        .await
        .unwrap();
    let response = token(&base, Some(("alice", &secret)), "repository:acme/base:pull").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = token(
        &base,
        None,
        "repository:acme/base:pull,push&scope=repository:acme/web:pull",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        access(&body),
        json!([
            {"type": "repository", "name": "acme/base", "actions": ["pull"]},
            {"type": "repository", "name": "acme/web", "actions": []},
        ])
    );
}

/// A private cluster of this test's own (it may stop it), seeded, and the application on it.
pub(crate) async fn seeded_cluster() -> (EmbeddedPostgres, String) {
    let dir = unique_dir();
    let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir, true))
        .await
        .unwrap()
        .unwrap();
    cluster.ensure_database("cardgate").unwrap();
    let url = cluster.url("cardgate");
    let store = Store::connect_lazy(&url, &PoolSettings::default()).unwrap();
    store.migrate().await.unwrap();
    store.bootstrap().await.unwrap();
    seed(&store).await;
    store.pool().close().await;
    let base = spawn_on(&url, false).await;
    (cluster, base)
}

#[tokio::test]
async fn a_database_outage_gives_503_quickly_and_the_server_recovers_by_itself() {
    let (cluster, base) = seeded_cluster().await;
    let client = reqwest::Client::new();
    let ok = token(&base, CARD_ALICE, "repository:acme/web:pull").await;
    assert_eq!(ok.status(), StatusCode::OK);

    let cluster = off_runtime(cluster, EmbeddedPostgres::stop).await;
    let started = Instant::now();
    let down = token(&base, CARD_ALICE, "repository:acme/web:pull").await;
    let waited = started.elapsed();
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = down.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body.get("token").is_none());
    assert!(
        !body.to_string().contains("127.0.0.1"),
        "error bodies do not echo internals: {body}"
    );
    assert!(waited < Duration::from_secs(2), "503 took {waited:?}");
    let anonymous = token(&base, None, "repository:acme/base:pull").await;
    assert_eq!(anonymous.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Both OAuth2 grants too: a backend outage is never an invalid grant.
    for form in [
        "grant_type=password&username=alice&password=wonderland&service=registry.test",
        "grant_type=refresh_token&client_id=docker&service=registry.test&refresh_token=\
         5f0c6a48-4d8e-4f9a-9a55-2f4b0e1f8c11.0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        let response = client
            .post(format!("{base}/v1/registry"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form)
            .sent()
            .await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{form}");
    }
    assert_eq!(
        client.get(format!("{base}/readyz")).sent().await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        client.get(format!("{base}/healthz")).sent().await.status(),
        StatusCode::OK
    );

    off_runtime(cluster, EmbeddedPostgres::resume).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = token(&base, CARD_ALICE, "repository:acme/web:pull").await;
        if response.status() == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no recovery: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        client.get(format!("{base}/readyz")).sent().await.status(),
        StatusCode::OK
    );
}

/// Stops (`stop`) or resumes `cluster` off the runtime: the server's listeners share the test's
/// runtime, and hear the outage as they would in production.
pub(crate) async fn off_runtime(
    cluster: EmbeddedPostgres,
    change: fn(&EmbeddedPostgres) -> Result<(), cardgate_store::embedded::EmbeddedError>,
) -> EmbeddedPostgres {
    tokio::task::spawn_blocking(move || {
        change(&cluster).unwrap();
        cluster
    })
    .await
    .unwrap()
}

/// A folder of its own for this test's cluster (removed with it when the process exits).
pub(crate) fn unique_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "cardgate-outage-{}-{}",
        std::process::id(),
        time::OffsetDateTime::now_utc().unix_timestamp_nanos()
    ))
}
