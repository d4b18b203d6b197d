//! The difference between two slot contents: a one-rule change is a handful of
//! entries, a removed zone removes its entries, a changed value is written again.
use super::{delta, SlotEntries, ZoneFlags};
use crate::policy::{load_str, CompiledPolicy};

const ZONES: &str = r#"
[zones.app]
cidrs = ["198.18.1.0/24", "198.18.2.0/24", "2001:db8:1::/64"]
[zones.db]
cidrs = ["198.18.3.0/24", "2001:db8:3::/64"]
[zones.web]
cidrs = ["198.18.4.0/24", "198.18.5.7/32", "2001:db8:4::/64"]
"#;

const RULES: &str = r#"
[[allow]]
from = "web"
to = "app"
tcp = [8080, "9000-9099"]
[[allow]]
from = "app"
to = "db"
tcp = [5432]
"#;

fn compiled(text: &str) -> CompiledPolicy {
    load_str("test.toml", text)
        .unwrap_or_else(|e| panic!("{e:?}"))
        .compiled
}

fn entries(text: &str) -> SlotEntries {
    SlotEntries::of(&compiled(text), &ZoneFlags::default())
}

#[test]
fn a_one_rule_change_writes_only_that_rules_entries() {
    let old = entries(&format!("{ZONES}{RULES}"));
    let new = entries(&format!("{ZONES}{}", RULES.replace("5432", "5433")));
    assert!(delta(&old.v4, &new.v4).remove.is_empty());
    assert!(delta(&old.v4, &new.v4).write.is_empty());
    assert!(delta(&old.v6, &new.v6).write.is_empty());
    let ranges = delta(&old.ranges, &new.ranges);
    assert!(ranges.remove.is_empty());
    assert_eq!(ranges.write.len(), 1, "the range of port 5432, now 5433");
    assert_eq!(
        (ranges.write[0].2.first, ranges.write[0].2.last),
        (5433, 5433)
    );
    // The pairs and the ranges of the first rule (a port and a range) are untouched.
    assert_eq!(delta(&old.pairs, &new.pairs), delta(&[], &[]));
    assert_eq!((old.pairs.len(), old.ranges.len()), (2, 3));
}

#[test]
fn a_rule_of_a_new_pair_moves_the_runs_after_it_and_removes_nothing_from_the_array() {
    let old = entries(&format!("{ZONES}{RULES}"));
    // app → app sorts before app → db: the runs of app → db and web → app move by one.
    let new = entries(&format!(
        "{ZONES}{RULES}[[allow]]\nfrom = \"app\"\nto = \"app\"\nudp = 53\n"
    ));
    let ranges = delta(&old.ranges, &new.ranges);
    assert!(ranges.remove.is_empty());
    assert_eq!(ranges.write.len(), 4, "three moved, one appended");
    let pairs = delta(&old.pairs, &new.pairs);
    assert!(pairs.remove.is_empty());
    assert_eq!(pairs.write.len(), 3, "the new pair and the two moved");
    for (_, _, pair) in &new.pairs {
        let run = &new.ranges[pair.first as usize..(pair.first + pair.count) as usize];
        assert!(run.windows(2).all(|w| w[0].2.last < w[1].2.first));
    }
}

#[test]
fn removing_a_zone_removes_its_entries() {
    // `web` sorts last: the other zones keep their ids.
    let without_web = ZONES.split("[zones.web]").next().unwrap();
    let rules = RULES.split("[[allow]]").nth(2).unwrap();
    let old = entries(&format!("{ZONES}[[allow]]{rules}"));
    let new = entries(&format!("{without_web}[[allow]]{rules}"));
    let v4 = delta(&old.v4, &new.v4);
    assert_eq!(v4.remove.len(), 1, "198.18.4.0/24");
    assert!(v4.write.is_empty());
    let hosts = delta(&old.hosts_v4, &new.hosts_v4);
    assert_eq!(
        (hosts.remove.len(), hosts.write.len()),
        (1, 0),
        "198.18.5.7/32"
    );
    let v6 = delta(&old.nets_v6, &new.nets_v6);
    assert_eq!((v6.remove.len(), v6.write.len()), (1, 0), "2001:db8:4::/64");
    assert!(old.v6.is_empty() && new.v6.is_empty());
    assert_eq!(delta(&old.pairs, &new.pairs), delta(&[], &[]));
    assert_eq!(delta(&old.ranges, &new.ranges), delta(&[], &[]));
}

