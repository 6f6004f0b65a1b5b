//! Helpers for the fault and durability tests: a seeded fault-injecting TCP proxy, a
//! resilient protocol client (visitor or agent) with an outbox, resends and dedupe by `seq`,
//! and a throwaway PostgreSQL cluster (`postgres::fresh_database`).
//! Test binaries that use it also declare `mod common;` (the in-process server harness).
#![allow(dead_code)] // each test binary uses a different part

pub mod peer;
pub mod postgres;
pub mod proxy;
mod wire;

/// SplitMix64: a tiny seeded generator, so a failing run can be replayed from its seed
/// without depending on a particular `rand` version's algorithm.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// A generator for a sub-task, independent of how far this one has advanced.
    pub fn fork(&self, salt: u64) -> Rng {
        let mut r = Rng(self.0 ^ salt.wrapping_mul(0xD1B5_4A32_D192_ED03));
        r.next_u64();
        r
    }
}

/// The seed for this run: `EM_FAULT_SEED` if set (to replay a failure), else from the clock.
/// Printed so that a failing run's output says how to replay it.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("EM_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    println!("{test}: fault seed {seed} (replay with EM_FAULT_SEED={seed})");
    seed
}
