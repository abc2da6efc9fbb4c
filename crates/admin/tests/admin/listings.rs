//! Users' roles (a default, and only roles that exist), listings a page at a time, an org's
//! images by name, events by slug: rules the API, the console and the command line share.

use cardgate_admin::api::{CardList, CardRef, EventQuery};
use cardgate_admin::{AdminError, Caller, DEFAULT_ROLES, MAX_PAGE, MAX_ROLES, Page};
use serde_json::json;

use super::{World, forbidden};

/// The message of an `Invalid` refusal, which must name `field`.
fn invalid<T: std::fmt::Debug>(result: Result<T, AdminError>, field: &str) -> String {
    match result {
        Err(AdminError::Invalid(message)) => {
            assert!(message.starts_with(&format!("{field}:")), "{message}");
            message
        }
        other => panic!("expected Invalid naming {field}, got {other:?}"),
    }
}

#[tokio::test]
async fn new_users_get_the_default_roles_unless_named_and_roles_that_are_not_roles_are_refused() {
    let w = World::new().await;
    let admin = w.caller("admin").await;
    let root = w.caller("root").await;
    let dora = w.admin.create_user(&admin, "dora", None).await.unwrap();
    assert_eq!(dora.data["roles"], json!(DEFAULT_ROLES));
    assert_eq!(dora.data["roles"], json!(["user-default"]));
    w.admin
        .create_role(&root, "readers", json!(true), false)
        .await
        .unwrap();
    let named = ["readers".to_owned(), "platform-admin".to_owned()];
    let rita = w
        .admin
        .create_user(&admin, "rita", Some(&named))
        .await
        .unwrap();
    assert_eq!(rita.data["roles"], json!(named));
    // No roles, when asked for explicitly.
    let nemo = w
        .admin
        .create_user(&admin, "nemo", Some(&[]))
        .await
        .unwrap();
    assert_eq!(nemo.data["roles"], json!([]));

    // A role is `platform-admin` or the name of an active role card: not a misspelling, not a
    // role card's slug, not a deactivated role, nothing a slug cannot hold, and not too many.
    let readers = w.f.card_by_slug("role-readers").await;
    w.admin
        .deactivate_role(&root, "readers", readers.revision)
        .await
        .unwrap();
    let refused: Vec<Vec<String>> = vec![
        vec!["user-defualt".into()],
        vec!["role-user-default".into()],
        vec!["readers".into()],
        vec!["user-default".into(), "Platform-Admin".into()],
        vec!["user-default\0".into()],
        vec![String::new()],
        vec!["x".repeat(300)],
        vec!["user-default".into(); MAX_ROLES + 1],
    ];
    let olivia = w.f.card_by_slug("user-olivia").await;
    for roles in &refused {
        invalid(
            w.admin.create_user(&admin, "ghost", Some(roles)).await,
            "roles",
        );
        invalid(
            w.admin
                .set_roles(&admin, "user-olivia", olivia.revision, roles)
                .await,
            "roles",
        );
    }
    assert!(!w.f.has_card("user-ghost").await);
    let olivia = w.f.card_by_slug("user-olivia").await;
    assert_eq!(olivia.data["roles"], json!(["user-default"]));
    // Roles that exist are set.
    let changed = w
        .admin
        .set_roles(
            &admin,
            "user-olivia",
            olivia.revision,
            &["user-default".into(), "platform-admin".into()],
        )
        .await
        .unwrap();
    assert_eq!(
        changed.data["roles"],
        json!(["user-default", "platform-admin"])
    );
    // Whoever may not create users learns nothing of roles.
    forbidden(
        w.admin
            .create_user(&w.caller("mark").await, "ghost", Some(&["nope".into()]))
            .await,
    );
}

