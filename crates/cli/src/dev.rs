//! `cardgate dev`: the embedded default. Users and ACL from `config/dev.toml`, dev keys made on
//! first run under a data directory, a registry `config.yml` snippet and the demo credentials
//! printed, served on 127.0.0.1.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use cardgate_authz::Credentials;
use cardgate_server::Settings;
use cardgate_token::SigningAlgorithm;
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::keygen::KeyFiles;

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Where the dev keys are kept between runs.
    #[arg(long, default_value = ".cardgate-dev")]
    pub data_dir: PathBuf,
}

/// The demo accounts of `config/dev.toml`: published, for local use only. Checked against the
/// configured hashes at every start, so what is printed always works.
const DEMO_CREDENTIALS: [(&str, &str, &str); 2] = [
    (
        "alice",
        "alice-dev-password",
        "pull, push, delete on acme/**",
    ),
    ("bob", "bob-dev-password", "pull on acme/**"),
];

pub async fn prepare(mut settings: Settings, args: &DevArgs) -> anyhow::Result<Settings> {
    let listen: SocketAddr = settings.server.listen.parse().with_context(|| {
        format!(
            "`server.listen` = `{}` is not an IP:port",
            settings.server.listen
        )
    })?;
    anyhow::ensure!(
        listen.ip().is_loopback(),
        "cardgate dev serves on loopback only; `server.listen` is {listen}"
    );
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    let issuer = settings.token.issuer.clone();
    let files = KeyFiles::new(&data_dir, &issuer);
    if !files.key.exists() {
        let generated = cardgate_token::generate(
            SigningAlgorithm::ES256,
            &issuer,
            OffsetDateTime::now_utc(),
            3650,
        )?;
        files.write(&generated, true)?;
        eprintln!("generated dev keys in {}", data_dir.display());
    }
    settings.token.key = Some(SecretString::from(files.key.display().to_string()));
    settings.token.certificate = Some(files.certificate.display().to_string());
    settings.token.kid = None;

    let authn = settings.authn_chain()?;
    for (user, password, _) in DEMO_CREDENTIALS {
        authn
            .authenticate(&Credentials::Password {
                username: user.to_owned(),
                password: SecretString::from(password),
            })
            .await
            .with_context(|| {
                format!("demo user `{user}` does not authenticate with config/dev.toml")
            })?;
    }

    let realm = format!(
        "http://{}{}",
        settings.server.listen,
        settings.realm_path()?
    );
    println!("cardgate dev: tokens at {realm}");
    println!();
    println!("Registry config.yml (docker-registry serve config.yml):");
    println!("  auth:");
    println!("    token:");
    println!("      realm: {realm}");
    println!("      service: {}", settings.token.service);
    println!("      issuer: {issuer}");
    println!("      rootcertbundle: {}", files.certificate.display());
    println!(
        "      # registry v3 (open-balena-registry) also reads: jwks: {}",
        files.jwks.display()
    );
    println!();
    println!("Demo credentials (config/dev.toml; anonymous may pull library/*):");
    for (user, password, rights) in DEMO_CREDENTIALS {
        println!("  {user} / {password}   {rights}");
    }
    println!();
    Ok(settings)
}
