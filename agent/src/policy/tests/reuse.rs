//! Loading again with what the last policy loaded is made of (`reuse.rs`) gives what
//! a cold load gives, policy, warnings and errors, on every kind of edit, and reads
//! again only the tables that changed.
use std::sync::Arc;

use super::CLINIC;
use crate::policy::{load_texts, LoadCache, Loaded};

/// A policy with a warning (an unused zone), an IPv6 zone and an audited one.
const SMALL: &str = "# zones\n[zones.web]\ncidrs = [\"198.18.1.0/24\", \"2001:db8:1::/64\"]\n\
    [zones.db]\ncidrs = [\"198.18.2.0/24\"]\nmode = \"audit\"\n[zones.spare]\ncidrs = [\"198.18.9.9/32\"]\n\
    [[allow]]\nfrom = \"web\"\nto = \"db\"\ntcp = [5432]\n[[allow]]\nfrom = [\"db\", \"web\"]\nto = \"web\"\nudp = [\"100-200\"]\n";

/// `text` with `from` replaced by `to` (which must be in it).
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} is not in the text");
    text.replacen(from, to, 1)
}

/// Loads `before` (held while) then `after` with one cache: `after` gives what the
/// cold load of it gives. Returns how many tables the second load read anew.
fn same_as_cold(before: &[(&str, &str)], after: &[(&str, &str)]) -> usize {
    let mut cache = LoadCache::default();
    let first = cache.load_texts(before).expect("the first policy loads");
    let warm = cache.load_texts(after).map(|l| Loaded::clone(&l));
    assert_eq!(warm, load_texts(after), "after:\n{after:?}");
    drop(first);
    cache.tables_read().0
}

fn one(text: &str) -> [(&str, &str); 1] {
    [("p.toml", text)]
}

#[test]
fn an_unchanged_policy_reads_no_table_and_is_the_same() {
    let mut cache = LoadCache::default();
    let first = cache.load_texts(&one(CLINIC)).unwrap();
    assert_eq!(cache.tables_read(), (11, 11));
    let again = cache.load_texts(&one(CLINIC)).unwrap();
    assert_eq!(cache.tables_read(), (0, 11));
    assert!(Arc::ptr_eq(&first, &again), "the same policy, not a copy");
    // Once the policy is no longer held, nothing is reused.
    drop((first, again));
    cache.load_texts(&one(CLINIC)).unwrap();
    assert_eq!(cache.tables_read(), (11, 11));
}

#[test]
fn edits_give_the_cold_loads_policy_and_warnings() {
    let port = edit(SMALL, "tcp = [5432]", "tcp = [15432]");
    assert_eq!(same_as_cold(&one(SMALL), &one(&port)), 1);
    let prefix = edit(SMALL, "198.18.2.0/24", "198.18.3.0/24");
    assert_eq!(same_as_cold(&one(SMALL), &one(&prefix)), 1);
    // A line inserted at the top: every table moves, none is read again.
    let shifted = format!("# a new first line\n\n{SMALL}");
    assert_eq!(same_as_cold(&one(SMALL), &one(&shifted)), 0);
    // A zone added before the others: every zone id changes.
    let added = edit(
        SMALL,
        "# zones\n",
        "# zones\n[zones.aaa]\ncidrs = [\"198.19.0.1\"]\n",
    );
    assert_eq!(same_as_cold(&one(SMALL), &one(&added)), 1);
    // The unused zone gets a rule; then a rule goes and its zones are unused.
    let used = format!("{SMALL}[[allow]]\nfrom = \"spare\"\nto = \"web\"\nicmp = true\n");
    assert_eq!(same_as_cold(&one(SMALL), &one(&used)), 1);
    assert_eq!(same_as_cold(&one(&used), &one(SMALL)), 0);
    // A rule that says `any`: no zone is unused.
    let any = edit(SMALL, "from = \"web\"", "from = \"any\"");
    assert_eq!(same_as_cold(&one(SMALL), &one(&any)), 1);
    // Tables reordered, and the clinic's lints and shadowed rules.
    let reordered = format!(
        "{}{}",
        &SMALL[SMALL.find("[[allow]]").unwrap()..],
        &SMALL[..SMALL.find("[[allow]]").unwrap()]
    );
    assert_eq!(same_as_cold(&one(SMALL), &one(&reordered)), 1);
    let clinic = edit(CLINIC, "tcp = [443]", "tcp = [443, 8443]");
    assert_eq!(same_as_cold(&one(CLINIC), &one(&clinic)), 1);
}

