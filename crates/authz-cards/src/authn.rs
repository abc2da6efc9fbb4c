//! Authentication against the card store.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use cardgate_authz::{
    Authentication, Authenticator, Credentials, Identity, IdentityKind, PluginError,
};
use cardgate_password::{HashedPassword, VerifiedCredentials, default_decoy};
use cardgate_store::{Card, CardType, GUEST_SLUG, Store};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::cache::{CacheSettings, Tag, store_changes, tags};
use crate::{NAME, account_of, plugin_error, user_slug};

/// Authenticates users of the card store.
///
/// - Basic `alice` (or `user-alice`) with a session token `<session id>.<secret>`: the session
///   must be an ordinary one (never a refresh token), active, the user's, unexpired, and the
///   SHA-256 of the secret must match (compared in constant time).
/// - Basic `alice` with a password: the argon2id hash of the user's password card, checked by
///   the process's bounded password checker (`cardgate_password::verify`). Unknown users
///   (and a hash that cannot be read) are checked against the default decoy, so they cost
///   what a wrong password costs.
/// - No credentials: the `user-guest` actor (account `""`).
///
/// Verified credentials are cached (see [`CacheSettings`]) under an HMAC-SHA256 of the user
/// name and password with a key drawn at start-up, never the credentials themselves; a
/// session's entry ends with the session. An entry is dropped when the user card, the user's
/// password or the session changes (see the `cache` module), and only then.
#[derive(Debug, Clone)]
pub struct CardAuthenticator {
    store: Store,
    verified: Arc<VerifiedCredentials<Identity>>,
}

impl CardAuthenticator {
    /// An authenticator with the default cache settings.
    pub fn new(store: Store) -> Result<Self, PluginError> {
        Self::with_cache(store, CacheSettings::default())
    }

    pub fn with_cache(store: Store, cache: CacheSettings) -> Result<Self, PluginError> {
        let verified = VerifiedCredentials::new(store_changes(&store), cache)
            .map_err(|e| PluginError::internal(NAME, e.to_string()))?;
        Ok(CardAuthenticator {
            verified: Arc::new(verified),
            store,
        })
    }
}

/// `<uuid>.<64 hex>`: the shape of a session token (and of a refresh token).
pub(crate) fn parse_session_token(password: &str) -> Option<(Uuid, &str)> {
    let (id, secret) = password.split_once('.')?;
    let id = Uuid::parse_str(id).ok()?;
    (secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, secret))
}

impl CardAuthenticator {
    /// Whether `password` matches `hash`; with no hash (an unknown user), or one that cannot
    /// be read, a check against the default decoy that is never a match.
    async fn check_password(
        &self,
        hash: Option<String>,
        password: &SecretString,
    ) -> Result<bool, PluginError> {
        let hash = hash.and_then(|hash| HashedPassword::argon2(&hash).ok());
        let matches = cardgate_password::verify(hash.as_ref().unwrap_or(default_decoy()), password)
            .await
            .map_err(|e| PluginError::internal(NAME, e.to_string()))?;
        Ok(hash.is_some() && matches)
    }

    /// The session's expiration, when `secret` opens the active, unexpired, ordinary session
    /// `id` of `user_id`.
    async fn check_session(
        &self,
        user_id: Uuid,
        id: Uuid,
        secret: &str,
    ) -> Result<Option<OffsetDateTime>, PluginError> {
        let card = self.store.card_by_id(id).await.map_err(plugin_error)?;
        let Some(session) = card.and_then(|card| card.session().ok()) else {
            return Ok(None);
        };
        Ok(session
            .opens_for(user_id, secret, OffsetDateTime::now_utc())
            .then_some(session.expiration))
    }

