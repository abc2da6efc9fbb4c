//! Policy administration on the card store: the changes admins make (orgs, members, robots,
//! images, grants, passwords) and the rules of who may make them.
//!
//! - Platform admins (`user-admin`, and users whose `data.roles` hold `platform-admin`) may
//!   change anything.
//! - An org's owners may change only inside their org: its members, robots, images and the
//!   grants on its images; never another org, never platform roles, never above their own role.
//! - Role cards and users' platform roles are platform admins' alone.
//! - An org's members may list the org's members and images; its owners also its robots and
//!   the grants on its images.
//! - Users may change their own password.
//! - Everyone else is refused.
//! - The built-in cards (`user-admin`, `user-guest`, `role-user-default`, `role-user-guest`)
//!   are changed by nobody: never deactivated, their roles and read schemas never replaced.
//!   `user-admin`'s password is set only on the host, with `cardgate set-password admin`,
//!   which writes to the database directly; `user-guest` (anonymous requests) has none.
//! - Users and orgs share one namespace of names (repository namespaces, and `${account}` in
//!   static ACL rules): a new user, robot or org cannot take a name already taken by the other
//!   kind, nor a reserved name ([`RESERVED_NAMES`]).
//!
//! - Only login sessions are admin credentials ([`Admin::session_caller`]); logging in needs
//!   a password, never a session token ([`Admin::log_in`]).
//! - Platform admins read the whole audit trail; everyone else the events of the cards it
//!   can see ([`Admin::events`]); an org's members its trail, its owners with its robots'
//!   ([`Admin::org_events`]).
//! - Platform admins may have any decision explained; an org's owners only those on their
//!   org's repositories ([`Admin::explain`]).
//! - What the registry reported: an image's tags for its org's members, the pull and push
//!   audit trail for owners (their orgs' repositories) and platform admins, storage quotas
//!   set by platform admins ([`Admin::registry_activity`], [`Admin::set_quota`]).
//!
//! Every change goes through the store's audited writers, so each is recorded with its event.
//! [`api`] holds the admin API's wire types, shared by the server and the command line.
//! Depends on the store, the card plugins (to check passwords and sessions, and explain
//! decisions) and the token core's grammar; knows nothing of HTTP.

pub mod api;
mod audit;
mod finding;
mod registry;
mod session;

pub use audit::Event;
pub use finding::NamedEventQuery;
pub use session::LoginSession;

use std::time::Duration;

use cardgate_authz::PluginError;
use cardgate_authz_cards::{CardAuthenticator, CardAuthorizer};
use cardgate_store::{
    ADMIN_SLUG, Card, CardType, GUEST_SLUG, IssuedSession, LinkVerb, Membership, MembershipRole,
    NewCard, Slug, Store, StoreError, is_built_in,
};
use cardgate_token::ResourceName;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use uuid::Uuid;

/// The role that makes a user a platform admin.
pub const PLATFORM_ROLE: &str = "platform-admin";

/// The platform roles of a new user when none are named (and of every robot): `user-default`
/// reads the cards its markers reach (its own, its orgs'), which is what an org's member needs
/// to reach the org's images.
pub const DEFAULT_ROLES: [&str; 1] = ["user-default"];

/// The most platform roles a user may hold.
pub const MAX_ROLES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The caller may not make this change. The message says what is missing.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The request is malformed; the message names the field.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    /// The card moved on since the caller read it: nothing was changed.
    #[error("revision {expected} is stale: the card is at revision {current}")]
    Stale { expected: i64, current: i64 },
    /// No valid credentials: no session, or not a login session, or not its user's.
    #[error("no valid session")]
    Unauthenticated,
    /// A login was refused; `wrong` when the password was checked and found wrong (what a
    /// throttle counts), not when the credentials were no password at all.
    #[error("invalid username or password")]
    BadLogin { wrong: bool },
    #[error(transparent)]
    Store(StoreError),
    /// The caller made as many tokens in the last hour as it may; it may make the next one
    /// after `retry_after_seconds`.
    #[error("too many tokens: at most {limit} an hour per account; try again later")]
    TooManyTokens {
        limit: u32,
        retry_after_seconds: u64,
    },
    /// The card authenticator or authorizer failed.
    #[error("an authentication backend failed")]
    Backend(#[source] PluginError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AdminError::NotFound(what),
            StoreError::Invalid(message) => AdminError::Invalid(message),
            StoreError::Conflict(message) => AdminError::Conflict(message),
            StoreError::Stale { expected, current } => AdminError::Stale { expected, current },
            other => AdminError::Store(other),
        }
    }
}

