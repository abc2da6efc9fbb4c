//! Settings: `config/default.toml` → `config/<profile>.toml` → the seed's `REGISTRY_*`
//! variables → `CARDGATE__SECTION__KEY` variables, each layer overriding the ones before.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cardgate_authz_static::{AclSettings, UsersSettings};
use cardgate_store::{PoolSettings, Store};
use cardgate_token::{
    JwkSet, KeyError, KeyInput, LifetimeClass, Minter, PublishedKey, SigningAlgorithm, SigningKey,
    TokenLifetimes,
};
use config::{Config, Environment, File, FileFormat, Map, Source, Value};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde::de::value::StrDeserializer;

use crate::throttle::ThrottleSettings;

/// The defaults, compiled in so that the binary runs from any directory.
const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// The seed document's variables (and `DATABASE_URL`) and the settings they set.
pub const NAMED_VARIABLES: [(&str, &str); 8] = [
    ("REGISTRY_HOST", "token.service"),
    ("REGISTRY_TOKEN_AUTH_CERT_ISSUER", "token.issuer"),
    ("REGISTRY_TOKEN_AUTH_JWT_ALGO", "token.algorithm"),
    ("REGISTRY_TOKEN_AUTH_REALM", "server.realm"),
    ("REGISTRY_TOKEN_AUTH_CERT", "token.certificate"),
    ("REGISTRY_TOKEN_AUTH_CERT_KEY", "token.key"),
    ("REGISTRY_TOKEN_AUTH_CERT_KID", "token.kid"),
    ("DATABASE_URL", "database.url"),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub token: TokenSettings,
    pub authn: AuthnSettings,
    pub authz: AuthzSettings,
    pub database: DatabaseSettings,
    pub admin: AdminSettings,
    pub cache: CacheSettings,
    pub log: LogSettings,
    pub throttle: ThrottleSettings,
    pub registry: RegistrySettings,
    pub console: ConsoleSettings,
}

/// The shortest secret `registry.events_secret` may be.
pub const MIN_EVENTS_SECRET_CHARS: usize = 16;

/// `[registry]`: the registry's notifications (`POST /v1/registry/events`), the audit trail
/// they feed, and reserved images.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrySettings {
    /// The secret the registry sends as `Authorization: Bearer <secret>`; unset: the endpoint
    /// answers 404. At least 16 characters.
    #[serde(default)]
    pub events_secret: Option<SecretString>,
    /// The largest notification body, in bytes. 1,024 to 16,777,216.
    pub max_events_bytes: usize,
    /// How long audit lines (and applied event ids) are kept, in days. 1 to 3,650.
    pub audit_retention_days: u64,
    /// How long an image made for a push token waits for a push before it goes, in seconds.
    /// 600 to 2,592,000 (30 days).
    pub reservation_seconds: u64,
}

/// The web console at `/console/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Browsers reach the server over HTTPS (a TLS proxy in front of it): the console's
    /// session cookie is then `Secure` and named with the `__Host-` prefix.
    pub behind_tls: bool,
}

