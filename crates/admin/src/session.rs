//! Logging in and out, and who a session token speaks for. Only login sessions are admin
//! credentials: a CI token or a refresh token never is.

use cardgate_authz::{Authentication, Authenticator, Credentials, PluginError};
use cardgate_authz_cards::user_slug;
use cardgate_store::{Card, IssuedSession, SessionKind};
use secrecy::SecretString;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Admin, AdminError, Caller, Result};

/// A new login session: its token (shown once), its user, and when it ends.
#[derive(Debug)]
pub struct LoginSession {
    pub session: IssuedSession,
    pub user: Card,
    pub expires: OffsetDateTime,
}

impl Admin {
    /// Logs in with a password: a new login session of the account's user, lasting the
    /// session lifetime. A session token is not a password: logging in needs the password.
    /// [`AdminError::BadLogin`] says whether the password was checked and found wrong (what a
    /// throttle counts).
    pub async fn log_in(&self, credentials: &Credentials) -> Result<LoginSession> {
        let identity = match self
            .authenticator
            .authenticate(credentials)
            .await
            .map_err(AdminError::Backend)?
        {
            Authentication::Authenticated(identity) if identity.session.is_none() => identity,
            Authentication::Authenticated(_) => return Err(AdminError::BadLogin { wrong: false }),
            Authentication::Rejected | Authentication::NotMine => {
                return Err(AdminError::BadLogin { wrong: true });
            }
        };
        let user = self
            .store
            .card_by_slug(&user_slug(&identity.account))
            .await?
            .ok_or(AdminError::BadLogin { wrong: false })?;
        // `admin.session_lifetime_seconds` is range-checked at start-up; never overflow anyway.
        let expires = time::Duration::try_from(self.session_lifetime)
            .ok()
            .and_then(|lifetime| OffsetDateTime::now_utc().checked_add(lifetime))
            .ok_or_else(|| {
                AdminError::Backend(PluginError::internal(
                    "admin",
                    format!("session lifetime {:?}", self.session_lifetime),
                ))
            })?;
        let session = self.store.create_login_session(&user, expires).await?;
        Ok(LoginSession {
            session,
            user,
            expires,
        })
    }

    /// The caller the session token `token` (`<session id>.<secret>`, of the session
    /// `session_id`) speaks for: only a login session, of an active user, unexpired, whose
    /// secret matches (the card authenticator compares hashes in constant time). Anything else
    /// is [`AdminError::Unauthenticated`].
    pub async fn session_caller(&self, session_id: Uuid, token: &str) -> Result<Caller> {
        let actor = self
            .store
            .card_by_id(session_id)
            .await?
            .and_then(|card| card.session().ok())
            .filter(|session| session.kind == SessionKind::Login)
            .map(|session| session.actor)
            .ok_or(AdminError::Unauthenticated)?;
        let user = self
            .store
            .card_by_id(actor)
            .await?
            .filter(|u| u.active)
            .ok_or(AdminError::Unauthenticated)?;
        let credentials = Credentials::Password {
            username: user.slug.clone(),
            password: SecretString::from(token),
        };
        match self
            .authenticator
            .authenticate(&credentials)
            .await
            .map_err(AdminError::Backend)?
        {
            Authentication::Authenticated(identity) if identity.session.is_some() => {}
            _ => return Err(AdminError::Unauthenticated),
        }
        let mut caller = self
            .caller(user.id)
            .await?
            .ok_or(AdminError::Unauthenticated)?;
        caller.session = Some(session_id);
        Ok(caller)
    }

    /// Ends the caller's login session; a caller not speaking through one has none to end.
    pub async fn log_out(&self, caller: &Caller) -> Result<()> {
        let session = caller.session.ok_or(AdminError::Unauthenticated)?;
        self.store.deactivate(&caller.card, session, None).await?;
        Ok(())
    }
}
