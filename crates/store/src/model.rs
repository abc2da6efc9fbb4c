//! Cards, links and the vocabulary of the registry policy.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::{StoreError, hash_session_secret};

/// The card types cardgate knows, each with a schema for its `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardType {
    User,
    Org,
    Role,
    Session,
    AuthenticationPassword,
    Image,
    /// Events: one per change, attached to the changed card.
    CreateEvent,
    UpdateEvent,
    LinkEvent,
    UnlinkEvent,
    DeactivateEvent,
}

impl CardType {
    pub const ALL: [CardType; 11] = [
        CardType::User,
        CardType::Org,
        CardType::Role,
        CardType::Session,
        CardType::AuthenticationPassword,
        CardType::Image,
        CardType::CreateEvent,
        CardType::UpdateEvent,
        CardType::LinkEvent,
        CardType::UnlinkEvent,
        CardType::DeactivateEvent,
    ];

    pub const EVENTS: [CardType; 5] = [
        CardType::CreateEvent,
        CardType::UpdateEvent,
        CardType::LinkEvent,
        CardType::UnlinkEvent,
        CardType::DeactivateEvent,
    ];

    /// The type name without version.
    pub fn name(self) -> &'static str {
        match self {
            CardType::User => "user",
            CardType::Org => "org",
            CardType::Role => "role",
            CardType::Session => "session",
            CardType::AuthenticationPassword => "authentication-password",
            CardType::Image => "image",
            CardType::CreateEvent => "create",
            CardType::UpdateEvent => "update",
            CardType::LinkEvent => "link",
            CardType::UnlinkEvent => "unlink",
            CardType::DeactivateEvent => "deactivate",
        }
    }

    /// The versioned type written on cards.
    pub fn versioned(self) -> String {
        format!("{}@1.0.0", self.name())
    }
}

impl FromStr for CardType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let base = s.split('@').next().unwrap_or_default();
        CardType::ALL
            .into_iter()
            .find(|t| t.name() == base)
            .ok_or_else(|| format!("unknown card type `{s}`"))
    }
}

/// A card as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Card {
    pub id: Uuid,
    pub slug: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub card_type: String,
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub markers: Vec<String>,
    pub data: Value,
    pub active: bool,
    /// Bumped by every update: the version an update must name.
    pub revision: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl Card {
    /// The type name without its version.
    pub fn base_type(&self) -> &str {
        self.card_type.split('@').next().unwrap_or_default()
    }

    /// Whether the card is of `card_type` (any version).
    pub fn is(&self, card_type: CardType) -> bool {
        self.base_type() == card_type.name()
    }

    /// `data.actor`: the user a session or password card belongs to, the actor of an event.
    /// `None` when absent or not a UUID.
    pub fn actor(&self) -> Option<Uuid> {
        self.data.get("actor")?.as_str()?.parse().ok()
    }

    /// The card read as a session; see [`Session`].
    pub fn session(&self) -> Result<Session, StoreError> {
        Session::try_from(self)
    }

    /// The card as the JSON object role and session schemas are evaluated against.
    pub fn to_json(&self) -> Value {
        CardJson {
            id: self.id,
            slug: &self.slug,
            card_type: &self.card_type,
            name: self.name.as_deref(),
            tags: &self.tags,
            markers: &self.markers,
            data: &self.data,
            active: self.active,
        }
        .to_json()
    }
}

/// The fields of a card that schemas see, stored or still to be created.
struct CardJson<'a> {
    id: Uuid,
    slug: &'a str,
    card_type: &'a str,
    name: Option<&'a str>,
    tags: &'a [String],
    markers: &'a [String],
    data: &'a Value,
    active: bool,
}

impl CardJson<'_> {
    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "slug": self.slug,
            "type": self.card_type,
            "name": self.name,
            "tags": self.tags,
            "markers": self.markers,
            "data": self.data,
            "active": self.active,
        })
    }
}

/// A card's slug, built from a name in one place: `<type>-<name>`, such as `user-alice`,
/// `org-acme`, `role-user-alice`, `image-acme-web`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slug(String);

impl Slug {
    /// `<type>-<name>`.
    pub fn of(card_type: CardType, name: &str) -> Self {
        Slug(format!("{}-{name}", card_type.name()))
    }

