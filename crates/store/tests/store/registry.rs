//! What the registry's notifications record: tags, the audit trail, usage and quotas, reserved
//! images; each event once; nothing announced on the change feed but an org crossing its quota.

use std::time::Duration;

use cardgate_store::testing::{Fixture, fresh_database_url};
use cardgate_store::{
    ActivityFilter, CHANNEL, NewCard, PoolSettings, RegistryAction, RegistryEvent, RegistryTarget,
    Store,
};
use sqlx::postgres::PgListener;
use time::OffsetDateTime;

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn at(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000 + seconds).unwrap()
}

fn manifest(
    id: &str,
    action: RegistryAction,
    repository: &str,
    tag: &str,
    d: char,
) -> RegistryEvent {
    RegistryEvent {
        id: id.into(),
        at: at(0),
        action,
        repository: repository.into(),
        target: RegistryTarget::Manifest {
            digest: digest(d),
            size: 500,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            tag: Some(tag.into()),
        },
        actor: "alice".into(),
        address: "10.0.0.1:5000".into(),
    }
}

fn blob(id: &str, repository: &str, d: char, size: u64) -> RegistryEvent {
    RegistryEvent {
        id: id.into(),
        at: at(0),
        action: RegistryAction::Push,
        repository: repository.into(),
        target: RegistryTarget::Blob {
            digest: digest(d),
            size,
        },
        actor: "alice".into(),
        address: String::new(),
    }
}

fn all_activity() -> ActivityFilter {
    ActivityFilter {
        limit: 100,
        ..ActivityFilter::default()
    }
}

#[tokio::test]
async fn each_event_is_applied_once_whatever_the_retries_and_replays() {
    let f = Fixture::new().await;
    f.image("acme/web", &["org-acme"], false).await;
    let push = manifest("e1", RegistryAction::Push, "acme/web", "v1", 'a');
    let pull = manifest("e2", RegistryAction::Pull, "acme/web", "v1", 'a');
    let envelope = [push.clone(), pull.clone(), pull.clone()];
    let first = f.store.record_registry_events(&envelope).await.unwrap();
    assert_eq!((first.applied, first.duplicates), (2, 1));
    let again = f.store.record_registry_events(&envelope).await.unwrap();
    assert_eq!((again.applied, again.duplicates), (0, 3));
    let activity = f.store.registry_activity(&all_activity()).await.unwrap();
    assert_eq!(activity.len(), 2, "{activity:?}");
    let contents = f.store.image_contents("acme/web").await.unwrap();
    assert_eq!(contents.tags.len(), 1);
    assert_eq!(contents.tags[0].digest, digest('a'));
    assert_eq!(contents.tags[0].pushed_by, "alice");
    assert_eq!(contents.pulls_last_day, 0, "the pull is older than a day");
    assert_eq!(contents.last_pulled_at, Some(at(0)));
}

#[tokio::test]
async fn a_late_push_does_not_replace_a_newer_one_and_a_delete_removes_the_digests_tags() {
    let f = Fixture::new().await;
    f.image("acme/web", &["org-acme"], false).await;
    let mut newer = manifest("n", RegistryAction::Push, "acme/web", "prod", 'b');
    newer.at = at(10);
    let older = manifest("o", RegistryAction::Push, "acme/web", "prod", 'a');
    let other = manifest("x", RegistryAction::Push, "acme/web", "dev", 'a');
    f.store
        .record_registry_events(&[newer, older, other])
        .await
        .unwrap();
    let tags = f.store.image_contents("acme/web").await.unwrap().tags;
    let pairs: Vec<(&str, &str)> = tags
        .iter()
        .map(|t| (t.tag.as_str(), t.digest.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("dev", digest('a').as_str()),
            ("prod", digest('b').as_str())
        ]
    );

    let delete = RegistryEvent {
        id: "d".into(),
        at: at(20),
        action: RegistryAction::Delete,
        repository: "acme/web".into(),
        target: RegistryTarget::Digest {
            digest: digest('a'),
        },
        actor: "alice".into(),
        address: String::new(),
    };
    f.store.record_registry_events(&[delete]).await.unwrap();
    let tags = f.store.image_contents("acme/web").await.unwrap().tags;
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].tag, "prod");
}

