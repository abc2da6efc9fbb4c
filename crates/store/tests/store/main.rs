//! The store against a real PostgreSQL (started by the harness when no DATABASE_URL is set).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod registry;

use cardgate_store::testing::Fixture;
use cardgate_store::{
    CardType, EventFilter, LinkVerb, MembershipRole, NewCard, Store, StoreError,
    hash_session_secret,
};
use json_patch::Patch;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

fn patch(ops: Value) -> Patch {
    serde_json::from_value(ops).unwrap()
}

async fn events_of(f: &Fixture, target: uuid::Uuid) -> Vec<cardgate_store::Card> {
    f.store
        .events(&EventFilter {
            target: Some(target),
            ..EventFilter::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn built_in_cards_exist_after_migration() {
    let f = Fixture::new().await;
    for slug in [
        "user-admin",
        "user-guest",
        "role-user-default",
        "role-user-guest",
    ] {
        assert!(
            f.store.card_by_slug(slug).await.unwrap().is_some(),
            "{slug}"
        );
    }
}

#[tokio::test]
async fn cards_breaking_their_schema_are_refused_naming_the_field() {
    let f = Fixture::new().await;
    let err = f
        .store
        .create(
            &f.admin,
            NewCard::new(CardType::User, "user-x", json!({"roles": [7]})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
    assert!(err.to_string().contains("data/roles/0"), "{err}");
    assert!(f.store.card_by_slug("user-x").await.unwrap().is_none());

    let err = f
        .store
        .create(&f.admin, NewCard::new(CardType::Org, "Org_Bad", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn a_nul_in_text_or_json_is_invalid_input_in_the_stores_own_words() {
    let f = Fixture::new().await;
    let user = f.user("alice", &["user-default"]).await;
    let own_words = |err: &StoreError| {
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("NUL"), "{message}");
        for word in ["database", "escape sequence", "byte sequence"] {
            assert!(!message.contains(word), "{message}");
        }
    };
    // Text: a lookup by slug.
    own_words(&f.store.card_by_slug("user-a\0").await.unwrap_err());
    // JSON: a session scope (a valid JSON Schema that jsonb cannot store).
    let err = f
        .store
        .create_session(
            &f.admin,
            &user,
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            Some(json!({"description": "a\u{0}b"})),
        )
        .await
        .unwrap_err();
    own_words(&err);
    assert!(err.to_string().starts_with("card `session-"), "{err}");
    assert!(f.store.sessions_of(user.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn slugs_and_active_repositories_are_unique() {
    let f = Fixture::new().await;
    let image = |slug: &str| {
        NewCard::new(
            CardType::Image,
            slug,
            json!({"repository": "acme/web", "public": false}),
        )
    };
    let first = f.store.create(&f.admin, image("image-a")).await.unwrap();
    assert!(matches!(
        f.store
            .create(&f.admin, image("image-a"))
            .await
            .unwrap_err(),
        StoreError::Conflict(_)
    ));
    let err = f
        .store
        .create(&f.admin, image("image-b"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("acme/web"), "{err}");
    // Once the first is deactivated the name is free again.
    f.deactivate(&first).await;
    f.store.create(&f.admin, image("image-b")).await.unwrap();
    let found = f.image_of("acme/web").await;
    assert_eq!(found.slug, "image-b");
}

#[tokio::test]
async fn links_are_typed_checked_and_stored_both_ways() {
    let f = Fixture::new().await;
    let org = f.org("acme").await;
    let user = f.user("alice", &["user-default"]).await;
    let image = f.image("acme/web", &["org-acme"], false).await;
    f.member(&org, &user, "developer").await;
    let err = f
        .link_refused(
            &user,
            LinkVerb::HasMember,
            &org,
            json!({"role": "developer"}),
        )
        .await;
    assert!(
        err.to_string().contains("cannot link a user to a org"),
        "{err}"
    );
    let err = f
        .link_refused(
            &user,
            LinkVerb::HasAccessTo,
            &image,
            json!({"actions": ["fly"]}),
        )
        .await;
    assert!(err.to_string().contains("data/actions/0"), "{err}");
    f.grant(&user, &image, &["push"]).await;
    f.grant(&org, &image, &["pull", "delete"]).await;

    assert_eq!(
        f.store
            .memberships(user.id)
            .await
            .unwrap()
            .iter()
            .map(|m| (m.org_slug.as_str(), m.role))
            .collect::<Vec<_>>(),
        [("org-acme", MembershipRole::Developer)]
    );
    assert_eq!(
        f.store.granted_actions(image.id, &[user.id]).await.unwrap(),
        ["push"]
    );
    assert_eq!(
        f.store
            .granted_actions(image.id, &[user.id, org.id])
            .await
            .unwrap(),
        ["delete", "pull", "push"]
    );
    let (inverse,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM links WHERE name = 'is member of' AND from_id = $1 AND to_id = $2",
    )
    .bind(user.id)
    .bind(org.id)
    .fetch_one(f.store.pool())
    .await
    .unwrap();
    assert_eq!(inverse, 1);

    // A second identical link is a conflict; unlinking removes both directions.
    let err = f
        .link_refused(&org, LinkVerb::HasMember, &user, json!({"role": "owner"}))
        .await;
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    f.store
        .unlink(&f.admin, &org, LinkVerb::HasMember, &user)
        .await
        .unwrap();
    assert!(f.store.memberships(user.id).await.unwrap().is_empty());
    assert!(matches!(
        f.store
            .unlink(&f.admin, &org, LinkVerb::HasMember, &user)
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));
    let kinds: Vec<String> = events_of(&f, org.id)
        .await
        .iter()
        .map(|e| e.base_type().to_owned())
        .collect();
    assert_eq!(kinds, ["unlink", "link", "create"]);
}

#[tokio::test]
async fn every_change_has_its_event_with_actor_target_payload_and_markers() {
    let f = Fixture::new().await;
    let image = f.image("acme/web", &["org-acme"], false).await;
    let updated = f
        .store
        .update(
            &f.admin,
            image.id,
            image.revision,
            &patch(json!([{"op": "replace", "path": "/data/public", "value": true}])),
        )
        .await
        .unwrap();
    assert_eq!(updated.revision, image.revision + 1);
    assert_eq!(updated.data["public"], true);
    let deactivated = f
        .store
        .deactivate(&f.admin, image.id, Some(updated.revision))
        .await
        .unwrap();
    assert!(!deactivated.active);

    let events = events_of(&f, image.id).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.base_type()).collect();
    assert_eq!(kinds, ["deactivate", "update", "create"]);
    for event in &events {
        assert_eq!(event.data["actor"], f.admin.id.to_string());
        assert_eq!(event.data["target"], image.id.to_string());
        assert_eq!(event.markers, ["org-acme"]);
        assert!(event.data["timestamp"].is_string());
    }
    assert_eq!(
        events[1].data["payload"]["patch"],
        json!([{"op": "replace", "path": "/data/public", "value": true}])
    );
    assert_eq!(events[2].data["payload"]["data"]["repository"], "acme/web");
    let by_admin = f
        .store
        .events(&EventFilter {
            actor: Some(f.admin.id),
            ..EventFilter::default()
        })
        .await
        .unwrap();
    assert!(by_admin.len() >= 3);
}

#[tokio::test]
async fn updates_name_a_revision_and_stale_ones_change_nothing() {
    let f = Fixture::new().await;
    let image = f.image("acme/web", &["org-acme"], false).await;
    let set_public = patch(json!([{"op": "replace", "path": "/data/public", "value": true}]));
    f.store
        .update(&f.admin, image.id, image.revision, &set_public)
        .await
        .unwrap();
    let err = f
        .store
        .update(&f.admin, image.id, image.revision, &set_public)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Stale {
                expected: 1,
                current: 2
            }
        ),
        "{err}"
    );
    assert_eq!(events_of(&f, image.id).await.len(), 2);

    // Patches may not touch identity fields, and must keep the data valid.
    for (ops, expected) in [
        (
            json!([{"op": "replace", "path": "/slug", "value": "x"}]),
            "only /name",
        ),
        (
            json!([{"op": "replace", "path": "/data/public", "value": "yes"}]),
            "data/public",
        ),
        (json!([{"op": "remove", "path": "/data/nothing"}]), "patch"),
    ] {
        let err = f
            .store
            .update(&f.admin, image.id, 2, &patch(ops))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
    let unchanged = f.store.card_by_id(image.id).await.unwrap().unwrap();
    assert_eq!(unchanged.revision, 2);
    assert_eq!(events_of(&f, image.id).await.len(), 2);
    let missing = f
        .store
        .update(&f.admin, uuid::Uuid::new_v4(), 1, &set_public)
        .await
        .unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)));
}

#[tokio::test]
async fn concurrent_updates_of_one_revision_let_exactly_one_win() {
    let f = Fixture::new().await;
    let image = f.image("acme/web", &["org-acme"], false).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (store, admin) = (f.store.clone(), f.admin.clone());
        tasks.push(tokio::spawn(async move {
            let ops =
                patch(json!([{"op": "replace", "path": "/name", "value": format!("writer {i}")}]));
            store.update(&admin, image.id, image.revision, &ops).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Stale { .. }) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(won, 1);
    let events = events_of(&f, image.id).await;
    assert_eq!(
        events.iter().filter(|e| e.base_type() == "update").count(),
        1
    );
    assert_eq!(
        f.store
            .card_by_id(image.id)
            .await
            .unwrap()
            .unwrap()
            .revision,
        2
    );
}

#[tokio::test]
async fn sessions_store_only_a_hash_of_their_secret_and_events_not_even_that() {
    let f = Fixture::new().await;
    let user = f.user("alice", &["user-default"]).await;
    let session = f
        .session(
            &user,
            time::Duration::hours(1),
            Some(json!({"type": "object"})),
        )
        .await;
    let token = session.token.expose_secret();
    let (id, secret) = token.split_once('.').unwrap();
    assert_eq!(id, session.card.id.to_string());
    assert_eq!(secret.len(), 64, "256-bit secret");
    let stored = f.store.card_by_id(session.card.id).await.unwrap().unwrap();
    let hash = hash_session_secret(secret);
    assert_eq!(stored.data["token"]["authentication"], hash);
    assert!(!stored.data.to_string().contains(secret));
    assert_eq!(stored.data["actor"], user.id.to_string());
    assert_eq!(stored.markers, ["user-alice"]);
    let events = events_of(&f, session.card.id).await;
    assert_eq!(events.len(), 1);
    assert!(!events[0].data.to_string().contains(&hash));
    assert_eq!(
        events[0].data["payload"]["data"]["token"]["authentication"],
        "[REDACTED]"
    );

    let err = f
        .store
        .create_session(
            &f.admin,
            &user,
            time::OffsetDateTime::now_utc(),
            Some(json!({"type": 12})),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("data/scope"), "{err}");
}

#[tokio::test]
async fn setting_a_password_replaces_the_previous_one_and_is_audited_without_the_hash() {
    let f = Fixture::new().await;
    let user = f.user("alice", &[]).await;
    assert_eq!(f.store.password_hash(user.id).await.unwrap(), None);
    let first = f
        .store
        .set_password(&f.admin, &user, "$argon2id$v=19$m=19456,t=2,p=1$a$b")
        .await
        .unwrap();
    let second = f
        .store
        .set_password(&f.admin, &user, "$argon2id$v=19$m=19456,t=2,p=1$c$d")
        .await
        .unwrap();
    assert_eq!(
        f.store.password_hash(user.id).await.unwrap().as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$c$d")
    );
    assert!(
        f.store
            .set_password(&f.admin, &user, "hunter2")
            .await
            .unwrap_err()
            .to_string()
            .contains("data/hash")
    );
    for card in [&first, &second] {
        for event in events_of(&f, card.id).await {
            assert!(
                !event.data.to_string().contains("$argon2id$"),
                "{}",
                event.data
            );
        }
    }
    let kinds: Vec<String> = events_of(&f, first.id)
        .await
        .iter()
        .map(|e| e.base_type().to_owned())
        .collect();
    assert_eq!(kinds, ["deactivate", "create"]);
}

#[tokio::test]
async fn ensure_image_creates_a_private_image_once_even_under_concurrency() {
    let f = Fixture::new().await;
    let pusher = f.user("dev", &["user-default"]).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, pusher) = (f.store.clone(), pusher.clone());
            tokio::spawn(async move {
                store
                    .ensure_image(&pusher, &NewCard::image("acme/new", "org-acme", false))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    let image = f.image_of("acme/new").await;
    assert_eq!(image.markers, ["org-acme"]);
    assert_eq!(image.data["public"], false);
    let events = events_of(&f, image.id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data["actor"], pusher.id.to_string());
}

#[tokio::test]
async fn a_new_card_is_stored_exactly_as_it_was_judged_before() {
    let f = Fixture::new().await;
    let pusher = f.user("dev", &["user-default"]).await;
    let image = NewCard::image("acme/judged", "org-acme", false);
    let stored = f.store.ensure_image(&pusher, &image).await.unwrap();
    assert_eq!(stored.to_json(), image.to_json());
    assert_eq!(stored.name.as_deref(), Some("acme/judged"));
    // Another card for the same repository: the one stored first is returned, unchanged.
    let again = f
        .store
        .ensure_image(&pusher, &NewCard::image("acme/judged", "org-acme", false))
        .await
        .unwrap();
    assert_eq!(again.id, image.id);
    let not_an_image = NewCard::new(CardType::Org, "org-x", json!({}));
    assert!(matches!(
        f.store.ensure_image(&pusher, &not_an_image).await,
        Err(StoreError::Invalid(_))
    ));
}

#[tokio::test]
async fn a_private_cluster_admits_only_connections_with_its_password() {
    use sqlx::Connection;
    let dir = std::env::temp_dir().join(format!(
        "cardgate-password-test-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let start_dir = dir.clone();
    let cluster = tokio::task::spawn_blocking(move || {
        cardgate_store::embedded::EmbeddedPostgres::start(&start_dir, true)
    })
    .await
    .unwrap()
    .unwrap();
    let with_password = cluster.url("postgres");
    assert!(sqlx::PgConnection::connect(&with_password).await.is_ok());
    let port = cluster.port();
    for url in [
        format!("postgres://cardgate@127.0.0.1:{port}/postgres"),
        format!("postgres://cardgate:wrong@127.0.0.1:{port}/postgres"),
    ] {
        assert!(
            sqlx::PgConnection::connect(&url).await.is_err(),
            "{url} was admitted"
        );
    }
    let password_file = dir.with_extension("password");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&password_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    cluster.stop().unwrap();
}

#[tokio::test]
async fn bootstrap_reactivates_deactivated_built_in_cards_and_records_it() {
    let f = Fixture::new().await;
    let slugs = [
        "user-guest",
        "role-user-default",
        "role-user-guest",
        "user-admin",
    ];
    let mut before = Vec::new();
    for slug in slugs {
        let card = f.card_by_slug(slug).await;
        f.store.deactivate(&f.admin, card.id, None).await.unwrap();
        assert!(f.store.card_by_slug(slug).await.unwrap().is_none());
        before.push(card);
    }
    // What every later start and `cardgate set-password` run first.
    f.store.bootstrap().await.unwrap();
    for card in before {
        let now = f.card_by_slug(&card.slug).await;
        assert_eq!(
            now.id, card.id,
            "{}: the same card, not a new one",
            card.slug
        );
        assert_eq!(now.data, card.data);
        assert_eq!(now.revision, card.revision + 2);
        let events = events_of(&f, card.id).await;
        assert!(
            events[0].card_type.starts_with("update@")
                && events[0].data["payload"]["patch"][0]["path"] == "/active",
            "{}: {events:?}",
            card.slug
        );
    }
    // Bootstrapping again changes nothing.
    let admin = f.card_by_slug("user-admin").await;
    f.store.bootstrap().await.unwrap();
    assert_eq!(f.card_by_slug("user-admin").await, admin);
}

#[tokio::test]
async fn users_and_orgs_share_one_namespace_of_names() {
    let f = Fixture::new().await;
    let org = f.org("acme").await;
    let err = f
        .store
        .create(
            &f.admin,
            NewCard::new(CardType::User, "user-acme", json!({"roles": []})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("name: `acme`"), "{err}");
    // A deactivated org's name stays taken; a user's name is not an org's either.
    f.deactivate(&org).await;
    assert!(matches!(
        f.store
            .create(
                &f.admin,
                NewCard::new(CardType::User, "user-acme", json!({"roles": []}))
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    f.user("bob", &[]).await;
    assert!(matches!(
        f.store
            .create(&f.admin, NewCard::new(CardType::Org, "org-bob", json!({})))
            .await,
        Err(StoreError::Conflict(_))
    ));
    // Concurrent creations of one name as both kinds: exactly one wins.
    let (user, org) = tokio::join!(
        f.store.create(
            &f.admin,
            NewCard::new(CardType::User, "user-race", json!({"roles": []}))
        ),
        f.store
            .create(&f.admin, NewCard::new(CardType::Org, "org-race", json!({}))),
    );
    assert!(user.is_ok() != org.is_ok(), "{user:?} / {org:?}");
}

/// The failures counted for `account` in its open window.
async fn failures_of(store: &Store, account: &cardgate_store::AccountHash) -> u32 {
    store
        .login_failures(account)
        .await
        .unwrap()
        .unwrap()
        .failures
}

#[tokio::test]
async fn login_failures_count_in_a_window_and_stay_within_max_rows_locked_accounts_kept() {
    use cardgate_store::account_hash;
    use std::time::Duration;
    let f = Fixture::new().await;
    let store = &f.store;
    let window = Duration::from_secs(300);
    let alice = account_hash("alice");
    assert_eq!(store.login_failures(&alice).await.unwrap(), None);
    for expected in 1..=5 {
        let counted = store.record_login_failure(&alice, window).await.unwrap();
        assert_eq!(counted.failures, expected);
        assert!(counted.remaining <= window && counted.remaining > Duration::from_secs(290));
    }
    assert_eq!(failures_of(store, &alice).await, 5);

    // A window that has ended counts for nothing; the next failure starts a new one.
    let brief = account_hash("brief");
    store
        .record_login_failure(&brief, Duration::from_millis(1))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.login_failures(&brief).await.unwrap(), None);
    let again = store.record_login_failure(&brief, window).await.unwrap();
    assert_eq!(again.failures, 1);
    store
        .record_login_failure(&account_hash("ended"), Duration::from_millis(1))
        .await
        .unwrap();

    // A spray of names, once each: pruning keeps 10 rows, alice's among them.
    for i in 0..40 {
        store
            .record_login_failure(&account_hash(&format!("spray-{i}")), window)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let deleted = store.prune_login_failures(10).await.unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM login_failures")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 10);
    assert_eq!(deleted, 42 + 1 - 10);
    assert_eq!(failures_of(store, &alice).await, 5);
}

/// Waits until `store`'s change feed gives an epoch, or fails after `within`.
async fn feed_heard(store: &Store, within: std::time::Duration) -> u64 {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(epoch) = store.generation().current() {
            return epoch;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the change feed was not heard"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Sends `signal` to the server process of the connection listening for changes.
async fn signal_listener(store: &Store, signal: &str) {
    let (pid,): (i32,) = sqlx::query_as(
        "SELECT pid FROM pg_stat_activity WHERE query ILIKE 'LISTEN%cardgate_changes%'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

#[tokio::test]
async fn a_change_feed_gone_silent_is_given_up_within_its_bound_and_what_was_cached_is_dropped() {
    let store = cardgate_store::testing::fresh_store().await;
    let silence = std::time::Duration::from_secs(2);
    store.watch_changes(silence);
    let before = feed_heard(&store, std::time::Duration::from_secs(10)).await;
    // The listener's server process stops, its connection stays open: nothing tells the
    // listener, and only its unheard heartbeats show that changes may go unheard.
    signal_listener(&store, "-STOP").await;
    let stopped = std::time::Instant::now();
    while store.generation().current().is_some() {
        assert!(
            stopped.elapsed() < silence * 3,
            "a silent feed still vouches for cached answers after {:?}",
            stopped.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(stopped.elapsed() >= silence / 2, "given up too early");
    signal_listener(&store, "-CONT").await;
    // A new connection, heard again: everything computed before is stale.
    let after = feed_heard(&store, std::time::Duration::from_secs(10)).await;
    assert!(after > before);
    assert!(store.generation().changed_since(before, &[]));
    assert!(!store.generation().changed_since(after, &[]));
}
