//! Failed logins are throttled per account and per client address: 429 with `Retry-After`,
//! the same answer for a right and a wrong password while locked, and valid logins never
//! counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cardgate_server::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cards::seeded;
use crate::cards_settings;
use crate::{Sent, basic_get};
use crate::{error_body, test_settings};

const PULL: &str = "/v1/registry?service=registry.test&scope=repository:acme/web:pull";

/// The application on `config/test.toml` (static users) with `env` on top; its base URL.
pub(crate) async fn spawn_with(env: &[(&str, &str)]) -> String {
    let (settings, _) = test_settings(env);
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    base
}

async fn pull(base: &str, user: &str, password: &str) -> reqwest::Response {
    pull_from(base, user, password, None).await
}

/// A pull token request, as forwarded for `client` when given.
async fn pull_from(
    base: &str,
    user: &str,
    password: &str,
    client: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .get(format!("{base}{PULL}"))
        .basic_auth(user, Some(password));
    if let Some(client) = client {
        request = request.header("X-Forwarded-For", client);
    }
    request.sent().await
}

/// Checks a 429: `Retry-After` in whole seconds within the window, and a JSON error; returns
/// the body.
async fn too_many(response: reqwest::Response, window: u64) -> Value {
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=window).contains(&retry_after), "{retry_after}");
    let body = error_body(response, StatusCode::TOO_MANY_REQUESTS).await;
    assert_eq!(body["error"], "too_many_requests");
    body
}

