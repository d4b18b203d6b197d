//! Loading and checking: every diagnostic with its file, line and column.
use std::path::PathBuf;

use super::*;

/// Two zones, lines 1 to 4; rules appended start on line 5.
const ZONES: &str = "[zones.a]\ncidrs = [\"10.0.1.0/24\"]\n[zones.b]\ncidrs = [\"10.0.2.0/24\", \"2001:db8::/64\"]\n";

fn diagnostics(text: &str) -> Vec<String> {
    match load_str("p.toml", text) {
        Ok(loaded) => loaded.warnings.iter().map(ToString::to_string).collect(),
        Err(diags) => diags.iter().map(ToString::to_string).collect(),
    }
}

fn errors(text: &str) -> Vec<String> {
    let diags = load_str("p.toml", text).expect_err("policy should be invalid");
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

fn with_rule(rule: &str) -> String {
    format!("{ZONES}[[allow]]\n{rule}")
}

#[test]
fn syntax_error_has_its_position() {
    let errs = errors("[zones.a]\ncidrs = [\"10.0.1.0/24\"\n");
    assert_eq!(
        errs,
        ["p.toml:3:1: error: TOML syntax error, the rest of this file is not checked: invalid array expected `]`"]
    );
    let errs = errors("[zones.a]\ncidrs = = [\"10.0.1.0/24\"]\n");
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("p.toml:2:9: error: "), "{errs:?}");
}

#[test]
fn unknown_keys_are_errors() {
    let errs = errors("[zones.a]\ncidrs = [\"10.0.1.0/24\"]\ncolour = \"red\"\n");
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].starts_with("p.toml:3:1: error: unknown field `colour`"),
        "{errs:?}"
    );
    let errs = errors(&with_rule("from = \"a\"\nto = \"b\"\nports = [1]\n"));
    assert!(
        errs[0].starts_with("p.toml:8:1: error: unknown field `ports`"),
        "{errs:?}"
    );
}

#[test]
fn unknown_zones_in_rules() {
    let errs = errors(&with_rule("from = \"x\"\nto = [\"b\", \"c\"]\ntcp = [1]\n"));
    assert_eq!(
        errs,
        [
            "p.toml:6:8: error: unknown zone `x`",
            "p.toml:7:12: error: unknown zone `c`"
        ]
    );
}

#[test]
fn bad_cidrs() {
    let errs =
        errors("[zones.a]\ncidrs = [\"10.0.1.1/24\", \"10.0.0.0/33\", \"2001:db8::1/64\", 5]\n");
    assert_eq!(
        errs,
        [
            "p.toml:2:10: error: 10.0.1.1/24 has host bits set: the network is 10.0.1.0/24",
            "p.toml:2:25: error: `10.0.0.0/33` is not a CIDR prefix (like 198.18.20.0/24 or 2001:db8::/64)",
            "p.toml:2:40: error: 2001:db8::1/64 has host bits set: the network is 2001:db8::/64",
            "p.toml:2:58: error: `cidrs` takes CIDR prefixes (strings), not 5",
        ],
        "a non-string does not hide the other prefixes' errors"
    );
    let errs =
        errors("[zones.a]\ncidrs = [\"10.0.1.1/24\", \"10.0.0.0/33\", \"2001:db8::1/64\"]\n");
    assert_eq!(
        errs,
        [
            "p.toml:2:10: error: 10.0.1.1/24 has host bits set: the network is 10.0.1.0/24",
            "p.toml:2:25: error: `10.0.0.0/33` is not a CIDR prefix (like 198.18.20.0/24 or 2001:db8::/64)",
            "p.toml:2:40: error: 2001:db8::1/64 has host bits set: the network is 2001:db8::/64",
        ]
    );
}

#[test]
fn same_prefix_in_two_zones_and_empty_cidrs() {
    let errs = errors("[zones.a]\ncidrs = [\"10.0.1.0/24\"]\n[zones.b]\ncidrs = [\"10.0.1.0/24\"]\n[zones.c]\ncidrs = []\n");
    assert_eq!(
        errs,
        [
            "p.toml:4:10: error: prefix 10.0.1.0/24 is already in another zone (at p.toml:2); a prefix belongs to one zone",
            "p.toml:6:9: error: `cidrs` is empty",
        ]
    );
}

#[test]
fn reserved_and_invalid_zone_names() {
    let long = "a".repeat(33);
    let text = format!(
        "[zones.world]\ncidrs = [\"10.0.1.0/24\"]\n[zones.any]\ncidrs = [\"10.0.2.0/24\"]\n[zones.Bad]\ncidrs = [\"10.0.3.0/24\"]\n[zones.{long}]\ncidrs = [\"10.0.4.0/24\"]\n"
    );
    let errs = errors(&text);
    assert_eq!(
        errs,
        [
            "p.toml:1:8: error: `world` is reserved and cannot name a zone",
            "p.toml:3:8: error: `any` is reserved and cannot name a zone",
            "p.toml:5:8: error: invalid zone name `Bad`: names match [a-z][a-z0-9_-]*",
            format!("p.toml:7:8: error: zone name `{long}` is longer than 32 characters").as_str(),
        ]
    );
}

