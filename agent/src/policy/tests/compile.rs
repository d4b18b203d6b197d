//! Compilation: zone ids, port ranges, their prefixes (the hash) and first-rule
//! ownership.
use ward_common::proto;

use super::*;
use crate::policy::compile::prefixes;

#[test]
fn prefix_decomposition_is_exact_and_minimal() {
    assert_eq!(prefixes(11112, 11115), [(11112, 14)]);
    assert_eq!(prefixes(443, 443), [(443, 16)]);
    assert_eq!(prefixes(0, 65535), [(0, 0)]);
    let all: Vec<(u16, u8)> = (0..16).map(|k| (1u16 << k, 16 - k as u8)).collect();
    assert_eq!(prefixes(1, 65535), all);
    assert_eq!(prefixes(1000, 1999).len(), 7);
    let mut rng = Rng(7);
    for _ in 0..2000 {
        let (a, b) = (rng.below(65536) as u32, rng.below(65536) as u32);
        let (first, last) = (a.min(b), a.max(b));
        let mut next = first;
        for (port, bits) in prefixes(first, last) {
            let size = 1u32 << (16 - bits);
            assert_eq!(u32::from(port), next, "contiguous and in order");
            assert_eq!(u32::from(port) % size, 0, "aligned");
            next += size;
        }
        assert_eq!(next, last + 1, "covers exactly {first}-{last}");
    }
}

fn policy(rules: &str) -> Loaded {
    let zones = "[zones.b]\ncidrs = [\"10.0.2.0/24\"]\n[zones.a]\ncidrs = [\"10.0.1.0/24\", \"2001:db8:1::/48\"]\n";
    load_str("p.toml", &format!("{zones}{rules}")).unwrap_or_else(|e| panic!("{e:?}"))
}

fn entries(c: &CompiledPolicy, src: u32, dst: u32, p: u8) -> Vec<(u16, u16, u32)> {
    let pick = |r: &&RuleEntry| (r.src_zone, r.dst_zone, r.proto) == (src, dst, p);
    c.rules
        .iter()
        .filter(pick)
        .map(|r| (r.first, r.last, r.rule_id))
        .collect()
}

#[test]
fn zones_are_numbered_by_name_and_any_includes_world() {
    let loaded = policy("[[allow]]\nfrom = \"any\"\nto = \"b\"\nicmp = true\n");
    let c = &loaded.compiled;
    assert_eq!(c.zone_names, ["world", "a", "b"]);
    assert_eq!(
        c.v4[..],
        [
            ("10.0.1.0/24".parse().unwrap(), 1),
            ("10.0.2.0/24".parse().unwrap(), 2)
        ]
    );
    assert_eq!(c.v6[..], [("2001:db8:1::/48".parse().unwrap(), 1)]);
    for src in 0..3 {
        assert_eq!(entries(c, src, 2, proto::ICMP), [(0, 0, 0)]);
    }
    assert_eq!(c.rules.len(), 3);
}

#[test]
fn first_rule_owns_and_adjacent_intervals_merge() {
    let loaded = policy(concat!(
        "[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [\"100-199\", \"200-203\"]\n",
        "[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [\"150-300\"]\n",
        "[[allow]]\nfrom = \"any\"\nto = \"b\"\ntcp = [\"96-99\", 22]\n",
    ));
    let c = &loaded.compiled;
    assert_eq!(
        entries(c, 1, 2, proto::TCP),
        [(22, 22, 2), (96, 99, 2), (100, 203, 0), (204, 300, 1)]
    );
    assert_eq!(entries(c, 0, 2, proto::TCP), [(22, 22, 2), (96, 99, 2)]);
    assert!(c.shadowed.is_empty());
}

/// Finds the rule id for a port in the compiled entries of one (src, dst, proto).
fn lookup(c: &CompiledPolicy, src: u32, dst: u32, p: u8, port: u16) -> Option<u32> {
    let covers =
        |r: &&RuleEntry| (r.src_zone, r.dst_zone, r.proto) == (src, dst, p) && r.covers(port);
    let found: Vec<_> = c.rules.iter().filter(covers).collect();
    assert!(found.len() <= 1, "entries overlap: {found:?}");
    found.first().map(|r| r.rule_id)
}

#[test]
fn compiled_lookup_matches_first_rule_on_random_policies() {
    let mut rng = Rng(42);
    for _ in 0..20 {
        let zones = ["a", "b", "c"];
        let mut text: String = zones
            .iter()
            .enumerate()
            .map(|(i, z)| format!("[zones.{z}]\ncidrs = [\"10.0.{i}.0/24\"]\n"))
            .collect();
        for _ in 0..1 + rng.below(8) {
            let side = |rng: &mut Rng| {
                ["\"any\"", "\"a\"", "\"b\"", "[\"a\", \"c\"]"][rng.below(4) as usize]
            };
            let ports: Vec<String> = (0..1 + rng.below(3))
                .map(|_| {
                    let lo = 1 + rng.below(300);
                    format!("\"{lo}-{}\"", lo + rng.below(100))
                })
                .collect();
            let icmp = rng.below(2) == 0;
            let (from, to) = (side(&mut rng), side(&mut rng));
            text += &format!(
                "[[allow]]\nfrom = {from}\nto = {to}\ntcp = [{}]\nicmp = {icmp}\n",
                ports.join(", ")
            );
        }
        let loaded = load_str("r.toml", &text).expect("valid");
        let (p, c) = (&loaded.policy, &loaded.compiled);
        for src in 0..4 {
            for dst in 0..4 {
                for port in 0..420 {
                    assert_eq!(
                        lookup(c, src, dst, proto::TCP, port),
                        p.first_rule(src, dst, proto::TCP, port),
                        "{text}"
                    );
                }
                assert_eq!(
                    lookup(c, src, dst, proto::ICMP, 0),
                    p.first_rule(src, dst, proto::ICMP, 0)
                );
            }
        }
        for s in &c.shadowed {
            assert!(!c.rules.iter().any(|r| r.rule_id == s.rule_id));
        }
    }
}

#[test]
fn hash_depends_on_content_only() {
    let a = policy("[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [22]\n");
    let b = load_str(
        "other.toml",
        "# comment\n[zones.a]\ncidrs = [\"2001:db8:1::/48\", \"10.0.1.0/24\"]\ndescription = \"x\"\n[zones.b]\ncidrs = [\"10.0.2.0/24\"]\n\n[[allow]]\nto = \"b\"\nfrom = [\"a\"]\ntcp = [\"22\"]\n",
    )
    .expect("valid");
    assert_eq!(a.compiled.hash, b.compiled.hash);
    assert_eq!(a.compiled.hash.len(), 64);
    let c = policy("[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [23]\n");
    assert_ne!(a.compiled.hash, c.compiled.hash);
}
