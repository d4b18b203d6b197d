//! `ward explain`: the verdict on one flow, in the kernel's order of checks, and what
//! decided it; the exit code says the verdict.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::check::write_diagnostics;
use super::policy_input::load_policy;
use crate::config::{AgentConfig, ConfigError};
use crate::control::{Client, ControlError};
use crate::policy::{self, Enforcement, ExplainError};

/// Exit code of a flow that passes (`allow`, or `audit`: passed and logged).
const PASSES: u8 = 0;
/// Exit code of a flow that is dropped (for a service name: any of its ports).
const DENIED: u8 = 1;
/// Exit code of bad input: arguments, the policy or the configuration.
const BAD_INPUT: u8 = 2;

/// What `ward explain` judges, and under which policy and configuration.
#[derive(Clone, Copy, Debug)]
pub struct ExplainArgs<'a> {
    /// Policy file or directory, or a signed bundle; default: the `policy` of `config`.
    pub policy: Option<&'a Path>,
    /// Agent configuration whose agent-wide mode and `[failsafe]` apply.
    pub config: Option<&'a Path>,
    /// `--trusted-key`: verify a signed bundle policy with these keys first.
    pub trusted_keys: &'a [String],
    /// Ask the running agent at this control socket instead (`--live`): its policy in
    /// force, configuration, quarantines and break-glass grants decide.
    pub live: Option<&'a Path>,
    /// Source: an address, a CIDR prefix or a zone name.
    pub from: &'a str,
    /// Destination: an address, a CIDR prefix or a zone name.
    pub to: &'a str,
    /// `tcp/PORT`, `udp/PORT`, `icmp` or a name of `ward policy services`.
    pub service: &'a str,
}

/// Why `ward explain` could not judge the flow.
#[derive(Debug, thiserror::Error)]
enum ExplainInputError {
    /// Neither `--policy` nor `--config` says where the policy is.
    #[error("give --policy, or --config with a `policy`")]
    NoPolicy,
    /// The agent configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The policy is invalid (its diagnostics are printed before).
    #[error("policy {0} is invalid")]
    Policy(PathBuf),
    /// An endpoint or the service is not understood.
    #[error(transparent)]
    Flow(#[from] ExplainError),
    /// The running agent could not be asked, or refused the question.
    #[error(transparent)]
    Live(#[from] ControlError),
}

/// Explains the flow `args` names: one line per service port, starting with its
/// verdict (`allow`, `deny` or `audit`), e.g.
/// `allow imaging -> pacs tcp/104 by rule #0 at policies/clinic.toml:33`. Exits 0 when
/// every port passes, 1 when one is denied, 2 on bad input (the error on `err`).
pub fn explain(args: &ExplainArgs<'_>, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    match decide(args, out, err) {
        Ok(true) => ExitCode::from(PASSES),
        Ok(false) => ExitCode::from(DENIED),
        Err(e) => {
            // Nothing useful is left to do when stderr cannot be written.
            let _ = writeln!(err, "ward: error: {e}");
            ExitCode::from(BAD_INPUT)
        }
    }
}

/// Writes the decisions; `true` when every one passes.
fn decide(
    args: &ExplainArgs<'_>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<bool, ExplainInputError> {
    if let Some(socket) = args.live {
        let lines = Client::new(socket).explain(args.from, args.to, args.service)?;
        for line in &lines {
            // A closed stdout changes nothing in the verdict.
            let _ = writeln!(out, "{}", line.line);
        }
        return Ok(lines.iter().all(|l| l.passes));
    }
    let config = args.config.map(AgentConfig::load).transpose()?;
    let path = match (args.policy, &config) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(c)) => c.policy.clone(),
        (None, None) => return Err(ExplainInputError::NoPolicy),
    };
    let loaded = load_policy(std::slice::from_ref(&path), args.trusted_keys).map_err(|diags| {
        let _ = write_diagnostics(err, &diags);
        ExplainInputError::Policy(path.clone())
    })?;
    let enforcement = config.map_or_else(Enforcement::default, |c| c.enforcement());
    let decisions = (loaded.policy).decide_all(args.from, args.to, args.service, &enforcement)?;
    for decision in &decisions {
        // A closed stdout changes nothing in the verdict.
        let _ = writeln!(out, "{decision}");
    }
    Ok(decisions.iter().all(policy::Decision::passes))
}