#[test]
fn a_changed_value_is_written_again() {
    let policy = compiled(&format!("{ZONES}{RULES}"));
    let db = policy.zone_id("db").unwrap();
    let old = SlotEntries::of(&policy, &ZoneFlags::default());
    let flags = ZoneFlags {
        quarantine_allow: vec![db],
    };
    let new = SlotEntries::of(&policy, &flags);
    let v4 = delta(&old.v4, &new.v4);
    assert!(v4.remove.is_empty());
    assert_eq!(v4.write.len(), 1, "198.18.3.0/24 with its new flag");
    assert_eq!(delta(&old.nets_v6, &new.nets_v6).write.len(), 1);
    assert!(delta(&old.ranges, &new.ranges).write.is_empty());
    // An audited zone changes the value of its prefixes too.
    let audited = ZONES.replace("[zones.db]", "[zones.db]\nmode = \"audit\"");
    let new = entries(&format!("{audited}{RULES}"));
    assert_eq!(delta(&old.v4, &new.v4).write.len(), 1);
}

#[test]
fn from_nothing_everything_is_written_and_the_same_policy_writes_nothing() {
    let e = entries(&format!("{ZONES}{RULES}"));
    let all = delta(&[], &e.ranges);
    assert_eq!(all.write, e.ranges);
    let none = delta(&e.pairs, &[]);
    assert_eq!(none.remove.len(), e.pairs.len());
    for d in [
        delta(&e.v4, &e.v4).write.len(),
        delta(&e.v6, &e.v6).remove.len(),
    ] {
        assert_eq!(d, 0);
    }
    assert_eq!(
        e.len(),
        4 + 1 + 3 + 2 + 3,
        "/24s, /32, /64s, pairs and ranges"
    );
}

#[test]
fn exact_hosts_and_plain_slash_64s_go_to_the_hashes_the_rest_to_the_tries() {
    let e = entries(
        r#"
[zones.a]
cidrs = ["198.18.0.0/16", "198.18.1.1/32", "2001:db8:1::/64", "2001:db8:2::/64", "2001:db8:2::5/128"]
[zones.b]
cidrs = ["2001:db8:1:0:ffff::/80", "2001:db8::/48", "2001:db8:3::/63"]
[[allow]]
from = "a"
to = "b"
tcp = 22
"#,
    );
    let v4: Vec<_> =
        e.v4.iter()
            .map(|(k, len, _)| (k[1..].to_vec(), *len))
            .collect();
    assert_eq!(v4, [(vec![198, 18, 0, 0], 8 + 16)]);
    assert_eq!(e.hosts_v4.len(), 1);
    assert_eq!(e.hosts_v4[0].0.addr.to_ne_bytes(), [198, 18, 1, 1]);
    assert_eq!(e.hosts_v6.len(), 1, "2001:db8:2::5/128");
    // 2001:db8:1::/64 holds a /80 of another zone: a hash hit there would not be the
    // longest match, so it stays in the trie; 2001:db8:2::/64 holds only a /128.
    let net =
        |key: &ward_common::NetKeyV6| ward_common::addr_to_bytes([key.net[0], key.net[1], 0, 0]);
    assert_eq!(e.nets_v6.len(), 1);
    assert_eq!(
        net(&e.nets_v6[0].0)[..8],
        [0x20, 0x01, 0x0d, 0xb8, 0, 2, 0, 0]
    );
    let mut v6: Vec<_> = e.v6.iter().map(|(_, len, _)| len - 8).collect();
    v6.sort();
    assert_eq!(v6, [48, 63, 64, 80]);
}

