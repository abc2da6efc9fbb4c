//! What the registry reports through its notifications (see `docs/registry-events.md`): the
//! tags and manifests of each repository, the blobs of each org, the audit trail of pulls,
//! pushes and deletes, reservations of images made for a first push, and org storage quotas.
//!
//! None of it is a card or a link: recording a push or a pull announces nothing on the change
//! feed and evicts no cached decision. The one exception is an org crossing its quota (in
//! either direction), announced as [`crate::Tag::quota`], which the decisions on the org's
//! repositories that allow a push depend on.

use std::collections::HashSet;

use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Card, Result, Store, StoreError};

/// What one registry event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryAction {
    Push,
    Pull,
    Delete,
    /// A blob mounted from another repository.
    Mount,
}

impl RegistryAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryAction::Push => "push",
            RegistryAction::Pull => "pull",
            RegistryAction::Delete => "delete",
            RegistryAction::Mount => "mount",
        }
    }
}

/// What a registry event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryTarget {
    /// A manifest, by digest, with its tag when it was pushed or pulled by tag.
    Manifest {
        digest: String,
        size: u64,
        media_type: String,
        tag: Option<String>,
    },
    /// A blob (a layer or a config).
    Blob { digest: String, size: u64 },
    /// A delete by digest: the registry does not say whether of a manifest or a blob.
    Digest { digest: String },
    /// A tag deleted (its manifest stays).
    Tag { tag: String },
}

/// One event of a registry notification, checked.
#[derive(Debug, Clone)]
pub struct RegistryEvent {
    /// The registry's event id: an event is applied once.
    pub id: String,
    pub at: OffsetDateTime,
    pub action: RegistryAction,
    pub repository: String,
    pub target: RegistryTarget,
    /// Who did it (the token's subject); empty for an anonymous pull.
    pub actor: String,
    /// The client's address as the registry saw it.
    pub address: String,
}

impl RegistryEvent {
    /// The org owning the repository's namespace (`org-<first component>`), `""` without one.
    fn org(&self) -> String {
        self.repository
            .split_once('/')
            .map(|(namespace, _)| format!("org-{namespace}"))
            .unwrap_or_default()
    }

    /// What the audit trail records of it: manifest pulls and pushes, and deletes.
    fn audited(&self) -> Option<(&'static str, &str)> {
        match (&self.action, &self.target) {
            (
                RegistryAction::Pull | RegistryAction::Push,
                RegistryTarget::Manifest { digest, tag, .. },
            ) => Some((self.action.as_str(), tag.as_deref().unwrap_or(digest))),
            (RegistryAction::Delete, RegistryTarget::Digest { digest }) => Some(("delete", digest)),
            (RegistryAction::Delete, RegistryTarget::Tag { tag }) => Some(("delete", tag)),
            _ => None,
        }
    }
}

/// What an envelope changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// Events applied now.
    pub applied: usize,
    /// Events already applied before (retries, replays): ignored.
    pub duplicates: usize,
    /// Events about repositories without an image card: recorded in the audit trail for
    /// platform admins, nothing else.
    pub unknown: usize,
}

/// A tag of a repository, as the registry last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RegistryTag {
    pub tag: String,
    pub digest: String,
    pub size: i64,
    pub media_type: String,
    pub pushed_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub pushed_at: OffsetDateTime,
}

/// What the registry told of an image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageContents {
    pub repository: String,
    /// Made for a push token and no push reported yet: it goes away after the reservation
    /// period.
    pub reserved: bool,
    pub tags: Vec<RegistryTag>,
    /// When a manifest was last pulled, and pulls in the last 24 hours (within the audit
    /// retention).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_pulled_at: Option<OffsetDateTime>,
    pub pulls_last_day: i64,
}

/// One line of the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RegistryActivity {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub action: String,
    pub repository: String,
    /// The tag or digest.
    pub reference: String,
    pub actor: String,
    pub address: String,
    /// Whether an image card existed for the repository.
    pub known: bool,
}

/// Which lines of the audit trail to read: all given conditions hold.
#[derive(Debug, Clone, Default)]
pub struct ActivityFilter {
    pub repository: Option<String>,
    pub actor: Option<String>,
    /// Only the repositories of these orgs (slugs); `None`: every org, and repositories
    /// without an image card too (platform admins).
    pub orgs: Option<Vec<String>>,
    pub since: Option<OffsetDateTime>,
    pub until: Option<OffsetDateTime>,
    /// Lines with a smaller id than this (the next page).
    pub before: Option<i64>,
    pub limit: i64,
}

/// An org's storage: its quota, if any, and what it uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgStorage {
    pub org: String,
    pub quota_bytes: Option<i64>,
    pub usage_bytes: i64,
    pub over_quota: bool,
}

