//! The plain-language form of a [`PolicyDiff`], meant to be pasted into a change request.
use std::fmt;

use super::{
    AccessChange, Change, Direction, FlowChange, PolicyDiff, PrefixChange, PrefixChangeKind,
};
use crate::policy::{Mode, PortRange, Protocol};

/// Sections `Flows`, `Zones`, `Prefixes` (each only when not empty) and a summary line.
impl fmt::Display for PolicyDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.flows.is_empty() {
            writeln!(f, "Flows (+ newly allowed, - newly denied):")?;
            for flow in &self.flows {
                writeln!(f, "  {flow}")?;
            }
        }
        let z = &self.zones;
        if !(z.added.is_empty() && z.removed.is_empty() && z.modes.is_empty()) {
            writeln!(f, "Zones:")?;
            for name in &z.added {
                writeln!(f, "  + zone {name} added")?;
            }
            for name in &z.removed {
                writeln!(f, "  - zone {name} removed")?;
            }
            for m in &z.modes {
                let effect = match m.new {
                    Mode::Audit => "flows to or from it that no rule allows are now only logged",
                    Mode::Enforce => "flows to or from it that no rule allows are now dropped",
                };
                writeln!(
                    f,
                    "  ~ zone {}: mode {} -> {} ({effect})",
                    m.zone,
                    m.old.name(),
                    m.new.name()
                )?;
            }
        }
        if !z.prefixes.is_empty() {
            writeln!(f, "Prefixes (what changes for their addresses):")?;
            for p in &z.prefixes {
                write!(f, "{p}")?;
            }
        }
        summary(self, f)
    }
}

/// `+ allow a -> b tcp/104,11112 (dicom)  [by new.toml:12]` or
/// `- deny a -> b udp/53  [was allowed by old.toml:8]`.
impl fmt::Display for FlowChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, verdict, by) = match self.change {
            Change::Allow => ('+', "allow", "by"),
            Change::Deny => ('-', "deny ", "was allowed by"),
        };
        write!(
            f,
            "{sign} {verdict} {} -> {} {}",
            self.from,
            self.to,
            service(self.protocol, &self.ports)
        )?;
        if !self.services.is_empty() {
            write!(f, " ({})", self.services.join(", "))?;
        }
        let rules: Vec<String> = self
            .rules
            .iter()
            .map(|r| format!("{}:{}", r.file.display(), r.line))
            .collect();
        write!(f, "  [{by} {}]", rules.join(", "))
    }
}

/// The prefix line and one indented line per access change.
impl fmt::Display for PrefixChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (old, new) = (&self.old_zone, &self.new_zone);
        match self.change {
            PrefixChangeKind::Added => writeln!(
                f,
                "  + {} added to {new} (its addresses were in {old})",
                self.prefix
            )?,
            PrefixChangeKind::Removed => writeln!(
                f,
                "  - {} removed from {old} (its addresses are now in {new})",
                self.prefix
            )?,
            PrefixChangeKind::Moved => {
                writeln!(f, "  ~ {} moved from {old} to {new}", self.prefix)?
            }
        }
        if self.access.is_empty() {
            return writeln!(f, "      (no change in what its addresses may do)");
        }
        for a in &self.access {
            writeln!(f, "      {a}")?;
        }
        Ok(())
    }
}

/// `+ can now open tcp/443 to ehr`, `- can no longer be reached from admin on tcp/22`.
impl fmt::Display for AccessChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, when) = match self.change {
            Change::Allow => ('+', "now"),
            Change::Deny => ('-', "no longer"),
        };
        let what = service(self.protocol, &self.ports);
        match self.direction {
            Direction::Out => write!(f, "{sign} can {when} open {what} to {}", self.peer),
            Direction::In => write!(
                f,
                "{sign} can {when} be reached from {} on {what}",
                self.peer
            ),
        }
    }
}

/// `tcp/104,11112-11115`, `udp/53` or `icmp`.
fn service(protocol: Protocol, ports: &[PortRange]) -> String {
    let ports: Vec<String> = ports.iter().map(ToString::to_string).collect();
    match protocol.has_ports() {
        true => format!("{protocol}/{}", ports.join(",")),
        false => protocol.name().to_owned(),
    }
}

/// The last line: counts, or that nothing allowed differs.
fn summary(d: &PolicyDiff, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if !d.changed {
        return writeln!(f, "No difference in what the policies allow.");
    }
    let count = |change| d.flows.iter().filter(|c| c.change == change).count();
    let z = &d.zones;
    let prefixes = match z.prefixes.len() {
        1 => "1 prefix".to_owned(),
        n => format!("{n} prefixes"),
    };
    writeln!(
        f,
        "Summary: {} newly allowed, {} newly denied; zones: {} added, {} removed, {} changing mode; {prefixes} changed.",
        count(Change::Allow),
        count(Change::Deny),
        z.added.len(),
        z.removed.len(),
        z.modes.len(),
    )
}