#[tokio::test]
async fn an_account_with_too_many_failures_is_locked_and_its_right_password_is_not_revealed() {
    let base = spawn_with(&[
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "3"),
        ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "1000"),
    ])
    .await;
    for _ in 0..3 {
        let response = pull(&base, "alice", "not-her-password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let wrong = too_many(pull(&base, "alice", "not-her-password").await, 300).await;
    let right = too_many(pull(&base, "alice", "alice-test-password").await, 300).await;
    assert_eq!(
        wrong, right,
        "a locked account answers alike, right or wrong"
    );
    assert!(right.get("token").is_none());
    // `user-alice` is the same account.
    too_many(pull(&base, "user-alice", "alice-test-password").await, 300).await;
    // Other accounts from the same address are not affected.
    assert_eq!(
        pull(&base, "bob", "bob-test-password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_client_address_with_too_many_failures_is_locked_for_every_account() {
    let base = spawn_with(&[
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "100"),
        ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "4"),
    ])
    .await;
    for i in 0..4 {
        let response = pull(&base, &format!("guess-{i}"), "password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    too_many(pull(&base, "alice", "alice-test-password").await, 300).await;
    too_many(pull(&base, "bob", "bob-test-password").await, 300).await;
    // Requests without credentials guess nothing and are never refused.
    let anonymous = reqwest::get(format!("{base}{PULL}")).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_throttled_not_the_proxy() {
    let base = spawn_with(&[
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "100"),
        ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "3"),
        ("CARDGATE__THROTTLE__TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    for i in 0..3 {
        let response = pull_from(&base, &format!("guess-{i}"), "x", Some("203.0.113.9")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    too_many(
        pull_from(&base, "alice", "alice-test-password", Some("203.0.113.9")).await,
        300,
    )
    .await;
    // Through a chain of trusted proxies, the client is the rightmost untrusted hop.
    too_many(
        pull_from(
            &base,
            "alice",
            "alice-test-password",
            Some("198.51.100.1, 203.0.113.9, 127.0.0.1"),
        )
        .await,
        300,
    )
    .await;
    for client in [Some("198.51.100.4"), None] {
        let response = pull_from(&base, "alice", "alice-test-password", client).await;
        assert_eq!(response.status(), StatusCode::OK, "{client:?}");
    }
}

#[tokio::test]
async fn forwarded_hops_written_with_a_port_name_the_client() {
    let base = spawn_with(&[
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "100"),
        ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "3"),
        ("CARDGATE__THROTTLE__TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    // `ip:port` and `[v6]:port` are the client's address, whatever the port.
    for (i, hop) in ["203.0.113.9:4711", "203.0.113.9:4712", "203.0.113.9"]
        .iter()
        .enumerate()
    {
        let response = pull_from(&base, &format!("guess-{i}"), "x", Some(hop)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    too_many(
        pull_from(
            &base,
            "alice",
            "alice-test-password",
            Some("203.0.113.9:5000"),
        )
        .await,
        300,
    )
    .await;
    for i in 0..3 {
        let response =
            pull_from(&base, &format!("guess-{i}"), "x", Some("[2001:db8::9]:443")).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    too_many(
        pull_from(&base, "alice", "alice-test-password", Some("2001:db8::9")).await,
        300,
    )
    .await;
    // Neither the proxy nor other clients were locked.
    for client in [Some("198.51.100.4:80"), Some("[2001:db8:1::4]:80"), None] {
        let response = pull_from(&base, "alice", "alice-test-password", client).await;
        assert_eq!(response.status(), StatusCode::OK, "{client:?}");
    }
}

#[tokio::test]
async fn forwarded_addresses_from_an_untrusted_peer_are_ignored() {
    let base = spawn_with(&[
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "100"),
        ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "3"),
    ])
    .await;
    // Each failure claims another client; all come from this peer, which is what counts.
    for i in 0..3 {
        let client = format!("203.0.113.{i}");
        let response = pull_from(&base, &format!("guess-{i}"), "x", Some(&client)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    too_many(
        pull_from(&base, "alice", "alice-test-password", Some("198.51.100.4")).await,
        300,
    )
    .await;
}

#[tokio::test]
async fn dozens_of_parallel_valid_pulls_of_one_user_are_never_throttled() {
    let base = spawn_with(&[
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "2"),
        ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "2"),
    ])
    .await;
    // One mistake first: the account and the address are one failure from their limits.
    assert_eq!(
        pull(&base, "alice", "typo").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let pulls: Vec<_> = (0..48)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move { pull(&base, "alice", "alice-test-password").await.status() })
        })
        .collect();
    for pull in pulls {
        assert_eq!(pull.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(
        pull(&base, "alice", "alice-test-password").await.status(),
        StatusCode::OK
    );
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// A client for bob on one kept-alive connection, as plain as can be: the hammering itself
/// should cost this test's own process little CPU.
struct Hammer {
    stream: tokio::net::TcpStream,
    request: Vec<u8>,
    buffer: Vec<u8>,
}

impl Hammer {
    async fn connect(base: &str) -> Hammer {
        let address = base.trim_start_matches("http://");
        let credentials = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "bob:bob-test-password",
        );
        let request = format!(
            "GET {PULL} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Basic {credentials}\r\n\r\n"
        );
        Hammer {
            stream: tokio::net::TcpStream::connect(address).await.unwrap(),
            request: request.into_bytes(),
            buffer: Vec::new(),
        }
    }

    /// Sends the login and reads the whole answer; its status.
    async fn locked_login(&mut self) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(&self.request).await.unwrap();
        self.buffer.clear();
        loop {
            let mut chunk = [0u8; 4096];
            let read = self.stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the server closed the connection");
            self.buffer.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&self.buffer);
            let Some(end) = text.find("\r\n\r\n") else {
                continue;
            };
            let length: usize = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap();
            if self.buffer.len() >= end + 4 + length {
                return text[9..12].parse().unwrap();
            }
        }
    }
}

/// Refused logins wait instead of checking a password: 24 clients hammering a locked account
/// take no turns of the password checker (one check per core), so another user's login,
/// which needs one, takes about as long as when nobody hammers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hammering_a_locked_account_does_not_slow_other_users_logins() {
    /// Rounds of (quiet samples, then samples while the locked account is hammered): noise
    /// from the rest of the machine hits both kinds alike.
    const ROUNDS: usize = 8;
    const SAMPLES: usize = 3;
    const HAMMERS: usize = 24;
    let base = spawn_with(&[
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "3"),
        ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "1000000"),
        // Every login of alice is a password check, none a cache hit.
        ("CARDGATE__CACHE__CAPACITY", "0"),
    ])
    .await;
    for _ in 0..3 {
        let response = pull(&base, "bob", "not-his-password").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    too_many(pull(&base, "bob", "bob-test-password").await, 300).await;

    let client = reqwest::Client::new();
    let login = || async {
        let started = std::time::Instant::now();
        let url = format!("{base}{PULL}");
        let response = basic_get(&client, &url, "alice", "alice-test-password").await;
        assert_eq!(response.status(), StatusCode::OK);
        started.elapsed()
    };
    login().await;
    let (mut quiet, mut hammered) = (Vec::new(), Vec::new());
    let refused = Arc::new(AtomicUsize::new(0));
    for _ in 0..ROUNDS {
        for _ in 0..SAMPLES {
            quiet.push(login().await);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let hammers: Vec<_> = (0..HAMMERS)
            .map(|_| {
                let (base, stop, refused) = (base.clone(), stop.clone(), refused.clone());
                tokio::spawn(async move {
                    let mut hammer = Hammer::connect(&base).await;
                    while !stop.load(Ordering::Relaxed) {
                        assert_eq!(hammer.locked_login().await, 429);
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // Every hammer has a request in flight before the samples start.
        tokio::time::sleep(Duration::from_millis(100)).await;
        for _ in 0..SAMPLES {
            hammered.push(login().await);
        }
        stop.store(true, Ordering::Relaxed);
        for hammer in hammers {
            hammer.await.unwrap();
        }
    }
    let (quiet, hammered) = (median(&mut quiet), median(&mut hammered));
    let refused = refused.load(Ordering::Relaxed);
    assert!(refused >= ROUNDS * HAMMERS, "only {refused} refusals");
    assert!(
        hammered <= quiet * 2,
        "alice's login took {hammered:?} while bob was hammered, {quiet:?} otherwise"
    );
}

#[tokio::test]
async fn a_lock_ends_with_its_window() {
    let base = spawn_with(&[
        ("CARDGATE__THROTTLE__WINDOW_SECONDS", "1"),
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "2"),
    ])
    .await;
    for _ in 0..2 {
        pull(&base, "alice", "wrong").await;
    }
    too_many(pull(&base, "alice", "alice-test-password").await, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        pull(&base, "alice", "alice-test-password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_disabled_throttle_never_refuses() {
    let base = spawn_with(&[
        ("CARDGATE__THROTTLE__ENABLED", "false"),
        ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "1"),
    ])
    .await;
    for _ in 0..3 {
        pull(&base, "alice", "wrong").await;
    }
    assert_eq!(
        pull(&base, "alice", "alice-test-password").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn session_tokens_the_password_grant_and_the_admin_login_count_and_are_refused_alike() {
    let (url, _, _) = seeded(None).await;
    let settings = cards_settings(
        &url,
        &[
            ("CARDGATE__THROTTLE__ACCOUNT_FAILURES", "3"),
            ("CARDGATE__THROTTLE__ADDRESS_FAILURES", "1000"),
        ],
    );
    let app = Application::build(&settings).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let grant = |password: &str| {
        client
            .post(format!("{base}/v1/registry"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=password&username=alice&password={password}&service=registry.test"
            ))
            .send()
    };
    let login = |password: &str| {
        client
            .post(format!("{base}/v1/admin/login"))
            .json(&json!({"username": "alice", "password": password}))
            .send()
    };

    // One failure each way: a made-up session token, the password grant, the admin login.
    let made_up_session = format!("{}.{}", uuid::Uuid::new_v4(), "ab".repeat(32));
    let response = pull(&base, "alice", &made_up_session).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = grant("not-wonderland").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = login("not-wonderland").await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Locked now, everywhere, for the right password too.
    too_many(pull(&base, "alice", "wonderland").await, 300).await;
    too_many(grant("wonderland").await.unwrap(), 300).await;
    let response = login("wonderland").await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    assert!(body.get("token").is_none());
}
