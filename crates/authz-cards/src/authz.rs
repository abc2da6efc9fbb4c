//! Authorization against the card store.
//!
//! For a `repository` scope, the image card is found by `data.repository`; the org owning the
//! namespace is the first path component (`acme/team/web` → `org-acme`). A name without a
//! namespace (`acme`) is not the card store's: nothing is granted or created for it. Then:
//!
//! - a public image allows `pull` to anyone, scoped session or not (an anonymous request gets
//!   it anyway);
//! - everything else needs the session's scope (if the request came with a scoped session) to
//!   admit the image card, for every actor, `user-admin` included. Then:
//!   - `user-admin` is allowed everything;
//!   - if the image is visible to the actor (every marker matched by the actor's markers, and
//!     at least one of the actor's role read schemas admits it): `pull`; with membership role
//!     developer or higher in the owning org `push`, maintainer or higher `delete`, owner `*`;
//!   - explicit `has access to` grants from the actor or its orgs add their actions.
//!
//! A push into a namespace where the actor may push creates the missing image card (private,
//! marked with the org), so first pushes work. The card is judged before it exists exactly as
//! it will be stored ([`NewCard::image`]): a session's scope that would not admit it does not
//! let the push create it. One token request creates at most [`MAX_IMAGES_CREATED_PER_REQUEST`]
//! images (a registry client asks for one repository per push, two for a cross-repository
//! mount); later scopes of the request do not create.
//!
//! `registry:catalog` lists every repository, whatever a scope admits, so a scoped session
//! never gets it unless its scope admits every card (`true` or `{}`). Within that, it is
//! allowed to `user-admin` and to actors holding a role card with `data.catalog = true`.
//! Other scopes are not this plugin's.
//!
//! Role read schemas and session scopes are [`PolicySchema`]s, compiled with a linear-time
//! pattern engine and bounded size once per card revision (kept in a bounded cache of compiled
//! schemas); one the store holds that breaks those bounds admits nothing (and is logged). The
//! actor's card, memberships, roles and session come from the store in one query.
//!
//! Once the owning org is over its storage quota (see `docs/registry-events.md`), push is
//! refused on its repositories, to everyone but `user-admin`, explicit grantees included
//! (`*` becomes `pull` and `delete`), and no first push creates an image.
//!
//! Decisions are cached with the tags of the facts they rest on (see the `cache` module).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use cardgate_authz::{Authorizer, Decision, Identity, PluginError};
use cardgate_store::{
    ADMIN_SLUG, Card, GUEST_SLUG, Membership, MembershipRole, NewCard, PolicyCard, PolicySchema,
    Slug, Store, markers_allow,
};
use cardgate_token::{Action, ActionSet, Scope};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cache::{Cache, CacheSettings, DECISIONS, Tag, store_changes, tags};
use crate::explain::{Assessment, Explanation, Subject};
use crate::{NAME, plugin_error, user_slug};

/// The most image cards one token request creates on first pushes.
pub const MAX_IMAGES_CREATED_PER_REQUEST: usize = 2;

/// What a cached decision was asked for: the account, its session and the scope.
type DecisionKey = (String, Option<String>, Scope);

/// Decides scopes from the card store.
///
/// Decisions are cached (see [`CacheSettings`]) by account, session and scope, each with the
/// facts it rests on; a change to one of those facts drops it, so a cached decision is always
/// the one the store gives now.
#[derive(Debug, Clone)]
pub struct CardAuthorizer {
    store: Store,
    decisions: Arc<Cache<DecisionKey, Decision>>,
    schemas: Arc<CompiledSchemas>,
}

/// How many compiled policy schemas are kept (a few per role and per scoped session in use).
const COMPILED_SCHEMAS: usize = 4096;

/// A policy schema as a card holds it, compiled, or refused (`None`: admits nothing).
type Compiled = Option<Arc<PolicySchema>>;

/// Compiled policy schemas by card id and revision, with the schema they were compiled from
/// (a revision names one content, but a card written past the store keeps its revision).
/// Bounded: a full cache starts over.
#[derive(Debug, Default)]
struct CompiledSchemas {
    compiled: Mutex<HashMap<SchemaKey, (Value, Compiled)>>,
}