#[tokio::test]
async fn listings_come_a_page_at_a_time_with_a_cursor_and_refuse_sizes_out_of_range() {
    let w = World::new().await;
    let admin = w.caller("admin").await;
    let everyone: Vec<String> = w
        .admin
        .users(&admin, &Page::default())
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.slug)
        .collect();
    assert!(everyone.len() > 4, "{everyone:?}");
    let mut seen = Vec::new();
    let mut page = Page {
        after: None,
        limit: Some(2),
    };
    loop {
        let list = CardList::page(w.admin.users(&admin, &page).await.unwrap(), &page);
        assert!(list.cards.len() <= 2);
        seen.extend(list.cards.iter().map(|c| c.slug.clone()));
        match list.next {
            Some(next) => {
                assert_eq!(Some(&next), seen.last(), "the cursor is the last slug");
                page.after = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(seen, everyone);
    // A page that is not full is the last one.
    let whole = Page {
        after: None,
        limit: Some(MAX_PAGE),
    };
    let list = CardList::page(w.admin.users(&admin, &whole).await.unwrap(), &whole);
    assert_eq!(list.cards.len(), everyone.len());
    assert_eq!(list.next, None);

    let olivia = w.caller("olivia").await;
    for limit in [0, -1, MAX_PAGE + 1, i64::MIN] {
        let page = Page {
            after: None,
            limit: Some(limit),
        };
        invalid(w.admin.users(&admin, &page).await, "limit");
        invalid(w.admin.orgs(&admin, &page).await, "limit");
        invalid(w.admin.orgs(&olivia, &page).await, "limit");
        invalid(w.admin.roles(&admin, &page).await, "limit");
        invalid(w.admin.robots(&admin, "org-acme", &page).await, "limit");
        invalid(
            w.admin.images(&olivia, "org-acme", &page, None).await,
            "limit",
        );
    }
}

/// The repositories of the images of acme that `caller` lists with the name filter `q`.
async fn acme_images(w: &World, caller: &Caller, q: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = w
        .admin
        .images(caller, "org-acme", &Page::default(), q)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.data["repository"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn an_orgs_images_are_found_by_the_start_of_their_name_in_the_org() {
    let w = World::new().await;
    let olivia = w.caller("olivia").await;
    let gina = w.caller("gina").await;
    for repository in ["acme/web-api", "acme/w_b", "acme/wab", "acme/api/web"] {
        w.admin
            .create_image(&olivia, repository, false)
            .await
            .unwrap();
    }
    w.admin
        .create_image(&gina, "globex/web", false)
        .await
        .unwrap();
    let all = [
        "acme/api/web",
        "acme/w_b",
        "acme/wab",
        "acme/web",
        "acme/web-api",
    ];
    assert_eq!(acme_images(&w, &olivia, None).await, all);
    assert_eq!(acme_images(&w, &olivia, Some("")).await, all);
    assert_eq!(
        acme_images(&w, &olivia, Some("web")).await,
        ["acme/web", "acme/web-api"]
    );
    assert_eq!(
        acme_images(&w, &olivia, Some("api/")).await,
        ["acme/api/web"]
    );
    // `_` and `%` are letters, not wildcards; the org is not part of the name asked for.
    assert_eq!(acme_images(&w, &olivia, Some("w_b")).await, ["acme/w_b"]);
    assert!(acme_images(&w, &olivia, Some("%")).await.is_empty());
    assert!(acme_images(&w, &olivia, Some("acme/web")).await.is_empty());

    // Paged with the filter, the cursor leads to the rest of the matches only.
    let mut page = Page {
        after: None,
        limit: Some(1),
    };
    let mut found = Vec::new();
    loop {
        let cards = w
            .admin
            .images(&olivia, "org-acme", &page, Some("web"))
            .await
            .unwrap();
        let list = CardList::page(cards, &page);
        found.extend(list.cards.iter().map(|c| c.data["repository"].clone()));
        match list.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    found.sort_by_key(|r| r.to_string());
    assert_eq!(found, [json!("acme/web"), json!("acme/web-api")]);

    // Members of the org only, with a filter as without.
    forbidden(
        w.admin
            .images(&gina, "org-acme", &Page::default(), Some("web"))
            .await,
    );
}

/// The events `caller` reads by `actor` and about `target`.
async fn events_of(
    w: &World,
    caller: &Caller,
    actor: Option<&str>,
    target: Option<&str>,
) -> Vec<cardgate_admin::Event> {
    let query = EventQuery {
        actor: actor.map(|a| CardRef::parse(a).unwrap()),
        target: target.map(|t| CardRef::parse(t).unwrap()),
        ..EventQuery::default()
    };
    w.admin.events(caller, &query).await.unwrap()
}

#[tokio::test]
async fn events_are_asked_for_by_slug_or_id_and_unknown_or_unseen_cards_have_none() {
    let w = World::new().await;
    let admin = w.caller("admin").await;
    let olivia = w.caller("olivia").await;
    w.admin
        .create_image(&olivia, "acme/api", false)
        .await
        .unwrap();
    w.admin.create_org(&admin, "initech").await.unwrap();
    let ids = |events: &[cardgate_admin::Event]| -> Vec<uuid::Uuid> {
        events.iter().map(|e| e.card.id).collect()
    };

    let by_olivia = events_of(&w, &admin, Some("user-olivia"), None).await;
    assert!(!by_olivia.is_empty());
    assert!(
        by_olivia
            .iter()
            .all(|e| e.actor.as_deref() == Some("user-olivia"))
    );
    let by_id = events_of(&w, &admin, Some(&olivia.card.id.to_string()), None).await;
    assert_eq!(ids(&by_id), ids(&by_olivia));
    let about = events_of(&w, &admin, None, Some("org-initech")).await;
    assert!(!about.is_empty());
    assert!(
        about
            .iter()
            .all(|e| e.target.as_deref() == Some("org-initech"))
    );
    let both = events_of(&w, &admin, Some("user-admin"), Some("org-initech")).await;
    assert_eq!(ids(&both), ids(&about));
    assert!(
        events_of(&w, &admin, Some("user-olivia"), Some("org-initech"))
            .await
            .is_empty()
    );

    // A deactivated card's events are still found by its slug.
    w.admin.deactivate_user(&admin, "user-plain").await.unwrap();
    let plain = events_of(&w, &admin, None, Some("user-plain")).await;
    assert!(
        plain
            .iter()
            .any(|e| e.card.card_type.starts_with("deactivate"))
    );

    // No card has the slug: no events. A card the caller cannot see: the same answer.
    assert!(
        events_of(&w, &admin, Some("user-nobody"), None)
            .await
            .is_empty()
    );
    assert!(
        events_of(&w, &olivia, None, Some("org-initech"))
            .await
            .is_empty()
    );
    assert!(
        events_of(&w, &olivia, None, Some("org-nothing"))
            .await
            .is_empty()
    );

    // Neither a slug nor an id: refused as it is read.
    for bad in [
        "me",
        "user-",
        "User-alice",
        "gadget-x",
        "user-a b",
        "",
        "user-\0",
    ] {
        assert!(CardRef::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        CardRef::parse("user-alice"),
        Ok(CardRef::Slug("user-alice".into()))
    );
}
