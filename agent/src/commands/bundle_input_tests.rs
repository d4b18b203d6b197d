//! Signed bundles as the policy of `ward check`, `ward explain` and `ward policy diff`:
//! read like TOML, verified first with `--trusted-key`, refused (naming the file) when
//! the signature does not hold.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::check::check_to;
use super::{explain, policy_diff, CheckOptions, ExplainArgs};
use crate::distribution::{Bundle, BundleFile, SecretKey};

const POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../policies");
const DIFF_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/policy-diff");

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-bundle-in-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Signs the file at `source` (kept under its own name) as `version` into `out`.
fn sign(key: &SecretKey, version: u64, source: &Path, out: &Path) {
    let file = BundleFile {
        name: source.file_name().unwrap().to_str().unwrap().to_owned(),
        content: std::fs::read_to_string(source).unwrap(),
    };
    let bundle = Bundle::sign(version, vec![file], key).unwrap();
    std::fs::write(out, bundle.to_json()).unwrap();
}

/// `ward check` on `paths` with `keys`: exit code, stdout, stderr.
fn check(paths: &[&Path], keys: &[String]) -> (ExitCode, String, String) {
    let paths: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
    let options = CheckOptions {
        trusted_keys: keys.to_vec(),
        ..CheckOptions::default()
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check_to(&paths, &options, &mut out, &mut err).unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (code, text(out), text(err))
}

#[test]
fn check_reads_and_verifies_a_bundle() {
    let dir = scratch("check");
    let (key, other) = (SecretKey::generate(), SecretKey::generate());
    let toml = Path::new(POLICIES).join("clinic.toml");
    let bundle = dir.join("clinic.bundle");
    sign(&key, 7, &toml, &bundle);
    let good = vec![key.public().to_base64()];
    let wrong = vec![other.public().to_base64()];

    // The bundle's policy is the TOML's: the same summary, with or without the key.
    let (code, toml_out, _) = check(&[&toml], &[]);
    assert_eq!(code, ExitCode::SUCCESS);
    assert!(toml_out.starts_with("policy OK: 6 zones"), "{toml_out}");
    assert_eq!(
        check(&[&bundle], &[]),
        (ExitCode::SUCCESS, toml_out.clone(), String::new())
    );
    assert_eq!(
        check(&[&bundle], &good),
        (ExitCode::SUCCESS, toml_out, String::new())
    );

    // Another key: refused, naming the file and the key.
    let b = bundle.display();
    assert_eq!(
        check(&[&bundle], &wrong),
        (
            ExitCode::FAILURE,
            "policy invalid: 1 error\n".to_owned(),
            format!(
                "{b}: error: version 7: signed by key {}, which is not in trusted_keys\n\n",
                key.id()
            )
        )
    );

    // Altered after signing: a bad signature.
    let text = std::fs::read_to_string(&bundle).unwrap();
    std::fs::write(
        &bundle,
        text.replacen("tcp = [104, 11112]", "tcp = [104, 11113]", 1),
    )
    .unwrap();
    assert_eq!(
        check(&[&bundle], &good).2,
        format!(
            "{b}: error: version 7: bad signature (key {}): the bundle was altered after \
             signing, or not signed by that key\n\n",
            key.id()
        )
    );
    // Unverified, the altered bundle is read as it is.
    assert_eq!(check(&[&bundle], &[]).0, ExitCode::SUCCESS);

    // A key for TOML verifies nothing: refused. A bundle among other paths: refused.
    let t = toml.display();
    assert_eq!(
        check(&[&toml], &good).2,
        format!("{t}: error: not a signed bundle: --trusted-key verifies bundles only\n\n")
    );
    assert_eq!(
        check(&[&toml, &bundle], &[]).2,
        format!("{b}: error: a signed bundle is a whole policy: give it alone\n\n")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn explain_reads_and_verifies_a_bundle() {
    let dir = scratch("explain");
    let (key, other) = (SecretKey::generate(), SecretKey::generate());
    let bundle = dir.join("clinic.bundle");
    sign(&key, 1, &Path::new(POLICIES).join("clinic.toml"), &bundle);
    let run = |keys: &[String]| {
        let args = ExplainArgs {
            policy: Some(&bundle),
            config: None,
            trusted_keys: keys,
            live: None,
            from: "198.18.20.5",
            to: "pacs",
            service: "tcp/104",
        };
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = explain(&args, &mut out, &mut err);
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        (code, text(out), text(err))
    };
    let allowed = "allow imaging -> pacs tcp/104 by rule #0 at clinic.toml:34\n";
    assert_eq!(
        run(&[]),
        (ExitCode::SUCCESS, allowed.to_owned(), String::new())
    );
    assert_eq!(
        run(&[key.public().to_base64()]),
        (ExitCode::SUCCESS, allowed.to_owned(), String::new())
    );
    let b = bundle.display();
    assert_eq!(
        run(&[other.public().to_base64()]),
        (
            ExitCode::from(2),
            String::new(),
            format!(
                "{b}: error: version 1: signed by key {}, which is not in trusted_keys\n\n\
                 ward: error: policy {b} is invalid\n",
                key.id()
            )
        )
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn diff_reads_and_verifies_bundles() {
    let dir = scratch("diff");
    let (key, other) = (SecretKey::generate(), SecretKey::generate());
    let fixtures = Path::new(DIFF_FIXTURES);
    let (old, new) = (dir.join("old.bundle"), dir.join("new.bundle"));
    sign(&key, 1, &fixtures.join("old.toml"), &old);
    sign(&key, 2, &fixtures.join("new.toml"), &new);
    let run = |keys: &[String]| {
        let mut out = Vec::new();
        let code = policy_diff(&old, &new, false, keys, &mut out).unwrap();
        (code, String::from_utf8(out).unwrap())
    };
    let (code, text) = run(&[key.public().to_base64()]);
    assert_eq!(code, ExitCode::FAILURE);
    assert_eq!(
        text.lines().nth(1),
        Some("  + allow admin -> ehr tcp/8000-8004,8006-8020  [by new.toml:32]")
    );
    assert_eq!(run(&[]).0, ExitCode::FAILURE);
    // Not signed by a trusted key: invalid input, nothing compared.
    assert_eq!(
        run(&[other.public().to_base64()]),
        (ExitCode::from(2), String::new())
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
