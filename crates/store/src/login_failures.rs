//! Failed logins per account, shared by every instance on the database (the table of
//! `migrations/0007_login_failures.sql`), so that a login throttle holds fleet-wide.
//!
//! A row is keyed by a 32-byte hash of the account (the caller hashes; names never reach the
//! table) and counts the failures of a fixed window that starts at the first failure. Times are
//! the database's, so the instances' clocks need not agree. Rows whose window has ended count
//! for nothing and are deleted by [`Store::prune_login_failures`], which also keeps the table
//! within a number of rows. Every recorded failure is announced on [`LOGIN_FAILURES_CHANNEL`],
//! so that instances can cache "no failures known" and forget it when one is recorded.

use std::time::Duration;

use sha2::Digest;
use sqlx::PgPool;
use sqlx::postgres::{PgListener, PgPoolOptions};

use crate::{Result, Store};

/// The channel every recorded failure is announced on, with the account hash in hex.
pub const LOGIN_FAILURES_CHANNEL: &str = "cardgate_login_failures";

/// How long the listener waits before connecting again after losing its connection.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

/// The fixed-size key of an account's failures.
pub type AccountHash = [u8; 32];

/// The key of the account `name` (SHA-256).
pub fn account_hash(name: &str) -> AccountHash {
    sha2::Sha256::digest(name.as_bytes()).into()
}

/// The failures of an account in its current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureWindow {
    /// Failures since the window started.
    pub failures: u32,
    /// How long until the window ends (more than zero).
    pub remaining: Duration,
}

/// What [`Store::watch_login_failures`] hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureNotice {
    /// Listening (again): failures recorded from now on are announced; earlier ones may have
    /// gone unheard.
    Listening,
    /// The connection is lost: failures go unheard until [`FailureNotice::Listening`].
    Lost,
    /// A failure of this account was recorded.
    Failed(AccountHash),
}

fn window_of(failures: i32, remaining_ms: i64) -> FailureWindow {
    FailureWindow {
        failures: u32::try_from(failures).unwrap_or(0),
        remaining: Duration::from_millis(u64::try_from(remaining_ms).unwrap_or(0).max(1)),
    }
}

/// The account hash in a notification's payload (64 hex digits).
fn parse_hash(payload: &str) -> Option<AccountHash> {
    let bytes = payload.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    let mut hash = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        let value = digit(pair[0])? * 16 + digit(pair[1])?;
        hash[i] = u8::try_from(value).ok()?;
    }
    Some(hash)
}

impl Store {
    /// Counts a failure of `account`: the first of a new window of `window` when there is no
    /// current one. Returns the window as it now stands.
    pub async fn record_login_failure(
        &self,
        account: &AccountHash,
        window: Duration,
    ) -> Result<FailureWindow> {
        let (failures, remaining_ms): (i32, i64) = sqlx::query_as(
            "INSERT INTO login_failures AS f (account_hash, failures, window_ends) \
             VALUES ($1, 1, now() + make_interval(secs => $2)) \
             ON CONFLICT (account_hash) DO UPDATE SET \
               failures = CASE WHEN f.window_ends > now() \
                 THEN LEAST(f.failures, 2147483646) + 1 ELSE 1 END, \
               window_ends = CASE WHEN f.window_ends > now() \
                 THEN f.window_ends ELSE excluded.window_ends END \
             RETURNING failures, \
               (EXTRACT(EPOCH FROM (window_ends - now())) * 1000)::bigint",
        )
        .bind(account.as_slice())
        .bind(window.as_secs_f64())
        .fetch_one(self.pool())
        .await?;
        Ok(window_of(failures, remaining_ms))
    }

    /// The current window of `account`, if it has failures in one.
    pub async fn login_failures(&self, account: &AccountHash) -> Result<Option<FailureWindow>> {
        let row: Option<(i32, i64)> = sqlx::query_as(
            "SELECT failures, (EXTRACT(EPOCH FROM (window_ends - now())) * 1000)::bigint \
             FROM login_failures WHERE account_hash = $1 AND window_ends > now()",
        )
        .bind(account.as_slice())
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|(failures, remaining_ms)| window_of(failures, remaining_ms)))
    }

    /// Deletes the windows that have ended, then, beyond `max_rows`, those with the fewest
    /// failures (ending soonest first): a spray of names tried once each cannot push out an
    /// account that is locked. Returns how many rows were deleted.
    pub async fn prune_login_failures(&self, max_rows: u64) -> Result<u64> {
        let ended = sqlx::query("DELETE FROM login_failures WHERE window_ends <= now()")
            .execute(self.pool())
            .await?
            .rows_affected();
        let beyond = sqlx::query(
            "DELETE FROM login_failures WHERE account_hash IN (\
               SELECT account_hash FROM login_failures \
               ORDER BY failures DESC, window_ends DESC OFFSET $1)",
        )
        .bind(i64::try_from(max_rows).unwrap_or(i64::MAX))
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(ended + beyond)
    }

    /// Listens for failures recorded by every instance, for as long as the runtime runs, and
    /// tells `on_notice` what it hears; reconnects when the connection is lost. The listening
    /// connection is one more than the pool's `max_connections`, so that requests keep all of
    /// those.
    pub fn watch_login_failures<F>(&self, on_notice: F) -> tokio::task::JoinHandle<()>
    where
        F: Fn(FailureNotice) + Send + 'static,
    {
        let own = PgPoolOptions::new()
            .max_connections(1)
            .connect_lazy_with((*self.pool().connect_options()).clone());
        tokio::spawn(async move {
            loop {
                match listen_for_failures(&own).await {
                    Ok(mut listener) => {
                        on_notice(FailureNotice::Listening);
                        // `Ok(None)`: the connection was lost; an error: likewise.
                        while let Ok(Some(notification)) = listener.try_recv().await {
                            if let Some(hash) = parse_hash(notification.payload()) {
                                on_notice(FailureNotice::Failed(hash));
                            }
                        }
                        on_notice(FailureNotice::Lost);
                        tracing::warn!("login failures: connection lost");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "login failures: cannot listen");
                    }
                }
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        })
    }
}

async fn listen_for_failures(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // A lost connection is reported at once (logins stop trusting what was heard then), not
    // after an attempt to reconnect that may wait for the pool's acquire timeout.
    listener.eager_reconnect(false);
    listener.listen(LOGIN_FAILURES_CHANNEL).await?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn payloads_parse_as_hashes_only_when_they_are_64_hex_digits() {
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        hash[31] = 0x0f;
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_hash(&hex), Some(hash));
        assert_eq!(parse_hash(&hex.to_uppercase()), Some(hash));
        assert_eq!(parse_hash(&hex[2..]), None);
        assert_eq!(parse_hash(&format!("{}zz", &hex[2..])), None);
        assert_eq!(parse_hash(""), None);
    }
}
