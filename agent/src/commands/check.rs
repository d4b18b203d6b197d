//! `ward check`: validate a policy and report every problem.
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;

use crate::policy::{self, Diagnostic, Severity};

/// Version of the `ward check --format json` document; bumped on any incompatible change.
const CHECK_FORMAT: u32 = 1;

/// How `ward check` reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Warnings fail the check as errors do (exit 1).
    pub strict: bool,
    /// Print one JSON document on stdout instead of text.
    pub json: bool,
}

/// Checks the policy made of all `paths` (merged in order). As text: every error and
/// warning on stderr with its offending line, then a one-line summary on stdout; as
/// JSON: one document on stdout (`docs/policy-review.md`). Exits 0 when there is no
/// error (and, with `strict`, no warning), 1 otherwise.
pub fn check(paths: &[PathBuf], options: CheckOptions) -> ExitCode {
    let (out, err) = (io::stdout(), io::stderr());
    let result = check_to(paths, options, &mut out.lock(), &mut err.lock());
    result.unwrap_or(ExitCode::FAILURE)
}

/// [`check`], writing to `out` and `err`.
pub(crate) fn check_to(
    paths: &[PathBuf],
    options: CheckOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let (diags, loaded) = match policy::load(paths) {
        Ok(loaded) => (loaded.warnings.clone(), Some(loaded)),
        Err(diags) => (diags, None),
    };
    let errors = diags
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diags.len() - errors;
    let valid = loaded.is_some() && !(options.strict && warnings > 0);
    if options.json {
        let report = Report {
            format: CHECK_FORMAT,
            valid,
            errors,
            warnings,
            sha256: loaded.as_ref().map(|l| l.compiled.hash.as_str()),
            diagnostics: diags.iter().map(JsonDiagnostic::from).collect(),
        };
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        write_diagnostics(err, &diags)?;
        match &loaded {
            Some(loaded) if valid => {
                let (p, c) = (&loaded.policy, &loaded.compiled);
                writeln!(
                    out,
                    "policy OK: {}, {}, {} ({}sha256 {}…)",
                    plural(p.zones.len(), "zone"),
                    plural(p.rules.len(), "rule"),
                    plural(p.cidr_count(), "CIDR"),
                    warnings_note(warnings),
                    c.hash.get(..12).unwrap_or(&c.hash),
                )?;
            }
            Some(_) => writeln!(
                out,
                "policy invalid: {} (--strict)",
                plural(warnings, "warning")
            )?,
            None => writeln!(out, "policy invalid: {}", plural(errors, "error"))?,
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The `ward check --format json` document.
#[derive(Serialize)]
struct Report<'a> {
    format: u32,
    valid: bool,
    errors: usize,
    warnings: usize,
    sha256: Option<&'a str>,
    diagnostics: Vec<JsonDiagnostic<'a>>,
}

/// One diagnostic in the JSON document; `line` and `column` are null for a whole file.
#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    severity: String,
    file: String,
    line: Option<usize>,
    column: Option<usize>,
    message: &'a str,
}

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(d: &'a Diagnostic) -> Self {
        let place = |n: usize| (d.origin.line > 0).then_some(n);
        JsonDiagnostic {
            severity: d.severity.to_string(),
            file: d.origin.file.display().to_string(),
            line: place(d.origin.line),
            column: place(d.origin.column),
            message: &d.message,
        }
    }
}

/// Prints diagnostics to stderr, each with its offending line when known.
pub(crate) fn print_diagnostics(diags: &[Diagnostic]) {
    // Nothing useful is left to do when stderr cannot be written.
    let _ = write_diagnostics(&mut io::stderr().lock(), diags);
}

/// Writes diagnostics, each rendered with its offending line, a blank line between two.
fn write_diagnostics(w: &mut dyn Write, diags: &[Diagnostic]) -> io::Result<()> {
    for d in diags {
        writeln!(w, "{}\n", d.render())?;
    }
    Ok(())
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
