//! Cards, links and the vocabulary of the registry policy.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

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
            format!("image-{}", Uuid::new_v4().simple()),
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

    #[test]
    fn membership_roles_are_ordered() {
        assert!(MembershipRole::Owner > MembershipRole::Maintainer);
        assert!(MembershipRole::Maintainer > MembershipRole::Developer);
        assert!(MembershipRole::Developer > MembershipRole::Viewer);
        assert_eq!("owner".parse::<MembershipRole>(), Ok(MembershipRole::Owner));
    }
}
