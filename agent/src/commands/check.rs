//! `ward check`: validate a policy and report every problem; with the agent
//! configuration, run the lock-out preflight against this host's established sessions.
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use crate::config::{AgentConfig, ConfigError};
use crate::policy::{self, Diagnostic, Origin, Severity};
use crate::preflight::{self, PreflightError, Session};

/// Version of the `ward check --format json` document; bumped on any incompatible change.
const CHECK_FORMAT: u32 = 1;

/// What `ward check` checks besides the policy, and how it reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// Warnings fail the check as errors do (exit 1).
    pub strict: bool,
    /// Print one JSON document on stdout instead of text.
    pub json: bool,
    /// An agent configuration to validate too (parsed only: nothing is started).
    pub config: Option<PathBuf>,
    /// `--trusted-key`: verify a signed bundle with these keys before reading it.
    pub trusted_keys: Vec<String>,
}

/// Checks the policy made of all `paths` (merged in order; or one signed bundle,
/// verified first with `options.trusted_keys` when given), and the agent
/// configuration `options.config` when given (then `paths` may be empty). With both,
/// the lock-out preflight judges this host's established sessions to the management
/// ports under the policy: each one it would cut is an error. As text: every error and
/// warning on stderr with its offending line, then a one-line summary on stdout (and
/// one for the preflight); as JSON: one document on stdout (`docs/policy-review.md`).
/// Exits 0 when there is no error (and, with `strict`, no warning), 1 otherwise.
pub fn check(paths: &[PathBuf], options: &CheckOptions) -> ExitCode {
    let (out, err) = (io::stdout(), io::stderr());
    let result = check_to(paths, options, &mut out.lock(), &mut err.lock());
    result.unwrap_or(ExitCode::FAILURE)
}

/// [`check`], writing to `out` and `err`.
pub(crate) fn check_to(
    paths: &[PathBuf],
    options: &CheckOptions,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    check_with(paths, options, &preflight::established, out, err)
}

