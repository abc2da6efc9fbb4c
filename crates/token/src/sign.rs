//! The JWS signature of a token, with the key pair parsed once rather than per token.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use data_encoding::BASE64URL_NOPAD;
use jsonwebtoken::Header;
use serde::Serialize;

use crate::keys::{SigningAlgorithm, SigningKey};

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("the signing key or header is not usable: {0}")]
    Key(String),
    #[error("cannot encode the token: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the signature failed")]
    Signature,
}

#[derive(Clone)]
enum KeyPair {
    Ecdsa(Arc<EcdsaKeyPair>),
    Rsa(Arc<RsaKeyPair>),
}

/// Signs compact JWS (`<header>.<claims>.<signature>`, base64url without padding) with one key
/// and one header, both prepared once.
#[derive(Clone)]
pub(crate) struct JwsSigner {
    /// The parsed key pair, or why the key could not be parsed (reported by [`Self::sign`]).
    pair: Result<KeyPair, String>,
    rng: SystemRandom,
    /// The base64url of the header's JSON (or why it could not be encoded).
    header: Result<String, String>,
}

impl fmt::Debug for JwsSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwsSigner").finish_non_exhaustive()
    }
}

fn b64_json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    Ok(BASE64URL_NOPAD.encode(&serde_json::to_vec(value)?))
}

impl JwsSigner {
    /// Prepares `key` and `header`; a key the crypto library refuses is reported when signing.
    pub(crate) fn new(key: &SigningKey, header: &Header) -> Self {
        let der = key.encoding().as_bytes();
        let pair = match key.algorithm() {
            SigningAlgorithm::ES256 => {
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map(|p| KeyPair::Ecdsa(Arc::new(p)))
                    .map_err(|e| e.to_string())
            }
            SigningAlgorithm::RS256 => RsaKeyPair::from_der(der)
                .map(|p| KeyPair::Rsa(Arc::new(p)))
                .map_err(|e| e.to_string()),
        };
        JwsSigner {
            pair,
            rng: SystemRandom::new(),
            header: b64_json(header).map_err(|e| e.to_string()),
        }
    }

    /// The compact JWS of `claims`.
    pub(crate) fn sign<T: Serialize>(&self, claims: &T) -> Result<String, SignError> {
        let pair = self.pair.as_ref().map_err(|e| SignError::Key(e.clone()))?;
        let header = self
            .header
            .as_ref()
            .map_err(|e| SignError::Key(e.clone()))?;
        let mut token = String::with_capacity(1024);
        token.push_str(header);
        token.push('.');
        token.push_str(&b64_json(claims)?);
        let signature = match pair {
            KeyPair::Ecdsa(pair) => pair
                .sign(&self.rng, token.as_bytes())
                .map_err(|_| SignError::Signature)?
                .as_ref()
                .to_vec(),
            KeyPair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &self.rng,
                    token.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| SignError::Signature)?;
                signature
            }
        };
        token.push('.');
        token.push_str(&BASE64URL_NOPAD.encode(&signature));
        Ok(token)
    }
}
