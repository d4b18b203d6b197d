//! `ward status`: the running agent's state, asked over the control socket.
use std::{io::Write, path::Path, process::ExitCode, time::SystemTime};

use crate::{
    control::{Client, StatusReply},
    distribution::DistributionStatus,
};

/// Prints the daemon's state to `out`: a readable summary, or with `json` the JSON
/// answer, its times as RFC 3339 strings.
pub fn status(socket: &Path, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let reply = Client::new(socket).status()?;
    if json {
        let mut value = serde_json::to_value(&reply)?;
        super::status_json::times_as_rfc3339(&mut value);
        serde_json::to_writer(&mut *out, &value)?;
        writeln!(out)?;
    } else {
        write_summary(out, &reply)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_summary(out: &mut dyn Write, reply: &StatusReply) -> std::io::Result<()> {
    let s = &reply.status;
    for warning in &reply.warnings {
        writeln!(out, "WARNING     {warning}")?;
    }
    writeln!(out, "role        {}", s.role.name())?;
    writeln!(out, "mode        {}", s.mode.name())?;
    let mut interfaces: Vec<&str> = Vec::new();
    for hook in &s.hooks {
        if !interfaces.contains(&hook.interface.as_str()) {
            interfaces.push(&hook.interface);
        }
    }
    for (i, interface) in interfaces.iter().enumerate() {
        let hooks: Vec<String> = s
            .hooks
            .iter()
            .filter(|h| h.interface == *interface)
            .map(|h| match h.attached {
                true => format!("{} attached", h.hook),
                false => format!("{} NOT attached", h.hook),
            })
            .collect();
        let label = if i == 0 { "interfaces" } else { "" };
        writeln!(out, "{label:<10}  {interface}: {}", hooks.join(", "))?;
    }
    for (i, refused) in s.watch.refused.iter().enumerate() {
        let label = if i == 0 && interfaces.is_empty() {
            "interfaces"
        } else {
            ""
        };
        writeln!(
            out,
            "{label:<10}  {}: REFUSED, {}",
            refused.interface, refused.reason
        )?;
    }
    writeln!(
        out,
        "tamper      {} hooks found detached or replaced since the start (alerts in the event log)",
        s.watch.tamper_total
    )?;
    writeln!(out, "policy      {}", s.policy_path.display())?;
    match s.current() {
        Some(p) => writeln!(
            out,
            "            generation {}, hash {}, loaded {}",
            s.generation,
            short_hash(&p.hash),
            s.loaded_at.map_or("-".into(), rfc3339)
        )?,
        None => writeln!(out, "            none loaded yet")?,
    }
    write_distribution(out, &s.distribution)?;
    for fault in &s.faults {
        writeln!(
            out,
            "FAULT       {} since {} ({} times): {}",
            fault.area.name(),
            rfc3339(fault.since),
            fault.count,
            fault.message
        )?;
    }
    if let Some(p) = &s.pending_confirmation {
        writeln!(
            out,
            "            AWAITS CONFIRMATION: generation {} is rolled back to policy {} at {} \
             unless `ward confirm` comes first",
            p.generation,
            short_hash(&p.rollback_to),
            rfc3339(p.deadline)
        )?;
    }
    if let Some(r) = &s.last_rollback {
        writeln!(
            out,
            "rollbacks   {}; last at {}: policy {} ({}), generation {} is policy {} again",
            s.rollbacks_total,
            rfc3339(r.at),
            short_hash(&r.unconfirmed),
            r.reason,
            r.generation,
            short_hash(&r.hash)
        )?;
    }
    let f = &s.failsafe;
    if f.is_active() {
        let ports: Vec<String> = f.tcp_ports.iter().map(|p| format!("tcp/{p}")).collect();
        let from: Vec<String> = f.management.iter().map(ToString::to_string).collect();
        writeln!(
            out,
            "failsafe    {} from {} (always allowed, ahead of quarantine and policy)",
            ports.join(", "),
            from.join(", ")
        )?;
    } else {
        writeln!(
            out,
            "failsafe    none ([failsafe] management lists no prefix)"
        )?;
    }
    for grant in &s.breakglass {
        writeln!(out, "BREAK-GLASS {}", super::breakglass::listed(grant))?;
    }
    for refused in &s.breakglass_refused {
        writeln!(out, "BREAK-GLASS fleet {refused}")?;
    }
    writeln!(out, "started     {}", rfc3339(s.started_at))?;
    // A refusal followed by a successful reload is history: the JSON still has it.
    let refused = s
        .last_reload_error
        .as_ref()
        .filter(|failure| s.last_reload_ok.is_none_or(|ok| ok < failure.at));
    if let Some(failure) = refused {
        let error = failure.error.replace('\n', "\n              ");
        writeln!(
            out,
            "last reload refused at {}:\n              {error}",
            rfc3339(failure.at)
        )?;
    }
    let r = &s.response;
    writeln!(
        out,
        "quarantine  {} hosts now; set {} automatically, {} by hand; {} ended; {} exempt alerts; {} over the rate limit",
        r.quarantined,
        r.auto_quarantines_total,
        r.manual_quarantines_total,
        r.releases_total,
        r.exempt_alerts_total,
        r.limited_alerts_total
    )?;
    if let Some(version) = r.fleet_version {
        writeln!(
            out,
            "fleet       {} of them from quarantine.toml of signed bundle version {version} ({} set since start); {} local",
            r.fleet_quarantined,
            r.fleet_quarantines_total,
            r.quarantined.saturating_sub(r.fleet_quarantined)
        )?;
    }
    match (&reply.counters, &reply.counters_error) {
        (Some(c), _) => {
            writeln!(
                out,
                "packets     allowed {}  denied {}  audited {}",
                c.allowed_packets, c.denied_packets, c.audited_packets
            )?;
            writeln!(
                out,
                "events      emitted {}  suppressed {}  lost {}  skipped by scan detection {}",
                c.events_emitted, c.events_suppressed, c.events_lost, r.detector_skipped_total
            )?;
            writeln!(
                out,
                "conntrack   {} of {} entries",
                c.conntrack_entries, c.conntrack_capacity
            )
        }
        (None, error) => writeln!(
            out,
            "counters    unavailable: {}",
            error.as_deref().unwrap_or("?")
        ),
    }?;
    if let Some(sink) = &s.event_sink {
        let state = if sink.connected {
            "connected"
        } else {
            "NOT connected"
        };
        writeln!(
            out,
            "sink        {}: {state}; sent {}  dropped {}  lost {}",
            sink.url, sink.sent_total, sink.dropped_total, sink.lost_total
        )?;
    }
    Ok(())
}

/// The signed bundle in force, the keys trusted and `policy_url` (nothing when the
/// policy is unsigned and signatures are not required).
fn write_distribution(out: &mut dyn Write, d: &DistributionStatus) -> std::io::Result<()> {
    if let Some(b) = &d.bundle {
        writeln!(
            out,
            "            bundle version {} signed by key {}, sha256 {} ({})",
            b.version,
            b.key_id,
            short_hash(&b.digest),
            b.files.join(", ")
        )?;
    }
    if d.require_signature || d.bundle.is_some() {
        let floor = d.highest_version.map_or("none".into(), |v| v.to_string());
        writeln!(
            out,
            "            signature {}; trusted keys {}; highest version applied {floor}",
            if d.require_signature {
                "required"
            } else {
                "checked on bundles"
            },
            d.trusted_keys.join(", ")
        )?;
    }
    if let Some(f) = &d.fetch {
        writeln!(
            out,
            "            from {}: {} at {}, ETag {}",
            f.url,
            f.last_result,
            f.last_attempt.map_or("-".into(), rfc3339),
            f.etag.as_deref().unwrap_or("none")
        )?;
    }
    Ok(())
}

/// The first 12 hex digits of a policy hash.
pub(super) fn short_hash(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// RFC 3339, UTC, to the second.
pub(super) fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