/// [`check_to`], the established sessions given by `sessions`.
pub(crate) fn check_with(
    paths: &[PathBuf],
    options: &CheckOptions,
    sessions: &dyn Fn() -> Result<Vec<Session>, PreflightError>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<ExitCode> {
    let mut diags: Vec<Diagnostic> = options.config.iter().flat_map(|c| config(c)).collect();
    let config_ok = diags.is_empty();
    let policy_checked = !paths.is_empty() || options.config.is_none();
    let loaded = if !policy_checked {
        None
    } else {
        match super::policy_input::load_policy(paths, &options.trusted_keys) {
            Ok(loaded) => {
                diags.extend(loaded.warnings.iter().cloned());
                Some(loaded)
            }
            Err(found) => {
                diags.extend(found);
                None
            }
        }
    };
    let lock_out = match (&options.config, &loaded) {
        (Some(config), Some(loaded)) if config_ok && !paths.is_empty() => {
            Some(lock_out(config, &loaded.policy, &paths[0], sessions))
        }
        _ => None,
    };
    let lock_out_ok = lock_out.as_ref().is_none_or(Vec::is_empty);
    let errors = diags
        .iter()
        .chain(lock_out.iter().flatten())
        .filter(|d| d.severity == Severity::Error)
        .count();
    diags.extend(lock_out.iter().flatten().cloned());
    let warnings = diags.len() - errors;
    let loads = loaded.is_some() || !policy_checked;
    let valid = config_ok && loads && lock_out_ok && !(options.strict && warnings > 0);
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
        if let Some(path) = &options.config {
            let verdict = if config_ok { "OK" } else { "invalid" };
            writeln!(out, "config {verdict}: {}", path.display())?;
        }
        if policy_checked {
            let lock_out_errors = lock_out.as_ref().map_or(0, Vec::len);
            let policy_errors = errors - usize::from(!config_ok) - lock_out_errors;
            let strict_warnings = if options.strict { warnings } else { 0 };
            policy_summary(
                out,
                loaded.as_ref(),
                policy_errors,
                warnings,
                strict_warnings,
            )?;
        }
        match lock_out.as_deref() {
            None => {}
            Some([]) => writeln!(
                out,
                "preflight OK: no established session to a management port would be cut"
            )?,
            Some(found) => writeln!(
                out,
                "preflight failed: {} to a management port would be cut",
                plural(found.len(), "established session")
            )?,
        }
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The one-line summary of the policy: `policy OK: …` or `policy invalid: …`, where
/// `strict_warnings` (warnings under `--strict`) make it invalid.
fn policy_summary(
    out: &mut dyn Write,
    loaded: Option<&policy::Loaded>,
    errors: usize,
    warnings: usize,
    strict_warnings: usize,
) -> io::Result<()> {
    match loaded {
        None => writeln!(out, "policy invalid: {}", plural(errors, "error")),
        Some(_) if strict_warnings > 0 => writeln!(
            out,
            "policy invalid: {} (--strict)",
            plural(strict_warnings, "warning")
        ),
        Some(loaded) => {
            let (p, c) = (&loaded.policy, &loaded.compiled);
            writeln!(
                out,
                "policy OK: {}, {}, {} ({}sha256 {}…)",
                plural(p.zones.len(), "zone"),
                plural(p.rules.len(), "rule"),
                plural(p.cidr_count(), "CIDR"),
                warnings_note(warnings),
                c.hash.get(..12).unwrap_or(&c.hash),
            )
        }
    }
}

/// The lock-out preflight of `policy` (read from `origin`) under the configuration at
/// `path` (valid): an error for each established session to a management port it
/// would cut, or for the socket table that cannot be read.
fn lock_out(
    path: &Path,
    policy: &policy::Policy,
    origin: &Path,
    sessions: &dyn Fn() -> Result<Vec<Session>, PreflightError>,
) -> Vec<Diagnostic> {
    let error = |message: String| Diagnostic::error(Origin::file(origin), message);
    let config = match AgentConfig::load(path) {
        Ok(config) => config,
        Err(e) => return vec![error(e.to_string())],
    };
    let sessions = match sessions() {
        Ok(sessions) => sessions,
        Err(e) => return vec![error(format!("the lock-out preflight cannot run: {e}"))],
    };
    let enforcement = config.enforcement();
    let ports = &config.failsafe.tcp_ports;
    preflight::cuts(policy, None, &enforcement, ports, &sessions)
        .iter()
        .map(|cut| {
            error(format!(
                "the policy would cut an established session: {cut}"
            ))
        })
        .collect()
}

/// The error in the agent configuration at `path`, if any, with its line.
fn config(path: &Path) -> Vec<Diagnostic> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            let message = format!("cannot read file: {e}");
            return vec![Diagnostic::error(Origin::file(path), message)];
        }
    };
    match AgentConfig::parse(path, &text) {
        Ok(_) => vec![],
        Err(ConfigError::Several(errors)) => errors
            .into_iter()
            .map(|e| config_diagnostic(path, &text, e))
            .collect(),
        Err(e) => vec![config_diagnostic(path, &text, e)],
    }
}

/// The diagnostic of one configuration error, with its offending line.
fn config_diagnostic(file: &Path, text: &str, e: ConfigError) -> Diagnostic {
    match e {
        ConfigError::Invalid {
            path,
            line,
            column,
            message,
        } => {
            let line_text = text.lines().nth(line.saturating_sub(1)).map(str::to_owned);
            let origin = Origin {
                file: path,
                line,
                column,
            };
            Diagnostic {
                line_text,
                ..Diagnostic::error(origin, message)
            }
        }
        other => Diagnostic::error(Origin::file(file), other.to_string()),
    }
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
pub(crate) fn write_diagnostics(w: &mut dyn Write, diags: &[Diagnostic]) -> io::Result<()> {
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
