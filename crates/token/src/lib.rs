//! The registry token protocol core: scope grammar, access sets, claims, signing keys, key IDs,
//! JWKS and token minting.
//!
//! This crate is pure: it knows nothing of HTTP, databases or async runtimes. Time, token IDs and
//! key material are passed in, so every function here is deterministic apart from the ECDSA
//! signature itself.

/// `Display` as the value's `as_str()`.
macro_rules! display_as_str {
    ($type:ty) => {
        impl std::fmt::Display for $type {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

mod access;
mod keygen;
mod keys;
mod lifetime;
mod mint;
mod scope;
mod sign;

pub use access::{Action, ActionSet};
/// The JWK types of the JWKS, re-exported so that callers need not depend on `jsonwebtoken`.
pub use jsonwebtoken::jwk::{Jwk, JwkSet};
pub use keygen::{GeneratedKey, generate};
pub use keys::{KeyError, KeyId, KeyInput, PublishedKey, SigningAlgorithm, SigningKey};
pub use lifetime::{LifetimeClass, LifetimeError, MAX_LIFETIME, TokenLifetimes};
pub use mint::{
    AccessEntry, Claims, IssuedToken, MIN_LIFETIME, MintError, Minter, TokenId, TokenRequest,
};
pub use scope::{MAX_SCOPES, ResourceName, ResourceType, Scope, ScopeError, parse_scopes};
pub use sign::SignError;
