//! Reads a front end needs beside the listings: images found by part of their name, and the
//! audit trail filtered by the names of its actors and targets. The same rules as the
//! listings and [`Admin::events`] apply.

use cardgate_store::{Card, CardType};
use time::OffsetDateTime;

use crate::api::EventQuery;
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
            .images_matching(org_slug, text, page.after.as_deref(), page.limit())
            .await?)
    }

    /// The active image of `repository`. Members of its org.
    pub async fn image_of(&self, caller: &Caller, repository: &str) -> Result<Card> {
        caller.require_member(&owning_org(repository)?)?;
        self.image(repository).await
    }

    /// The audit trail as [`Admin::events`] shows it to `caller`, filtered by the slugs of
    /// the actor and the target: a slug no card has matches no event.
    pub async fn events_named(
        &self,
        caller: &Caller,
        query: &NamedEventQuery,
    ) -> Result<Vec<Event>> {
        let mut ids = [None, None];
        for (id, slug) in ids.iter_mut().zip([&query.actor, &query.target]) {
            if let Some(slug) = slug {
                match self.store.id_of_slug(slug).await? {
                    Some(found) => *id = Some(found),
                    None => return Ok(Vec::new()),
                }
            }
        }
        let [actor, target] = ids;
        self.events(
            caller,
            &EventQuery {
                target,
                actor,
                since: query.since,
                until: query.until,
                limit: query.limit,
            },
        )
        .await
    }
}
