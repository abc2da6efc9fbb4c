//! Password hashes, read once, and decoys that cost what they cost.

use std::sync::LazyLock;

use argon2::password_hash::{
    self,
    phc::{Output, ParamsString, Salt},
};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use aws_lc_rs::{digest, hmac};
use subtle::ConstantTimeEq;

use crate::PasswordError;

/// The bcrypt costs the `bcrypt` crate accepts; a hash outside them could never be verified.
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=31;

/// `$2y$NN$` and the 22 characters of the salt: what a bcrypt decoy keeps of its original.
const BCRYPT_PREFIX_LEN: usize = 29;

/// A stored password hash, read once: an argon2 PHC string (`$argon2id$v=19$m=...`) or a bcrypt
/// hash (`$2y$...`, as in htpasswd files). `Debug` shows only the kind: a hash is what an
/// offline guessing attack needs.
#[derive(Clone)]
pub struct HashedPassword(Kind);

#[derive(Clone)]
enum Kind {
    Argon2(Argon2Hash),
    Bcrypt(String),
}

#[derive(Clone)]
struct Argon2Hash {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Vec<u8>,
}

impl std::fmt::Debug for HashedPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.0 {
            Kind::Argon2(_) => "argon2",
            Kind::Bcrypt(_) => "bcrypt",
        };
        f.debug_tuple("HashedPassword").field(&kind).finish()
    }
}

impl HashedPassword {
    /// An argon2 (argon2id, argon2i or argon2d) PHC string.
    pub fn argon2(phc: &str) -> Result<Self, PasswordError> {
        let bad = |why: String| PasswordError::InvalidHash(format!("invalid argon2 hash: {why}"));
        let parsed = PasswordHash::new(phc).map_err(|e| bad(e.to_string()))?;
        let algorithm =
            Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| bad(e.to_string()))?;
        let params = Params::try_from(&parsed).map_err(|e| bad(e.to_string()))?;
        let version = match parsed.version.map(Version::try_from) {
            None => Version::default(),
            Some(Ok(version)) => version,
            Some(Err(e)) => return Err(bad(e.to_string())),
        };
        let salt = parsed.salt.as_ref().ok_or_else(|| bad("no salt".into()))?;
        let expected = parsed.hash.as_ref().ok_or_else(|| bad("no hash".into()))?;
        Ok(HashedPassword(Kind::Argon2(Argon2Hash {
            algorithm,
            version,
            params,
            salt: salt.as_ref().to_vec(),
            expected: expected.as_bytes().to_vec(),
        })))
    }

    /// A bcrypt hash (`$2a$`, `$2b$`, `$2x$` or `$2y$`, cost 4 to 31).
    pub fn bcrypt(hash: &str) -> Result<Self, PasswordError> {
        let parts = hash
            .parse::<bcrypt::HashParts>()
            .map_err(|e| PasswordError::InvalidHash(format!("invalid bcrypt hash: {e}")))?;
        if !BCRYPT_COSTS.contains(&parts.get_cost()) {
            return Err(PasswordError::InvalidHash(format!(
                "invalid bcrypt hash: cost {} is not in 4..=31",
                parts.get_cost()
            )));
        }
        Ok(HashedPassword(Kind::Bcrypt(hash.to_owned())))
    }

    /// A hash of the same kind and cost whose check never succeeds: the same parameters and
    /// salt, an expected output no password is known to give. Checking a password against it
    /// costs what checking against `self` costs; callers check decoys only for names that
    /// have no hash, and ignore the result.
    pub fn decoy(&self) -> HashedPassword {
        HashedPassword(match &self.0 {
            Kind::Argon2(hash) => Kind::Argon2(Argon2Hash {
                expected: vec![0; hash.expected.len()],
                ..hash.clone()
            }),
            Kind::Bcrypt(hash) => {
                let prefix = hash.get(..BCRYPT_PREFIX_LEN).unwrap_or_default();
                // `.` is a zero in bcrypt's base64: an all-zero output.
                Kind::Bcrypt(format!("{prefix}{}", ".".repeat(31)))
            }
        })
    }

    /// Whether `password` matches, with `memory` as argon2's working memory (grown to the
    /// hash's memory cost when smaller, and kept by the caller for the next check).
    pub(crate) fn matches(&self, password: &[u8], memory: &mut Vec<Block>) -> bool {
        match &self.0 {
            Kind::Argon2(hash) => {
                let blocks = hash.params.block_count();
                if memory.len() < blocks {
                    memory.resize(blocks, Block::default());
                }
                let mut out = vec![0u8; hash.expected.len()];
                let hashed = Argon2::new(hash.algorithm, hash.version, hash.params.clone())
                    .hash_password_into_with_memory(
                        password,
                        &hash.salt,
                        &mut out,
                        &mut memory[..blocks],
                    );
                hashed.is_ok() && bool::from(out.ct_eq(&hash.expected))
            }
            Kind::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
        }
    }

    /// What is secret in the hash: what the decoys' key is derived from.
    fn secret_parts(&self) -> [&[u8]; 2] {
        match &self.0 {
            Kind::Argon2(hash) => [&hash.salt, &hash.expected],
            Kind::Bcrypt(hash) => [hash.as_bytes(), &[]],
        }
    }
}

