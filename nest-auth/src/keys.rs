//! Keys: each has a `kid` and exactly one algorithm, so a token is checked with the key its
//! `kid` names and only with that key's algorithm (no algorithm confusion, no `alg: none`).
//!
//! Rotation: give the [`Authenticator`](crate::Authenticator) the new key and the old ones, and
//! sign with the new one ([`AuthenticatorBuilder::signing_key`](crate::AuthenticatorBuilder::signing_key));
//! tokens signed with an old key stay valid until they expire or the key is removed.
//!
//! # Example
//!
//! ```
//! use nest_auth::Key;
//!
//! let hmac = Key::hmac("2026-12", b"a secret of at least thirty-two bytes").unwrap();
//! assert_eq!((hmac.kid(), hmac.can_sign()), ("2026-12", true));
//! assert!(Key::hmac("short", b"too short").unwrap_err().is_config());
//!
//! let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAJOR2/7qnkpizS03c69BJNEzy3O7ExOY8jrXt1jawcXc=\n-----END PUBLIC KEY-----\n";
//! let verify_only = Key::ed25519_public("partner", public).unwrap();
//! assert!(!verify_only.can_sign());
//! assert!(Key::es256_public("bad", "not a pem").unwrap_err().is_config());
//! ```

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use crate::error::{Error, Result};

/// The shortest HMAC secret accepted: 256 bits, the size of HS256's output (RFC 7518 §3.2).
pub const MIN_HMAC_SECRET: usize = 32;

/// One key: a `kid`, an algorithm, what verifies and (optionally) what signs.
#[derive(Clone)]
pub struct Key {
    kid: String,
    algorithm: Algorithm,
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
}

impl Key {
    /// An HS256 key: one shared secret of at least [`MIN_HMAC_SECRET`] bytes signs and verifies.
    pub fn hmac(kid: impl Into<String>, secret: &[u8]) -> Result<Self> {
        let kid = kid.into();
        if secret.len() < MIN_HMAC_SECRET {
            return Err(Error::config(format!(
                "key `{kid}`: an HMAC secret needs at least {MIN_HMAC_SECRET} bytes, got {}",
                secret.len()
            )));
        }
        Self::new(
            kid,
            Algorithm::HS256,
            DecodingKey::from_secret(secret),
            Some(EncodingKey::from_secret(secret)),
        )
    }

    /// An ES256 (ECDSA P-256) key that signs and verifies: the private key in PKCS#8 PEM
    /// (`BEGIN PRIVATE KEY`) and its public key (`BEGIN PUBLIC KEY`). A pair that does not
    /// match is an error when the [`Authenticator`](crate::Authenticator) is built.
    pub fn es256(kid: impl Into<String>, private_pem: &str, public_pem: &str) -> Result<Self> {
        Self::asymmetric(kid.into(), &ES256, Some(private_pem), public_pem)
    }

    /// An ES256 key that only verifies (another service signs).
    pub fn es256_public(kid: impl Into<String>, public_pem: &str) -> Result<Self> {
        Self::asymmetric(kid.into(), &ES256, None, public_pem)
    }

    /// An EdDSA (Ed25519) key that signs and verifies: the private key in PKCS#8 PEM and its
    /// public key.
    pub fn ed25519(kid: impl Into<String>, private_pem: &str, public_pem: &str) -> Result<Self> {
        Self::asymmetric(kid.into(), &ED25519, Some(private_pem), public_pem)
    }

    /// An EdDSA key that only verifies.
    pub fn ed25519_public(kid: impl Into<String>, public_pem: &str) -> Result<Self> {
        Self::asymmetric(kid.into(), &ED25519, None, public_pem)
    }

    fn asymmetric(
        kid: String,
        family: &Family,
        private_pem: Option<&str>,
        public_pem: &str,
    ) -> Result<Self> {
        let name = family.name;
        let encoding = private_pem
            .map(|pem| (family.private)(pem.as_bytes()))
            .transpose()
            .map_err(|e| pem_error(&kid, &format!("{name} private"), e))?;
        let decoding = (family.public)(public_pem.as_bytes())
            .map_err(|e| pem_error(&kid, &format!("{name} public"), e))?;
        Self::new(kid, family.algorithm, decoding, encoding)
    }

    fn new(
        kid: String,
        algorithm: Algorithm,
        decoding: DecodingKey,
        encoding: Option<EncodingKey>,
    ) -> Result<Self> {
        if kid.is_empty() || kid.len() > 128 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::config(format!(
                "key id `{kid}`: 1 to 128 printable ASCII characters"
            )));
        }
        Ok(Self {
            kid,
            algorithm,
            decoding,
            encoding,
        })
    }

    /// The key id, sent in each token's header (`kid`).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Whether this key can sign (it holds the secret or the private key).
    pub fn can_sign(&self) -> bool {
        self.encoding.is_some()
    }

    pub(crate) fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub(crate) fn decoding(&self) -> &DecodingKey {
        &self.decoding
    }

    pub(crate) fn encoding(&self) -> Option<&EncodingKey> {
        self.encoding.as_ref()
    }
}

/// An asymmetric algorithm and how its PEM keys are read.
struct Family {
    name: &'static str,
    algorithm: Algorithm,
    private: fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>,
    public: fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>,
}

const ES256: Family = Family {
    name: "ES256",
    algorithm: Algorithm::ES256,
    private: EncodingKey::from_ec_pem,
    public: DecodingKey::from_ec_pem,
};

const ED25519: Family = Family {
    name: "Ed25519",
    algorithm: Algorithm::EdDSA,
    private: EncodingKey::from_ed_pem,
    public: DecodingKey::from_ed_pem,
};

fn pem_error(kid: &str, what: &str, err: jsonwebtoken::errors::Error) -> Error {
    Error::config(format!("key `{kid}`: not a valid {what} key in PEM")).with_source(err)
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key material.
        f.debug_struct("Key")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("can_sign", &self.can_sign())
            .finish()
    }
}
