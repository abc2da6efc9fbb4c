//! Real clients against the real registry and cardgate on the card store: skopeo's list-tags,
//! cross-repository blob mounts, the docker CLI's login-then-refresh flow and containerd's
//! password grant replayed exactly, the catalog, and podman.

use std::path::Path;
use std::time::Duration;

use cardgate_store::testing::{Fixture, fresh_database_url};
use cardgate_store::{Card, PoolSettings, Store};
use serde_json::Value;
use tokio::process::Command;

use crate::registry::{RegistrySettings, Stack, write_oci_image};
use crate::registry::{pull, push};
use crate::{Sent, says_any};

/// Sets `<name>-e2e-password` as the user's password.
async fn set_password(f: &Fixture, user: &Card, name: &str) {
    let hash =
        cardgate_authz_static::hash_password(&format!("{name}-e2e-password").into()).unwrap();
    f.store.set_password(&f.admin, user, &hash).await.unwrap();
}

/// A user with the password `<name>-e2e-password`.
async fn user(f: &Fixture, name: &str) -> Card {
    let user = f.user(name, &["user-default"]).await;
    set_password(f, &user, name).await;
    user
}

fn password(name: &str) -> String {
    format!("{name}-e2e-password")
}

fn creds(name: &str) -> String {
    format!("{name}:{}", password(name))
}

/// Two tenants on a running stack: `alice` owns `acme`, `gina` owns `globex`, `ci-robot` may
/// pull `acme/a` and push `acme/b`; `user-admin` logs in as `admin`. `source` is a one-layer
/// OCI image tagged `v1`.
struct Tenants {
    f: Fixture,
    stack: Stack,
    source: String,
}

impl Tenants {
    async fn start() -> Tenants {
        let url = fresh_database_url().await;
        let f = Fixture::on(Store::connect_lazy(&url, &PoolSettings::default()).unwrap()).await;
        let alice = user(&f, "alice").await;
        let gina = user(&f, "gina").await;
        let robot = user(&f, "ci-robot").await;
        let admin = f.admin.clone();
        set_password(&f, &admin, "admin").await;
        let acme = f.org("acme").await;
        f.member(&acme, &alice, "owner").await;
        let globex = f.org("globex").await;
        f.member(&globex, &gina, "owner").await;
        let a = f.image("acme/a", &["org-acme"], false).await;
        let b = f.image("acme/b", &["org-acme"], false).await;
        f.grant(&robot, &a, &["pull"]).await;
        f.grant(&robot, &b, &["pull", "push"]).await;

        let stack = Stack::start(&[("CARDGATE__DATABASE__URL", url.as_str())]).await;
        let dir = stack.path("image");
        write_oci_image(&dir, "v1", "real clients\n");
        let source = format!("oci:{}:v1", dir.display());
        Tenants { f, stack, source }
    }

    /// Whether `who` can push the source image to `destination` (`repo:tag`).
    async fn push(&self, who: &str, destination: &str) -> bool {
        let (creds, dest) = (creds(who), self.stack.image(destination));
        self.stack
            .skopeo_ok(&push(&creds, &self.source, &dest))
            .await
    }

    /// `host:port` of the registry.
    fn registry(&self) -> String {
        self.stack
            .image("")
            .trim_start_matches("docker://")
            .trim_end_matches('/')
            .to_owned()
    }

    /// cardgate's token endpoint, at the seed realm's path.
    fn realm(&self) -> String {
        let realm = RegistrySettings::from_seed().realm;
        let (_, rest) = realm.split_once("://").unwrap();
        let path = &rest[rest.find('/').unwrap()..];
        format!("{}{path}", self.stack.cardgate_url)
    }

    fn service(&self) -> String {
        RegistrySettings::from_seed().service
    }

    /// A GET token request as a registry client sends it: Basic credentials, `scope`s.
    async fn token(&self, who: &str, scopes: &[&str]) -> Value {
        let mut query = vec![("service", self.service()), ("account", who.to_owned())];
        query.extend(scopes.iter().map(|s| ("scope", (*s).to_owned())));
        let response = reqwest::Client::new()
            .get(self.realm())
            .query(&query)
            .basic_auth(who, Some(password(who)))
            .sent()
            .await;
        assert_eq!(response.status(), 200, "{}", self.stack.logs());
        response.json().await.unwrap()
    }

