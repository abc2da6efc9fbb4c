//! Who reads which events, and who may have which decision explained, without HTTP.

use cardgate_admin::AdminError;
use cardgate_admin::api::EventQuery;
use cardgate_token::Scope;

use super::{World, forbidden};

#[tokio::test]
async fn platform_admins_read_every_event_and_others_only_those_of_cards_they_see() {
    let w = World::new().await;
    let admin = w.caller("admin").await;
    let olivia = w.caller("olivia").await;
    w.admin.create_org(&admin, "initech").await.unwrap();
    w.admin
        .create_image(&olivia, "acme/api", false)
        .await
        .unwrap();
    let all = w
        .admin
        .events(&admin, &EventQuery::default())
        .await
        .unwrap();
    let targets = |events: &[cardgate_admin::Event]| -> Vec<String> {
        events.iter().filter_map(|e| e.target.clone()).collect()
    };
    assert!(targets(&all).contains(&"org-initech".to_owned()));
    let hers = w
        .admin
        .events(&olivia, &EventQuery::default())
        .await
        .unwrap();
    assert!(!hers.is_empty());
    assert!(!targets(&hers).contains(&"org-initech".to_owned()));
    assert!(
        hers.iter()
            .any(|e| e.actor.as_deref() == Some("user-olivia"))
    );
    let plain = w
        .admin
        .events(&w.caller("plain").await, &EventQuery::default())
        .await
        .unwrap();
    // Of a user in no org, only the events of its own card.
    assert!(!plain.is_empty());
    assert!(
        targets(&plain).iter().all(|t| t == "user-plain"),
        "{plain:?}"
    );
    // A page is at least one event and at most a thousand; any other size is refused.
    let page = |limit| EventQuery {
        limit: Some(limit),
        ..EventQuery::default()
    };
    assert_eq!(w.admin.events(&admin, &page(1)).await.unwrap().len(), 1);
    for limit in [0, -1, 1001] {
        match w.admin.events(&admin, &page(limit)).await {
            Err(AdminError::Invalid(message)) => {
                assert!(message.starts_with("limit:"), "{message}")
            }
            other => panic!("limit {limit}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn owners_explain_their_orgs_repositories_only_and_platform_admins_anything() {
    let w = World::new().await;
    let scope = |s: &str| s.parse::<Scope>().unwrap();
    let acme = scope("repository:acme/web:pull,push");
    let globex = scope("repository:globex/app:pull");
    let catalog = scope("registry:catalog:*");
    let olivia = w.caller("olivia").await;
    let explanation = w.admin.explain(&olivia, "mark", &acme).await.unwrap();
    assert_eq!(explanation.actor, "user-mark");
    assert_eq!(explanation.verdicts(&acme).len(), 2);
    forbidden(w.admin.explain(&olivia, "mark", &globex).await);
    forbidden(w.admin.explain(&olivia, "mark", &catalog).await);
    // A maintainer is no owner.
    forbidden(
        w.admin
            .explain(&w.caller("mark").await, "mark", &acme)
            .await,
    );
    forbidden(w.admin.explain(&w.caller("plain").await, "", &acme).await);
    let admin = w.caller("root").await;
    for s in [&acme, &globex, &catalog] {
        w.admin.explain(&admin, "plain", s).await.unwrap();
    }
    assert_eq!(
        w.admin.explain(&admin, "", &acme).await.unwrap().actor,
        "user-guest"
    );
    match w.admin.explain(&admin, "nobody", &acme).await {
        Err(AdminError::NotFound(what)) => assert_eq!(what, "account `nobody`"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}
