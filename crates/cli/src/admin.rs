//! `cardgate admin ...`: the admin API from the command line. Readable tables by default,
//! the API's JSON with `--json`. The session token comes from `CARDGATE_TOKEN` or a file;
//! passwords from standard input or a prompt, never from the command line.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The cardgate server.
    #[arg(long, env = "CARDGATE_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A file holding the session token (what `login --save` writes); `CARDGATE_TOKEN` wins.
    #[arg(long, env = "CARDGATE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Log in with a password (read from standard input or a prompt); prints the token.
    Login {
        /// `alice` or `user-alice`.
        user: String,
        /// Write the token to this file (mode 0600), for `--token-file`, instead of printing it.
        #[arg(long)]
        save: Option<PathBuf>,
    },
    /// Revoke the current session.
    Logout,
    /// Who the token belongs to.
    Whoami,
    #[command(subcommand)]
    Orgs(OrgsCommand),
    #[command(subcommand)]
    Members(MembersCommand),
    #[command(subcommand)]
    Users(UsersCommand),
    #[command(subcommand)]
    Robots(RobotsCommand),
    #[command(subcommand)]
    Tokens(TokensCommand),
    #[command(subcommand)]
    Sessions(SessionsCommand),
    #[command(subcommand)]
    Images(ImagesCommand),
    #[command(subcommand)]
    Grants(GrantsCommand),
    #[command(subcommand)]
    Roles(RolesCommand),
    /// The audit trail, newest first.
    Events {
        /// Only events about this card (id).
        #[arg(long)]
        target: Option<String>,
        /// Only events by this user card (id).
        #[arg(long)]
        actor: Option<String>,
        /// RFC 3339 time: only events at or after.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339 time: only events before.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Why an account is granted or denied each action of a scope.
    Explain {
        /// The account; `""` for an anonymous request.
        account: String,
        /// One scope, e.g. `repository:acme/web:pull,push`.
        scope: String,
    },
}

/// The revision an update is meant for.
#[derive(Debug, Args)]
struct RevisionArg {
    /// Change the card only if it is still at this revision (as listed); otherwise the server
    /// refuses (412) and nothing changes. Without it, the current revision is read first.
    #[arg(long)]
    revision: Option<i64>,
}

impl RevisionArg {
    /// The `If-Match` value: the given revision, else the card's current one.
    async fn or_current(
        &self,
        current: impl Future<Output = anyhow::Result<String>>,
    ) -> anyhow::Result<String> {
        match self.revision {
            Some(revision) => Ok(format!("\"{revision}\"")),
            None => current.await,
        }
    }
}