/// A card's id and revision, and the field holding the schema.
type SchemaKey = (Uuid, i64, &'static str);

impl CompiledSchemas {
    /// The compiled `field` of `card`, compiled now when not kept.
    fn get(&self, card: &PolicyCard, field: &'static str, schema: &Value) -> Compiled {
        let key = (card.id, card.revision, field);
        let lock = || self.compiled.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((source, compiled)) = lock().get(&key)
            && source == schema
        {
            return compiled.clone();
        }
        let compiled = policy(schema, &card.slug, field).map(Arc::new);
        let mut kept = lock();
        if kept.len() >= COMPILED_SCHEMAS {
            kept.clear();
        }
        kept.insert(key, (schema.clone(), compiled.clone()));
        compiled
    }
}

/// A policy schema as a card in the store holds it: compiled, or refused (admitting nothing)
/// when it breaks the bounds that keep evaluating it cheap.
fn policy(schema: &Value, slug: &str, field: &str) -> Option<PolicySchema> {
    match PolicySchema::compile(schema) {
        Ok(schema) => Some(schema),
        Err(error) => {
            tracing::warn!(
                card = %slug,
                field,
                %error,
                "a policy schema in the store is refused: it admits nothing"
            );
            None
        }
    }
}

/// The scope of the session a request came with.
enum SessionScope {
    /// No session, or a session without `data.scope`.
    Unscoped,
    /// `None`: the scope the store holds is refused, and admits nothing.
    Scoped(Compiled),
}

/// What the store says about the actor, loaded once per request.
struct Actor {
    card: Card,
    memberships: Vec<Membership>,
    /// The actor's markers: its slug and its orgs' slugs.
    markers: Vec<String>,
    /// Compiled read schemas of the actor's roles (a refused one's role counts for nothing).
    read: Vec<Arc<PolicySchema>>,
    catalog: bool,
    session_scope: SessionScope,
    /// The facts all of the above rest on: the actor's card, its links, its orgs, the role
    /// cards it names (present or not) and its session.
    depends_on: Vec<Tag>,
}

impl Actor {
    fn is_admin(&self) -> bool {
        self.card.slug == ADMIN_SLUG
    }

    fn role_in(&self, org_slug: &str) -> Option<MembershipRole> {
        self.memberships
            .iter()
            .filter(|m| m.org_slug == org_slug)
            .map(|m| m.role)
            .max()
    }

    fn in_session_scope(&self, card: &Value) -> bool {
        match &self.session_scope {
            SessionScope::Unscoped => true,
            SessionScope::Scoped(scope) => scope.as_ref().is_some_and(|s| s.admits(card)),
        }
    }

    /// Whether the session's scope, if any, admits every card.
    fn scope_admits_everything(&self) -> bool {
        match &self.session_scope {
            SessionScope::Unscoped => true,
            SessionScope::Scoped(scope) => scope.as_ref().is_some_and(|s| s.admits_everything()),
        }
    }

    /// The card's markers none of whose `+`-parts is among the actor's markers.
    fn unmatched(&self, card_markers: &[String]) -> Vec<String> {
        card_markers
            .iter()
            .filter(|m| !markers_allow(std::slice::from_ref(m), &self.markers))
            .cloned()
            .collect()
    }

    /// Whether a read schema of one of the actor's roles admits the card.
    fn reads(&self, card: &Value) -> bool {
        self.read.iter().any(|r| r.admits(card))
    }
}

/// The actions a membership role brings on a visible image.
fn role_actions(role: Option<MembershipRole>) -> ActionSet {
    let mut set = ActionSet::of(&[Action::Pull]);
    if role >= Some(MembershipRole::Developer) {
        set = set.with(Action::Push);
    }
    if role >= Some(MembershipRole::Maintainer) {
        set = set.with(Action::Delete);
    }
    if role >= Some(MembershipRole::Owner) {
        set = set.with(Action::All);
    }
    set
}

/// The org owning `repository`'s namespace, `None` for a name without one.
fn owning_org(repository: &str) -> Option<String> {
    repository
        .split_once('/')
        .map(|(namespace, _)| Slug::org(namespace).into())
}

/// The decision a subject amounts to. A repository without an image card (or without a
/// namespace) is not decided here.
fn decision(subject: &Subject) -> Decision {
    match subject {
        Subject::Admin => Decision::Allowed(ActionSet::of(&[Action::All])),
        Subject::Repository(assessment) if assessment.image_exists => {
            Decision::Allowed(assessment.allowed)
        }
        Subject::Repository(_) | Subject::NoNamespace => Decision::NoMatch,
        Subject::Catalog { allowed: true, .. } => Decision::Allowed(ActionSet::of(&[Action::All])),
        Subject::Catalog { allowed: false, .. } | Subject::Unknown => {
            Decision::Allowed(ActionSet::EMPTY)
        }
    }
}

impl CardAuthorizer {
    /// An authorizer with the default cache settings.
    pub fn new(store: Store) -> Self {
        Self::with_cache(store, CacheSettings::default())
    }

    pub fn with_cache(store: Store, cache: CacheSettings) -> Self {
        CardAuthorizer {
            decisions: Arc::new(Cache::new(store_changes(&store), cache, &DECISIONS)),
            schemas: Arc::default(),
            store,
        }
    }

    /// Loads the actor; `None` when it does not exist (or is deactivated), when another
    /// authenticator vouched for the identity (its names are not the store's), or when the
    /// session it came with is gone.
    async fn actor(&self, identity: &Identity) -> Result<Option<Actor>, PluginError> {
        if identity.authenticator != NAME {
            return Ok(None);
        }
        let slug = if identity.is_anonymous() {
            GUEST_SLUG.to_owned()
        } else {
            user_slug(&identity.account)
        };
        let session = identity
            .session
            .as_deref()
            .map(Uuid::parse_str)
            .transpose()
            .map_err(|e| PluginError::internal(NAME, format!("session id: {e}")))?;
        let Some(facts) = self
            .store
            .actor_facts(&slug, session)
            .await
            .map_err(plugin_error)?
        else {
            return Ok(None);
        };
        let card = facts.card;
        let memberships = facts.memberships;
        let mut markers = vec![card.slug.clone()];
        markers.extend(memberships.iter().map(|m| m.org_slug.clone()));

        // What the query looked the roles up by: present or not, a role card created later
        // changes the answer.
        let mut role_slugs: Vec<String> = vec![Slug::role(&card.slug).into()];
        if let Some(roles) = card.data.get("roles").and_then(Value::as_array) {
            role_slugs.extend(
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|r| Slug::role(r).into()),
            );
        }
        let mut depends_on = vec![Tag::slug(&slug), Tag::links(card.id)];
        depends_on.extend(memberships.iter().map(|m| Tag::card(m.org_id)));
        depends_on.extend(role_slugs.iter().map(|r| Tag::slug(r)));
        let mut read = Vec::new();
        let mut catalog = false;
        for role in &facts.roles {
            // A role whose read schema is refused counts for nothing, its catalog flag included.
            let Some(schema) = role
                .data
                .get("read")
                .and_then(|r| self.schemas.get(role, "read", r))
            else {
                continue;
            };
            read.push(schema);
            catalog |= role.data["catalog"] == json!(true);
        }

        let session_scope = match session {
            None => SessionScope::Unscoped,
            Some(id) => {
                depends_on.push(Tag::card(id));
                let Some(session) = facts.session.filter(|s| s.active) else {
                    return Ok(None);
                };
                match session.data.get("scope") {
                    Some(scope) => SessionScope::Scoped(self.schemas.get(&session, "scope", scope)),
                    None => SessionScope::Unscoped,
                }
            }
        };
        Ok(Some(Actor {
            card,
            memberships,
            markers,
            read,
            catalog,
            session_scope,
            depends_on,
        }))
    }

    /// The facts a decision on `repository` (owned by `org`) rests on. With `create_on_push`, a
    /// missing image the actor may push to is created (a first push). Adds to `depends_on` the
    /// tags of the facts read beyond the actor's.
    async fn assess(
        &self,
        actor: &Actor,
        repository: &str,
        org: &str,
        create_on_push: bool,
        depends_on: &mut Vec<Tag>,
    ) -> Result<Assessment, PluginError> {
        let membership = actor.role_in(org);
        let mut assessment = Assessment {
            repository: repository.to_owned(),
            org: org.to_owned(),
            image_exists: false,
            image_created: false,
            retired: false,
            public: false,
            in_session_scope: true,
            markers: vec![org.to_owned()],
            unmatched_markers: Vec::new(),
            readable_by_role: false,
            membership,
            granted: Vec::new(),
            over_quota: false,
            allowed: ActionSet::EMPTY,
        };
        let image = match self
            .store
            .image_by_repository(repository)
            .await
            .map_err(plugin_error)?
        {
            Some(image) => image,
            None => {
                // A first push creates the image, when the actor could push to it once created:
                // judged as the very card that would be stored.
                let prospective = NewCard::image(repository, org, false);
                let card = prospective.to_json();
                assessment.in_session_scope = actor.in_session_scope(&card);
                assessment.unmatched_markers = actor.unmatched(&prospective.markers);
                assessment.readable_by_role = actor.reads(&card);
                let may_create = membership >= Some(MembershipRole::Developer)
                    && assessment.in_session_scope
                    && assessment.unmatched_markers.is_empty()
                    && assessment.readable_by_role;
                if !may_create {
                    return Ok(assessment);
                }
                // An org over its quota gets no new image either.
                if self.over_quota(org, depends_on).await? {
                    assessment.over_quota = true;
                    return Ok(assessment);
                }
                // A deactivated image's name stays retired: recreating it would expose its
                // blobs under new markers.
                assessment.retired = self
                    .store
                    .image_ever_existed(repository)
                    .await
                    .map_err(plugin_error)?;
                if assessment.retired || !create_on_push {
                    return Ok(assessment);
                }
                let image = self
                    .store
                    .ensure_image(&actor.card, &prospective)
                    .await
                    .map_err(plugin_error)?;
                tracing::info!(repository, actor = %actor.card.slug, "image created on first push");
                assessment.image_created = image.id == prospective.id;
                image
            }
        };
        // Grants on the image are links to it.
        depends_on.push(Tag::links(image.id));
        let card = image.to_json();
        assessment.image_exists = true;
        assessment.public = image.data["public"] == json!(true);
        assessment.markers = image.markers.clone();
        assessment.in_session_scope = actor.in_session_scope(&card);
        assessment.unmatched_markers = actor.unmatched(&image.markers);
        assessment.readable_by_role = actor.reads(&card);
        if assessment.public {
            assessment.allowed = assessment.allowed.with(Action::Pull);
        }
        // Beyond public pulls, everything needs the session's scope and a role's read schema to
        // admit the image; the markers are matched, or an explicit grant stands in for them.
        if assessment.in_session_scope && assessment.readable_by_role {
            if assessment.unmatched_markers.is_empty() {
                assessment.allowed = assessment.allowed.union(role_actions(membership));
            }
            let mut holders = vec![actor.card.id];
            holders.extend(actor.memberships.iter().map(|m| m.org_id));
            assessment.granted = self
                .store
                .granted_actions(image.id, &holders)
                .await
                .map_err(plugin_error)?;
            assessment.allowed = assessment
                .granted
                .iter()
                .filter_map(|a| a.parse::<Action>().ok())
                .fold(assessment.allowed, ActionSet::with);
        }
        // Over quota, push goes (`*` becomes pull and delete); only decisions that would allow
        // a push depend on the quota.
        if (assessment.allowed.contains(Action::Push) || assessment.allowed.contains(Action::All))
            && self.over_quota(org, depends_on).await?
        {
            assessment.over_quota = true;
            let allowed = if assessment.allowed.contains(Action::All) {
                ActionSet::EXPLICIT
            } else {
                assessment.allowed
            };
            assessment.allowed =
                allowed.intersection(ActionSet::of(&[Action::Pull, Action::Delete]));
            tracing::info!(
                repository,
                org,
                actor = %actor.card.slug,
                "push refused: the org is over its storage quota"
            );
        }
        Ok(assessment)
    }

    /// Whether `org` is over its storage quota; the decision then depends on that fact.
    async fn over_quota(&self, org: &str, depends_on: &mut Vec<Tag>) -> Result<bool, PluginError> {
        depends_on.push(Tag::quota(org));
        self.store.over_quota(org).await.map_err(plugin_error)
    }

    /// Whether the session's scope admits the image card of `repository`, or the card a first
    /// push would create when there is none.
    async fn scope_admits_image(
        &self,
        actor: &Actor,
        repository: &str,
        org: &str,
    ) -> Result<bool, PluginError> {
        if let SessionScope::Unscoped = actor.session_scope {
            return Ok(true);
        }
        let card = match self
            .store
            .image_by_repository(repository)
            .await
            .map_err(plugin_error)?
        {
            Some(image) => image.to_json(),
            None => NewCard::image(repository, org, false).to_json(),
        };
        Ok(actor.in_session_scope(&card))
    }

    /// What a decision on `scope` is about, and its facts: the one derivation both the
    /// decision and its explanation come from. With `create_on_push`, a first push creates
    /// the image. Adds to `depends_on` the tags of the facts read beyond the actor's.
    async fn subject(
        &self,
        actor: &Actor,
        scope: &Scope,
        create_on_push: bool,
        depends_on: &mut Vec<Tag>,
    ) -> Result<Subject, PluginError> {
        let name = scope.name.as_str();
        match scope.resource_type.as_str() {
            "repository" => {
                let Some(org) = owning_org(name) else {
                    return Ok(Subject::NoNamespace);
                };
                // The image of the name: its card, or its absence (and whether one ever was).
                depends_on.push(Tag::repository(name));
                if actor.is_admin() && self.scope_admits_image(actor, name, &org).await? {
                    return Ok(Subject::Admin);
                }
                let create_on_push = create_on_push && scope.actions.contains(Action::Push);
                Ok(Subject::Repository(
                    self.assess(actor, name, &org, create_on_push, depends_on)
                        .await?,
                ))
            }
            "registry" if name == "catalog" => {
                let unscoped = actor.scope_admits_everything();
                if actor.is_admin() && unscoped {
                    return Ok(Subject::Admin);
                }
                let by_role = actor.catalog || actor.is_admin();
                Ok(Subject::Catalog {
                    allowed: by_role && unscoped,
                    by_role,
                    scope_admits_everything: unscoped,
                })
            }
            _ => Ok(Subject::Unknown),
        }
    }

    /// The facts behind the decision for `identity` on `scope`, without side effects (a push
    /// that would create the image does not). `None` when the actor does not exist.
    pub async fn explain(
        &self,
        identity: &Identity,
        scope: &Scope,
    ) -> Result<Option<Explanation>, PluginError> {
        let Some(actor) = self.actor(identity).await? else {
            return Ok(None);
        };
        let subject = self.subject(&actor, scope, false, &mut Vec::new()).await?;
        Ok(Some(Explanation {
            actor: actor.card.slug,
            subject,
        }))
    }
}

