//! Replays `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the entry
//! points and asserts the outcome of each input named here. Every regression must be
//! named; other corpus files (left by local fuzzing runs) only must not panic.
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;

use ward_common::Reason::{self, *};

use ward::events::decode::DecodeError;

/// Runs every input of `target` through `run`, checking the outcomes in `expected`.
fn replay<T: PartialEq + Debug>(target: &str, run: impl Fn(&[u8]) -> T, expected: &[(&str, T)]) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut unchecked: BTreeMap<&str, &T> = expected.iter().map(|(n, t)| (*n, t)).collect();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz.join(kind).join(target);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if kind == "regressions" && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{}: {e}", dir.display()),
        };
        for entry in entries {
            let path = entry.expect("directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("UTF-8 name");
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let got = run(&data);
            match unchecked.remove(name) {
                Some(want) => assert_eq!(&got, want, "{}", path.display()),
                None => assert!(
                    kind == "corpus",
                    "{}: a regression needs its expected outcome in {}",
                    path.display(),
                    file!()
                ),
            }
        }
    }
    assert!(
        unchecked.is_empty(),
        "inputs not found: {:?}",
        unchecked.keys()
    );
}

#[test]
fn policy_inputs() {
    // Zones, rules and warnings of a loaded policy, or its first error.
    let run = |data: &[u8]| match super::policy(data) {
        Ok(l) => Ok((l.policy.zones.len(), l.policy.rules.len(), l.warnings.len())),
        Err(diags) => Err(diags[0].to_string()),
    };
    replay(
        "policy",
        run,
        &[
            ("clinic.toml", Ok((6, 5, 0))),
            ("ranges-any-audit.toml", Ok((2, 2, 0))),
        ],
    );
}

#[test]
fn event_decode_inputs() {
    // Verdict, reason, destination port and zones of the record, or the error.
    let run = |data: &[u8]| {
        super::event_decode(data).map(|r| {
            let ward = &r.unmapped.ward;
            (
                ward.verdict.clone(),
                ward.reason.clone(),
                r.dst_endpoint.port,
                r.src_endpoint.zone.clone(),
                r.dst_endpoint.zone.clone(),
                r.firewall_rule.map(|f| f.name),
            )
        })
    };
    let record = |verdict: &str, reason: &str, port, src: &str, dst: &str, rule: Option<&str>| {
        Ok((
            verdict.into(),
            reason.into(),
            Some(port),
            src.into(),
            dst.into(),
            rule.map(Into::into),
        ))
    };
    replay(
        "event_decode",
        run,
        &[
            (
                "allowed-tcp-104",
                record(
                    "allow",
                    "rule",
                    104,
                    "imaging",
                    "pacs",
                    Some("fixed.toml:8"),
                ),
            ),
            (
                "denied-tcp-443",
                record("deny", "no-rule", 443, "pacs", "imaging", None),
            ),
            ("truncated", Err(DecodeError::Length(40))),
        ],
    );
}

#[test]
fn frame_inputs() {
    const ALLOWED: [Reason; 6] = [
        NoPolicy,
        AllowedByRule,
        Established,
        Established,
        PolicyRevoked,
        NoRule,
    ];
    replay(
        "frame",
        super::frame,
        &[
            ("arp-request", [NotIp; 6]),
            // A lone SYN meets the rules before its connection: no rule, twice.
            (
                "tcp-syn-imaging-pacs-104",
                [
                    NoPolicy,
                    AllowedByRule,
                    Established,
                    Established,
                    NoRule,
                    NoRule,
                ],
            ),
            ("icmpv6-echo-imaging-pacs", ALLOWED),
            (
                "neighbour-solicitation",
                [
                    NoPolicy,
                    NeighbourDiscovery,
                    NeighbourDiscovery,
                    NeighbourDiscovery,
                    NeighbourDiscovery,
                    NeighbourDiscovery,
                ],
            ),
            (
                "mld-report-hop-by-hop",
                [NoPolicy, BuiltIn, BuiltIn, BuiltIn, BuiltIn, BuiltIn],
            ),
            // Found by fuzzing: a source in 0.0.0.0/8 is spoofed, policy or not.
            ("spoofed-without-policy", [Spoofed; 6]),
        ],
    );
}
