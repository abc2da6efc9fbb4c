//! The cache of verified credentials: who a user name and password (or session token) proved
//! to be, kept under an HMAC of them, never the credentials themselves.

use std::time::Instant;

use aws_lc_rs::hmac;
use secrecy::{ExposeSecret, SecretString};

use crate::{Cache, CacheCounters, CacheSettings, Invalidation, PasswordError};

/// Hits and misses of every verified-credentials cache of the process.
pub static CREDENTIALS: CacheCounters = CacheCounters::new("credentials");

/// The HMAC-SHA256 of a user name and password under a cache's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CredentialsKey([u8; 32]);

/// Verified credentials and what they proved (`V`), keyed by [`CredentialsKey`] with a key
/// drawn when the cache is made: the cache holds nothing a password could be read or guessed
/// from without the process's memory. Only credentials that verified are kept; a wrong
/// password is checked every time.
pub struct VerifiedCredentials<V> {
    key: hmac::Key,
    cache: Cache<CredentialsKey, V>,
}

impl<V> std::fmt::Debug for VerifiedCredentials<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedCredentials")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl<V: Clone> VerifiedCredentials<V> {
    pub fn new(invalidation: Invalidation, settings: CacheSettings) -> Result<Self, PasswordError> {
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| PasswordError::Key)?;
        Ok(VerifiedCredentials {
            key,
            cache: Cache::new(invalidation, settings, &CREDENTIALS),
        })
    }

    /// The key of a user name and password: their HMAC (the name's length first, so that no
    /// two pairs share an input).
    pub fn key(&self, username: &str, password: &SecretString) -> CredentialsKey {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(&(username.len() as u64).to_be_bytes());
        context.update(username.as_bytes());
        context.update(password.expose_secret().as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(context.sign().as_ref());
        CredentialsKey(key)
    }

    /// What the credentials of `key` proved, when that is cached and still true.
    pub fn get(&self, key: &CredentialsKey) -> Option<V> {
        self.cache.get(key)
    }

    /// The generation to verify credentials at (read before verifying), or `None` when what
    /// they prove may not be cached now.
    pub fn generation(&self) -> Option<u64> {
        self.cache.generation()
    }

    /// Keeps what the credentials of `key`, verified at `generation` from the facts named by
    /// `depends_on` (the user, its password, the session), proved: until `expires` (a
    /// session's end, say) or until one of those facts changes (a cache without invalidation:
    /// at most its TTL).
    pub fn insert(
        &self,
        generation: u64,
        key: CredentialsKey,
        value: V,
        expires: Option<Instant>,
        depends_on: Vec<u64>,
    ) {
        self.cache
            .insert(generation, key, value, expires, depends_on);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn credentials_are_keyed_by_name_and_password_under_a_key_of_each_cache() {
        let settings = CacheSettings {
            capacity: 10,
            ttl: Duration::from_secs(60),
        };
        let cache = VerifiedCredentials::new(Invalidation::Never, settings).unwrap();
        let other = VerifiedCredentials::<&str>::new(Invalidation::Never, settings).unwrap();
        let right = SecretString::from("wonderland");
        let key = cache.key("alice", &right);
        assert_eq!(key, cache.key("alice", &right));
        assert_ne!(key, cache.key("alice", &SecretString::from("wonderlanD")));
        // The name's length comes first: `ab` + `c...` is not `a` + `bc...`.
        assert_ne!(
            cache.key("ab", &SecretString::from("c")),
            cache.key("a", &SecretString::from("bc"))
        );
        assert_ne!(key, other.key("alice", &right));

        let generation = cache.generation().unwrap();
        cache.insert(generation, key, "alice", None, Vec::new());
        assert_eq!(cache.get(&key), Some("alice"));
        assert_eq!(
            cache.get(&cache.key("alice", &SecretString::from("x"))),
            None
        );
        assert_eq!(other.get(&key), None);
    }
}
