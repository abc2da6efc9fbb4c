//! Tenant isolation under change: while an admin keeps changing memberships, grants and public
//! flags, concurrent decisions never grant an action that the policy did not allow at some
//! instant during the request.
//!
//! The policy at any instant is recomputed with the reference model of `differential`, and
//! when each change took effect comes from the event log: a change is visible at the latest
//! when its write returned, and not before its event's time (the transaction's start).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cardgate_authz::Identity;
use cardgate_store::testing::Fixture;
use cardgate_store::{Card, EventFilter, LinkVerb, MembershipRole};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::OffsetDateTime;

use crate::Decide;
use crate::differential::{Actions, Model, ModelImage, model_grant, set};

/// Changes the admin makes during the run.
const CHANGES: usize = 80;
/// Clients asking for decisions at the same time.
const READERS: usize = 3;

const USERS: [&str; 2] = ["user-iso1", "user-iso2"];
const ORGS: [&str; 2] = ["org-isoa", "org-isob"];
const REPOSITORIES: [&str; 3] = ["isoa/app", "isoa/lib", "isob/app"];

/// One decision: who asked what, what was granted, and when.
struct Decision {
    user: &'static str,
    repository: &'static str,
    granted: Actions,
    started: OffsetDateTime,
    ended: OffsetDateTime,
}

/// The policy after a change, and when the change had surely taken effect.
struct State {
    model: Model,
    returned: OffsetDateTime,
}

fn card<'a>(cards: &'a [Card], slug: &str) -> &'a Card {
    cards.iter().find(|c| c.slug == slug).unwrap()
}

fn image_card_slug(repository: &str) -> String {
    format!("image-{}", repository.replace('/', "-"))
}

