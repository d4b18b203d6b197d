//! The fleet quarantine list: `quarantine.toml`, a reserved file of a signed bundle
//! (never read as policy), parsed and checked with diagnostics naming its file, line
//! and field. `docs/bundles.md` specifies the format. A `cidr` entry stands for every
//! address of its network (at most [`MAX_ENTRY_HOSTS`]); the list is bounded to
//! [`MAX_FLEET_HOSTS`] hosts, so the kernel table keeps room for local quarantines.
use std::{net::IpAddr, ops::Range, time::SystemTime};

use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

use super::{
    fleet_grants::parse_grants,
    fleet_text::{expiry, origin, read_toml, reason_and_author},
    Bundle, BundleFile, FleetGrant,
};
use crate::policy::{
    is_reserved, Diagnostic, Policy, FLEET_BREAKGLASS_FILE, FLEET_QUARANTINE_FILE,
};
use ward_common::{QUARANTINE_CAPACITY, QUARANTINE_REASON_LEN};

/// The most addresses one `cidr` entry may stand for: a /24 (IPv4) or a /120 (IPv6).
pub const MAX_ENTRY_HOSTS: u32 = 256;

/// The most hosts a fleet quarantine list may hold, `cidr` entries counted host by
/// host: half the kernel quarantine table, the other half kept for local quarantines.
pub const MAX_FLEET_HOSTS: u32 = QUARANTINE_CAPACITY / 2;

/// One host of the fleet quarantine list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetEntry {
    /// The host.
    pub ip: IpAddr,
    /// The network of the `cidr` entry that listed it; `None` for an entry of one host.
    pub cidr: Option<IpNet>,
    /// Why it is quarantined.
    pub reason: String,
    /// Who asked for it.
    pub author: String,
    /// When the quarantine ends by itself.
    pub expires: SystemTime,
}

/// The fleet lists of the policy in force: its quarantine list and break-glass grants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FleetLists {
    /// The version of the bundle they came from; `None` for an unsigned policy, which
    /// carries no fleet list.
    pub version: Option<u64>,
    /// The hosts of `quarantine.toml`, in file order (a `cidr` entry's in address order).
    pub entries: Vec<FleetEntry>,
    /// The grants of `breakglass.toml`, in file order.
    pub grants: Vec<FleetGrant>,
}

impl FleetLists {
    /// The lists in `bundle` (empty without `quarantine.toml`, `breakglass.toml`),
    /// the grants checked against `policy`, the bundle's policy; and their warnings.
    pub fn of_bundle(
        bundle: &Bundle,
        policy: &Policy,
        now: SystemTime,
    ) -> Result<(FleetLists, Vec<Diagnostic>), Vec<Diagnostic>> {
        let file = |name: &str| bundle.files.iter().find(|f| f.name == name);
        let quarantine = file(FLEET_QUARANTINE_FILE).map(|f| parse_list(&f.name, &f.content, now));
        let grants =
            (file(FLEET_BREAKGLASS_FILE)).map(|f| parse_grants(&f.name, &f.content, policy, now));
        let (mut errors, mut warnings) = (Vec::new(), Vec::new());
        let entries = gather(quarantine, &mut errors, &mut warnings);
        let grants = gather(grants, &mut errors, &mut warnings);
        if !errors.is_empty() {
            return Err(errors);
        }
        let lists = FleetLists {
            version: Some(bundle.version),
            entries,
            grants,
        };
        Ok((lists, warnings))
    }
}

/// A list parsed: its items and warnings, or its errors.
type Parsed<T> = Result<(Vec<T>, Vec<Diagnostic>), Vec<Diagnostic>>;

/// The items of a parsed list (none without the file, or when it is refused), its
/// diagnostics moved into `errors` and `warnings`.
fn gather<T>(
    parsed: Option<Parsed<T>>,
    errors: &mut Vec<Diagnostic>,
    warnings: &mut Vec<Diagnostic>,
) -> Vec<T> {
    match parsed {
        Some(Ok((items, w))) => {
            warnings.extend(w);
            items
        }
        Some(Err(e)) => {
            errors.extend(e);
            Vec::new()
        }
        None => Vec::new(),
    }
}

