//! What one client may make the server do: token buckets per socket, per client address and
//! per end user, and the count of visitor sockets per address (`[deployment.limits]`).
//!
//! Hand-written rather than `governor`: the rates come from the config at each check, so a
//! reload applies at once and each deployment has its own, where a governor limiter fixes its
//! quota when it is built. The keyed maps are bounded: buckets that have refilled are dropped
//! (a full bucket is the same as none), and IPv6 clients are counted per /64, the block one
//! subscriber usually gets.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use em_protocol::EndUserId;

/// Keys a map keeps before refilled buckets are swept out of it.
const SWEEP_ABOVE: usize = 10_000;
/// Keys a map may hold even after a sweep; past it the map starts afresh (a flood of
/// distinct keys must not grow memory; forgetting lets some through, which is the lesser harm).
const MAX_KEYS: usize = 200_000;

/// Tokens refill at `per_second` up to `burst`; each allowed event takes one.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, per_second: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        self.refill(per_second, burst, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }

    fn refill(&mut self, per_second: f64, burst: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(burst);
        self.at = now;
    }

    fn is_full(&self, per_second: f64, burst: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens + elapsed * per_second >= burst
    }
}

/// A rate: `per_second` on average, `burst` at once.
#[derive(Debug, Clone, Copy)]
pub struct Rate {
    pub per_second: f64,
    pub burst: f64,
}

impl Rate {
    /// `n` per second, bursts of `2n`.
    pub fn per_second(n: u32) -> Self {
        Self {
            per_second: f64::from(n),
            burst: f64::from(n) * 2.0,
        }
    }

    /// `n` per `period`, all of them at once if unused.
    pub fn per(n: u32, period: Duration) -> Self {
        Self {
            per_second: f64::from(n) / period.as_secs_f64(),
            burst: f64::from(n),
        }
    }
}

/// One socket's own bucket (no lock: the socket's task owns it). A refusal holds for its
/// whole wait: a frame that comes sooner is refused too, even if a token refilled meanwhile,
/// so a client that resends its refused frames in order after the wait never has a later one
/// overtake them (several tabs share one socket, and not every tab hears every refusal).
#[derive(Debug)]
pub struct SocketRate {
    bucket: Option<Bucket>,
    refused_until: Option<Instant>,
}

impl SocketRate {
    pub fn new() -> Self {
        Self {
            bucket: None,
            refused_until: None,
        }
    }

    pub fn take(&mut self, rate: Rate) -> Result<(), Duration> {
        self.take_at(rate, Instant::now())
    }

    fn take_at(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.refused_until.filter(|&u| now < u) {
            return Err(until - now);
        }
        let taken = self
            .bucket
            .get_or_insert_with(|| Bucket::full(rate.burst, now))
            .take(rate.per_second, rate.burst, now);
        self.refused_until = taken.err().map(|wait| now + wait);
        taken
    }
}

impl Default for SocketRate {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets by key, bounded (see the module comment).
#[derive(Debug)]
struct Keyed<K> {
    buckets: HashMap<K, Bucket>,
    /// The size at which the next sweep runs: twice what the last one kept, so sweeping
    /// costs O(1) per key on average even under a flood.
    sweep_at: usize,
}

impl<K: Hash + Eq> Keyed<K> {
    fn take(&mut self, key: K, rate: Rate, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() >= self.sweep_at && !self.buckets.contains_key(&key) {
            self.buckets
                .retain(|_, b| !b.is_full(rate.per_second, rate.burst, now));
            if self.buckets.len() >= MAX_KEYS {
                self.buckets.clear();
            }
            self.sweep_at = (self.buckets.len() * 2).clamp(SWEEP_ABOVE, MAX_KEYS);
        }
        self.buckets
            .entry(key)
            .or_insert_with(|| Bucket::full(rate.burst, now))
            .take(rate.per_second, rate.burst, now)
    }
}

impl<K> Default for Keyed<K> {
    fn default() -> Self {
        Self {
            buckets: HashMap::new(),
            sweep_at: SWEEP_ABOVE,
        }
    }
}

/// A deployment, as limits key it.
pub type DeploymentKey = Arc<str>;

/// The server-wide counters (shared by every socket through the engine).
#[derive(Default)]
pub struct Limiter {
    sockets: Mutex<HashMap<(DeploymentKey, IpAddr), u32>>,
    new_visitors: Mutex<Keyed<(DeploymentKey, IpAddr)>>,
    conversations: Mutex<Keyed<EndUserId>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay usable after a panic elsewhere: at worst one count is off.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What per-address limits count: the address, or an IPv6 address's /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

impl Limiter {
    /// A visitor socket from `ip` in `deployment`, if fewer than `max` are open; the slot is
    /// given back when the returned guard drops (the socket ended).
    pub fn open_socket(
        self: &Arc<Self>,
        deployment: DeploymentKey,
        ip: IpAddr,
        max: u32,
    ) -> Option<SocketSlot> {
        let key = (deployment, address_key(ip));
        let mut sockets = lock(&self.sockets);
        let n = sockets.entry(key.clone()).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SocketSlot {
            limiter: self.clone(),
            key: Some(key),
        })
    }

