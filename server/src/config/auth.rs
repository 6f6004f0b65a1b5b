//! `[deployment.auth]`: anonymous or verified visitors, and the keys that check identity tokens.

use std::fmt;
use std::path::Path;

use em_protocol::config::AuthMode;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{AlgorithmFamily, DecodingKey};
use serde::Deserialize;

/// How a deployment's visitors prove who they are. Verified: a JWT (`identityToken`) signed
/// by the site's identity provider, RS256 or ES256.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// The `iss` every token must carry.
    pub issuer: Option<String>,
    /// A value the token's `aud` must contain.
    pub audience: Option<String>,
    /// PEM files (RSA, or EC P-256), relative to the config file.
    pub public_keys: Vec<String>,
    /// A JWKS file (every key with a `kid`), relative to the config file.
    pub jwks_file: Option<String>,
    /// After a token expires, how long the visitor has to send a fresh one.
    pub grace_seconds: u64,
    /// Clock difference tolerated between the issuer and this server, on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The keys read from `public_keys` and `jwks_file`, filled by validation.
    #[serde(skip)]
    pub keys: Vec<VerifyingKey>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            mode: AuthMode::Anonymous,
            issuer: None,
            audience: None,
            public_keys: Vec::new(),
            jwks_file: None,
            grace_seconds: 30,
            leeway_seconds: 5,
            keys: Vec::new(),
        }
    }
}

/// One public key that may have signed an identity token.
#[derive(Clone)]
pub struct VerifyingKey {
    /// The JWKS `kid`; PEM keys have none.
    pub kid: Option<String>,
    pub key: DecodingKey,
    /// The file it came from, for log lines.
    pub source: String,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("family", &self.key.family())
            .field("source", &self.source)
            .finish()
    }
}

impl AuthConfig {
    /// Checks the settings and reads the keys; key paths are relative to `base` (the config
    /// file's folder). The error is (field under `auth.`, what is wrong).
    pub fn validate(&mut self, base: &Path) -> Result<(), (String, String)> {
        if self.mode == AuthMode::Verified {
            for (field, value) in [("issuer", &self.issuer), ("audience", &self.audience)] {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    return Err((field.into(), "required when mode = \"verified\"".into()));
                }
            }
        }
        // Bounded so that a typo cannot keep long-expired tokens (or sessions) alive.
        if self.leeway_seconds > 300 {
            return Err(("leeway_seconds".into(), "at most 300".into()));
        }
        if self.grace_seconds > 3600 {
            return Err(("grace_seconds".into(), "at most 3600".into()));
        }
        let mut keys = Vec::new();
        for (i, file) in self.public_keys.iter().enumerate() {
            let key = pem_key(&base.join(file)).map_err(|m| (format!("public_keys[{i}]"), m))?;
            keys.push(key);
        }
        if let Some(file) = &self.jwks_file {
            keys.extend(jwks_keys(&base.join(file)).map_err(|m| ("jwks_file".into(), m))?);
        }
        if self.mode == AuthMode::Verified && keys.is_empty() {
            return Err((
                "public_keys".into(),
                "list at least one key file, or set jwks_file, when mode = \"verified\"".into(),
            ));
        }
        self.keys = keys;
        Ok(())
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// An RSA or EC P-256 public key in PEM (`BEGIN PUBLIC KEY` or `BEGIN RSA PUBLIC KEY`).
fn pem_key(path: &Path) -> Result<VerifyingKey, String> {
    let text = read(path)?;
    let shown = path.display();
    if text.contains("PRIVATE KEY") {
        return Err(format!(
            "{shown} holds a private key; give the public key (openssl pkey -pubout)"
        ));
    }
    let key = match DecodingKey::from_rsa_pem(text.as_bytes()) {
        Ok(k) => k,
        Err(_) => DecodingKey::from_ec_pem(text.as_bytes())
            .ok()
            .filter(is_p256)
            .ok_or_else(|| format!("{shown} is not an RSA or EC P-256 public key in PEM"))?,
    };
    Ok(VerifyingKey {
        kid: None,
        key,
        source: shown.to_string(),
    })
}

/// An EC key decoded from PEM is the curve point: 65 bytes uncompressed (33 compressed) on
/// P-256; other curves are longer, and ES256 could never verify with them.
fn is_p256(key: &DecodingKey) -> bool {
    key.try_get_as_bytes()
        .is_ok_and(|point| matches!(point.len(), 65 | 33))
}

/// Every key of a JWKS file; each needs a distinct `kid` (tokens name their key by it).
fn jwks_keys(path: &Path) -> Result<Vec<VerifyingKey>, String> {
    let shown = path.display();
    let set: JwkSet = serde_json::from_str(&read(path)?)
        .map_err(|e| format!("{shown} is not a JWKS ({{\"keys\": [...]}}): {e}"))?;
    let mut keys: Vec<VerifyingKey> = Vec::new();
    for (j, jwk) in set.keys.iter().enumerate() {
        let Some(kid) = jwk.common.key_id.clone().filter(|k| !k.is_empty()) else {
            return Err(format!("{shown}: keys[{j}] has no kid"));
        };
        if keys.iter().any(|k| k.kid.as_deref() == Some(&kid)) {
            return Err(format!("{shown}: keys[{j}]: duplicate kid {kid:?}"));
        }
        let usable = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => true,
            AlgorithmParameters::EllipticCurve(p) => p.curve == EllipticCurve::P256,
            _ => false,
        };
        let key = DecodingKey::from_jwk(jwk)
            .ok()
            .filter(|k| usable && matches!(k.family(), AlgorithmFamily::Rsa | AlgorithmFamily::Ec))
            .ok_or_else(|| {
                format!("{shown}: keys[{j}] ({kid}) is not an RSA or EC P-256 public key")
            })?;
        keys.push(VerifyingKey {
            kid: Some(kid),
            key,
            source: shown.to_string(),
        });
    }
    Ok(keys)
}
