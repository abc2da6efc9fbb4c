//! argon2id verification with bounded memory: at most one check per core at a time, each
//! reusing a kept buffer. A check needs the hash's whole memory cost (19 MiB with the default
//! parameters); fresh buffers per check would let a burst of logins, or the allocator's
//! retention, grow the process without bound.

use std::sync::{LazyLock, Mutex, PoisonError};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use cardgate_authz::PluginError;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::NAME;

struct Checker {
    permits: Semaphore,
    buffers: Mutex<Vec<Vec<Block>>>,
}

static CHECKER: LazyLock<Checker> = LazyLock::new(|| Checker {
    permits: Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from)),
    buffers: Mutex::new(Vec::new()),
});

/// A hash no password given matches, made once per process: what the checks of unknown
/// accounts (and of locked ones) verify against, so that they cost what a real check costs.
static DECOY: LazyLock<Result<String, String>> = LazyLock::new(|| {
    argon2::PasswordHasher::hash_password(&Argon2::default(), b"cardgate-decoy-password")
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
});

/// Whether `password` matches `hash`; with no hash (an unknown account), a check against the
/// decoy that is never a match.
pub(crate) async fn verify_or_decoy(
    hash: Option<String>,
    password: SecretString,
) -> Result<bool, PluginError> {
    let known = hash.is_some();
    let hash = match hash {
        Some(hash) => hash,
        None => DECOY
            .clone()
            .map_err(|e| PluginError::internal(NAME, format!("decoy hash: {e}")))?,
    };
    Ok(verify(hash, password).await? && known)
}

/// Spends exactly what a password check costs, deciding nothing: for refusals (a locked
/// account) that must not answer faster than a check would.
pub async fn spend_a_check() -> Result<(), PluginError> {
    verify_or_decoy(None, SecretString::from("not-a-password"))
        .await
        .map(drop)
}

/// Whether `password` matches the PHC string `hash` (argon2id, argon2i or argon2d). Every
/// password check of the process goes through here, so all cost the same and share the bound.
async fn verify(hash: String, password: SecretString) -> Result<bool, PluginError> {
    let checker = &*CHECKER;
    let _permit = checker
        .permits
        .acquire()
        .await
        .map_err(|e| PluginError::internal(NAME, format!("password check: {e}")))?;
    let mut buffer = checker
        .buffers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .unwrap_or_default();
    let (matches, buffer) = tokio::task::spawn_blocking(move || {
        let matches = verify_with(&hash, password.expose_secret().as_bytes(), &mut buffer);
        (matches, buffer)
    })
    .await
    .map_err(|e| PluginError::internal(NAME, format!("password check: {e}")))?;
    checker
        .buffers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(buffer);
    Ok(matches)
}

fn verify_with(hash: &str, password: &[u8], memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(&parsed),
        parsed.salt.as_ref(),
        parsed.hash.as_ref(),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt.as_ref(),
        &mut out,
        &mut memory[..blocks],
    );
    hashed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use argon2::PasswordHasher;

    use super::*;

    #[test]
    fn a_reused_buffer_verifies_like_the_stock_verifier() {
        let hash = Argon2::default()
            .hash_password(b"wonderland")
            .unwrap()
            .to_string();
        let mut memory = Vec::new();
        assert!(verify_with(&hash, b"wonderland", &mut memory));
        assert!(!verify_with(&hash, b"looking-glass", &mut memory));
        assert!(verify_with(&hash, b"wonderland", &mut memory));
        assert!(!verify_with(
            "$argon2id$v=19$garbage",
            b"wonderland",
            &mut memory
        ));
    }
}
