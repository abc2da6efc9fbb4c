//! `docker-registry` configured for token auth against `cardgate serve` started from the seed's
//! `.env`, driven by `skopeo`.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::process::{Child, Command};

use crate::running::free_port;
use crate::{cardgate, says_any, seed_env, start_registry, workspace};

const TOOLS: [(&str, &str); 2] = [
    ("/usr/bin/docker-registry", "docker-registry"),
    ("/usr/bin/skopeo", "skopeo"),
];

pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes a one-layer OCI image layout under `dir`, tagged `tag`; returns the layer digest.
pub fn write_oci_image(dir: &Path, tag: &str, content: &str) -> String {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |data: &[u8]| -> (String, usize) {
        let hex = sha256_hex(data);
        std::fs::write(blobs.join(&hex), data).unwrap();
        (format!("sha256:{hex}"), data.len())
    };

    let mut layer = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    layer
        .append_data(&mut header, "hello.txt", content.as_bytes())
        .unwrap();
    let layer = layer.into_inner().unwrap();
    let (layer_digest, layer_size) = put(&layer);

    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    }))
    .unwrap();
    let (config_digest, config_size) = put(&config);

    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer_size,
        }],
    }))
    .unwrap();
    let (manifest_digest, manifest_size) = put(&manifest);

    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }],
        }))
        .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    layer_digest
}

/// The `rootfs.diff_ids` of the single image in an OCI layout: layer digests independent of
/// the compression the registry transfer used.
fn diff_ids(dir: &Path) -> Vec<String> {
    let read = |digest: &str| -> serde_json::Value {
        let hex = digest.trim_start_matches("sha256:");
        serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest = read(index["manifests"][0]["digest"].as_str().unwrap());
    let config = read(manifest["config"]["digest"].as_str().unwrap());
    config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect()
}

/// cardgate and the registry, running until dropped.
pub struct Stack {
    dir: tempfile::TempDir,
    registry: String,
    /// cardgate's base URL.
    pub cardgate_url: String,
    _cardgate: Child,
    _docker_registry: Child,
}

/// What the registry is told: its service and issuer, the realm's path, the certificate it
/// trusts (base64 PEM) and its HTTP secret.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    pub service: String,
    pub issuer: String,
    pub realm: String,
    pub certificate_b64: String,
    pub secret: String,
}

impl RegistrySettings {
    /// As the seed's `.env` describes the registry.
    pub fn from_seed() -> Self {
        let env = seed_env();
        let seed = |name: &str| {
            env.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        RegistrySettings {
            service: seed("REGISTRY_HOST"),
            issuer: seed("REGISTRY_TOKEN_AUTH_CERT_ISSUER"),
            realm: seed("REGISTRY_TOKEN_AUTH_REALM"),
            certificate_b64: seed("REGISTRY_TOKEN_AUTH_CERT"),
            secret: seed("REGISTRY_SECRETKEY"),
        }
    }
}

impl Stack {
    /// Starts cardgate from the seed's `.env` plus `env`, and a registry trusting the seed's
    /// certificate.
    pub async fn start(env_extra: &[(&str, &str)]) -> Stack {
        let env = seed_env();
        let mut all: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        all.extend_from_slice(env_extra);
        Stack::start_with(&RegistrySettings::from_seed(), &all).await
    }

