//! `ward check`: exit codes with `--strict`, the text report and the JSON document.
use std::path::PathBuf;
use std::process::ExitCode;

use super::check::check_to;
use super::CheckOptions;

/// A policy file with the given text, in a fresh temporary directory.
fn policy_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-check-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let file = dir.join("p.toml");
    std::fs::write(&file, text).expect("write policy");
    file
}

/// Runs the check: exit code, stdout, stderr (the file's directory replaced by `DIR`).
fn run(file: &PathBuf, options: CheckOptions) -> (ExitCode, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check_to(std::slice::from_ref(file), &options, &mut out, &mut err).expect("write");
    let dir = file.parent().expect("dir").display().to_string();
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8").replace(&dir, "DIR");
    (code, text(out), text(err))
}

/// Two zones, one of them never mentioned by a rule: valid, with one warning.
const WARNED: &str = "[zones.a]\ncidrs = [\"10.0.1.0/24\"]\n[zones.b]\ncidrs = [\"10.0.2.0/24\"]\n[[allow]]\nfrom = \"a\"\nto = \"a\"\ntcp = [22]\n";

#[test]
fn strict_fails_on_warnings() {
    let file = policy_file("strict", WARNED);
    let (code, out, err) = run(&file, CheckOptions::default());
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(
        out.starts_with("policy OK: 2 zones, 1 rule, 2 CIDRs (1 warning, sha256 "),
        "{out}"
    );
    let strict = CheckOptions {
        strict: true,
        ..CheckOptions::default()
    };
    let (code, strict_out, strict_err) = run(&file, strict);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(strict_out, "policy invalid: 1 warning (--strict)\n");
    assert_eq!(strict_err, err);
    assert_eq!(
        err,
        "warning: zone `b` is not mentioned by any rule\n --> DIR/p.toml:3:8\n  |\n3 | [zones.b]\n  |        ^\n\n"
    );
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[test]
fn text_report_shows_each_error_with_its_line() {
    let file = policy_file("text", "[zones.a]\ncidrs = [\"10.0.1.0/24\"]\ncolour = \"red\"\n[[allow]]\nfrom = \"a\"\nto = \"b\"\nicmp = \"yes\"\n");
    let (code, out, err) = run(&file, CheckOptions::default());
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(out, "policy invalid: 3 errors\n");
    let expected = [
        "error: unknown field `colour`, expected one of `cidrs`, `description`, `mode`",
        " --> DIR/p.toml:3:1",
        "  |",
        "3 | colour = \"red\"",
        "  | ^^^^^^",
        "",
        "error: unknown zone `b`",
        " --> DIR/p.toml:6:6",
        "  |",
        "6 | to = \"b\"",
        "  |      ^^^",
        "",
        "error: `icmp` takes true or false, not \"yes\"",
        " --> DIR/p.toml:7:8",
        "  |",
        "7 | icmp = \"yes\"",
        "  |        ^^^^^",
        "",
        "",
    ];
    assert_eq!(err, expected.join("\n"));
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[test]
fn json_report_has_every_diagnostic() {
    let json = CheckOptions {
        json: true,
        ..CheckOptions::default()
    };
    let file = policy_file(
        "json",
        "[zones.a]\ncidrs = [\"10.0.1.0/24\"]\n[[allow]]\nfrom = \"a\"\nto = \"b\"\ntcp = [0]\n",
    );
    let (code, out, err) = run(&file, json.clone());
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(err, "");
    let expected = r#"{
  "format": 1,
  "valid": false,
  "errors": 2,
  "warnings": 0,
  "sha256": null,
  "diagnostics": [
    {
      "severity": "error",
      "file": "DIR/p.toml",
      "line": 5,
      "column": 6,
      "message": "unknown zone `b`"
    },
    {
      "severity": "error",
      "file": "DIR/p.toml",
      "line": 6,
      "column": 8,
      "message": "port 0 is out of range 1-65535"
    }
  ]
}
"#;
    assert_eq!(out, expected);
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
    let file = policy_file("json-ok", WARNED);
    let (code, out, _) = run(&file, json.clone());
    assert_eq!(code, ExitCode::SUCCESS);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(doc["valid"], true);
    assert_eq!(doc["warnings"], 1);
    assert_eq!(doc["sha256"].as_str().map(str::len), Some(64));
    let warning = serde_json::json!({
        "severity": "warning",
        "file": "DIR/p.toml",
        "line": 3,
        "column": 8,
        "message": "zone `b` is not mentioned by any rule",
    });
    assert_eq!(doc["diagnostics"], serde_json::json!([warning]));
    let (code, out, _) = run(
        &file,
        CheckOptions {
            strict: true,
            ..json
        },
    );
    assert_eq!(code, ExitCode::FAILURE);
    let doc: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(doc["valid"], false);
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[test]
fn config_is_checked_without_starting_anything() {
    let file = policy_file(
        "config",
        "# interfaces = []\nrole = \"host\"\npolicy = \"p\"\ninterfaces = []\n",
    );
    let dir = file.parent().unwrap().display().to_string();
    let only_config = |file: &PathBuf| {
        let options = CheckOptions {
            config: Some(file.clone()),
            ..CheckOptions::default()
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = check_to(&[], &options, &mut out, &mut err).expect("write");
        let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8").replace(&dir, "DIR");
        (code, text(out), text(err))
    };
    let (code, out, err) = only_config(&file);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(out, "config invalid: DIR/p.toml\n");
    assert_eq!(
        err,
        "error: `interfaces` lists no interface\n --> DIR/p.toml:4:1\n  |\n4 | interfaces = []\n  | ^^^^^^^^^^\n\n"
    );
    std::fs::write(
        &file,
        "role = \"host\"\npolicy = \"p\"\ninterfaces = [\"eth0\"]\n",
    )
    .unwrap();
    let (code, out, err) = only_config(&file);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (ExitCode::SUCCESS, "config OK: DIR/p.toml\n", "")
    );
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[test]
fn an_empty_policy_fails_unless_allowed_and_wide_open_fails_strict() {
    let file = policy_file("empty", "[zones.a]\ncidrs = [\"10.0.1.0/24\"]\n");
    let (code, out, err) = run(&file, CheckOptions::default());
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(out, "policy invalid: 1 error\n");
    assert_eq!(
        err.lines().next(),
        Some(
            "DIR/p.toml: error: the policy has 1 zone and 0 rules: enforced, it blocks all \
             traffic but the failsafe's; add [[allow]] rules, or `allow_empty = true` at the \
             top of the file if that is what you mean"
        )
    );
    let file = policy_file("allowed", "allow_empty = true\n");
    let (code, out, err) = run(&file, CheckOptions::default());
    assert_eq!((code, err.as_str()), (ExitCode::SUCCESS, ""));
    assert!(
        out.starts_with("policy OK: 0 zones, 0 rules, 0 CIDRs (sha256 "),
        "{out}"
    );

    let open = "[zones.billing]\ncidrs = [\"10.0.1.0/24\"]\n[[allow]]\nfrom = \"any\"\nto = \"billing\"\ntcp = [\"1-65535\"]\n";
    let file = policy_file("open", open);
    let strict = CheckOptions {
        strict: true,
        ..CheckOptions::default()
    };
    let (code, out, err) = run(&file, strict);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(out, "policy invalid: 1 warning (--strict)\n");
    assert!(
        err.starts_with("warning: wide open: rule lets every source (`any`) open connections to `billing` on every tcp port; `billing` is a records zone"),
        "{err}"
    );
    for dir in ["empty", "allowed", "open"] {
        let path = std::env::temp_dir().join(format!("ward-check-{}-{dir}", std::process::id()));
        std::fs::remove_dir_all(path).unwrap();
    }
}

/// An SSH session from the admin host to this host, as the socket table gives it.
fn admin_ssh() -> Vec<crate::preflight::Session> {
    vec![crate::preflight::Session {
        remote: "198.18.24.10:50001".parse().unwrap(),
        local: "198.18.24.1:22".parse().unwrap(),
    }]
}

/// `ward check --config agent.toml POLICY` with the sessions `admin_ssh` gives: exit
/// code, stdout, stderr (the file's directory replaced by `DIR`). `name` keeps each
/// test's scratch directory its own: the tests run in parallel.
fn lock_out_run(name: &str, policy: &str, failsafe: &str) -> (ExitCode, String, String) {
    let file = policy_file(name, policy);
    let dir = file.parent().expect("dir").to_path_buf();
    let config = dir.join("agent.toml");
    let text = format!("role = \"host\"\ninterfaces = [\"eth0\"]\npolicy = \"p.toml\"\n{failsafe}");
    std::fs::write(&config, text).expect("write config");
    let options = CheckOptions {
        config: Some(config),
        ..CheckOptions::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let sessions = || Ok(admin_ssh());
    let code = super::check::check_with(
        std::slice::from_ref(&file),
        &options,
        &sessions,
        &mut out,
        &mut err,
    )
    .expect("write");
    let text = |b: Vec<u8>| {
        let text = String::from_utf8(b).expect("UTF-8");
        text.replace(&dir.display().to_string(), "DIR")
    };
    let result = (code, text(out), text(err));
    std::fs::remove_dir_all(&dir).unwrap();
    result
}

/// The admin zone, and SSH to it from `ops` only.
const NO_ADMIN_SSH: &str = "[zones.admin]\ncidrs = [\"198.18.24.0/24\"]\n[zones.ops]\ncidrs = [\"198.18.30.0/24\"]\n[[allow]]\nfrom = \"ops\"\nto = \"admin\"\ntcp = [22]\n";

#[test]
fn the_lock_out_preflight_names_the_session_a_policy_would_cut() {
    let (code, out, err) = lock_out_run("lock-out-cut", NO_ADMIN_SSH, "");
    assert_eq!(code, ExitCode::FAILURE);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "config OK: DIR/agent.toml");
    assert!(lines[1].starts_with("policy OK: 2 zones, 1 rule, 2 CIDRs (sha256 "));
    assert_eq!(
        lines[2..],
        ["preflight failed: 1 established session to a management port would be cut"]
    );
    assert_eq!(
        err,
        "DIR/p.toml: error: the policy would cut an established session: 198.18.24.10 → \
         198.18.24.1:22 (deny admin -> admin tcp/22: no rule allows it)\n\n"
    );
}

#[test]
fn the_failsafe_keeps_the_session_and_the_preflight_passes() {
    let failsafe = "[failsafe]\nmanagement = [\"198.18.24.0/24\"]\n";
    let (code, out, err) = lock_out_run("lock-out-failsafe", NO_ADMIN_SSH, failsafe);
    assert_eq!((code, err.as_str()), (ExitCode::SUCCESS, ""));
    assert!(
        out.ends_with("\npreflight OK: no established session to a management port would be cut\n"),
        "{out}"
    );
}
