//! The `frame` target: one Ethernet frame through the reference dataplane.
use ward_common::{Reason, Verdict};

use ward::policy::Policy;

use crate::ReferenceDataplane;

/// Judges `data` as an Ethernet frame: without a policy, then five times with the fixed
/// policy (twice, again after a reload of the same policy, then after a reload of the
/// same zones without rules). Returns the six reasons; panics when they contradict the
/// connection tracking `docs/dataplane.md` describes (a lone SYN is judged by the rules
/// before its connection).
pub fn frame(data: &[u8]) -> [Reason; 6] {
    let judge = |dp: &mut ReferenceDataplane| {
        let (verdict, reason) = dp.judge(data);
        assert_eq!(verdict, reason.verdict(), "verdict of {reason:?}");
        reason
    };
    let without = judge(&mut ReferenceDataplane::without_policy());
    assert!(
        matches!(
            without,
            Reason::NotIp | Reason::Malformed | Reason::Spoofed | Reason::NoPolicy
        ),
        "without a policy every IP packet is denied, got {without:?}"
    );

    let policy = &super::fixed().policy;
    let mut dp = ReferenceDataplane::new(policy);
    let first = judge(&mut dp);
    let again = judge(&mut dp);
    dp.set_policy(policy);
    let reloaded = judge(&mut dp);
    dp.set_policy(&Policy {
        rules: Vec::new(),
        ..policy.clone()
    });
    let revoked = judge(&mut dp);
    let after = judge(&mut dp);

    if matches!(without, Reason::NotIp | Reason::Malformed | Reason::Spoofed) {
        assert_eq!(
            first, without,
            "parsing and anti-spoofing do not depend on the policy"
        );
    }
    if first == Reason::AllowedByRule && again == Reason::AllowedByRule {
        // A TCP segment without a lone SYN, or an ICMP error about no connection of its
        // destination: judged by the rules alone, each time, tracking nothing.
        assert_eq!(
            reloaded,
            Reason::AllowedByRule,
            "the same rules allow it again"
        );
        assert_eq!(revoked, Reason::NoRule, "no rule allows it any more");
    } else if first == Reason::AllowedByRule {
        assert_eq!(again, Reason::Established, "an allowed flow is tracked");
        assert_eq!(
            reloaded,
            Reason::Established,
            "the same policy allows it again"
        );
        if crate::dataplane::is_lone_syn(data) {
            // Judged by the rules before the connection, which its next other
            // packet revokes.
            assert_eq!(revoked, Reason::NoRule, "no rule allows a SYN any more");
        } else {
            assert_eq!(revoked, Reason::PolicyRevoked, "no rule allows it any more");
        }
        assert_eq!(after, Reason::NoRule, "a revoked connection is forgotten");
    }
    assert!(
        revoked.verdict() != Verdict::Allow
            || matches!(
                revoked,
                Reason::NotIp | Reason::NeighbourDiscovery | Reason::BuiltIn
            ),
        "with no rule only non-IP frames and link-scoped traffic pass, got {revoked:?}"
    );
    [without, first, again, reloaded, revoked, after]
}