/// The caches of verified credentials (card store and static users) and of the card
/// plugins' decisions.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Entries per cache; 0 turns caching off. 0 to 1,000,000.
    pub capacity: usize,
    /// The card plugins: how long cached answers are used at most while the change feed is
    /// silent; the static users: how long an entry lives. In seconds; 0 turns caching off.
    /// 0 to 86,400 (a day).
    pub ttl_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// How long a session from `POST /v1/admin/login` lasts, in seconds. 60 to 2,592,000
    /// (30 days).
    pub session_lifetime_seconds: u64,
    /// How many tokens one account may create through the admin API in an hour. 1 to
    /// 100,000.
    pub tokens_per_hour: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://user:password@host:port/db`; required by the `cards` plugins.
    pub url: Option<SecretString>,
    /// Connections in the pool. 1 to 1,000.
    pub max_connections: u32,
    /// How long a request waits for a connection before answering 503, in milliseconds. 250
    /// to 60,000.
    pub acquire_timeout_ms: u64,
    /// Statement timeout on every connection, in milliseconds. 100 to 3,600,000 (an hour):
    /// never 0, which would let a statement run for ever.
    pub statement_timeout_ms: u64,
    /// Apply migrations (and create the built-in cards) at start-up.
    pub migrate: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// `host:port` to listen on.
    pub listen: String,
    /// The realm: a URL or a path. Its path is the token route.
    pub realm: String,
    /// HTTP worker threads; 0 = one per core. 0 to 512.
    pub workers: usize,
    /// The most bytes of request target plus headers; larger requests are answered 431. 4,096
    /// to 131,072 (above that actix-web answers 431 itself).
    pub max_header_bytes: usize,
    /// How long a request body may take to arrive after its head, in seconds (1 to 300);
    /// later ones are answered 408 and their connection closed.
    pub body_timeout_seconds: u64,
    /// Requests in progress from one client address at most (1 to 100,000); more are answered
    /// 429 at once and their connection closed.
    pub max_requests_per_address: u32,
    /// On SIGTERM, how long in-flight requests may take to finish, in seconds. 0 to 3,600.
    pub shutdown_timeout_seconds: u64,
    /// On SIGTERM, how long to go on serving with `/readyz` answering 503 before closing the
    /// listener, so that load balancers stop sending requests first, in seconds. 0 to 300.
    pub shutdown_drain_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// `iss` of every token; the registry's `auth.token.issuer`.
    pub issuer: String,
    /// The registry's `auth.token.service`: the only `service` accepted, and `aud`.
    pub service: String,
    /// `ES256` or `RS256`; when empty, taken from the key.
    pub algorithm: String,
    /// Token lifetime, in seconds: the default of the lifetimes below that are not set. Each
    /// token lifetime is 60 to 316,224,000 (ten years).
    pub lifetime_seconds: u64,
    /// Lifetime of tokens granting only `pull`, or nothing. 60 to 316,224,000.
    #[serde(default)]
    pub pull_lifetime_seconds: Option<u64>,
    /// Lifetime of tokens granting `push`, `delete` or `*` anywhere. 60 to 316,224,000.
    #[serde(default)]
    pub push_lifetime_seconds: Option<u64>,
    /// Lifetime of robots' tokens (users whose card has `data.robot = true`), whatever they
    /// grant; unset = as everybody else's. 60 to 316,224,000.
    #[serde(default)]
    pub robot_lifetime_seconds: Option<u64>,
    /// Lifetime of OAuth2 refresh tokens (offline access), in seconds. 60 to 316,224,000.
    pub refresh_lifetime_seconds: u64,
    /// Active refresh tokens a user keeps per `client_id`: a new one revokes the oldest
    /// beyond. 1 to 1000.
    pub max_refresh_tokens_per_client: u64,
    /// The private key: PEM text, a file path, or base64 of the PEM.
    pub key: Option<SecretString>,
    /// The certificate the registry trusts (PEM text, path or base64), checked against the key.
    pub certificate: Option<String>,
    /// The libtrust key ID (or base64 of it), checked against the key.
    pub kid: Option<String>,
    /// Send the certificate chain of `certificate` in the `x5c` header of every token.
    #[serde(default)]
    pub x5c: bool,
    /// Keys published in the JWKS besides the signing key, which never sign: older keys whose
    /// tokens may still be in use, or the next key announced before it signs.
    #[serde(default)]
    pub previous: Vec<PublishedKeySettings>,
}

/// One `[[token.previous]]` entry: a certificate (and its key ID) and/or the private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedKeySettings {
    /// The certificate (PEM text, path or base64); checked against `key` when both are given.
    #[serde(default)]
    pub certificate: Option<String>,
    /// The libtrust key ID (or base64 of it), checked against the key.
    #[serde(default)]
    pub kid: Option<String>,
    /// The private key (PEM text, path or base64); only its public half is used.
    #[serde(default)]
    pub key: Option<SecretString>,
}

/// `[authn]`: the authenticators, in the order they are asked, and the static users.
pub type AuthnSettings = ChainSettings<AuthenticatorName, UsersSettings>;

/// `[authz]`: the authorizers, in the order they are asked, and the static ACL.
pub type AuthzSettings = ChainSettings<AuthorizerName, AclSettings>;

/// A chain of plugins (`chain`) and the settings of its `static` plugin (`[<section>.static]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(bound(deserialize = "Name: DeserializeOwned, Static: DeserializeOwned"))]
pub struct ChainSettings<Name, Static> {
    /// The plugins, in the order they are asked.
    #[serde(deserialize_with = "names")]
    pub chain: Vec<Name>,
    #[serde(rename = "static", default = "Option::default")]
    pub static_settings: Option<Static>,
}

/// The authenticators `authn.chain` may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthenticatorName {
    /// The card store's users, sessions and tokens (needs `database.url`).
    Cards,
    /// The users of `[authn.static]`.
    Static,
}

/// The authorizers `authz.chain` may list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthorizerName {
    /// The card store's images, orgs, roles and grants (needs `database.url`).
    Cards,
    /// The rules of `[authz.static]`.
    Static,
}

impl AuthenticatorName {
    /// The name as configured, and as the authenticator calls itself in identities.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticatorName::Cards => "cards",
            AuthenticatorName::Static => "static",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter (`info`, `cardgate_server=debug,info`...); `RUST_LOG` wins when set.
    pub filter: String,
    pub format: LogFormat,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object a line, for collectors.
    Json,
}

/// A list of names: a TOML array, or a comma-separated string (as environment variables give),
/// each read as a `T` (a plugin name, an address...).
pub(crate) fn names<'de, D: serde::Deserializer<'de>, T: DeserializeOwned>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        List(Vec<String>),
        Text(String),
    }
    let names: Vec<String> = match Names::deserialize(deserializer)? {
        Names::List(list) => list,
        Names::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    names
        .iter()
        .map(|name| T::deserialize(StrDeserializer::<D::Error>::new(name)))
        .collect()
}

/// A setting is missing or wrong. The message names the setting (and its variables).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

impl SettingsError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        SettingsError(message.into())
    }

    pub(crate) fn from_message(message: String) -> Self {
        SettingsError(message)
    }
}