/// Makes one random change through the audited writers, and the same change to `model`.
async fn change(f: &Fixture, cards: &[Card], model: &mut Model, rng: &mut StdRng) {
    match rng.random_range(0..3) {
        0 => {
            let user = *USERS.choose(rng).unwrap();
            let org = *ORGS.choose(rng).unwrap();
            let key = (org.to_owned(), user.to_owned());
            if model.members.remove(&key).is_some() {
                f.store
                    .unlink(
                        &f.admin,
                        card(cards, org),
                        LinkVerb::HasMember,
                        card(cards, user),
                    )
                    .await
                    .unwrap();
            } else {
                let role = *MembershipRole::ALL.choose(rng).unwrap();
                f.member(card(cards, org), card(cards, user), role.as_str())
                    .await;
                model.members.insert(key, role);
            }
        }
        1 => {
            let holder = *[USERS[0], USERS[1], ORGS[0], ORGS[1]].choose(rng).unwrap();
            let repository = *REPOSITORIES.choose(rng).unwrap();
            let image = card(cards, &image_card_slug(repository));
            let existing = model
                .grants
                .iter()
                .position(|(h, r, _)| h == holder && r == repository);
            match existing {
                Some(i) => {
                    f.store
                        .unlink(&f.admin, card(cards, holder), LinkVerb::HasAccessTo, image)
                        .await
                        .unwrap();
                    model.grants.remove(i);
                }
                None => {
                    let actions: Vec<&'static str> = ["pull", "push", "delete"]
                        .into_iter()
                        .filter(|_| rng.random_bool(0.5))
                        .collect();
                    f.grant(card(cards, holder), image, &actions).await;
                    model
                        .grants
                        .push((holder.to_owned(), repository.to_owned(), actions));
                }
            }
        }
        _ => {
            let repository = *REPOSITORIES.choose(rng).unwrap();
            let slug = image_card_slug(repository);
            let current = f.card_by_slug(&slug).await;
            let image = model
                .images
                .iter_mut()
                .find(|i| i.repository == repository)
                .unwrap();
            image.public = !image.public;
            let patch = serde_json::from_value(json!([
                {"op": "replace", "path": "/data/public", "value": image.public}
            ]))
            .unwrap();
            f.store
                .update(&f.admin, current.id, current.revision, &patch)
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_never_grant_what_the_policy_did_not_allow_during_the_request() {
    decisions_follow_the_policy(false).await;
}

/// The same with the caches on: every change evicts only what it touches, and a cached
/// decision must still never outlive the policy it was taken under.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_decisions_never_grant_what_the_policy_did_not_allow_during_the_request() {
    decisions_follow_the_policy(true).await;
}

async fn decisions_follow_the_policy(cached: bool) {
    let f = Fixture::new().await;
    if cached {
        f.store.watch_changes(std::time::Duration::from_secs(60));
        let started = std::time::Instant::now();
        while f.store.generation().current().is_none() {
            assert!(started.elapsed().as_secs() < 10, "no change feed");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    let mut model = Model::default();
    model
        .roles
        .insert("role-user-default".into(), (json!(true), false));
    let mut cards = Vec::new();
    for org in ORGS {
        cards.push(f.org(org.strip_prefix("org-").unwrap()).await);
    }
    for user in USERS {
        cards.push(
            f.user(user.strip_prefix("user-").unwrap(), &["user-default"])
                .await,
        );
        model
            .users
            .insert(user.to_owned(), vec!["user-default".into()]);
    }
    for repository in REPOSITORIES {
        let org = format!("org-{}", repository.split('/').next().unwrap());
        cards.push(f.image(repository, &[&org], false).await);
        model.images.push(ModelImage {
            repository: repository.to_owned(),
            markers: vec![org],
            public: false,
            active: true,
        });
    }
    // Each user starts as a developer of their own tenant.
    for (user, org) in USERS.iter().zip(ORGS) {
        f.member(card(&cards, org), card(&cards, user), "developer")
            .await;
        model.members.insert(
            (org.to_owned(), (*user).to_owned()),
            MembershipRole::Developer,
        );
    }

    let began = OffsetDateTime::now_utc();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (f, done) = (f.clone(), done.clone());
            tokio::spawn(async move {
                let chain = f.authorizer();
                let mut rng = StdRng::seed_from_u64(r as u64);
                let mut decisions = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    let user = *USERS.choose(&mut rng).unwrap();
                    let repository = *REPOSITORIES.choose(&mut rng).unwrap();
                    let scope: cardgate_token::Scope =
                        format!("repository:{repository}:pull,push,delete")
                            .parse()
                            .unwrap();
                    let identity = Identity::new(user.strip_prefix("user-").unwrap(), "cards");
                    let started = OffsetDateTime::now_utc();
                    let granted = chain.authorize(&identity, &[scope]).await.unwrap()[0]
                        .granted
                        .names()
                        .into_iter()
                        .collect();
                    let ended = OffsetDateTime::now_utc();
                    decisions.push(Decision {
                        user,
                        repository,
                        granted,
                        started,
                        ended,
                    });
                    if cached {
                        // Answers from the cache come in microseconds: as many decisions as
                        // the uncached run checks, not millions.
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                }
                decisions
            })
        })
        .collect();

    let mut rng = StdRng::seed_from_u64(20261127);
    let mut states = vec![State {
        model: model.clone(),
        returned: began,
    }];
    for _ in 0..CHANGES {
        change(&f, &cards, &mut model, &mut rng).await;
        states.push(State {
            model: model.clone(),
            returned: OffsetDateTime::now_utc(),
        });
        tokio::time::sleep(std::time::Duration::from_millis(rng.random_range(0..15))).await;
    }
    done.store(true, Ordering::Relaxed);
    let mut decisions = Vec::new();
    for reader in readers {
        decisions.extend(reader.await.unwrap());
    }

    // The event log: one event per change, in order; its time is when the change's
    // transaction began, so the change was not visible before it.
    let mut events = f
        .store
        .events(&EventFilter {
            since: Some(began),
            limit: 10_000,
            ..EventFilter::default()
        })
        .await
        .unwrap();
    events.sort_by_key(|e| e.created_at);
    assert_eq!(events.len(), CHANGES, "one event per change");
    let took_effect_from: Vec<OffsetDateTime> = std::iter::once(OffsetDateTime::UNIX_EPOCH)
        .chain(events.iter().map(|e| e.created_at))
        .collect();

    let asked = set(&["pull", "push", "delete"]);
    let mut granted_any = 0;
    for d in &decisions {
        // States that may have been in force during [started, ended]: state k from when its
        // change may have become visible, until the next change had surely taken effect.
        let mut allowed = Actions::new();
        for (k, state) in states.iter().enumerate() {
            let from = took_effect_from[k];
            let until = states
                .get(k + 1)
                .map_or(OffsetDateTime::now_utc(), |next| next.returned);
            if from <= d.ended && until >= d.started {
                let mut model = state.model.clone();
                let grant = model_grant(
                    &asked,
                    &model.allowed_repository(d.user, None, d.repository, &asked),
                    true,
                );
                allowed.extend(grant);
            }
        }
        assert!(
            d.granted.is_subset(&allowed),
            "{} got {:?} on {} during [{}, {}]; the policy allowed at most {allowed:?}",
            d.user,
            d.granted,
            d.repository,
            d.started,
            d.ended
        );
        if !d.granted.is_empty() {
            granted_any += 1;
        }
    }
    // The run must exercise grants and refusals, across changes.
    assert!(decisions.len() > CHANGES, "{} decisions", decisions.len());
    assert!(granted_any > 0 && granted_any < decisions.len());
    let mut first = states[0].model.clone();
    let mut last = model;
    let differs = USERS.iter().any(|u| {
        REPOSITORIES.iter().any(|r| {
            first.allowed_repository(u, None, r, &asked)
                != last.allowed_repository(u, None, r, &asked)
        })
    });
    assert!(differs, "the changes left the policy as it was");
}
