//! Password checks are bounded in memory: 256 concurrent wrong-password token requests keep
//! the real `cardgate` process's peak resident memory (`VmHWM`) under 128 MiB, with static
//! users (argon2id and bcrypt) and with card users.
//!
//! The bound is absolute, on the whole process with its start-up, for the debug binary these
//! tests run: its baseline is small enough (about 28 MiB for `serve` with static users, about
//! 67 MiB for `cardgate dev`, which migrates and hashes its demo passwords at start-up), and
//! the password checker keeps at most one 19 MiB argon2id buffer per core (two on the
//! project's 2-core reference machine), for checks and new hashes alike. Before checks were
//! bounded, the static users' run peaked above 3 GiB; while the demo passwords were hashed
//! outside the checker, each runtime thread that hashed one kept its freed 19 MiB in its
//! allocator arena, and the card users' run peaked anywhere from 93 to 137 MiB.

use std::path::Path;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::running::{Dev, free_port};
use crate::{cardgate, spawn_quiet};

const CONCURRENT: usize = 256;

/// 128 MiB on a machine of up to 2 cores; each further core may hold one more argon2id buffer
/// (19 MiB) while checks run on every core.
fn limit_kib() -> u64 {
    let cores = std::thread::available_parallelism().map_or(2, usize::from) as u64;
    128 * 1024 + cores.saturating_sub(2) * 20 * 1024
}

/// The peak resident memory of process `pid`, in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().strip_suffix("kB"))
        .map(|kib| kib.trim().parse().unwrap())
        .unwrap()
}

/// Sends `CONCURRENT` token requests at once, each with a wrong password for one of `users`
/// in turn (each on a connection of its own); the statuses of the answers.
async fn wrong_passwords(realm: &str, service: &str, users: &[&str]) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..CONCURRENT {
        let request = client
            .get(format!("{realm}?service={service}"))
            .basic_auth(users[i % users.len()], Some(format!("wrong-{i}")));
        requests.spawn(async move { request.send().await.map(|r| r.status().as_u16()) });
    }
    requests
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

/// The process stayed within the bound, and refused every request (memory first: a process
/// that grows without bound also starves its own event loops of CPU).
fn assert_bounded(pid: u32, statuses: &[u16], what: &str) {
    let peak = peak_kib(pid);
    let limit = limit_kib();
    assert!(
        peak < limit,
        "{what}: peak resident memory {} MiB, limit {} MiB",
        peak / 1024,
        limit / 1024
    );
    assert!(statuses.iter().all(|s| *s == 401), "{what}: {statuses:?}");
}

/// `cardgate serve` with the static users of `dir/memory.toml`, the throttle off so that every
/// request is checked.
async fn serve_static_users(dir: &Path, port: u16) -> Child {
    let keys = Command::new(cardgate())
        .args(["keygen", "--issuer", "cardgate-test", "--out"])
        .arg(dir)
        .output()
        .await
        .unwrap();
    assert!(keys.status.success(), "{keys:?}");
    let alice = cardgate_authz_static::hash_password(&"wonderland".into()).unwrap();
    let htpasswd = dir.join("htpasswd");
    let ci = bcrypt::hash("builder", 10)
        .unwrap()
        .replacen("$2b$", "$2y$", 1);
    std::fs::write(&htpasswd, format!("ci:{ci}\n")).unwrap();
    std::fs::write(
        dir.join("memory.toml"),
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"

[token]
issuer = "cardgate-test"
service = "registry.test"
key = "{key}"

[throttle]
enabled = false

[authn]
chain = ["static"]

[authn.static]
htpasswd = ["{htpasswd}"]

[[authn.static.users]]
name = "alice"
password = "{alice}"

[authz]
chain = ["static"]

[authz.static]
acl = []
"#,
            key = dir.join("cardgate-test.pem").display(),
            htpasswd = htpasswd.display(),
        ),
    )
    .unwrap();
    let child = spawn_quiet(
        Command::new(cardgate())
            .arg("serve")
            .env("CARDGATE_CONFIG_DIR", dir)
            .env("CARDGATE_PROFILE", "memory")
            .env_remove("RUST_LOG"),
    );
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            && r.status().is_success()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cardgate serve never became ready");
}

#[tokio::test]
async fn static_users_256_concurrent_wrong_passwords_stay_under_128_mib() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = serve_static_users(dir.path(), port).await;
    let realm = format!("http://127.0.0.1:{port}/v1/registry");
    // argon2id, bcrypt and unknown names alike.
    let statuses = wrong_passwords(&realm, "registry.test", &["alice", "ci", "ghost"]).await;
    assert_bounded(child.id().unwrap(), &statuses, "static users");
}

#[tokio::test]
async fn card_users_256_concurrent_wrong_passwords_stay_under_128_mib() {
    let dev = Dev::start(&[
        ("CARDGATE__THROTTLE__ENABLED", "false"),
        // The requests wait for the password checker, not for database connections: on a
        // busy machine the checks hold the cores for seconds.
        ("CARDGATE__DATABASE__ACQUIRE_TIMEOUT_MS", "60000"),
        ("RUST_LOG", "warn"),
    ])
    .await;
    let statuses = wrong_passwords(
        &dev.realm(),
        "registry.dev.local",
        &["alice", "bob", "ghost"],
    )
    .await;
    assert_bounded(dev.child.id().unwrap(), &statuses, "card users");
}
