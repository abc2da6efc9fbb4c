//! `cardgate dev`: the Quick start's first command.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::{cardgate, workspace};

async fn start_dev(data_dir: &std::path::Path, listen: &str) -> tokio::process::Child {
    Command::new(cardgate())
        .arg("dev")
        .arg("--data-dir")
        .arg(data_dir)
        .env("CARDGATE_CONFIG_DIR", workspace().join("config"))
        .env_remove("CARDGATE_PROFILE")
        .env("CARDGATE__SERVER__LISTEN", listen)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn dev_prints_a_registry_snippet_and_working_demo_credentials() {
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = start_dev(data.path(), &format!("127.0.0.1:{port}")).await;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
    {
        let done = line.starts_with("  admin /");
        printed.push(line);
        if done {
            break;
        }
    }
    let printed = printed.join("\n");
    let realm = format!("http://127.0.0.1:{port}/v1/registry");
    assert!(printed.contains(&format!("realm: {realm}")), "{printed}");
    assert!(printed.contains("service: registry.dev.local"), "{printed}");
    assert!(printed.contains("issuer: cardgate-dev"), "{printed}");
    assert!(printed.contains("rootcertbundle: "), "{printed}");
    assert!(data.path().join("cardgate-dev.crt").exists());
    assert!(data.path().join("cardgate-dev.pem").exists());

    let client = reqwest::Client::new();
    let mut response = None;
    for _ in 0..100 {
        if let Ok(r) = client
            .get(format!(
                "{realm}?service=registry.dev.local&scope=repository:acme/web:pull,push"
            ))
            .basic_auth("alice", Some("alice-dev-password"))
            .send()
            .await
        {
            response = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = response.expect("cardgate dev never answered");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let payload = body["token"].as_str().unwrap().split('.').nth(1).unwrap();
    use base64::Engine;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims["access"][0]["actions"],
        serde_json::json!(["pull", "push"])
    );
    // Stopped as with Ctrl-C: the private PostgreSQL stops with it.
    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");

    // The keys and the data are kept: a second start reuses them.
    let key_before = std::fs::read(data.path().join("cardgate-dev.pem")).unwrap();
    let mut again = start_dev(data.path(), &format!("127.0.0.1:{port}")).await;
    let mut lines = BufReader::new(again.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.contains("tokens at"), "{first}");
    assert!(data.path().join("postgres/PG_VERSION").exists());
    assert_eq!(
        std::fs::read(data.path().join("cardgate-dev.pem")).unwrap(),
        key_before
    );
}

#[tokio::test]
async fn dev_refuses_to_listen_beyond_loopback() {
    let data = tempfile::tempdir().unwrap();
    let output = Command::new(cardgate())
        .arg("dev")
        .arg("--data-dir")
        .arg(data.path())
        .env("CARDGATE_CONFIG_DIR", workspace().join("config"))
        .env("CARDGATE__SERVER__LISTEN", "0.0.0.0:0")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}