#[tokio::test]
async fn events_of_repositories_without_an_image_are_audited_for_admins_only_and_create_nothing() {
    let f = Fixture::new().await;
    let recorded = f
        .store
        .record_registry_events(&[manifest("g", RegistryAction::Push, "acme/ghost", "v1", 'a')])
        .await
        .unwrap();
    assert_eq!(recorded.unknown, 1);
    assert!(!f.has_image("acme/ghost").await);
    assert!(
        f.store
            .image_contents("acme/ghost")
            .await
            .unwrap()
            .tags
            .is_empty()
    );
    let everything = f.store.registry_activity(&all_activity()).await.unwrap();
    assert_eq!(everything.len(), 1);
    assert!(!everything[0].known);
    let owners = ActivityFilter {
        orgs: Some(vec!["org-acme".into()]),
        ..all_activity()
    };
    assert!(f.store.registry_activity(&owners).await.unwrap().is_empty());
}

#[tokio::test]
async fn usage_counts_each_blob_once_per_org_and_the_manifests_present() {
    let f = Fixture::new().await;
    f.image("acme/web", &["org-acme"], false).await;
    f.image("acme/api", &["org-acme"], false).await;
    f.image("globex/web", &["org-globex"], false).await;
    f.store
        .record_registry_events(&[
            blob("b1", "acme/web", 'c', 1000),
            // The same layer in another repository of the org counts once.
            blob("b2", "acme/api", 'c', 1000),
            blob("b3", "acme/api", 'd', 200),
            // Another org's blobs are its own.
            blob("b4", "globex/web", 'c', 1000),
            manifest("m1", RegistryAction::Push, "acme/web", "v1", 'a'),
        ])
        .await
        .unwrap();
    let storage = f.store.storage("org-acme").await.unwrap();
    assert_eq!(storage.usage_bytes, 1000 + 200 + 500);
    assert_eq!(storage.quota_bytes, None);
    assert!(!storage.over_quota);
    let storage = f.store.set_quota("org-acme", Some(1500)).await.unwrap();
    assert!(storage.over_quota);
    assert!(f.store.over_quota("org-acme").await.unwrap());
    assert!(!f.store.over_quota("org-globex").await.unwrap());
    // Deleting the manifest brings acme back under.
    let delete = RegistryEvent {
        id: "del".into(),
        at: at(5),
        action: RegistryAction::Delete,
        repository: "acme/web".into(),
        target: RegistryTarget::Digest {
            digest: digest('a'),
        },
        actor: "alice".into(),
        address: String::new(),
    };
    f.store.record_registry_events(&[delete]).await.unwrap();
    assert!(!f.store.over_quota("org-acme").await.unwrap());
}

/// The next notification on the change feed within `wait`, if any.
async fn announced(listener: &mut PgListener, wait: Duration) -> Option<String> {
    tokio::time::timeout(wait, listener.recv())
        .await
        .ok()
        .map(|n| n.unwrap().payload().to_owned())
}

