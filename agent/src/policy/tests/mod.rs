//! Tests of the policy module.
use super::*;

mod compile;
mod diff;
mod empty;
mod explain;
mod lint;
mod live;
mod load;
mod reuse;
mod services;
mod structure;

/// The example policy shipped in `policies/clinic.toml`.
const CLINIC: &str = include_str!("../../../../policies/clinic.toml");

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

#[test]
fn clinic_loads_without_warnings() {
    let loaded = clinic();
    assert_eq!(loaded.warnings, vec![]);
    assert_eq!(loaded.policy.zones.len(), 6);
    assert_eq!(loaded.policy.rules.len(), 5);
    assert_eq!(loaded.policy.cidr_count(), 12);
    let names: Vec<_> = loaded
        .compiled
        .zone_names
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        names,
        [
            "world",
            "admin",
            "billing",
            "clinicians",
            "ehr",
            "imaging",
            "pacs"
        ]
    );
}
mod sections;
