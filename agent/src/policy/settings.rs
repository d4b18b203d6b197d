//! Policy-level settings: the top-level keys of a policy file that are neither zones
//! nor rules. Today one: `allow_empty = true`, which accepts a policy without any
//! `[[allow]]` rule (it blocks everything but the failsafe when enforced).
use super::diagnostic::Source;
use super::tree::{self, Node};
use super::{Diagnostic, Origin, Policy};

/// The key that accepts a policy with no rule.
pub(crate) const ALLOW_EMPTY: &str = "allow_empty";

/// Whether `source` says `allow_empty = true` at its top level. Its structure (a
/// boolean) is checked with the rest of the file (`structure.rs`).
fn allows_empty(source: &Source) -> bool {
    let Ok(doc) = tree::parse(&source.text) else {
        return false;
    };
    let Node::Table(entries) = doc.get_ref() else {
        return false;
    };
    entries.iter().any(|(key, value)| {
        key.get_ref() == ALLOW_EMPTY
            && matches!(value.get_ref(), Node::Scalar(toml::Value::Boolean(true)))
    })
}

/// The error for a policy without any rule, unless one of its files says
/// `allow_empty = true`: enforced, such a policy drops everything but what the failsafe
/// lets through, which locks out the people who manage the host. Named after the first
/// file, the whole of it.
pub(crate) fn empty_policy(sources: &[Source], policy: &Policy) -> Option<Diagnostic> {
    if !policy.rules.is_empty() || sources.iter().any(allows_empty) {
        return None;
    }
    let file = sources.first().map(|s| s.path.as_path())?;
    let files = match sources.len() {
        1 => String::new(),
        n => format!(" (the {n} files merged)"),
    };
    let zones = match policy.zones.len() {
        1 => "1 zone".to_owned(),
        n => format!("{n} zones"),
    };
    Some(Diagnostic::error(
        Origin::file(file),
        format!(
            "the policy{files} has {zones} and 0 rules: enforced, it blocks all traffic \
             but the failsafe's; add [[allow]] rules, or `{ALLOW_EMPTY} = true` at the \
             top of the file if that is what you mean"
        ),
    ))
}
