//! Signed bundles of the clinic policy for the fleet tests: the network team's key
//! pair, and a bundle (with reserved files such as `quarantine.toml` or
//! `breakglass.toml` beside the policy) signed and deployed atomically.
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
};

use super::{cli::ward, gateway::clinic_policy, run::Run};

/// The network team's key pair: `(secret key path, public key line)`.
pub fn keygen(dir: &Path) -> (PathBuf, String) {
    let prefix = dir.join("network");
    ward(&[
        OsStr::new("policy"),
        OsStr::new("keygen"),
        OsStr::new("--out"),
        prefix.as_os_str(),
    ]);
    let public = std::fs::read_to_string(dir.join("network.pub")).expect("public key");
    (dir.join("network.key"), public.trim().to_owned())
}

/// Signs `files` (`(file name, text)`) as bundle `version` in `dir`; the bundle's path.
/// `ward policy sign` must name every file it signed.
pub fn sign(dir: &Path, key: &Path, version: u64, files: &[(&str, &str)]) -> PathBuf {
    let src = dir.join(format!("src-{version}"));
    std::fs::create_dir_all(&src).expect("source dir");
    for (name, text) in files {
        std::fs::write(src.join(name), text).expect("bundle source file");
    }
    let out = dir.join(format!("v{version}.bundle"));
    let said = ward(&[
        OsStr::new("policy"),
        OsStr::new("sign"),
        OsStr::new("--key"),
        key.as_os_str(),
        OsStr::new("--version"),
        OsStr::new(&version.to_string()),
        src.as_os_str(),
        OsStr::new("-o"),
        out.as_os_str(),
    ]);
    let mut names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    let listed = format!("({})", names.join(", "));
    assert!(said.contains(&listed), "{said}");
    out
}

/// Signs the clinic policy and `reserved` (`(file name, text)`) beside it as
/// `version`; deploys the bundle into `policy_dir` atomically.
pub fn sign_and_deploy(
    run: &Run,
    key: &Path,
    version: u64,
    reserved: &[(&str, &str)],
    policy_dir: &Path,
) {
    let clinic = std::fs::read_to_string(clinic_policy()).expect("clinic.toml");
    let mut files = vec![("clinic.toml", clinic.as_str())];
    files.extend_from_slice(reserved);
    let out = sign(run.dir(), key, version, &files);
    let incoming = policy_dir.join(".incoming");
    std::fs::copy(&out, &incoming).expect("copy bundle");
    std::fs::rename(&incoming, policy_dir.join("policy.bundle")).expect("rename bundle");
}

/// The agent settings that require bundles signed by `public`, with its state in `run`.
pub fn requiring(run: &Run, public: &str) -> String {
    run.settings(&format!(
        "require_signature = true\ntrusted_keys = [\"{public}\"]\nstate_dir = {:?}\n",
        run.dir().join("state").display().to_string()
    ))
}
