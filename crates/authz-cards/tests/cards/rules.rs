//! The authorization rules, one by one.

use cardgate_authz::{Authorizer, Decision, Identity};
use cardgate_authz_cards::CardAuthorizer;
use cardgate_token::{Action, Scope};
use serde_json::json;

use cardgate_store::testing::Fixture;

use crate::{Decide, actions};

/// acme and globex, each with members of every role, and images.
pub(crate) async fn two_tenants() -> Fixture {
    let f = Fixture::new().await;
    let acme = f.org("acme").await;
    let globex = f.org("globex").await;
    for (name, org, role) in [
        ("olivia", &acme, "owner"),
        ("mark", &acme, "maintainer"),
        ("dev", &acme, "developer"),
        ("vic", &acme, "viewer"),
        ("gina", &globex, "owner"),
    ] {
        let user = f.user(name, &["user-default"]).await;
        f.member(org, &user, role).await;
    }
    f.image("acme/web", &["org-acme"], false).await;
    f.image("acme/team/api", &["org-acme"], false).await;
    f.image("globex/site", &["org-globex"], false).await;
    f.image("acme/public", &["org-acme"], true).await;
    f
}

#[tokio::test]
async fn membership_roles_grant_pull_push_delete_and_star_in_the_own_org() {
    let f = two_tenants().await;
    // (user, asking `*`, asking the three explicit actions): `*` comes back as `*` when all
    // three explicit actions are allowed.
    for (user, star, explicit) in [
        ("olivia", "*", "pull,push,delete"),
        ("mark", "*", "pull,push,delete"),
        ("dev", "pull,push", "pull,push"),
        ("vic", "pull", "pull"),
        ("gina", "", ""),
    ] {
        assert_eq!(
            f.granted(user, None, "repository:acme/web:*").await,
            actions(star),
            "{user}"
        );
        assert_eq!(
            f.granted(user, None, "repository:acme/team/api:pull,push,delete")
                .await,
            actions(explicit),
            "{user} on a nested name"
        );
    }
    // Only the owner is allowed `*` itself, which the registry reads as every action.
    let authz = CardAuthorizer::new(f.store.clone());
    let scope: Scope = "repository:acme/web:pull".parse().unwrap();
    for (user, holds_star) in [("olivia", true), ("mark", false)] {
        let decision = authz
            .authorize(&Identity::new(user, "cards"), &scope)
            .await
            .unwrap();
        let Decision::Allowed(set) = decision else {
            panic!("{user}: {decision:?}");
        };
        assert_eq!(set.contains(Action::All), holds_star, "{user}");
    }
}

