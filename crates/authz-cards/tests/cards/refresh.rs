//! OAuth2 refresh tokens kept as session cards.

use std::time::Duration;

use cardgate_authz::{Authentication, Authenticator, Identity, RefreshTokens};
use cardgate_authz_cards::{CardAuthenticator, CardRefreshTokens};
use cardgate_store::testing::Fixture;
use cardgate_store::{Card, EventFilter};
use secrecy::{ExposeSecret, SecretString};

use crate::{Decide, password};

const SERVICE: &str = "registry.example.com";
const DAY: Duration = Duration::from_secs(24 * 3600);

async fn alice() -> (Fixture, Card, CardRefreshTokens) {
    let f = Fixture::new().await;
    let alice = f.user("alice", &["user-default"]).await;
    f.password(&alice, "correct horse").await;
    let refresh = CardRefreshTokens::new(f.store.clone());
    (f, alice, refresh)
}

async fn issue(refresh: &CardRefreshTokens, identity: &Identity) -> Option<SecretString> {
    refresh
        .issue(identity, "docker", SERVICE, DAY)
        .await
        .unwrap()
}

async fn redeems(
    refresh: &CardRefreshTokens,
    token: &SecretString,
    client: &str,
    service: &str,
) -> bool {
    refresh
        .redeem(token, client, service)
        .await
        .unwrap()
        .is_some()
}

#[tokio::test]
async fn a_user_keeps_a_bounded_number_of_refresh_tokens_per_client_and_the_oldest_go() {
    let (f, alice, refresh) = alice().await;
    let refresh = refresh.with_max_per_client(3);
    let identity = Identity::new("alice", "cards");
    let mut tokens = Vec::new();
    for _ in 0..5 {
        tokens.push(issue(&refresh, &identity).await.unwrap());
    }
    let other_client = refresh
        .issue(&identity, "podman", SERVICE, DAY)
        .await
        .unwrap()
        .unwrap();
    // The two oldest were revoked; the three newest, and the other client's, still work.
    let working: Vec<bool> = redeem_each(&refresh, &tokens).await;
    assert_eq!(working, [false, false, true, true, true]);
    assert!(redeems(&refresh, &other_client, "podman", SERVICE).await);
    let active = f
        .store
        .sessions_of(alice.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.data["kind"] == "refresh")
        .count();
    assert_eq!(active, 4);
}

#[tokio::test]
async fn concurrent_logins_of_one_user_all_succeed_and_the_next_one_trims_to_the_bound() {
    let (f, alice, refresh) = alice().await;
    let refresh = refresh.with_max_per_client(3);
    let identity = Identity::new("alice", "cards");
    let logins: Vec<_> = (0..12)
        .map(|_| {
            let (refresh, identity) = (refresh.clone(), identity.clone());
            tokio::spawn(async move { issue(&refresh, &identity).await })
        })
        .collect();
    for login in logins {
        assert!(login.await.unwrap().is_some());
    }
    let refresh_sessions = || async {
        f.store
            .sessions_of(alice.id)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.data["kind"] == "refresh")
            .count()
    };
    // Logins that found another one trimming may have left more than the bound; the next
    // login trims to it.
    let last = issue(&refresh, &identity).await.unwrap();
    assert_eq!(refresh_sessions().await, 3);
    assert!(redeems(&refresh, &last, "docker", SERVICE).await);
}

async fn redeem_each(refresh: &CardRefreshTokens, tokens: &[SecretString]) -> Vec<bool> {
    let mut working = Vec::new();
    for token in tokens {
        working.push(redeems(refresh, token, "docker", SERVICE).await);
    }
    working
}

