//! A private PostgreSQL server started from the machine's own binaries, for `cardgate dev` and
//! the test harness. PostgreSQL refuses to run as root, so as root it runs as the `postgres`
//! system user, which is given the data directory.

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use secrecy::ExposeSecret;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A private PostgreSQL server could not be started.
#[derive(Debug, thiserror::Error)]
#[error("private PostgreSQL: {0}")]
pub struct EmbeddedError(String);

fn fail(message: impl Into<String>) -> EmbeddedError {
    EmbeddedError(message.into())
}

/// A running private PostgreSQL cluster. Stopped by [`EmbeddedPostgres::stop`], and in any
/// case when the process that started it exits (a watchdog sees to that).
#[derive(Debug)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    run_as: Option<String>,
    /// Server options (`pg_ctl -o`).
    options: String,
    /// The `cardgate` role's password (clusters made before passwords were used have none).
    password: Option<secrecy::SecretString>,
}

/// The folder holding `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn bin_dir() -> Result<PathBuf, EmbeddedError> {
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output()
        && output.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| fail("no PostgreSQL server binaries: install the `postgresql` package"))?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| fail("no initdb under /usr/lib/postgresql/*/bin: install `postgresql`"))
}

fn free_port() -> Result<u16, EmbeddedError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| fail(format!("no free port: {e}")))
}

