//! Differential test: random policies written to PostgreSQL, every (actor, session, scope)
//! decision of the card authorizer compared with a small in-memory reference model.
//!
//! The model shares no decision code with the implementation: it has its own marker rule, its
//! own action arithmetic (plain sets of action names) and its own view of the policy, built
//! from what the generator wrote, deactivations and removed memberships included.
//!
//! Seeded and reproducible: `CARDGATE_DIFF_SEED` picks the seed, `CARDGATE_DIFF_POLICIES`
//! the number of policies. A mismatch prints the seed, the policy and the request.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use cardgate_store::testing::Fixture;
use cardgate_store::{Card, CardType, LinkVerb, MembershipRole, NewCard};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::Decide;

pub(crate) type Actions = BTreeSet<&'static str>;

const EXPLICIT: [&str; 3] = ["pull", "push", "delete"];

pub(crate) fn set(names: &[&'static str]) -> Actions {
    names.iter().copied().collect()
}

/// The reference model's view of one policy.
#[derive(Debug, Default, Clone)]
pub(crate) struct Model {
    /// user slug → role names
    pub(crate) users: BTreeMap<String, Vec<String>>,
    /// role slug → (read schema, grants the catalog)
    pub(crate) roles: BTreeMap<String, (Value, bool)>,
    /// (org slug, user slug) → role
    pub(crate) members: BTreeMap<(String, String), MembershipRole>,
    pub(crate) images: Vec<ModelImage>,
    /// (holder slug, repository) → actions
    pub(crate) grants: Vec<(String, String, Vec<&'static str>)>,
}

#[derive(Debug, Clone)]
pub(crate) struct ModelImage {
    pub(crate) repository: String,
    pub(crate) markers: Vec<String>,
    pub(crate) public: bool,
    pub(crate) active: bool,
}

impl ModelImage {
    fn json(&self) -> Value {
        json!({
            "type": "image@1.0.0",
            "name": self.repository,
            "markers": self.markers,
            "data": {"repository": self.repository, "public": self.public},
        })
    }
}

/// Whether a session's scope admits every card: `true` or `{}`, as documented.
fn admits_everything(scope: Option<&Value>) -> bool {
    match scope {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

fn valid(schema: &Value, instance: &Value) -> bool {
    jsonschema::validator_for(schema)
        .unwrap()
        .is_valid(instance)
}

/// Jellyfish's marker rule, written out again: every marker has a `+`-part the actor holds.
fn markers_match(card: &[String], actor: &[String]) -> bool {
    for marker in card {
        let mut matched = false;
        for part in marker.split('+') {
            if actor.iter().any(|m| m == part) {
                matched = true;
            }
        }
        if !matched {
            return false;
        }
    }
    true
}

impl Model {
    fn role(&self, user: &str, org: &str) -> Option<MembershipRole> {
        self.members
            .get(&(org.to_owned(), user.to_owned()))
            .copied()
    }

    fn orgs_of(&self, user: &str) -> Vec<String> {
        self.members
            .keys()
            .filter(|(_, u)| u == user)
            .map(|(o, _)| o.clone())
            .collect()
    }

    fn role_cards(&self, user: &str) -> Vec<&(Value, bool)> {
        let mut slugs = vec![format!("role-{user}")];
        slugs.extend(self.users[user].iter().map(|r| format!("role-{r}")));
        slugs.iter().filter_map(|r| self.roles.get(r)).collect()
    }

    fn markers_ok(&self, user: &str, image: &ModelImage) -> bool {
        let mut markers = vec![user.to_owned()];
        markers.extend(self.orgs_of(user));
        markers_match(&image.markers, &markers)
    }

    fn readable(&self, user: &str, image: &ModelImage) -> bool {
        self.role_cards(user)
            .iter()
            .any(|(schema, _)| valid(schema, &image.json()))
    }

    /// What `user` (through a session with `scope`, if any) is allowed on `repository` when
    /// asking `asked`, as action names; creates the image on an allowed first push.
    pub(crate) fn allowed_repository(
        &mut self,
        user: &str,
        scope: Option<&Value>,
        repository: &str,
        asked: &Actions,
    ) -> Actions {
        // Names without a namespace are nobody's, not even the admin's.
        let Some((namespace, _)) = repository.split_once('/') else {
            return Actions::new();
        };
        let in_scope = |card: &Value| scope.is_none_or(|s| valid(s, card));
        let org = format!("org-{namespace}");
        let existing = self
            .images
            .iter()
            .find(|i| i.repository == repository)
            .cloned();
        let prospective = ModelImage {
            repository: repository.to_owned(),
            markers: vec![org.clone()],
            public: false,
            active: true,
        };
        // The admin may do anything its scope admits; outside it, it is judged as anyone.
        if user == "user-admin" {
            let card = match &existing {
                Some(image) if image.active => image.json(),
                _ => prospective.json(),
            };
            if in_scope(&card) {
                return set(&["*"]);
            }
        }
        let role = self.role(user, &org);
        let image = match existing {
            Some(image) if image.active => image,
            // Retired names are never recreated.
            Some(_) => return Actions::new(),
            None => {
                let creatable = asked.contains("push")
                    && role >= Some(MembershipRole::Developer)
                    && in_scope(&prospective.json())
                    && self.markers_ok(user, &prospective)
                    && self.readable(user, &prospective);
                if !creatable {
                    return Actions::new();
                }
                self.images.push(prospective.clone());
                prospective
            }
        };
        let mut allowed = Actions::new();
        if image.public {
            allowed.insert("pull");
        }
        if in_scope(&image.json()) && self.readable(user, &image) {
            if self.markers_ok(user, &image) {
                allowed.insert("pull");
                if role >= Some(MembershipRole::Developer) {
                    allowed.insert("push");
                }
                if role >= Some(MembershipRole::Maintainer) {
                    allowed.insert("delete");
                }
                if role == Some(MembershipRole::Owner) {
                    allowed.insert("*");
                }
            }
            let mut holders = vec![user.to_owned()];
            holders.extend(self.orgs_of(user));
            for (holder, repo, actions) in &self.grants {
                if repo == repository && holders.contains(holder) {
                    allowed.extend(actions.iter().copied());
                }
            }
        }
        allowed
    }

    /// The catalog lists every repository: only a session whose scope admits every card.
    fn allowed_catalog(&self, user: &str, scope: Option<&Value>) -> Actions {
        let holder =
            user == "user-admin" || self.role_cards(user).iter().any(|(_, catalog)| *catalog);
        if holder && admits_everything(scope) {
            set(&["*"])
        } else {
            Actions::new()
        }
    }
}

/// What a request for `asked` receives when `allowed` is allowed, written out again.
pub(crate) fn model_grant(asked: &Actions, allowed: &Actions, repository: bool) -> Actions {
    if allowed.contains("*") {
        return asked.clone();
    }
    let mut granted: Actions = asked
        .iter()
        .filter(|a| EXPLICIT.contains(a) && allowed.contains(*a))
        .copied()
        .collect();
    if asked.contains("*") {
        granted.extend(allowed.iter().filter(|a| EXPLICIT.contains(a)).copied());
        if repository && granted.len() == 3 {
            return set(&["*"]);
        }
    }
    granted
}

/// Writes a random policy with names prefixed by `p` and returns its model and the sessions
/// (user slug, session id, scope).
async fn random_policy(
    f: &Fixture,
    rng: &mut StdRng,
    p: &str,
    platform_admin: &Card,
) -> (Model, Vec<(String, String, Value)>) {
    let mut model = Model::default();
    let orgs: Vec<String> = (0..rng.random_range(1..=3))
        .map(|i| format!("{p}o{i}"))
        .collect();
    let mut org_cards = BTreeMap::new();
    for org in &orgs {
        org_cards.insert(format!("org-{org}"), f.org(org).await);
    }
    // Role cards: readers of one namespace, of private images, of nothing, and a catalog role.
    let role_schemas = [
        ("all", json!(true), false),
        (
            "ns0",
            json!({"properties": {"data": {"properties": {"repository": {"pattern": format!("^{}/", orgs[0])}}}}}),
            false,
        ),
        (
            "private",
            json!({"properties": {"data": {"properties": {"public": {"const": false}}}}}),
            false,
        ),
        ("none", json!(false), false),
        ("auditor", json!(true), true),
    ];
    for (name, schema, catalog) in &role_schemas {
        let slug = format!("role-{p}{name}");
        f.role(&slug, json!({"read": schema, "catalog": catalog}))
            .await;
        model.roles.insert(slug, (schema.clone(), *catalog));
    }
    model
        .roles
        .insert("role-user-default".into(), (json!(true), false));
    model.roles.insert(
        platform_admin.slug.clone(),
        (
            platform_admin.data["read"].clone(),
            platform_admin.data["catalog"] == json!(true),
        ),
    );
    model.roles.insert(
        "role-user-guest".into(),
        (
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "object", "required": ["public"], "properties": {"public": {"const": true}}}}}),
            false,
        ),
    );

    let mut user_cards: BTreeMap<String, Card> = BTreeMap::new();
    for i in 0..rng.random_range(2..=4) {
        let name = format!("{p}u{i}");
        let mut roles: Vec<String> = Vec::new();
        for (role, _, _) in &role_schemas {
            if rng.random_bool(0.3) {
                roles.push(format!("{p}{role}"));
            }
        }
        if rng.random_bool(0.3) {
            roles.push("user-default".into());
        }
        if rng.random_bool(0.15) {
            roles.push("platform-admin".into());
        }
        let roles_ref: Vec<&str> = roles.iter().map(String::as_str).collect();
        let card = f.user(&name, &roles_ref).await;
        // Sometimes a per-user role card narrows (or widens) what the user reads.
        if rng.random_bool(0.2) {
            let schema = json!({"properties": {"markers": {"contains": {"const": format!("org-{}", orgs[0])}}}});
            f.store
                .create(
                    &f.admin,
                    NewCard::new(
                        CardType::Role,
                        format!("role-{}", card.slug),
                        json!({"read": schema}),
                    ),
                )
                .await
                .unwrap();
            model
                .roles
                .insert(format!("role-{}", card.slug), (schema, false));
        }
        model.users.insert(card.slug.clone(), roles);
        user_cards.insert(card.slug.clone(), card);
    }
    model
        .users
        .insert("user-guest".into(), vec!["user-guest".into()]);
    model
        .users
        .insert("user-admin".into(), vec!["user-default".into()]);

    for (org_slug, org) in &org_cards {
        for (user_slug, user) in &user_cards {
            if rng.random_bool(0.45) {
                let role = *MembershipRole::ALL.choose(rng).unwrap();
                f.member(org, user, role.as_str()).await;
                // Some memberships end again.
                if rng.random_bool(0.15) {
                    f.store
                        .unlink(&f.admin, org, LinkVerb::HasMember, user)
                        .await
                        .unwrap();
                } else {
                    model
                        .members
                        .insert((org_slug.clone(), user_slug.clone()), role);
                }
            }
        }
    }

    let users: Vec<String> = user_cards.keys().cloned().collect();
    let mut image_cards = Vec::new();
    for i in 0..rng.random_range(2..=5) {
        let namespace = if rng.random_bool(0.85) {
            orgs.choose(rng).unwrap().clone()
        } else {
            format!("{p}free")
        };
        let repository = match rng.random_range(0..10) {
            0..3 => format!("{namespace}/team/img{i}"),
            // Names without a namespace: the admin API cannot make them, older pushes could.
            3 => format!("{namespace}img{i}"),
            _ => format!("{namespace}/img{i}"),
        };
        let org_marker = format!("org-{namespace}");
        let user = users.choose(rng).unwrap().clone();
        let markers: Vec<String> = match rng.random_range(0..5) {
            0 => vec![],
            1 => vec![org_marker],
            2 => vec![org_marker, user],
            3 => vec![format!("{org_marker}+{user}")],
            _ => vec![user],
        };
        let public = rng.random_bool(0.25);
        let markers_ref: Vec<&str> = markers.iter().map(String::as_str).collect();
        let card = f.image(&repository, &markers_ref, public).await;
        let active = !rng.random_bool(0.1);
        if !active {
            f.deactivate(&card).await;
        }
        image_cards.push(card);
        model.images.push(ModelImage {
            repository,
            markers,
            public,
            active,
        });
    }

    for image in &image_cards {
        for _ in 0..rng.random_range(0..=2) {
            let actions: Vec<&'static str> = EXPLICIT
                .iter()
                .copied()
                .filter(|_| rng.random_bool(0.5))
                .collect();
            let (holder_slug, holder) = if rng.random_bool(0.7) {
                let (slug, card) = user_cards
                    .iter()
                    .nth(rng.random_range(0..user_cards.len()))
                    .unwrap();
                (slug.clone(), card)
            } else {
                let (slug, card) = org_cards
                    .iter()
                    .nth(rng.random_range(0..org_cards.len()))
                    .unwrap();
                (slug.clone(), card)
            };
            let repository = image.data["repository"].as_str().unwrap().to_owned();
            if model
                .grants
                .iter()
                .any(|(h, r, _)| *h == holder_slug && *r == repository)
            {
                continue;
            }
            f.grant(holder, image, &actions).await;
            model.grants.push((holder_slug, repository, actions));
        }
    }

    let first_image = image_cards[0].data["repository"].clone();
    let scopes = [
        json!({"properties": {"data": {"properties": {"public": {"const": false}}}}}),
        json!({"properties": {"data": {"properties": {"repository": {"pattern": format!("^{}/", orgs[0])}}}}}),
        json!(true),
        json!({}),
        json!(false),
        // Only one image by name: a card a push would create has its own name.
        json!({"properties": {"name": {"const": first_image}}}),
    ];
    let mut sessions = Vec::new();
    let mut holders: Vec<(&String, &Card)> = user_cards.iter().collect();
    let admin_slug = f.admin.slug.clone();
    holders.push((&admin_slug, &f.admin));
    for (slug, card) in holders {
        if rng.random_bool(0.5) {
            let scope = scopes.choose(rng).unwrap().clone();
            let session = f
                .session(card, time::Duration::hours(1), Some(scope.clone()))
                .await;
            sessions.push((slug.clone(), session.card.id.to_string(), scope));
        }
    }
    (model, sessions)
}

