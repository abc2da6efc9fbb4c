//! `cardgate dev`: the embedded default. A private PostgreSQL started from the machine's
//! binaries (data under the data directory), migrated and seeded with demo data; dev keys made
//! on first run; a registry `config.yml` snippet and the demo credentials printed; served on
//! 127.0.0.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cardgate_authz::Credentials;
use cardgate_server::Settings;
use cardgate_store::embedded::{EmbeddedPostgres, reachable};
use cardgate_store::{ADMIN_SLUG, CardType, LinkVerb, NewCard, Slug, Store};
use cardgate_token::SigningAlgorithm;
use secrecy::SecretString;
use serde_json::json;
use time::OffsetDateTime;

use crate::keygen::KeyFiles;

#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// Where the dev keys and the private PostgreSQL's data are kept between runs.
    #[arg(long, default_value = ".cardgate-dev")]
    pub data_dir: PathBuf,
}

/// The demo accounts: published, for local use only. Their passwords are `<name>-dev-password`.
/// (name, what they may do)
const DEMO_USERS: [(&str, &str); 7] = [
    ("alice", "owner of acme: pull, push, delete, * on acme/*"),
    ("bob", "maintainer of acme: pull, push, delete"),
    (
        "carol",
        "developer of acme: pull, push (first pushes create images)",
    ),
    ("dave", "viewer of acme: pull"),
    ("gina", "owner of globex"),
    (
        "ci-robot",
        "robot: pull and push on acme/web only (explicit grant)",
    ),
    ("admin", "user-admin: everything, the catalog included"),
];

fn demo_password(user: &str) -> String {
    format!("{user}-dev-password")
}

/// Seeds the demo policy once (when `org-acme` is missing).
async fn seed(store: &Store) -> anyhow::Result<()> {
    if store.card_by_slug("org-acme").await?.is_some() {
        return Ok(());
    }
    let admin = store
        .card_by_slug(ADMIN_SLUG)
        .await?
        .context("the store is not bootstrapped")?;
    let acme = store
        .create(
            &admin,
            NewCard::new(CardType::Org, "org-acme", json!({})).with_name("Acme"),
        )
        .await?;
    let globex = store
        .create(
            &admin,
            NewCard::new(CardType::Org, "org-globex", json!({})).with_name("Globex"),
        )
        .await?;
    let mut users = Vec::new();
    for (name, _) in DEMO_USERS {
        let card = match store.card_by_slug(&Slug::user(name)).await? {
            Some(existing) => existing,
            None => {
                // The robot belongs to acme, as `cardgate admin robots create` makes them.
                let new = if name == "ci-robot" {
                    NewCard::new(
                        CardType::User,
                        Slug::user(name),
                        json!({"roles": ["user-default"], "robot": true}),
                    )
                    .with_markers(vec!["org-acme".to_owned()])
                } else {
                    NewCard::new(
                        CardType::User,
                        Slug::user(name),
                        json!({"roles": ["user-default"]}),
                    )
                };
                store.create(&admin, new).await?
            }
        };
        let hash = cardgate_password::hash(&SecretString::from(demo_password(name))).await?;
        store.set_password(&admin, &card, &hash).await?;
        users.push((name, card));
    }
    let user = |name: &str| {
        users
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c.clone())
            .context("demo user")
    };
    for (org, name, role) in [
        (&acme, "alice", "owner"),
        (&acme, "bob", "maintainer"),
        (&acme, "carol", "developer"),
        (&acme, "dave", "viewer"),
        (&globex, "gina", "owner"),
    ] {
        store
            .link(
                &admin,
                org,
                LinkVerb::HasMember,
                &user(name)?,
                json!({"role": role}),
            )
            .await?;
    }
    let image = |repository: &str, org: &str, public: bool| {
        NewCard::new(
            CardType::Image,
            Slug::image(repository),
            json!({"repository": repository, "public": public}),
        )
        .with_name(repository)
        .with_markers(vec![org.to_owned()])
    };
    let web = store
        .create(&admin, image("acme/web", "org-acme", false))
        .await?;
    store
        .create(&admin, image("acme/base", "org-acme", true))
        .await?;
    store
        .create(&admin, image("globex/site", "org-globex", false))
        .await?;
    store
        .link(
            &admin,
            &user("ci-robot")?,
            LinkVerb::HasAccessTo,
            &web,
            json!({"actions": ["pull", "push"]}),
        )
        .await?;
    Ok(())
}

/// Where the private cluster lives: under the data directory, unless the `postgres` user
/// cannot reach it (a checkout under a 0700 home), then under /var/tmp.
fn cluster_dir(data_dir: &Path) -> PathBuf {
    let local = data_dir.join("postgres");
    if reachable(&local) {
        return local;
    }
    let tag: String = data_dir
        .display()
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    PathBuf::from("/var/tmp").join(format!("cardgate-dev{tag}"))
}

pub async fn prepare(
    mut settings: Settings,
    args: &DevArgs,
) -> anyhow::Result<(Settings, Option<EmbeddedPostgres>)> {
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
    let files = KeyFiles::new(&data_dir, &issuer)?;
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

    // A database URL given by the user wins over the private cluster.
    let cluster = if settings.database.url.is_some() {
        None
    } else {
        let dir = cluster_dir(&data_dir);
        let cluster =
            tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&dir, false)).await??;
        cluster.ensure_database("cardgate")?;
        settings.database.url = Some(SecretString::from(cluster.url("cardgate")));
        eprintln!("private PostgreSQL on 127.0.0.1:{}", cluster.port());
        Some(cluster)
    };
    let store = settings.store()?.context("no database")?;
    store.migrate().await?;
    store.bootstrap().await?;
    seed(&store).await?;
    settings.database.migrate = false;

    let (authn, _) = cardgate_server::plugins::chains(&settings, Some(&store))?;
    for (user, _) in DEMO_USERS {
        authn
            .authenticate(&Credentials::Password {
                username: user.to_owned(),
                password: SecretString::from(demo_password(user)),
            })
            .await
            .with_context(|| format!("demo user `{user}` does not authenticate"))?;
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
    println!("Demo credentials (password = <name>-dev-password; anyone may pull acme/base):");
    for (user, rights) in DEMO_USERS {
        println!("  {user} / {}   {rights}", demo_password(user));
    }
    println!();
    Ok((settings, cluster))
}