fn id_of(flag: &str, user: &str) -> Result<u32, EmbeddedError> {
    let output = Command::new("id")
        .args([flag, user])
        .output()
        .map_err(|e| fail(format!("id {flag} {user}: {e}")))?;
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .map_err(|_| fail(format!("user `{user}` does not exist")))
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Whether the user PostgreSQL will run as can reach (traverse into) `dir`. As root the
/// server runs as `postgres`, which cannot enter, say, a folder under a 0700 home.
pub fn reachable(dir: &Path) -> bool {
    if !is_root() {
        return true;
    }
    let probe = dir.parent().unwrap_or(dir);
    Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(probe)
        .status()
        .is_ok_and(|s| s.success())
}

impl EmbeddedPostgres {
    /// Starts (creating it on first use) a cluster in `data_dir`, listening on 127.0.0.1 only.
    /// `fast` turns durability off: for throwaway test clusters.
    pub fn start(data_dir: &Path, fast: bool) -> Result<Self, EmbeddedError> {
        let bin_dir = bin_dir()?;
        std::fs::create_dir_all(data_dir)
            .map_err(|e| fail(format!("cannot create {}: {e}", data_dir.display())))?;
        let data_dir = std::fs::canonicalize(data_dir)
            .map_err(|e| fail(format!("{}: {e}", data_dir.display())))?;
        let is_root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let run_as = if is_root {
            let (uid, gid) = (id_of("-u", "postgres")?, id_of("-g", "postgres")?);
            std::os::unix::fs::chown(&data_dir, Some(uid), Some(gid)).map_err(|e| {
                fail(format!(
                    "cannot give {} to postgres: {e}",
                    data_dir.display()
                ))
            })?;
            Some("postgres".to_owned())
        } else {
            None
        };
        let port = free_port()?;
        let mut options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=/tmp \
             -c unix_socket_permissions=0700 -c max_connections=200"
        );
        if fast {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let password_file = data_dir.with_extension("password");
        let mut cluster = EmbeddedPostgres {
            data_dir,
            bin_dir,
            port,
            run_as,
            options,
            password: None,
        };
        if cluster.data_dir.join("PG_VERSION").exists() {
            cluster.password = std::fs::read_to_string(&password_file)
                .ok()
                .map(|p| secrecy::SecretString::from(p.trim().to_owned()));
        } else {
            cluster.init(&password_file)?;
        }
        cluster.resume()?;
        cluster.watch_parent(fast);
        Ok(cluster)
    }

    /// Creates the cluster: the `cardgate` superuser with a random password (kept in
    /// `password_file`, mode 0600), password authentication for every connection.
    fn init(&mut self, password_file: &Path) -> Result<(), EmbeddedError> {
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).map_err(|e| fail(format!("randomness: {e}")))?;
        let password: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let write_secret = |path: &Path, owner: Option<(u32, u32)>| -> Result<(), EmbeddedError> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| fail(format!("{}: {e}", path.display())))?;
            file.write_all(password.as_bytes())
                .map_err(|e| fail(format!("{}: {e}", path.display())))?;
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(path, Some(uid), Some(gid))
                    .map_err(|e| fail(format!("{}: {e}", path.display())))?;
            }
            Ok(())
        };
        let _ = std::fs::remove_file(password_file);
        write_secret(password_file, None)?;
        // initdb reads the password from a file its user can read; removed right after.
        let pwfile = std::env::temp_dir().join(format!(
            "cardgate-initdb-{}-{}",
            std::process::id(),
            self.port
        ));
        let owner = match &self.run_as {
            Some(user) => Some((id_of("-u", user)?, id_of("-g", user)?)),
            None => None,
        };
        write_secret(&pwfile, owner)?;
        let result = self.run(
            "initdb",
            &[
                "-D",
                &self.data_dir.display().to_string(),
                "-A",
                "scram-sha-256",
                "-U",
                "cardgate",
                &format!("--pwfile={}", pwfile.display()),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let _ = std::fs::remove_file(&pwfile);
        result?;
        self.password = Some(secrecy::SecretString::from(password));
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin_dir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), EmbeddedError> {
        let output = self
            .command(program)
            .args(args)
            .current_dir("/")
            .envs(
                self.password
                    .as_ref()
                    .map(|p| ("PGPASSWORD", p.expose_secret().to_owned())),
            )
            .stdin(Stdio::null())
            .output()
            .map_err(|e| fail(format!("{program}: {e}")))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(fail(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&output.stderr),
                String::from_utf8_lossy(&output.stdout)
            )))
        }
    }

    /// Stops the cluster when this process exits, however it exits. `remove` also deletes the
    /// data directory (for throwaway clusters).
    fn watch_parent(&self, remove: bool) {
        let stop = format!(
            "{} {} -D '{}' -m immediate stop",
            self.run_as
                .as_ref()
                .map(|u| format!("runuser -u {u} --"))
                .unwrap_or_default(),
            self.bin_dir.join("pg_ctl").display(),
            self.data_dir.display()
        );
        let cleanup = if remove {
            format!(
                "rm -rf '{}' '{}'",
                self.data_dir.display(),
                self.data_dir.with_extension("password").display()
            )
        } else {
            String::new()
        };
        // Another process may have taken the cluster over since (a restarted `cardgate dev`).
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; \
             if [ \"$(cat '{owner}' 2>/dev/null)\" = {pid} ]; then {stop} >/dev/null 2>&1; {cleanup}; fi",
            pid = std::process::id(),
            owner = self.owner_file().display(),
        );
        // Best effort: without the watchdog the cluster outlives a crashed process.
        let _ = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's URL, without a database (it holds the password: never log it).
    pub fn base_url(&self) -> String {
        match &self.password {
            Some(password) => format!(
                "postgres://cardgate:{}@127.0.0.1:{}",
                password.expose_secret(),
                self.port
            ),
            None => format!("postgres://cardgate@127.0.0.1:{}", self.port),
        }
    }

    /// The URL of `database` on this cluster (it holds the password: never log it).
    pub fn url(&self, database: &str) -> String {
        format!("{}/{database}", self.base_url())
    }

    /// The file naming the process that owns the running server: a watchdog stops the server
    /// only while its process is still the owner.
    fn owner_file(&self) -> PathBuf {
        self.data_dir.join("cardgate.owner")
    }

    /// Starts the server (again, after [`EmbeddedPostgres::stop`]) on the same port.
    pub fn resume(&self) -> Result<(), EmbeddedError> {
        std::fs::write(self.owner_file(), std::process::id().to_string())
            .map_err(|e| fail(format!("{}: {e}", self.owner_file().display())))?;
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir.display().to_string(),
                "-l",
                &self.data_dir.join("server.log").display().to_string(),
                "-o",
                &self.options,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    /// Creates `database` unless it exists.
    pub fn ensure_database(&self, database: &str) -> Result<(), EmbeddedError> {
        let port = self.port.to_string();
        match self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "cardgate", database],
        ) {
            Err(e) if e.0.contains("already exists") => Ok(()),
            other => other,
        }
    }

    /// Stops the cluster (fast shutdown), keeping its data.
    pub fn stop(&self) -> Result<(), EmbeddedError> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data_dir.display().to_string(),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        )
    }
}
