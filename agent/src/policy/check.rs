//! Checking raw policy files and merging them into one [`Policy`].
use std::collections::{BTreeMap, HashMap, HashSet};

use ipnet::IpNet;
use toml::Spanned;

use super::catalogue::{self, KnownService};
use super::diagnostic::{did_you_mean, Source};
use super::model::{PortRange, Rule, Zone, ZoneSet, ANY, WORLD};
use super::raw::{Items, RawFile, RawRule, RawZone};
use super::{Diagnostic, Origin, Policy, Protocol};

/// Longest zone name.
const MAX_NAME_LEN: usize = 32;

/// Checks and merges parsed files (in merged order). `complete` is false when some
/// file could not be parsed: references to zones are then not checked, to avoid
/// reporting zones that the broken file defines.
pub(crate) fn build(files: &[(&Source, RawFile)], complete: bool) -> (Policy, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut zones = zones(files, &mut diags);
    zones.sort_by(|a, b| a.name.cmp(&b.name));
    let mut policy = Policy {
        zones,
        rules: Vec::new(),
    };
    let mut mentioned = HashSet::new();
    for (source, raw) in files {
        for rule in &raw.allow {
            let mut ctx = RuleCtx {
                source,
                policy: &policy,
                complete,
                diags: &mut diags,
                mentioned: &mut mentioned,
            };
            if let Some(rule) = ctx.rule(rule) {
                policy.rules.push(rule);
            }
        }
    }
    diags.extend(policy_warnings(&policy, &mentioned, complete));
    (policy, diags)
}

/// The warnings about the policy as a whole: the lint findings, and each zone no rule
/// mentions (by name, in `mentioned`) when no rule says `any` and every file parsed.
pub(super) fn policy_warnings(
    policy: &Policy,
    mentioned: &HashSet<String>,
    complete: bool,
) -> Vec<Diagnostic> {
    let mut diags = super::lint::lateral_movement(policy);
    diags.extend(super::lint::wide_open(policy));
    // `any` mentions every zone.
    let any = |s: &ZoneSet| *s == ZoneSet::Any;
    let any_used = policy.rules.iter().any(|r| any(&r.from) || any(&r.to));
    if complete && !any_used {
        for zone in &policy.zones {
            if !mentioned.contains(zone.name.as_str()) {
                diags.push(Diagnostic::warning(
                    zone.origin.clone(),
                    format!("zone `{}` is not mentioned by any rule", zone.name),
                ));
            }
        }
    }
    diags
}

/// One zone of `source` checked on its own (its name, its prefixes, none twice), as
/// [`build`] checks it; `None` when [`build`] would report an error in it. Whether its
/// name or prefixes are in another zone too is left to the caller.
pub(super) fn lone_zone(source: &Source, name: &Spanned<String>, zone: &RawZone) -> Option<Zone> {
    check_name(name.get_ref()).ok()?;
    let listed = zone.cidrs.as_ref()?.get_ref();
    if listed.is_empty() {
        return None;
    }
    let mut seen =
        HashSet::with_capacity_and_hasher(listed.len(), foldhash::fast::RandomState::default());
    let mut cidrs = Vec::with_capacity(listed.len());
    for text in listed {
        let net = parse_cidr(text.get_ref()).ok()?;
        if !seen.insert(net) {
            return None;
        }
        cidrs.push(net);
    }
    Some(Zone {
        name: name.get_ref().clone(),
        description: zone.description.clone(),
        cidrs: cidrs.into(),
        audit: zone.mode == super::Mode::Audit,
        origin: source.origin(name.span().start),
    })
}

