//! `cardgate admin ...`: the admin API from the command line. Readable tables by default,
//! the API's JSON with `--json`. The session token comes from `CARDGATE_TOKEN` or a file;
//! passwords from standard input or a prompt, never from the command line.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use cardgate_admin::api::{
    ActivityQuery, CardList, CardRef, CardView, Document, ErrorBody, EventList, EventQuery,
    ExplainAnswer, ExplainQuery, GrantBody, GrantList, GrantQuery, ImageChange, ImageQuery, Login,
    LoginAnswer, MemberList, Name, NewImage, NewMember, NewOrg, NewPassword, NewRobot, NewRole,
    NewToken, NewUser, PageQuery, QuotaBody, RepositoryQuery, RoleBody, RoleChange, Roles,
    SessionList, SessionToken, WhoAmI,
};
use cardgate_admin::{MAX_PAGE, MIN_PAGE};
use cardgate_store::{MembershipRole, Slug};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

/// The server when none is named.
const DEFAULT_URL: &str = "http://127.0.0.1:8080";

#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The cardgate server.
    #[arg(long, global = true, env = "CARDGATE_URL", default_value = DEFAULT_URL)]
    url: String,
    /// A file holding the session token (what `login --save` writes); `CARDGATE_TOKEN` wins.
    #[arg(long, global = true, env = "CARDGATE_TOKEN_FILE")]
    token_file: Option<PathBuf>,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
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
    /// Sessions, CI tokens and refresh tokens.
    #[command(subcommand, visible_alias = "sessions")]
    Tokens(TokensCommand),
    #[command(subcommand)]
    Images(ImagesCommand),
    #[command(subcommand)]
    Grants(GrantsCommand),
    #[command(subcommand)]
    Roles(RolesCommand),
    /// The audit trail, newest first.
    Events {
        /// Only events about this card: its slug as events show it (`org-acme`) or its id.
        #[arg(long, value_parser = card_ref)]
        target: Option<CardRef>,
        /// Only events by this user: its slug as events show it (`user-alice`) or its id.
        #[arg(long, value_parser = card_ref)]
        actor: Option<CardRef>,
        /// RFC 3339 time: only events at or after.
        #[arg(long, value_parser = rfc3339)]
        since: Option<OffsetDateTime>,
        /// RFC 3339 time: only events before.
        #[arg(long, value_parser = rfc3339)]
        until: Option<OffsetDateTime>,
        /// At most this many events (1 to 1000).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(MIN_PAGE..=MAX_PAGE))]
        limit: i64,
    },
    /// What the registry reported: pulls, pushes and deletes.
    #[command(subcommand)]
    Registry(RegistryCommand),
    /// Org storage quotas and usage.
    #[command(subcommand)]
    Quota(QuotaCommand),
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

/// Paging of listings: a page is printed with the cursor of the next, if there may be more.
#[derive(Debug, Args)]
struct PageArgs {
    /// Start after this slug: the cursor of the next page that a listing printed.
    #[arg(long, value_parser = name)]
    after: Option<Name>,
    /// At most this many rows a page (1 to 1000; the server's default is 100).
    #[arg(long, value_parser = clap::value_parser!(i64).range(MIN_PAGE..=MAX_PAGE))]
    limit: Option<i64>,
    /// Every page, following the cursor to the end.
    #[arg(long)]
    all: bool,
}

impl PageArgs {
    fn query(&self, after: Option<Name>) -> PageQuery {
        PageQuery {
            after,
            limit: self.limit,
        }
    }
}

/// A name as the API takes it.
fn name(value: &str) -> anyhow::Result<Name> {
    Ok(Name::parse(value)?)
}

/// A card's slug or id, as the API takes it.
fn card_ref(value: &str) -> anyhow::Result<CardRef> {
    Ok(CardRef::parse(value)?)
}

/// An RFC 3339 time.
fn rfc3339(value: &str) -> anyhow::Result<OffsetDateTime> {
    Ok(OffsetDateTime::parse(value, &Rfc3339)?)
}