    /// Starts cardgate with exactly `env` (plus where to listen), and a registry configured
    /// by `registry`.
    pub async fn start_with(registry: &RegistrySettings, env: &[(&str, &str)]) -> Stack {
        crate::ensure_packages(&TOOLS).await;
        let dir = tempfile::tempdir().unwrap();

        let auth_port = free_port();
        let cardgate_log = std::fs::File::create(dir.path().join("cardgate.log")).unwrap();
        let cardgate = Command::new(cardgate())
            .arg("serve")
            .env("CARDGATE_CONFIG_DIR", workspace().join("config"))
            .envs(env.iter().copied())
            .env("CARDGATE__SERVER__LISTEN", format!("127.0.0.1:{auth_port}"))
            .env("CARDGATE__LOG__FILTER", "debug")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(cardgate_log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();

        let cert = STANDARD.decode(&registry.certificate_b64).unwrap();
        std::fs::write(dir.path().join("token.crt"), cert).unwrap();
        let realm_path = registry
            .realm
            .split_once("://")
            .and_then(|(_, rest)| rest.find('/').map(|i| rest[i..].to_owned()))
            .unwrap();
        let registry_port = free_port();
        let config = format!(
            "version: 0.1\n\
             log: {{level: info}}\n\
             storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}}}\n\
             http: {{addr: 127.0.0.1:{registry_port}, secret: {secret}}}\n\
             auth:\n  token: {{realm: \"http://127.0.0.1:{auth_port}{realm_path}\", service: {service}, issuer: {issuer}, rootcertbundle: {cert}}}\n",
            data = dir.path().join("data").display(),
            secret = registry.secret,
            service = registry.service,
            issuer = registry.issuer,
            cert = dir.path().join("token.crt").display(),
        );
        // With a secret for them, the registry notifies cardgate of pushes, pulls and deletes.
        let events_secret = env
            .iter()
            .find(|(name, _)| *name == "CARDGATE__REGISTRY__EVENTS_SECRET")
            .map(|(_, secret)| *secret);
        let config = match events_secret {
            Some(secret) => format!(
                "{config}notifications:\n  endpoints:\n    - {{name: cardgate, url: \"http://127.0.0.1:{auth_port}/v1/registry/events\", headers: {{Authorization: [\"Bearer {secret}\"]}}, timeout: 2s, threshold: 5, backoff: 200ms}}\n"
            ),
            None => config,
        };
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let docker_registry = start_registry(
            &dir.path().join("config.yml"),
            &dir.path().join("registry.log"),
        );

        std::fs::write(
            dir.path().join("policy.json"),
            r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
        )
        .unwrap();
        let stack = Stack {
            registry: format!("127.0.0.1:{registry_port}"),
            cardgate_url: format!("http://127.0.0.1:{auth_port}"),
            dir,
            _cardgate: cardgate,
            _docker_registry: docker_registry,
        };
        stack
            .wait_for(&format!("http://127.0.0.1:{auth_port}/readyz"), 200)
            .await;
        stack
            .wait_for(&format!("http://{}/v2/", stack.registry), 401)
            .await;
        stack
    }

    async fn wait_for(&self, url: &str, status: u16) {
        crate::wait_for(url, status, || self.logs()).await;
    }

    pub fn logs(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!(
            "--- cardgate log ---\n{}\n--- registry log ---\n{}",
            read("cardgate.log"),
            read("registry.log")
        )
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn image(&self, repository: &str) -> String {
        format!("docker://{}/{repository}", self.registry)
    }

    async fn skopeo(&self, args: &[&str]) -> Output {
        let policy = self.path("policy.json");
        let mut command = Command::new("skopeo");
        command
            .arg("--policy")
            .arg(&policy)
            .args(args)
            .env("REGISTRY_AUTH_FILE", self.path("auth.json"))
            .kill_on_drop(true);
        tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .unwrap_or_else(|_| panic!("skopeo {args:?} timed out\n{}", self.logs()))
            .unwrap()
    }

    pub async fn succeeds(&self, args: &[&str]) -> Output {
        let output = self.skopeo(args).await;
        assert!(
            output.status.success(),
            "skopeo {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        output
    }

    /// Whether skopeo succeeds.
    pub async fn skopeo_ok(&self, args: &[&str]) -> bool {
        self.skopeo(args).await.status.success()
    }

    /// `None` when skopeo succeeds, else its error output.
    pub async fn fails_or_output(&self, args: &[&str]) -> Option<String> {
        let output = self.skopeo(args).await;
        (!output.status.success()).then(|| String::from_utf8_lossy(&output.stderr).into_owned())
    }

    /// Runs skopeo, expects failure, and returns its error output.
    pub async fn fails(&self, args: &[&str]) -> String {
        let output = self.skopeo(args).await;
        assert!(
            !output.status.success(),
            "skopeo {args:?} should have failed\n{}",
            self.logs()
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    }
}

/// skopeo's arguments to push `source` to `target` as `creds`.
pub fn push<'a>(creds: &'a str, source: &'a str, target: &'a str) -> [&'a str; 6] {
    [
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        source,
        target,
    ]
}

/// skopeo's arguments to pull `source` to `target` as `creds`.
pub fn pull<'a>(creds: &'a str, source: &'a str, target: &'a str) -> [&'a str; 6] {
    [
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        creds,
        source,
        target,
    ]
}

/// skopeo's arguments to read the manifest of `image` as `creds`.
pub fn inspect<'a>(creds: &'a str, image: &'a str) -> [&'a str; 6] {
    [
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        creds,
        image,
    ]
}

pub const ALICE: &str = "alice:alice-test-password";
const BOB: &str = "bob:bob-test-password";

#[tokio::test]
async fn skopeo_pushes_and_pulls_through_a_registry_trusting_the_seed_certificate() {
    let stack = Stack::start(&[("CARDGATE_PROFILE", "test")]).await;
    let image = stack.path("image");
    let layer = write_oci_image(&image, "v1", "cardgate end-to-end\n");
    let source = format!("oci:{}:v1", image.display());
    let web = stack.image("acme/web:v1");

    // A user with push rights pushes, and pulls the same layer back.
    stack.succeeds(&push(ALICE, &source, &web)).await;
    let pulled = stack.path("pulled");
    let pulled_ref = format!("oci:{}:v1", pulled.display());
    stack.succeeds(&pull(ALICE, &web, &pulled_ref)).await;
    assert_eq!(
        diff_ids(&pulled),
        [layer],
        "the pulled image does not hold the pushed layer"
    );

    // A pull-only user can pull but not push: the registry refuses the push.
    stack.succeeds(&inspect(BOB, &web)).await;
    let web_v2 = stack.image("acme/web:v2");
    let refused = stack.fails(&push(BOB, &source, &web_v2)).await;
    assert!(
        says_any(&refused, &["denied", "unauthorized", "insufficient_scope"]),
        "unexpected refusal: {refused}"
    );
    let missing = stack.fails(&inspect(ALICE, &web_v2)).await;
    assert!(missing.contains("manifest unknown"), "{missing}");

    // A wrong password is refused by cardgate.
    let wrong = stack.fails(&inspect("alice:not-the-password", &web)).await;
    // cardgate's own 401 ("invalid credentials"), not the registry's "authentication required".
    assert!(wrong.contains("invalid credentials"), "{wrong}");

    // Anonymous clients cannot pull a private repository...
    let anonymous = stack
        .fails(&["inspect", "--raw", "--tls-verify=false", "--no-creds", &web])
        .await;
    assert!(
        says_any(
            &anonymous,
            &["denied", "unauthorized", "authentication required"]
        ),
        "{anonymous}"
    );

    // ...but can pull one the ACL makes public.
    let public = stack.image("public/base:v1");
    stack.succeeds(&push(ALICE, &source, &public)).await;
    let anonymous_pull = format!("oci:{}:v1", stack.path("anonymous").display());
    stack
        .succeeds(&[
            "copy",
            "--src-tls-verify=false",
            "--src-no-creds",
            &public,
            &anonymous_pull,
        ])
        .await;

    // Deleting asks for `*`: refused to the pull-only user, granted to the owner.
    stack
        .fails(&["delete", "--tls-verify=false", "--creds", BOB, &web])
        .await;
    stack
        .succeeds(&["delete", "--tls-verify=false", "--creds", ALICE, &web])
        .await;
    let gone = stack.fails(&inspect(ALICE, &web)).await;
    assert!(gone.contains("manifest unknown"), "{gone}");

    // Nothing secret reached cardgate's debug-level log.
    let logs = std::fs::read_to_string(stack.path("cardgate.log")).unwrap();
    let key_b64 = seed_env()
        .into_iter()
        .find(|(k, _)| k == "REGISTRY_TOKEN_AUTH_CERT_KEY")
        .map(|(_, v)| v)
        .unwrap();
    let key_pem = String::from_utf8(STANDARD.decode(&key_b64).unwrap()).unwrap();
    let key_lines: Vec<&str> = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!key_lines.is_empty());
    let mut secrets = vec![
        "alice-test-password",
        "bob-test-password",
        "not-the-password",
    ];
    secrets.push(&key_b64);
    secrets.extend(key_lines);
    for secret in secrets {
        assert!(!logs.contains(secret), "the log contains a secret");
    }
    assert!(logs.contains("token issued"), "{logs}");
}
