//! The store against a real PostgreSQL (started by the harness when no DATABASE_URL is set).

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use cardgate_store::testing::fresh_store;
use cardgate_store::{
    CardType, LinkVerb, MembershipRole, NewCard, StoreError, hash_session_secret,
};
use secrecy::ExposeSecret;
use serde_json::json;

#[tokio::test]
async fn built_in_cards_exist_after_migration() {
    let store = fresh_store().await;
    for slug in [
        "user-admin",
        "user-guest",
        "role-user-default",
        "role-user-guest",
    ] {
        assert!(store.card_by_slug(slug).await.unwrap().is_some(), "{slug}");
    }
}

#[tokio::test]
async fn cards_breaking_their_schema_are_refused_naming_the_field() {
    let store = fresh_store().await;
    let err = store
        .create_card(NewCard::new(
            CardType::User,
            "user-x",
            json!({"roles": [7]}),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)));
    assert!(err.to_string().contains("data/roles/0"), "{err}");
    assert!(store.card_by_slug("user-x").await.unwrap().is_none());

    let err = store
        .create_card(NewCard::new(CardType::Org, "Org_Bad", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

#[tokio::test]
async fn slugs_and_active_repositories_are_unique() {
    let store = fresh_store().await;
    let image = |slug: &str| {
        NewCard::new(
            CardType::Image,
            slug,
            json!({"repository": "acme/web", "public": false}),
        )
    };
    let first = store.create_card(image("image-a")).await.unwrap();
    assert!(matches!(
        store.create_card(image("image-a")).await.unwrap_err(),
        StoreError::Conflict(_)
    ));
    let err = store.create_card(image("image-b")).await.unwrap_err();
    assert!(err.to_string().contains("acme/web"), "{err}");
    // Once the first is deactivated the name is free again.
    store.set_active(first.id, false).await.unwrap();
    store.create_card(image("image-b")).await.unwrap();
    let found = store
        .image_by_repository("acme/web")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.slug, "image-b");
}

#[tokio::test]
async fn links_are_typed_checked_and_stored_both_ways() {
    let store = fresh_store().await;
    let org = store
        .create_card(NewCard::new(CardType::Org, "org-acme", json!({})))
        .await
        .unwrap();
    let user = store
        .create_card(NewCard::new(
            CardType::User,
            "user-alice",
            json!({"roles": ["user-default"]}),
        ))
        .await
        .unwrap();
    let image = store
        .create_card(NewCard::new(
            CardType::Image,
            "image-web",
            json!({"repository": "acme/web", "public": false}),
        ))
        .await
        .unwrap();
    store
        .link(
            &org,
            LinkVerb::HasMember,
            &user,
            json!({"role": "developer"}),
        )
        .await
        .unwrap();
    let err = store
        .link(
            &user,
            LinkVerb::HasMember,
            &org,
            json!({"role": "developer"}),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot link a user to a org"),
        "{err}"
    );
    let err = store
        .link(
            &user,
            LinkVerb::HasAccessTo,
            &image,
            json!({"actions": ["fly"]}),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("data/actions/0"), "{err}");
    store
        .link(
            &user,
            LinkVerb::HasAccessTo,
            &image,
            json!({"actions": ["push"]}),
        )
        .await
        .unwrap();
    store
        .link(
            &org,
            LinkVerb::HasAccessTo,
            &image,
            json!({"actions": ["pull", "delete"]}),
        )
        .await
        .unwrap();

    assert_eq!(
        store
            .memberships(user.id)
            .await
            .unwrap()
            .iter()
            .map(|m| (m.org_slug.as_str(), m.role))
            .collect::<Vec<_>>(),
        [("org-acme", MembershipRole::Developer)]
    );
    assert_eq!(
        store.granted_actions(image.id, &[user.id]).await.unwrap(),
        ["push"]
    );
    assert_eq!(
        store
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
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(inverse, 1);
}

#[tokio::test]
async fn sessions_store_only_a_hash_of_their_secret() {
    let store = fresh_store().await;
    let user = store
        .create_card(NewCard::new(
            CardType::User,
            "user-alice",
            json!({"roles": ["user-default"]}),
        ))
        .await
        .unwrap();
    let session = store
        .create_session(
            &user,
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
            Some(json!({"type": "object"})),
        )
        .await
        .unwrap();
    let token = session.token.expose_secret();
    let (id, secret) = token.split_once('.').unwrap();
    assert_eq!(id, session.card.id.to_string());
    assert_eq!(secret.len(), 64, "256-bit secret");
    let stored = store.card_by_id(session.card.id).await.unwrap().unwrap();
    assert_eq!(
        stored.data["token"]["authentication"],
        hash_session_secret(secret)
    );
    assert!(!stored.data.to_string().contains(secret));
    assert_eq!(stored.data["actor"], user.id.to_string());
    assert_eq!(stored.markers, ["user-alice"]);

    let err = store
        .create_session(
            &user,
            time::OffsetDateTime::now_utc(),
            Some(json!({"type": 12})),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("data/scope"), "{err}");
}

#[tokio::test]
async fn setting_a_password_replaces_the_previous_one() {
    let store = fresh_store().await;
    let user = store
        .create_card(NewCard::new(
            CardType::User,
            "user-alice",
            json!({"roles": []}),
        ))
        .await
        .unwrap();
    assert_eq!(store.password_hash(user.id).await.unwrap(), None);
    store
        .set_password(&user, "$argon2id$v=19$m=19456,t=2,p=1$a$b")
        .await
        .unwrap();
    store
        .set_password(&user, "$argon2id$v=19$m=19456,t=2,p=1$c$d")
        .await
        .unwrap();
    assert_eq!(
        store.password_hash(user.id).await.unwrap().as_deref(),
        Some("$argon2id$v=19$m=19456,t=2,p=1$c$d")
    );
    assert!(
        store
            .set_password(&user, "hunter2")
            .await
            .unwrap_err()
            .to_string()
            .contains("data/hash")
    );
}

#[tokio::test]
async fn ensure_image_creates_a_private_image_once_even_under_concurrency() {
    let store = fresh_store().await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ensure_image("acme/new", "org-acme").await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    let image = store
        .image_by_repository("acme/new")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(image.markers, ["org-acme"]);
    assert_eq!(image.data["public"], false);
}