    /// The OAuth2 password grant of `who` for `scope` by client `client_id`, the fields in the
    /// order Go's url.Values.Encode writes them.
    async fn password_grant(&self, client_id: &str, who: &str, scope: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.realm())
            .form(&[
                ("client_id", client_id),
                ("grant_type", "password"),
                ("password", &password(who)),
                ("scope", scope),
                ("service", &self.service()),
                ("username", who),
            ])
            .sent()
            .await
    }

    /// Fails unless the registry refuses (401) `path` with `token`.
    async fn assert_refused(&self, path: &str, token: &str) {
        let response = self.registry_get(path, token, None).await;
        assert_eq!(response.status(), 401, "{path}");
    }

    /// A registry request with `Authorization: Bearer token`.
    async fn registry_get(
        &self,
        path: &str,
        token: &str,
        accept: Option<&str>,
    ) -> reqwest::Response {
        let mut request = reqwest::Client::new()
            .get(format!("http://{}{path}", self.registry()))
            .bearer_auth(token);
        if let Some(accept) = accept {
            request = request.header(reqwest::header::ACCEPT, accept);
        }
        request.sent().await
    }
}

/// The actions granted for `(type, name)` in a token answer's JWT `access` claim.
fn granted(answer: &Value, kind: &str, name: &str) -> Vec<String> {
    let token = answer["token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    claims["access"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["type"] == kind && a["name"] == name)
        .flat_map(|a| a["actions"].as_array().unwrap().clone())
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// The registry log's `response completed` lines for requests whose URI contains `needle`.
fn registry_requests(stack: &Stack, needle: &str) -> Vec<String> {
    std::fs::read_to_string(stack.path("registry.log"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("response completed") && l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn skopeo_lists_the_tags_of_a_pushed_repository_for_its_owner_and_not_for_another_tenant() {
    let t = Tenants::start().await;
    assert!(t.push("alice", "acme/web:v1").await);
    assert!(t.push("alice", "acme/web:v2").await);
    let web = t.stack.image("acme/web");
    let listed = t
        .stack
        .succeeds(&[
            "list-tags",
            "--tls-verify=false",
            "--creds",
            &creds("alice"),
            &web,
        ])
        .await;
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let mut tags: Vec<&str> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    tags.sort_unstable();
    assert_eq!(tags, ["v1", "v2"]);

    let refused = t
        .stack
        .fails(&[
            "list-tags",
            "--tls-verify=false",
            "--creds",
            &creds("gina"),
            &web,
        ])
        .await;
    assert!(
        says_any(&refused, &["denied", "unauthorized", "insufficient_scope"]),
        "unexpected refusal: {refused}"
    );
}

#[tokio::test]
async fn a_cross_repository_mount_is_granted_from_a_pullable_repository_and_refused_otherwise() {
    let t = Tenants::start().await;
    assert!(t.push("alice", "acme/a:v1").await);

    // The robot can pull acme/a: its push to acme/b mounts the layer from acme/a.
    assert!(t.push("ci-robot", "acme/b:v1").await);
    let mounts = registry_requests(&t.stack, "/v2/acme/b/blobs/uploads/?from=acme%2Fa");
    let mounted = mounts
        .iter()
        .find(|l| l.contains("http.response.status=201"))
        .unwrap_or_else(|| {
            panic!(
                "no mount into acme/b was granted: {mounts:#?}\n{}",
                t.stack.logs()
            )
        });
    // `...&mount=sha256%3A<hex>"`: the layer that was mounted.
    let layer = mounted
        .split("mount=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let robot = t.token("ci-robot", &["repository:acme/a:pull"]).await;
    assert_eq!(granted(&robot, "repository", "acme/a"), ["pull"]);

    // gina cannot pull acme/a: the registry refuses her look at the layer there, her push to
    // her own repository still succeeds by uploading it, and no mount into it is accepted.
    let refused_in_a = |stack: &Stack| {
        std::fs::read_to_string(stack.path("registry.log"))
            .unwrap()
            .lines()
            .filter(|l| {
                l.contains("insufficient scope") && l.contains("http.request.uri=\"/v2/acme/a/")
            })
            .count()
    };
    let refused_before = refused_in_a(&t.stack);
    assert!(t.push("gina", "globex/site:v1").await);
    assert!(
        refused_in_a(&t.stack) > refused_before,
        "the registry never refused gina acme/a\n{}",
        t.stack.logs()
    );
    let gina = t.token("gina", &["repository:acme/a:pull"]).await;
    assert_eq!(granted(&gina, "repository", "acme/a"), Vec::<String>::new());
    let gina_mounts = registry_requests(&t.stack, "/v2/globex/site/blobs/uploads/?from=");
    assert!(
        gina_mounts
            .iter()
            .all(|l| !l.contains("http.response.status=201")),
        "a mount into globex/site was accepted: {gina_mounts:#?}"
    );
    let uploaded = registry_requests(&t.stack, "/v2/globex/site/blobs/uploads/");
    assert!(
        uploaded
            .iter()
            .any(|l| l.contains("http.request.method=PUT")
                && l.contains(&format!("digest={layer}"))
                && l.contains("http.response.status=201")),
        "the layer {layer} was not uploaded into globex/site: {uploaded:#?}"
    );
    let pulled = format!("oci:{}:v1", t.stack.path("gina-pulled").display());
    let site = t.stack.image("globex/site:v1");
    t.stack
        .succeeds(&pull(&creds("gina"), &site, &pulled))
        .await;
}

#[tokio::test]
async fn the_docker_cli_login_then_refresh_flow_yields_a_token_the_registry_accepts() {
    let t = Tenants::start().await;
    assert!(t.push("alice", "acme/web:v1").await);
    let client = reqwest::Client::new();

    // `docker login`: no scope, offline token for client `docker`.
    let login = client
        .get(t.realm())
        .query(&[
            ("account", "alice"),
            ("client_id", "docker"),
            ("offline_token", "true"),
            ("service", &t.service()),
        ])
        .basic_auth("alice", Some(password("alice")))
        .sent()
        .await;
    assert_eq!(login.status(), 200);
    let login: Value = login.json().await.unwrap();
    let refresh = login["refresh_token"].as_str().unwrap().to_owned();
    assert!(!refresh.is_empty());

    // The daemon, holding only the identity token: POST refresh_token, scopes space separated,
    // fields in the order Go's url.Values.Encode writes them.
    let refreshed = client
        .post(t.realm())
        .form(&[
            ("client_id", "docker"),
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("scope", "repository:acme/web:pull repository:acme/web:push"),
            ("service", &t.service()),
        ])
        .sent()
        .await;
    assert_eq!(refreshed.status(), 200, "{}", t.stack.logs());
    let refreshed: Value = refreshed.json().await.unwrap();
    let token = refreshed["access_token"].as_str().unwrap();

    let tags = t.registry_get("/v2/acme/web/tags/list", token, None).await;
    assert_eq!(tags.status(), 200, "{}", t.stack.logs());
    let tags: Value = tags.json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));

    // The same flow for a tenant without rights on acme/web gets a token the registry refuses.
    let gina = t
        .password_grant("docker", "gina", "repository:acme/web:pull")
        .await;
    assert_eq!(gina.status(), 200);
    let gina: Value = gina.json().await.unwrap();
    t.assert_refused(
        "/v2/acme/web/tags/list",
        gina["access_token"].as_str().unwrap(),
    )
    .await;
}

#[tokio::test]
async fn containerd_password_grant_yields_a_token_that_pulls_a_manifest() {
    let t = Tenants::start().await;
    assert!(t.push("alice", "acme/web:v1").await);
    let answer = t
        .password_grant("containerd", "alice", "repository:acme/web:pull")
        .await;
    assert_eq!(answer.status(), 200, "{}", t.stack.logs());
    let answer: Value = answer.json().await.unwrap();
    let token = answer["access_token"].as_str().unwrap();

    // containerd's resolver Accept header.
    let accept = "application/vnd.docker.distribution.manifest.v2+json, \
                  application/vnd.docker.distribution.manifest.list.v2+json, \
                  application/vnd.oci.image.manifest.v1+json, \
                  application/vnd.oci.image.index.v1+json, */*";
    let manifest = t
        .registry_get("/v2/acme/web/manifests/v1", token, Some(accept))
        .await;
    assert_eq!(manifest.status(), 200, "{}", t.stack.logs());
    assert!(
        manifest
            .headers()
            .get("docker-content-digest")
            .is_some_and(|d| d.to_str().unwrap().starts_with("sha256:"))
    );
    let manifest: Value = manifest.json().await.unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);

    // The token is for acme/web only.
    let other = t
        .registry_get("/v2/acme/other/manifests/v1", token, Some(accept))
        .await;
    assert_eq!(other.status(), 401);
}

#[tokio::test]
async fn the_catalog_is_listed_with_a_catalog_token_and_refused_without_one() {
    let t = Tenants::start().await;
    assert!(t.push("alice", "acme/web:v1").await);
    assert!(t.push("gina", "globex/site:v1").await);

    let admin = t.token("admin", &["registry:catalog:*"]).await;
    assert_eq!(granted(&admin, "registry", "catalog"), ["*"]);
    let catalog = t
        .registry_get("/v2/_catalog", admin["token"].as_str().unwrap(), None)
        .await;
    assert_eq!(catalog.status(), 200, "{}", t.stack.logs());
    let catalog: Value = catalog.json().await.unwrap();
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["acme/web", "globex/site"])
    );

    // The admin's token for a repository only, and alice's (not allowed the catalog).
    let repository_only = t.token("admin", &["repository:acme/web:pull"]).await;
    t.assert_refused("/v2/_catalog", repository_only["token"].as_str().unwrap())
        .await;
    let alice = t.token("alice", &["registry:catalog:*"]).await;
    assert!(granted(&alice, "registry", "catalog").is_empty());
    t.assert_refused("/v2/_catalog", alice["token"].as_str().unwrap())
        .await;
    assert!(t.f.has_image("acme/web").await);
}

/// Runs podman with its own storage, runtime directory and auth file under `dir`.
async fn podman(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = Command::new("podman");
    command
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ])
        .args(args)
        .env("XDG_RUNTIME_DIR", dir.join("xdg"))
        .env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
        .env("CONTAINERS_CONF", dir.join("containers.conf"))
        .env("CONTAINERS_REGISTRIES_CONF", dir.join("registries.conf"))
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .unwrap_or_else(|_| panic!("podman {args:?} timed out"))
        .unwrap()
}

