//! `ward check`: validate a policy and report every problem.
use std::path::PathBuf;
use std::process::ExitCode;

use crate::policy::{self, Diagnostic, Severity};

/// Checks the policy made of all `paths` (merged in order). Prints errors and warnings
/// to stderr as `file:line:col: error: message` and a one-line summary to stdout.
/// Exits 0 when there is no error (warnings do not fail), 1 otherwise.
pub fn check(paths: &[PathBuf]) -> ExitCode {
    match policy::load(paths) {
        Ok(loaded) => {
            print_diagnostics(&loaded.warnings);
            let (p, c) = (&loaded.policy, &loaded.compiled);
            println!(
                "policy OK: {}, {}, {} ({}sha256 {}…)",
                plural(p.zones.len(), "zone"),
                plural(p.rules.len(), "rule"),
                plural(p.cidr_count(), "CIDR"),
                warnings_note(loaded.warnings.len()),
                c.hash.get(..12).unwrap_or(&c.hash),
            );
            ExitCode::SUCCESS
        }
        Err(diags) => {
            print_diagnostics(&diags);
            let errors = diags
                .iter()
                .filter(|d| d.severity == Severity::Error)
                .count();
            println!("policy invalid: {}", plural(errors, "error"));
            ExitCode::FAILURE
        }
    }
}

/// Prints diagnostics to stderr, one a line.
pub(crate) fn print_diagnostics(diags: &[Diagnostic]) {
    for d in diags {
        eprintln!("{d}");
    }
}

fn warnings_note(n: usize) -> String {
    if n == 0 {
        String::new()
    } else {
        format!("{}, ", plural(n, "warning"))
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}
