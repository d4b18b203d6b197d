//! Lints: warnings about rules that are valid but risky (errors waiting to happen,
//! which `ward check --strict` turns into failures).
//!
//! Wide open: a rule that lets every source (`any`, or `world`: every address no zone
//! holds) open connections on every TCP or UDP port, to every zone (`to = "any"`) or
//! to one zone. Such a rule segments nothing for that protocol; the message says so
//! louder when the zone opened is a *records zone* (a name suggesting business
//! records, as below).
//!
//! Lateral movement: a rule that lets a zone whose name suggests devices or untrusted
//! hosts (imaging, modalities, guests, IoT, visitors, `world`, `any`) open connections to
//! a zone whose name suggests business records (billing, EHR/EMR, finance, records,
//! payroll). A compromised modality or guest laptop could then reach patient or financial
//! data. Names are matched by case-insensitive substring. A rule that is meant is
//! acknowledged with `reviewed = "reason"`, which silences the warning.
use super::model::{PortRange, Rule, ANY, WORLD};
use super::{Diagnostic, Policy, Protocol, ZoneSet};
use ward_common::WORLD_ZONE;

/// Substrings of the names of zones holding business records.
const SENSITIVE: &[&str] = &["billing", "ehr", "emr", "finance", "records", "payroll"];

/// Substrings of the names of zones of devices or untrusted hosts.
const EXPOSED: &[&str] = &[
    "imaging", "modalit", "guest", "iot", "visitor", "world", "any",
];

/// Whether `name` contains one of `patterns`, ignoring case.
fn looks_like(name: &str, patterns: &[&str]) -> bool {
    let name = name.to_ascii_lowercase();
    patterns.iter().any(|p| name.contains(p))
}

/// A warning for each unreviewed rule letting an exposed zone open connections to a
/// sensitive one.
pub(crate) fn lateral_movement(policy: &Policy) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    let unreviewed = policy.rules.iter().filter(|r| r.reviewed.is_none());
    // A wide-open rule has its own, louder warning.
    for rule in unreviewed.filter(|r| !is_wide_open(r)) {
        // `from = "any"` is judged by its name; `to = "any"` by each zone it opens.
        let from = names(policy, &rule.from, || vec![ANY]);
        let to = names(policy, &rule.to, || {
            std::iter::once(WORLD)
                .chain(policy.zones.iter().map(|z| z.name.as_str()))
                .collect()
        });
        let from: Vec<&str> = from
            .into_iter()
            .filter(|n| looks_like(n, EXPOSED))
            .collect();
        let to: Vec<&str> = to
            .into_iter()
            .filter(|n| looks_like(n, SENSITIVE))
            .collect();
        if from.is_empty() || to.is_empty() {
            continue;
        }
        warnings.push(Diagnostic::warning(
            rule.origin.clone(),
            format!(
                "lateral movement risk: rule lets {} open connections to {}; a compromised \
                 device or guest there could reach business records. If intended, say why \
                 with `reviewed = \"...\"` in the rule",
                quoted(&from),
                quoted(&to)
            ),
        ));
    }
    warnings
}

/// A warning for each unreviewed rule letting every source open connections on every
/// TCP or UDP port (of every zone, or of the zones in `to`).
pub(crate) fn wide_open(policy: &Policy) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    for rule in policy.rules.iter().filter(|r| r.reviewed.is_none()) {
        let (Some(from), protocols) = (every_source(&rule.from), all_ports(rule)) else {
            continue;
        };
        if protocols.is_empty() {
            continue;
        }
        let every: Vec<String> = protocols
            .iter()
            .map(|p| format!("every {p} port"))
            .collect();
        let (to, records) = match &rule.to {
            ZoneSet::Any => ("every zone (`any`)".to_owned(), Vec::new()),
            ZoneSet::Zones(ids) => {
                let names: Vec<&str> = ids.iter().map(|&id| policy.zone_name(id)).collect();
                let records = names
                    .iter()
                    .copied()
                    .filter(|n| looks_like(n, SENSITIVE))
                    .collect();
                (quoted(&names), records)
            }
        };
        let records = match records.as_slice() {
            [] => String::new(),
            [one] => format!("; {} is a records zone", quoted(&[one])),
            many => format!("; {} are records zones", quoted(many)),
        };
        warnings.push(Diagnostic::warning(
            rule.origin.clone(),
            format!(
                "wide open: rule lets {from} open connections to {to} on {}{records}: it \
                 segments nothing there. Narrow `from` or the ports, or if intended say why \
                 with `reviewed = \"...\"` in the rule",
                every.join(" and ")
            ),
        ));
    }
    warnings
}

/// Whether [`wide_open`] flags `rule` (reviewed or not).
fn is_wide_open(rule: &Rule) -> bool {
    every_source(&rule.from).is_some() && !all_ports(rule).is_empty()
}

/// How a rule's `from` is named when it holds every source: `any`, or `world` (every
/// address no zone holds, so every address on the Internet side); `None` otherwise.
fn every_source(from: &ZoneSet) -> Option<&'static str> {
    match from {
        ZoneSet::Any => Some("every source (`any`)"),
        ZoneSet::Zones(ids) if ids.contains(&WORLD_ZONE) => Some("every outside address (`world`)"),
        ZoneSet::Zones(_) => None,
    }
}

/// The protocols (TCP, UDP) of which the rule allows every port, 1 to 65535.
fn all_ports(rule: &Rule) -> Vec<Protocol> {
    [Protocol::Tcp, Protocol::Udp]
        .into_iter()
        .filter(|p| rule.allowed.get(p).is_some_and(|r| covers_all(r)))
        .collect()
}

/// Whether `ranges` together cover ports 1 to 65535.
fn covers_all(ranges: &[PortRange]) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort();
    let mut next: u32 = 1;
    for r in sorted {
        if u32::from(r.first) > next {
            return false;
        }
        next = next.max(u32::from(r.last) + 1);
    }
    next > u32::from(u16::MAX)
}

/// The zone names of `set`; `any` gives the names `for_any` returns.
fn names<'p>(
    policy: &'p Policy,
    set: &ZoneSet,
    for_any: impl FnOnce() -> Vec<&'p str>,
) -> Vec<&'p str> {
    match set {
        ZoneSet::Any => for_any(),
        ZoneSet::Zones(ids) => ids.iter().map(|&id| policy.zone_name(id)).collect(),
    }
}

/// `a`, `a` and `b`, `a`, `b` and `c`, each in backquotes.
fn quoted(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match q.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => q.join(""),
    }
}