/// Paging of listings.
#[derive(Debug, Args)]
struct PageArgs {
    /// Start after this slug.
    #[arg(long)]
    after: Option<String>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

#[derive(Debug, Subcommand)]
enum OrgsCommand {
    /// The orgs you may look inside.
    List(PageArgs),
    /// Create an org (platform admins).
    Create { name: String },
}

#[derive(Debug, Subcommand)]
enum MembersCommand {
    /// An org's members and their roles.
    List { org: String },
    /// Add a member: owner, maintainer, developer or viewer.
    Add {
        org: String,
        user: String,
        role: String,
    },
    /// Change a member's role.
    SetRole {
        org: String,
        user: String,
        role: String,
    },
    /// Remove a member.
    Remove { org: String, user: String },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// All users (platform admins).
    List(PageArgs),
    /// One user.
    Show { user: String },
    /// Create a user (platform admins).
    Create {
        name: String,
        /// A platform role (repeatable), e.g. `user-default`, `platform-admin`.
        #[arg(long = "role", default_values_t = ["user-default".to_owned()])]
        roles: Vec<String>,
    },
    /// Replace a user's platform roles (platform admins).
    SetRoles {
        user: String,
        #[arg(required = true)]
        roles: Vec<String>,
        #[command(flatten)]
        revision: RevisionArg,
    },
    /// Set a user's password, read from standard input or a prompt.
    Password { user: String },
    /// Deactivate a user.
    Deactivate { user: String },
}

#[derive(Debug, Subcommand)]
enum RobotsCommand {
    /// An org's robots (owners).
    List {
        org: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create a robot user in an org (owners): it reaches only what it is granted.
    Create { org: String, name: String },
}

#[derive(Debug, Subcommand)]
enum TokensCommand {
    /// Open a token for a user or robot; prints the secret once.
    Create {
        user: String,
        /// Lifetime in seconds (default one year).
        #[arg(long)]
        expires_in: Option<u64>,
        /// A JSON Schema narrowing what the token reaches.
        #[arg(long)]
        scope: Option<String>,
    },
    /// A user's tokens and sessions, without secrets.
    List { user: String },
    /// Revoke a token or session by id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// A user's sessions, tokens and refresh tokens, without secrets.
    List { user: String },
    /// Revoke a session, token or refresh token by id.
    Revoke { id: String },
}

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// An org's images.
    List {
        org: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Create the image of a repository.
    Create {
        repository: String,
        #[arg(long)]
        public: bool,
    },
    /// Open an image to the public (`true`) or close it (`false`).
    Public {
        repository: String,
        #[arg(action = clap::ArgAction::Set)]
        public: bool,
        #[command(flatten)]
        revision: RevisionArg,
    },
    /// Deactivate an image.
    Deactivate {
        repository: String,
        #[command(flatten)]
        revision: RevisionArg,
    },
}

#[derive(Debug, Subcommand)]
enum GrantsCommand {
    /// The explicit grants on a repository.
    List { repository: String },
    /// Grant a user or org (`user-ci`, `org-acme`) actions on a repository.
    Add {
        holder: String,
        repository: String,
        /// Comma-separated: pull, push, delete, *.
        actions: String,
    },
    /// Revoke a grant.
    Revoke { holder: String, repository: String },
}

#[derive(Debug, Subcommand)]
enum RolesCommand {
    /// All role cards (platform admins).
    List(PageArgs),
    /// Create a role card (platform admins).
    Create {
        name: String,
        /// The read schema (JSON Schema, or `true`).
        #[arg(long)]
        read: String,
        /// Holders may list the registry catalog.
        #[arg(long)]
        catalog: bool,
    },
    /// Replace a role's read schema and catalog flag.
    Update {
        name: String,
        #[arg(long)]
        read: String,
        #[arg(long)]
        catalog: bool,
        #[command(flatten)]
        revision: RevisionArg,
    },
    /// Deactivate a role.
    Deactivate {
        name: String,
        #[command(flatten)]
        revision: RevisionArg,
    },
}

/// The admin API at `url`, called with `token`.
struct Client {
    url: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        Ok(self.send(method, path, body, None).await?.1)
    }

    /// Sends a request; returns the `ETag` and the JSON body (Null when empty), or the API's
    /// error as the error.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> anyhow::Result<(Option<String>, Value)> {
        let url = format!("{}/v1/admin{path}", self.url.trim_end_matches('/'));
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(revision) = if_match {
            request = request.header(reqwest::header::IF_MATCH, revision);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{url} does not answer"))?;
        let status = response.status();
        let etag = response
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if !status.is_success() {
            let description = value["error_description"].as_str().unwrap_or(&text);
            if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
                bail!("{status}: {description} (log in, then set CARDGATE_TOKEN or --token-file)");
            }
            bail!("{method} {path}: {status}: {description}");
        }
        Ok((etag, value))
    }

    /// The revision (as an `If-Match` value) of the first card in the paged `listing` that
    /// `wanted` picks.
    async fn revision_in(
        &self,
        listing: &str,
        wanted: impl Fn(&Value) -> bool,
        what: &str,
    ) -> anyhow::Result<String> {
        let mut after: Option<String> = None;
        loop {
            let mut path = format!("{listing}?limit=1000");
            if let Some(after) = &after {
                path.push_str(&format!("&after={}", encode(after)));
            }
            let page = self.call(Method::GET, &path, None).await?;
            let cards = page["cards"].as_array().cloned().unwrap_or_default();
            if let Some(card) = cards.iter().find(|c| wanted(c)) {
                return Ok(format!("\"{}\"", card["revision"]));
            }
            match cards.last() {
                Some(last) if cards.len() == 1000 => after = last["slug"].as_str().map(Into::into),
                _ => bail!("no active {what}"),
            }
        }
    }

    /// The revision of the image of `repository`, from its org's listing.
    async fn image_revision(&self, repository: &str) -> anyhow::Result<String> {
        let org = repository
            .split_once('/')
            .map(|(org, _)| org)
            .with_context(|| format!("`{repository}` is not <org>/<name>"))?;
        self.revision_in(
            &format!("/orgs/{}/images", encode(org)),
            |c| c["data"]["repository"] == repository,
            &format!("image for {repository}"),
        )
        .await
    }

