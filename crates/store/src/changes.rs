//! Every change to the store, each written in one transaction with its event card: create,
//! update (JSON Patch, at a named revision), link, unlink, deactivate. No change without its
//! event, no event without its change. Secrets (password hashes, session secret hashes) never
//! reach an event's payload.

use json_patch::Patch;
use serde_json::{Value, json};
use sqlx::PgConnection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::model::{Card, CardType, LinkVerb, NewCard, Slug};
use crate::policy::PolicySchema;
use crate::schema::{check_card, check_link};
use crate::{
    ADMIN_SLUG, CARD_COLUMNS, DEFAULT_ROLE_SLUG, GUEST_ROLE_SLUG, GUEST_SLUG, Result, Store,
    StoreError, active_password_id, hash_session_secret,
};

/// The link from an event to the card it is about, and its inverse.
const ATTACHED_TO: (&str, &str) = ("is attached to", "has attached element");

/// What a card's history shows instead of a secret.
const REDACTED: &str = "[REDACTED]";

/// The top-level fields of a card an update may patch.
const PATCHABLE: [&str; 4] = ["name", "tags", "markers", "data"];

/// A session token as handed to its holder: `<session id>.<secret>`. Only the SHA-256 of the
/// secret is stored.
pub struct IssuedSession {
    pub card: Card,
    pub token: secrecy::SecretString,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSession")
            .field("id", &self.card.id)
            .finish_non_exhaustive()
    }
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub target: Option<Uuid>,
    pub actor: Option<Uuid>,
    pub since: Option<OffsetDateTime>,
    /// Events before this time.
    pub until: Option<OffsetDateTime>,
    pub limit: i64,
    /// Only events these markers admit (the marker rule); all when `None`.
    pub visible_to: Option<Vec<String>>,
}

/// `data` with its secrets replaced, for an event payload.
fn redacted(card_type: &str, data: &Value) -> Value {
    let mut data = data.clone();
    match card_type.parse::<CardType>() {
        Ok(CardType::AuthenticationPassword) => data["hash"] = json!(REDACTED),
        Ok(CardType::Session) if data.get("token").is_some() => {
            data["token"] = json!({"authentication": REDACTED});
        }
        _ => {}
    }
    data
}

/// A JSON Patch with the values of secret fields replaced, for an event payload.
fn redacted_patch(card_type: &str, patch: &Patch) -> Value {
    let secret_paths: &[&str] = match card_type.parse::<CardType>() {
        Ok(CardType::AuthenticationPassword) => &["/data/hash"],
        Ok(CardType::Session) => &["/data/token"],
        _ => &[],
    };
    let mut value = json!(patch);
    if let Some(ops) = value.as_array_mut() {
        for op in ops {
            let path = op["path"].as_str().unwrap_or_default().to_owned();
            if secret_paths.iter().any(|p| path.starts_with(p)) && op.get("value").is_some() {
                op["value"] = json!(REDACTED);
            }
        }
    }
    value
}

/// A user's slug is `user-<name>` with a name that does not itself start with `user-`, so
/// that account names and slugs map one to one.
fn check_user_slug(slug: &str) -> Result<()> {
    match slug.strip_prefix("user-") {
        Some(name) if !name.is_empty() && !name.starts_with("user-") => Ok(()),
        _ => Err(StoreError::Invalid(format!(
            "user `{slug}`: slug: must be user-<name>, the name not starting with user-"
        ))),
    }
}

/// The name of a user or org card (`user-<name>`, `org-<name>`).
fn account_name(new: &NewCard) -> Option<&str> {
    match new.card_type {
        CardType::User => new.slug.strip_prefix("user-"),
        CardType::Org => new.slug.strip_prefix("org-"),
        _ => None,
    }
}

