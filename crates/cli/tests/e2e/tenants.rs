//! Two tenants on one registry, decided by the card store: each pushes and pulls its own
//! images and reaches nothing of the other's.

use cardgate_store::testing::{Fixture, fresh_database_url};
use cardgate_store::{Card, PoolSettings, Store};
use secrecy::ExposeSecret;

use crate::registry::inspect;
use crate::registry::{Stack, write_oci_image};

/// A user with the password `<name>-e2e-password`.
async fn user(f: &Fixture, name: &str) -> Card {
    let user = f.user(name, &["user-default"]).await;
    let hash =
        cardgate_authz_static::hash_password(&format!("{name}-e2e-password").into()).unwrap();
    f.store.set_password(&f.admin, &user, &hash).await.unwrap();
    user
}

fn creds(name: &str) -> String {
    format!("{name}:{name}-e2e-password")
}

#[tokio::test]
async fn two_tenants_each_reach_only_their_own_images() {
    let url = fresh_database_url().await;
    let f = Fixture::on(Store::connect_lazy(&url, &PoolSettings::default()).unwrap()).await;
    let alice = user(&f, "alice").await;
    let vic = user(&f, "vic").await;
    let gina = user(&f, "gina").await;
    let robot = user(&f, "ci-robot").await;
    let acme = f.org("acme").await;
    f.member(&acme, &alice, "owner").await;
    f.member(&acme, &vic, "viewer").await;
    let globex = f.org("globex").await;
    f.member(&globex, &gina, "owner").await;
    let web = f.image("acme/web", &["org-acme"], false).await;
    f.image("acme/base", &["org-acme"], true).await;
    f.grant(&robot, &web, &["pull", "push"]).await;

    let stack = &Stack::start(&[("CARDGATE__DATABASE__URL", url.as_str())]).await;
    let source_dir = stack.path("image");
    write_oci_image(&source_dir, "v1", "two tenants\n");
    let source = format!("oci:{}:v1", source_dir.display());
    let push = |who: &str, repository: &str| {
        let (creds, dest) = (creds(who), stack.image(repository));
        let source = source.clone();
        async move {
            let args = crate::registry::push(&creds, &source, &dest);
            stack.skopeo_ok(&args).await
        }
    };
    let pull = |who: &str, repository: &str| {
        let (creds, image) = (creds(who), stack.image(repository));
        async move { stack.skopeo_ok(&inspect(&creds, &image)).await }
    };
    let delete = |who: &str, repository: &str| {
        let (creds, image) = (creds(who), stack.image(repository));
        async move {
            stack
                .skopeo_ok(&["delete", "--tls-verify=false", "--creds", &creds, &image])
                .await
        }
    };

    // Each tenant pushes and pulls its own images; a first push creates the image card.
    assert!(push("alice", "acme/web:v1").await);
    assert!(push("alice", "acme/app:v1").await);
    assert!(f.has_image("acme/app").await);
    assert!(push("gina", "globex/site:v1").await);
    assert!(pull("alice", "acme/app:v1").await);
    assert!(pull("gina", "globex/site:v1").await);

    // Neither can pull, push or delete the other's.
    assert!(!pull("gina", "acme/web:v1").await);
    assert!(!push("gina", "acme/web:v2").await);
    assert!(!push("gina", "acme/intruder:v1").await);
    assert!(!f.has_image("acme/intruder").await);
    assert!(!delete("gina", "acme/web:v1").await);
    assert!(!pull("alice", "globex/site:v1").await);
    assert!(!push("alice", "globex/site:v2").await);
    assert!(!delete("alice", "globex/site:v1").await);

    // A viewer pulls but cannot push.
    assert!(pull("vic", "acme/web:v1").await);
    assert!(!push("vic", "acme/web:v3").await);

    // The robot's grant covers exactly acme/web.
    assert!(push("ci-robot", "acme/web:v4").await);
    assert!(!push("ci-robot", "acme/app:v4").await);
    assert!(!pull("ci-robot", "acme/app:v1").await);

    // A public image pulls anonymously; a private one does not.
    assert!(push("alice", "acme/base:v1").await);
    let anonymous = |repository: &str| {
        let image = stack.image(repository);
        async move {
            stack
                .skopeo_ok(&[
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    "--no-creds",
                    &image,
                ])
                .await
        }
    };
    assert!(anonymous("acme/base:v1").await);
    assert!(!anonymous("acme/web:v1").await);

    // Session tokens: a live one works; expired or deactivated ones are refused with 401.
    let live = f.session(&alice, time::Duration::hours(1), None).await;
    let expired = f.session(&alice, -time::Duration::minutes(1), None).await;
    let with_token = |token: String| {
        let image = stack.image("acme/web:v1");
        async move {
            let creds = format!("alice:{token}");
            stack.fails_or_output(&inspect(&creds, &image)).await
        }
    };
    assert_eq!(
        with_token(live.token.expose_secret().to_owned()).await,
        None
    );
    let refused = with_token(expired.token.expose_secret().to_owned())
        .await
        .unwrap();
    assert!(refused.contains("invalid credentials"), "{refused}");
    f.store
        .deactivate(&f.admin, live.card.id, None)
        .await
        .unwrap();
    let refused = with_token(live.token.expose_secret().to_owned())
        .await
        .unwrap();
    assert!(refused.contains("invalid credentials"), "{refused}");

    // The owner deletes (skopeo asks `*`).
    assert!(delete("alice", "acme/app:v1").await);
    assert!(!pull("alice", "acme/app:v1").await);
}
