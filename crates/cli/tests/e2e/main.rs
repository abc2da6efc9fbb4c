//! End-to-end: the real `cardgate` binary, the real `docker-registry` (distribution 2.8) and
//! real `skopeo`, wired exactly as the seed document's `.env` says.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_cli;
mod clients;
mod compose;
mod console;
mod deploy;
mod dev;
mod fleet;
mod keygen;
mod memory;
mod registry;
mod registry_events;
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

/// One value of the seed document's `.env` block.
pub fn seed(name: &str) -> String {
    seed_env()
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap()
}

/// Waits (up to 15 s) until `url` answers `status`; else fails showing `logs`.
pub async fn wait_for(url: &str, status: u16, logs: impl Fn() -> String) {
    let client = reqwest::Client::new();
    for _ in 0..150 {
        if let Ok(r) = client.get(url).send().await
            && r.status().as_u16() == status
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{url} never answered {status}\n{}", logs());
}

/// Starts `docker-registry` with the configuration at `config`, its output to `log`.
pub fn start_registry(config: &Path, log: &Path) -> tokio::process::Child {
    let log = std::fs::File::create(log).unwrap();
    tokio::process::Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Fails the test, showing the command's standard error, unless the command succeeded.
#[track_caller]
pub fn assert_succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Starts `command` with its output thrown away; it is killed when dropped.
pub fn spawn_quiet(command: &mut tokio::process::Command) -> tokio::process::Child {
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Runs `command` with `stdin` as its standard input; its output.
pub async fn output_with_stdin(
    command: &mut tokio::process::Command,
    stdin: &str,
) -> std::process::Output {
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut input, stdin.as_bytes())
        .await
        .unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

/// Whether `text` says (in any case) one of `words`.
pub fn says_any(text: &str, words: &[&str]) -> bool {
    let text = text.to_lowercase();
    words.iter().any(|w| text.contains(w))
}

/// The `cardgate` binary under test.
pub fn cardgate() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cardgate"))
}
