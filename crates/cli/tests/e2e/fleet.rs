//! A fleet: three `cardgate serve` instances on one PostgreSQL behind Debian's `haproxy`
//! (health checks on `/readyz`), a real `docker-registry` whose realm is the balancer, and
//! `skopeo`. Under a steady token load through the balancer: a rolling restart (SIGTERM, wait
//! until ready, next) fails no request, `kill -9` of one instance fails at most the requests in
//! flight and the balancer routes around it within its check interval, a policy change made
//! through one instance is in force on all three, and pushes and pulls go on succeeding.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cardgate_store::testing::{Fixture, fresh_database_url};
use cardgate_store::{Card, PoolSettings, Store};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::registry::{RegistrySettings, write_oci_image};
use crate::running::free_port;
use crate::{cardgate, seed_env, start_registry, workspace};

/// The balancer's health check interval, and how many checks change a server's state.
const CHECK_MS: u64 = 200;
const FALL: u64 = 2;
/// How long a stopping instance goes on serving with `/readyz` answering 503: longer than the
/// balancer takes to mark it down (`FALL` checks).
const DRAIN_SECONDS: u64 = 2;
/// Token requests in flight at any time: what `kill -9` may cost at most.
const LOADERS: usize = 4;

fn password(name: &str) -> String {
    format!("{name}-fleet-password")
}

async fn user(f: &Fixture, name: &str) -> Card {
    let user = f.user(name, &["user-default"]).await;
    let hash = cardgate_authz_static::hash_password(&password(name).into()).unwrap();
    f.store.set_password(&f.admin, &user, &hash).await.unwrap();
    user
}

/// One `cardgate serve` process on a fixed port, restartable.
struct Instance {
    port: u16,
    url: String,
    log: std::path::PathBuf,
    child: Option<Child>,
}

impl Instance {
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(cardgate())
            .arg("serve")
            .env("CARDGATE_CONFIG_DIR", workspace().join("config"))
            .env_remove("CARDGATE_PROFILE")
            .env_remove("RUST_LOG")
            .envs(seed_env())
            .env("CARDGATE__DATABASE__URL", &self.url)
            .env(
                "CARDGATE__SERVER__LISTEN",
                format!("127.0.0.1:{}", self.port),
            )
            .env(
                "CARDGATE__SERVER__SHUTDOWN_DRAIN_SECONDS",
                DRAIN_SECONDS.to_string(),
            )
            .env("CARDGATE__DATABASE__MAX_CONNECTIONS", "8")
            // New connections log in slowly in a debug build on a busy machine.
            .env("CARDGATE__DATABASE__ACQUIRE_TIMEOUT_MS", "10000")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> String {
        self.child.as_ref().unwrap().id().unwrap().to_string()
    }

    async fn ready(&self) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(r) = client.get(format!("{}/readyz", self.base())).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{} never became ready:\n{}",
                self.base(),
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid()])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
    }

    async fn exited(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .expect("cardgate did not exit within a minute")
            .unwrap()
    }
}

/// `haproxy` in the foreground with a generated configuration: the three instances, round
/// robin, checked on `/readyz`; failed attempts retried on another instance.
fn haproxy_config(dir: &Path, front: u16, stats: u16, ports: &[u16]) -> std::path::PathBuf {
    let servers: String = ports
        .iter()
        .enumerate()
        .map(|(i, port)| format!("    server c{i} 127.0.0.1:{port} check\n"))
        .collect();
    let config = format!(
        "global\n    maxconn 2000\n\
         defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n\
         \x20   timeout server 30s\n    retries 3\n    option redispatch 1\n\
         \x20   retry-on all-retryable-errors\n\
         frontend tokens\n    bind 127.0.0.1:{front}\n    default_backend cardgate\n\
         frontend stats\n    bind 127.0.0.1:{stats}\n    stats enable\n    stats uri /stats\n\
         backend cardgate\n    balance roundrobin\n    option httpchk\n\
         \x20   http-check send meth GET uri /readyz\n    http-check expect status 200\n\
         \x20   default-server inter {CHECK_MS}ms fall {FALL} rise 2\n{servers}"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    path
}

/// Each instance's state as haproxy sees it (`UP`, `DOWN`, `UP 1/2`...).
async fn balancer_states(stats: u16) -> Vec<(String, String)> {
    let Ok(response) = reqwest::get(format!("http://127.0.0.1:{stats}/stats;csv")).await else {
        return Vec::new();
    };
    let csv = response.text().await.unwrap_or_default();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (proxy, server, status) = (column("pxname"), column("svname"), column("status"));
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.len() > status && f[proxy] == "cardgate" && f[server].starts_with('c'))
        .map(|f| (f[server].to_owned(), f[status].to_owned()))
        .collect()
}

