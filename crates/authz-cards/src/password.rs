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

/// Whether `password` matches the PHC string `hash` (argon2id, argon2i or argon2d). Every
/// password check of the process goes through here, so all cost the same and share the bound.
pub async fn verify(hash: String, password: SecretString) -> Result<bool, PluginError> {
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