    /// A `hello` without a credential: a new identity from `ip`.
    pub fn new_visitor(
        &self,
        deployment: DeploymentKey,
        ip: IpAddr,
        rate: Rate,
    ) -> Result<(), Duration> {
        lock(&self.new_visitors).take((deployment, address_key(ip)), rate, Instant::now())
    }

    /// A conversation created by `end_user`.
    pub fn new_conversation(&self, end_user: EndUserId, rate: Rate) -> Result<(), Duration> {
        lock(&self.conversations).take(end_user, rate, Instant::now())
    }

    /// Visitor sockets open now from `ip` in `deployment` (tests and metrics).
    pub fn sockets_of(&self, deployment: &str, ip: IpAddr) -> u32 {
        lock(&self.sockets)
            .get(&(Arc::from(deployment), address_key(ip)))
            .copied()
            .unwrap_or(0)
    }
}

/// A counted visitor socket; dropping it gives the place back.
pub struct SocketSlot {
    limiter: Arc<Limiter>,
    key: Option<(DeploymentKey, IpAddr)>,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let mut sockets = lock(&self.limiter.sockets);
        if let Some(n) = sockets.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                sockets.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // A bucket allows its burst at once, then one per 1/rate, and says how long to wait.
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let rate = Rate::per_second(5);
        let mut b = Bucket::full(rate.burst, t0);
        for _ in 0..10 {
            assert!(b.take(rate.per_second, rate.burst, t0).is_ok());
        }
        let wait = b.take(rate.per_second, rate.burst, t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.2).abs() < 1e-9, "{wait:?}");
        let later = t0 + Duration::from_millis(200);
        assert!(b.take(rate.per_second, rate.burst, later).is_ok());
        assert!(b.take(rate.per_second, rate.burst, later).is_err());
        // Refilling stops at the burst size.
        let much_later = t0 + Duration::from_secs(3600);
        for _ in 0..10 {
            assert!(b.take(rate.per_second, rate.burst, much_later).is_ok());
        }
        assert!(b.take(rate.per_second, rate.burst, much_later).is_err());
    }

    #[test]
    // A socket's refusal lasts its whole wait, so nothing sent meanwhile overtakes the
    // refused frame once it is sent again.
    fn a_refusal_holds_for_its_wait() {
        let t0 = Instant::now();
        let rate = Rate::per_second(5);
        let mut r = SocketRate::new();
        for _ in 0..10 {
            assert!(r.take_at(rate, t0).is_ok());
        }
        let wait = r.take_at(rate, t0).unwrap_err();
        // Half the wait later a token has half refilled; still refused, for the rest.
        let half = t0 + wait / 2;
        assert_eq!(r.take_at(rate, half).unwrap_err(), wait - wait / 2);
        assert!(r.take_at(rate, t0 + wait).is_ok());
    }

    #[test]
    // Socket slots count per deployment and address and are given back on drop.
    fn socket_slots() {
        let l = Arc::new(Limiter::default());
        let d: DeploymentKey = Arc::from("org/Demo");
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = l.open_socket(d.clone(), ip, 2).unwrap();
        let _b = l.open_socket(d.clone(), ip, 2).unwrap();
        assert!(l.open_socket(d.clone(), ip, 2).is_none());
        assert!(l.open_socket(Arc::from("org/Other"), ip, 2).is_some());
        drop(a);
        assert_eq!(l.sockets_of("org/Demo", ip), 1);
        assert!(l.open_socket(d, ip, 2).is_some());
    }

    #[test]
    // IPv6 clients share their /64; keyed maps stay bounded under a flood of keys.
    fn keys_are_bounded() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        let mut keyed = Keyed::<u32>::default();
        let now = Instant::now();
        let rate = Rate::per(1, Duration::from_secs(3600));
        for k in 0..(MAX_KEYS as u32 + 10) {
            let _ = keyed.take(k, rate, now);
        }
        assert!(keyed.buckets.len() <= MAX_KEYS);
    }
}
