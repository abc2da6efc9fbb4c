//! The staging stack's wiring, checked without a Docker engine: `docker-compose config` with
//! the seed's `.env`, and the JWKS the compose file hands to the registry.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokio::process::Command;

use std::collections::HashMap;

use cardgate_store::testing::fresh_database_url;

use crate::admin_cli::{admin, admin_ok};
use crate::registry::{RegistrySettings, Stack, write_oci_image};
use crate::registry::{inspect, push};
use crate::running::free_port;
use crate::{
    assert_succeeded, cardgate, output_with_stdin, seed, seed_env, spawn_quiet, workspace,
};

async fn compose_config(env_file: &Path) -> Output {
    crate::ensure_packages(&[("/usr/bin/docker-compose", "docker-compose")]).await;
    Command::new("docker-compose")
        .arg("-f")
        .arg(workspace().join("docker-compose.registry.yml"))
        .arg("--env-file")
        .arg(env_file)
        .arg("config")
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .output()
        .await
        .unwrap()
}

/// `docker-compose config` on a copy of the seed document's `.env` in `dir`.
async fn seed_compose_config(dir: &Path) -> Output {
    let env_file = dir.join(".env");
    std::fs::copy(workspace().join("config/seed.env"), &env_file).unwrap();
    compose_config(&env_file).await
}

#[tokio::test]
async fn the_compose_file_maps_the_seed_env_onto_the_registry_and_cardgate() {
    let dir = tempfile::tempdir().unwrap();
    let output = seed_compose_config(dir.path()).await;
    let config = String::from_utf8_lossy(&output.stdout);
    assert_succeeded(&output);
    for expected in [
        format!("REGISTRY2_HOST: {}", seed("REGISTRY_HOST")),
        format!(
            "REGISTRY2_TOKEN_AUTH_REALM: {}",
            seed("REGISTRY_TOKEN_AUTH_REALM")
        ),
        format!(
            "REGISTRY2_TOKEN_AUTH_ISSUER: {}",
            seed("REGISTRY_TOKEN_AUTH_CERT_ISSUER")
        ),
        format!("API_TOKENAUTH_CRT: {}", seed("REGISTRY_TOKEN_AUTH_CERT")),
        format!("REGISTRY2_SECRETKEY: {}", seed("REGISTRY_SECRETKEY")),
        format!(
            "REGISTRY2_CACHE_ENABLED: \"{}\"",
            seed("REGISTRY2_CACHE_ENABLED")
        ),
        "REGISTRY2_STORAGEPATH: /data".to_owned(),
        format!(
            "REGISTRY_TOKEN_AUTH_CERT_KEY: {}",
            seed("REGISTRY_TOKEN_AUTH_CERT_KEY")
        ),
        format!(
            "REGISTRY_TOKEN_AUTH_CERT_KID: {}",
            seed("REGISTRY_TOKEN_AUTH_CERT_KID")
        ),
        format!(
            "/certs/private/{}.jwks.json",
            seed("REGISTRY_TOKEN_AUTH_CERT_ISSUER")
        ),
        "condition: service_completed_successfully".to_owned(),
        "condition: service_healthy".to_owned(),
        // The registry notifies cardgate, both holding the (default) events secret.
        "CARDGATE__REGISTRY__EVENTS_SECRET: cardgate-staging-registry-events".to_owned(),
        "url: \"http://cardgate:8080/v1/registry/events\"".to_owned(),
        "Bearer cardgate-staging-registry-events".to_owned(),
        "REGISTRY_STORAGE_DELETE_ENABLED: \"true\"".to_owned(),
    ] {
        assert!(
            config.contains(&expected),
            "missing `{expected}` in:\n{config}"
        );
    }
}

#[tokio::test]
async fn a_missing_seed_variable_stops_the_stack_naming_it() {
    for missing in [
        "REGISTRY_HOST",
        "REGISTRY_SECRETKEY",
        "REGISTRY_TOKEN_AUTH_CERT_KEY",
        "REGISTRY2_CACHE_ENABLED",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let env_file = dir.path().join(".env");
        let text: String = seed_env()
            .into_iter()
            .filter(|(k, _)| k != missing)
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(&env_file, text).unwrap();
        let output = compose_config(&env_file).await;
        assert!(
            !output.status.success(),
            "{missing} missing, yet config succeeded"
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(missing), "{missing}: {stderr}");
    }
}

