//! Authorization against the card store.
//!
//! For a `repository` scope, the image card is found by `data.repository`; the org owning the
//! namespace is the first path component (`acme/team/web` → `org-acme`). Then:
//!
//! - an admin (`user-admin`) is allowed everything;
//! - a public image allows `pull` to anyone;
//! - when the session's scope (if any) admits the image:
//!   - if the image is visible to the actor (every marker matched by the actor's markers, and
//!     at least one of the actor's role read schemas admits it): `pull`; with membership role
//!     developer or higher in the owning org `push`, maintainer or higher `delete`, owner `*`;
//!   - explicit `has access to` grants from the actor or its orgs add their actions.
//!
//! A push into a namespace where the actor may push creates the missing image card (private,
//! marked with the org), so first pushes work. `registry:catalog` is allowed to admins and to
//! actors holding a role card with `data.catalog = true`. Other scopes are not this plugin's.

use std::sync::Arc;

use async_trait::async_trait;
use cardgate_authz::{Authorizer, Decision, Identity, PluginError};
use cardgate_store::{
    ADMIN_SLUG, Card, GUEST_SLUG, Membership, MembershipRole, Store, markers_allow,
};
use cardgate_token::{Action, ActionSet, Scope};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::cache::{Cache, CacheSettings, DECISIONS, store_generations};
use crate::explain::{Assessment, Explanation, Subject};
use crate::{NAME, plugin_error, user_slug};

/// What a cached decision was asked for: the account, its session and the scope.
type DecisionKey = (String, Option<String>, Scope);

/// Decides scopes from the card store.
///
/// Decisions are cached (see [`CacheSettings`]) by account, session and scope; any change to
/// the store empties the cache, so a cached decision is always the one the store gives now.
#[derive(Debug, Clone)]
pub struct CardAuthorizer {
    store: Store,
    decisions: Arc<Cache<DecisionKey, Decision>>,
}

/// What the store says about the actor, loaded once per decision.
struct Actor {
    card: Card,
    memberships: Vec<Membership>,
    /// The actor's markers: its slug and its orgs' slugs.
    markers: Vec<String>,
    /// Compiled read schemas of the actor's roles.
    read: Vec<jsonschema::Validator>,
    catalog: bool,
    /// The session's scope, when the request came with a scoped session.
    session_scope: Option<jsonschema::Validator>,
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
        self.session_scope.as_ref().is_none_or(|s| s.is_valid(card))
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
        self.read.iter().any(|r| r.is_valid(card))
    }
}