/// Users and orgs share one namespace of names, the one repository namespaces and static ACL
/// `${account}` patterns are read in: `acme` is the org `org-acme` or the user `user-acme`,
/// never both, deactivated cards included. Creations of users and orgs are serialised by an
/// advisory lock held until the end of the transaction, so that two cannot take a name at once.
async fn check_account_name(conn: &mut PgConnection, new: &NewCard) -> Result<()> {
    let Some(name) = account_name(new) else {
        return Ok(());
    };
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('cardgate account names'))")
        .execute(&mut *conn)
        .await?;
    let taken: Option<(String,)> = sqlx::query_as(
        "SELECT slug FROM cards WHERE slug = ANY($1) AND slug <> $2 \
         AND split_part(type, '@', 1) IN ('user', 'org') LIMIT 1",
    )
    .bind(vec![String::from(Slug::user(name)), Slug::org(name).into()])
    .bind(&new.slug)
    .fetch_optional(&mut *conn)
    .await?;
    match taken {
        Some((slug,)) => Err(StoreError::Conflict(format!(
            "name: `{name}` is already the name of {slug}"
        ))),
        None => Ok(()),
    }
}

pub(crate) async fn insert_card(conn: &mut PgConnection, new: &NewCard) -> Result<Card> {
    check_card(new.card_type, &new.data).map_err(|e| {
        StoreError::Invalid(format!("{} `{}`: {e}", new.card_type.name(), new.slug))
    })?;
    if new.card_type == CardType::User {
        check_user_slug(&new.slug)?;
    }
    check_account_name(conn, new).await?;
    let query = format!(
        "INSERT INTO cards (id, slug, type, name, markers, data) VALUES ($1, $2, $3, $4, $5, $6) \
         RETURNING {CARD_COLUMNS}"
    );
    sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
        .bind(new.id)
        .bind(&new.slug)
        .bind(new.card_type.versioned())
        .bind(&new.name)
        .bind(&new.markers)
        .bind(&new.data)
        .fetch_one(conn)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) if new.card_type == CardType::Image => {
                StoreError::Conflict(format!(
                    "an active image for repository {} already exists",
                    new.data["repository"]
                ))
            }
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("a card with slug `{}` already exists", new.slug))
            }
            StoreError::Invalid(problem) => {
                StoreError::Invalid(format!("card `{}`: {problem}", new.slug))
            }
            other => other,
        })
}