#[tokio::test]
async fn tenants_never_reach_each_other() {
    let f = two_tenants().await;
    assert_eq!(
        f.granted("gina", None, "repository:acme/web:pull,push,delete")
            .await,
        actions("")
    );
    assert_eq!(
        f.granted("olivia", None, "repository:globex/site:pull,push,delete")
            .await,
        actions("")
    );
    // Nor can they create images in the other's namespace.
    assert_eq!(
        f.granted("gina", None, "repository:acme/new:pull,push")
            .await,
        actions("")
    );
    assert!(
        f.store
            .image_by_repository("acme/new")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn public_images_pull_for_everyone_including_the_guest() {
    let f = two_tenants().await;
    assert_eq!(
        f.granted("", None, "repository:acme/public:pull,push")
            .await,
        actions("pull")
    );
    assert_eq!(
        f.granted("gina", None, "repository:acme/public:pull,push")
            .await,
        actions("pull")
    );
    assert_eq!(
        f.granted("", None, "repository:acme/web:pull").await,
        actions("")
    );
}

#[tokio::test]
async fn a_first_push_creates_a_private_image_for_developers_only() {
    let f = two_tenants().await;
    assert_eq!(
        f.granted("vic", None, "repository:acme/fresh:pull,push")
            .await,
        actions("")
    );
    assert!(
        f.store
            .image_by_repository("acme/fresh")
            .await
            .unwrap()
            .is_none()
    );
    // Pull alone never creates.
    assert_eq!(
        f.granted("dev", None, "repository:acme/fresh:pull").await,
        actions("")
    );
    assert!(
        f.store
            .image_by_repository("acme/fresh")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        f.granted("dev", None, "repository:acme/fresh:pull,push")
            .await,
        actions("pull,push")
    );
    let image = f.image_of("acme/fresh").await;
    assert_eq!(image.markers, ["org-acme"]);
    assert_eq!(image.data["public"], false);
    // Now an ordinary private image of acme.
    assert_eq!(
        f.granted("vic", None, "repository:acme/fresh:pull").await,
        actions("pull")
    );
    assert_eq!(
        f.granted("gina", None, "repository:acme/fresh:pull").await,
        actions("")
    );
}

#[tokio::test]
async fn explicit_grants_give_exactly_their_actions_on_exactly_their_image() {
    let f = two_tenants().await;
    let robot = f.user("ci-robot", &["user-default"]).await;
    let web = f.image_of("acme/web").await;
    f.grant(&robot, &web, &["pull", "push"]).await;
    assert_eq!(
        f.granted("ci-robot", None, "repository:acme/web:*").await,
        actions("pull,push")
    );
    assert_eq!(
        f.granted("ci-robot", None, "repository:acme/team/api:pull,push")
            .await,
        actions("")
    );
    // An org-level grant reaches the org's members.
    let globex = f.card_by_slug("org-globex").await;
    f.grant(&globex, &web, &["pull"]).await;
    assert_eq!(
        f.granted("gina", None, "repository:acme/web:pull,push")
            .await,
        actions("pull")
    );
}

#[tokio::test]
async fn markers_and_role_schemas_limit_visibility() {
    let f = two_tenants().await;
    let acme = f.card_by_slug("org-acme").await;
    // Visible only to mark among acme's members.
    f.image("acme/secret", &["org-acme", "user-mark"], false)
        .await;
    assert_eq!(
        f.granted("mark", None, "repository:acme/secret:pull").await,
        actions("pull")
    );
    assert_eq!(
        f.granted("olivia", None, "repository:acme/secret:pull,push")
            .await,
        actions("")
    );
    // A user whose roles read nothing sees nothing, membership notwithstanding.
    let blind = f.user("blind", &[]).await;
    f.member(&acme, &blind, "owner").await;
    assert_eq!(
        f.granted("blind", None, "repository:acme/web:pull").await,
        actions("")
    );
    // A per-user role card narrows reading to one namespace.
    let narrow = f.user("narrow", &[]).await;
    f.member(&acme, &narrow, "developer").await;
    f.role("role-user-narrow", json!({"read": {"properties": {"data": {"properties": {"repository": {"pattern": "^acme/team/"}}}}}})).await;
    assert_eq!(
        f.granted("narrow", None, "repository:acme/team/api:pull,push")
            .await,
        actions("pull,push")
    );
    assert_eq!(
        f.granted("narrow", None, "repository:acme/web:pull").await,
        actions("")
    );
}

#[tokio::test]
async fn a_session_scope_narrows_what_the_session_reaches() {
    let f = two_tenants().await;
    let olivia = f.card_by_slug("user-olivia").await;
    let session = f.session(&olivia, time::Duration::hours(1), Some(json!({"properties": {"data": {"properties": {"repository": {"const": "acme/web"}}}}}))).await;
    let id = session.card.id.to_string();
    assert_eq!(
        f.granted("olivia", Some(&id), "repository:acme/web:pull,push")
            .await,
        actions("pull,push")
    );
    assert_eq!(
        f.granted("olivia", Some(&id), "repository:acme/team/api:pull")
            .await,
        actions("")
    );
    assert_eq!(
        f.granted("olivia", None, "repository:acme/team/api:pull")
            .await,
        actions("pull")
    );
}

#[tokio::test]
async fn the_catalog_is_for_admins_and_roles_that_grant_it() {
    let f = two_tenants().await;
    assert_eq!(
        f.granted("olivia", None, "registry:catalog:*").await,
        actions("")
    );
    assert_eq!(
        f.granted("admin", None, "registry:catalog:*").await,
        actions("*")
    );
    assert_eq!(
        f.granted("admin", None, "repository:globex/site:*").await,
        actions("*")
    );
    f.role("role-auditor", json!({"read": true, "catalog": true}))
        .await;
    f.user("audrey", &["auditor"]).await;
    assert_eq!(
        f.granted("audrey", None, "registry:catalog:*").await,
        actions("*")
    );
    assert_eq!(f.granted("", None, "registry:catalog:*").await, actions(""));
}

#[tokio::test]
async fn deactivated_images_orgs_and_users_grant_nothing() {
    let f = two_tenants().await;
    let web = f.image_of("acme/web").await;
    f.store.deactivate(&f.admin, web.id, None).await.unwrap();
    assert_eq!(
        f.granted("vic", None, "repository:acme/web:pull").await,
        actions("")
    );
    let acme = f.card_by_slug("org-acme").await;
    f.store.deactivate(&f.admin, acme.id, None).await.unwrap();
    assert_eq!(
        f.granted("mark", None, "repository:acme/team/api:pull")
            .await,
        actions("")
    );
    let gina = f.card_by_slug("user-gina").await;
    f.store.deactivate(&f.admin, gina.id, None).await.unwrap();
    assert_eq!(
        f.granted("gina", None, "repository:globex/site:pull").await,
        actions("")
    );
}

#[tokio::test]
async fn a_grant_stands_in_for_markers_but_never_for_role_schemas_or_session_scope() {
    let f = two_tenants().await;
    let web = f.image_of("acme/web").await;
    // Reads nothing: a grant gives nothing.
    let blind = f.user("blind-bot", &[]).await;
    f.grant(&blind, &web, &["pull", "push"]).await;
    assert_eq!(
        f.granted("blind-bot", None, "repository:acme/web:pull,push")
            .await,
        actions("")
    );
    // Reads everything but matches no marker: the grant gives exactly its actions.
    let bot = f.user("bot", &["user-default"]).await;
    f.grant(&bot, &web, &["pull", "push"]).await;
    assert_eq!(
        f.granted("bot", None, "repository:acme/web:pull,push,delete")
            .await,
        actions("pull,push")
    );
    // A session scoped away from the image takes the grant away too.
    let session = f.session(&bot, time::Duration::hours(1), Some(json!({"properties": {"data": {"properties": {"repository": {"const": "other/x"}}}}}))).await;
    let id = session.card.id.to_string();
    assert_eq!(
        f.granted("bot", Some(&id), "repository:acme/web:pull")
            .await,
        actions("")
    );
}

#[tokio::test]
async fn a_deactivated_image_is_not_recreated_by_a_first_push() {
    let f = two_tenants().await;
    let secret = f
        .image("acme/secret", &["org-acme", "user-mark"], false)
        .await;
    f.deactivate(&secret).await;
    assert_eq!(
        f.granted("dev", None, "repository:acme/secret:pull,push")
            .await,
        actions("")
    );
    assert!(
        f.store
            .image_by_repository("acme/secret")
            .await
            .unwrap()
            .is_none()
    );
    let authz = CardAuthorizer::new(f.store.clone());
    let scope: Scope = "repository:acme/secret:push".parse().unwrap();
    let explanation = authz
        .explain(&Identity::new("dev", "cards"), &scope)
        .await
        .unwrap()
        .unwrap();
    let verdicts = explanation.verdicts(&scope);
    assert!(!verdicts[0].granted);
    assert!(
        verdicts[0]
            .reasons
            .iter()
            .any(|r| r.contains("deactivated")),
        "{verdicts:?}"
    );
}

#[tokio::test]
async fn admins_get_repositories_and_the_catalog_and_nothing_else() {
    let f = two_tenants().await;
    assert_eq!(
        f.granted("admin", None, "repository:acme/web:*").await,
        actions("*")
    );
    assert_eq!(
        f.granted("admin", None, "registry:catalog:*").await,
        actions("*")
    );
    assert_eq!(
        f.granted("admin", None, "registry:other:*").await,
        actions("")
    );
    assert_eq!(
        f.granted("admin", None, "plugin:thing:pull").await,
        actions("")
    );
}

#[tokio::test]
async fn identities_from_other_authenticators_and_gone_sessions_are_not_decided() {
    let f = two_tenants().await;
    let authz = CardAuthorizer::new(f.store.clone());
    let scope: Scope = "repository:acme/web:pull".parse().unwrap();
    // A static user named `admin` is not user-admin.
    assert_eq!(
        authz
            .authorize(&Identity::new("admin", "static"), &scope)
            .await
            .unwrap(),
        Decision::NoMatch
    );
    let vic = f.card_by_slug("user-vic").await;
    let session = f.session(&vic, time::Duration::hours(1), None).await;
    let id = session.card.id.to_string();
    assert_eq!(
        f.granted("vic", Some(&id), "repository:acme/web:pull")
            .await,
        actions("pull")
    );
    f.deactivate(&session.card).await;
    assert_eq!(
        f.granted("vic", Some(&id), "repository:acme/web:pull")
            .await,
        actions("")
    );
}

#[tokio::test]
async fn user_names_starting_with_user_are_refused_so_no_account_can_impersonate_another() {
    let f = two_tenants().await;
    for slug in ["user-user-admin", "user-user-vic", "user-", "admin"] {
        let err = f
            .store
            .create(
                &f.admin,
                cardgate_store::NewCard::new(
                    cardgate_store::CardType::User,
                    slug,
                    json!({"roles": []}),
                ),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("slug"), "{slug}: {err}");
    }
    assert_eq!(
        cardgate_authz_cards::account_of("user-user-admin"),
        "user-admin"
    );
    assert_eq!(cardgate_authz_cards::account_of("user-vic"), "vic");
}
