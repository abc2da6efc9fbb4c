//! The test harness: a fresh, migrated database per test. `DATABASE_URL`, when set, names the
//! server to use; otherwise one private cluster is started per test process from the machine's
//! PostgreSQL binaries (and removed when the process exits).

// Test support: a database that cannot be set up is a failed test, so failures panic.
#![allow(clippy::panic)]

use std::sync::OnceLock;

use serde_json::{Value, json};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::embedded::EmbeddedPostgres;
use crate::{
    ADMIN_SLUG, Card, CardType, IssuedSession, LinkVerb, NewCard, PoolSettings, Slug, Store,
    StoreError,
};

/// The server's base URL (without a database name) and the template database to copy.
struct Server {
    base: String,
    template: String,
}

static CLUSTER: OnceLock<EmbeddedPostgres> = OnceLock::new();
static SERVER: OnceCell<Server> = OnceCell::const_new();

fn base_url() -> String {
    if let Ok(url) = std::env::var("DATABASE_URL")
        && !url.is_empty()
    {
        // Strip the database name: test databases are created beside it.
        return match url.rsplit_once('/') {
            Some((base, _)) if base.contains("://") && base.len() > "postgres://".len() => {
                base.to_owned()
            }
            _ => url,
        };
    }
    let cluster = CLUSTER.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("cardgate-test-pg-{}", Uuid::new_v4().simple()));
        EmbeddedPostgres::start(&dir, true).unwrap_or_else(|e| panic!("{e}"))
    });
    cluster.base_url()
}

async fn server() -> &'static Server {
    SERVER
        .get_or_init(|| async {
            let base = tokio::task::spawn_blocking(base_url)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let template = format!("cardgate_template_{}", Uuid::new_v4().simple());
            let mut admin = PgConnection::connect(&format!("{base}/postgres"))
                .await
                .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {base}: {e}"));
            admin
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {template}")))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let store =
                Store::connect_lazy(&format!("{base}/{template}"), &PoolSettings::default())
                    .unwrap_or_else(|e| panic!("{e}"));
            store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
            store.bootstrap().await.unwrap_or_else(|e| panic!("{e}"));
            store.pool().close().await;
            Server { base, template }
        })
        .await
}

/// A fresh database with the migrations applied and the built-in cards created; returns its URL.
pub async fn fresh_database_url() -> String {
    let server = server().await;
    let name = format!("cardgate_test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(&format!("{}/postgres", server.base))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE {}",
            server.template
        )))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    format!("{}/{name}", server.base)
}

/// A store on a fresh database.
pub async fn fresh_store() -> Store {
    Store::connect_lazy(&fresh_database_url().await, &PoolSettings::default())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Shortcuts for writing a policy into a store, acting as `user-admin`.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub store: Store,
    /// `user-admin`: the actor of the fixture's changes.
    pub admin: Card,
}

/// Whether a look-up found something; a failed look-up fails the test.
fn found<T>(looked_up: Result<Option<T>, StoreError>) -> bool {
    looked_up.unwrap_or_else(|e| panic!("{e}")).is_some()
}

impl Fixture {
    /// A fixture on a fresh database.
    pub async fn new() -> Self {
        Fixture::on(fresh_store().await).await
    }

