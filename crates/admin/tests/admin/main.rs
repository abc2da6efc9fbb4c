//! Who may change what, against a real PostgreSQL. Every refusal is tested.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod audit;
mod finding;
mod listings;
mod sessions;

use std::time::Duration;

use cardgate_admin::{Admin, AdminError, Caller};
use cardgate_authz_cards::{CardAuthenticator, CardAuthorizer};
use cardgate_store::testing::Fixture;
use cardgate_store::{EventFilter, MembershipRole};

/// acme (owner olivia, maintainer mark), globex (owner gina), a plain user, a platform admin
/// by role.
struct World {
    f: Fixture,
    admin: Admin,
}

impl World {
    async fn new() -> Self {
        let f = Fixture::new().await;
        let acme = f.org("acme").await;
        let globex = f.org("globex").await;
        let olivia = f.user("olivia", &["user-default"]).await;
        let mark = f.user("mark", &["user-default"]).await;
        let gina = f.user("gina", &["user-default"]).await;
        f.user("plain", &["user-default"]).await;
        f.user("root", &["user-default", "platform-admin"]).await;
        f.member(&acme, &olivia, "owner").await;
        f.member(&acme, &mark, "maintainer").await;
        f.member(&globex, &gina, "owner").await;
        f.image("acme/web", &["org-acme"], false).await;
        let admin = Admin::new(
            f.store.clone(),
            CardAuthenticator::new(f.store.clone()).unwrap(),
            CardAuthorizer::new(f.store.clone()),
            Duration::from_secs(3600),
        );
        World { f, admin }
    }

    async fn caller(&self, name: &str) -> Caller {
        let card = self
            .f
            .store
            .card_by_slug(&format!("user-{name}"))
            .await
            .unwrap()
            .unwrap();
        self.admin.caller(card.id).await.unwrap().unwrap()
    }
}