/// The argon2id hash of `password` with the default parameters and a random salt, as a PHC
/// string, computed in `memory` (grown to the memory cost when smaller).
pub(crate) fn argon2id(password: &[u8], memory: &mut Vec<Block>) -> Result<String, PasswordError> {
    let failed = |e: &dyn std::fmt::Display| PasswordError::Check(format!("hashing: {e}"));
    let params = Params::DEFAULT;
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let salt = password_hash::try_generate_salt().map_err(|e| failed(&e))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, &mut memory[..blocks])
        .map_err(|e| failed(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(phc.to_string())
}

static DEFAULT_DECOY: LazyLock<HashedPassword> = LazyLock::new(|| {
    HashedPassword(Kind::Argon2(Argon2Hash {
        algorithm: Algorithm::Argon2id,
        version: Version::V0x13,
        params: Params::DEFAULT,
        salt: b"cardgate-decoy-s".to_vec(),
        expected: vec![0; Params::DEFAULT_OUTPUT_LEN],
    }))
});

/// The decoy of an argon2id hash with the default parameters (m = 19 MiB, t = 2, p = 1: what
/// `cardgate hash-password` and the admin API store), for names that have no hash when no
/// hashes are known in advance.
pub fn default_decoy() -> &'static HashedPassword {
    &DEFAULT_DECOY
}

/// Decoys for the names that have no hash, among a known set of hashes (static users).
///
/// An unknown name is always checked against the decoy of the same one of the known hashes,
/// picked by an HMAC of the name. So an unknown name costs exactly what some known name costs,
/// and unknown names spread over the kinds and costs in the proportions the known ones have:
/// with both argon2id and bcrypt users, a name that costs an argon2id check may or may not
/// exist, and so may one that costs a bcrypt check. (One fixed kind of decoy would tell every
/// name that costs the other kind to exist.) The HMAC key is derived from the known hashes,
/// so the choice is the same on every start, and cannot be predicted without the hashes.
/// With no known hashes, every name gets [`default_decoy`].
pub struct Decoys {
    key: hmac::Key,
    decoys: Vec<HashedPassword>,
}

impl std::fmt::Debug for Decoys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoys")
            .field("decoys", &self.decoys.len())
            .finish_non_exhaustive()
    }
}