#[test]
fn a_slot_the_build_before_the_zone_hashes_wrote_is_not_taken_for_this_builds() {
    use sha2::{Digest as _, Sha256};
    // The digest of the build that kept every zone prefix in the tries.
    let policy = compiled(&format!("{ZONES}{RULES}"));
    let before = {
        let h = Sha256::digest(policy.hash.as_bytes());
        u64::from_be_bytes(h[..8].try_into().unwrap()).max(1)
    };
    assert_ne!(ZoneFlags::default().digest(&policy), before);
}

#[test]
fn the_zone_skip_bits_name_exactly_the_places_a_slot_leaves_empty() {
    use ward_common::zone_skip::{HOSTS_V4, HOSTS_V6, NETS_V6, TRIE_V4, TRIE_V6};
    let zones = |cidrs: &str| format!("allow_empty = true\n[zones.a]\ncidrs = [{cidrs}]\n");
    // ZONES has /24s and one /32, /64s only: no /128 and nothing for the IPv6 trie.
    assert_eq!(
        entries(&format!("{ZONES}{RULES}")).zone_skip(),
        HOSTS_V6 | TRIE_V6
    );
    assert_eq!(
        entries(&zones(r#""198.18.1.1/32", "2001:db8::1/128""#)).zone_skip(),
        TRIE_V4 | NETS_V6 | TRIE_V6
    );
    assert_eq!(
        entries(&zones(r#""198.18.0.0/16", "2001:db8::/48""#)).zone_skip(),
        HOSTS_V4 | HOSTS_V6 | NETS_V6
    );
    // A /64 with a /80 inside stays in the trie: the /64 hash is empty.
    assert_eq!(
        entries(&zones(
            r#""2001:db8::/64", "2001:db8::/80", "2001:db8::5/128""#
        ))
        .zone_skip(),
        HOSTS_V4 | TRIE_V4 | NETS_V6
    );
    assert_eq!(entries("allow_empty = true\n").zone_skip(), 0x1f);
}

#[test]
fn a_policy_with_the_same_zones_shares_their_entries_unless_a_flag_differs() {
    let policy = compiled(&format!("{ZONES}{RULES}"));
    let old = SlotEntries::of(&policy, &ZoneFlags::default());
    // What a reload that changed only rules compiles: the same prefix lists, shared.
    let mut rules_only = policy.clone();
    rules_only.rules.truncate(1);
    let shared = SlotEntries::of_like(&rules_only, &ZoneFlags::default(), &[&old]);
    assert!(std::sync::Arc::ptr_eq(&shared.hosts_v4, &old.hosts_v4));
    assert!(std::sync::Arc::ptr_eq(&shared.nets_v6, &old.nets_v6));
    assert_eq!(shared, SlotEntries::of(&rules_only, &ZoneFlags::default()));
    assert_eq!(shared.ranges.len(), 1);
    // A zone's flag changes its entries' values: they are built anew.
    let flags = ZoneFlags {
        quarantine_allow: vec![policy.zone_id("db").unwrap()],
    };
    let flagged = SlotEntries::of_like(&rules_only, &flags, &[&old]);
    assert!(!std::sync::Arc::ptr_eq(&flagged.v4, &old.v4));
    assert_eq!(flagged, SlotEntries::of(&rules_only, &flags));
    assert_ne!(flagged.v4, old.v4);
    // Equal prefix lists compiled apart are not taken for the same.
    let apart = compiled(&format!("{ZONES}{RULES}"));
    let built = SlotEntries::of_like(&apart, &ZoneFlags::default(), &[&old]);
    assert!(!std::sync::Arc::ptr_eq(&built.v4, &old.v4));
    assert_eq!(built, old);
}
