//! The `cardgate` command line: a thin shell over `cardgate-server` (serve, dev) and
//! `cardgate-token` (keygen), plus `hash-password` for static users and `admin`, a client of
//! the admin API.

mod admin;
mod dev;
mod keygen;

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;
use cardgate_server::settings::LogFormat;
use cardgate_server::{Application, Settings, SettingsSource};
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(
    name = "cardgate",
    version,
    about = "Token authentication server for container registries"
)]
struct Cli {
    /// Folder with default.toml and PROFILE.toml.
    #[arg(
        long,
        global = true,
        env = "CARDGATE_CONFIG_DIR",
        default_value = "config"
    )]
    config_dir: PathBuf,
    /// Settings profile: config/PROFILE.toml is layered over the defaults.
    #[arg(long, global = true, env = "CARDGATE_PROFILE")]
    profile: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the token server from configuration.
    Serve,
    /// Apply the database migrations and create the built-in cards, then exit.
    Migrate,
    /// Write the JWKS of the configured signing key (what registry v3 reads) to a file or stdout.
    Jwks {
        /// File to write; standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Exit 0 when the server configured here answers /readyz (a container health check).
    Probe {
        /// URL to probe; by default /readyz on the configured port of 127.0.0.1.
        #[arg(long)]
        url: Option<String>,
    },
    /// Change policy through a running server's admin API (`cardgate admin --help`).
    Admin(admin::AdminArgs),
    /// Run on the embedded dev defaults: dev keys, demo users, 127.0.0.1.
    Dev(dev::DevArgs),
    /// Generate a signing key, its certificate, key ID and JWKS.
    Keygen(keygen::KeygenArgs),
    /// Read a password from standard input and print its argon2id hash for [[authn.static.users]].
    HashPassword,
    /// Set a card store user's password, read from standard input, directly in the database
    /// (acting as user-admin): how the first admin gets a password, and the only way to set
    /// user-admin's (the admin API refuses to). Also reactivates the built-in cards.
    SetPassword {
        /// The user: `admin`, `alice` or `user-alice`.
        user: String,
    },
}

/// The card store of the settings, migrated and with its built-in cards.
async fn migrated_store(cli: &Cli) -> anyhow::Result<cardgate_store::Store> {
    let settings = Settings::load(&settings_source(cli, cli.profile.clone()))?;
    settings.validate()?;
    let store = settings
        .store()?
        .context("`database.url` (DATABASE_URL or CARDGATE__DATABASE__URL) is not set")?;
    store.migrate().await?;
    store.bootstrap().await?;
    Ok(store)
}

fn settings_source(cli: &Cli, profile: Option<String>) -> SettingsSource {
    SettingsSource {
        config_dir: cli.config_dir.clone(),
        profile,
        env: std::env::vars().collect::<HashMap<_, _>>(),
    }
}

fn init_tracing(settings: &Settings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.log.filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match settings.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    init_tracing(&settings);
    let app = Application::build(&settings).await?;
    tracing::info!(
        listen = %settings.server.listen,
        port = app.port(),
        realm = app.realm_path(),
        issuer = %settings.token.issuer,
        service = %settings.token.service,
        "cardgate listening"
    );
    app.run_until_stopped().await.context("server failed")
}

/// Reads a password from standard input and returns its argon2id hash.
fn read_password_hash() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("password (input is echoed; pipe it in to avoid that):");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "empty password");
    Ok(cardgate_authz_static::hash_password(&SecretString::from(
        password,
    ))?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match &cli.command {
        Command::Serve => {
            let settings = Settings::load(&settings_source(&cli, cli.profile.clone()))?;
            serve(settings).await
        }
        Command::Dev(args) => {
            let profile = cli.profile.clone().unwrap_or_else(|| "dev".to_owned());
            let settings = Settings::load(&settings_source(&cli, Some(profile)))?;
            let (settings, cluster) = dev::prepare(settings, args).await?;
            let served = serve(settings).await;
            if let Some(cluster) = cluster {
                cluster.stop()?;
            }
            served
        }
        Command::Migrate => {
            migrated_store(&cli).await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Jwks { out } => {
            let settings = Settings::load(&settings_source(&cli, cli.profile.clone()))?;
            let jwks = serde_json::to_string_pretty(&settings.jwks(settings.minter()?.key())?)?;
            match out {
                Some(path) => std::fs::write(path, jwks + "\n")
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => println!("{jwks}"),
            }
            Ok(())
        }
        Command::Probe { url } => {
            let url = match url {
                Some(url) => url.clone(),
                None => {
                    let settings = Settings::load(&settings_source(&cli, cli.profile.clone()))?;
                    let port = settings
                        .server
                        .listen
                        .rsplit_once(':')
                        .map(|(_, port)| port.to_owned())
                        .context("`server.listen` has no port")?;
                    format!("http://127.0.0.1:{port}/readyz")
                }
            };
            let response = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()?
                .get(&url)
                .send()
                .await
                .with_context(|| format!("{url} does not answer"))?;
            anyhow::ensure!(
                response.status().is_success(),
                "{url} answered {}",
                response.status()
            );
            Ok(())
        }
        Command::Keygen(args) => keygen::run(args),
        Command::Admin(args) => admin::run(args).await,
        Command::HashPassword => {
            println!("{}", read_password_hash()?);
            Ok(())
        }
        Command::SetPassword { user } => {
            let store = migrated_store(&cli).await?;
            let slug = cardgate_authz_cards::user_slug(user);
            let card = store
                .card_by_slug(&slug)
                .await?
                .filter(|c| c.is(cardgate_store::CardType::User))
                .with_context(|| format!("no active user {slug}"))?;
            let admin = store
                .card_by_slug(cardgate_store::ADMIN_SLUG)
                .await?
                .context("the store has no user-admin")?;
            let hash = read_password_hash()?;
            store.set_password(&admin, &card, &hash).await?;
            eprintln!("password of {slug} set");
            Ok(())
        }
    }
}
