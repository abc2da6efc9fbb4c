//! An org's images found by part of their name, an image by repository, and an org's audit
//! trail by actor and target names: only for the org's members, robots' events for its owners.

use cardgate_admin::{Event, NamedEventQuery, Page};

use super::{World, forbidden};

fn targets(events: &[Event]) -> Vec<String> {
    events.iter().filter_map(|e| e.target.clone()).collect()
}

#[tokio::test]
async fn an_orgs_trail_holds_its_cards_and_for_its_owners_its_robots_tokens_and_nothing_else() {
    let w = World::new().await;
    let olivia = w.caller("olivia").await;
    let mark = w.caller("mark").await;
    let gina = w.caller("gina").await;
    w.admin
        .create_robot(&olivia, "org-acme", "ci")
        .await
        .unwrap();
    let token = w
        .admin
        .open_token(&olivia, "user-ci", None, None)
        .await
        .unwrap();
    w.admin
        .create_image(&olivia, "acme/api", false)
        .await
        .unwrap();
    w.admin
        .create_robot(&gina, "org-globex", "gbot")
        .await
        .unwrap();
    let theirs = w
        .admin
        .open_token(&gina, "user-gbot", None, None)
        .await
        .unwrap();

    let all = NamedEventQuery::default();
    let owners = w.admin.org_events(&olivia, "org-acme", &all).await.unwrap();
    let seen = targets(&owners);
    assert!(seen.contains(&"user-ci".to_owned()), "{seen:?}");
    assert!(seen.contains(&token.card.slug), "{seen:?}");
    assert!(!seen.contains(&theirs.card.slug), "{seen:?}");
    assert!(
        !seen
            .iter()
            .any(|t| t.contains("gbot") || t.contains("globex"))
    );

    // A maintainer reads the org's cards' events, not its robots' tokens.
    let maintainers = targets(&w.admin.org_events(&mark, "org-acme", &all).await.unwrap());
    assert!(
        maintainers.contains(&"user-ci".to_owned()),
        "{maintainers:?}"
    );
    assert!(!maintainers.contains(&token.card.slug), "{maintainers:?}");

    // Another org's owner reads nothing of it, whatever the filter.
    forbidden(w.admin.org_events(&gina, "org-acme", &all).await);
    forbidden(
        w.admin
            .org_events(
                &gina,
                "org-acme",
                &NamedEventQuery {
                    actor: Some("user-olivia".into()),
                    ..NamedEventQuery::default()
                },
            )
            .await,
    );

    // Filters by names: an actor, a target, a name no card has.
    let by = |actor: Option<&str>, target: Option<&str>| NamedEventQuery {
        actor: actor.map(str::to_owned),
        target: target.map(str::to_owned),
        ..NamedEventQuery::default()
    };
    let hers = w
        .admin
        .org_events(&olivia, "org-acme", &by(Some("user-olivia"), None))
        .await
        .unwrap();
    assert!(hers.len() >= 3);
    assert!(
        hers.iter()
            .all(|e| e.actor.as_deref() == Some("user-olivia"))
    );
    let robot = w
        .admin
        .org_events(&olivia, "org-acme", &by(None, Some("user-ci")))
        .await
        .unwrap();
    assert!(!robot.is_empty());
    assert!(robot.iter().all(|e| e.target.as_deref() == Some("user-ci")));
    for nobody in [
        by(Some("user-nobody"), None),
        by(None, Some("image-nothing")),
    ] {
        assert!(
            w.admin
                .org_events(&olivia, "org-acme", &nobody)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test]
async fn images_are_found_by_part_of_their_name_a_page_at_a_time_by_members_only() {
    let w = World::new().await;
    let olivia = w.caller("olivia").await;
    let mark = w.caller("mark").await;
    let gina = w.caller("gina").await;
    for repository in ["acme/webapp", "acme/tools"] {
        w.admin
            .create_image(&olivia, repository, false)
            .await
            .unwrap();
    }
    w.admin
        .create_image(&gina, "globex/web", false)
        .await
        .unwrap();
    let find = |text: &'static str, page: Page| {
        let (admin, mark) = (&w.admin, &mark);
        async move {
            let mut found: Vec<String> = admin
                .search_images(mark, "org-acme", text, &page)
                .await
                .unwrap()
                .iter()
                .map(|image| image.data["repository"].as_str().unwrap().to_owned())
                .collect();
            found.sort();
            found
        }
    };
    assert_eq!(
        find("WEB", Page::default()).await,
        ["acme/web", "acme/webapp"]
    );
    assert_eq!(find("", Page::default()).await.len(), 3);
    assert!(find("%", Page::default()).await.is_empty());

    // A page at a time, after the last slug of the one before.
    let first = w
        .admin
        .search_images(
            &mark,
            "org-acme",
            "",
            &Page {
                after: None,
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let rest = w
        .admin
        .search_images(
            &mark,
            "org-acme",
            "",
            &Page {
                after: Some(first[1].slug.clone()),
                limit: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(rest.len(), 1);
    assert!(first.iter().all(|image| image.id != rest[0].id));

    // Another org's owner finds nothing of acme's, nor opens its images.
    forbidden(
        w.admin
            .search_images(&gina, "org-acme", "", &Page::default())
            .await,
    );
    forbidden(w.admin.image_of(&gina, "acme/web").await);
    let web = w.admin.image_of(&mark, "acme/web").await.unwrap();
    assert_eq!(web.data["repository"], "acme/web");
}