/// Where settings come from.
#[derive(Debug, Clone)]
pub struct SettingsSource {
    /// Folder holding `default.toml` and `<profile>.toml`.
    pub config_dir: PathBuf,
    /// `dev`, `test`, `staging`...; `None` for the defaults alone.
    pub profile: Option<String>,
    /// The environment (variables are read from here, not from the process).
    pub env: HashMap<String, String>,
}

/// The seed's variables as a configuration layer.
#[derive(Debug, Clone)]
struct NamedVariables(HashMap<String, String>);

impl Source for NamedVariables {
    fn clone_into_box(&self) -> Box<dyn Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<Map<String, Value>, config::ConfigError> {
        let origin = "seed environment".to_owned();
        Ok(NAMED_VARIABLES
            .iter()
            .filter_map(|(var, key)| {
                let value = self.0.get(*var)?.trim();
                (!value.is_empty()).then(|| {
                    (
                        (*key).to_owned(),
                        Value::new(Some(&origin), value.to_owned()),
                    )
                })
            })
            .collect())
    }
}

/// The variables that can set `key`, for error messages.
fn variables_for(key: &str) -> String {
    let mut names: Vec<String> = NAMED_VARIABLES
        .iter()
        .filter(|(_, k)| *k == key)
        .map(|(v, _)| (*v).to_owned())
        .collect();
    names.push(format!(
        "CARDGATE__{}",
        key.replace('.', "__").to_uppercase()
    ));
    names.join(" or ")
}

pub(crate) fn setting(key: &str) -> String {
    if key.contains('[') {
        // Entries of a list of tables are set in configuration files only.
        return format!("`{key}`");
    }
    format!("`{key}` ({})", variables_for(key))
}

/// The range of every numeric setting, in one table: [`Settings::validate`] refuses values
/// outside it at start-up, so that no later arithmetic on a setting (a deadline, an expiry, a
/// cache's lifetime) can overflow. The field docs and `config/default.toml` state the same
/// ranges.
mod ranges {
    use std::ops::RangeInclusive;

    use cardgate_token::{MAX_LIFETIME, MIN_LIFETIME};

    /// actix-web refuses (panics) above 512.
    pub const WORKERS: RangeInclusive<u64> = 0..=512;
    pub const MAX_HEADER_BYTES: RangeInclusive<u64> = 4096..=131_072;
    pub const SHUTDOWN_TIMEOUT_SECONDS: RangeInclusive<u64> = 0..=3600;
    pub const SHUTDOWN_DRAIN_SECONDS: RangeInclusive<u64> = 0..=300;
    pub const BODY_TIMEOUT_SECONDS: RangeInclusive<u64> = 1..=300;
    pub const MAX_REQUESTS_PER_ADDRESS: RangeInclusive<u64> = 1..=100_000;
    /// Every token lifetime, refresh tokens' included.
    pub const LIFETIME_SECONDS: RangeInclusive<u64> =
        MIN_LIFETIME.as_secs()..=MAX_LIFETIME.as_secs();
    pub const MAX_CONNECTIONS: RangeInclusive<u64> = 1..=1000;
    pub const MAX_REFRESH_TOKENS_PER_CLIENT: RangeInclusive<u64> = 1..=1000;
    /// Below a quarter of a second, not even start-up gets a connection.
    pub const ACQUIRE_TIMEOUT_MS: RangeInclusive<u64> = 250..=60_000;
    /// Never 0 (no timeout); below a tenth of a second, migrations fail.
    pub const STATEMENT_TIMEOUT_MS: RangeInclusive<u64> = 100..=3_600_000;
    pub const SESSION_LIFETIME_SECONDS: RangeInclusive<u64> = 60..=30 * 24 * 3600;
    pub const TOKENS_PER_HOUR: RangeInclusive<u64> = 1..=100_000;
    pub const CACHE_CAPACITY: RangeInclusive<u64> = 0..=1_000_000;
    pub const CACHE_TTL_SECONDS: RangeInclusive<u64> = 0..=24 * 3600;
    pub const THROTTLE_WINDOW_SECONDS: RangeInclusive<u64> = 1..=24 * 3600;
    pub const THROTTLE_FAILURES: RangeInclusive<u64> = 1..=1_000_000;
    pub const THROTTLE_MAX_ENTRIES: RangeInclusive<u64> = 1..=10_000_000;
    pub const MAX_EVENTS_BYTES: RangeInclusive<u64> = 1024..=16 * 1024 * 1024;
    pub const AUDIT_RETENTION_DAYS: RangeInclusive<u64> = 1..=3650;
    pub const RESERVATION_SECONDS: RangeInclusive<u64> = 600..=30 * 24 * 3600;
}

