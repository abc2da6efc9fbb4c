//! Static users: names and password hashes from configuration (and htpasswd files).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use argon2::{Argon2, PasswordHasher};
use async_trait::async_trait;
use cardgate_authz::{Authentication, Authenticator, Credentials, Identity, PluginError};
use cardgate_password::{
    CacheSettings, Decoys, HashedPassword, Invalidation, PasswordError, VerifiedCredentials,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::ConfigError;

const NAME: &str = "static";

/// `[authn.static]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersSettings {
    /// The users. An entry with an empty `name` and no password enables anonymous access.
    #[serde(default)]
    pub users: Vec<UserSettings>,
    /// htpasswd files (`name:$2y$...` lines, bcrypt) whose users are added.
    #[serde(default)]
    pub htpasswd: Vec<PathBuf>,
}

/// One `[[authn.static.users]]` entry.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    pub name: String,
    /// An argon2id PHC string (`$argon2id$...`) or a bcrypt hash (`$2y$...`). Never plaintext.
    #[serde(default)]
    pub password: Option<String>,
}

/// Hashes are not shown: they are what an offline guessing attack needs.
impl std::fmt::Debug for UserSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSettings")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// A configured hash: an argon2id PHC string or a bcrypt hash, nothing else.
fn parse_hash(account: &str, hash: &str) -> Result<HashedPassword, ConfigError> {
    let bad = |e: PasswordError| ConfigError(format!("user `{account}`: {e}"));
    if hash.starts_with("$argon2id$") {
        HashedPassword::argon2(hash).map_err(bad)
    } else if ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|p| hash.starts_with(p))
    {
        HashedPassword::bcrypt(hash).map_err(bad)
    } else {
        Err(ConfigError(format!(
            "user `{account}`: password must be an argon2id hash (`cardgate hash-password`) or a \
             bcrypt hash"
        )))
    }
}

/// Hashes a password with argon2id and a random salt, as a PHC string for the configuration.
pub fn hash_password(password: &SecretString) -> Result<String, ConfigError> {
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ConfigError(format!("hashing failed: {e}")))
}

/// Authenticates the configured users.
///
/// Every check goes through the process's bounded password checker
/// (`cardgate_password::verify`: one per core at a time, argon2 buffers kept), argon2id and
/// bcrypt alike. A known user costs one check against their own hash. An unknown name costs
/// one check against a decoy of the same kind and cost as one of the configured hashes,
/// always the same one for the same name (see [`Decoys`]), and is [`Authentication::NotMine`]:
/// with users of both kinds, unknown names cost an argon2id check or a bcrypt one in the
/// proportions the users do, so neither cost tells that a name exists.
///
/// Verified credentials are cached (see [`CacheSettings`]) under an HMAC-SHA256 of the name
/// and password with a key drawn at start-up. The users never change while the process runs,
/// so entries end only with the TTL, or when the cache is full.
pub struct StaticUsers {
    users: Arc<HashMap<String, HashedPassword>>,
    anonymous: bool,
    decoys: Arc<Decoys>,
    verified: Arc<VerifiedCredentials<Identity>>,
}

impl std::fmt::Debug for StaticUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticUsers")
            .field("users", &self.users.len())
            .field("anonymous", &self.anonymous)
            .finish_non_exhaustive()
    }
}

impl StaticUsers {
    /// The configured users, with the default cache settings.
    pub fn new(config: &UsersSettings) -> Result<Self, ConfigError> {
        Self::with_cache(config, CacheSettings::default())
    }

    pub fn with_cache(config: &UsersSettings, cache: CacheSettings) -> Result<Self, ConfigError> {
        let mut users = HashMap::new();
        let mut anonymous = false;
        let mut add = |name: &str, password: Option<&str>| -> Result<(), ConfigError> {
            match (name, password) {
                ("", None) => {
                    anonymous = true;
                    return Ok(());
                }
                ("", Some(_)) => {
                    return Err(ConfigError(
                        "the anonymous user (empty name) cannot have a password".into(),
                    ));
                }
                (name, None) => {
                    return Err(ConfigError(format!("user `{name}` has no password")));
                }
                (name, Some(hash)) => {
                    if users
                        .insert(name.to_owned(), parse_hash(name, hash)?)
                        .is_some()
                    {
                        return Err(ConfigError(format!("user `{name}` is listed twice")));
                    }
                }
            }
            Ok(())
        };
        for user in &config.users {
            add(&user.name, user.password.as_deref())?;
        }
        for path in &config.htpasswd {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("htpasswd file {}: {e}", path.display())))?;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (name, hash) = line.split_once(':').ok_or_else(|| {
                    ConfigError(format!(
                        "htpasswd file {} line {}: expected name:hash",
                        path.display(),
                        number + 1
                    ))
                })?;
                add(name, Some(hash))?;
            }
        }
        // By name, so that each unknown name gets the same decoy on every start.
        let mut names: Vec<&String> = users.keys().collect();
        names.sort();
        let decoys = Decoys::of(names.into_iter().filter_map(|name| users.get(name)));
        let verified = VerifiedCredentials::new(Invalidation::Never, cache)
            .map_err(|e| ConfigError(format!("credentials cache: {e}")))?;
        Ok(StaticUsers {
            users: Arc::new(users),
            anonymous,
            decoys: Arc::new(decoys),
            verified: Arc::new(verified),
        })
    }
}