pub type Result<T, E = AdminError> = std::result::Result<T, E>;

/// The caller, as the permission rules see it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub card: Card,
    pub platform_admin: bool,
    memberships: Vec<Membership>,
    /// The login session the caller speaks through, if any.
    session: Option<Uuid>,
}

impl Caller {
    /// The caller's markers: its own slug and its orgs' (what the marker rule matches).
    pub fn markers(&self) -> Vec<String> {
        std::iter::once(self.card.slug.clone())
            .chain(self.memberships.iter().map(|m| m.org_slug.clone()))
            .collect()
    }

    /// The login session the caller speaks through, if any.
    pub fn session(&self) -> Option<Uuid> {
        self.session
    }

    /// The caller's memberships.
    pub fn memberships(&self) -> &[Membership] {
        &self.memberships
    }

    /// The caller's membership role in `org_slug`.
    pub fn role_in(&self, org_slug: &str) -> Option<MembershipRole> {
        self.memberships
            .iter()
            .filter(|m| m.org_slug == org_slug)
            .map(|m| m.role)
            .max()
    }

    /// May the caller change things inside `org_slug`?
    fn require_owner(&self, org_slug: &str) -> Result<()> {
        if self.platform_admin || self.role_in(org_slug) == Some(MembershipRole::Owner) {
            Ok(())
        } else {
            Err(AdminError::Forbidden(format!(
                "{} is not an owner of {org_slug}",
                self.card.slug
            )))
        }
    }

    /// May the caller give `role` in `org_slug`? Owners of the org, never above their own role.
    fn require_role_giver(&self, org_slug: &str, role: MembershipRole) -> Result<()> {
        self.require_owner(org_slug)?;
        if !self.platform_admin && self.role_in(org_slug) < Some(role) {
            return Err(AdminError::Forbidden(format!(
                "{} cannot grant a role above its own",
                self.card.slug
            )));
        }
        Ok(())
    }

    /// May the caller look inside `org_slug` (members, images)?
    fn require_member(&self, org_slug: &str) -> Result<()> {
        if self.platform_admin || self.role_in(org_slug).is_some() {
            Ok(())
        } else {
            Err(AdminError::Forbidden(format!(
                "{} is not a member of {org_slug}",
                self.card.slug
            )))
        }
    }

    fn require_platform_admin(&self, what: &str) -> Result<()> {
        if self.platform_admin {
            Ok(())
        } else {
            Err(AdminError::Forbidden(format!(
                "only platform admins may {what}"
            )))
        }
    }
}

/// The longest name of a new org, user, robot or role, in characters.
pub const MAX_ACCOUNT_NAME_LEN: usize = 64;

/// A name usable as an org name or a user name: lowercase letters, digits and `-`.
fn check_name(field: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_ACCOUNT_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.starts_with("user-")
        && !name.starts_with("org-");
    if valid {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "{field}: `{name}` must be 1 to {MAX_ACCOUNT_NAME_LEN} lowercase letters, digits and inner `-`, not starting with user- or org-"
        )))
    }
}

/// Names no user, robot or org may take: the built-in users' (whose accounts they are) and
/// names that read as them.
pub const RESERVED_NAMES: [&str; 3] = ["admin", "guest", "anonymous"];

/// A name for a new user, robot or org: [`check_name`], and not reserved.
fn check_new_account_name(field: &str, name: &str) -> Result<()> {
    check_name(field, name)?;
    if RESERVED_NAMES.contains(&name) {
        return Err(AdminError::Conflict(format!(
            "{field}: `{name}` is reserved for the built-in users"
        )));
    }
    Ok(())
}

/// Refuses `change` to a built-in card, saying why it would break.
fn refuse_built_in_change(card: &Card, change: &str) -> Result<()> {
    if !is_built_in(&card.slug) {
        return Ok(());
    }
    let why = match card.slug.as_str() {
        ADMIN_SLUG => "start-up and `cardgate set-password` act as it",
        GUEST_SLUG => "anonymous requests act as it",
        _ => "the built-in users depend on it; create a role of your own instead",
    };
    Err(AdminError::Forbidden(format!(
        "{} is built in and cannot be {change}: {why}",
        card.slug
    )))
}

/// The built-in actors are never members or grantees: `user-guest` is everyone (make the image
/// public instead), `user-admin` may do anything already.
fn refuse_builtin(field: &str, card: &Card) -> Result<()> {
    if card.slug == GUEST_SLUG || card.slug == ADMIN_SLUG {
        Err(AdminError::Invalid(format!(
            "{field}: {} cannot be a member or a grantee",
            card.slug
        )))
    } else {
        Ok(())
    }
}

