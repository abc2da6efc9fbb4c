//! The plugin seam: [`Authenticator`] (credentials → identity) and [`Authorizer`] (identity +
//! scope → granted actions), and the chains that run them in configured order with default
//! deny.
//!
//! This crate holds only the contracts and the chains. It knows nothing of HTTP, configuration
//! files or databases; each backend lives in a crate of its own.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use cardgate_token::{ActionSet, Scope};
use secrecy::SecretString;

/// What a client presented.
pub enum Credentials {
    /// No credentials at all.
    Anonymous,
    /// HTTP Basic (or the OAuth2 password grant): a user name and a secret.
    Password {
        username: String,
        password: SecretString,
    },
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Password { username, .. } => f
                .debug_struct("Password")
                .field("username", username)
                .finish_non_exhaustive(),
        }
    }
}

/// Who a request acts as, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The account name; empty for the anonymous identity.
    pub account: String,
    /// The authenticator that vouched for this identity.
    pub authenticator: &'static str,
    /// The session the credentials were, when they were one: authorizers may narrow what it
    /// reaches.
    pub session: Option<String>,
    /// A person or a robot: robots' tokens may live for a time of their own.
    pub kind: IdentityKind,
}

/// Who is behind an identity, as far as its authenticator knows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum IdentityKind {
    /// A user (or an anonymous client): the default.
    #[default]
    User,
    /// A machine account (CI), as its authenticator records it.
    Robot,
}

impl Identity {
    /// An identity vouched for by `authenticator`, not bound to a session, of kind
    /// [`IdentityKind::User`].
    pub fn new(account: impl Into<String>, authenticator: &'static str) -> Self {
        Identity {
            account: account.into(),
            authenticator,
            session: None,
            kind: IdentityKind::User,
        }
    }

    pub fn is_robot(&self) -> bool {
        self.kind == IdentityKind::Robot
    }

    pub fn anonymous(authenticator: &'static str) -> Self {
        Identity::new("", authenticator)
    }

    pub fn is_anonymous(&self) -> bool {
        self.account.is_empty()
    }
}

/// The outcome of one authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// The credentials are valid: this is who the client is.
    Authenticated(Identity),
    /// This authenticator does not know the account (or does not handle this kind of
    /// credentials); the next one is asked.
    NotMine,
    /// This authenticator knows the account and the credentials are wrong. The chain stops:
    /// the request fails, it is never passed on or downgraded to anonymous.
    Rejected,
}

/// The outcome of one authorizer for one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// This authorizer decides the scope: these are the actions policy allows (possibly none,
    /// which is an explicit denial). The chain stops.
    Allowed(ActionSet),
    /// This authorizer has no rule for the scope; the next one is asked.
    NoMatch,
}

/// A backend failed (unreachable database, broken file...). Never a denial: the request fails.
#[derive(Debug, thiserror::Error)]
#[error("{plugin}: {message}")]
pub struct PluginError {
    pub plugin: &'static str,
    pub message: String,
    pub unavailable: bool,
}

impl PluginError {
    /// A backend that cannot be reached at the moment: callers answer 503.
    pub fn unavailable(plugin: &'static str, message: impl Into<String>) -> Self {
        PluginError {
            plugin,
            message: message.into(),
            unavailable: true,
        }
    }

    /// Any other backend failure: callers answer 500.
    pub fn internal(plugin: &'static str, message: impl Into<String>) -> Self {
        PluginError {
            plugin,
            message: message.into(),
            unavailable: false,
        }
    }
}

/// Turns credentials into an identity.
///
/// Contract:
/// - Return [`Authentication::Authenticated`] only for credentials this backend verified
///   (for [`Credentials::Anonymous`], only when the backend allows anonymous access).
/// - Return [`Authentication::NotMine`] for accounts the backend does not know, so that the
///   next authenticator can try; it must not reveal whether the account exists elsewhere.
/// - Return [`Authentication::Rejected`] when the account is the backend's and the secret is
///   wrong. Unknown accounts and wrong secrets should cost the same time.
/// - Return `Err` only when the backend itself failed; never for bad credentials.
/// - Never log secrets.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// Short name, as used in configuration and logs.
    fn name(&self) -> &'static str;

    async fn authenticate(&self, credentials: &Credentials) -> Result<Authentication, PluginError>;
}

