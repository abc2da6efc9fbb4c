//! Differential test: random policies written to PostgreSQL, every (actor, session, scope)
//! decision of the card authorizer compared with a small in-memory reference model.
//!
//! Seeded and reproducible: `CARDGATE_DIFF_SEED` picks the seed, `CARDGATE_DIFF_POLICIES`
//! the number of policies. A mismatch prints the seed, the policy and the request.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use cardgate_store::{Card, CardType, MembershipRole, NewCard, markers_allow};
use cardgate_token::{Action, ActionSet};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use cardgate_store::testing::Fixture;

use crate::Decide;

/// The reference model's view of one policy.
#[derive(Debug, Default, Clone)]
struct Model {
    /// user slug → role names
    users: BTreeMap<String, Vec<String>>,
    /// role slug → read schema
    roles: BTreeMap<String, Value>,
    /// (org slug, user slug) → role
    members: BTreeMap<(String, String), MembershipRole>,
    images: Vec<ModelImage>,
    /// (holder slug, repository) → actions
    grants: Vec<(String, String, Vec<Action>)>,
}

#[derive(Debug, Clone)]
struct ModelImage {
    repository: String,
    markers: Vec<String>,
    public: bool,
}

impl ModelImage {
    fn json(&self) -> Value {
        json!({
            "type": "image@1.0.0",
            "markers": self.markers,
            "data": {"repository": self.repository, "public": self.public},
        })
    }
}

fn valid(schema: &Value, instance: &Value) -> bool {
    jsonschema::validator_for(schema)
        .unwrap()
        .is_valid(instance)
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

    fn visible(&self, user: &str, image: &ModelImage) -> bool {
        let mut markers = vec![user.to_owned()];
        markers.extend(self.orgs_of(user));
        let mut role_slugs = vec![format!("role-{user}")];
        role_slugs.extend(self.users[user].iter().map(|r| format!("role-{r}")));
        markers_allow(&image.markers, &markers)
            && role_slugs
                .iter()
                .filter_map(|r| self.roles.get(r))
                .any(|schema| valid(schema, &image.json()))
    }

    /// What the rules allow `user` (through a session with `scope`, if any) on `repository`
    /// when asking `asked`; creates the image on an allowed first push, as the store does.
    fn allowed(
        &mut self,
        user: &str,
        scope: Option<&Value>,
        repository: &str,
        asked: ActionSet,
    ) -> ActionSet {
        if user == "user-admin" {
            return ActionSet::of(&[Action::All]);
        }
        let in_scope = |card: &Value| scope.is_none_or(|s| valid(s, card));
        let org = format!("org-{}", repository.split('/').next().unwrap());
        let role = self.role(user, &org);
        if !self.images.iter().any(|i| i.repository == repository) {
            let prospective = ModelImage {
                repository: repository.to_owned(),
                markers: vec![org.clone()],
                public: false,
            };
            if asked.contains(Action::Push)
                && role >= Some(MembershipRole::Developer)
                && in_scope(&prospective.json())
                && self.visible(user, &prospective)
            {
                self.images.push(prospective);
            } else {
                return ActionSet::EMPTY;
            }
        }
        let image = self
            .images
            .iter()
            .find(|i| i.repository == repository)
            .unwrap()
            .clone();
        let mut allowed = ActionSet::EMPTY;
        if image.public {
            allowed = allowed.with(Action::Pull);
        }
        if in_scope(&image.json()) {
            if self.visible(user, &image) {
                allowed = allowed.with(Action::Pull);
                if role >= Some(MembershipRole::Developer) {
                    allowed = allowed.with(Action::Push);
                }
                if role >= Some(MembershipRole::Maintainer) {
                    allowed = allowed.with(Action::Delete);
                }
                if role == Some(MembershipRole::Owner) {
                    allowed = allowed.with(Action::All);
                }
            }
            let mut holders = vec![user.to_owned()];
            holders.extend(self.orgs_of(user));
            for (holder, repo, actions) in &self.grants {
                if repo == repository && holders.contains(holder) {
                    allowed = actions.iter().fold(allowed, |s, a| s.with(*a));
                }
            }
        }
        allowed
    }
}