/// The org owning a repository: its first path component.
fn owning_org(repository: &str) -> Result<String> {
    repository
        .parse::<ResourceName>()
        .map_err(|e| AdminError::Invalid(format!("repository: {e}")))?;
    match repository.split_once('/') {
        Some((namespace, _)) if check_name("repository", namespace).is_ok() => {
            Ok(Slug::org(namespace).into())
        }
        _ => Err(AdminError::Invalid(format!(
            "repository: `{repository}` must be <org>/<name> with an org name as first component"
        ))),
    }
}

/// The shortest password a user may be given, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// A token's lifetime when none is asked for: one year.
pub const DEFAULT_TOKEN_SECONDS: u64 = 365 * 24 * 3600;

/// Shortest token lifetime: a minute.
pub const MIN_TOKEN_SECONDS: u64 = 60;

/// Longest token lifetime: ten years.
pub const MAX_TOKEN_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// The fewest rows a listing (or a page of events) may be asked for.
pub const MIN_PAGE: i64 = 1;

/// The most rows a listing (or a page of events) returns at once; page on with the last slug.
pub const MAX_PAGE: i64 = 1000;

/// The rows of a listing when no `limit` is asked for.
pub const DEFAULT_PAGE: i64 = 100;

/// A page of a listing: up to `limit` ([`MIN_PAGE`] to [`MAX_PAGE`], default
/// [`DEFAULT_PAGE`]) cards after the slug `after`.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub after: Option<String>,
    pub limit: Option<i64>,
}

impl Page {
    /// The page's size; a `limit` out of range is refused naming `limit`.
    pub fn limit(&self) -> Result<i64> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(limit) if (MIN_PAGE..=MAX_PAGE).contains(&limit) => Ok(limit),
            Some(limit) => Err(AdminError::Invalid(format!(
                "limit: {limit} is not between {MIN_PAGE} and {MAX_PAGE}"
            ))),
        }
    }

    /// The cursor of the page after `cards`, this page's answer: its last slug when the page
    /// is full, so that there may be more; none when the listing is done.
    pub fn next(&self, cards: &[Card]) -> Option<String> {
        let full = self
            .limit()
            .is_ok_and(|limit| usize::try_from(limit).is_ok_and(|limit| cards.len() >= limit));
        full.then(|| cards.last().map(|card| card.slug.clone()))
            .flatten()
    }
}

/// A member of an org, with its membership role.
#[derive(Debug, Clone)]
pub struct Member {
    pub user: Card,
    pub role: MembershipRole,
}

/// An explicit grant on an image.
#[derive(Debug, Clone)]
pub struct ExplicitGrant {
    pub holder: Card,
    pub actions: Vec<String>,
}

/// The admin operations.
#[derive(Debug, Clone)]
pub struct Admin {
    store: Store,
    /// Checks passwords and session tokens, as for token requests.
    authenticator: CardAuthenticator,
    /// Explains decisions exactly as the token endpoint's authorizer makes them.
    authorizer: CardAuthorizer,
    /// How long a login session lasts.
    session_lifetime: Duration,
    /// How many tokens one account may create in an hour.
    tokens_per_hour: u32,
}

/// How many tokens one account may create in an hour, unless configured otherwise.
pub const DEFAULT_TOKENS_PER_HOUR: u32 = 100;

impl Admin {
    pub fn new(
        store: Store,
        authenticator: CardAuthenticator,
        authorizer: CardAuthorizer,
        session_lifetime: Duration,
    ) -> Self {
        Admin {
            store,
            authenticator,
            authorizer,
            session_lifetime,
            tokens_per_hour: DEFAULT_TOKENS_PER_HOUR,
        }
    }

    /// At most `limit` tokens created by one account in any hour (`admin.tokens_per_hour`).
    pub fn with_tokens_per_hour(mut self, limit: u32) -> Self {
        self.tokens_per_hour = limit;
        self
    }

    /// The caller whose card is `user_id`; `None` when it is not an active user.
    pub async fn caller(&self, user_id: Uuid) -> Result<Option<Caller>> {
        let Some(card) = self.store.card_by_id(user_id).await? else {
            return Ok(None);
        };
        if !card.active || !card.is(CardType::User) {
            return Ok(None);
        }
        let platform_admin = card.slug == ADMIN_SLUG
            || card.data["roles"]
                .as_array()
                .is_some_and(|roles| roles.iter().any(|r| r == PLATFORM_ROLE));
        let memberships = self.store.memberships(card.id).await?;
        Ok(Some(Caller {
            card,
            platform_admin,
            memberships,
            session: None,
        }))
    }

