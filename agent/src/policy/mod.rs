//! Zone policy: model, loading and merge, checker, compiler, flow evaluator.
//!
//! [`load`] reads TOML files (or directories of them), checks them with precise
//! [`Diagnostic`]s (lints included) and compiles them; [`compile`] produces the dataplane
//! entries; [`Policy::explain`] evaluates flows exactly as `docs/dataplane.md` says (the
//! `ward-reference` crate does the same frame by frame); [`diff()`] compares two policies; [`catalogue`]
//! names the services rules may allow by name.
use std::path::PathBuf;

pub mod capacity;
pub mod catalogue;
mod check;
mod compile;
mod decide;
mod diagnostic;
mod diff;
mod endpoint;
mod evaluate;
mod lint;
mod live;
mod load;
mod model;
mod ports;
mod protocol;
mod raw;
mod reuse;
mod sections;
mod settings;
mod structure;
#[cfg(test)]
mod tests;
mod tree;

pub use compile::{compile, CompiledPolicy, RuleEntry, ShadowedRule};
pub use decide::{services, AuditedBy, Cause, Decision, Enforcement};
pub(crate) use diagnostic::did_you_mean;
pub use diagnostic::{Diagnostic, Origin, Severity};
pub use diff::{
    diff, AccessChange, Change, Direction, FlowChange, ModeChange, PolicyDiff, PrefixChange,
    PrefixChangeKind, RuleRef, ZoneChanges, FORMAT as DIFF_FORMAT,
};
pub use endpoint::{Endpoint, Named};
pub use evaluate::{ExplainError, Explanation, Service, ZoneIndex};
pub use live::{GrantRule, LiveState, Quarantined};
pub use model::{Mode, Policy, PortRange, Rule, Zone, ZoneSet, ANY, WORLD};
pub use ports::PortSet;
pub use protocol::{Protocol, UnknownProtocol};
pub use reuse::LoadCache;

use diagnostic::Source;

/// A file of a policy directory or bundle that is not policy: the fleet quarantine
/// list a signed bundle carries (`docs/bundles.md`). The policy loader never reads it.
pub const FLEET_QUARANTINE_FILE: &str = "quarantine.toml";

/// The other file that is not policy: the fleet break-glass grants of a signed bundle.
pub const FLEET_BREAKGLASS_FILE: &str = "breakglass.toml";

/// Whether `name` is one of the reserved files ([`FLEET_QUARANTINE_FILE`],
/// [`FLEET_BREAKGLASS_FILE`]) the policy loader never reads.
pub fn is_reserved(name: &str) -> bool {
    name == FLEET_QUARANTINE_FILE || name == FLEET_BREAKGLASS_FILE
}

/// A policy that passed the checks, compiled, with the warnings about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    /// The checked policy.
    pub policy: Policy,
    /// Its dataplane form.
    pub compiled: CompiledPolicy,
    /// Warnings (unused zones, shadowed rules, lint findings).
    pub warnings: Vec<Diagnostic>,
}

/// Loads the policy made of all `paths` (files, or directories whose `*.toml` files are
/// taken in file-name order), merged in that order. On failure, returns every error
/// found (and the warnings).
pub fn load(paths: &[PathBuf]) -> Result<Loaded, Vec<Diagnostic>> {
    let (sources, diags) = load::read_sources(paths);
    if sources.is_empty() && diags.is_empty() {
        return Err(vec![Diagnostic::error(
            Origin::file("<policy>".as_ref()),
            "no policy file given",
        )]);
    }
    load_sources(&sources, diags)
}

/// The files `paths` name (files, or directories whose `*.toml` files are taken in
/// file-name order) as `(name, text)` in merge order: what [`load`] reads, so that
/// [`load_texts`] of them gives the same policy and the same diagnostics.
pub fn read_texts(paths: &[PathBuf]) -> Result<Vec<(String, String)>, Vec<Diagnostic>> {
    let (sources, diags) = load::read_sources(paths);
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(sources
        .into_iter()
        .map(|s| (s.path.display().to_string(), s.text))
        .collect())
}

/// The policy an agent enforces when it has none it can load and nothing is in force:
/// no zone, no rule, so everything is denied but what the failsafe lets through. It
/// says `allow_empty = true`, the only way past the checker's empty-policy error.
pub fn deny_all() -> Loaded {
    load_str("<built-in deny-all policy>", "allow_empty = true\n").expect("the empty policy loads")
}