    /// `user-<name>`.
    pub fn user(name: &str) -> Self {
        Slug::of(CardType::User, name)
    }

    /// `org-<name>`: also the marker of the org's cards.
    pub fn org(name: &str) -> Self {
        Slug::of(CardType::Org, name)
    }

    /// `role-<name>`; the role of a user card is `role-user-<name>` (`Slug::role(&user.slug)`).
    pub fn role(name: &str) -> Self {
        Slug::of(CardType::Role, name)
    }

    /// `image-<repository>`, each character a slug cannot hold (`/`, `.`, `_`) as `-`: the
    /// image card of a repository named by hand (`acme/web` → `image-acme-web`).
    pub fn image(repository: &str) -> Self {
        let name: String = repository
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Slug::of(CardType::Image, &name)
    }

    /// `<type>-<random UUID>`: a card without a name of its own (an image created by a
    /// first push, a session).
    pub fn unique(card_type: CardType) -> Self {
        Slug::of(card_type, &Uuid::new_v4().simple().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Slug {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Slug {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Slug> for String {
    fn from(slug: Slug) -> String {
        slug.0
    }
}

impl PartialEq<str> for Slug {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Slug {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// What a session card is for (`data.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionKind {
    /// `session`, or no kind: a token for registry clients (a CI token, say), used as a Basic
    /// password, optionally narrowed by a scope.
    Token,
    /// `login`: an admin API login (a Bearer), ended by a password change; also a Basic
    /// password.
    Login,
    /// `refresh`: an OAuth2 refresh token, bound to a client, a service and the user's
    /// password card; never a Basic password.
    Refresh,
}

impl SessionKind {
    /// The `data.kind` it is written as.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Token => "session",
            SessionKind::Login => "login",
            SessionKind::Refresh => "refresh",
        }
    }

    /// Whether a session of this kind opens as a Basic password: every kind but refresh
    /// tokens.
    pub fn is_basic_password(self) -> bool {
        self != SessionKind::Refresh
    }
}

impl FromStr for SessionKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [SessionKind::Token, SessionKind::Login, SessionKind::Refresh]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown session kind `{s}`"))
    }
}

/// A session card, read once: its kind, user, expiration and the hash of its secret, with the
/// checks a presented secret goes through. The secret itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: Uuid,
    /// Whether the card is active: a revoked session is not.
    pub active: bool,
    pub kind: SessionKind,
    /// The user the session belongs to (`data.actor`).
    pub actor: Uuid,
    pub expiration: OffsetDateTime,
    /// `data.token.authentication`: the SHA-256 of the secret, hex.
    secret_hash: String,
    /// The OAuth2 client a refresh token was issued to.
    pub client_id: Option<String>,
    /// The service a refresh token was issued for.
    pub service: Option<String>,
    /// The user's active password card when a refresh token was issued (`None`: it had none).
    pub password_card: Option<Uuid>,
    /// The JSON Schema narrowing what the session reaches, if any.
    pub scope: Option<Value>,
}

impl Session {
    /// Whether `secret` is the session's: its SHA-256 compared with the stored one in
    /// constant time.
    pub fn secret_matches(&self, secret: &str) -> bool {
        hash_session_secret(secret)
            .as_bytes()
            .ct_eq(self.secret_hash.as_bytes())
            .into()
    }

    /// Whether the session has expired at `now`.
    pub fn is_expired_at(&self, now: OffsetDateTime) -> bool {
        self.expiration <= now
    }

    /// Whether `secret` opens this session as the Basic password of `user` at `now`: the
    /// secret matches (always compared, so that the answer takes as long either way), and the
    /// session is active, unexpired, of a kind that is a password, and the user's.
    pub fn opens_for(&self, user: Uuid, secret: &str, now: OffsetDateTime) -> bool {
        let secret_matches = self.secret_matches(secret);
        secret_matches
            && self.active
            && self.kind.is_basic_password()
            && self.actor == user
            && !self.is_expired_at(now)
    }
}

impl TryFrom<&Card> for Session {
    type Error = StoreError;

