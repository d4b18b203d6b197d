//! `quarantine.toml`: parsing, every check with its exact message, and how a bundle
//! carries it beside (never as) policy.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;

use super::{files, key, TempDir};
use crate::{
    config::AgentConfig,
    distribution::{parse_list, policy_texts, Bundle, BundleFile, FleetEntry, Source},
};

/// 2026-12-07T00:00:00Z, the "now" of these tests.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_601_600)
}

/// The messages of a refused list, as the agent and `ward policy sign` print them.
fn errors(text: &str) -> Vec<String> {
    let diags = parse_list("quarantine.toml", text, now()).expect_err("refused");
    diags.iter().map(ToString::to_string).collect()
}

const ENTRY: &str = "[[quarantine]]\naddress = \"198.18.20.7\"\nreason = \"ransomware beacon\"\nauthor = \"alice@net\"\nexpires = 2026-12-08T06:00:00Z\n";

#[test]
fn a_valid_list_parses_with_addresses_host_prefixes_and_string_times() {
    let text = format!(
        "{ENTRY}\n[[quarantine]]\ncidr = \"2001:db8:20::9/128\"\nreason = \"scan\"\nauthor = \"bob\"\nexpires = \"2026-12-07T01:00:00Z\"\n"
    );
    let (entries, warnings) = parse_list("quarantine.toml", &text, now()).expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        entries,
        vec![
            FleetEntry {
                ip: "198.18.20.7".parse().unwrap(),
                cidr: None,
                reason: "ransomware beacon".into(),
                author: "alice@net".into(),
                expires: now() + Duration::from_secs(30 * 3600),
            },
            FleetEntry {
                ip: "2001:db8:20::9".parse().unwrap(),
                cidr: None,
                reason: "scan".into(),
                author: "bob".into(),
                expires: now() + Duration::from_secs(3600),
            },
        ]
    );
    let (empty, _) = parse_list("quarantine.toml", "", now()).expect("an empty list");
    assert!(empty.is_empty());
}

#[test]
fn every_error_names_file_line_column_and_field() {
    let text = "[[quarantine]]\naddress = \"198.18.20.300\"\nreason = \"\"\nauthor = \" \"\nexpires = \"tomorrow\"\n\n[[quarantine]]\ncidr = \"198.18.20.0/23\"\nreason = \"r\"\nauthor = \"a\"\nexpires = 2026-12-08T00:00:00Z\n";
    assert_eq!(
        errors(text),
        [
            "quarantine.toml:2:11: error: address: `198.18.20.300` is not an IPv4 or IPv6 address",
            "quarantine.toml:3:10: error: reason: empty: say why the host is quarantined",
            "quarantine.toml:4:10: error: author: empty: name who asked for the quarantine",
            "quarantine.toml:5:11: error: expires: `tomorrow` is not an RFC 3339 time in UTC (such as 2026-12-08T06:00:00Z)",
            "quarantine.toml:8:8: error: cidr: `198.18.20.0/23` holds more than the 256 addresses an entry may (at most a /24 network)",
        ]
    );
    let both = ENTRY.replace("address", "cidr = \"198.18.20.8/32\"\naddress");
    assert_eq!(
        errors(&both),
        ["quarantine.toml:3:11: error: give either `address` or `cidr`, not both"]
    );
    let long = ENTRY.replace("ransomware beacon", &"x".repeat(97));
    assert_eq!(
        errors(&long),
        ["quarantine.toml:3:10: error: reason: 97 bytes, more than the 96 the kernel table keeps"]
    );
    let twice = format!("{ENTRY}{ENTRY}");
    let message = &errors(&twice)[0];
    assert_eq!(
        message,
        "quarantine.toml:6:1: error: 198.18.20.7 is listed twice (first at line 1)"
    );
}

/// A `cidr` entry of `net`, with `reason`.
fn cidr(net: &str, reason: &str) -> String {
    format!("[[quarantine]]\ncidr = \"{net}\"\nreason = \"{reason}\"\nauthor = \"carol\"\nexpires = 2026-12-08T06:00:00Z\n")
}