/// A `usize` setting as a `u64` (saturating, on a platform where it would not fit).
fn wide(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

impl Settings {
    /// Every numeric setting, its value (`None` when unset) and the range it must be in.
    fn numeric_settings(&self) -> [(&'static str, Option<u64>, RangeInclusive<u64>); 26] {
        let (server, token, database, throttle) =
            (&self.server, &self.token, &self.database, &self.throttle);
        [
            (
                "server.workers",
                Some(wide(server.workers)),
                ranges::WORKERS,
            ),
            (
                "server.max_header_bytes",
                Some(wide(server.max_header_bytes)),
                ranges::MAX_HEADER_BYTES,
            ),
            (
                "server.shutdown_timeout_seconds",
                Some(server.shutdown_timeout_seconds),
                ranges::SHUTDOWN_TIMEOUT_SECONDS,
            ),
            (
                "server.shutdown_drain_seconds",
                Some(server.shutdown_drain_seconds),
                ranges::SHUTDOWN_DRAIN_SECONDS,
            ),
            (
                "server.body_timeout_seconds",
                Some(server.body_timeout_seconds),
                ranges::BODY_TIMEOUT_SECONDS,
            ),
            (
                "server.max_requests_per_address",
                Some(u64::from(server.max_requests_per_address)),
                ranges::MAX_REQUESTS_PER_ADDRESS,
            ),
            (
                "token.lifetime_seconds",
                Some(token.lifetime_seconds),
                ranges::LIFETIME_SECONDS,
            ),
            (
                "token.pull_lifetime_seconds",
                token.pull_lifetime_seconds,
                ranges::LIFETIME_SECONDS,
            ),
            (
                "token.push_lifetime_seconds",
                token.push_lifetime_seconds,
                ranges::LIFETIME_SECONDS,
            ),
            (
                "token.robot_lifetime_seconds",
                token.robot_lifetime_seconds,
                ranges::LIFETIME_SECONDS,
            ),
            (
                "token.refresh_lifetime_seconds",
                Some(token.refresh_lifetime_seconds),
                ranges::LIFETIME_SECONDS,
            ),
            (
                "token.max_refresh_tokens_per_client",
                Some(token.max_refresh_tokens_per_client),
                ranges::MAX_REFRESH_TOKENS_PER_CLIENT,
            ),
            (
                "database.max_connections",
                Some(database.max_connections.into()),
                ranges::MAX_CONNECTIONS,
            ),
            (
                "database.acquire_timeout_ms",
                Some(database.acquire_timeout_ms),
                ranges::ACQUIRE_TIMEOUT_MS,
            ),
            (
                "database.statement_timeout_ms",
                Some(database.statement_timeout_ms),
                ranges::STATEMENT_TIMEOUT_MS,
            ),
            (
                "admin.session_lifetime_seconds",
                Some(self.admin.session_lifetime_seconds),
                ranges::SESSION_LIFETIME_SECONDS,
            ),
            (
                "admin.tokens_per_hour",
                Some(u64::from(self.admin.tokens_per_hour)),
                ranges::TOKENS_PER_HOUR,
            ),
            (
                "cache.capacity",
                Some(wide(self.cache.capacity)),
                ranges::CACHE_CAPACITY,
            ),
            (
                "cache.ttl_seconds",
                Some(self.cache.ttl_seconds),
                ranges::CACHE_TTL_SECONDS,
            ),
            (
                "throttle.window_seconds",
                Some(throttle.window_seconds),
                ranges::THROTTLE_WINDOW_SECONDS,
            ),
            (
                "throttle.account_failures",
                Some(throttle.account_failures.into()),
                ranges::THROTTLE_FAILURES,
            ),
            (
                "throttle.address_failures",
                Some(throttle.address_failures.into()),
                ranges::THROTTLE_FAILURES,
            ),
            (
                "throttle.max_entries",
                Some(throttle.max_entries),
                ranges::THROTTLE_MAX_ENTRIES,
            ),
            (
                "registry.max_events_bytes",
                Some(wide(self.registry.max_events_bytes)),
                ranges::MAX_EVENTS_BYTES,
            ),
            (
                "registry.audit_retention_days",
                Some(self.registry.audit_retention_days),
                ranges::AUDIT_RETENTION_DAYS,
            ),
            (
                "registry.reservation_seconds",
                Some(self.registry.reservation_seconds),
                ranges::RESERVATION_SECONDS,
            ),
        ]
    }

    /// Refuses any numeric setting outside its documented range, naming the setting and the
    /// variables that set it. [`crate::Application::build`] calls it first.
    pub fn validate(&self) -> Result<(), SettingsError> {
        for (name, value, range) in self.numeric_settings() {
            let Some(value) = value else { continue };
            let limit = if value < *range.start() {
                format!("at least {}", range.start())
            } else if value > *range.end() {
                format!("at most {}", range.end())
            } else {
                continue;
            };
            return Err(SettingsError::new(format!(
                "{} is {value}: {limit}",
                setting(name)
            )));
        }
        if let Some(secret) = &self.registry.events_secret
            && secret.expose_secret().trim().chars().count() < MIN_EVENTS_SECRET_CHARS
        {
            return Err(SettingsError::new(format!(
                "{} is shorter than {MIN_EVENTS_SECRET_CHARS} characters",
                setting("registry.events_secret")
            )));
        }
        Ok(())
    }

    pub fn load(source: &SettingsSource) -> Result<Self, SettingsError> {
        let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
        let defaults_file = source.config_dir.join("default.toml");
        if defaults_file.exists() {
            builder = builder.add_source(File::from(defaults_file).format(FileFormat::Toml));
        }
        if let Some(profile) = &source.profile {
            let path = source.config_dir.join(format!("{profile}.toml"));
            if !path.exists() {
                return Err(SettingsError::new(format!(
                    "profile `{profile}`: {} does not exist",
                    path.display()
                )));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let config = builder
            .add_source(NamedVariables(source.env.clone()))
            .add_source(
                Environment::with_prefix("CARDGATE")
                    .separator("__")
                    .ignore_empty(true)
                    .source(Some(source.env.clone().into_iter().collect())),
            )
            .build()
            .map_err(|e| SettingsError::new(format!("configuration: {e}")))?;
        config
            .try_deserialize()
            .map_err(|e| SettingsError::new(format!("configuration: {e}")))
    }

    /// The route the token endpoint answers on: the realm's path.
    pub fn realm_path(&self) -> Result<String, SettingsError> {
        let realm = self.server.realm.trim();
        let path = match realm.split_once("://") {
            Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
            None => realm,
        };
        let path = path.split(['?', '#']).next().unwrap_or_default();
        if !path.starts_with('/') || path.len() < 2 {
            return Err(SettingsError::new(format!(
                "{}: `{realm}` has no path to serve tokens on (e.g. http://auth.example.com/v1/registry)",
                setting("server.realm")
            )));
        }
        Ok(path.to_owned())
    }

    /// Loads and checks the signing key and builds the token minter.
    pub fn minter(&self) -> Result<Minter, SettingsError> {
        let token = &self.token;
        let key = token
            .key
            .as_ref()
            .ok_or_else(|| SettingsError::new(format!("{} is required", setting("token.key"))))?;
        let key_pem = read_pem("token.key", key.expose_secret())?;
        let certificate = token
            .certificate
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .map(|c| read_pem("token.certificate", c))
            .transpose()?;
        let kid = token
            .kid
            .as_deref()
            .filter(|k| !k.trim().is_empty())
            .map(|k| decode_kid("token.kid", k))
            .transpose()?;
        let algorithm = match token.algorithm.trim() {
            "" => None,
            a => Some(
                a.parse::<SigningAlgorithm>()
                    .map_err(|e| key_error("token", e))?,
            ),
        };
        let signing_key =
            SigningKey::from_pem(&key_pem, algorithm, certificate.as_deref(), kid.as_deref())
                .map_err(|e| key_error("token", e))?;
        for (name, value) in [
            ("token.issuer", &token.issuer),
            ("token.service", &token.service),
        ] {
            if value.trim().is_empty() {
                return Err(SettingsError::new(format!("{} is required", setting(name))));
            }
        }
        let minter = Minter::new(token.issuer.clone(), signing_key);
        if !token.x5c {
            return Ok(minter);
        }
        if certificate.is_none() {
            return Err(SettingsError::new(format!(
                "{} is on but {} is not set: the x5c header carries its certificates",
                setting("token.x5c"),
                setting("token.certificate")
            )));
        }
        minter
            .with_x5c()
            .map_err(|e| SettingsError::new(format!("{}: {e}", setting("token.x5c"))))
    }

    /// The token lifetimes: `token.pull_lifetime_seconds`, `token.push_lifetime_seconds` and
    /// `token.robot_lifetime_seconds`, the first two defaulting to `token.lifetime_seconds`;
    /// each at least 60 s.
    pub fn token_lifetimes(&self) -> Result<TokenLifetimes, SettingsError> {
        let token = &self.token;
        let refused = |name: &str, e: cardgate_token::LifetimeError| {
            SettingsError::new(format!("{}: {e}", setting(name)))
        };
        let default = Duration::from_secs(token.lifetime_seconds);
        TokenLifetimes::uniform(default).map_err(|e| refused("token.lifetime_seconds", e))?;
        let or_default = |seconds: Option<u64>| seconds.map_or(default, Duration::from_secs);
        TokenLifetimes::new(
            or_default(token.pull_lifetime_seconds),
            or_default(token.push_lifetime_seconds),
            token.robot_lifetime_seconds.map(Duration::from_secs),
        )
        .map_err(|e| {
            let name = match e.class {
                LifetimeClass::Pull => "token.pull_lifetime_seconds",
                LifetimeClass::Push => "token.push_lifetime_seconds",
                LifetimeClass::Robot => "token.robot_lifetime_seconds",
            };
            refused(name, e)
        })
    }

    /// The keys of `[[token.previous]]`, each checked as the signing key is: the key ID against
    /// the key, the certificate against the private key when both are given. None may be
    /// `signer` or another entry's key.
    pub fn published_keys(&self, signer: &SigningKey) -> Result<Vec<PublishedKey>, SettingsError> {
        let mut keys: Vec<PublishedKey> = Vec::new();
        for (index, entry) in self.token.previous.iter().enumerate() {
            let name = format!("token.previous[{index}]");
            let field = |field: &str| format!("{name}.{field}");
            let certificate = given(entry.certificate.as_deref())
                .map(|c| read_pem(&field("certificate"), c))
                .transpose()?;
            let kid = given(entry.kid.as_deref())
                .map(|k| decode_kid(&field("kid"), k))
                .transpose()?;
            let key_pem = given(entry.key.as_ref().map(ExposeSecret::expose_secret))
                .map(|k| read_pem(&field("key"), k))
                .transpose()?;
            let published = match (&key_pem, &certificate) {
                (Some(key_pem), _) => {
                    SigningKey::from_pem(key_pem, None, certificate.as_deref(), kid.as_deref())
                        .map(|key| key.published())
                }
                (None, Some(certificate)) => {
                    PublishedKey::from_certificate_pem(certificate, kid.as_deref())
                }
                (None, None) => {
                    return Err(SettingsError::new(format!(
                        "`{name}` needs a `certificate` or a `key`"
                    )));
                }
            }
            .map_err(|e| key_error(&name, e))?;
            if published.kid() == signer.kid() {
                return Err(SettingsError::new(format!(
                    "`{name}` is the signing key (`token.key`, key ID {}): list only other keys",
                    signer.kid()
                )));
            }
            if let Some(earlier) = keys.iter().position(|k| k.kid() == published.kid()) {
                return Err(SettingsError::new(format!(
                    "`{name}` is the same key as `token.previous[{earlier}]` (key ID {})",
                    published.kid()
                )));
            }
            keys.push(published);
        }
        Ok(keys)
    }

    /// The JWKS to publish: `signer` first, then the keys of `[[token.previous]]`.
    pub fn jwks(&self, signer: &SigningKey) -> Result<JwkSet, SettingsError> {
        Ok(signer.jwks_with(&self.published_keys(signer)?))
    }

    /// How long refresh tokens live: `token.refresh_lifetime_seconds` (its range is checked
    /// by [`Settings::validate`]).
    pub fn refresh_lifetime(&self) -> Duration {
        Duration::from_secs(self.token.refresh_lifetime_seconds)
    }

    /// The card store, when `database.url` is set. Connects lazily: the server starts, and
    /// answers 503, while the database is away.
    pub fn store(&self) -> Result<Option<Store>, SettingsError> {
        let Some(url) = self.database.url.as_ref() else {
            return Ok(None);
        };
        let pool = PoolSettings {
            max_connections: self.database.max_connections,
            acquire_timeout: Duration::from_millis(self.database.acquire_timeout_ms),
            statement_timeout: Duration::from_millis(self.database.statement_timeout_ms),
        };
        Store::connect_lazy(url.expose_secret(), &pool)
            .map(Some)
            .map_err(|e| SettingsError::new(format!("{}: {e}", setting("database.url"))))
    }

    /// The settings of the credentials and decision caches.
    pub fn cache(&self) -> cardgate_password::CacheSettings {
        cardgate_password::CacheSettings {
            capacity: self.cache.capacity,
            ttl: Duration::from_secs(self.cache.ttl_seconds),
        }
    }
}

/// A value that is set and not blank.
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// A key error named after the setting at fault: `section` is `token` or `token.previous[N]`
/// (whose algorithm follows its key).
fn key_error(section: &str, e: KeyError) -> SettingsError {
    let field = match e.input() {
        KeyInput::Algorithm if section == "token" => "algorithm",
        KeyInput::Algorithm | KeyInput::Key => "key",
        KeyInput::Certificate => "certificate",
        KeyInput::Kid => "kid",
    };
    SettingsError::new(format!("{}: {e}", setting(&format!("{section}.{field}"))))
}

/// A PEM setting holds PEM text, a path to a PEM file, or base64 of the PEM (as in the seed's
/// `.env`).
fn read_pem(key: &str, value: &str) -> Result<String, SettingsError> {
    let value = value.trim();
    if value.starts_with("-----BEGIN") {
        return Ok(value.to_owned());
    }
    let path = Path::new(value);
    if !value.is_empty() && value.len() < 4096 && path.is_file() {
        return std::fs::read_to_string(path).map_err(|e| {
            SettingsError::new(format!(
                "{}: cannot read {}: {e}",
                setting(key),
                path.display()
            ))
        });
    }
    let compact: String = value.split_whitespace().collect();
    STANDARD
        .decode(compact)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .filter(|text| text.trim_start().starts_with("-----BEGIN"))
        .ok_or_else(|| {
            SettingsError::new(format!(
                "{}: neither PEM text, nor an existing file, nor base64 of a PEM block",
                setting(key)
            ))
        })
}

/// The key ID is given as is or base64-encoded (as the seed's `REGISTRY_TOKEN_AUTH_CERT_KID`).
fn decode_kid(key: &str, value: &str) -> Result<String, SettingsError> {
    let value = value.trim();
    if value.contains(':') {
        return Ok(value.to_owned());
    }
    STANDARD
        .decode(value)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| s.contains(':'))
        .ok_or_else(|| {
            SettingsError::new(format!(
                "{}: expected a libtrust key ID (ABCD:EFGH:...) or base64 of one",
                setting(key)
            ))
        })
}

#[cfg(test)]
mod reference;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn source(env: &[(&str, &str)]) -> SettingsSource {
        SettingsSource {
            config_dir: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../config")),
            profile: None,
            env: env
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
        }
    }

    #[test]
    fn realm_urls_and_paths_give_the_route() {
        let mut settings = Settings::load(&source(&[])).unwrap();
        for (realm, path) in [
            ("http://api.ly.fish.local/v1/registry", "/v1/registry"),
            ("https://auth.example.com:8443/token?x=1", "/token"),
            ("/v1/registry", "/v1/registry"),
        ] {
            settings.server.realm = realm.into();
            assert_eq!(settings.realm_path().unwrap(), path);
        }
        settings.server.realm = "http://auth.example.com".into();
        let err = settings.realm_path().unwrap_err().to_string();
        assert!(err.contains("REGISTRY_TOKEN_AUTH_REALM"), "{err}");
    }

    #[test]
    fn environment_overrides_files_and_seed_variables() {
        let settings = Settings::load(&source(&[
            ("REGISTRY_HOST", "registry.seed"),
            ("REGISTRY_TOKEN_AUTH_CERT_ISSUER", "issuer.seed"),
            ("CARDGATE__TOKEN__ISSUER", "1.50"),
            ("CARDGATE__TOKEN__CERTIFICATE", ""),
            ("CARDGATE__TOKEN__LIFETIME_SECONDS", "600"),
            ("CARDGATE__AUTHZ__CHAIN", "static"),
            ("CARDGATE__AUTHN__CHAIN", "cards, static"),
        ]))
        .unwrap();
        assert_eq!(settings.token.service, "registry.seed");
        // Strings stay strings, and empty variables are unset.
        assert_eq!(settings.token.issuer, "1.50");
        assert_eq!(settings.token.certificate, None);
        assert_eq!(settings.token.lifetime_seconds, 600);
        assert_eq!(settings.token.refresh_lifetime_seconds, 7_776_000);
        assert_eq!(settings.authz.chain, [AuthorizerName::Static]);
        assert_eq!(
            settings.authn.chain,
            [AuthenticatorName::Cards, AuthenticatorName::Static]
        );
    }

    #[test]
    fn the_refresh_token_lifetime_is_checked_and_names_its_setting() {
        let settings = Settings::load(&source(&[])).unwrap();
        settings.validate().unwrap();
        assert_eq!(
            settings.refresh_lifetime(),
            Duration::from_secs(90 * 24 * 3600)
        );
        for bad in ["0", "59", "999999999999"] {
            let settings = Settings::load(&source(&[(
                "CARDGATE__TOKEN__REFRESH_LIFETIME_SECONDS",
                bad,
            )]))
            .unwrap();
            let err = settings.validate().unwrap_err().to_string();
            assert!(err.contains("token.refresh_lifetime_seconds"), "{err}");
        }
    }

    #[test]
    fn every_profile_is_within_the_ranges_and_the_reference_states_them() {
        for profile in [None, Some("dev"), Some("test"), Some("staging")] {
            let mut s = source(&[]);
            s.profile = profile.map(str::to_owned);
            Settings::load(&s).unwrap().validate().unwrap();
        }
        let reference = include_str!("../../../docs/configuration.md");
        let settings = Settings::load(&source(&[])).unwrap();
        for (name, _, range) in settings.numeric_settings() {
            let row = reference
                .lines()
                .find(|line| line.starts_with(&format!("| `{name}` |")))
                .unwrap_or_else(|| panic!("{name} has no row in docs/configuration.md"));
            let stated = format!("Range: {}..{}.", range.start(), range.end());
            assert!(row.contains(&stated), "{name}: {stated}");
        }
    }

    #[test]
    fn out_of_range_settings_are_refused_naming_the_setting_and_its_variable() {
        for (variable, value, expected) in [
            (
                "CARDGATE__CACHE__TTL_SECONDS",
                "18446744073709551615",
                "`cache.ttl_seconds` (CARDGATE__CACHE__TTL_SECONDS) is 18446744073709551615: \
                 at most 86400",
            ),
            (
                "CARDGATE__ADMIN__SESSION_LIFETIME_SECONDS",
                "18446744073709551615",
                "`admin.session_lifetime_seconds` (CARDGATE__ADMIN__SESSION_LIFETIME_SECONDS)",
            ),
            (
                "CARDGATE__DATABASE__STATEMENT_TIMEOUT_MS",
                "0",
                "`database.statement_timeout_ms` (CARDGATE__DATABASE__STATEMENT_TIMEOUT_MS) is \
                 0: at least 100",
            ),
            (
                "CARDGATE__TOKEN__PUSH_LIFETIME_SECONDS",
                "59",
                "`token.push_lifetime_seconds`",
            ),
        ] {
            let err = Settings::load(&source(&[(variable, value)]))
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Settings::load(&source(&[("CARDGATE__TOKEN__ISUER", "x")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("isuer"), "{err}");
    }

    #[test]
    fn the_log_format_is_text_or_json_and_anything_else_is_refused_naming_the_setting() {
        let settings = Settings::load(&source(&[])).unwrap();
        assert_eq!(settings.log.format, LogFormat::Text);
        let settings = Settings::load(&source(&[("CARDGATE__LOG__FORMAT", "json")])).unwrap();
        assert_eq!(settings.log.format, LogFormat::Json);
        let err = Settings::load(&source(&[("CARDGATE__LOG__FORMAT", "yaml")]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("yaml") && err.contains("`log.format`"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_profile_is_named() {
        let mut s = source(&[]);
        s.profile = Some("nope".into());
        let err = Settings::load(&s).unwrap_err().to_string();
        assert!(err.contains("nope.toml"), "{err}");
    }

    #[test]
    fn a_missing_key_names_the_setting_and_its_variables() {
        let settings = Settings::load(&source(&[])).unwrap();
        let err = settings.minter().unwrap_err().to_string();
        assert!(err.contains("token.key"), "{err}");
        assert!(err.contains("REGISTRY_TOKEN_AUTH_CERT_KEY"), "{err}");
    }

    #[test]
    fn the_key_is_not_in_debug_output() {
        let settings = Settings::load(&source(&[(
            "CARDGATE__TOKEN__KEY",
            "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----",
        )]))
        .unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("c2VjcmV0"), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
    }

    #[test]
    fn pem_settings_take_text_a_path_or_base64() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let path = std::env::temp_dir().join(format!("cardgate-pem-{}", std::process::id()));
        std::fs::write(&path, pem).unwrap();
        assert_eq!(read_pem("token.certificate", pem).unwrap(), pem.trim());
        assert_eq!(
            read_pem("token.certificate", path.to_str().unwrap()).unwrap(),
            pem
        );
        assert_eq!(
            read_pem("token.certificate", &STANDARD.encode(pem)).unwrap(),
            pem
        );
        std::fs::remove_file(&path).unwrap();
        for bad in ["", "/no/such/file.pem", "bm90IGEgcGVt"] {
            let err = read_pem("token.certificate", bad).unwrap_err().to_string();
            assert!(err.contains("REGISTRY_TOKEN_AUTH_CERT"), "{err}");
        }
    }

    #[test]
    fn kids_are_taken_plain_or_base64() {
        let kid = "PF3H:26FR:LYS3:TIYU:2JUI:A2HE:7ZXT:G3B5:HX74:5UEB:SNU2:B5JL";
        assert_eq!(decode_kid("token.kid", kid).unwrap(), kid);
        assert_eq!(
            decode_kid(
                "token.kid",
                "UEYzSDoyNkZSOkxZUzM6VElZVToySlVJOkEySEU6N1pYVDpHM0I1OkhYNzQ6NVVFQjpTTlUyOkI1Skw="
            )
            .unwrap(),
            kid
        );
        assert!(
            decode_kid("token.kid", "garbage")
                .unwrap_err()
                .to_string()
                .contains("REGISTRY_TOKEN_AUTH_CERT_KID")
        );
    }

    #[test]
    fn per_class_lifetimes_default_to_lifetime_seconds() {
        let settings = Settings::load(&source(&[])).unwrap();
        assert_eq!(settings.token.pull_lifetime_seconds, None);
        let lifetimes = settings.token_lifetimes().unwrap();
        assert_eq!(
            lifetimes,
            TokenLifetimes::uniform(Duration::from_secs(300)).unwrap()
        );
        let settings = Settings::load(&source(&[
            ("CARDGATE__TOKEN__LIFETIME_SECONDS", "600"),
            ("CARDGATE__TOKEN__PUSH_LIFETIME_SECONDS", "3600"),
            ("CARDGATE__TOKEN__ROBOT_LIFETIME_SECONDS", ""),
        ]))
        .unwrap();
        let lifetimes = settings.token_lifetimes().unwrap();
        assert_eq!(lifetimes.of(LifetimeClass::Pull), Duration::from_secs(600));
        assert_eq!(lifetimes.of(LifetimeClass::Push), Duration::from_secs(3600));
        assert_eq!(lifetimes.longest(), Duration::from_secs(3600));
    }

    #[test]
    fn previous_keys_and_x5c_are_read_from_a_configuration_file() {
        let dir = std::env::temp_dir().join(format!("cardgate-previous-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("rotation.toml"),
            r#"
[token]
x5c = true
pull_lifetime_seconds = 120

[[token.previous]]
certificate = "/etc/cardgate/old.crt"
kid = "PF3H:26FR:LYS3:TIYU:2JUI:A2HE:7ZXT:G3B5:HX74:5UEB:SNU2:B5JL"

[[token.previous]]
key = "-----BEGIN EC PRIVATE KEY-----\nc2VjcmV0\n-----END EC PRIVATE KEY-----"
"#,
        )
        .unwrap();
        let settings = Settings::load(&SettingsSource {
            config_dir: dir.clone(),
            profile: Some("rotation".into()),
            env: HashMap::new(),
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(settings.token.x5c);
        assert_eq!(settings.token.pull_lifetime_seconds, Some(120));
        assert_eq!(settings.token.previous.len(), 2);
        assert_eq!(
            settings.token.previous[0].certificate.as_deref(),
            Some("/etc/cardgate/old.crt")
        );
        assert!(settings.token.previous[1].key.is_some());
        let debug = format!("{settings:?}");
        assert!(!debug.contains("c2VjcmV0"), "{debug}");
    }

    #[test]
    fn unknown_keys_of_a_previous_entry_are_refused() {
        let dir = std::env::temp_dir().join(format!("cardgate-prev-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("bad.toml"),
            "[[token.previous]]\ncertficate = \"x\"\n",
        )
        .unwrap();
        let err = Settings::load(&SettingsSource {
            config_dir: dir.clone(),
            profile: Some("bad".into()),
            env: HashMap::new(),
        })
        .unwrap_err()
        .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("certficate"), "{err}");
    }
}