#[test]
fn edits_give_the_cold_loads_errors() {
    for after in [
        // A syntax error in one table.
        edit(SMALL, "tcp = [5432]", "tcp = [5432"),
        // A structural error, an unknown zone, a bad port.
        edit(SMALL, "tcp = [5432]", "tcp = [5432]\nbogus = 1"),
        edit(SMALL, "to = \"db\"", "to = \"dbs\""),
        edit(SMALL, "tcp = [5432]", "tcp = [0]"),
        // A prefix of an unchanged zone added to a changed one, after it and before it.
        edit(
            SMALL,
            "198.18.9.9/32\"",
            "198.18.9.9/32\", \"198.18.2.0/24\"",
        ),
        edit(
            SMALL,
            "\"198.18.1.0/24\"",
            "\"198.18.1.0/24\", \"198.18.9.9/32\"",
        ),
        // A prefix twice in the changed zone; a bad prefix; a zone defined twice.
        edit(
            SMALL,
            "198.18.9.9/32\"",
            "198.18.9.9/32\", \"198.18.9.9/32\"",
        ),
        edit(SMALL, "198.18.9.9/32", "198.18.9.9/33"),
        format!("{SMALL}[zones.web]\ncidrs = [\"198.18.7.0/24\"]\n"),
        // A zone removed that an unchanged rule names.
        edit(
            SMALL,
            "[zones.db]\ncidrs = [\"198.18.2.0/24\"]\nmode = \"audit\"\n",
            "",
        ),
        // No rule left.
        SMALL[..SMALL.find("[[allow]]").unwrap()].to_owned(),
    ] {
        same_as_cold(&one(SMALL), &one(&after));
    }
}

#[test]
fn files_of_a_policy_are_read_apart() {
    let (zones, rules) = SMALL.split_at(SMALL.find("[[allow]]").unwrap());
    let two = [("zones.toml", zones), ("rules.toml", rules)];
    // The same tables in two files: read again by nothing, placed in their files.
    assert_eq!(same_as_cold(&one(SMALL), &two), 0);
    let moved = edit(rules, "tcp = [5432]", "tcp = [5433]");
    assert_eq!(
        same_as_cold(&two, &[("zones.toml", zones), ("rules.toml", &moved)]),
        1
    );
    // A zone defined in both files.
    let twice = format!("{rules}[zones.db]\ncidrs = [\"198.18.8.0/24\"]\n");
    same_as_cold(&two, &[("zones.toml", zones), ("rules.toml", &twice)]);
    // A file of another shape is loaded cold, and so is the next one.
    let other = format!(
        "[zones]\nweb.cidrs = [\"198.18.1.0/24\"]\ndb.cidrs = [\"198.18.2.0/24\"]\n{rules}"
    );
    assert_eq!(same_as_cold(&two, &one(&other)), 3);
    assert_eq!(same_as_cold(&one(&other), &one(&other)), 3);
}

#[test]
fn random_line_edits_give_the_cold_loads_verdicts() {
    let lines: Vec<&str> = format!("{SMALL}{CLINIC}")
        .lines()
        .map(|l| &*String::leak(l.to_owned()))
        .collect();
    // Fragments a line may become: prefixes of other zones, zone names, ports.
    let fragments = [
        "cidrs = [\"198.18.1.0/24\"]",
        "cidrs = [\"198.18.20.0/24\", \"198.18.9.9/32\"]",
        "to = \"spare\"",
        "from = \"pacs\"",
        "tcp = [22]",
        "[zones.extra]",
        "[[allow]]",
        "mode = \"audit\"",
        "",
    ];
    let mut rng = super::Rng(0x5eed_cafe);
    let mut cache = LoadCache::default();
    let mut text = lines.clone();
    let (mut held, mut loads) = (None, 0);
    for _ in 0..400 {
        let (at, other) = (rng.below(text.len() as u64), rng.below(text.len() as u64));
        let (at, other) = (at as usize, other as usize);
        match rng.below(4) {
            0 => drop(text.remove(at)),
            1 => text.insert(at, fragments[rng.below(fragments.len() as u64) as usize]),
            2 => text.swap(at, other),
            _ => text = lines.clone(),
        }
        let joined = text.join("\n") + "\n";
        let warm = cache.load_texts(&one(&joined));
        let cold = load_texts(&one(&joined));
        let warm_copy = warm.as_deref().cloned().map_err(Clone::clone);
        assert_eq!(warm_copy, cold, "text:\n{joined}");
        loads += usize::from(cold.is_ok());
        // Held, as the daemon holds the policy in force, or not.
        held = warm.ok().or(held);
    }
    eprintln!("{loads} loaded");
    assert!(loads > 100, "{loads} of the edited policies load");
}
