//! The running agent's quarantines and grants in the decision, in the kernel's order:
//! failsafe, quarantine (softened only by `quarantine_allow`, never by audit), rules,
//! break-glass, audit.
use std::time::{Duration, SystemTime};

use super::*;

/// The grant `imaging -> billing tcp/443` (number 3), ending at a fixed time.
fn grant() -> GrantRule {
    GrantRule {
        id: 3,
        from: "imaging".into(),
        to: "billing".into(),
        ports: vec![(6, 443)],
        expires: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    }
}

/// `198.18.20.5` (imaging) quarantined for a scan, admin allowed to reach it.
fn live() -> LiveState {
    LiveState {
        quarantined: vec![Quarantined {
            ip: "198.18.20.5".parse().unwrap(),
            reason: "scan".into(),
        }],
        quarantine_allow: vec!["admin".into()],
        grants: vec![grant()],
    }
}

fn decide(src: &str, dst: &str, service: &str, e: &Enforcement) -> String {
    let lines = clinic().policy.decide_all(src, dst, service, e).unwrap();
    let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

#[test]
fn a_quarantine_denies_before_the_rules() {
    let e = Enforcement {
        live: live(),
        ..Enforcement::default()
    };
    // Rule #0 allows imaging -> pacs, but the source is quarantined.
    assert_eq!(
        decide("198.18.20.5", "198.18.21.1", "tcp/104", &e),
        "deny imaging -> pacs tcp/104: 198.18.20.5 is quarantined (scan)"
    );
    // As a destination too, and as a one-host prefix.
    assert_eq!(
        decide("198.18.21.1", "198.18.20.5/32", "tcp/104", &e),
        "deny pacs -> imaging tcp/104: 198.18.20.5 is quarantined (scan)"
    );
    // Another host of the zone, and the zone as a whole, are not quarantined.
    assert_eq!(
        decide("198.18.20.6", "pacs", "tcp/104", &e),
        "allow imaging -> pacs tcp/104 by rule #0 at clinic.toml:34"
    );
    assert_eq!(
        decide("imaging", "pacs", "tcp/104", &e),
        "allow imaging -> pacs tcp/104 by rule #0 at clinic.toml:34"
    );
    // A `quarantine_allow` zone still reaches it, under the policy.
    assert_eq!(
        decide("198.18.24.1", "198.18.20.5", "tcp/22", &e),
        "allow admin -> imaging tcp/22 by rule #3 at clinic.toml:56"
    );
    // Audit mode does not soften a quarantine.
    let audit = Enforcement {
        audit: true,
        ..e.clone()
    };
    assert_eq!(
        decide("198.18.20.5", "198.18.23.1", "tcp/443", &audit),
        "deny imaging -> billing tcp/443: 198.18.20.5 is quarantined (scan)"
    );
}

#[test]
fn the_failsafe_comes_before_a_quarantine() {
    let e = Enforcement {
        management: vec!["198.18.20.0/24".parse().unwrap()],
        failsafe_ports: vec![22],
        live: live(),
        ..Enforcement::default()
    };
    assert_eq!(
        decide("198.18.20.5", "198.18.21.1", "tcp/22", &e),
        "allow imaging -> pacs tcp/22 by the failsafe (management prefix 198.18.20.0/24)"
    );
}

#[test]
fn a_grant_allows_what_no_rule_does_and_before_audit() {
    let e = Enforcement {
        live: LiveState {
            grants: vec![grant()],
            ..LiveState::default()
        },
        ..Enforcement::default()
    };
    assert_eq!(
        decide("imaging", "billing", "tcp/443", &e),
        "allow imaging -> billing tcp/443 by break-glass grant 3 (until 2027-01-15T08:00:00Z)"
    );
    // Only its service and its direction.
    assert_eq!(
        decide("imaging", "billing", "tcp/8443", &e),
        "deny imaging -> billing tcp/8443: no rule allows it"
    );
    assert_eq!(
        decide("billing", "imaging", "tcp/443", &e),
        "deny billing -> imaging tcp/443: no rule allows it"
    );
    let audit = Enforcement {
        audit: true,
        ..e.clone()
    };
    assert_eq!(
        decide("imaging", "billing", "tcp/443", &audit),
        "allow imaging -> billing tcp/443 by break-glass grant 3 (until 2027-01-15T08:00:00Z)"
    );
}
