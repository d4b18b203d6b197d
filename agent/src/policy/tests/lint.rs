//! The lateral-movement lint and its `reviewed` acknowledgment.
use super::*;

const ZONES: &str = concat!(
    "[zones.guest-wifi]\ncidrs = [\"10.0.1.0/24\"]\n",
    "[zones.billing]\ncidrs = [\"10.0.2.0/24\"]\n",
    "[zones.patient-records]\ncidrs = [\"10.0.3.0/24\"]\n",
    "[zones.imaging]\ncidrs = [\"10.0.4.0/24\"]\n",
    "[zones.admin]\ncidrs = [\"10.0.5.0/24\"]\n",
);

/// The warnings of ZONES followed by `rules` (rules start on line 11).
fn warnings(rules: &str) -> Vec<String> {
    load_str("p.toml", &format!("{ZONES}{rules}"))
        .unwrap_or_else(|e| panic!("{e:?}"))
        .warnings
        .iter()
        .map(ToString::to_string)
        .filter(|w| !w.contains("is not mentioned"))
        .collect()
}

const WHY: &str = "a compromised device or guest there could reach business records. If intended, say why with `reviewed = \"...\"` in the rule";

#[test]
fn exposed_zones_opening_sensitive_ones_warn() {
    let w = warnings(concat!(
        "[[allow]]\nfrom = [\"guest-wifi\", \"imaging\", \"admin\"]\nto = [\"billing\", \"patient-records\"]\ntcp = [443]\n",
        "[[allow]]\nfrom = \"any\"\nto = \"billing\"\ntcp = [8443]\n",
        "[[allow]]\nfrom = \"imaging\"\nto = \"any\"\nservices = [\"ssh\"]\n",
        "[[allow]]\nfrom = \"world\"\nto = \"patient-records\"\nservices = [\"https\"]\n",
    ));
    assert_eq!(
        w,
        [
            format!("p.toml:11:1: warning: lateral movement risk: rule lets `guest-wifi` and `imaging` open connections to `billing` and `patient-records`; {WHY}"),
            format!("p.toml:15:1: warning: lateral movement risk: rule lets `any` open connections to `billing`; {WHY}"),
            format!("p.toml:19:1: warning: lateral movement risk: rule lets `imaging` open connections to `billing` and `patient-records`; {WHY}"),
            format!("p.toml:23:1: warning: lateral movement risk: rule lets `world` open connections to `patient-records`; {WHY}"),
        ]
    );
}

#[test]
fn other_directions_and_zones_do_not_warn() {
    let w = warnings(concat!(
        "[[allow]]\nfrom = \"billing\"\nto = [\"imaging\", \"guest-wifi\"]\ntcp = [443]\n",
        "[[allow]]\nfrom = \"admin\"\nto = \"any\"\nservices = [\"ssh\"]\n",
        "[[allow]]\nfrom = [\"guest-wifi\", \"imaging\"]\nto = \"admin\"\nservices = [\"syslog\"]\n",
        "[[allow]]\nfrom = \"billing\"\nto = \"patient-records\"\nservices = [\"https\"]\n",
    ));
    assert_eq!(w, Vec::<String>::new());
}

#[test]
fn reviewed_rules_are_silent_and_need_a_reason() {
    let w = warnings(
        "[[allow]]\nfrom = \"imaging\"\nto = \"patient-records\"\nservices = [\"hl7-mllp\"]\nreviewed = \"modality worklist feed, change CR-1234\"\n",
    );
    assert_eq!(w, Vec::<String>::new());
    let loaded = load_str(
        "p.toml",
        &format!("{ZONES}[[allow]]\nfrom = \"imaging\"\nto = \"billing\"\ntcp = [1]\nreviewed = \"CR-1\"\n"),
    )
    .expect("valid");
    assert_eq!(loaded.policy.rules[0].reviewed.as_deref(), Some("CR-1"));
    let errs: Vec<String> = load_str(
        "p.toml",
        &format!("{ZONES}[[allow]]\nfrom = \"imaging\"\nto = \"billing\"\ntcp = [1]\nreviewed = \"  \"\n"),
    )
    .expect_err("empty reason")
    .iter()
    .filter(|d| d.severity == Severity::Error)
    .map(ToString::to_string)
    .collect();
    assert_eq!(
        errs,
        ["p.toml:15:12: error: `reviewed` needs the reason the rule was accepted"]
    );
}

/// The end of the wide-open warning.
const NARROW: &str = "it segments nothing there. Narrow `from` or the ports, or if intended say why with `reviewed = \"...\"` in the rule";

#[test]
fn every_source_on_every_port_is_wide_open() {
    let w = warnings(concat!(
        "[[allow]]\nfrom = \"any\"\nto = \"any\"\ntcp = [\"1-65535\"]\n",
        "[[allow]]\nfrom = \"any\"\nto = \"billing\"\ntcp = [\"1-1000\", \"900-65535\"]\nudp = [\"1-65535\"]\n",
        "[[allow]]\nfrom = \"world\"\nto = [\"admin\", \"patient-records\"]\nudp = [\"1-65535\"]\n",
        "[[allow]]\nfrom = \"any\"\nto = \"admin\"\nudp = [\"1-65535\"]\n",
    ));
    assert_eq!(
        w,
        [
            format!("p.toml:11:1: warning: wide open: rule lets every source (`any`) open connections to every zone (`any`) on every tcp port: {NARROW}"),
            format!("p.toml:15:1: warning: wide open: rule lets every source (`any`) open connections to `billing` on every tcp port and every udp port; `billing` is a records zone: {NARROW}"),
            format!("p.toml:20:1: warning: wide open: rule lets every outside address (`world`) open connections to `admin` and `patient-records` on every udp port; `patient-records` is a records zone: {NARROW}"),
            format!("p.toml:24:1: warning: wide open: rule lets every source (`any`) open connections to `admin` on every udp port: {NARROW}"),
        ]
    );
}

#[test]
fn some_ports_some_sources_or_reviewed_are_not_wide_open() {
    let w = warnings(concat!(
        "[[allow]]\nfrom = \"any\"\nto = \"admin\"\ntcp = [\"1-65534\"]\n",
        "[[allow]]\nfrom = \"admin\"\nto = \"any\"\ntcp = [\"1-65535\"]\n",
        "[[allow]]\nfrom = \"any\"\nto = \"any\"\nudp = [\"1-65535\"]\nreviewed = \"lab network\"\n",
    ));
    assert_eq!(w, Vec::<String>::new());
}

#[test]
fn any_mentions_every_zone() {
    let text = format!("{ZONES}[[allow]]\nfrom = \"admin\"\nto = \"any\"\ntcp = [22]\n");
    let loaded = load_str("p.toml", &text).expect("loads");
    assert_eq!(loaded.warnings, Vec::new());
}
