//! Logging in and out, and which sessions are admin credentials, without HTTP.

use cardgate_admin::{AdminError, DEFAULT_TOKEN_SECONDS, LoginSession, MAX_TOKEN_SECONDS};
use cardgate_authz::Credentials;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::World;

fn password(username: &str, password: &str) -> Credentials {
    Credentials::Password {
        username: username.to_owned(),
        password: SecretString::from(password),
    }
}

fn unauthenticated<T: std::fmt::Debug>(result: Result<T, AdminError>) {
    match result {
        Err(AdminError::Unauthenticated) => {}
        other => panic!("expected Unauthenticated, got {other:?}"),
    }
}

/// `user-plain` given the password `correct horse` by the admin, then logged in with it.
async fn plain_logs_in(w: &World) -> LoginSession {
    let admin = w.caller("admin").await;
    w.admin
        .change_password(&admin, "user-plain", SecretString::from("correct horse"))
        .await
        .unwrap();
    w.admin
        .log_in(&password("plain", "correct horse"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_password_opens_a_login_session_that_speaks_for_its_user_until_logged_out() {
    let w = World::new().await;
    let login = plain_logs_in(&w).await;
    assert_eq!(login.user.slug, "user-plain");
    let lasts = login.expires - OffsetDateTime::now_utc();
    assert!(lasts > time::Duration::minutes(59) && lasts <= time::Duration::hours(1));
    let id = login.session.card.id;
    let token = login.session.token.expose_secret();
    let caller = w.admin.session_caller(id, token).await.unwrap();
    assert_eq!(caller.card.slug, "user-plain");
    assert_eq!(caller.session(), Some(id));
    // The session id with another secret is nobody.
    unauthenticated(w.admin.session_caller(id, &format!("{id}.wrong")).await);
    w.admin.log_out(&caller).await.unwrap();
    unauthenticated(w.admin.session_caller(id, token).await);
    // A caller that speaks through no session has none to end.
    unauthenticated(w.admin.log_out(&w.caller("plain").await).await);
}

#[tokio::test]
async fn wrong_passwords_are_counted_bad_logins_and_a_session_token_is_no_password() {
    let w = World::new().await;
    let login = plain_logs_in(&w).await;
    for credentials in [password("plain", "wrong horse"), password("nobody", "x")] {
        match w.admin.log_in(&credentials).await {
            Err(AdminError::BadLogin { wrong: true }) => {}
            other => panic!("expected a counted bad login, got {other:?}"),
        }
    }
    let token = login.session.token.expose_secret();
    match w.admin.log_in(&password("plain", token)).await {
        Err(AdminError::BadLogin { wrong: false }) => {}
        other => panic!("expected an uncounted bad login, got {other:?}"),
    }
}

#[tokio::test]
async fn ci_tokens_and_sessions_of_deactivated_users_are_never_admin_credentials() {
    let w = World::new().await;
    let login = plain_logs_in(&w).await;
    let plain = w.caller("plain").await;
    let ci = w.admin.open_token(&plain, "user-plain", None, None);
    let ci = ci.await.unwrap();
    let ci_token = ci.token.expose_secret();
    unauthenticated(w.admin.session_caller(ci.card.id, ci_token).await);
    let token = login.session.token.expose_secret();
    let id = login.session.card.id;
    assert!(w.admin.session_caller(id, token).await.is_ok());
    let admin = w.caller("admin").await;
    assert!(w.admin.deactivate_user(&admin, "user-plain").await.is_ok());
    unauthenticated(w.admin.session_caller(id, token).await);
}

#[tokio::test]
async fn short_passwords_and_token_lifetimes_out_of_range_are_refused_naming_the_field() {
    let w = World::new().await;
    let admin = w.caller("admin").await;
    match w
        .admin
        .change_password(&admin, "user-plain", SecretString::from("seven77"))
        .await
    {
        Err(AdminError::Invalid(message)) => assert!(message.starts_with("password:")),
        other => panic!("expected Invalid, got {other:?}"),
    }
    for seconds in [59, MAX_TOKEN_SECONDS + 1] {
        match w
            .admin
            .open_token(&admin, "user-plain", Some(seconds), None)
            .await
        {
            Err(AdminError::Invalid(message)) => {
                assert!(message.starts_with("expires_in_seconds:"));
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    let token = w
        .admin
        .open_token(&admin, "user-plain", None, None)
        .await
        .unwrap();
    let expiration = OffsetDateTime::parse(
        token.card.data["expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let lasts = expiration - OffsetDateTime::now_utc();
    let year = time::Duration::seconds(DEFAULT_TOKEN_SECONDS as i64);
    assert!(lasts > year - time::Duration::minutes(1) && lasts <= year);
}

#[tokio::test]
async fn an_account_creates_at_most_its_hourly_tokens_and_logins_do_not_count() {
    let mut w = World::new().await;
    w.admin = w.admin.with_tokens_per_hour(3);
    // A login session is no token: it leaves the allowance whole.
    plain_logs_in(&w).await;
    let plain = w.caller("plain").await;
    for _ in 0..3 {
        w.admin
            .open_token(&plain, "user-plain", None, None)
            .await
            .unwrap();
    }
    match w.admin.open_token(&plain, "user-plain", None, None).await {
        Err(AdminError::TooManyTokens {
            limit: 3,
            retry_after_seconds,
        }) => assert!(retry_after_seconds > 0),
        other => panic!("expected TooManyTokens, got {other:?}"),
    }
    // The refused request wrote nothing: the login and three tokens.
    assert_eq!(
        w.admin.sessions(&plain, "user-plain").await.unwrap().len(),
        4
    );
    // Revoking a token does not give the allowance back.
    let first = w.admin.sessions(&plain, "user-plain").await.unwrap()[0].id;
    w.admin.revoke_session(&plain, first).await.unwrap();
    assert!(
        w.admin
            .open_token(&plain, "user-plain", None, None)
            .await
            .is_err()
    );
    // Another account has an allowance of its own.
    let olivia = w.caller("olivia").await;
    w.admin
        .open_token(&olivia, "user-olivia", None, None)
        .await
        .unwrap();
}
