//! Password hashes: verification with bounded memory and CPU, decoys, and a cache of verified
//! credentials. Every plugin that checks passwords goes through here, so that all checks of
//! the process share one bound and cost what the hash says, whoever asks.
//!
//! - [`verify`]: at most one check per core at a time (argon2 and bcrypt alike), each argon2
//!   check in a kept buffer; [`hash`] makes argon2id hashes within the same bound; [`wait_like_a_check`] takes as long as recent checks took
//!   without spending one.
//! - [`HashedPassword`]: a parsed argon2 or bcrypt hash, and its decoy; [`Decoys`] picks, for
//!   an unknown name, the decoy of one of the configured hashes.
//! - [`VerifiedCredentials`]: a bounded, time-limited cache keyed by an HMAC of the
//!   credentials, on the generic [`Cache`] (whose entries may also be invalidated by announced
//!   changes to the facts each depends on, see [`Changes`]).
//!
//! Depends on neither plugin nor the plugin seam: password hashing, HMAC and tokio only;
//! knows nothing of HTTP, databases or identities.

mod cache;
mod check;
mod credentials;
mod hash;

pub use cache::{Cache, CacheCounters, CacheSettings, Changes, Invalidation};
pub use check::{hash, verify, wait_like_a_check};
pub use credentials::{CREDENTIALS, CredentialsKey, VerifiedCredentials};
pub use hash::{Decoys, HashedPassword, default_decoy};

/// A password hash could not be read, or a check could not run.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The text is not a hash of the expected kind; the message says why.
    #[error("{0}")]
    InvalidHash(String),
    /// The check did not complete (the runtime is shutting down).
    #[error("password check: {0}")]
    Check(String),
    /// No key could be drawn for the credentials cache.
    #[error("cannot draw the credentials cache key")]
    Key,
}
