//! `ward policy test POLICY TESTS.toml`: flows a policy must allow or deny, checked
//! as `ward explain` decides them, with the rule behind each verdict. `ward policy
//! sign --tests` runs the same tests and signs nothing when one fails.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Deserialize;
use toml::Spanned;

use super::check::write_diagnostics;
use crate::config::line_column;
use crate::policy::{self, Enforcement, ExplainError, Policy};

/// Exit code when a test fails.
const FAILED: u8 = 1;
/// Exit code of bad input: the policy or the test file.
const BAD_INPUT: u8 = 2;

/// A test file: `[[test]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    /// The cases, in file order, each with its span.
    test: Vec<Spanned<Case>>,
}

/// One `[[test]]`: a new flow and the verdict the policy must give it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Source: an address, a CIDR prefix or a zone name.
    from: String,
    /// Destination: an address, a CIDR prefix or a zone name.
    to: String,
    /// `tcp/PORT`, `udp/PORT`, `icmp` or a catalogue name; or `proto` and `port`.
    service: Option<String>,
    /// `tcp`, `udp` or `icmp`, with `port` (not for ICMP), instead of `service`.
    proto: Option<String>,
    /// The destination port with `proto`.
    port: Option<u16>,
    /// `allow` or `deny`.
    expect: Expect,
    /// What the case is about, shown with it.
    description: Option<String>,
}

/// The verdict a case expects.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Expect {
    /// Every port of the service is allowed.
    Allow,
    /// No port of the service is allowed (an audited flow no rule allows counts as
    /// denied: it will be dropped once its zone is enforced).
    Deny,
}

/// Why the tests could not be run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PolicyTestError {
    /// The test file cannot be read.
    #[error("{0}: cannot read: {1}")]
    Read(PathBuf, std::io::Error),
    /// The test file is not a valid test file.
    #[error("{0}:{1}:{2}: error: {3}")]
    Invalid(PathBuf, usize, usize, String),
    /// A case names a flow that cannot be judged.
    #[error("{0}:{1}: error: {2}")]
    Case(PathBuf, usize, String),
    /// The policy is invalid (its diagnostics are printed before).
    #[error("policy {0} is invalid")]
    Policy(PathBuf),
}

/// Runs the tests of `tests` against the policy at `policy` (a file or directory):
/// one line per case on `out`, then a summary. Exits 0 when every case passes, 1 when
/// one fails, 2 on bad input (the error on `err`).
pub fn policy_test(
    policy: &Path,
    tests: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode {
    let result = policy::load(&[policy.to_path_buf()])
        .map_err(|diags| {
            let _ = write_diagnostics(err, &diags);
            PolicyTestError::Policy(policy.to_owned())
        })
        .and_then(|loaded| run_tests(&loaded.policy, tests, out));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(FAILED),
        Err(e) => {
            // Nothing useful is left to do when stderr cannot be written.
            let _ = writeln!(err, "ward: error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

/// Runs the cases of the test file `tests` against `policy`, writing one line per
/// case (`ok` or `FAIL`, the case, then the decision of each port) and a summary;
/// `Ok(true)` when all pass.
pub(crate) fn run_tests(
    policy: &Policy,
    tests: &Path,
    out: &mut dyn Write,
) -> Result<bool, PolicyTestError> {
    let text =
        std::fs::read_to_string(tests).map_err(|e| PolicyTestError::Read(tests.to_owned(), e))?;
    let file: TestFile = toml::from_str(&text).map_err(|e| {
        let (line, column) = line_column(&text, e.span().map_or(0, |s| s.start));
        PolicyTestError::Invalid(tests.to_owned(), line, column, e.message().to_owned())
    })?;
    let mut failed = 0;
    for case in &file.test {
        let line = line_column(&text, case.span().start).0;
        let bad = |message: String| PolicyTestError::Case(tests.to_owned(), line, message);
        let explained = |e: ExplainError| bad(e.to_string());
        let case = case.get_ref();
        let service = service(case).map_err(bad)?;
        let mut decisions = Vec::new();
        for s in policy::services(&service).map_err(explained)? {
            let d = policy.decide(&case.from, &case.to, s, &Enforcement::default());
            decisions.push(d.map_err(explained)?);
        }
        let allowed = |d: &policy::Decision| matches!(d.cause, policy::Cause::Rule(..));
        let pass = match case.expect {
            Expect::Allow => decisions.iter().all(allowed),
            Expect::Deny => !decisions.iter().any(allowed),
        };
        failed += usize::from(!pass);
        let expect = match case.expect {
            Expect::Allow => "allow",
            Expect::Deny => "deny",
        };
        let status = if pass { "ok  " } else { "FAIL" };
        let about = case
            .description
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let (from, to) = (&case.from, &case.to);
        writeln!(
            out,
            "{status} {}:{line}: expect {expect} {from} -> {to} {service}{about}",
            tests.display()
        )
        .ok();
        for d in &decisions {
            writeln!(out, "       {d}").ok();
        }
    }
    let total = file.test.len();
    writeln!(out, "{} passed, {failed} failed", total - failed).ok();
    Ok(failed == 0)
}

/// The service a case names: `service`, or `proto` with `port`.
fn service(case: &Case) -> Result<String, String> {
    match (&case.service, &case.proto, case.port) {
        (Some(s), None, None) => Ok(s.clone()),
        (None, Some(p), None) if p.eq_ignore_ascii_case("icmp") => Ok(p.clone()),
        (None, Some(p), Some(port)) => Ok(format!("{p}/{port}")),
        _ => {
            Err("a test names its flow's service with `service`, or with `proto` and `port`".into())
        }
    }
}