#[test]
fn bad_ports_and_ranges() {
    let errs = errors(&with_rule(
        "from = \"a\"\nto = \"b\"\ntcp = [0, 65536, \"http\", \"200-100\", 1.5]\nudp = \"7-x\"\n",
    ));
    assert_eq!(
        errs,
        [
            "p.toml:8:8: error: port 0 is out of range 1-65535",
            "p.toml:8:11: error: port 65536 is out of range 1-65535",
            "p.toml:8:18: error: `http` is not a port number",
            "p.toml:8:26: error: port range 200-100 is inverted (did you mean 100-200?)",
            "p.toml:8:37: error: a port is an integer or a string \"N\" or \"lo-hi\", not 1.5",
            "p.toml:9:7: error: `x` is not a port number",
        ]
    );
}

#[test]
fn rules_that_allow_nothing() {
    let errs = errors(&with_rule("from = \"a\"\nto = \"b\"\n"));
    assert_eq!(
        errs,
        ["p.toml:5:1: error: rule allows nothing: give `tcp`, `udp`, `services` or `icmp = true`"]
    );
    let errs = errors(&with_rule(
        "from = \"a\"\nto = \"b\"\ntcp = []\nudp = []\nicmp = false\n",
    ));
    assert_eq!(
        errs,
        ["p.toml:5:1: error: rule allows nothing: give `tcp`, `udp`, `services` or `icmp = true`"]
    );
    let errs = errors(&with_rule("from = []\nto = \"b\"\nicmp = true\n"));
    assert_eq!(errs, ["p.toml:6:8: error: `from` names no zone"]);
}

#[test]
fn all_errors_are_collected() {
    let text = "[zones.a]\ncidrs = [\"10.0.1.1/24\"]\n[zones.any]\ncidrs = [\"10.0.2.0/24\"]\n[[allow]]\nfrom = \"a\"\nto = \"nope\"\ntcp = [0]\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 4, "{errs:?}");
}

#[test]
fn warnings_for_unused_zones_and_shadowed_rules() {
    let text = format!(
        "{ZONES}[zones.c]\ncidrs = [\"10.0.3.0/24\"]\n[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [\"1-1000\"]\n[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [22, 80]\n[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [22, 2000]\n"
    );
    let diags = diagnostics(&text);
    assert_eq!(
        diags,
        [
            "p.toml:5:8: warning: zone `c` is not mentioned by any rule",
            "p.toml:11:1: warning: rule #1 is shadowed by rule #0 at p.toml:7: it allows nothing they do not",
        ]
    );
    let loaded = load_str("p.toml", &text).expect("valid");
    assert_eq!(
        loaded.compiled.shadowed,
        [ShadowedRule {
            rule_id: 1,
            by: vec![0]
        }]
    );
}

/// A fresh empty directory under the system temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-policy-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

#[test]
fn directories_merge_in_file_name_order() {
    let dir = temp_dir("merge");
    std::fs::write(
        dir.join("20-rules.toml"),
        "[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [22]\n",
    )
    .unwrap();
    std::fs::write(dir.join("10-zones.toml"), ZONES).unwrap();
    std::fs::write(
        dir.join("30-more.toml"),
        "[[allow]]\nfrom = \"b\"\nto = \"a\"\nudp = [53]\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a policy").unwrap();
    let loaded = load(std::slice::from_ref(&dir)).expect("valid");
    assert_eq!(loaded.policy.zones.len(), 2);
    let origins: Vec<_> = loaded
        .compiled
        .rule_origins
        .iter()
        .map(ToString::to_string)
        .collect();
    let file = |f: &str| dir.join(f).display().to_string();
    assert_eq!(
        origins,
        [
            format!("{}:1", file("20-rules.toml")),
            format!("{}:1", file("30-more.toml"))
        ]
    );

    std::fs::write(
        dir.join("40-dup.toml"),
        "\n[zones.b]\ncidrs = [\"10.0.9.0/24\"]\n",
    )
    .unwrap();
    let errs = load(std::slice::from_ref(&dir)).expect_err("duplicate zone");
    assert_eq!(
        errs.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "{}:2:8: error: zone `b` is already defined at {}:3",
            file("40-dup.toml"),
            file("10-zones.toml")
        )]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unreadable_paths_and_empty_directories() {
    let dir = temp_dir("empty");
    let missing = dir.join("missing.toml");
    let errs = load(&[dir.clone(), missing.clone()]).expect_err("nothing to load");
    assert_eq!(errs.len(), 2);
    assert_eq!(
        errs[0].to_string(),
        format!("{}: error: directory has no *.toml file", dir.display())
    );
    assert!(errs[1]
        .to_string()
        .starts_with(&format!("{}: error: cannot read file: ", missing.display())));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_built_in_deny_all_policy_has_no_zone_and_no_rule() {
    let deny_all = crate::policy::deny_all();
    assert!(deny_all.policy.zones.is_empty());
    assert!(deny_all.compiled.rules.is_empty());
    assert!(deny_all.compiled.v4.is_empty() && deny_all.compiled.v6.is_empty());
}
