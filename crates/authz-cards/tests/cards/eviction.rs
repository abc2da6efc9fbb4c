//! Caches under change: each kind of change evicts exactly the cached answers that depend on
//! what it changed, on the instance that made it and on every other instance sharing the
//! database, and keeps every other entry.
//!
//! The oracle: once every probe's answer is cached, the store is *poisoned* straight in the
//! tables with triggers off (no change announced), so that a recomputed answer differs from
//! the cached one for every probe. Then one change is made through the store. A probe whose
//! answer now equals what uncached plugins compute was evicted; one still giving its first
//! answer was kept. Each probe is checked to tell the two apart.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use cardgate_authz::{Authenticator, Authorizer, Credentials, Identity};
use cardgate_authz_cards::{CardAuthenticator, CardAuthorizer};
use cardgate_password::CacheSettings;
use cardgate_store::testing::{Fixture, fresh_database_url};
use cardgate_store::{Card, CardType, LinkVerb, NewCard, PoolSettings, Store};
use cardgate_token::Scope;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::Decide;

/// How soon another instance must have evicted what a change made stale.
const BOUND: Duration = Duration::from_secs(1);

/// One cached answer: credentials, or a decision.
#[derive(Debug, Clone)]
enum Probe {
    /// `<user>-password` for the user.
    Password(&'static str),
    /// The user's session token.
    Token(&'static str, String),
    Decision {
        account: &'static str,
        session: Option<String>,
        scope: &'static str,
    },
}

/// The plugins of one instance.
struct Plugins {
    authn: CardAuthenticator,
    authz: CardAuthorizer,
}

impl Plugins {
    fn on(store: &Store, cache: CacheSettings) -> Self {
        Plugins {
            authn: CardAuthenticator::with_cache(store.clone(), cache).unwrap(),
            authz: CardAuthorizer::with_cache(store.clone(), cache),
        }
    }

    async fn answer(&self, probe: &Probe) -> String {
        match probe {
            Probe::Password(user) => {
                let credentials = Credentials::Password {
                    username: (*user).into(),
                    password: SecretString::from(format!("{user}-password")),
                };
                format!("{:?}", self.authn.authenticate(&credentials).await.unwrap())
            }
            Probe::Token(user, token) => {
                let credentials = Credentials::Password {
                    username: (*user).into(),
                    password: SecretString::from(token.clone()),
                };
                format!("{:?}", self.authn.authenticate(&credentials).await.unwrap())
            }
            Probe::Decision {
                account,
                session,
                scope,
            } => {
                let identity = Identity {
                    session: session.clone(),
                    ..Identity::new(*account, "cards")
                };
                let scope: Scope = scope.parse().unwrap();
                format!(
                    "{:?}",
                    self.authz.authorize(&identity, &scope).await.unwrap()
                )
            }
        }
    }
}

/// alice: developer of acme, viewer of beta, roles `user-default` and `reader`, a session;
/// bob: developer of beta, a session. Images acme/web and beta/app.
struct World {
    f: Fixture,
    acme: Card,
    beta: Card,
    alice: Card,
    bob: Card,
    web: Card,
    alice_session: Card,
    /// Probes by name.
    probes: Vec<(&'static str, Probe)>,
    /// Each probe's first answer, cached.
    first: Vec<String>,
    /// The plugins whose caches are watched.
    cached: Plugins,
    /// Plugins that cache nothing: what the store says now.
    fresh: Plugins,
    /// Whether the cached plugins are another instance's (they hear of changes from the feed).
    remote: bool,
}

/// Waits until `store` hears changes, so that its caches work.
async fn feed_live(store: &Store) {
    store.watch_changes(Duration::from_secs(60));
    let started = Instant::now();
    while store.generation().current().is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no change feed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The world on a fresh database, its caches (on `instance`'s store when given: another
/// instance sharing the database) filled with every probe's answer.
async fn world(
    extra: &[(&'static str, &'static str, &'static str)],
    other_instance: bool,
) -> World {
    let url = fresh_database_url().await;
    let store = Store::connect_lazy(&url, &PoolSettings::default()).unwrap();
    let f = Fixture::on(store.clone()).await;
    let acme = f.org("acme").await;
    let beta = f.org("beta").await;
    f.store
        .create(
            &f.admin,
            NewCard::new(CardType::Role, "role-reader", json!({"read": false})),
        )
        .await
        .unwrap();
    let alice = f.user("alice", &["user-default", "reader"]).await;
    let bob = f.user("bob", &["user-default"]).await;
    f.member(&acme, &alice, "developer").await;
    f.member(&beta, &alice, "viewer").await;
    f.member(&beta, &bob, "developer").await;
    let web = f.image("acme/web", &["org-acme"], false).await;
    f.image("beta/app", &["org-beta"], false).await;
    f.password(&alice, "alice-password").await;
    f.password(&bob, "bob-password").await;
    let hour = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let alice_session = f
        .store
        .create_session(&f.admin, &alice, hour, None)
        .await
        .unwrap();
    let bob_session = f
        .store
        .create_session(&f.admin, &bob, hour, None)
        .await
        .unwrap();

    let mut probes = vec![
        ("alice password", Probe::Password("alice")),
        ("bob password", Probe::Password("bob")),
        (
            "alice token",
            Probe::Token("alice", alice_session.token.expose_secret().to_owned()),
        ),
        (
            "bob token",
            Probe::Token("bob", bob_session.token.expose_secret().to_owned()),
        ),
        (
            "alice acme/web",
            Probe::Decision {
                account: "alice",
                session: None,
                scope: "repository:acme/web:pull,push",
            },
        ),
        (
            "alice session acme/web",
            Probe::Decision {
                account: "alice",
                session: Some(alice_session.card.id.to_string()),
                scope: "repository:acme/web:pull,push",
            },
        ),
        (
            "alice beta/app",
            Probe::Decision {
                account: "alice",
                session: None,
                scope: "repository:beta/app:pull",
            },
        ),
        (
            "bob beta/app",
            Probe::Decision {
                account: "bob",
                session: None,
                scope: "repository:beta/app:pull,push",
            },
        ),
    ];
    for &(name, account, scope) in extra {
        probes.push((
            name,
            Probe::Decision {
                account,
                session: None,
                scope,
            },
        ));
    }

    let watched = if other_instance {
        Store::connect_lazy(&url, &PoolSettings::default()).unwrap()
    } else {
        store.clone()
    };
    feed_live(&watched).await;
    let cached = Plugins::on(&watched, CacheSettings::default());
    let fresh = Plugins::on(
        &store,
        CacheSettings {
            capacity: 0,
            ..CacheSettings::default()
        },
    );
    let mut first = Vec::new();
    for (_, probe) in &probes {
        first.push(cached.answer(probe).await);
    }
    World {
        f,
        acme,
        beta,
        alice,
        bob,
        web,
        alice_session: alice_session.card,
        probes,
        first,
        cached,
        fresh,
        remote: other_instance,
    }
}

impl World {
    /// Changes the store behind the caches' back (triggers off, nothing announced), so that
    /// every probe's answer, computed again, differs from its cached one: no role reads
    /// `role-user-default`'s cards, no password and no session secret matches.
    async fn poison(&self) {
        let mut tx = self.f.store.pool().begin().await.unwrap();
        for statement in [
            "SET LOCAL session_replication_role = replica",
            "UPDATE cards SET data = jsonb_set(data, '{read}', 'false') \
             WHERE slug = 'role-user-default'",
            "UPDATE cards SET active = false \
             WHERE split_part(type, '@', 1) = 'authentication-password'",
            "UPDATE cards SET data = jsonb_set(data, '{token,authentication}', '\"poisoned\"') \
             WHERE split_part(type, '@', 1) = 'session'",
        ] {
            sqlx::query(statement).execute(&mut *tx).await.unwrap();
        }
        tx.commit().await.unwrap();
    }

    /// The probes whose cached answer is no longer the first one (it is what the store says
    /// now); panics on an answer that is neither, or a probe that cannot tell.
    async fn evicted(&self) -> BTreeSet<&'static str> {
        let mut evicted = BTreeSet::new();
        for ((name, probe), first) in self.probes.iter().zip(&self.first) {
            let now = self.fresh.answer(probe).await;
            assert_ne!(&now, first, "{name}: the poison does not show");
            let cached = self.cached.answer(probe).await;
            if cached == now {
                evicted.insert(*name);
            } else {
                assert_eq!(
                    &cached, first,
                    "{name}: neither kept nor the store's answer"
                );
            }
        }
        evicted
    }

    /// Poisons, lets `change` make its change, and checks that exactly `expected` is evicted
    /// (at once on this instance, within the bound on another).
    async fn assert_evicts(&self, expected: &[&str]) {
        let expected: BTreeSet<&str> = expected.iter().copied().collect();
        let started = Instant::now();
        loop {
            let evicted = self.evicted().await;
            if evicted == expected {
                return;
            }
            // Another instance may still be hearing of the change; this one never is.
            assert!(
                self.remote && started.elapsed() < BOUND && evicted.is_subset(&expected),
                "evicted {evicted:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// alice's decisions.
const ALICE_DECISIONS: [&str; 3] = ["alice acme/web", "alice session acme/web", "alice beta/app"];

#[tokio::test]
async fn new_sessions_refresh_tokens_logins_and_unrelated_cards_evict_nothing() {
    let w = world(&[], false).await;
    w.poison().await;
    let s = &w.f.store;
    let hour = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    s.create_session(&w.f.admin, &w.alice, hour, None)
        .await
        .unwrap();
    s.create_session(&w.f.admin, &w.bob, hour, Some(json!({"type": "object"})))
        .await
        .unwrap();
    s.create_refresh_session(&w.alice, "docker", "registry", hour, 10)
        .await
        .unwrap();
    s.create_login_session(&w.bob, hour).await.unwrap();
    // Every change also writes its event card: none evicts anything.
    w.f.org("gamma").await;
    w.assert_evicts(&[]).await;
}

#[tokio::test]
async fn a_new_image_evicts_only_the_answers_about_its_repository() {
    let w = world(
        &[("alice acme/new", "alice", "repository:acme/new:pull")],
        false,
    )
    .await;
    w.poison().await;
    w.f.image("acme/new", &["org-acme"], false).await;
    w.assert_evicts(&["alice acme/new"]).await;
}

#[tokio::test]
async fn a_membership_change_evicts_only_its_users_decisions() {
    let w = world(&[], false).await;
    w.poison().await;
    w.f.store
        .update_link(
            &w.f.admin,
            &w.acme,
            LinkVerb::HasMember,
            &w.alice,
            json!({"role": "maintainer"}),
        )
        .await
        .unwrap();
    w.assert_evicts(&ALICE_DECISIONS).await;
}

#[tokio::test]
async fn a_grant_evicts_only_the_decisions_about_its_image() {
    let w = world(&[], false).await;
    w.poison().await;
    w.f.grant(&w.beta, &w.web, &["pull"]).await;
    w.assert_evicts(&["alice acme/web", "alice session acme/web"])
        .await;
}

#[tokio::test]
async fn a_public_flag_or_marker_change_evicts_only_the_decisions_about_its_image() {
    let w = world(&[], false).await;
    w.poison().await;
    let patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/data/public", "value": true},
        {"op": "replace", "path": "/markers", "value": ["org-acme+user-bob"]},
    ]))
    .unwrap();
    w.f.store
        .update(&w.f.admin, w.web.id, w.web.revision, &patch)
        .await
        .unwrap();
    w.assert_evicts(&["alice acme/web", "alice session acme/web"])
        .await;
}

#[tokio::test]
async fn a_role_change_evicts_only_its_holders_decisions() {
    let w = world(&[], false).await;
    w.poison().await;
    let role = w.f.card_by_slug("role-reader").await;
    let patch = serde_json::from_value(json!([
        {"op": "replace", "path": "/data/read", "value": {"const": 0}},
    ]))
    .unwrap();
    w.f.store
        .update(&w.f.admin, role.id, role.revision, &patch)
        .await
        .unwrap();
    w.assert_evicts(&ALICE_DECISIONS).await;
}

#[tokio::test]
async fn a_password_change_evicts_only_that_users_password() {
    let w = world(&[], false).await;
    w.poison().await;
    w.f.password(&w.alice, "a-new-password").await;
    w.assert_evicts(&["alice password"]).await;
}

#[tokio::test]
async fn a_deactivated_user_evicts_only_that_users_credentials_and_decisions() {
    let w = world(&[], false).await;
    w.poison().await;
    w.f.deactivate(&w.bob).await;
    w.assert_evicts(&["bob password", "bob token", "bob beta/app"])
        .await;
}

#[tokio::test]
async fn a_deactivated_session_evicts_only_that_sessions_token_and_decisions() {
    let w = world(&[], false).await;
    w.poison().await;
    w.f.deactivate(&w.alice_session).await;
    w.assert_evicts(&["alice token", "alice session acme/web"])
        .await;
}

#[tokio::test]
async fn another_instance_evicts_only_the_dependents_of_a_change_it_hears_of() {
    let w = world(&[], true).await;
    w.poison().await;
    w.f.store
        .unlink(&w.f.admin, &w.beta, LinkVerb::HasMember, &w.bob)
        .await
        .unwrap();
    w.assert_evicts(&["bob beta/app"]).await;
    let w = world(&[], true).await;
    w.poison().await;
    w.f.password(&w.alice, "a-new-password").await;
    w.assert_evicts(&["alice password"]).await;
}

#[tokio::test]
async fn an_instance_whose_feed_was_interrupted_drops_what_it_may_have_missed() {
    let w = world(&[], true).await;
    // The listening connection of the other instance goes; a change is made meanwhile.
    let terminated: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(w.f.store.pool())
    .await
    .unwrap();
    assert_eq!(terminated, vec![(true,)], "one listener to interrupt");
    w.poison().await;
    // Every answer is the store's as soon as the feed is back (and while it is not).
    w.assert_evicts(&[
        "alice password",
        "bob password",
        "alice token",
        "bob token",
        "alice acme/web",
        "alice session acme/web",
        "alice beta/app",
        "bob beta/app",
    ])
    .await;
}
