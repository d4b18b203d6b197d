//! The fleet quarantine list: `quarantine.toml`, a reserved file of a signed bundle
//! (never read as policy), parsed and checked with diagnostics naming its file, line
//! and field. `docs/bundles.md` specifies the format.
use std::{net::IpAddr, ops::Range, path::Path, time::SystemTime};

use serde::Deserialize;
use toml::Spanned;

use super::{Bundle, BundleFile};
use crate::policy::{Diagnostic, Origin, FLEET_QUARANTINE_FILE};
use ward_common::QUARANTINE_REASON_LEN;

/// One host of the fleet quarantine list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetEntry {
    /// The host.
    pub ip: IpAddr,
    /// Why it is quarantined.
    pub reason: String,
    /// Who asked for it.
    pub author: String,
    /// When the quarantine ends by itself.
    pub expires: SystemTime,
}

/// The fleet quarantine list of the policy in force.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetQuarantine {
    /// The version of the bundle it came from; `None` for an unsigned policy, which
    /// carries no fleet quarantine.
    pub version: Option<u64>,
    /// Its entries, in file order.
    pub entries: Vec<FleetEntry>,
}

impl FleetQuarantine {
    /// The list in `bundle` (empty without `quarantine.toml`), and its warnings.
    pub fn of_bundle(
        bundle: &Bundle,
        now: SystemTime,
    ) -> Result<(FleetQuarantine, Vec<Diagnostic>), Vec<Diagnostic>> {
        let file = bundle.files.iter().find(|f| is_quarantine(f));
        let (entries, warnings) = match file {
            Some(f) => parse_list(&f.name, &f.content, now)?,
            None => (Vec::new(), Vec::new()),
        };
        let list = FleetQuarantine {
            version: Some(bundle.version),
            entries,
        };
        Ok((list, warnings))
    }
}

/// The policy files of a bundle: all but `quarantine.toml`, as `(name, text)`.
pub fn policy_texts(files: &[BundleFile]) -> Vec<(&str, &str)> {
    files
        .iter()
        .filter(|f| !is_quarantine(f))
        .map(|f| (f.name.as_str(), f.content.as_str()))
        .collect()
}

fn is_quarantine(f: &BundleFile) -> bool {
    f.name == FLEET_QUARANTINE_FILE
}

/// `quarantine.toml` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    #[serde(default)]
    quarantine: Vec<Spanned<RawEntry>>,
}

/// One `[[quarantine]]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    address: Option<Spanned<String>>,
    cidr: Option<Spanned<String>>,
    reason: Spanned<String>,
    author: Spanned<String>,
    expires: Spanned<toml::Value>,
}

/// Parses and checks the text of `name`; entries already expired at `now` are left
/// out, with a warning. Every error is returned.
pub fn parse_list(
    name: &str,
    text: &str,
    now: SystemTime,
) -> Result<(Vec<FleetEntry>, Vec<Diagnostic>), Vec<Diagnostic>> {
    let at = |span: Range<usize>| origin(name, text, span.start);
    let raw: RawList = toml::from_str(text).map_err(|e| {
        let origin = e.span().map_or_else(|| Origin::file(Path::new(name)), at);
        // One line, as every diagnostic.
        let message = e.message().trim_end().replace('\n', ": ");
        vec![Diagnostic::error(origin, message)]
    })?;
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    let mut entries: Vec<(FleetEntry, usize)> = Vec::new();
    for table in raw.quarantine {
        let span = table.span();
        let raw = table.into_inner();
        let mut error = |span: Range<usize>, message: String| {
            errors.push(Diagnostic::error(at(span), message));
        };
        let ip = match (raw.address, raw.cidr) {
            (Some(a), None) => host(&a, "address"),
            (None, Some(c)) => host(&c, "cidr"),
            (Some(a), Some(_)) => {
                Err((a.span(), "give either `address` or `cidr`, not both".into()))
            }
            (None, None) => Err((span.clone(), "an entry needs `address` (or `cidr`)".into())),
        };
        let ip = ip.map_err(|(s, m)| error(s, m)).ok();
        let reason = raw.reason.get_ref().trim();
        if reason.is_empty() {
            error(
                raw.reason.span(),
                "reason: empty: say why the host is quarantined".into(),
            );
        } else if reason.len() > QUARANTINE_REASON_LEN {
            error(
                raw.reason.span(),
                format!(
                    "reason: {} bytes, more than the {QUARANTINE_REASON_LEN} the kernel table keeps",
                    reason.len()
                ),
            );
        }
        let author = raw.author.get_ref().trim();
        if author.is_empty() {
            error(
                raw.author.span(),
                "author: empty: name who asked for the quarantine".into(),
            );
        }
        let expires = expiry(raw.expires.get_ref())
            .map_err(|m| error(raw.expires.span(), m))
            .ok();
        let (Some(ip), Some(expires)) = (ip, expires) else {
            continue;
        };
        let line = at(span.clone()).line;
        if let Some((_, first)) = entries.iter().find(|(e, _)| e.ip == ip) {
            error(
                span,
                format!("{ip} is listed twice (first at line {first})"),
            );
            continue;
        }
        if expires <= now {
            warnings.push(Diagnostic::warning(
                at(raw.expires.span()),
                format!(
                    "expires: {} has passed: the entry is not enforced",
                    humantime::format_rfc3339_seconds(expires)
                ),
            ));
        }
        let entry = FleetEntry {
            ip,
            reason: reason.to_owned(),
            author: author.to_owned(),
            expires,
        };
        entries.push((entry, line));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let entries = entries.into_iter().map(|(e, _)| e);
    Ok((entries.filter(|e| e.expires > now).collect(), warnings))
}

/// The host `value` of `field` names: an address, or a prefix of a single host.
fn host(value: &Spanned<String>, field: &str) -> Result<IpAddr, (Range<usize>, String)> {
    let text = value.get_ref().trim();
    let wrong = |m: String| Err((value.span(), format!("{field}: `{text}` {m}")));
    if field == "address" {
        return match text.parse::<IpAddr>() {
            Ok(ip) => Ok(ip),
            Err(_) => wrong("is not an IPv4 or IPv6 address".into()),
        };
    }
    match text.parse::<ipnet::IpNet>() {
        Ok(net) if net.prefix_len() == net.max_prefix_len() => Ok(net.addr()),
        Ok(net) => wrong(format!(
            "is a network: the kernel quarantine table holds single hosts, so give a /{} (one address)",
            net.max_prefix_len()
        )),
        Err(_) => wrong("is not an address with a prefix length".into()),
    }
}

/// An RFC 3339 time in UTC, written as a TOML date-time or a string.
fn expiry(value: &toml::Value) -> Result<SystemTime, String> {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        other => other.to_string(),
    };
    humantime::parse_rfc3339(&text).map_err(|_| {
        format!("expires: `{text}` is not an RFC 3339 time in UTC (such as 2026-12-08T06:00:00Z)")
    })
}

/// Line and column (1-based, in characters) of byte `offset` of `text`.
fn origin(name: &str, text: &str, offset: usize) -> Origin {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    Origin {
        file: name.into(),
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
    }
}
