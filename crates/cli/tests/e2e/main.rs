//! End-to-end: the real `cardgate` binary, the real `docker-registry` (distribution 2.8) and
//! real `skopeo`, wired exactly as the seed document's `.env` says.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_cli;
mod clients;
mod compose;
mod deploy;
mod dev;
mod fleet;
mod keygen;
mod memory;
mod registry;
mod rotation;
mod running;
mod secrets;
mod shutdown;
mod tenants;

use std::path::{Path, PathBuf};

/// Installs the Debian packages of the `(binary, package)` pairs whose binary is missing, when we
/// are root; otherwise fails saying what to install.
pub async fn ensure_packages(tools: &[(&str, &str)]) {
    let missing: Vec<&str> = tools
        .iter()
        .filter(|(binary, _)| !Path::new(binary).exists())
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return;
    }
    let uid = tokio::process::Command::new("id")
        .arg("-u")
        .output()
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&uid.stdout).trim() == "0",
        "this test needs {missing:?}: install them with `sudo apt-get install -y {}`",
        missing.join(" ")
    );
    let install = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "apt-get update -qq && apt-get install -y -qq {}",
            missing.join(" ")
        ))
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .await
        .unwrap();
    assert!(install.success(), "installing {missing:?} failed");
}

/// Sends a request and waits for its answer; a transport error fails the test.
trait Sent {
    async fn sent(self) -> reqwest::Response;
}

impl Sent for reqwest::RequestBuilder {
    async fn sent(self) -> reqwest::Response {
        self.send().await.unwrap()
    }
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The seed document's `.env` block, parsed (`KEY=value` or `KEY="value"`).
pub fn seed_env() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(workspace().join("config/seed.env")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_owned(), v.trim().trim_matches('"').to_owned())
        })
        .collect()
}

/// The `cardgate` binary under test.
pub fn cardgate() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cardgate"))
}
