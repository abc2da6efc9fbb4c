//! `cardgate dev` as a process of its own with every log level on, its output kept in files:
//! what the secrets and shutdown tests share.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::{cardgate, workspace};

pub struct Dev {
    pub child: Child,
    pub base: String,
    pub data: tempfile::TempDir,
    logs: PathBuf,
    stdout: PathBuf,
}

/// A port free right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Dev {
    /// Starts `cardgate dev` with `RUST_LOG=trace` and waits until it answers `/healthz`.
    pub async fn start(extra_env: &[(&str, &str)]) -> Dev {
        let data = tempfile::tempdir().unwrap();
        let logs = data.path().join("cardgate.stderr");
        let stdout = data.path().join("cardgate.stdout");
        let port = free_port();
        let mut command = Command::new(cardgate());
        command
            .arg("dev")
            .arg("--data-dir")
            .arg(data.path())
            .env("CARDGATE_CONFIG_DIR", workspace().join("config"))
            .env_remove("CARDGATE_PROFILE")
            .env("CARDGATE__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "trace")
            .stdout(Stdio::from(std::fs::File::create(&stdout).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&logs).unwrap()))
            .kill_on_drop(true);
        for (name, value) in extra_env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap();
        let dev = Dev {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data,
            logs,
            stdout,
        };
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = client.get(format!("{}/healthz", dev.base)).send().await
                && r.status().is_success()
            {
                return dev;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("cardgate dev never answered; its log:\n{}", dev.logs());
    }

    pub fn realm(&self) -> String {
        format!("{}/v1/registry", self.base)
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    /// The private PostgreSQL cluster's folder: under the data folder when the `postgres`
    /// user can reach it, else under /var/tmp (as `cardgate dev` chooses).
    pub fn cluster_dir(&self) -> PathBuf {
        let local = self.data_dir().join("postgres");
        if local.join("PG_VERSION").exists() {
            return local;
        }
        let tag: String = self
            .data_dir()
            .display()
            .to_string()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        PathBuf::from("/var/tmp").join(format!("cardgate-dev{tag}"))
    }

    /// Everything written to standard error so far: the log.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.logs).unwrap()).into_owned()
    }

    /// Everything written to standard output so far.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.stdout).unwrap()).into_owned()
    }

    /// Sends `signal` (`TERM`, `INT`...) to the process.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .await
            .unwrap();
        assert!(sent.success());
    }

    /// Waits (at most a minute) for the process to exit.
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("cardgate did not exit within a minute")
            .unwrap()
    }
}