fn forbidden<T: std::fmt::Debug>(result: Result<T, AdminError>) {
    match result {
        Err(AdminError::Forbidden(_)) => {}
        other => panic!("expected Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn platform_admins_by_slug_or_role_create_orgs_and_users_and_nobody_else_does() {
    let w = World::new().await;
    for admin in ["admin", "root"] {
        let caller = w.caller(admin).await;
        assert!(caller.platform_admin);
        w.admin
            .create_org(&caller, &format!("by-{admin}"))
            .await
            .unwrap();
        w.admin
            .create_user(
                &caller,
                &format!("member-by-{admin}"),
                Some(&["user-default".into()]),
            )
            .await
            .unwrap();
    }
    for name in ["olivia", "mark", "plain"] {
        let caller = w.caller(name).await;
        assert!(!caller.platform_admin);
        forbidden(w.admin.create_org(&caller, "mine").await);
        forbidden(
            w.admin
                .create_user(&caller, "new-admin", Some(&["platform-admin".into()]))
                .await,
        );
    }
    assert!(w.f.store.card_by_slug("org-mine").await.unwrap().is_none());
}

#[tokio::test]
async fn names_and_repositories_are_validated_naming_the_field() {
    let w = World::new().await;
    let admin = w.caller("admin").await;
    for bad in ["", "Acme", "a/b", "-x", "x-", "a b"] {
        match w.admin.create_org(&admin, bad).await {
            Err(AdminError::Invalid(message)) => assert!(message.starts_with("name:"), "{message}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    for bad in ["web", "Acme/web", "registry.io/acme/web", "acme//web"] {
        match w.admin.create_image(&admin, bad, false).await {
            Err(AdminError::Invalid(message)) => {
                assert!(message.starts_with("repository:"), "{message}")
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn scopes_and_read_schemas_beyond_the_bounds_are_refused_naming_the_field() {
    let w = World::new().await;
    let root = w.caller("root").await;
    let olivia = w.caller("olivia").await;
    let role = w
        .admin
        .create_role(&root, "readers", serde_json::json!(true), false)
        .await
        .unwrap();
    let many: Vec<serde_json::Value> = (0..=cardgate_store::MAX_POLICY_SCHEMA_PATTERNS)
        .map(|i| serde_json::json!({"pattern": format!("^acme/{i}")}))
        .collect();
    let costly = [
        serde_json::json!({"pattern": r"(a|a)*\1b"}),
        serde_json::json!({"anyOf": many}),
        serde_json::json!({"$defs": {"a": true}, "$ref": "#/$defs/a"}),
    ];
    let expiration = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    for schema in costly {
        let refused = [
            (
                "data/read",
                w.admin
                    .create_role(&root, "costly", schema.clone(), false)
                    .await
                    .map(|_| ()),
            ),
            (
                "data/read",
                w.admin
                    .update_role(&root, "readers", role.revision, schema.clone(), false)
                    .await
                    .map(|_| ()),
            ),
            (
                "data/scope",
                w.admin
                    .create_token(&olivia, "user-olivia", expiration, Some(schema.clone()))
                    .await
                    .map(|_| ()),
            ),
        ];
        for (field, result) in refused {
            match result {
                Err(AdminError::Invalid(message)) => {
                    assert!(message.contains(field), "{schema}: {message}")
                }
                other => panic!("{schema}: {other:?}"),
            }
        }
    }
    let olivia_card = w.f.card_by_slug("user-olivia").await;
    assert!(
        w.f.store
            .sessions_of(olivia_card.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!w.f.has_card("role-costly").await);
}

#[tokio::test]
async fn owners_manage_members_of_their_org_only() {
    let w = World::new().await;
    let olivia = w.caller("olivia").await;
    w.admin
        .add_member(&olivia, "org-acme", "user-plain", MembershipRole::Developer)
        .await
        .unwrap();
    assert_eq!(
        w.caller("plain").await.role_in("org-acme"),
        Some(MembershipRole::Developer)
    );
    w.admin
        .remove_member(&olivia, "org-acme", "user-plain")
        .await
        .unwrap();
    assert_eq!(w.caller("plain").await.role_in("org-acme"), None);
    assert!(matches!(
        w.admin
            .remove_member(&olivia, "org-acme", "user-plain")
            .await,
        Err(AdminError::NotFound(_))
    ));
    assert!(matches!(
        w.admin
            .add_member(&olivia, "org-acme", "user-nobody", MembershipRole::Viewer)
            .await,
        Err(AdminError::NotFound(_))
    ));

    // A maintainer, another org's owner and a plain user are refused.
    for name in ["mark", "gina", "plain"] {
        let caller = w.caller(name).await;
        forbidden(
            w.admin
                .add_member(&caller, "org-acme", "user-plain", MembershipRole::Viewer)
                .await,
        );
        forbidden(
            w.admin
                .remove_member(&caller, "org-acme", "user-mark")
                .await,
        );
    }
    assert_eq!(
        w.caller("mark").await.role_in("org-acme"),
        Some(MembershipRole::Maintainer)
    );
}

#[tokio::test]
async fn owners_create_robots_images_and_grants_inside_their_org_and_are_recorded_as_actors() {
    let w = World::new().await;
    let olivia = w.caller("olivia").await;
    let robot = w
        .admin
        .create_robot(&olivia, "org-acme", "ci-bot")
        .await
        .unwrap();
    assert_eq!(robot.markers, ["org-acme"]);
    assert_eq!(robot.data["robot"], true);
    let image = w
        .admin
        .create_image(&olivia, "acme/api", false)
        .await
        .unwrap();
    assert_eq!(image.markers, ["org-acme"]);
    w.admin
        .grant(
            &olivia,
            "user-ci-bot",
            "acme/web",
            &["pull".into(), "push".into()],
        )
        .await
        .unwrap();
    let web = w.f.image_of("acme/web").await;
    assert_eq!(
        w.f.store
            .granted_actions(web.id, &[robot.id])
            .await
            .unwrap(),
        ["pull", "push"]
    );
    w.admin
        .revoke(&olivia, "user-ci-bot", "acme/web")
        .await
        .unwrap();
    assert!(
        w.f.store
            .granted_actions(web.id, &[robot.id])
            .await
            .unwrap()
            .is_empty()
    );

    let events =
        w.f.store
            .events(&EventFilter {
                target: Some(web.id),
                ..EventFilter::default()
            })
            .await
            .unwrap();
    let by_olivia: Vec<&str> = events
        .iter()
        .filter(|e| e.data["actor"] == olivia.card.id.to_string())
        .map(|e| e.base_type())
        .collect();
    assert_eq!(by_olivia, ["unlink", "link"]);

    // Another org's owner, a maintainer and a plain user are refused all of it.
    for name in ["gina", "mark", "plain"] {
        let caller = w.caller(name).await;
        forbidden(w.admin.create_robot(&caller, "org-acme", "evil-bot").await);
        forbidden(w.admin.create_image(&caller, "acme/evil", true).await);
        forbidden(
            w.admin
                .grant(
                    &caller,
                    &caller.card.slug.clone(),
                    "acme/web",
                    &["push".into()],
                )
                .await,
        );
        forbidden(w.admin.revoke(&caller, "user-ci-bot", "acme/web").await);
    }
    assert!(!w.f.has_image("acme/evil").await);
    assert!(!w.f.has_card("user-evil-bot").await);
}

#[tokio::test]
async fn public_flags_need_the_current_revision_and_an_owner() {
    let w = World::new().await;
    let olivia = w.caller("olivia").await;
    let web = w.f.image_of("acme/web").await;
    let opened = w
        .admin
        .set_public(&olivia, "acme/web", web.revision, true)
        .await
        .unwrap();
    assert_eq!(opened.data["public"], true);
    assert!(matches!(
        w.admin
            .set_public(&olivia, "acme/web", web.revision, false)
            .await,
        Err(AdminError::Stale { .. })
    ));
    forbidden(
        w.admin
            .set_public(&w.caller("gina").await, "acme/web", opened.revision, false)
            .await,
    );
    forbidden(
        w.admin
            .deactivate_image(&w.caller("mark").await, "acme/web", opened.revision)
            .await,
    );
    assert!(matches!(
        w.admin.set_public(&olivia, "acme/nothing", 1, true).await,
        Err(AdminError::NotFound(_))
    ));
    w.admin
        .deactivate_image(&olivia, "acme/web", opened.revision)
        .await
        .unwrap();
    assert!(!w.f.has_image("acme/web").await);
}

#[tokio::test]
async fn passwords_and_deactivation_follow_who_manages_whom() {
    let w = World::new().await;
    let olivia = w.caller("olivia").await;
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g";
    // Users set their own password; nobody else but admins does.
    w.admin
        .set_password(&w.caller("plain").await, "user-plain", hash)
        .await
        .unwrap();
    forbidden(w.admin.set_password(&olivia, "user-mark", hash).await);
    forbidden(
        w.admin
            .set_password(&w.caller("mark").await, "user-plain", hash)
            .await,
    );
    w.admin
        .set_password(&w.caller("admin").await, "user-mark", hash)
        .await
        .unwrap();

    // Owners manage their org's robots, not other users and not other orgs' robots.
    w.admin
        .create_robot(&olivia, "org-acme", "ci-bot")
        .await
        .unwrap();
    w.admin
        .set_password(&olivia, "user-ci-bot", hash)
        .await
        .unwrap();
    forbidden(
        w.admin
            .set_password(&w.caller("gina").await, "user-ci-bot", hash)
            .await,
    );
    forbidden(
        w.admin
            .deactivate_user(&w.caller("gina").await, "user-ci-bot")
            .await,
    );
    forbidden(w.admin.deactivate_user(&olivia, "user-mark").await);
    forbidden(w.admin.deactivate_user(&olivia, "user-olivia").await);
    w.admin
        .deactivate_user(&olivia, "user-ci-bot")
        .await
        .unwrap();
    w.admin
        .deactivate_user(&w.caller("admin").await, "user-plain")
        .await
        .unwrap();

    // A deactivated user is no caller at all.
    let plain = w.f.card_by_slug("user-mark").await;
    w.admin
        .deactivate_user(&w.caller("admin").await, "user-mark")
        .await
        .unwrap();
    assert!(w.admin.caller(plain.id).await.unwrap().is_none());
}

#[tokio::test]
async fn built_in_actors_are_never_members_or_grantees_and_names_cannot_impersonate() {
    let w = World::new().await;
    let olivia = w.caller("olivia").await;
    for holder in ["user-guest", "user-admin"] {
        assert!(matches!(
            w.admin
                .grant(&olivia, holder, "acme/web", &["pull".into()])
                .await,
            Err(AdminError::Invalid(_))
        ));
        assert!(matches!(
            w.admin
                .add_member(&olivia, "org-acme", holder, MembershipRole::Viewer)
                .await,
            Err(AdminError::Invalid(_))
        ));
    }
    for name in ["user-admin", "user-olivia", "org-acme"] {
        assert!(matches!(
            w.admin.create_robot(&olivia, "org-acme", name).await,
            Err(AdminError::Invalid(_))
        ));
    }
}

/// The message of a refusal of kind `expected` (`Forbidden`, `Conflict`...).
fn refusal<T: std::fmt::Debug>(result: Result<T, AdminError>, expected: &str) -> String {
    match result {
        Err(AdminError::Forbidden(message)) if expected == "Forbidden" => message,
        Err(AdminError::Conflict(message)) if expected == "Conflict" => message,
        other => panic!("expected {expected}, got {other:?}"),
    }
}

#[tokio::test]
async fn built_in_cards_are_never_deactivated_or_changed_and_user_admins_password_is_the_hosts() {
    let w = World::new().await;
    let built_in = [
        "user-admin",
        "user-guest",
        "role-user-default",
        "role-user-guest",
    ];
    let before: Vec<_> = {
        let mut cards = Vec::new();
        for slug in built_in {
            cards.push(w.f.card_by_slug(slug).await);
        }
        cards
    };
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    // user-admin itself and a platform admin by role.
    for name in ["admin", "root"] {
        let caller = w.caller(name).await;
        for user in ["user-admin", "user-guest"] {
            let message = refusal(w.admin.deactivate_user(&caller, user).await, "Forbidden");
            assert!(
                message.contains(user) && message.contains("built in"),
                "{message}"
            );
            let message = refusal(
                w.admin
                    .set_roles(&caller, user, 1, &["platform-admin".into()])
                    .await,
                "Forbidden",
            );
            assert!(message.contains("built in"), "{message}");
        }
        let message = refusal(
            w.admin.set_password(&caller, "user-admin", hash).await,
            "Forbidden",
        );
        assert!(message.contains("cardgate set-password"), "{message}");
        refusal(
            w.admin.set_password(&caller, "user-guest", hash).await,
            "Forbidden",
        );
        for role in ["user-default", "user-guest"] {
            let card =
                w.f.store
                    .card_by_slug(&format!("role-{role}"))
                    .await
                    .unwrap()
                    .unwrap();
            let message = refusal(
                w.admin.deactivate_role(&caller, role, card.revision).await,
                "Forbidden",
            );
            assert!(message.contains("built in"), "{message}");
            refusal(
                w.admin
                    .update_role(&caller, role, card.revision, serde_json::json!(true), true)
                    .await,
                "Forbidden",
            );
        }
    }
    // Nothing changed: same cards, same revisions, no password for user-admin.
    for card in before {
        assert_eq!(
            w.f.store.card_by_slug(&card.slug).await.unwrap(),
            Some(card.clone()),
            "{}",
            card.slug
        );
    }
    assert_eq!(w.f.store.password_hash(w.f.admin.id).await.unwrap(), None);
    // Other users' passwords are still the platform admins' to set.
    w.admin
        .set_password(&w.caller("admin").await, "user-plain", hash)
        .await
        .unwrap();
}

#[tokio::test]
async fn user_robot_and_org_names_never_collide_nor_take_reserved_names() {
    let w = World::new().await;
    let olivia = w.caller("olivia").await;
    let admin = w.caller("admin").await;
    // A robot named like another org would be that org's owner to a `${account}/**` rule.
    for name in ["globex", "acme"] {
        let message = refusal(
            w.admin.create_robot(&olivia, "org-acme", name).await,
            "Conflict",
        );
        assert!(
            message.starts_with("name:") && message.contains(&format!("org-{name}")),
            "{message}"
        );
    }
    let message = refusal(
        w.admin.create_user(&admin, "globex", Some(&[])).await,
        "Conflict",
    );
    assert!(message.starts_with("name:"), "{message}");
    // Nor an org named like a user, deactivated ones included.
    let message = refusal(w.admin.create_org(&admin, "olivia").await, "Conflict");
    assert!(
        message.starts_with("name:") && message.contains("user-olivia"),
        "{message}"
    );
    w.admin.deactivate_user(&admin, "user-plain").await.unwrap();
    refusal(w.admin.create_org(&admin, "plain").await, "Conflict");
    // The built-in users' names are reserved for every kind.
    for name in ["admin", "guest", "anonymous"] {
        let message = refusal(w.admin.create_org(&admin, name).await, "Conflict");
        assert!(
            message.starts_with("name:") && message.contains("reserved"),
            "{message}"
        );
        refusal(
            w.admin.create_robot(&olivia, "org-acme", name).await,
            "Conflict",
        );
        refusal(
            w.admin.create_user(&admin, name, Some(&[])).await,
            "Conflict",
        );
    }
    for slug in [
        "user-globex",
        "user-acme",
        "org-olivia",
        "org-plain",
        "org-admin",
        "org-guest",
        "user-anonymous",
    ] {
        assert!(
            w.f.store.card_by_slug(slug).await.unwrap().is_none(),
            "{slug}"
        );
    }
    // Fresh names are still free to take.
    w.admin
        .create_robot(&olivia, "org-acme", "acme-ci")
        .await
        .unwrap();
    w.admin.create_org(&admin, "initech").await.unwrap();
}