/// The policy files of a bundle: all but the reserved ones (`quarantine.toml`,
/// `breakglass.toml`), as `(name, text)`.
pub fn policy_texts(files: &[BundleFile]) -> Vec<(&str, &str)> {
    files
        .iter()
        .filter(|f| !is_reserved(&f.name))
        .map(|f| (f.name.as_str(), f.content.as_str()))
        .collect()
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
    let raw: RawList = read_toml(name, text)?;
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    // Each entry's network (one host: a /32 or /128) and its line.
    let mut listed: Vec<(IpNet, usize)> = Vec::new();
    let mut hosts = 0u32;
    let mut entries = Vec::new();
    for table in raw.quarantine {
        let span = table.span();
        let raw = table.into_inner();
        let mut error = |span: Range<usize>, message: String| {
            errors.push(Diagnostic::error(at(span), message));
        };
        let net = match (&raw.address, &raw.cidr) {
            (Some(a), None) => address(a),
            (None, Some(c)) => network(c).map(|n| (n, c.span())),
            (Some(a), Some(_)) => {
                Err((a.span(), "give either `address` or `cidr`, not both".into()))
            }
            (None, None) => Err((span.clone(), "an entry needs `address` (or `cidr`)".into())),
        };
        let net = net.map_err(|(s, m)| error(s, m)).ok();
        let (reason, author) = reason_and_author(
            &raw.reason,
            &raw.author,
            (
                "quarantine",
                "say why the host is quarantined",
                QUARANTINE_REASON_LEN,
            ),
            &mut error,
        );
        let expires = expiry(raw.expires.get_ref())
            .map_err(|m| error(raw.expires.span(), m))
            .ok();
        let (Some((net, net_span)), Some(expires)) = (net, expires) else {
            continue;
        };
        let line = at(span.clone()).line;
        if let Some(message) = overlap(net, &listed) {
            error(span, message);
            continue;
        }
        listed.push((net, line));
        let count = size(net);
        hosts += count;
        if hosts > MAX_FLEET_HOSTS {
            let field = if raw.cidr.is_some() {
                "cidr"
            } else {
                "address"
            };
            error(
                net_span,
                format!(
                    "{field}: {} brings the list to {hosts} hosts, more than the {MAX_FLEET_HOSTS} a fleet list may hold (half the kernel quarantine table of {QUARANTINE_CAPACITY}, the rest kept for local quarantines)",
                    show(net)
                ),
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
            continue;
        }
        let cidr = (count > 1).then_some(net);
        // Every address of the network, its first and last included.
        let all = net.subnets(net.max_prefix_len()).into_iter().flatten();
        entries.extend(all.map(|host| FleetEntry {
            ip: host.addr(),
            cidr,
            reason: reason.to_owned(),
            author: author.to_owned(),
            expires,
        }));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok((entries, warnings))
}

/// The host `value` names, as a network of one address, with its span.
fn address(value: &Spanned<String>) -> Result<(IpNet, Range<usize>), (Range<usize>, String)> {
    let text = value.get_ref().trim();
    match text.parse::<IpAddr>() {
        Ok(ip) => Ok((IpNet::from(ip), value.span())),
        Err(_) => Err((
            value.span(),
            format!("address: `{text}` is not an IPv4 or IPv6 address"),
        )),
    }
}

/// The network `value` names: its own address (no host bits set), at most
/// [`MAX_ENTRY_HOSTS`] addresses.
fn network(value: &Spanned<String>) -> Result<IpNet, (Range<usize>, String)> {
    let text = value.get_ref().trim();
    let wrong = |m: String| Err((value.span(), format!("cidr: `{text}` {m}")));
    let Ok(net) = text.parse::<IpNet>() else {
        return wrong("is not an address with a prefix length".into());
    };
    if net.addr() != net.network() {
        return wrong(format!("has host bits set: the network is {}", net.trunc()));
    }
    if net.max_prefix_len() - net.prefix_len() > 8 {
        return wrong(format!(
            "holds more than the {MAX_ENTRY_HOSTS} addresses an entry may (at most a /{} network)",
            net.max_prefix_len() - 8
        ));
    }
    Ok(net)
}

/// How many addresses `net` holds (at most [`MAX_ENTRY_HOSTS`], by [`network`]).
fn size(net: IpNet) -> u32 {
    1 << (net.max_prefix_len() - net.prefix_len())
}

/// Why `net` cannot be listed beside the networks `listed` already: each host once.
fn overlap(net: IpNet, listed: &[(IpNet, usize)]) -> Option<String> {
    let (other, line) = listed
        .iter()
        .find(|(l, _)| l.contains(&net) || net.contains(l))?;
    Some(if *other == net && size(net) == 1 {
        format!("{} is listed twice (first at line {line})", net.addr())
    } else {
        format!(
            "{} overlaps {} (line {line}): list each host once",
            show(net),
            show(*other)
        )
    })
}

/// `net` as listed: an address for one host, else the network.
fn show(net: IpNet) -> String {
    match size(net) {
        1 => net.addr().to_string(),
        _ => net.to_string(),
    }
}