/// Decides what an identity may do with one scope.
///
/// Contract:
/// - Return [`Decision::Allowed`] with the actions policy allows for the scope's resource
///   (not intersected with what was asked: the chain does that), or an empty set to deny
///   explicitly and stop the chain.
/// - Return [`Decision::NoMatch`] when the backend has nothing to say about the scope.
/// - Return `Err` only when the backend itself failed; a failure is never a denial or a grant.
/// - [`Authorizer::authorize_request`] decides the scopes of one request, one decision per
///   scope in order, each as `authorize` would; a backend overrides it to share work across
///   the request or to bound what one request may cause.
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Short name, as used in configuration and logs.
    fn name(&self) -> &'static str;

    async fn authorize(&self, identity: &Identity, scope: &Scope) -> Result<Decision, PluginError>;

    /// The decisions on the scopes of one request, in order.
    async fn authorize_request(
        &self,
        identity: &Identity,
        scopes: &[Scope],
    ) -> Result<Vec<Decision>, PluginError> {
        let mut decisions = Vec::with_capacity(scopes.len());
        for scope in scopes {
            decisions.push(self.authorize(identity, scope).await?);
        }
        Ok(decisions)
    }
}

/// OAuth2 refresh tokens: long-lived, revocable credentials that stand for an identity a
/// backend authenticated, bound to the client and the service they were issued for.
///
/// Contract:
/// - `issue` returns `Ok(None)` for identities the backend cannot keep a token for (anonymous,
///   vouched for by another authenticator, or acting through a session): no token, no error.
/// - A token is opaque, only its hash is stored, and it is never logged. It is not rotated on
///   use: the same token redeems until it expires or is revoked.
/// - `redeem` returns `Ok(None)` for any token that is not valid right now for this client and
///   service (malformed, unknown, expired, revoked, its user gone, or the user's password changed
///   since it was issued). `Err` only when the backend itself failed.
#[async_trait]
pub trait RefreshTokens: fmt::Debug + Send + Sync {
    /// A new refresh token for `identity`, bound to `client_id` and `service`, valid for
    /// `lifetime`.
    async fn issue(
        &self,
        identity: &Identity,
        client_id: &str,
        service: &str,
        lifetime: Duration,
    ) -> Result<Option<SecretString>, PluginError>;

    /// The identity `token` stands for, when it is valid for `client_id` and `service`.
    async fn redeem(
        &self,
        token: &SecretString,
        client_id: &str,
        service: &str,
    ) -> Result<Option<Identity>, PluginError>;
}

/// Why the authentication chain did not produce an identity.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

/// Authenticators in configured order. The first that authenticates or rejects decides; when
/// none knows the account the credentials are invalid (no implicit anonymous fallback).
#[derive(Clone, Default)]
pub struct AuthnChain {
    authenticators: Vec<Arc<dyn Authenticator>>,
}

/// A chain shows the names of its plugins, in order.
fn debug_names(
    f: &mut fmt::Formatter<'_>,
    names: impl Iterator<Item = &'static str>,
) -> fmt::Result {
    f.debug_list().entries(names).finish()
}

impl fmt::Debug for AuthnChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_names(f, self.authenticators.iter().map(|a| a.name()))
    }
}

impl AuthnChain {
    pub fn new(authenticators: Vec<Arc<dyn Authenticator>>) -> Self {
        AuthnChain { authenticators }
    }

    pub async fn authenticate(&self, credentials: &Credentials) -> Result<Identity, AuthnError> {
        for authenticator in &self.authenticators {
            match authenticator.authenticate(credentials).await? {
                Authentication::Authenticated(identity) => return Ok(identity),
                Authentication::Rejected => return Err(AuthnError::InvalidCredentials),
                Authentication::NotMine => {}
            }
        }
        Err(AuthnError::InvalidCredentials)
    }
}

/// One scope's outcome: what was asked, what was granted, and which authorizer decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedScope {
    pub scope: Scope,
    pub granted: ActionSet,
    /// The authorizer that decided, or `None` when none matched (default deny).
    pub decided_by: Option<&'static str>,
}

/// Authorizers in configured order. For each scope, the first that does not answer
/// [`Decision::NoMatch`] decides; when none matches, nothing is granted.
#[derive(Clone, Default)]
pub struct AuthzChain {
    authorizers: Vec<Arc<dyn Authorizer>>,
}

impl fmt::Debug for AuthzChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_names(f, self.authorizers.iter().map(|a| a.name()))
    }
}

impl AuthzChain {
    pub fn new(authorizers: Vec<Arc<dyn Authorizer>>) -> Self {
        AuthzChain { authorizers }
    }

