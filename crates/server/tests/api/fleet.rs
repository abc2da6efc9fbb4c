//! Three instances sharing one database, as behind a round-robin balancer: an account's failed
//! logins are counted once for the whole fleet, a lock made on one instance holds on all, and
//! successful logins write nothing.

use std::time::{Duration, Instant};

use cardgate_server::Application;
use cardgate_store::testing::fresh_database_url;
use cardgate_store::{PoolSettings, Store};
use reqwest::StatusCode;

use crate::cards::{CARD_ALICE, seed, token};
use crate::{metric_reaches, test_settings};

const WEB: &str = "repository:acme/web:pull";

/// An instance on the card store at `url` with `account_failures`; its base URL.
async fn instance(url: &str, migrate: bool, account_failures: &str) -> String {
    let migrate = migrate.to_string();
    let (settings, _) = test_settings(&[
        ("CARDGATE__AUTHN__CHAIN", "cards"),
        ("CARDGATE__AUTHZ__CHAIN", "cards"),
        ("CARDGATE__DATABASE__URL", url),
        ("CARDGATE__DATABASE__MIGRATE", &migrate),
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", account_failures),
        ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "1000"),
    ]);
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

/// Waits until `base` hears the failures other instances record, so that it caches accounts
/// without failures (the case a stale cache would get wrong).
async fn hears_failures(base: &str) {
    metric_reaches(base, "cardgate_login_failures_feed_connected 1").await;
}

async fn rows(store: &Store) -> Vec<(Vec<u8>, i32)> {
    sqlx::query_as("SELECT account_hash, failures FROM login_failures")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

/// Three instances with `account_failures`, on a seeded database; each has logged alice in
/// (so each knows her as an account without failures).
async fn fleet(account_failures: &str) -> (Store, Vec<String>) {
    let url = fresh_database_url().await;
    let store = Store::connect_lazy(&url, &PoolSettings::default()).unwrap();
    seed(&store).await;
    let mut bases = vec![instance(&url, true, account_failures).await];
    for _ in 0..2 {
        bases.push(instance(&url, false, account_failures).await);
    }
    for base in &bases {
        hears_failures(base).await;
        for _ in 0..3 {
            let response = token(base, CARD_ALICE, WEB).await;
            assert_eq!(response.status(), StatusCode::OK);
        }
    }
    (store, bases)
}

#[tokio::test]
async fn failures_spread_over_three_instances_lock_the_account_on_all_of_them_at_the_limit() {
    let (store, bases) = fleet("4").await;
    assert!(
        rows(&store).await.is_empty(),
        "successful logins wrote to login_failures"
    );

    // Round robin: instance one sees failures 1 and 4, the others one each.
    for i in 0..4 {
        let response = token(&bases[i % 3], Some(("alice", "not-her-password")), WEB).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "failure {}",
            i + 1
        );
    }
    // Locked on every instance, for the right password too.
    for base in &bases {
        for password in ["not-her-password", "wonderland"] {
            let response = token(base, Some(("alice", password)), WEB).await;
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{base}");
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=300).contains(&retry_after), "{retry_after}");
        }
    }
    // One row, keyed by a hash (the name is not stored), holding exactly the four failures:
    // refused logins are not counted.
    let rows = rows(&store).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0.len(), 32);
    assert_eq!(rows[0].1, 4);
    assert!(!rows[0].0.windows(5).any(|w| w == b"alice"));
}

/// How soon the other instances must see a failure recorded by one: the delivery of the
/// database's announcement (milliseconds), far below any window.
const BOUND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_lock_made_on_one_instance_holds_on_those_that_knew_the_account_without_failures() {
    let (_store, bases) = fleet("1").await;
    // One failure on instance three locks alice; instances one and two had her cached as an
    // account without failures, and must forget it.
    let response = token(&bases[2], Some(("alice", "not-her-password")), WEB).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    for base in &bases {
        let started = Instant::now();
        loop {
            let status = token(base, CARD_ALICE, WEB).await.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                break;
            }
            assert_eq!(status, StatusCode::OK);
            assert!(
                started.elapsed() < BOUND,
                "{base}: alice not locked after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!("{base}: locked after {:?}", started.elapsed());
    }
}
