//! A real `docker-registry` notifying cardgate: pushes, a pull and a delete by skopeo show in
//! the admin API (tags, digests, sizes, pushers; the pull with its puller), a forged
//! notification records nothing, and an org over its quota is refused the next push.

use std::time::{Duration, Instant};

use cardgate_store::testing::{Fixture, fresh_database_url};
use cardgate_store::{Card, PoolSettings, Store};
use serde_json::{Value, json};

use crate::admin_cli::{admin as cli, admin_ok as cli_ok};
use crate::registry::{Stack, inspect, push, sha256_hex, write_oci_image};

const SECRET: &str = "e2e-registry-events-secret";

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

/// The admin API of `stack` as `user-admin`.
struct AdminApi {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl AdminApi {
    async fn log_in(stack: &Stack) -> AdminApi {
        let client = reqwest::Client::new();
        let base = format!("{}/v1/admin", stack.cardgate_url);
        let login: Value = client
            .post(format!("{base}/login"))
            .json(&json!({"username": "admin", "password": "admin-e2e-password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().unwrap().to_owned();
        AdminApi {
            base,
            token,
            client,
        }
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Polls `path` until `done` holds for its answer; the registry delivers asynchronously.
    async fn until(&self, stack: &Stack, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let started = Instant::now();
        loop {
            let answer = self.get(path).await;
            if done(&answer) {
                return answer;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{path}: still {answer}\n{}",
                stack.logs()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The digest of the manifest `image` resolves to, as skopeo reads it.
async fn manifest_digest(stack: &Stack, image: &str) -> (String, usize) {
    let raw = stack
        .succeeds(&inspect(&creds("alice"), image))
        .await
        .stdout;
    (format!("sha256:{}", sha256_hex(&raw)), raw.len())
}

#[tokio::test]
async fn the_registry_reports_pushes_pulls_and_deletes_and_a_quota_refuses_the_next_push() {
    let url = fresh_database_url().await;
    let f = Fixture::on(Store::connect_lazy(&url, &PoolSettings::default()).unwrap()).await;
    let hash = cardgate_authz_static::hash_password(&"admin-e2e-password".into()).unwrap();
    f.store
        .set_password(&f.admin, &f.admin, &hash)
        .await
        .unwrap();
    let alice = user(&f, "alice").await;
    let bob = user(&f, "bob").await;
    let acme = f.org("acme").await;
    f.member(&acme, &alice, "owner").await;
    f.member(&acme, &bob, "viewer").await;

    let stack = &Stack::start(&[
        ("CARDGATE__DATABASE__URL", url.as_str()),
        ("CARDGATE__REGISTRY__EVENTS_SECRET", SECRET),
    ])
    .await;
    let admin = AdminApi::log_in(stack).await;
    let source = |tag: &str, content: &str| {
        let dir = stack.path(&format!("image-{tag}"));
        write_oci_image(&dir, tag, content);
        format!("oci:{}:{tag}", dir.display())
    };

    // alice pushes two tags (the first push makes the image), bob pulls one, alice deletes
    // the other.
    let (one, two) = (source("v1", "first\n"), source("v2", "second\n"));
    stack
        .succeeds(&push(&creds("alice"), &one, &stack.image("acme/web:v1")))
        .await;
    stack
        .succeeds(&push(&creds("alice"), &two, &stack.image("acme/web:v2")))
        .await;
    let (v1_digest, v1_size) = manifest_digest(stack, &stack.image("acme/web:v1")).await;
    let (v2_digest, _) = manifest_digest(stack, &stack.image("acme/web:v2")).await;
    assert_ne!(v1_digest, v2_digest);
    let contents = admin
        .until(stack, "/images/contents?repository=acme/web", |c| {
            c["tags"].as_array().is_some_and(|t| t.len() == 2)
        })
        .await;
    assert_eq!(contents["reserved"], false, "{contents}");
    let v1 = &contents["tags"][0];
    assert_eq!(v1["tag"], "v1");
    assert_eq!(v1["digest"], v1_digest.as_str());
    assert_eq!(v1["size"], v1_size);
    assert_eq!(v1["pushed_by"], "alice");
    assert_eq!(contents["tags"][1]["digest"], v2_digest.as_str());

    stack
        .succeeds(&inspect(&creds("bob"), &stack.image("acme/web:v1")))
        .await;
    stack
        .succeeds(&[
            "delete",
            "--tls-verify=false",
            "--creds",
            &creds("alice"),
            &stack.image("acme/web:v2"),
        ])
        .await;
    let contents = admin
        .until(stack, "/images/contents?repository=acme/web", |c| {
            c["tags"].as_array().is_some_and(|t| t.len() == 1)
        })
        .await;
    assert_eq!(contents["tags"][0]["tag"], "v1", "{contents}");
    let activity = admin
        .until(
            stack,
            "/registry/activity?repository=acme/web&actor=bob",
            |a| a["activity"].as_array().is_some_and(|l| !l.is_empty()),
        )
        .await;
    let pulled = &activity["activity"][0];
    assert_eq!(
        (pulled["action"].clone(), pulled["reference"].clone()),
        (json!("pull"), json!("v1"))
    );

    // A forged notification, without the secret, records nothing.
    let forged = json!({"events": [{
        "id": "forged-1", "action": "push", "timestamp": "2026-11-30T10:00:00Z",
        "target": {"repository": "acme/web", "tag": "forged", "size": 1,
                   "mediaType": "application/vnd.oci.image.manifest.v1+json",
                   "digest": format!("sha256:{}", "f".repeat(64))},
        "actor": {"name": "mallory"},
    }]});
    let response = reqwest::Client::new()
        .post(format!("{}/v1/registry/events", stack.cardgate_url))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    let contents = admin.get("/images/contents?repository=acme/web").await;
    assert_eq!(contents["tags"].as_array().unwrap().len(), 1, "{contents}");
    let mallory = admin.get("/registry/activity?actor=mallory").await;
    assert_eq!(mallory["activity"], json!([]));

    // The same through `cardgate admin`.
    let token_file = stack.path("cli.token");
    let login = cli(
        stack,
        &["login", "admin", "--save", token_file.to_str().unwrap()],
        "admin-e2e-password\n",
    )
    .await;
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    let pulls = cli_ok(stack, &["registry", "activity", "--actor", "bob"]).await;
    assert!(
        pulls.contains("pull") && pulls.contains("acme/web"),
        "{pulls}"
    );
    let tags = cli_ok(stack, &["registry", "tags", "acme/web"]).await;
    assert!(
        tags.contains(&v1_digest) && tags.contains("alice"),
        "{tags}"
    );

    // Over quota: the next push is refused, pulls still work.
    let set = cli_ok(stack, &["quota", "set", "acme", "1"]).await;
    assert!(set.contains("over quota"), "{set}");
    let three = source("v3", "third\n");
    let refused = stack
        .fails(&push(&creds("alice"), &three, &stack.image("acme/web:v3")))
        .await;
    eprintln!("skopeo over quota says: {refused}");
    assert!(
        refused.contains("denied") || refused.contains("unauthorized"),
        "{refused}"
    );
    stack
        .succeeds(&inspect(&creds("bob"), &stack.image("acme/web:v1")))
        .await;
    let unset = cli_ok(stack, &["quota", "set", "acme", "none"]).await;
    assert!(unset.contains("no quota"), "{unset}");
    stack
        .succeeds(&push(&creds("alice"), &three, &stack.image("acme/web:v3")))
        .await;
}