/// One rule of `source` checked against the zones of `policy` (every file parsed), as
/// [`build`] checks it, the zones it names added to `mentioned`; `None` when [`build`]
/// would report an error in it.
pub(super) fn lone_rule(
    source: &Source,
    policy: &Policy,
    mentioned: &mut HashSet<String>,
    raw: &Spanned<RawRule>,
) -> Option<Rule> {
    let mut diags = Vec::new();
    let mut ctx = RuleCtx {
        source,
        policy,
        complete: true,
        diags: &mut diags,
        mentioned,
    };
    let rule = ctx.rule(raw);
    rule.filter(|_| diags.is_empty())
}

/// The zones of all files, checked for names, duplicates and prefixes.
fn zones(files: &[(&Source, RawFile)], diags: &mut Vec<Diagnostic>) -> Vec<Zone> {
    let mut seen: HashMap<String, Origin> = HashMap::new();
    // Where each prefix was first listed (zone index, file, byte offset): its origin
    // is only worked out for a message.
    let total = files.iter().flat_map(|(_, raw)| &raw.zones);
    let total = total
        .filter_map(|(_, z)| z.cidrs.as_ref())
        .map(|c| c.get_ref().len());
    let mut prefixes: HashMap<IpNet, (usize, &Source, usize), foldhash::fast::RandomState> =
        HashMap::with_capacity_and_hasher(total.sum(), Default::default());
    let mut zones = Vec::new();
    for (source, raw) in files {
        let mut in_file: Vec<_> = raw.zones.iter().collect();
        in_file.sort_by_key(|(name, _)| name.span().start);
        for (name, zone) in in_file {
            let origin = source.origin(name.span().start);
            if let Err(message) = check_name(name.get_ref()) {
                diags.push(Diagnostic::error(origin.clone(), message));
            }
            if let Some(first) = seen.get(name.get_ref()) {
                diags.push(Diagnostic::error(
                    origin,
                    format!("zone `{}` is already defined at {first}", name.get_ref()),
                ));
                continue;
            }
            seen.insert(name.get_ref().clone(), origin.clone());
            let listed = zone
                .cidrs
                .as_ref()
                .map_or(&[][..], |c| c.get_ref().as_slice());
            if let Some(c) = zone.cidrs.as_ref().filter(|c| c.get_ref().is_empty()) {
                diags.push(Diagnostic::error(
                    source.origin(c.span().start),
                    "`cidrs` is empty",
                ));
            }
            let mut cidrs = Vec::with_capacity(listed.len());
            for text in listed {
                let at = || source.origin(text.span().start);
                let net = match parse_cidr(text.get_ref()) {
                    Ok(net) => net,
                    Err(message) => {
                        diags.push(Diagnostic::error(at(), message));
                        continue;
                    }
                };
                match prefixes.get(&net) {
                    Some(&(z, file, offset)) if z == zones.len() => {
                        let first = file.origin(offset);
                        diags.push(Diagnostic::error(at(), format!("prefix {net} is listed twice (first at {first})")))
                    }
                    Some(&(_, file, offset)) => diags.push(Diagnostic::error(
                        at(),
                        format!("prefix {net} is already in another zone (at {}); a prefix belongs to one zone", file.origin(offset)),
                    )),
                    None => {
                        prefixes.insert(net, (zones.len(), source, text.span().start));
                        cidrs.push(net);
                    }
                }
            }
            let description = zone.description.clone();
            zones.push(Zone {
                name: name.get_ref().clone(),
                description,
                cidrs: cidrs.into(),
                audit: zone.mode == super::Mode::Audit,
                origin,
            });
        }
    }
    zones
}

