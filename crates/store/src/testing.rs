//! The test harness: a fresh, migrated database per test. `DATABASE_URL`, when set, names the
//! server to use; otherwise one private cluster is started per test process from the machine's
//! PostgreSQL binaries (and removed when the process exits).

// Test support: a database that cannot be set up is a failed test, so failures panic.
#![allow(clippy::panic)]

use std::sync::OnceLock;

use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::embedded::EmbeddedPostgres;
use crate::{PoolSettings, Store};

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
    format!("postgres://cardgate@127.0.0.1:{}", cluster.port())
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
