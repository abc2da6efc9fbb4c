//! The Kubernetes manifests in `deploy/kubernetes/` against the real server: every
//! environment variable is a documented setting (the reference is itself checked against the
//! code), the Deployment's settings start the real binary, whose probe paths answer 200 on the
//! port the manifests name, the migration Job's command applies the migrations, and the
//! Service, PodDisruptionBudget, HorizontalPodAutoscaler and Secret references all meet.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use cardgate_store::testing::fresh_database_url;
use serde_json::Value;
use tokio::process::Command;

use crate::running::free_port;
use crate::{cardgate, seed, workspace};

/// Every manifest, by kind.
fn manifests() -> BTreeMap<String, Value> {
    let dir = workspace().join("deploy/kubernetes");
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let documents: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for document in documents {
            let kind = document["kind"].as_str().unwrap().to_owned();
            assert!(
                found.insert(kind.clone(), document).is_none(),
                "two {kind} manifests"
            );
        }
    }
    found
}

/// The variables `docs/configuration.md` documents (second column of its setting tables).
fn documented_variables() -> BTreeSet<String> {
    let text = std::fs::read_to_string(workspace().join("docs/configuration.md")).unwrap();
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('|').nth(2))
        .flat_map(|cell| cell.split('`').skip(1).step_by(2).map(str::to_owned))
        .collect()
}

/// A variable's value: a literal, or a reference to a secret's key as (secret, key).
type EnvValue = Result<String, (String, String)>;

/// A container's environment.
fn environment(container: &Value) -> Vec<(String, EnvValue)> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_owned();
            let value = match e["value"].as_str() {
                Some(v) => Ok(v.to_owned()),
                None => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    Err((
                        r["name"].as_str().unwrap().to_owned(),
                        r["key"].as_str().unwrap().to_owned(),
                    ))
                }
            };
            (name, value)
        })
        .collect()
}

/// The environment to run `container` with here: secrets from `secret` (the database URL
/// replaced by `database`, the key and certificate by the seed's), `listen` for the server.
fn runnable(
    container: &Value,
    secret: &Value,
    database: &str,
    listen: Option<&str>,
) -> Vec<(String, String)> {
    environment(container)
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                Ok(_) if name == "CARDGATE__SERVER__LISTEN" => listen.unwrap().to_owned(),
                Ok(v) => v,
                Err((secret_name, key)) => {
                    assert_eq!(secret_name, secret["metadata"]["name"], "{name}");
                    assert!(
                        secret["stringData"][&key].is_string(),
                        "{name}: no key {key} in the Secret"
                    );
                    match key.as_str() {
                        "database-url" => database.to_owned(),
                        "token-key" => seed("REGISTRY_TOKEN_AUTH_CERT_KEY"),
                        "token-certificate" => seed("REGISTRY_TOKEN_AUTH_CERT"),
                        other => panic!("unknown secret key {other}"),
                    }
                }
            };
            (name, value)
        })
        .collect()
}