/// The most rows one pruning statement removes.
pub const PRUNE_BATCH: i64 = 10_000;

/// The usage of the orgs `$1`: distinct blobs plus manifests present.
const USAGE: &str = "SELECT o AS org, \
    coalesce((SELECT sum(size) FROM registry_blobs b WHERE b.org = o), 0)::bigint \
    + coalesce((SELECT sum(size) FROM registry_manifests m WHERE m.org = o), 0)::bigint AS usage \
    FROM unnest($1::text[]) AS o";

/// Sets `over` for the quotas of `orgs` from their usage; the trigger announces a change.
async fn refresh_quotas(conn: &mut PgConnection, orgs: &[String]) -> Result<()> {
    if orgs.is_empty() {
        return Ok(());
    }
    let query = format!(
        "UPDATE org_quotas q SET over = u.usage > q.quota_bytes FROM ({USAGE}) u \
         WHERE q.org = u.org AND q.over IS DISTINCT FROM (u.usage > q.quota_bytes)"
    );
    sqlx::query(sqlx::AssertSqlSafe(query))
        .bind(orgs)
        .execute(conn)
        .await?;
    Ok(())
}

/// `size` as stored (sizes beyond `i64` do not occur; saturate).
fn stored(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

impl Store {
    /// Applies the events of one notification, in one transaction: each event once by its id
    /// (a retried or replayed notification changes nothing twice), the audit trail in one
    /// multi-row insert. Events about repositories without an active image card are recorded
    /// in the audit trail only, never creating anything.
    pub async fn record_registry_events(&self, events: &[RegistryEvent]) -> Result<Recorded> {
        let mut tx = self.pool().begin().await?;
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        let fresh: Vec<(String,)> = sqlx::query_as(
            "INSERT INTO registry_events_seen (id) SELECT DISTINCT unnest($1::text[]) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut fresh: HashSet<String> = fresh.into_iter().map(|(id,)| id).collect();
        // An id repeated within the envelope is applied once, at its first occurrence.
        let events: Vec<&RegistryEvent> = events.iter().filter(|e| fresh.remove(&e.id)).collect();
        let mut recorded = Recorded {
            applied: events.len(),
            duplicates: ids.len() - events.len(),
            unknown: 0,
        };
        let repositories: Vec<&str> = events.iter().map(|e| e.repository.as_str()).collect();
        let known: Vec<(String,)> = sqlx::query_as(
            "SELECT data ->> 'repository' FROM cards WHERE split_part(type, '@', 1) = 'image' \
             AND active AND (data ->> 'repository') = ANY($1)",
        )
        .bind(&repositories)
        .fetch_all(&mut *tx)
        .await?;
        let known: HashSet<String> = known.into_iter().map(|(r,)| r).collect();

        // The audit trail: one insert for the whole envelope.
        let mut columns: (Vec<OffsetDateTime>, Vec<&str>, Vec<&str>, Vec<String>) =
            Default::default();
        let mut more: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<bool>) = Default::default();
        for event in &events {
            if let Some((action, reference)) = event.audited() {
                columns.0.push(event.at);
                columns.1.push(action);
                columns.2.push(&event.repository);
                columns.3.push(event.org());
                more.0.push(reference);
                more.1.push(&event.actor);
                more.2.push(&event.address);
                more.3.push(known.contains(&event.repository));
            }
        }
        if !columns.0.is_empty() {
            sqlx::query(
                "INSERT INTO registry_activity \
                 (at, action, repository, org, reference, actor, address, known) \
                 SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], \
                 $5::text[], $6::text[], $7::text[], $8::bool[])",
            )
            .bind(&columns.0)
            .bind(&columns.1)
            .bind(&columns.2)
            .bind(&columns.3)
            .bind(&more.0)
            .bind(&more.1)
            .bind(&more.2)
            .bind(&more.3)
            .execute(&mut *tx)
            .await?;
        }

        // What the registry holds: pushes and deletes of known repositories.
        let mut orgs: HashSet<String> = HashSet::new();
        for event in events {
            if !known.contains(&event.repository) {
                recorded.unknown += 1;
                continue;
            }
            let org = event.org();
            match (&event.action, &event.target) {
                (
                    RegistryAction::Push,
                    RegistryTarget::Manifest {
                        digest,
                        size,
                        media_type,
                        tag,
                    },
                ) => {
                    sqlx::query(
                        "INSERT INTO registry_manifests (org, repository, digest, size) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                    )
                    .bind(&org)
                    .bind(&event.repository)
                    .bind(digest)
                    .bind(stored(*size))
                    .execute(&mut *tx)
                    .await?;
                    if let Some(tag) = tag {
                        // A push reported late does not replace a later one.
                        sqlx::query(
                            "INSERT INTO registry_tags \
                             (repository, tag, digest, size, media_type, pushed_by, pushed_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7) \
                             ON CONFLICT (repository, tag) DO UPDATE SET digest = EXCLUDED.digest, \
                             size = EXCLUDED.size, media_type = EXCLUDED.media_type, \
                             pushed_by = EXCLUDED.pushed_by, pushed_at = EXCLUDED.pushed_at \
                             WHERE registry_tags.pushed_at <= EXCLUDED.pushed_at",
                        )
                        .bind(&event.repository)
                        .bind(tag)
                        .bind(digest)
                        .bind(stored(*size))
                        .bind(media_type)
                        .bind(&event.actor)
                        .bind(event.at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    sqlx::query(
                        "UPDATE image_reservations SET pushed_at = $2 \
                         WHERE repository = $1 AND pushed_at IS NULL AND released_at IS NULL",
                    )
                    .bind(&event.repository)
                    .bind(event.at)
                    .execute(&mut *tx)
                    .await?;
                    orgs.insert(org);
                }
                (
                    RegistryAction::Push | RegistryAction::Mount,
                    RegistryTarget::Blob { digest, size },
                ) => {
                    sqlx::query(
                        "INSERT INTO registry_blobs (org, digest, size) VALUES ($1, $2, $3) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(&org)
                    .bind(digest)
                    .bind(stored(*size))
                    .execute(&mut *tx)
                    .await?;
                    orgs.insert(org);
                }
                (RegistryAction::Delete, RegistryTarget::Digest { digest }) => {
                    // Tags pushed after the delete (reported out of order) stay.
                    sqlx::query(
                        "DELETE FROM registry_tags WHERE repository = $1 AND digest = $2 \
                         AND pushed_at <= $3",
                    )
                    .bind(&event.repository)
                    .bind(digest)
                    .bind(event.at)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "DELETE FROM registry_manifests WHERE repository = $1 AND digest = $2",
                    )
                    .bind(&event.repository)
                    .bind(digest)
                    .execute(&mut *tx)
                    .await?;
                    orgs.insert(org);
                }
                (RegistryAction::Delete, RegistryTarget::Tag { tag }) => {
                    sqlx::query(
                        "DELETE FROM registry_tags WHERE repository = $1 AND tag = $2 \
                         AND pushed_at <= $3",
                    )
                    .bind(&event.repository)
                    .bind(tag)
                    .bind(event.at)
                    .execute(&mut *tx)
                    .await?;
                }
                _ => {}
            }
        }
        let orgs: Vec<String> = orgs.into_iter().collect();
        refresh_quotas(&mut tx, &orgs).await?;
        self.commit(tx).await?;
        Ok(recorded)
    }

    /// Records that `image` was made by a first push: reserved until a push is reported.
    pub(crate) async fn reserve_image(&self, image: &Card) -> Result<()> {
        sqlx::query(
            "INSERT INTO image_reservations (card_id, repository) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(image.id)
        .bind(image.data["repository"].as_str().unwrap_or_default())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Deactivates (as `actor`, with its event) every image reserved longer than `older_than`
    /// without a push, and frees its name. Safe to run on several instances at once: each
    /// reservation is claimed by one. Returns the repositories released.
    pub async fn release_reservations(
        &self,
        actor: &Card,
        older_than: time::Duration,
    ) -> Result<Vec<String>> {
        let mut released = Vec::new();
        loop {
            let mut tx = self.pool().begin().await?;
            let claimed: Option<(Uuid, String)> = sqlx::query_as(
                "SELECT r.card_id, r.repository FROM image_reservations r \
                 WHERE r.pushed_at IS NULL AND r.released_at IS NULL \
                 AND r.created_at < now() - make_interval(secs => $1) \
                 ORDER BY r.created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            )
            .bind(older_than.as_seconds_f64())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((card_id, repository)) = claimed else {
                return Ok(released);
            };
            sqlx::query("UPDATE image_reservations SET released_at = now() WHERE card_id = $1")
                .bind(card_id)
                .execute(&mut *tx)
                .await?;
            match crate::changes::deactivate_in(&mut tx, actor.id, card_id, None).await {
                // Deactivated meanwhile by an owner: released all the same.
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            self.commit(tx).await?;
            tracing::info!(%repository, "reserved image released: no push was reported");
            released.push(repository);
        }
    }

    /// What the registry reported of the image of `repository`.
    pub async fn image_contents(&self, repository: &str) -> Result<ImageContents> {
        let tags: Vec<RegistryTag> = sqlx::query_as(
            "SELECT tag, digest, size, media_type, pushed_by, pushed_at FROM registry_tags \
             WHERE repository = $1 ORDER BY tag",
        )
        .bind(repository)
        .fetch_all(self.pool())
        .await?;
        let (reserved,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM image_reservations r JOIN cards c ON c.id = r.card_id \
             WHERE r.repository = $1 AND c.active AND r.pushed_at IS NULL \
             AND r.released_at IS NULL)",
        )
        .bind(repository)
        .fetch_one(self.pool())
        .await?;
        let (last_pulled_at, pulls_last_day): (Option<OffsetDateTime>, i64) = sqlx::query_as(
            "SELECT max(at), count(*) FILTER (WHERE at > now() - interval '1 day') \
             FROM registry_activity WHERE repository = $1 AND action = 'pull'",
        )
        .bind(repository)
        .fetch_one(self.pool())
        .await?;
        Ok(ImageContents {
            repository: repository.to_owned(),
            reserved,
            tags,
            last_pulled_at,
            pulls_last_day,
        })
    }

    /// Lines of the audit trail, newest first.
    pub async fn registry_activity(
        &self,
        filter: &ActivityFilter,
    ) -> Result<Vec<RegistryActivity>> {
        Ok(sqlx::query_as(
            "SELECT id, at, action, repository, reference, actor, address, known \
             FROM registry_activity \
             WHERE ($1::text IS NULL OR repository = $1) AND ($2::text IS NULL OR actor = $2) \
             AND ($3::text[] IS NULL OR (org = ANY($3) AND known)) \
             AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5) \
             AND ($6::bigint IS NULL OR id < $6) ORDER BY id DESC LIMIT $7",
        )
        .bind(&filter.repository)
        .bind(&filter.actor)
        .bind(&filter.orgs)
        .bind(filter.since)
        .bind(filter.until)
        .bind(filter.before)
        .bind(filter.limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Forgets audit lines and applied event ids older than `retention`, in batches of
    /// 10,000 rows (each statement short, whatever a day of pulls left). Returns the
    /// audit lines removed.
    pub async fn prune_registry_activity(&self, retention: time::Duration) -> Result<u64> {
        let seconds = retention.as_seconds_f64();
        let mut removed = 0;
        for query in [
            "DELETE FROM registry_activity WHERE id IN (SELECT id FROM registry_activity \
             WHERE at < now() - make_interval(secs => $1) LIMIT $2)",
            "DELETE FROM registry_events_seen WHERE id IN (SELECT id FROM registry_events_seen \
             WHERE received_at < now() - make_interval(secs => $1) LIMIT $2)",
        ] {
            loop {
                let batch = sqlx::query(query)
                    .bind(seconds)
                    .bind(PRUNE_BATCH)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
                if query.contains("registry_activity") {
                    removed += batch;
                }
                if batch < PRUNE_BATCH.unsigned_abs() {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// Sets (or with `None` removes) the storage quota of `org` (a slug), and whether it is
    /// over it now.
    pub async fn set_quota(&self, org: &str, quota_bytes: Option<i64>) -> Result<OrgStorage> {
        let mut tx = self.pool().begin().await?;
        match quota_bytes {
            Some(quota) => {
                sqlx::query(
                    "INSERT INTO org_quotas (org, quota_bytes) VALUES ($1, $2) \
                     ON CONFLICT (org) DO UPDATE SET quota_bytes = EXCLUDED.quota_bytes",
                )
                .bind(org)
                .bind(quota)
                .execute(&mut *tx)
                .await?;
                refresh_quotas(&mut tx, &[org.to_owned()]).await?;
            }
            None => {
                sqlx::query("DELETE FROM org_quotas WHERE org = $1")
                    .bind(org)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        self.commit(tx).await?;
        self.storage(org).await
    }

    /// The storage quota and usage of `org` (a slug).
    pub async fn storage(&self, org: &str) -> Result<OrgStorage> {
        let query = format!(
            "SELECT u.usage, q.quota_bytes, coalesce(q.over, false) FROM ({USAGE}) u \
             LEFT JOIN org_quotas q ON q.org = u.org"
        );
        let (usage_bytes, quota_bytes, over_quota): (i64, Option<i64>, bool) =
            sqlx::query_as(sqlx::AssertSqlSafe(query))
                .bind([org])
                .fetch_one(self.pool())
                .await?;
        Ok(OrgStorage {
            org: org.to_owned(),
            quota_bytes,
            usage_bytes,
            over_quota,
        })
    }

    /// Whether `org` (a slug) is over its storage quota: what push decisions rest on.
    pub async fn over_quota(&self, org: &str) -> Result<bool> {
        let row: Option<(bool,)> = sqlx::query_as("SELECT over FROM org_quotas WHERE org = $1")
            .bind(org)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.is_some_and(|(over,)| over))
    }
}