    async fn active(&self, card_type: CardType, slug: &str) -> Result<Card> {
        self.store
            .card_by_slug(slug)
            .await?
            .filter(|c| c.is(card_type))
            .ok_or_else(|| AdminError::NotFound(format!("{} {slug}", card_type.name())))
    }

    /// A page of the cards of `card_type`, marked with `marker` and whose data contain
    /// `data`, when given.
    async fn page_of(
        &self,
        card_type: CardType,
        marker: Option<&str>,
        data: Option<&Value>,
        page: &Page,
    ) -> Result<Vec<Card>> {
        Ok(self
            .store
            .cards_of_type(
                card_type,
                marker,
                data,
                page.after.as_deref(),
                page.limit()?,
            )
            .await?)
    }

    async fn image(&self, repository: &str) -> Result<Card> {
        self.store
            .image_by_repository(repository)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("image {repository}")))
    }

    /// Creates the org `org-<name>`. Platform admins only.
    pub async fn create_org(&self, caller: &Caller, name: &str) -> Result<Card> {
        caller.require_platform_admin("create orgs")?;
        check_new_account_name("name", name)?;
        Ok(self
            .store
            .create(
                &caller.card,
                NewCard::new(CardType::Org, Slug::org(name), json!({})).with_name(name),
            )
            .await?)
    }

    /// Creates the user `user-<name>` with `roles` ([`DEFAULT_ROLES`] when `None`), each a
    /// platform role ([`Admin::check_roles`]). Platform admins only (roles are platform policy).
    pub async fn create_user(
        &self,
        caller: &Caller,
        name: &str,
        roles: Option<&[String]>,
    ) -> Result<Card> {
        caller.require_platform_admin("create users")?;
        check_new_account_name("name", name)?;
        let roles = match roles {
            Some(roles) => roles.to_vec(),
            None => DEFAULT_ROLES.map(str::to_owned).to_vec(),
        };
        self.check_roles(&roles).await?;
        Ok(self
            .store
            .create(
                &caller.card,
                NewCard::new(CardType::User, Slug::user(name), json!({"roles": roles})),
            )
            .await?)
    }

    /// Creates a robot user for CI in `org_slug`: marked with the org, a member of nothing,
    /// so it reaches only what it is explicitly granted. Owners of the org.
    pub async fn create_robot(&self, caller: &Caller, org_slug: &str, name: &str) -> Result<Card> {
        caller.require_owner(org_slug)?;
        self.active(CardType::Org, org_slug).await?;
        check_new_account_name("name", name)?;
        Ok(self
            .store
            .create(
                &caller.card,
                NewCard::new(
                    CardType::User,
                    Slug::user(name),
                    json!({"roles": DEFAULT_ROLES, "robot": true}),
                )
                .with_markers(vec![org_slug.to_owned()]),
            )
            .await?)
    }

    /// Makes `user_slug` a member of `org_slug` with `role`. Owners of the org, never above
    /// their own role.
    pub async fn add_member(
        &self,
        caller: &Caller,
        org_slug: &str,
        user_slug: &str,
        role: MembershipRole,
    ) -> Result<()> {
        caller.require_role_giver(org_slug, role)?;
        let org = self.active(CardType::Org, org_slug).await?;
        let user = self.active(CardType::User, user_slug).await?;
        refuse_builtin("user", &user)?;
        self.store
            .link(
                &caller.card,
                &org,
                LinkVerb::HasMember,
                &user,
                json!({"role": role}),
            )
            .await?;
        Ok(())
    }

    /// Removes `user_slug` from `org_slug`. Owners of the org.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        org_slug: &str,
        user_slug: &str,
    ) -> Result<()> {
        caller.require_owner(org_slug)?;
        let org = self.active(CardType::Org, org_slug).await?;
        let user = self.active(CardType::User, user_slug).await?;
        self.store
            .unlink(&caller.card, &org, LinkVerb::HasMember, &user)
            .await?;
        Ok(())
    }

    /// Creates the image for `repository` (marked with its org). Owners of the org.
    pub async fn create_image(
        &self,
        caller: &Caller,
        repository: &str,
        public: bool,
    ) -> Result<Card> {
        let org_slug = owning_org(repository)?;
        caller.require_owner(&org_slug)?;
        self.active(CardType::Org, &org_slug).await?;
        Ok(self
            .store
            .create(&caller.card, NewCard::image(repository, &org_slug, public))
            .await?)
    }

    /// Opens `repository` to the public or closes it, if the image is at `revision`. Owners of
    /// the org.
    pub async fn set_public(
        &self,
        caller: &Caller,
        repository: &str,
        revision: i64,
        public: bool,
    ) -> Result<Card> {
        caller.require_owner(&owning_org(repository)?)?;
        let image = self.image(repository).await?;
        self.patch(caller, &image, revision, "/data/public", json!(public))
            .await
    }

    /// Deactivates the image of `repository` (at `revision`). Owners of the org.
    pub async fn deactivate_image(
        &self,
        caller: &Caller,
        repository: &str,
        revision: i64,
    ) -> Result<Card> {
        caller.require_owner(&owning_org(repository)?)?;
        let image = self.image(repository).await?;
        Ok(self
            .store
            .deactivate(&caller.card, image.id, Some(revision))
            .await?)
    }

    /// Grants `holder_slug` (a user or an org) `actions` on `repository`. Owners of the
    /// image's org.
    pub async fn grant(
        &self,
        caller: &Caller,
        holder_slug: &str,
        repository: &str,
        actions: &[String],
    ) -> Result<()> {
        caller.require_owner(&owning_org(repository)?)?;
        let image = self.image(repository).await?;
        let holder = self.holder(holder_slug).await?;
        self.store
            .link(
                &caller.card,
                &holder,
                LinkVerb::HasAccessTo,
                &image,
                json!({"actions": actions}),
            )
            .await?;
        Ok(())
    }

    /// Revokes the grant of `holder_slug` on `repository`. Owners of the image's org.
    pub async fn revoke(&self, caller: &Caller, holder_slug: &str, repository: &str) -> Result<()> {
        caller.require_owner(&owning_org(repository)?)?;
        let image = self.image(repository).await?;
        let holder = self.holder(holder_slug).await?;
        self.store
            .unlink(&caller.card, &holder, LinkVerb::HasAccessTo, &image)
            .await?;
        Ok(())
    }

    async fn holder(&self, slug: &str) -> Result<Card> {
        let card = self
            .store
            .card_by_slug(slug)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("user or org {slug}")))?;
        if [CardType::User.name(), CardType::Org.name()].contains(&card.base_type()) {
            refuse_builtin("holder", &card)?;
            Ok(card)
        } else {
            Err(AdminError::Invalid(format!(
                "holder: {slug} is neither a user nor an org"
            )))
        }
    }

    /// Changes the role of `user_slug` in `org_slug`. Owners of the org, never above their
    /// own role.
    pub async fn set_member_role(
        &self,
        caller: &Caller,
        org_slug: &str,
        user_slug: &str,
        role: MembershipRole,
    ) -> Result<()> {
        caller.require_role_giver(org_slug, role)?;
        let org = self.active(CardType::Org, org_slug).await?;
        let user = self.active(CardType::User, user_slug).await?;
        self.store
            .update_link(
                &caller.card,
                &org,
                LinkVerb::HasMember,
                &user,
                json!({"role": role}),
            )
            .await?;
        Ok(())
    }

    /// The orgs the caller may look inside: all of them for platform admins, else its own.
    pub async fn orgs(&self, caller: &Caller, page: &Page) -> Result<Vec<Card>> {
        if caller.platform_admin {
            return self.page_of(CardType::Org, None, None, page).await;
        }
        let mut slugs: Vec<&str> = caller
            .memberships
            .iter()
            .map(|m| m.org_slug.as_str())
            .filter(|slug| page.after.as_deref().is_none_or(|after| *slug > after))
            .collect();
        slugs.sort_unstable();
        slugs.dedup();
        let mut orgs = Vec::new();
        for slug in slugs
            .into_iter()
            .take(usize::try_from(page.limit()?).unwrap_or(0))
        {
            orgs.extend(self.store.card_by_slug(slug).await?);
        }
        Ok(orgs)
    }

    /// The members of `org_slug` and their roles. Members of the org.
    pub async fn members(&self, caller: &Caller, org_slug: &str) -> Result<Vec<Member>> {
        caller.require_member(org_slug)?;
        let org = self.active(CardType::Org, org_slug).await?;
        Ok(self
            .store
            .linked(org.id, LinkVerb::HasMember.name())
            .await?
            .into_iter()
            .filter_map(|(user, data)| {
                let role = data["role"].as_str()?.parse().ok()?;
                Some(Member { user, role })
            })
            .collect())
    }

    /// The robots of `org_slug`. Owners of the org.
    pub async fn robots(&self, caller: &Caller, org_slug: &str, page: &Page) -> Result<Vec<Card>> {
        caller.require_owner(org_slug)?;
        self.active(CardType::Org, org_slug).await?;
        self.page_of(
            CardType::User,
            Some(org_slug),
            Some(&json!({"robot": true})),
            page,
        )
        .await
    }

    /// The images of `org_slug`; with `name`, only those whose repository name starts with
    /// `<org>/<name>`. Members of the org.
    pub async fn images(
        &self,
        caller: &Caller,
        org_slug: &str,
        page: &Page,
        name: Option<&str>,
    ) -> Result<Vec<Card>> {
        caller.require_member(org_slug)?;
        let limit = page.limit()?;
        self.active(CardType::Org, org_slug).await?;
        let org = org_slug.strip_prefix("org-").unwrap_or(org_slug);
        let prefix = name
            .filter(|name| !name.is_empty())
            .map(|name| format!("{org}/{name}"));
        Ok(self
            .store
            .images_of(org_slug, prefix.as_deref(), page.after.as_deref(), limit)
            .await?)
    }

    /// The explicit grants on `repository`. Owners of its org.
    pub async fn grants(&self, caller: &Caller, repository: &str) -> Result<Vec<ExplicitGrant>> {
        caller.require_owner(&owning_org(repository)?)?;
        let image = self.image(repository).await?;
        Ok(self
            .store
            .linked(image.id, LinkVerb::HasAccessTo.inverse())
            .await?
            .into_iter()
            .map(|(holder, data)| ExplicitGrant {
                holder,
                actions: serde_json::from_value(data["actions"].clone()).unwrap_or_default(),
            })
            .collect())
    }

    /// The user `user_slug`, for whoever manages it.
    pub async fn user(&self, caller: &Caller, user_slug: &str) -> Result<Card> {
        self.managed_user(caller, user_slug).await
    }

    /// The active user `user_slug` if the caller manages it. Callers who manage only some users
    /// learn nothing of the others: absent or not theirs, the answer is the same refusal.
    async fn managed_user(&self, caller: &Caller, user_slug: &str) -> Result<Card> {
        match self.active(CardType::User, user_slug).await {
            Ok(user) => {
                self.require_user_manager(caller, &user)?;
                Ok(user)
            }
            Err(AdminError::NotFound(_)) if !caller.platform_admin => Err(AdminError::Forbidden(
                format!("{} may not manage {user_slug}", caller.card.slug),
            )),
            Err(e) => Err(e),
        }
    }

    /// All users. Platform admins only.
    pub async fn users(&self, caller: &Caller, page: &Page) -> Result<Vec<Card>> {
        caller.require_platform_admin("list all users")?;
        self.page_of(CardType::User, None, None, page).await
    }

    /// Replaces the platform roles of `user_slug` (at `revision`). Platform admins only.
    pub async fn set_roles(
        &self,
        caller: &Caller,
        user_slug: &str,
        revision: i64,
        roles: &[String],
    ) -> Result<Card> {
        caller.require_platform_admin("change users' roles")?;
        let user = self.active(CardType::User, user_slug).await?;
        refuse_built_in_change(&user, "given other roles")?;
        self.check_roles(roles).await?;
        self.patch(caller, &user, revision, "/data/roles", json!(roles))
            .await
    }

    /// Refuses, naming `roles`, more than [`MAX_ROLES`] roles, or a role that is neither
    /// [`PLATFORM_ROLE`] nor the name of an active role card (`x` for `role-x`): a misspelt
    /// role would otherwise leave its user reaching nothing, silently.
    pub async fn check_roles(&self, roles: &[String]) -> Result<()> {
        if roles.len() > MAX_ROLES {
            return Err(AdminError::Invalid(format!(
                "roles: at most {MAX_ROLES} roles"
            )));
        }
        for role in roles {
            if role == PLATFORM_ROLE {
                continue;
            }
            // Only a name a slug can hold is looked up.
            let slug_like = !role.is_empty()
                && role.len() <= MAX_ACCOUNT_NAME_LEN
                && role
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            let card = if slug_like {
                self.store.card_by_slug(&Slug::role(role)).await?
            } else {
                None
            };
            if !card.is_some_and(|card| card.is(CardType::Role)) {
                return Err(AdminError::Invalid(format!(
                    "roles: `{role}` is neither {PLATFORM_ROLE} nor an active role (role-<name>)"
                )));
            }
        }
        Ok(())
    }

    /// All role cards. Platform admins only.
    pub async fn roles(&self, caller: &Caller, page: &Page) -> Result<Vec<Card>> {
        caller.require_platform_admin("list roles")?;
        self.page_of(CardType::Role, None, None, page).await
    }

    /// Creates the role card `role-<name>` whose holders read the cards `read` (a JSON Schema,
    /// or `true`) admits, and list the catalog when `catalog`. Platform admins only.
    pub async fn create_role(
        &self,
        caller: &Caller,
        name: &str,
        read: Value,
        catalog: bool,
    ) -> Result<Card> {
        caller.require_platform_admin("create roles")?;
        check_name("name", name)?;
        Ok(self
            .store
            .create(
                &caller.card,
                NewCard::new(
                    CardType::Role,
                    Slug::role(name),
                    json!({"read": read, "catalog": catalog}),
                )
                .with_name(name),
            )
            .await?)
    }

    /// Replaces the read schema and catalog flag of the role `role-<name>` (at `revision`).
    /// Platform admins only.
    pub async fn update_role(
        &self,
        caller: &Caller,
        name: &str,
        revision: i64,
        read: Value,
        catalog: bool,
    ) -> Result<Card> {
        caller.require_platform_admin("change roles")?;
        let role = self.active(CardType::Role, &Slug::role(name)).await?;
        refuse_built_in_change(&role, "changed")?;
        self.patch(
            caller,
            &role,
            revision,
            "/data",
            json!({"read": read, "catalog": catalog}),
        )
        .await
    }

    /// Deactivates the role `role-<name>` (at `revision`). Platform admins only.
    pub async fn deactivate_role(
        &self,
        caller: &Caller,
        name: &str,
        revision: i64,
    ) -> Result<Card> {
        caller.require_platform_admin("deactivate roles")?;
        let role = self.active(CardType::Role, &Slug::role(name)).await?;
        refuse_built_in_change(&role, "deactivated")?;
        Ok(self
            .store
            .deactivate(&caller.card, role.id, Some(revision))
            .await?)
    }

    /// Replaces the value at `path` of `card` (at `revision`) with one JSON Patch operation.
    async fn patch(
        &self,
        caller: &Caller,
        card: &Card,
        revision: i64,
        path: &str,
        value: Value,
    ) -> Result<Card> {
        let patch =
            serde_json::from_value(json!([{"op": "replace", "path": path, "value": value}]))
                .map_err(|e| AdminError::Invalid(format!("patch: {e}")))?;
        Ok(self
            .store
            .update(&caller.card, card.id, revision, &patch)
            .await?)
    }

    /// The user whose password the caller may set: the user itself, a platform admin, or an
    /// owner of the org a robot belongs to; never a built-in user. `user-admin`'s password is
    /// set only on the host, by `cardgate set-password admin` (which writes to the database
    /// directly), so that a stolen admin login cannot take the account over for good; `user-guest`
    /// has none. Ask before hashing a password: a refusal costs no hashing.
    pub async fn password_user(&self, caller: &Caller, user_slug: &str) -> Result<Card> {
        let user = self.managed_user(caller, user_slug).await?;
        match user.slug.as_str() {
            ADMIN_SLUG => Err(AdminError::Forbidden(format!(
                "the password of {ADMIN_SLUG} is set only on the host, with `cardgate set-password admin`"
            ))),
            GUEST_SLUG => Err(AdminError::Forbidden(format!(
                "{GUEST_SLUG} is built in and has no password: anonymous requests act as it"
            ))),
            _ => Ok(user),
        }
    }

    /// Sets the password (an argon2id hash) of `user_slug`, for whoever
    /// [`Admin::password_user`] allows.
    pub async fn set_password(&self, caller: &Caller, user_slug: &str, hash: &str) -> Result<()> {
        let user = self.password_user(caller, user_slug).await?;
        self.store.set_password(&caller.card, &user, hash).await?;
        Ok(())
    }

    /// Deactivates `user_slug`: platform admins, or owners of the org of a robot; never a
    /// built-in user.
    pub async fn deactivate_user(&self, caller: &Caller, user_slug: &str) -> Result<Card> {
        let user = self.managed_user(caller, user_slug).await?;
        refuse_built_in_change(&user, "deactivated")?;
        if user.id == caller.card.id {
            return Err(AdminError::Forbidden(
                "users cannot deactivate themselves".into(),
            ));
        }
        Ok(self.store.deactivate(&caller.card, user.id, None).await?)
    }

    /// Sets the password of `user_slug` to `password`, of at least [`MIN_PASSWORD_CHARS`]
    /// characters, stored as an argon2id hash, for whoever [`Admin::password_user`] allows.
    /// Refusals cost no hashing; the hash is computed off the async workers.
    pub async fn change_password(
        &self,
        caller: &Caller,
        user_slug: &str,
        password: SecretString,
    ) -> Result<()> {
        if password.expose_secret().chars().count() < MIN_PASSWORD_CHARS {
            return Err(AdminError::Invalid(format!(
                "password: at least {MIN_PASSWORD_CHARS} characters"
            )));
        }
        self.password_user(caller, user_slug).await?;
        let hash = cardgate_password::hash(&password)
            .await
            .map_err(|e| AdminError::Backend(PluginError::internal("cards", e.to_string())))?;
        self.set_password(caller, user_slug, &hash).await
    }

    /// Opens a token for `user_slug` (see [`Admin::create_token`]) lasting `seconds` (default
    /// [`DEFAULT_TOKEN_SECONDS`], [`MIN_TOKEN_SECONDS`] to [`MAX_TOKEN_SECONDS`]).
    pub async fn open_token(
        &self,
        caller: &Caller,
        user_slug: &str,
        seconds: Option<u64>,
        scope: Option<Value>,
    ) -> Result<IssuedSession> {
        let seconds = seconds.unwrap_or(DEFAULT_TOKEN_SECONDS);
        if !(MIN_TOKEN_SECONDS..=MAX_TOKEN_SECONDS).contains(&seconds) {
            return Err(AdminError::Invalid(format!(
                "expires_in_seconds: between {MIN_TOKEN_SECONDS} and {MAX_TOKEN_SECONDS}"
            )));
        }
        let expiration = time::OffsetDateTime::now_utc()
            + time::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
        self.create_token(caller, user_slug, expiration, scope)
            .await
    }

    /// Opens a token (a session) for `user_slug`, valid until `expiration`, optionally narrowed
    /// by `scope` (a JSON Schema the cards it reaches must satisfy): robots' tokens for CI.
    /// The user itself, platform admins, or owners of the org of a robot.
    pub async fn create_token(
        &self,
        caller: &Caller,
        user_slug: &str,
        expiration: time::OffsetDateTime,
        scope: Option<Value>,
    ) -> Result<IssuedSession> {
        let user = self.managed_user(caller, user_slug).await?;
        // Counted from the audit trail: every instance sees the same count. Requests in flight
        // at once may overshoot the limit by their number.
        let hour = time::Duration::hours(1);
        let made = self
            .store
            .tokens_created_by(caller.card.id, time::OffsetDateTime::now_utc() - hour)
            .await?;
        if made >= u64::from(self.tokens_per_hour) {
            return Err(AdminError::TooManyTokens {
                limit: self.tokens_per_hour,
                retry_after_seconds: 60,
            });
        }
        Ok(self
            .store
            .create_session(&caller.card, &user, expiration, scope)
            .await?)
    }

    /// The active sessions and tokens of `user_slug` (refresh tokens included), for whoever
    /// manages the user.
    pub async fn sessions(&self, caller: &Caller, user_slug: &str) -> Result<Vec<Card>> {
        let user = self.managed_user(caller, user_slug).await?;
        Ok(self.store.sessions_of(user.id).await?)
    }

    /// Revokes the session (or token, or refresh token) `id`, for whoever manages its user.
    pub async fn revoke_session(&self, caller: &Caller, id: Uuid) -> Result<Card> {
        let session = self
            .store
            .card_by_id(id)
            .await?
            .filter(|s| s.active && s.is(CardType::Session))
            .ok_or_else(|| AdminError::NotFound(format!("session {id}")))?;
        let user = session
            .actor()
            .ok_or_else(|| AdminError::NotFound(format!("the user of session {id}")))?;
        let user = self
            .store
            .card_by_id(user)
            .await?
            .ok_or_else(|| AdminError::NotFound(format!("the user of session {id}")))?;
        self.require_user_manager(caller, &user)?;
        Ok(self.store.deactivate(&caller.card, id, None).await?)
    }

    /// Platform admins manage every user; org owners manage their org's robots; people (not
    /// robots) manage themselves.
    fn require_user_manager(&self, caller: &Caller, user: &Card) -> Result<()> {
        let robot = user.data["robot"] == json!(true);
        if caller.platform_admin || (caller.card.id == user.id && !robot) {
            return Ok(());
        }
        let robot_of_owned_org = robot
            && user
                .markers
                .iter()
                .any(|org| caller.role_in(org) == Some(MembershipRole::Owner));
        if robot_of_owned_org {
            Ok(())
        } else {
            Err(AdminError::Forbidden(format!(
                "{} may not manage {}",
                caller.card.slug, user.slug
            )))
        }
    }
}
