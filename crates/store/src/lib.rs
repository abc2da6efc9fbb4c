//! The card store on PostgreSQL: cards, links, their schemas and the queries the card plugins
//! need. Also a private PostgreSQL starter for `cardgate dev` and tests.
//!
//! Knows nothing of HTTP or of the token protocol; the plugins in `cardgate-authz-cards` turn
//! what it returns into decisions.

mod changes;
pub mod embedded;
mod feed;
mod login_failures;
mod model;
mod policy;
mod registry;
mod schema;
mod search;
#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use time::OffsetDateTime;
use uuid::Uuid;

pub use changes::{EventFilter, IssuedSession};
pub use feed::{CHANNEL, Generation, Tag};
pub use login_failures::{
    AccountHash, FailureNotice, FailureWindow, LOGIN_FAILURES_CHANNEL, account_hash,
};
pub use model::{
    Card, CardType, LinkVerb, Membership, MembershipRole, NewCard, Session, SessionKind, Slug,
    markers_allow,
};
pub use policy::{
    MAX_POLICY_SCHEMA_BYTES, MAX_POLICY_SCHEMA_DEPTH, MAX_POLICY_SCHEMA_PATTERNS, PolicySchema,
    REGEX_DFA_SIZE_LIMIT, REGEX_SIZE_LIMIT,
};
pub use registry::{
    ActivityFilter, ImageContents, OrgStorage, Recorded, RegistryAction, RegistryActivity,
    RegistryEvent, RegistryTag, RegistryTarget,
};
pub use schema::{check_card, check_link};

/// The built-in actors and roles, created (or reactivated) by [`Store::bootstrap`].
///
/// `user-admin` acts for start-up and for `cardgate set-password`, and may do anything.
pub const ADMIN_SLUG: &str = "user-admin";
/// The user anonymous requests act as: it reads what `role-user-guest` admits.
pub const GUEST_SLUG: &str = "user-guest";
/// The role of ordinary users (and of `user-admin`): reads every card the markers allow.
pub const DEFAULT_ROLE_SLUG: &str = "role-user-default";
/// The role of `user-guest`: reads only public images.
pub const GUEST_ROLE_SLUG: &str = "role-user-guest";

/// Whether `slug` is one of the built-in cards, which must stay active and as they are.
pub fn is_built_in(slug: &str) -> bool {
    [ADMIN_SLUG, GUEST_SLUG, DEFAULT_ROLE_SLUG, GUEST_ROLE_SLUG].contains(&slug)
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such card (or link).
    #[error("{0} not found")]
    NotFound(String),
    /// The update named an older revision than the card's: nothing was changed.
    #[error("revision {expected} is stale: the card is at revision {current}")]
    Stale { expected: i64, current: i64 },
    /// The database cannot be reached (or answers too slowly); nothing was decided.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The input breaks a schema or a rule; the message names the field, and never carries
    /// the database's own words.
    #[error("{0}")]
    Invalid(String),
    /// A unique constraint was hit (slug, repository...).
    #[error("{0}")]
    Conflict(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e),
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
                StoreError::Conflict(db.message().to_owned())
            }
            // 22021: a NUL byte in text; 22P05: `\u0000` in jsonb. The input, not the
            // database, is at fault: say so, without the database's words.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| c == "22021" || c == "22P05") =>
            {
                StoreError::Invalid(
                    "the input holds a NUL character (U+0000), which cannot be stored".to_owned(),
                )
            }
            // 23514: a check constraint of the schema; the slug's is the only one input reaches.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23514") => {
                StoreError::Invalid(match db.constraint() {
                    Some("cards_slug_check") => {
                        "slug: lowercase letters, digits and `-`, at most 255 characters".to_owned()
                    }
                    _ => "a value is outside what the store accepts".to_owned(),
                })
            }
            // 08: connection exceptions, 57: operator intervention (shutdown, cannot connect
            // now, statement timeout), 53: insufficient resources (too many connections),
            // 28: invalid authorization, 3D000: no such database.
            sqlx::Error::Database(db)
                if db.code().is_some_and(|c| {
                    ["08", "57", "53", "28"].iter().any(|p| c.starts_with(p)) || c == "3D000"
                }) =>
            {
                StoreError::Unavailable(e)
            }
            _ => StoreError::Database(e),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection before failing as unavailable.
    pub acquire_timeout: Duration,
    /// Statement timeout set on every connection.
    pub statement_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 16,
            acquire_timeout: Duration::from_millis(1500),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

const CARD_COLUMNS: &str =
    "id, slug, type, name, tags, markers, data, active, revision, created_at, updated_at";