#[async_trait]
impl Authorizer for CardAuthorizer {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn authorize(&self, identity: &Identity, scope: &Scope) -> Result<Decision, PluginError> {
        Ok(self
            .authorize_request(identity, std::slice::from_ref(scope))
            .await?
            .pop()
            .unwrap_or(Decision::NoMatch))
    }

    /// Loads the actor (and compiles its schemas) once for the whole request, and creates at
    /// most [`MAX_IMAGES_CREATED_PER_REQUEST`] images.
    async fn authorize_request(
        &self,
        identity: &Identity,
        scopes: &[Scope],
    ) -> Result<Vec<Decision>, PluginError> {
        let mut decisions = Vec::with_capacity(scopes.len());
        // Loaded on the first scope the cache cannot answer; `Some(None)`: no such actor.
        let mut actor: Option<Option<Actor>> = None;
        // The epoch read before the actor was loaded.
        let mut actor_generation = None;
        let mut created = 0;
        for scope in scopes {
            let kind = scope.resource_type.as_str();
            if (kind != "repository" && kind != "registry") || identity.authenticator != NAME {
                decisions.push(Decision::NoMatch);
                continue;
            }
            let key = (
                identity.account.clone(),
                identity.session.clone(),
                scope.clone(),
            );
            if let Some(decision) = self.decisions.get(&key) {
                decisions.push(decision);
                continue;
            }
            // Read before the store (the actor's facts included, read once for the request): a
            // change made meanwhile makes this decision stale.
            if actor.is_none() {
                actor_generation = self.decisions.generation();
                actor = Some(self.actor(identity).await?);
            }
            let generation = actor_generation;
            let Some(Some(actor)) = &actor else {
                decisions.push(Decision::NoMatch);
                continue;
            };
            let may_create = created < MAX_IMAGES_CREATED_PER_REQUEST;
            let mut depends_on = actor.depends_on.clone();
            let subject = self
                .subject(actor, scope, may_create, &mut depends_on)
                .await?;
            if let Subject::Repository(assessment) = &subject
                && assessment.image_created
            {
                created += 1;
            }
            let decision = decision(&subject);
            // A decision taken without the right to create is not the one a request of its own
            // would get.
            let complete = may_create || !scope.actions.contains(Action::Push);
            if let Some(generation) = generation
                && complete
            {
                self.decisions
                    .insert(generation, key, decision, None, tags(depends_on));
            }
            decisions.push(decision);
        }
        Ok(decisions)
    }
}