/// Waits until haproxy reports server `name` exactly `state`; returns how long that took.
async fn balancer_sees(stats: u16, name: &str, state: &str) -> Duration {
    let started = Instant::now();
    loop {
        let states = balancer_states(stats).await;
        if states.iter().any(|(s, st)| s == name && st == state) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "haproxy never saw {name} {state}: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Requests and failures of the steady load, by phase.
#[derive(Default)]
struct Load {
    stop: AtomicBool,
    phase: AtomicUsize,
    requests: [AtomicUsize; 4],
    failures: [AtomicUsize; 4],
    errors: std::sync::Mutex<Vec<String>>,
}

const WARM_UP: usize = 0;
const ROLLING: usize = 1;
const KILLED: usize = 2;
const AFTER: usize = 3;

impl Load {
    fn counts(&self, phase: usize) -> (usize, usize) {
        (
            self.requests[phase].load(Ordering::SeqCst),
            self.failures[phase].load(Ordering::SeqCst),
        )
    }
}

/// One loop of token requests through the balancer, alice pulling `acme/web`.
async fn load(load: Arc<Load>, realm: String, service: String) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    while !load.stop.load(Ordering::SeqCst) {
        let result = client
            .get(&realm)
            .query(&[
                ("service", service.as_str()),
                ("scope", "repository:acme/web:pull"),
            ])
            .basic_auth("alice", Some(password("alice")))
            .send()
            .await;
        // A request counts in the phase it ends in: one in flight when an instance is killed
        // counts as the kill's.
        let phase = load.phase.load(Ordering::SeqCst);
        load.requests[phase].fetch_add(1, Ordering::SeqCst);
        let failure = match result {
            Ok(r) if r.status() == 200 => None,
            Ok(r) => Some(format!("status {}", r.status())),
            Err(e) => Some(format!("{e}")),
        };
        if let Some(failure) = failure {
            load.failures[phase].fetch_add(1, Ordering::SeqCst);
            load.errors
                .lock()
                .unwrap()
                .push(format!("phase {phase}: {failure}"));
        }
    }
}

/// The actions bob's token grants on `acme/web`, asked of `base` directly.
async fn bobs_actions(base: &str, realm_path: &str, service: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base}{realm_path}"))
        .query(&[
            ("service", service),
            ("scope", "repository:acme/web:pull,push"),
        ])
        .basic_auth("bob", Some(password("bob")))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    let Some(token) = body["token"].as_str() else {
        panic!("{base}: bob got {status} {body}");
    };
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["access"][0]["actions"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_behind_haproxy_survive_restarts_and_a_kill_under_load() {
    assert!(
        Path::new("/usr/sbin/haproxy").exists(),
        "the fleet test needs haproxy: `sudo apt-get install -y haproxy`"
    );
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url().await;
    let f = Fixture::on(Store::connect_lazy(&url, &PoolSettings::default()).unwrap()).await;
    let alice = user(&f, "alice").await;
    let bob = user(&f, "bob").await;
    let admin = f.admin.clone();
    let hash = cardgate_authz_static::hash_password(&password("admin").into()).unwrap();
    f.store.set_password(&f.admin, &admin, &hash).await.unwrap();
    let acme = f.org("acme").await;
    f.member(&acme, &alice, "owner").await;
    f.member(&acme, &bob, "developer").await;
    f.image("acme/web", &["org-acme"], false).await;

    let mut instances: Vec<Instance> = (0..3)
        .map(|i| Instance {
            port: free_port(),
            url: url.clone(),
            log: dir.path().join(format!("cardgate-{i}.log")),
            child: None,
        })
        .collect();
    for instance in &mut instances {
        instance.spawn();
    }
    for instance in &instances {
        instance.ready().await;
    }

    let (front, stats) = (free_port(), free_port());
    let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();
    let config = haproxy_config(dir.path(), front, stats, &ports);
    let haproxy_log = std::fs::File::create(dir.path().join("haproxy.log")).unwrap();
    let _haproxy = Command::new("/usr/sbin/haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(haproxy_log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    for name in ["c0", "c1", "c2"] {
        balancer_sees(stats, name, "UP").await;
    }

    // The registry sends clients to the balancer.
    let seed = RegistrySettings::from_seed();
    let realm_path = {
        let (_, rest) = seed.realm.split_once("://").unwrap();
        rest[rest.find('/').unwrap()..].to_owned()
    };
    let realm = format!("http://127.0.0.1:{front}{realm_path}");
    std::fs::write(
        dir.path().join("token.crt"),
        STANDARD.decode(&seed.certificate_b64).unwrap(),
    )
    .unwrap();
    let registry_port = free_port();
    std::fs::write(
        dir.path().join("registry.yml"),
        format!(
            "version: 0.1\nlog: {{level: warn}}\n\
             storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}}}\n\
             http: {{addr: 127.0.0.1:{registry_port}, secret: {secret}}}\n\
             auth:\n  token: {{realm: \"{realm}\", service: {service}, issuer: {issuer}, \
             rootcertbundle: {cert}}}\n",
            data = dir.path().join("data").display(),
            secret = seed.secret,
            service = seed.service,
            issuer = seed.issuer,
            cert = dir.path().join("token.crt").display(),
        ),
    )
    .unwrap();
    let _registry = start_registry(
        &dir.path().join("registry.yml"),
        &dir.path().join("registry.log"),
    );
    let registry = format!("127.0.0.1:{registry_port}");
    for _ in 0..150 {
        if let Ok(r) = reqwest::get(format!("http://{registry}/v2/")).await
            && r.status() == 401
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    std::fs::write(
        dir.path().join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let image = dir.path().join("image");
    write_oci_image(&image, "v1", "a fleet\n");

    // Pushes and pulls through the registry, one after another, until told to stop.
    let stop_copies = Arc::new(AtomicBool::new(false));
    let copies = {
        let (stop, dir) = (stop_copies.clone(), dir.path().to_owned());
        let source = format!("oci:{}:v1", image.display());
        tokio::spawn(async move {
            let (mut done, mut failed) = (0usize, Vec::new());
            let creds = format!("alice:{}", password("alice"));
            while !stop.load(Ordering::SeqCst) {
                let target = format!("docker://{registry}/acme/web:v{done}");
                let pulled = format!("oci:{}:v{done}", dir.join("pulled").display());
                for args in [
                    vec!["copy", "--dest-tls-verify=false", "--dest-creds", &creds],
                    vec!["copy", "--src-tls-verify=false", "--src-creds", &creds],
                ] {
                    let (from, to) = if args[1].starts_with("--dest") {
                        (source.as_str(), target.as_str())
                    } else {
                        (target.as_str(), pulled.as_str())
                    };
                    let output = Command::new("skopeo")
                        .arg("--policy")
                        .arg(dir.join("policy.json"))
                        .args(&args)
                        .args([from, to])
                        .env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
                        .kill_on_drop(true)
                        .output()
                        .await
                        .unwrap();
                    if !output.status.success() {
                        failed.push(String::from_utf8_lossy(&output.stderr).into_owned());
                    }
                }
                done += 1;
            }
            (done, failed)
        })
    };

    // The steady load.
    let state = Arc::new(Load::default());
    let loaders: Vec<_> = (0..LOADERS)
        .map(|_| tokio::spawn(load(state.clone(), realm.clone(), seed.service.clone())))
        .collect();
    // Warm up: every instance has verified alice's password once.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // A rolling restart: each instance in turn gets SIGTERM, drains (its /readyz answers 503
    // while tokens are still served), exits 0, comes back and is marked up before the next.
    state.phase.store(ROLLING, Ordering::SeqCst);
    for (i, instance) in instances.iter_mut().enumerate() {
        instance.signal("TERM").await;
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let status = client
                .get(format!("{}/readyz", instance.base()))
                .send()
                .await
                .unwrap()
                .status();
            if status == 503 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "/readyz still {status}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let draining = client
            .get(format!("{}{realm_path}", instance.base()))
            .query(&[("service", seed.service.as_str())])
            .basic_auth("alice", Some(password("alice")))
            .send()
            .await
            .unwrap();
        assert_eq!(draining.status(), 200, "a draining instance still serves");
        let down = balancer_sees(stats, &format!("c{i}"), "DOWN").await;
        eprintln!("c{i}: marked down {down:?} after its /readyz turned 503");
        assert!(instance.exited().await.success());
        instance.spawn();
        instance.ready().await;
        balancer_sees(stats, &format!("c{i}"), "UP").await;
    }

    // kill -9: the requests in flight on it may fail; the balancer marks it down within its
    // checks.
    state.phase.store(KILLED, Ordering::SeqCst);
    let killed = Instant::now();
    instances[0].signal("KILL").await;
    balancer_sees(stats, "c0", "DOWN").await;
    let routed_around = killed.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    instances[0].exited().await;
    instances[0].spawn();
    instances[0].ready().await;
    balancer_sees(stats, "c0", "UP").await;

    // A policy change through one instance: bob leaves acme. In force on all three.
    state.phase.store(AFTER, Ordering::SeqCst);
    let client = reqwest::Client::new();
    for instance in &instances {
        assert_eq!(
            bobs_actions(&instance.base(), &realm_path, &seed.service).await,
            json!(["pull", "push"])
        );
    }
    let login: Value = client
        .post(format!("{}/v1/admin/login", instances[1].base()))
        .json(&json!({"username": "admin", "password": password("admin")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = login["token"].as_str().unwrap().to_owned();
    let removed = client
        .delete(format!(
            "{}/v1/admin/orgs/acme/members/bob",
            instances[1].base()
        ))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success(), "{}", removed.status());
    // The next request to each instance: bob's password is checked again (the change emptied
    // the caches), which takes long in a debug build; the change feed's delivery takes
    // milliseconds.
    let changed = Instant::now();
    let mut stale_first_answers = 0;
    for instance in &instances {
        let mut first = true;
        loop {
            let actions = bobs_actions(&instance.base(), &realm_path, &seed.service).await;
            if actions == json!([]) {
                break;
            }
            stale_first_answers += usize::from(first);
            first = false;
            assert!(
                changed.elapsed() < Duration::from_secs(5),
                "{}: bob still has {actions} after {:?}",
                instance.base(),
                changed.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        eprintln!(
            "{}: change in force {:?} after it was made",
            instance.base(),
            changed.elapsed()
        );
    }
    assert_eq!(
        stale_first_answers, 0,
        "an instance answered from before the change at its next request"
    );

    state.stop.store(true, Ordering::SeqCst);
    stop_copies.store(true, Ordering::SeqCst);
    for loader in loaders {
        loader.await.unwrap();
    }
    let (copies_done, copies_failed) = copies.await.unwrap();
    let errors = state.errors.lock().unwrap().clone();
    let (warm_requests, _) = state.counts(WARM_UP);
    let (rolling_requests, rolling_failures) = state.counts(ROLLING);
    let (killed_requests, killed_failures) = state.counts(KILLED);
    let (after_requests, after_failures) = state.counts(AFTER);
    eprintln!(
        "token requests: warm-up {warm_requests}, rolling restart {rolling_requests} \
         ({rolling_failures} failed), kill -9 {killed_requests} ({killed_failures} failed, \
         routed around in {routed_around:?}); skopeo rounds {copies_done} \
         ({} failed); after: {after_requests} ({after_failures} failed); errors: {errors:?}",
        copies_failed.len()
    );
    assert!(rolling_requests > 50, "the load did not run");
    assert_eq!(rolling_failures, 0, "{errors:?}");
    assert!(killed_failures <= LOADERS, "{errors:?}");
    assert_eq!(after_failures, 0, "{errors:?}");
    assert!(
        routed_around < Duration::from_millis(CHECK_MS * (FALL + 2) + 1000),
        "{routed_around:?}"
    );
    assert!(copies_done >= 2, "skopeo did not run");
    assert!(copies_failed.is_empty(), "{copies_failed:?}");
}
