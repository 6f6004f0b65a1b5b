//! `[signin]`: how agent sign-in resists guessing (backoff, hash cap), session token lifetime,
//! and which other origins may open the agent socket.

use std::time::Duration;

use serde::Deserialize;

use super::OriginPattern;

/// Validated `[signin]`. Checked while parsing (`try_from`), so a bad value names its key.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "Raw")]
pub struct SigninSettings {
    /// Wrong sign-ins (per client address and per username) that cost no wait: a person
    /// mistyping is never slowed down.
    pub free_failures: u32,
    /// The wait after the first failure beyond the free ones; each further failure doubles it.
    pub backoff_initial: Duration,
    /// The longest wait.
    pub backoff_max: Duration,
    /// A key's failures are forgotten once its wait is over and this long passed without a
    /// new one. Long next to `backoff_max`: else guessing in bursts and pausing until forgotten
    /// would beat guessing at the capped rate.
    pub forget_after: Duration,
    /// Refused sign-ins on one socket after which the server closes it.
    pub close_after_failures: u32,
    /// Password hashes (PBKDF2, deliberately slow) computed at once, server-wide. Read at start.
    pub max_concurrent_hashes: usize,
    /// How long a password sign-in waits for a hashing slot before `rate_limited`.
    pub hash_queue_wait: Duration,
    /// Lifetime of a session token from the sign-in that issued it.
    pub session_lifetime: Duration,
    /// Origins besides the console's own (the request's `Host`) allowed to open `/agent/ws`.
    pub console_origins: Vec<OriginPattern>,
}

/// `[signin]` as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Raw {
    free_failures: u32,
    backoff_initial_ms: u64,
    backoff_max_ms: u64,
    forget_after_seconds: u64,
    close_after_failures: u32,
    max_concurrent_hashes: usize,
    hash_queue_wait_ms: u64,
    session_hours: u64,
    console_origins: Vec<String>,
}

impl Default for Raw {
    fn default() -> Self {
        Self {
            free_failures: 3,
            backoff_initial_ms: 1_000,
            backoff_max_ms: 300_000,
            forget_after_seconds: 3_600,
            close_after_failures: 5,
            max_concurrent_hashes: 2,
            hash_queue_wait_ms: 2_000,
            session_hours: 12,
            console_origins: Vec::new(),
        }
    }
}

impl Default for SigninSettings {
    fn default() -> Self {
        // The defaults are valid by construction.
        Self::try_from(Raw::default()).unwrap_or_else(|_| unreachable!())
    }
}

impl TryFrom<Raw> for SigninSettings {
    type Error = String;

    fn try_from(r: Raw) -> Result<Self, String> {
        if r.backoff_initial_ms == 0 {
            return Err("[signin] backoff_initial_ms must be at least 1".into());
        }
        if r.backoff_max_ms < r.backoff_initial_ms {
            return Err("[signin] backoff_max_ms must be at least backoff_initial_ms".into());
        }
        if r.forget_after_seconds.saturating_mul(1000) < r.backoff_max_ms {
            return Err("[signin] forget_after_seconds must be at least backoff_max_ms".into());
        }
        if r.close_after_failures == 0 {
            return Err("[signin] close_after_failures must be at least 1".into());
        }
        if r.max_concurrent_hashes == 0 {
            return Err("[signin] max_concurrent_hashes must be at least 1".into());
        }
        if !(1..=24 * 30).contains(&r.session_hours) {
            return Err("[signin] session_hours must be from 1 to 720".into());
        }
        let console_origins = r
            .console_origins
            .iter()
            .enumerate()
            .map(|(i, o)| {
                OriginPattern::parse(o).map_err(|m| format!("[signin] console_origins[{i}]: {m}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            free_failures: r.free_failures,
            backoff_initial: Duration::from_millis(r.backoff_initial_ms),
            backoff_max: Duration::from_millis(r.backoff_max_ms),
            forget_after: Duration::from_secs(r.forget_after_seconds),
            close_after_failures: r.close_after_failures,
            max_concurrent_hashes: r.max_concurrent_hashes,
            hash_queue_wait: Duration::from_millis(r.hash_queue_wait_ms),
            session_lifetime: Duration::from_secs(r.session_hours * 3600),
            console_origins,
        })
    }
}

impl SigninSettings {
    /// The wait after a key's `failures`-th consecutive failure: none for the free ones, then
    /// doubling from `backoff_initial` up to `backoff_max`.
    pub fn wait_after(&self, failures: u32) -> Duration {
        let Some(beyond) = failures.checked_sub(self.free_failures + 1) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(beyond.min(31)).unwrap_or(u32::MAX);
        self.backoff_initial
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // The wait is zero for the free failures, then doubles and stops at the cap.
    fn backoff_doubles_up_to_the_cap() {
        let s = SigninSettings::default();
        let waits: Vec<u64> = (0..=15)
            .map(|n| s.wait_after(n).as_millis() as u64)
            .collect();
        assert_eq!(
            waits,
            [
                0, 0, 0, 0, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000,
                300_000, 300_000, 300_000
            ]
        );
        assert_eq!(s.wait_after(u32::MAX), Duration::from_millis(300_000));
    }

    #[test]
    // A zero or inverted backoff and a bad console origin are refused with the key named.
    fn bad_values_are_refused() {
        let raw = |f: fn(&mut Raw)| {
            let mut r = Raw::default();
            f(&mut r);
            SigninSettings::try_from(r).unwrap_err()
        };
        assert!(raw(|r| r.backoff_initial_ms = 0).contains("backoff_initial_ms"));
        assert!(raw(|r| r.backoff_max_ms = 10).contains("backoff_max_ms"));
        assert!(raw(|r| r.max_concurrent_hashes = 0).contains("max_concurrent_hashes"));
        assert!(raw(|r| r.forget_after_seconds = 60).contains("forget_after_seconds"));
        assert!(raw(|r| r.session_hours = 0).contains("session_hours"));
        assert!(
            raw(|r| r.console_origins = vec!["console.example.com".into()])
                .contains("console_origins[0]")
        );
    }
}