impl Decoys {
    /// Decoys for `hashes`, given in a fixed order (by name, say) so that a name's decoy is
    /// the same on every start.
    pub fn of<'a>(hashes: impl IntoIterator<Item = &'a HashedPassword>) -> Self {
        let mut seed = digest::Context::new(&digest::SHA256);
        seed.update(b"cardgate decoys");
        let decoys = hashes
            .into_iter()
            .inspect(|hash| {
                for part in hash.secret_parts() {
                    seed.update(&(part.len() as u64).to_be_bytes());
                    seed.update(part);
                }
            })
            .map(HashedPassword::decoy)
            .collect();
        Decoys {
            key: hmac::Key::new(hmac::HMAC_SHA256, seed.finish().as_ref()),
            decoys,
        }
    }

    /// The decoy the unknown name `name` is checked against.
    pub fn for_name(&self, name: &str) -> &HashedPassword {
        let tag = hmac::sign(&self.key, name.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&tag.as_ref()[..8]);
        let count = self.decoys.len() as u64;
        if count == 0 {
            return default_decoy();
        }
        usize::try_from(u64::from_be_bytes(head) % count)
            .ok()
            .and_then(|index| self.decoys.get(index))
            .unwrap_or(default_decoy())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use argon2::PasswordHasher;

    use super::*;

    /// The argon2id hash of `password` with `params`.
    pub(crate) fn argon2id(password: &str, params: Params) -> HashedPassword {
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes())
            .unwrap()
            .to_string();
        HashedPassword::argon2(&phc).unwrap()
    }

    fn cheap() -> Params {
        Params::new(64, 1, 1, None).unwrap()
    }

    fn bcrypt_hash(password: &str, cost: u32) -> HashedPassword {
        HashedPassword::bcrypt(&bcrypt::hash(password, cost).unwrap()).unwrap()
    }

    #[test]
    fn a_reused_buffer_verifies_like_the_stock_verifier() {
        let phc = Argon2::default()
            .hash_password(b"wonderland")
            .unwrap()
            .to_string();
        let hash = HashedPassword::argon2(&phc).unwrap();
        let mut memory = Vec::new();
        assert!(hash.matches(b"wonderland", &mut memory));
        assert!(!hash.matches(b"looking-glass", &mut memory));
        assert!(hash.matches(b"wonderland", &mut memory));
        assert_eq!(memory.len(), Params::DEFAULT.block_count());
        assert!(HashedPassword::argon2("$argon2id$v=19$garbage").is_err());
    }

    #[test]
    fn bcrypt_hashes_verify_and_impossible_costs_are_refused() {
        let hash = bcrypt_hash("builder", 4);
        assert!(hash.matches(b"builder", &mut Vec::new()));
        assert!(!hash.matches(b"nope", &mut Vec::new()));
        let err =
            HashedPassword::bcrypt("$2y$03$abcdefghijklmnopqrstuu5OE1yMT1m3pTWnH.1MuAsL9CiGP5Kqm")
                .unwrap_err()
                .to_string();
        assert!(err.contains("cost 3"), "{err}");
        assert!(HashedPassword::bcrypt("$2y$04$short").is_err());
    }

    #[test]
    fn a_decoy_has_its_originals_kind_and_cost_and_matches_nothing() {
        let params = Params::new(256, 3, 2, Some(24)).unwrap();
        let argon = argon2id("wonderland", params.clone());
        let Kind::Argon2(decoy) = &argon.decoy().0 else {
            panic!("an argon2 decoy is an argon2 hash");
        };
        assert_eq!(decoy.params, params);
        assert_eq!(decoy.algorithm, Algorithm::Argon2id);
        assert_eq!(decoy.expected.len(), 24);
        assert!(!argon.decoy().matches(b"wonderland", &mut Vec::new()));

        let original = bcrypt::hash("builder", 5).unwrap();
        let hash = HashedPassword::bcrypt(&original).unwrap();
        let Kind::Bcrypt(decoy) = &hash.decoy().0 else {
            panic!("a bcrypt decoy is a bcrypt hash");
        };
        let parts = decoy.parse::<bcrypt::HashParts>().unwrap();
        assert_eq!(parts.get_cost(), 5);
        assert!(!hash.decoy().matches(b"builder", &mut Vec::new()));
        assert!(!hash.decoy().matches(b"", &mut Vec::new()));
    }

    #[test]
    fn the_default_decoy_costs_what_a_default_hash_costs() {
        let Kind::Argon2(decoy) = &default_decoy().0 else {
            panic!("the default decoy is argon2id");
        };
        let Kind::Argon2(real) = &argon2id("x", Params::DEFAULT).0 else {
            unreachable!()
        };
        assert_eq!(decoy.params.block_count(), real.params.block_count());
        assert_eq!(decoy.params.t_cost(), real.params.t_cost());
        assert_eq!(decoy.params.p_cost(), real.params.p_cost());
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(decoy.version, real.version);
        assert_eq!(decoy.salt.len(), real.salt.len());
        assert_eq!(decoy.expected.len(), real.expected.len());
    }

    fn is_bcrypt(hash: &HashedPassword) -> bool {
        matches!(hash.0, Kind::Bcrypt(_))
    }

    #[test]
    fn unknown_names_get_decoys_of_each_kind_in_proportion_and_always_the_same() {
        let hashes = [
            argon2id("a", cheap()),
            bcrypt_hash("b", 4),
            bcrypt_hash("c", 4),
            argon2id("d", cheap()),
        ];
        let decoys = Decoys::of(&hashes);
        let again = Decoys::of(&hashes);
        let names: Vec<String> = (0..2000).map(|i| format!("ghost{i}")).collect();
        let bcrypt = names
            .iter()
            .filter(|name| is_bcrypt(decoys.for_name(name)))
            .count();
        assert!((800..=1200).contains(&bcrypt), "{bcrypt} of 2000");
        for name in &names {
            // The same name, the same kind: now, and after a restart.
            assert_eq!(
                is_bcrypt(decoys.for_name(name)),
                is_bcrypt(again.for_name(name))
            );
        }

        let only_bcrypt = [bcrypt_hash("b", 4)];
        let decoys = Decoys::of(&only_bcrypt);
        assert!(names.iter().all(|name| is_bcrypt(decoys.for_name(name))));
        let none = Decoys::of(&[]);
        assert!(!is_bcrypt(none.for_name("ghost")));
    }
}
