//! Token lifetimes by action class and identity kind, several published keys, key rotation
//! and the `x5c` header.

use cardgate_server::settings::PublishedKeySettings;
use cardgate_server::{Application, Settings};
use cardgate_store::testing::fresh_database_url;
use cardgate_store::{CardType, NewCard, PoolSettings, Store};
use cardgate_token::{Claims, GeneratedKey, JwkSet, SigningAlgorithm};
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::{Value, json};
use x509_cert::Certificate;
use x509_cert::der::{Decode, DecodePem, Encode};

use crate::Sent;
use crate::cards::CARD_ALICE;
use crate::{ALICE, BOB, ISSUER, User, test_settings};
use crate::{argon2id, cards_settings};

async fn start(settings: &Settings) -> String {
    let app = Application::build(settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

/// Asks `base` for a token; returns the answer's body and the token.
async fn ask(base: &str, query: &str, user: User) -> (Value, String) {
    let mut request = reqwest::Client::new().get(format!("{base}/v1/registry?{query}"));
    if let Some((u, p)) = user {
        request = request.basic_auth(u, Some(p));
    }
    let response = request.sent().await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_owned();
    (body, token)
}

async fn jwks(base: &str) -> JwkSet {
    reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies `token` as registry v3 does: the key is the JWKS entry named by the header's
/// `kid`. Checks signature, issuer, audience and expiry.
fn verify_with_jwks(jwks: &JwkSet, token: &str) -> Claims {
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("no JWKS entry for kid {kid}"));
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&["registry.test"]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

/// The lifetime of a token as its answer and its claims say; they must agree.
async fn lifetime(base: &str, query: &str, user: User) -> u64 {
    let (body, token) = ask(base, query, user).await;
    let claims = verify_with_jwks(&jwks(base).await, &token);
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert_eq!(expires_in, claims.exp - claims.iat, "{query}");
    assert!(expires_in >= 60);
    expires_in
}

fn kids(jwks: &JwkSet) -> Vec<String> {
    jwks.keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

fn new_key() -> GeneratedKey {
    cardgate_token::generate(
        SigningAlgorithm::ES256,
        ISSUER,
        time::OffsetDateTime::now_utc(),
        1,
    )
    .unwrap()
}

/// Settings signing with `active` and publishing `previous` (certificate and kid each).
fn settings_signing_with(active: &GeneratedKey, previous: &[&GeneratedKey]) -> Settings {
    let (mut settings, _) = test_settings(&[
        ("CARDGATE__TOKEN__KEY", &active.key_pem),
        ("CARDGATE__TOKEN__CERTIFICATE", &active.certificate_pem),
        ("CARDGATE__TOKEN__KID", active.kid.as_str()),
    ]);
    settings.token.previous = previous
        .iter()
        .map(|key| PublishedKeySettings {
            certificate: Some(key.certificate_pem.clone()),
            kid: Some(key.kid.as_str().to_owned()),
            key: None,
        })
        .collect();
    settings
}

async fn start_up_error(settings: &Settings) -> String {
    Application::build(settings).await.unwrap_err().to_string()
}

/// A server whose pull-only tokens live `pull` seconds and writing ones `push` seconds.
async fn start_with_lifetimes(pull: &str, push: &str) -> String {
    let (settings, _) = test_settings(&[
        ("CARDGATE__TOKEN__PULL_LIFETIME_SECONDS", pull),
        ("CARDGATE__TOKEN__PUSH_LIFETIME_SECONDS", push),
    ]);
    start(&settings).await
}

#[tokio::test]
async fn pull_only_tokens_and_tokens_that_write_live_their_own_lifetimes() {
    let base = start_with_lifetimes("120", "3600").await;
    for (query, user, expected) in [
        ("scope=repository:acme/web:pull", ALICE, 120),
        ("service=registry.test", ALICE, 120),
        ("scope=repository:public/base:pull", None, 120),
        ("scope=repository:acme/web:pull,push", ALICE, 3600),
        ("scope=repository:acme/web:delete", ALICE, 3600),
        ("scope=registry:catalog:*", ALICE, 3600),
        // Asking for push is not enough: the token must grant it.
        ("scope=repository:acme/web:pull,push", BOB, 120),
        // One writing scope among reading ones makes the whole token long.
        (
            "scope=repository:acme/base:pull&scope=repository:alice/tools:push",
            ALICE,
            3600,
        ),
    ] {
        assert_eq!(lifetime(&base, query, user).await, expected, "{query}");
    }
}

#[tokio::test]
async fn without_per_class_settings_every_token_lives_token_lifetime_seconds() {
    // Then with one class set: the other keeps the default.
    let one_class = [
        ("CARDGATE__TOKEN__LIFETIME_SECONDS", "600"),
        ("CARDGATE__TOKEN__PUSH_LIFETIME_SECONDS", "7200"),
    ];
    for (env, pull, push) in [(&one_class[..1], 600, 600), (&one_class[..], 600, 7200)] {
        let (settings, _) = test_settings(env);
        let base = start(&settings).await;
        let pulled = lifetime(&base, "scope=repository:acme/web:pull", ALICE).await;
        assert_eq!(pulled, pull, "{env:?}");
        let pushed = lifetime(&base, "scope=repository:acme/web:push", ALICE).await;
        assert_eq!(pushed, push, "{env:?}");
    }
}

#[tokio::test]
async fn robots_of_the_card_store_get_the_robot_lifetime_whatever_their_token_grants() {
    let url = fresh_database_url().await;
    let settings = cards_settings(
        &url,
        &[
            ("CARDGATE__TOKEN__PULL_LIFETIME_SECONDS", "120"),
            ("CARDGATE__TOKEN__PUSH_LIFETIME_SECONDS", "3600"),
            ("CARDGATE__TOKEN__ROBOT_LIFETIME_SECONDS", "900"),
        ],
    );
    let base = start(&settings).await;
    let store = Store::connect_lazy(&url, &PoolSettings::default()).unwrap();
    let f = crate::cards::seed(&store).await;
    let robot = store
        .create(
            &f.admin,
            NewCard::new(
                CardType::User,
                "user-ci-bot".to_owned(),
                json!({"roles": ["user-default"], "robot": true}),
            ),
        )
        .await
        .unwrap();
    let hash = argon2id("ci-bot-password");
    store.set_password(&f.admin, &robot, &hash).await.unwrap();
    let web = store
        .image_by_repository("acme/web")
        .await
        .unwrap()
        .unwrap();
    f.grant(&robot, &web, &["pull", "push"]).await;

    let robot = Some(("ci-bot", "ci-bot-password"));
    let alice = CARD_ALICE;
    for (query, user, expected) in [
        ("scope=repository:acme/web:pull", robot, 900),
        ("scope=repository:acme/web:pull,push", robot, 900),
        ("scope=repository:acme/web:pull", alice, 120),
        ("scope=repository:acme/web:pull,push", alice, 3600),
    ] {
        let (body, token) = ask(&base, &format!("service=registry.test&{query}"), user).await;
        let claims = verify_with_jwks(&jwks(&base).await, &token);
        assert_eq!(body["expires_in"], claims.exp - claims.iat);
        assert_eq!(body["expires_in"], expected, "{query} as {user:?}");
    }
    // The robot's token really grants push: the lifetime is not bought with access.
    let (body, _) = ask(
        &base,
        "service=registry.test&scope=repository:acme/web:pull,push",
        robot,
    )
    .await;
    assert_eq!(body["scope"], "repository:acme/web:pull,push");
}

#[tokio::test]
async fn lifetimes_under_a_minute_are_refused_at_start_up_naming_the_setting() {
    for setting in [
        "LIFETIME_SECONDS",
        "PULL_LIFETIME_SECONDS",
        "PUSH_LIFETIME_SECONDS",
        "ROBOT_LIFETIME_SECONDS",
    ] {
        let variable = format!("CARDGATE__TOKEN__{setting}");
        let (settings, _) = test_settings(&[(variable.as_str(), "59")]);
        let err = start_up_error(&settings).await;
        let name = format!("token.{}", setting.to_lowercase());
        assert!(err.contains(&format!("`{name}`")), "{err}");
        assert!(err.contains("59"), "{err}");
    }
    // Exactly a minute is fine.
    let (settings, _) = test_settings(&[
        ("CARDGATE__TOKEN__LIFETIME_SECONDS", "60"),
        ("CARDGATE__TOKEN__ROBOT_LIFETIME_SECONDS", "60"),
    ]);
    let base = start(&settings).await;
    assert_eq!(
        lifetime(&base, "scope=repository:acme/web:pull", ALICE).await,
        60
    );
}

#[tokio::test]
async fn a_previous_key_whose_kid_does_not_match_is_refused_at_start_up_naming_it() {
    let active = new_key();
    let old = new_key();
    let other = new_key();
    let mut settings = settings_signing_with(&active, &[&other, &old]);
    settings.token.previous[1].kid = Some(other.kid.as_str().to_owned());
    let err = start_up_error(&settings).await;
    assert!(err.contains("`token.previous[1].kid`"), "{err}");
    assert!(err.contains(old.kid.as_str()), "{err}");

    // A certificate that is not the entry's key.
    let mut settings = settings_signing_with(&active, &[&old]);
    settings.token.previous[0].key = Some(other.key_pem.clone().into());
    settings.token.previous[0].kid = None;
    let err = start_up_error(&settings).await;
    assert!(err.contains("`token.previous[0].certificate`"), "{err}");

    // An entry with nothing, a garbage certificate, the signing key itself, a duplicate.
    let mut settings = settings_signing_with(&active, &[&old]);
    settings.token.previous[0] = PublishedKeySettings {
        certificate: None,
        kid: None,
        key: None,
    };
    let err = start_up_error(&settings).await;
    assert!(err.contains("`token.previous[0]`"), "{err}");
    let mut settings = settings_signing_with(&active, &[&old]);
    settings.token.previous[0].certificate = Some("bm90IGEgY2VydGlmaWNhdGU=".into());
    let err = start_up_error(&settings).await;
    assert!(err.contains("`token.previous[0].certificate`"), "{err}");
    let err = start_up_error(&settings_signing_with(&active, &[&active])).await;
    assert!(
        err.contains("`token.previous[0]` is the signing key"),
        "{err}"
    );
    let err = start_up_error(&settings_signing_with(&active, &[&old, &old])).await;
    assert!(err.contains("`token.previous[1]`"), "{err}");

    // A private key alone publishes its public half; with its certificate and kid, both are
    // checked.
    let mut settings = settings_signing_with(&active, &[&old]);
    settings.token.previous[0].key = Some(old.key_pem.clone().into());
    let base = start(&settings).await;
    assert_eq!(
        kids(&jwks(&base).await),
        [active.kid.as_str(), old.kid.as_str()]
    );
}

#[tokio::test]
async fn the_jwks_lists_the_signing_key_first_then_the_previous_ones_and_tokens_name_the_signer() {
    let active = new_key();
    let old = new_key();
    let older = new_key();
    let base = start(&settings_signing_with(&active, &[&old, &older])).await;
    let published = jwks(&base).await;
    assert_eq!(
        kids(&published),
        [active.kid.as_str(), old.kid.as_str(), older.kid.as_str()]
    );
    let body = serde_json::to_value(&published).unwrap();
    for key in body["keys"].as_array().unwrap() {
        assert!(
            key.get("d").is_none(),
            "a JWKS must not carry a private key"
        );
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "ES256");
    }
    let (_, token) = ask(&base, "scope=repository:acme/web:pull", ALICE).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(active.kid.as_str()));
    assert!(header.x5c.is_none());
    verify_with_jwks(&published, &token);
}

#[tokio::test]
async fn a_token_signed_before_rotation_still_verifies_against_the_jwks_published_after_it() {
    let old = new_key();
    let next = new_key();

    // Before: the old key signs; the next one is announced.
    let before = start(&settings_signing_with(&old, &[&next])).await;
    assert_eq!(
        kids(&jwks(&before).await),
        [old.kid.as_str(), next.kid.as_str()]
    );
    let (_, old_token) = ask(&before, "scope=repository:acme/web:pull,push", ALICE).await;

    // After: the next key signs; the old one is still published.
    let after = start(&settings_signing_with(&next, &[&old])).await;
    let published = jwks(&after).await;
    assert_eq!(kids(&published), [next.kid.as_str(), old.kid.as_str()]);
    let claims = verify_with_jwks(&published, &old_token);
    assert_eq!(claims.sub, "alice");
    let (_, new_token) = ask(&after, "scope=repository:acme/web:pull", ALICE).await;
    assert_eq!(
        jsonwebtoken::decode_header(&new_token)
            .unwrap()
            .kid
            .as_deref(),
        Some(next.kid.as_str())
    );
    verify_with_jwks(&published, &new_token);

    // Once the old key is dropped, its tokens no longer verify.
    let dropped = start(&settings_signing_with(&next, &[])).await;
    assert!(jwks(&dropped).await.find(old.kid.as_str()).is_none());
}

#[tokio::test]
async fn x5c_carries_the_certificate_and_its_public_key_verifies_the_token() {
    let (settings, generated) = test_settings(&[("CARDGATE__TOKEN__X5C", "true")]);
    let base = start(&settings).await;
    let (_, token) = ask(&base, "scope=repository:acme/web:pull", ALICE).await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(generated.kid.as_str()));
    let chain = header.x5c_der().unwrap().unwrap();
    let certificate = Certificate::from_pem(generated.certificate_pem.as_bytes()).unwrap();
    assert_eq!(chain, [certificate.to_der().unwrap()]);

    let leaf = Certificate::from_der(&chain[0]).unwrap();
    let public = leaf
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .raw_bytes()
        .to_vec();
    let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_issuer(&[ISSUER]);
    validation.set_audience(&["registry.test"]);
    let claims =
        jsonwebtoken::decode::<Claims>(&token, &DecodingKey::from_ec_der(&public), &validation)
            .unwrap()
            .claims;
    assert_eq!(claims.sub, "alice");
}

#[tokio::test]
async fn x5c_without_a_certificate_is_refused_at_start_up_naming_the_setting() {
    let (settings, _) = test_settings(&[
        ("CARDGATE__TOKEN__X5C", "true"),
        ("CARDGATE__TOKEN__CERTIFICATE", ""),
    ]);
    assert_eq!(settings.token.certificate, None);
    let err = start_up_error(&settings).await;
    assert!(err.contains("`token.x5c`"), "{err}");
    assert!(err.contains("token.certificate"), "{err}");
}

#[tokio::test]
async fn readiness_still_signs_with_per_class_lifetimes() {
    let base = start_with_lifetimes("60", "86400").await;
    let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