/// A JSON document, as the API stores it.
fn document(value: &str) -> anyhow::Result<Document> {
    let value: Value = serde_json::from_str(value).context("not JSON")?;
    Ok(Document::try_from(value)?)
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
        #[arg(value_parser = name)]
        user: Name,
        role: MembershipRole,
    },
    /// Change a member's role.
    SetRole {
        org: String,
        user: String,
        role: MembershipRole,
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
        /// A platform role (repeatable): `platform-admin` or an active role's name, such as
        /// `user-default`; without any, the server gives its default roles.
        #[arg(long = "role")]
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
        #[arg(long, value_parser = document)]
        scope: Option<Document>,
    },
    /// A user's sessions, tokens and refresh tokens, without secrets.
    List { user: String },
    /// Revoke a session, token or refresh token by id.
    Revoke { id: Uuid },
}

#[derive(Debug, Subcommand)]
enum ImagesCommand {
    /// An org's images.
    List {
        org: String,
        /// Only images whose name, after `<org>/`, starts with this.
        #[arg(long, short, value_parser = name)]
        query: Option<Name>,
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
enum RegistryCommand {
    /// Pulls, pushes and deletes, newest first (owners: their orgs' repositories).
    Activity {
        /// Only this org's repositories.
        #[arg(long)]
        org: Option<String>,
        /// Only this repository.
        #[arg(long)]
        repository: Option<String>,
        /// Only this account.
        #[arg(long)]
        actor: Option<String>,
        /// RFC 3339 time: only lines at or after.
        #[arg(long, value_parser = rfc3339)]
        since: Option<OffsetDateTime>,
        /// RFC 3339 time: only lines before.
        #[arg(long, value_parser = rfc3339)]
        until: Option<OffsetDateTime>,
        /// Only lines older than this id (the next page).
        #[arg(long)]
        before: Option<i64>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
    /// An image's tags as the registry reported them, and whether it is only reserved.
    Tags { repository: String },
}

#[derive(Debug, Subcommand)]
enum QuotaCommand {
    /// An org's quota, usage and whether it is over.
    Show { org: String },
    /// Set an org's quota in bytes, or `none` to remove it (platform admins).
    Set { org: String, bytes: String },
}

#[derive(Debug, Subcommand)]
enum GrantsCommand {
    /// The explicit grants on a repository.
    List { repository: String },
    /// Grant a user or org (`user-ci`, `org-acme`) actions on a repository.
    Add {
        #[arg(value_parser = name)]
        holder: Name,
        repository: String,
        /// Comma-separated: pull, push, delete, *.
        #[arg(value_delimiter = ',')]
        actions: Vec<String>,
    },
    /// Revoke a grant.
    Revoke {
        #[arg(value_parser = name)]
        holder: Name,
        repository: String,
    },
}

#[derive(Debug, Subcommand)]
enum RolesCommand {
    /// All role cards (platform admins).
    List(PageArgs),
    /// Create a role card (platform admins).
    Create {
        name: String,
        /// The read schema (JSON Schema, or `true`).
        #[arg(long, value_parser = document)]
        read: Document,
        /// Holders may list the registry catalog.
        #[arg(long)]
        catalog: bool,
    },
    /// Replace a role's read schema and catalog flag.
    Update {
        name: String,
        #[arg(long, value_parser = document)]
        read: Document,
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

/// No query, or no body.
const NONE: Option<&()> = None;

impl Client {
    /// Sends a request with the query `query` and the JSON body `body`, `If-Match: if_match`
    /// when given; returns the `ETag` and the answer, or the API's error as the error.
    async fn send<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: Option<&impl Serialize>,
        body: Option<&impl Serialize>,
        if_match: Option<&str>,
    ) -> anyhow::Result<(Option<String>, R)> {
        let url = format!("{}/v1/admin{path}", self.url.trim_end_matches('/'));
        let mut request = self.http.request(method.clone(), &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(query) = query {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
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
        if !status.is_success() {
            let description = serde_json::from_str::<ErrorBody>(&text)
                .map(|e| e.error_description)
                .unwrap_or(text);
            if status == StatusCode::UNAUTHORIZED && self.token.is_none() {
                bail!("{status}: {description} (log in, then set CARDGATE_TOKEN or --token-file)");
            }
            bail!("{method} {path}: {status}: {description}");
        }
        // No content reads as JSON `null`.
        let value: Value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON"))?
        };
        let answer = serde_json::from_value(value)
            .with_context(|| format!("{method} {path}: an answer of another shape"))?;
        Ok((etag, answer))
    }

    /// A `GET` with the query `query`.
    async fn get<R: DeserializeOwned>(
        &self,
        path: &str,
        query: Option<&impl Serialize>,
    ) -> anyhow::Result<R> {
        Ok(self.send(Method::GET, path, query, NONE, None).await?.1)
    }

    /// A request with the JSON body `body`.
    async fn call<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> anyhow::Result<R> {
        Ok(self.send(method, path, NONE, body, None).await?.1)
    }

    /// The cards of the listing `path` asked with the queries `query` makes of each page's
    /// cursor, from `after` on: one page, or every page when `all`; with the cursor of the
    /// page after the last one read.
    async fn pages<Q: Serialize>(
        &self,
        path: &str,
        mut after: Option<Name>,
        all: bool,
        query: impl Fn(Option<Name>) -> Q,
    ) -> anyhow::Result<CardList> {
        let mut cards = Vec::new();
        loop {
            let page: CardList = self.get(path, Some(&query(after.clone()))).await?;
            cards.extend(page.cards);
            match page.next {
                // A cursor that does not move would never end.
                Some(next) if all && after.as_ref().is_none_or(|a| a.as_str() != next) => {
                    after = Some(Name::parse(next)?);
                }
                next => return Ok(CardList { cards, next }),
            }
        }
    }

    /// The revision (as an `If-Match` value) of the first card in the listing `path` (asked
    /// with `query` for each page) that `wanted` picks.
    async fn revision_in<Q: Serialize>(
        &self,
        path: &str,
        query: impl Fn(Option<Name>) -> Q,
        wanted: impl Fn(&CardView) -> bool,
        what: &str,
    ) -> anyhow::Result<String> {
        let cards = self.pages(path, None, true, query).await?.cards;
        match cards.iter().find(|c| wanted(c)) {
            Some(card) => Ok(format!("\"{}\"", card.revision)),
            None => bail!("no active {what}"),
        }
    }

    /// The revision of the image of `repository`, from its org's listing.
    async fn image_revision(&self, repository: &str) -> anyhow::Result<String> {
        let (org, name) = repository
            .split_once('/')
            .with_context(|| format!("`{repository}` is not <org>/<name>"))?;
        let q = Name::parse(name)?;
        self.revision_in(
            &format!("/orgs/{}/images", encode(org)),
            |after| ImageQuery {
                after,
                limit: Some(MAX_PAGE),
                q: Some(q.clone()),
            },
            |c| c.data["repository"] == repository,
            &format!("image for {repository}"),
        )
        .await
    }

    /// The revision of the role `role-<name>`, from the role listing.
    async fn role_revision(&self, name: &str) -> anyhow::Result<String> {
        let slug: String = Slug::role(name).into();
        let query = |after| PageQuery {
            after,
            limit: Some(MAX_PAGE),
        };
        self.revision_in("/roles", query, |c| c.slug == slug, &slug)
            .await
    }
}

/// A path segment.
fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// An answer as JSON, for `--json` and tables.
fn json(answer: &impl Serialize) -> anyhow::Result<Value> {
    Ok(serde_json::to_value(answer)?)
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
            let login = Login {
                username: user.clone(),
                password,
            };
            let answer: LoginAnswer = client.call(Method::POST, "/login", Some(&login)).await?;
            if let Some(path) = save {
                save_token(path, &answer.token)?;
            }
            eprintln!("logged in as {} until {}", answer.user, answer.expires_at);
            // Saved: not printed too (terminals and CI logs keep what is printed).
            let shown = if save.is_some() {
                String::new()
            } else if args.json {
                serde_json::to_string_pretty(&answer)?
            } else {
                answer.token
            };
            (Value::Null, Show::Done(shown))
        }
        AdminCommand::Logout => {
            client.call::<()>(Method::POST, "/logout", NONE).await?;
            (Value::Null, Show::Done("logged out".into()))
        }
        AdminCommand::Whoami => {
            let who: WhoAmI = client.get("/whoami", NONE).await?;
            let body = json(&who)?;
            let line = format!(
                "{}{}",
                who.user,
                if who.platform_admin {
                    " (platform admin)"
                } else {
                    ""
                }
            );
            let memberships = table(&body, "memberships", &[("ORG", "/org"), ("ROLE", "/role")]);
            (body, Show::Done(format!("{line}\n{memberships}")))
        }
        AdminCommand::Orgs(OrgsCommand::List(page)) => {
            listing(&client, "/orgs", page, &CARD_COLUMNS).await?
        }
        AdminCommand::Orgs(OrgsCommand::Create { name }) => {
            let new = NewOrg { name: name.clone() };
            created(&client, "/orgs", &new).await?
        }
        AdminCommand::Members(command) => members(&client, command).await?,
        AdminCommand::Users(command) => users(&client, command).await?,
        AdminCommand::Robots(RobotsCommand::List { org, page }) => {
            let path = format!("/orgs/{}/robots", encode(org));
            listing(&client, &path, page, &CARD_COLUMNS).await?
        }
        AdminCommand::Robots(RobotsCommand::Create { org, name }) => {
            let new = NewRobot { name: name.clone() };
            created(&client, &format!("/orgs/{}/robots", encode(org)), &new).await?
        }
        AdminCommand::Tokens(command) => tokens(&client, command).await?,
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
            let query = EventQuery {
                target: target.clone(),
                actor: actor.clone(),
                since: *since,
                until: *until,
                limit: Some(*limit),
            };
            let columns = &[
                ("TIME", "/data/timestamp"),
                ("EVENT", "/type"),
                ("ACTOR", "/actor"),
                ("TARGET", "/target"),
                ("CHANGE", "/data/payload"),
            ];
            table_of::<EventList>(&client, "/events", Some(&query), "events", columns).await?
        }
        AdminCommand::Registry(command) => registry(&client, command).await?,
        AdminCommand::Quota(command) => quota(&client, command).await?,
        AdminCommand::Explain { account, scope } => {
            let query = ExplainQuery {
                account: Name::parse(account.as_str())?,
                scope: scope.clone(),
            };
            let answer: ExplainAnswer = client.get("/explain", Some(&query)).await?;
            let mut lines = vec![format!("{} on {scope}", answer.actor)];
            for verdict in &answer.actions {
                lines.push(format!(
                    "{}: {}",
                    verdict.action,
                    if verdict.granted { "granted" } else { "denied" }
                ));
                lines.extend(verdict.reasons.iter().map(|reason| format!("  - {reason}")));
            }
            (json(&answer)?, Show::Done(lines.join("\n")))
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
            Show::Table(list, columns) => {
                if let Some(next) = body["next"].as_str() {
                    eprintln!("more may follow: --after {next}");
                }
                table(&body, list, columns)
            }
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

/// The answer `R` of `GET path?query`, shown as a table of `columns` of the rows in `list`.
async fn table_of<R: DeserializeOwned + Serialize>(
    client: &Client,
    path: &str,
    query: Option<&impl Serialize>,
    list: &'static str,
    columns: &'static [(&'static str, &'static str)],
) -> anyhow::Result<(Value, Show)> {
    let answer: R = client.get(path, query).await?;
    Ok((json(&answer)?, Show::Table(list, columns)))
}

/// A page of the card listing at `path` (or every page, with `--all`), shown as a table of
/// `columns`.
async fn listing(
    client: &Client,
    path: &str,
    page: &PageArgs,
    columns: &'static [(&'static str, &'static str)],
) -> anyhow::Result<(Value, Show)> {
    let list = client
        .pages(path, page.after.clone(), page.all, |after| {
            page.query(after)
        })
        .await?;
    Ok((json(&list)?, Show::Table("cards", columns)))
}

/// Posts `new` to `path`: the card made.
async fn created(
    client: &Client,
    path: &str,
    new: &impl Serialize,
) -> anyhow::Result<(Value, Show)> {
    let card: CardView = client.call(Method::POST, path, Some(new)).await?;
    Ok((json(&card)?, Show::Card))
}

/// Sends `body` to `path` with the revision `if_match`: the card as it is now.
async fn changed(
    client: &Client,
    method: Method,
    path: &str,
    query: Option<&impl Serialize>,
    body: Option<&impl Serialize>,
    if_match: &str,
) -> anyhow::Result<(Value, Show)> {
    let sent = client.send(method, path, query, body, Some(if_match));
    let card: CardView = sent.await?.1;
    Ok((json(&card)?, Show::Card))
}

/// Sends a request answered with no content; then `said` is shown.
async fn done(
    request: impl Future<Output = anyhow::Result<(Option<String>, ())>>,
    said: String,
) -> anyhow::Result<(Value, Show)> {
    request.await?;
    Ok((Value::Null, Show::Done(said)))
}

async fn registry(client: &Client, command: &RegistryCommand) -> anyhow::Result<(Value, Show)> {
    match command {
        RegistryCommand::Activity {
            org,
            repository,
            actor,
            since,
            until,
            before,
            limit,
        } => {
            let actor = actor
                .clone()
                .map(Name::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--actor: {e}"))?;
            let org = org
                .clone()
                .map(Name::parse)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--org: {e}"))?;
            let query = ActivityQuery {
                org,
                repository: repository.clone(),
                actor,
                since: *since,
                until: *until,
                before: *before,
                limit: Some(*limit),
            };
            let columns = &[
                ("ID", "/id"),
                ("TIME", "/at"),
                ("ACTION", "/action"),
                ("REPOSITORY", "/repository"),
                ("REFERENCE", "/reference"),
                ("ACTOR", "/actor"),
                ("ADDRESS", "/address"),
            ];
            table_of::<Value>(
                client,
                "/registry/activity",
                Some(&query),
                "activity",
                columns,
            )
            .await
        }
        RegistryCommand::Tags { repository } => {
            let query = RepositoryQuery {
                repository: repository.clone(),
            };
            let body: Value = client.get("/images/contents", Some(&query)).await?;
            let columns = &[
                ("TAG", "/tag"),
                ("DIGEST", "/digest"),
                ("SIZE", "/size"),
                ("MEDIA TYPE", "/media_type"),
                ("PUSHED BY", "/pushed_by"),
                ("PUSHED AT", "/pushed_at"),
            ];
            let mut shown = table(&body, "tags", columns);
            if body["reserved"] == Value::Bool(true) {
                shown.push_str("\n(reserved: made for a push token, no push reported yet)");
            }
            Ok((body, Show::Done(shown)))
        }
    }
}

async fn quota(client: &Client, command: &QuotaCommand) -> anyhow::Result<(Value, Show)> {
    let (org, body): (&String, Value) = match command {
        QuotaCommand::Show { org } => {
            let path = format!("/orgs/{}/storage", encode(org));
            (org, client.get(&path, NONE).await?)
        }
        QuotaCommand::Set { org, bytes } => {
            let quota_bytes = match bytes.as_str() {
                "none" => None,
                bytes => Some(
                    bytes
                        .parse::<i64>()
                        .with_context(|| format!("`{bytes}`: a number of bytes, or `none`"))?,
                ),
            };
            let path = format!("/orgs/{}/quota", encode(org));
            let body = QuotaBody { quota_bytes };
            (org, client.call(Method::PUT, &path, Some(&body)).await?)
        }
    };
    let shown = format!(
        "{org}: {} bytes used of {}{}",
        text(&body["usage_bytes"]),
        match &body["quota_bytes"] {
            Value::Null => "no quota".to_owned(),
            quota => format!("a quota of {} bytes", text(quota)),
        },
        if body["over_quota"] == Value::Bool(true) {
            " (over quota: push is refused)"
        } else {
            ""
        }
    );
    Ok((body, Show::Done(shown)))
}

async fn members(client: &Client, command: &MembersCommand) -> anyhow::Result<(Value, Show)> {
    match command {
        MembersCommand::List { org } => {
            let path = format!("/orgs/{}/members", encode(org));
            let columns = &[("USER", "/user"), ("ROLE", "/role")];
            table_of::<MemberList>(client, &path, NONE, "members", columns).await
        }
        MembersCommand::Add { org, user, role } => {
            let new = NewMember {
                user: user.clone(),
                role: *role,
            };
            let path = format!("/orgs/{}/members", encode(org));
            let said = format!("{} is {role} of {org}", user.as_str());
            done(
                client.send(Method::POST, &path, NONE, Some(&new), None),
                said,
            )
            .await
        }
        MembersCommand::SetRole { org, user, role } => {
            let change = RoleChange { role: *role };
            let path = format!("/orgs/{}/members/{}", encode(org), encode(user));
            let said = format!("{user} is {role} of {org}");
            done(
                client.send(Method::PUT, &path, NONE, Some(&change), None),
                said,
            )
            .await
        }
        MembersCommand::Remove { org, user } => {
            let path = format!("/orgs/{}/members/{}", encode(org), encode(user));
            let said = format!("{user} left {org}");
            done(client.send(Method::DELETE, &path, NONE, NONE, None), said).await
        }
    }
}

const USER_COLUMNS: [(&str, &str); 5] = [
    ("SLUG", "/slug"),
    ("ROLES", "/data/roles"),
    ("ROBOT", "/data/robot"),
    ("MARKERS", "/markers"),
    ("REVISION", "/revision"),
];

async fn users(client: &Client, command: &UsersCommand) -> anyhow::Result<(Value, Show)> {
    match command {
        UsersCommand::List(page) => listing(client, "/users", page, &USER_COLUMNS).await,
        UsersCommand::Show { user } => {
            let card: CardView = client
                .get(&format!("/users/{}", encode(user)), NONE)
                .await?;
            let list = CardList {
                cards: vec![card],
                next: None,
            };
            Ok((json(&list)?, Show::Table("cards", &USER_COLUMNS)))
        }
        UsersCommand::Create { name, roles } => {
            let new = NewUser {
                name: name.clone(),
                // None named: the server's default roles.
                roles: (!roles.is_empty()).then(|| roles.clone()),
            };
            created(client, "/users", &new).await
        }
        UsersCommand::SetRoles {
            user,
            roles,
            revision,
        } => {
            let path = format!("/users/{}", encode(user));
            let current = async {
                client
                    .send::<CardView>(Method::GET, &path, NONE, NONE, None)
                    .await?
                    .0
                    .with_context(|| format!("{path} has no revision"))
            };
            let revision = revision.or_current(current).await?;
            let new = Roles {
                roles: roles.clone(),
            };
            let path = format!("{path}/roles");
            changed(client, Method::PUT, &path, NONE, Some(&new), &revision).await
        }
        UsersCommand::Password { user } => {
            let new = NewPassword {
                password: read_password(&format!("new password of {user}: "))?,
            };
            let path = format!("/users/{}/password", encode(user));
            let said = format!("password of {user} set");
            done(
                client.send(Method::PUT, &path, NONE, Some(&new), None),
                said,
            )
            .await
        }
        UsersCommand::Deactivate { user } => {
            let card: CardView = client
                .call(Method::DELETE, &format!("/users/{}", encode(user)), NONE)
                .await?;
            Ok((json(&card)?, Show::Card))
        }
    }
}

async fn tokens(client: &Client, command: &TokensCommand) -> anyhow::Result<(Value, Show)> {
    match command {
        TokensCommand::Create {
            user,
            expires_in,
            scope,
        } => {
            let new = NewToken {
                expires_in_seconds: *expires_in,
                scope: scope.clone(),
            };
            let issued: SessionToken = client
                .call(
                    Method::POST,
                    &format!("/users/{}/tokens", encode(user)),
                    Some(&new),
                )
                .await?;
            eprintln!(
                "token {} until {} (the secret is shown only now)",
                issued.id,
                text(&issued.expires_at)
            );
            Ok((json(&issued)?, Show::Done(issued.token)))
        }
        TokensCommand::List { user } => {
            let path = format!("/users/{}/sessions", encode(user));
            let columns = &[
                ("ID", "/id"),
                ("KIND", "/kind"),
                ("CLIENT", "/client_id"),
                ("EXPIRES", "/expires_at"),
                ("SCOPED", "/scoped"),
            ];
            table_of::<SessionList>(client, &path, NONE, "sessions", columns).await
        }
        TokensCommand::Revoke { id } => {
            let path = format!("/sessions/{id}");
            let request = client.send(Method::DELETE, &path, NONE, NONE, None);
            done(request, format!("revoked {id}")).await
        }
    }
}

async fn images(client: &Client, command: &ImagesCommand) -> anyhow::Result<(Value, Show)> {
    match command {
        ImagesCommand::List { org, query, page } => {
            let path = format!("/orgs/{}/images", encode(org));
            let list = client
                .pages(&path, page.after.clone(), page.all, |after| ImageQuery {
                    after,
                    limit: page.limit,
                    q: query.clone(),
                })
                .await?;
            let columns = &[
                ("REPOSITORY", "/data/repository"),
                ("PUBLIC", "/data/public"),
                ("REVISION", "/revision"),
            ];
            Ok((json(&list)?, Show::Table("cards", columns)))
        }
        ImagesCommand::Create { repository, public } => {
            let new = NewImage {
                repository: repository.clone(),
                public: *public,
            };
            created(client, "/images", &new).await
        }
        ImagesCommand::Public {
            repository,
            public,
            revision,
        } => {
            let revision = revision
                .or_current(client.image_revision(repository))
                .await?;
            let change = ImageChange {
                repository: repository.clone(),
                public: *public,
            };
            changed(
                client,
                Method::PATCH,
                "/images",
                NONE,
                Some(&change),
                &revision,
            )
            .await
        }
        ImagesCommand::Deactivate {
            repository,
            revision,
        } => {
            let revision = revision
                .or_current(client.image_revision(repository))
                .await?;
            let query = RepositoryQuery {
                repository: repository.clone(),
            };
            changed(
                client,
                Method::DELETE,
                "/images",
                Some(&query),
                NONE,
                &revision,
            )
            .await
        }
    }
}

async fn grants(client: &Client, command: &GrantsCommand) -> anyhow::Result<(Value, Show)> {
    match command {
        GrantsCommand::List { repository } => {
            let query = RepositoryQuery {
                repository: repository.clone(),
            };
            let columns = &[("HOLDER", "/holder"), ("ACTIONS", "/actions")];
            table_of::<GrantList>(client, "/grants", Some(&query), "grants", columns).await
        }
        GrantsCommand::Add {
            holder,
            repository,
            actions,
        } => {
            let grant = GrantBody {
                holder: holder.clone(),
                repository: repository.clone(),
                actions: actions.iter().map(|a| a.trim().to_owned()).collect(),
            };
            let said = format!(
                "granted {} {} on {repository}",
                holder.as_str(),
                grant.actions.join(",")
            );
            done(
                client.send(Method::POST, "/grants", NONE, Some(&grant), None),
                said,
            )
            .await
        }
        GrantsCommand::Revoke { holder, repository } => {
            let query = GrantQuery {
                holder: holder.clone(),
                repository: repository.clone(),
            };
            let said = format!("revoked the grant of {} on {repository}", holder.as_str());
            done(
                client.send(Method::DELETE, "/grants", Some(&query), NONE, None),
                said,
            )
            .await
        }
    }
}

async fn roles(client: &Client, command: &RolesCommand) -> anyhow::Result<(Value, Show)> {
    match command {
        RolesCommand::List(page) => {
            let columns = &[
                ("SLUG", "/slug"),
                ("READ", "/data/read"),
                ("CATALOG", "/data/catalog"),
                ("REVISION", "/revision"),
            ];
            listing(client, "/roles", page, columns).await
        }
        RolesCommand::Create {
            name,
            read,
            catalog,
        } => {
            let new = NewRole {
                name: name.clone(),
                read: read.clone(),
                catalog: *catalog,
            };
            created(client, "/roles", &new).await
        }
        RolesCommand::Update {
            name,
            read,
            catalog,
            revision,
        } => {
            let revision = revision.or_current(client.role_revision(name)).await?;
            let change = RoleBody {
                read: read.clone(),
                catalog: *catalog,
            };
            let path = format!("/roles/{}", encode(name));
            changed(client, Method::PUT, &path, NONE, Some(&change), &revision).await
        }
        RolesCommand::Deactivate { name, revision } => {
            let revision = revision.or_current(client.role_revision(name)).await?;
            let path = format!("/roles/{}", encode(name));
            changed(client, Method::DELETE, &path, NONE, NONE, &revision).await
        }
    }
}
