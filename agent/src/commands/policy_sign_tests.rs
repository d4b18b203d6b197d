//! `ward policy sign` and `verify` with the fleet break-glass list beside the policy:
//! signed with it when valid (its warnings printed and signed over), nothing signed
//! when it is invalid for the policy beside it.
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use super::{sign, verify, SignOptions};
use crate::distribution::SecretKey;

const CLINIC: &str = include_str!("../../../policies/clinic.toml");

/// A fresh scratch directory holding the clinic policy and `breakglass` as
/// `breakglass.toml`, and a key; `(directory, key file, public key)`.
fn scratch(name: &str, breakglass: &str) -> (PathBuf, PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("ward-sign-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("clinic.toml"), CLINIC).unwrap();
    std::fs::write(src.join("breakglass.toml"), breakglass).unwrap();
    let key = SecretKey::generate();
    let (secret, _) = key.write(&dir.join("k")).unwrap();
    (dir, secret, key.public().to_base64())
}

const GRANT: &str = "[[breakglass]]\nfrom = \"imaging\"\nto = \"billing\"\nservice = \"https\"\nreason = \"INC-1\"\nauthor = \"netsec\"\nexpires = 2099-01-01T00:00:00Z\n";

/// `ward policy sign` of `dir/src` into `dir/b.bundle`: the outcome, stdout, stderr.
fn sign_scratch(dir: &Path, key: &Path) -> (anyhow::Result<ExitCode>, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = sign(
        key,
        options(),
        &dir.join("src"),
        &dir.join("b.bundle"),
        &mut out,
        &mut err,
    );
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (outcome, text(out), text(err))
}

fn options() -> SignOptions<'static> {
    SignOptions {
        tests: None,
        version: Some(3),
        strict: false,
    }
}

#[test]
fn a_valid_breakglass_toml_is_signed_and_verified_beside_the_policy() {
    let past = GRANT.replace("billing", "ehr").replace("2099", "2001");
    let (dir, key, public) = scratch("valid", &format!("{GRANT}{past}"));
    let bundle = dir.join("b.bundle");
    let (code, out, err) = sign_scratch(&dir, &key);
    assert_eq!(code.unwrap(), ExitCode::SUCCESS);
    assert!(out.contains("(breakglass.toml, clinic.toml)"), "{out}");
    assert!(
        err.contains("breakglass.toml:14:11: warning: expires: 2001-01-01T00:00:00Z has passed: the grant is left out"),
        "{err}"
    );
    assert!(err.contains("signing over 1 warning(s)"), "{err}");
    let mut out = Vec::new();
    assert_eq!(
        verify(&[public], &bundle, &mut out).unwrap(),
        ExitCode::SUCCESS
    );
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("files breakglass.toml, clinic.toml"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_invalid_breakglass_toml_signs_nothing() {
    let (dir, key, _) = scratch("invalid", &GRANT.replace("\"imaging\"", "\"imagin\""));
    let bundle = dir.join("b.bundle");
    let (outcome, _, _) = sign_scratch(&dir, &key);
    let refused = outcome.expect_err("refused");
    assert_eq!(
        refused.to_string(),
        format!(
            "{}: breakglass.toml is invalid; nothing was signed",
            dir.join("src").display()
        )
    );
    assert!(!bundle.exists(), "a bundle was written");
    let _ = std::fs::remove_dir_all(&dir);
}