/// What deciding for an actor needs: see [`Store::actor_facts`].
#[derive(Debug, Clone)]
pub struct ActorFacts {
    pub card: Card,
    pub memberships: Vec<Membership>,
    pub roles: Vec<PolicyCard>,
    /// The session the request came with, active or not; `None` when none was asked for, or
    /// it is not a session card.
    pub session: Option<PolicyCard>,
}

/// What a card holding a policy schema (a role's `data.read`, a session's `data.scope`) is
/// judged by: the schema is compiled once per card revision.
#[derive(Debug, Clone)]
pub struct PolicyCard {
    pub id: Uuid,
    pub slug: String,
    pub revision: i64,
    pub data: Value,
    pub active: bool,
}

#[derive(sqlx::FromRow)]
struct ActorRow {
    #[sqlx(flatten)]
    card: Card,
    memberships: Value,
    roles: Value,
    session: Option<Value>,
}

/// A membership from an org link's row (`org id, org slug, link data`); `None` when the link
/// names no known role.
fn membership((org_id, org_slug, data): (Uuid, String, Value)) -> Option<Membership> {
    let role = data.get("role")?.as_str()?.parse().ok()?;
    Some(Membership {
        org_id,
        org_slug,
        role,
    })
}

/// The card store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: PgPool,
    /// Advanced by every change; shared by the clones.
    generation: Arc<Generation>,
}

/// SHA-256 of a session secret, hex: what `data.token.authentication` holds.
pub fn hash_session_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The id of the active password card of `user_id` (the newest, as [`Store::password_hash`]).
pub(crate) async fn active_password_id<'e, E: sqlx::PgExecutor<'e>>(
    executor: E,
    user_id: Uuid,
) -> Result<Option<Uuid>> {
    let row: Option<(Uuid,)> = sqlx::query_as(
        "SELECT id FROM cards WHERE (data ->> 'actor') = $1 \
         AND split_part(type, '@', 1) = 'authentication-password' AND active \
         ORDER BY updated_at DESC LIMIT 1",
    )
    .bind(user_id.to_string())
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|(id,)| id))
}

