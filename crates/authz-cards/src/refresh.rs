//! OAuth2 refresh tokens kept in the card store, as session cards of kind `refresh`.

use std::time::Duration;

use async_trait::async_trait;
use cardgate_authz::{Identity, PluginError, RefreshTokens};
use cardgate_store::{Card, CardType, GUEST_SLUG, SessionKind, Store};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::authn::{identity_kind, parse_session_token};
use crate::{NAME, plugin_error, user_slug};

/// Refresh tokens for users the [`CardAuthenticator`](crate::CardAuthenticator) vouched for.
///
/// A token is `<session id>.<64 hex digits>`: a session card with `data.kind = "refresh"`,
/// `data.client_id`, `data.service`, `data.password` (the user's active password card when it
/// was issued, or null) and only the SHA-256 of the secret. It is created by the user itself
/// (its `create` event names the user as actor), is not rotated on use, and redeems while it is
/// active and unexpired, for the same client and service, while the user is active and has the
/// same password card.
#[derive(Debug, Clone)]
pub struct CardRefreshTokens {
    store: Store,
    /// Active refresh tokens a user keeps per `client_id`; issuing one more revokes the oldest.
    max_per_client: u64,
}

/// Active refresh tokens a user keeps per `client_id` by default.
pub const DEFAULT_MAX_REFRESH_TOKENS_PER_CLIENT: u64 = 10;

impl CardRefreshTokens {
    pub fn new(store: Store) -> Self {
        CardRefreshTokens {
            store,
            max_per_client: DEFAULT_MAX_REFRESH_TOKENS_PER_CLIENT,
        }
    }

    /// At most `max` active refresh tokens per user and `client_id` (at least one): a new one
    /// revokes the oldest beyond.
    pub fn with_max_per_client(mut self, max: u64) -> Self {
        self.max_per_client = max.max(1);
        self
    }
}

/// Why a presented refresh token was refused: logged (with the session id at most, never the
/// token), never told to the client.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Malformed,
    Unknown,
    NotARefreshToken,
    Revoked,
    Expired,
    WrongSecret,
    OtherClient,
    OtherService,
    UserGone,
    PasswordChanged,
}

impl CardRefreshTokens {
    /// The identity the refresh session `id` with `secret` stands for, or why not.
    async fn check(
        &self,
        id: Uuid,
        secret: &str,
        client_id: &str,
        service: &str,
    ) -> Result<Result<Identity, Refusal>, PluginError> {
        let Some(card) = self.store.card_by_id(id).await.map_err(plugin_error)? else {
            return Ok(Err(Refusal::Unknown));
        };
        let Some(session) = card
            .session()
            .ok()
            .filter(|s| s.kind == SessionKind::Refresh)
        else {
            return Ok(Err(Refusal::NotARefreshToken));
        };
        if !session.secret_matches(secret) {
            return Ok(Err(Refusal::WrongSecret));
        }
        if !session.active {
            return Ok(Err(Refusal::Revoked));
        }
        if session.is_expired_at(OffsetDateTime::now_utc()) {
            return Ok(Err(Refusal::Expired));
        }
        if session.client_id.as_deref() != Some(client_id) {
            return Ok(Err(Refusal::OtherClient));
        }
        if session.service.as_deref() != Some(service) {
            return Ok(Err(Refusal::OtherService));
        }
        let user = self
            .store
            .card_by_id(session.actor)
            .await
            .map_err(plugin_error)?;
        let Some(user) = user.filter(|u| u.active && u.is(CardType::User)) else {
            return Ok(Err(Refusal::UserGone));
        };
        let current = self
            .store
            .password_card_id(user.id)
            .await
            .map_err(plugin_error)?;
        if current != session.password_card {
            return Ok(Err(Refusal::PasswordChanged));
        }
        Ok(Ok(Identity {
            session: Some(session.id.to_string()),
            kind: identity_kind(&user),
            ..Identity::new(account_of(&user), NAME)
        }))
    }
}

/// The account name of a user card: its slug without `user-`.
fn account_of(user: &Card) -> String {
    crate::account_of(&user.slug).to_owned()
}

#[async_trait]
impl RefreshTokens for CardRefreshTokens {
    async fn issue(
        &self,
        identity: &Identity,
        client_id: &str,
        service: &str,
        lifetime: Duration,
    ) -> Result<Option<SecretString>, PluginError> {
        // Only users this store vouched for by password: a session's holder must not turn it
        // into a longer-lived, unscoped credential.
        if identity.authenticator != NAME || identity.is_anonymous() || identity.session.is_some() {
            return Ok(None);
        }
        let slug = user_slug(&identity.account);
        if slug == GUEST_SLUG {
            return Ok(None);
        }
        let Some(user) = self
            .store
            .card_by_slug(&slug)
            .await
            .map_err(plugin_error)?
            .filter(|card| card.is(CardType::User))
        else {
            return Ok(None);
        };
        let expiration = time::Duration::try_from(lifetime)
            .ok()
            .and_then(|lifetime| OffsetDateTime::now_utc().checked_add(lifetime))
            .ok_or_else(|| {
                PluginError::internal(NAME, format!("refresh token lifetime {lifetime:?}"))
            })?;
        let issued = self
            .store
            .create_refresh_session(&user, client_id, service, expiration, self.max_per_client)
            .await
            .map_err(plugin_error)?;
        tracing::info!(
            session = %issued.card.id,
            account = %identity.account,
            "refresh token issued"
        );
        Ok(Some(issued.token))
    }

    async fn redeem(
        &self,
        token: &SecretString,
        client_id: &str,
        service: &str,
    ) -> Result<Option<Identity>, PluginError> {
        let outcome = match parse_session_token(token.expose_secret()) {
            None => Err((None, Refusal::Malformed)),
            Some((id, secret)) => self
                .check(id, secret, client_id, service)
                .await?
                .map_err(|refusal| (Some(id), refusal)),
        };
        match outcome {
            Ok(identity) => Ok(Some(identity)),
            Err((session, refusal)) => {
                tracing::info!(
                    session = session.map(|s| s.to_string()),
                    reason = ?refusal,
                    "refresh token refused"
                );
                Ok(None)
            }
        }
    }
}
