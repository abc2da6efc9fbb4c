//! The admin API's wire types: request bodies, query parameters and answers, shared by the
//! server (which documents them in its OpenAPI document) and the command line client. Whatever
//! a client names is a [`Name`], whatever JSON it sends to be stored a [`Document`]: both are
//! parsed while the request is read, so a malformed one is refused naming its field.

// utoipa's expansion of `params(<query type>)` names the type by a qualified path that carries
// the type's span, which this lint would report on our code.
#![allow(unused_qualifications)]

use cardgate_authz_cards::{Explanation, Subject};
use cardgate_store::{Card, CardType, MembershipRole};
use cardgate_token::Scope;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{Caller, Event, ExplicitGrant, Member, Page};

/// The longest name a client may send, in characters: no user, account, client id or slug is
/// longer.
pub const MAX_NAME_LEN: usize = 256;

/// A name a client sends: a user name, an account, a client id, a slug or a slug cursor. At
/// most [`MAX_NAME_LEN`] characters, none of them a control character (PostgreSQL cannot
/// store a NUL, and the others have no place in a name or a log line). May be empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub struct Name(String);

/// Why a [`Name`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error("holds a control character (U+{0:04X})")]
    ControlCharacter(u32),
}

impl Name {
    pub fn parse(value: impl Into<String>) -> Result<Name, NameError> {
        let value = value.into();
        if value.chars().count() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if let Some(c) = value.chars().find(|c| c.is_control()) {
            return Err(NameError::ControlCharacter(c.into()));
        }
        Ok(Name(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl TryFrom<String> for Name {
    type Error = NameError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Name::parse(value)
    }
}

/// A JSON document a client sends to be stored, such as a JSON Schema: no string and no
/// member name in it holds a NUL character, which PostgreSQL's `jsonb` cannot store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value")]
pub struct Document(Value);

/// Why a [`Document`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("holds a NUL character (\\u0000), which cannot be stored")]
pub struct NulInDocument;

impl Document {
    pub fn into_value(self) -> Value {
        self.0
    }
}

impl TryFrom<Value> for Document {
    type Error = NulInDocument;

    fn try_from(value: Value) -> Result<Self, Self::Error> {
        let mut pending = vec![&value];
        while let Some(next) = pending.pop() {
            match next {
                Value::String(s) if s.contains('\0') => return Err(NulInDocument),
                Value::Array(items) => pending.extend(items),
                Value::Object(members) => {
                    if members.keys().any(|k| k.contains('\0')) {
                        return Err(NulInDocument);
                    }
                    pending.extend(members.values());
                }
                _ => {}
            }
        }
        Ok(Document(value))
    }
}

/// Every error answer: a machine-readable code and a description naming the problem.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// `invalid_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `precondition_failed`, `too_many_requests`, `temporarily_unavailable` or
    /// `server_error`.
    pub error: String,
    pub error_description: String,
}

/// A card as the API shows it; `revision` is also its `ETag`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CardView {
    pub id: Uuid,
    pub slug: String,
    #[serde(rename = "type")]
    pub card_type: String,
    pub name: Option<String>,
    pub markers: Vec<String>,
    pub data: Value,
    pub active: bool,
    pub revision: i64,
}

impl From<Card> for CardView {
    fn from(card: Card) -> Self {
        CardView {
            id: card.id,
            slug: card.slug,
            card_type: card.card_type,
            name: card.name,
            markers: card.markers,
            data: card.data,
            active: card.active,
            revision: card.revision,
        }
    }
}

/// A list answer: `list { field: [view] }`, made from a `Vec<item>` by showing each item as
/// `show` does.
macro_rules! list {
    ($(#[doc = $doc:tt])* $list:ident { $field:ident: [$view:ident] } from $item:ty, $show:expr) => {
        $(#[doc = $doc])*
        #[derive(Debug, Serialize, Deserialize, ToSchema)]
        pub struct $list {
            pub $field: Vec<$view>,
        }

        impl From<Vec<$item>> for $list {
            fn from(items: Vec<$item>) -> Self {
                $list { $field: items.into_iter().map($show).collect() }
            }
        }
    };
}

/// A page of a listing of cards, by slug.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CardList {
    pub cards: Vec<CardView>,
    /// The cursor of the next page, for `?after=`: the last slug of this page when it is full,
    /// so that there may be more (the next page may be empty); `null` at the end. The `Link`
    /// header (`rel="next"`) carries the next page's URL too.
    #[serde(default)]
    pub next: Option<String>,
}

impl CardList {
    /// The `cards` answering `page`, with the cursor of the page after.
    pub fn page(cards: Vec<Card>, page: &Page) -> Self {
        let next = page.next(&cards);
        CardList {
            cards: cards.into_iter().map(CardView::from).collect(),
            next,
        }
    }
}

list! {
    /// The sessions of a user.
    SessionList { sessions: [SessionView] } from Card, |card: Card| SessionView::from(&card)
}

list! {
    /// The members of an org.
    MemberList { members: [MemberView] } from Member,
    |m: Member| MemberView { user: m.user.slug, role: m.role }
}

list! {
    /// The explicit grants on an image.
    GrantList { grants: [GrantView] } from ExplicitGrant,
    |g: ExplicitGrant| GrantView { holder: g.holder.slug, actions: g.actions }
}

list! {
    /// Events, newest first.
    EventList { events: [EventView] } from Event,
    |e: Event| EventView { card: e.card.into(), actor: e.actor, target: e.target }
}

/// A page of a listing.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Start after this slug: the previous page's `next` (its last slug).
    #[param(value_type = Option<String>, max_length = 256)]
    pub after: Option<Name>,
    /// At most this many cards (default 100); outside 1 to 1000 the request is refused (400).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

impl From<PageQuery> for Page {
    fn from(q: PageQuery) -> Page {
        Page {
            after: q.after.map(Name::into_string),
            limit: q.limit,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// A login session's token, for `Authorization: Bearer`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginAnswer {
    pub token: String,
    pub user: String,
    pub expires_at: String,
}

/// An org membership.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipView {
    pub org: String,
    /// `owner`, `maintainer`, `developer` or `viewer`.
    #[schema(value_type = String, pattern = "^(owner|maintainer|developer|viewer)$")]
    pub role: MembershipRole,
}

/// Who the caller is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub user: String,
    pub platform_admin: bool,
    pub memberships: Vec<MembershipView>,
}

impl From<&Caller> for WhoAmI {
    fn from(caller: &Caller) -> Self {
        WhoAmI {
            user: caller.card.slug.clone(),
            platform_admin: caller.platform_admin,
            memberships: caller
                .memberships()
                .iter()
                .map(|m| MembershipView {
                    org: m.org_slug.clone(),
                    role: m.role,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    /// Lowercase letters, digits and inner `-`; the org's slug is `org-<name>`.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Lowercase letters, digits and inner `-`; the user's slug is `user-<name>`.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    /// Platform roles: `platform-admin`, or the names of active role cards (`user-default`
    /// for `role-user-default`); anything else is refused (400). Absent: `["user-default"]`.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    /// Platform roles: `platform-admin`, or the names of active role cards (`user-default`
    /// for `role-user-default`); anything else is refused (400).
    #[schema(max_items = 16)]
    pub roles: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    /// At least 8 characters.
    #[schema(min_length = 8)]
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Lifetime in seconds (default one year): at least a minute, at most ten years.
    #[serde(default)]
    #[schema(minimum = 60, maximum = 315360000)]
    pub expires_in_seconds: Option<u64>,
    /// A JSON Schema the cards the token reaches must satisfy.
    #[serde(default)]
    #[schema(value_type = Option<Value>)]
    pub scope: Option<Document>,
}

/// A new token: its secret is shown only here.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionToken {
    pub id: Uuid,
    pub token: String,
    pub expires_at: Value,
}

/// A session as listed: never its secret's hash.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    /// `session` (logins and tokens) or `refresh` (OAuth2 refresh tokens).
    pub kind: String,
    pub client_id: Value,
    pub service: Value,
    pub expires_at: Value,
    /// Whether a scope narrows what it reaches.
    pub scoped: bool,
    pub created_at: String,
}

impl From<&Card> for SessionView {
    fn from(card: &Card) -> Self {
        SessionView {
            id: card.id,
            kind: card
                .session()
                .map_or("session", |session| session.kind.as_str())
                .to_owned(),
            client_id: card.data["client_id"].clone(),
            service: card.data["service"].clone(),
            expires_at: card.data["expiration"].clone(),
            scoped: card.data.get("scope").is_some(),
            created_at: card.created_at.format(&Rfc3339).unwrap_or_default(),
        }
    }
}

/// A member of an org.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MemberView {
    pub user: String,
    /// `owner`, `maintainer`, `developer` or `viewer`.
    #[schema(value_type = String, pattern = "^(owner|maintainer|developer|viewer)$")]
    pub role: MembershipRole,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    #[schema(value_type = String)]
    pub user: Name,
    /// `owner`, `maintainer`, `developer` or `viewer`.
    #[schema(value_type = String, pattern = "^(owner|maintainer|developer|viewer)$")]
    pub role: MembershipRole,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// `owner`, `maintainer`, `developer` or `viewer`.
    #[schema(value_type = String, pattern = "^(owner|maintainer|developer|viewer)$")]
    pub role: MembershipRole,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRobot {
    /// Lowercase letters, digits and inner `-`; the robot's slug is `user-<name>`.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewImage {
    /// `<org>/<name...>`.
    pub repository: String,
    #[serde(default)]
    pub public: bool,
}

/// A page of an org's images, by slug, optionally only those whose name starts with `q`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImageQuery {
    /// Start after this slug: the previous page's `next` (its last slug).
    #[param(value_type = Option<String>, max_length = 256)]
    pub after: Option<Name>,
    /// At most this many images (default 100); outside 1 to 1000 the request is refused (400).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Only images whose repository name, after `<org>/`, starts with this (`web` finds
    /// `acme/web` and `acme/web-api`); empty: all.
    #[param(value_type = Option<String>, max_length = 256)]
    pub q: Option<Name>,
}

impl ImageQuery {
    /// The page asked for.
    pub fn page(&self) -> Page {
        Page {
            after: self.after.as_ref().map(|after| after.as_str().to_owned()),
            limit: self.limit,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RepositoryQuery {
    pub repository: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageChange {
    pub repository: String,
    pub public: bool,
}

/// An explicit grant.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    pub holder: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantBody {
    /// A user or org slug (`user-ci`, `org-acme`).
    #[schema(value_type = String)]
    pub holder: Name,
    pub repository: String,
    /// `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    #[param(value_type = String)]
    pub holder: Name,
    pub repository: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    /// A JSON Schema the cards holders of the role may read must satisfy, or `true`.
    #[schema(value_type = Value)]
    pub read: Document,
    /// Whether holders may list the registry catalog.
    #[serde(default)]
    pub catalog: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRole {
    /// Lowercase letters, digits and inner `-`; the role's slug is `role-<name>`.
    #[schema(min_length = 1, max_length = 64)]
    pub name: String,
    #[schema(value_type = Value)]
    pub read: Document,
    #[serde(default)]
    pub catalog: bool,
}

/// A card named by its id or by its slug (`user-alice`, `org-acme`, as events show them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum CardRef {
    Id(Uuid),
    Slug(String),
}

/// Why a [`CardRef`] is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither a card's id nor its slug (`<type>-<name>`, such as `user-alice`)")]
pub struct NotACardRef(String);

impl CardRef {
    /// A UUID, or a slug: `<type>-<name>` of a card type, in lowercase letters, digits and
    /// `-`, at most 255 characters (what the store holds).
    pub fn parse(value: &str) -> Result<CardRef, NotACardRef> {
        if let Ok(id) = Uuid::parse_str(value) {
            return Ok(CardRef::Id(id));
        }
        let charset = value.len() <= 255
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let typed = CardType::ALL.iter().any(|t| {
            value
                .strip_prefix(t.name())
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|name| !name.is_empty())
        });
        if charset && typed {
            Ok(CardRef::Slug(value.to_owned()))
        } else {
            // Shown in the refusal: at most a name's length of it.
            Err(NotACardRef(value.chars().take(MAX_NAME_LEN).collect()))
        }
    }
}

impl TryFrom<String> for CardRef {
    type Error = NotACardRef;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        CardRef::parse(&value)
    }
}

impl From<CardRef> for String {
    fn from(card: CardRef) -> String {
        match card {
            CardRef::Id(id) => id.to_string(),
            CardRef::Slug(slug) => slug,
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Only events about this card: its slug as events show it (`org-acme`), or its id. No
    /// card with that slug: no events.
    #[param(value_type = Option<String>, max_length = 255)]
    pub target: Option<CardRef>,
    /// Only events by this user: its slug as events show it (`user-alice`), or its id. No card
    /// with that slug: no events.
    #[param(value_type = Option<String>, max_length = 255)]
    pub actor: Option<CardRef>,
    /// RFC 3339; only events at or after.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub since: Option<OffsetDateTime>,
    /// RFC 3339; only events before (not at).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub until: Option<OffsetDateTime>,
    /// At most this many (default 100); outside 1 to 1000 the request is refused (400).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Which lines of the registry's audit trail to list.
#[derive(Debug, Default, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// Only the repositories of this org (its name, `acme`); its owners and platform admins.
    #[param(value_type = Option<String>, max_length = 256)]
    pub org: Option<Name>,
    /// Only this repository (`<org>/<name>`).
    pub repository: Option<String>,
    /// Only pulls, pushes and deletes by this account (as the registry names it).
    #[param(value_type = Option<String>, max_length = 256)]
    pub actor: Option<Name>,
    /// RFC 3339; only lines at or after.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub since: Option<OffsetDateTime>,
    /// RFC 3339; only lines before (not at).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub until: Option<OffsetDateTime>,
    /// Only lines older than the line with this id (the next page: the last id seen); ids
    /// start at 1.
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub before: Option<i64>,
    /// At most this many (default 100); outside 1 to 1000 the request is refused (400).
    #[serde(default)]
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// The largest storage quota, in bytes: 2^53 (8 PiB), the largest integer every JSON client
/// reads exactly.
pub const MAX_QUOTA_BYTES: i64 = 1 << 53;

/// An org's storage quota: `null` removes it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaBody {
    #[schema(minimum = 0, maximum = 9007199254740992_i64)]
    pub quota_bytes: Option<i64>,
}

/// An event: its card, with the slugs of its actor and its target.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventView {
    #[serde(flatten)]
    pub card: CardView,
    pub actor: Option<String>,
    pub target: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// The account to explain for; empty or absent: an anonymous request.
    #[serde(default)]
    #[param(value_type = String)]
    pub account: Name,
    /// One scope, e.g. `repository:acme/web:pull,push`.
    pub scope: String,
}

/// Per requested action of a scope, granted or denied and why.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExplainAnswer {
    /// The actor's slug (`user-guest` for anonymous requests).
    pub actor: String,
    pub scope: String,
    pub actions: Vec<ActionVerdict>,
    /// What the decision rests on.
    pub facts: Value,
}

impl ExplainAnswer {
    pub fn new(explanation: &Explanation, scope: &Scope) -> Self {
        ExplainAnswer {
            actor: explanation.actor.clone(),
            scope: scope.to_string(),
            actions: explanation
                .verdicts(scope)
                .into_iter()
                .map(|v| ActionVerdict {
                    action: v.action.to_owned(),
                    granted: v.granted,
                    reasons: v.reasons,
                })
                .collect(),
            facts: match &explanation.subject {
                Subject::Repository(assessment) => json!(assessment),
                other => json!(other),
            },
        }
    }
}

/// One requested action: granted or not, and why.
#[derive(Debug, Serialize, Deserialize)]
pub struct ActionVerdict {
    pub action: String,
    pub granted: bool,
    pub reasons: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    #[test]
    fn names_refuse_control_characters_and_excess_length_only() {
        for good in [
            "",
            "alice",
            "user-alice",
            "Émile Zola",
            "a b",
            &"x".repeat(256),
        ] {
            assert_eq!(Name::parse(good).unwrap().as_str(), good);
        }
        assert_eq!(Name::parse("bob\0"), Err(NameError::ControlCharacter(0)));
        assert_eq!(Name::parse("a\nb"), Err(NameError::ControlCharacter(10)));
        assert_eq!(
            Name::parse("a\u{7f}"),
            Err(NameError::ControlCharacter(0x7f))
        );
        assert_eq!(
            Name::parse("a\u{85}"),
            Err(NameError::ControlCharacter(0x85))
        );
        assert_eq!(Name::parse("x".repeat(257)), Err(NameError::TooLong));
        assert_eq!(
            NameError::ControlCharacter(0).to_string(),
            "holds a control character (U+0000)"
        );
    }

    #[test]
    fn documents_refuse_a_nul_in_any_string_or_member_name() {
        let good = json!({"type": "object", "properties": {"a": {"enum": ["x\u{1}", 1]}}});
        assert_eq!(Document::try_from(good.clone()).unwrap().into_value(), good);
        for bad in [
            json!("a\u{0}"),
            json!({"a": ["b", {"c": "d\u{0}"}]}),
            json!({"a\u{0}": 1}),
        ] {
            assert_eq!(Document::try_from(bad), Err(NulInDocument));
        }
    }
}