#[tokio::test]
async fn pushes_and_pulls_announce_nothing_and_only_crossing_a_quota_is_announced() {
    let url = fresh_database_url().await;
    let store = Store::connect_lazy(&url, &PoolSettings::default()).unwrap();
    let f = Fixture::on(store).await;
    f.image("acme/web", &["org-acme"], false).await;
    f.store.set_quota("org-acme", Some(10_000)).await.unwrap();
    let mut listener = PgListener::connect(&url).await.unwrap();
    listener.listen(CHANNEL).await.unwrap();

    f.store
        .record_registry_events(&[
            manifest("p", RegistryAction::Push, "acme/web", "v1", 'a'),
            manifest("q", RegistryAction::Pull, "acme/web", "v1", 'a'),
            blob("b", "acme/web", 'c', 100),
        ])
        .await
        .unwrap();
    assert_eq!(
        announced(&mut listener, Duration::from_millis(300)).await,
        None
    );

    // Over the quota: announced once, for acme alone.
    f.store
        .record_registry_events(&[blob("big", "acme/web", 'd', 20_000)])
        .await
        .unwrap();
    assert_eq!(
        announced(&mut listener, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("q:org-acme")
    );
    // Still over: nothing more.
    f.store
        .record_registry_events(&[blob("more", "acme/web", 'e', 10)])
        .await
        .unwrap();
    assert_eq!(
        announced(&mut listener, Duration::from_millis(300)).await,
        None
    );
    // Back under by a larger quota.
    f.store
        .set_quota("org-acme", Some(1_000_000))
        .await
        .unwrap();
    assert_eq!(
        announced(&mut listener, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("q:org-acme")
    );
}

#[tokio::test]
async fn an_image_made_for_a_push_is_reserved_until_a_push_and_released_after_the_period() {
    let f = Fixture::new().await;
    f.org("acme").await;
    let kept = f
        .store
        .ensure_image(&f.admin, &NewCard::image("acme/kept", "org-acme", false))
        .await
        .unwrap();
    let squatted = f
        .store
        .ensure_image(
            &f.admin,
            &NewCard::image("acme/squatted", "org-acme", false),
        )
        .await
        .unwrap();
    assert!(f.store.image_contents("acme/kept").await.unwrap().reserved);
    f.store
        .record_registry_events(&[manifest("k", RegistryAction::Push, "acme/kept", "v1", 'a')])
        .await
        .unwrap();
    assert!(!f.store.image_contents("acme/kept").await.unwrap().reserved);
    assert!(
        f.store
            .image_contents("acme/squatted")
            .await
            .unwrap()
            .reserved
    );

    // Two sweeps at once (two instances): each reservation is released once.
    let (one, two) = tokio::join!(
        f.store.release_reservations(&f.admin, time::Duration::ZERO),
        f.store.release_reservations(&f.admin, time::Duration::ZERO),
    );
    let mut released = one.unwrap();
    released.extend(two.unwrap());
    assert_eq!(released, ["acme/squatted"]);
    assert!(
        !f.store
            .card_by_id(squatted.id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    assert!(f.store.card_by_id(kept.id).await.unwrap().unwrap().active);
    // The released name is free again; an image an owner deactivated stays retired.
    assert!(!f.store.image_ever_existed("acme/squatted").await.unwrap());
    f.store.deactivate(&f.admin, kept.id, None).await.unwrap();
    assert!(f.store.image_ever_existed("acme/kept").await.unwrap());
    // A period not yet over releases nothing.
    f.store
        .ensure_image(&f.admin, &NewCard::image("acme/fresh", "org-acme", false))
        .await
        .unwrap();
    let none = f
        .store
        .release_reservations(&f.admin, time::Duration::hours(1))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn audit_lines_past_the_retention_are_pruned_and_newer_ones_kept() {
    let f = Fixture::new().await;
    f.image("acme/web", &["org-acme"], false).await;
    let mut recent = manifest("new", RegistryAction::Pull, "acme/web", "v1", 'a');
    recent.at = OffsetDateTime::now_utc();
    f.store
        .record_registry_events(&[
            manifest("old", RegistryAction::Pull, "acme/web", "v1", 'a'),
            recent,
        ])
        .await
        .unwrap();
    let removed = f
        .store
        .prune_registry_activity(time::Duration::days(1))
        .await
        .unwrap();
    assert_eq!(removed, 1);
    let left = f.store.registry_activity(&all_activity()).await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].at > OffsetDateTime::now_utc() - time::Duration::hours(1));
}