impl Store {
    /// A pool that connects on demand: the server starts (and answers 503) while the database
    /// is away, and recovers by itself when it returns.
    pub fn connect_lazy(url: &str, settings: &PoolSettings) -> Result<Self> {
        let statement_timeout = format!("{}", settings.statement_timeout.as_millis());
        let pool = PgPoolOptions::new()
            .max_connections(settings.max_connections)
            .acquire_timeout(settings.acquire_timeout)
            .after_connect(move |conn, _| {
                let statement_timeout = statement_timeout.clone();
                Box::pin(async move {
                    sqlx::query("SELECT set_config('statement_timeout', $1, false)")
                        .bind(statement_timeout)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_lazy(url)
            .map_err(|e| StoreError::Invalid(format!("database URL: {e}")))?;
        Ok(Store {
            pool,
            generation: Arc::default(),
        })
    }

    /// Applies the migrations in `migrations/`.
    pub async fn migrate(&self) -> Result<()> {
        sqlx::migrate!("../../migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The active card with `slug` (highest version).
    pub async fn card_by_slug(&self, slug: &str) -> Result<Option<Card>> {
        let query = format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE slug = $1 AND active \
             ORDER BY version_major DESC, version_minor DESC, version_patch DESC LIMIT 1"
        );
        Ok(sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The card with `id`, active or not.
    pub async fn card_by_id(&self, id: Uuid) -> Result<Option<Card>> {
        let query = format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = $1");
        Ok(sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The slugs of the cards `ids`, active or not (one query).
    pub async fn slugs_of(&self, ids: &[Uuid]) -> Result<std::collections::HashMap<Uuid, String>> {
        let rows: Vec<(Uuid, String)> =
            sqlx::query_as("SELECT id, slug FROM cards WHERE id = ANY($1)")
                .bind(ids)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().collect())
    }

    /// The id of the card with `slug`, active or not (the active one first, else the newest):
    /// the card an event names by its slug.
    pub async fn card_id_by_slug(&self, slug: &str) -> Result<Option<Uuid>> {
        let row: Option<(Uuid,)> = sqlx::query_as(
            "SELECT id FROM cards WHERE slug = $1 ORDER BY active DESC, created_at DESC LIMIT 1",
        )
        .bind(slug)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// What deciding for the actor `slug` needs, in one round trip: its active card, its
    /// memberships of active orgs, the active role cards it names (`role-<slug>` and
    /// `role-<name>` for each string in `data.roles`), and the card of `session` (active or
    /// not) when given. `None` when there is no such active card.
    pub async fn actor_facts(
        &self,
        slug: &str,
        session: Option<Uuid>,
    ) -> Result<Option<ActorFacts>> {
        let query = format!(
            "SELECT {CARD_COLUMNS}, \
             (SELECT coalesce(jsonb_agg(jsonb_build_array(o.id, o.slug, l.data)), '[]'::jsonb) \
              FROM links l JOIN cards o ON o.id = l.to_id \
              WHERE l.from_id = a.id AND l.name = 'is member of' AND l.active AND o.active) \
             AS memberships, \
             (SELECT coalesce(jsonb_agg(jsonb_build_array(r.id, r.slug, r.revision, r.data)), \
                     '[]'::jsonb) \
              FROM cards r WHERE r.active AND split_part(r.type, '@', 1) = 'role' \
              AND r.slug = ANY(array_append(ARRAY( \
                  SELECT 'role-' || (e #>> '{{}}') FROM jsonb_array_elements( \
                      CASE WHEN jsonb_typeof(a.data -> 'roles') = 'array' \
                      THEN a.data -> 'roles' ELSE '[]'::jsonb END) AS e \
                  WHERE jsonb_typeof(e) = 'string'), 'role-' || a.slug))) AS roles, \
             (SELECT jsonb_build_array(s.id, s.slug, s.revision, s.data, s.active, s.type) \
              FROM cards s WHERE s.id = $2) AS session \
             FROM (SELECT {CARD_COLUMNS} FROM cards WHERE slug = $1 AND active \
                   ORDER BY version_major DESC, version_minor DESC, version_patch DESC LIMIT 1) a"
        );
        let row = sqlx::query_as::<_, ActorRow>(sqlx::AssertSqlSafe(query))
            .bind(slug)
            .bind(session)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let memberships: Vec<(Uuid, String, Value)> = serde_json::from_value(row.memberships)
            .map_err(|e| StoreError::Invalid(format!("memberships of {slug}: {e}")))?;
        let roles: Vec<(Uuid, String, i64, Value)> = serde_json::from_value(row.roles)
            .map_err(|e| StoreError::Invalid(format!("roles of {slug}: {e}")))?;
        let session: Option<(Uuid, String, i64, Value, bool, String)> = row
            .session
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("session of {slug}: {e}")))?;
        Ok(Some(ActorFacts {
            card: row.card,
            memberships: memberships.into_iter().filter_map(membership).collect(),
            roles: roles
                .into_iter()
                .map(|(id, slug, revision, data)| PolicyCard {
                    id,
                    slug,
                    revision,
                    data,
                    active: true,
                })
                .collect(),
            session: session
                .filter(|(.., card_type)| card_type.split('@').next() == Some("session"))
                .map(|(id, slug, revision, data, active, _)| PolicyCard {
                    id,
                    slug,
                    revision,
                    data,
                    active,
                }),
        }))
    }

    /// Whether an image card for `repository` ever existed, deactivated ones included: a
    /// deactivated image's name is not recreated by a first push. A reservation that expired
    /// without a push does not count: its name is free again.
    pub async fn image_ever_existed(&self, repository: &str) -> Result<bool> {
        let (exists,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM cards c WHERE (c.data ->> 'repository') = $1 \
             AND split_part(c.type, '@', 1) = 'image' AND NOT EXISTS (SELECT 1 \
             FROM image_reservations r WHERE r.card_id = c.id AND r.released_at IS NOT NULL))",
        )
        .bind(repository)
        .fetch_one(&self.pool)
        .await?;
        Ok(exists)
    }

    /// The active image card for a registry repository name.
    pub async fn image_by_repository(&self, repository: &str) -> Result<Option<Card>> {
        let query = format!(
            "SELECT {CARD_COLUMNS} FROM cards \
             WHERE (data ->> 'repository') = $1 AND split_part(type, '@', 1) = 'image' AND active"
        );
        Ok(sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(repository)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The active orgs `user_id` is a member of, with the membership role.
    pub async fn memberships(&self, user_id: Uuid) -> Result<Vec<Membership>> {
        let rows: Vec<(Uuid, String, Value)> = sqlx::query_as(
            "SELECT o.id, o.slug, l.data FROM links l JOIN cards o ON o.id = l.to_id \
             WHERE l.from_id = $1 AND l.name = 'is member of' AND l.active AND o.active",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().filter_map(membership).collect())
    }

    /// The union of the actions that `holders` (a user and its orgs) are granted on `image_id`.
    pub async fn granted_actions(&self, image_id: Uuid, holders: &[Uuid]) -> Result<Vec<String>> {
        let rows: Vec<(Value,)> = sqlx::query_as(
            "SELECT data FROM links WHERE to_id = $1 AND from_id = ANY($2) \
             AND name = 'has access to' AND active",
        )
        .bind(image_id)
        .bind(holders)
        .fetch_all(&self.pool)
        .await?;
        let mut actions: Vec<String> = rows
            .iter()
            .filter_map(|(data,)| data.get("actions")?.as_array().cloned())
            .flatten()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect();
        actions.sort();
        actions.dedup();
        Ok(actions)
    }

    /// The argon2id hash in the active password card of `user_id`.
    pub async fn password_hash(&self, user_id: Uuid) -> Result<Option<String>> {
        let row: Option<(Value,)> = sqlx::query_as(
            "SELECT data FROM cards WHERE (data ->> 'actor') = $1 \
             AND split_part(type, '@', 1) = 'authentication-password' AND active \
             ORDER BY updated_at DESC LIMIT 1",
        )
        .bind(user_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.and_then(|(data,)| data.get("hash")?.as_str().map(str::to_owned)))
    }

    /// The id of the active password card of `user_id`: what a refresh token is bound to.
    pub async fn password_card_id(&self, user_id: Uuid) -> Result<Option<Uuid>> {
        active_password_id(&self.pool, user_id).await
    }

    /// The active sessions (refresh tokens included) of `user_id`, newest first.
    pub async fn sessions_of(&self, user_id: Uuid) -> Result<Vec<Card>> {
        let query = format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE (data ->> 'actor') = $1 \
             AND split_part(type, '@', 1) = 'session' AND active ORDER BY created_at DESC"
        );
        Ok(sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(user_id.to_string())
            .fetch_all(&self.pool)
            .await?)
    }

    /// How many tokens (sessions of kind `session`: not logins, not refresh tokens) `actor`
    /// has created since `since`, for any user, revoked ones included: what a rate limit on
    /// token creation counts. Read from the audit trail, so it holds across instances.
    pub async fn tokens_created_by(&self, actor: Uuid, since: OffsetDateTime) -> Result<u64> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM cards WHERE split_part(type, '@', 1) = 'create' \
             AND (data ->> 'actor') = $1 AND created_at >= $2 \
             AND split_part(data -> 'payload' ->> 'type', '@', 1) = 'session' \
             AND coalesce(data -> 'payload' -> 'data' ->> 'kind', 'session') = 'session'",
        )
        .bind(actor.to_string())
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Up to `limit` active cards of `card_type`, by slug after `after`; only those carrying
    /// `marker` and whose data contains `data` when given.
    pub async fn cards_of_type(
        &self,
        card_type: CardType,
        marker: Option<&str>,
        data: Option<&Value>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Card>> {
        let query = format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE split_part(type, '@', 1) = $1 AND active \
             AND ($2::text IS NULL OR markers @> ARRAY[$2::text]) \
             AND ($5::jsonb IS NULL OR data @> $5) \
             AND ($3::text IS NULL OR slug > $3) ORDER BY slug LIMIT $4"
        );
        Ok(sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(card_type.name())
            .bind(marker)
            .bind(after)
            .bind(limit)
            .bind(data)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Up to `limit` active images marked with `org_slug`, by slug after `after`; only those
    /// whose repository name starts with `prefix` when given (a `LIKE` prefix, its wildcards
    /// escaped: what an index on the name can serve, unlike a substring).
    pub async fn images_of(
        &self,
        org_slug: &str,
        prefix: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Card>> {
        let pattern = prefix.map(|prefix| {
            let escaped = prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            format!("{escaped}%")
        });
        let query = format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE split_part(type, '@', 1) = 'image' AND active \
             AND markers @> ARRAY[$1::text] \
             AND ($2::text IS NULL OR (data ->> 'repository') LIKE $2 ESCAPE '\\') \
             AND ($3::text IS NULL OR slug > $3) ORDER BY slug LIMIT $4"
        );
        Ok(sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(org_slug)
            .bind(pattern)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }

    /// The active cards that active links named `name` lead to from `from`, with each link's
    /// data, by slug: an org's members (`has member`), an image's grantees (`is accessible by`).
    pub async fn linked(&self, from: Uuid, name: &str) -> Result<Vec<(Card, Value)>> {
        let links: Vec<(Uuid, Value)> = sqlx::query_as(
            "SELECT to_id, data FROM links WHERE from_id = $1 AND name = $2 AND active",
        )
        .bind(from)
        .bind(name)
        .fetch_all(&self.pool)
        .await?;
        let ids: Vec<Uuid> = links.iter().map(|(id, _)| *id).collect();
        let query =
            format!("SELECT {CARD_COLUMNS} FROM cards WHERE id = ANY($1) AND active ORDER BY slug");
        let cards = sqlx::query_as::<_, Card>(sqlx::AssertSqlSafe(query))
            .bind(&ids)
            .fetch_all(&self.pool)
            .await?;
        let mut data: std::collections::HashMap<Uuid, Value> = links.into_iter().collect();
        Ok(cards
            .into_iter()
            .filter_map(|card| data.remove(&card.id).map(|d| (card, d)))
            .collect())
    }

    /// The underlying pool (for the plugins' own queries and tests).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
