//! The account counters of a fleet: every instance sharing the card store's database counts an
//! account's failures in one row of `login_failures`, so `throttle.account_failures` holds
//! across instances, and a lock made on one is seen by all.
//!
//! A successful login writes nothing. It reads the account's row unless this instance already
//! knows the account has no failures: that knowledge is cached, and forgotten when any instance
//! records a failure of the account (announced by the database on `cardgate_login_failures`).
//! While the announcements are not heard (the listening connection is down), nothing is cached
//! and every login reads its row.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cardgate_store::{
    AccountHash, FailureNotice, FailureWindow, Store, StoreError, account_hash as hash,
};
use moka::sync::Cache;

/// How often, at most, one instance prunes the table (only after recording a failure).
const PRUNE_INTERVAL: Duration = Duration::from_secs(10);

/// How long a login waits for the shared counters while the announcements are not heard (most
/// often because the database is away): then this instance's own count decides at once, rather
/// than after the pool's acquire timeout, which the login's own check may still have to wait.
const UNHEARD_WAIT: Duration = Duration::from_millis(100);

/// Why the shared counters did not answer.
#[derive(Debug, thiserror::Error)]
pub(super) enum Unanswered {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no answer within {UNHEARD_WAIT:?} while failures are not heard")]
    Slow,
}

/// Accounts known to have no failures, valid while the announcements are heard.
struct Clean {
    accounts: Cache<AccountHash, ()>,
    /// Whether failures recorded elsewhere are being heard.
    live: AtomicBool,
    /// Advanced by every announcement (and by losing or regaining them).
    heard: AtomicU64,
}

impl Clean {
    fn hear(&self, notice: FailureNotice) {
        match notice {
            FailureNotice::Failed(account) => {
                // First the counter, then the entry: a concurrent read either sees the counter
                // move or has inserted before the entry is removed.
                self.heard.fetch_add(1, Ordering::SeqCst);
                self.accounts.invalidate(&account);
            }
            FailureNotice::Listening => {
                self.heard.fetch_add(1, Ordering::SeqCst);
                self.accounts.invalidate_all();
                self.live.store(true, Ordering::SeqCst);
            }
            FailureNotice::Lost => {
                self.live.store(false, Ordering::SeqCst);
                self.heard.fetch_add(1, Ordering::SeqCst);
                self.accounts.invalidate_all();
            }
        }
    }
}

/// The failures of accounts, counted in the database.
pub(super) struct SharedAccounts {
    store: Store,
    window: Duration,
    max_entries: u64,
    clean: Arc<Clean>,
    /// When this instance last pruned the table.
    pruned: std::sync::Mutex<Option<Instant>>,
}

impl SharedAccounts {
    /// Counts in `store`; starts listening for failures recorded by other instances.
    pub(super) fn new(store: Store, window: Duration, max_entries: u64) -> Self {
        let clean = Arc::new(Clean {
            accounts: Cache::builder()
                .max_capacity(max_entries)
                .time_to_live(window)
                .build(),
            live: AtomicBool::new(false),
            heard: AtomicU64::new(0),
        });
        let heard = clean.clone();
        store.watch_login_failures(move |notice| heard.hear(notice));
        SharedAccounts {
            store,
            window,
            max_entries,
            clean,
            pruned: std::sync::Mutex::new(None),
        }
    }

    /// Whether failures recorded by other instances are heard.
    pub(super) fn heard(&self) -> bool {
        self.clean.live.load(Ordering::SeqCst)
    }

    /// `query`, bounded by [`UNHEARD_WAIT`] while the announcements are not heard.
    async fn bounded<T>(
        &self,
        query: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, Unanswered> {
        if self.heard() {
            return Ok(query.await?);
        }
        match tokio::time::timeout(UNHEARD_WAIT, query).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(Unanswered::Slow),
        }
    }

    /// The current window of `account`, when it has failures.
    pub(super) async fn window(&self, account: &str) -> Result<Option<FailureWindow>, Unanswered> {
        let account = hash(account);
        let live = self.clean.live.load(Ordering::SeqCst);
        if live && self.clean.accounts.contains_key(&account) {
            return Ok(None);
        }
        let heard = self.clean.heard.load(Ordering::SeqCst);
        let window = self.bounded(self.store.login_failures(&account)).await?;
        if window.is_none() && live {
            self.clean.accounts.insert(account, ());
            // A failure announced meanwhile may predate the insert: forget it again.
            if self.clean.heard.load(Ordering::SeqCst) != heard {
                self.clean.accounts.invalidate(&account);
            }
        }
        Ok(window)
    }

    /// Counts a failure of `account`; now and then prunes the table.
    pub(super) async fn failed(&self, account: &str) -> Result<FailureWindow, Unanswered> {
        let account = hash(account);
        self.clean.accounts.invalidate(&account);
        let window = self
            .bounded(self.store.record_login_failure(&account, self.window))
            .await?;
        if self.prune_due() {
            let store = self.store.clone();
            let max_entries = self.max_entries;
            tokio::spawn(async move {
                if let Err(e) = store.prune_login_failures(max_entries).await {
                    tracing::warn!(error = %e, "login failures: cannot prune");
                }
            });
        }
        Ok(window)
    }

    fn prune_due(&self) -> bool {
        let Ok(mut pruned) = self.pruned.lock() else {
            return false;
        };
        let now = Instant::now();
        match *pruned {
            Some(last) if now.duration_since(last) < PRUNE_INTERVAL => false,
            _ => {
                *pruned = Some(now);
                true
            }
        }
    }
}
