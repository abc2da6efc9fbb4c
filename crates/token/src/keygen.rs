//! Key generation: what open-balena's `gen-token-auth-cert` makes (a private key, a
//! self-signed certificate naming the issuer, the key ID), plus the JWKS registry v3 reads.

use p256::pkcs8::DecodePrivateKey;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, RsaKeySize};
use time::{Duration, OffsetDateTime};

use crate::keys::{KeyError, KeyId, SigningAlgorithm, SigningKey};

/// A freshly generated signing key with everything a registry needs to trust it.
pub struct GeneratedKey {
    /// PEM of the private key: SEC1 (`EC PRIVATE KEY`) for ES256, as open-balena's
    /// `gen-token-auth-cert` writes it; PKCS#8 for RS256.
    pub key_pem: String,
    /// PEM of the self-signed certificate whose subject CN is the issuer.
    pub certificate_pem: String,
    pub kid: KeyId,
    /// The JWKS (pretty JSON) with this key, `kid` = the libtrust key ID.
    pub jwks_json: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn generation(e: impl std::fmt::Display) -> KeyError {
    KeyError::Generation(e.to_string())
}

/// Generates a key for `algorithm` (P-256 or RSA 2048) and a certificate for `issuer` valid
/// for `valid_days` days from `now`.
pub fn generate(
    algorithm: SigningAlgorithm,
    issuer: &str,
    now: OffsetDateTime,
    valid_days: u32,
) -> Result<GeneratedKey, KeyError> {
    let pair = match algorithm {
        SigningAlgorithm::ES256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        SigningAlgorithm::RS256 => {
            KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, RsaKeySize::_2048)
        }
    }
    .map_err(generation)?;

    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generation)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, issuer);
    params.distinguished_name = name;
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(i64::from(valid_days));
    let certificate = params.self_signed(&pair).map_err(generation)?;

    let key_pem = match algorithm {
        SigningAlgorithm::ES256 => p256::SecretKey::from_pkcs8_pem(&pair.serialize_pem())
            .map_err(generation)?
            .to_sec1_pem(p256::pkcs8::LineEnding::LF)
            .map_err(generation)?
            .to_string(),
        SigningAlgorithm::RS256 => pair.serialize_pem(),
    };
    let certificate_pem = certificate.pem();
    let key = SigningKey::from_pem(&key_pem, Some(algorithm), Some(&certificate_pem), None)?;
    let jwks_json = serde_json::to_string_pretty(&SigningKey::jwks([&key])).map_err(generation)?;
    Ok(GeneratedKey {
        key_pem,
        certificate_pem,
        kid: key.kid().clone(),
        jwks_json,
    })
}

#[cfg(test)]
impl GeneratedKey {
    /// The key loaded back as it is configured: key, certificate and `kid`.
    pub(crate) fn load(&self, algorithm: SigningAlgorithm) -> SigningKey {
        SigningKey::from_pem(
            &self.key_pem,
            Some(algorithm),
            Some(&self.certificate_pem),
            Some(self.kid.as_str()),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_es256_key_round_trips_through_loading() {
        let generated = generate(
            SigningAlgorithm::ES256,
            "api.example.test",
            OffsetDateTime::now_utc(),
            30,
        )
        .unwrap();
        assert!(
            generated
                .key_pem
                .starts_with("-----BEGIN EC PRIVATE KEY-----")
        );
        assert!(
            generated
                .certificate_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let key = generated.load(SigningAlgorithm::ES256);
        let jwks: serde_json::Value = serde_json::from_str(&generated.jwks_json).unwrap();
        assert_eq!(jwks["keys"][0]["kid"], key.kid().as_str());
        assert_eq!(generated.kid.as_str().len(), 59);
    }

    #[test]
    fn two_generations_give_two_keys() {
        let a = generate(SigningAlgorithm::ES256, "x", OffsetDateTime::now_utc(), 1).unwrap();
        let b = generate(SigningAlgorithm::ES256, "x", OffsetDateTime::now_utc(), 1).unwrap();
        assert_ne!(a.kid, b.kid);
    }
}