    /// The revision of the role `role-<name>`, from the role listing.
    async fn role_revision(&self, name: &str) -> anyhow::Result<String> {
        let slug = format!("role-{name}");
        self.revision_in("/roles", |c| c["slug"] == slug.as_str(), &slug)
            .await
    }
}

fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn page_query(page: &PageArgs) -> String {
    let mut query = format!("?limit={}", page.limit);
    if let Some(after) = &page.after {
        query.push_str(&format!("&after={}", encode(after)));
    }
    query
}

/// A password from standard input (one line), or from a prompt without echo on a terminal.
fn read_password(prompt: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)?
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    anyhow::ensure!(!password.is_empty(), "empty password");
    Ok(password)
}

/// The session token: `CARDGATE_TOKEN`, else the token file.
fn token(args: &AdminArgs) -> anyhow::Result<Option<String>> {
    if let Ok(token) = std::env::var("CARDGATE_TOKEN")
        && !token.trim().is_empty()
    {
        return Ok(Some(token.trim().to_owned()));
    }
    match &args.token_file {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(token) => Ok(Some(token.trim().to_owned())),
            // Not logged in yet: `login --save` writes it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read the token file {}", path.display()))
            }
        },
        None => Ok(None),
    }
}

/// Writes `token` to `path`, readable by its owner only.
fn save_token(path: &Path, token: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // An existing file keeps its mode on open: tighten it before the token goes in.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{token}")?;
    Ok(())
}

/// The longest cell of a table; `--json` shows everything.
const MAX_CELL: usize = 100;

