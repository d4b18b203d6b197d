//! `ward quarantine` and `ward release`: the manual side of the automatic response.
use std::{io::Write, net::IpAddr, path::Path, process::ExitCode, time::Duration};

use anyhow::Context as _;

use crate::{control::Client, dataplane::QuarantineEntry};

/// Quarantines `ip` for `ttl` (until released when `None`) and prints the entry.
pub fn quarantine(
    socket: &Path,
    ip: &str,
    ttl: Option<Duration>,
    reason: &str,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let ip = address(ip)?;
    anyhow::ensure!(
        !reason.trim().is_empty(),
        "--reason must say why the host is quarantined"
    );
    let entry = Client::new(socket).quarantine(ip, ttl, reason)?;
    let (ip, rest) = describe(&entry);
    writeln!(out, "quarantined {ip} {rest}")?;
    Ok(ExitCode::SUCCESS)
}

/// Ends the quarantine of `ip` and prints what it was.
pub fn release(socket: &Path, ip: &str, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let entry = Client::new(socket).release(address(ip)?)?;
    let (ip, rest) = describe(&entry);
    writeln!(out, "released {ip} {rest}")?;
    Ok(ExitCode::SUCCESS)
}

/// Lists the quarantined hosts, one per line: the address, then where the quarantine
/// was set (`local`, or `fleet` for the signed bundle's list).
pub fn list_quarantines(socket: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let entries = Client::new(socket).quarantines()?;
    if entries.is_empty() {
        writeln!(out, "no host is quarantined")?;
    }
    for entry in &entries {
        let (ip, rest) = describe(entry);
        writeln!(out, "{ip} {:<5} {rest}", entry.source())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn address(text: &str) -> anyhow::Result<IpAddr> {
    text.trim()
        .parse()
        .with_context(|| format!("`{text}` is not an IPv4 or IPv6 address"))
}

/// The address, and the rest of the entry: since, until, by whom, why.
fn describe(e: &QuarantineEntry) -> (IpAddr, String) {
    let until = e.expires.map_or_else(
        || "until released".to_owned(),
        |t| format!("until {}", humantime::format_rfc3339_seconds(t)),
    );
    let by = match &e.fleet {
        Some(f) if f.author.is_empty() => format!("signed bundle version {}", f.version),
        Some(f) => match &f.cidr {
            Some(net) => format!(
                "signed bundle version {} (author {}, in {net})",
                f.version, f.author
            ),
            None => format!("signed bundle version {} (author {})", f.version, f.author),
        },
        None => e.by.clone(),
    };
    let since = humantime::format_rfc3339_seconds(e.since);
    (e.ip, format!("since {since} {until} by {by}: {}", e.reason))
}