    fn try_from(card: &Card) -> Result<Self, StoreError> {
        let invalid = |field: &str| {
            StoreError::Invalid(format!(
                "card {} is not a readable session: {field}",
                card.id
            ))
        };
        if !card.is(CardType::Session) {
            return Err(invalid("type"));
        }
        let data = &card.data;
        let kind = match data.get("kind") {
            None => SessionKind::Token,
            Some(kind) => kind
                .as_str()
                .and_then(|k| k.parse().ok())
                .ok_or_else(|| invalid("data.kind"))?,
        };
        let text = |field: &str| data.get(field).and_then(Value::as_str).map(str::to_owned);
        let password_card = match data.get("password") {
            None | Some(Value::Null) => None,
            Some(id) => Some(
                id.as_str()
                    .and_then(|id| Uuid::parse_str(id).ok())
                    .ok_or_else(|| invalid("data.password"))?,
            ),
        };
        Ok(Session {
            id: card.id,
            active: card.active,
            kind,
            actor: card.actor().ok_or_else(|| invalid("data.actor"))?,
            expiration: data["expiration"]
                .as_str()
                .and_then(|e| OffsetDateTime::parse(e, &Rfc3339).ok())
                .ok_or_else(|| invalid("data.expiration"))?,
            secret_hash: data["token"]["authentication"]
                .as_str()
                .ok_or_else(|| invalid("data.token.authentication"))?
                .to_owned(),
            client_id: text("client_id"),
            service: text("service"),
            password_card,
            scope: data.get("scope").cloned(),
        })
    }
}

/// A card to create. Its id is chosen here, so that the card can be judged (by a session's
/// scope, say) exactly as it will be stored.
#[derive(Debug, Clone)]
pub struct NewCard {
    pub id: Uuid,
    pub slug: String,
    pub card_type: CardType,
    pub name: Option<String>,
    pub markers: Vec<String>,
    pub data: Value,
}

impl NewCard {
    pub fn new(card_type: CardType, slug: impl Into<String>, data: Value) -> Self {
        NewCard {
            id: Uuid::new_v4(),
            slug: slug.into(),
            card_type,
            name: None,
            markers: Vec::new(),
            data,
        }
    }

    /// The image card of `repository`, named after it and marked with its org `org_slug`: the
    /// one card every image is created as (by the admin API or by a first push).
    pub fn image(repository: &str, org_slug: &str, public: bool) -> Self {
        NewCard::new(
            CardType::Image,
            Slug::unique(CardType::Image),
            json!({"repository": repository, "public": public}),
        )
        .with_name(repository)
        .with_markers(vec![org_slug.to_owned()])
    }

    /// The card as [`Card::to_json`] will show it once created (active, without tags).
    pub fn to_json(&self) -> Value {
        CardJson {
            id: self.id,
            slug: &self.slug,
            card_type: &self.card_type.versioned(),
            name: self.name.as_deref(),
            tags: &[],
            markers: &self.markers,
            data: &self.data,
            active: true,
        }
        .to_json()
    }

    #[must_use]
    pub fn with_markers(mut self, markers: Vec<String>) -> Self {
        self.markers = markers;
        self
    }

    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A member's role in an org, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipRole {
    Viewer,
    Developer,
    Maintainer,
    Owner,
}

impl MembershipRole {
    pub const ALL: [MembershipRole; 4] = [
        MembershipRole::Viewer,
        MembershipRole::Developer,
        MembershipRole::Maintainer,
        MembershipRole::Owner,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MembershipRole::Viewer => "viewer",
            MembershipRole::Developer => "developer",
            MembershipRole::Maintainer => "maintainer",
            MembershipRole::Owner => "owner",
        }
    }
}

impl fmt::Display for MembershipRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MembershipRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MembershipRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown membership role `{s}`"))
    }
}

/// The link verbs of the policy, each stored with its inverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkVerb {
    /// org → user, `data.role` = a [`MembershipRole`].
    HasMember,
    /// user or org → image, `data.actions` = the actions granted.
    HasAccessTo,
}

