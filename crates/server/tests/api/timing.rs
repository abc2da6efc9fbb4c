//! Timing does not tell an unknown account, a wrong password and a locked account apart.

use std::time::{Duration, Instant};

use argon2::{Argon2, PasswordHasher};
use cardgate_server::Application;
use cardgate_store::testing::{Fixture, fresh_database_url};
use cardgate_store::{PoolSettings, Store};
use reqwest::StatusCode;

use crate::Sent;
use crate::cards_settings;

/// Rounds; each takes one sample of every kind, in an order that rotates.
const ROUNDS: usize = 200;
/// Users the wrong-password samples are spread over, so that none reaches its limit.
const USERS: usize = 50;
/// The throttle's per-account limit in this test.
const ACCOUNT_FAILURES: usize = 5;
/// The largest ratio allowed between the medians of two kinds.
///
/// One argon2id verification (m = 19 MiB, t = 2) takes tens of milliseconds; the database
/// lookups that differ between the kinds take about one. Noise from other work on the
/// machine hits all kinds alike, since the samples are interleaved, and a median over 200
/// samples shrugs off the outliers it causes; 25% leaves room for that and for the lookups.
/// A path that skipped the verification would be several times faster (the control below
/// shows it is caught).
const TOLERANCE: f64 = 1.25;

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn timed(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    expected: StatusCode,
) -> Duration {
    let started = Instant::now();
    let response = client
        .get(format!("{base}/v1/registry?service=registry.test"))
        .basic_auth(user, Some(password))
        .sent()
        .await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), expected, "{user}");
    elapsed
}

#[tokio::test]
async fn unknown_accounts_wrong_passwords_and_locked_accounts_take_the_same_time() {
    let url = fresh_database_url().await;
    let store = Store::connect_lazy(&url, &PoolSettings::default()).unwrap();
    let f = Fixture::on(store.clone()).await;
    let hash = Argon2::default()
        .hash_password(b"wonderland")
        .unwrap()
        .to_string();
    for i in 0..=USERS {
        let user = f.user(&format!("user{i}"), &["user-default"]).await;
        store.set_password(&f.admin, &user, &hash).await.unwrap();
    }
    let limit = ACCOUNT_FAILURES.to_string();
    let settings = cards_settings(
        &url,
        &[
            ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", &limit),
            ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "1000000"),
        ],
    );
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    // `user{USERS}` is the locked account; it is asked with its right password.
    let locked = format!("user{USERS}");
    for _ in 0..ACCOUNT_FAILURES {
        timed(&client, &base, &locked, "wrong", StatusCode::UNAUTHORIZED).await;
    }
    timed(
        &client,
        &base,
        &locked,
        "wonderland",
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;

    let mut unknown = Vec::with_capacity(ROUNDS);
    let mut wrong = Vec::with_capacity(ROUNDS);
    let mut refused = Vec::with_capacity(ROUNDS);
    // Control: a failure that verifies no password (a made-up session token of an unknown
    // user is one lookup), to show that the comparison tells such a path apart.
    let mut control = Vec::with_capacity(ROUNDS);
    let made_up_session = format!("{}.{}", uuid::Uuid::new_v4(), "ab".repeat(32));
    for round in 0..ROUNDS {
        for kind in 0..4 {
            let (samples, user, password, status) = match (round + kind) % 4 {
                0 => (
                    &mut unknown,
                    format!("ghost{round}"),
                    "wonderland",
                    StatusCode::UNAUTHORIZED,
                ),
                1 => (
                    &mut wrong,
                    format!("user{}", round % USERS),
                    "not-wonderland",
                    StatusCode::UNAUTHORIZED,
                ),
                2 => (
                    &mut refused,
                    locked.clone(),
                    "wonderland",
                    StatusCode::TOO_MANY_REQUESTS,
                ),
                _ => (
                    &mut control,
                    format!("phantom{round}"),
                    made_up_session.as_str(),
                    StatusCode::UNAUTHORIZED,
                ),
            };
            samples.push(timed(&client, &base, &user, password, status).await);
        }
    }
    let medians = [
        ("unknown account", median(&mut unknown)),
        ("wrong password", median(&mut wrong)),
        ("locked account", median(&mut refused)),
    ];
    let control = median(&mut control);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    for (name_a, a) in medians {
        for (name_b, b) in medians {
            assert!(
                ratio(a, b) <= TOLERANCE,
                "{name_a} ({a:?}) vs {name_b} ({b:?}): medians {medians:?}, control {control:?}"
            );
        }
        assert!(
            ratio(a, control) > TOLERANCE * 2.0,
            "the control ({control:?}) is not told apart from {name_a} ({a:?})"
        );
    }
}
