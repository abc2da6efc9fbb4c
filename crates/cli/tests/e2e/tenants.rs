//! Two tenants on one registry, decided by the card store: each pushes and pulls its own
//! images and reaches nothing of the other's.

use cardgate_store::testing::fresh_database_url;
use cardgate_store::{Card, CardType, LinkVerb, NewCard, PoolSettings, Store};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::registry::{Stack, write_oci_image};

struct Tenants {
    store: Store,
}

impl Tenants {
    async fn user(&self, name: &str, robot: bool) -> Card {
        let user = self
            .store
            .create_card(NewCard::new(
                CardType::User,
                format!("user-{name}"),
                json!({"roles": ["user-default"], "robot": robot}),
            ))
            .await
            .unwrap();
        let hash =
            cardgate_authz_static::hash_password(&format!("{name}-e2e-password").into()).unwrap();
        self.store.set_password(&user, &hash).await.unwrap();
        user
    }

    async fn org(&self, name: &str, members: &[(&Card, &str)]) -> Card {
        let org = self
            .store
            .create_card(NewCard::new(
                CardType::Org,
                format!("org-{name}"),
                json!({}),
            ))
            .await
            .unwrap();
        for (user, role) in members {
            self.store
                .link(&org, LinkVerb::HasMember, user, json!({"role": role}))
                .await
                .unwrap();
        }
        org
    }

    async fn image(&self, repository: &str, public: bool) -> Card {
        let org = format!("org-{}", repository.split('/').next().unwrap());
        self.store
            .create_card(
                NewCard::new(
                    CardType::Image,
                    format!("image-{}", repository.replace('/', "-")),
                    json!({"repository": repository, "public": public}),
                )
                .with_markers(vec![org]),
            )
            .await
            .unwrap()
    }
}

fn creds(name: &str) -> String {
    format!("{name}:{name}-e2e-password")
}

#[tokio::test]
async fn two_tenants_each_reach_only_their_own_images() {
    let url = fresh_database_url().await;
    let t = Tenants {
        store: Store::connect_lazy(&url, &PoolSettings::default()).unwrap(),
    };
    let alice = t.user("alice", false).await;
    let vic = t.user("vic", false).await;
    let gina = t.user("gina", false).await;
    let robot = t.user("ci-robot", true).await;
    t.org("acme", &[(&alice, "owner"), (&vic, "viewer")]).await;
    t.org("globex", &[(&gina, "owner")]).await;
    let web = t.image("acme/web", false).await;
    t.image("acme/base", true).await;
    t.store
        .link(
            &robot,
            LinkVerb::HasAccessTo,
            &web,
            json!({"actions": ["pull", "push"]}),
        )
        .await
        .unwrap();

    let stack = &Stack::start(&[("CARDGATE__DATABASE__URL", url.as_str())]).await;
    let source_dir = stack.path("image");
    write_oci_image(&source_dir, "v1", "two tenants\n");
    let source = format!("oci:{}:v1", source_dir.display());
    let push = |who: &str, repository: &str| {
        let (creds, dest) = (creds(who), stack.image(repository));
        let source = source.clone();
        async move {
            let args = [
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                &creds,
                &source,
                &dest,
            ];
            stack.skopeo_ok(&args).await
        }
    };
    let pull = |who: &str, repository: &str| {
        let (creds, image) = (creds(who), stack.image(repository));
        async move {
            stack
                .skopeo_ok(&[
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    "--creds",
                    &creds,
                    &image,
                ])
                .await
        }
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
    assert!(
        t.store
            .image_by_repository("acme/app")
            .await
            .unwrap()
            .is_some()
    );
    assert!(push("gina", "globex/site:v1").await);
    assert!(pull("alice", "acme/app:v1").await);
    assert!(pull("gina", "globex/site:v1").await);

    // Neither can pull, push or delete the other's.
    assert!(!pull("gina", "acme/web:v1").await);
    assert!(!push("gina", "acme/web:v2").await);
    assert!(!push("gina", "acme/intruder:v1").await);
    assert!(
        t.store
            .image_by_repository("acme/intruder")
            .await
            .unwrap()
            .is_none()
    );
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
    let now = time::OffsetDateTime::now_utc();
    let live = t
        .store
        .create_session(&alice, now + time::Duration::hours(1), None)
        .await
        .unwrap();
    let expired = t
        .store
        .create_session(&alice, now - time::Duration::minutes(1), None)
        .await
        .unwrap();
    let with_token = |token: String| {
        let image = stack.image("acme/web:v1");
        async move {
            let creds = format!("alice:{token}");
            stack
                .fails_or_output(&[
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    "--creds",
                    &creds,
                    &image,
                ])
                .await
        }
    };
    assert_eq!(
        with_token(live.token.expose_secret().to_owned()).await,
        None
    );
    let refused = with_token(expired.token.expose_secret().to_owned())
        .await
        .unwrap();
    assert!(
        refused.contains("401") || refused.to_lowercase().contains("unauthorized"),
        "{refused}"
    );
    t.store.set_active(live.card.id, false).await.unwrap();
    let refused = with_token(live.token.expose_secret().to_owned())
        .await
        .unwrap();
    assert!(
        refused.contains("401") || refused.to_lowercase().contains("unauthorized"),
        "{refused}"
    );

    // The owner deletes (skopeo asks `*`).
    assert!(delete("alice", "acme/app:v1").await);
    assert!(!pull("alice", "acme/app:v1").await);
}