fn random_actions(rng: &mut StdRng) -> Actions {
    let asked: Actions = ["pull", "push", "delete", "*"]
        .into_iter()
        .filter(|_| rng.random_bool(0.4))
        .collect();
    if asked.is_empty() {
        set(&["pull"])
    } else {
        asked
    }
}

#[tokio::test]
async fn the_sql_authorizer_agrees_with_the_reference_model_on_random_policies() {
    let seed: u64 = std::env::var("CARDGATE_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261126);
    let policies: usize = std::env::var("CARDGATE_DIFF_POLICIES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let f = Fixture::new().await;
    let chain = f.authorizer();
    // Platform admins administer; in the registry their role card is a role like any other.
    let platform_admin = match f.store.card_by_slug("role-platform-admin").await.unwrap() {
        Some(card) => card,
        None => {
            f.role(
                "role-platform-admin",
                json!({"read": true, "catalog": true}),
            )
            .await
        }
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut decisions = 0usize;
    let mut granted_any = 0usize;
    for n in 0..policies {
        let p = format!("p{n}");
        let (mut model, sessions) = random_policy(&f, &mut rng, &p, &platform_admin).await;
        let mut resources: Vec<String> = model
            .images
            .iter()
            .map(|i| format!("repository:{}", i.repository))
            .collect();
        // Names without an image (first pushes) or without a namespace, the catalog, and a
        // type nobody knows.
        for org in model
            .members
            .keys()
            .map(|(o, _)| o.strip_prefix("org-").unwrap().to_owned())
            .collect::<BTreeSet<_>>()
        {
            resources.push(format!("repository:{org}/fresh{}", rng.random_range(0..3)));
            resources.push(format!("repository:{org}"));
        }
        resources.push("registry:catalog".into());
        resources.push(format!("plugin:{p}thing"));
        let mut actors: Vec<(String, Option<(String, Value)>)> =
            model.users.keys().map(|u| (u.clone(), None)).collect();
        actors.extend(
            sessions
                .iter()
                .map(|(u, id, scope)| (u.clone(), Some((id.clone(), scope.clone())))),
        );

        for (user, session) in &actors {
            for resource in &resources {
                let asked = random_actions(&mut rng);
                let asked_text: Vec<&str> = asked.iter().copied().collect();
                let scope: cardgate_token::Scope = format!("{resource}:{}", asked_text.join(","))
                    .parse()
                    .unwrap();
                let account = match user.as_str() {
                    "user-guest" => String::new(),
                    other => other.strip_prefix("user-").unwrap_or(other).to_owned(),
                };
                let identity = cardgate_authz::Identity {
                    session: session.as_ref().map(|(id, _)| id.clone()),
                    ..cardgate_authz::Identity::new(account, "cards")
                };
                let before = model.clone();
                let got: Actions = chain
                    .authorize(&identity, std::slice::from_ref(&scope))
                    .await
                    .unwrap()[0]
                    .granted
                    .names()
                    .into_iter()
                    .collect();
                let (kind, name) = resource.split_once(':').unwrap();
                let allowed = match (kind, name) {
                    ("repository", repository) => model.allowed_repository(
                        user,
                        session.as_ref().map(|(_, s)| s),
                        repository,
                        &asked,
                    ),
                    ("registry", "catalog") => {
                        model.allowed_catalog(user, session.as_ref().map(|(_, s)| s))
                    }
                    _ => Actions::new(),
                };
                let expected = model_grant(&asked, &allowed, kind == "repository");
                decisions += 1;
                if !got.is_empty() {
                    granted_any += 1;
                }
                if got != expected {
                    let mut report = String::new();
                    writeln!(
                        report,
                        "seed {seed}, policy {n}: {user} (session {session:?}) asking {scope}"
                    )
                    .unwrap();
                    writeln!(
                        report,
                        "  SQL authorizer granted {got:?}, the model {expected:?}"
                    )
                    .unwrap();
                    writeln!(report, "  policy: {before:#?}").unwrap();
                    panic!("{report}");
                }
            }
        }
    }
    // The generator must exercise both outcomes, or the comparison proves little.
    assert!(decisions > policies * 10, "{decisions} decisions");
    assert!(
        granted_any * 10 > decisions,
        "only {granted_any} of {decisions} decisions granted anything"
    );
    assert!(
        granted_any * 10 < decisions * 9,
        "{granted_any} of {decisions} decisions granted something"
    );
    eprintln!(
        "{decisions} decisions over {policies} policies agreed ({granted_any} granted something)"
    );
}
