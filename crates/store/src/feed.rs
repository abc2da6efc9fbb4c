//! The change feed: which generation of the store's contents a cached answer was computed
//! from, so that caches are emptied on every change, on every instance sharing the database.
//!
//! Every committed write to `cards` or `links` sends a notification on [`CHANNEL`] (a trigger,
//! see `migrations/0003_change_notifications.sql`). [`Store::watch_changes`] keeps one listening
//! connection per process and advances the generation on each notification; this process's own
//! writes advance it as soon as they commit, before the call that made them returns. While the
//! listener is not connected there is no current generation, and caches are bypassed: a missed
//! notification can never leave a stale answer in use.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::Store;

/// The channel change notifications are sent on.
pub const CHANNEL: &str = "cardgate_changes";

/// How long the listener waits before connecting again after losing its connection.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// The store's generation: advanced by every change.
#[derive(Debug, Default)]
pub struct Generation {
    counter: AtomicU64,
    /// Whether changes made elsewhere are being heard.
    live: AtomicBool,
}

impl Generation {
    /// The current generation, when cached answers may be used: `None` while changes made by
    /// other instances would go unheard.
    pub fn current(&self) -> Option<u64> {
        if self.live.load(Ordering::Acquire) {
            Some(self.counter.load(Ordering::Acquire))
        } else {
            None
        }
    }

    /// Makes every answer computed so far stale.
    pub fn advance(&self) {
        self.counter.fetch_add(1, Ordering::AcqRel);
    }

    fn set_live(&self, live: bool) {
        if live {
            self.advance();
            self.live.store(true, Ordering::Release);
        } else {
            self.live.store(false, Ordering::Release);
            self.advance();
        }
    }
}

impl Store {
    /// The generation of the store's contents, for caches.
    pub fn generation(&self) -> &Generation {
        &self.generation
    }

    /// Listens for changes from every instance sharing the database, for as long as the
    /// runtime runs; reconnects when the connection is lost. Call once per store (process).
    pub fn watch_changes(&self) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                match store.listen().await {
                    Ok(mut listener) => {
                        store.generation.set_live(true);
                        // `Ok(None)`: the connection was lost; an error: likewise.
                        while let Ok(Some(_)) = listener.try_recv().await {
                            store.generation.advance();
                        }
                        store.generation.set_live(false);
                        tracing::warn!("change feed: connection lost, caches bypassed");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change feed: cannot listen, caches bypassed");
                    }
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        })
    }

    async fn listen(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    /// Commits `tx`, then makes this process's cached answers stale (other instances hear of
    /// the change from the feed).
    pub(crate) async fn commit(
        &self,
        tx: sqlx::Transaction<'_, sqlx::Postgres>,
    ) -> crate::Result<()> {
        let committed = tx.commit().await;
        // Also after a failed commit: whether it took effect is unknown.
        self.generation.advance();
        Ok(committed?)
    }
}