async fn insert_link(
    conn: &mut PgConnection,
    (name, inverse): (&str, &str),
    from: Uuid,
    to: Uuid,
    data: &Value,
) -> Result<()> {
    for (name, a, b) in [(name, from, to), (inverse, to, from)] {
        sqlx::query(
            "INSERT INTO links (id, name, from_id, to_id, data) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(Uuid::new_v4())
        .bind(name)
        .bind(a)
        .bind(b)
        .bind(data)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Who sees the history of `target`: whoever its markers admit; for an unmarked card (an org,
/// a user, a role), whoever its own slug admits (the org's members, the user, platform admins),
/// never everyone.
fn event_markers(target: &Card) -> Vec<String> {
    if target.markers.is_empty() {
        vec![target.slug.clone()]
    } else {
        target.markers.clone()
    }
}

/// Writes the event of a change to `target` by `actor`, attached to the target and marked as
/// in [`event_markers`] (whoever sees the target sees its history).
async fn record(
    conn: &mut PgConnection,
    kind: CardType,
    actor: Uuid,
    target: &Card,
    payload: Value,
) -> Result<()> {
    let timestamp = OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .map_err(|e| StoreError::Invalid(format!("timestamp: {e}")))?;
    let event = insert_card(
        conn,
        &NewCard::new(
            kind,
            format!("{}-{}", kind.name(), Uuid::new_v4().simple()),
            json!({"timestamp": timestamp, "actor": actor, "target": target.id, "payload": payload}),
        )
        .with_markers(event_markers(target)),
    )
    .await?;
    insert_link(conn, ATTACHED_TO, event.id, target.id, &json!({})).await
}

async fn create_in(conn: &mut PgConnection, actor: Uuid, new: &NewCard) -> Result<Card> {
    let card = insert_card(conn, new).await?;
    let payload = json!({
        "slug": card.slug,
        "type": card.card_type,
        "name": card.name,
        "markers": card.markers,
        "data": redacted(&card.card_type, &card.data),
    });
    record(conn, CardType::CreateEvent, actor, &card, payload).await?;
    Ok(card)
}

pub(crate) async fn deactivate_in(
    conn: &mut PgConnection,
    actor: Uuid,
    id: Uuid,
    revision: Option<i64>,
) -> Result<Card> {
    let query = format!(
        "UPDATE cards SET active = false, revision = revision + 1, updated_at = now() \
         WHERE id = $1 AND active AND ($2::bigint IS NULL OR revision = $2) RETURNING {CARD_COLUMNS}"
    );
    let card = sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
        .bind(id)
        .bind(revision)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(card) = card else {
        return Err(why_unchanged(conn, id, revision).await);
    };
    record(conn, CardType::DeactivateEvent, actor, &card, json!({})).await?;
    Ok(card)
}

/// Why an update matched no row: no such (active) card, or a stale revision.
async fn why_unchanged(conn: &mut PgConnection, id: Uuid, expected: Option<i64>) -> StoreError {
    let current: std::result::Result<Option<(i64, bool)>, _> =
        sqlx::query_as("SELECT revision, active FROM cards WHERE id = $1")
            .bind(id)
            .fetch_optional(conn)
            .await;
    match (current, expected) {
        (Err(e), _) => e.into(),
        (Ok(Some((current, true))), Some(expected)) if current != expected => {
            StoreError::Stale { expected, current }
        }
        _ => StoreError::NotFound(format!("active card {id}")),
    }
}

/// Creates a session card for `user` until `expiration` with `data` (plus its actor, expiration
/// and the SHA-256 of a fresh 256-bit secret from the OS CSPRNG), and its `create` event.
async fn open_session_in(
    conn: &mut PgConnection,
    actor: Uuid,
    user: &Card,
    expiration: OffsetDateTime,
    mut data: Value,
) -> Result<IssuedSession> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Invalid(format!("randomness: {e}")))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let expiration = expiration
        .format(&Rfc3339)
        .map_err(|e| StoreError::Invalid(format!("expiration: {e}")))?;
    data["actor"] = json!(user.id);
    data["expiration"] = json!(expiration);
    data["token"] = json!({"authentication": hash_session_secret(&secret)});
    let card = create_in(
        conn,
        actor,
        &NewCard::new(CardType::Session, Slug::unique(CardType::Session), data)
            .with_markers(vec![user.slug.clone()]),
    )
    .await?;
    let token = format!("{}.{secret}", card.id);
    Ok(IssuedSession {
        card,
        token: secrecy::SecretString::from(token),
    })
}

/// `card` if it is of the type the built-in `new` must have; otherwise the problem, named.
fn check_built_in(card: Card, new: &NewCard) -> Result<Card> {
    if card.base_type() == new.card_type.name() {
        Ok(card)
    } else {
        Err(StoreError::Invalid(format!(
            "the built-in card {} is a {}, not a {}: the database was changed by hand",
            card.slug,
            card.base_type(),
            new.card_type.name()
        )))
    }
}

impl Store {
    /// Creates a card (its `data` checked against its type's schema) and its `create` event.
    pub async fn create(&self, actor: &Card, new: NewCard) -> Result<Card> {
        let mut tx = self.pool.begin().await?;
        let card = create_in(&mut tx, actor.id, &new).await?;
        self.commit(tx).await?;
        Ok(card)
    }

    /// Applies a JSON Patch to the `name`, `tags`, `markers` and `data` of the card `id`, if it
    /// is at `revision`; writes the `update` event. A stale revision changes nothing.
    pub async fn update(
        &self,
        actor: &Card,
        id: Uuid,
        revision: i64,
        patch: &Patch,
    ) -> Result<Card> {
        for op in &patch.0 {
            let path = op.path().to_string();
            let top = path.split('/').nth(1).unwrap_or_default();
            if !PATCHABLE.contains(&top) {
                return Err(StoreError::Invalid(format!(
                    "patch path `{path}`: only /name, /tags, /markers and /data can change"
                )));
            }
        }
        let mut tx = self.pool.begin().await?;
        let query = format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = $1 AND active FOR UPDATE");
        let card = sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("active card {id}")))?;
        if card.revision != revision {
            return Err(StoreError::Stale {
                expected: revision,
                current: card.revision,
            });
        }
        let mut document = json!({
            "name": card.name, "tags": card.tags, "markers": card.markers, "data": card.data,
        });
        json_patch::patch(&mut document, patch)
            .map_err(|e| StoreError::Invalid(format!("patch: {e}")))?;
        let field = |name: &str| -> Result<Vec<String>> {
            serde_json::from_value(document[name].clone())
                .map_err(|e| StoreError::Invalid(format!("/{name}: {e}")))
        };
        let (tags, markers) = (field("tags")?, field("markers")?);
        let name: Option<String> = serde_json::from_value(document["name"].clone())
            .map_err(|e| StoreError::Invalid(format!("/name: {e}")))?;
        let data = document["data"].clone();
        let card_type = card
            .card_type
            .parse::<CardType>()
            .map_err(StoreError::Invalid)?;
        check_card(card_type, &data).map_err(|e| {
            StoreError::Invalid(format!("{} `{}`: {e}", card_type.name(), card.slug))
        })?;
        let query = format!(
            "UPDATE cards SET name = $2, tags = $3, markers = $4, data = $5, \
             revision = revision + 1, updated_at = now() WHERE id = $1 RETURNING {CARD_COLUMNS}"
        );
        let updated = sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(id)
            .bind(&name)
            .bind(&tags)
            .bind(&markers)
            .bind(&data)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Invalid(problem) => {
                    StoreError::Invalid(format!("card {id}: {problem}"))
                }
                other => other,
            })?;
        let payload =
            json!({"patch": redacted_patch(&card.card_type, patch), "revision": updated.revision});
        record(&mut tx, CardType::UpdateEvent, actor.id, &updated, payload).await?;
        self.commit(tx).await?;
        Ok(updated)
    }

    /// Deactivates the card `id` (at `revision`, when given) and writes the event.
    pub async fn deactivate(&self, actor: &Card, id: Uuid, revision: Option<i64>) -> Result<Card> {
        let mut tx = self.pool.begin().await?;
        let card = deactivate_in(&mut tx, actor.id, id, revision).await?;
        self.commit(tx).await?;
        Ok(card)
    }

    /// Links `from` to `to` with `verb` (and the inverse), after checking the types and data;
    /// writes the `link` event.
    pub async fn link(
        &self,
        actor: &Card,
        from: &Card,
        verb: LinkVerb,
        to: &Card,
        data: Value,
    ) -> Result<()> {
        let (from_type, to_type) = (
            from.card_type
                .parse::<CardType>()
                .map_err(StoreError::Invalid)?,
            to.card_type
                .parse::<CardType>()
                .map_err(StoreError::Invalid)?,
        );
        if !verb.allowed().contains(&(from_type, to_type)) {
            return Err(StoreError::Invalid(format!(
                "`{}` cannot link a {} to a {}",
                verb.name(),
                from_type.name(),
                to_type.name()
            )));
        }
        check_link(verb, &data)
            .map_err(|e| StoreError::Invalid(format!("link `{}`: {e}", verb.name())))?;
        let mut tx = self.pool.begin().await?;
        insert_link(
            &mut tx,
            (verb.name(), verb.inverse()),
            from.id,
            to.id,
            &data,
        )
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("{} already {} {}", from.slug, verb.name(), to.slug))
            }
            other => other,
        })?;
        let payload = json!({"verb": verb.name(), "from": from.id, "to": to.id, "data": data});
        record(
            &mut tx,
            CardType::LinkEvent,
            actor.id,
            verb.event_target(from, to),
            payload,
        )
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// Replaces the data of the active link `from` `verb` `to` (and its inverse), e.g. a
    /// membership's role or a grant's actions; writes a `link` event with the previous data.
    pub async fn update_link(
        &self,
        actor: &Card,
        from: &Card,
        verb: LinkVerb,
        to: &Card,
        data: Value,
    ) -> Result<()> {
        check_link(verb, &data)
            .map_err(|e| StoreError::Invalid(format!("link `{}`: {e}", verb.name())))?;
        let mut tx = self.pool.begin().await?;
        let previous: Option<(Value,)> = sqlx::query_as(
            "SELECT data FROM links WHERE active AND from_id = $1 AND name = $2 AND to_id = $3 \
             FOR UPDATE",
        )
        .bind(from.id)
        .bind(verb.name())
        .bind(to.id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((previous,)) = previous else {
            return Err(StoreError::NotFound(format!(
                "link {} {} {}",
                from.slug,
                verb.name(),
                to.slug
            )));
        };
        sqlx::query(
            "UPDATE links SET data = $5, updated_at = now() WHERE active AND \
             ((from_id = $1 AND name = $2 AND to_id = $3) OR (from_id = $3 AND name = $4 AND to_id = $1))",
        )
        .bind(from.id)
        .bind(verb.name())
        .bind(to.id)
        .bind(verb.inverse())
        .bind(&data)
        .execute(&mut *tx)
        .await?;
        let payload = json!({
            "verb": verb.name(), "from": from.id, "to": to.id, "data": data, "previous": previous,
        });
        record(
            &mut tx,
            CardType::LinkEvent,
            actor.id,
            verb.event_target(from, to),
            payload,
        )
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// Removes the active link `from` `verb` `to` (and its inverse); writes the `unlink` event.
    pub async fn unlink(&self, actor: &Card, from: &Card, verb: LinkVerb, to: &Card) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let removed = sqlx::query(
            "UPDATE links SET active = false, updated_at = now() WHERE active AND \
             ((from_id = $1 AND name = $2 AND to_id = $3) OR (from_id = $3 AND name = $4 AND to_id = $1))",
        )
        .bind(from.id)
        .bind(verb.name())
        .bind(to.id)
        .bind(verb.inverse())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if removed == 0 {
            return Err(StoreError::NotFound(format!(
                "link {} {} {}",
                from.slug,
                verb.name(),
                to.slug
            )));
        }
        let payload = json!({"verb": verb.name(), "from": from.id, "to": to.id});
        record(
            &mut tx,
            CardType::UnlinkEvent,
            actor.id,
            verb.event_target(from, to),
            payload,
        )
        .await?;
        self.commit(tx).await?;
        Ok(())
    }

    /// The active image card of `image`'s repository: `image` itself, created by `actor`, when
    /// there is none (see [`NewCard::image`]).
    pub async fn ensure_image(&self, actor: &Card, image: &NewCard) -> Result<Card> {
        let repository = match (image.card_type, image.data["repository"].as_str()) {
            (CardType::Image, Some(repository)) => repository,
            _ => {
                return Err(StoreError::Invalid(format!(
                    "card `{}`: not an image with data.repository",
                    image.slug
                )));
            }
        };
        if let Some(card) = self.image_by_repository(repository).await? {
            return Ok(card);
        }
        match self.create(actor, image.clone()).await {
            Ok(card) => {
                self.reserve_image(&card).await?;
                Ok(card)
            }
            // Another request created it first.
            Err(StoreError::Conflict(_)) => self
                .image_by_repository(repository)
                .await?
                .ok_or_else(|| StoreError::Conflict(format!("image {repository} vanished"))),
            Err(e) => Err(e),
        }
    }

    /// Gives `user` the password whose argon2id hash is `hash`, replacing any previous one and
    /// ending the user's admin login sessions (and so, through the password binding, its refresh
    /// tokens). The events record the change, never the hash.
    pub async fn set_password(&self, actor: &Card, user: &Card, hash: &str) -> Result<Card> {
        let mut tx = self.pool.begin().await?;
        let previous: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM cards WHERE (data ->> 'actor') = $1 \
             AND split_part(type, '@', 1) = 'authentication-password' AND active",
        )
        .bind(user.id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        // The old password goes, and with it the admin login sessions it opened.
        let logins: Vec<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM cards WHERE (data ->> 'actor') = $1 AND (data ->> 'kind') = 'login' \
             AND split_part(type, '@', 1) = 'session' AND active",
        )
        .bind(user.id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        for (id,) in previous.into_iter().chain(logins) {
            deactivate_in(&mut tx, actor.id, id, None).await?;
        }
        let card = create_in(
            &mut tx,
            actor.id,
            &NewCard::new(
                CardType::AuthenticationPassword,
                format!("authentication-password-{}", Uuid::new_v4().simple()),
                json!({"actor": user.id, "hash": hash}),
            )
            .with_markers(vec![user.slug.clone()]),
        )
        .await?;
        self.commit(tx).await?;
        Ok(card)
    }

    /// Opens a session for `user` until `expiration`, optionally narrowed by `scope` (a JSON
    /// Schema cards must also satisfy). The secret has 256 bits from the OS CSPRNG.
    pub async fn create_session(
        &self,
        actor: &Card,
        user: &Card,
        expiration: OffsetDateTime,
        scope: Option<Value>,
    ) -> Result<IssuedSession> {
        let mut data = json!({});
        if let Some(scope) = scope {
            // Checked again with the card, but named here without the new session's slug.
            PolicySchema::compile(&scope)
                .map_err(|e| StoreError::Invalid(format!("data/scope: {e}")))?;
            data["scope"] = scope;
        }
        let mut tx = self.pool.begin().await?;
        let issued = open_session_in(&mut tx, actor.id, user, expiration, data).await?;
        self.commit(tx).await?;
        Ok(issued)
    }

    /// Opens an admin login session for `user` until `expiration` (`data.kind = "login"`): the
    /// only kind of session the admin API accepts as a Bearer; a password change ends it.
    pub async fn create_login_session(
        &self,
        user: &Card,
        expiration: OffsetDateTime,
    ) -> Result<IssuedSession> {
        let mut tx = self.pool.begin().await?;
        let issued =
            open_session_in(&mut tx, user.id, user, expiration, json!({"kind": "login"})).await?;
        self.commit(tx).await?;
        Ok(issued)
    }

    /// Opens a refresh session: an OAuth2 refresh token for `user` until `expiration`, bound to
    /// `client_id`, `service` and the user's active password card (`data.password`, null when
    /// the user has none), so that a password change ends it. The user is the acting card.
    /// The user keeps at most `keep` active refresh tokens for `client_id` (at least one, the
    /// new one): the oldest beyond are revoked, in the same transaction, by the one login of
    /// that user and client that holds a lock on them. Concurrent logins (a fleet of CI jobs
    /// logging in as one robot) never wait for each other: those that find the lock taken
    /// leave the trimming to it and to the next login, so the bound may be exceeded by the
    /// logins in flight until then.
    pub async fn create_refresh_session(
        &self,
        user: &Card,
        client_id: &str,
        service: &str,
        expiration: OffsetDateTime,
        keep: u64,
    ) -> Result<IssuedSession> {
        let mut tx = self.pool.begin().await?;
        // Held until the transaction ends; the key names the user and the client.
        let (trims,): (bool,) =
            sqlx::query_as("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))")
                .bind(format!("refresh-tokens {} {client_id}", user.id))
                .fetch_one(&mut *tx)
                .await?;
        if trims {
            let oldest: Vec<(Uuid,)> = sqlx::query_as(
                "SELECT id FROM cards WHERE (data ->> 'actor') = $1 \
                 AND (data ->> 'kind') = 'refresh' AND (data ->> 'client_id') = $2 \
                 AND split_part(type, '@', 1) = 'session' AND active \
                 ORDER BY created_at DESC, id OFFSET $3",
            )
            .bind(user.id.to_string())
            .bind(client_id)
            .bind(i64::try_from(keep.saturating_sub(1)).unwrap_or(i64::MAX))
            .fetch_all(&mut *tx)
            .await?;
            for (id,) in oldest {
                deactivate_in(&mut tx, user.id, id, None).await?;
            }
        }
        let password = active_password_id(&mut *tx, user.id).await?;
        let data = json!({
            "kind": "refresh",
            "client_id": client_id,
            "service": service,
            "password": password,
        });
        let issued = open_session_in(&mut tx, user.id, user, expiration, data).await?;
        self.commit(tx).await?;
        Ok(issued)
    }

    /// Makes sure the built-in cards are there and active: `user-admin` (the actor of its own
    /// creation and of the others'), `user-guest`, and the roles `role-user-default` (reads
    /// every card the markers allow) and `role-user-guest` (reads only public images). A
    /// missing one is created; a deactivated one (by a release that let admins do that, or by
    /// hand in the database) is reactivated, with an `update` event. Safe to run from several
    /// instances at once.
    pub async fn bootstrap(&self) -> Result<()> {
        let admin = self
            .ensure_built_in(
                None,
                NewCard::new(
                    CardType::User,
                    ADMIN_SLUG,
                    json!({"roles": ["user-default"]}),
                ),
            )
            .await?;
        let others = [
            NewCard::new(CardType::Role, DEFAULT_ROLE_SLUG, json!({"read": true})),
            NewCard::new(
                CardType::Role,
                GUEST_ROLE_SLUG,
                json!({"read": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {"data": {"type": "object", "required": ["public"], "properties": {"public": {"const": true}}}},
                }}),
            ),
            NewCard::new(CardType::User, GUEST_SLUG, json!({"roles": ["user-guest"]})),
        ];
        for card in others {
            self.ensure_built_in(Some(&admin), card).await?;
        }
        Ok(())
    }

    /// The active built-in card `new.slug`: as it is, reactivated, or created, acting as `actor`
    /// (the card itself when `None`: `user-admin` bootstraps itself).
    async fn ensure_built_in(&self, actor: Option<&Card>, new: NewCard) -> Result<Card> {
        if let Some(card) = self.card_by_slug(&new.slug).await? {
            return check_built_in(card, &new);
        }
        let mut tx = self.pool.begin().await?;
        let query = format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE slug = $1 ORDER BY version_major DESC, \
             version_minor DESC, version_patch DESC LIMIT 1 FOR UPDATE"
        );
        let existing = sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(&new.slug)
            .fetch_optional(&mut *tx)
            .await?;
        let card = match existing {
            Some(card) if card.active => return check_built_in(card, &new),
            Some(card) => {
                let card = check_built_in(card, &new)?;
                let query = format!(
                    "UPDATE cards SET active = true, revision = revision + 1, updated_at = now() \
                     WHERE id = $1 RETURNING {CARD_COLUMNS}"
                );
                let card = sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
                    .bind(card.id)
                    .fetch_one(&mut *tx)
                    .await?;
                let payload = json!({
                    "patch": [{"op": "replace", "path": "/active", "value": true}],
                    "revision": card.revision,
                });
                let actor = actor.map_or(card.id, |a| a.id);
                record(&mut tx, CardType::UpdateEvent, actor, &card, payload).await?;
                tracing::warn!(slug = %card.slug, "the built-in card was deactivated: reactivated");
                card
            }
            None => match insert_card(&mut tx, &new).await {
                Ok(card) => {
                    let payload = json!({
                        "slug": card.slug, "type": card.card_type, "name": card.name,
                        "markers": card.markers, "data": card.data,
                    });
                    let actor = actor.map_or(card.id, |a| a.id);
                    record(&mut tx, CardType::CreateEvent, actor, &card, payload).await?;
                    card
                }
                // Another instance bootstrapped first.
                Err(StoreError::Conflict(_)) => {
                    drop(tx);
                    return self
                        .card_by_slug(&new.slug)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(new.slug.clone()))
                        .and_then(|card| check_built_in(card, &new));
                }
                Err(e) => return Err(e),
            },
        };
        self.commit(tx).await?;
        Ok(card)
    }

    /// Events, newest first, filtered by target, actor and time.
    pub async fn events(&self, filter: &EventFilter) -> Result<Vec<Card>> {
        let query = format!(
            "SELECT {CARD_COLUMNS} FROM cards \
             WHERE split_part(type, '@', 1) IN ('create', 'update', 'link', 'unlink', 'deactivate') \
             AND ($1::text IS NULL OR (data ->> 'target') = $1) \
             AND ($2::text IS NULL OR (data ->> 'actor') = $2) \
             AND ($3::timestamptz IS NULL OR created_at >= $3) \
             AND ($4::timestamptz IS NULL OR created_at < $4) \
             AND ($6::text[] IS NULL OR NOT EXISTS (SELECT 1 FROM unnest(markers) AS m \
                  WHERE NOT (string_to_array(m, '+') && $6::text[]))) \
             ORDER BY created_at DESC, id LIMIT $5"
        );
        Ok(sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(filter.target.map(|t| t.to_string()))
            .bind(filter.actor.map(|a| a.to_string()))
            .bind(filter.since)
            .bind(filter.until)
            .bind(if filter.limit > 0 { filter.limit } else { 100 })
            .bind(&filter.visible_to)
            .fetch_all(&self.pool)
            .await?)
    }
}
