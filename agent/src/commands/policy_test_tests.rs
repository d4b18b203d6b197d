//! `ward policy test` and `ward policy sign --tests`: exact output and exit codes, and
//! the shipped clinic tests passing against the shipped clinic policy.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{policy_test, sign, SignOptions};
use crate::distribution::SecretKey;

const CLINIC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/clinic.toml");
const CLINIC_TESTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies/clinic.tests.toml");

/// A scratch directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-policy-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `ward policy test POLICY TESTS`: exit code, stdout, stderr.
fn run(policy: &Path, tests: &Path) -> (ExitCode, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = policy_test(policy, tests, &mut out, &mut err);
    let text = |b: Vec<u8>| String::from_utf8(b).expect("UTF-8");
    (code, text(out), text(err))
}

#[test]
fn the_shipped_clinic_tests_pass_against_the_shipped_policy() {
    let (code, out, err) = run(Path::new(CLINIC), Path::new(CLINIC_TESTS));
    assert_eq!((code, err.as_str()), (ExitCode::SUCCESS, ""), "{out}");
    assert_eq!(out.lines().last(), Some("16 passed, 0 failed"));
    assert!(!out.contains("FAIL"), "{out}");
}

#[test]
fn a_mismatch_fails_and_shows_the_rule_behind_each_verdict() {
    let dir = scratch("mismatch");
    let tests = dir.join("t.toml");
    std::fs::write(
        &tests,
        "[[test]]\nfrom = \"imaging\"\nto = \"pacs\"\nservice = \"dicom\"\nexpect = \"allow\"\n\
         [[test]]\nfrom = \"imaging\"\nto = \"billing\"\nproto = \"tcp\"\nport = 443\nexpect = \"allow\"\n\
         [[test]]\nfrom = \"admin\"\nto = \"ehr\"\nservice = \"ssh\"\nexpect = \"deny\"\ndescription = \"no SSH\"\n",
    )
    .unwrap();
    let t = tests.display();
    assert_eq!(
        run(Path::new(CLINIC), &tests),
        (
            ExitCode::from(1),
            format!(
                "ok   {t}:1: expect allow imaging -> pacs dicom\n\
                 \x20      allow imaging -> pacs tcp/104 by rule #0 at {CLINIC}:34\n\
                 \x20      allow imaging -> pacs tcp/11112 by rule #0 at {CLINIC}:34\n\
                 FAIL {t}:6: expect allow imaging -> billing tcp/443\n\
                 \x20      deny imaging -> billing tcp/443: no rule allows it\n\
                 FAIL {t}:12: expect deny admin -> ehr ssh (no SSH)\n\
                 \x20      allow admin -> ehr tcp/22 by rule #3 at {CLINIC}:56\n\
                 1 passed, 2 failed\n"
            ),
            String::new()
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_test_files_exit_2() {
    let dir = scratch("bad");
    let tests = dir.join("t.toml");
    let t = tests.display().to_string();
    let bad = |text: &str| {
        std::fs::write(&tests, text).unwrap();
        let (code, out, err) = run(Path::new(CLINIC), &tests);
        assert_eq!((code, out.as_str()), (ExitCode::from(2), ""), "{text}");
        err
    };
    assert_eq!(
        bad("[[test]]\nfrom = \"imaging\"\nto = \"pacs\"\nservice = \"dicom\"\nexpect = \"maybe\"\n"),
        format!("ward: error: {t}:5:10: error: unknown variant `maybe`, expected `allow` or `deny`\n")
    );
    assert_eq!(
        bad("[[test]]\nfrom = \"imagin\"\nto = \"pacs\"\nservice = \"dicom\"\nexpect = \"allow\"\n"),
        format!("ward: error: {t}:1: error: `imagin` is not an address, a CIDR prefix or a zone of the policy (did you mean `imaging`?)\n")
    );
    assert_eq!(
        bad("[[test]]\nfrom = \"imaging\"\nto = \"pacs\"\nexpect = \"allow\"\n"),
        format!("ward: error: {t}:1: error: a test names its flow's service with `service`, or with `proto` and `port`\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sign_refuses_a_policy_whose_tests_fail() {
    let dir = scratch("sign");
    let key = SecretKey::generate();
    let (secret, _) = key.write(&dir.join("net")).unwrap();
    let policy = dir.join("policy");
    std::fs::create_dir_all(&policy).unwrap();
    std::fs::copy(CLINIC, policy.join("clinic.toml")).unwrap();
    let bundle = dir.join("policy.bundle");
    let failing = dir.join("failing.toml");
    std::fs::write(
        &failing,
        "[[test]]\nfrom = \"imaging\"\nto = \"billing\"\nservice = \"https\"\nexpect = \"allow\"\n",
    )
    .unwrap();
    let mut out = Vec::new();
    let options = SignOptions {
        tests: Some(&failing),
        version: Some(1),
        strict: false,
    };
    let e = sign(
        &secret,
        options,
        &policy,
        &bundle,
        &mut out,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: a test of {} fails; nothing was signed",
            policy.display(),
            failing.display()
        )
    );
    assert!(!bundle.exists());
    let mut out = Vec::new();
    let tests = Some(Path::new(CLINIC_TESTS));
    assert_eq!(
        sign(
            &secret,
            SignOptions {
                tests,
                version: Some(1),
                strict: false
            },
            &policy,
            &bundle,
            &mut out,
            &mut Vec::new()
        )
        .unwrap(),
        ExitCode::SUCCESS
    );
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("16 passed, 0 failed\nsigned version 1 "),
        "{out}"
    );
    assert!(bundle.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sign_prints_the_warnings_it_signs_over_and_strict_refuses_them() {
    let dir = scratch("sign-strict");
    let key = SecretKey::generate();
    let (secret, _) = key.write(&dir.join("net")).unwrap();
    let policy = dir.join("policy");
    std::fs::create_dir_all(&policy).unwrap();
    std::fs::write(
        policy.join("p.toml"),
        "[zones.imaging]\ncidrs = [\"198.18.20.0/24\"]\n\n[zones.pacs]\ncidrs = [\"198.18.21.0/24\"]\n\n\
         [zones.spare]\ncidrs = [\"198.18.29.0/24\"]\n\n[[allow]]\nfrom = \"imaging\"\nto = \"pacs\"\ntcp = [104]\n",
    )
    .unwrap();
    let bundle = dir.join("policy.bundle");
    let warning = "warning: zone `spare` is not mentioned by any rule\n --> p.toml:7:8\n  |\n7 | [zones.spare]\n  |        ^^^^^\n\n";
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let strict = SignOptions {
        version: Some(1),
        strict: true,
        ..SignOptions::default()
    };
    let e = sign(&secret, strict, &policy, &bundle, &mut out, &mut err).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}: 1 warning(s) and --strict; nothing was signed",
            policy.display()
        )
    );
    assert_eq!(String::from_utf8(err).unwrap(), warning);
    assert!(!bundle.exists());
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let lenient = SignOptions {
        strict: false,
        ..strict
    };
    assert_eq!(
        sign(&secret, lenient, &policy, &bundle, &mut out, &mut err).unwrap(),
        ExitCode::SUCCESS
    );
    assert_eq!(
        String::from_utf8(err).unwrap(),
        format!("{warning}signing over 1 warning(s)\n")
    );
    assert!(bundle.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
