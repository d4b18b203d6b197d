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
    let rules = delta(&old.rules, &new.rules);
    assert_eq!(rules.remove.len(), 1, "the entry of port 5432");
    assert_eq!(rules.write.len(), 1, "the entry of port 5433");
    // The rule entries of the first rule (a port and a range of them) are untouched.
    assert!(old.rules.len() > 3);
}

#[test]
fn removing_a_zone_removes_its_entries() {
    // `web` sorts last: the other zones keep their ids.
    let without_web = ZONES.split("[zones.web]").next().unwrap();
    let rules = RULES.split("[[allow]]").nth(2).unwrap();
    let old = entries(&format!("{ZONES}[[allow]]{rules}"));
    let new = entries(&format!("{without_web}[[allow]]{rules}"));
    let v4 = delta(&old.v4, &new.v4);
    assert_eq!(v4.remove.len(), 2, "198.18.4.0/24 and 198.18.5.7/32");
    assert!(v4.write.is_empty());
    let v6 = delta(&old.v6, &new.v6);
    assert_eq!((v6.remove.len(), v6.write.len()), (1, 0));
    assert_eq!(delta(&old.rules, &new.rules), delta(&[], &[]));
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
    assert_eq!(delta(&old.v6, &new.v6).write.len(), 1);
    assert!(delta(&old.rules, &new.rules).write.is_empty());
    // An audited zone changes the value of its prefixes too.
    let audited = ZONES.replace("[zones.db]", "[zones.db]\nmode = \"audit\"");
    let new = entries(&format!("{audited}{RULES}"));
    assert_eq!(delta(&old.v4, &new.v4).write.len(), 1);
}

#[test]
fn from_nothing_everything_is_written_and_the_same_policy_writes_nothing() {
    let e = entries(&format!("{ZONES}{RULES}"));
    let all = delta(&[], &e.rules);
    assert_eq!(all.write, e.rules);
    let none = delta(&e.rules, &[]);
    assert_eq!(none.remove.len(), e.rules.len());
    for d in [
        delta(&e.v4, &e.v4).write.len(),
        delta(&e.v6, &e.v6).remove.len(),
    ] {
        assert_eq!(d, 0);
    }
    assert_eq!(e.len(), e.v4.len() + e.v6.len() + e.rules.len());
}
