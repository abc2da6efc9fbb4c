//! Reads a front end needs beside the listings: images found by part of their name, an image
//! by its repository, and an org's audit trail filtered by the names of its actors and
//! targets. Only the org's members read them.

use cardgate_store::{Card, CardType, EventFilter};
use time::OffsetDateTime;

use crate::{Admin, Caller, Event, Page, Result, owning_org};

/// Which events to read: by the slugs of their actor and target, and a time range.
#[derive(Debug, Clone, Default)]
pub struct NamedEventQuery {
    /// Only events by the user card of this slug.
    pub actor: Option<String>,
    /// Only events about the card of this slug.
    pub target: Option<String>,
    /// Only events at or after.
    pub since: Option<OffsetDateTime>,
    /// Only events before (not at).
    pub until: Option<OffsetDateTime>,
    /// At most this many (default 100, at most [`crate::MAX_PAGE`]).
    pub limit: Option<i64>,
}

impl Admin {
    /// The images of `org_slug` whose repository contains `text` (in any case), a page at a
    /// time. Members of the org.
    pub async fn search_images(
        &self,
        caller: &Caller,
        org_slug: &str,
        text: &str,
        page: &Page,
    ) -> Result<Vec<Card>> {
        caller.require_member(org_slug)?;
        self.active(CardType::Org, org_slug).await?;
        Ok(self
            .store
            .images_matching(org_slug, text, page.after.as_deref(), page.limit()?)
            .await?)
    }

    /// The active image of `repository`. Members of its org.
    pub async fn image_of(&self, caller: &Caller, repository: &str) -> Result<Card> {
        caller.require_member(&owning_org(repository)?)?;
        self.image(repository).await
    }

    /// The audit trail of `org_slug`, newest first, at most a page of it, filtered by the
    /// slugs of the actor and the target (a slug no card has matches no event) and by time:
    /// the events of the cards marked with the org, and for its owners also those of its
    /// robots' cards (their passwords and tokens), which owners manage. Members of the org.
    pub async fn org_events(
        &self,
        caller: &Caller,
        org_slug: &str,
        query: &NamedEventQuery,
    ) -> Result<Vec<Event>> {
        caller.require_member(org_slug)?;
        self.active(CardType::Org, org_slug).await?;
        let mut visible = vec![org_slug.to_owned()];
        if caller.require_owner(org_slug).is_ok() {
            let robots = Page {
                after: None,
                limit: Some(crate::MAX_PAGE),
            };
            visible.extend(
                self.robots(caller, org_slug, &robots)
                    .await?
                    .into_iter()
                    .map(|robot| robot.slug),
            );
        }
        let mut ids = [None, None];
        for (id, slug) in ids.iter_mut().zip([&query.actor, &query.target]) {
            if let Some(slug) = slug {
                match self.store.card_id_by_slug(slug).await? {
                    Some(found) => *id = Some(found),
                    None => return Ok(Vec::new()),
                }
            }
        }
        let [actor, target] = ids;
        let page = Page {
            after: None,
            limit: query.limit,
        };
        let events = self
            .store
            .events(&EventFilter {
                target,
                actor,
                since: query.since,
                until: query.until,
                limit: page.limit()?,
                visible_to: Some(visible),
            })
            .await?;
        self.with_slugs(events).await
    }
}