/// Checks a zone name: `[a-z][a-z0-9_-]*`, at most 32 characters, not reserved.
fn check_name(name: &str) -> Result<(), String> {
    if name == WORLD || name == ANY {
        return Err(format!("`{name}` is reserved and cannot name a zone"));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !first_ok || !rest_ok {
        return Err(format!(
            "invalid zone name `{name}`: names match [a-z][a-z0-9_-]*"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "zone name `{name}` is longer than {MAX_NAME_LEN} characters"
        ));
    }
    Ok(())
}

/// Parses `addr/len` (or a bare address, a host prefix) without host bits.
fn parse_cidr(text: &str) -> Result<IpNet, String> {
    let net = match quick_cidr(text)
        .ok_or(())
        .or_else(|()| text.parse::<IpNet>())
    {
        Ok(net) => net,
        Err(_) => match text.parse::<std::net::IpAddr>() {
            Ok(addr) => IpNet::from(addr),
            Err(_) => {
                return Err(format!(
                    "`{text}` is not a CIDR prefix (like 198.18.20.0/24 or 2001:db8::/64)"
                ))
            }
        },
    };
    if net.trunc() != net {
        return Err(format!(
            "{text} has host bits set: the network is {}",
            net.trunc()
        ));
    }
    Ok(net)
}

/// `addr/len` in its plain form (the address as the standard library reads it, the
/// length in decimal without a leading zero), the common case, read without the
/// general parser; `None` for anything else, which that parser then reads.
pub(super) fn quick_cidr(text: &str) -> Option<IpNet> {
    // A byte search: `split_once('/')` goes through the general char searcher, which
    // was a tenth of a whole policy check at 200,000 CIDRs.
    let slash = text.bytes().position(|b| b == b'/')?;
    let (addr, len) = (&text[..slash], &text[slash + 1..]);
    let plain = !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit());
    if !plain || (len.len() > 1 && len.starts_with('0')) {
        return None;
    }
    IpNet::new(addr.parse().ok()?, len.parse().ok()?).ok()
}

/// Checks one rule of one file.
struct RuleCtx<'a> {
    source: &'a Source,
    policy: &'a Policy,
    complete: bool,
    diags: &'a mut Vec<Diagnostic>,
    mentioned: &'a mut HashSet<String>,
}

