//! Agent sign-in guards: backoff per client address and per username, a cap on concurrent
//! password hashes, and the session tokens a console keeps instead of the password.
//!
//! Tokens live in memory, hashed (SHA-256 of 32 random bytes): a restart signs every console
//! out (agents type their password again), which keeps token material off the disk and the
//! store's schema unchanged. Every token is bound to its agent's password hash at issue, so a
//! reload that removes the agent or changes the hash voids it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::config::signin::SigninSettings;
use crate::hub::Outbox;

/// Failure records kept before the forgotten ones are swept out.
const SWEEP_ABOVE: usize = 10_000;
/// Failure records kept even after a sweep; beyond it the map starts afresh (a flood of
/// distinct keys must not grow memory).
const MAX_KEYS: usize = 200_000;
/// Live tokens per agent; a further sign-in revokes the oldest.
const TOKENS_PER_AGENT: usize = 32;

/// The digest a token is stored and looked up by.
pub type TokenKey = [u8; 32];

pub struct SignIn {
    hashes: std::sync::Arc<Semaphore>,
    /// Passwords checked so far (a figure, and how tests see that a refusal hashed nothing).
    checked: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    failures: HashMap<Key, Failures>,
    /// Size at which `failures` is next swept (twice what a sweep left, at least
    /// [`SWEEP_ABOVE`]), so sweeps cost O(1) per failure on average.
    sweep_at: usize,
    tokens: HashMap<TokenKey, Token>,
}

/// What failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Address(IpAddr),
    User(String),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
}

struct Token {
    username: String,
    /// The agent's `password_hash` when the token was issued.
    password_hash: String,
    expires_ms: i64,
    /// Sockets signed in with this token, closed when it is revoked.
    sockets: Vec<Outbox>,
}

/// A token as its socket knows it.
#[derive(Debug, Clone)]
pub struct Session {
    pub key: TokenKey,
    pub password_hash: String,
    pub expires_ms: i64,
}