    /// Checks a user name and password (or session token) against the store.
    async fn verify(
        &self,
        username: &str,
        password: &SecretString,
    ) -> Result<Verified, PluginError> {
        let slug = user_slug(username);
        let user = if slug == GUEST_SLUG {
            None
        } else {
            self.store
                .card_by_slug(&slug)
                .await
                .map_err(plugin_error)?
                .filter(|card| card.is(CardType::User))
        };
        let account = account_of(&slug).to_owned();

        if let Some((session_id, secret)) = parse_session_token(password.expose_secret()) {
            return Ok(match user {
                None => {
                    // The same lookup as for a known user, so that timing does not tell them
                    // apart.
                    self.check_session(Uuid::nil(), session_id, secret).await?;
                    Verified::not(Authentication::NotMine)
                }
                Some(user) => match self.check_session(user.id, session_id, secret).await? {
                    Some(expiration) => Verified {
                        authentication: Authentication::Authenticated(Identity {
                            session: Some(session_id.to_string()),
                            kind: identity_kind(&user),
                            ..Identity::new(account, NAME)
                        }),
                        expiration: Some(expiration),
                        depends_on: tags([Tag::slug(&slug), Tag::card(session_id)]),
                    },
                    None => Verified::not(Authentication::Rejected),
                },
            });
        }

        let hash = match &user {
            Some(user) => self
                .store
                .password_hash(user.id)
                .await
                .map_err(plugin_error)?,
            None => None,
        };
        let matches = self.check_password(hash, password).await?;
        Ok(match (user, matches) {
            (None, _) => Verified::not(Authentication::NotMine),
            (Some(user), true) => Verified {
                authentication: Authentication::Authenticated(Identity {
                    kind: identity_kind(&user),
                    ..Identity::new(account, NAME)
                }),
                expiration: None,
                depends_on: tags([Tag::slug(&slug), Tag::password(user.id)]),
            },
            (Some(_), false) => Verified::not(Authentication::Rejected),
        })
    }
}

/// What credentials proved, until when (a session's expiration), and the facts that proof
/// rests on.
struct Verified {
    authentication: Authentication,
    expiration: Option<OffsetDateTime>,
    depends_on: Vec<u64>,
}

impl Verified {
    /// Credentials that proved nothing to keep.
    fn not(authentication: Authentication) -> Self {
        Verified {
            authentication,
            expiration: None,
            depends_on: Vec::new(),
        }
    }
}

/// The instant `at` falls on, when it is in the future.
fn instant_of(at: OffsetDateTime) -> Option<Instant> {
    let left = at - OffsetDateTime::now_utc();
    let left = std::time::Duration::try_from(left).ok()?;
    Instant::now().checked_add(left)
}

#[async_trait]
impl Authenticator for CardAuthenticator {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn authenticate(&self, credentials: &Credentials) -> Result<Authentication, PluginError> {
        let (username, password) = match credentials {
            Credentials::Anonymous => {
                return Ok(Authentication::Authenticated(Identity::anonymous(NAME)));
            }
            Credentials::Password { username, password } => (username, password),
        };
        let key = self.verified.key(username, password);
        if let Some(identity) = self.verified.get(&key) {
            return Ok(Authentication::Authenticated(identity));
        }
        let generation = self.verified.generation();
        let Verified {
            authentication,
            expiration,
            depends_on,
        } = self.verify(username, password).await?;
        if let (Some(generation), Authentication::Authenticated(identity)) =
            (generation, &authentication)
        {
            // A session's entry must not outlive it; a password's stays until a change evicts it.
            match expiration.map(instant_of) {
                None => self
                    .verified
                    .insert(generation, key, identity.clone(), None, depends_on),
                Some(Some(expires)) => {
                    self.verified.insert(
                        generation,
                        key,
                        identity.clone(),
                        Some(expires),
                        depends_on,
                    );
                }
                Some(None) => {}
            }
        }
        Ok(authentication)
    }
}

/// A user card with `data.robot = true` is a robot; every other user is a person.
pub(crate) fn identity_kind(user: &Card) -> IdentityKind {
    if user.data["robot"].as_bool() == Some(true) {
        IdentityKind::Robot
    } else {
        IdentityKind::User
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_tokens_have_a_uuid_and_64_hex_digits() {
        let id = Uuid::new_v4();
        let secret = "ab".repeat(32);
        assert_eq!(
            parse_session_token(&format!("{id}.{secret}")),
            Some((id, secret.as_str()))
        );
        for bad in [
            format!("{id}"),
            format!("{id}.{}", "ab".repeat(31)),
            format!("{id}.{}", "zz".repeat(32)),
            format!("not-a-uuid.{secret}"),
            "password".to_owned(),
        ] {
            assert_eq!(parse_session_token(&bad), None, "{bad}");
        }
    }
}