impl RuleCtx<'_> {
    fn rule(&mut self, raw: &Spanned<RawRule>) -> Option<Rule> {
        let origin = self.source.origin(raw.span().start);
        let errors_before = self.diags.len();
        let r = raw.get_ref();
        let from = r.from.as_ref().and_then(|f| self.zone_set("from", f));
        let to = r.to.as_ref().and_then(|t| self.zone_set("to", t));
        let mut allowed = BTreeMap::new();
        for (protocol, items) in [(Protocol::Tcp, &r.tcp), (Protocol::Udp, &r.udp)] {
            let ports = items.as_ref().map(|p| self.ports(p)).unwrap_or_default();
            allowed.insert(protocol, ports);
        }
        if r.icmp.as_ref().is_some_and(|i| *i.get_ref()) {
            allowed.insert(Protocol::Icmp, vec![PortRange { first: 0, last: 0 }]);
        }
        let mut services = Vec::new();
        for service in r
            .services
            .as_ref()
            .map(|s| self.services(s))
            .unwrap_or_default()
        {
            for (&protocol, ports) in allowed.iter_mut() {
                let single = |&p: &u16| PortRange { first: p, last: p };
                ports.extend(service.ports(protocol).iter().map(single));
            }
            if !services.contains(&service.name) {
                services.push(service.name);
            }
        }
        allowed.retain(|_, ports| !ports.is_empty());
        let port_errors = self.diags.len() > errors_before;
        if allowed.is_empty() && !port_errors && !r.broken {
            self.diags.push(Diagnostic::error(
                origin.clone(),
                "rule allows nothing: give `tcp`, `udp`, `services` or `icmp = true`",
            ));
        }
        let reviewed = r.reviewed.as_ref().and_then(|reason| {
            let text = reason.get_ref().trim();
            if text.is_empty() {
                self.diags.push(Diagnostic::error(
                    self.source.origin(reason.span().start),
                    "`reviewed` needs the reason the rule was accepted",
                ));
            }
            (!text.is_empty()).then(|| text.to_owned())
        });
        let (from, to) = (from?, to?);
        (self.diags.len() == errors_before && !r.broken).then(|| Rule {
            from,
            to,
            allowed,
            services: services.into_iter().map(str::to_owned).collect(),
            reviewed,
            description: r.description.clone(),
            origin,
        })
    }

    /// The catalogue entries named by `services`; unknown names are errors.
    fn services(&mut self, items: &Spanned<Items>) -> Vec<&'static KnownService> {
        let mut found = Vec::new();
        for (value, at) in items.get_ref().spanned(items.span()) {
            let at = self.source.origin(at);
            match value.as_str() {
                Some(name) => {
                    match catalogue::lookup(name) {
                        Some(service) => found.push(service),
                        None => {
                            let hint = catalogue::suggest(name)
                                .map(|s| format!(" (did you mean `{s}`?)"))
                                .unwrap_or_default();
                            self.diags.push(Diagnostic::error(
                            at,
                            format!("unknown service `{name}`{hint}; `ward policy services` lists them"),
                        ));
                        }
                    }
                }
                None => self.diags.push(Diagnostic::error(
                    at,
                    format!("`services` takes service names (strings), not {value}"),
                )),
            }
        }
        found
    }

    fn zone_set(&mut self, key: &str, items: &Spanned<Items>) -> Option<ZoneSet> {
        let values = items.get_ref().spanned(items.span());
        if values.is_empty() {
            self.diags.push(Diagnostic::error(
                self.source.origin(items.span().start),
                format!("`{key}` names no zone"),
            ));
            return None;
        }
        let mut ids = Vec::new();
        let mut any = false;
        let mut ok = true;
        for (value, at) in values {
            let at = || self.source.origin(at);
            match value.as_str() {
                Some(ANY) => any = true,
                Some(name) => {
                    self.mentioned.insert(name.to_owned());
                    match self.policy.zone_id(name) {
                        Some(id) => ids.push(id),
                        None if self.complete => {
                            let names = self.policy.zones.iter().map(|z| z.name.as_str());
                            let hint = did_you_mean(name, names);
                            self.diags.push(Diagnostic::error(
                                at(),
                                format!("unknown zone `{name}`{hint}"),
                            ));
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                None => {
                    self.diags.push(Diagnostic::error(
                        at(),
                        format!("`{key}` takes zone names (strings), not {value}"),
                    ));
                    ok = false;
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ok.then_some(if any {
            ZoneSet::Any
        } else {
            ZoneSet::Zones(ids)
        })
    }

    fn ports(&mut self, items: &Spanned<Items>) -> Vec<PortRange> {
        let mut ranges = Vec::new();
        for (value, at) in items.get_ref().spanned(items.span()) {
            match parse_ports(value) {
                Ok(range) => ranges.push(range),
                Err(message) => self
                    .diags
                    .push(Diagnostic::error(self.source.origin(at), message)),
            }
        }
        ranges
    }
}

/// Parses a port (`443`, `"443"`) or an inclusive range (`"11112-11115"`).
fn parse_ports(value: &toml::Value) -> Result<PortRange, String> {
    let port = |n: i64| match u16::try_from(n) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(format!("port {n} is out of range 1-65535")),
    };
    let number = |s: &str| {
        s.trim()
            .parse::<i64>()
            .map_err(|_| format!("`{}` is not a port number", s.trim()))
            .and_then(port)
    };
    match value {
        toml::Value::Integer(n) => port(*n).map(|p| PortRange { first: p, last: p }),
        toml::Value::String(s) => match s.split_once('-') {
            None => number(s).map(|p| PortRange { first: p, last: p }),
            Some((lo, hi)) => {
                let (first, last) = (number(lo)?, number(hi)?);
                if first > last {
                    return Err(format!(
                        "port range {first}-{last} is inverted (did you mean {last}-{first}?)"
                    ));
                }
                Ok(PortRange { first, last })
            }
        },
        other => Err(format!(
            "a port is an integer or a string \"N\" or \"lo-hi\", not {other}"
        )),
    }
}
