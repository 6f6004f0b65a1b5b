//! Identity tokens of verified deployments: RS256/ES256 JWTs checked against the deployment's
//! keys, and the per-connection timer that asks for a fresh one when a token expires.
//!
//! Tokens are verified and dropped: never stored, never logged, never echoed in an error.

use std::time::Duration;

use base64::Engine as _;
use em_protocol::visitor::ToVisitor;
use em_protocol::{ErrorCode, ErrorFrame};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};
use serde::Deserialize;

use crate::config::{AuthConfig, VerifyingKey};
use crate::error::Error;
use crate::hub::Outbox;

/// Longest `sub` accepted: it is stored, and shown to agents.
pub const MAX_SUBJECT_BYTES: usize = 255;

/// What a valid token proves.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub subject: String,
    /// When the token stops being accepted (`exp` plus the leeway), in ms.
    pub expires_at_ms: i64,
}

/// Optional here so that a missing claim is reported as missing, not as malformed JSON.
#[derive(Deserialize)]
struct Claims {
    sub: Option<String>,
    exp: Option<f64>,
    nbf: Option<f64>,
}

/// Checks a token against the deployment's auth settings at `now_ms`. The refusal is an
/// `identity_invalid` error whose message says which check failed.
pub fn verify(auth: &AuthConfig, token: &str, now_ms: i64) -> Result<Identity, Error> {
    check(auth, token, now_ms).map_err(|why| {
        Error::peer(
            ErrorCode::IdentityInvalid,
            format!("identity token refused: {why}"),
        )
    })
}

fn check(auth: &AuthConfig, token: &str, now_ms: i64) -> Result<Identity, String> {
    let (alg, kid) = header_of(token)?;
    let family = alg.family();
    let claims = signed_claims(auth, token, alg, family, kid.as_deref())?;
    let (Some(sub), Some(exp)) = (claims.sub, claims.exp) else {
        return Err("the sub and exp claims are required".into());
    };
    if sub.trim().is_empty() {
        return Err("the sub claim is empty".into());
    }
    if sub.len() > MAX_SUBJECT_BYTES {
        return Err(format!(
            "the sub claim is longer than {MAX_SUBJECT_BYTES} bytes"
        ));
    }
    let leeway_ms = auth.leeway_seconds as i64 * 1000;
    // `as` saturates, so an absurd exp cannot overflow.
    let expires_at_ms = ((exp * 1000.0) as i64).saturating_add(leeway_ms);
    if now_ms >= expires_at_ms {
        return Err(format!("the token expired (exp {exp}); get a fresh one"));
    }
    if let Some(nbf) = claims.nbf
        && (nbf * 1000.0) as i64 > now_ms.saturating_add(leeway_ms)
    {
        return Err(format!("the token is not valid yet (nbf {nbf})"));
    }
    Ok(Identity {
        subject: sub,
        expires_at_ms,
    })
}

/// The header's `alg` (RS256 or ES256 only: `none`, HMAC and the rest are refused before any
/// key is touched, which also defeats HS256 "signed" with a public key) and `kid`.
fn header_of(token: &str) -> Result<(Algorithm, Option<String>), String> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts[0].is_empty() {
        return Err("malformed: a JWT is three base64url parts separated by dots".into());
    }
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[0])
        .map_err(|_| "malformed: the header is not base64url".to_string())?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|_| "malformed: the header is not a JSON object".to_string())?;
    let alg = match header.get("alg").and_then(|a| a.as_str()) {
        Some("RS256") => Algorithm::RS256,
        Some("ES256") => Algorithm::ES256,
        Some(other) => return Err(format!("alg {other:?} is not accepted; use RS256 or ES256")),
        None => return Err("malformed: the header has no alg".into()),
    };
    if parts[1].is_empty() || parts[2].is_empty() {
        return Err("malformed: the claims or the signature are empty".into());
    }
    let kid = header
        .get("kid")
        .and_then(|k| k.as_str())
        .map(str::to_string);
    Ok((alg, kid))
}

