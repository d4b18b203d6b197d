//! Lints: warnings about rules that are valid but risky.
//!
//! Lateral movement: a rule that lets a zone whose name suggests devices or untrusted
//! hosts (imaging, modalities, guests, IoT, visitors, `world`, `any`) open connections to
//! a zone whose name suggests business records (billing, EHR/EMR, finance, records,
//! payroll). A compromised modality or guest laptop could then reach patient or financial
//! data. Names are matched by case-insensitive substring. A rule that is meant is
//! acknowledged with `reviewed = "reason"`, which silences the warning.
use super::model::{ANY, WORLD};
use super::{Diagnostic, Policy, ZoneSet};

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
    for rule in policy.rules.iter().filter(|r| r.reviewed.is_none()) {
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
