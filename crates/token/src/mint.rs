//! Claims and token minting.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::Header;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::access::ActionSet;
use crate::keys::SigningKey;
use crate::scope::Scope;
use crate::sign::{JwsSigner, SignError};

/// Shortest lifetime a token may have: registries allow 60 s of clock skew, and clients must
/// have time to use the token.
pub const MIN_LIFETIME: Duration = Duration::from_secs(60);

/// One entry of the `access` claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    pub name: String,
    pub actions: ActionSet,
}

impl AccessEntry {
    /// The entry for `scope` carrying the `granted` actions.
    pub fn granted(scope: &Scope, granted: ActionSet) -> Self {
        AccessEntry {
            resource_type: scope.resource_type.as_str().to_owned(),
            class: scope.class.as_ref().map(|c| c.as_str().to_owned()),
            name: scope.name.as_str().to_owned(),
            actions: granted,
        }
    }
}

/// The claims of a registry token. `aud` is a plain string: registry 2.8 cannot parse an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    pub access: Vec<AccessEntry>,
}

/// A token ID (`jti`). Built from bytes the caller draws from a CSPRNG.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenId(String);

impl TokenId {
    pub fn from_random(bytes: [u8; 16]) -> Self {
        TokenId(data_encoding::HEXLOWER.encode(&bytes))
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TokenId").field(&self.0).finish()
    }
}

/// What to put in one token.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    /// The account; empty for anonymous.
    pub subject: &'a str,
    /// The service (registry) the token is for.
    pub audience: &'a str,
    pub access: &'a [AccessEntry],
    /// How long the token lives (`exp - iat`), at least [`MIN_LIFETIME`]; see
    /// [`crate::TokenLifetimes`].
    pub lifetime: Duration,
}