#[tokio::test]
async fn a_refresh_token_stands_for_its_user_with_its_client_and_service_and_is_not_rotated() {
    let (f, alice, refresh) = alice().await;
    let token = issue(&refresh, &Identity::new("alice", "cards"))
        .await
        .unwrap();
    let (id, secret) = token.expose_secret().split_once('.').unwrap();
    assert_eq!(secret.len(), 64);

    for _ in 0..3 {
        let identity = refresh
            .redeem(&token, "docker", SERVICE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(identity.account, "alice");
        assert_eq!(identity.authenticator, "cards");
        assert_eq!(identity.session.as_deref(), Some(id));
    }
    assert!(!redeems(&refresh, &token, "podman", SERVICE).await);
    assert!(!redeems(&refresh, &token, "docker", "other.example.com").await);
    let forged = SecretString::from(format!("{id}.{}", "0".repeat(64)));
    assert!(!redeems(&refresh, &forged, "docker", SERVICE).await);
    for garbage in ["", "not-a-token", "correct horse"] {
        assert!(!redeems(&refresh, &SecretString::from(garbage), "docker", SERVICE).await);
    }

    // The card: kind refresh, bound to client, service and the password card; created by alice,
    // and no secret in its history.
    let card = f.card_by_id(id).await;
    assert_eq!(card.data["kind"], "refresh");
    assert_eq!(card.data["client_id"], "docker");
    assert_eq!(card.data["service"], SERVICE);
    let password_card = f.store.password_card_id(alice.id).await.unwrap().unwrap();
    assert_eq!(card.data["password"], password_card.to_string());
    let events = f
        .store
        .events(&EventFilter {
            target: Some(card.id),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["actor"], alice.id.to_string());
    let history = events[0].to_json().to_string();
    assert!(!history.contains(secret), "{history}");
    assert!(
        !history.contains(card.data["token"]["authentication"].as_str().unwrap()),
        "{history}"
    );

    f.deactivate(&card).await;
    assert!(!redeems(&refresh, &token, "docker", SERVICE).await);
}

#[tokio::test]
async fn a_password_change_or_a_deactivated_user_ends_every_refresh_token() {
    let (f, alice, refresh) = alice().await;
    let identity = Identity::new("alice", "cards");
    let token = issue(&refresh, &identity).await.unwrap();
    assert!(redeems(&refresh, &token, "docker", SERVICE).await);
    f.password(&alice, "battery staple").await;
    assert!(!redeems(&refresh, &token, "docker", SERVICE).await);

    let token = issue(&refresh, &identity).await.unwrap();
    assert!(redeems(&refresh, &token, "docker", SERVICE).await);
    f.deactivate(&alice).await;
    assert!(!redeems(&refresh, &token, "docker", SERVICE).await);
}

#[tokio::test]
async fn an_expired_refresh_token_is_refused() {
    let (f, alice, refresh) = alice().await;
    let past = time::OffsetDateTime::now_utc() - time::Duration::seconds(1);
    let expired = f
        .store
        .create_refresh_session(&alice, "docker", SERVICE, past, 10)
        .await
        .unwrap();
    assert!(!redeems(&refresh, &expired.token, "docker", SERVICE).await);
}

#[tokio::test]
async fn refresh_tokens_are_not_basic_passwords_and_sessions_are_not_refresh_tokens() {
    let (f, alice, refresh) = alice().await;
    let authn = CardAuthenticator::new(f.store.clone()).unwrap();
    let token = issue(&refresh, &Identity::new("alice", "cards"))
        .await
        .unwrap();
    assert_eq!(
        authn
            .authenticate(&password("alice", token.expose_secret()))
            .await
            .unwrap(),
        Authentication::Rejected
    );

    let session = f.session(&alice, time::Duration::hours(1), None).await;
    assert!(matches!(
        authn
            .authenticate(&password("alice", session.token.expose_secret()))
            .await
            .unwrap(),
        Authentication::Authenticated(_)
    ));
    assert!(!redeems(&refresh, &session.token, "docker", SERVICE).await);
}

#[tokio::test]
async fn no_refresh_token_for_the_guest_sessions_other_authenticators_or_unknown_users() {
    let (_f, _alice, refresh) = alice().await;
    for identity in [
        Identity::anonymous("cards"),
        Identity::new("guest", "cards"),
        Identity::new("alice", "static"),
        Identity::new("mallory", "cards"),
        Identity {
            session: Some(uuid::Uuid::new_v4().to_string()),
            ..Identity::new("alice", "cards")
        },
    ] {
        assert!(issue(&refresh, &identity).await.is_none(), "{identity:?}");
    }
}
