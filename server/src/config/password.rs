//! Agent passwords as PHC strings: `$pbkdf2-sha256$i=<iterations>$<salt>$<hash>` (base64 without
//! padding), so the deployments file never holds a password.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Iterations `em-server hash-password` uses (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
pub const DEFAULT_ITERATIONS: u32 = 600_000;

/// A parsed `password_hash`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordHash {
    iterations: u32,
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
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n >= 1)
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

    /// Hashes `password` with a fresh random salt.
    pub fn create(password: &str, iterations: u32) -> String {
        let salt: [u8; 16] = rand::random();
        let hash = derive(password, &salt, iterations);
        format!(
            "$pbkdf2-sha256$i={iterations}${}${}",
            B64.encode(salt),
            B64.encode(hash)
        )
    }

    /// Constant-time check of a password against this hash.
    pub fn verify(&self, password: &str) -> bool {
        bool::from(derive(password, &self.salt, self.iterations).ct_eq(&self.hash[..]))
    }
}

fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, iterations)
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
}