    pub async fn authorize(
        &self,
        identity: &Identity,
        scopes: &[Scope],
    ) -> Result<Vec<GrantedScope>, PluginError> {
        let mut grants: Vec<GrantedScope> = scopes
            .iter()
            .map(|scope| GrantedScope {
                scope: scope.clone(),
                granted: ActionSet::EMPTY,
                decided_by: None,
            })
            .collect();
        // Each authorizer decides, in one call, the scopes no earlier one matched.
        let mut undecided: Vec<usize> = (0..scopes.len()).collect();
        for authorizer in &self.authorizers {
            if undecided.is_empty() {
                break;
            }
            let asked: Vec<Scope> = undecided.iter().map(|&i| scopes[i].clone()).collect();
            let decisions = authorizer.authorize_request(identity, &asked).await?;
            if decisions.len() != asked.len() {
                return Err(PluginError::internal(
                    authorizer.name(),
                    format!("{} decisions for {} scopes", decisions.len(), asked.len()),
                ));
            }
            undecided = undecided
                .into_iter()
                .zip(decisions)
                .filter_map(|(i, decision)| match decision {
                    Decision::Allowed(allowed) => {
                        grants[i].granted = grants[i].scope.grant(allowed);
                        grants[i].decided_by = Some(authorizer.name());
                        None
                    }
                    Decision::NoMatch => Some(i),
                })
                .collect();
        }
        Ok(grants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardgate_token::Action;
    use secrecy::ExposeSecret;

    /// Knows one account with one password; anonymous only when `anonymous` is set.
    struct OneUser {
        name: &'static str,
        account: &'static str,
        password: &'static str,
        anonymous: bool,
    }

    #[async_trait]
    impl Authenticator for OneUser {
        fn name(&self) -> &'static str {
            self.name
        }
        async fn authenticate(&self, c: &Credentials) -> Result<Authentication, PluginError> {
            Ok(match c {
                Credentials::Anonymous if self.anonymous => {
                    Authentication::Authenticated(Identity::anonymous(self.name))
                }
                Credentials::Anonymous => Authentication::NotMine,
                Credentials::Password { username, .. } if username != self.account => {
                    Authentication::NotMine
                }
                Credentials::Password { password, .. } => {
                    if password.expose_secret() == self.password {
                        Authentication::Authenticated(Identity::new(username_of(c), self.name))
                    } else {
                        Authentication::Rejected
                    }
                }
            })
        }
    }

    fn username_of(c: &Credentials) -> String {
        match c {
            Credentials::Password { username, .. } => username.clone(),
            Credentials::Anonymous => String::new(),
        }
    }

    struct Fixed(&'static str, Decision);

    #[async_trait]
    impl Authorizer for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        async fn authorize(&self, _: &Identity, _: &Scope) -> Result<Decision, PluginError> {
            Ok(self.1)
        }
    }

    struct Broken;

    #[async_trait]
    impl Authorizer for Broken {
        fn name(&self) -> &'static str {
            "broken"
        }
        async fn authorize(&self, _: &Identity, _: &Scope) -> Result<Decision, PluginError> {
            Err(PluginError::unavailable("broken", "down"))
        }
    }

    fn password(user: &str, pw: &str) -> Credentials {
        Credentials::Password {
            username: user.into(),
            password: SecretString::from(pw),
        }
    }

    fn authn() -> AuthnChain {
        AuthnChain::new(vec![
            Arc::new(OneUser {
                name: "first",
                account: "alice",
                password: "a",
                anonymous: false,
            }),
            Arc::new(OneUser {
                name: "second",
                account: "bob",
                password: "b",
                anonymous: true,
            }),
        ])
    }

    #[tokio::test]
    async fn the_first_authenticator_that_knows_the_account_decides() {
        let chain = authn();
        let alice = chain.authenticate(&password("alice", "a")).await.unwrap();
        assert_eq!(alice.authenticator, "first");
        let bob = chain.authenticate(&password("bob", "b")).await.unwrap();
        assert_eq!(bob.authenticator, "second");
    }

    #[tokio::test]
    async fn a_rejection_stops_the_chain_and_unknown_accounts_fail() {
        let chain = authn();
        assert!(matches!(
            chain.authenticate(&password("alice", "b")).await,
            Err(AuthnError::InvalidCredentials)
        ));
        assert!(matches!(
            chain.authenticate(&password("carol", "a")).await,
            Err(AuthnError::InvalidCredentials)
        ));
    }

    #[tokio::test]
    async fn anonymous_needs_an_authenticator_that_allows_it() {
        let id = authn().authenticate(&Credentials::Anonymous).await.unwrap();
        assert!(id.is_anonymous());
        let closed = AuthnChain::new(vec![Arc::new(OneUser {
            name: "only",
            account: "alice",
            password: "a",
            anonymous: false,
        })]);
        assert!(closed.authenticate(&Credentials::Anonymous).await.is_err());
        assert!(
            AuthnChain::default()
                .authenticate(&Credentials::Anonymous)
                .await
                .is_err()
        );
    }

