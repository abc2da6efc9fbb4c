//! `POST /v1/registry/events`: the registry's notifications, behind their secret; and org
//! quotas, which refuse push (explicit grantees included) once crossed, evicting the cached
//! decisions they alter.

use std::time::{Duration, Instant};

use cardgate_admin::api::MAX_QUOTA_BYTES;
use cardgate_server::Application;
use cardgate_store::{ActivityFilter, RegistryAction, RegistryEvent, RegistryTarget};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::admin::Api;
use crate::cards::{access, seeded, token};
use crate::{Sent, argon2id, bad_request_saying, cards_settings, error_body, metric_reaches};

const SECRET: &str = "registry-events-secret-for-tests";

async fn spawn_with_secret(url: &str, secret: Option<&str>) -> String {
    let mut env = vec![];
    if let Some(secret) = secret {
        env.push(("CARDGATE__REGISTRY__EVENTS_SECRET", secret));
    }
    let settings = cards_settings(url, &env);
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

async fn post(base: &str, authorization: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{base}/v1/registry/events"))
        .header(
            "Content-Type",
            "application/vnd.docker.distribution.events.v1+json",
        )
        .body(serde_json::to_vec(body).unwrap());
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    request.sent().await
}

fn bearer() -> String {
    format!("Bearer {SECRET}")
}

/// A manifest event as distribution 2.8 sends it.
fn manifest_event(id: &str, action: &str, repository: &str, tag: &str, actor: &str) -> Value {
    let digest = format!("sha256:{}", "a".repeat(64));
    json!({
        "id": id,
        "timestamp": "2026-11-30T10:00:00.000000001Z",
        "action": action,
        "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 528, "digest": digest, "length": 528,
            "repository": repository, "tag": tag,
            "url": format!("http://registry/v2/{repository}/manifests/{digest}"),
        },
        "request": {"id": "r", "addr": "10.1.2.3:4567", "host": "registry", "method": "PUT",
                    "useragent": "skopeo"},
        "actor": {"name": actor},
        "source": {"addr": "registry:5000", "instanceID": "i"},
    })
}

fn blob_event(id: &str, repository: &str, size: u64) -> Value {
    let digest = format!("sha256:{}", "b".repeat(64));
    json!({
        "id": id, "timestamp": "2026-11-30T10:00:00Z", "action": "push",
        "target": {"mediaType": "application/octet-stream", "size": size, "digest": digest,
                   "repository": repository,
                   "url": format!("http://registry/v2/{repository}/blobs/{digest}")},
        "actor": {"name": "alice"},
    })
}