#[test]
fn a_cidr_entry_stands_for_every_address_of_its_network() {
    let text = format!(
        "{}{}",
        cidr("198.18.21.0/30", "lab"),
        cidr("2001:db8:21::/120", "v6")
    );
    let (entries, warnings) = parse_list("quarantine.toml", &text, now()).expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(entries.len(), 4 + 256);
    let v4: Vec<String> = entries[..4].iter().map(|e| e.ip.to_string()).collect();
    assert_eq!(
        v4,
        ["198.18.21.0", "198.18.21.1", "198.18.21.2", "198.18.21.3"]
    );
    assert_eq!(entries[0].cidr, Some("198.18.21.0/30".parse().unwrap()));
    assert_eq!(
        (entries[3].reason.as_str(), entries[3].author.as_str()),
        ("lab", "carol")
    );
    assert_eq!(entries[4].ip.to_string(), "2001:db8:21::");
    assert_eq!(entries[259].ip.to_string(), "2001:db8:21::ff");
    assert_eq!(
        entries[259].cidr,
        Some("2001:db8:21::/120".parse().unwrap())
    );
    // A prefix of one host is an entry of one host.
    let (one, _) = parse_list("quarantine.toml", &cidr("198.18.21.9/32", "x"), now()).unwrap();
    assert_eq!((one.len(), one[0].cidr), (1, None));
}

#[test]
fn cidr_entries_are_bounded_aligned_and_never_overlap() {
    assert_eq!(
        errors(&cidr("2001:db8::/119", "r")),
        ["quarantine.toml:2:8: error: cidr: `2001:db8::/119` holds more than the 256 addresses an entry may (at most a /120 network)"]
    );
    assert_eq!(
        errors(&cidr("198.18.21.5/28", "r")),
        ["quarantine.toml:2:8: error: cidr: `198.18.21.5/28` has host bits set: the network is 198.18.21.0/28"]
    );
    assert_eq!(
        errors(&cidr("198.18.21.0", "r")),
        ["quarantine.toml:2:8: error: cidr: `198.18.21.0` is not an address with a prefix length"]
    );
    // A host inside a listed network, and a network holding a listed one: refused, in
    // either order, at the later entry.
    let host_in = format!(
        "{}{}",
        cidr("198.18.21.0/28", "a"),
        ENTRY.replace("198.18.20.7", "198.18.21.7")
    );
    assert_eq!(
        errors(&host_in),
        ["quarantine.toml:6:1: error: 198.18.21.7 overlaps 198.18.21.0/28 (line 1): list each host once"]
    );
    let nets = format!(
        "{}{}",
        cidr("198.18.21.8/29", "a"),
        cidr("198.18.21.0/24", "b")
    );
    assert_eq!(
        errors(&nets),
        ["quarantine.toml:6:1: error: 198.18.21.0/24 overlaps 198.18.21.8/29 (line 1): list each host once"]
    );
    // 8 /24 networks are the 2048 hosts a list may hold; one host more is refused.
    let full: String = (0..8)
        .map(|i| cidr(&format!("198.18.{i}.0/24"), "r"))
        .collect();
    let (entries, _) = parse_list("quarantine.toml", &full, now()).expect("at the bound");
    assert_eq!(entries.len(), 2048);
    let over = format!("{full}{}", ENTRY.replace("198.18.20.7", "198.19.0.1"));
    assert_eq!(
        errors(&over),
        ["quarantine.toml:42:11: error: address: 198.19.0.1 brings the list to 2049 hosts, more than the 2048 a fleet list may hold (half the kernel quarantine table of 4096, the rest kept for local quarantines)"]
    );
}

#[test]
fn unknown_and_missing_fields_and_syntax_errors_are_placed() {
    let typo = ENTRY.replace("author", "autor");
    let message = &errors(&typo)[0];
    assert!(
        message == "quarantine.toml:4:1: error: unknown field `autor`, expected one of `address`, `cidr`, `reason`, `author`, `expires`",
        "{message}"
    );
    let missing = ENTRY.replace("reason = \"ransomware beacon\"\n", "");
    assert_eq!(
        errors(&missing),
        ["quarantine.toml:1:1: error: missing field `reason`"]
    );
    assert_eq!(
        errors("[[quarantine]]\naddress = \n"),
        ["quarantine.toml:2:11: error: invalid string: expected `\"`, `'`"]
    );
}

