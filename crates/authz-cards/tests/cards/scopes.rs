//! A session's scope bounds what the session gets, for every actor and every scope type, and
//! no schema in the store can make a decision slow.

use std::time::{Duration, Instant};

use cardgate_authz::{AuthzChain, Identity};
use cardgate_authz_cards::{CardAuthorizer, MAX_IMAGES_CREATED_PER_REQUEST};
use cardgate_store::Card;
use cardgate_store::testing::Fixture;
use cardgate_token::{Scope, parse_scopes};
use serde_json::{Value, json};

use crate::rules::two_tenants;
use crate::{Decide, actions};

const WEB_ONLY: &str =
    r#"{"properties": {"data": {"properties": {"repository": {"const": "acme/web"}}}}}"#;

async fn card(f: &Fixture, slug: &str) -> Card {
    f.card_by_slug(slug).await
}

/// A session of `user` narrowed by `scope`: its id.
async fn session(f: &Fixture, user: &Card, scope: Value) -> String {
    f.session(user, time::Duration::hours(1), Some(scope))
        .await
        .card
        .id
        .to_string()
}

fn identity(account: &str, session: &str) -> Identity {
    Identity {
        session: Some(session.to_owned()),
        ..Identity::new(account, "cards")
    }
}

/// What `explain` says is granted, per action of `scope`.
async fn explained(f: &Fixture, identity: &Identity, scope: &str) -> Vec<(String, bool)> {
    let scope: Scope = scope.parse().unwrap();
    CardAuthorizer::new(f.store.clone())
        .explain(identity, &scope)
        .await
        .unwrap()
        .unwrap()
        .verdicts(&scope)
        .into_iter()
        .map(|v| (v.action.to_owned(), v.granted))
        .collect()
}

fn granted(verdicts: &[(String, bool)]) -> Vec<&str> {
    verdicts
        .iter()
        .filter(|(_, granted)| *granted)
        .map(|(action, _)| action.as_str())
        .collect()
}

