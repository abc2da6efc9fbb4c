//! Key rotation with no failed pull, against the real `docker-registry` (distribution 2.8):
//! its `rootcertbundle` holds the current and the next certificate, and cardgate restarts
//! with the next key signing and the old one in `[[token.previous]]`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::Sent;
use crate::registry::{ALICE, write_oci_image};
use crate::registry::{pull, push};
use crate::running::free_port;
use crate::{cardgate, start_registry, workspace};

const ISSUER: &str = "cardgate-test";

/// A key made by `cardgate keygen`: the private key, certificate and kid files.
struct Key {
    pem: PathBuf,
    crt: PathBuf,
    kid: String,
}

async fn keygen(dir: &Path) -> Key {
    let output = Command::new(cardgate())
        .args(["keygen", "--issuer", ISSUER, "--out"])
        .arg(dir)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let file = |suffix: &str| dir.join(format!("{ISSUER}.{suffix}"));
    Key {
        pem: file("pem"),
        crt: file("crt"),
        kid: std::fs::read_to_string(file("kid"))
            .unwrap()
            .trim()
            .to_owned(),
    }
}

/// A config dir whose `test` profile is the suite's, publishing `previous` besides the
/// signing key.
fn config_dir(dir: &Path, previous: &Key) -> PathBuf {
    let config = dir.to_path_buf();
    std::fs::create_dir_all(&config).unwrap();
    let mut test = std::fs::read_to_string(workspace().join("config/test.toml")).unwrap();
    test.push_str(&format!(
        "\n[[token.previous]]\ncertificate = \"{}\"\nkid = \"{}\"\n",
        previous.crt.display(),
        previous.kid
    ));
    std::fs::write(config.join("test.toml"), test).unwrap();
    config
}

struct Rotation {
    dir: tempfile::TempDir,
    auth_port: u16,
    registry: String,
}

impl Rotation {
    /// `cardgate serve` on the auth port, signing with `active` and publishing `previous`.
    async fn cardgate(&self, name: &str, active: &Key, previous: &Key) -> Child {
        let config = config_dir(&self.dir.path().join(format!("config-{name}")), previous);
        let log =
            std::fs::File::create(self.dir.path().join(format!("cardgate-{name}.log"))).unwrap();
        let child = Command::new(cardgate())
            .arg("serve")
            .env("CARDGATE_CONFIG_DIR", &config)
            .env("CARDGATE_PROFILE", "test")
            .env("CARDGATE__TOKEN__KEY", &active.pem)
            .env("CARDGATE__TOKEN__CERTIFICATE", &active.crt)
            .env("CARDGATE__TOKEN__KID", &active.kid)
            .env(
                "CARDGATE__SERVER__LISTEN",
                format!("127.0.0.1:{}", self.auth_port),
            )
            .env("CARDGATE__SERVER__REALM", "/v1/registry")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.wait_for(&format!("http://127.0.0.1:{}/readyz", self.auth_port), 200)
            .await;
        child
    }

    async fn wait_for(&self, url: &str, status: u16) {
        crate::wait_for(url, status, || self.logs()).await;
    }

    fn logs(&self) -> String {
        let mut logs = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "log") {
                logs.push_str(&format!(
                    "--- {} ---\n{}\n",
                    path.display(),
                    std::fs::read_to_string(&path).unwrap_or_default()
                ));
            }
        }
        logs
    }

    async fn skopeo(&self, args: &[&str]) {
        let output = tokio::time::timeout(
            Duration::from_secs(120),
            Command::new("skopeo")
                .arg("--policy")
                .arg(self.dir.path().join("policy.json"))
                .args(args)
                .env("REGISTRY_AUTH_FILE", self.dir.path().join("auth.json"))
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap()
        .unwrap();
        assert!(
            output.status.success(),
            "skopeo {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
    }

    /// A token for `scope` from the running cardgate, with the `kid` of its header.
    async fn token(&self, scope: &str) -> (String, String) {
        let (user, password) = ALICE.split_once(':').unwrap();
        let response = reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{}/v1/registry?service=registry.test&scope={scope}",
                self.auth_port
            ))
            .basic_auth(user, Some(password))
            .sent()
            .await;
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        let token = body["token"].as_str().unwrap().to_owned();
        let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
        (token, kid)
    }

    /// The registry's answer to `GET /v2/<name>/manifests/<tag>` with `token`.
    async fn manifest_status(&self, name: &str, tag: &str, token: &str) -> u16 {
        reqwest::Client::new()
            .get(format!(
                "http://{}/v2/{name}/manifests/{tag}",
                self.registry
            ))
            .bearer_auth(token)
            .header("Accept", "application/vnd.oci.image.manifest.v1+json")
            .sent()
            .await
            .status()
            .as_u16()
    }
}

