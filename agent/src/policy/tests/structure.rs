//! Structural errors: every one of a file reported in one run, each table on its own.
use super::*;

fn errors(text: &str) -> Vec<String> {
    let diags = load_str("p.toml", text).expect_err("policy should be invalid");
    diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(ToString::to_string)
        .collect()
}

#[test]
fn three_misspelt_keys_are_three_errors() {
    let text = concat!(
        "[zones.a]\ncidr = [\"10.0.1.0/24\"]\n",
        "[zones.b]\ncidrs = [\"10.0.2.0/24\"]\nmod = \"audit\"\n",
        "[[allow]]\nfrom = \"a\"\nto = \"b\"\ntpc = [22]\n",
    );
    assert_eq!(
        errors(text),
        [
            "p.toml:2:1: error: unknown field `cidr` (did you mean `cidrs`?), expected one of `cidrs`, `description`, `mode`",
            "p.toml:5:1: error: unknown field `mod` (did you mean `mode`?), expected one of `cidrs`, `description`, `mode`",
            "p.toml:9:1: error: unknown field `tpc` (did you mean `tcp`?), expected one of `from`, `to`, `tcp`, `udp`, `icmp`, `services`, `reviewed`, `description`",
        ]
    );
}

#[test]
fn a_wrong_type_does_not_hide_other_errors() {
    let text = concat!(
        "[zones.imaging]\ncidrs = [\"10.0.1.1/24\"]\n",
        "[zones.pacs]\ncidrs = [\"10.0.2.0/24\"]\ncolour = \"red\"\n",
        "[zones.Billing]\ncidrs = []\n",
        "[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\nicmp = \"yes\"\ntcp = [0, \"80-70\"]\n",
        "[[allow]]\nfrom = \"imagin\"\nto = \"ehr\"\nservices = [\"htps\"]\n",
    );
    assert_eq!(
        errors(text),
        [
            "p.toml:2:10: error: 10.0.1.1/24 has host bits set: the network is 10.0.1.0/24",
            "p.toml:5:1: error: unknown field `colour`, expected one of `cidrs`, `description`, `mode`",
            "p.toml:6:8: error: invalid zone name `Billing`: names match [a-z][a-z0-9_-]*",
            "p.toml:7:9: error: `cidrs` is empty",
            "p.toml:11:8: error: `icmp` takes true or false, not \"yes\"",
            "p.toml:12:8: error: port 0 is out of range 1-65535",
            "p.toml:12:11: error: port range 80-70 is inverted (did you mean 70-80?)",
            "p.toml:14:8: error: unknown zone `imagin` (did you mean `imaging`?)",
            "p.toml:15:6: error: unknown zone `ehr`",
            "p.toml:16:13: error: unknown service `htps` (did you mean `https`?); `ward policy services` lists them",
        ]
    );
}

#[test]
fn misspelt_zone_names_get_a_suggestion() {
    let text = concat!(
        "[zones.imaging]\ncidrs = [\"10.0.1.0/24\"]\n",
        "[zones.pacs]\ncidrs = [\"10.0.2.0/24\"]\n",
        "[[allow]]\nfrom = \"imagng\"\nto = [\"pacs\", \"pcas\", \"ehr\"]\ntcp = [104]\n",
    );
    assert_eq!(
        errors(text),
        [
            "p.toml:6:8: error: unknown zone `imagng` (did you mean `imaging`?)",
            "p.toml:7:15: error: unknown zone `pcas` (did you mean `pacs`?)",
            "p.toml:7:23: error: unknown zone `ehr`",
        ]
    );
}

#[test]
fn wrong_shapes_of_tables() {
    let text = "zones = 5\nallow = [1]\ncolour = \"red\"\n";
    assert_eq!(
        errors(text),
        [
            "p.toml:1:9: error: `zones` takes zone tables ([zones.NAME]), not 5",
            "p.toml:2:10: error: a rule must be a table ([[allow]]), not 1",
            "p.toml:3:1: error: unknown field `colour`, expected one of `zones`, `allow`, `allow_empty`",
        ]
    );
    let text = concat!(
        "[zones]\na = 1\n",
        "[zones.b]\ncidrs = \"10.0.2.0/24\"\nmode = \"log\"\ndescription = 7\n",
        "[[allow]]\nicmp = true\nreviewed = false\n",
        "[zones.c]\ncidrs = [\"10.0.3.0/24\"]\nmode = 1979-05-27\n",
    );
    assert_eq!(
        errors(text),
        [
            "p.toml:2:5: error: zone `a` must be a table, not 1",
            "p.toml:4:9: error: `cidrs` takes an array of CIDR prefixes (strings), not \"10.0.2.0/24\"",
            "p.toml:5:8: error: `mode` is \"enforce\" or \"audit\", not \"log\"",
            "p.toml:6:15: error: `description` takes a string, not 7",
            "p.toml:7:1: error: missing field `from`",
            "p.toml:7:1: error: missing field `to`",
            "p.toml:9:12: error: `reviewed` takes a string, not false",
            "p.toml:12:8: error: `mode` is \"enforce\" or \"audit\", not 1979-05-27",
        ]
    );
}

#[test]
fn diagnostics_show_the_offending_line() {
    let text = concat!(
        "[zones.a]\ncidrs = [\"10.0.1.0/24\"]\n",
        "[[allow]]\nfrom = \"a\"\nto = \"b\"\nicmp = \"yes\"\n",
    );
    let diags = load_str("p.toml", text).expect_err("invalid");
    let rendered: Vec<String> = diags.iter().map(Diagnostic::render).collect();
    assert_eq!(
        rendered,
        [
            "error: unknown zone `b`\n --> p.toml:5:6\n  |\n5 | to = \"b\"\n  |      ^^^",
            "error: `icmp` takes true or false, not \"yes\"\n --> p.toml:6:8\n  |\n6 | icmp = \"yes\"\n  |        ^^^^^",
        ]
    );
}