    /// A fixture on `store`, which must be bootstrapped.
    pub async fn on(store: Store) -> Self {
        let admin = store
            .card_by_slug(ADMIN_SLUG)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("the store is not bootstrapped"));
        Fixture { store, admin }
    }

    /// `org-<name>`.
    pub async fn org(&self, name: &str) -> Card {
        self.create(NewCard::new(CardType::Org, Slug::org(name), json!({})).with_name(name))
            .await
    }

    /// `user-<name>` with `data.roles`.
    pub async fn user(&self, name: &str, roles: &[&str]) -> Card {
        self.create(NewCard::new(
            CardType::User,
            Slug::user(name),
            json!({"roles": roles}),
        ))
        .await
    }

    /// An image for `repository` with `markers`.
    pub async fn image(&self, repository: &str, markers: &[&str], public: bool) -> Card {
        self.create(
            NewCard::new(
                CardType::Image,
                Slug::image(repository),
                json!({"repository": repository, "public": public}),
            )
            .with_name(repository)
            .with_markers(markers.iter().map(|m| (*m).to_owned()).collect()),
        )
        .await
    }

    /// A role card `slug` with `data` (`read`, `catalog`).
    pub async fn role(&self, slug: &str, data: Value) -> Card {
        self.create(NewCard::new(CardType::Role, slug.to_owned(), data))
            .await
    }

    /// The card `slug`, which must exist.
    pub async fn card_by_slug(&self, slug: &str) -> Card {
        must_exist(slug, self.store.card_by_slug(slug).await)
    }

    /// The card with `id` (its text form), which must exist.
    pub async fn card_by_id(&self, id: &str) -> Card {
        let id = id.parse().unwrap_or_else(|e| panic!("{e}"));
        must_exist(id, self.store.card_by_id(id).await)
    }

    /// The image card of `repository`, which must exist.
    pub async fn image_of(&self, repository: &str) -> Card {
        must_exist(repository, self.store.image_by_repository(repository).await)
    }

    /// `org` has member `user` with membership `role`.
    pub async fn member(&self, org: &Card, user: &Card, role: &str) {
        self.link(org, LinkVerb::HasMember, user, json!({"role": role}))
            .await;
    }

    /// Whether a card with `slug` is stored.
    pub async fn has_card(&self, slug: &str) -> bool {
        found(self.store.card_by_slug(slug).await)
    }

    /// Whether an image card of `repository` is stored.
    pub async fn has_image(&self, repository: &str) -> bool {
        found(self.store.image_by_repository(repository).await)
    }

    /// The error of a link the store refuses.
    pub async fn link_refused(
        &self,
        from: &Card,
        verb: LinkVerb,
        to: &Card,
        data: Value,
    ) -> StoreError {
        match self.store.link(&self.admin, from, verb, to, data).await {
            Ok(link) => panic!("the link was made: {link:?}"),
            Err(e) => e,
        }
    }

    /// `holder` (a user or org) has access to `image` with `actions`.
    pub async fn grant(&self, holder: &Card, image: &Card, actions: &[&str]) {
        self.link(
            holder,
            LinkVerb::HasAccessTo,
            image,
            json!({"actions": actions}),
        )
        .await;
    }

    async fn link(&self, from: &Card, verb: LinkVerb, to: &Card, data: Value) {
        self.store
            .link(&self.admin, from, verb, to, data)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// A session of `user` that expires `lifetime` from now (already, when negative), with
    /// `scope`.
    pub async fn session(
        &self,
        user: &Card,
        lifetime: time::Duration,
        scope: Option<Value>,
    ) -> IssuedSession {
        self.store
            .create_session(
                &self.admin,
                user,
                time::OffsetDateTime::now_utc() + lifetime,
                scope,
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Deactivates `card`.
    pub async fn deactivate(&self, card: &Card) {
        self.store
            .deactivate(&self.admin, card.id, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Sets `data[field]` of `card` straight in the table, past every check the store makes on
    /// writes: a card as an older version, or someone with database access, may have left it.
    pub async fn write_unchecked(&self, card: &Card, field: &str, value: &Value) {
        sqlx::query("UPDATE cards SET data = jsonb_set(data, ARRAY[$1], $2) WHERE id = $3")
            .bind(field)
            .bind(value)
            .bind(card.id)
            .execute(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    async fn create(&self, card: NewCard) -> Card {
        self.store
            .create(&self.admin, card)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The card a lookup of `what` found; a failed test when there is none.
fn must_exist(what: impl std::fmt::Display, found: crate::Result<Option<Card>>) -> Card {
    found
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no card for {what}"))
}