/// A signed token and the figures the token endpoint answers with.
pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
    /// `iat` in RFC 3339.
    pub issued_at: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_in", &self.expires_in)
            .field("issued_at", &self.issued_at)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MintError {
    #[error("token lifetime must be at least 60s, got {0}s")]
    LifetimeTooShort(u64),
    #[error("token lifetime of {0}s is too long")]
    LifetimeTooLong(u64),
    #[error("an x5c header needs the signing key's certificate")]
    NoCertificate,
    #[error("the clock is before 1970")]
    Clock,
    #[error("signing failed: {0}")]
    Signing(#[from] SignError),
}

/// Signs tokens for one issuer with one key.
#[derive(Debug, Clone)]
pub struct Minter {
    issuer: String,
    key: SigningKey,
    header: Header,
    /// The key pair and encoded header, prepared once: parsing a key costs as much as a
    /// signature.
    signer: JwsSigner,
}

impl Minter {
    /// Signs with `key`; the header carries `kid` = its libtrust key ID.
    pub fn new(issuer: String, key: SigningKey) -> Self {
        let mut header = Header::new(key.algorithm().jwt());
        header.kid = Some(key.kid().as_str().to_owned());
        let signer = JwsSigner::new(&key, &header);
        Minter {
            issuer,
            key,
            header,
            signer,
        }
    }

    /// Adds the key's certificate chain (leaf first, base64 DER) as the `x5c` header, for
    /// registries that verify by certificate. Refused when the key came without a certificate.
    pub fn with_x5c(mut self) -> Result<Self, MintError> {
        let chain = self.key.certificate_chain();
        if chain.is_empty() {
            return Err(MintError::NoCertificate);
        }
        self.header.x5c = Some(
            chain
                .iter()
                .map(|der| data_encoding::BASE64.encode(der))
                .collect(),
        );
        self.signer = JwsSigner::new(&self.key, &self.header);
        Ok(self)
    }

    pub fn key(&self) -> &SigningKey {
        &self.key
    }

    /// Signs a token for `request`, issued at `now`, with token ID `jti`.
    pub fn mint(
        &self,
        request: TokenRequest<'_>,
        now: SystemTime,
        jti: TokenId,
    ) -> Result<IssuedToken, MintError> {
        if request.lifetime < MIN_LIFETIME {
            return Err(MintError::LifetimeTooShort(request.lifetime.as_secs()));
        }
        let iat = now
            .duration_since(UNIX_EPOCH)
            .map_err(|_| MintError::Clock)?
            .as_secs();
        let expires_in = request.lifetime.as_secs();
        let exp = iat
            .checked_add(expires_in)
            .filter(|exp| i64::try_from(*exp).is_ok())
            .ok_or(MintError::LifetimeTooLong(expires_in))?;
        let claims = Claims {
            iss: self.issuer.clone(),
            sub: request.subject.to_owned(),
            aud: request.audience.to_owned(),
            exp,
            nbf: iat,
            iat,
            jti: jti.0,
            access: request.access.to_vec(),
        };
        let token = self.signer.sign(&claims)?;
        let issued_at = i64::try_from(iat)
            .ok()
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .and_then(|t| t.format(&Rfc3339).ok())
            .ok_or(MintError::Clock)?;
        Ok(IssuedToken {
            token,
            expires_in,
            issued_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Action;
    use crate::keygen::generate;
    use crate::keys::SigningAlgorithm;
    use jsonwebtoken::{DecodingKey, Validation};

    fn minter(alg: SigningAlgorithm) -> (Minter, String) {
        let generated = generate(alg, "issuer.test", OffsetDateTime::now_utc(), 1).unwrap();
        let key = SigningKey::from_pem(&generated.key_pem, None, None, None).unwrap();
        let minter = Minter::new("issuer.test".into(), key);
        (minter, generated.certificate_pem)
    }

    fn decoding_key(alg: SigningAlgorithm, cert_pem: &str) -> DecodingKey {
        use x509_cert::Certificate;
        use x509_cert::der::DecodePem;
        let cert = Certificate::from_pem(cert_pem.as_bytes()).unwrap();
        let spki = cert.tbs_certificate().subject_public_key_info();
        let public = spki.subject_public_key.raw_bytes();
        match alg {
            SigningAlgorithm::ES256 => DecodingKey::from_ec_der(public),
            SigningAlgorithm::RS256 => DecodingKey::from_rsa_der(public),
        }
    }

    fn mint_and_decode(alg: SigningAlgorithm) {
        let (minter, cert) = minter(alg);
        let scope: Scope = "repository(plugin):acme/web:pull,push".parse().unwrap();
        let access = [AccessEntry::granted(&scope, ActionSet::of(&[Action::Pull]))];
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let issued = minter
            .mint(
                TokenRequest {
                    subject: "alice",
                    audience: "registry.test",
                    access: &access,
                    lifetime: Duration::from_secs(300),
                },
                now,
                TokenId::from_random([7; 16]),
            )
            .unwrap();
        assert_eq!(issued.expires_in, 300);
        assert_eq!(issued.issued_at, "2023-11-14T22:13:20Z");

        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(minter.key().kid().as_str()));
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.alg, alg.jwt());

        let mut validation = Validation::new(alg.jwt());
        validation.set_audience(&["registry.test"]);
        validation.set_issuer(&["issuer.test"]);
        validation.validate_exp = false;
        let data =
            jsonwebtoken::decode::<Claims>(&issued.token, &decoding_key(alg, &cert), &validation)
                .unwrap();
        let claims = data.claims;
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.iat, 1_700_000_000);
        assert_eq!(claims.nbf, claims.iat);
        assert_eq!(claims.exp, claims.iat + 300);
        assert_eq!(claims.jti, "07".repeat(16));
        assert_eq!(claims.access, access);

        // `aud` must be a plain string, and `class` must survive.
        let payload = issued.token.split('.').nth(1).unwrap();
        let raw: serde_json::Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
                .unwrap(),
        )
        .unwrap();
        assert!(raw["aud"].is_string());
        assert_eq!(
            raw["access"][0],
            serde_json::json!({"type":"repository","class":"plugin","name":"acme/web","actions":["pull"]})
        );
    }

    #[test]
    fn es256_tokens_verify_against_the_certificate() {
        mint_and_decode(SigningAlgorithm::ES256);
    }

    #[test]
    fn rs256_tokens_verify_against_the_certificate() {
        mint_and_decode(SigningAlgorithm::RS256);
    }

    #[test]
    fn es256_signatures_are_raw_r_s() {
        let (minter, _) = minter(SigningAlgorithm::ES256);
        let issued = minter
            .mint(
                TokenRequest {
                    subject: "",
                    audience: "r",
                    access: &[],
                    lifetime: MIN_LIFETIME,
                },
                SystemTime::now(),
                TokenId::from_random([0; 16]),
            )
            .unwrap();
        let sig = issued.token.rsplit('.').next().unwrap();
        let bytes =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        assert_eq!(bytes.len(), 64);
    }

    fn request(lifetime: Duration) -> TokenRequest<'static> {
        TokenRequest {
            subject: "alice",
            audience: "registry.test",
            access: &[],
            lifetime,
        }
    }

    /// A token for alice, with nothing granted, living `seconds`, minted now.
    fn mint_now(minter: &Minter, seconds: u64) -> Result<IssuedToken, MintError> {
        minter.mint(
            request(Duration::from_secs(seconds)),
            SystemTime::now(),
            TokenId::from_random([0; 16]),
        )
    }

    #[test]
    fn lifetimes_under_a_minute_are_refused() {
        let (minter, _) = minter(SigningAlgorithm::ES256);
        let err = mint_now(&minter, 59).unwrap_err();
        assert!(matches!(err, MintError::LifetimeTooShort(59)));
    }

    #[test]
    fn the_lifetime_passed_in_is_exp_minus_iat_and_expires_in() {
        let (minter, cert) = minter(SigningAlgorithm::ES256);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for seconds in [60, 300, 3 * 3600] {
            let issued = minter
                .mint(
                    request(Duration::from_secs(seconds)),
                    now,
                    TokenId::from_random([1; 16]),
                )
                .unwrap();
            assert_eq!(issued.expires_in, seconds);
            let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
            validation.set_audience(&["registry.test"]);
            validation.validate_exp = false;
            let claims = jsonwebtoken::decode::<Claims>(
                &issued.token,
                &decoding_key(SigningAlgorithm::ES256, &cert),
                &validation,
            )
            .unwrap()
            .claims;
            assert_eq!(claims.exp - claims.iat, seconds);
            assert_eq!(claims.iat, 1_700_000_000);
        }
    }

    #[test]
    fn an_absurd_lifetime_is_an_error_not_an_overflow() {
        let (minter, _) = minter(SigningAlgorithm::ES256);
        let err = mint_now(&minter, u64::MAX).unwrap_err();
        assert!(matches!(err, MintError::LifetimeTooLong(_)));
    }

    /// A chain: a CA and a leaf it issued for `key`, as PEM (leaf first).
    fn chain_for(key_pair: &rcgen::KeyPair) -> (String, String) {
        let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf = rcgen::CertificateParams::new(vec!["issuer.test".to_owned()])
            .unwrap()
            .signed_by(key_pair, &issuer)
            .unwrap();
        (leaf.pem(), ca.pem())
    }

    #[test]
    fn x5c_carries_the_certificate_chain_leaf_first_and_the_leaf_verifies_the_token() {
        let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let (leaf_pem, ca_pem) = chain_for(&leaf_key);
        let chain = format!("{leaf_pem}{ca_pem}");
        let key =
            SigningKey::from_pem(&leaf_key.serialize_pem(), None, Some(&chain), None).unwrap();
        let minter = Minter::new("issuer.test".into(), key).with_x5c().unwrap();
        let issued = mint_now(&minter, 300).unwrap();

        let header = jsonwebtoken::decode_header(&issued.token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(minter.key().kid().as_str()));
        let x5c = header.x5c_der().unwrap().unwrap();
        let pem_der = |pem: &str| {
            x509_cert::der::Encode::to_der(
                &<x509_cert::Certificate as x509_cert::der::DecodePem>::from_pem(pem.as_bytes())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(x5c, [pem_der(&leaf_pem), pem_der(&ca_pem)]);

        // The leaf's public key, as a registry verifying by x5c takes it, verifies the token.
        let leaf = <x509_cert::Certificate as x509_cert::der::Decode>::from_der(&x5c[0]).unwrap();
        let public = leaf
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes();
        let mut validation = Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["registry.test"]);
        jsonwebtoken::decode::<Claims>(
            &issued.token,
            &DecodingKey::from_ec_der(public),
            &validation,
        )
        .unwrap();
    }

    #[test]
    fn without_x5c_the_header_has_no_certificates() {
        let (minter, _) = minter(SigningAlgorithm::ES256);
        let issued = mint_now(&minter, 300).unwrap();
        assert!(
            jsonwebtoken::decode_header(&issued.token)
                .unwrap()
                .x5c
                .is_none()
        );
    }

    #[test]
    fn x5c_is_refused_for_a_key_without_a_certificate() {
        let (minter, _) = minter(SigningAlgorithm::ES256);
        let err = minter.with_x5c().unwrap_err();
        assert!(matches!(err, MintError::NoCertificate));
    }

    #[test]
    fn a_chain_must_start_with_the_signing_key_s_certificate() {
        let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let (leaf_pem, ca_pem) = chain_for(&leaf_key);
        // The CA first: its key is not the signing key.
        let err = SigningKey::from_pem(
            &leaf_key.serialize_pem(),
            None,
            Some(&format!("{ca_pem}{leaf_pem}")),
            None,
        )
        .unwrap_err();
        assert!(matches!(err, crate::KeyError::CertificateMismatch));
    }
}
