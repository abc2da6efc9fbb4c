//! Static plugins configured from the configuration file, in the spirit of docker_auth's static
//! users and ACL: [`StaticUsers`] authenticates accounts with argon2id (or, for imported
//! htpasswd files, bcrypt) hashes; [`StaticAcl`] decides scopes with ordered first-match rules.
//!
//! Depends on the plugin seam, the token core and the password checker only; knows nothing of
//! HTTP or databases.

mod acl;
mod users;

pub use acl::{AclSettings, RuleSettings, StaticAcl};
pub use users::{StaticUsers, UserSettings, UsersSettings, hash_password};

/// A static plugin's configuration is invalid. The message names the entry at fault.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);
