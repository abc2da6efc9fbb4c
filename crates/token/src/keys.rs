//! Signing keys: loading from PEM, checking them against their certificate and configured key
//! ID, libtrust key IDs, and the JWKS that registries read.

use std::fmt;
use std::str::FromStr;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair as _;
use data_encoding::BASE32_NOPAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters,
    EllipticCurveKeyType, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::Encode;

/// The JWS algorithms cardgate signs with; both are understood by every registry version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    ES256,
    RS256,
}

impl SigningAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::RS256 => "RS256",
        }
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            SigningAlgorithm::ES256 => Algorithm::ES256,
            SigningAlgorithm::RS256 => Algorithm::RS256,
        }
    }
}

display_as_str!(SigningAlgorithm);

impl FromStr for SigningAlgorithm {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "ES256" => Ok(SigningAlgorithm::ES256),
            "RS256" => Ok(SigningAlgorithm::RS256),
            _ => Err(KeyError::UnsupportedAlgorithm(s.to_owned())),
        }
    }
}

/// Why a key, certificate or key ID was refused. [`KeyError::input`] tells which of the
/// inputs is at fault, so that callers can name the setting it came from.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unsupported algorithm `{0}` (supported: ES256, RS256)")]
    UnsupportedAlgorithm(String),
    #[error("the private key cannot be read: {0}")]
    Key(String),
    #[error("the algorithm is {configured} but the private key is a {found} key")]
    AlgorithmMismatch {
        configured: SigningAlgorithm,
        found: SigningAlgorithm,
    },
    #[error("the certificate cannot be read: {0}")]
    Certificate(String),
    #[error("the certificate's public key is not the private key's public key")]
    CertificateMismatch,
    #[error("the configured key ID `{configured}` is not the key's libtrust ID `{computed}`")]
    KidMismatch { configured: String, computed: KeyId },
    #[error("key generation failed: {0}")]
    Generation(String),
}

/// Which input a [`KeyError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyInput {
    Algorithm,
    Key,
    Certificate,
    Kid,
}

impl KeyError {
    pub fn input(&self) -> KeyInput {
        match self {
            KeyError::UnsupportedAlgorithm(_) | KeyError::AlgorithmMismatch { .. } => {
                KeyInput::Algorithm
            }
            KeyError::Key(_) | KeyError::Generation(_) => KeyInput::Key,
            KeyError::Certificate(_) | KeyError::CertificateMismatch => KeyInput::Certificate,
            KeyError::KidMismatch { .. } => KeyInput::Kid,
        }
    }
}

/// A libtrust key ID: SHA-256 of the DER SubjectPublicKeyInfo, first 30 bytes, base32 without
/// padding, in twelve groups of four joined by `:`. This is what registry 2.x looks a `kid` up
/// by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyId(String);

