//! The `cardgate` command line: a thin shell over `cardgate-server` (serve, dev) and
//! `cardgate-token` (keygen), plus `hash-password` for static users.

mod dev;
mod keygen;

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use anyhow::Context;
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
    /// Folder with default.toml and <profile>.toml.
    #[arg(
        long,
        global = true,
        env = "CARDGATE_CONFIG_DIR",
        default_value = "config"
    )]
    config_dir: PathBuf,
    /// Settings profile: config/<profile>.toml is layered over the defaults.
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
    /// Run on the embedded dev defaults: dev keys, demo users, 127.0.0.1.
    Dev(dev::DevArgs),
    /// Generate a signing key, its certificate, key ID and JWKS.
    Keygen(keygen::KeygenArgs),
    /// Read a password from standard input and print its argon2id hash for [[authn.static.users]].
    HashPassword,
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log.format == "json" {
        builder.json().init();
    } else {
        builder.init();
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

fn hash_password() -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("password (input is echoed; pipe it in to avoid that):");
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']);
    anyhow::ensure!(!password.is_empty(), "empty password");
    let hash = cardgate_authz_static::hash_password(&SecretString::from(password))?;
    println!("{hash}");
    Ok(())
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
            let settings = Settings::load(&settings_source(&cli, cli.profile.clone()))?;
            let store = settings
                .store()?
                .context("`database.url` (DATABASE_URL or CARDGATE__DATABASE__URL) is not set")?;
            store.migrate().await?;
            store.bootstrap().await?;
            eprintln!("migrations applied");
            Ok(())
        }
        Command::Keygen(args) => keygen::run(args),
        Command::HashPassword => hash_password(),
    }
}
