//! `breakglass.toml`: parsing against the bundle's policy, every check with its exact
//! message, and how a bundle carries it beside (never as) policy.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{files, key, TempDir};
use crate::{
    distribution::{parse_grants, policy_texts, Bundle, BundleFile, FleetGrant, FleetLists},
    policy::{load_str, Policy},
};

const CLINIC: &str = include_str!("../../../../policies/clinic.toml");

/// 2026-12-07T00:00:00Z, the "now" of these tests.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_796_601_600)
}

fn clinic() -> Policy {
    load_str("clinic.toml", CLINIC)
        .expect("the clinic policy")
        .policy
}

/// The messages of a refused list, as the agent and `ward policy sign` print them.
fn errors(text: &str) -> Vec<String> {
    let diags = parse_grants("breakglass.toml", text, &clinic(), now()).expect_err("refused");
    diags.iter().map(ToString::to_string).collect()
}

/// A grant of `service` from imaging to billing.
fn grant(service: &str) -> String {
    format!("[[breakglass]]\nfrom = \"imaging\"\nto = \"billing\"\nservice = \"{service}\"\nreason = \"INC-9 vendor\"\nauthor = \"netsec@clinic\"\nexpires = 2026-12-08T06:00:00Z\n")
}

#[test]
fn a_valid_list_parses_with_hosts_and_string_times() {
    let text = format!(
        "{}\n[[breakglass]]\nfrom = \"clinicians\"\nto = \"pacs\"\nservice = \"tcp/104\"\nreason = \"study review\"\nauthor = \"bob\"\nexpires = \"2026-12-07T01:00:00Z\"\nhosts = [\"gw-1\", \"gw-2\"]\n",
        grant("https")
    );
    let (grants, warnings) =
        parse_grants("breakglass.toml", &text, &clinic(), now()).expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        grants,
        vec![
            FleetGrant {
                from: "imaging".into(),
                to: "billing".into(),
                service: "https".into(),
                reason: "INC-9 vendor".into(),
                author: "netsec@clinic".into(),
                expires: now() + Duration::from_secs(30 * 3600),
                hosts: None,
            },
            FleetGrant {
                from: "clinicians".into(),
                to: "pacs".into(),
                service: "tcp/104".into(),
                reason: "study review".into(),
                author: "bob".into(),
                expires: now() + Duration::from_secs(3600),
                hosts: Some(vec!["gw-1".into(), "gw-2".into()]),
            },
        ]
    );
    let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(grants[0].is_for(&names(&["anything"])));
    assert!(grants[1].is_for(&names(&["gw-9", "gw-2"])));
    assert!(!grants[1].is_for(&names(&["gw-3"])));
}

#[test]
fn every_error_names_file_line_column_and_field() {
    let text = "[[breakglass]]\nfrom = \"imagin\"\nto = \"nowhere\"\nservice = \"htps\"\nreason = \"\"\nauthor = \" \"\nexpires = \"soon\"\nhosts = []\n";
    assert_eq!(
        errors(text),
        [
            "breakglass.toml:2:8: error: from: no zone `imagin` in the bundle's policy (did you mean `imaging`?)",
            "breakglass.toml:3:6: error: to: no zone `nowhere` in the bundle's policy",
            "breakglass.toml:4:11: error: service: unknown service `htps` (did you mean `https`?): use a name of `ward policy services`, tcp/PORT, udp/PORT or icmp",
            "breakglass.toml:5:10: error: reason: empty: say why the grant is needed",
            "breakglass.toml:6:10: error: author: empty: name who asked for the grant",
            "breakglass.toml:8:9: error: hosts: an agent name may not be empty, nor the list (leave `hosts` out for every agent)",
            "breakglass.toml:7:11: error: expires: `soon` is not an RFC 3339 time in UTC (such as 2026-12-08T06:00:00Z)",
        ]
    );
    let long = grant("https").replace("INC-9 vendor", &"x".repeat(97));
    assert_eq!(
        errors(&long),
        ["breakglass.toml:5:10: error: reason: 97 bytes, more than the 96 the kernel table keeps"]
    );
    let twice = format!("{}{}", grant("https"), grant("https"));
    assert_eq!(
        errors(&twice),
        ["breakglass.toml:8:1: error: imaging -> billing https is listed twice (first at line 1)"]
    );
    let many: String = (1..=17).map(|p| grant(&format!("tcp/{p}"))).collect();
    assert_eq!(
        errors(&many),
        ["breakglass.toml:113:1: error: more than 16 grants: the kernel grants table holds 16 (local grants included)"]
    );
    let typo = grant("https").replace("author", "autor");
    assert_eq!(
        errors(&typo),
        ["breakglass.toml:6:1: error: unknown field `autor`, expected one of `from`, `to`, `service`, `reason`, `author`, `expires`, `hosts`"]
    );
}

#[test]
fn a_past_expiry_or_an_allowed_service_is_a_warning_and_left_out() {
    let past = grant("https").replace("2026-12-08T06:00:00Z", "2026-12-06T00:00:00Z");
    let allowed = grant("tcp/443")
        .replace("\"billing\"", "\"pacs\"")
        .replace("tcp/443", "dicom");
    let text = format!("{past}{allowed}");
    let (grants, warnings) =
        parse_grants("breakglass.toml", &text, &clinic(), now()).expect("warnings only");
    assert!(grants.is_empty(), "{grants:?}");
    let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "breakglass.toml:7:11: warning: expires: 2026-12-06T00:00:00Z has passed: the grant is left out",
            "breakglass.toml:8:1: warning: the policy already allows imaging -> pacs dicom: the grant is left out",
        ]
    );
}

#[test]
fn breakglass_toml_rides_in_the_bundle_checked_against_its_policy() {
    let mut all = files(443);
    let list = "[[breakglass]]\nfrom = \"a\"\nto = \"b\"\nservice = \"tcp/22\"\nreason = \"r\"\nauthor = \"n\"\nexpires = 2099-01-01T00:00:00Z\n";
    all.push(BundleFile {
        name: "breakglass.toml".into(),
        content: list.into(),
    });
    let bundle = Bundle::sign(4, all, &key(1)).expect("signed");
    let names: Vec<&str> = policy_texts(&bundle.files).iter().map(|t| t.0).collect();
    assert_eq!(names, ["00-zones.toml", "10-rules.toml"]);
    assert!(load_str("breakglass.toml", list).is_err(), "not policy");
    // A directory beside it: the unsigned loader skips it too.
    let dir = TempDir::new("fleet-grants-dir");
    for f in &bundle.files {
        std::fs::write(dir.path().join(&f.name), &f.content).unwrap();
    }
    let read = crate::policy::read_texts(&[dir.path().to_owned()]).expect("policy texts");
    assert_eq!(read.len(), 2, "{read:?}");
    let texts: Vec<(String, String)> = (policy_texts(&bundle.files).iter())
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect();
    let loaded = crate::policy::load_texts(&texts).expect("the bundle's policy");
    let (lists, warnings) = FleetLists::of_bundle(&bundle, &loaded.policy, now()).expect("valid");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!((lists.version, lists.grants.len()), (Some(4), 1));
    // Zones of another policy than the bundle's are refused.
    let refused = FleetLists::of_bundle(&bundle, &clinic(), now()).expect_err("refused");
    assert_eq!(
        refused[0].to_string(),
        "breakglass.toml:2:8: error: from: no zone `a` in the bundle's policy"
    );
}
