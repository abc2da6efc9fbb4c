//! Plugins backed by the card store: [`CardAuthenticator`] (session tokens, argon2id passwords,
//! the guest actor), [`CardAuthorizer`] (images resolved by repository name, decided by
//! markers, role read schemas, session scope, org membership roles, explicit grants and public
//! flags; a session's scope bounds every actor, `user-admin` included) and
//! [`CardRefreshTokens`] (OAuth2 refresh tokens kept as session cards).
//!
//! Depends on the plugin seam, the token core, the password checker and the store; knows
//! nothing of HTTP.

mod authn;
mod authz;
mod cache;
mod explain;
mod refresh;

pub use authn::CardAuthenticator;
pub use authz::{CardAuthorizer, MAX_IMAGES_CREATED_PER_REQUEST};
pub use cache::cache_counters;
pub use explain::{ActionVerdict, Assessment, Explanation, Subject};
pub use refresh::{CardRefreshTokens, DEFAULT_MAX_REFRESH_TOKENS_PER_CLIENT};

use cardgate_authz::PluginError;
use cardgate_store::{Slug, StoreError};

const NAME: &str = "cards";

/// The account name of a user card's slug: `user-alice` → `alice` (one prefix, once: user
/// names never start with `user-`, the store refuses such slugs).
pub fn account_of(slug: &str) -> &str {
    slug.strip_prefix("user-").unwrap_or(slug)
}

/// The slug of an account name: `alice` and `user-alice` both name `user-alice`.
pub fn user_slug(account: &str) -> String {
    if account.starts_with("user-") {
        account.to_owned()
    } else {
        Slug::user(account).into()
    }
}

fn plugin_error(e: StoreError) -> PluginError {
    match e {
        StoreError::Unavailable(_) => PluginError::unavailable(NAME, e.to_string()),
        other => PluginError::internal(NAME, other.to_string()),
    }
}