/// A directory with a lowercase path, removed on drop.
struct LowercaseDir(std::path::PathBuf);

impl LowercaseDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path =
            std::env::temp_dir().join(format!("cardgate-podman-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        LowercaseDir(path)
    }
}

impl Drop for LowercaseDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn podman_logs_in_pushes_and_pulls() {
    crate::ensure_packages(&[("/usr/bin/podman", "podman")]).await;
    let t = Tenants::start().await;
    let dir = t.stack.path("podman");
    std::fs::create_dir_all(dir.join("xdg")).unwrap();
    std::fs::write(dir.join("containers.conf"), "").unwrap();
    std::fs::write(dir.join("registries.conf"), "").unwrap();
    let ok = |output: std::process::Output, what: &str| {
        assert!(
            output.status.success(),
            "podman {what} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            t.stack.logs()
        );
        output
    };
    let registry = t.registry();
    let image = format!("{registry}/acme/pod:v1");

    // A wrong password is refused at login.
    let login = |password: String| {
        let (dir, registry) = (&dir, &registry);
        async move {
            let args = [
                "login",
                "--tls-verify=false",
                "-u",
                "alice",
                "-p",
                password.as_str(),
                registry.as_str(),
            ];
            podman(dir, &args).await
        }
    };
    let wrong = login("wrong".to_owned()).await;
    assert!(!wrong.status.success());

