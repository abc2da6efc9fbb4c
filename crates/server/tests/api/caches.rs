//! The caches of verified credentials and decisions, with two server instances sharing one
//! database: a change made through one is in force on it when the call returns, and on the
//! other within the change feed's delivery bound, far below the caches' TTL.

use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::cards::seeded;
use crate::cards::{access, spawn_on, token};
use crate::{Sent, metric_reaches};

/// How soon another instance must stop using what a change made stale (the documented
/// bound; the caches' TTL is 60 s).
const BOUND: Duration = Duration::from_secs(1);

/// The actions of alice's token for `scope` on `base`, or the status when there is no token.
async fn granted(base: &str, password: &str, scope: &str) -> Result<Value, StatusCode> {
    let response = token(base, Some(("alice", password)), scope).await;
    match response.status() {
        StatusCode::OK => Ok(access(&response.json().await.unwrap())[0]["actions"].clone()),
        other => Err(other),
    }
}

/// Polls `base` until alice's answer for `scope` is `expected`; returns how long that took.
async fn settles(
    base: &str,
    password: &str,
    scope: &str,
    expected: Result<Value, StatusCode>,
) -> Duration {
    let started = Instant::now();
    loop {
        let answer = granted(base, password, scope).await;
        if answer == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < BOUND,
            "{base}: still {answer:?} after {:?}, expected {expected:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `base` hears store changes, so that it caches.
async fn feed_connected(base: &str) {
    metric_reaches(base, "cardgate_change_feed_connected 1").await;
}

#[tokio::test]
async fn a_change_through_one_instance_empties_the_caches_of_both_within_the_bound() {
    let (url, _store, _f) = seeded(Some("admin-password")).await;
    let one = spawn_on(&url, true).await;
    let two = spawn_on(&url, false).await;
    let web = "repository:acme/web:pull,push";
    for base in [&one, &two] {
        feed_connected(base).await;
        // The second answer comes from the caches.
        for _ in 0..2 {
            assert_eq!(
                granted(base, "wonderland", web).await,
                Ok(json!(["pull", "push"]))
            );
        }
    }

    // Through instance one's admin API: alice leaves acme.
    let client = Client::new();
    let login: Value = client
        .post(format!("{one}/v1/admin/login"))
        .json(&json!({"username": "admin", "password": "admin-password"}))
        .sent()
        .await
        .json()
        .await
        .unwrap();
    let admin = login["token"].as_str().unwrap().to_owned();
    let response = client
        .delete(format!("{one}/v1/admin/orgs/acme/members/alice"))
        .bearer_auth(&admin)
        .sent()
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    // In force on instance one when the call has returned, on instance two within the bound.
    assert_eq!(granted(&one, "wonderland", web).await, Ok(json!([])));
    let took = settles(&two, "wonderland", web, Ok(json!([]))).await;
    eprintln!("instance two followed the change in {took:?}");

    // A new password: the old one stops working on both (its verification was cached).
    let response = client
        .put(format!("{one}/v1/admin/users/alice/password"))
        .bearer_auth(&admin)
        .json(&json!({"password": "looking-glass"}))
        .sent()
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        granted(&one, "wonderland", web).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    settles(&two, "wonderland", web, Err(StatusCode::UNAUTHORIZED)).await;
    settles(&two, "looking-glass", web, Ok(json!([]))).await;
}

#[tokio::test]
async fn a_change_written_by_another_process_reaches_a_running_instance_within_the_bound() {
    let (url, store, f) = seeded(None).await;
    let base = spawn_on(&url, true).await;
    let web = "repository:acme/web:pull";
    feed_connected(&base).await;
    for _ in 0..2 {
        assert_eq!(granted(&base, "wonderland", web).await, Ok(json!(["pull"])));
    }
    // Straight into the store, as another instance (or `cardgate set-password`) would.
    let alice = store.card_by_slug("user-alice").await.unwrap().unwrap();
    f.deactivate(&alice).await;
    settles(&base, "wonderland", web, Err(StatusCode::UNAUTHORIZED)).await;
}

#[tokio::test]
async fn metrics_show_requests_actions_caches_and_the_pool_in_the_prometheus_format() {
    let (url, _, _) = seeded(None).await;
    let base = spawn_on(&url, true).await;
    assert_eq!(
        granted(&base, "wonderland", "repository:acme/web:pull,delete").await,
        Ok(json!(["pull"]))
    );
    let response = Client::new().get(format!("{base}/metrics")).sent().await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = response.text().await.unwrap();
    for expected in [
        "# TYPE cardgate_requests_total counter",
        "cardgate_requests_total{route=\"/v1/registry\",outcome=\"2xx\"} ",
        "# TYPE cardgate_request_duration_seconds histogram",
        "cardgate_request_duration_seconds_bucket{route=\"/v1/registry\",le=\"+Inf\"} ",
        "cardgate_actions_total{decision=\"granted\"} ",
        "cardgate_actions_total{decision=\"denied\"} ",
        "cardgate_cache_requests_total{cache=\"credentials\",result=\"miss\"} ",
        "cardgate_cache_requests_total{cache=\"decisions\",result=\"hit\"} ",
        "cardgate_db_pool_connections{state=\"in_use\"} ",
        "cardgate_db_pool_max_connections 16",
    ] {
        assert!(body.contains(expected), "no `{expected}` in\n{body}");
    }
    assert!(!body.contains("wonderland"));
}
