//! Who may read which part of the audit trail, and who may have which decision explained.

use cardgate_authz::Identity;
use cardgate_authz_cards::Explanation;
use cardgate_store::{Card, EventFilter, MembershipRole, Slug};
use cardgate_token::Scope;
use uuid::Uuid;

use crate::api::{CardRef, EventQuery};
use crate::{Admin, AdminError, Caller, Page, Result};

/// An event card, with the slugs of its actor and its target (when they still exist).
#[derive(Debug, Clone)]
pub struct Event {
    pub card: Card,
    pub actor: Option<String>,
    pub target: Option<String>,
}

impl Admin {
    /// The audit trail, newest first, at most a page of it: platform admins see every event,
    /// everyone else only the events of cards it can see (whose markers it matches).
    ///
    /// `actor` and `target` name a card by its id or its slug (as events show them). A slug no
    /// card has matches no event: the answer is empty, as for a card whose events the caller
    /// cannot see, so that it tells nothing of cards the caller cannot see.
    pub async fn events(&self, caller: &Caller, query: &EventQuery) -> Result<Vec<Event>> {
        let page = Page {
            after: None,
            limit: query.limit,
        };
        let limit = page.limit()?;
        let (Some(target), Some(actor)) = (
            self.card_named(query.target.as_ref()).await?,
            self.card_named(query.actor.as_ref()).await?,
        ) else {
            return Ok(Vec::new());
        };
        let visible = self
            .store
            .events(&EventFilter {
                target,
                actor,
                since: query.since,
                until: query.until,
                limit,
                visible_to: (!caller.platform_admin).then(|| caller.markers()),
            })
            .await?;
        self.with_slugs(visible).await
    }

    /// Events with the slugs of their actors and targets, read in one query.
    pub(crate) async fn with_slugs(&self, visible: Vec<Card>) -> Result<Vec<Event>> {
        // Who acted and on what, by slug, in one query.
        let id_of = |event: &Card, field: &str| event.data[field].as_str()?.parse::<Uuid>().ok();
        let ids: Vec<Uuid> = visible
            .iter()
            .flat_map(|event| [id_of(event, "actor"), id_of(event, "target")])
            .flatten()
            .collect();
        let slugs = self.store.slugs_of(&ids).await?;
        let slug_of =
            |event: &Card, field: &str| id_of(event, field).and_then(|id| slugs.get(&id).cloned());
        Ok(visible
            .into_iter()
            .map(|card| Event {
                actor: slug_of(&card, "actor"),
                target: slug_of(&card, "target"),
                card,
            })
            .collect())
    }

    /// The id of the card `named` (`Some(None)`: no card named, no filter); `None` when no
    /// card has that slug.
    async fn card_named(&self, named: Option<&CardRef>) -> Result<Option<Option<Uuid>>> {
        match named {
            None => Ok(Some(None)),
            Some(CardRef::Id(id)) => Ok(Some(Some(*id))),
            Some(CardRef::Slug(slug)) => Ok(self.store.card_id_by_slug(slug).await?.map(Some)),
        }
    }

    /// Per requested action of `scope`, whether `account` (empty: an anonymous request) is
    /// granted it and why, decided exactly as for a token request with that account's
    /// password. Platform admins may have anything explained; an org's owners only their
    /// org's repositories; nobody else anything.
    pub async fn explain(
        &self,
        caller: &Caller,
        account: &str,
        scope: &Scope,
    ) -> Result<Explanation> {
        if !caller.platform_admin {
            let org = (scope.resource_type.as_str() == "repository")
                .then(|| scope.name.as_str().split('/').next().map(Slug::org))
                .flatten();
            let owns = org.is_some_and(|org| caller.role_in(&org) == Some(MembershipRole::Owner));
            if !owns {
                return Err(AdminError::Forbidden(format!(
                    "{} may explain only repositories of orgs it owns",
                    caller.card.slug
                )));
            }
        }
        let identity = Identity::new(account.to_owned(), "cards");
        self.authorizer
            .explain(&identity, scope)
            .await
            .map_err(AdminError::Backend)?
            .ok_or_else(|| AdminError::NotFound(format!("account `{account}`")))
    }
}
