//! Static users: names and password hashes from configuration (and htpasswd files).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use async_trait::async_trait;
use cardgate_authz::{Authentication, Authenticator, Credentials, Identity, PluginError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::ConfigError;

const NAME: &str = "static";

/// `[authn.static]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersConfig {
    /// The users. An entry with an empty `name` and no password enables anonymous access.
    #[serde(default)]
    pub users: Vec<UserConfig>,
    /// htpasswd files (`name:$2y$...` lines, bcrypt) whose users are added.
    #[serde(default)]
    pub htpasswd: Vec<PathBuf>,
}

/// One `[[authn.static.users]]` entry.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    pub name: String,
    /// An argon2id PHC string (`$argon2id$...`) or a bcrypt hash (`$2y$...`). Never plaintext.
    #[serde(default)]
    pub password: Option<String>,
}

/// Hashes are not shown: they are what an offline guessing attack needs.
impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

#[derive(Clone)]
enum Hash {
    Argon2(String),
    Bcrypt(String),
}

/// The kinds of hash, in the order checks run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Argon2,
    Bcrypt,
}

impl Hash {
    fn parse(account: &str, hash: &str) -> Result<Self, ConfigError> {
        let bad = |why: String| ConfigError(format!("user `{account}`: {why}"));
        if hash.starts_with("$argon2id$") {
            PasswordHash::new(hash).map_err(|e| bad(format!("invalid argon2id hash: {e}")))?;
            Ok(Hash::Argon2(hash.to_owned()))
        } else if ["$2a$", "$2b$", "$2x$", "$2y$"]
            .iter()
            .any(|p| hash.starts_with(p))
        {
            hash.parse::<bcrypt::HashParts>()
                .map_err(|e| bad(format!("invalid bcrypt hash: {e}")))?;
            Ok(Hash::Bcrypt(hash.to_owned()))
        } else {
            Err(bad(
                "password must be an argon2id hash (`cardgate hash-password`) or a bcrypt hash"
                    .into(),
            ))
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Hash::Argon2(_) => Kind::Argon2,
            Hash::Bcrypt(_) => Kind::Bcrypt,
        }
    }

    fn verify(&self, password: &[u8]) -> bool {
        match self {
            Hash::Argon2(phc) => Argon2::default()
                .verify_password(password, phc.as_str())
                .is_ok(),
            Hash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
        }
    }
}

/// Hashes a password with argon2id and a random salt, as a PHC string for the configuration.
pub fn hash_password(password: &SecretString) -> Result<String, ConfigError> {
    Argon2::default()
        .hash_password(password.expose_secret().as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ConfigError(format!("hashing failed: {e}")))
}

/// Authenticates the configured users. Unknown accounts are [`Authentication::NotMine`] after
/// a verification against a dummy hash, so they cost what a wrong password costs. When argon2id
/// and bcrypt hashes are both configured, every check runs one of each kind (the user's own and
/// a dummy of the other kind), so the kind of hash does not reveal which accounts exist.
pub struct StaticUsers {
    users: Arc<HashMap<String, Hash>>,
    anonymous: bool,
    /// One dummy per kind of hash configured (argon2id at least).
    dummies: Arc<Vec<Hash>>,
}

impl std::fmt::Debug for StaticUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticUsers")
            .field("users", &self.users.len())
            .field("anonymous", &self.anonymous)
            .finish()
    }
}

impl StaticUsers {
    pub fn new(config: &UsersConfig) -> Result<Self, ConfigError> {
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
                        .insert(name.to_owned(), Hash::parse(name, hash)?)
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
        let mut dummies = vec![Hash::Argon2(hash_password(&SecretString::from(
            "cardgate-dummy-password",
        ))?)];
        let bcrypt_cost = users
            .values()
            .filter_map(|h| match h {
                Hash::Bcrypt(hash) => hash.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost()),
                Hash::Argon2(_) => None,
            })
            .max();
        if let Some(cost) = bcrypt_cost {
            let dummy = bcrypt::hash("cardgate-dummy-password", cost)
                .map_err(|e| ConfigError(format!("bcrypt: {e}")))?;
            dummies.push(Hash::Bcrypt(dummy));
        }
        Ok(StaticUsers {
            users: Arc::new(users),
            anonymous,
            dummies: Arc::new(dummies),
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
            Credentials::Password { username, password } => (username, password.clone()),
        };
        let known = self.users.get(username.as_str()).cloned();
        let (user, dummies) = (known.clone(), Arc::clone(&self.dummies));
        let matches = tokio::task::spawn_blocking(move || {
            let password = password.expose_secret().as_bytes();
            // One check per configured kind: the user's own hash for its kind, dummies otherwise.
            dummies.iter().fold(false, |matched, dummy| {
                match user.as_ref().filter(|u| u.kind() == dummy.kind()) {
                    Some(own) => own.verify(password) || matched,
                    None => {
                        dummy.verify(password);
                        matched
                    }
                }
            })
        })
        .await
        .map_err(|e| PluginError::internal(NAME, format!("password check failed: {e}")))?;
        Ok(match (known, matches) {
            (None, _) => Authentication::NotMine,
            (Some(_), true) => Authentication::Authenticated(Identity::new(username.clone(), NAME)),
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

    fn users(extra: &[UserConfig]) -> StaticUsers {
        let mut all = vec![UserConfig {
            name: "alice".into(),
            password: Some(hash_password(&SecretString::from("wonderland")).unwrap()),
        }];
        all.extend_from_slice(extra);
        StaticUsers::new(&UsersConfig {
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
        let open = users(&[UserConfig {
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
        let users = StaticUsers::new(&UsersConfig {
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
            let config = UsersConfig {
                users: entries
                    .into_iter()
                    .map(|(n, p)| UserConfig {
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