impl SignIn {
    pub fn new(settings: &SigninSettings) -> Self {
        Self {
            hashes: std::sync::Arc::new(Semaphore::new(settings.max_concurrent_hashes)),
            checked: AtomicU64::new(0),
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the maps consistent, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How long the client must still wait (the longer of the address's and, if given, the
    /// username's backoff), or `None`.
    pub fn wait(
        &self,
        s: &SigninSettings,
        now_ms: i64,
        address: IpAddr,
        user: Option<&str>,
    ) -> Option<Duration> {
        let state = self.lock();
        keys(address, user)
            .iter()
            .filter_map(|k| state.failures.get(k))
            .map(|f| {
                let until = f
                    .last_ms
                    .saturating_add(s.wait_after(f.count).as_millis() as i64);
                Duration::from_millis(until.saturating_sub(now_ms).max(0) as u64)
            })
            .max()
            .filter(|d| !d.is_zero())
    }

    /// Counts a failed sign-in against the address and, if given, the username.
    pub fn failed(&self, s: &SigninSettings, now_ms: i64, address: IpAddr, user: Option<&str>) {
        let mut state = self.lock();
        if state.failures.len() >= state.sweep_at.max(SWEEP_ABOVE) {
            state.failures.retain(|_, f| !forgotten(s, f, now_ms));
            if state.failures.len() >= MAX_KEYS {
                state.failures.clear();
            }
            state.sweep_at = state.failures.len() * 2;
        }
        for key in keys(address, user) {
            let f = state.failures.entry(key).or_insert(Failures {
                count: 0,
                last_ms: now_ms,
            });
            if forgotten(s, f, now_ms) {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last_ms = now_ms;
        }
    }

    /// The right password: the username's failures are forgotten. The address's are not (one
    /// valid account must not reset the count of guesses at others from the same address).
    pub fn succeeded(&self, user: &str) {
        self.lock().failures.remove(&Key::User(user.to_string()));
    }

    /// A slot to hash a password in; `None` if none came free within `wait`.
    pub async fn hash_permit(&self, wait: Duration) -> Option<OwnedSemaphorePermit> {
        let permit = tokio::time::timeout(wait, self.hashes.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        self.checked.fetch_add(1, Ordering::Relaxed);
        Some(permit)
    }

    /// How many passwords were checked (hashed) since the server started.
    pub fn passwords_checked(&self) -> u64 {
        self.checked.load(Ordering::Relaxed)
    }

    /// A new token for `username`, held by `socket`. Returns the token (given to the client
    /// once, never stored) and what the socket keeps, plus sockets of a token revoked to make
    /// room (an agent's oldest beyond [`TOKENS_PER_AGENT`]).
    pub fn issue(
        &self,
        now_ms: i64,
        lifetime: Duration,
        username: &str,
        password_hash: &str,
        socket: &Outbox,
    ) -> (String, Session, Vec<Outbox>) {
        let raw: [u8; 32] = rand::random();
        let key = digest(&raw);
        let expires_ms = now_ms.saturating_add(lifetime.as_millis() as i64);
        let mut state = self.lock();
        state.tokens.retain(|_, t| t.expires_ms > now_ms);
        let mut evicted = Vec::new();
        let mut mine: Vec<(i64, TokenKey)> = state
            .tokens
            .iter()
            .filter(|(_, t)| t.username == username)
            .map(|(k, t)| (t.expires_ms, *k))
            .collect();
        if mine.len() >= TOKENS_PER_AGENT {
            mine.sort_unstable();
            for (_, k) in &mine[..=mine.len() - TOKENS_PER_AGENT] {
                if let Some(t) = state.tokens.remove(k) {
                    evicted.extend(t.sockets);
                }
            }
        }
        state.tokens.insert(
            key,
            Token {
                username: username.to_string(),
                password_hash: password_hash.to_string(),
                expires_ms,
                sockets: vec![socket.clone()],
            },
        );
        let session = Session {
            key,
            password_hash: password_hash.to_string(),
            expires_ms,
        };
        (B64.encode(raw), session, evicted)
    }

    /// Signs `socket` in with `token` if it is live, belongs to `username`, and that agent is
    /// still configured with the password hash it was issued under (else the token is dropped).
    pub fn redeem(
        &self,
        now_ms: i64,
        token: &str,
        username: &str,
        config: &Config,
        socket: &Outbox,
    ) -> Option<Session> {
        let raw = B64.decode(token).ok().filter(|r| r.len() == 32)?;
        let key = digest(&raw);
        let mut state = self.lock();
        let t = state.tokens.get_mut(&key)?;
        if t.username != username {
            return None; // someone else's token: not theirs to void either
        }
        let current = config.agent(username).map(|a| a.password_hash.as_str());
        if t.expires_ms <= now_ms || current != Some(t.password_hash.as_str()) {
            state.tokens.remove(&key);
            return None;
        }
        t.sockets.retain(|o| o.id != socket.id);
        t.sockets.push(socket.clone());
        Some(Session {
            key,
            password_hash: t.password_hash.clone(),
            expires_ms: t.expires_ms,
        })
    }

    /// The socket closed: the token no longer needs to reach it.
    pub fn detach(&self, key: &TokenKey, socket: u64) {
        if let Some(t) = self.lock().tokens.get_mut(key) {
            t.sockets.retain(|o| o.id != socket);
        }
    }

    /// Sign-out: the token is void; returns the sockets signed in with it.
    pub fn revoke(&self, key: &TokenKey) -> Vec<Outbox> {
        self.lock()
            .tokens
            .remove(key)
            .map(|t| t.sockets)
            .unwrap_or_default()
    }

    /// After a reload: voids the tokens of agents no longer configured with the password
    /// hash they signed in under; returns their sockets.
    pub fn revoke_stale(&self, config: &Config) -> Vec<Outbox> {
        let mut out = Vec::new();
        self.lock().tokens.retain(|_, t| {
            let current = config.agent(&t.username).map(|a| a.password_hash.as_str());
            let keep = current == Some(t.password_hash.as_str());
            if !keep {
                out.append(&mut t.sockets);
            }
            keep
        });
        out
    }

    /// Live tokens (for tests and figures).
    pub fn token_count(&self) -> usize {
        self.lock().tokens.len()
    }
}

/// Agents of `old` that `new` removes or gives another password hash: their rights end now.
pub fn stale_agents(old: &Config, new: &Config) -> Vec<String> {
    old.agent
        .iter()
        .filter(|a| {
            new.agent(&a.username)
                .is_none_or(|n| n.password_hash != a.password_hash)
        })
        .map(|a| a.username.clone())
        .collect()
}

fn keys(address: IpAddr, user: Option<&str>) -> Vec<Key> {
    let mut keys = vec![Key::Address(address_key(address))];
    keys.extend(user.map(|u| Key::User(u.to_string())));
    keys
}

/// IPv6 clients are counted per /64, the block one subscriber usually gets: a client must not
/// escape its backoff by moving to the next address of its own block.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// A key's failures are forgotten once its wait has passed and `forget_after` more went by
/// without a new failure.
fn forgotten(s: &SigninSettings, f: &Failures, now_ms: i64) -> bool {
    let quiet = s.wait_after(f.count).saturating_add(s.forget_after);
    now_ms.saturating_sub(f.last_ms) >= quiet.as_millis() as i64
}

fn digest(raw: &[u8]) -> TokenKey {
    Sha256::digest(raw).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SigninSettings {
        SigninSettings::default() // 3 free failures, 1 s doubling to 300 s
    }

    #[test]
    // Failures beyond the free ones make the address and the username wait; a success clears
    // the username only; the count is forgotten after a quiet period.
    fn backoff_by_address_and_user() {
        let (s, signin) = (settings(), SignIn::new(&settings()));
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            signin.failed(&s, 0, a, Some("ada"));
        }
        assert_eq!(signin.wait(&s, 0, a, Some("ada")), None);
        signin.failed(&s, 0, a, Some("ada"));
        assert_eq!(signin.wait(&s, 0, a, None), Some(Duration::from_secs(1)));
        assert_eq!(
            signin.wait(&s, 400, b, Some("ada")),
            Some(Duration::from_millis(600))
        );
        assert_eq!(signin.wait(&s, 0, b, Some("grace")), None);
        signin.succeeded("ada");
        assert_eq!(signin.wait(&s, 0, b, Some("ada")), None);
        assert_eq!(
            signin.wait(&s, 0, a, Some("ada")),
            Some(Duration::from_secs(1))
        );
        assert_eq!(signin.wait(&s, 1_000, a, None), None);
        // Within an hour after its wait the count goes on; after an hour of quiet, the address
        // starts again with free failures.
        signin.failed(&s, 1_000 + 3_599_000, a, None);
        assert_eq!(
            signin.wait(&s, 3_600_000, a, None),
            Some(Duration::from_secs(2))
        );
        signin.failed(&s, 3_602_000 + 3_600_000, a, None);
        assert_eq!(signin.wait(&s, 7_202_000, a, None), None);
    }

    #[test]
    // IPv6 addresses of one /64 share a backoff.
    fn ipv6_counted_per_64() {
        let (s, signin) = (settings(), SignIn::new(&settings()));
        for i in 0..4 {
            let ip: IpAddr = format!("2001:db8::{i}").parse().unwrap();
            signin.failed(&s, 0, ip, None);
        }
        let other: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert!(signin.wait(&s, 0, other, None).is_some());
        let elsewhere: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        assert_eq!(signin.wait(&s, 0, elsewhere, None), None);
    }
}