#[test]
fn a_past_expiry_is_a_warning_and_the_entry_is_left_out() {
    let past = ENTRY.replace("2026-12-08T06:00:00Z", "2026-12-06T00:00:00Z");
    let (entries, warnings) = parse_list("quarantine.toml", &past, now()).expect("a warning only");
    assert!(entries.is_empty());
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        ["quarantine.toml:5:11: warning: expires: 2026-12-06T00:00:00Z has passed: the entry is not enforced"]
    );
}

#[test]
fn quarantine_toml_rides_in_the_bundle_but_is_not_policy() {
    let mut all = files(443);
    all.push(BundleFile {
        name: "quarantine.toml".into(),
        content: ENTRY.into(),
    });
    let bundle = Bundle::sign(4, all, &key(1)).expect("signed");
    let names: Vec<&str> = policy_texts(&bundle.files).iter().map(|t| t.0).collect();
    assert_eq!(names, ["00-zones.toml", "10-rules.toml"]);
    // As policy, it would be refused: `quarantine` is no policy key.
    assert!(crate::policy::load_str("quarantine.toml", ENTRY).is_err());
    // A directory beside it: the unsigned loader skips it too.
    let dir = TempDir::new("fleet-dir");
    for f in &bundle.files {
        std::fs::write(dir.path().join(&f.name), &f.content).unwrap();
    }
    let texts = crate::policy::read_texts(&[dir.path().to_owned()]).expect("policy texts");
    assert_eq!(texts.len(), 2, "{texts:?}");
}

#[tokio::test]
async fn the_source_hands_the_fleet_list_of_the_bundle_in_force_once() {
    let dir = TempDir::new("fleet-source");
    let policy = dir.path().join("policy");
    std::fs::create_dir(&policy).unwrap();
    let text = format!(
        "role = \"host\"\ninterfaces = [\"lo\"]\npolicy = {:?}\nstate_dir = {:?}\ntrusted_keys = [\"{}\"]\n",
        policy.display().to_string(),
        dir.path().join("state").display().to_string(),
        key(1).public().to_base64()
    );
    let config = AgentConfig::parse(&dir.path().join("agent.toml"), &text).expect("config");
    let (tx, _rx) = mpsc::channel(16);
    let mut source = Source::open(&config, tx).await.expect("open");
    let later = ENTRY.replace("2026-12-08T06:00:00Z", "2099-01-01T00:00:00Z");
    let with = |version, list: Option<&str>| {
        let mut all = files(443);
        all.extend(list.map(|l| BundleFile {
            name: "quarantine.toml".into(),
            content: l.into(),
        }));
        let bundle = Bundle::sign(version, all, &key(1)).expect("signed");
        std::fs::write(policy.join("policy.bundle"), bundle.to_json()).unwrap();
    };
    with(1, Some(&later));
    let loaded = source.load().expect("v1");
    assert_eq!(source.take_fleet(), None, "nothing is in force yet");
    source.applied(&loaded, 1);
    let fleet = source.take_fleet().expect("the list of v1");
    assert_eq!(fleet.version, Some(1));
    assert_eq!(fleet.entries.len(), 1);
    assert_eq!(source.take_fleet(), None, "handed once");
    // The same policy in a newer bundle without the list: an empty list of v2.
    with(2, None);
    source.load().expect("v2");
    let fleet = source.take_fleet().expect("the list of v2");
    assert_eq!((fleet.version, fleet.entries.len()), (Some(2), 0));
    // A bad list refuses the whole bundle, naming the file, line and field.
    with(3, Some(&later.replace("198.18.20.7", "bad")));
    let refused = source.load().expect_err("refused").join("\n");
    assert!(
        refused.ends_with(
            "(version 3): quarantine.toml:2:11: error: address: `bad` is not an IPv4 or IPv6 address"
        ),
        "{refused}"
    );
}
