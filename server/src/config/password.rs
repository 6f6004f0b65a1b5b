//! Agent passwords as PHC strings: `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>` (base64 without
//! padding), so the deployments file never holds a password.

use std::num::NonZeroU32;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use ring::pbkdf2::{self, PBKDF2_HMAC_SHA256};

/// Iterations `em-server hash-password` uses (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
pub const DEFAULT_ITERATIONS: u32 = 600_000;

/// Fewer iterations than this are refused, in the config and by `hash-password`. OWASP's
/// older (2021) advice was 310,000 and today's is 600,000; 100,000 still costs an attacker
/// with a leaked file ~100,000 times a plain SHA-256 per guess, while a server on slow
/// hardware (or a debug build) can keep a sign-in under a tenth of a second. Below it, a
/// hash is weak enough that the file must not be accepted.
pub const MIN_ITERATIONS: u32 = 100_000;

/// A parsed `password_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: NonZeroU32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl PasswordHash {
    /// Parses a PHC string; the error says what is wrong in words.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "{why}; expected $pbkdf2-sha256$i=<n>$<salt>$<hash> (make one with `em-server hash-password`)"
            )
        };
        let parts: Vec<&str> = s.split('$').collect();
        let ["", "pbkdf2-sha256", params, salt, hash] = parts[..] else {
            return Err(bad("not a password hash"));
        };
        let iterations = params
            .strip_prefix("i=")
            .and_then(|n| n.parse::<NonZeroU32>().ok())
            .ok_or_else(|| bad("bad iteration count"))?;
        let salt = B64.decode(salt).map_err(|_| bad("salt is not base64"))?;
        let hash = B64.decode(hash).map_err(|_| bad("hash is not base64"))?;
        if salt.len() < 8 || hash.len() != 32 {
            return Err(bad("salt under 8 bytes or hash not 32 bytes"));
        }
        Ok(Self {
            iterations,
            salt,
            hash,
        })
    }

    /// PBKDF2 iterations of this hash (validation refuses fewer than [`MIN_ITERATIONS`]).
    pub fn iterations(&self) -> u32 {
        self.iterations.get()
    }

    /// Hashes `password` with a fresh random salt (0 iterations count as 1).
    pub fn create(password: &str, iterations: u32) -> String {
        let iterations = NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN);
        let salt: [u8; 16] = rand::random();
        let mut hash = [0u8; 32];
        pbkdf2::derive(
            PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            password.as_bytes(),
            &mut hash,
        );
        format!(
            "$pbkdf2-sha256$i={iterations}${}${}",
            B64.encode(salt),
            B64.encode(hash)
        )
    }

    /// Constant-time check of a password against this hash.
    pub fn verify(&self, password: &str) -> bool {
        pbkdf2::verify(
            PBKDF2_HMAC_SHA256,
            self.iterations,
            &self.salt,
            password.as_bytes(),
            &self.hash,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // A created hash verifies its password only, and malformed strings are refused.
    fn create_parse_verify() {
        let h = PasswordHash::parse(&PasswordHash::create("pw", 10)).unwrap();
        assert!(h.verify("pw"));
        assert!(!h.verify("pw "));
        for bad in [
            "pw",
            "$pbkdf2-sha256$i=0$AAAAAAAAAAA$AAAA",
            "$argon2id$v=19$x$y$z",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    // Hashes made before (by the pbkdf2 crate) still verify: the same PBKDF2-HMAC-SHA256.
    fn earlier_hashes_verify() {
        let old =
            "$pbkdf2-sha256$i=1$74OP4JrMcnGxskQeyCtIMQ$PPb3oKWp0TJi6i5+EDHhIlRrDgKN64Eq8RUAGzchgVw";
        let h = PasswordHash::parse(old).unwrap();
        assert_eq!(h.iterations(), 1);
        assert!(h.verify("pw"));
        assert!(!h.verify("pw2"));
    }
}
