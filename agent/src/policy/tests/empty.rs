//! The empty-policy error: a policy without any rule blocks everything when enforced,
//! so it is refused unless a file says `allow_empty = true`.
use super::*;

/// What the checker says when the merged policy has `zones` zones and no rule.
fn empty_error(file: &str, merged: &str, zones: &str) -> String {
    format!(
        "{file}: error: the policy{merged} has {zones} and 0 rules: enforced, it blocks all \
         traffic but the failsafe's; add [[allow]] rules, or `allow_empty = true` at the \
         top of the file if that is what you mean"
    )
}

fn messages(result: Result<Loaded, Vec<Diagnostic>>) -> Result<Vec<String>, Vec<String>> {
    let all = |d: &[Diagnostic]| d.iter().map(ToString::to_string).collect();
    result.map(|l| all(&l.warnings)).map_err(|d| all(&d))
}

const ZONES: &str = "[zones.a]\ncidrs = [\"10.0.1.0/24\"]\n";

#[test]
fn a_policy_without_rules_is_an_error_naming_the_file() {
    assert_eq!(
        messages(load_str("p.toml", "")),
        Err(vec![empty_error("p.toml", "", "0 zones")])
    );
    assert_eq!(
        messages(load_str("p.toml", ZONES)),
        Err(vec![
            empty_error("p.toml", "", "1 zone"),
            "p.toml:1:8: warning: zone `a` is not mentioned by any rule".to_owned(),
        ])
    );
    let two = [("a.toml", ""), ("b.toml", "# nothing\n")];
    assert_eq!(
        messages(load_texts(&two)),
        Err(vec![empty_error(
            "a.toml",
            " (the 2 files merged)",
            "0 zones"
        )])
    );
}

#[test]
fn allow_empty_accepts_it_and_false_does_not() {
    let allowed = format!("allow_empty = true\n{ZONES}");
    let loaded = load_str("p.toml", &allowed).expect("allowed");
    assert!(loaded.policy.rules.is_empty());
    assert_eq!(loaded.policy.zones.len(), 1);
    // In any of the merged files.
    assert!(load_texts(&[("a.toml", ZONES), ("b.toml", "allow_empty = true\n")]).is_ok());
    assert_eq!(
        messages(load_str("p.toml", "allow_empty = false\n")),
        Err(vec![empty_error("p.toml", "", "0 zones")])
    );
}

#[test]
fn allow_empty_takes_a_boolean() {
    assert_eq!(
        messages(load_str("p.toml", "allow_empty = \"yes\"\n")),
        Err(vec![
            "p.toml:1:15: error: `allow_empty` takes true or false, not \"yes\"".to_owned()
        ])
    );
}

#[test]
fn rules_without_zones_are_not_empty() {
    let text = "[[allow]]\nfrom = \"any\"\nto = \"any\"\ntcp = [22]\n";
    assert!(load_str("p.toml", text).is_ok());
}

#[test]
fn the_built_in_deny_all_policy_passes_the_check() {
    let deny_all = crate::policy::deny_all();
    assert!(deny_all.policy.rules.is_empty() && deny_all.warnings.is_empty());
}