fn command(env: &[(String, String)]) -> Command {
    let mut command = Command::new(cardgate());
    command
        .env("CARDGATE_CONFIG_DIR", workspace().join("config"))
        .env_remove("CARDGATE_PROFILE")
        .env_remove("RUST_LOG")
        .env_remove("DATABASE_URL")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_kubernetes_manifests_match_the_real_server() {
    let manifests = manifests();
    let kinds: Vec<&str> = manifests.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "HorizontalPodAutoscaler",
            "Job",
            "PodDisruptionBudget",
            "Secret",
            "Service"
        ]
    );
    let deployment = &manifests["Deployment"];
    let secret = &manifests["Secret"];
    let pod = &deployment["spec"]["template"];
    let labels = pod["metadata"]["labels"].as_object().unwrap();
    let container = &pod["spec"]["containers"][0];
    assert_eq!(container["args"], serde_json::json!(["serve"]));

    // Every variable is one the settings reference documents.
    let documented = documented_variables();
    let job_container = &manifests["Job"]["spec"]["template"]["spec"]["containers"][0];
    for c in [container, job_container] {
        for (name, _) in environment(c) {
            assert!(
                documented.contains(&name),
                "{name} is no documented setting"
            );
        }
    }

    // Selectors and references meet.
    let selects = |selector: &Value| {
        selector
            .as_object()
            .unwrap()
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
    };
    assert!(selects(&deployment["spec"]["selector"]["matchLabels"]));
    assert!(selects(&manifests["Service"]["spec"]["selector"]));
    assert!(selects(
        &manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"]
    ));
    let hpa = &manifests["HorizontalPodAutoscaler"]["spec"];
    assert_eq!(hpa["scaleTargetRef"]["kind"], "Deployment");
    assert_eq!(
        hpa["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    assert!(
        container["resources"]["requests"]["cpu"].is_string(),
        "the CPU autoscaler needs a CPU request"
    );

    // Ports: the named port is where the server listens, and what the Service and probes use.
    let ports = container["ports"].as_array().unwrap();
    let port_of = |name: &Value| -> u64 {
        match name.as_u64() {
            Some(port) => port,
            None => ports
                .iter()
                .find(|p| p["name"] == *name)
                .unwrap_or_else(|| panic!("no container port {name}"))["containerPort"]
                .as_u64()
                .unwrap(),
        }
    };
    let env = environment(container);
    let literal = |name: &str| {
        env.iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone().ok())
            .unwrap_or_else(|| panic!("{name} is not set"))
    };
    let listen = literal("CARDGATE__SERVER__LISTEN");
    let listen_port: u64 = listen.rsplit_once(':').unwrap().1.parse().unwrap();
    assert_eq!(
        port_of(&manifests["Service"]["spec"]["ports"][0]["targetPort"]),
        listen_port
    );
    let probes: Vec<(&str, String)> = ["readinessProbe", "livenessProbe"]
        .iter()
        .map(|probe| {
            let get = &container[*probe]["httpGet"];
            assert_eq!(port_of(&get["port"]), listen_port, "{probe}");
            (*probe, get["path"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(probes[0].1, "/readyz");
    assert_eq!(probes[1].1, "/healthz");

    // Stopping: the grace period covers the drain and the requests' time.
    let drain: u64 = literal("CARDGATE__SERVER__SHUTDOWN_DRAIN_SECONDS")
        .parse()
        .unwrap();
    let finish: u64 = literal("CARDGATE__SERVER__SHUTDOWN_TIMEOUT_SECONDS")
        .parse()
        .unwrap();
    assert!(
        pod["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap()
            > drain + finish
    );
    assert!(
        drain
            > container["readinessProbe"]["periodSeconds"]
                .as_u64()
                .unwrap()
                * container["readinessProbe"]["failureThreshold"]
                    .as_u64()
                    .unwrap(),
        "the drain ends before Kubernetes sees the pod unready"
    );

    // The migration Job's command applies the migrations on a new database.
    let database = fresh_database_url().await;
    let job_env = runnable(job_container, secret, &database, None);
    let args: Vec<String> = serde_json::from_value(job_container["args"].clone()).unwrap();
    let migrated = command(&job_env).args(&args).output().await.unwrap();
    assert!(
        migrated.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    // The Deployment's settings start the real server; its probes answer 200.
    let port = free_port();
    let env = runnable(
        container,
        secret,
        &database,
        Some(&format!("127.0.0.1:{port}")),
    );
    let log = tempfile::NamedTempFile::new().unwrap();
    let _server = command(&env)
        .args(
            container["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::from(log.reopen().unwrap()))
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    for (probe, path) in probes {
        let started = Instant::now();
        loop {
            let answer = client
                .get(format!("http://127.0.0.1:{port}{path}"))
                .send()
                .await;
            if matches!(&answer, Ok(r) if r.status() == 200) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{probe} {path}: {answer:?}\n{}",
                std::fs::read_to_string(log.path()).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