#[tokio::test]
async fn notifications_need_the_secret_are_applied_once_and_create_nothing() {
    let (url, store, f) = seeded(None).await;
    let base = spawn_with_secret(&url, Some(SECRET)).await;
    let envelope = json!({"events": [
        manifest_event("e1", "push", "acme/web", "v1", "alice"),
        manifest_event("e2", "pull", "acme/web", "v1", "bob"),
    ]});

    // Without the secret, or with another, nothing is recorded.
    for authorization in [None, Some("Bearer wrong-secret-wrong-secret"), Some(SECRET)] {
        let response = post(&base, authorization, &envelope).await;
        error_body(response, StatusCode::UNAUTHORIZED).await;
    }
    let everything = ActivityFilter {
        limit: 100,
        ..ActivityFilter::default()
    };
    assert!(
        store
            .registry_activity(&everything)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .image_contents("acme/web")
            .await
            .unwrap()
            .tags
            .is_empty()
    );

    // A malformed envelope is refused whole, naming the field.
    let mut broken = envelope.clone();
    broken["events"][1]["target"]["digest"] = json!("md5");
    bad_request_saying(
        post(&base, Some(&bearer()), &broken).await,
        "events[1].target.digest",
    )
    .await;
    bad_request_saying(
        post(&base, Some(&bearer()), &json!({"event": []})).await,
        "events: missing",
    )
    .await;
    assert!(
        store
            .registry_activity(&everything)
            .await
            .unwrap()
            .is_empty()
    );

    // Applied once, however often it is delivered.
    let response = post(&base, Some(&bearer()), &envelope).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["applied"], 2, "{body}");
    let body: Value = post(&base, Some(&bearer()), &envelope)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (body["applied"].clone(), body["duplicates"].clone()),
        (json!(0), json!(2))
    );
    let activity = store.registry_activity(&everything).await.unwrap();
    let lines: Vec<(&str, &str)> = activity
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str()))
        .collect();
    assert_eq!(lines, [("pull", "bob"), ("push", "alice")]);
    let tags = store.image_contents("acme/web").await.unwrap().tags;
    assert_eq!(
        (tags[0].tag.as_str(), tags[0].pushed_by.as_str()),
        ("v1", "alice")
    );

    // A repository without an image: audited, never created.
    let ghost = json!({"events": [manifest_event("g", "push", "acme/ghost", "v1", "alice")]});
    let body: Value = post(&base, Some(&bearer()), &ghost)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["unknown"], 1);
    assert!(!f.has_image("acme/ghost").await);

    // A body over the bound is refused before it is parsed.
    let huge = json!({"events": [], "padding": "x".repeat(1_100_000)});
    let response = post(&base, Some(&bearer()), &huge).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn without_a_secret_the_endpoint_is_not_served() {
    let (url, _store, _f) = seeded(None).await;
    let base = spawn_with_secret(&url, None).await;
    let envelope = json!({"events": [manifest_event("e1", "push", "acme/web", "v1", "alice")]});
    let response = post(&base, Some(&bearer()), &envelope).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// Polls until `user`'s actions on `acme/web` are `expected`, within a generous deadline.
async fn settles(base: &str, user: (&str, &str), expected: Value) {
    let started = Instant::now();
    loop {
        let response = token(base, Some(user), "repository:acme/web:pull,push").await;
        let actions = access(&response.json().await.unwrap())[0]["actions"].clone();
        if actions == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{user:?}: still {actions} , expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_org_over_quota_is_refused_push_even_to_grantees_of_other_orgs_and_the_cached_decisions_go()
 {
    let (url, store, f) = seeded(None).await;
    // carol of globex holds an explicit push grant on acme/web.
    let globex = f.org("globex").await;
    let carol = f.user("carol", &["user-default"]).await;
    store
        .set_password(&f.admin, &carol, &argon2id("carol-password"))
        .await
        .unwrap();
    f.member(&globex, &carol, "owner").await;
    f.grant(&carol, &f.image_of("acme/web").await, &["pull", "push"])
        .await;
    let base = spawn_with_secret(&url, Some(SECRET)).await;
    metric_reaches(&base, "cardgate_change_feed_connected 1").await;
    let alice = ("alice", "wonderland");
    let carol = ("carol", "carol-password");
    for user in [alice, carol] {
        // The second answer is cached.
        settles(&base, user, json!(["pull", "push"])).await;
        settles(&base, user, json!(["pull", "push"])).await;
    }

    store.set_quota("org-acme", Some(1000)).await.unwrap();
    let push = json!({"events": [blob_event("b1", "acme/web", 5000)]});
    assert_eq!(
        post(&base, Some(&bearer()), &push).await.status(),
        StatusCode::OK
    );
    assert!(store.storage("org-acme").await.unwrap().over_quota);
    for user in [alice, carol] {
        settles(&base, user, json!(["pull"])).await;
    }
    // No new image either.
    let response = token(&base, Some(alice), "repository:acme/new:pull,push").await;
    assert_eq!(
        access(&response.json().await.unwrap())[0]["actions"],
        json!([])
    );
    assert!(!f.has_image("acme/new").await);

    // Back under: push again.
    store.set_quota("org-acme", Some(1_000_000)).await.unwrap();
    for user in [alice, carol] {
        settles(&base, user, json!(["pull", "push"])).await;
    }
}

fn reported(id: &str, action: RegistryAction, repository: &str, actor: &str) -> RegistryEvent {
    RegistryEvent {
        id: id.into(),
        at: time::OffsetDateTime::now_utc(),
        action,
        repository: repository.into(),
        target: RegistryTarget::Manifest {
            digest: format!("sha256:{}", "c".repeat(64)),
            size: 528,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            tag: Some("prod".into()),
        },
        actor: actor.into(),
        address: "10.9.8.7:1000".into(),
    }
}

/// The `(repository, actor)` of each line of an activity answer.
fn lines(body: &Value) -> Vec<(String, String)> {
    body["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["repository"].as_str().unwrap().to_owned(),
                l["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn owners_read_their_orgs_activity_admins_all_and_only_admins_set_quotas() {
    let api = Api::new().await;
    api.f.image("globex/app", &["org-globex"], false).await;
    api.f
        .store
        .record_registry_events(&[
            reported("1", RegistryAction::Push, "acme/web", "olivia"),
            reported("2", RegistryAction::Pull, "acme/web", "bob"),
            reported("3", RegistryAction::Pull, "globex/app", "gina"),
            reported("4", RegistryAction::Pull, "acme/ghost", "eve"),
        ])
        .await
        .unwrap();
    let (olivia, mark, admin) = (
        api.login("olivia").await,
        api.login("mark").await,
        api.login("admin").await,
    );
    let own = |who: &str| (String::from("acme/web"), who.to_owned());

    let (status, body) = api.get("/v1/admin/registry/activity", &olivia).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines(&body), [own("bob"), own("olivia")]);
    let (status, body) = api
        .get(
            "/v1/admin/registry/activity?repository=acme/web&actor=bob",
            &olivia,
        )
        .await;
    assert_eq!((status, lines(&body)), (StatusCode::OK, vec![own("bob")]));
    // One org's lines (the console's view): its owners' and platform admins'.
    let (status, body) = api
        .get("/v1/admin/registry/activity?org=acme", &olivia)
        .await;
    assert_eq!(
        (status, lines(&body)),
        (StatusCode::OK, vec![own("bob"), own("olivia")])
    );
    let (status, body) = api
        .get("/v1/admin/registry/activity?org=globex", &admin)
        .await;
    assert_eq!(
        (status, lines(&body)),
        (StatusCode::OK, vec![("globex/app".into(), "gina".into())])
    );
    for (token, path) in [
        (&olivia, "/v1/admin/registry/activity?repository=globex/app"),
        (&olivia, "/v1/admin/registry/activity?org=globex"),
        (&mark, "/v1/admin/registry/activity"),
        (&mark, "/v1/admin/registry/activity?org=acme"),
    ] {
        assert_eq!(
            api.get(path, token).await.0,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }
    let long_actor = format!("/v1/admin/registry/activity?actor={}", "a".repeat(257));
    for (path, field) in [
        ("/v1/admin/registry/activity?before=0", "before"),
        ("/v1/admin/registry/activity?limit=1001", "limit"),
        (long_actor.as_str(), "actor"),
        ("/v1/admin/registry/activity?org=No%20Such%20Org", "org"),
    ] {
        let (status, body) = api.get(path, &admin).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(body.to_string().contains(field), "{path}: {body}");
    }
    let (status, body) = api.get("/v1/admin/registry/activity", &admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(lines(&body).len(), 4);
    assert_eq!(body["activity"][0]["repository"], "acme/ghost");
    assert_eq!(body["activity"][0]["known"], false);

    // The image's tags, for its org's members.
    let (status, body) = api
        .get("/v1/admin/images/contents?repository=acme/web", &mark)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tags"][0]["tag"], "prod");
    assert_eq!(body["tags"][0]["pushed_by"], "olivia");
    assert_eq!(body["tags"][0]["size"], 528);
    assert_eq!(body["reserved"], false);
    assert_eq!(body["pulls_last_day"], 1);

    // Quotas: platform admins alone; usage shown to members.
    let quota = |bytes: Value| json!({ "quota_bytes": bytes });
    let (status, _) = api
        .status(
            Method::PUT,
            "/v1/admin/orgs/acme/quota",
            &olivia,
            Some(quota(json!(10))),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = api
        .status(
            Method::PUT,
            "/v1/admin/orgs/acme/quota",
            &admin,
            Some(quota(json!(-1))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("quota_bytes"),
        "{body}"
    );
    let (status, body) = api
        .status(
            Method::PUT,
            "/v1/admin/orgs/acme/quota",
            &admin,
            Some(quota(json!(MAX_QUOTA_BYTES + 1))),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("quota_bytes"), "{body}");
    let (status, body) = api
        .status(
            Method::PUT,
            "/v1/admin/orgs/acme/quota",
            &admin,
            Some(quota(json!(10))),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["over_quota"], true);
    let (status, body) = api.get("/v1/admin/orgs/acme/storage", &mark).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["usage_bytes"].clone(), body["quota_bytes"].clone()),
        (json!(528), json!(10))
    );
    assert_eq!(
        api.get("/v1/admin/orgs/globex/storage", &mark).await.0,
        StatusCode::FORBIDDEN
    );
}