    fn scopes(s: &str) -> Vec<Scope> {
        cardgate_token::parse_scopes([s]).unwrap()
    }

    #[tokio::test]
    async fn authorizers_run_in_order_and_the_first_match_decides() {
        let chain = AuthzChain::new(vec![
            Arc::new(Fixed("none", Decision::NoMatch)),
            Arc::new(Fixed(
                "pull-only",
                Decision::Allowed(ActionSet::of(&[Action::Pull])),
            )),
            Arc::new(Fixed(
                "everything",
                Decision::Allowed(ActionSet::of(&[Action::All])),
            )),
        ]);
        let id = Identity::anonymous("t");
        let grants = chain
            .authorize(&id, &scopes("repository:a:pull,push"))
            .await
            .unwrap();
        assert_eq!(grants[0].granted, ActionSet::of(&[Action::Pull]));
        assert_eq!(grants[0].decided_by, Some("pull-only"));
    }

    #[tokio::test]
    async fn an_explicit_empty_grant_stops_the_chain() {
        let chain = AuthzChain::new(vec![
            Arc::new(Fixed("deny", Decision::Allowed(ActionSet::EMPTY))),
            Arc::new(Fixed(
                "everything",
                Decision::Allowed(ActionSet::of(&[Action::All])),
            )),
        ]);
        let grants = chain
            .authorize(&Identity::anonymous("t"), &scopes("repository:a:pull"))
            .await
            .unwrap();
        assert!(grants[0].granted.is_empty());
        assert_eq!(grants[0].decided_by, Some("deny"));
    }

    #[tokio::test]
    async fn default_is_deny() {
        let chain = AuthzChain::new(vec![Arc::new(Fixed("none", Decision::NoMatch))]);
        let grants = chain
            .authorize(
                &Identity::anonymous("t"),
                &scopes("repository:a:pull registry:catalog:*"),
            )
            .await
            .unwrap();
        assert_eq!(grants.len(), 2);
        assert!(
            grants
                .iter()
                .all(|g| g.granted.is_empty() && g.decided_by.is_none())
        );
    }

    /// Matches only repositories whose name starts with `a`; sees each request once.
    struct OnlyA(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl Authorizer for OnlyA {
        fn name(&self) -> &'static str {
            "only-a"
        }
        async fn authorize(&self, _: &Identity, scope: &Scope) -> Result<Decision, PluginError> {
            Ok(if scope.name.as_str().starts_with('a') {
                Decision::Allowed(ActionSet::of(&[Action::Pull]))
            } else {
                Decision::NoMatch
            })
        }
        async fn authorize_request(
            &self,
            identity: &Identity,
            scopes: &[Scope],
        ) -> Result<Vec<Decision>, PluginError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut decisions = Vec::new();
            for scope in scopes {
                decisions.push(self.authorize(identity, scope).await?);
            }
            Ok(decisions)
        }
    }

    #[tokio::test]
    async fn each_authorizer_sees_a_request_once_and_the_first_match_decides_per_scope() {
        let only_a = Arc::new(OnlyA(std::sync::atomic::AtomicUsize::new(0)));
        let chain = AuthzChain::new(vec![
            only_a.clone(),
            Arc::new(Fixed(
                "everything",
                Decision::Allowed(ActionSet::of(&[Action::All])),
            )),
        ]);
        let grants = chain
            .authorize(
                &Identity::anonymous("t"),
                &scopes("repository:b:push repository:a:pull,push repository:c:pull"),
            )
            .await
            .unwrap();
        let decided: Vec<_> = grants.iter().map(|g| g.decided_by).collect();
        assert_eq!(
            decided,
            [Some("everything"), Some("only-a"), Some("everything")]
        );
        assert_eq!(grants[1].granted, ActionSet::of(&[Action::Pull]));
        assert_eq!(grants[0].granted, ActionSet::of(&[Action::Push]));
        assert_eq!(only_a.0.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_failing_authorizer_fails_the_request_instead_of_denying() {
        let chain = AuthzChain::new(vec![
            Arc::new(Broken),
            Arc::new(Fixed(
                "everything",
                Decision::Allowed(ActionSet::of(&[Action::All])),
            )),
        ]);
        let err = chain
            .authorize(&Identity::anonymous("t"), &scopes("repository:a:pull"))
            .await
            .unwrap_err();
        assert!(err.unavailable);
    }
}