#[async_trait]
impl Authenticator for StaticUsers {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn authenticate(&self, credentials: &Credentials) -> Result<Authentication, PluginError> {
        let (username, password) = match credentials {
            Credentials::Anonymous if self.anonymous => {
                return Ok(Authentication::Authenticated(Identity::anonymous(NAME)));
            }
            Credentials::Anonymous => return Ok(Authentication::NotMine),
            Credentials::Password { username, password } => (username, password),
        };
        let key = self.verified.key(username, password);
        if let Some(identity) = self.verified.get(&key) {
            return Ok(Authentication::Authenticated(identity));
        }
        let known = self.users.get(username.as_str());
        let hash = known.unwrap_or_else(|| self.decoys.for_name(username));
        let matches = cardgate_password::verify(hash, password)
            .await
            .map_err(|e| PluginError::internal(NAME, e.to_string()))?;
        Ok(match (known, matches) {
            (None, _) => Authentication::NotMine,
            (Some(_), true) => {
                let identity = Identity::new(username.clone(), NAME);
                if let Some(generation) = self.verified.generation() {
                    self.verified
                        .insert(generation, key, identity.clone(), None, Vec::new());
                }
                Authentication::Authenticated(identity)
            }
            (Some(_), false) => Authentication::Rejected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(user: &str, pw: &str) -> Credentials {
        Credentials::Password {
            username: user.into(),
            password: SecretString::from(pw),
        }
    }

    fn users(extra: &[UserSettings]) -> StaticUsers {
        let mut all = vec![UserSettings {
            name: "alice".into(),
            password: Some(hash_password(&SecretString::from("wonderland")).unwrap()),
        }];
        all.extend_from_slice(extra);
        StaticUsers::new(&UsersSettings {
            users: all,
            htpasswd: vec![],
        })
        .unwrap()
    }

    #[tokio::test]
    async fn argon2id_users_authenticate_with_the_right_password_only() {
        let users = users(&[]);
        assert_eq!(
            users
                .authenticate(&password("alice", "wonderland"))
                .await
                .unwrap(),
            Authentication::Authenticated(Identity::new("alice", "static"))
        );
        assert_eq!(
            users
                .authenticate(&password("alice", "wrong"))
                .await
                .unwrap(),
            Authentication::Rejected
        );
        assert_eq!(
            users
                .authenticate(&password("mallory", "wonderland"))
                .await
                .unwrap(),
            Authentication::NotMine
        );
    }

    #[tokio::test]
    async fn anonymous_only_with_an_empty_name_entry() {
        assert_eq!(
            users(&[])
                .authenticate(&Credentials::Anonymous)
                .await
                .unwrap(),
            Authentication::NotMine
        );
        let open = users(&[UserSettings {
            name: String::new(),
            password: None,
        }]);
        assert_eq!(
            open.authenticate(&Credentials::Anonymous).await.unwrap(),
            Authentication::Authenticated(Identity::anonymous("static"))
        );
        // An empty user name with a password is not the anonymous entry.
        assert_eq!(
            open.authenticate(&password("", "x")).await.unwrap(),
            Authentication::NotMine
        );
    }

    #[tokio::test]
    async fn htpasswd_bcrypt_users_authenticate() {
        let dir = std::env::temp_dir().join(format!("cardgate-htpasswd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("htpasswd");
        let hash = bcrypt::hash("builder", 4)
            .unwrap()
            .replacen("$2b$", "$2y$", 1);
        std::fs::write(&file, format!("# CI robots\nci:{hash}\n")).unwrap();
        let users = StaticUsers::new(&UsersSettings {
            users: vec![],
            htpasswd: vec![file],
        })
        .unwrap();
        assert!(matches!(
            users
                .authenticate(&password("ci", "builder"))
                .await
                .unwrap(),
            Authentication::Authenticated(_)
        ));
        assert_eq!(
            users.authenticate(&password("ci", "nope")).await.unwrap(),
            Authentication::Rejected
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn htpasswd_users(dir_tag: &str, lines: &str, extra: &[UserSettings]) -> StaticUsers {
        let dir = std::env::temp_dir().join(format!(
            "cardgate-htpasswd-{dir_tag}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("htpasswd");
        std::fs::write(&file, lines).unwrap();
        let users = StaticUsers::new(&UsersSettings {
            users: extra.to_vec(),
            htpasswd: vec![file],
        })
        .unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        users
    }

    /// The median time `users` takes to answer `user` with `pw`, over several tries.
    async fn median_time(users: &StaticUsers, user: &str, pw: &str) -> std::time::Duration {
        let mut samples = Vec::new();
        for _ in 0..7 {
            let started = std::time::Instant::now();
            users.authenticate(&password(user, pw)).await.unwrap();
            samples.push(started.elapsed());
        }
        samples.sort();
        samples[samples.len() / 2]
    }

    /// A cost-4 bcrypt check takes about a millisecond; a default argon2id check tens of
    /// them. A path that ran both would take at least the argon2id time.
    #[tokio::test]
    async fn a_bcrypt_user_costs_a_bcrypt_check_and_no_argon2id_one() {
        let hash = bcrypt::hash("builder", 4).unwrap();
        let users = htpasswd_users(
            "mixed",
            &format!("ci:{hash}\n"),
            &[UserSettings {
                name: "alice".into(),
                password: Some(hash_password(&SecretString::from("wonderland")).unwrap()),
            }],
        );
        let bcrypt = median_time(&users, "ci", "wrong").await;
        let argon2id = median_time(&users, "alice", "wrong").await;
        assert!(
            bcrypt * 3 < argon2id,
            "bcrypt user {bcrypt:?}, argon2id user {argon2id:?}"
        );
    }

    #[tokio::test]
    async fn with_only_bcrypt_users_an_unknown_name_costs_a_bcrypt_check() {
        let hash = bcrypt::hash("builder", 4).unwrap();
        let argon2id = users(&[]);
        let users = htpasswd_users("bcrypt", &format!("ci:{hash}\n"), &[]);
        let unknown = median_time(&users, "ghost", "wrong").await;
        let known = median_time(&users, "ci", "wrong").await;
        let argon2id_unknown = median_time(&argon2id, "ghost", "wrong").await;
        assert!(
            unknown * 3 < argon2id_unknown,
            "unknown name among bcrypt users {unknown:?}, among argon2id users \
             {argon2id_unknown:?} (known bcrypt user {known:?})"
        );
        assert_eq!(
            users
                .authenticate(&password("ghost", "builder"))
                .await
                .unwrap(),
            Authentication::NotMine
        );
    }

    #[tokio::test]
    async fn verified_credentials_are_cached_and_wrong_ones_are_checked_every_time() {
        let users = users(&[]);
        let started = std::time::Instant::now();
        let first = users
            .authenticate(&password("alice", "wonderland"))
            .await
            .unwrap();
        let checked = started.elapsed();
        assert_eq!(
            first,
            Authentication::Authenticated(Identity::new("alice", "static"))
        );
        let mut cached = std::time::Duration::MAX;
        for _ in 0..5 {
            let started = std::time::Instant::now();
            let again = users
                .authenticate(&password("alice", "wonderland"))
                .await
                .unwrap();
            cached = cached.min(started.elapsed());
            assert_eq!(again, first);
        }
        assert!(
            cached * 10 < checked,
            "cached {cached:?}, checked {checked:?}"
        );
        let wrong = median_time(&users, "alice", "wonder").await;
        assert!(cached * 10 < wrong, "cached {cached:?}, wrong {wrong:?}");
        assert_eq!(
            users
                .authenticate(&password("alice", "wonder"))
                .await
                .unwrap(),
            Authentication::Rejected
        );

        let uncached = StaticUsers::with_cache(
            &UsersSettings {
                users: vec![UserSettings {
                    name: "alice".into(),
                    password: Some(hash_password(&SecretString::from("wonderland")).unwrap()),
                }],
                htpasswd: vec![],
            },
            CacheSettings {
                capacity: 0,
                ttl: std::time::Duration::from_secs(60),
            },
        )
        .unwrap();
        uncached
            .authenticate(&password("alice", "wonderland"))
            .await
            .unwrap();
        let right = median_time(&uncached, "alice", "wonderland").await;
        assert!(
            cached * 10 < right,
            "cached {cached:?}, with the cache off {right:?}"
        );
    }

    #[test]
    fn plaintext_and_duplicate_and_passwordless_entries_are_refused() {
        let cases = [
            (vec![("bob", Some("hunter2"))], "user `bob`"),
            (vec![("bob", None)], "user `bob` has no password"),
            (vec![("", Some("$argon2id$x"))], "anonymous"),
            (
                vec![
                    (
                        "bob",
                        Some("$2y$04$abcdefghijklmnopqrstuu5OE1yMT1m3pTWnH.1MuAsL9CiGP5Kqm"),
                    ),
                    (
                        "bob",
                        Some("$2y$04$abcdefghijklmnopqrstuu5OE1yMT1m3pTWnH.1MuAsL9CiGP5Kqm"),
                    ),
                ],
                "listed twice",
            ),
        ];
        for (entries, expected) in cases {
            let config = UsersSettings {
                users: entries
                    .into_iter()
                    .map(|(n, p)| UserSettings {
                        name: n.into(),
                        password: p.map(Into::into),
                    })
                    .collect(),
                htpasswd: vec![],
            };
            let err = StaticUsers::new(&config).unwrap_err().to_string();
            assert!(err.contains(expected), "{err} should mention {expected}");
        }
    }
}