fn cell(value: &Value) -> String {
    let text = text(value);
    if text.chars().count() > MAX_CELL {
        let cut: String = text.chars().take(MAX_CELL - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Rows of `list` (an array in `body`) as a table of `columns`: (header, JSON pointer).
fn table(body: &Value, list: &str, columns: &[(&str, &str)]) -> String {
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    table.set_header(columns.iter().map(|(header, _)| *header));
    for row in body[list].as_array().into_iter().flatten() {
        table.add_row(
            columns
                .iter()
                .map(|(_, pointer)| cell(row.pointer(pointer).unwrap_or(&Value::Null))),
        );
    }
    table.to_string()
}

const CARD_COLUMNS: [(&str, &str); 3] = [
    ("SLUG", "/slug"),
    ("NAME", "/name"),
    ("REVISION", "/revision"),
];

/// How to print an answer: as a table, a line, or nothing.
enum Show {
    Table(&'static str, &'static [(&'static str, &'static str)]),
    Card,
    Done(String),
}

pub async fn run(args: &AdminArgs) -> anyhow::Result<()> {
    let client = Client {
        url: args.url.clone(),
        token: token(args)?,
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()?,
    };
    let (body, show) = match &args.command {
        AdminCommand::Login { user, save } => {
            let password = read_password(&format!("password of {user}: "))?;
            let body = client
                .call(
                    Method::POST,
                    "/login",
                    Some(json!({"username": user, "password": password})),
                )
                .await?;
            let token = body["token"].as_str().context("the answer has no token")?;
            if let Some(path) = save {
                save_token(path, token)?;
            }
            eprintln!(
                "logged in as {} until {}",
                text(&body["user"]),
                text(&body["expires_at"])
            );
            // Saved: not printed too (terminals and CI logs keep what is printed).
            let shown = if save.is_some() {
                String::new()
            } else if args.json {
                serde_json::to_string_pretty(&body)?
            } else {
                token.to_owned()
            };
            (Value::Null, Show::Done(shown))
        }
        AdminCommand::Logout => {
            client.call(Method::POST, "/logout", None).await?;
            (Value::Null, Show::Done("logged out".into()))
        }
        AdminCommand::Whoami => {
            let body = client.call(Method::GET, "/whoami", None).await?;
            let line = format!(
                "{}{}",
                text(&body["user"]),
                if body["platform_admin"] == json!(true) {
                    " (platform admin)"
                } else {
                    ""
                }
            );
            let memberships = table(&body, "memberships", &[("ORG", "/org"), ("ROLE", "/role")]);
            (body, Show::Done(format!("{line}\n{memberships}")))
        }
        AdminCommand::Orgs(OrgsCommand::List(page)) => (
            client
                .call(Method::GET, &format!("/orgs{}", page_query(page)), None)
                .await?,
            Show::Table("cards", &CARD_COLUMNS),
        ),
        AdminCommand::Orgs(OrgsCommand::Create { name }) => (
            client
                .call(Method::POST, "/orgs", Some(json!({"name": name})))
                .await?,
            Show::Card,
        ),
        AdminCommand::Members(command) => members(&client, command).await?,
        AdminCommand::Users(command) => users(&client, command).await?,
        AdminCommand::Robots(RobotsCommand::List { org, page }) => (
            client
                .call(
                    Method::GET,
                    &format!("/orgs/{}/robots{}", encode(org), page_query(page)),
                    None,
                )
                .await?,
            Show::Table("cards", &CARD_COLUMNS),
        ),
        AdminCommand::Robots(RobotsCommand::Create { org, name }) => (
            client
                .call(
                    Method::POST,
                    &format!("/orgs/{}/robots", encode(org)),
                    Some(json!({"name": name})),
                )
                .await?,
            Show::Card,
        ),
        AdminCommand::Tokens(TokensCommand::Create {
            user,
            expires_in,
            scope,
        }) => {
            let scope = scope
                .as_deref()
                .map(serde_json::from_str::<Value>)
                .transpose()
                .context("--scope is not JSON")?;
            let mut request = json!({});
            if let Some(seconds) = expires_in {
                request["expires_in_seconds"] = json!(seconds);
            }
            if let Some(scope) = scope {
                request["scope"] = scope;
            }
            let body = client
                .call(
                    Method::POST,
                    &format!("/users/{}/tokens", encode(user)),
                    Some(request),
                )
                .await?;
            eprintln!(
                "token {} until {} (the secret is shown only now)",
                text(&body["id"]),
                text(&body["expires_at"])
            );
            let token = text(&body["token"]);
            (body, Show::Done(token))
        }
        AdminCommand::Tokens(TokensCommand::List { user })
        | AdminCommand::Sessions(SessionsCommand::List { user }) => (
            client
                .call(
                    Method::GET,
                    &format!("/users/{}/sessions", encode(user)),
                    None,
                )
                .await?,
            Show::Table(
                "sessions",
                &[
                    ("ID", "/id"),
                    ("KIND", "/kind"),
                    ("CLIENT", "/client_id"),
                    ("EXPIRES", "/expires_at"),
                    ("SCOPED", "/scoped"),
                ],
            ),
        ),
        AdminCommand::Tokens(TokensCommand::Revoke { id })
        | AdminCommand::Sessions(SessionsCommand::Revoke { id }) => {
            client
                .call(Method::DELETE, &format!("/sessions/{}", encode(id)), None)
                .await?;
            (Value::Null, Show::Done(format!("revoked {id}")))
        }
        AdminCommand::Images(command) => images(&client, command).await?,
        AdminCommand::Grants(command) => grants(&client, command).await?,
        AdminCommand::Roles(command) => roles(&client, command).await?,
        AdminCommand::Events {
            target,
            actor,
            since,
            until,
            limit,
        } => {
            let mut query = format!("?limit={limit}");
            for (name, value) in [
                ("target", target),
                ("actor", actor),
                ("since", since),
                ("until", until),
            ] {
                if let Some(value) = value {
                    query.push_str(&format!("&{name}={}", encode(value)));
                }
            }
            (
                client
                    .call(Method::GET, &format!("/events{query}"), None)
                    .await?,
                Show::Table(
                    "events",
                    &[
                        ("TIME", "/data/timestamp"),
                        ("EVENT", "/type"),
                        ("ACTOR", "/actor"),
                        ("TARGET", "/target"),
                        ("CHANGE", "/data/payload"),
                    ],
                ),
            )
        }
        AdminCommand::Explain { account, scope } => {
            let body = client
                .call(
                    Method::GET,
                    &format!(
                        "/explain?account={}&scope={}",
                        encode(account),
                        encode(scope)
                    ),
                    None,
                )
                .await?;
            let mut lines = Vec::new();
            for verdict in body["actions"].as_array().into_iter().flatten() {
                let granted = verdict["granted"] == json!(true);
                lines.push(format!(
                    "{}: {}",
                    text(&verdict["action"]),
                    if granted { "granted" } else { "denied" }
                ));
                for reason in verdict["reasons"].as_array().into_iter().flatten() {
                    lines.push(format!("  - {}", text(reason)));
                }
            }
            let out = format!(
                "{} on {}\n{}",
                text(&body["actor"]),
                scope,
                lines.join("\n")
            );
            (body, Show::Done(out))
        }
    };
    let out = if args.json {
        if body.is_null() {
            String::new()
        } else {
            serde_json::to_string_pretty(&body)?
        }
    } else {
        match show {
            Show::Table(list, columns) => table(&body, list, columns),
            Show::Card => format!(
                "{} (revision {})",
                text(&body["slug"]),
                text(&body["revision"])
            ),
            Show::Done(line) => line,
        }
    };
    if !out.is_empty() {
        println!("{out}");
    }
    Ok(())
}

async fn members(client: &Client, command: &MembersCommand) -> anyhow::Result<(Value, Show)> {
    Ok(match command {
        MembersCommand::List { org } => (
            client
                .call(Method::GET, &format!("/orgs/{}/members", encode(org)), None)
                .await?,
            Show::Table("members", &[("USER", "/user"), ("ROLE", "/role")]),
        ),
        MembersCommand::Add { org, user, role } => {
            client
                .call(
                    Method::POST,
                    &format!("/orgs/{}/members", encode(org)),
                    Some(json!({"user": user, "role": role})),
                )
                .await?;
            (
                Value::Null,
                Show::Done(format!("{user} is {role} of {org}")),
            )
        }
        MembersCommand::SetRole { org, user, role } => {
            client
                .call(
                    Method::PUT,
                    &format!("/orgs/{}/members/{}", encode(org), encode(user)),
                    Some(json!({"role": role})),
                )
                .await?;
            (
                Value::Null,
                Show::Done(format!("{user} is {role} of {org}")),
            )
        }
        MembersCommand::Remove { org, user } => {
            client
                .call(
                    Method::DELETE,
                    &format!("/orgs/{}/members/{}", encode(org), encode(user)),
                    None,
                )
                .await?;
            (Value::Null, Show::Done(format!("{user} left {org}")))
        }
    })
}

const USER_COLUMNS: [(&str, &str); 5] = [
    ("SLUG", "/slug"),
    ("ROLES", "/data/roles"),
    ("ROBOT", "/data/robot"),
    ("MARKERS", "/markers"),
    ("REVISION", "/revision"),
];

async fn users(client: &Client, command: &UsersCommand) -> anyhow::Result<(Value, Show)> {
    Ok(match command {
        UsersCommand::List(page) => (
            client
                .call(Method::GET, &format!("/users{}", page_query(page)), None)
                .await?,
            Show::Table("cards", &USER_COLUMNS),
        ),
        UsersCommand::Show { user } => {
            let card = client
                .call(Method::GET, &format!("/users/{}", encode(user)), None)
                .await?;
            (
                json!({"cards": [card]}),
                Show::Table("cards", &USER_COLUMNS),
            )
        }
        UsersCommand::Create { name, roles } => (
            client
                .call(
                    Method::POST,
                    "/users",
                    Some(json!({"name": name, "roles": roles})),
                )
                .await?,
            Show::Card,
        ),
        UsersCommand::SetRoles {
            user,
            roles,
            revision,
        } => {
            let path = format!("/users/{}", encode(user));
            let current = async {
                client
                    .send(Method::GET, &path, None, None)
                    .await?
                    .0
                    .with_context(|| format!("{path} has no revision"))
            };
            let revision = revision.or_current(current).await?;
            (
                client
                    .send(
                        Method::PUT,
                        &format!("{path}/roles"),
                        Some(json!({"roles": roles})),
                        Some(&revision),
                    )
                    .await?
                    .1,
                Show::Card,
            )
        }
        UsersCommand::Password { user } => {
            let password = read_password(&format!("new password of {user}: "))?;
            client
                .call(
                    Method::PUT,
                    &format!("/users/{}/password", encode(user)),
                    Some(json!({"password": password})),
                )
                .await?;
            (Value::Null, Show::Done(format!("password of {user} set")))
        }
        UsersCommand::Deactivate { user } => (
            client
                .call(Method::DELETE, &format!("/users/{}", encode(user)), None)
                .await?,
            Show::Card,
        ),
    })
}

async fn images(client: &Client, command: &ImagesCommand) -> anyhow::Result<(Value, Show)> {
    Ok(match command {
        ImagesCommand::List { org, page } => (
            client
                .call(
                    Method::GET,
                    &format!("/orgs/{}/images{}", encode(org), page_query(page)),
                    None,
                )
                .await?,
            Show::Table(
                "cards",
                &[
                    ("REPOSITORY", "/data/repository"),
                    ("PUBLIC", "/data/public"),
                    ("REVISION", "/revision"),
                ],
            ),
        ),
        ImagesCommand::Create { repository, public } => (
            client
                .call(
                    Method::POST,
                    "/images",
                    Some(json!({"repository": repository, "public": public})),
                )
                .await?,
            Show::Card,
        ),
        ImagesCommand::Public {
            repository,
            public,
            revision,
        } => {
            let revision = revision
                .or_current(client.image_revision(repository))
                .await?;
            let body = json!({"repository": repository, "public": public});
            (
                client
                    .send(Method::PATCH, "/images", Some(body), Some(&revision))
                    .await?
                    .1,
                Show::Card,
            )
        }
        ImagesCommand::Deactivate {
            repository,
            revision,
        } => {
            let revision = revision
                .or_current(client.image_revision(repository))
                .await?;
            let path = format!("/images?repository={}", encode(repository));
            (
                client
                    .send(Method::DELETE, &path, None, Some(&revision))
                    .await?
                    .1,
                Show::Card,
            )
        }
    })
}

async fn grants(client: &Client, command: &GrantsCommand) -> anyhow::Result<(Value, Show)> {
    Ok(match command {
        GrantsCommand::List { repository } => (
            client
                .call(
                    Method::GET,
                    &format!("/grants?repository={}", encode(repository)),
                    None,
                )
                .await?,
            Show::Table("grants", &[("HOLDER", "/holder"), ("ACTIONS", "/actions")]),
        ),
        GrantsCommand::Add {
            holder,
            repository,
            actions,
        } => {
            let actions: Vec<&str> = actions.split(',').map(str::trim).collect();
            client
                .call(
                    Method::POST,
                    "/grants",
                    Some(json!({"holder": holder, "repository": repository, "actions": actions})),
                )
                .await?;
            (
                Value::Null,
                Show::Done(format!(
                    "granted {holder} {} on {repository}",
                    actions.join(",")
                )),
            )
        }
        GrantsCommand::Revoke { holder, repository } => {
            client
                .call(
                    Method::DELETE,
                    &format!(
                        "/grants?holder={}&repository={}",
                        encode(holder),
                        encode(repository)
                    ),
                    None,
                )
                .await?;
            (
                Value::Null,
                Show::Done(format!("revoked the grant of {holder} on {repository}")),
            )
        }
    })
}

async fn roles(client: &Client, command: &RolesCommand) -> anyhow::Result<(Value, Show)> {
    let schema = |read: &str| serde_json::from_str::<Value>(read).context("--read is not JSON");
    Ok(match command {
        RolesCommand::List(page) => (
            client
                .call(Method::GET, &format!("/roles{}", page_query(page)), None)
                .await?,
            Show::Table(
                "cards",
                &[
                    ("SLUG", "/slug"),
                    ("READ", "/data/read"),
                    ("CATALOG", "/data/catalog"),
                    ("REVISION", "/revision"),
                ],
            ),
        ),
        RolesCommand::Create {
            name,
            read,
            catalog,
        } => (
            client
                .call(
                    Method::POST,
                    "/roles",
                    Some(json!({"name": name, "read": schema(read)?, "catalog": catalog})),
                )
                .await?,
            Show::Card,
        ),
        RolesCommand::Update {
            name,
            read,
            catalog,
            revision,
        } => {
            let revision = revision.or_current(client.role_revision(name)).await?;
            (
                client
                    .send(
                        Method::PUT,
                        &format!("/roles/{}", encode(name)),
                        Some(json!({"read": schema(read)?, "catalog": catalog})),
                        Some(&revision),
                    )
                    .await?
                    .1,
                Show::Card,
            )
        }
        RolesCommand::Deactivate { name, revision } => {
            let revision = revision.or_current(client.role_revision(name)).await?;
            (
                client
                    .send(
                        Method::DELETE,
                        &format!("/roles/{}", encode(name)),
                        None,
                        Some(&revision),
                    )
                    .await?
                    .1,
                Show::Card,
            )
        }
    })
}