/// Writes a random policy with names prefixed by `p` and returns its model and the sessions
/// (user slug, session id, scope).
async fn random_policy(
    f: &Fixture,
    rng: &mut StdRng,
    p: &str,
) -> (Model, Vec<(String, String, Value)>) {
    let mut model = Model::default();
    let orgs: Vec<String> = (0..rng.random_range(1..=3))
        .map(|i| format!("{p}o{i}"))
        .collect();
    let mut org_cards = BTreeMap::new();
    for org in &orgs {
        org_cards.insert(format!("org-{org}"), f.org(org).await);
    }
    // Role cards: readers of one namespace, of public images, of nothing.
    let role_schemas = [
        ("all", json!(true)),
        (
            "ns0",
            json!({"properties": {"data": {"properties": {"repository": {"pattern": format!("^{}/", orgs[0])}}}}}),
        ),
        (
            "private",
            json!({"properties": {"data": {"properties": {"public": {"const": false}}}}}),
        ),
        ("none", json!(false)),
    ];
    for (name, schema) in &role_schemas {
        let slug = format!("role-{p}{name}");
        f.store
            .create(
                &f.admin,
                NewCard::new(CardType::Role, slug.clone(), json!({"read": schema})),
            )
            .await
            .unwrap();
        model.roles.insert(slug, schema.clone());
    }
    model.roles.insert("role-user-default".into(), json!(true));

    let mut user_cards: BTreeMap<String, Card> = BTreeMap::new();
    for i in 0..rng.random_range(2..=4) {
        let name = format!("{p}u{i}");
        let mut roles: Vec<String> = Vec::new();
        for (role, _) in &role_schemas {
            if rng.random_bool(0.35) {
                roles.push(format!("{p}{role}"));
            }
        }
        if rng.random_bool(0.3) {
            roles.push("user-default".into());
        }
        let roles_ref: Vec<&str> = roles.iter().map(String::as_str).collect();
        let card = f.user(&name, &roles_ref).await;
        model.users.insert(card.slug.clone(), roles);
        user_cards.insert(card.slug.clone(), card);
    }
    model
        .users
        .insert("user-guest".into(), vec!["user-guest".into()]);
    model.roles.insert(
        "role-user-guest".into(),
        json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "object", "required": ["public"], "properties": {"public": {"const": true}}}}}),
    );
    model
        .users
        .insert("user-admin".into(), vec!["user-default".into()]);

    for (org_slug, org) in &org_cards {
        for (user_slug, user) in &user_cards {
            if rng.random_bool(0.45) {
                let role = *MembershipRole::ALL.choose(rng).unwrap();
                f.member(org, user, role.as_str()).await;
                model
                    .members
                    .insert((org_slug.clone(), user_slug.clone()), role);
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
        let repository = format!("{namespace}/img{i}");
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
        image_cards.push(f.image(&repository, &markers_ref, public).await);
        model.images.push(ModelImage {
            repository,
            markers,
            public,
        });
    }

    let explicit = [Action::Pull, Action::Push, Action::Delete];
    for image in &image_cards {
        for _ in 0..rng.random_range(0..=2) {
            let actions: Vec<Action> = explicit
                .iter()
                .copied()
                .filter(|_| rng.random_bool(0.5))
                .collect();
            let names: Vec<&str> = actions.iter().map(|a| a.as_str()).collect();
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
            f.grant(holder, image, &names).await;
            model.grants.push((holder_slug, repository, actions));
        }
    }

    let scopes = [
        json!({"properties": {"data": {"properties": {"public": {"const": false}}}}}),
        json!({"properties": {"data": {"properties": {"repository": {"pattern": format!("^{}/", orgs[0])}}}}}),
        json!(true),
    ];
    let mut sessions = Vec::new();
    for (slug, card) in &user_cards {
        if rng.random_bool(0.5) {
            let scope = scopes.choose(rng).unwrap().clone();
            let session = f
                .store
                .create_session(
                    &f.admin,
                    card,
                    time::OffsetDateTime::now_utc() + time::Duration::hours(1),
                    Some(scope.clone()),
                )
                .await
                .unwrap();
            sessions.push((slug.clone(), session.card.id.to_string(), scope));
        }
    }
    (model, sessions)
}

fn random_actions(rng: &mut StdRng) -> ActionSet {
    let set: ActionSet = Action::EVERY
        .into_iter()
        .filter(|_| rng.random_bool(0.4))
        .collect();
    if set.is_empty() {
        ActionSet::of(&[Action::Pull])
    } else {
        set
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
    let mut rng = StdRng::seed_from_u64(seed);
    let mut decisions = 0usize;
    let mut granted_any = 0usize;
    for n in 0..policies {
        let p = format!("p{n}");
        let (mut model, sessions) = random_policy(&f, &mut rng, &p).await;
        let mut repositories: Vec<String> =
            model.images.iter().map(|i| i.repository.clone()).collect();
        // Names without an image: first pushes.
        for org in model
            .members
            .keys()
            .map(|(o, _)| o.trim_start_matches("org-").to_owned())
            .collect::<Vec<_>>()
        {
            repositories.push(format!("{org}/fresh{}", rng.random_range(0..3)));
        }
        let mut actors: Vec<(String, Option<(String, Value)>)> =
            model.users.keys().map(|u| (u.clone(), None)).collect();
        actors.extend(
            sessions
                .iter()
                .map(|(u, id, scope)| (u.clone(), Some((id.clone(), scope.clone())))),
        );

        for (user, session) in &actors {
            for repository in &repositories {
                let asked = random_actions(&mut rng);
                let scope: cardgate_token::Scope =
                    format!("repository:{repository}:{asked}").parse().unwrap();
                let account = match user.as_str() {
                    "user-guest" => String::new(),
                    other => other.trim_start_matches("user-").to_owned(),
                };
                let identity = cardgate_authz::Identity {
                    session: session.as_ref().map(|(id, _)| id.clone()),
                    ..cardgate_authz::Identity::new(account, "cards")
                };
                let before = model.clone();
                let got = chain
                    .authorize(&identity, std::slice::from_ref(&scope))
                    .await
                    .unwrap()[0]
                    .granted;
                let expected = scope.grant(model.allowed(
                    user,
                    session.as_ref().map(|(_, s)| s),
                    repository,
                    asked,
                ));
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