/// Verifies the signature with the candidate keys, then `iss`, `aud` and the presence of
/// `exp` and `sub` (expiry itself is checked by the caller against the server's clock).
fn signed_claims(
    auth: &AuthConfig,
    token: &str,
    alg: Algorithm,
    family: AlgorithmFamily,
    kid: Option<&str>,
) -> Result<Claims, String> {
    let kind = if family == AlgorithmFamily::Rsa {
        "RSA"
    } else {
        "EC P-256"
    };
    let of_family = |k: &&VerifyingKey| k.key.family() == family;
    let named: Vec<&VerifyingKey> = match kid {
        Some(kid) => auth
            .keys
            .iter()
            .filter(|k| k.kid.as_deref() == Some(kid))
            .collect(),
        None => Vec::new(),
    };
    let candidates: Vec<&VerifyingKey> = match (kid, named.is_empty()) {
        (Some(kid), false) => {
            let fit: Vec<_> = named.into_iter().filter(of_family).collect();
            if fit.is_empty() {
                return Err(format!(
                    "key {kid:?} is not an {kind} key, as alg {alg:?} needs"
                ));
            }
            fit
        }
        // A kid none of the JWKS keys has: the kid-less PEM keys may still have signed it.
        (Some(kid), true) => {
            let pem: Vec<_> = auth
                .keys
                .iter()
                .filter(|k| k.kid.is_none())
                .filter(of_family)
                .collect();
            if pem.is_empty() {
                return Err(format!("unknown kid {kid:?}"));
            }
            pem
        }
        (None, _) => {
            let all: Vec<_> = auth.keys.iter().filter(of_family).collect();
            if all.is_empty() {
                return Err(format!("no {kind} key is configured for alg {alg:?}"));
            }
            all
        }
    };
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    if let Some(iss) = &auth.issuer {
        validation.set_issuer(&[iss]);
    }
    if let Some(aud) = &auth.audience {
        validation.set_audience(&[aud]);
    }
    for key in candidates {
        match jsonwebtoken::decode::<Claims>(token, &key.key, &validation) {
            Ok(data) => return Ok(data.claims),
            Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
            Err(e) => return Err(describe(e.kind(), auth)),
        }
    }
    Err("the signature does not match any configured key".into())
}

fn describe(kind: &ErrorKind, auth: &AuthConfig) -> String {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_default();
    match kind {
        ErrorKind::MissingRequiredClaim(c) => format!("the {c} claim is missing"),
        ErrorKind::InvalidClaimFormat(c) => format!("the {c} claim is malformed"),
        ErrorKind::InvalidIssuer => format!("iss is not {:?}", or_none(&auth.issuer)),
        ErrorKind::InvalidAudience => format!("aud does not include {:?}", or_none(&auth.audience)),
        ErrorKind::Json(_) => {
            "malformed: the claims are not a JSON object, or sub is not a string or exp not a number"
                .into()
        }
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            "malformed: a part is not base64url JSON".into()
        }
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            "the signature does not match any configured key".into()
        }
        other => format!("{other:?}"),
    }
}

/// One verified connection: its subject and the timer of its token's expiry. Dropping it
/// (a fresh token, or the connection closing) stops the timer.
pub struct Verified {
    pub subject: String,
    timer: tokio::task::AbortHandle,
}

impl Verified {
    /// Starts the timer: at expiry the visitor gets `identityTokenExpired { graceSeconds }`;
    /// `grace_seconds` later, without a fresh token, `error identity_expired` and the socket
    /// closes. Real time (a tokio timer), measured from `now_ms` of the server's clock.
    pub fn watch(identity: Identity, now_ms: i64, grace_seconds: u64, out: Outbox) -> Self {
        let left = Duration::from_millis((identity.expires_at_ms - now_ms).max(0) as u64);
        let timer = tokio::spawn(async move {
            tokio::time::sleep(left).await;
            out.send(&ToVisitor::IdentityTokenExpired { grace_seconds });
            tokio::time::sleep(Duration::from_secs(grace_seconds)).await;
            out.send(&ToVisitor::Error(ErrorFrame {
                code: ErrorCode::IdentityExpired,
                message: format!(
                    "the identity token expired and no fresh one came within {grace_seconds} s"
                ),
                entry_id: None,
                retry_after_ms: None,
            }));
            out.close(em_protocol::close::CloseCode::IdentityExpired);
        })
        .abort_handle();
        Self {
            subject: identity.subject,
            timer,
        }
    }
}

impl Drop for Verified {
    fn drop(&mut self) {
        self.timer.abort();
    }
}
