//! `ward reload`, `ward apply` and `ward confirm`: change the policy in force now.
use std::{io::Write, path::Path, process::ExitCode, time::Duration};

use super::status::{rfc3339, short_hash};
use crate::control::Client;

/// Asks for a reload and prints the outcome to `out`: success when the policy on disk
/// is in force (`reloaded:`, `unchanged:`, or `awaits confirmation:` when it is already
/// in force and awaits confirmation), failure when it was refused (by the checker, or
/// by the lock-out preflight unless `force`). With `confirm_within` (`ward apply
/// --confirm-within`), the policy is rolled back unless `ward confirm` (or the agent's
/// confirm probe) arrives in time.
pub fn reload(
    socket: &Path,
    confirm_within: Option<Duration>,
    force: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let outcome = Client::new(socket).reload(confirm_within, force)?;
    let state = format!(
        "generation {} policy {}",
        outcome.generation,
        short_hash(&outcome.hash)
    );
    let verb = match (outcome.ok, outcome.changed, outcome.confirm_by) {
        (false, _, _) => "refused: the policy in force stays",
        (true, true, _) => "reloaded:",
        (true, false, Some(_)) => "awaits confirmation:",
        (true, false, None) => "unchanged:",
    };
    writeln!(out, "{verb} {state}")?;
    for message in &outcome.messages {
        writeln!(out, "  {message}")?;
    }
    if let Some(deadline) = outcome.confirm_by {
        writeln!(
            out,
            "  run `ward confirm` before {}, or the previous policy comes back",
            rfc3339(deadline)
        )?;
    }
    Ok(if outcome.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Confirms the policy awaiting confirmation and prints its generation.
pub fn confirm(socket: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let generation = Client::new(socket).confirm()?;
    writeln!(out, "confirmed: generation {generation} stays in force")?;
    Ok(ExitCode::SUCCESS)
}