/// Loads a policy from one text, named `name` in diagnostics.
pub fn load_str(name: &str, text: &str) -> Result<Loaded, Vec<Diagnostic>> {
    load_sources(&[Source::new(name.into(), text.to_owned())], Vec::new())
}

/// Loads a policy from in-memory files `(name, text)` (a signed bundle's), merged in
/// the given order; diagnostics name each file by `name`.
pub fn load_texts<N: AsRef<str>, T: AsRef<str>>(
    files: &[(N, T)],
) -> Result<Loaded, Vec<Diagnostic>> {
    if files.is_empty() {
        return Err(vec![Diagnostic::error(
            Origin::file("<policy>".as_ref()),
            "no policy file given",
        )]);
    }
    let sources: Vec<Source> = files
        .iter()
        .map(|(name, text)| Source::new(name.as_ref().into(), text.as_ref().to_owned()))
        .collect();
    load_sources(&sources, Vec::new())
}

/// Checks and compiles `sources`. The diagnostics come errors first, each kind in file
/// and position order, each with the text of its line.
fn load_sources(sources: &[Source], diags: Vec<Diagnostic>) -> Result<Loaded, Vec<Diagnostic>> {
    placed(sources, check_sources(sources, diags))
}

/// `result` with its diagnostics in order (errors first, each kind in file and
/// position order), each with the text of its line.
fn placed(
    sources: &[Source],
    mut result: Result<Loaded, Vec<Diagnostic>>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let diags = match &mut result {
        Ok(loaded) => &mut loaded.warnings,
        Err(diags) => diags,
    };
    let file_index = |d: &Diagnostic| sources.iter().position(|s| s.path == d.origin.file);
    diags.sort_by_key(|d| (d.severity, file_index(d), d.origin.line, d.origin.column));
    for d in diags.iter_mut().filter(|d| d.origin.line > 0) {
        d.line_text = sources
            .iter()
            .find(|s| s.path == d.origin.file)
            .map(|s| s.line(d.origin.line).to_owned());
    }
    result
}

fn check_sources(
    sources: &[Source],
    mut diags: Vec<Diagnostic>,
) -> Result<Loaded, Vec<Diagnostic>> {
    let mut complete = diags.is_empty();
    let mut files = Vec::with_capacity(sources.len());
    for source in sources {
        match load::parse(source) {
            Ok((raw, errors)) => {
                diags.extend(errors);
                files.push((source, raw));
            }
            Err(d) => {
                diags.push(d);
                complete = false;
            }
        }
    }
    let (policy, found) = check::build(&files, complete);
    diags.extend(found);
    drop(files);
    finish(sources, policy, diags, None)
}

/// The checks of a checked `policy` as a whole (an empty policy, its size) and its
/// compiled form (its prefix lists those of `previous` when it has the same zones),
/// with the shadowed-rule warnings added to `diags`; `Err` with `diags` when they hold
/// an error.
fn finish(
    sources: &[Source],
    policy: Policy,
    mut diags: Vec<Diagnostic>,
    previous: Option<&Loaded>,
) -> Result<Loaded, Vec<Diagnostic>> {
    if !diags.iter().any(|d| d.severity == Severity::Error) {
        diags.extend(settings::empty_policy(sources, &policy));
    }
    if diags.iter().any(|d| d.severity == Severity::Error) {
        return Err(diags);
    }
    let like = previous.and_then(|p| compile::compile_like(&policy, &p.policy, &p.compiled));
    let compiled = like.unwrap_or_else(|| compile(&policy));
    let origin = sources
        .first()
        .map_or_else(|| Origin::file("<policy>".as_ref()), |s| s.origin(0));
    let too_large = capacity::check(&compiled, &origin);
    if !too_large.is_empty() {
        diags.extend(too_large);
        return Err(diags);
    }
    for s in &compiled.shadowed {
        let by: Vec<String> =
            s.by.iter()
                .map(|&id| format!("rule #{id} at {}", policy.rules[id as usize].origin))
                .collect();
        let message = format!(
            "rule #{} is shadowed by {}: it allows nothing they do not",
            s.rule_id,
            by.join(", ")
        );
        diags.push(Diagnostic::warning(
            policy.rules[s.rule_id as usize].origin.clone(),
            message,
        ));
    }
    Ok(Loaded {
        policy,
        compiled,
        warnings: diags,
    })
}
