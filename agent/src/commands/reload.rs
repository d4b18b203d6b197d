//! `ward reload`: ask the daemon to reload its policy now.
use std::{io::Write, path::Path, process::ExitCode};

use super::status::short_hash;
use crate::control::Client;

/// Asks for a reload and prints the outcome to `out`: success when the policy on disk
/// is in force (reloaded or unchanged), failure when it was refused.
pub fn reload(socket: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let outcome = Client::new(socket).reload()?;
    let state = format!(
        "generation {} policy {}",
        outcome.generation,
        short_hash(&outcome.hash)
    );
    let verb = match (outcome.ok, outcome.changed) {
        (false, _) => "refused: the policy in force stays",
        (true, true) => "reloaded:",
        (true, false) => "unchanged:",
    };
    writeln!(out, "{verb} {state}")?;
    for message in &outcome.messages {
        writeln!(out, "  {message}")?;
    }
    Ok(if outcome.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