    ok(login(password("alice")).await, "login");
    // podman names an `oci:` image after its path, which must be lowercase (the temporary
    // directories' names are not).
    let layout = LowercaseDir::new();
    write_oci_image(&layout.0, "v1", "real clients\n");
    let source = format!("oci:{}:v1", layout.0.display());
    let pulled = ok(podman(&dir, &["pull", "-q", &source]).await, "pull oci");
    let id = String::from_utf8_lossy(&pulled.stdout).trim().to_owned();
    ok(podman(&dir, &["tag", &id, &image]).await, "tag");
    ok(
        podman(&dir, &["push", "--tls-verify=false", &image]).await,
        "push",
    );
    ok(podman(&dir, &["rmi", "-a", "-f"]).await, "rmi");
    ok(
        podman(&dir, &["pull", "--tls-verify=false", &image]).await,
        "pull",
    );
    let listed = ok(
        podman(&dir, &["images", "--format", "{{.Repository}}:{{.Tag}}"]).await,
        "images",
    );
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&image),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
    assert!(t.f.has_image("acme/pod").await);

    // Another tenant, logged in, cannot pull it.
    ok(podman(&dir, &["rmi", "-a", "-f"]).await, "rmi");
    ok(
        podman(
            &dir,
            &[
                "login",
                "--tls-verify=false",
                "-u",
                "gina",
                "-p",
                &password("gina"),
                &registry,
            ],
        )
        .await,
        "login as gina",
    );
    let refused = podman(&dir, &["pull", "--tls-verify=false", &image]).await;
    assert!(!refused.status.success());
}
