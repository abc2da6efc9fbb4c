//! What the registry reported (see `docs/registry-events.md`), and who may read it: an image's
//! tags for the members of its org; the audit trail of pulls, pushes and deletes for platform
//! admins (everything, repositories without an image included) and for an org's owners (their
//! orgs' repositories only); an org's storage for its members; quotas set by platform admins.

use cardgate_store::{
    ActivityFilter, ImageContents, MembershipRole, OrgStorage, RegistryActivity, Slug,
};

use crate::api::{ActivityQuery, MAX_QUOTA_BYTES};
use crate::{Admin, AdminError, Caller, Page, Result, check_name, owning_org};

impl Admin {
    /// The tags of the image of `repository` as the registry reported them, and whether it is
    /// still only reserved. Members of its org.
    pub async fn image_contents(&self, caller: &Caller, repository: &str) -> Result<ImageContents> {
        caller.require_member(&owning_org(repository)?)?;
        self.image(repository).await?;
        Ok(self.store.image_contents(repository).await?)
    }

    /// Pulls, pushes and deletes, newest first, a page at a time. Platform admins see all;
    /// owners the repositories of the orgs they own (or of one of them: `query.org`); nobody
    /// else anything.
    pub async fn registry_activity(
        &self,
        caller: &Caller,
        query: &ActivityQuery,
    ) -> Result<Vec<RegistryActivity>> {
        let orgs = if caller.platform_admin {
            None
        } else {
            let owned: Vec<String> = caller
                .memberships()
                .iter()
                .filter(|m| m.role == MembershipRole::Owner)
                .map(|m| m.org_slug.clone())
                .collect();
            if owned.is_empty() {
                return Err(AdminError::Forbidden(format!(
                    "{} owns no org: the registry's audit trail is for owners and platform admins",
                    caller.card.slug
                )));
            }
            if let Some(repository) = &query.repository
                && !owned.contains(&owning_org(repository)?)
            {
                return Err(AdminError::Forbidden(format!(
                    "{} is not an owner of the org of {repository}",
                    caller.card.slug
                )));
            }
            Some(owned)
        };
        if let Some(repository) = &query.repository {
            owning_org(repository)?;
        }
        // One org's repositories: its owners' view (the console's), or a platform admin's.
        let orgs = match &query.org {
            Some(org) => {
                check_name("org", org.as_str())?;
                let slug: String = Slug::org(org.as_str()).into();
                caller.require_owner(&slug)?;
                Some(vec![slug])
            }
            None => orgs,
        };
        if query.before.is_some_and(|before| before < 1) {
            return Err(AdminError::Invalid(
                "before: a line's id, 1 or more".to_owned(),
            ));
        }
        let page = Page {
            after: None,
            limit: query.limit,
        };
        Ok(self
            .store
            .registry_activity(&ActivityFilter {
                repository: query.repository.clone(),
                actor: query.actor.as_ref().map(|actor| actor.as_str().to_owned()),
                orgs,
                since: query.since,
                until: query.until,
                before: query.before,
                limit: page.limit()?,
            })
            .await?)
    }

    /// The storage quota and usage of `org_slug`. Members of the org.
    pub async fn storage(&self, caller: &Caller, org_slug: &str) -> Result<OrgStorage> {
        caller.require_member(org_slug)?;
        self.active(cardgate_store::CardType::Org, org_slug).await?;
        Ok(self.store.storage(org_slug).await?)
    }

    /// Sets (`None`: removes) the storage quota of `org_slug`, in bytes. Platform admins only.
    pub async fn set_quota(
        &self,
        caller: &Caller,
        org_slug: &str,
        quota_bytes: Option<i64>,
    ) -> Result<OrgStorage> {
        caller.require_platform_admin("set storage quotas")?;
        if quota_bytes.is_some_and(|q| !(0..=MAX_QUOTA_BYTES).contains(&q)) {
            return Err(AdminError::Invalid(format!(
                "quota_bytes: a number of bytes from 0 to {MAX_QUOTA_BYTES} (null: no quota)"
            )));
        }
        self.active(cardgate_store::CardType::Org, org_slug).await?;
        Ok(self.store.set_quota(org_slug, quota_bytes).await?)
    }
}
