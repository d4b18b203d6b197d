//! Tests of the reference dataplane, frame by frame.
use ward::policy::{load_str, Loaded};

use super::*;

mod frames;

/// The example policy shipped in `policies/clinic.toml`.
const CLINIC: &str = include_str!("../../../policies/clinic.toml");

/// The clinic policy, loaded.
fn clinic() -> Loaded {
    load_str("clinic.toml", CLINIC).unwrap_or_else(|e| panic!("{e:?}"))
}

/// A small deterministic pseudo-random generator (xorshift64*), for property tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
