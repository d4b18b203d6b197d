//! Tests of the policy module.
use super::*;

/// The example policy shipped in `policies/clinic.toml`.
const CLINIC: &str = include_str!("../../../../policies/clinic.toml");

#[test]
fn clinic_loads_without_warnings() {
    let loaded = load_str("clinic.toml", CLINIC).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(loaded.warnings, vec![]);
    assert_eq!(loaded.policy.zones.len(), 6);
    assert_eq!(loaded.policy.rules.len(), 5);
    println!("{:#?}", loaded.policy.rules[0].origin);
    println!("{:#?}", loaded.policy.zones[0].origin);
    println!("{:#?}", loaded.compiled.rules);
}
