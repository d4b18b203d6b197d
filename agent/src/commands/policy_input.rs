//! The policy a command reads (`ward check`, `ward explain --policy`, `ward policy
//! diff`): TOML files and directories, or a signed bundle, recognised as the agent
//! recognises its `policy` (a `*.bundle` file, or a directory holding
//! `policy.bundle`) and verified first when trusted keys are given.
use std::path::{Path, PathBuf};

use crate::distribution::{bundle_path, policy_texts, Bundle, TrustedKey};
use crate::policy::{self, Diagnostic, Loaded, Origin};

/// Loads the policy made of `paths`. A bundle must be the only path; with `keys`
/// (`--trusted-key`: base64 lines or files holding one) its signature is verified
/// before anything in it is read, and keys given for TOML files are an error (nothing
/// would be verified). Every problem is a diagnostic naming the file.
pub(crate) fn load_policy(paths: &[PathBuf], keys: &[String]) -> Result<Loaded, Vec<Diagnostic>> {
    let bundles: Vec<PathBuf> = paths.iter().filter_map(|p| bundle_path(p)).collect();
    match bundles.as_slice() {
        [] if keys.is_empty() => policy::load(paths),
        [] => Err(paths
            .iter()
            .map(|p| {
                error(
                    p,
                    "not a signed bundle: --trusted-key verifies bundles only",
                )
            })
            .collect()),
        [bundle] if paths.len() == 1 => load_bundle(bundle, keys),
        _ => Err(bundles
            .iter()
            .map(|b| error(b, "a signed bundle is a whole policy: give it alone"))
            .collect()),
    }
}

/// Reads `path` as a bundle, verifies it with `keys` when some are given, and loads the
/// policy in it (its diagnostics name the bundle's files).
fn load_bundle(path: &Path, keys: &[String]) -> Result<Loaded, Vec<Diagnostic>> {
    let bundle = Bundle::read(path).map_err(|e| vec![error(path, e.to_string())])?;
    if !keys.is_empty() {
        let trusted = (keys.iter().map(|k| TrustedKey::from_arg(k)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| vec![error(path, format!("--trusted-key: {e}"))])?;
        bundle.verify(&trusted).map_err(|e| {
            let message = format!("version {}: {e}", bundle.version);
            vec![error(path, message)]
        })?;
    }
    policy::load_texts(&policy_texts(&bundle.files))
}

fn error(path: &Path, message: impl Into<String>) -> Diagnostic {
    Diagnostic::error(Origin::file(path), message)
}
