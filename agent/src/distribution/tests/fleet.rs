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
                reason: "ransomware beacon".into(),
                author: "alice@net".into(),
                expires: now() + Duration::from_secs(30 * 3600),
            },
            FleetEntry {
                ip: "2001:db8:20::9".parse().unwrap(),
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
    let text = "[[quarantine]]\naddress = \"198.18.20.300\"\nreason = \"\"\nauthor = \" \"\nexpires = \"tomorrow\"\n\n[[quarantine]]\ncidr = \"198.18.20.0/24\"\nreason = \"r\"\nauthor = \"a\"\nexpires = 2026-12-08T00:00:00Z\n";
    assert_eq!(
        errors(text),
        [
            "quarantine.toml:2:11: error: address: `198.18.20.300` is not an IPv4 or IPv6 address",
            "quarantine.toml:3:10: error: reason: empty: say why the host is quarantined",
            "quarantine.toml:4:10: error: author: empty: name who asked for the quarantine",
            "quarantine.toml:5:11: error: expires: `tomorrow` is not an RFC 3339 time in UTC (such as 2026-12-08T06:00:00Z)",
            "quarantine.toml:8:8: error: cidr: `198.18.20.0/24` is a network: the kernel quarantine table holds single hosts, so give a /32 (one address)",
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