#[tokio::test]
async fn the_jwks_given_to_the_registry_holds_the_key_the_tokens_are_signed_with() {
    let dir = tempfile::tempdir().unwrap();
    let jwks_file = dir.path().join("issuer.jwks.json");
    let env = seed_env();
    let status = Command::new(cardgate())
        .args(["jwks", "--out"])
        .arg(&jwks_file)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("CARDGATE_CONFIG_DIR", workspace().join("config"))
        .env("CARDGATE_PROFILE", "staging")
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_str(&std::fs::read_to_string(&jwks_file).unwrap()).unwrap();
    let seed_kid = String::from_utf8(
        STANDARD
            .decode(seed("REGISTRY_TOKEN_AUTH_CERT_KID"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert_eq!(
        jwks.keys[0].common.key_id.as_deref(),
        Some(seed_kid.as_str())
    );

    // A token from cardgate started on the same .env verifies with that JWK, found by its kid
    // (what distribution v3 does with a JWKS).
    let port = free_port();
    let _server = spawn_quiet(
        Command::new(cardgate())
            .arg("serve")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CARDGATE_CONFIG_DIR", workspace().join("config"))
            .env("CARDGATE_PROFILE", "test")
            .env("CARDGATE__SERVER__LISTEN", format!("127.0.0.1:{port}")),
    );
    let client = reqwest::Client::new();
    let url = format!(
        "http://127.0.0.1:{port}/v1/registry?service={}&scope=repository:public/x:pull",
        seed("REGISTRY_HOST")
    );
    let mut body = None;
    for _ in 0..100 {
        if let Ok(response) = client.get(&url).send().await {
            body = Some(response.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = body.expect("cardgate never answered");
    let token = body["token"].as_str().unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is not in the JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[seed("REGISTRY_HOST")]);
    validation.set_issuer(&[seed("REGISTRY_TOKEN_AUTH_CERT_ISSUER")]);
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap();
}

/// The `environment` of `service` in `docker-compose config` output.
fn service_environment(config: &str, service: &str) -> HashMap<String, String> {
    let header = format!("  {service}:");
    let mut lines = config.lines().skip_while(|l| *l != header).skip(1);
    let mut environment = HashMap::new();
    let mut inside = false;
    for line in lines.by_ref() {
        if !line.starts_with("    ") {
            break;
        }
        if line.starts_with("    ") && !line.starts_with("     ") {
            inside = line.trim() == "environment:";
            continue;
        }
        if inside && let Some((key, value)) = line.trim().split_once(": ") {
            environment.insert(key.to_owned(), value.trim_matches(['"', '\'']).to_owned());
        }
    }
    environment
}

#[tokio::test]
async fn the_compose_wiring_without_containers_pushes_and_pulls_with_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let output = seed_compose_config(dir.path()).await;
    assert!(output.status.success());
    let config = String::from_utf8_lossy(&output.stdout).into_owned();
    let registry_env = service_environment(&config, "registry");
    let mut cardgate_env = service_environment(&config, "cardgate");
    assert!(registry_env.len() >= 7, "{registry_env:?}");
    assert!(cardgate_env.len() >= 9, "{cardgate_env:?}");

    // cardgate gets what the compose file gives its container, but a local database.
    let url = fresh_database_url().await;
    cardgate_env.insert("DATABASE_URL".into(), url.clone());
    let registry = RegistrySettings {
        service: registry_env["REGISTRY2_HOST"].clone(),
        issuer: registry_env["REGISTRY2_TOKEN_AUTH_ISSUER"].clone(),
        realm: registry_env["REGISTRY2_TOKEN_AUTH_REALM"].clone(),
        certificate_b64: registry_env["API_TOKENAUTH_CRT"].clone(),
        secret: registry_env["REGISTRY2_SECRETKEY"].clone(),
    };
    let env: Vec<(&str, &str)> = cardgate_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let stack = Stack::start_with(&registry, &env).await;

    // The first steps of docs/operations.md: the first admin's password, then a tenant through
    // the CLI.
    let mut set_password = Command::new(cardgate());
    set_password
        .args(["set-password", "admin"])
        .env("CARDGATE_CONFIG_DIR", workspace().join("config"))
        .envs(env.iter().copied());
    let done = output_with_stdin(&mut set_password, "first-admin-password\n").await;
    assert_succeeded(&done);
    let token_file = stack.path("cli.token");
    let login = admin(
        &stack,
        &["login", "admin", "--save", token_file.to_str().unwrap()],
        "first-admin-password\n",
    )
    .await;
    assert_succeeded(&login);
    admin_ok(&stack, &["orgs", "create", "acme"]).await;
    admin_ok(&stack, &["users", "create", "alice"]).await;
    let password = admin(
        &stack,
        &["users", "password", "alice"],
        "alice-staging-password\n",
    )
    .await;
    assert_succeeded(&password);
    admin_ok(&stack, &["members", "add", "acme", "alice", "owner"]).await;

    let image = stack.path("image");
    write_oci_image(&image, "v1", "staging\n");
    let source = format!("oci:{}:v1", image.display());
    let target = stack.image("acme/app:v1");
    let creds = "alice:alice-staging-password";
    stack.succeeds(&push(creds, &source, &target)).await;
    stack.succeeds(&inspect(creds, &target)).await;
    stack
        .fails(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            "--no-creds",
            &target,
        ])
        .await;
}
