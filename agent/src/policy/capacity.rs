//! The kernel tables a compiled policy must fit. The zone and rule tables hold two
//! slots, the policy in force and the next one, so that a reload writes the next while
//! the kernel reads the one in force: each policy may take half of each table. A
//! policy over that is refused by the checker, with the numbers, instead of failing
//! half-way through a reload.
use ward_common::{SLOT_RULE_PAIRS, SLOT_RULE_RANGES, ZONES_CAPACITY};

use super::{CompiledPolicy, Diagnostic, Origin};

/// Entries one slot of the IPv4 or the IPv6 zone trie may take.
pub const SLOT_ZONE_ENTRIES: usize = (ZONES_CAPACITY / 2) as usize;
/// Ranges one slot of the rule range array may take.
pub const SLOT_RULE_ENTRIES: usize = SLOT_RULE_RANGES as usize;
/// Groups (zone pair and protocol with a rule) one slot of the rule pair hash may take.
pub const SLOT_RULE_GROUPS: usize = SLOT_RULE_PAIRS as usize;

/// The errors of a policy of `v4` and `v6` zone prefixes, `rules` rule ranges and
/// `groups` rule groups that does not fit its slot; empty when it fits.
pub fn overflows(v4: usize, v6: usize, rules: usize, groups: usize) -> Vec<String> {
    [
        ("IPv4 zone prefixes", v4, SLOT_ZONE_ENTRIES, "zone trie"),
        ("IPv6 zone prefixes", v6, SLOT_ZONE_ENTRIES, "zone trie"),
        ("rule ranges (zone pair, protocol, port range)", rules, SLOT_RULE_ENTRIES, "rule range array"),
        ("rule groups (zone pair and protocol with a rule)", groups, SLOT_RULE_GROUPS, "rule pair hash"),
    ]
    .into_iter()
    .filter(|&(_, n, max, _)| n > max)
    .map(|(what, n, max, table)| {
        format!(
            "the policy compiles to {n} {what}, more than the {max} one policy may take (half of the {} entries of the kernel's {table}: the other half holds the policy in force during a reload)",
            max * 2
        )
    })
    .collect()
}

/// [`overflows`] of `compiled`, as errors at `origin`.
pub fn check(compiled: &CompiledPolicy, origin: &Origin) -> Vec<Diagnostic> {
    overflows(
        compiled.v4.len(),
        compiled.v6.len(),
        compiled.rules.len(),
        compiled.rule_groups(),
    )
    .into_iter()
    .map(|m| Diagnostic::error(origin.clone(), m))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_over_half_a_table_is_refused_with_the_numbers() {
        let full = (SLOT_ZONE_ENTRIES, SLOT_RULE_ENTRIES, SLOT_RULE_GROUPS);
        assert!(overflows(full.0, full.0, full.1, full.2).is_empty());
        let e = overflows(SLOT_ZONE_ENTRIES + 1, 10, SLOT_RULE_ENTRIES + 5, 3);
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(
            e[0],
            format!(
                "the policy compiles to {} IPv4 zone prefixes, more than the {SLOT_ZONE_ENTRIES} one policy may take (half of the {ZONES_CAPACITY} entries of the kernel's zone trie: the other half holds the policy in force during a reload)",
                SLOT_ZONE_ENTRIES + 1
            )
        );
        assert!(
            e[1].starts_with(&format!(
                "the policy compiles to {} rule ranges",
                SLOT_RULE_ENTRIES + 5
            )),
            "{}",
            e[1]
        );
        assert_eq!(overflows(0, SLOT_ZONE_ENTRIES + 1, 0, 0).len(), 1);
    }

    #[test]
    fn the_checker_refuses_a_policy_with_more_groups_than_the_pair_hash_holds() {
        use std::fmt::Write as _;
        // `any` to `any` over 512 zones and `world`: 513 × 513 groups of one range each.
        let mut text = String::new();
        for z in 0..512u32 {
            let _ = writeln!(
                text,
                "[zones.z{z}]\ncidrs = [\"198.18.{}.{}/32\"]",
                z / 256,
                z % 256
            );
        }
        text.push_str("[[allow]]\nfrom = \"any\"\nto = \"any\"\ntcp = 443\n");
        let diags = crate::policy::load_str("groups.toml", &text).unwrap_err();
        let msgs: Vec<String> = diags.iter().map(ToString::to_string).collect();
        let groups = 513 * 513;
        assert!(groups > SLOT_RULE_GROUPS);
        let expected = format!(
            "the policy compiles to {groups} rule groups (zone pair and protocol with a rule), more than the {SLOT_RULE_GROUPS} one policy may take"
        );
        assert!(msgs.iter().any(|m| m.contains(&expected)), "{msgs:?}");
    }

    #[test]
    fn the_checker_refuses_a_policy_too_large_for_the_zone_trie() {
        use std::fmt::Write as _;
        // One more /128 of 2001:db8::/32 than half of the IPv6 zone trie holds.
        let n = SLOT_ZONE_ENTRIES + 1;
        let mut text = String::from("[zones.big]\ncidrs = [\n");
        for i in 0..n as u128 {
            let a = std::net::Ipv6Addr::from(0x2001_0db8_u128 << 96 | i);
            let _ = writeln!(text, "\"{a}/128\",");
        }
        text.push_str("]\n[zones.other]\ncidrs = [\"198.18.0.0/24\"]\n[[allow]]\nfrom = \"big\"\nto = \"other\"\ntcp = 22\n");
        let diags = crate::policy::load_str("big.toml", &text).unwrap_err();
        let msgs: Vec<String> = diags.iter().map(ToString::to_string).collect();
        assert!(
            msgs.iter()
                .any(|m| m.contains(&format!("the policy compiles to {n} IPv6 zone prefixes"))),
            "{msgs:?}"
        );
    }
}
