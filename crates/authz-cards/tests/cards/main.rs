//! The card plugins against a real PostgreSQL.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod differential;
mod eviction;
mod isolation;
mod refresh;
mod rules;
mod scopes;

use argon2::{Argon2, PasswordHasher};
use cardgate_authz::{
    Authentication, Authenticator, Authorizer, AuthzChain, Credentials, Decision, Identity,
};
use cardgate_authz_cards::{CardAuthenticator, CardAuthorizer};
use cardgate_store::Card;
use cardgate_store::testing::Fixture;
use cardgate_token::{ActionSet, Scope};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

/// What the card plugins make of the fixture's policy.
trait Decide {
    fn authorizer(&self) -> AuthzChain;
    /// The actions granted to `account` (optionally through `session`) for one scope text.
    async fn granted(&self, account: &str, session: Option<&str>, scope: &str) -> ActionSet;
    /// Gives `user` an argon2id password.
    async fn password(&self, user: &Card, password: &str);
}

impl Decide for Fixture {
    fn authorizer(&self) -> AuthzChain {
        AuthzChain::new(vec![Arc::new(CardAuthorizer::new(self.store.clone()))])
    }

    async fn granted(&self, account: &str, session: Option<&str>, scope: &str) -> ActionSet {
        let scope: Scope = scope.parse().unwrap();
        let identity = Identity {
            session: session.map(str::to_owned),
            ..Identity::new(account, "cards")
        };
        self.authorizer()
            .authorize(&identity, &[scope])
            .await
            .unwrap()[0]
            .granted
    }

    async fn password(&self, user: &Card, password: &str) {
        let hash = Argon2::default()
            .hash_password(password.as_bytes())
            .unwrap()
            .to_string();
        self.store
            .set_password(&self.admin, user, &hash)
            .await
            .unwrap();
    }
}

pub fn actions(s: &str) -> ActionSet {
    format!("repository:x:{s}")
        .parse::<Scope>()
        .unwrap()
        .actions
}

fn password(user: &str, secret: &str) -> Credentials {
    Credentials::Password {
        username: user.into(),
        password: SecretString::from(secret),
    }
}

#[tokio::test]
async fn passwords_authenticate_by_name_or_slug_and_wrong_ones_are_rejected() {
    let f = Fixture::new().await;
    let alice = f.user("alice", &["user-default"]).await;
    f.password(&alice, "correct horse").await;
    let authn = CardAuthenticator::new(f.store.clone()).unwrap();
    for name in ["alice", "user-alice"] {
        assert_eq!(
            authn
                .authenticate(&password(name, "correct horse"))
                .await
                .unwrap(),
            Authentication::Authenticated(Identity::new("alice", "cards"))
        );
    }
    assert_eq!(
        authn
            .authenticate(&password("alice", "battery staple"))
            .await
            .unwrap(),
        Authentication::Rejected
    );
    assert_eq!(
        authn
            .authenticate(&password("mallory", "correct horse"))
            .await
            .unwrap(),
        Authentication::NotMine
    );
    // The guest cannot log in, and a deactivated user is unknown.
    assert_eq!(
        authn.authenticate(&password("guest", "")).await.unwrap(),
        Authentication::NotMine
    );
    f.store.deactivate(&f.admin, alice.id, None).await.unwrap();
    assert_eq!(
        authn
            .authenticate(&password("alice", "correct horse"))
            .await
            .unwrap(),
        Authentication::NotMine
    );
}

#[tokio::test]
async fn no_credentials_is_the_guest() {
    let f = Fixture::new().await;
    let authn = CardAuthenticator::new(f.store.clone()).unwrap();
    assert_eq!(
        authn.authenticate(&Credentials::Anonymous).await.unwrap(),
        Authentication::Authenticated(Identity::anonymous("cards"))
    );
}

#[tokio::test]
async fn session_tokens_work_until_they_expire_or_are_deactivated() {
    let f = Fixture::new().await;
    let alice = f.user("alice", &["user-default"]).await;
    let bob = f.user("bob", &["user-default"]).await;
    let authn = CardAuthenticator::new(f.store.clone()).unwrap();
    let live = f.session(&alice, time::Duration::hours(1), None).await;
    let expired = f.session(&alice, -time::Duration::seconds(1), None).await;
    let token = live.token.expose_secret().to_owned();

    match authn
        .authenticate(&password("alice", &token))
        .await
        .unwrap()
    {
        Authentication::Authenticated(identity) => {
            assert_eq!(identity.account, "alice");
            assert_eq!(identity.session, Some(live.card.id.to_string()));
        }
        other => panic!("{other:?}"),
    }
    // Someone else's session, a wrong secret, an expired session: rejected.
    assert_eq!(
        authn.authenticate(&password("bob", &token)).await.unwrap(),
        Authentication::Rejected
    );
    let (id, _) = token.split_once('.').unwrap();
    let forged = format!("{id}.{}", "0".repeat(64));
    assert_eq!(
        authn
            .authenticate(&password("alice", &forged))
            .await
            .unwrap(),
        Authentication::Rejected
    );
    assert_eq!(
        authn
            .authenticate(&password("alice", expired.token.expose_secret()))
            .await
            .unwrap(),
        Authentication::Rejected
    );
    f.store
        .deactivate(&f.admin, live.card.id, None)
        .await
        .unwrap();
    assert_eq!(
        authn
            .authenticate(&password("alice", &token))
            .await
            .unwrap(),
        Authentication::Rejected
    );
    let _ = bob;
}

#[tokio::test]
async fn scopes_other_than_repository_and_catalog_are_not_decided() {
    let f = Fixture::new().await;
    f.user("alice", &["user-default"]).await;
    let authz = CardAuthorizer::new(f.store.clone());
    let scope: Scope = "plugin:thing:pull".parse().unwrap();
    assert_eq!(
        authz
            .authorize(&Identity::new("alice", "cards"), &scope)
            .await
            .unwrap(),
        Decision::NoMatch
    );
}

#[tokio::test]
async fn a_cache_lifetime_beyond_what_the_clock_counts_never_overflows() {
    let f = Fixture::new().await;
    let acme = f.org("acme").await;
    let alice = f.user("alice", &["user-default"]).await;
    f.member(&acme, &alice, "developer").await;
    f.image("acme/web", &["org-acme"], false).await;
    f.password(&alice, "wonderland").await;
    // Answers are cached only while the change feed is heard.
    f.store.watch_changes(std::time::Duration::from_secs(60));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while f.store.generation().current().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the change feed never came up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let forever = cardgate_password::CacheSettings {
        capacity: 100,
        ttl: std::time::Duration::MAX,
    };
    let authenticator = CardAuthenticator::with_cache(f.store.clone(), forever).unwrap();
    let authorizer = CardAuthorizer::with_cache(f.store.clone(), forever);
    let scope: Scope = "repository:acme/web:pull,push".parse().unwrap();
    let credentials = Credentials::Password {
        username: "alice".into(),
        password: SecretString::from("wonderland"),
    };
    // Twice: once computed and kept, once from the cache.
    for _ in 0..2 {
        assert!(matches!(
            authenticator.authenticate(&credentials).await.unwrap(),
            Authentication::Authenticated(_)
        ));
        assert_eq!(
            authorizer
                .authorize(&Identity::new("alice", "cards"), &scope)
                .await
                .unwrap(),
            Decision::Allowed(ActionSet::of(&[
                cardgate_token::Action::Pull,
                cardgate_token::Action::Push
            ]))
        );
    }
}