impl KeyId {
    pub fn from_spki_der(spki_der: &[u8]) -> Self {
        let digest = Sha256::digest(spki_der);
        let encoded = BASE32_NOPAD.encode(&digest[..30]);
        let groups: Vec<&str> = encoded
            .as_bytes()
            .chunks(4)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        KeyId(groups.join(":"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A private key ready to sign tokens, with its computed key ID, public JWK and (when one was
/// given) its certificate chain.
#[derive(Clone)]
pub struct SigningKey {
    algorithm: SigningAlgorithm,
    encoding: EncodingKey,
    kid: KeyId,
    jwk: Jwk,
    /// DER of the certificates given with the key, leaf first; empty when none was.
    chain: Vec<Vec<u8>>,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("algorithm", &self.algorithm)
            .field("kid", &self.kid)
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// The public half of a key that is published (in the JWKS) but does not sign: an older key
/// kept while tokens it signed may still be in use, or the next one announced before it
/// signs.
#[derive(Debug, Clone)]
pub struct PublishedKey {
    algorithm: SigningAlgorithm,
    kid: KeyId,
    jwk: Jwk,
}

impl PublishedKey {
    /// The key of a certificate (the first one, when `certificate_pem` holds a chain).
    /// `configured_kid`, when given, must equal the computed libtrust key ID.
    pub fn from_certificate_pem(
        certificate_pem: &str,
        configured_kid: Option<&str>,
    ) -> Result<Self, KeyError> {
        let chain = parse_chain(certificate_pem)?;
        let leaf = chain
            .first()
            .ok_or_else(|| KeyError::Certificate("no certificate found".into()))?;
        let cert_spki = leaf_spki(leaf)?;
        let (algorithm, spki_der) = match p256::PublicKey::from_public_key_der(&cert_spki) {
            // Re-encoded uncompressed, as the key ID of the private key is computed.
            Ok(public) => (
                SigningAlgorithm::ES256,
                public
                    .to_public_key_der()
                    .map_err(|e| KeyError::Certificate(e.to_string()))?
                    .as_bytes()
                    .to_vec(),
            ),
            Err(ec_error) => match aws_lc_rs::rsa::PublicKey::from_der(&cert_spki) {
                Ok(_) => (SigningAlgorithm::RS256, cert_spki),
                Err(rsa_error) => {
                    return Err(KeyError::Certificate(format!(
                        "its public key is neither P-256 ({ec_error}) nor RSA ({rsa_error})"
                    )));
                }
            },
        };
        let kid = KeyId::from_spki_der(&spki_der);
        check_kid(&kid, configured_kid)?;
        let jwk = public_jwk(algorithm, &spki_der, &kid)?;
        Ok(PublishedKey {
            algorithm,
            kid,
            jwk,
        })
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// The public key as a JWK whose `kid` is the libtrust key ID.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }
}

/// The certificates of a PEM text holding one or more `CERTIFICATE` blocks, in order.
fn parse_chain(certificate_pem: &str) -> Result<Vec<Certificate>, KeyError> {
    let chain = Certificate::load_pem_chain(certificate_pem.trim().as_bytes())
        .map_err(|e| KeyError::Certificate(e.to_string()))?;
    if chain.is_empty() {
        return Err(KeyError::Certificate("no certificate found".into()));
    }
    Ok(chain)
}

/// The DER SubjectPublicKeyInfo of a certificate.
fn leaf_spki(certificate: &Certificate) -> Result<Vec<u8>, KeyError> {
    certificate
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| KeyError::Certificate(e.to_string()))
}

fn check_kid(kid: &KeyId, configured: Option<&str>) -> Result<(), KeyError> {
    match configured {
        Some(configured) if configured.trim() != kid.as_str() => Err(KeyError::KidMismatch {
            configured: configured.trim().to_owned(),
            computed: kid.clone(),
        }),
        _ => Ok(()),
    }
}

/// The JWK of a public key given as DER SubjectPublicKeyInfo.
fn public_jwk(algorithm: SigningAlgorithm, spki_der: &[u8], kid: &KeyId) -> Result<Jwk, KeyError> {
    let b64 = |bytes: &[u8]| data_encoding::BASE64URL_NOPAD.encode(bytes);
    let parameters = match algorithm {
        SigningAlgorithm::ES256 => {
            let public = p256::PublicKey::from_public_key_der(spki_der)
                .map_err(|e| KeyError::Certificate(e.to_string()))?;
            let point = public.to_sec1_bytes();
            let (x, y) = match point.split_first() {
                Some((4, xy)) if xy.len() == 64 => xy.split_at(32),
                _ => return Err(KeyError::Certificate("unexpected P-256 point".into())),
            };
            AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: b64(x),
                y: b64(y),
            })
        }
        SigningAlgorithm::RS256 => {
            let public = aws_lc_rs::rsa::PublicKey::from_der(spki_der)
                .map_err(|e| KeyError::Certificate(e.to_string()))?;
            let components = aws_lc_rs::signature::RsaPublicKeyComponents::<Vec<u8>>::from(&public);
            AlgorithmParameters::RSA(RSAKeyParameters {
                key_type: RSAKeyType::RSA,
                n: b64(&components.n),
                e: b64(&components.e),
            })
        }
    };
    Ok(Jwk {
        common: CommonParameters {
            public_key_use: Some(PublicKeyUse::Signature),
            key_algorithm: Some(match algorithm {
                SigningAlgorithm::ES256 => KeyAlgorithm::ES256,
                SigningAlgorithm::RS256 => KeyAlgorithm::RS256,
            }),
            key_id: Some(kid.as_str().to_owned()),
            ..CommonParameters::default()
        },
        algorithm: parameters,
    })
}

/// A parsed private key: the DER form jsonwebtoken signs with and the public key's SPKI.
struct ParsedKey {
    algorithm: SigningAlgorithm,
    encoding: EncodingKey,
    spki_der: Vec<u8>,
}

const EC_LABEL: &str = "-----BEGIN EC PRIVATE KEY-----";
const RSA_LABEL: &str = "-----BEGIN RSA PRIVATE KEY-----";
const PKCS8_LABEL: &str = "-----BEGIN PRIVATE KEY-----";

/// A key the crypto libraries refused, with their reason.
fn key_error(e: impl fmt::Display) -> KeyError {
    KeyError::Key(e.to_string())
}

fn parse_ec(secret: p256::SecretKey) -> Result<ParsedKey, KeyError> {
    let pkcs8 = secret.to_pkcs8_der().map_err(key_error)?;
    let spki = secret.public_key().to_public_key_der().map_err(key_error)?;
    Ok(ParsedKey {
        algorithm: SigningAlgorithm::ES256,
        encoding: EncodingKey::from_ec_der(pkcs8.as_bytes()),
        spki_der: spki.as_bytes().to_vec(),
    })
}

fn parse_rsa(pem: &str) -> Result<ParsedKey, KeyError> {
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(key_error)?;
    let pair = aws_lc_rs::rsa::KeyPair::from_der(encoding.as_bytes())
        .map_err(|e| KeyError::Key(format!("RSA key rejected: {e}")))?;
    let spki = pair.public_key().as_der().map_err(key_error)?;
    Ok(ParsedKey {
        algorithm: SigningAlgorithm::RS256,
        encoding,
        spki_der: spki.as_ref().to_vec(),
    })
}

fn parse_private_key(pem: &str) -> Result<ParsedKey, KeyError> {
    let pem = pem.trim();
    if pem.starts_with(EC_LABEL) {
        let secret = p256::SecretKey::from_sec1_pem(pem).map_err(|e| {
            KeyError::Key(format!(
                "not a P-256 SEC1 key (only P-256 is supported): {e}"
            ))
        })?;
        parse_ec(secret)
    } else if pem.starts_with(RSA_LABEL) {
        parse_rsa(pem)
    } else if pem.starts_with(PKCS8_LABEL) {
        match p256::SecretKey::from_pkcs8_pem(pem) {
            Ok(secret) => parse_ec(secret),
            Err(ec_error) => parse_rsa(pem).map_err(|rsa_error| {
                KeyError::Key(format!(
                    "a PKCS#8 key that is neither P-256 ({ec_error}) nor RSA ({rsa_error})"
                ))
            }),
        }
    } else {
        Err(KeyError::Key(
            "expected an unencrypted PEM block `EC PRIVATE KEY`, `RSA PRIVATE KEY` or `PRIVATE KEY`"
                .into(),
        ))
    }
}

/// Whether the certificate's SubjectPublicKeyInfo holds the same public key as `spki_der`.
fn same_public_key(algorithm: SigningAlgorithm, cert_spki: &[u8], spki_der: &[u8]) -> bool {
    if cert_spki == spki_der {
        return true;
    }
    // EC points may be encoded compressed in a certificate; compare the decoded keys.
    algorithm == SigningAlgorithm::ES256
        && matches!(
            (
                p256::PublicKey::from_public_key_der(cert_spki),
                p256::PublicKey::from_public_key_der(spki_der),
            ),
            (Ok(a), Ok(b)) if a == b
        )
}

impl SigningKey {
    /// Loads a private key from PEM: P-256 in SEC1 (`EC PRIVATE KEY`) or PKCS#8, RSA in PKCS#1
    /// (`RSA PRIVATE KEY`) or PKCS#8.
    ///
    /// - `algorithm`, when given, must match the key's type.
    /// - `certificate_pem`, when given, is one certificate or a chain (leaf first) whose leaf
    ///   must hold the key's public key; it is kept for the `x5c` header.
    /// - `configured_kid`, when given, must equal the computed libtrust key ID.
    pub fn from_pem(
        key_pem: &str,
        algorithm: Option<SigningAlgorithm>,
        certificate_pem: Option<&str>,
        configured_kid: Option<&str>,
    ) -> Result<Self, KeyError> {
        let parsed = parse_private_key(key_pem)?;
        if let Some(configured) = algorithm
            && configured != parsed.algorithm
        {
            return Err(KeyError::AlgorithmMismatch {
                configured,
                found: parsed.algorithm,
            });
        }
        let mut chain = Vec::new();
        if let Some(cert_pem) = certificate_pem {
            let certificates = parse_chain(cert_pem)?;
            let leaf = certificates
                .first()
                .ok_or_else(|| KeyError::Certificate("no certificate found".into()))?;
            if !same_public_key(parsed.algorithm, &leaf_spki(leaf)?, &parsed.spki_der) {
                return Err(KeyError::CertificateMismatch);
            }
            for certificate in &certificates {
                chain.push(
                    certificate
                        .to_der()
                        .map_err(|e| KeyError::Certificate(e.to_string()))?,
                );
            }
        }
        let kid = KeyId::from_spki_der(&parsed.spki_der);
        check_kid(&kid, configured_kid)?;
        let mut jwk =
            Jwk::from_encoding_key(&parsed.encoding, parsed.algorithm.jwt()).map_err(key_error)?;
        jwk.common.key_id = Some(kid.as_str().to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(SigningKey {
            algorithm: parsed.algorithm,
            encoding: parsed.encoding,
            kid,
            jwk,
            chain,
        })
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    pub fn kid(&self) -> &KeyId {
        &self.kid
    }

    /// DER of the certificates given with the key, leaf first (empty when none was).
    pub fn certificate_chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The public half, to publish.
    pub fn published(&self) -> PublishedKey {
        PublishedKey {
            algorithm: self.algorithm,
            kid: self.kid.clone(),
            jwk: self.jwk.clone(),
        }
    }

    /// The public key as a JWK whose `kid` is the libtrust key ID.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    pub(crate) fn encoding(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The JWKS publishing these keys' public halves.
    pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> JwkSet {
        JwkSet {
            keys: keys.into_iter().map(|k| k.jwk.clone()).collect(),
        }
    }

    /// The JWKS publishing this key first, then `others` in order.
    pub fn jwks_with(&self, others: &[PublishedKey]) -> JwkSet {
        JwkSet {
            keys: std::iter::once(&self.jwk)
                .chain(others.iter().map(|k| &k.jwk))
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use x509_cert::der::DecodePem;

    /// `REGISTRY_TOKEN_AUTH_CERT` of the seed `.env`.
    const SEED_CERT_B64: &str = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUJqVENDQVRPZ0F3SUJBZ0lVVjVRZ2xNSDRuK2wrZGF6eE1PZG1vQldqTFhJd0NnWUlLb1pJemowRUF3SXcKSERFYU1CZ0dBMVVFQXd3UllYQnBMbXg1TG1acGMyZ3ViRzlqWVd3d0hoY05NakF4TVRJMk1UY3pNalEwV2hjTgpNakl4TVRJMk1UY3pNalEwV2pBY01Sb3dHQVlEVlFRRERCRmhjR2t1YkhrdVptbHphQzVzYjJOaGJEQlpNQk1HCkJ5cUdTTTQ5QWdFR0NDcUdTTTQ5QXdFSEEwSUFCRE5IUkNWYmthZlpZaWxGY3dXd2F0bkN6bEt1VHlEZmdLTVoKZ3BhbUJVR08vRlNIMGhjTU9CYTE5V3p2eFJXN05GOWNwRmVIZSszQndWdnB4OGIxOTZTalV6QlJNQjBHQTFVZApEZ1FXQkJRelc5SDJab3VDa2NsaVJrRHYwRnJUQSthbmtUQWZCZ05WSFNNRUdEQVdnQlF6VzlIMlpvdUNrY2xpClJrRHYwRnJUQSthbmtUQVBCZ05WSFJNQkFmOEVCVEFEQVFIL01Bb0dDQ3FHU000OUJBTUNBMGdBTUVVQ0lHRWQKTXF1UGJtcTNoV1hRbkowTUpieHc1RWJLMEFWQndhem9GR2F6RFVxTkFpRUF4MzFqdEpPUUEveWNPQlIyZDEyTgpQZ3dacjdZWTN3TUJ4RWtaS2VXR3FuQT0KLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=";
    /// `REGISTRY_TOKEN_AUTH_CERT_KEY` of the seed `.env` (SEC1).
    const SEED_KEY_B64: &str = "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS0tLS0tCk1IY0NBUUVFSUtYdzQxTDFBdFRGK01kMzJ1Rnd1NnpKWExNRktaTzBBRGNEWEh1bEZFNk5vQW9HQ0NxR1NNNDkKQXdFSG9VUURRZ0FFTTBkRUpWdVJwOWxpS1VWekJiQnEyY0xPVXE1UElOK0FveG1DbHFZRlFZNzhWSWZTRnd3NApGclgxYk8vRkZiczBYMXlrVjRkNzdjSEJXK25IeHZYM3BBPT0KLS0tLS1FTkQgRUMgUFJJVkFURSBLRVktLS0tLQo=";
    const SEED_KID: &str = "PF3H:26FR:LYS3:TIYU:2JUI:A2HE:7ZXT:G3B5:HX74:5UEB:SNU2:B5JL";

    /// A fresh key of `alg` with a certificate, as `cardgate keygen` makes them.
    fn generated(alg: SigningAlgorithm) -> crate::keygen::GeneratedKey {
        crate::keygen::generate(alg, "x", time::OffsetDateTime::now_utc(), 30).unwrap()
    }

    fn b64(s: &str) -> String {
        String::from_utf8(STANDARD.decode(s).unwrap()).unwrap()
    }

    fn cert_spki(cert_pem: &str) -> Vec<u8> {
        Certificate::from_pem(cert_pem.as_bytes())
            .unwrap()
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .unwrap()
    }

    #[test]
    fn seed_certificate_has_the_known_libtrust_kid() {
        let kid = KeyId::from_spki_der(&cert_spki(&b64(SEED_CERT_B64)));
        assert_eq!(kid.as_str(), SEED_KID);
    }

    #[test]
    fn distribution_jwt_md_jwk_has_the_known_libtrust_kid() {
        let x = URL_SAFE_NO_PAD
            .decode("m7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q")
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode("dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc")
            .unwrap();
        let mut sec1 = vec![4u8];
        sec1.extend_from_slice(&x);
        sec1.extend_from_slice(&y);
        let public = p256::PublicKey::from_sec1_bytes(&sec1).unwrap();
        let spki = public.to_public_key_der().unwrap();
        assert_eq!(
            KeyId::from_spki_der(spki.as_bytes()).as_str(),
            "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6"
        );
    }

    #[test]
    fn seed_sec1_key_loads_and_matches_its_certificate_and_kid() {
        let key = SigningKey::from_pem(
            &b64(SEED_KEY_B64),
            Some(SigningAlgorithm::ES256),
            Some(&b64(SEED_CERT_B64)),
            Some(SEED_KID),
        )
        .unwrap();
        assert_eq!(key.kid().as_str(), SEED_KID);
        assert_eq!(key.algorithm(), SigningAlgorithm::ES256);
        let jwk = serde_json::to_value(key.jwk()).unwrap();
        assert_eq!(jwk["kid"], SEED_KID);
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(jwk["alg"], "ES256");
        assert!(
            jwk.get("d").is_none(),
            "a JWKS must not carry the private key"
        );
    }

    #[test]
    fn pkcs8_form_of_the_seed_key_gives_the_same_kid() {
        let secret = p256::SecretKey::from_sec1_pem(&b64(SEED_KEY_B64)).unwrap();
        let pkcs8 = secret.to_pkcs8_pem(Default::default()).unwrap();
        let key = SigningKey::from_pem(&pkcs8, None, None, None).unwrap();
        assert_eq!(key.kid().as_str(), SEED_KID);
    }

    #[test]
    fn a_wrong_configured_kid_is_refused_naming_both() {
        let err = SigningKey::from_pem(
            &b64(SEED_KEY_B64),
            None,
            None,
            Some("AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA"),
        )
        .unwrap_err();
        assert_eq!(err.input(), KeyInput::Kid);
        assert!(err.to_string().contains(SEED_KID));
    }

    #[test]
    fn a_certificate_of_another_key_is_refused() {
        let other = generated(SigningAlgorithm::ES256);
        let err =
            SigningKey::from_pem(&b64(SEED_KEY_B64), None, Some(&other.certificate_pem), None)
                .unwrap_err();
        assert!(matches!(err, KeyError::CertificateMismatch));
        assert_eq!(err.input(), KeyInput::Certificate);
    }

    #[test]
    fn algorithm_must_match_the_key() {
        let err = SigningKey::from_pem(
            &b64(SEED_KEY_B64),
            Some(SigningAlgorithm::RS256),
            None,
            None,
        )
        .unwrap_err();
        assert_eq!(err.input(), KeyInput::Algorithm);
    }

    #[test]
    fn garbage_is_refused_as_a_key_error() {
        for bad in [
            "",
            "hello",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----",
        ] {
            let err = SigningKey::from_pem(bad, None, None, None).unwrap_err();
            assert_eq!(err.input(), KeyInput::Key, "{bad}");
        }
    }

    #[test]
    fn rsa_keys_load_from_pkcs8_and_pkcs1() {
        let generated = generated(SigningAlgorithm::RS256);
        let pkcs8 = generated.load(SigningAlgorithm::RS256);
        // The same key as PKCS#1: jsonwebtoken keeps RSA keys as PKCS#1 DER.
        let encoding = EncodingKey::from_rsa_pem(generated.key_pem.as_bytes()).unwrap();
        let pkcs1_pem = format!(
            "{RSA_LABEL}\n{}\n-----END RSA PRIVATE KEY-----\n",
            STANDARD.encode(encoding.as_bytes())
        );
        let pkcs1 = SigningKey::from_pem(&pkcs1_pem, None, None, None).unwrap();
        assert_eq!(pkcs1.kid(), pkcs8.kid());
        let jwk = serde_json::to_value(pkcs1.jwk()).unwrap();
        assert_eq!(jwk["kty"], "RSA");
        assert_eq!(jwk["alg"], "RS256");
    }

    #[test]
    fn a_published_key_from_a_certificate_has_the_signing_key_s_kid_and_jwk() {
        for alg in [SigningAlgorithm::ES256, SigningAlgorithm::RS256] {
            let generated = generated(alg);
            let key = SigningKey::from_pem(&generated.key_pem, None, None, None).unwrap();
            let published = PublishedKey::from_certificate_pem(
                &generated.certificate_pem,
                Some(generated.kid.as_str()),
            )
            .unwrap();
            assert_eq!(published.algorithm(), alg);
            assert_eq!(published.kid(), key.kid());
            assert_eq!(
                serde_json::to_value(published.jwk()).unwrap(),
                serde_json::to_value(key.jwk()).unwrap(),
                "{alg}"
            );
        }
    }

    #[test]
    fn the_seed_certificate_publishes_the_seed_kid() {
        let published = PublishedKey::from_certificate_pem(&b64(SEED_CERT_B64), None).unwrap();
        assert_eq!(published.kid().as_str(), SEED_KID);
    }

    #[test]
    fn a_published_key_with_a_wrong_kid_is_refused_naming_both() {
        let err = PublishedKey::from_certificate_pem(
            &b64(SEED_CERT_B64),
            Some("AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA:AAAA"),
        )
        .unwrap_err();
        assert_eq!(err.input(), KeyInput::Kid);
        assert!(err.to_string().contains(SEED_KID), "{err}");
        let err = PublishedKey::from_certificate_pem("not a certificate", None).unwrap_err();
        assert_eq!(err.input(), KeyInput::Certificate);
    }

    #[test]
    fn the_jwks_lists_the_signing_key_first_then_the_published_ones() {
        let key = SigningKey::from_pem(&b64(SEED_KEY_B64), None, None, None).unwrap();
        let next = generated(SigningAlgorithm::RS256);
        let next = PublishedKey::from_certificate_pem(&next.certificate_pem, None).unwrap();
        let jwks = serde_json::to_value(key.jwks_with(std::slice::from_ref(&next))).unwrap();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [SEED_KID, next.kid().as_str()]);
        assert!(jwks["keys"][1].get("d").is_none());
    }

    #[test]
    fn a_key_keeps_its_certificate_chain_and_the_debug_output_has_no_secret() {
        let key = SigningKey::from_pem(&b64(SEED_KEY_B64), None, Some(&b64(SEED_CERT_B64)), None)
            .unwrap();
        assert_eq!(key.certificate_chain().len(), 1);
        let debug = format!("{key:?}");
        let secret_line = b64(SEED_KEY_B64).lines().nth(1).unwrap().to_owned();
        assert!(!debug.contains(&secret_line[..20]), "{debug}");
    }
}
