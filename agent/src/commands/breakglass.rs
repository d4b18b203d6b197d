//! `ward breakglass`: start, list and end emergency allows on this host.
use std::{io::Write, path::Path, process::ExitCode, time::Duration};

use crate::{
    breakglass::{Grant, GrantRequest},
    control::Client,
};

/// What `ward breakglass` asks for, as given on the command line.
pub struct BreakglassArgs<'a> {
    /// Initiator zone.
    pub from: &'a str,
    /// Responder zone.
    pub to: &'a str,
    /// Catalogue name, `tcp/PORT`, `udp/PORT` or `icmp`.
    pub service: &'a str,
    /// How long.
    pub duration: Duration,
    /// Why.
    pub reason: &'a str,
}

/// Starts a grant and prints it.
pub fn breakglass(
    socket: &Path,
    args: &BreakglassArgs<'_>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let grant = Client::new(socket).breakglass(GrantRequest {
        from: args.from.to_owned(),
        to: args.to.to_owned(),
        service: args.service.to_owned(),
        for_secs: args.duration.as_secs().max(1),
        reason: args.reason.to_owned(),
        operator: operator(),
    })?;
    writeln!(out, "granted {}", describe(&grant))?;
    Ok(ExitCode::SUCCESS)
}

/// Ends grant `id` and prints what it was.
pub fn end_breakglass(socket: &Path, id: u32, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let grant = Client::new(socket).end_breakglass(id, &operator())?;
    writeln!(out, "ended {}", describe(&grant))?;
    Ok(ExitCode::SUCCESS)
}

/// Lists the grants in force, one per line, each with where it was started.
pub fn list_breakglass(socket: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let grants = Client::new(socket).grants()?;
    if grants.is_empty() {
        writeln!(out, "no break-glass grant is in force")?;
    }
    for grant in &grants {
        writeln!(out, "{}", listed(grant))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// [`describe`] after where the grant was started: `local grant 0: …`, `fleet grant 1: …`.
pub fn listed(g: &Grant) -> String {
    format!("{} {}", g.source(), describe(g))
}

/// `grant 0: imaging -> billing https until 2026-11-25T12:00:00Z by alice (uid 0): why`;
/// a fleet grant is `by signed bundle version 7 (author netsec@clinic)`.
pub fn describe(g: &Grant) -> String {
    let by = match &g.fleet {
        Some(f) if f.author.is_empty() => format!("signed bundle version {}", f.version),
        Some(f) => format!("signed bundle version {} (author {})", f.version, f.author),
        None => g.by.clone(),
    };
    format!(
        "{} until {} by {by}: {}",
        g.summary(),
        humantime::format_rfc3339_seconds(g.expires),
        g.reason
    )
}

/// The person behind the request, as the login session names them (the agent adds
/// the uid the kernel reports).
fn operator() -> String {
    ["SUDO_USER", "LOGNAME", "USER"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .unwrap_or_default()
}