impl LinkVerb {
    pub fn name(self) -> &'static str {
        match self {
            LinkVerb::HasMember => "has member",
            LinkVerb::HasAccessTo => "has access to",
        }
    }

    pub fn inverse(self) -> &'static str {
        match self {
            LinkVerb::HasMember => "is member of",
            LinkVerb::HasAccessTo => "is accessible by",
        }
    }

    /// The card an event about a link of this verb is attached to: the org for memberships,
    /// the image for grants (whose history it is).
    pub(crate) fn event_target<'a>(self, from: &'a Card, to: &'a Card) -> &'a Card {
        match self {
            LinkVerb::HasMember => from,
            LinkVerb::HasAccessTo => to,
        }
    }

    /// The card types a link of this verb may join, as (from, to) pairs.
    pub(crate) fn allowed(self) -> &'static [(CardType, CardType)] {
        match self {
            LinkVerb::HasMember => &[(CardType::Org, CardType::User)],
            LinkVerb::HasAccessTo => &[
                (CardType::User, CardType::Image),
                (CardType::Org, CardType::Image),
            ],
        }
    }
}

/// A user's membership of an org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub org_id: Uuid,
    pub org_slug: String,
    pub role: MembershipRole,
}

/// The marker rule: a card is visible to an actor iff every marker on it has a `+`-separated
/// part among the actor's markers. No markers: visible to all.
pub fn markers_allow(card_markers: &[String], actor_markers: &[String]) -> bool {
    card_markers.iter().all(|marker| {
        marker
            .split('+')
            .any(|part| actor_markers.iter().any(|m| m == part))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn the_marker_rule_follows_jellyfish() {
        let bob_in_acme = v(&["user-bob", "org-acme"]);
        let eve = v(&["user-eve"]);
        let ann = v(&["user-ann"]);
        let cases = [
            (v(&[]), eve.clone(), true),
            (v(&["org-acme"]), bob_in_acme.clone(), true),
            (v(&["org-acme"]), eve.clone(), false),
            (v(&["org-acme", "user-bob"]), bob_in_acme.clone(), true),
            (v(&["org-acme", "user-bob"]), v(&["user-bob"]), false),
            (v(&["user-ann+user-bob"]), ann.clone(), true),
            (v(&["user-ann+user-bob"]), eve.clone(), false),
            (v(&["org-acme+user-eve"]), eve, true),
            (v(&["org-acme+user-eve"]), bob_in_acme, true),
            (v(&["org-acme+user-eve"]), ann, false),
        ];
        for (card, actor, expected) in cases {
            assert_eq!(
                markers_allow(&card, &actor),
                expected,
                "{card:?} / {actor:?}"
            );
        }
    }

    fn session_card(data: Value) -> Card {
        let now = OffsetDateTime::now_utc();
        Card {
            id: Uuid::new_v4(),
            slug: Slug::unique(CardType::Session).into(),
            card_type: CardType::Session.versioned(),
            name: None,
            tags: Vec::new(),
            markers: vec!["user-bob".to_owned()],
            data,
            active: true,
            revision: 1,
            created_at: now,
            updated_at: now,
        }
    }

    fn rfc3339(at: OffsetDateTime) -> String {
        at.format(&Rfc3339).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_session_card_is_read_once_with_its_kind_actor_and_expiration() {
        let actor = Uuid::new_v4();
        let password = Uuid::new_v4();
        let expiration = OffsetDateTime::now_utc() + time::Duration::hours(1);
        let card = session_card(json!({
            "actor": actor,
            "expiration": rfc3339(expiration),
            "token": {"authentication": hash_session_secret("s3cret")},
            "kind": "refresh",
            "client_id": "docker",
            "service": "registry",
            "password": password,
        }));
        let session = card.session().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(session.id, card.id);
        assert_eq!(session.kind, SessionKind::Refresh);
        assert_eq!(session.actor, actor);
        assert_eq!(card.actor(), Some(actor));
        assert_eq!(rfc3339(session.expiration), rfc3339(expiration));
        assert_eq!(session.client_id.as_deref(), Some("docker"));
        assert_eq!(session.service.as_deref(), Some("registry"));
        assert_eq!(session.password_card, Some(password));
        assert_eq!(session.scope, None);
        assert!(!session.kind.is_basic_password());

        let scope = json!({"properties": {"markers": {"contains": {"const": "org-acme"}}}});
        let token = session_card(json!({
            "actor": actor,
            "expiration": rfc3339(expiration),
            "token": {"authentication": hash_session_secret("s3cret")},
            "scope": scope,
        }))
        .session()
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(token.kind, SessionKind::Token);
        assert_eq!(token.scope, Some(scope));
        assert_eq!(token.password_card, None);
        for (kind, expected) in [
            ("session", SessionKind::Token),
            ("login", SessionKind::Login),
        ] {
            let mut card = card.clone();
            card.data["kind"] = json!(kind);
            let session = card.session().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(session.kind, expected);
            assert_eq!(session.kind.as_str(), kind);
            assert!(session.kind.is_basic_password());
        }
    }

    #[test]
    fn cards_that_are_not_readable_sessions_are_refused_naming_the_field() {
        let good = json!({
            "actor": Uuid::new_v4(),
            "expiration": rfc3339(OffsetDateTime::now_utc()),
            "token": {"authentication": hash_session_secret("s3cret")},
        });
        let mut not_a_session = session_card(good.clone());
        not_a_session.card_type = CardType::User.versioned();
        let mut cases = vec![("type", not_a_session)];
        for (field, value) in [
            ("kind", json!("cookie")),
            ("kind", Value::Null),
            ("actor", json!("bob")),
            ("expiration", json!("tomorrow")),
            ("token", json!({})),
            ("password", json!("not-a-uuid")),
        ] {
            let mut data = good.clone();
            data[field] = value;
            cases.push((field, session_card(data)));
        }
        for (field, card) in cases {
            match card.session() {
                Err(StoreError::Invalid(message)) => assert!(message.contains(field), "{message}"),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_session_opens_only_with_its_secret_for_its_user_while_active_and_unexpired() {
        let bob = Uuid::new_v4();
        let now = OffsetDateTime::now_utc();
        let card = session_card(json!({
            "actor": bob,
            "expiration": rfc3339(now + time::Duration::minutes(5)),
            "token": {"authentication": hash_session_secret("s3cret")},
        }));
        let session = card.session().unwrap_or_else(|e| panic!("{e}"));
        assert!(session.secret_matches("s3cret"));
        assert!(!session.secret_matches("s3cres"));
        assert!(!session.secret_matches(""));
        assert!(session.opens_for(bob, "s3cret", now));
        assert!(!session.opens_for(bob, "wrong", now));
        assert!(!session.opens_for(Uuid::new_v4(), "s3cret", now));
        assert!(!session.is_expired_at(now));
        assert!(session.is_expired_at(now + time::Duration::minutes(5)));
        assert!(!session.opens_for(bob, "s3cret", now + time::Duration::minutes(6)));

        let mut revoked = card.clone();
        revoked.active = false;
        let revoked = revoked.session().unwrap_or_else(|e| panic!("{e}"));
        assert!(!revoked.opens_for(bob, "s3cret", now));

        let mut refresh = card;
        refresh.data["kind"] = json!("refresh");
        refresh.data["client_id"] = json!("docker");
        refresh.data["service"] = json!("registry");
        refresh.data["password"] = Value::Null;
        let refresh = refresh.session().unwrap_or_else(|e| panic!("{e}"));
        assert!(refresh.secret_matches("s3cret"));
        assert!(
            !refresh.opens_for(bob, "s3cret", now),
            "a refresh token is no password"
        );
    }

    #[test]
    fn slugs_are_the_type_then_the_name() {
        assert_eq!(Slug::user("alice"), "user-alice");
        assert_eq!(Slug::org("acme"), "org-acme");
        assert_eq!(Slug::role("user-alice"), "role-user-alice");
        assert_eq!(Slug::image("acme/web"), "image-acme-web");
        assert_eq!(Slug::image("acme/my_app.v2"), "image-acme-my-app-v2");
        let unique = Slug::unique(CardType::Session);
        assert!(unique.starts_with("session-") && unique.len() == "session-".len() + 32);
        assert_ne!(unique, Slug::unique(CardType::Session));
        assert_eq!(String::from(Slug::org("acme")), "org-acme");
    }

    #[test]
    fn cards_know_their_type() {
        let card = session_card(json!({}));
        assert!(card.is(CardType::Session));
        assert!(!card.is(CardType::User));
        assert_eq!(card.actor(), None);
    }

    #[test]
    fn membership_roles_are_ordered() {
        assert!(MembershipRole::Owner > MembershipRole::Maintainer);
        assert!(MembershipRole::Maintainer > MembershipRole::Developer);
        assert!(MembershipRole::Developer > MembershipRole::Viewer);
        assert_eq!("owner".parse::<MembershipRole>(), Ok(MembershipRole::Owner));
    }
}