fn schema(value: &Value, what: &str) -> Result<jsonschema::Validator, PluginError> {
    jsonschema::validator_for(value)
        .map_err(|e| PluginError::internal(NAME, format!("{what} is not a valid JSON Schema: {e}")))
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

impl CardAuthorizer {
    /// An authorizer with the default cache settings.
    pub fn new(store: Store) -> Self {
        Self::with_cache(store, CacheSettings::default())
    }

    pub fn with_cache(store: Store, cache: CacheSettings) -> Self {
        CardAuthorizer {
            decisions: Arc::new(Cache::new(store_generations(&store), cache, &DECISIONS)),
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
        let Some(card) = self.store.card_by_slug(&slug).await.map_err(plugin_error)? else {
            return Ok(None);
        };
        let memberships = self
            .store
            .memberships(card.id)
            .await
            .map_err(plugin_error)?;
        let mut markers = vec![card.slug.clone()];
        markers.extend(memberships.iter().map(|m| m.org_slug.clone()));

        let mut role_slugs = vec![format!("role-{}", card.slug)];
        if let Some(roles) = card.data.get("roles").and_then(Value::as_array) {
            role_slugs.extend(
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|r| format!("role-{r}")),
            );
        }
        let roles = self
            .store
            .roles_by_slugs(&role_slugs)
            .await
            .map_err(plugin_error)?;
        let read = roles
            .iter()
            .filter_map(|r| r.data.get("read").map(|read| (r, read)))
            .map(|(r, read)| schema(read, &format!("{} data.read", r.slug)))
            .collect::<Result<Vec<_>, _>>()?;
        let catalog = roles.iter().any(|r| r.data["catalog"] == json!(true));

        let session_scope = match &identity.session {
            None => None,
            Some(id) => {
                let id = Uuid::parse_str(id)
                    .map_err(|e| PluginError::internal(NAME, format!("session id: {e}")))?;
                let session = self.store.card_by_id(id).await.map_err(plugin_error)?;
                let Some(session) = session.filter(|s| s.active) else {
                    return Ok(None);
                };
                match session.data.get("scope") {
                    Some(scope) => Some(schema(scope, "session data.scope")?),
                    None => None,
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
        }))
    }

    /// The facts a decision on `repository` rests on. With `create_on_push`, a missing image
    /// the actor may push to is created (a first push).
    async fn assess(
        &self,
        actor: &Actor,
        repository: &str,
        create_on_push: bool,
    ) -> Result<Assessment, PluginError> {
        let org = format!("org-{}", repository.split('/').next().unwrap_or_default());
        let membership = actor.role_in(&org);
        let mut assessment = Assessment {
            repository: repository.to_owned(),
            org: org.clone(),
            image_exists: false,
            image_created: false,
            retired: false,
            public: false,
            in_session_scope: true,
            markers: vec![org.clone()],
            unmatched_markers: Vec::new(),
            readable_by_role: false,
            membership,
            granted: Vec::new(),
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
                // A first push creates the image, when the actor could push to it once created.
                let prospective = json!({
                    "type": "image@1.0.0",
                    "markers": [org],
                    "data": {"repository": repository, "public": false},
                });
                assessment.in_session_scope = actor.in_session_scope(&prospective);
                assessment.unmatched_markers = actor.unmatched(std::slice::from_ref(&org));
                assessment.readable_by_role = actor.reads(&prospective);
                let may_create = membership >= Some(MembershipRole::Developer)
                    && assessment.in_session_scope
                    && assessment.unmatched_markers.is_empty()
                    && assessment.readable_by_role;
                if !may_create {
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
                    .ensure_image(&actor.card, repository, &org)
                    .await
                    .map_err(plugin_error)?;
                tracing::info!(repository, actor = %actor.card.slug, "image created on first push");
                assessment.image_created = true;
                image
            }
        };
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
        Ok(assessment)
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
        let kind = scope.resource_type.as_str();
        let catalog = kind == "registry" && scope.name.as_str() == "catalog";
        let subject = if actor.is_admin() && (kind == "repository" || catalog) {
            Subject::Admin
        } else if kind == "repository" {
            Subject::Repository(self.assess(&actor, scope.name.as_str(), false).await?)
        } else if catalog {
            Subject::Catalog {
                allowed: actor.catalog,
            }
        } else {
            Subject::Unknown
        };
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
        let kind = scope.resource_type.as_str();
        if (kind != "repository" && kind != "registry") || identity.authenticator != NAME {
            return Ok(Decision::NoMatch);
        }
        let key = (
            identity.account.clone(),
            identity.session.clone(),
            scope.clone(),
        );
        if let Some(decision) = self.decisions.get(&key) {
            return Ok(decision);
        }
        // Read before the store: a change made meanwhile makes this decision stale.
        let generation = self.decisions.generation();
        let decision = self.decide(identity, scope).await?;
        if let Some(generation) = generation {
            self.decisions.insert(generation, key, decision, None);
        }
        Ok(decision)
    }
}

impl CardAuthorizer {
    /// The decision on `scope` for `identity`, from the store.
    async fn decide(&self, identity: &Identity, scope: &Scope) -> Result<Decision, PluginError> {
        let kind = scope.resource_type.as_str();
        let Some(actor) = self.actor(identity).await? else {
            return Ok(Decision::NoMatch);
        };
        let catalog = kind == "registry" && scope.name.as_str() == "catalog";
        if actor.is_admin() && (kind == "repository" || catalog) {
            return Ok(Decision::Allowed(ActionSet::of(&[Action::All])));
        }
        match kind {
            "repository" => {
                let create_on_push = scope.actions.contains(Action::Push);
                let assessment = self
                    .assess(&actor, scope.name.as_str(), create_on_push)
                    .await?;
                Ok(if assessment.image_exists {
                    Decision::Allowed(assessment.allowed)
                } else {
                    Decision::NoMatch
                })
            }
            _ if scope.name.as_str() == "catalog" && actor.catalog => {
                Ok(Decision::Allowed(ActionSet::of(&[Action::All])))
            }
            _ => Ok(Decision::Allowed(ActionSet::EMPTY)),
        }
    }
}
