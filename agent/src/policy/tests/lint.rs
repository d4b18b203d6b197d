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
