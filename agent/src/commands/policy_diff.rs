//! `ward policy diff`: what a policy change newly allows and newly denies.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::check::print_diagnostics;
use super::policy_input::load_policy;
use crate::policy::{self, Loaded};

/// Exit code when an input policy is invalid.
const INVALID: u8 = 2;

/// Compares the policy at `old` with the one at `new` (each a file, a directory or a
/// signed bundle, verified first with `trusted_keys` when given) and prints the
/// difference to `out`, in plain language or as JSON (`docs/policy-review.md`).
/// The new policy's warnings go to stderr. Exit code: 0 when nothing allowed differs,
/// 1 when something does, 2 when a policy is invalid (its errors are on stderr).
pub fn policy_diff(
    old: &Path,
    new: &Path,
    json: bool,
    trusted_keys: &[String],
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (old, new) = match (load(old, trusted_keys), load(new, trusted_keys)) {
        (Some(old), Some(new)) => (old, new),
        _ => return Ok(ExitCode::from(INVALID)),
    };
    print_diagnostics(&new.warnings);
    let diff = policy::diff(&old, &new);
    if json {
        serde_json::to_writer_pretty(&mut *out, &diff)?;
        writeln!(out)?;
    } else {
        write!(out, "{diff}")?;
    }
    Ok(if diff.changed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Loads one side; on errors prints them and returns `None`.
fn load(path: &Path, trusted_keys: &[String]) -> Option<Loaded> {
    load_policy(&[PathBuf::from(path)], trusted_keys)
        .map_err(|diags| print_diagnostics(&diags))
        .ok()
}