#[tokio::test]
async fn a_registry_trusting_both_certificates_accepts_the_old_signer_and_after_the_switch_the_new_one()
 {
    for binary in ["/usr/bin/docker-registry", "/usr/bin/skopeo"] {
        assert!(
            Path::new(binary).exists(),
            "the rotation test needs {binary}: `apt-get install -y docker-registry skopeo`"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    // 1. The key in use, and the next one made by `cardgate keygen`.
    let old = keygen(&dir.path().join("old")).await;
    let next = keygen(&dir.path().join("next")).await;
    assert_ne!(old.kid, next.kid);

    // 2. Publish the next key: the registry's bundle holds both certificates.
    let bundle = dir.path().join("token-bundle.crt");
    std::fs::write(
        &bundle,
        std::fs::read_to_string(&old.crt).unwrap() + &std::fs::read_to_string(&next.crt).unwrap(),
    )
    .unwrap();
    let auth_port = free_port();
    let registry_port = free_port();
    std::fs::write(
        dir.path().join("config.yml"),
        format!(
            "version: 0.1\n\
             log: {{level: info}}\n\
             storage: {{filesystem: {{rootdirectory: {data}}}, delete: {{enabled: true}}}}\n\
             http: {{addr: 127.0.0.1:{registry_port}, secret: rotation-secret}}\n\
             auth:\n  token: {{realm: \"http://127.0.0.1:{auth_port}/v1/registry\", service: registry.test, issuer: {ISSUER}, rootcertbundle: {bundle}}}\n",
            data = dir.path().join("data").display(),
            bundle = bundle.display(),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("policy.json"),
        r#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    )
    .unwrap();
    let _registry = start_registry(
        &dir.path().join("config.yml"),
        &dir.path().join("registry.log"),
    );
    let rotation = Rotation {
        dir,
        auth_port,
        registry: format!("127.0.0.1:{registry_port}"),
    };
    rotation
        .wait_for(&format!("http://{}/v2/", rotation.registry), 401)
        .await;

    // cardgate still signs with the old key, and announces the next one.
    let mut before = rotation.cardgate("before", &old, &next).await;
    let image = rotation.dir.path().join("image");
    write_oci_image(&image, "v1", "rotation\n");
    let source = format!("oci:{}:v1", image.display());
    let web = format!("docker://{}/acme/web:v1", rotation.registry);
    rotation.skopeo(&push(ALICE, &source, &web)).await;
    let (old_token, kid) = rotation.token("repository:acme/web:pull").await;
    assert_eq!(kid, old.kid);
    assert_eq!(
        rotation.manifest_status("acme/web", "v1", &old_token).await,
        200
    );

    // 3. Switch the signer: cardgate restarts with the next key, the old one published.
    before.kill().await.unwrap();
    before.wait().await.unwrap();
    let mut after = rotation.cardgate("after", &next, &old).await;
    let (new_token, kid) = rotation.token("repository:acme/web:pull").await;
    assert_eq!(kid, next.kid);
    assert_eq!(
        rotation.manifest_status("acme/web", "v1", &new_token).await,
        200
    );
    // A token the old signer issued before the switch still pulls.
    assert_eq!(
        rotation.manifest_status("acme/web", "v1", &old_token).await,
        200
    );
    // And clients pull and push through the new signer.
    let pulled = format!("oci:{}:v1", rotation.dir.path().join("pulled").display());
    rotation.skopeo(&pull(ALICE, &web, &pulled)).await;
    let web_v2 = format!("docker://{}/acme/web:v2", rotation.registry);
    rotation.skopeo(&push(ALICE, &source, &web_v2)).await;

    // The JWKS of the running server lists both, the signer first.
    let jwks: serde_json::Value = reqwest::get(format!(
        "http://127.0.0.1:{}/.well-known/jwks.json",
        rotation.auth_port
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], next.kid.as_str());
    assert_eq!(jwks["keys"][1]["kid"], old.kid.as_str());

    // The bundle is what decides: a signer the registry was never told of is refused.
    after.kill().await.unwrap();
    after.wait().await.unwrap();
    let stranger = keygen(&rotation.dir.path().join("stranger")).await;
    let _stranger = rotation.cardgate("stranger", &stranger, &old).await;
    let (stranger_token, _) = rotation.token("repository:acme/web:pull").await;
    assert_eq!(
        rotation
            .manifest_status("acme/web", "v1", &stranger_token)
            .await,
        401
    );
}
