//! Every numeric setting at its extremes: start-up refuses the value with a message naming the
//! setting, or accepts it and then serves token requests and admin logins without failing.

use cardgate_server::{Application, StartupError};
use cardgate_store::StoreError;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cards::seeded;
use crate::cards::token;
use crate::try_test_settings;

/// Every numeric setting.
const NUMERIC_SETTINGS: [&str; 23] = [
    "server.workers",
    "server.max_header_bytes",
    "server.shutdown_timeout_seconds",
    "server.shutdown_drain_seconds",
    "server.body_timeout_seconds",
    "server.max_requests_per_address",
    "token.lifetime_seconds",
    "token.pull_lifetime_seconds",
    "token.push_lifetime_seconds",
    "token.robot_lifetime_seconds",
    "token.refresh_lifetime_seconds",
    "token.max_refresh_tokens_per_client",
    "database.max_connections",
    "database.acquire_timeout_ms",
    "database.statement_timeout_ms",
    "admin.session_lifetime_seconds",
    "admin.tokens_per_hour",
    "cache.capacity",
    "cache.ttl_seconds",
    "throttle.window_seconds",
    "throttle.account_failures",
    "throttle.address_failures",
    "throttle.max_entries",
];

/// Values at the edges of the integer types, and of common ranges.
const EXTREMES: [&str; 12] = [
    "0",
    "1",
    "59",
    "60",
    "1000",
    "4096",
    "65535",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "-1",
];

/// The environment variable that sets `setting`.
fn variable(setting: &str) -> String {
    format!("CARDGATE__{}", setting.replace('.', "__").to_uppercase())
}

/// Sets `setting` to `value` on the card store at `url`, and starts: a refusal must name the
/// setting; an accepted value must leave a server that answers a token request and an admin
/// login with a result (200, or 503 when the value starves it of the database), never a
/// failure or a dropped connection, and is still healthy afterwards.
async fn start_with(url: &str, setting: &str, value: &str) -> Result<(), TestCaseError> {
    let variable = variable(setting);
    let mut env = vec![
        ("CARDGATE__AUTHN__CHAIN", "cards"),
        ("CARDGATE__AUTHZ__CHAIN", "cards"),
        ("CARDGATE__DATABASE__URL", url),
        // Few threads and connections per server: every accepted case starts one. A patient
        // pool: the machine may be busy.
        ("CARDGATE__SERVER__WORKERS", "1"),
        ("CARDGATE__DATABASE__MAX_CONNECTIONS", "2"),
        ("CARDGATE__DATABASE__ACQUIRE_TIMEOUT_MS", "10000"),
    ];
    env.retain(|(name, _)| *name != variable);
    env.push((&variable, value));
    let refused = |message: String| {
        prop_assert!(
            message.contains(setting),
            "{setting} = {value} refused without naming it: {message}"
        );
        Ok(())
    };
    let settings = match try_test_settings(&env) {
        Ok((settings, _)) => settings,
        Err(e) => return refused(e.to_string()),
    };
    let app = match Application::build(&settings).await {
        Ok(app) => app,
        // Accepted, but the database did not answer in time (a short acquire timeout on a
        // busy machine): nothing to learn from this case.
        Err(StartupError::Database(StoreError::Unavailable(e))) => {
            return Err(TestCaseError::reject(format!(
                "{setting} = {value}: the database did not answer: {e}"
            )));
        }
        Err(e) => {
            let message = e.to_string();
            prop_assert!(
                message.contains(&variable),
                "{setting} = {value} refused without naming {variable}: {message}"
            );
            return refused(message);
        }
    };
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let served = [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE];

    let response = token(
        &base,
        Some(("alice", "wonderland")),
        "repository:acme/web:pull",
    )
    .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    prop_assert!(
        served.contains(&status) && (body["token"].is_string() || body["error"].is_string()),
        "{setting} = {value}: token request answered {status} {body}"
    );

    let response = reqwest::Client::new()
        .post(format!("{base}/v1/admin/login"))
        .json(&json!({"username": "alice", "password": "wonderland"}))
        .send()
        .await
        .map_err(|e| TestCaseError::fail(format!("{setting} = {value}: login: {e}")))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    prop_assert!(
        served.contains(&status) && (body["token"].is_string() || body["error"].is_string()),
        "{setting} = {value}: admin login answered {status} {body}"
    );

    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .map_err(|e| TestCaseError::fail(format!("{setting} = {value}: healthz: {e}")))?;
    prop_assert_eq!(health.status(), StatusCode::OK);
    Ok(())
}

#[test]
fn every_numeric_setting_at_its_extremes_is_refused_by_name_or_served() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let url = runtime.block_on(async {
        let (url, store, _) = seeded(None).await;
        store.pool().close().await;
        url
    });
    let values = prop_oneof![
        3 => proptest::sample::select(&EXTREMES[..]).prop_map(str::to_owned),
        1 => any::<u64>().prop_map(|v| v.to_string()),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(proptest::sample::select(&NUMERIC_SETTINGS[..]), values),
            |(setting, value)| runtime.block_on(start_with(&url, setting, &value)),
        )
        .unwrap();
}

#[test]
fn every_numeric_setting_is_refused_at_the_largest_integer_naming_it_and_its_variable() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for setting in NUMERIC_SETTINGS {
        for value in ["18446744073709551615", "9223372036854775807"] {
            let variable = variable(setting);
            let message = match try_test_settings(&[(&variable, value)]) {
                Err(e) => e.to_string(),
                Ok((settings, _)) => runtime
                    .block_on(Application::build(&settings))
                    .map(|_| ())
                    .unwrap_err()
                    .to_string(),
            };
            assert!(message.contains(setting), "{setting} = {value}: {message}");
        }
    }
}