#[tokio::test]
async fn a_session_scope_bounds_the_admin_in_decide_and_explain() {
    let f = two_tenants().await;
    let admin = f.admin.clone();
    let web = session(&f, &admin, serde_json::from_str(WEB_ONLY).unwrap()).await;
    let nothing = session(&f, &admin, json!(false)).await;
    let everything = session(&f, &admin, json!(true)).await;
    for (session, scope, expected) in [
        (&web, "repository:acme/web:*", "*"),
        (&web, "repository:globex/site:*", ""),
        (&web, "repository:acme/team/api:pull,push", ""),
        (&web, "registry:catalog:*", ""),
        // Public pulls are everyone's, scoped or not.
        (&web, "repository:acme/public:pull,push", "pull"),
        (&nothing, "repository:acme/web:*", ""),
        (&nothing, "repository:acme/brand-new:pull,push", ""),
        (&nothing, "registry:catalog:*", ""),
        (&everything, "repository:globex/site:*", "*"),
        (&everything, "registry:catalog:*", "*"),
    ] {
        assert_eq!(
            f.granted("admin", Some(session), scope).await,
            actions(expected),
            "{scope} through {session}"
        );
        let verdicts = explained(&f, &identity("admin", session), scope).await;
        let explained = granted(&verdicts).join(",");
        assert_eq!(
            actions(if explained.is_empty() { "" } else { &explained }),
            actions(expected),
            "explain {scope} through {session}: {verdicts:?}"
        );
    }
    // The same admin without a session still may do anything.
    assert_eq!(
        f.granted("admin", None, "repository:globex/site:*").await,
        actions("*")
    );
    // Nothing was created for the scoped admin's first push.
    assert!(
        f.store
            .image_by_repository("acme/brand-new")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn platform_admins_and_catalog_roles_get_the_catalog_only_through_unscoped_sessions() {
    let f = two_tenants().await;
    f.role(
        "role-platform-admin",
        json!({"read": true, "catalog": true}),
    )
    .await;
    let root = f.user("root", &["platform-admin"]).await;
    let web = session(&f, &root, serde_json::from_str(WEB_ONLY).unwrap()).await;
    let empty = session(&f, &root, json!({})).await;
    assert_eq!(
        f.granted("root", None, "registry:catalog:*").await,
        actions("*")
    );
    assert_eq!(
        f.granted("root", Some(&empty), "registry:catalog:*").await,
        actions("*")
    );
    assert_eq!(
        f.granted("root", Some(&web), "registry:catalog:*").await,
        actions("")
    );
    let scope: Scope = "registry:catalog:*".parse().unwrap();
    let explanation = CardAuthorizer::new(f.store.clone())
        .explain(&identity("root", &web), &scope)
        .await
        .unwrap()
        .unwrap();
    let verdicts = explanation.verdicts(&scope);
    assert!(!verdicts[0].granted);
    assert!(
        verdicts[0].reasons.iter().any(|r| r.contains("scope")),
        "{verdicts:?}"
    );
    // A platform admin who is a member reaches through the scope only what it admits.
    let acme = card(&f, "org-acme").await;
    f.member(&acme, &root, "owner").await;
    assert_eq!(
        f.granted("root", Some(&web), "repository:acme/web:*").await,
        actions("*")
    );
    assert_eq!(
        f.granted("root", Some(&web), "repository:acme/team/api:*")
            .await,
        actions("")
    );
}

#[tokio::test]
async fn a_scoped_token_never_creates_an_image_its_scope_would_not_admit() {
    let f = two_tenants().await;
    let dev = card(&f, "user-dev").await;
    let web = card(&f, "image-acme-web").await;
    // Scopes naming the image by its data, its name, its slug and its id: each admits acme/web
    // and nothing a push could create.
    for (n, scope) in [
        serde_json::from_str(WEB_ONLY).unwrap(),
        json!({"properties": {"name": {"const": "acme/web"}}}),
        json!({"properties": {"slug": {"const": web.slug}}}),
        json!({"properties": {"id": {"const": web.id}}}),
        json!({"required": ["slug"], "properties": {"slug": {"pattern": "^image-acme-"}}}),
    ]
    .into_iter()
    .enumerate()
    {
        let id = session(&f, &dev, scope.clone()).await;
        assert_eq!(
            f.granted("dev", Some(&id), "repository:acme/web:pull,push")
                .await,
            actions("pull,push"),
            "{scope}"
        );
        let outside = format!("acme/outside-{n}");
        assert_eq!(
            f.granted("dev", Some(&id), &format!("repository:{outside}:pull,push"))
                .await,
            actions(""),
            "{scope}"
        );
        assert!(
            f.store
                .image_by_repository(&outside)
                .await
                .unwrap()
                .is_none(),
            "{scope} created {outside}"
        );
    }
    // A scope that admits the new card lets the push create it, as it will be stored.
    let id = session(
        &f,
        &dev,
        json!({"properties": {"name": {"const": "acme/inside"}, "slug": {"pattern": "^image-"}, "markers": {"const": ["org-acme"]}}}),
    )
    .await;
    assert_eq!(
        f.granted("dev", Some(&id), "repository:acme/inside:pull,push")
            .await,
        actions("pull,push")
    );
    let created = f.image_of("acme/inside").await;
    assert_eq!(created.name.as_deref(), Some("acme/inside"));
}

#[tokio::test]
async fn names_without_a_namespace_are_neither_granted_nor_created() {
    let f = two_tenants().await;
    for user in ["dev", "olivia", "admin"] {
        assert_eq!(
            f.granted(user, None, "repository:acme:pull,push,delete")
                .await,
            actions(""),
            "{user}"
        );
    }
    assert!(f.store.image_by_repository("acme").await.unwrap().is_none());
    // One left by an older version is not reachable either, public or not.
    f.image("acme", &["org-acme"], true).await;
    assert_eq!(
        f.granted("olivia", None, "repository:acme:pull").await,
        actions("")
    );
    assert_eq!(
        f.granted("", None, "repository:acme:pull").await,
        actions("")
    );
    let verdicts = explained(&f, &Identity::new("admin", "cards"), "repository:acme:push").await;
    assert_eq!(verdicts, [("push".to_owned(), false)]);
}

#[tokio::test]
async fn one_token_request_creates_at_most_two_images() {
    let f = two_tenants().await;
    let chain = AuthzChain::new(vec![std::sync::Arc::new(CardAuthorizer::new(
        f.store.clone(),
    ))]);
    let asked: Vec<String> = (0..6)
        .map(|i| format!("repository:acme/burst-{i}:pull,push"))
        .collect();
    let scopes = parse_scopes(asked.iter().map(String::as_str)).unwrap();
    let grants = chain
        .authorize(&Identity::new("dev", "cards"), &scopes)
        .await
        .unwrap();
    let mut created = Vec::new();
    for i in 0..6 {
        if f.store
            .image_by_repository(&format!("acme/burst-{i}"))
            .await
            .unwrap()
            .is_some()
        {
            created.push(i);
        }
    }
    assert_eq!(created.len(), MAX_IMAGES_CREATED_PER_REQUEST);
    assert_eq!(created, [0, 1]);
    let granted: Vec<bool> = grants.iter().map(|g| !g.granted.is_empty()).collect();
    assert_eq!(granted, [true, true, false, false, false, false]);
    // A later request of its own creates the next one.
    assert_eq!(
        f.granted("dev", None, "repository:acme/burst-2:pull,push")
            .await,
        actions("pull,push")
    );
}

/// 63 backtracking patterns, seconds of CPU per card for a backtracking engine.
pub(crate) fn backtracking_schema() -> Value {
    let patterns: Vec<Value> = (0..63)
        .map(|i| json!({"pattern": format!(r"(a|a)*\1bx{i}")}))
        .collect();
    json!({"properties": {"data": {"properties": {"repository": {"anyOf": patterns}}}}})
}

#[tokio::test]
async fn schemas_in_the_store_beyond_the_bounds_admit_nothing_and_decide_in_microseconds() {
    let f = two_tenants().await;
    let acme = card(&f, "org-acme").await;
    let long: Vec<String> = (0..8)
        .map(|i| format!("acme/{}{i}", "a".repeat(200)))
        .collect();
    for repository in &long {
        f.image(repository, &["org-acme"], false).await;
    }
    // Written past the store's checks: a session scope, and a role's read schema.
    let dev = card(&f, "user-dev").await;
    let id = session(&f, &dev, json!(true)).await;
    let scoped = f.card_by_id(&id).await;
    f.write_unchecked(&scoped, "scope", &backtracking_schema())
        .await;
    f.role("role-slow", json!({"read": true})).await;
    let slow = card(&f, "role-slow").await;
    f.write_unchecked(&slow, "read", &backtracking_schema())
        .await;
    let reader = f.user("reader", &["slow"]).await;
    f.member(&acme, &reader, "viewer").await;

    let chain = AuthzChain::new(vec![std::sync::Arc::new(CardAuthorizer::new(
        f.store.clone(),
    ))]);
    let asked: Vec<String> = long
        .iter()
        .map(|r| format!("repository:{r}:pull,push"))
        .collect();
    let scopes = parse_scopes(asked.iter().map(String::as_str)).unwrap();
    for identity in [identity("dev", &id), Identity::new("reader", "cards")] {
        let started = Instant::now();
        let grants = chain.authorize(&identity, &scopes).await.unwrap();
        let took = started.elapsed();
        assert!(
            grants.iter().all(|g| g.granted.is_empty()),
            "{}: {grants:?}",
            identity.account
        );
        assert!(
            took < Duration::from_secs(1),
            "{}: {took:?}",
            identity.account
        );
    }
    // The same user without the broken session is decided as always.
    assert_eq!(
        f.granted("dev", None, &asked[0]).await,
        actions("pull,push")
    );
}
